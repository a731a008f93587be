//! Background work: the scan, auto-pack, dry runs, manifest reads and saves run on their own
//! threads and report back as [`Msg`]s, so the interface never waits on the disk or the CPU.
//! Every job calls the same library functions as the CLI (`walk`, `shipment::plan::pack_files`,
//! `shipment::build::check_sources`, `batch::build`, `shipment::runner::build_one`,
//! `aggregate::read_manifest_from_car`, `shipment::write_shipment`).

use super::app::{Done, DriveTarget, Effect, Hashed, Msg, Report};
use carload::event::{Cancellable, Event};
use carload::shipment::build::source_root;
use carload::shipment::runner::{build_one, BuildOpts, Outcome};
use carload::shipment::source::check_sources;
use carload::shipment::status::{BatchStatus, Watched};
use carload::shipment::{Batch, Header};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the watcher polls: the output folder, the drive set's folders (none: the output folder
/// alone), the header and records of the batches, the stale limit in seconds.
type Watching = Arc<std::sync::Mutex<Option<(PathBuf, Vec<PathBuf>, Header, Arc<Vec<Watched>>, u64, Option<PathBuf>)>>>;

/// The drive set the build slots share.
pub type Drives = Arc<std::sync::Mutex<super::drives::Session>>;

/// A build waiting for a slot.
struct Job {
    batch: Batch,
    header: Header,
    out: PathBuf,
    drive: Option<Arc<carload::shipment::drive::DriveBook>>,
    /// The drive set the batch is placed on and the build's drives (the session begun and the
    /// batch assigned when its slot starts, off the UI thread), when spread.
    drives: Option<(Drives, Arc<DriveTarget>)>,
    cancel: Arc<AtomicBool>,
}

/// Runs effects and owns their cancellation flags.
pub struct Workers {
    tx: Sender<Msg>,
    tmpdir: PathBuf,
    dry_run: Option<Arc<AtomicBool>>,
    /// Stops the scan.
    pub scan_stop: Arc<AtomicBool>,
    /// Builds run at once.
    pub jobs: usize,
    /// Lets the scan list carload's own outputs as files (`--include-carload-outputs`); else
    /// they are marked not shippable with the reason.
    pub ship_outputs: bool,
    queue: std::collections::VecDeque<Job>,
    running: Vec<(String, Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
    watch: Watching,
    watching: bool,
    /// The drive set of builds spread over drives (`--out` repeated).
    pub drives: Drives,
}

impl Workers {
    /// Workers reporting on `tx`; dry runs spool in `tmpdir`.
    pub fn new(tx: Sender<Msg>, tmpdir: PathBuf) -> Self {
        Workers {
            tx,
            tmpdir,
            dry_run: None,
            scan_stop: Arc::new(AtomicBool::new(false)),
            jobs: 1,
            ship_outputs: false,
            queue: Default::default(),
            running: Vec::new(),
            watch: Default::default(),
            watching: false,
            drives: Default::default(),
        }
    }

    /// Starts the scan of `roots`.
    pub fn scan(&self, roots: Vec<PathBuf>, profile: carload::profile::Profile) {
        let tx = self.tx.clone();
        let stop = self.scan_stop.clone();
        let outputs = !self.ship_outputs;
        std::thread::spawn(move || {
            let start = Instant::now();
            let cost = move |s: u64| carload::shipment::overhead::EntryCost::of_file(s, &profile).car_bytes;
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
            let o = carload::walk::WalkOptions { threads, cost: &cost, stop: &stop, outputs, readable: true };
            let out = std::sync::Mutex::new(tx.clone());
            carload::walk::walk(&roots, &o, &|l| {
                let _ = out.lock().unwrap().send(Msg::Listing(l));
            });
            let _ = tx.send(Msg::ScanDone(start.elapsed().as_secs_f64()));
        });
    }

    /// Starts `e` (except [`Effect::Quit`], which the loop handles).
    pub fn run(&mut self, e: Effect) {
        let tx = self.tx.clone();
        match e {
            Effect::DryRun { batch, header } => {
                if let Some(old) = self.dry_run.take() {
                    old.store(true, Ordering::SeqCst);
                }
                let cancel = Arc::new(AtomicBool::new(false));
                self.dry_run = Some(cancel.clone());
                let tmpdir = self.tmpdir.clone();
                std::thread::spawn(move || perform(Effect::DryRun { batch, header }, &tx, &tmpdir, &cancel));
            }
            Effect::CancelDryRun => {
                if let Some(c) = self.dry_run.take() {
                    c.store(true, Ordering::SeqCst);
                }
            }
            e @ (Effect::Pack { .. }
            | Effect::ReadManifest { .. }
            | Effect::Save { .. }
            | Effect::Export { .. }
            | Effect::Restat { .. }) => {
                let tmpdir = self.tmpdir.clone();
                std::thread::spawn(move || perform(e, &tx, &tmpdir, &AtomicBool::new(false)));
            }
            Effect::Build { batch, header, out, drive, drives } => {
                let cancel = Arc::new(AtomicBool::new(false));
                // The session is begun by the build slot: the set's lock may be held for as long
                // as an assignment waits for the drives' folder locks, never by the UI thread.
                let drives = drives.filter(|_| drive.is_some()).map(|target| (self.drives.clone(), target));
                self.queue.push_back(Job { batch, header, out, drive, drives, cancel });
                self.pump();
            }
            Effect::AddDrive(dir) => {
                // Off the UI thread, for the same reason; it takes effect at the next assignment.
                let drives = self.drives.clone();
                std::thread::spawn(move || drives.lock().unwrap_or_else(|e| e.into_inner()).add(dir));
            }
            Effect::CancelBuild(id) => {
                if let Some(k) = self.queue.iter().position(|j| j.batch.id == id) {
                    self.queue.remove(k);
                    let _ = tx.send(Msg::Build { id, at: now(), report: Report::Finished(Done::Cancelled) });
                } else if let Some((_, c, _)) = self.running.iter().find(|r| r.0 == id) {
                    c.store(true, Ordering::SeqCst);
                }
            }
            Effect::Watch { out, drives, header, batches, stale_after, deals } => {
                *self.watch.lock().unwrap() = Some((out, drives, header, batches, stale_after, deals));
                if !self.watching {
                    self.watching = true;
                    let watch = self.watch.clone();
                    std::thread::spawn(move || watch_loop(&watch, &tx));
                }
            }
            Effect::Remember { outs, shipment, deal } => super::config::remember(outs, shipment, deal),
            Effect::Copy(_) | Effect::Quit => {}
        }
    }
}

/// Performs a one-shot effect on this thread and sends its result (and a dry run's progress) to
/// `tx`: the runtime runs it on a worker thread, the tests call it directly — the same code.
/// Effects the runtime manages itself (builds, the watch, cancellations, remembering, copying,
/// quitting) are not one-shot and are ignored here.
pub fn perform(e: Effect, tx: &Sender<Msg>, tmpdir: &Path, cancel: &AtomicBool) {
    let msg = match e {
        Effect::Pack { files, sizes, folders, options, generation, open } => {
            let bins: Vec<carload::shipment::pack::Bin> = open.iter().map(|(_, b)| b.clone()).collect();
            let packed =
                carload::shipment::plan::top_up_files(&bins, &sizes, &folders, &options).map_err(|e| e.to_string());
            let open = open.into_iter().map(|(id, b)| (id, b.items.len())).collect();
            Msg::Packed { files, bins: packed, generation, open }
        }
        Effect::DryRun { batch, header } => {
            let r = dry_run(&batch, &header, tmpdir, cancel, tx);
            if cancel.load(Ordering::SeqCst) {
                return;
            }
            Msg::DryRunDone(r)
        }
        Effect::ReadManifest { car, batch } => Msg::ManifestRead(read_manifest(&car, &batch)),
        Effect::Save { path, shipment, overwrite, include_carload_outputs } => {
            if !overwrite && std::fs::symlink_metadata(&path).is_ok() {
                Msg::SaveExists(path)
            } else {
                Msg::Saved(save(&path, &shipment, include_carload_outputs).map(|_| path).map_err(|e| format!("{e:#}")))
            }
        }
        Effect::Export { path, text, overwrite } => Msg::Exported(if !overwrite && path.exists() {
            Err(None)
        } else {
            write_text(&path, &text).map(|_| path).map_err(|e| Some(format!("{e:#}")))
        }),
        Effect::Restat { id, files } => Msg::Restated { id, now: restat(files) },
        Effect::Build { .. }
        | Effect::CancelBuild(_)
        | Effect::AddDrive(_)
        | Effect::CancelDryRun
        | Effect::Watch { .. }
        | Effect::Remember { .. }
        | Effect::Copy(_)
        | Effect::Quit => return,
    };
    let _ = tx.send(msg);
}

impl Workers {
    /// Frees the slot of build `id` (its last report arrived; its thread is ending) and starts
    /// queued builds.
    pub fn finished(&mut self, id: &str) {
        self.running.retain(|r| r.0 != id);
        self.pump();
    }

    /// Starts queued builds while slots are free.
    pub fn pump(&mut self) {
        self.running.retain(|r| !r.2.is_finished());
        while self.running.len() < self.jobs.max(1) {
            let Some(job) = self.queue.pop_front() else { break };
            let tx = self.tx.clone();
            let id = job.batch.id.clone();
            let cancel = job.cancel.clone();
            let handle = std::thread::spawn(move || build(job, &tx));
            self.running.push((id, cancel, handle));
        }
    }

    /// Builds queued or running.
    pub fn busy(&self) -> usize {
        self.queue.len() + self.running.len()
    }

    /// Cancels every build and waits (up to `limit`) for them to clean up.
    pub fn cancel_builds(&mut self, limit: Duration) {
        self.queue.clear();
        for r in &self.running {
            r.1.store(true, Ordering::SeqCst);
        }
        let start = Instant::now();
        while self.running.iter().any(|r| !r.2.is_finished()) && start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.running.clear();
    }

    /// Stops everything running (on quit).
    pub fn stop_all(&mut self) {
        self.scan_stop.store(true, Ordering::SeqCst);
        if let Some(c) = self.dry_run.take() {
            c.store(true, Ordering::SeqCst);
        }
    }
}

/// Each file's size, modification time, status-change time and inode now (following symlinks, as `plan` does), or `None`
/// when it is gone or no longer a regular file.
pub fn restat(files: Vec<(u32, PathBuf)>) -> Vec<(u32, Option<crate::tui::tree::FileStat>)> {
    files
        .into_iter()
        .map(|(e, p)| {
            let st = std::fs::metadata(&p)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| (m.len(), carload::shipment::plan::mtime_ns(&m), carload::shipment::file::Ident::of(&m)));
            (e, st)
        })
        .collect()
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Builds `batch` into `out` on this thread, reporting to `tx` (as a build slot does).
#[cfg(test)]
pub fn build_blocking(
    batch: Batch,
    header: Header,
    out: PathBuf,
    drive: Option<Arc<carload::shipment::drive::DriveBook>>,
    cancel: Arc<AtomicBool>,
    tx: &Sender<Msg>,
) {
    build(Job { batch, header, out, drive, drives: None, cancel }, tx)
}

/// [`build_blocking`] on the drive set `drives` (as a build slot of a spread build does).
#[cfg(test)]
pub fn build_blocking_on(
    batch: Batch,
    header: Header,
    out: PathBuf,
    drive: Option<Arc<carload::shipment::drive::DriveBook>>,
    drives: Drives,
    target: Arc<DriveTarget>,
    tx: &Sender<Msg>,
) {
    let cancel = Arc::new(AtomicBool::new(false));
    build(Job { batch, header, out, drive, drives: Some((drives, target)), cancel }, tx)
}

/// Builds one batch with the library's `build_one` (as `carload build` does), reporting progress
/// at most every 100 ms.
fn build(mut job: Job, tx: &Sender<Msg>) {
    let id = job.batch.id.clone();
    let send = |report: Report| {
        let _ = tx.send(Msg::Build { id: id.clone(), at: now(), report });
    };
    if let (Some((drives, target)), Some(book)) = (&job.drives, &job.drive) {
        // Its drive, assigned now if it has none (as `carload build` does before each batch), in
        // the build session on these drives (the set is opened once for it).
        let mut notices = Vec::new();
        let placed = {
            let mut session = drives.lock().unwrap_or_else(|e| e.into_inner());
            session.begin(&target.dirs, &target.header, book);
            session.assign(&id, &super::drives::new_set_id(), &mut notices)
        };
        for n in notices {
            send(Report::Notice(n));
        }
        match placed {
            Ok(dir) => job.out = dir,
            Err(super::drives::Unplaced::Waits(why)) => return send(Report::Finished(Done::Waits(why))),
            Err(super::drives::Unplaced::Failed(why)) => return send(Report::Finished(Done::Failed(why))),
        }
    }
    if let Err(e) = std::fs::create_dir_all(&job.out) {
        send(Report::Finished(Done::Failed(format!("creating {}: {e}", job.out.display()))));
        return;
    }
    send(Report::Started);
    let (mut bytes, mut files, mut car) = (0u64, 0u64, 0u64);
    let mut writing = false;
    let mut last = Instant::now();
    let mut obs = Cancellable {
        on_event: |e| {
            match e {
                Event::Phase(p) => {
                    writing = p == carload::event::Phase::Writing;
                    send(Report::Progress { bytes, files, car });
                    send(Report::Phase(p));
                    return;
                }
                Event::BytesRead(n) => bytes += n,
                Event::FilesDone(n) => files += n,
                Event::CarBytes(n) if writing => car += n,
                Event::Notice(line) => {
                    send(Report::Notice(line));
                    return;
                }
                _ => return,
            }
            if last.elapsed() >= Duration::from_millis(100) {
                last = Instant::now();
                send(Report::Progress { bytes, files, car });
            }
        },
        cancel: &job.cancel,
    };
    let mut opts = BuildOpts::new(job.out.clone());
    opts.drive = job.drive.clone();
    let owner = crate::edge::host::owner();
    let outcome = build_one(&job.header, &job.batch, &opts, &crate::edge::host::hooks(&owner), &mut obs);
    let done = match outcome {
        Outcome::Built(r, t) => Done::Built(r, t.as_secs_f64()),
        Outcome::Skipped => Done::Already(carload::shipment::build::built_result(&job.out, &job.batch.id)),
        Outcome::Busy(h) => Done::Busy(h),
        Outcome::Failed(e) => Done::Failed(e),
        Outcome::Cancelled => Done::Cancelled,
    };
    send(Report::Finished(done));
}

/// Polls the output folder (or each drive) every 3 s for the watched batches' locks and results.
fn watch_loop(watch: &Watching, tx: &Sender<Msg>) {
    loop {
        let Some((out, drives, header, batches, stale_after, deals)) = watch.lock().unwrap().clone() else { return };
        if let Some(path) = &deals {
            if tx.send(Msg::Deals(super::deals::read(path, &header, &batches))).is_err() {
                return;
            }
        }
        let seen = if drives.is_empty() {
            poll(&out, &header, &batches, stale_after)
        } else {
            let (seen, d) = poll_drives(&drives, &header, &batches, stale_after);
            if tx.send(Msg::Drives(d)).is_err() {
                return;
            }
            seen
        };
        if tx.send(Msg::Watched { at: now(), seen }).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// What `out` shows for `batches` now: `carload status`'s reading (results that belong, locks
/// with their age and reported progress).
pub fn poll(out: &Path, header: &Header, batches: &[Watched], stale_after: u64) -> Vec<BatchStatus> {
    let now = std::time::SystemTime::now();
    // Lock holders judged as `build` judges them.
    let me = crate::edge::host::owner();
    let rule = carload::shipment::lock::Rule::new(&me, Duration::from_secs(stale_after));
    // The workstation's batches are all planned with fingerprints: no file list is needed.
    carload::shipment::status::status_of(out, header, batches, &|_| None, now, &rule)
}

/// What the drive folders `dirs` show for `batches` now: each batch judged on its drive
/// (`status_at`, as `carload status --out D1 --out D2` reads them; the set read, nothing
/// written), and the drives' figures.
pub fn poll_drives(
    dirs: &[PathBuf],
    header: &Header,
    batches: &[Watched],
    stale_after: u64,
) -> (Vec<BatchStatus>, super::drives::DrivesSeen) {
    use carload::shipment::drives::{DriveSet, Outs};
    let (present, missing): (Vec<PathBuf>, Vec<PathBuf>) = dirs.iter().cloned().partition(|d| d.is_dir());
    let now = std::time::SystemTime::now();
    let me = crate::edge::host::owner();
    let rule = carload::shipment::lock::Rule::new(&me, Duration::from_secs(stale_after));
    match DriveSet::read(&present) {
        Ok(set) => {
            let seen = carload::shipment::status::status_at(Outs::Drives(&set), header, batches, &|_| None, now, &rule);
            let d = super::drives::DrivesSeen::of(&set, batches, &seen, missing);
            (seen, d)
        }
        Err(e) => {
            // Nothing can be judged: every batch as not seen, the reason on the drives pane.
            let d = super::drives::DrivesSeen { error: Some(e.to_string()), missing, ..Default::default() };
            (Vec::new(), d)
        }
    }
}

fn write_text(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let file = carload::output::AtomicFile::create(path, true)?;
    file.file().write_all(text.as_bytes()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    file.commit()?;
    Ok(())
}

/// Hashes `batch` exactly as `carload build` does, writing the CAR nowhere.
pub fn dry_run(
    batch: &Batch,
    header: &Header,
    tmpdir: &Path,
    cancel: &AtomicBool,
    tx: &Sender<Msg>,
) -> Result<Hashed, String> {
    let files = check_sources(batch, &source_root(header, None)).map_err(|e| e.to_string())?;
    let mut done = 0u64;
    let mut last = Instant::now();
    let mut obs = Cancellable {
        on_event: |e| {
            if let Event::BytesRead(n) = e {
                done += n;
                if last.elapsed() >= Duration::from_millis(100) {
                    last = Instant::now();
                    let _ = tx.send(Msg::DryRunProgress(done));
                }
            }
        },
        cancel,
    };
    let built = carload::batch::build(&files, &header.profile, tmpdir, &mut std::io::sink(), true, &mut obs)
        .map_err(|e| e.to_string())?;
    let piece = built.piece.expect("commP requested").pad_to(header.min_piece_size);
    Ok(Hashed {
        payload_cid: built.root.to_string(),
        car_size: built.car_size,
        piece_size: piece.padded_size,
        piece_cid: piece.cid_v1().to_string(),
        piece_cid_v2: piece.cid_v2().to_string(),
        entries: batch.files.iter().map(|f| f.name.clone()).zip(built.roots.iter().map(|c| c.to_string())).collect(),
        manifest: lines(&built.manifest.to_vec().map_err(|e| format!("reading the manifest spool: {e}"))?),
    })
}

fn lines(manifest: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(manifest).lines().map(str::to_string).collect()
}

/// Reads a built batch's manifest from its CAR (as `carload manifest` does) and its result.
pub fn read_manifest(car: &Path, batch: &Batch) -> Result<Hashed, String> {
    let f = std::fs::File::open(car).map_err(|e| format!("{}: {e}", car.display()))?;
    let (root, bytes) =
        carload::aggregate::read_manifest_from_car(&f).map_err(|e| format!("{}: {e}", car.display()))?;
    let dir = car.parent().unwrap_or(Path::new("."));
    let result = carload::shipment::build::built_result(dir, &batch.id);
    Ok(Hashed {
        payload_cid: root.to_string(),
        car_size: std::fs::metadata(car).map(|m| m.len()).unwrap_or(0),
        piece_size: result.as_ref().map_or(0, |r| r.piece_size),
        piece_cid: result.as_ref().map_or(String::new(), |r| r.piece_cid.clone()),
        piece_cid_v2: result.as_ref().map_or(String::new(), |r| r.piece_cid_v2.clone()),
        entries: carload::shipment::build::read_result_files(dir, &batch.id)
            .unwrap_or_default()
            .into_iter()
            .map(|f| (f.name, f.cid))
            .collect(),
        manifest: lines(&bytes),
    })
}

/// Writes the shipment file atomically (the same writer and the same refusals as `carload
/// plan`: not inside an input folder, no carload outputs unless `include_carload_outputs`),
/// keeping the version it replaces as `FILE.1` (older ones as `FILE.2` … `FILE.5`).
pub fn save(path: &Path, s: &carload::shipment::Shipment, include_carload_outputs: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    use carload::shipment::plan::{not_inside_inputs, refuse_carload_outputs};
    use std::io::Write;
    let inputs: Vec<PathBuf> = s.header.inputs.iter().map(PathBuf::from).collect();
    not_inside_inputs(path, &inputs)?;
    if !include_carload_outputs {
        let names = s.batches.iter().flat_map(|b| &b.files).map(|f| carload::shipment::file::name_to_path(&f.name));
        refuse_carload_outputs(names)?;
    }
    let file = carload::output::AtomicFile::create(path, true)?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file.file());
        carload::shipment::write_shipment(&mut w, s).with_context(|| path.display().to_string())?;
        w.flush().with_context(|| path.display().to_string())?;
    }
    file.commit_keeping(SHIPMENT_BACKUPS)?;
    Ok(())
}

/// How many previous versions of the shipment file a save keeps beside it
/// (`ship.jsonl.1` the newest … `ship.jsonl.5`; `output::rotate_backups`).
pub const SHIPMENT_BACKUPS: usize = 5;
