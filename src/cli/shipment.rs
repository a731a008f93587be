//! `carload plan`, `carload build` and `carload export`: shipments of many batches.

use crate::edge::config::{load_config, no_out};
use crate::edge::options::PlanOptionArgs;
use anyhow::{bail, Context, Result};
use carload::event::Event;
use carload::human::{ibytes, plural};
use carload::shipment::drive::{self, DriveBook};
use carload::shipment::drives::{DriveSet, Outs, PlaceError, Placement, Reserve, SetOptions};
use carload::shipment::export::{self, ExportError, ExportRow, Format};
use carload::shipment::lock;
use carload::shipment::plan::{self as splan};
use carload::shipment::runner::{build_one, remove_orphans, BuildOpts, Outcome};
use carload::shipment::status::Watched;
use carload::shipment::{read_shipment, Header, Shipment};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::Args;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `carload plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Files and folders to ship.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Shipment file to write (JSON Lines).
    #[arg(short = 'o', long = "output", value_name = "SHIPMENT")]
    pub output: PathBuf,
    /// Planning and DAG options.
    #[command(flatten)]
    pub options: PlanOptionArgs,
    /// Overwrite the shipment file if it exists.
    #[arg(long, short)]
    pub force: bool,
    /// Print every batch (default: the first 20 and the last 5 of a long plan).
    #[arg(long)]
    pub all: bool,
    /// Print only errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Ship carload's own outputs found in the inputs (a build's CARs, manifests, results,
    /// failure records, locks and temporaries; shipment backups).
    #[arg(long)]
    pub include_carload_outputs: bool,
}

/// `carload build`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Shipment file written by `carload plan`.
    pub shipment: PathBuf,
    /// CAR folder (shared by all builders): <batch>.car, <batch>.car.manifest, <batch>.json, and
    /// the drive manifest carload-drive.json with README.txt (default: the config's `out`).
    /// Repeat it, one per mounted drive in order, to spread the CARs over drives: each batch goes
    /// to the first drive with room, recorded on every drive (carload-drives.jsonl).
    #[arg(long, value_name = "DIR")]
    pub out: Vec<PathBuf>,
    /// With several --out drives: keep this much of each drive free, a percentage of its size or
    /// a size (e.g. 1%, 50GiB).
    #[arg(long, value_name = "PCT|SIZE", default_value = "1%", value_parser = Reserve::parse)]
    pub reserve: Reserve,
    /// With several --out drives: use at most SIZE bytes of each (what its folder holds counts),
    /// e.g. for drives shared with other data.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub drive_capacity: Option<u64>,
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

fn parse_size_arg(s: &str) -> Result<u64, String> {
    carload::shipment::size::parse_size(s).map_err(|e| e.to_string())
}

/// The output folders of `--out` (or the config's `out`) and, when they form a drive set
/// (several folders, or one holding a drive log), the set as it stands (folders that do not
/// exist are left out with a warning).
pub struct OutFolders {
    /// The folders.
    pub dirs: Vec<PathBuf>,
    /// The drive set.
    pub set: Option<DriveSet>,
}

impl OutFolders {
    /// Reads `flag`'s folders (else the config's) for `cmd`; `None` when there are none.
    pub fn read(flag: &[PathBuf]) -> Result<Option<Self>> {
        let dirs: Vec<PathBuf> =
            if flag.is_empty() { load_config()?.out_or(None).into_iter().collect() } else { flag.to_vec() };
        if dirs.is_empty() {
            return Ok(None);
        }
        if !DriveSet::is_set(&dirs) {
            return Ok(Some(OutFolders { dirs, set: None }));
        }
        let present: Vec<PathBuf> = dirs
            .iter()
            .filter(|d| {
                let ok = d.is_dir();
                if !ok {
                    eprintln!(
                        "warning: {}: no such folder (drive not mounted?); its batches are not looked at",
                        d.display()
                    );
                }
                ok
            })
            .cloned()
            .collect();
        let set = DriveSet::read(&present)?;
        Ok(Some(OutFolders { dirs: present, set: Some(set) }))
    }

    /// Where each batch's outputs are.
    pub fn outs(&self) -> Outs<'_> {
        match &self.set {
            Some(s) => Outs::Drives(s),
            None => Outs::Folder(&self.dirs[0]),
        }
    }
}

/// `--shard K/N`.
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let err = || format!("invalid shard {s:?}: use K/N with 0 <= K < N, e.g. 0/4");
    let (k, n) = s.split_once('/').ok_or_else(err)?;
    let (k, n): (usize, usize) = (k.trim().parse().map_err(|_| err())?, n.trim().parse().map_err(|_| err())?);
    if n == 0 || k >= n {
        return Err(err());
    }
    Ok((k, n))
}

/// `carload export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Shipment file.
    pub shipment: PathBuf,
    /// CAR folder of `carload build`, where the <batch>.json results are (default: the config's
    /// `out`; none: the results recorded in the shipment file). Repeat it for the drives of a
    /// build spread over drives: each batch's CAR is on its drive.
    #[arg(long, value_name = "DIR")]
    pub out: Vec<PathBuf>,
    /// What to write.
    #[arg(long, value_parser = format_arg())]
    pub format: Format,
    /// How CAR paths are written: absolute (the commands work from any folder, as the
    /// workstation writes them) or as-given (--out as typed).
    #[arg(long, value_enum, value_name = "HOW", default_value = "absolute")]
    pub car_paths: CarPaths,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long, short)]
    pub force: bool,
    /// Deal parameters.
    #[command(flatten)]
    pub deal: super::args::DealArgs,
    /// A deals file of `segment plan`: export its deals (data segments, FRC-0058) instead of
    /// the batches' own, each with the batches it holds (lotus, boost, curio, csv).
    #[arg(long, value_name = "DEALS", requires = "deal_dir")]
    pub deals: Option<PathBuf>,
    /// With --deals: the folder `segment build -o` wrote the deals to.
    #[arg(long, value_name = "DIR", requires = "deals")]
    pub deal_dir: Option<PathBuf>,
}

/// How `carload export` writes CAR paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CarPaths {
    /// Made absolute against the working folder (not resolving links).
    Absolute,
    /// `--out` as typed.
    AsGiven,
}

/// `--format`: the library's formats by name, each with its help line.
fn format_arg() -> impl TypedValueParser<Value = Format> {
    let values = Format::ALL.map(|f| PossibleValue::new(f.name()).help(f.about()));
    PossibleValuesParser::new(values).try_map(|name| Format::from_name(&name).ok_or("unknown format"))
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
    let o = a.options.options(&load_config()?.size_defaults()?)?;
    splan::check_options(&o)?;
    splan::not_inside_inputs(&a.output, &a.paths)?;
    let cwd = std::env::current_dir().context("reading the working folder")?;
    let resolved = splan::resolve_inputs(&cwd, &a.paths)?;
    let files = splan::walk_tree(&resolved.paths, &resolved.names, false)?;
    splan::check_links_inside(&files, &resolved.base)?;
    if !a.include_carload_outputs {
        files.refuse_carload_outputs()?;
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
        "Planned {} {} ({} bytes, {}) into {} {} for {} pieces ({}) in {:.2} s (walk {:.2} s)",
        h.files,
        plural(h.files, "file", "files"),
        h.bytes,
        ibytes(h.bytes),
        h.batches,
        plural(h.batches, "batch", "batches"),
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
        "Total: {} {}, {} piece bytes ({}), {} CAR bytes at most, {} padding ({:.3}%); mean fill of all but the last {:.3}% (lowest {:.3}%)",
        st.batches,
        plural(st.batches as u64, "batch", "batches"),
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

/// The observer of `carload build`: notices go to stderr, one line each.
fn print_notices(e: Event) {
    if let Event::Notice(line) = e {
        eprintln!("{line}");
    }
}

/// A fresh drive set's ID: 32 hex digits of SHA-256 over this host, process and the time.
fn new_set_id() -> String {
    use sha2::Digest;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seed = format!("{} {} {}", crate::edge::host::host_name(), std::process::id(), now.as_nanos());
    sha2::Sha256::digest(seed.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The options of each batch build into `out`, the drive manifest regenerated from `book`.
fn build_opts(a: &BuildArgs, out: &Path, book: std::sync::Arc<DriveBook>) -> BuildOpts {
    BuildOpts {
        drive: Some(book),
        out: out.to_path_buf(),
        tmpdir: a.tmpdir.clone(),
        source_root: a.source_root.clone(),
        verify: a.verify,
        stale_after: a.stale_after,
        heartbeat: a.heartbeat,
    }
}

/// Runs `carload build`.
pub fn build(a: BuildArgs) -> Result<()> {
    if a.stale_after < a.heartbeat.saturating_mul(2) {
        bail!("--stale-after ({} s) must be at least twice --heartbeat ({} s)", a.stale_after, a.heartbeat);
    }
    let dirs: Vec<PathBuf> =
        if a.out.is_empty() { load_config()?.out_or(None).into_iter().collect() } else { a.out.clone() };
    if dirs.is_empty() {
        return Err(no_out("build"));
    }
    let spread = DriveSet::is_set(&dirs);
    // Each batch is read when it is built.
    let (file, index) = open_index(&a.shipment)?;
    let dirs: Vec<PathBuf> = if spread {
        // A drive folder is never created: a missing one is a drive not mounted.
        dirs.into_iter()
            .filter(|d| {
                let ok = d.is_dir();
                if !ok {
                    eprintln!(
                        "warning: {}: no such folder (drive not mounted?); batches assigned to it wait",
                        d.display()
                    );
                }
                ok
            })
            .collect()
    } else {
        if !dirs[0].is_dir() {
            std::fs::create_dir_all(&dirs[0]).with_context(|| format!("creating {}", dirs[0].display()))?;
        }
        dirs
    };
    if dirs.is_empty() {
        bail!("none of the --out drives is there: nothing to build on");
    }
    let ids: Vec<&str> = index.batches.iter().map(|b| b.id.as_str()).collect();
    let chosen = select(&ids, &a)?;
    for d in &dirs {
        remove_orphans(d, &ids);
    }
    let owner = crate::edge::host::owner();
    let hooks = crate::edge::host::hooks(&owner);
    // The drive manifest lists every batch judged built: the judgement needs each batch's
    // fingerprint (read once, a batch at a time; no file list is kept).
    let watched = index
        .batches
        .iter()
        .map(|at| carload::shipment::read_batch_at(&file, &index.header, at).map(|b| Watched::of(&index.header, &b)))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| a.shipment.display().to_string())?;
    let book = std::sync::Arc::new(DriveBook::new(&drive::shipment_name(&a.shipment), &index.header, watched.clone()));
    let set = if spread {
        let o = SetOptions {
            reserve: a.reserve,
            capacity: a.drive_capacity,
            spool_on_drive: a.tmpdir.is_none(),
            new_set_id: new_set_id(),
        };
        let set = DriveSet::open(&dirs, &index.header, &book, o)?;
        for w in &set.warnings {
            eprintln!("warning: {w}");
        }
        Some(Mutex::new(set))
    } else {
        None
    };
    let opts = build_opts(&a, &dirs[0], book.clone());
    let next = AtomicUsize::new(0);
    let counts = Mutex::new([0usize; 5]);
    let out = Mutex::new(io::stdout());
    std::thread::scope(|sc| {
        for _ in 0..a.jobs.max(1).min(chosen.len().max(1)) {
            sc.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = chosen.get(k) else { break };
                let at = &index.batches[i];
                // On a drive set, the batch's drive (assigned now if it has none).
                let placed = match &set {
                    None => Ok(opts.clone()),
                    Some(set) => {
                        let mut set = set.lock().unwrap_or_else(|e| e.into_inner());
                        set.assign(&watched[i], &watched).map(|dir| BuildOpts { out: dir, ..opts.clone() })
                    }
                };
                let outcome = match (placed, carload::shipment::read_batch_at(&file, &index.header, at)) {
                    (Ok(o), Ok(b)) => build_one(&index.header, &b, &o, &hooks, &mut print_notices),
                    (Err(e @ PlaceError::Absent { .. }), _) => {
                        let line = format!("{} waits: {e}", at.id);
                        counts.lock().unwrap()[4] += 1;
                        eprintln!("{line}");
                        continue;
                    }
                    (Err(e), _) => Outcome::Failed(e.to_string()),
                    (_, Err(e)) => Outcome::Failed(format!("{}: {e}", a.shipment.display())),
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
    let [built, skipped, busy, failed, waiting] = *counts.lock().unwrap();
    // Once more at the end: batches built before (or by builders without a manifest) are listed.
    match set.map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner())) {
        None => {
            if let Err(e) = drive::regenerate(&dirs[0], &index.header, &book) {
                eprintln!("warning: drive manifest not updated: {e}");
            }
        }
        Some(set) => {
            let of = set.of();
            for d in set.drives().into_iter() {
                let Some(dir) = &d.dir else { continue };
                let place = drive::Place { label: d.label.clone(), position: d.position, of };
                if let Err(e) = drive::regenerate_at(dir, &index.header, &book, Some(place)) {
                    eprintln!("warning: drive manifest not updated: {e}");
                }
            }
            if !a.quiet {
                for u in set.usage(&watched) {
                    eprintln!("{}", drive_line(&u));
                }
            }
        }
    }
    if !a.quiet {
        eprintln!(
            "{} {} selected: {built} built, {skipped} already built, {busy} busy (other builders), {failed} failed{}",
            chosen.len(),
            plural(chosen.len() as u64, "batch", "batches"),
            if waiting > 0 { format!(", {waiting} waiting for drives not given") } else { String::new() }
        );
    }
    if failed > 0 {
        bail!("{failed} of {} batches failed", chosen.len());
    }
    if waiting > 0 {
        return Err(crate::cli::Exit(
            BUSY_EXIT,
            format!(
                "{waiting} of {} selected batches belong on drives not given; mount them and run again",
                chosen.len()
            ),
        )
        .into());
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

/// One drive's line: position, label, folder, CARs assigned, free bytes and room.
pub fn drive_line(u: &carload::shipment::drives::DriveUsage) -> String {
    let place = format!("drive {} of {} \"{}\"", u.position, u.of, u.label);
    match (&u.dir, u.free, u.room) {
        (Some(dir), Some(free), Some(room)) => format!(
            "{place} {}: {} {} assigned ({} of CAR at most), {} free, room for {} more",
            dir.display(),
            u.assigned,
            plural(u.assigned as u64, "batch", "batches"),
            ibytes(u.assigned_bound),
            ibytes(free),
            ibytes(room)
        ),
        (Some(dir), ..) => format!("{place} {}: space unreadable, {} assigned", dir.display(), u.assigned),
        (None, ..) => format!("{place}: not given, {} assigned", u.assigned),
    }
}

/// Exit status of `carload build` when selected batches were held by other builders (EX_TEMPFAIL).
pub const BUSY_EXIT: u8 = 75;

/// The export rows for the deal formats, reading the shipment one batch at a time through its
/// index (a shipment of millions of files is never held whole; rows keep no file lists).
fn export_rows_indexed(path: &Path, out: Option<Outs<'_>>) -> Result<(Header, Vec<ExportRow>, Vec<String>)> {
    let (file, index) = open_index(path)?;
    let batches = index.batches.iter().map(|at| {
        carload::shipment::read_batch_at(&file, &index.header, at)
            .map_err(|source| ExportError::Read { path: path.to_path_buf(), source })
    });
    let (rows, missing) = export::rows_of(&index.header, out, batches, false)?;
    Ok((index.header, rows, missing))
}

/// Runs `carload export`.
pub fn export_cmd(mut a: ExportArgs) -> Result<()> {
    let cfg = load_config()?;
    if a.car_paths == CarPaths::Absolute {
        a.out = a.out.into_iter().map(|p| std::path::absolute(&p).unwrap_or(p)).collect();
    }
    let folders = OutFolders::read(&a.out)?;
    let folders = folders.map(|mut f| {
        if a.car_paths == CarPaths::Absolute {
            f.dirs = f.dirs.into_iter().map(|p| std::path::absolute(&p).unwrap_or(p)).collect();
        }
        f
    });
    let outs = folders.as_ref().map(OutFolders::outs);
    if a.deal.provider.is_none() {
        a.deal.provider = cfg.provider.clone();
    }
    if let (Some(deals), Some(dir)) = (&a.deals, &a.deal_dir) {
        if a.format == Format::Shipment {
            bail!("--deals exports deal commands or CSV (lotus, boost, curio, csv), not the shipment");
        }
        let (header, rows, _) = export_rows_indexed(&a.shipment, outs)?;
        let dir = if a.car_paths == CarPaths::Absolute {
            std::path::absolute(dir).unwrap_or(dir.clone())
        } else {
            dir.clone()
        };
        let text = super::deals::export_text(&a.shipment, &header, &rows, deals, &dir, a.format, &a.deal.params())?;
        return write_export(&a, &text);
    }
    let (text, missing, total) = if a.format == Format::Shipment {
        let s = read_shipment_file(&a.shipment)?;
        let (text, missing) = export::export_text(&s, outs, a.format, &a.deal.params())?;
        (text, missing, s.batches.len())
    } else {
        let (header, rows, missing) = export_rows_indexed(&a.shipment, outs)?;
        // The deal formats render from the rows alone.
        let total = rows.len() + missing.len();
        let empty = Shipment { header, batches: Vec::new() };
        (export::render(&empty, &rows, &missing, a.format, &a.deal.params())?, missing, total)
    };
    if let Some(set) = folders.as_ref().and_then(|f| f.set.as_ref()) {
        let away: Vec<String> = missing
            .iter()
            .filter_map(|id| match set.placement(id) {
                Placement::Refused(e) => Some(format!("{id} ({e})")),
                _ => None,
            })
            .collect();
        if !away.is_empty() {
            eprintln!("warning: {} batches are on drives not given, left out: {}", away.len(), away.join(", "));
        }
    }
    write_export(&a, &text)?;
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

/// Writes an export to `-o` (atomically) or standard output.
fn write_export(a: &ExportArgs, text: &str) -> Result<()> {
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
    Ok(())
}
