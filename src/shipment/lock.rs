//! Per-batch lock files, so several builders (processes or machines sharing the output folder,
//! e.g. over NFS) never build the same batch at once.
//!
//! A builder claims batch `<id>` by creating `DIR/<id>.lock` with `O_CREAT|O_EXCL`; the content
//! names the owner (`host`, `pid`, claim time and a token). While building, the owner rewrites the
//! content every few seconds ([`Lock::heartbeat`]), which advances the file's mtime (set by the
//! file server, so no clock is read here). A lock whose mtime is older than the stale limit is
//! taken over: it is renamed aside (atomic; one renamer wins) and the claim retried. An owner
//! whose lock was taken over notices at its next heartbeat or before committing
//! ([`Lock::held`]) and gives the batch up. Outputs are written under temporary names and renamed
//! into place, so even a double build never leaves a torn file.
//!
//! Staleness compares the caller's `now` with the lock's mtime: keep builder clocks in sync with
//! the file server (NTP) and the stale limit well above the heartbeat interval.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    content: Vec<u8>,
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
                return Ok(Claim::Claimed { lock: Lock { path, content }, took_over });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let age = now.duration_since(meta.modified()?).unwrap_or_default();
        if age < stale_after {
            let mut holder = String::new();
            if let Ok(mut f) = fs::File::open(&path) {
                let _ = f.read_to_string(&mut holder);
            }
            if !holder_of(&holder).is_some_and(|(h, p)| dead(h, p)) {
                return Ok(Claim::Busy { holder: holder.trim().to_string(), age });
            }
        }
        let aside = dir.join(format!(".{id}.lock.stale.{}.{}.{secs}{nanos:09}", owner.host, owner.pid));
        match fs::rename(&path, &aside) {
            Ok(()) => {
                let _ = fs::remove_file(&aside);
                took_over = true;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!("{}: could not claim the lock (contended)", path.display())))
}

impl Lock {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the lock file still holds our claim.
    pub fn held(&self) -> bool {
        fs::read(&self.path).map(|c| c == self.content).unwrap_or(false)
    }

    /// Refreshes the lock's mtime by rewriting its content. Returns `false` if the lock is no
    /// longer ours (taken over or removed).
    pub fn heartbeat(&self) -> io::Result<bool> {
        if !self.held() {
            return Ok(false);
        }
        let f = OpenOptions::new().write(true).open(&self.path)?;
        f.write_all_at(&self.content, 0)?;
        Ok(true)
    }

    /// Removes the lock if it is still ours.
    pub fn release(self) -> io::Result<()> {
        if self.held() {
            fs::remove_file(&self.path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(lock_b.held());
        lock_b.release().unwrap();
        assert!(!lock_path(dir.path(), "b00000").exists());
    }
}
