//! `carload plan`, `carload build` and `carload export`: shipments of many batches.

use super::args::ProfileArgs;
use super::report::ibytes;
use super::signals::{PENDING, PENDING_LOCKS};
use anyhow::{bail, Context, Result};
use carload::event::{Event, Observer, Phase};
use carload::shipment::build::{self as sbuild, outputs, remove_partials, verify, Found, Places};
use carload::shipment::export;
use carload::shipment::lock::{self, Claim, Owner};
use carload::shipment::plan::{self as splan, PlanOptions, SECTOR_32GIB, SECTOR_64GIB};
use carload::shipment::size::parse_size;
use carload::shipment::{read_shipment, write_shipment, Batch, BatchResult, Header, Pack, Shipment};
use clap::{Args, ValueEnum};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Parses a size argument (`32GiB`, `1MiB`, bytes).
pub fn size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

fn sector_arg(s: &str) -> Result<u64, String> {
    match parse_size(s) {
        Ok(SECTOR_32GIB) => Ok(SECTOR_32GIB),
        Ok(SECTOR_64GIB) => Ok(SECTOR_64GIB),
        _ => Err(format!("unsupported sector size {s:?} (use 32GiB or 64GiB)")),
    }
}

/// Packing modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PackArg {
    /// Best-fit decreasing on predicted sizes (fullest pieces).
    BestFit,
    /// Keep the files of one folder together where they fit.
    KeepFolders,
}

/// `carload plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Files and folders to ship.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Sector size the pieces are for: 32GiB or 64GiB.
    #[arg(long, value_name = "SIZE", default_value = "32GiB", value_parser = sector_arg)]
    pub sector: u64,
    /// Shipment file to write (JSON Lines).
    #[arg(short = 'o', long = "output", value_name = "SHIPMENT")]
    pub output: PathBuf,
    /// Target padded piece size (power of two; default: the sector size).
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    pub piece_size: Option<u64>,
    /// Smallest padded piece size a batch should get (Fil+ floor 1 MiB).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = size_arg)]
    pub min_piece_size: u64,
    /// Bytes to keep free in every piece beyond the exact bound.
    #[arg(long, value_name = "BYTES", default_value = "0", value_parser = size_arg)]
    pub margin: u64,
    /// Packing: best-fit (fullest pieces) or keep-folders (a folder's files stay together).
    #[arg(long, value_enum, default_value = "best-fit")]
    pub pack: PackArg,
    /// DAG options.
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Overwrite the shipment file if it exists.
    #[arg(long, short)]
    pub force: bool,
    /// Print every batch (default: the first 20 and the last 5 of a long plan).
    #[arg(long)]
    pub all: bool,
    /// Print only errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Ship CARs written by carload (`X.car` beside `X.car.manifest`) found in the inputs.
    #[arg(long)]
    pub include_carload_outputs: bool,
}

/// `carload build`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Shipment file written by `carload plan`.
    pub shipment: PathBuf,
    /// Output folder (shared by all builders): <batch>.car, <batch>.car.manifest, <batch>.json.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Build only these batches (IDs such as b00003).
    #[arg(long = "batch", value_name = "ID", num_args = 1..)]
    pub batches: Vec<String>,
    /// Build only batch number I (0-based), e.g. $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX.
    #[arg(long, value_name = "I")]
    pub batch_index: Option<usize>,
    /// Build only the batches with index ≡ K (mod N), K in 0..N.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Batches built at once by this process.
    #[arg(long, short, value_name = "N", default_value = "1")]
    pub jobs: usize,
    /// Recompute the commP of batches already built before skipping them (rebuild on mismatch).
    #[arg(long)]
    pub verify: bool,
    /// Take over a batch lock not refreshed for this many seconds (its builder died).
    #[arg(long, value_name = "SECS", default_value_t = lock::DEFAULT_STALE_AFTER, value_parser = clap::value_parser!(u64).range(2..=864_000))]
    pub stale_after: u64,
    /// Seconds between lock refreshes while building.
    #[arg(long, value_name = "SECS", default_value_t = lock::DEFAULT_HEARTBEAT, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub heartbeat: u64,
    /// Folder for the temporary spools (default: the output folder).
    #[arg(long, value_name = "DIR")]
    pub tmpdir: Option<PathBuf>,
    /// Folder relative source names resolve against (default: the planner's working folder).
    #[arg(long, value_name = "DIR")]
    pub source_root: Option<PathBuf>,
    /// Print only failures.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let err = || format!("invalid shard {s:?}: use K/N with 0 <= K < N, e.g. 0/4");
    let (k, n) = s.split_once('/').ok_or_else(err)?;
    let (k, n): (usize, usize) = (k.trim().parse().map_err(|_| err())?, n.trim().parse().map_err(|_| err())?);
    if n == 0 || k >= n {
        return Err(err());
    }
    Ok((k, n))
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Lotus legacy `client deal` (unpadded piece size).
    Lotus,
    /// Boost `offline-deal` (padded) plus the SP's `boostd import-data` line.
    Boost,
    /// Curio `sptool toolbox mk12-client offline-deal` (padded, explicit --verified).
    Curio,
    /// CSV: piece_cid,piece_size,piece_size_unpadded,car_size,payload_cid,car_file.
    Csv,
    /// The shipment file itself with each built batch's `result` filled in.
    Shipment,
}

/// `carload export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Shipment file.
    pub shipment: PathBuf,
    /// Output folder of `carload build` (where the <batch>.json results are).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// What to write.
    #[arg(long, value_enum)]
    pub format: FormatArg,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long, short)]
    pub force: bool,
    /// Deal parameters.
    #[command(flatten)]
    pub deal: super::args::DealArgs,
}

fn read_shipment_file(path: &Path) -> Result<Shipment> {
    let f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    read_shipment(BufReader::with_capacity(1 << 20, f)).with_context(|| path.display().to_string())
}

/// A shipment file indexed (every record checked, one at a time), open to read its batches with
/// [`read_batch_at`](carload::shipment::read_batch_at): a shipment of millions of files is never
/// held whole.
pub fn open_index(path: &Path) -> Result<(std::fs::File, carload::shipment::ShipmentIndex)> {
    let file = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let index = carload::shipment::index_shipment(BufReader::with_capacity(1 << 20, &file))
        .with_context(|| path.display().to_string())?;
    Ok((file, index))
}

/// Runs `carload plan`.
pub fn plan(a: PlanArgs) -> Result<()> {
    let start = Instant::now();
    carload::output::check_target(&a.output, a.force)?;
    let mut o = PlanOptions::for_sector(a.sector, a.profile.profile());
    o.piece_size = a.piece_size.unwrap_or(a.sector);
    o.min_piece_size = a.min_piece_size;
    o.margin = a.margin;
    o.pack = match a.pack {
        PackArg::BestFit => Pack::BestFit,
        PackArg::KeepFolders => Pack::KeepFolders,
    };
    splan::check_options(&o)?;
    not_inside_inputs(&a.output, &a.paths)?;
    let cwd = std::env::current_dir().context("reading the working folder")?;
    let resolved = splan::resolve_inputs(&cwd, &a.paths)?;
    let files = splan::walk_tree(&resolved.paths, &resolved.names, false)?;
    splan::check_links_inside(&files, &resolved.base)?;
    if !a.include_carload_outputs {
        refuse_carload_outputs(&files)?;
    }
    let walked = start.elapsed();
    let base = Some(carload::shipment::file::path_to_name(&resolved.base));
    let inputs = resolved.input_names();
    let file = carload::output::AtomicFile::create(&a.output, a.force)?;
    let (header, batches) = {
        let mut w = BufWriter::with_capacity(1 << 20, file.file());
        splan::plan_to(&files, &o, inputs, base, &mut w).with_context(|| a.output.display().to_string())?
    };
    file.commit()?;
    if !a.quiet {
        print!("{}", plan_summary(&header, &batches, &a.output, a.all, walked, start.elapsed()));
    }
    Ok(())
}

/// The shipment file must not land inside an input folder: the next plan would ship it.
pub fn not_inside_inputs(output: &Path, inputs: &[PathBuf]) -> Result<()> {
    let Ok(out) = std::path::absolute(output) else { return Ok(()) };
    let out = out.parent().and_then(|p| p.canonicalize().ok()).map(|p| p.join(out.file_name().unwrap_or_default()));
    let Some(out) = out else { return Ok(()) };
    for input in inputs {
        if let Ok(dir) = input.canonicalize() {
            if dir.is_dir() && out.starts_with(&dir) {
                bail!(
                    "{}: the shipment file would lie inside the input folder {} and be shipped by the next plan; write it elsewhere",
                    output.display(),
                    input.display()
                );
            }
        }
    }
    Ok(())
}

/// Build outputs (`X.car` beside `X.car.manifest`) inside the inputs would ship carload's own
/// CARs: refused unless asked for.
fn refuse_carload_outputs(files: &splan::WalkedFiles) -> Result<()> {
    let names: std::collections::HashSet<PathBuf> = (0..files.len())
        .map(|i| files.path(i))
        .filter(|p| p.extension().is_some_and(|e| e == "car" || e == "manifest"))
        .collect();
    // `X.car.manifest` beside `X.car`.
    let found = names.iter().find(|p| {
        let car = p.with_extension("");
        p.extension().is_some_and(|e| e == "manifest")
            && car.extension().is_some_and(|e| e == "car")
            && names.contains(&car)
    });
    if let Some(f) = found {
        bail!(
            "{}: a carload output (with {}) lies inside the inputs and would be shipped; move the output folder out of the inputs, or pass --include-carload-outputs",
            f.with_extension("").display(),
            f.display()
        );
    }
    Ok(())
}

fn plan_summary(
    h: &Header,
    batches: &[splan::PlannedBatch],
    path: &Path,
    all: bool,
    walked: Duration,
    total: Duration,
) -> String {
    use std::fmt::Write as _;
    let st = splan::stats_of(&batches.iter().map(|b| (b.car_size_bound, b.piece_size)).collect::<Vec<_>>());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Planned {} files ({} bytes, {}) into {} batches for {} pieces ({}) in {:.2} s (walk {:.2} s)",
        h.files,
        h.bytes,
        ibytes(h.bytes),
        h.batches,
        ibytes(h.piece_size),
        h.profile.describe(),
        total.as_secs_f64(),
        walked.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "{:<8} {:>8} {:>16} {:>14} {:>8} {:>14}",
        "BATCH", "FILES", "CAR BYTES (max)", "PIECE", "FILL", "PADDING"
    );
    let n = batches.len();
    for (i, b) in batches.iter().enumerate() {
        if !all && n > 25 && i == 20 {
            let _ = writeln!(out, "… {} more batches …", n - 25);
        }
        if !all && n > 25 && (20..n - 5).contains(&i) {
            continue;
        }
        let parts = b.parts;
        let _ = writeln!(
            out,
            "{:<8} {:>8} {:>16} {:>14} {:>7.3}% {:>14}{}",
            b.id,
            b.files,
            b.car_size_bound,
            ibytes(b.piece_size),
            carload::shipment::file::fill(b.car_size_bound, b.piece_size) * 100.0,
            ibytes(carload::shipment::file::padding(b.car_size_bound, b.piece_size)),
            if parts > 0 { format!("  ({parts} file parts)") } else { String::new() }
        );
    }
    let _ = writeln!(
        out,
        "Total: {} batches, {} piece bytes ({}), {} CAR bytes at most, {} padding ({:.3}%); mean fill of all but the last {:.3}% (lowest {:.3}%)",
        st.batches,
        st.piece_bytes,
        ibytes(st.piece_bytes),
        st.car_bytes,
        ibytes(st.padding),
        st.padding as f64 * 100.0 / carload::commp::unpadded_piece_size(st.piece_bytes.max(128)) as f64,
        st.mean_fill_but_last * 100.0,
        st.min_fill_but_last.min(1.0) * 100.0
    );
    if let Some(last) = batches.last() {
        if padded_car(last.car_size_bound) < h.min_piece_size {
            let _ = writeln!(
                out,
                "Note: batch {} holds {} of CAR, below the minimum piece size {}; its piece is padded to {}.",
                last.id,
                ibytes(last.car_size_bound),
                ibytes(h.min_piece_size),
                ibytes(last.piece_size)
            );
        }
    }
    let _ = writeln!(out, "Shipment written to {}", path.display());
    out
}

fn padded_car(car: u64) -> u64 {
    carload::commp::padded_piece_size(car)
}

/// This machine's host name (the kernel's, else `/etc/hostname`, else `$HOSTNAME`).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Which batches of `s` the selection flags pick.
fn select(ids: &[&str], a: &BuildArgs) -> Result<Vec<usize>> {
    let explicit = !a.batches.is_empty() || a.batch_index.is_some() || a.shard.is_some();
    if ids.is_empty() && explicit {
        bail!("the shipment has no batches: --batch, --batch-index and --shard select none");
    }
    for id in &a.batches {
        if !ids.contains(&id.as_str()) {
            bail!("no batch {id:?} in the shipment (IDs run from {} to {})", ids[0], ids[ids.len() - 1]);
        }
    }
    if let Some(i) = a.batch_index {
        if i >= ids.len() {
            bail!("--batch-index {i} is out of range: the shipment has {} batches (0..{})", ids.len(), ids.len());
        }
    }
    Ok((0..ids.len())
        .filter(|&i| a.batches.is_empty() || a.batches.iter().any(|id| id == ids[i]))
        .filter(|&i| a.batch_index.is_none_or(|k| k == i))
        .filter(|&i| a.shard.is_none_or(|(k, n)| i % n == k))
        .collect())
}

/// How one batch's build ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Built now, in this time.
    Built(BatchResult, Duration),
    /// Already built (a result for it is in the output folder).
    Skipped,
    /// Another builder holds its lock (the holder's lock line).
    Busy(String),
    /// Failed, with the reason.
    Failed(String),
    /// Cancelled through the observer; temporary files removed, lock released.
    Cancelled,
}

/// Options of one batch build, shared by `carload build` and the workstation.
#[derive(Debug, Clone)]
pub struct BuildOpts {
    /// Output folder.
    pub out: PathBuf,
    /// Folder of the temporary spool (default: the output folder).
    pub tmpdir: Option<PathBuf>,
    /// Folder relative source names resolve against (default: the shipment's base).
    pub source_root: Option<PathBuf>,
    /// Recompute the commP of a built batch before skipping it.
    pub verify: bool,
    /// Seconds after which a lock not refreshed is taken over.
    pub stale_after: u64,
    /// Seconds between lock refreshes.
    pub heartbeat: u64,
}

impl From<&BuildArgs> for BuildOpts {
    fn from(a: &BuildArgs) -> Self {
        BuildOpts {
            out: a.out.clone(),
            tmpdir: a.tmpdir.clone(),
            source_root: a.source_root.clone(),
            verify: a.verify,
            stale_after: a.stale_after,
            heartbeat: a.heartbeat,
        }
    }
}

/// This builder's identity in lock files: host name, pid, boot ID and PID namespace.
pub fn owner() -> Owner {
    Owner::this_process(&host_name())
}

/// Removes temporary outputs of batches nobody holds a lock on (left by a killed builder).
fn remove_orphans(dir: &Path, ids: &[&str]) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with('.') && name.ends_with(".partial")) {
            continue;
        }
        let id = name[1..].split('.').next().unwrap_or("");
        // Anything at the lock path (a symlink included, never followed) counts as a lock.
        if ids.contains(&id) && std::fs::symlink_metadata(lock::lock_path(dir, id)).is_err() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A build's progress as its events report it, shared with the heartbeat thread (which writes
/// it into the lock for `carload status` and other workstations).
#[derive(Default)]
struct Shared {
    bytes: AtomicU64,
    files: AtomicU64,
    car: AtomicU64,
    /// The phase as its index in [`PHASES`].
    phase: AtomicU8,
}

const PHASES: [Phase; 3] = [Phase::Checking, Phase::Hashing, Phase::Writing];

impl Shared {
    fn phase(&self) -> Phase {
        PHASES[(self.phase.load(Ordering::Relaxed) as usize).min(PHASES.len() - 1)]
    }
}

/// Forwards events to the caller's observer, counting progress into [`Shared`].
struct Counting<'a> {
    inner: &'a mut dyn Observer,
    shared: &'a Shared,
}

impl Observer for Counting<'_> {
    fn event(&mut self, e: Event) {
        let s = self.shared;
        match &e {
            Event::Phase(p) => s.phase.store(PHASES.iter().position(|q| q == p).unwrap_or(0) as u8, Ordering::Relaxed),
            Event::BytesRead(n) => _ = s.bytes.fetch_add(*n, Ordering::Relaxed),
            Event::FilesDone(n) => _ = s.files.fetch_add(*n, Ordering::Relaxed),
            // CAR bytes of the writing phase (large files' internal nodes are counted while
            // hashing too, into a recording).
            Event::CarBytes(n) if s.phase() == Phase::Writing => _ = s.car.fetch_add(*n, Ordering::Relaxed),
            _ => {}
        }
        self.inner.event(e)
    }

    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}

/// Builds batch `b` of the shipment with `header` into `o.out` under its lock, as `carload
/// build` does for each batch: skip it if built, claim the lock (or report the holder), keep the
/// lock fresh while building with the build's progress in it, register temporaries for signal
/// cleanup, release the lock. The workstation calls this too, with an observer that reports
/// progress and can cancel.
pub fn build_one(header: &Header, b: &Batch, o: &BuildOpts, owner: &Owner, observer: &mut dyn Observer) -> Outcome {
    // A lock whose builder is provably dead (this host, boot and PID namespace, process gone;
    // or this host rebooted since) is taken at once, any other when its heartbeat is stale.
    let rule = lock::Rule::new(owner, Duration::from_secs(o.stale_after));
    let mut notice = |line: String| observer.event(Event::Notice(format!("{}: {line}", b.id)));
    match sbuild::find_result(&o.out, header, b) {
        Found::Built(r) => match o.verify.then(|| verify(&o.out, &r, header.min_piece_size)) {
            None | Some(Ok(true)) => {
                // Built, but its builder may have died before releasing the lock.
                let _ = lock::remove_abandoned(&o.out, &b.id, SystemTime::now(), &rule);
                return Outcome::Skipped;
            }
            Some(Ok(false)) => notice("commP of the CAR does not match its result; rebuilding".into()),
            Some(Err(e)) => notice(format!("{e}; rebuilding")),
        },
        Found::Other(reason) | Found::Corrupt(reason) => notice(format!("{reason}; rebuilding")),
        Found::Unreadable(reason) => return Outcome::Failed(format!("{reason}; not rebuilding over it")),
        Found::Missing => {}
    }
    // Registered before the claim, so a signal arriving while it is made still removes it.
    let path = lock::lock_path(&o.out, &b.id);
    let _ = super::signals::OWNER.set(owner.clone());
    PENDING_LOCKS.lock().unwrap().push((path.clone(), None));
    let unregister = || PENDING_LOCKS.lock().unwrap().retain(|p| !(p.0 == path && p.1.is_none()));
    let (lk, took_over) = match lock::claim(&o.out, &b.id, &rule, SystemTime::now()) {
        Ok(Claim::Claimed { lock, took_over }) => (lock, took_over),
        Ok(Claim::Busy { holder, age }) => {
            unregister();
            return Outcome::Busy(format!("{holder} (refreshed {} s ago)", age.as_secs()));
        }
        Err(e) => {
            unregister();
            return Outcome::Failed(format!("claiming the lock: {e}"));
        }
    };
    {
        let mut locks = PENDING_LOCKS.lock().unwrap();
        if let Some(p) = locks.iter_mut().find(|p| p.0 == path && p.1.is_none()) {
            p.1 = Some(lk.ident());
        }
    }
    // Someone may have finished it between our check and the claim.
    let outcome = if matches!(sbuild::find_result(&o.out, header, b), Found::Built(_)) && !o.verify {
        Outcome::Skipped
    } else {
        if took_over {
            let _ = remove_partials(&o.out, &b.id);
        }
        let lost = AtomicBool::new(false);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let start = Instant::now();
        let shared = Shared::default();
        let progress = |shared: &Shared| lock::Progress {
            phase: shared.phase(),
            bytes_done: shared.bytes.load(Ordering::Relaxed),
            bytes_total: b.bytes(),
            files_done: shared.files.load(Ordering::Relaxed),
            files_total: b.files.len() as u64,
            car_bytes: shared.car.load(Ordering::Relaxed),
            car_bound: b.car_size_bound,
            elapsed_ms: start.elapsed().as_millis() as u64,
        };
        // The totals at once, so `carload status` shows them before the first beat.
        let _ = lk.heartbeat_with(&progress(&shared));
        let res = std::thread::scope(|sc| {
            let (lost, lk, shared) = (&lost, &lk, &shared);
            sc.spawn(move || {
                let every = Duration::from_secs(o.heartbeat.max(1));
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    if !matches!(lk.heartbeat_with(&progress(shared)), Ok(true)) {
                        lost.store(true, Ordering::SeqCst);
                    }
                }
            });
            let mut observer = Counting { inner: observer, shared };
            let observer: &mut dyn Observer = &mut observer;
            let spool = o.tmpdir.as_deref().unwrap_or(&o.out);
            let places = Places { dir: &o.out, spool_dir: spool, source_root: o.source_root.as_deref() };
            let mut temps = Vec::new();
            let r = sbuild::build_batch(
                header,
                b,
                places,
                observer,
                &|| !lost.load(Ordering::SeqCst) && lk.held(),
                &mut |p, create| {
                    // Registered and created under one lock: a signal's cleanup (which keeps the
                    // list locked until the process exits) sees every temporary that exists.
                    let mut pending = PENDING.lock().unwrap();
                    pending.push(p.to_path_buf());
                    temps.push(p.to_path_buf());
                    // A name taken by someone else is not ours to remove.
                    create().inspect_err(|_| _ = pending.pop())
                },
            );
            drop(tx);
            PENDING.lock().unwrap().retain(|p| !temps.contains(p));
            r
        });
        match res {
            Ok(r) => Outcome::Built(r, start.elapsed()),
            Err(sbuild::BuildError::Batch(carload::batch::BatchError::Import(
                carload::importer::ImportError::Cancelled,
            ))) => Outcome::Cancelled,
            Err(e) => {
                // Recorded for `status` and other workstations (removed when it is built).
                let _ = carload::shipment::judge::record_failure(&o.out, header, b, &owner.host, &e.to_string());
                Outcome::Failed(e.to_string())
            }
        }
    };
    let id = lk.ident();
    let _ = lk.release();
    PENDING_LOCKS.lock().unwrap().retain(|p| p.1 != Some(id));
    outcome
}

/// The observer of `carload build`: notices go to stderr, one line each.
fn print_notices(e: Event) {
    if let Event::Notice(line) = e {
        eprintln!("{line}");
    }
}

/// Runs `carload build`.
pub fn build(a: BuildArgs) -> Result<()> {
    if a.stale_after < a.heartbeat.saturating_mul(2) {
        bail!("--stale-after ({} s) must be at least twice --heartbeat ({} s)", a.stale_after, a.heartbeat);
    }
    // Each batch is read when it is built.
    let (file, index) = open_index(&a.shipment)?;
    if !a.out.is_dir() {
        std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    }
    let ids: Vec<&str> = index.batches.iter().map(|b| b.id.as_str()).collect();
    let chosen = select(&ids, &a)?;
    remove_orphans(&a.out, &ids);
    let owner = owner();
    let opts = BuildOpts::from(&a);
    let next = AtomicUsize::new(0);
    let counts = Mutex::new([0usize; 4]);
    let out = Mutex::new(io::stdout());
    std::thread::scope(|sc| {
        for _ in 0..a.jobs.max(1).min(chosen.len().max(1)) {
            sc.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = chosen.get(k) else { break };
                let at = &index.batches[i];
                let outcome = match carload::shipment::read_batch_at(&file, &index.header, at) {
                    Ok(b) => build_one(&index.header, &b, &opts, &owner, &mut print_notices),
                    Err(e) => Outcome::Failed(format!("{}: {e}", a.shipment.display())),
                };
                let b = at;
                let (slot, line) = match &outcome {
                    Outcome::Built(r, t) => (
                        0,
                        format!(
                            "{} built: {} files, CAR {} bytes (bound {}), piece {} {} ({:.2} s)",
                            b.id,
                            b.files,
                            r.car_size,
                            b.car_size_bound,
                            r.piece_cid,
                            r.piece_size,
                            t.as_secs_f64()
                        ),
                    ),
                    Outcome::Skipped => (1, format!("{} skipped: already built", b.id)),
                    Outcome::Busy(h) => (2, format!("{} busy: claimed by {h}", b.id)),
                    Outcome::Failed(e) => (3, format!("{} FAILED: {e}", b.id)),
                    Outcome::Cancelled => (3, format!("{} FAILED: cancelled", b.id)),
                };
                counts.lock().unwrap()[slot] += 1;
                if slot == 3 {
                    eprintln!("{line}");
                } else if !a.quiet {
                    let mut o = out.lock().unwrap();
                    let _ = writeln!(o, "{line}");
                    let _ = o.flush();
                }
            });
        }
    });
    let [built, skipped, busy, failed] = *counts.lock().unwrap();
    if !a.quiet {
        eprintln!(
            "{} batches selected: {built} built, {skipped} already built, {busy} busy (other builders), {failed} failed",
            chosen.len()
        );
    }
    if failed > 0 {
        bail!("{failed} of {} batches failed", chosen.len());
    }
    let explicit = !a.batches.is_empty() || a.batch_index.is_some() || a.shard.is_some();
    if busy > 0 && explicit {
        // A job-array task whose batch another builder holds has not built it: not a success.
        return Err(crate::cli::Exit(
            BUSY_EXIT,
            format!(
                "{busy} of {} selected batches are held by other builders and were not built by this run; run it again later",
                chosen.len()
            ),
        )
        .into());
    }
    Ok(())
}

/// Exit status of `carload build` when selected batches were held by other builders (EX_TEMPFAIL).
pub const BUSY_EXIT: u8 = 75;

/// A built batch in an export: its result and how the export names its CAR.
pub type ExportRow = (BatchResult, String);

/// The built batches of `s` as export rows (result, CAR path), and the IDs of batches not
/// built. A result that does not belong to its batch (built from an earlier plan) is an error.
pub fn export_rows(s: &Shipment, out: Option<&Path>) -> Result<(Vec<ExportRow>, Vec<String>)> {
    rows_of(&s.header, out, s.batches.iter().map(Ok), true)
}

/// The export rows of `batches` (results from their records or from `out`) and the IDs of those
/// not built; the rows keep their results' file lists only when `keep_files`.
fn rows_of<B: std::borrow::Borrow<Batch>>(
    header: &Header,
    out: Option<&Path>,
    batches: impl Iterator<Item = Result<B>>,
    keep_files: bool,
) -> Result<(Vec<ExportRow>, Vec<String>)> {
    let mut rows: Vec<(BatchResult, String)> = Vec::new();
    let mut missing = Vec::new();
    for b in batches {
        let b = b?;
        let b = b.borrow();
        match export_row(header, b, out)? {
            Some((mut r, car)) => {
                if !keep_files {
                    r.files = Vec::new();
                }
                rows.push((r, car));
            }
            None => missing.push(b.id.clone()),
        }
    }
    if out.is_none() && rows.is_empty() {
        bail!("no results in the shipment file: pass --out DIR, the folder `carload build` wrote");
    }
    Ok((rows, missing))
}

/// Batch `b`'s export row: its result from the shipment record or from `out`, if built. A result
/// that does not belong to the batch is an error.
fn export_row(header: &Header, b: &Batch, out: Option<&Path>) -> Result<Option<ExportRow>> {
    let r = match (&b.result, out) {
        (Some(r), _) if sbuild::result_belongs(header, b, r) => {
            if let Err(why) = carload::shipment::judge::check_fields(r, Some(header.min_piece_size)) {
                bail!("batch {}: the shipment's result is inconsistent: {why}", b.id);
            }
            Some(r.clone())
        }
        (Some(_), _) => bail!("batch {}: the shipment's result was built from other contents; rebuild it", b.id),
        (None, None) => None,
        (None, Some(d)) => match sbuild::find_result(d, header, b) {
            Found::Built(r) => Some(r),
            Found::Missing => None,
            Found::Other(reason) | Found::Corrupt(reason) => {
                bail!("batch {}: {reason}; rebuild it with `carload build`", b.id)
            }
            Found::Unreadable(reason) => bail!("batch {}: {reason}", b.id),
        },
    };
    Ok(r.map(|r| (r, car_path(out, &b.id))))
}

/// [`export_rows`] for the deal formats, reading the shipment one batch at a time through its
/// index (a shipment of millions of files is never held whole; rows keep no file lists).
fn export_rows_indexed(path: &Path, out: Option<&Path>) -> Result<(Header, Vec<ExportRow>, Vec<String>)> {
    let (file, index) = open_index(path)?;
    let batches = index.batches.iter().map(|at| {
        carload::shipment::read_batch_at(&file, &index.header, at).with_context(|| path.display().to_string())
    });
    let (rows, missing) = rows_of(&index.header, out, batches, false)?;
    Ok((index.header, rows, missing))
}

/// How an export names batch `id`'s CAR: in `out` when given, else `<id>.car`.
pub fn car_path(out: Option<&Path>, id: &str) -> String {
    match out {
        Some(d) => outputs(d, id).car.display().to_string(),
        None => format!("{id}.car"),
    }
}

/// The text of an export of `rows` (the shipment `s` itself for `--format shipment`).
pub fn render_export(
    s: &Shipment,
    rows: &[(BatchResult, String)],
    missing: &[String],
    format: FormatArg,
    params: &export::DealParams,
) -> Result<String> {
    let format = match format {
        FormatArg::Lotus => Some(export::Format::Lotus),
        FormatArg::Boost => Some(export::Format::Boost),
        FormatArg::Curio => Some(export::Format::Curio),
        FormatArg::Csv => Some(export::Format::Csv),
        FormatArg::Shipment => None,
    };
    Ok(match format {
        Some(format) => {
            let refs: Vec<(&BatchResult, String)> = rows.iter().map(|(r, c)| (r, c.clone())).collect();
            export::export(format, params, &refs)
        }
        None => {
            let mut s = s.clone();
            for (b, r) in s.batches.iter_mut().filter(|b| !missing.contains(&b.id)).zip(rows) {
                b.result = Some(r.0.clone());
            }
            let mut buf = Vec::new();
            write_shipment(&mut buf, &s)?;
            String::from_utf8(buf).expect("JSON is UTF-8")
        }
    })
}

/// The text `carload export` writes for shipment `s` (results from the records or from `out`),
/// and the IDs of the batches left out because they are not built.
pub fn export_text(
    s: &Shipment,
    out: Option<&Path>,
    format: FormatArg,
    params: &export::DealParams,
) -> Result<(String, Vec<String>)> {
    let (mut rows, missing) = export_rows(s, out)?;
    if let (FormatArg::Shipment, Some(dir)) = (format, out) {
        // Results in the folder are read without their file lists; the shipment embeds them.
        for (r, _) in rows.iter_mut().filter(|(r, _)| r.files.is_empty()) {
            r.files = sbuild::read_result_files(dir, &r.batch).with_context(|| format!("batch {}", r.batch))?;
        }
    }
    Ok((render_export(s, &rows, &missing, format, params)?, missing))
}

/// Runs `carload export`.
pub fn export_cmd(a: ExportArgs) -> Result<()> {
    let (text, missing, total) = if a.format == FormatArg::Shipment {
        let s = read_shipment_file(&a.shipment)?;
        let (text, missing) = export_text(&s, a.out.as_deref(), a.format, &a.deal.params())?;
        (text, missing, s.batches.len())
    } else {
        let (header, rows, missing) = export_rows_indexed(&a.shipment, a.out.as_deref())?;
        // The deal formats render from the rows alone.
        let total = rows.len() + missing.len();
        let empty = Shipment { header, batches: Vec::new() };
        (render_export(&empty, &rows, &missing, a.format, &a.deal.params())?, missing, total)
    };
    match &a.output {
        Some(p) => {
            let f = carload::output::AtomicFile::create(p, a.force)?;
            f.file().write_all(text.as_bytes()).with_context(|| p.display().to_string())?;
            f.commit()?;
        }
        None => {
            let mut o = io::stdout().lock();
            o.write_all(text.as_bytes())?;
            o.flush()?;
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(10).map(String::as_str).collect();
        eprintln!(
            "warning: {} of {} batches not built yet, left out: {}{}",
            missing.len(),
            total,
            shown.join(", "),
            if missing.len() > 10 { ", …" } else { "" }
        );
    }
    Ok(())
}
