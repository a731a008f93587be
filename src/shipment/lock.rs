//! Per-batch lock files, so several builders (processes or machines sharing the output folder,
//! e.g. over NFS) never build the same batch at once, and report how far along they are.
//!
//! The protocol (ARCHITECTURE.md states it with its assumptions):
//!
//! * **Claim**: create `DIR/<id>.lock` with `O_CREAT|O_EXCL` and keep it open; its first line,
//!   the *owner line*, names the owner (`host`, `pid`, claim time, token). The claim is
//!   identified by the file's `(device, inode)`.
//! * **Ownership** is checked on the claim's own file: the lock is held while the path still
//!   names the inode we created ([`Lock::held`]); a takeover replaces the path with another
//!   inode.
//! * **Heartbeat**: the owner writes through its own open file every few seconds
//!   ([`Lock::heartbeat_with`] a progress record, or [`Lock::heartbeat`] the owner line again),
//!   which advances that inode's mtime (set by the file server, so no clock is read here). A
//!   heartbeat after a takeover writes to the old, renamed inode: it can never touch the new
//!   owner's lock.
//! * **Takeover** of a lock not refreshed for the stale limit (or whose holder the caller knows
//!   is dead): rename the path aside (atomic; one renamer wins), then check the renamed file is
//!   the inode judged stale, with the content judged. If a fresh lock was created in between,
//!   the rename took that one: it is linked back (`link` fails if the path exists, so nothing
//!   is overwritten) and the claim is retried, so a lock created a moment ago is never stolen.
//!   Every progress record changes the content (its sequence number grows), so a heartbeat
//!   between the judgement and the rename also makes the takeover back off: the holder is
//!   alive after all.
//! * **Release** (and cleanup on a signal) removes the path only through the same
//!   rename-check-restore, so a builder never removes a lock that is no longer its own. They
//!   compare the inode alone: the claim's file is still open, so its inode number cannot have
//!   been reused, and the content (which heartbeats change) need not be known.
//!
//! Staleness compares the caller's `now` with the lock's mtime: keep builder clocks within a
//! few seconds of the file server (NTP) and the stale limit well above the heartbeat interval
//! plus that skew.
//!
//! # The progress record
//!
//! The content is the owner line, written once at the claim and never changed (a plain
//! [`Lock::heartbeat`] rewrites the same bytes), then, once the builder reports progress, one
//! record of exactly [`RECORD_LEN`] bytes right after it, rewritten in place by each
//! [`Lock::heartbeat_with`] with a single positioned write (`pwrite`) — never truncated, never
//! renamed (a rename would replace the inode that ownership is checked by). The whole file
//! (owner line ≤ ~330 bytes with a 255-byte host name, plus the record) lies in its first page:
//!
//! ```text
//! progress v1 seq=<20 digits> read=D/T files=D/T car=D/T phase=P ms=E<spaces> end=<20 digits> sum=<16 hex>\n
//! ```
//!
//! `seq` grows by one at every write of the lock and `end` repeats it; `sum` is the first 8
//! bytes of the SHA-256 of everything before ` sum=`. The tag, `seq`, ` end=`, `end` and
//! ` sum=` sit at fixed offsets; the fields between are padded with spaces to a fixed width.
//!
//! A read racing a write may return a mix of the old and the new record's bytes (POSIX does
//! not make reads atomic against writes on every file system, and NFS clients cache pages).
//! [`progress_of`] takes a record only if it is complete (exactly [`RECORD_LEN`] bytes ending
//! in a newline after a complete owner line), carries the tag, has `seq` equal to `end`, has a
//! matching `sum`, and its fields parse with done ≤ total; anything else reads as "no progress
//! known" (the batch still shows as building). Why no mix is ever taken:
//!
//! * A mix with one crossing point (a prefix of one write and the rest of another: what a read
//!   concurrent with a forward copy returns) is rejected unless it equals one write byte for
//!   byte. A crossing strictly between the `seq` and `end` fields leaves them from two writes,
//!   whose sequence numbers differ. A crossing at or before the end of the `seq` field leaves
//!   everything after it, `end` included, from one write; `seq` must equal that `end`, so the
//!   `seq` field is that write's too (and the tag is the same in every record). A crossing
//!   inside or after the `end` field leaves everything before it, `seq` included, from one
//!   write; `end` must equal that `seq` and `sum` that write's checksum, so they are that
//!   write's bytes too.
//! * Any other mix (several crossings, stale pages, garbage) is taken only if its 64-bit
//!   checksum matches: a chance of 2^-64 per torn read.
//!
//! A record is therefore always one the builder wrote (possibly one heartbeat old). The owner
//! line is trusted only when complete (ended by its newline), so a reader that catches a claim
//! between its create and its write sees an unnamed holder, never a truncated host or pid.

use crate::event::Phase;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// The owner line, as written at the claim (the progress record follows it).
    content: Vec<u8>,
    ident: (u64, u64),
    /// Sequence number of the last progress record written.
    seq: AtomicU64,
}

/// How far a builder is, as its lock reports it (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// The build's phase.
    pub phase: Phase,
    /// Source bytes read and hashed.
    pub bytes_done: u64,
    /// Source bytes of the batch.
    pub bytes_total: u64,
    /// Files (and file parts) hashed.
    pub files_done: u64,
    /// Files (and file parts) of the batch.
    pub files_total: u64,
    /// CAR bytes written.
    pub car_bytes: u64,
    /// CAR bytes expected (the planned bound).
    pub car_bound: u64,
    /// Milliseconds the build had run when the record was written (the builder's own clock).
    pub elapsed_ms: u64,
}

impl Progress {
    /// Work done over work to do: reading the sources, then writing the CAR (the workstation's
    /// progress measure).
    pub fn fraction(&self) -> f64 {
        let total = self.bytes_total.saturating_add(self.car_bound).max(1) as f64;
        (self.bytes_done.saturating_add(self.car_bytes) as f64 / total).min(1.0)
    }

    /// Source bytes the work done so far stands for ([`Progress::fraction`] of the batch's).
    pub fn done_bytes(&self) -> u64 {
        (self.fraction() * self.bytes_total as f64) as u64
    }

    /// [`Progress::done_bytes`] per second since the build started, if it has run for a second.
    pub fn rate(&self) -> Option<f64> {
        (self.elapsed_ms >= 1000).then(|| self.done_bytes() as f64 * 1000.0 / self.elapsed_ms as f64)
    }
}

/// Length of a progress record, newline included.
pub const RECORD_LEN: usize = 320;
const TAG: &str = "progress v1 seq=";
/// Offset of the fields between `seq` and `end`.
const FIELDS_AT: usize = TAG.len() + 20 + 1;
/// Offset of ` end=`.
const END_AT: usize = RECORD_LEN - 1 - 16 - 5 - 20 - 5;
/// Offset of ` sum=` (the checksum covers everything before it).
const SUM_AT: usize = END_AT + 5 + 20;

fn checksum(body: &[u8]) -> String {
    Sha256::digest(body)[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The progress record with sequence number `seq` (exactly [`RECORD_LEN`] bytes).
pub fn record(seq: u64, p: &Progress) -> Vec<u8> {
    let fields = format!(
        "read={}/{} files={}/{} car={}/{} phase={} ms={}",
        p.bytes_done,
        p.bytes_total,
        p.files_done,
        p.files_total,
        p.car_bytes,
        p.car_bound,
        p.phase.name(),
        p.elapsed_ms
    );
    // At most 179 bytes with every number at 20 digits: always fits.
    let body = format!("{TAG}{seq:020} {fields:<w$} end={seq:020}", w = END_AT - FIELDS_AT);
    debug_assert_eq!(body.len(), SUM_AT);
    let rec = format!("{body} sum={}\n", checksum(body.as_bytes()));
    debug_assert_eq!(rec.len(), RECORD_LEN);
    rec.into_bytes()
}

fn digits20(b: &[u8]) -> Option<u64> {
    if b.len() != 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn pair(field: Option<&str>, key: &str) -> Option<(u64, u64)> {
    let (a, b) = field?.strip_prefix(key)?.split_once('/')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// A record's sequence number and progress, if `rec` is a complete, valid record (see the
/// module documentation: a torn or garbled record is `None`, never a wrong value).
pub fn parse_record(rec: &[u8]) -> Option<(u64, Progress)> {
    if rec.len() != RECORD_LEN
        || rec[RECORD_LEN - 1] != b'\n'
        || !rec.starts_with(TAG.as_bytes())
        || rec[FIELDS_AT - 1] != b' '
        || &rec[END_AT..END_AT + 5] != b" end="
        || &rec[SUM_AT..SUM_AT + 5] != b" sum="
    {
        return None;
    }
    let seq = digits20(&rec[TAG.len()..FIELDS_AT - 1])?;
    if digits20(&rec[END_AT + 5..SUM_AT])? != seq
        || rec[SUM_AT + 5..RECORD_LEN - 1] != *checksum(&rec[..SUM_AT]).as_bytes()
    {
        return None;
    }
    let fields = std::str::from_utf8(&rec[FIELDS_AT..END_AT]).ok()?.trim_end_matches(' ');
    let mut it = fields.split(' ');
    let (bytes_done, bytes_total) = pair(it.next(), "read=")?;
    let (files_done, files_total) = pair(it.next(), "files=")?;
    let (car_bytes, car_bound) = pair(it.next(), "car=")?;
    let phase = Phase::from_name(it.next()?.strip_prefix("phase=")?)?;
    let elapsed_ms = it.next()?.strip_prefix("ms=")?.parse().ok()?;
    if it.next().is_some() || bytes_done > bytes_total || files_done > files_total {
        return None;
    }
    let p = Progress { phase, bytes_done, bytes_total, files_done, files_total, car_bytes, car_bound, elapsed_ms };
    Some((seq, p))
}

/// The progress a lock's content reports: the record right after a complete owner line, if
/// it is complete and valid ([`parse_record`]).
pub fn progress_of(content: &[u8]) -> Option<Progress> {
    let start = content.iter().position(|&b| b == b'\n')? + 1;
    parse_record(content.get(start..start + RECORD_LEN)?).map(|(_, p)| p)
}

/// What a lock file shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The owner line's host (empty when the owner line is incomplete or names none).
    pub host: String,
    /// The owner line's pid (0 when unknown).
    pub pid: u32,
    /// Time since the lock was last written (its mtime, as of the caller's `now`).
    pub age: Duration,
    /// The builder's progress, when its lock holds a valid record.
    pub progress: Option<Progress>,
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

/// Removes the lock at `path` if its owner line names `owner` (host and pid: a live process's
/// own claim), through [`remove_if`], so a lock that another builder took over in between is
/// never removed. For cleanup when the claim's identity is not known yet (a signal arriving while
/// the claim is being made). Returns whether it was removed.
pub fn remove_if_owned_by(path: &Path, owner: &Owner) -> io::Result<bool> {
    // Judged by inode only: this process's own heartbeat may rewrite the progress record meanwhile.
    remove_when(path, false, &|_, content| Ok(holder_of(content) == Some((owner.host.as_str(), owner.pid))))
}

/// Reads the lock at `path` (metadata and content) and, if `gone(metadata, content)` says so,
/// removes it through [`remove_if`]: by its inode, and by its content too when `same_content`.
fn remove_when(
    path: &Path,
    same_content: bool,
    gone: &dyn Fn(&fs::Metadata, &str) -> io::Result<bool>,
) -> io::Result<bool> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let content = fs::read_to_string(path).unwrap_or_default();
    if !gone(&meta, &content)? {
        return Ok(false);
    }
    remove_if(path, ident(&meta), same_content.then_some(content.as_str()))
}

/// The `host` and `pid` a lock's content names in its owner line, if that line is complete
/// (ended by its newline).
pub fn holder_of(content: &str) -> Option<(&str, u32)> {
    let line = content.split_once('\n')?.0;
    let mut host = None;
    let mut pid = None;
    for field in line.split_whitespace() {
        if let Some(h) = field.strip_prefix("host=") {
            host = Some(h);
        } else if let Some(p) = field.strip_prefix("pid=") {
            pid = p.parse().ok();
        }
    }
    Some((host?, pid?))
}

/// Who holds batch `id`'s lock in `dir`, how long ago it was refreshed (as of `now`) and the
/// progress it reports, if it is locked. A lock whose content names no holder (or not yet: its
/// owner line is incomplete) reports an empty host and pid 0.
pub fn read_lock(dir: &Path, id: &str, now: SystemTime) -> Option<Held> {
    let path = lock_path(dir, id);
    let meta = fs::metadata(&path).ok()?;
    let age = meta.modified().ok().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
    let mut content = Vec::new();
    if let Ok(f) = fs::File::open(&path) {
        let _ = f.take(64 << 10).read_to_end(&mut content);
    }
    let (host, pid) =
        holder_of(&String::from_utf8_lossy(&content)).map(|(h, p)| (h.to_string(), p)).unwrap_or_default();
    Some(Held { host, pid, age, progress: progress_of(&content) })
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
    remove_when(&lock_path(dir, id), true, &|meta, content| {
        let age = now.duration_since(meta.modified()?).unwrap_or_default();
        Ok(age >= stale_after || holder_of(content).is_some_and(|(h, p)| dead(h, p)))
    })
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
                let lock = Lock { path, file: f, content, ident: id, seq: AtomicU64::new(0) };
                return Ok(Claim::Claimed { lock, took_over });
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
            return Ok(Claim::Busy { holder: holder.lines().next().unwrap_or("").trim().to_string(), age });
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

    /// Refreshes the lock's mtime by rewriting its owner line (the same bytes) through the
    /// claim's own open file. Returns `false` if the lock is no longer ours; a transient error
    /// reading the path is an `Err` (the caller may retry at the next beat).
    pub fn heartbeat(&self) -> io::Result<bool> {
        if !names(&self.path, self.ident)? {
            return Ok(false);
        }
        self.file.write_all_at(&self.content, 0)?;
        Ok(true)
    }

    /// Refreshes the lock and records `progress`: writes the next progress record after the
    /// owner line with one positioned write through the claim's own open file (the record's
    /// length never changes, so the file is never truncated). Returns `false` if the lock is no
    /// longer ours, as [`Lock::heartbeat`].
    pub fn heartbeat_with(&self, progress: &Progress) -> io::Result<bool> {
        if !names(&self.path, self.ident)? {
            return Ok(false);
        }
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        self.file.write_all_at(&record(seq, progress), self.content.len() as u64)?;
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

    /// Cleanup by owner (a signal during the claim) removes this process's lock only.
    #[test]
    fn a_lock_is_removed_by_its_owner_line_only_for_that_owner() {
        let dir = tempfile::tempdir().unwrap();
        let a = Owner { host: "a".into(), pid: 1 };
        let Claim::Claimed { lock, .. } =
            claim(dir.path(), "x", &a, SystemTime::now(), Duration::from_secs(60)).unwrap()
        else {
            panic!()
        };
        assert!(lock.heartbeat().unwrap());
        let path = lock.path().to_path_buf();
        for other in [Owner { host: "a".into(), pid: 2 }, Owner { host: "b".into(), pid: 1 }] {
            assert!(!remove_if_owned_by(&path, &other).unwrap());
            assert!(path.exists());
        }
        assert!(remove_if_owned_by(&path, &a).unwrap());
        assert!(!path.exists());
        assert!(!remove_if_owned_by(&path, &a).unwrap(), "gone: nothing to remove");
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

    fn sample(seq: u64) -> Progress {
        Progress {
            phase: if seq.is_multiple_of(2) { Phase::Hashing } else { Phase::Writing },
            bytes_done: 1_000 * seq,
            bytes_total: 1 << 40,
            files_done: seq,
            files_total: 1_000_000,
            car_bytes: 77 * seq,
            car_bound: (1 << 40) + 4096,
            elapsed_ms: 30_000 * seq,
        }
    }

    #[test]
    fn progress_round_trips_through_the_lock_and_the_owner_line_stays() {
        let dir = tempfile::tempdir().unwrap();
        let a = Owner { host: "node7".into(), pid: 42 };
        let now = SystemTime::now();
        let Claim::Claimed { lock, .. } = claim(dir.path(), "b1", &a, now, Duration::from_secs(60)).unwrap() else {
            panic!()
        };
        let held = read_lock(dir.path(), "b1", now).unwrap();
        assert_eq!((held.host.as_str(), held.pid, held.progress), ("node7", 42, None));
        let len = fs::metadata(lock.path()).unwrap().len();
        for seq in 1..=3 {
            assert!(lock.heartbeat_with(&sample(seq)).unwrap());
            let held = read_lock(dir.path(), "b1", now).unwrap();
            assert_eq!((held.host.as_str(), held.pid), ("node7", 42));
            assert_eq!(held.progress, Some(sample(seq)));
            assert_eq!(fs::metadata(lock.path()).unwrap().len(), len + RECORD_LEN as u64, "fixed length");
        }
        // A plain heartbeat rewrites the owner line only: the record stays readable.
        assert!(lock.heartbeat().unwrap());
        assert_eq!(read_lock(dir.path(), "b1", now).unwrap().progress, Some(sample(3)));
        let content = fs::read_to_string(lock.path()).unwrap();
        assert!(content.starts_with("host=node7 pid=42 time="), "{content}");
        assert_eq!(parse_record(&content.as_bytes()[len as usize..]).unwrap().0, 3);
        // Every number at its widest still fits the record.
        let max = Progress {
            phase: Phase::Checking,
            bytes_done: u64::MAX,
            bytes_total: u64::MAX,
            files_done: u64::MAX,
            files_total: u64::MAX,
            car_bytes: u64::MAX,
            car_bound: u64::MAX,
            elapsed_ms: u64::MAX,
        };
        assert_eq!(parse_record(&record(u64::MAX, &max)), Some((u64::MAX, max)));
        // Release still recognises the lock whose content the records changed.
        lock.release().unwrap();
        assert!(!lock_path(dir.path(), "b1").exists());
    }

    #[test]
    fn a_torn_truncated_or_garbled_record_is_never_misread() {
        let owner = b"host=node7 pid=42 time=1 token=1.000000000\n".to_vec();
        let (old, new) = (record(5, &sample(5)), record(6, &sample(6)));
        // Every truncation of the content: no progress, or (complete) the right one.
        let full = [owner.clone(), new.clone()].concat();
        for n in 0..full.len() {
            assert_eq!(progress_of(&full[..n]), None, "truncated at {n}");
            let c = String::from_utf8_lossy(&full[..n]).into_owned();
            assert!(holder_of(&c).is_none() || n > owner.len() - 1, "an incomplete owner line names nobody ({n})");
        }
        assert_eq!(progress_of(&full), Some(sample(6)));
        // A read mixing two writes at one crossing point (either order): one of them, or none.
        for (x, y) in [(&old, &new), (&new, &old)] {
            let mut taken = 0;
            for c in 0..=RECORD_LEN {
                let mix = [&x[..c], &y[c..]].concat();
                match parse_record(&mix) {
                    None => {}
                    Some(r) => {
                        assert!(mix == *x || mix == *y, "crossing at {c} taken: {r:?}");
                        taken += 1;
                    }
                }
            }
            assert!(taken > 0);
        }
        // Two crossings, zeroed pages, a flipped byte anywhere, a wrong length.
        for a in (0..RECORD_LEN).step_by(7) {
            for b in (a..RECORD_LEN).step_by(11) {
                let mix = [&old[..a], &new[a..b], &old[b..]].concat();
                if let Some(r) = parse_record(&mix) {
                    assert!(mix == old || mix == new, "{a}..{b} taken: {r:?}");
                }
            }
        }
        for i in 0..RECORD_LEN {
            let mut bad = new.clone();
            bad[i] ^= 0x01;
            assert_eq!(parse_record(&bad), None, "byte {i} flipped");
            let mut zeroed = new.clone();
            zeroed[i..].fill(0);
            assert_eq!(parse_record(&zeroed), None, "zeroed from {i}");
        }
        assert_eq!(parse_record(&[new.clone(), b" ".to_vec()].concat()), None);
        // Done beyond total is refused even with a good checksum.
        let mut p = sample(1);
        p.bytes_done = p.bytes_total + 1;
        assert_eq!(parse_record(&record(1, &p)), None);
    }
}
