//! Building one batch of a shipment as every builder does — `carload build` for each selected
//! batch, the workstation for each batch it builds: skip it if built, claim its lock (or report
//! the holder), keep the lock fresh while building with the build's progress in it, record a
//! failure for other builders to see, release the lock.
//!
//! What belongs to the process running the build comes in through [`Hooks`]: who builds (the
//! lock [`Owner`], whose host name the caller reads), the clocks, and the registration of
//! temporary files and locks for removal when a signal ends the process ([`Cleanup`]).
//! Everything the build has to say leaves as events (`Event::Notice` for "…; rebuilding") and
//! as the [`Outcome`].

use super::build::{self as sbuild, remove_partials, verify, Found, Places};
use super::lock::{self, Claim, Owner};
use super::{Batch, BatchResult, Header};
use crate::event::{Event, Observer, Phase};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime};

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
    /// The shipment as the drive manifest lists it: when given, the output folder's
    /// `carload-drive.json` is regenerated after each batch built ([`super::drive::regenerate`]).
    pub drive: Option<std::sync::Arc<super::drive::DriveBook>>,
}

impl BuildOpts {
    /// Builds into `out` with the default lock timings, spooling there, sources below the
    /// shipment's base, no verification of batches already built.
    pub fn new(out: PathBuf) -> Self {
        BuildOpts {
            out,
            tmpdir: None,
            source_root: None,
            verify: false,
            stale_after: lock::DEFAULT_STALE_AFTER,
            heartbeat: lock::DEFAULT_HEARTBEAT,
            drive: None,
        }
    }
}

/// The clocks a build reads, handed in by the caller (the library reads no clock itself): the
/// wall clock for lock times, the monotonic one for the build's own elapsed time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// The time now (`SystemTime::now`).
    pub wall: fn() -> SystemTime,
    /// A monotonic instant now (`Instant::now`).
    pub monotonic: fn() -> Instant,
}

/// Registration of what a build leaves on disk while it runs, so the process can remove it
/// when a signal ends it. Every method defaults to registering nothing.
pub trait Cleanup: Sync {
    /// Creates temporary `path` with `create`, registered for removal; registration and creation
    /// happen under one lock, so a signal never finds the file unregistered (an
    /// [`crate::output::Registrar`]). A file `create` fails to make is not registered.
    fn create_temp(&self, path: &Path, create: &mut dyn FnMut() -> io::Result<File>) -> io::Result<File> {
        let _ = path;
        create()
    }

    /// The temporaries `paths` are renamed into place or removed: no longer to be removed.
    fn forget_temps(&self, paths: &[PathBuf]) {
        let _ = paths;
    }

    /// `owner` is about to claim the lock at `path`: registered before the claim, so a signal
    /// arriving while it is made still removes it (if its owner line is `owner`'s).
    fn lock_claiming(&self, path: &Path, owner: &Owner) {
        let _ = (path, owner);
    }

    /// The claim of `path` ended: held as the file `ident` (`(device, inode)`), or not made.
    fn lock_claimed(&self, path: &Path, ident: Option<(u64, u64)>) {
        let _ = (path, ident);
    }

    /// The lock `ident` was released.
    fn lock_released(&self, ident: (u64, u64)) {
        let _ = ident;
    }
}

/// A [`Cleanup`] that registers nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCleanup;

impl Cleanup for NoCleanup {}

/// What the process running a build provides.
#[derive(Clone, Copy)]
pub struct Hooks<'a> {
    /// This builder in lock files (host name, pid, boot ID, PID namespace).
    pub owner: &'a Owner,
    /// The clocks.
    pub clock: Clock,
    /// Registration for signal cleanup.
    pub cleanup: &'a dyn Cleanup,
}

/// Removes temporary outputs of batches `ids` in `dir` nobody holds a lock on (left by a killed
/// builder).
pub fn remove_orphans(dir: &Path, ids: &[&str]) {
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

/// Builds batch `b` of the shipment with `header` into `o.out` under its lock: skip it if built
/// (after a commP check with `o.verify`), claim the lock (or report the holder), keep the lock
/// fresh while building with the build's progress in it (a heartbeat thread), register
/// temporaries and the lock through `hooks.cleanup`, record a failure for other builders,
/// release the lock, and with `o.drive` regenerate the folder's drive manifest. Results over
/// which it rebuilds are reported as `Event::Notice`s; the observer can cancel.
pub fn build_one(header: &Header, b: &Batch, o: &BuildOpts, hooks: &Hooks<'_>, observer: &mut dyn Observer) -> Outcome {
    let (owner, clock, cleanup) = (hooks.owner, hooks.clock, hooks.cleanup);
    // A lock whose builder is provably dead (this host, boot and PID namespace, process gone;
    // or this host rebooted since) is taken at once, any other when its heartbeat is stale.
    let rule = lock::Rule::new(owner, Duration::from_secs(o.stale_after));
    let mut notice = |line: String| observer.event(Event::Notice(format!("{}: {line}", b.id)));
    match sbuild::find_result(&o.out, header, b) {
        Found::Built(r) => match o.verify.then(|| verify(&o.out, &r, header.min_piece_size)) {
            None | Some(Ok(true)) => {
                // Built, but its builder may have died before releasing the lock (and left a
                // temporary: with its lock gone, nobody writes one).
                if let Ok(true) = lock::remove_abandoned(&o.out, &b.id, (clock.wall)(), &rule) {
                    let _ = remove_partials(&o.out, &b.id);
                }
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
    cleanup.lock_claiming(&path, owner);
    let lk = match lock::claim(&o.out, &b.id, &rule, (clock.wall)()) {
        Ok(Claim::Claimed { lock, .. }) => lock,
        Ok(Claim::Busy { holder, age }) => {
            cleanup.lock_claimed(&path, None);
            return Outcome::Busy(format!("{holder} (refreshed {} s ago)", age.as_secs()));
        }
        Err(e) => {
            cleanup.lock_claimed(&path, None);
            return Outcome::Failed(format!("claiming the lock: {e}"));
        }
    };
    cleanup.lock_claimed(&path, Some(lk.ident()));
    // Someone may have finished it between our check and the claim.
    let outcome = if matches!(sbuild::find_result(&o.out, header, b), Found::Built(_)) && !o.verify {
        Outcome::Skipped
    } else {
        // Holding the lock, no other builder writes this batch's temporaries: any found were
        // left by a builder that died (whether its lock was taken over here or removed first).
        let _ = remove_partials(&o.out, &b.id);
        let lost = AtomicBool::new(false);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let start = (clock.monotonic)();
        let elapsed = || (clock.monotonic)().saturating_duration_since(start);
        let shared = Shared::default();
        let progress = |shared: &Shared| lock::Progress {
            phase: shared.phase(),
            bytes_done: shared.bytes.load(Ordering::Relaxed),
            bytes_total: b.bytes(),
            files_done: shared.files.load(Ordering::Relaxed),
            files_total: b.files.len() as u64,
            car_bytes: shared.car.load(Ordering::Relaxed),
            car_bound: b.car_size_bound,
            elapsed_ms: elapsed().as_millis() as u64,
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
                    temps.push(p.to_path_buf());
                    cleanup.create_temp(p, create)
                },
            );
            drop(tx);
            cleanup.forget_temps(&temps);
            r
        });
        match res {
            Ok(r) => Outcome::Built(r, elapsed()),
            Err(sbuild::BuildError::Batch(crate::batch::BatchError::Import(
                crate::importer::ImportError::Cancelled,
            ))) => Outcome::Cancelled,
            Err(e) => {
                // Recorded for `status` and other workstations (removed when it is built).
                let _ = super::judge::record_failure(&o.out, header, b, &owner.host, &e.to_string());
                Outcome::Failed(e.to_string())
            }
        }
    };
    let id = lk.ident();
    let _ = lk.release();
    cleanup.lock_released(id);
    if let (Outcome::Built(..), Some(book)) = (&outcome, &o.drive) {
        if let Err(e) = super::drive::regenerate(&o.out, header, book) {
            observer.event(Event::Notice(format!("{}: drive manifest not updated: {e}", b.id)));
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shipment::plan::{plan, resolve_inputs, walk_tree, PlanOptions, SECTOR_32GIB};
    use crate::shipment::Shipment;
    use std::sync::Mutex;

    /// A [`Cleanup`] that records what it is told, checking a temporary is registered before it
    /// exists.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Recorder {
        fn log(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    impl Cleanup for Recorder {
        fn create_temp(&self, path: &Path, create: &mut dyn FnMut() -> io::Result<File>) -> io::Result<File> {
            assert!(!path.exists(), "registered before it is created");
            self.0.lock().unwrap().push(format!("temp {}", path.display()));
            create()
        }
        fn forget_temps(&self, paths: &[PathBuf]) {
            for p in paths {
                self.0.lock().unwrap().push(format!("forget {}", p.display()));
            }
        }
        fn lock_claiming(&self, path: &Path, owner: &Owner) {
            self.0.lock().unwrap().push(format!("claiming {} by {}", path.display(), owner.host));
        }
        fn lock_claimed(&self, path: &Path, ident: Option<(u64, u64)>) {
            self.0.lock().unwrap().push(format!("claimed {} {}", path.display(), ident.is_some()));
        }
        fn lock_released(&self, _: (u64, u64)) {
            self.0.lock().unwrap().push("released".into());
        }
    }

    const CLOCK: Clock = Clock { wall: SystemTime::now, monotonic: Instant::now };

    /// A one-batch shipment of three small files in `dir/data`.
    fn shipment(dir: &Path) -> Shipment {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        for i in 0..3u8 {
            std::fs::write(dir.join(format!("data/f{i}")), vec![i; 10_000 + i as usize]).unwrap();
        }
        let resolved = resolve_inputs(dir, &[PathBuf::from("data")]).unwrap();
        let files = walk_tree(&resolved.paths, &resolved.names, false).unwrap();
        let mut o = PlanOptions::for_sector(SECTOR_32GIB, crate::profile::Profile::default());
        o.piece_size = 1 << 20;
        let sources = (0..files.len()).map(|i| files.source_file(i)).collect();
        let base = Some(crate::shipment::file::path_to_name(&resolved.base));
        plan(sources, &o, resolved.input_names(), base).unwrap()
    }

    #[test]
    fn a_build_registers_its_temporaries_and_lock_and_speaks_only_in_events() {
        let dir = tempfile::tempdir().unwrap();
        let s = shipment(dir.path());
        let b = &s.batches[0];
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let o = BuildOpts::new(out.clone());
        let owner = Owner::this_process("builder1");
        let rec = Recorder::default();
        let hooks = Hooks { owner: &owner, clock: CLOCK, cleanup: &rec };
        let mut events = Vec::new();
        let outcome = build_one(&s.header, b, &o, &hooks, &mut |e: Event| events.push(e));
        assert!(matches!(outcome, Outcome::Built(..)), "{outcome:?}");
        let log = rec.log();
        let lock = lock::lock_path(&out, &b.id).display().to_string();
        assert_eq!(log[0], format!("claiming {lock} by builder1"));
        assert_eq!(log[1], format!("claimed {lock} true"));
        assert_eq!(log.last().unwrap(), "released");
        let temps: Vec<&str> = log.iter().filter_map(|l| l.strip_prefix("temp ")).collect();
        let forgotten: Vec<&str> = log.iter().filter_map(|l| l.strip_prefix("forget ")).collect();
        assert!(!temps.is_empty());
        assert_eq!(temps, forgotten, "every temporary registered is forgotten once renamed");
        assert!(temps.iter().all(|t| !Path::new(t).exists()));
        assert!(!Path::new(&lock).exists(), "the lock is released");
        assert!(!events.iter().any(|e| matches!(e, Event::Notice(_))));

        // Built: skipped, no lock taken.
        let rec = Recorder::default();
        let hooks = Hooks { cleanup: &rec, ..hooks };
        assert!(matches!(build_one(&s.header, b, &o, &hooks, &mut crate::event::Ignore), Outcome::Skipped));
        assert!(rec.log().is_empty());

        // A corrupt CAR is rebuilt over, and the build says so as an event (never on stderr).
        let car = crate::shipment::build::outputs(&out, &b.id).car;
        std::fs::write(&car, b"not a car").unwrap();
        let mut notices = Vec::new();
        let outcome = build_one(&s.header, b, &o, &hooks, &mut |e: Event| {
            if let Event::Notice(n) = e {
                notices.push(n)
            }
        });
        assert!(matches!(outcome, Outcome::Built(..)), "{outcome:?}");
        assert!(notices.len() == 1 && notices[0].starts_with(&format!("{}: ", b.id)), "{notices:?}");
        assert!(notices[0].ends_with("; rebuilding"), "{notices:?}");

        // Another builder's fresh lock: busy, and the claim's registration is withdrawn.
        std::fs::remove_file(&car).unwrap();
        let other = Owner::named("elsewhere", 1);
        let rule = lock::Rule::new(&other, Duration::from_secs(300));
        let Ok(Claim::Claimed { lock: held, .. }) = lock::claim(&out, &b.id, &rule, SystemTime::now()) else {
            panic!("claim")
        };
        let rec = Recorder::default();
        let hooks = Hooks { cleanup: &rec, ..hooks };
        let outcome = build_one(&s.header, b, &o, &hooks, &mut crate::event::Ignore);
        assert!(matches!(&outcome, Outcome::Busy(h) if h.contains("host=elsewhere")), "{outcome:?}");
        assert_eq!(rec.log(), [format!("claiming {lock} by builder1"), format!("claimed {lock} false")]);
        held.release().unwrap();

        // A source changed since planning: failed, recorded for other builders, lock released.
        std::fs::write(dir.path().join("data/f1"), b"changed").unwrap();
        let rec = Recorder::default();
        let hooks = Hooks { cleanup: &rec, ..hooks };
        let outcome = build_one(&s.header, b, &o, &hooks, &mut crate::event::Ignore);
        assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
        assert!(crate::shipment::build::outputs(&out, &b.id).failed.exists());
        assert_eq!(rec.log().last().unwrap(), "released");
        assert!(!Path::new(&lock).exists());
    }
}
