//! Background work: the scan, auto-pack, dry runs, manifest reads and saves run on their own
//! threads and report back as [`Msg`]s, so the interface never waits on the disk or the CPU.
//! Every job calls the same library functions as the CLI (`walk`, `shipment::plan::pack_files`,
//! `shipment::build::check_sources`, `batch::build`, `aggregate::read_manifest_from_car`,
//! `shipment::write_shipment`).

use super::app::{Effect, Hashed, Msg};
use carload::event::{Cancellable, Event};
use carload::shipment::build::{check_sources, source_root};
use carload::shipment::{Batch, Header};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs effects and owns their cancellation flags.
pub struct Workers {
    tx: Sender<Msg>,
    tmpdir: PathBuf,
    dry_run: Option<Arc<AtomicBool>>,
    /// Stops the scan.
    pub scan_stop: Arc<AtomicBool>,
}

impl Workers {
    /// Workers reporting on `tx`; dry runs spool in `tmpdir`.
    pub fn new(tx: Sender<Msg>, tmpdir: PathBuf) -> Self {
        Workers { tx, tmpdir, dry_run: None, scan_stop: Arc::new(AtomicBool::new(false)) }
    }

    /// Starts the scan of `roots`.
    pub fn scan(&self, roots: Vec<PathBuf>, profile: carload::profile::Profile) {
        let tx = self.tx.clone();
        let stop = self.scan_stop.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let cost = move |s: u64| carload::shipment::overhead::EntryCost::of_file(s, &profile).car_bytes;
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
            let o = carload::walk::WalkOptions { threads, cost: &cost, stop: &stop };
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
            Effect::Pack { files, sizes, folders, options, generation } => {
                std::thread::spawn(move || {
                    let bins =
                        carload::shipment::plan::pack_files(&sizes, &folders, &options).map_err(|e| e.to_string());
                    let _ = tx.send(Msg::Packed { files, bins, generation });
                });
            }
            Effect::DryRun { batch, header } => {
                if let Some(old) = self.dry_run.take() {
                    old.store(true, Ordering::SeqCst);
                }
                let cancel = Arc::new(AtomicBool::new(false));
                self.dry_run = Some(cancel.clone());
                let tmpdir = self.tmpdir.clone();
                std::thread::spawn(move || {
                    let r = dry_run(&batch, &header, &tmpdir, &cancel, &tx);
                    if !cancel.load(Ordering::SeqCst) {
                        let _ = tx.send(Msg::DryRunDone(r));
                    }
                });
            }
            Effect::CancelDryRun => {
                if let Some(c) = self.dry_run.take() {
                    c.store(true, Ordering::SeqCst);
                }
            }
            Effect::ReadManifest { car, batch } => {
                std::thread::spawn(move || {
                    let _ = tx.send(Msg::ManifestRead(read_manifest(&car, &batch)));
                });
            }
            Effect::Save { path, shipment } => {
                std::thread::spawn(move || {
                    let r = save(&path, &shipment).map(|_| path).map_err(|e| format!("{e:#}"));
                    let _ = tx.send(Msg::Saved(r));
                });
            }
            Effect::Quit => {}
        }
    }

    /// Stops everything running (on quit).
    pub fn stop_all(&mut self) {
        self.scan_stop.store(true, Ordering::SeqCst);
        if let Some(c) = self.dry_run.take() {
            c.store(true, Ordering::SeqCst);
        }
    }
}

/// Hashes `batch` exactly as `carload build` does, writing the CAR nowhere.
pub fn dry_run(
    batch: &Batch,
    header: &Header,
    tmpdir: &Path,
    cancel: &AtomicBool,
    tx: &Sender<Msg>,
) -> Result<Hashed, String> {
    let files = check_sources(batch, source_root(header, None)).map_err(|e| e.to_string())?;
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
        entries: built.files.iter().map(|(n, c)| (n.clone(), c.to_string())).collect(),
        manifest: lines(&built.manifest),
    })
}

fn lines(manifest: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(manifest).lines().map(str::to_string).collect()
}

/// Reads a built batch's manifest from its CAR (as `carload manifest` does) and its result.
pub fn read_manifest(car: &Path, batch: &Batch) -> Result<Hashed, String> {
    let f = std::fs::File::open(car).map_err(|e| format!("{}: {e}", car.display()))?;
    let (root, bytes) = carload::aggregate::read_manifest_from_car(std::io::BufReader::new(f))
        .map_err(|e| format!("{}: {e}", car.display()))?;
    let dir = car.parent().unwrap_or(Path::new("."));
    let result = carload::shipment::build::built_result(dir, &batch.id);
    Ok(Hashed {
        payload_cid: root.to_string(),
        car_size: std::fs::metadata(car).map(|m| m.len()).unwrap_or(0),
        piece_size: result.as_ref().map_or(0, |r| r.piece_size),
        piece_cid: result.as_ref().map_or(String::new(), |r| r.piece_cid.clone()),
        piece_cid_v2: result.as_ref().map_or(String::new(), |r| r.piece_cid_v2.clone()),
        entries: result.map(|r| r.files.into_iter().map(|f| (f.name, f.cid)).collect()).unwrap_or_default(),
        manifest: lines(&bytes),
    })
}

/// Writes the shipment file atomically (the same writer as `carload plan`).
pub fn save(path: &Path, s: &carload::shipment::Shipment) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let file = carload::output::AtomicFile::create(path, true)?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file.file());
        carload::shipment::write_shipment(&mut w, s).with_context(|| path.display().to_string())?;
        w.flush().with_context(|| path.display().to_string())?;
    }
    file.commit()?;
    Ok(())
}
