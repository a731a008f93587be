//! Filecoin batches from a folder: every non-directory under it becomes its own DAG, and the
//! DAGs are aggregated (go-dagaggregator-unixfs v0.1.0) into one CAR with
//! `@AggregateManifest.ndjson` — what `pow offline prepare --aggregate` does.
//!
//! The CAR orders entries by their CIDv1, which is only known once every file is hashed. Small
//! files (up to 4 MiB) are therefore read once, hashed in parallel groups, and their CAR sections
//! spooled to an unnamed temporary file; large files are hashed keeping only their internal nodes
//! and read a second time when the CAR is written (cheaper than writing and reading a spooled
//! copy, and no double disk space). The final CAR is written strictly in order from the aggregate
//! blocks, the spool and the re-read files. Memory holds 56 bytes per entry (see
//! [`crate::aggregate::compact`]: the manifest is spooled too), the internal nodes of large files
//! (about 1/5000 of their bytes) and the CIDs of blocks written that are not an entry's root.

use crate::aggregate::compact::{aggregate_compact, CompactAggregate, Item, Key, Member, SpooledBytes};
use crate::aggregate::{aggregate, Aggregate, CarItem, Entry as AggEntry};
use crate::car;
use crate::commp::{PieceHasher, PieceInfo};
use crate::event::Observer;
use crate::importer::stream::Builder;
use crate::importer::{scan, Entry, ImportError};
use crate::profile::Profile;
use crate::sink::{RecordingSink, ReplaySink, TeeWriter};
use crate::varint;
use cid::Cid;
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Errors specific to batches.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The input is not a folder.
    #[error("{0}: is not a folder (--aggregate takes a folder of files)")]
    NotAFolder(PathBuf),
    /// The folder holds no files.
    #[error("{0}: no files to aggregate (the folder is empty)")]
    Empty(PathBuf),
    /// Walking or reading the input failed.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// Aggregation failed.
    #[error(transparent)]
    Aggregate(#[from] crate::aggregate::AggregateError),
    /// The spool could not be used.
    #[error("temporary spool: {0}")]
    Spool(io::Error),
    /// Writing the CAR failed.
    #[error("writing output: {0}")]
    Output(io::Error),
    /// The piece hasher refused the data.
    #[error("{0}")]
    Piece(String),
    /// A large file changed between hashing and writing (it is read twice).
    #[error("{name}: {reason} (the file changed between hashing and writing the batch)")]
    Reread {
        /// The file's walk name.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// More files than a batch can index.
    #[error("{0} files in one batch: at most 4,294,967,294")]
    TooManyFiles(usize),
    /// The importer made a root that is not a sha2-256 CID (an internal error).
    #[error("DAG root {0} is not a sha2-256 CID")]
    UnsupportedCid(Cid),
    /// Fetching from an IPFS node failed.
    #[error(transparent)]
    Ipfs(#[from] crate::ipfs::IpfsError),
}

/// One file of a batch.
#[derive(Debug, Clone)]
pub struct BatchFile {
    /// The walk path, as Powergate names it (`filepath.Join(root, rel)`, cleaned).
    pub name: String,
    /// What to import (a symlink's target, followed).
    pub entry: Entry,
}

/// Lists every non-directory under `root` in byte-sorted depth-first walk order (hidden entries
/// included), following symlinks to their targets, as Powergate's `filepath.Walk` + `Dagify` does.
pub fn walk(root: &Path, profile: &Profile) -> Result<Vec<BatchFile>, BatchError> {
    let w = walk_folder(root, profile)?;
    Ok((0..w.count()).map(|i| w.file(i).into_owned()).collect())
}

/// The files of a folder for a batch, as [`walk`] lists them, kept compact: the walk's listings
/// (about 60 bytes per entry), each [`BatchFile`] made when asked for. The folders are read in
/// parallel by [`crate::walk`], the walker of `plan` and the workstation.
#[derive(Debug)]
pub struct FolderFiles {
    walked: crate::shipment::plan::WalkedFiles,
    /// Entries that are not regular files (symlinks to folders: their folder's DAG), scanned.
    special: std::collections::HashMap<usize, Entry>,
}

impl BatchFiles for FolderFiles {
    fn count(&self) -> usize {
        self.walked.len()
    }

    fn file(&self, i: usize) -> Cow<'_, BatchFile> {
        let path = self.walked.path(i);
        let name = path.to_string_lossy().into_owned();
        let entry = match self.special.get(&i) {
            Some(e) => e.clone(),
            None => Entry::File { path, size: self.walked.size(i), expect: None },
        };
        Cow::Owned(BatchFile { name, entry })
    }

    fn size(&self, i: usize) -> u64 {
        match self.special.get(&i) {
            Some(e) => e.totals().1,
            None => self.walked.size(i),
        }
    }
}

/// [`walk`], compact ([`FolderFiles`]).
pub fn walk_folder(root: &Path, profile: &Profile) -> Result<FolderFiles, BatchError> {
    use crate::shipment::plan::{walk_tree, PlanError};
    let meta = std::fs::metadata(root).map_err(|e| ImportError::io(root, e))?;
    if !meta.is_dir() {
        return Err(BatchError::NotAFolder(root.to_path_buf()));
    }
    // A root that is a symlink to a folder is walked through (as `filepath.Walk` walks it).
    let target = match std::fs::symlink_metadata(root) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(root).map_err(|e| ImportError::io(root, e))?,
        _ => root.to_path_buf(),
    };
    let walked = walk_tree(&[target], &[crate::walk::clean_path(root)], true).map_err(|e| match e {
        PlanError::Import(e) => BatchError::Import(e),
        other => BatchError::Import(ImportError::io(root, io::Error::other(other.to_string()))),
    })?;
    if walked.is_empty() {
        return Err(BatchError::Empty(root.to_path_buf()));
    }
    let mut special = std::collections::HashMap::new();
    for i in 0..walked.len() {
        use crate::walk::Kind;
        if !matches!(walked.kind(i), Kind::File | Kind::LinkToFile) {
            // Each entry is DAGified on its own, following a symlink like `os.Open` does.
            special.insert(i, scan(&walked.path(i), profile)?);
        }
    }
    Ok(FolderFiles { walked, special })
}

/// The files of a batch in walk order, produced on demand: a batch of millions of files need
/// not hold them all as [`BatchFile`]s.
pub trait BatchFiles: Sync {
    /// Number of files.
    fn count(&self) -> usize;
    /// File `i` (`i < count()`).
    fn file(&self, i: usize) -> Cow<'_, BatchFile>;
    /// Bytes of file `i` (without making its [`BatchFile`] where the source knows them).
    fn size(&self, i: usize) -> u64 {
        self.file(i).entry.totals().1
    }
}

impl BatchFiles for [BatchFile] {
    fn count(&self) -> usize {
        self.len()
    }
    fn file(&self, i: usize) -> Cow<'_, BatchFile> {
        Cow::Borrowed(&self[i])
    }
}

/// Each file's DAG root, in walk order (duplicates kept).
#[derive(Debug)]
pub struct Roots {
    list: RootList,
    /// Whether dag-pb roots are CIDv0 (the profile's CID version).
    v0: bool,
}

#[derive(Debug)]
enum RootList {
    /// Compact members, sorted by walk order.
    Members(Vec<Member<Src>>),
    Cids(Vec<Cid>),
}

impl Roots {
    /// Number of files.
    pub fn len(&self) -> usize {
        match &self.list {
            RootList::Members(m) => m.len(),
            RootList::Cids(c) => c.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The root of file `i`, as the importer made it (CIDv0 for dag-pb under a CIDv0 profile).
    pub fn get(&self, i: usize) -> Cid {
        match &self.list {
            RootList::Members(m) => m[i].key.cid_v0().filter(|_| self.v0).unwrap_or_else(|| m[i].key.cid()),
            RootList::Cids(c) => c[i],
        }
    }

    /// Every root, in walk order.
    pub fn iter(&self) -> impl Iterator<Item = Cid> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// The manifest of a built batch: in memory, or spooled for large batches.
#[derive(Debug)]
pub enum ManifestBytes {
    /// Held in memory.
    Memory(Vec<u8>),
    /// In a temporary file.
    Spooled(SpooledBytes),
}

impl ManifestBytes {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            ManifestBytes::Memory(v) => v.len() as u64,
            ManifestBytes::Spooled(s) => s.len(),
        }
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the bytes to `w`.
    pub fn copy_to(&self, w: &mut dyn Write) -> io::Result<()> {
        match self {
            ManifestBytes::Memory(v) => w.write_all(v),
            ManifestBytes::Spooled(s) => s.copy_to(w),
        }
    }

    /// The bytes, in memory.
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        match self {
            ManifestBytes::Memory(v) => Ok(v.clone()),
            ManifestBytes::Spooled(s) => s.to_vec(),
        }
    }
}

/// What a batch build produced.
#[derive(Debug)]
pub struct BatchBuilt {
    /// The aggregate root (payload CID).
    pub root: Cid,
    /// CAR bytes written.
    pub car_size: u64,
    /// Each file's DAG root, in walk order (duplicates kept).
    pub roots: Roots,
    /// Entries in the manifest (distinct DAGs).
    pub unique: usize,
    /// The manifest (`@AggregateManifest.ndjson`).
    pub manifest: ManifestBytes,
    /// The piece commitment, when asked for.
    pub piece: Option<PieceInfo>,
}

/// Where an entry's CAR sections are when the batch CAR is written: bytes `at..at + len` of the
/// spool, or, when `len` is [`REREAD`], rebuilt from the file with the internal nodes recorded
/// on the first pass (`at` indexes those records): large files are read twice instead of copied
/// through the spool. Twelve bytes, so a member is 56 bytes.
#[derive(Debug, Clone, Copy)]
struct Src {
    at: [u32; 2],
    len: u32,
}

const REREAD: u32 = u32::MAX;

impl Src {
    fn spool(offset: u64, len: u32) -> Self {
        Src { at: [offset as u32, (offset >> 32) as u32], len }
    }
    fn offset(&self) -> u64 {
        u64::from(self.at[0]) | (u64::from(self.at[1]) << 32)
    }
}

/// A large file's internal nodes, recorded when it was hashed.
struct Reread {
    file: usize,
    record: RecordingSink,
}

/// Builds the batch of `files` and writes its CAR to `out` in order. `spool_dir` holds the
/// temporary spools (unnamed, removed automatically). Memory: 56 bytes per file, the internal
/// nodes of large files, and per-bucket and per-manifest-leaf records (see
/// [`crate::aggregate::compact`]).
pub fn build(
    files: &(impl BatchFiles + ?Sized),
    profile: &Profile,
    spool_dir: &Path,
    out: &mut dyn Write,
    with_commp: bool,
    observer: &mut dyn Observer,
) -> Result<BatchBuilt, BatchError> {
    if files.count() >= REREAD as usize {
        return Err(BatchError::TooManyFiles(files.count()));
    }
    let spool = tempfile::tempfile_in(spool_dir).map_err(BatchError::Spool)?;
    observer.event(crate::event::Event::Phase(crate::event::Phase::Hashing));
    let (members, rereads) = spool_entries(files, profile, &spool, observer)?;
    observer.event(crate::event::Event::Phase(crate::event::Phase::Writing));
    let agg = aggregate_compact(members, tempfile::tempfile_in(spool_dir).map_err(BatchError::Spool)?)?;
    let (car_size, piece) = std::thread::scope(|scope| {
        // The spooled entries are read ahead, in CAR order, on another thread.
        let (tx, rx) = std::sync::mpsc::sync_channel(PREFETCH_DEPTH);
        let (spare_tx, spare_rx) = std::sync::mpsc::sync_channel(PREFETCH_DEPTH + 2);
        let (members, spool) = (agg.members(), &spool);
        scope.spawn(move || read_ahead(members, spool, tx, spare_rx));
        let mut ahead = ReadAhead { rx, spare: spare_tx, buf: Vec::new(), at: 0 };
        write_car(&agg.root, out, with_commp, &mut |w| {
            let mut written = Written { blocks: HashSet::new(), agg: &agg, position: 0 };
            agg.for_each_item(&mut |item| -> Result<(), BatchError> {
                match item {
                    Item::Block(b) => {
                        if written.first_time(&b.cid, false).map_err(BatchError::Spool)? {
                            write_section(w, &b.cid, &b.data)?;
                        }
                        Ok(())
                    }
                    Item::Entry { position, member } => {
                        if observer.cancelled() {
                            return Err(ImportError::Cancelled.into());
                        }
                        written.position = position;
                        let before = w.written();
                        let r = write_entry(files, profile, &mut ahead, &rereads, member, &mut written, w);
                        written.position = position + 1;
                        observer.event(crate::event::Event::CarBytes(w.written() - before));
                        r
                    }
                }
            })
        })
    })?;
    let (root, unique) = (agg.root, agg.unique());
    let (mut members, manifest) = agg.into_parts();
    members.par_sort_unstable_by_key(|m| m.order);
    Ok(BatchBuilt {
        root,
        car_size,
        roots: Roots { list: RootList::Members(members), v0: profile.cid_version == crate::block::CidVersion::V0 },
        unique,
        manifest: ManifestBytes::Spooled(manifest),
        piece,
    })
}

/// Spooled entries' CAR sections taken in batches of about this many bytes by the reader.
const PREFETCH_BYTES: usize = 1 << 20;
/// Batches read ahead of the writer at most.
const PREFETCH_DEPTH: usize = 4;

/// Reads the CAR sections of every spooled entry of `members` (CAR order, duplicates and large
/// files skipped) from `spool`, one `pread` each, and sends them on `tx` in batches of about
/// [`PREFETCH_BYTES`]; used buffers come back on `spare`. Stops at the first error (sent) or
/// when the receiver is gone.
fn read_ahead(
    members: &[Member<Src>],
    spool: &File,
    tx: std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>,
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
) {
    use std::os::unix::fs::FileExt;
    let mut buf = Vec::with_capacity(PREFETCH_BYTES + (64 << 10));
    for m in members.iter().filter(|m| !m.is_duplicate() && m.payload.len != REREAD) {
        let start = buf.len();
        buf.resize(start + m.payload.len as usize, 0);
        if let Err(e) = spool.read_exact_at(&mut buf[start..], m.payload.offset()) {
            let _ = tx.send(Err(e));
            return;
        }
        if buf.len() >= PREFETCH_BYTES {
            let mut next = spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(PREFETCH_BYTES + (64 << 10)));
            next.clear();
            if tx.send(Ok(std::mem::replace(&mut buf, next))).is_err() {
                return;
            }
        }
    }
    if !buf.is_empty() {
        let _ = tx.send(Ok(buf));
    }
}

/// The writer's end of [`read_ahead`]: each spooled entry's bytes, in CAR order.
struct ReadAhead {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    spare: std::sync::mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
    at: usize,
}

impl ReadAhead {
    /// The next spooled entry's `len` bytes.
    fn next(&mut self, len: usize) -> Result<&[u8], BatchError> {
        if self.at == self.buf.len() && len > 0 {
            let used = std::mem::take(&mut self.buf);
            let _ = self.spare.try_send(used);
            self.buf = match self.rx.recv() {
                Ok(r) => r.map_err(BatchError::Spool)?,
                Err(_) => return Err(BatchError::Spool(io::Error::other("the spool reader ended early"))),
            };
            self.at = 0;
        }
        let bytes = self
            .buf
            .get(self.at..self.at + len)
            .ok_or_else(|| BatchError::Spool(io::Error::other("the spool reader is out of step with the writer")))?;
        self.at += len;
        Ok(bytes)
    }
}

/// Writes the DAG of `member` (from the spool, or rebuilt from its file) through a
/// [`SectionFilter`].
fn write_entry(
    files: &(impl BatchFiles + ?Sized),
    profile: &Profile,
    ahead: &mut ReadAhead,
    rereads: &[Reread],
    member: &Member<Src>,
    written: &mut Written<'_>,
    w: &mut TeeWriter<'_>,
) -> Result<(), BatchError> {
    let mut filter = SectionFilter::new(member.key.cid(), written, w);
    let src = member.payload;
    let res = if src.len == REREAD {
        let Reread { file, record } = &rereads[src.offset() as usize];
        let f = files.file(*file);
        let mut sink = ReplaySink::new(record.clone(), &mut filter);
        let mut quiet = crate::event::Ignore;
        Builder::new(*profile, &mut sink, &mut quiet, 0)
            .entry(&f.entry)
            .map(|_| ())
            .map_err(|e| BatchError::Reread { name: f.name.clone(), reason: e.to_string() })
    } else {
        let bytes = ahead.next(src.len as usize)?;
        filter.write_all(bytes).map_err(BatchError::Spool)
    };
    match (res, filter.out_error.take()) {
        (_, Some(e)) => Err(BatchError::Output(e)),
        (r, None) => r.and_then(|_| filter.finish()),
    }
}

/// Which blocks are in the CAR so far. An entry's root is known written by its position in CAR
/// order (the aggregate's members), so only the other blocks are recorded: memory grows with the
/// blocks of multi-block files, not with the entries.
struct Written<'a> {
    blocks: HashSet<(bool, Key)>,
    agg: &'a CompactAggregate<Src>,
    /// Members before this position in CAR order are written.
    position: usize,
}

impl Written<'_> {
    /// Whether the block `cid` is not yet in the CAR (and records it as written). `root` when it
    /// is the root of the entry being written, under its CIDv1.
    fn first_time(&mut self, cid: &Cid, root: bool) -> io::Result<bool> {
        let key = Key::of(cid).ok_or_else(|| io::Error::other(format!("block {cid} is not a sha2-256 CID")))?;
        let id = (cid.version() == cid::Version::V0, key);
        if self.blocks.contains(&id) {
            return Ok(false);
        }
        if root {
            return Ok(true);
        }
        if !id.0 && self.agg.is_entry_before(&key, self.position) {
            return Ok(false);
        }
        self.blocks.insert(id);
        Ok(true)
    }
}

/// Files up to this size are built in parallel in memory, in groups.
const SMALL_FILE: u64 = 4 << 20;

/// An upper bound of the spool a batch of files of sizes `sizes` writes (chunks of `chunk`
/// bytes): every small file's bytes and, per chunk, far more than a section's framing, CID and
/// link cost.
pub fn spool_bound(sizes: impl Iterator<Item = u64>, chunk: u64) -> u64 {
    sizes.filter(|&s| s <= SMALL_FILE).map(|s| s + (s / chunk.max(1) + 2) * 128).sum()
}
/// Upper bound of file bytes in one parallel group (between two progress events).
const GROUP_BYTES: u64 = 16 << 20;
/// Small files per task: built one after another into one buffer, which is written to the
/// spool with one `pwrite`.
const TASK_FILES: usize = 64;
/// Upper bound of file bytes per task (a task holds at least one file).
const TASK_BYTES: u64 = 1 << 20;
/// A task buffer up to this capacity is kept for the thread's next task.
const TASK_BUF_MAX: usize = 8 << 20;

thread_local! {
    /// This thread's task buffer, reused from task to task.
    static TASK_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Reads every file once, in walk order. Small files are hashed in parallel tasks of
/// consecutive files, each task's CAR sections written to `spool` at a place it takes for them
/// (so writing the spool is parallel too); large files stream through the importer, which keeps
/// only their internal nodes (they are read again when the CAR is written).
fn spool_entries(
    files: &(impl BatchFiles + ?Sized),
    profile: &Profile,
    spool: &File,
    observer: &mut dyn Observer,
) -> Result<(Vec<Member<Src>>, Vec<Reread>), BatchError> {
    let n = files.count();
    let mut members = Vec::with_capacity(n);
    let mut rereads = Vec::new();
    let end = std::sync::atomic::AtomicU64::new(0);
    let mut tasks = Vec::new();
    let mut i = 0;
    while i < n {
        if observer.cancelled() {
            return Err(ImportError::Cancelled.into());
        }
        let mut j = i;
        let (mut group_bytes, mut task_bytes) = (0, 0);
        tasks.clear();
        while j < n {
            let size = files.size(j);
            if size > SMALL_FILE || group_bytes + size > GROUP_BYTES {
                break;
            }
            match tasks.last_mut() {
                Some(t) if j - *t < TASK_FILES && task_bytes + size <= TASK_BYTES => task_bytes += size,
                _ => {
                    tasks.push(j);
                    task_bytes = size;
                }
            }
            group_bytes += size;
            j += 1;
        }
        if j == i {
            // A large file: hashed now, keeping only its internal nodes; its bytes are read
            // again when the CAR is written (cheaper than a spooled copy, and no 2× disk space).
            let mut record = RecordingSink::default();
            let root = Builder::new(*profile, &mut record, observer, 0).entry(&files.file(i).entry)?.0;
            let src = Src::spool(rereads.len() as u64, REREAD);
            members.push(Member::new(key_of(&root)?, i as u32, src));
            rereads.push(Reread { file: i, record });
            observer.event(crate::event::Event::FilesDone(1));
            i += 1;
            continue;
        }
        let built: Vec<Result<Vec<Member<Src>>, BatchError>> = (0..tasks.len())
            .into_par_iter()
            .map(|t| {
                let to = tasks.get(t + 1).copied().unwrap_or(j);
                spool_task(files, profile, spool, &end, tasks[t]..to)
            })
            .collect();
        for r in built {
            members.extend(r?);
        }
        observer.event(crate::event::Event::BytesRead(group_bytes));
        observer.event(crate::event::Event::FilesDone((j - i) as u64));
        i = j;
    }
    Ok((members, rereads))
}

fn key_of(root: &Cid) -> Result<Key, BatchError> {
    Key::of(root).ok_or(BatchError::UnsupportedCid(*root))
}

/// Builds the small files `range` one after another into this thread's task buffer (each file
/// opened by name in its folder, the folder opened once per run of its files) and writes the
/// buffer to `spool` at a place taken from `end`. Returns their members.
fn spool_task(
    files: &(impl BatchFiles + ?Sized),
    profile: &Profile,
    spool: &File,
    end: &std::sync::atomic::AtomicU64,
    range: std::ops::Range<usize>,
) -> Result<Vec<Member<Src>>, BatchError> {
    use crate::importer::input::Folder;
    use std::os::unix::fs::FileExt;
    let mut sink = crate::sink::VecSink { bytes: TASK_BUF.with(|b| b.take()) };
    sink.bytes.clear();
    let mut folder: Option<Folder> = None;
    let mut made = Vec::with_capacity(range.len());
    let mut quiet = crate::event::Ignore;
    for k in range {
        let f = files.file(k);
        let parent = match &f.entry {
            Entry::File { path, .. } | Entry::FileRange { path, .. } => {
                path.parent().filter(|p| !p.as_os_str().is_empty())
            }
            _ => None,
        };
        if let Some(p) = parent {
            if folder.as_ref().is_none_or(|d| d.path() != p) {
                // A folder that cannot be opened: its files are opened by path (and any error
                // names the file).
                folder = Folder::open(p).ok();
            }
        }
        let start = sink.bytes.len() as u64;
        let mut builder = Builder::new(*profile, &mut sink, &mut quiet, start);
        let root = match (&folder, parent) {
            (Some(d), Some(_)) => builder.entry_in(d, &f.entry)?.0,
            _ => builder.entry(&f.entry)?.0,
        };
        made.push((key_of(&root)?, k as u32, start, (sink.bytes.len() as u64 - start) as u32));
    }
    let at = end.fetch_add(sink.bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
    spool.write_all_at(&sink.bytes, at).map_err(BatchError::Spool)?;
    if sink.bytes.capacity() <= TASK_BUF_MAX {
        TASK_BUF.with(|b| b.set(sink.bytes));
    }
    Ok(made.into_iter().map(|(key, k, start, len)| Member::new(key, k, Src::spool(at + start, len))).collect())
}

/// Writes an entry's DAG: `(original root, root as written, CIDs written so far, output)`.
type EntryWriter<'a> = dyn FnMut(&Cid, &Cid, &mut HashSet<Cid>, &mut TeeWriter<'_>) -> Result<(), BatchError> + 'a;

/// Writes the CAR of `agg` strictly in order: header, aggregate blocks, and each entry's DAG
/// through `write_entry`. Returns the CAR size and, when asked, its piece commitment.
fn write_aggregate_car(
    agg: &Aggregate,
    out: &mut dyn Write,
    with_commp: bool,
    write_entry: &mut EntryWriter<'_>,
) -> Result<(u64, Option<PieceInfo>), BatchError> {
    write_car(&agg.root, out, with_commp, &mut |w| {
        let mut visited: HashSet<Cid> = HashSet::new();
        for item in agg.car_items() {
            match item {
                CarItem::Block(b) => {
                    if visited.insert(b.cid) {
                        write_section(w, &b.cid, &b.data)?;
                    }
                }
                CarItem::Entry { cid_v1, original, .. } => write_entry(&original, &cid_v1, &mut visited, w)?,
            }
        }
        Ok(())
    })
}

/// Writes a CAR with root `root` to `out`: the header, then what `body` writes, teed into a
/// piece hasher when `with_commp`. Returns the CAR size and, when asked, its piece commitment.
fn write_car(
    root: &Cid,
    out: &mut dyn Write,
    with_commp: bool,
    body: &mut dyn FnMut(&mut TeeWriter<'_>) -> Result<(), BatchError>,
) -> Result<(u64, Option<PieceInfo>), BatchError> {
    let mut hasher = with_commp.then(PieceHasher::new);
    let mut w = TeeWriter::new(out, hasher.as_mut());
    w.write_all(&car::header(root)).map_err(BatchError::Output)?;
    body(&mut w)?;
    w.flush().map_err(BatchError::Output)?;
    let car_size = w.written();
    let piece = match hasher {
        Some(h) => Some(h.finish(car_size).map_err(|e| BatchError::Piece(e.to_string()))?),
        None => None,
    };
    Ok((car_size, piece))
}

/// Writes one CAR section (length, CID, data).
fn write_section(w: &mut TeeWriter<'_>, cid: &Cid, data: &[u8]) -> Result<(), BatchError> {
    w.write_all(&car::section_prefix(cid, data.len())).map_err(BatchError::Output)?;
    w.write_all(data).map_err(BatchError::Output)
}

/// Builds a batch of DAGs held by an IPFS node (`roots` as given; identity CIDs skipped and
/// duplicates merged as the aggregator does) and writes its CAR to `out` in order. Every block
/// is fetched once and verified against its CID.
pub fn build_from_node(
    fetcher: &crate::ipfs::Fetcher,
    roots: &[Cid],
    out: &mut dyn Write,
    with_commp: bool,
) -> Result<BatchBuilt, BatchError> {
    let entries: Vec<AggEntry> = roots.iter().map(|r| AggEntry::new(*r)).collect();
    let agg = aggregate(&entries)?;
    let (car_size, piece) = write_aggregate_car(&agg, out, with_commp, &mut |original, cid_v1, visited, w| {
        fetcher.walk(original, cid_v1, visited, &mut |cid, data| {
            w.write_all(&car::section_prefix(cid, data.len()))?;
            w.write_all(data)?;
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(BatchBuilt {
        root: agg.root,
        car_size,
        roots: Roots { list: RootList::Cids(roots.to_vec()), v0: false },
        unique: agg.entries().len(),
        manifest: ManifestBytes::Memory(agg.into_manifest_bytes()),
        piece,
    })
}

/// Takes an entry's CAR sections as a byte stream and writes them on: the first (the entry's
/// root) under `root_as`, the rest under their own CIDs, skipping CIDs already in the CAR.
struct SectionFilter<'a, 'b, 'w> {
    root_as: Cid,
    first: bool,
    written: &'a mut Written<'b>,
    out: &'a mut TeeWriter<'w>,
    buf: Vec<u8>,
    /// An error writing the output (as opposed to a malformed or changed input).
    out_error: Option<io::Error>,
}

impl<'a, 'b, 'w> SectionFilter<'a, 'b, 'w> {
    fn new(root_as: Cid, written: &'a mut Written<'b>, out: &'a mut TeeWriter<'w>) -> Self {
        SectionFilter { root_as, first: true, written, out, buf: Vec::new(), out_error: None }
    }

    /// Emits every complete section in the buffer.
    fn drain(&mut self) -> io::Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let at = self.emit(&buf);
        self.buf = buf;
        self.buf.drain(..at?);
        Ok(())
    }

    /// Emits every complete section at the start of `buf`; returns the bytes they took.
    fn emit(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut at = 0;
        while let Some((len, n)) = varint::read(&buf[at..]) {
            let end = at + n + len as usize;
            if end > buf.len() {
                break;
            }
            let mut cursor = io::Cursor::new(&buf[at + n..end]);
            let cid = Cid::read_bytes(&mut cursor).map_err(io::Error::other)?;
            let data = &buf[at + n + cursor.position() as usize..end];
            let root = std::mem::take(&mut self.first);
            let cid = if root { self.root_as } else { cid };
            if self.written.first_time(&cid, root)? {
                let written =
                    self.out.write_all(&car::section_prefix(&cid, data.len())).and_then(|_| self.out.write_all(data));
                if let Err(e) = written {
                    self.out_error = Some(io::Error::new(e.kind(), e.to_string()));
                    return Err(e);
                }
            }
            at = end;
        }
        Ok(at)
    }

    /// Checks that the stream ended on a section boundary.
    fn finish(self) -> Result<(), BatchError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(BatchError::Spool(io::Error::other("truncated CAR section in an entry")))
        }
    }
}

impl Write for SectionFilter<'_, '_, '_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.is_empty() {
            // Whole sections are emitted from `data` itself; only a partial one is kept.
            let at = self.emit(data)?;
            self.buf.extend_from_slice(&data[at..]);
        } else {
            self.buf.extend_from_slice(data);
            self.drain()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
