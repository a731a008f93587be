//! Per-batch lock files, so several builders (processes or machines sharing the output folder,
//! e.g. over NFS) never build the same batch at once, and report how far along they are.
//!
//! The protocol (ARCHITECTURE.md states it with its assumptions):
//!
//! * **Claim**: write the owner line to a temporary file and `link` it to `DIR/<id>.lock`
//!   (which fails if the lock exists), so a lock is never seen without its owner line; keep it
//!   open. The *owner line* names the owner ([`Owner`]: `host`, `pid`, `boot` ID, PID
//!   namespace `pidns`, claim time, token). The claim is identified by the file's
//!   `(device, inode)`.
//! * **Ownership** is checked on the claim's own file: the lock is held while the path still
//!   names the inode we created ([`Lock::held`]); a takeover replaces the path with another
//!   inode.
//! * **Heartbeat**: the owner writes through its own open file every few seconds
//!   ([`Lock::heartbeat_with`] a progress record, or [`Lock::heartbeat`] the owner line again),
//!   which advances that inode's mtime (set by the file server, so no clock is read here). A
//!   heartbeat after a takeover writes to the old, renamed inode: it can never touch the new
//!   owner's lock.
//! * **Judgement** ([`Rule::judge`], the one rule of `build`, `status` and the workstation): a
//!   holder is provably dead only when its host is the judge's and either its boot ID differs
//!   (the host rebooted since) or boot ID and PID namespace are both the judge's and
//!   `kill(pid, 0)` finds no such process. A pid means nothing outside its PID namespace (a
//!   container sharing the host name), so anything else — other hosts, other namespaces, lock
//!   lines of older versions without these fields, garbled ones — is judged by heartbeat age.
//! * **Takeover** of a lock not refreshed for the stale limit (or whose holder is provably
//!   dead): rename the path aside (atomic; one renamer wins), then check the renamed file is
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
//! A lock's content comes from a shared folder and is not trusted: a lock path that is not a
//! regular file (a symlink, a folder, a pipe) is refused ([`LockError::NotAFile`]), never
//! followed nor opened for writing; at most [`READ_MAX`] bytes are read; the owner line is
//! parsed strictly ([`owner_of`]) and a garbled one names nobody (judged by age alone).
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
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default seconds after which a lock not refreshed is stale (`--stale-after`).
pub const DEFAULT_STALE_AFTER: u64 = 300;
/// Default seconds between lock refreshes (`--heartbeat`).
pub const DEFAULT_HEARTBEAT: u64 = 30;

/// Bytes of a lock file read at most: its content comes from a shared folder and is not
/// trusted (an owner line and a progress record take well under 1 KiB).
pub const READ_MAX: usize = 4096;
/// Longest owner line taken (newline excluded); a longer first line is garbled.
const OWNER_LINE_MAX: usize = 1024;
/// Largest pid a Linux kernel hands out (`PID_MAX_LIMIT`): a lock naming a larger one is garbled.
const PID_MAX: u32 = 1 << 22;
/// Longest host name taken (a DNS name is at most 253 bytes).
const HOST_MAX: usize = 255;
/// Longest boot ID taken (the kernel's is a 36-character UUID).
const BOOT_MAX: usize = 64;

/// Who claims a lock: a host and a process on it, and what it takes to judge that process from
/// another one (its kernel's boot and the PID namespace its pid means something in). Written
/// into the lock as its owner line: `host=H pid=P boot=B pidns=N` (`boot` and `pidns` when
/// known; lock lines of older versions have neither).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Host name: a plain token (letters, digits, `.`, `-`, `_`; see [`plain_host`]).
    pub host: String,
    /// Process ID, in the owner's PID namespace.
    pub pid: u32,
    /// The boot ID of the owner's kernel (`/proc/sys/kernel/random/boot_id`), when known.
    pub boot: Option<String>,
    /// The owner's PID namespace (the inode of `/proc/self/ns/pid`), when known.
    pub pidns: Option<u64>,
}

impl Owner {
    /// An owner known by host and pid alone (as lock lines of older versions name them): never
    /// provably dead, judged by its heartbeat.
    pub fn named(host: &str, pid: u32) -> Owner {
        Owner { host: plain_host(host), pid, boot: None, pidns: None }
    }

    /// This process on `host` (the caller finds the name): its pid, and its boot ID and PID
    /// namespace as `/proc` tells them (absent where `/proc` cannot be read).
    pub fn this_process(host: &str) -> Owner {
        let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|b| boot_ok(b));
        // `metadata` follows the magic link to the namespace itself: its inode names it.
        let pidns = fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino()).filter(|&n| n != 0);
        Owner { host: plain_host(host), pid: std::process::id(), boot, pidns }
    }
}

/// The owner line's fields: `host=H pid=P`, then `boot=B pidns=N` when known.
impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "host={} pid={}", self.host, self.pid)?;
        if let Some(b) = &self.boot {
            write!(f, " boot={b}")?;
        }
        if let Some(n) = self.pidns {
            write!(f, " pidns={n}")?;
        }
        Ok(())
    }
}

/// `name` as a plain token for an owner line: every character other than ASCII letters,
/// digits, `.`, `-` and `_` becomes `_`, at most 255 bytes; `localhost` when empty.
pub fn plain_host(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .take(HOST_MAX)
        .collect();
    if s.is_empty() {
        s.push_str("localhost");
    }
    s
}

fn host_ok(h: &str) -> bool {
    (1..=HOST_MAX).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn boot_ok(b: &str) -> bool {
    (1..=BOOT_MAX).contains(&b.len()) && b.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-')
}

/// A decimal number without sign or leading zero, of at most `digits` digits.
fn number(s: &str, digits: usize) -> Option<u64> {
    if s.is_empty() || s.len() > digits || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// The owner a lock's content names in its owner line, parsed strictly (the content is
/// untrusted): the line must be complete (ended by its newline, at most 1 KiB), printable
/// ASCII, `key=value` tokens separated by single spaces, each known key at most once, `host` a
/// plain token, `pid` in 1..=2^22, `boot` a hex-and-dash token, `pidns` a number; `time`,
/// `token` and keys of later versions are skipped. `None` for anything else: a garbled lock,
/// judged by its age alone.
pub fn owner_of(content: &[u8]) -> Option<Owner> {
    fn once<T>(slot: &mut Option<T>, v: Option<T>) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        *slot = Some(v?);
        Some(())
    }
    let end = content.iter().take(OWNER_LINE_MAX + 1).position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&content[..end]).ok()?;
    let (mut host, mut pid, mut boot, mut pidns) = (None, None, None, None);
    for field in line.split(' ') {
        let (key, value) = field.split_once('=')?;
        if key.is_empty()
            || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            || value.is_empty()
            || !value.bytes().all(|b| b.is_ascii_graphic())
        {
            return None;
        }
        match key {
            "host" => once(&mut host, host_ok(value).then(|| value.to_string()))?,
            "pid" => once(&mut pid, number(value, 7).filter(|p| (1..=PID_MAX as u64).contains(p)).map(|p| p as u32))?,
            "boot" => once(&mut boot, boot_ok(value).then(|| value.to_string()))?,
            "pidns" => once(&mut pidns, number(value, 20).filter(|&n| n != 0))?,
            _ => {}
        }
    }
    Some(Owner { host: host?, pid: pid?, boot, pidns })
}

/// Whether process `pid` exists in this process's PID namespace: `kill(pid, 0)` fails with
/// `ESRCH` only when there is none (`EPERM` means it exists under another user). A pid out of
/// range counts as existing (nothing is known).
pub fn pid_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return true };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// What a lock's holder is judged to be ([`Rule::judge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Refreshed within the stale limit and not provably dead: a builder may be at work.
    Live,
    /// Not refreshed within the stale limit: its builder most likely died.
    NotRefreshed,
    /// Its process is gone: same host, boot and PID namespace as the judge, and `kill(pid, 0)`
    /// says there is no such process.
    ProcessGone,
    /// Its host rebooted since it was claimed: same host, another boot ID.
    Rebooted,
}

impl Verdict {
    /// Why a lock that is not [`Verdict::Live`] may be taken over, for people.
    pub fn reason(self) -> &'static str {
        match self {
            Verdict::Live => "its builder is alive or cannot be judged from here",
            Verdict::NotRefreshed => "not refreshed within the stale limit: its builder likely died",
            Verdict::ProcessGone => "its process is gone (this host, same boot and PID namespace)",
            Verdict::Rebooted => "its host rebooted since it was claimed",
        }
    }
}

/// How lock holders are judged, the same everywhere (`build`, `status`, the workstation).
#[derive(Clone, Copy)]
pub struct Rule<'a> {
    /// The judging process ([`Owner::this_process`]).
    pub me: &'a Owner,
    /// Age after which a lock not refreshed is stale.
    pub stale_after: Duration,
    /// Whether a pid of the judge's PID namespace exists ([`pid_exists`]; tests pass their own).
    pub exists: &'a (dyn Fn(u32) -> bool + Sync),
}

impl std::fmt::Debug for Rule<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule").field("me", self.me).field("stale_after", &self.stale_after).finish_non_exhaustive()
    }
}

impl<'a> Rule<'a> {
    /// The rule of process `me` on this machine: pids probed with [`pid_exists`].
    pub fn new(me: &'a Owner, stale_after: Duration) -> Rule<'a> {
        Rule { me, stale_after, exists: &pid_exists }
    }

    /// Judges a lock whose owner line names `holder` (`None`: garbled or incomplete) and that
    /// was last refreshed `age` ago. A holder is provably dead only when its host is ours and
    /// either its boot ID differs from ours (the machine rebooted since: [`Verdict::Rebooted`]),
    /// or boot ID and PID namespace are both ours, the pid is not ours and no such process
    /// exists ([`Verdict::ProcessGone`]). Anything else — another host, another PID namespace
    /// (a container sharing the host name), a lock line without these fields, a garbled one —
    /// is decided by the heartbeat age alone.
    pub fn judge(&self, holder: Option<&Owner>, age: Duration) -> Verdict {
        if let Some(h) = holder.filter(|h| h.host == self.me.host) {
            if let (Some(theirs), Some(ours)) = (&h.boot, &self.me.boot) {
                if theirs != ours {
                    return Verdict::Rebooted;
                }
                if h.pidns.is_some() && h.pidns == self.me.pidns && h.pid != self.me.pid && !(self.exists)(h.pid) {
                    return Verdict::ProcessGone;
                }
            }
        }
        if age >= self.stale_after {
            Verdict::NotRefreshed
        } else {
            Verdict::Live
        }
    }
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

    /// Whether this progress is of a build with these totals (a record left by a build of
    /// other work under the same ID is not shown as this one's).
    pub fn is_for(&self, bytes_total: u64, files_total: u64, car_bound: u64) -> bool {
        self.bytes_total == bytes_total && self.files_total == files_total && self.car_bound == car_bound
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
    /// The owner line's host (empty when the owner line is incomplete or garbled).
    pub host: String,
    /// The owner line's pid (0 when unknown).
    pub pid: u32,
    /// Time since the lock was last written (its mtime, as of the caller's `now`).
    pub age: Duration,
    /// The builder's progress, when its lock holds a valid record.
    pub progress: Option<Progress>,
    /// Its holder as the caller's [`Rule`] judges it.
    pub verdict: Verdict,
}

/// Errors reading, claiming or removing a lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock path is a symlink, a folder or anything else but a regular file: never
    /// followed, never taken over.
    #[error("{path}: the lock path is {kind}, not a regular file; refusing to use it (remove it by hand if no builder made it)")]
    NotAFile {
        /// The lock path.
        path: PathBuf,
        /// What it is (`a symbolic link`, `a folder`, …).
        kind: &'static str,
    },
    /// Reading or writing the lock failed.
    #[error("{path}: {source}")]
    Io {
        /// The lock path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Other builders replaced the lock again and again while it was being claimed.
    #[error("{path}: could not claim the lock (contended)")]
    Contended {
        /// The lock path.
        path: PathBuf,
    },
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

/// What a file that is not a regular one is, for [`LockError::NotAFile`].
fn kind_of(t: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "an unusual file"
    }
}

/// Opens the regular file at `path` to read it, never following a symlink (`O_NOFOLLOW`) nor
/// blocking on a pipe (`O_NONBLOCK`); `Ok(None)` if there is none. Any other kind of file is
/// [`LockError::NotAFile`], also when the path is replaced by one between the look and the open.
fn open_regular(path: &Path) -> Result<Option<(fs::File, fs::Metadata)>, LockError> {
    let io_err = |source| LockError::Io { path: path.to_path_buf(), source };
    let not_a_file = |t: fs::FileType| LockError::NotAFile { path: path.to_path_buf(), kind: kind_of(t) };
    // Looked at first, so a device or a pipe is never opened.
    match fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => return Err(not_a_file(m.file_type())),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    }
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(LockError::NotAFile { path: path.to_path_buf(), kind: "a symbolic link" })
        }
        Err(e) => return Err(io_err(e)),
    };
    let m = f.metadata().map_err(io_err)?;
    if !m.file_type().is_file() {
        return Err(not_a_file(m.file_type()));
    }
    Ok(Some((f, m)))
}

/// A lock file as read: the file's identity, its mtime and its first [`READ_MAX`] bytes.
struct Seen {
    ident: (u64, u64),
    mtime: SystemTime,
    content: Vec<u8>,
}

impl Seen {
    /// Reads the lock at `path` (`None`: there is none), through one open file, so identity,
    /// mtime and content are those of one file.
    fn read(path: &Path) -> Result<Option<Seen>, LockError> {
        let Some((f, m)) = open_regular(path)? else { return Ok(None) };
        let io_err = |source| LockError::Io { path: path.to_path_buf(), source };
        let mut content = Vec::new();
        f.take(READ_MAX as u64).read_to_end(&mut content).map_err(io_err)?;
        Ok(Some(Seen { ident: ident(&m), mtime: m.modified().map_err(io_err)?, content }))
    }

    fn age(&self, now: SystemTime) -> Duration {
        now.duration_since(self.mtime).unwrap_or_default()
    }

    fn owner(&self) -> Option<Owner> {
        owner_of(&self.content)
    }
}

/// A name unique to this call, for moving a lock aside in a shared folder: process IDs repeat
/// across PID namespaces and hosts, so it carries 64 random bits (std's randomly keyed hasher).
fn unique() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

/// Moves `path` out of the way if it names file `id`, then removes it: rename aside (atomic),
/// check the renamed file is `id` (and holds `content`, when given: an inode number can be reused
/// once a file is gone, the content carries the claim's token), and if it is not (the path was
/// replaced in between), link it back (never overwriting) and leave it. Returns whether `id`
/// was removed.
pub fn remove_if(path: &Path, id: (u64, u64), content: Option<&[u8]>) -> io::Result<bool> {
    if !names(path, id)? {
        return Ok(false);
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let aside = path.with_file_name(format!(".{name}.gone.{}.{}.{:016x}", std::process::id(), id.1, unique()));
    match fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    let ours = match Seen::read(&aside) {
        Ok(Some(seen)) => seen.ident == id && content.is_none_or(|c| seen.content == c),
        _ => false,
    };
    if !ours {
        // `link` never follows a symlink nor overwrites: whatever was renamed goes back as it was.
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
        /// The holder's owner line (`host=… pid=…`, as parsed: never raw bytes of the lock).
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

/// Removes the lock at `path` if its owner line names `owner` exactly (host, pid, boot ID and
/// PID namespace: a live process's own claim), through [`remove_if`], so a lock that another
/// builder took over in between is never removed. For cleanup when the claim's identity is not
/// known yet (a signal arriving while the claim is being made). Returns whether it was removed.
pub fn remove_if_owned_by(path: &Path, owner: &Owner) -> Result<bool, LockError> {
    // Judged by inode only: this process's own heartbeat may rewrite the progress record meanwhile.
    remove_when(path, false, &|seen| seen.owner().as_ref() == Some(owner))
}

/// Reads the lock at `path` and, if `gone(seen)` says so, removes it through [`remove_if`]: by
/// its inode, and by its content too when `same_content`.
fn remove_when(path: &Path, same_content: bool, gone: &dyn Fn(&Seen) -> bool) -> Result<bool, LockError> {
    let Some(seen) = Seen::read(path)? else { return Ok(false) };
    if !gone(&seen) {
        return Ok(false);
    }
    remove_if(path, seen.ident, same_content.then_some(&seen.content[..]))
        .map_err(|source| LockError::Io { path: path.to_path_buf(), source })
}

/// Who holds batch `id`'s lock in `dir`, how long ago it was refreshed (as of `now`), the
/// progress it reports and how `rule` judges its holder, if it is locked. A lock whose content
/// names no holder (garbled, or not yet: its owner line is incomplete) reports an empty host
/// and pid 0 and is judged by its age. A lock path that is not a regular file is an error.
pub fn read_lock(dir: &Path, id: &str, now: SystemTime, rule: &Rule) -> Result<Option<Held>, LockError> {
    let Some(seen) = Seen::read(&lock_path(dir, id))? else { return Ok(None) };
    let owner = seen.owner();
    let age = seen.age(now);
    let verdict = rule.judge(owner.as_ref(), age);
    let (host, pid) = owner.map(|o| (o.host, o.pid)).unwrap_or_default();
    Ok(Some(Held { host, pid, age, progress: progress_of(&seen.content), verdict }))
}

/// Removes batch `id`'s lock if `rule` judges its builder gone (provably dead, or not refreshed
/// within the stale limit). For a batch already built whose builder died between committing and
/// releasing. Only the lock judged is removed (see [`remove_if`]).
pub fn remove_abandoned(dir: &Path, id: &str, now: SystemTime, rule: &Rule) -> Result<bool, LockError> {
    remove_when(&lock_path(dir, id), true, &|seen| rule.judge(seen.owner().as_ref(), seen.age(now)) != Verdict::Live)
}

/// Tries to claim batch `id` in `dir` at time `now` for `rule.me`, taking over a lock whose
/// holder `rule` does not judge [`Verdict::Live`]. The lock appears whole (written to a
/// temporary, then linked into place); a lock path that is not a regular file is refused
/// ([`LockError::NotAFile`]).
pub fn claim(dir: &Path, id: &str, rule: &Rule, now: SystemTime) -> Result<Claim, LockError> {
    let path = lock_path(dir, id);
    let io_err = |source| LockError::Io { path: lock_path(dir, id), source };
    let (secs, nanos) = unix(now);
    let content = format!("{} time={secs} token={secs}.{nanos:09}\n", rule.me).into_bytes();
    let mut took_over = false;
    for _ in 0..8 {
        // The owner line is written to a temporary first and the lock appears by `link`, whole:
        // a builder killed mid-claim leaves no empty lock (which no one could judge dead and
        // would block the batch until stale), at most a temporary the next claimant removes.
        let (f, temporary) = filled_temporary(dir, id, &content).map_err(io_err)?;
        match fs::hard_link(&temporary, &path) {
            Ok(()) => {
                drop(temporary);
                let id = ident(&f.metadata().map_err(io_err)?);
                let lock = Lock { path, file: f, content, ident: id, seq: AtomicU64::new(0) };
                return Ok(Claim::Claimed { lock, took_over });
            }
            // NotFound: the lock's holder removed our temporary with its batch's leftovers.
            Err(e) if matches!(e.kind(), io::ErrorKind::AlreadyExists | io::ErrorKind::NotFound) => {}
            Err(e) => return Err(io_err(e)),
        }
        let Some(seen) = Seen::read(&path)? else { continue };
        let holder = seen.owner();
        let age = seen.age(now);
        if rule.judge(holder.as_ref(), age) == Verdict::Live {
            let holder = holder.map_or_else(|| "an unreadable or incomplete lock".to_string(), |o| o.to_string());
            return Ok(Claim::Busy { holder, age });
        }
        // Take over exactly the lock judged: a lock created since is restored.
        if remove_if(&path, seen.ident, Some(&seen.content)).map_err(io_err)? {
            took_over = true;
        }
    }
    Err(LockError::Contended { path })
}

/// A temporary `.<id>.lock.<random>.partial` in `dir` holding `content`, synced, readable by all
/// (other builders judge the lock by its content), open for the heartbeat's writes.
fn filled_temporary(dir: &Path, id: &str, content: &[u8]) -> io::Result<(fs::File, tempfile::TempPath)> {
    use std::os::unix::fs::PermissionsExt;
    let mut t = tempfile::Builder::new()
        .prefix(&format!(".{id}.lock."))
        .suffix(".partial")
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)?;
    t.write_all(content)?;
    t.as_file().sync_all()?;
    Ok(t.into_parts())
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

    /// A judge to whom no process exists but its own (locks of hosts `a`, `b`, `node7` are
    /// judged by their age).
    fn rule(me: &Owner, stale_secs: u64) -> Rule<'_> {
        Rule { me, stale_after: Duration::from_secs(stale_secs), exists: &|_| false }
    }

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
        assert!(!remove_if(&path, judged, Some(b"host=old pid=1\n")).unwrap(), "not the judged file: left alone");
        assert_eq!(ident(&fs::metadata(&path).unwrap()), fresh);
        assert_eq!(fs::read_to_string(&path).unwrap(), "host=fresh pid=2\n");
        assert!(!remove_if(&path, fresh, Some(b"host=old pid=1\n")).unwrap(), "same inode, other content");
        assert!(remove_if(&path, fresh, Some(b"host=fresh pid=2\n")).unwrap());
        assert!(!path.exists());
    }

    /// Cleanup by owner (a signal during the claim) removes this process's lock only.
    #[test]
    fn a_lock_is_removed_by_its_owner_line_only_for_that_owner() {
        let dir = tempfile::tempdir().unwrap();
        let a = Owner { host: "a".into(), pid: 1, boot: Some("b".into()), pidns: Some(3) };
        let Claim::Claimed { lock, .. } = claim(dir.path(), "x", &rule(&a, 60), SystemTime::now()).unwrap() else {
            panic!()
        };
        assert!(lock.heartbeat().unwrap());
        let path = lock.path().to_path_buf();
        let others = [
            Owner { pid: 2, ..a.clone() },
            Owner { host: "b".into(), ..a.clone() },
            Owner { pidns: Some(4), ..a.clone() },
            Owner { boot: None, ..a.clone() },
        ];
        for other in others {
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
        let a = Owner::named("a", 1);
        let b = Owner::named("b", 2);
        let now = SystemTime::now();
        let Claim::Claimed { lock: old, .. } = claim(dir.path(), "x", &rule(&a, 60), now).unwrap() else { panic!() };
        let later = now + Duration::from_secs(120);
        let Claim::Claimed { lock: new, took_over: true } = claim(dir.path(), "x", &rule(&b, 60), later).unwrap()
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
    fn a_lock_appears_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let a = Owner::named("a", 1);
        // A claimant killed mid-claim left its temporary: no lock, so the next claim is at once.
        std::fs::write(dir.path().join(".b00000.lock.x1Y2z3.partial"), b"host=").unwrap();
        let lock = match claim(dir.path(), "b00000", &rule(&a, 60), SystemTime::now()).unwrap() {
            Claim::Claimed { lock, .. } => lock,
            other => panic!("{other:?}"),
        };
        let content = std::fs::read(dir.path().join("b00000.lock")).unwrap();
        assert_eq!(owner_of(&content).map(|o| o.pid), Some(1), "{}", String::from_utf8_lossy(&content));
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".b00000.lock.x1Y2z3.partial", "b00000.lock"], "only the dead claimant's temporary is left");
        assert_eq!(crate::shipment::build::remove_partials(dir.path(), "b00000").unwrap(), 1);
        assert!(lock.held());
    }

    #[test]
    fn claim_busy_stale() {
        let dir = tempfile::tempdir().unwrap();
        let a = Owner::named("a", 1);
        let b = Owner::named("b", 2);
        let now = SystemTime::now();
        let lock = match claim(dir.path(), "b00000", &rule(&a, 60), now).unwrap() {
            Claim::Claimed { lock, took_over } => {
                assert!(!took_over);
                lock
            }
            other => panic!("{other:?}"),
        };
        assert!(lock.held());
        assert!(lock.heartbeat().unwrap());
        match claim(dir.path(), "b00000", &rule(&b, 60), now).unwrap() {
            Claim::Busy { holder, .. } => assert!(holder.starts_with("host=a pid=1"), "{holder}"),
            other => panic!("{other:?}"),
        }
        // Seen from 2 minutes later, the lock is stale: b takes over, a loses it.
        let later = now + Duration::from_secs(120);
        let lock_b = match claim(dir.path(), "b00000", &rule(&b, 60), later).unwrap() {
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
        let a = Owner::named("node7", 42);
        let now = SystemTime::now();
        let r = rule(&a, 60);
        let Claim::Claimed { lock, .. } = claim(dir.path(), "b1", &r, now).unwrap() else { panic!() };
        let held = read_lock(dir.path(), "b1", now, &r).unwrap().unwrap();
        assert_eq!((held.host.as_str(), held.pid, held.progress), ("node7", 42, None));
        let len = fs::metadata(lock.path()).unwrap().len();
        for seq in 1..=3 {
            assert!(lock.heartbeat_with(&sample(seq)).unwrap());
            let held = read_lock(dir.path(), "b1", now, &r).unwrap().unwrap();
            assert_eq!((held.host.as_str(), held.pid), ("node7", 42));
            assert_eq!(held.progress, Some(sample(seq)));
            assert_eq!(fs::metadata(lock.path()).unwrap().len(), len + RECORD_LEN as u64, "fixed length");
        }
        // A plain heartbeat rewrites the owner line only: the record stays readable.
        assert!(lock.heartbeat().unwrap());
        assert_eq!(read_lock(dir.path(), "b1", now, &r).unwrap().unwrap().progress, Some(sample(3)));
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
            assert!(
                owner_of(&full[..n]).is_none() || n > owner.len() - 1,
                "an incomplete owner line names nobody ({n})"
            );
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

    /// The judgement table: provably dead only with host, boot and PID namespace all ours and
    /// no such process; another boot of our host is dead; anything else waits for the heartbeat.
    #[test]
    fn a_holder_is_judged_dead_only_when_this_host_boot_and_namespace_prove_it() {
        let me = Owner { host: "h".into(), pid: 100, boot: Some("b1".into()), pidns: Some(7) };
        let r = Rule { me: &me, stale_after: Duration::from_secs(60), exists: &|pid| pid == 5 || pid == 100 };
        let fresh = Duration::from_secs(1);
        let old = Duration::from_secs(60);
        let gone = Owner { pid: 6, ..me.clone() };
        let cases = [
            (Some(gone.clone()), Verdict::ProcessGone),
            (Some(Owner { pid: 5, ..me.clone() }), Verdict::Live),
            (Some(me.clone()), Verdict::Live),
            (Some(Owner { boot: Some("b0".into()), ..gone.clone() }), Verdict::Rebooted),
            (Some(Owner { boot: Some("b0".into()), pid: 5, ..gone.clone() }), Verdict::Rebooted),
            (Some(Owner { pidns: Some(8), ..gone.clone() }), Verdict::Live),
            (Some(Owner { pidns: None, ..gone.clone() }), Verdict::Live),
            (Some(Owner { boot: None, ..gone.clone() }), Verdict::Live),
            (Some(Owner { host: "g".into(), ..gone.clone() }), Verdict::Live),
            (Some(Owner { host: "g".into(), boot: Some("b0".into()), ..gone.clone() }), Verdict::Live),
            (Some(Owner::named("h", 6)), Verdict::Live),
            (None, Verdict::Live),
        ];
        for (holder, want) in &cases {
            assert_eq!(r.judge(holder.as_ref(), fresh), *want, "{holder:?}");
            let stale = if *want == Verdict::Live { Verdict::NotRefreshed } else { *want };
            assert_eq!(r.judge(holder.as_ref(), old), stale, "{holder:?} (stale)");
        }
        // A judge that could not read its own boot ID or namespace proves nothing.
        let blind = Owner { boot: None, pidns: None, ..me.clone() };
        let r = Rule { me: &blind, ..r };
        assert_eq!(r.judge(Some(&gone), fresh), Verdict::Live);
        assert_eq!(r.judge(Some(&Owner { boot: Some("b0".into()), ..gone }), fresh), Verdict::Live);
    }

    /// Owner lines are read strictly: one written here reads back as itself, a line of an older
    /// version (host and pid) still parses, and anything malformed names nobody.
    #[test]
    fn owner_lines_parse_strictly() {
        let me = Owner::this_process("build node/1 é");
        assert_eq!(me.host, "build_node_1__");
        assert!(me.boot.is_some() && me.pidns.is_some(), "{me:?}: /proc tells both on Linux");
        let line = format!("{me} time=1 token=1.000000001\n");
        assert_eq!(owner_of(line.as_bytes()), Some(me.clone()));
        assert_eq!(owner_of(b"host=old pid=1 time=0 token=0\n"), Some(Owner::named("old", 1)));
        assert_eq!(owner_of(b"host=a pid=4194304 later=field\n"), Some(Owner::named("a", 1 << 22)));
        assert_eq!(
            owner_of(b"host=a pid=2 boot=eadd7927-f326 pidns=4026531836\n"),
            Some(Owner { host: "a".into(), pid: 2, boot: Some("eadd7927-f326".into()), pidns: Some(4026531836) })
        );
        let long = format!("host=a pid=1 x={}\n", "y".repeat(OWNER_LINE_MAX));
        let bad: &[&[u8]] = &[
            b"host=a pid=1",             // no newline: incomplete
            b"host=a\n",                 // no pid
            b"pid=1\n",                  // no host
            b"host=a pid=0\n",           // pid out of range
            b"host=a pid=4194305\n",     // pid out of range
            b"host=a pid=99999999999\n", // too many digits
            b"host=a pid=-1\n",          // sign
            b"host=a pid=+1\n",          // sign
            b"host=a pid=01\n",          // leading zero
            b"host=a pid=1 pid=2\n",     // twice
            b"host=a host=b pid=1\n",    // twice
            b"host=a/b pid=1\n",         // not a plain token
            b"host=a\x1b[2J pid=1\n",    // control characters
            b"host=a\tpid=1\n",          // tab
            b"host=a  pid=1\n",          // empty token
            b" host=a pid=1\n",          // empty token
            b"host= pid=1\n",            // empty value
            b"host=a pid=1 boot=xyz\n",  // not hex
            b"host=a pid=1 pidns=0\n",   // no namespace 0
            b"host=a pid=1 pidns=1a\n",  // not a number
            b"host=a pid=1 junk\n",      // not key=value
            b"host=a pid=1 K=v\n",       // odd key
            b"host=\xff pid=1\n",        // not UTF-8
            b"host=\xc3\xa9 pid=1\n",    // not ASCII
        ];
        for b in bad {
            assert_eq!(owner_of(b), None, "{:?}", String::from_utf8_lossy(b));
        }
        assert_eq!(owner_of(long.as_bytes()), None, "a line over 1 KiB");
    }

    /// A lock path that is a symlink (dangling or not), a folder or a pipe is refused at once
    /// with an error naming it: never followed, never opened for writing, never retried.
    #[test]
    fn a_lock_path_that_is_not_a_regular_file_is_refused_and_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let a = Owner::named("a", 1);
        let target = dir.path().join("target");
        std::fs::write(&target, "host=x pid=1\n").unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options().write(true).open(&target).unwrap().set_modified(old).unwrap();
        std::os::unix::fs::symlink(&target, lock_path(dir.path(), "s")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), lock_path(dir.path(), "d")).unwrap();
        fs::create_dir(lock_path(dir.path(), "f")).unwrap();
        let fifo = std::ffi::CString::new(lock_path(dir.path(), "p").into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: a plain mkfifo on a path we own.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let now = SystemTime::now();
        for (id, kind) in [("s", "a symbolic link"), ("d", "a symbolic link"), ("f", "a folder"), ("p", "a named pipe")]
        {
            let path = lock_path(dir.path(), id);
            let e = claim(dir.path(), id, &rule(&a, 60), now).unwrap_err();
            assert!(matches!(&e, LockError::NotAFile { path: p, kind: k } if *p == path && *k == kind), "{e}");
            let msg = e.to_string();
            assert!(msg.starts_with(&path.display().to_string()) && !msg.contains('\n'), "{msg}");
            assert!(matches!(read_lock(dir.path(), id, now, &rule(&a, 60)), Err(LockError::NotAFile { .. })));
            assert!(matches!(remove_abandoned(dir.path(), id, now, &rule(&a, 60)), Err(LockError::NotAFile { .. })));
            assert!(fs::symlink_metadata(&path).is_ok(), "{id}: left in place");
        }
        assert_eq!(fs::read_to_string(&target).unwrap(), "host=x pid=1\n", "the link's target is untouched");
        assert!(!dir.path().join("nowhere").exists(), "a dangling link is not created through");
    }

    /// Lock contents are untrusted: a garbled (not UTF-8) stale lock is taken over, a huge one
    /// is read only in part, and a busy holder is described from its parsed owner line only.
    #[test]
    fn garbled_and_huge_locks_are_judged_by_their_age() {
        let dir = tempfile::tempdir().unwrap();
        let a = Owner::named("a", 1);
        let now = SystemTime::now();
        let path = lock_path(dir.path(), "g");
        fs::write(&path, b"\xff\xfe host=a pid=1\x1b[2J\n").unwrap();
        let Claim::Busy { holder, .. } = claim(dir.path(), "g", &rule(&a, 60), now).unwrap() else { panic!() };
        assert_eq!(holder, "an unreadable or incomplete lock");
        let held = read_lock(dir.path(), "g", now, &rule(&a, 60)).unwrap().unwrap();
        assert_eq!((held.host.as_str(), held.pid, held.verdict), ("", 0, Verdict::Live));
        let later = now + Duration::from_secs(120);
        assert!(matches!(
            claim(dir.path(), "g", &rule(&a, 60), later).unwrap(),
            Claim::Claimed { took_over: true, .. }
        ));
        let path = lock_path(dir.path(), "h");
        let mut huge = b"host=b pid=2\n".to_vec();
        huge.resize(8 << 20, b'x');
        fs::write(&path, &huge).unwrap();
        let Claim::Busy { holder, .. } = claim(dir.path(), "h", &rule(&a, 60), now).unwrap() else { panic!() };
        assert_eq!(holder, "host=b pid=2");
        assert!(matches!(
            claim(dir.path(), "h", &rule(&a, 60), later).unwrap(),
            Claim::Claimed { took_over: true, .. }
        ));
        assert!(fs::metadata(&path).unwrap().len() < 1024, "our own lock now");
    }
}
