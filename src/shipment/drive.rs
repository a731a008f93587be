//! The manifest on a drive: `carload-drive.json` (and a short `README.txt` for people) in a CAR
//! folder, describing the drive truthfully whenever it is pulled.
//!
//! ```text
//! {"format":"carload-drive","version":1,
//!  "shipment":{"name":"photos","id":"<64 hex>"},
//!  "drive":{"label":"drive07","position":1,"of":1},
//!  "cars":[{"batch":"b00000","file":"b00000.car","car_size":…,"payload_cid":"bafy…",
//!           "piece_cid":"baga…","piece_cid_v2":"bafkzcib…","piece_size":…,"piece_size_unpadded":…},…]}
//! ```
//!
//! * The **shipment ID** ([`shipment_id`]) is the hex SHA-256 of the shipment's header record and
//!   every batch's ID and fingerprint ([`super::judge::fingerprint`]), in order: the same for
//!   every builder of one plan, different for any re-plan.
//! * The **drive** is its label (kept across regenerations; [`relabel`] changes it) and its
//!   position `position` of `of` (one folder is drive 1 of 1 until shipments span drives).
//! * The **CARs** are exactly the batches the one judgement ([`super::judge::find_result_by`])
//!   accepts as built in the folder, in shipment order, with their results' fields.
//!
//! [`regenerate`] rewrites both files after a batch is built, under an exclusive `flock` on
//! `.carload-drive.lck` (so concurrent builders, on one host or cluster nodes sharing the folder
//! over NFS, never lose an entry), each atomically (a temporary renamed into place): a drive
//! pulled at any moment holds a manifest listing only complete CARs (it may lag by the CAR being
//! written). [`check`] compares a drive with its manifest: missing, extra and damaged CARs, by
//! size or strictly (the CAR verified, its payload CID and piece recomputed).

use super::build::{outputs, Found};
use super::file::{BatchResult, Header};
use super::judge::{find_result_by, Expect};
use super::status::Watched;
use serde::{Deserialize, Serialize};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// File name of a drive's manifest.
pub const MANIFEST: &str = "carload-drive.json";
/// File name of a drive's human-readable description.
pub const README: &str = "README.txt";
/// File name of the lock serialising writers of a drive's manifest (hidden, never removed; not
/// named `*.lock`, which is a batch's lock).
pub const LOCK: &str = ".carload-drive.lck";
/// `format` of a drive manifest.
pub const FORMAT: &str = "carload-drive";
/// Current drive manifest version.
pub const VERSION: u64 = 1;
/// Longest label, in bytes.
pub const MAX_LABEL: usize = 128;
/// Largest manifest read (bytes): the file is untrusted.
const MAX_MANIFEST: u64 = 256 << 20;

/// Errors reading or writing a drive's manifest.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The folder holds no drive manifest.
    #[error("{0}: no {MANIFEST} (not a carload drive, or no CAR built on it yet)")]
    NoManifest(PathBuf),
    /// The manifest is not a drive manifest.
    #[error("{path}: not a carload drive manifest: {why}")]
    Garbled {
        /// The manifest.
        path: PathBuf,
        /// The parser's words or the refused field.
        why: String,
    },
    /// A label that cannot be used.
    #[error("drive label {0:?}: must be 1 to {MAX_LABEL} bytes of printable text on one line")]
    BadLabel(String),
    /// Writing a file atomically failed.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
}

/// The shipment a drive belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentRef {
    /// Its name (the shipment file's name without `.jsonl`).
    pub name: String,
    /// [`shipment_id`].
    pub id: String,
}

/// Which drive this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// The label written on the drive.
    pub label: String,
    /// Its position among the shipment's drives, from 1.
    pub position: u32,
    /// The shipment's drives.
    pub of: u32,
}

/// One CAR on a drive, with its batch's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarEntry {
    /// Batch ID.
    pub batch: String,
    /// File name in the drive's folder (`<batch>.car`).
    pub file: String,
    /// CAR bytes.
    pub car_size: u64,
    /// Root CID of the CAR.
    pub payload_cid: String,
    /// Piece CID v1 (`baga…`).
    pub piece_cid: String,
    /// Piece CID v2 (FRC-0069).
    pub piece_cid_v2: String,
    /// Padded piece size.
    pub piece_size: u64,
    /// Unpadded piece size.
    pub piece_size_unpadded: u64,
}

impl CarEntry {
    /// The entry of built result `r`.
    pub fn of(r: &BatchResult) -> Self {
        CarEntry {
            batch: r.batch.clone(),
            file: format!("{}.car", r.batch),
            car_size: r.car_size,
            payload_cid: r.payload_cid.clone(),
            piece_cid: r.piece_cid.clone(),
            piece_cid_v2: r.piece_cid_v2.clone(),
            piece_size: r.piece_size,
            piece_size_unpadded: r.piece_size_unpadded,
        }
    }

    /// The entry as a result without a file list (what `verify`'s comparison takes).
    pub fn as_result(&self) -> BatchResult {
        BatchResult {
            payload_cid: self.payload_cid.clone(),
            piece_size: self.piece_size,
            piece_cid: self.piece_cid.clone(),
            piece_size_unpadded: self.piece_size_unpadded,
            car_size: self.car_size,
            piece_cid_v2: self.piece_cid_v2.clone(),
            files: Vec::new(),
            batch: self.batch.clone(),
            fingerprint: None,
        }
    }
}

/// `carload-drive.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveManifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u64,
    /// The shipment.
    pub shipment: ShipmentRef,
    /// This drive.
    pub drive: Place,
    /// The CARs on it, in shipment order.
    pub cars: Vec<CarEntry>,
}

impl DriveManifest {
    /// Total CAR bytes listed.
    pub fn car_bytes(&self) -> u64 {
        self.cars.iter().map(|c| c.car_size).sum()
    }
}

/// What a builder needs to regenerate a drive's manifest: the shipment's name and ID and every
/// batch as the judgement knows it (no file lists), and the judgements made so far.
#[derive(Debug)]
pub struct DriveBook {
    /// The shipment.
    pub shipment: ShipmentRef,
    /// Its batches, in order.
    pub batches: Vec<Watched>,
    /// Each batch's last judgement with the identity of the files it read (see [`Stamp`]).
    judged: std::sync::Mutex<std::collections::HashMap<String, (Stamp, Option<CarEntry>)>>,
}

impl DriveBook {
    /// The book of shipment `name` planned with `header` and `batches`.
    pub fn new(name: &str, header: &Header, batches: Vec<Watched>) -> Self {
        let id = shipment_id(header, &batches);
        DriveBook { shipment: ShipmentRef { name: name.to_string(), id }, batches, judged: Default::default() }
    }
}

/// The identity of one file: device, inode, size, modification and status-change times (any
/// write, rename into place or removal changes it).
type FileStamp = Option<(u64, u64, u64, i64, i64)>;

/// The identities of what the judgement of a batch reads: its result, CAR and sidecar manifest.
/// While they are unchanged, so is the judgement (a regeneration after each batch then reads
/// only the results that changed, not every result of a large shipment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp([FileStamp; 3]);

impl Stamp {
    /// The stamp of batch `id`'s outputs in `dir`, or `None` when one cannot be read (then the
    /// batch is judged afresh).
    fn of(dir: &Path, id: &str) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let o = outputs(dir, id);
        let one = |p: &Path| match std::fs::symlink_metadata(p) {
            Ok(m) => Ok(Some((
                m.dev(),
                m.ino(),
                m.len(),
                m.mtime().saturating_mul(1_000_000_000).saturating_add(m.mtime_nsec()),
                m.ctime().saturating_mul(1_000_000_000).saturating_add(m.ctime_nsec()),
            ))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        };
        Some(Stamp([one(&o.json).ok()?, one(&o.car).ok()?, one(&o.manifest).ok()?]))
    }
}

/// The shipment's ID: hex SHA-256 of its header record's JSON, then one line per batch, `<ID>
/// <fingerprint>`.
pub fn shipment_id(header: &Header, batches: &[Watched]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    serde_json::to_writer(&mut h, header).expect("headers serialize");
    h.update(b"\n");
    for b in batches {
        h.update(format!("{} {}\n", b.id, b.fingerprints.current).as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The name a shipment file gives its shipment: its file name without `.jsonl`.
pub fn shipment_name(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.strip_suffix(".jsonl").map(str::to_string).unwrap_or(name)
}

/// Checks a drive label (see [`DriveError::BadLabel`]).
pub fn check_label(label: &str) -> Result<(), DriveError> {
    if label.is_empty() || label.len() > MAX_LABEL || label.chars().any(char::is_control) || label.trim() != label {
        return Err(DriveError::BadLabel(label.to_string()));
    }
    Ok(())
}

/// The label a drive gets when it has none yet: its folder's name (`/mnt/drive07` → `drive07`),
/// else `drive` (a folder named `.` or `/`).
pub(crate) fn default_label(dir: &Path) -> String {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name: String = name.chars().filter(|c| !c.is_control()).take(MAX_LABEL / 4).collect();
    if check_label(&name).is_ok() {
        name
    } else {
        "drive".to_string()
    }
}

/// Reads `dir`'s manifest (`Ok(None)` when there is none), checking its format and every entry's
/// name (a plain `<batch>.car`, never a path).
pub fn read_manifest(dir: &Path) -> Result<Option<DriveManifest>, DriveError> {
    let path = dir.join(MANIFEST);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(DriveError::Io { path, source }),
    };
    let mut text = Vec::new();
    file.take(MAX_MANIFEST).read_to_end(&mut text).map_err(|source| DriveError::Io { path: path.clone(), source })?;
    let garbled = |why: String| DriveError::Garbled { path: path.clone(), why };
    let m: DriveManifest = serde_json::from_slice(&text).map_err(|e| garbled(e.to_string()))?;
    if m.format != FORMAT {
        return Err(garbled(format!("format {:?} is not {FORMAT:?}", m.format)));
    }
    if m.version != VERSION {
        return Err(garbled(format!("version {} (this carload reads version {VERSION})", m.version)));
    }
    if m.drive.position == 0 || m.drive.position > m.drive.of {
        return Err(garbled(format!("drive position {} of {}", m.drive.position, m.drive.of)));
    }
    for c in &m.cars {
        if !super::file::valid_batch_id(&c.batch) || c.file != format!("{}.car", c.batch) {
            return Err(garbled(format!("entry {:?} ({:?}) is not a batch's CAR", c.batch, c.file)));
        }
    }
    Ok(Some(m))
}

/// An exclusive `flock` on `dir`'s [`LOCK`], held until dropped.
pub(crate) struct FolderLock(#[allow(dead_code)] std::fs::File);

impl FolderLock {
    /// Waits for the lock (the lock file is created if needed, opened for writing so the lock
    /// also holds over NFS, where `flock` is a whole-file `fcntl` lock).
    pub(crate) fn take(dir: &Path) -> Result<Self, DriveError> {
        let path = dir.join(LOCK);
        let io_err = |source| DriveError::Io { path: path.clone(), source };
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io_err)?;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive) {
                Ok(()) => return Ok(FolderLock(file)),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io_err(e.into())),
            }
        }
    }
}

/// The manifest of `dir` for `book` as it stands: every batch [`find_result_by`] judges built,
/// on the drive `place` (a batch whose outputs are unchanged since `book` last judged it keeps
/// that judgement).
pub fn manifest_of(dir: &Path, header: &Header, book: &DriveBook, place: Place) -> DriveManifest {
    let mut judged = book.judged.lock().unwrap_or_else(|e| e.into_inner());
    let cars = book
        .batches
        .iter()
        .filter_map(|w| {
            let stamp = Stamp::of(dir, &w.id);
            if let (Some(s), Some((old, entry))) = (stamp, judged.get(&w.id)) {
                if s == *old {
                    return entry.clone();
                }
            }
            let e =
                Expect { id: &w.id, car_size_bound: w.car_size_bound, fingerprints: &w.fingerprints, batch: &|| None };
            let (entry, lasting) = match find_result_by(dir, header, &e) {
                Found::Built(r) => (Some(CarEntry::of(&r)), true),
                // A read that failed may succeed next time: not remembered.
                Found::Unreadable(_) => (None, false),
                _ => (None, true),
            };
            // Taken before the judgement: a file replaced meanwhile changes it, and the next
            // regeneration judges again.
            match stamp.filter(|_| lasting) {
                Some(s) => _ = judged.insert(w.id.clone(), (s, entry.clone())),
                None => _ = judged.remove(&w.id),
            }
            entry
        })
        .collect();
    DriveManifest { format: FORMAT.into(), version: VERSION, shipment: book.shipment.clone(), drive: place, cars }
}

/// The manifest's bytes: pretty JSON and a newline.
fn manifest_bytes(m: &DriveManifest) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(m).expect("manifests serialize");
    v.push(b'\n');
    v
}

/// The drive's `README.txt` for manifest `m`.
pub fn readme(m: &DriveManifest) -> String {
    format!(
        "carload drive \"{label}\": drive {pos} of {of} of shipment \"{name}\"\n\
         Shipment ID: {id}\n\
         \n\
         This drive holds {n} CAR file(s) ({bytes}) for Filecoin offline deals, built by carload.\n\
         {manifest} lists every CAR on it: batch ID, file name, CAR size, payload CID, piece CID\n\
         (v1 and v2) and piece size. It is rewritten each time a CAR is completed, so it is true\n\
         whenever the drive is pulled (a CAR still being written is not listed yet). Beside each\n\
         <batch>.car lie <batch>.json (its build result) and <batch>.car.manifest (its files).\n\
         \n\
         Check the drive against its manifest (missing, extra or truncated CARs, by size):\n\
         \x20   carload drive check /path/to/this/drive\n\
         Check it strictly (every CAR read, its payload CID and piece CID recomputed):\n\
         \x20   carload drive check --verify /path/to/this/drive\n\
         Storage provider: verify every CAR and print the import commands for your deals:\n\
         \x20   carload receive /path/to/this/drive\n{set}",
        set = if m.drive.of > 1 {
            format!(
                "\nThe shipment spans {} drives: {} records which drive holds each of its CARs.\n",
                m.drive.of,
                super::drives::LOG
            )
        } else {
            String::new()
        },
        label = m.drive.label,
        pos = m.drive.position,
        of = m.drive.of,
        name = m.shipment.name,
        id = m.shipment.id,
        n = m.cars.len(),
        bytes = crate::human::ibytes(m.car_bytes()),
        manifest = MANIFEST,
    )
}

/// Writes `bytes` to `path` atomically unless it already holds them.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), DriveError> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let f = crate::output::AtomicFile::create(path, true)?;
    use std::io::Write;
    f.file().write_all(bytes).map_err(|source| DriveError::Io { path: path.to_path_buf(), source })?;
    f.commit()?;
    Ok(())
}

/// How every README carload writes begins: a `README.txt` that does not is somebody else's and
/// is never replaced.
const README_START: &[u8] = b"carload drive \"";

/// Removes the temporaries of the manifest and README that a writer killed while writing left
/// in `dir` (every writer holds the folder lock, so with it held none is being written).
fn remove_stale_temps(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let prefixes = [format!(".{MANIFEST}."), format!(".{README}.")];
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".partial") && prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes `m` and its README into `dir` (the folder lock held; a README not carload's is kept),
/// first removing temporaries a killed writer left.
fn write_locked(dir: &Path, m: &DriveManifest) -> Result<(), DriveError> {
    remove_stale_temps(dir);
    write_if_changed(&dir.join(MANIFEST), &manifest_bytes(m))?;
    let path = dir.join(README);
    let mut start = Vec::new();
    if let Ok(f) = std::fs::File::open(&path) {
        let _ = f.take(README_START.len() as u64).read_to_end(&mut start);
        if start != README_START {
            return Ok(());
        }
    }
    write_if_changed(&path, readme(m).as_bytes())
}

/// Regenerates `dir`'s manifest and README from the batches of `book` judged built there, under
/// the folder's lock; the drive keeps its label and position (a new drive is drive 1 of 1,
/// labelled after its folder). Returns the manifest written.
pub fn regenerate(dir: &Path, header: &Header, book: &DriveBook) -> Result<DriveManifest, DriveError> {
    regenerate_at(dir, header, book, None)
}

/// [`regenerate`], the drive placed at `place` when given (a drive set's member: see
/// [`super::drives`]).
pub fn regenerate_at(
    dir: &Path,
    header: &Header,
    book: &DriveBook,
    place: Option<Place>,
) -> Result<DriveManifest, DriveError> {
    let _lock = FolderLock::take(dir)?;
    // A garbled manifest is replaced (what it said about the drive is lost with it).
    let kept = match read_manifest(dir) {
        Ok(Some(m)) => m.drive,
        Ok(None) | Err(DriveError::Garbled { .. }) => Place { label: default_label(dir), position: 1, of: 1 },
        Err(e) => return Err(e),
    };
    let place = place.unwrap_or(kept);
    let m = manifest_of(dir, header, book, place);
    write_locked(dir, &m)?;
    Ok(m)
}

/// Gives `dir`'s drive the label `label` (manifest and README rewritten atomically under the
/// folder's lock). Returns the manifest written.
pub fn relabel(dir: &Path, label: &str) -> Result<DriveManifest, DriveError> {
    check_label(label)?;
    let _lock = FolderLock::take(dir)?;
    let mut m = read_manifest(dir)?.ok_or_else(|| DriveError::NoManifest(dir.to_path_buf()))?;
    m.drive.label = label.to_string();
    write_locked(dir, &m)?;
    Ok(m)
}

/// What is wrong with one CAR of a drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Listed in the manifest, not on the drive.
    Missing,
    /// On the drive, not listed.
    Extra,
    /// On the drive and listed, but not what the manifest says.
    Damaged,
}

/// One problem [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// The CAR's file name.
    pub file: String,
    /// Why, one line.
    pub reason: String,
}

/// What [`check`] found.
#[derive(Debug, Clone)]
pub struct DriveCheck {
    /// The drive's manifest.
    pub manifest: DriveManifest,
    /// CARs listed and found intact (by the check asked for).
    pub good: usize,
    /// One entry per problem, listed CARs in manifest order, then extra ones by name.
    pub problems: Vec<Problem>,
}

/// Checks the drive in `dir` against its manifest: every listed CAR present with its size, and
/// with `strict`, verified as `carload verify` does (every block, the DAG, the payload CID and
/// the piece recomputed and compared with the manifest's claims); every `*.car` not listed is
/// extra. `each` is told each CAR's file name before it is checked (strict checks take long).
pub fn check(dir: &Path, strict: bool, each: &mut dyn FnMut(&str)) -> Result<DriveCheck, DriveError> {
    let manifest = read_manifest(dir)?.ok_or_else(|| DriveError::NoManifest(dir.to_path_buf()))?;
    let mut problems = Vec::new();
    let mut good = 0;
    for c in &manifest.cars {
        each(&c.file);
        let problem = |kind, reason| Problem { kind, file: c.file.clone(), reason };
        let path = outputs(dir, &c.batch).car;
        match check_car(&path, c, strict) {
            Ok(()) => good += 1,
            Err(Some(reason)) => problems.push(problem(ProblemKind::Damaged, reason)),
            Err(None) => problems.push(problem(
                ProblemKind::Missing,
                format!("listed ({} bytes, piece {}) but not on the drive", c.car_size, c.piece_cid),
            )),
        }
    }
    let listed: std::collections::HashSet<&str> = manifest.cars.iter().map(|c| c.file.as_str()).collect();
    let mut extra = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|source| DriveError::Io { path: dir.to_path_buf(), source })?;
    for e in rd {
        let e = e.map_err(|source| DriveError::Io { path: dir.to_path_buf(), source })?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".car") && !name.starts_with('.') && !listed.contains(name.as_str()) {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            extra.push(Problem {
                kind: ProblemKind::Extra,
                file: name,
                reason: format!("{size} bytes on the drive, not listed in {MANIFEST}"),
            });
        }
    }
    extra.sort_by(|a, b| a.file.cmp(&b.file));
    problems.extend(extra);
    Ok(DriveCheck { manifest, good, problems })
}

/// Checks one listed CAR: `Err(None)` when it is absent, `Err(Some(why))` when damaged.
fn check_car(path: &Path, c: &CarEntry, strict: bool) -> Result<(), Option<String>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(None),
        Err(e) => return Err(Some(format!("cannot be read: {e}"))),
    };
    if !meta.is_file() {
        return Err(Some("is not a regular file".into()));
    }
    if meta.len() != c.car_size {
        return Err(Some(format!("{} bytes, the manifest lists {}", meta.len(), c.car_size)));
    }
    if let Err(why) = super::judge::check_fields(&c.as_result(), None) {
        return Err(Some(format!("the manifest's entry is inconsistent: {why}")));
    }
    if !strict {
        return Ok(());
    }
    let file = std::fs::File::open(path).map_err(|e| Some(format!("cannot be read: {e}")))?;
    let report = crate::verify::verify_file(&file, path).map_err(|e| Some(format!("not a readable CAR: {e}")))?;
    let mut lines: Vec<String> = report.problems.clone();
    lines.extend(super::check::compare_result(&c.as_result(), &report, None));
    match lines.len() {
        0 if report.problem_count == 0 => Ok(()),
        _ => Err(Some(format!(
            "{} problem(s): {}",
            report.problem_count.max(lines.len() as u64),
            lines.into_iter().take(3).collect::<Vec<_>>().join("; ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_one_printable_line() {
        assert!(check_label("drive 07").is_ok());
        for bad in ["", " x", "a\nb", "x\t", &"x".repeat(MAX_LABEL + 1)] {
            assert!(matches!(check_label(bad), Err(DriveError::BadLabel(_))), "{bad:?}");
        }
        assert_eq!(default_label(Path::new("/mnt/drive07")), "drive07");
        assert_eq!(default_label(Path::new(".")), "drive");
        assert_eq!(shipment_name(Path::new("/x/photos.jsonl")), "photos");
    }

    #[test]
    fn a_manifest_naming_a_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let m = serde_json::json!({"format":FORMAT,"version":1,"shipment":{"name":"s","id":"x"},
            "drive":{"label":"d","position":1,"of":1},
            "cars":[{"batch":"b0","file":"../etc/passwd","car_size":1,"payload_cid":"","piece_cid":"",
            "piece_cid_v2":"","piece_size":128,"piece_size_unpadded":127}]});
        std::fs::write(dir.path().join(MANIFEST), m.to_string()).unwrap();
        let e = read_manifest(dir.path()).unwrap_err();
        assert!(matches!(e, DriveError::Garbled { .. }), "{e}");
        assert!(check(dir.path(), false, &mut |_| {}).is_err());
        assert!(matches!(relabel(dir.path(), "x"), Err(DriveError::Garbled { .. })));
    }

    #[test]
    fn writers_wait_for_the_folder_lock() {
        let dir = tempfile::tempdir().unwrap();
        let m = DriveManifest {
            format: FORMAT.into(),
            version: VERSION,
            shipment: ShipmentRef { name: "s".into(), id: "0".into() },
            drive: Place { label: "old".into(), position: 1, of: 1 },
            cars: Vec::new(),
        };
        std::fs::write(dir.path().join(MANIFEST), manifest_bytes(&m)).unwrap();
        let held = FolderLock::take(dir.path()).unwrap();
        let path = dir.path().to_path_buf();
        let writer = std::thread::spawn(move || relabel(&path, "new").map(|m| m.drive.label));
        std::thread::sleep(std::time::Duration::from_millis(300));
        let label = |d: &Path| read_manifest(d).unwrap().unwrap().drive.label;
        assert_eq!(label(dir.path()), "old", "the writer waits while another holds the lock");
        drop(held);
        assert_eq!(writer.join().unwrap().unwrap(), "new");
        assert_eq!(label(dir.path()), "new");
        let readme = std::fs::read_to_string(dir.path().join(README)).unwrap();
        assert!(readme.starts_with("carload drive \"new\": drive 1 of 1 of shipment \"s\"\n"), "{readme}");

        // A killed writer's temporary is removed by the next writer.
        let orphan = dir.path().join(".carload-drive.json.Xy12Ab.partial");
        std::fs::write(&orphan, b"{").unwrap();
        relabel(dir.path(), "new").unwrap();
        assert!(!orphan.exists());

        // Somebody's own README.txt in the folder is never replaced.
        std::fs::write(dir.path().join(README), "my notes\n").unwrap();
        relabel(dir.path(), "newer").unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join(README)).unwrap(), "my notes\n");
        assert_eq!(label(dir.path()), "newer");
    }

    /// A shipment of several batches of small files in `dir/data`.
    fn shipment(dir: &Path) -> crate::shipment::Shipment {
        use crate::shipment::plan::{plan, resolve_inputs, walk_tree, PlanOptions, SECTOR_32GIB};
        std::fs::create_dir_all(dir.join("data")).unwrap();
        for i in 0..14u8 {
            std::fs::write(dir.join(format!("data/f{i}")), vec![i; 50_000 + i as usize]).unwrap();
        }
        let resolved = resolve_inputs(dir, &[PathBuf::from("data")]).unwrap();
        let files = walk_tree(&resolved.paths, &resolved.names, false).unwrap();
        let mut o = PlanOptions::for_sector(SECTOR_32GIB, crate::profile::Profile::default());
        o.piece_size = 1 << 18;
        o.min_piece_size = 1 << 17;
        let sources = (0..files.len()).map(|i| files.source_file(i)).collect();
        let base = Some(crate::shipment::file::path_to_name(&resolved.base));
        plan(sources, &o, resolved.input_names(), base).unwrap()
    }

    #[test]
    fn each_build_regenerates_the_manifest_and_a_changed_output_is_judged_again() {
        use crate::shipment::lock::Owner;
        use crate::shipment::runner::{build_one, BuildOpts, Clock, Hooks, NoCleanup, Outcome};
        let dir = tempfile::tempdir().unwrap();
        let s = shipment(dir.path());
        assert!(s.batches.len() >= 3, "{}", s.batches.len());
        let out = dir.path().join("drive07");
        std::fs::create_dir_all(&out).unwrap();
        let watched = s.batches.iter().map(|b| Watched::of(&s.header, b)).collect();
        let book = std::sync::Arc::new(DriveBook::new("ship", &s.header, watched));
        let mut o = BuildOpts::new(out.clone());
        o.drive = Some(book.clone());
        let owner = Owner::this_process("builder1");
        let clock = Clock { wall: std::time::SystemTime::now, monotonic: std::time::Instant::now };
        let hooks = Hooks { owner: &owner, clock, cleanup: &NoCleanup };
        let ids: Vec<&str> = s.batches.iter().map(|b| b.id.as_str()).collect();
        let listed = || read_manifest(&out).unwrap().unwrap().cars.iter().map(|c| c.batch.clone()).collect::<Vec<_>>();
        for (k, b) in s.batches.iter().enumerate() {
            let outcome = build_one(&s.header, b, &o, &hooks, &mut crate::event::Ignore);
            let Outcome::Built(r, _) = outcome else { panic!("{outcome:?}") };
            assert_eq!(listed(), ids[..=k], "listed as soon as it is built");
            assert_eq!(read_manifest(&out).unwrap().unwrap().cars[k], CarEntry::of(&r));
        }
        let m = read_manifest(&out).unwrap().unwrap();
        assert_eq!(m.drive, Place { label: "drive07".into(), position: 1, of: 1 });
        assert_eq!(m.shipment, book.shipment);

        // Outputs changed after they were judged: the same book judges them again.
        let first = outputs(&out, ids[0]);
        std::fs::remove_file(&first.json).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(outputs(&out, ids[1]).car).unwrap();
        f.set_len(f.metadata().unwrap().len() - 1).unwrap();
        let m = regenerate(&out, &s.header, &book).unwrap();
        assert_eq!(m.cars.iter().map(|c| c.batch.as_str()).collect::<Vec<_>>(), ids[2..]);
        // A build without a book leaves the manifest alone.
        let bare = BuildOpts::new(out.clone());
        assert!(matches!(
            build_one(&s.header, &s.batches[0], &bare, &hooks, &mut crate::event::Ignore),
            Outcome::Built(..)
        ));
        assert_eq!(listed(), ids[2..]);
        assert_eq!(regenerate(&out, &s.header, &book).unwrap().cars.len(), ids.len() - 1);
    }
}
