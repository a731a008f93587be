//! `carload segment plan` and `carload segment build`: the built batches of a shipment packed
//! into FRC-0058 deals (`deals.jsonl`), and the deals written, resumably and under locks.

use super::progress::Progress;
use crate::edge::signals;
use anyhow::{bail, Context, Result};
use carload::event::{Event, Observer};
use carload::human::{ibytes, plural};
use carload::output::AtomicFile;
use carload::segment::deals::{self, Deal, DealsPlan, Header, Judged, Piece};
use carload::segment::{self, layout};
use carload::shipment::drive::shipment_id;
use carload::shipment::drives::DriveSet;
use carload::shipment::judge::judge;
use carload::shipment::lock::{self, Claim, Rule};
use carload::shipment::runner::Cleanup;
use carload::shipment::status::{State, Watched};
use clap::Args;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// `carload segment plan`.
#[derive(Args, Debug)]
pub struct DealPlanArgs {
    /// Shipment file written by `carload plan`.
    pub shipment: PathBuf,
    /// CAR folder of `carload build`, where the batches' CARs and results are.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Padded size of each deal: a power of two from 512 B to 64 GiB (e.g. 32GiB).
    #[arg(long, value_name = "SIZE", value_parser = crate::edge::options::size_arg)]
    pub deal_size: u64,
    /// The deals file to write (JSON Lines; default: beside the shipment, `s.jsonl` →
    /// `s.deals.jsonl`, where the workstation looks for it).
    #[arg(short = 'o', long = "output", value_name = "DEALS")]
    pub output: Option<PathBuf>,
    /// Replace the deals file if it exists.
    #[arg(long, short)]
    pub force: bool,
    /// Pack the built batches and leave the others out (without it, a batch not built, failed
    /// or corrupt is an error and nothing is written).
    #[arg(long)]
    pub built_only: bool,
    /// Print every deal (default: the first 20 and the last 5 of a long plan).
    #[arg(long)]
    pub all: bool,
    /// Print only errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `carload segment build`.
#[derive(Args, Debug)]
pub struct DealBuildArgs {
    /// Deals file written by `segment plan`.
    pub deals: PathBuf,
    /// Folder the deals are written to: <deal>.deal and its result <deal>.deal.json.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// The CAR folder (default: the one the deals file records, as `segment plan --out` gave it).
    #[arg(long, value_name = "DIR")]
    pub cars: Option<PathBuf>,
    /// Build only these deals (IDs such as deal-0003).
    #[arg(long = "deal", value_name = "ID", num_args = 1..)]
    pub deals_chosen: Vec<String>,
    /// Build only deal number I (0-based), e.g. $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX.
    #[arg(long, value_name = "I")]
    pub deal_index: Option<usize>,
    /// Build only the deals with index ≡ K (mod N), K in 0..N.
    #[arg(long, value_name = "K/N", value_parser = super::shipment::parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Take over a deal lock not refreshed for this many seconds (its builder died).
    #[arg(long, value_name = "SECS", default_value_t = lock::DEFAULT_STALE_AFTER, value_parser = clap::value_parser!(u64).range(2..=864_000))]
    pub stale_after: u64,
    /// Seconds between lock refreshes while building.
    #[arg(long, value_name = "SECS", default_value_t = lock::DEFAULT_HEARTBEAT, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub heartbeat: u64,
    /// Write the deals through the page cache instead of with direct I/O (the default where the
    /// file system allows it: less CPU, and the deals do not crowd the cache).
    #[arg(long)]
    pub buffered: bool,
    /// Print only failures.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `carload segment status`.
#[derive(Args, Debug)]
pub struct DealStatusArgs {
    /// Deals file written by `segment plan`.
    pub deals: PathBuf,
    /// Folder the deals are written to (as `segment build --out`).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// One JSON object: totals and every deal's state.
    #[arg(long)]
    pub json: bool,
    /// Seconds after which a lock not refreshed counts as stale (as `segment build --stale-after`).
    #[arg(long, value_name = "SECS", default_value_t = lock::DEFAULT_STALE_AFTER, value_parser = clap::value_parser!(u64).range(2..=864_000))]
    pub stale_after: u64,
}

/// Why a batch is not packed, from its judged state (`None`: built).
fn not_packed(state: &State) -> Option<String> {
    match state {
        State::Built { .. } => None,
        State::NotBuilt => Some("not built".into()),
        State::Building { host, pid, .. } => Some(format!("being built by {host} (pid {pid})")),
        State::StaleLock { host, pid, .. } => Some(format!("not built (a stale lock of {host}, pid {pid})")),
        State::Failed { host, reason } => Some(format!("failed on {host}: {reason}")),
        State::Corrupt { reason } => Some(format!("corrupt: {reason}")),
        State::Problem { reason } => Some(reason.clone()),
    }
}

/// Runs `carload segment plan`.
pub fn plan(a: DealPlanArgs) -> Result<()> {
    let output = a.output.clone().unwrap_or_else(|| deals::default_path(&a.shipment));
    carload::output::check_target(&output, a.force)?;
    layout::check_deal_size(a.deal_size)?;
    let Some(cars) = a.out.to_str().filter(|s| !s.is_empty() && !s.chars().any(char::is_control)) else {
        bail!("--out {}: the CAR folder must be a UTF-8 path without control characters", a.out.display());
    };
    if DriveSet::is_set(std::slice::from_ref(&a.out)) {
        bail!("{}: a folder of a drive set: deals from a shipment spread over drives are not supported", cars);
    }
    if !a.out.is_dir() {
        bail!("{cars}: no such folder (the CAR folder of `carload build`)");
    }
    let (file, index) = super::shipment::open_index(&a.shipment)?;
    let header = &index.header;
    let read =
        |at| carload::shipment::read_batch_at(&file, header, at).with_context(|| a.shipment.display().to_string());
    let watched =
        index.batches.iter().map(|at| read(at).map(|b| Watched::of(header, &b))).collect::<Result<Vec<_>>>()?;
    let owner = crate::edge::host::owner();
    let rule = Rule::new(&owner, Duration::from_secs(lock::DEFAULT_STALE_AFTER));
    let now = SystemTime::now();
    let mut pieces = Vec::new();
    let mut left = Vec::new();
    for (w, at) in watched.iter().zip(&index.batches) {
        let st = judge(&a.out, header, w, &|| read(at).ok(), now, &rule);
        match (not_packed(&st.state), st.result) {
            (None, Some(r)) => {
                let p = carload::segment::parse_piece_cid(&r.piece_cid).map_err(anyhow::Error::msg)?;
                pieces.push(Piece { batch: r.batch, root: p.root, size: r.piece_size, car_size: r.car_size });
            }
            (why, _) => left.push(format!("{} ({})", w.id, why.unwrap_or_else(|| "no result".into()))),
        }
    }
    for l in left.iter().take(20) {
        eprintln!("not packed: {l}");
    }
    if left.len() > 20 {
        eprintln!("not packed: … {} more", left.len() - 20);
    }
    if !left.is_empty() && !a.built_only {
        bail!(
            "{}: {} of {} batches are not built in {cars}; nothing written (--built-only packs the built ones)",
            a.shipment.display(),
            left.len(),
            watched.len()
        );
    }
    if pieces.is_empty() {
        bail!("{}: no built batch in {cars} to pack", a.shipment.display());
    }
    let planned = deals::plan(&pieces, a.deal_size)?;
    let plan = DealsPlan {
        header: Header {
            format: deals::FORMAT.into(),
            version: deals::VERSION,
            shipment: shipment_id(header, &watched),
            deal_size: a.deal_size,
            cars: cars.to_string(),
            deals: planned.len() as u64,
        },
        deals: planned,
    };
    let out = AtomicFile::create(&output, a.force)?;
    let mut w = BufWriter::new(out.file());
    deals::write_plan(&mut w, &plan).and_then(|_| w.flush()).with_context(|| output.display().to_string())?;
    drop(w);
    out.commit()?;
    if !a.quiet {
        print!("{}", summary(&plan, pieces.len(), &output, a.all));
    }
    Ok(())
}

/// What `segment plan` prints: a line per deal (fill, segments, piece CID) and the totals.
fn summary(plan: &DealsPlan, batches: usize, path: &Path, all: bool) -> String {
    let d = plan.header.deal_size;
    let n = plan.deals.len();
    let mut s = String::new();
    for (i, deal) in plan.deals.iter().enumerate() {
        if !all && n > 25 && i == 20 {
            s.push_str(&format!("… {} more deals (--all shows them)\n", n - 25));
        }
        if !all && n > 25 && (20..n - 5).contains(&i) {
            continue;
        }
        s.push_str(&format!(
            "{}  {}  {:>5} {}  {} of pieces  fill {:.1}%\n",
            deal.id,
            deal.piece.cid_v1(),
            deal.segments.len(),
            plural(deal.segments.len() as u64, "segment", "segments"),
            ibytes(deal.used()),
            100.0 * deal.fill()
        ));
    }
    let used: u64 = plan.deals.iter().map(Deal::used).sum();
    s.push_str(&format!(
        "Planned {n} {} of {} ({} index entries each) for {batches} {}: {} of pieces, fill {:.1}% on average\n",
        plural(n as u64, "deal", "deals"),
        ibytes(d),
        layout::max_entries(d),
        plural(batches as u64, "batch", "batches"),
        ibytes(used),
        100.0 * used as f64 / (n as u64 * d) as f64
    ));
    s.push_str(&format!("Deals written to {}\n", path.display()));
    s
}

/// Reads and checks a deals file (one-line errors name the file, line and field).
pub fn read_deals(path: &Path) -> Result<DealsPlan> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| name.clone())?;
    deals::parse_plan(&bytes).with_context(|| name.clone())
}

/// How building one deal ended.
enum Outcome {
    Built(Duration),
    Skipped,
    Busy(String),
    Failed(String),
}

/// Runs `carload segment build`.
pub fn build(a: DealBuildArgs) -> Result<()> {
    if a.stale_after < a.heartbeat.saturating_mul(2) {
        bail!("--stale-after ({} s) must be at least twice --heartbeat ({} s)", a.stale_after, a.heartbeat);
    }
    let plan = read_deals(&a.deals)?;
    let cars = a.cars.clone().unwrap_or_else(|| PathBuf::from(&plan.header.cars));
    if !cars.is_dir() {
        bail!("{}: no such CAR folder (give it with --cars)", cars.display());
    }
    let ids: Vec<&str> = plan.deals.iter().map(|d| d.id.as_str()).collect();
    let chosen = select(&ids, &a)?;
    if !a.out.is_dir() {
        std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    }
    let owner = crate::edge::host::owner();
    let mut counts = [0usize; 4];
    for &i in &chosen {
        let d = &plan.deals[i];
        let outcome = build_deal(d, &cars, &a, &owner);
        let (slot, line) = match &outcome {
            Outcome::Built(t) => (
                0,
                format!(
                    "{} built: {} {}, piece {} {} ({:.2} s)",
                    d.id,
                    d.segments.len(),
                    plural(d.segments.len() as u64, "segment", "segments"),
                    d.piece.cid_v1(),
                    d.piece.padded_size,
                    t.as_secs_f64()
                ),
            ),
            Outcome::Skipped => (1, format!("{} skipped: already built", d.id)),
            Outcome::Busy(h) => (2, format!("{} busy: claimed by {h}", d.id)),
            Outcome::Failed(e) => (3, format!("{} FAILED: {e}", d.id)),
        };
        counts[slot] += 1;
        if slot == 3 {
            eprintln!("{line}");
        } else if !a.quiet {
            println!("{line}");
        }
    }
    let [built, skipped, busy, failed] = counts;
    if !a.quiet {
        println!(
            "{built} built, {skipped} already built, {busy} busy, {failed} failed of {} {}",
            chosen.len(),
            plural(chosen.len() as u64, "deal", "deals")
        );
    }
    if failed > 0 {
        bail!("{failed} of {} deals failed", chosen.len());
    }
    let explicit = !a.deals_chosen.is_empty() || a.deal_index.is_some() || a.shard.is_some();
    if busy > 0 && explicit {
        return Err(super::Exit(
            super::shipment::BUSY_EXIT,
            format!(
                "{busy} of {} selected deals are held by other builders and were not built by this run; run it again later",
                chosen.len()
            ),
        )
        .into());
    }
    Ok(())
}

/// Which deals the selection flags pick.
fn select(ids: &[&str], a: &DealBuildArgs) -> Result<Vec<usize>> {
    for id in &a.deals_chosen {
        if !ids.contains(&id.as_str()) {
            bail!("no deal {id:?} in {} (IDs run from deal-0001 to {})", a.deals.display(), deals::deal_id(ids.len()));
        }
    }
    if let Some(i) = a.deal_index {
        if i >= ids.len() {
            bail!("--deal-index {i} is out of range: the plan has {} deals (0..{})", ids.len(), ids.len());
        }
    }
    Ok((0..ids.len())
        .filter(|&i| a.deals_chosen.is_empty() || a.deals_chosen.iter().any(|id| id == ids[i]))
        .filter(|&i| a.deal_index.is_none_or(|k| k == i))
        .filter(|&i| a.shard.is_none_or(|(k, n)| i % n == k))
        .collect())
}

/// Builds deal `d` into `a.out` under its lock: skip it if built, claim the lock (or report the
/// holder), heartbeat while writing, write the deal and then its sidecar atomically, release.
fn build_deal(d: &Deal, cars: &Path, a: &DealBuildArgs, owner: &lock::Owner) -> Outcome {
    let rule = Rule::new(owner, Duration::from_secs(a.stale_after));
    let dir = &a.out;
    match deals::judge_deal(dir, d) {
        Ok(Judged::Built) => {
            if let Ok(true) = lock::remove_abandoned(dir, &d.id, SystemTime::now(), &rule) {
                let _ = deals::remove_partials(dir, &d.id);
            }
            return Outcome::Skipped;
        }
        Ok(Judged::Other(why)) => eprintln!("{}: {why}; rebuilding", d.id),
        Ok(Judged::Missing) => {}
        Err(e) => return Outcome::Failed(format!("reading {}: {e}; not rebuilding over it", dir.display())),
    }
    let path = lock::lock_path(dir, &d.id);
    signals::CLEANUP.lock_claiming(&path, owner);
    let lk = match lock::claim(dir, &d.id, &rule, SystemTime::now()) {
        Ok(Claim::Claimed { lock, .. }) => lock,
        Ok(Claim::Busy { holder, age }) => {
            signals::CLEANUP.lock_claimed(&path, None);
            return Outcome::Busy(format!("{holder} (refreshed {} s ago)", age.as_secs()));
        }
        Err(e) => {
            signals::CLEANUP.lock_claimed(&path, None);
            return Outcome::Failed(format!("claiming the lock: {e}"));
        }
    };
    signals::CLEANUP.lock_claimed(&path, Some(lk.ident()));
    let outcome = if matches!(deals::judge_deal(dir, d), Ok(Judged::Built)) {
        Outcome::Skipped // another builder finished it between our look and the claim
    } else {
        let _ = deals::remove_partials(dir, &d.id);
        let start = Instant::now();
        let (stop, beats) = std::sync::mpsc::channel::<()>();
        let lost = AtomicBool::new(false);
        let counted = Counted::default();
        let total = d.car_bytes();
        // The lock reports how far the build is, as a batch's does (`segment status` shows it).
        let progress = |c: &Counted| {
            let bytes = c.bytes.load(Ordering::Relaxed).min(total);
            lock::Progress {
                phase: carload::event::Phase::Writing,
                bytes_done: bytes,
                bytes_total: total,
                // The segments before the one in progress are done.
                files_done: c.started.load(Ordering::Relaxed).saturating_sub(1).min(d.segments.len() as u64),
                files_total: d.segments.len() as u64,
                car_bytes: bytes,
                car_bound: total,
                elapsed_ms: start.elapsed().as_millis() as u64,
            }
        };
        let _ = lk.heartbeat_with(&progress(&counted));
        let res = std::thread::scope(|s| {
            let (lk, lost, counted) = (&lk, &lost, &counted);
            s.spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    beats.recv_timeout(Duration::from_secs(a.heartbeat))
                {
                    if let Ok(false) = lk.heartbeat_with(&progress(counted)) {
                        lost.store(true, Ordering::SeqCst);
                    }
                }
            });
            let res = write_outputs(d, cars, dir, &|| !lost.load(Ordering::SeqCst) && lk.held(), counted, a);
            drop(stop);
            res
        });
        match res {
            Ok(()) => Outcome::Built(start.elapsed()),
            Err(e) => Outcome::Failed(format!("{e:#}")),
        }
    };
    let ident = lk.ident();
    let _ = lk.release();
    signals::CLEANUP.lock_released(ident);
    outcome
}

/// What a deal build has done so far, for its lock's progress record.
#[derive(Default)]
struct Counted {
    /// CAR bytes re-hashed and copied.
    bytes: AtomicU64,
    /// Segments started.
    started: AtomicU64,
}

/// Counts a deal build's events into [`Counted`] and passes them on.
struct Counting<'a> {
    inner: &'a mut dyn Observer,
    counted: &'a Counted,
}

impl Observer for Counting<'_> {
    fn event(&mut self, e: Event) {
        match &e {
            Event::BytesRead(n) => _ = self.counted.bytes.fetch_add(*n, Ordering::Relaxed),
            Event::FileStarted { .. } => _ = self.counted.started.fetch_add(1, Ordering::Relaxed),
            _ => {}
        }
        self.inner.event(e)
    }

    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}

/// Where and how a deal is written (`--buffered`).
pub(super) fn deal_out<'a>(file: &'a std::fs::File, path: &'a Path, buffered: bool) -> segment::DealOut<'a> {
    let mode = if buffered { segment::WriteMode::Buffered } else { segment::WriteMode::Direct };
    segment::DealOut::new(file, path).with_mode(mode)
}

/// Writes `<id>.deal` (re-hashing every CAR) and then its sidecar, each atomically; `held` is
/// asked before each commit.
fn write_outputs(
    d: &Deal,
    cars: &Path,
    dir: &Path,
    held: &dyn Fn() -> bool,
    counted: &Counted,
    a: &DealBuildArgs,
) -> Result<()> {
    let target = deals::deal_path(dir, &d.id);
    let file = AtomicFile::create_registered(&target, true, &mut signals::create_registered)?;
    let temp = file.temp_path().to_path_buf();
    let total = d.car_bytes();
    let mut progress = Progress::new(total, !a.quiet);
    let mut observer = Counting { inner: &mut progress, counted };
    let res = deals::write_deal(d, cars, deal_out(file.file(), &target, a.buffered), &mut observer)
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            if !held() {
                bail!("lost the deal's lock to another builder; not committing");
            }
            file.commit()?;
            Ok(())
        });
    progress.finish();
    signals::forget(std::slice::from_ref(&temp));
    res?;
    let sidecar = deals::result_path(dir, &d.id);
    let file = AtomicFile::create_registered(&sidecar, true, &mut signals::create_registered)?;
    let temp = file.temp_path().to_path_buf();
    let res = file.file().write_all(&deals::result_bytes(d)).map_err(anyhow::Error::from).and_then(|()| {
        if !held() {
            bail!("lost the deal's lock to another builder; not committing");
        }
        Ok(file.commit()?)
    });
    signals::forget(std::slice::from_ref(&temp));
    res.with_context(|| sidecar.display().to_string())
}

/// `carload export --deals`: the deals of a deals file checked against the shipment (its ID)
/// and its built batches (`rows`), rendered in `format`; deals not built in `dir` and built
/// batches in no deal are warned about on stderr.
pub fn export_text(
    shipment: &Path,
    header: &carload::shipment::Header,
    rows: &[carload::shipment::export::ExportRow],
    deals_file: &Path,
    dir: &Path,
    format: carload::shipment::export::Format,
    params: &carload::shipment::export::DealParams,
) -> Result<String> {
    use carload::shipment::export;
    let plan = read_deals(deals_file)?;
    let (file, index) = super::shipment::open_index(shipment)?;
    let watched = index
        .batches
        .iter()
        .map(|at| carload::shipment::read_batch_at(&file, header, at).map(|b| Watched::of(header, &b)))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| shipment.display().to_string())?;
    let id = shipment_id(header, &watched);
    let (deals, missing) =
        export::deal_exports(&plan, &id, rows, dir).with_context(|| deals_file.display().to_string())?;
    let text = export::deals_text(format, params, &deals).context("--deals: no deals in the shipment format")?;
    if !missing.is_empty() {
        eprintln!(
            "warning: {} of {} deals not built in {} yet, left out: {}",
            missing.len(),
            plan.deals.len(),
            dir.display(),
            missing.join(", ")
        );
    }
    let in_deals: std::collections::HashSet<&str> =
        plan.deals.iter().flat_map(|d| d.segments.iter().map(|s| s.batch.as_str())).collect();
    let outside: Vec<&str> = rows.iter().map(|(r, _)| r.batch.as_str()).filter(|b| !in_deals.contains(b)).collect();
    if !outside.is_empty() {
        eprintln!(
            "warning: {} built batches are in no deal of {} (plan the deals again to include them): {}",
            outside.len(),
            deals_file.display(),
            outside.join(", ")
        );
    }
    Ok(text)
}

/// Runs `carload segment status`: each deal's state in the output folder, as `segment build`
/// judges it (a built deal's sidecar is the plan's and its file has the deal's length; its bytes
/// are checked by `segment verify`).
pub fn status(a: DealStatusArgs) -> Result<()> {
    use carload::segment::status::{deal_status, DealState};
    let plan = read_deals(&a.deals)?;
    if !a.out.is_dir() {
        bail!("{}: no such folder (the deals folder of `segment build --out`)", a.out.display());
    }
    let owner = crate::edge::host::owner();
    let rule = Rule::new(&owner, Duration::from_secs(a.stale_after));
    let now = SystemTime::now();
    let list: Vec<_> = plan.deals.iter().map(|d| deal_status(&a.out, d, now, &rule)).collect();
    let count = |f: fn(&DealState) -> bool| list.iter().filter(|s| f(&s.state)).count();
    let built = count(|s| matches!(s, DealState::Built));
    let building = count(|s| matches!(s, DealState::Building { .. }));
    let stale = count(|s| matches!(s, DealState::StaleLock { .. }));
    let not_built = count(|s| matches!(s, DealState::NotBuilt));
    let other = count(|s| matches!(s, DealState::Other { .. }));
    let problems = count(|s| matches!(s, DealState::Problem { .. }));
    if a.json {
        let v = serde_json::json!({
            "deals": list.len(), "built": built, "building": building, "stale_locks": stale,
            "not_built": not_built, "other": other, "problems": problems,
            "status": list.iter().zip(&plan.deals).map(|(s, d)| {
                let mut v = serde_json::to_value(s).expect("plain data");
                v["piece_cid"] = d.piece.cid_v1().to_string().into();
                v["piece_size"] = d.piece.padded_size.into();
                v["segments"] = d.segments.len().into();
                v
            }).collect::<Vec<_>>(),
        });
        println!("{v}");
    } else {
        let mut out = format!(
            "{built} of {} {} built, {building} building, {stale} with a stale lock, {not_built} not built, {other} other, {problems} unreadable ({})\n",
            list.len(),
            plural(list.len() as u64, "deal", "deals"),
            a.out.display()
        );
        for (s, d) in list.iter().zip(&plan.deals) {
            let what = match &s.state {
                DealState::Built => format!(
                    "built: {} {}, piece {} {}",
                    d.segments.len(),
                    plural(d.segments.len() as u64, "segment", "segments"),
                    d.piece.cid_v1(),
                    d.piece.padded_size
                ),
                DealState::NotBuilt => "not built".into(),
                DealState::Building { host, pid, heartbeat_age, progress } => {
                    let how_far = progress.map_or(String::new(), |p| {
                        format!(
                            ", {:.0}% ({} of {}, {} of {} segments done)",
                            100.0 * p.fraction(),
                            ibytes(p.bytes_done),
                            ibytes(p.bytes_total),
                            p.files_done,
                            p.files_total
                        )
                    });
                    format!("building on {host} (pid {pid}){how_far}, refreshed {heartbeat_age} s ago")
                }
                DealState::StaleLock { host, pid, heartbeat_age, reason } => format!(
                    "stale lock of {host} (pid {pid}, refreshed {heartbeat_age} s ago: {}); `segment build` takes it over",
                    reason.reason()
                ),
                DealState::Other { reason } => format!("{reason}; `segment build` rebuilds it"),
                DealState::Problem { reason } => format!("unreadable: {reason}"),
            };
            out.push_str(&format!("{}  {what}\n", s.id));
        }
        print!("{out}");
    }
    Ok(())
}
