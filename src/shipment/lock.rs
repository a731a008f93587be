//! Per-batch lock files, so several builders (processes or machines sharing the output folder,
//! e.g. over NFS) never build the same batch at once.
//!
//! The protocol (ARCHITECTURE.md states it with its assumptions):
//!
//! * **Claim**: create `DIR/<id>.lock` with `O_CREAT|O_EXCL` and keep it open; its content names
//!   the owner (`host`, `pid`, claim time, token). The claim is identified by the file's
//!   `(device, inode)`.
//! * **Ownership** is checked on the claim's own file: the lock is held while the path still
//!   names the inode we created ([`Lock::held`]); a takeover replaces the path with another
//!   inode.
//! * **Heartbeat**: the owner rewrites the content through its own open file every few seconds,
//!   which advances that inode's mtime (set by the file server, so no clock is read here). A
//!   heartbeat after a takeover writes to the old, renamed inode: it can never touch the new
//!   owner's lock.
//! * **Takeover** of a lock not refreshed for the stale limit (or whose holder the caller knows
//!   is dead): rename the path aside (atomic; one renamer wins), then check the renamed file is
//!   the inode judged stale. If a fresh lock was created in between, the rename took that one:
//!   it is linked back (`link` fails if the path exists, so nothing is overwritten) and the
//!   claim is retried, so a lock created a moment ago is never stolen.
//! * **Release** (and cleanup on a signal) removes the path only through the same
//!   rename-check-restore, so a builder never removes a lock that is no longer its own.
//!
//! Staleness compares the caller's `now` with the lock's mtime: keep builder clocks within a
//! few seconds of the file server (NTP) and the stale limit well above the heartbeat interval
//! plus that skew.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default seconds after which a lock not refreshed is stale (`--stale-after`).
pub const DEFAULT_STALE_AFTER: u64 = 300;
/// Default seconds between lock refreshes (`--heartbeat`).
pub const DEFAULT_HEARTBEAT: u64 = 30;

/// Who claims a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Host name.
    pub host: String,
    /// Process ID.
    pub pid: u32,
}

/// A held lock.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    file: fs::File,
    content: Vec<u8>,
    ident: (u64, u64),
}

/// `(device, inode)` of a file.
fn ident(m: &fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// Whether `path` names the file `id` (`Err` only for errors other than "not found").
fn names(path: &Path, id: (u64, u64)) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(ident(&m) == id),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Moves `path` out of the way if it names file `id`, then removes it: rename aside (atomic),
/// check the renamed file is `id` (and holds `content`, when given: an inode number can be reused
/// once a file is gone, the content carries the claim's token), and if it is not (the path was
/// replaced in between), link it back (never overwriting) and leave it. Returns whether `id`
/// was removed.
pub fn remove_if(path: &Path, id: (u64, u64), content: Option<&str>) -> io::Result<bool> {
    if !names(path, id)? {
        return Ok(false);
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let aside = path.with_file_name(format!(".{name}.gone.{}.{}", std::process::id(), id.1));
    match fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    let ours = fs::symlink_metadata(&aside).map(|m| ident(&m) == id).unwrap_or(false)
        && content.is_none_or(|c| fs::read_to_string(&aside).is_ok_and(|got| got == c));
    if !ours {
        let _ = fs::hard_link(&aside, path);
    }
    fs::remove_file(&aside)?;
    Ok(ours)
}

/// The outcome of a claim.
#[derive(Debug)]
pub enum Claim {
    /// The lock is ours; `took_over` when a stale lock was replaced.
    Claimed {
        /// The lock.
        lock: Lock,
        /// Whether a stale lock was taken over (a builder died: clean its leftovers).
        took_over: bool,
    },
    /// Another live builder holds it.
    Busy {
        /// The holder's lock content.
        holder: String,
        /// Time since its last heartbeat.
        age: Duration,
    },
}

/// Path of batch `id`'s lock in `dir`.
pub fn lock_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.lock"))
}

fn unix(t: SystemTime) -> (u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

/// Tries to claim batch `id` in `dir` at time `now`, taking over a lock not refreshed for
/// `stale_after`.
pub fn claim(dir: &Path, id: &str, owner: &Owner, now: SystemTime, stale_after: Duration) -> io::Result<Claim> {
    claim_with(dir, id, owner, now, stale_after, &|_, _| false)
}

/// The `host` and `pid` a lock's content names.
pub fn holder_of(content: &str) -> Option<(&str, u32)> {
    let mut host = None;
    let mut pid = None;
    for field in content.split_whitespace() {
        if let Some(h) = field.strip_prefix("host=") {
            host = Some(h);
        } else if let Some(p) = field.strip_prefix("pid=") {
            pid = p.parse().ok();
        }
    }
    Some((host?, pid?))
}

/// Who holds batch `id`'s lock in `dir` and how long ago it was refreshed (as of `now`), if it
/// is locked. A lock whose content names no holder reports an empty host and pid 0.
pub fn holder(dir: &Path, id: &str, now: SystemTime) -> Option<(String, u32, Duration)> {
    let path = lock_path(dir, id);
    let meta = fs::metadata(&path).ok()?;
    let age = meta.modified().ok().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
    let content = fs::read_to_string(&path).unwrap_or_default();
    let (host, pid) = holder_of(&content).map(|(h, p)| (h.to_string(), p)).unwrap_or_default();
    Some((host, pid, age))
}

/// Removes batch `id`'s lock if its builder is gone: `dead(host, pid)` says so, or it was not
/// refreshed for `stale_after`. For a batch already built whose builder died between committing
/// and releasing. Only the lock judged is removed (see [`remove_if`]).
pub fn remove_abandoned(
    dir: &Path,
    id: &str,
    now: SystemTime,
    stale_after: Duration,
    dead: &dyn Fn(&str, u32) -> bool,
) -> io::Result<bool> {
    let path = lock_path(dir, id);
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let content = fs::read_to_string(&path).unwrap_or_default();
    let age = now.duration_since(meta.modified()?).unwrap_or_default();
    if age < stale_after && !holder_of(&content).is_some_and(|(h, p)| dead(h, p)) {
        return Ok(false);
    }
    remove_if(&path, ident(&meta), Some(&content))
}

/// [`claim`], also taking over at once a lock whose holder `dead(host, pid)` says is gone (a
/// builder on this host whose process no longer exists).
pub fn claim_with(
    dir: &Path,
    id: &str,
    owner: &Owner,
    now: SystemTime,
    stale_after: Duration,
    dead: &dyn Fn(&str, u32) -> bool,
) -> io::Result<Claim> {
    let path = lock_path(dir, id);
    let (secs, nanos) = unix(now);
    let content = format!("host={} pid={} time={} token={secs}.{nanos:09}\n", owner.host, owner.pid, secs).into_bytes();
    let mut took_over = false;
    for _ in 0..8 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                f.write_all(&content)?;
                f.sync_all()?;
                let id = ident(&f.metadata()?);
                return Ok(Claim::Claimed { lock: Lock { path, file: f, content, ident: id }, took_over });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let judged = ident(&meta);
        let age = now.duration_since(meta.modified()?).unwrap_or_default();
        let mut holder = String::new();
        if let Ok(mut f) = fs::File::open(&path) {
            let _ = f.read_to_string(&mut holder);
        }
        if age < stale_after && !holder_of(&holder).is_some_and(|(h, p)| dead(h, p)) {
            return Ok(Claim::Busy { holder: holder.trim().to_string(), age });
        }
        // Take over exactly the lock judged stale: a lock created since is restored.
        if remove_if(&path, judged, Some(&holder))? {
            took_over = true;
        }
    }
    Err(io::Error::other(format!("{}: could not claim the lock (contended)", path.display())))
}

impl Lock {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `(device, inode)` of the claim's file (for [`remove_if`]).
    pub fn ident(&self) -> (u64, u64) {
        self.ident
    }

    /// Whether the path still names the file this claim created. An error reading the path
    /// counts as not held (callers check before committing).
    pub fn held(&self) -> bool {
        names(&self.path, self.ident).unwrap_or(false)
    }

    /// Refreshes the lock's mtime by rewriting its content through the claim's own open file.
    /// Returns `false` if the lock is no longer ours; a transient error reading the path is an
    /// `Err` (the caller may retry at the next beat).
    pub fn heartbeat(&self) -> io::Result<bool> {
        if !names(&self.path, self.ident)? {
            return Ok(false);
        }
        self.file.write_all_at(&self.content, 0)?;
        Ok(true)
    }

    /// Removes the lock if it is still ours (never another builder's).
    pub fn release(self) -> io::Result<()> {
        remove_if(&self.path, self.ident, None).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_takeover_never_takes_a_lock_created_after_the_stale_one_was_judged() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), "b1");
        fs::write(&path, "host=old pid=1\n").unwrap();
        let judged = ident(&fs::metadata(&path).unwrap());
        // Someone else takes over and creates a fresh lock before our rename (the old file is
        // still open somewhere, so its inode is not reused).
        let _old_open = fs::File::open(&path).unwrap();
        fs::rename(&path, dir.path().join("elsewhere")).unwrap();
        fs::write(&path, "host=fresh pid=2\n").unwrap();
        let fresh = ident(&fs::metadata(&path).unwrap());
        assert_ne!(judged, fresh);
        assert!(!remove_if(&path, judged, Some("host=old pid=1\n")).unwrap(), "not the judged file: left alone");
        assert_eq!(ident(&fs::metadata(&path).unwrap()), fresh);
        assert_eq!(fs::read_to_string(&path).unwrap(), "host=fresh pid=2\n");
        assert!(!remove_if(&path, fresh, Some("host=old pid=1\n")).unwrap(), "same inode, other content");
        assert!(remove_if(&path, fresh, Some("host=fresh pid=2\n")).unwrap());
        assert!(!path.exists());
    }

    #[test]
    fn a_heartbeat_after_a_takeover_never_touches_the_new_lock() {
        let dir = tempfile::tempdir().unwrap();
        let a = Owner { host: "a".into(), pid: 1 };
        let b = Owner { host: "b".into(), pid: 2 };
        let now = SystemTime::now();
        let Claim::Claimed { lock: old, .. } = claim(dir.path(), "x", &a, now, Duration::from_secs(60)).unwrap() else {
            panic!()
        };
        let later = now + Duration::from_secs(120);
        let Claim::Claimed { lock: new, took_over: true } =
            claim(dir.path(), "x", &b, later, Duration::from_secs(60)).unwrap()
        else {
            panic!()
        };
        assert!(!old.heartbeat().unwrap());
        // Even a write through the old file cannot reach the new lock's content.
        old.file.write_all_at(b"host=a pid=1 stale write", 0).unwrap();
        assert!(fs::read_to_string(new.path()).unwrap().starts_with("host=b pid=2"));
        old.release().unwrap();
        assert!(new.held());
    }

    #[test]
    fn claim_busy_stale() {
        let dir = tempfile::tempdir().unwrap();
        let a = Owner { host: "a".into(), pid: 1 };
        let b = Owner { host: "b".into(), pid: 2 };
        let now = SystemTime::now();
        let lock = match claim(dir.path(), "b00000", &a, now, Duration::from_secs(60)).unwrap() {
            Claim::Claimed { lock, took_over } => {
                assert!(!took_over);
                lock
            }
            other => panic!("{other:?}"),
        };
        assert!(lock.held());
        assert!(lock.heartbeat().unwrap());
        match claim(dir.path(), "b00000", &b, now, Duration::from_secs(60)).unwrap() {
            Claim::Busy { holder, .. } => assert!(holder.starts_with("host=a pid=1"), "{holder}"),
            other => panic!("{other:?}"),
        }
        // Seen from 2 minutes later, the lock is stale: b takes over, a loses it.
        let later = now + Duration::from_secs(120);
        let lock_b = match claim(dir.path(), "b00000", &b, later, Duration::from_secs(60)).unwrap() {
            Claim::Claimed { lock, took_over } => {
                assert!(took_over);
                lock
            }
            other => panic!("{other:?}"),
        };
        assert!(!lock.held());
        assert!(!lock.heartbeat().unwrap());
        lock.release().unwrap();
        assert!(lock_b.held(), "the old owner's release left the new lock alone");
        lock_b.release().unwrap();
        assert!(!lock_path(dir.path(), "b00000").exists());
    }
}
