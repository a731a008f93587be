//! A shipment spread over several drives: the `--out` folders of one build, each batch assigned
//! to one drive, the assignment recorded on every drive so that it is stable across resumes,
//! builders and hosts.
//!
//! Each drive holds `carload-drives.jsonl`, a log of JSON lines appended under the drives'
//! folder locks:
//!
//! ```text
//! {"set":"<32 hex>","this":2}            first line: the set this drive belongs to, its position
//! {"drive":1,"label":"drive01"}          a drive of the set (position → label as last seen)
//! {"drive":2,"label":"drive02"}
//! {"batch":"b00000","drive":1}           batch b00000's CAR goes on drive 1, for good
//! ```
//!
//! * **Identity.** A folder is a drive of the set when its log's first line names the set; its
//!   position is that line's `this`. Folders without a log join the set as new drives, after the
//!   known ones, in the order given. Positions never change; labels are for people (the drive's
//!   manifest, [`super::drive`], holds the current one).
//! * **One record, everywhere.** Every drive line and batch line is copied to every drive present
//!   whenever the set is opened or a batch assigned, so any drive that travels knows where every
//!   batch of the shipment went, and a builder that lacks one drive still knows which batches
//!   wait for it (a missing drive stops only its own batches).
//! * **Assignment.** A batch not yet assigned goes to the first drive, in position order, whose
//!   room holds what its build writes there ([`need`]: the CAR bound, the sidecars' bound and,
//!   when spooling on the drive, the spool's): room = free bytes (capped by `capacity` less what
//!   the folder holds, when given) − the reserve − what the batches assigned to it and not yet
//!   written there still need. Decided and appended with every present drive's folder lock held
//!   (taken in position order), so concurrent builders on one host or on cluster nodes sharing
//!   the drives agree. A batch whose outputs already lie on a drive (built before the set
//!   existed) is assigned to it.
//! * **Untrusted.** Logs are read with a size limit; a complete line that does not parse is
//!   refused naming the file and line; a last line without its newline (a writer killed while
//!   appending) is ignored and cut before the next append. Two records that put one batch on two
//!   drives make that batch refused, never guessed.

use super::drive::{self, DriveBook, DriveError, FolderLock, Place};
use super::file::Header;
use super::status::Watched;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// File name of a drive's assignment log.
pub const LOG: &str = "carload-drives.jsonl";
/// Largest log read (bytes): the file is untrusted.
const MAX_LOG: u64 = 256 << 20;
/// Most drives in a set.
pub const MAX_DRIVES: u32 = 10_000;

/// Errors of a drive set.
#[derive(Debug, thiserror::Error)]
pub enum DrivesError {
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A log line that is not one of the log's records.
    #[error("{path}:{line}: not a carload drive log record: {why}")]
    Garbled {
        /// The log.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// Folders of two different sets given together.
    #[error("{0} and {1} belong to different drive sets (drives of other shipments or of another build)")]
    OtherSet(PathBuf, PathBuf),
    /// Two folders claim one position.
    #[error("{0} and {1} are both drive {2} of the set (one is a copy of the other?)")]
    SamePosition(PathBuf, PathBuf, u32),
    /// A folder given twice.
    #[error("{0} is given twice")]
    Twice(PathBuf),
    /// A folder with no drive log named as a drive of the set that is not given: most likely
    /// the drive's mount point with the drive not mounted.
    #[error("{dir} has no drive log, but drive {position} of the set is labelled {label:?}: is the drive mounted? (if this is another drive, label it differently first: carload drive label)")]
    NotMounted {
        /// The folder.
        dir: PathBuf,
        /// The recorded drive's position.
        position: u32,
        /// Its label.
        label: String,
    },
    /// A drive folder that is not a folder.
    #[error("{0}: not a folder")]
    NotAFolder(PathBuf),
    /// The drive manifest could not be written.
    #[error(transparent)]
    Drive(#[from] DriveError),
}

/// Why a batch cannot be placed on a drive now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    /// Its drive is not among the folders given.
    #[error("assigned to drive {position} ({label}), which is not among the output folders")]
    Absent {
        /// The drive's position.
        position: u32,
        /// Its last known label.
        label: String,
    },
    /// No drive present has room for it.
    #[error("no drive has room for it: it needs {need} bytes ({rooms})")]
    NoRoom {
        /// Bytes it needs.
        need: u64,
        /// Each present drive's room, for the message.
        rooms: String,
    },
    /// The logs put it on two drives.
    #[error("the drive logs put it on drives {0} and {1}; refusing to guess (remove the wrong line from every {LOG})")]
    Conflict(u32, u32),
    /// A log could not be read or written.
    #[error("{0}")]
    Log(String),
}

/// How much of each drive is kept free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// Hundredths of a percent of the drive's size (`100` = 1%).
    Basis(u32),
    /// Bytes.
    Bytes(u64),
}

impl Default for Reserve {
    fn default() -> Self {
        Reserve::Basis(100)
    }
}

impl Reserve {
    /// Parses `1%`, `0.5%` or a size (`20GiB`, `0`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let err = || format!("invalid reserve {s:?}: use a percentage of each drive (e.g. 1%) or a size (e.g. 20GiB)");
        if let Some(p) = s.trim().strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| err())?;
            if !(0.0..=50.0).contains(&v) {
                return Err(format!("invalid reserve {s:?}: a percentage from 0% to 50%"));
            }
            return Ok(Reserve::Basis((v * 100.0).round() as u32));
        }
        super::size::parse_size(s).map(Reserve::Bytes).map_err(|_| err())
    }

    /// Bytes kept free on a drive of `size` bytes.
    pub fn of(self, size: u64) -> u64 {
        match self {
            Reserve::Basis(b) => (size as u128 * b as u128 / 10_000) as u64,
            Reserve::Bytes(n) => n,
        }
    }
}

/// How a set places batches.
#[derive(Debug, Clone, Default)]
pub struct SetOptions {
    /// Kept free on each drive.
    pub reserve: Reserve,
    /// Use at most this many bytes of each drive (what its folder holds counts), when given.
    pub capacity: Option<u64>,
    /// Whether builds spool on the drive (no `--tmpdir`): the spool then counts in [`need`].
    pub spool_on_drive: bool,
    /// The ID a new set gets (32 hex digits; the caller's, as the library draws no randomness).
    pub new_set_id: String,
}

/// One record of a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum Record {
    /// The first line: this drive's set and position.
    This {
        /// The set.
        set: String,
        /// This drive's position.
        this: u32,
    },
    /// A drive's label.
    Drive {
        /// Its position.
        drive: u32,
        /// Its label.
        label: String,
    },
    /// A batch's drive.
    Batch {
        /// The batch.
        batch: String,
        /// Its drive's position.
        drive: u32,
    },
}

/// What was read of a drive log: its set and position, where its complete lines end, the
/// file's identity (appended records are read from where the last read ended).
#[derive(Debug, Clone, Default)]
struct Log {
    this: Option<(String, u32)>,
    complete_len: u64,
    len: u64,
    /// Complete lines read.
    lines: usize,
    /// The file read (device, inode).
    ident: (u64, u64),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DrivesError + '_ {
    move |source| DrivesError::Io { path: path.to_path_buf(), source }
}

/// Reads `dir`'s log (`Ok(None)` when there is none). With `known`, the same file read
/// before, only what was appended since is read, its records added to `known` (returns `true`
/// when it read the whole file again: another file, or one cut shorter).
fn read_log(dir: &Path, known: Option<&mut Log>) -> Result<Option<(Log, Vec<Record>, bool)>, DrivesError> {
    use std::io::Seek;
    use std::os::unix::fs::MetadataExt;
    let path = dir.join(LOG);
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let meta = file.metadata().map_err(io_err(&path))?;
    let ident = (meta.dev(), meta.ino());
    let mut log = match known {
        Some(k) if k.ident == ident && meta.len() >= k.complete_len => std::mem::take(k),
        _ => Log { ident, ..Log::default() },
    };
    let whole = log.complete_len == 0;
    file.seek(io::SeekFrom::Start(log.complete_len)).map_err(io_err(&path))?;
    let mut text = Vec::new();
    file.take(MAX_LOG.saturating_sub(log.complete_len)).read_to_end(&mut text).map_err(io_err(&path))?;
    let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    log.len = log.complete_len + text.len() as u64;
    let body = &text[..complete];
    let mut records = Vec::new();
    for line in body.split(|&b| b == b'\n').take(body.iter().filter(|&&b| b == b'\n').count()) {
        let n = log.lines;
        log.lines += 1;
        if line.is_empty() {
            continue;
        }
        let garbled = |why: String| DrivesError::Garbled { path: path.clone(), line: n + 1, why };
        let r: Record = serde_json::from_slice(line).map_err(|e| garbled(e.to_string()))?;
        match &r {
            Record::This { set, this } => {
                if n != 0 {
                    return Err(garbled("a set line after the first line".into()));
                }
                if !valid_set_id(set) || *this == 0 || *this > MAX_DRIVES {
                    return Err(garbled(format!("set {set:?} position {this}")));
                }
                log.this = Some((set.clone(), *this));
                continue;
            }
            Record::Drive { drive, label } => {
                if *drive == 0 || *drive > MAX_DRIVES || drive::check_label(label).is_err() {
                    return Err(garbled(format!("drive {drive} label {label:?}")));
                }
            }
            Record::Batch { batch, drive } => {
                if *drive == 0 || *drive > MAX_DRIVES || !super::file::valid_batch_id(batch) {
                    return Err(garbled(format!("batch {batch:?} on drive {drive}")));
                }
            }
        }
        if n == 0 {
            return Err(garbled("the first line does not name the drive's set".into()));
        }
        records.push(r);
    }
    log.complete_len += complete as u64;
    Ok(Some((log, records, whole)))
}

fn valid_set_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Appends `records` to `dir`'s log (created with its set line when `this` is given and there
/// is none), first cutting a torn last line; flushed to the disk. `log` is updated to what the
/// file then holds.
fn append(dir: &Path, log: &mut Log, this: Option<(&str, u32)>, records: &[Record]) -> Result<(), DrivesError> {
    let path = dir.join(LOG);
    let mut text = Vec::new();
    let mut lines = 0;
    if log.this.is_none() {
        let (set, this) = this.expect("a new log gets its set line");
        serde_json::to_writer(&mut text, &Record::This { set: set.to_string(), this }).expect("records serialize");
        text.push(b'\n');
        lines += 1;
    }
    for r in records {
        serde_json::to_writer(&mut text, r).expect("records serialize");
        text.push(b'\n');
        lines += 1;
    }
    if text.is_empty() && log.len == log.complete_len {
        return Ok(());
    }
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(io_err(&path))?;
    let meta = file.metadata().map_err(io_err(&path))?;
    if log.this.is_none() {
        // A new (or empty, or torn first line) log: written from the start.
        log.complete_len = 0;
        log.lines = 0;
    }
    if meta.len() != log.complete_len {
        // A torn line (or one written since: impossible, the folder lock is held).
        file.set_len(log.complete_len).map_err(io_err(&path))?;
    }
    use std::io::Seek;
    let mut f = &file;
    f.seek(io::SeekFrom::Start(log.complete_len)).map_err(io_err(&path))?;
    f.write_all(&text).map_err(io_err(&path))?;
    file.sync_data().map_err(io_err(&path))?;
    log.ident = (meta.dev(), meta.ino());
    log.complete_len += text.len() as u64;
    log.len = log.complete_len;
    log.lines += lines;
    if let Some((set, this)) = this.filter(|_| log.this.is_none()) {
        log.this = Some((set.to_string(), this));
    }
    Ok(())
}

/// One drive of a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drive {
    /// Its position, from 1.
    pub position: u32,
    /// Its label as last recorded.
    pub label: String,
    /// Its folder, when given.
    pub dir: Option<PathBuf>,
}

/// The set's records merged: labels by position, batches by drive (conflicts apart), and every
/// record once, numbered.
#[derive(Debug, Clone, Default)]
struct Table {
    labels: BTreeMap<u32, String>,
    batches: HashMap<String, (u32, usize)>,
    conflicts: HashMap<String, (u32, u32)>,
    drive_records: HashMap<(u32, String), usize>,
    /// Every drive and batch record, once, in the order first read.
    records: Vec<Record>,
}

impl Table {
    /// Adds `r`; returns its number (`None` for a set line and a conflicting batch record).
    fn add(&mut self, r: &Record) -> Option<usize> {
        match r {
            Record::This { .. } => None,
            Record::Drive { drive, label } => {
                if let Some(&k) = self.drive_records.get(&(*drive, label.clone())) {
                    return Some(k);
                }
                self.labels.insert(*drive, label.clone());
                self.drive_records.insert((*drive, label.clone()), self.records.len());
                self.records.push(r.clone());
                Some(self.records.len() - 1)
            }
            Record::Batch { batch, drive } => match self.batches.get(batch) {
                Some(&(d, k)) if d == *drive => Some(k),
                Some(&(d, _)) => {
                    self.conflicts.insert(batch.clone(), (d.min(*drive), d.max(*drive)));
                    None
                }
                None => {
                    self.batches.insert(batch.clone(), (*drive, self.records.len()));
                    self.records.push(r.clone());
                    Some(self.records.len() - 1)
                }
            },
        }
    }

    /// Whether record `k` is one every drive should hold (a drive's label only as last seen).
    fn current(&self, k: usize) -> bool {
        match &self.records[k] {
            Record::Drive { drive, label } => self.labels.get(drive) == Some(label),
            _ => true,
        }
    }
}

/// What a builder knows of one present drive's log: what it read, and which of the table's
/// records the log holds (a bit each).
#[derive(Debug, Clone, Default)]
struct Seen {
    log: Log,
    has: Vec<u64>,
}

impl Seen {
    fn has(&self, k: usize) -> bool {
        self.has.get(k / 64).is_some_and(|w| w & (1 << (k % 64)) != 0)
    }

    fn mark(&mut self, k: usize) {
        if self.has.len() <= k / 64 {
            self.has.resize(k / 64 + 1, 0);
        }
        self.has[k / 64] |= 1 << (k % 64);
    }
}

/// The drives of one build: the folders given, matched to the set's positions, and the
/// assignment of batches to them.
#[derive(Debug)]
pub struct DriveSet {
    set: String,
    drives: Vec<Drive>,
    table: Table,
    /// Each present drive's log as last read (by index into `drives`).
    seen: Vec<Seen>,
    opts: SetOptions,
    /// What opening the set noticed (a batch's outputs on two drives).
    pub warnings: Vec<String>,
}

/// Where a batch's outputs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement<'a> {
    /// On this folder.
    Dir(&'a Path),
    /// Not assigned yet (not built anywhere).
    Unassigned,
    /// Not placeable now.
    Refused(PlaceError),
}

/// Where a shipment's outputs are: one folder, or a drive set.
#[derive(Debug, Clone, Copy)]
pub enum Outs<'a> {
    /// Every batch's outputs in this folder.
    Folder(&'a Path),
    /// Each batch's on its drive.
    Drives(&'a DriveSet),
}

impl<'a> Outs<'a> {
    /// Where batch `id`'s outputs are.
    pub fn placement(&self, id: &str) -> Placement<'a> {
        match self {
            Outs::Folder(d) => Placement::Dir(d),
            Outs::Drives(s) => s.placement(id),
        }
    }

    /// The folder of batch `id`'s outputs, when it has one.
    pub fn dir_of(&self, id: &str) -> Option<&'a Path> {
        match self.placement(id) {
            Placement::Dir(d) => Some(d),
            _ => None,
        }
    }
}

/// One drive's figures for `status` and the workstation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriveUsage {
    /// Position, from 1.
    pub position: u32,
    /// Drives in the set.
    pub of: u32,
    /// Label.
    pub label: String,
    /// Folder, when given.
    pub dir: Option<PathBuf>,
    /// Batches assigned to it.
    pub assigned: usize,
    /// Their CAR bounds.
    pub assigned_bound: u64,
    /// Bytes free for carload (free space capped by the capacity), when given.
    pub free: Option<u64>,
    /// Size (capped by the capacity), when given.
    pub size: Option<u64>,
    /// Room left for new batches (free − reserve − what assigned batches still need).
    pub room: Option<u64>,
}

/// The bytes a build of `w` writes on its drive: the CAR bound, a bound of its sidecars (the
/// manifest and the result, each at most 1 KiB per file plus six bytes per byte of name) and,
/// when spooling there, the spool's bound.
pub fn need(w: &Watched, spool_on_drive: bool) -> u64 {
    let sidecars = 2 * (w.files * 1024 + 6 * w.name_bytes) + 65_536;
    w.car_size_bound + sidecars + if spool_on_drive { w.spool_bound } else { 0 }
}

/// Free bytes and size of the file system holding `dir`.
fn fs_space(dir: &Path) -> io::Result<(u64, u64)> {
    let s = rustix::fs::statvfs(dir)?;
    Ok((s.f_bavail.saturating_mul(s.f_frsize), s.f_blocks.saturating_mul(s.f_frsize)))
}

/// What `dir` holds: bytes allocated to its files, the batches with a CAR there, and the bytes
/// of temporaries by batch (`.<id>.*.partial`).
fn folder_usage(dir: &Path) -> io::Result<(u64, std::collections::HashSet<String>, HashMap<String, u64>)> {
    use std::os::unix::fs::MetadataExt;
    let mut used = 0u64;
    let mut cars = std::collections::HashSet::new();
    let mut partial: HashMap<String, u64> = HashMap::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let Ok(m) = e.metadata() else { continue };
        if !m.is_file() {
            continue;
        }
        let bytes = m.blocks().saturating_mul(512);
        used = used.saturating_add(bytes);
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".car") {
            cars.insert(id.to_string());
        } else if let Some(rest) = name.strip_prefix('.').filter(|_| name.ends_with(".partial")) {
            if let Some((id, _)) = rest.split_once('.') {
                *partial.entry(id.to_string()).or_default() += bytes;
            }
        }
    }
    Ok((used, cars, partial))
}

/// Takes every present drive's folder lock, in position order.
fn lock_all(drives: &[Drive]) -> Result<Vec<FolderLock>, DrivesError> {
    drives.iter().filter_map(|d| d.dir.as_deref()).map(|dir| Ok(FolderLock::take(dir)?)).collect()
}

impl DriveSet {
    /// Opens the set of folders `dirs` for a build: matches them to the set's positions (folders
    /// without a log join as new drives), records new drives, copies every record to every
    /// drive present, assigns batches whose outputs already lie on a drive to it, and writes
    /// each drive's manifest with its position. Folders must exist.
    pub fn open(dirs: &[PathBuf], header: &Header, book: &DriveBook, opts: SetOptions) -> Result<Self, DrivesError> {
        let mut set = Self::match_folders(dirs, opts)?;
        {
            // Nothing is written (not even a lock file) into a folder that looks like the mount
            // point of a drive not mounted.
            set.read_logs()?;
            let present: Vec<u32> = set.drives.iter().map(|d| d.position).filter(|&p| p > 0).collect();
            for d in set.drives.iter().filter(|d| d.position == 0) {
                let dir = d.dir.as_deref().expect("given");
                let label = match drive::read_manifest(dir) {
                    Ok(Some(m)) => m.drive.label,
                    _ => drive::default_label(dir),
                };
                set.refuse_mount_point(dir, &label, &present)?;
            }
            let _locks = lock_all(&set.drives)?;
            set.read_logs()?;
            // New drives get positions after the known ones. A drive's label is its manifest's
            // (`carload drive label` changes it there), else the one recorded, else its folder's
            // name; a changed one is recorded.
            let mut next = set.of();
            let mut fresh = Vec::new();
            for d in set.drives.iter_mut() {
                let dir = d.dir.as_deref().expect("given");
                let label = match drive::read_manifest(dir) {
                    Ok(Some(m)) => m.drive.label,
                    _ if !d.label.is_empty() => d.label.clone(),
                    _ => drive::default_label(dir),
                };
                if d.position == 0 {
                    next += 1;
                    d.position = next;
                }
                if set.table.labels.get(&d.position) != Some(&label) {
                    fresh.push(Record::Drive { drive: d.position, label: label.clone() });
                }
                d.label = label;
            }
            for r in &fresh {
                set.table.add(r);
            }
            // Labels must tell drives apart.
            let mut seen: HashMap<&str, u32> = HashMap::new();
            for (p, l) in &set.table.labels {
                if let Some(q) = seen.insert(l.as_str(), *p) {
                    set.warnings.push(format!(
                        "drives {q} and {p} are both labelled {l:?}: give one another label (carload drive label)"
                    ));
                }
            }
            // Outputs already on a drive: that drive's.
            let ids: std::collections::HashSet<&str> = book.batches.iter().map(|w| w.id.as_str()).collect();
            let mut adopted = Vec::new();
            for d in &set.drives {
                let dir = d.dir.as_deref().expect("given");
                let rd = std::fs::read_dir(dir).map_err(io_err(dir))?;
                let mut found: Vec<String> = Vec::new();
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let id = name.strip_suffix(".car").or_else(|| name.strip_suffix(".json"));
                    if let Some(id) = id.filter(|id| ids.contains(id)) {
                        found.push(id.to_string());
                    }
                }
                found.sort();
                found.dedup();
                for id in found {
                    match set.table.batches.get(&id) {
                        None => {
                            let r = Record::Batch { batch: id.clone(), drive: d.position };
                            set.table.add(&r);
                            adopted.push(r);
                        }
                        Some(&(p, _)) if p != d.position => set.warnings.push(format!(
                            "{id}: outputs on drive {} ({}) but the batch belongs on drive {p}; they are not its",
                            d.position, d.label
                        )),
                        Some(_) => {}
                    }
                }
            }
            set.sync()?;
        }
        let of = set.of();
        for d in &set.drives {
            let dir = d.dir.as_deref().expect("given");
            let place = Place { label: d.label.clone(), position: d.position, of };
            drive::regenerate_at(dir, header, book, Some(place))?;
        }
        Ok(set)
    }

    /// Refuses new drive folder `dir` (labelled `label`) when a drive of the set not `present`
    /// bears its label: [`DrivesError::NotMounted`].
    fn refuse_mount_point(&self, dir: &Path, label: &str, present: &[u32]) -> Result<(), DrivesError> {
        match self.table.labels.iter().find(|(p, l)| *l == label && !present.contains(p)) {
            Some((&position, label)) => {
                Err(DrivesError::NotMounted { dir: dir.to_path_buf(), position, label: label.clone() })
            }
            None => Ok(()),
        }
    }

    /// Reads the set of folders `dirs` as it stands, writing nothing (for `status`, `export`,
    /// `verify`): folders without a log are new drives with no batch.
    pub fn read(dirs: &[PathBuf]) -> Result<Self, DrivesError> {
        let mut set = Self::match_folders(dirs, SetOptions::default())?;
        set.read_logs()?;
        let mut next = set.of();
        for d in set.drives.iter_mut().filter(|d| d.position == 0) {
            next += 1;
            d.position = next;
            let dir = d.dir.as_deref().expect("given");
            d.label = match drive::read_manifest(dir) {
                Ok(Some(m)) => m.drive.label,
                _ => drive::default_label(dir),
            };
        }
        Ok(set)
    }

    /// Whether `dirs` form a drive set rather than one output folder: more than one folder, or
    /// one holding a drive log.
    pub fn is_set(dirs: &[PathBuf]) -> bool {
        dirs.len() > 1 || dirs.iter().any(|d| d.join(LOG).exists())
    }

    /// Matches folders to positions by their logs' set lines.
    fn match_folders(dirs: &[PathBuf], opts: SetOptions) -> Result<Self, DrivesError> {
        let mut set: Option<(String, PathBuf)> = None;
        let mut drives: Vec<Drive> = Vec::new();
        let mut canon: Vec<PathBuf> = Vec::new();
        for dir in dirs {
            if !dir.is_dir() {
                return Err(DrivesError::NotAFolder(dir.clone()));
            }
            let c = std::fs::canonicalize(dir).map_err(io_err(dir))?;
            if canon.contains(&c) {
                return Err(DrivesError::Twice(dir.clone()));
            }
            canon.push(c);
            let position = match read_log(dir, None)? {
                Some((Log { this: Some((s, p)), .. }, _, _)) => {
                    match &set {
                        Some((id, first)) if *id != s => return Err(DrivesError::OtherSet(first.clone(), dir.clone())),
                        Some(_) => {}
                        None => set = Some((s, dir.clone())),
                    }
                    if let Some(other) = drives.iter().find(|d| d.position == p) {
                        return Err(DrivesError::SamePosition(other.dir.clone().expect("given"), dir.clone(), p));
                    }
                    p
                }
                _ => 0,
            };
            drives.push(Drive { position, label: String::new(), dir: Some(dir.clone()) });
        }
        // Known drives first, by position; new ones after them, in the order given.
        drives.sort_by_key(|d| if d.position == 0 { u32::MAX } else { d.position });
        let set_id = set.map(|(s, _)| s).unwrap_or_else(|| opts.new_set_id.clone());
        let seen = vec![Seen::default(); drives.len()];
        Ok(DriveSet { set: set_id, drives, table: Table::default(), seen, opts, warnings: Vec::new() })
    }

    /// Reads what was appended to every present drive's log since the last read into the table
    /// (labels of present drives filled in). A log that is another file, or shorter, than last
    /// read (edited by hand, say to remove a wrong record) makes every log read again whole.
    fn read_logs(&mut self) -> Result<(), DrivesError> {
        for pass in 0..2 {
            let mut again = false;
            for (i, d) in self.drives.iter().enumerate() {
                let dir = d.dir.as_deref().expect("given");
                let seen = &mut self.seen[i];
                let had = seen.log.ident != (0, 0);
                let Some((log, records, whole)) = read_log(dir, Some(&mut seen.log))? else {
                    *seen = Seen::default();
                    continue;
                };
                if whole && had && pass == 0 {
                    again = true;
                    break;
                }
                seen.log = log;
                for r in &records {
                    if let Some(k) = self.table.add(r) {
                        seen.mark(k);
                    }
                }
            }
            if !again {
                break;
            }
            self.table = Table::default();
            self.seen = vec![Seen::default(); self.drives.len()];
        }
        for d in self.drives.iter_mut().filter(|d| d.position > 0) {
            d.label = self.table.labels.get(&d.position).cloned().unwrap_or_default();
        }
        Ok(())
    }

    /// Appends to each present drive's log the records it lacks (a new log gets its set line).
    fn sync(&mut self) -> Result<(), DrivesError> {
        for (i, d) in self.drives.iter().enumerate() {
            let seen = &mut self.seen[i];
            let missing: Vec<usize> =
                (0..self.table.records.len()).filter(|&k| !seen.has(k) && self.table.current(k)).collect();
            let records: Vec<Record> = missing.iter().map(|&k| self.table.records[k].clone()).collect();
            append(d.dir.as_deref().expect("given"), &mut seen.log, Some((&self.set, d.position)), &records)?;
            for k in missing {
                seen.mark(k);
            }
        }
        Ok(())
    }

    /// Drives in the set (the highest position known).
    pub fn of(&self) -> u32 {
        let known = self.table.labels.keys().last().copied().unwrap_or(0);
        known.max(self.drives.iter().map(|d| d.position).max().unwrap_or(0))
    }

    /// Every drive of the set, present or not, by position.
    pub fn drives(&self) -> Vec<Drive> {
        (1..=self.of())
            .map(|p| match self.drives.iter().find(|d| d.position == p) {
                Some(d) => d.clone(),
                None => Drive { position: p, label: self.label(p), dir: None },
            })
            .collect()
    }

    fn label(&self, p: u32) -> String {
        self.table.labels.get(&p).cloned().unwrap_or_else(|| format!("drive {p}"))
    }

    fn dir(&self, p: u32) -> Option<&Path> {
        self.drives.iter().find(|d| d.position == p).and_then(|d| d.dir.as_deref())
    }

    /// Where batch `id`'s outputs are, as recorded.
    pub fn placement(&self, id: &str) -> Placement<'_> {
        if let Some(&(a, b)) = self.table.conflicts.get(id) {
            return Placement::Refused(PlaceError::Conflict(a, b));
        }
        match self.table.batches.get(id) {
            None => Placement::Unassigned,
            Some(&(p, _)) => match self.dir(p) {
                Some(d) => Placement::Dir(d),
                None => Placement::Refused(PlaceError::Absent { position: p, label: self.label(p) }),
            },
        }
    }

    /// The drive (position) of batch `id`, when assigned.
    pub fn drive_of(&self, id: &str) -> Option<u32> {
        self.table.batches.get(id).map(|&(p, _)| p)
    }

    /// Assigns batch `w` (of the shipment's batches `all`) to a drive, or finds the drive it was
    /// assigned to, with every present drive's folder lock held; records a new assignment on
    /// every present drive. Returns its folder.
    pub fn assign(&mut self, w: &Watched, all: &[Watched]) -> Result<PathBuf, PlaceError> {
        let log_err = |e: DrivesError| PlaceError::Log(e.to_string());
        let _locks = lock_all(&self.drives).map_err(log_err)?;
        self.read_logs().map_err(log_err)?;
        match self.placement(&w.id) {
            Placement::Dir(d) => return Ok(d.to_path_buf()),
            Placement::Refused(e) => return Err(e),
            Placement::Unassigned => {}
        }
        let need = need(w, self.opts.spool_on_drive);
        let usage = self.usage(all);
        let Some(u) = usage.iter().find(|u| u.room.is_some_and(|r| r >= need)) else {
            let rooms: Vec<String> = usage
                .iter()
                .map(|u| match u.room {
                    Some(r) => format!("drive {} ({}): {} bytes", u.position, u.label, r),
                    None => format!("drive {} ({}): not given", u.position, u.label),
                })
                .collect();
            return Err(PlaceError::NoRoom { need, rooms: rooms.join(", ") });
        };
        let position = u.position;
        let r = Record::Batch { batch: w.id.clone(), drive: position };
        self.table.add(&r);
        self.sync().map_err(log_err)?;
        Ok(self.dir(position).expect("present").to_path_buf())
    }

    /// Each drive's figures, by position: what is assigned to it and, for drives given, free
    /// bytes, size and room (read from the file systems now).
    pub fn usage(&self, all: &[Watched]) -> Vec<DriveUsage> {
        let of = self.of();
        self.drives()
            .into_iter()
            .map(|d| {
                let mine: Vec<&Watched> = all.iter().filter(|w| self.drive_of(&w.id) == Some(d.position)).collect();
                let mut u = DriveUsage {
                    position: d.position,
                    of,
                    label: d.label.clone(),
                    dir: d.dir.clone(),
                    assigned: mine.len(),
                    assigned_bound: mine.iter().map(|w| w.car_size_bound).sum(),
                    free: None,
                    size: None,
                    room: None,
                };
                let Some(dir) = d.dir.as_deref() else { return u };
                let (Ok((free, size)), Ok((used, cars, partial))) = (fs_space(dir), folder_usage(dir)) else {
                    return u;
                };
                let (free, size) = match self.opts.capacity {
                    Some(c) => (free.min(c.saturating_sub(used)), size.min(c)),
                    None => (free, size),
                };
                let pending: u64 = mine
                    .iter()
                    .filter(|w| !cars.contains(&w.id))
                    .map(|w| need(w, self.opts.spool_on_drive).saturating_sub(partial.get(&w.id).copied().unwrap_or(0)))
                    .sum();
                u.free = Some(free);
                u.size = Some(size);
                u.room = Some(free.saturating_sub(self.opts.reserve.of(size)).saturating_sub(pending));
                u
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shipment::plan::{plan, resolve_inputs, walk_tree, PlanOptions, SECTOR_32GIB};

    #[test]
    fn reserves_parse_as_a_share_or_a_size() {
        assert_eq!(Reserve::parse("1%"), Ok(Reserve::Basis(100)));
        assert_eq!(Reserve::parse("0.25%"), Ok(Reserve::Basis(25)));
        assert_eq!(Reserve::parse("20GiB"), Ok(Reserve::Bytes(20 << 30)));
        assert_eq!(Reserve::parse("0"), Ok(Reserve::Bytes(0)));
        assert!(Reserve::parse("60%").is_err());
        assert!(Reserve::parse("lots").unwrap_err().contains("\"lots\""));
        assert_eq!(Reserve::Basis(100).of(18_000_000_000_000), 180_000_000_000);
    }

    /// Two builders' views of two drives: appends are read from where the last read ended, and a
    /// log edited by hand (a wrong record removed) is read again whole.
    #[test]
    fn logs_are_read_from_where_the_last_read_ended_and_again_whole_when_edited() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = ["a", "b"].iter().map(|n| tmp.path().join(n)).collect();
        for d in &dirs {
            std::fs::create_dir(d).unwrap();
        }
        let opts = SetOptions { new_set_id: "0123456789abcdef0123456789abcdef".into(), ..SetOptions::default() };
        let start = |positioned: bool| {
            let mut s = DriveSet::match_folders(&dirs, opts.clone()).unwrap();
            if !positioned {
                for (k, d) in s.drives.iter_mut().enumerate() {
                    d.position = k as u32 + 1;
                }
            }
            s.read_logs().unwrap();
            s
        };
        let mut one = start(false);
        for p in [1, 2] {
            one.table.add(&Record::Drive { drive: p, label: format!("d{p}") });
        }
        one.sync().unwrap();
        let mut two = start(true);
        assert_eq!(two.of(), 2);
        two.table.add(&Record::Batch { batch: "x".into(), drive: 2 });
        two.sync().unwrap();
        let before = one.seen[0].log.clone();
        one.read_logs().unwrap();
        assert_eq!(one.drive_of("x"), Some(2), "the appended record is read");
        assert_eq!(one.seen[0].log.lines, before.lines + 1, "only the appended line was read");
        assert_eq!(one.placement("x"), Placement::Dir(&dirs[1]));
        // A wrong record appended by hand to both logs: the batch is refused.
        let good: Vec<String> = dirs.iter().map(|d| std::fs::read_to_string(d.join(LOG)).unwrap()).collect();
        for (d, g) in dirs.iter().zip(&good) {
            std::fs::write(d.join(LOG), format!("{g}{{\"batch\":\"x\",\"drive\":1}}\n")).unwrap();
        }
        one.read_logs().unwrap();
        assert_eq!(one.placement("x"), Placement::Refused(PlaceError::Conflict(1, 2)));
        // Removed again: the shorter logs are read whole, and the batch is placed.
        for (d, g) in dirs.iter().zip(&good) {
            std::fs::write(d.join(LOG), g).unwrap();
        }
        one.read_logs().unwrap();
        assert_eq!(one.placement("x"), Placement::Dir(&dirs[1]));
        // Syncing adds nothing: both logs hold every record.
        one.sync().unwrap();
        for (d, g) in dirs.iter().zip(&good) {
            assert_eq!(&std::fs::read_to_string(d.join(LOG)).unwrap(), g);
        }
    }

    /// What [`need`] promises holds for a real build: CAR, sidecars and spool together, with
    /// long names that need escaping.
    #[test]
    fn a_build_writes_no_more_than_its_need() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        for i in 0..40u8 {
            let name = format!("{}\u{1}\"{i}", "n".repeat(200));
            std::fs::write(data.join(name), vec![i; 1000 + 37 * i as usize]).unwrap();
        }
        let resolved = resolve_inputs(dir.path(), &[PathBuf::from("data")]).unwrap();
        let files = walk_tree(&resolved.paths, &resolved.names, false).unwrap();
        let o = PlanOptions::for_sector(SECTOR_32GIB, crate::profile::Profile::default());
        let sources = (0..files.len()).map(|i| files.source_file(i)).collect();
        let base = Some(crate::shipment::file::path_to_name(&resolved.base));
        let s = plan(sources, &o, resolved.input_names(), base).unwrap();
        let b = &s.batches[0];
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let places = crate::shipment::build::Places { dir: &out, spool_dir: &out, source_root: None };
        crate::shipment::build::build_batch(&s.header, b, places, &mut crate::event::Ignore, &|| true, &mut |_, c| c())
            .unwrap();
        let o = crate::shipment::build::outputs(&out, &b.id);
        let len = |p: &Path| std::fs::metadata(p).unwrap().len();
        let w = Watched::of(&s.header, b);
        let written = len(&o.car) + len(&o.manifest) + len(&o.json);
        assert!(written <= need(&w, false), "{written} > {}", need(&w, false));
        // The spool holds the small files' sections: their bytes and framing.
        assert!(w.spool_bound >= b.bytes() + 40 * 60, "{} for {} bytes", w.spool_bound, b.bytes());
    }
}
