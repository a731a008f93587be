//! Process-wide signal handling: SIGINT (Ctrl-C), SIGTERM, SIGHUP and SIGBUS remove temporary
//! outputs and this process's locks, so an interrupted or failed run leaves nothing half-written;
//! the exit status tells which signal ended the run (128 + its number: 130, 143, 129). What
//! else must happen first (the workstation gives the terminal back) is registered by `main`
//! ([`install`]'s `before_exit`).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Temporary output files to remove if the process is interrupted.
pub static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Lock files this process holds or is claiming: `(path, (device, inode))`, the identity `None`
/// while the claim is being made. On a signal each is removed only if the path still names that
/// file, or (identity unknown) if its owner line names this process: never another builder's
/// lock.
pub static PENDING_LOCKS: Mutex<Vec<PendingLock>> = Mutex::new(Vec::new());

/// A lock path and its claim's `(device, inode)`, once known.
pub type PendingLock = (PathBuf, Option<(u64, u64)>);

/// This process's identity in lock files, set before its first claim.
static OWNER: OnceLock<carload::shipment::lock::Owner> = OnceLock::new();

/// Creates temporary `path` with `create`, registered in [`PENDING`] under its lock, so a
/// signal's cleanup (which keeps the list locked until the process exits) sees every temporary
/// that exists. A name `create` could not take (someone else's) is not registered.
pub fn create_registered(path: &Path, create: &mut dyn FnMut() -> io::Result<File>) -> io::Result<File> {
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    pending.push(path.to_path_buf());
    create().inspect_err(|_| _ = pending.pop())
}

/// Removes `paths` from [`PENDING`] (renamed into place or removed).
pub fn forget(paths: &[PathBuf]) {
    PENDING.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| !paths.contains(p));
}

/// The library's builds register their temporaries and locks here.
pub struct Registry;

/// The registry of this process.
pub static CLEANUP: Registry = Registry;

impl carload::shipment::runner::Cleanup for Registry {
    fn create_temp(&self, path: &Path, create: &mut dyn FnMut() -> io::Result<File>) -> io::Result<File> {
        create_registered(path, create)
    }

    fn forget_temps(&self, paths: &[PathBuf]) {
        forget(paths)
    }

    fn lock_claiming(&self, path: &Path, owner: &carload::shipment::lock::Owner) {
        let _ = OWNER.set(owner.clone());
        PENDING_LOCKS.lock().unwrap_or_else(|e| e.into_inner()).push((path.to_path_buf(), None));
    }

    fn lock_claimed(&self, path: &Path, ident: Option<(u64, u64)>) {
        let mut locks = PENDING_LOCKS.lock().unwrap_or_else(|e| e.into_inner());
        match ident {
            Some(id) => {
                if let Some(p) = locks.iter_mut().find(|p| p.0 == path && p.1.is_none()) {
                    p.1 = Some(id);
                }
            }
            None => locks.retain(|p| !(p.0 == path && p.1.is_none())),
        }
    }

    fn lock_released(&self, ident: (u64, u64)) {
        PENDING_LOCKS.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| p.1 != Some(ident));
    }
}

/// The input file being read (for the SIGBUS message).
pub static CURRENT_INPUT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Removes the pending temporaries and locks. From a signal handler (`blocking` false) a list
/// another thread holds is skipped; from the SIGINT/SIGTERM/SIGHUP thread the lists are waited
/// for and kept locked until the process exits, so nothing is registered after the cleanup.
fn remove_pending(blocking: bool) {
    use std::sync::MutexGuard;
    fn take<T>(m: &'static Mutex<T>, blocking: bool) -> Option<MutexGuard<'static, T>> {
        if blocking {
            Some(m.lock().unwrap_or_else(|e| e.into_inner()))
        } else {
            m.try_lock().ok()
        }
    }
    if let Some(pending) = take(&PENDING, blocking) {
        for p in pending.iter() {
            let _ = std::fs::remove_file(p);
        }
        std::mem::forget(pending);
    }
    if let Some(locks) = take(&PENDING_LOCKS, blocking) {
        for (p, id) in locks.iter() {
            let _ = match (id, OWNER.get()) {
                (Some(id), _) => carload::shipment::lock::remove_if(p, *id, None).is_ok_and(|x| x),
                (None, Some(owner)) => carload::shipment::lock::remove_if_owned_by(p, owner).is_ok_and(|x| x),
                (None, None) => false,
            };
        }
        std::mem::forget(locks);
    }
}

/// SIGBUS arrives when a memory-mapped input shrinks while it is being hashed. Only a fault
/// inside one of our mapped inputs (its address checked against `importer::input::MAPPED`) is
/// explained and turned into a one-line error naming that file; any other SIGBUS gets the
/// default action (a core dump), as if carload had no handler. The fault is raised in hashing
/// code (never inside the allocator), so formatting a message here is safe in practice; the
/// handler then exits without unwinding.
extern "C" fn on_sigbus(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Several hashing threads can fault at once: the first explains and exits, the others wait.
    static HANDLING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if HANDLING.swap(true, std::sync::atomic::Ordering::SeqCst) {
        loop {
            // SAFETY: pause(2) is async-signal-safe; the first handler's _exit ends the process.
            unsafe { libc::pause() };
        }
    }
    // SAFETY: the kernel passes a valid siginfo_t with SA_SIGINFO.
    let addr = unsafe { (*info).si_addr() } as usize;
    let Some(path) = carload::importer::input::mapped_input_at(addr) else {
        // Not ours: the default action, as if there were no handler (raise covers a SIGBUS sent
        // with kill(2); for a real fault, so would re-running the access).
        // SAFETY: signal(2) and raise(3) are async-signal-safe.
        unsafe {
            libc::signal(libc::SIGBUS, libc::SIG_DFL);
            libc::raise(libc::SIGBUS);
        }
        return;
    };
    let path = path.or_else(|| CURRENT_INPUT.try_lock().ok().and_then(|g| g.clone()));
    let msg = match path {
        Some(p) => format!("error: {}: file changed while being read (it shrank)\n", p.display()),
        None => "error: an input file changed while being read (it shrank)\n".to_string(),
    };
    // SAFETY: write(2) and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
    }
    remove_pending(false);
    unsafe { libc::_exit(1) }
}

/// The exit status of a run ended by signal `sig`: 128 + its number, the shells' convention
/// (SIGINT 130, SIGTERM 143, SIGHUP 129).
pub fn exit_status(sig: libc::c_int) -> i32 {
    128 + sig
}

/// Installs the handlers. SIGINT, SIGTERM and SIGHUP are taken on a thread of their own
/// (`signal-hook`'s iterator: the handler itself only wakes that thread), which runs
/// `before_exit` (the workstation's terminal restore), removes the pending temporaries and
/// locks and exits with [`exit_status`].
pub fn install(before_exit: fn()) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                // The workstation's raw mode and alternate screen first.
                before_exit();
                remove_pending(true);
                std::process::exit(exit_status(sig));
            }
        });
    }
    // SAFETY: a plain sigaction with a handler that only writes, unlinks and exits.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigbus as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
    }
}
