//! Filecoin batches from a folder: every non-directory under it becomes its own DAG, and the
//! DAGs are aggregated (go-dagaggregator-unixfs v0.1.0) into one CAR with
//! `@AggregateManifest.ndjson` — what `pow offline prepare --aggregate` does.
//!
//! The CAR orders entries by their CIDv1, which is only known once every file is hashed. Each
//! file is therefore read once and its CAR sections are spooled to an unnamed temporary file;
//! the final CAR is then written strictly in order from the aggregate blocks and the spool. No
//! source file is read twice and memory holds only per-entry metadata and the set of CIDs written.

use crate::aggregate::{aggregate, Aggregate, CarItem, Entry as AggEntry};
use crate::car;
use crate::commp::{PieceHasher, PieceInfo};
use crate::event::Observer;
use crate::importer::stream::Builder;
use crate::importer::{scan, Entry, ImportError};
use crate::profile::Profile;
use crate::sink::{FileSink, Sink, TeeWriter};
use crate::varint;
use cid::Cid;
use rayon::prelude::*;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

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

/// Lexically cleans a path as Go's `filepath.Clean` does for the common cases (drops `.`
/// components and trailing slashes).
pub fn clean_path(p: &Path) -> PathBuf {
    let cleaned: PathBuf = p.components().filter(|c| !matches!(c, Component::CurDir)).collect();
    if cleaned.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        cleaned
    }
}

/// Lists every non-directory under `root` in byte-sorted depth-first walk order (hidden entries
/// included), following symlinks to their targets, as Powergate's `filepath.Walk` + `Dagify` does.
pub fn walk(root: &Path, profile: &Profile) -> Result<Vec<BatchFile>, BatchError> {
    let meta = std::fs::metadata(root).map_err(|e| ImportError::io(root, e))?;
    if !meta.is_dir() {
        return Err(BatchError::NotAFolder(root.to_path_buf()));
    }
    let base = clean_path(root);
    let mut files = Vec::new();
    for item in walkdir::WalkDir::new(root).follow_links(false).sort_by(|a, b| a.file_name().cmp(b.file_name())) {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            let io = e.into_io_error().unwrap_or_else(|| io::Error::other("walk failed"));
            ImportError::io(&path, io)
        })?;
        if item.file_type().is_dir() {
            continue;
        }
        let rel = item.path().strip_prefix(root).unwrap_or(item.path());
        let name = base.join(rel).to_string_lossy().into_owned();
        // Each entry is DAGified on its own, following a symlink like `os.Open` does.
        let entry = scan(item.path(), profile)?;
        files.push(BatchFile { name, entry });
    }
    if files.is_empty() {
        return Err(BatchError::Empty(root.to_path_buf()));
    }
    Ok(files)
}

/// What a batch build produced.
#[derive(Debug, Clone)]
pub struct BatchBuilt {
    /// The aggregate root (payload CID).
    pub root: Cid,
    /// CAR bytes written.
    pub car_size: u64,
    /// Each file's walk name and DAG root, in walk order (duplicates kept).
    pub files: Vec<(String, Cid)>,
    /// Entries in the manifest (distinct DAGs).
    pub unique: usize,
    /// The manifest bytes (`@AggregateManifest.ndjson`).
    pub manifest: Vec<u8>,
    /// The piece commitment, when asked for.
    pub piece: Option<PieceInfo>,
}

struct Spooled {
    root: Cid,
    offset: u64,
    len: u64,
}

/// Builds the batch of `files` and writes its CAR to `out` in order. `spool_dir` holds the
/// temporary spool (removed automatically).
pub fn build(
    files: &[BatchFile],
    profile: &Profile,
    spool_dir: &Path,
    out: &mut dyn Write,
    with_commp: bool,
    observer: &mut dyn Observer,
) -> Result<BatchBuilt, BatchError> {
    let spool = tempfile::tempfile_in(spool_dir).map_err(BatchError::Spool)?;
    let spooled = spool_entries(files, profile, &spool, observer)?;
    let entries: Vec<AggEntry> = spooled.iter().map(|s| AggEntry::new(s.root)).collect();
    let agg = aggregate(&entries)?;
    let by_root: std::collections::HashMap<Cid, usize> =
        spooled.iter().enumerate().rev().map(|(i, s)| (s.root, i)).collect();
    let (car_size, piece) = write_aggregate_car(&agg, out, with_commp, &mut |original, cid_v1, visited, w| {
        copy_entry(&spool, &spooled[by_root[original]], cid_v1, visited, w)
    })?;
    Ok(BatchBuilt {
        root: agg.root,
        car_size,
        files: files.iter().zip(&spooled).map(|(f, s)| (f.name.clone(), s.root)).collect(),
        unique: agg.entries().len(),
        manifest: agg.manifest_bytes().to_vec(),
        piece,
    })
}

/// Files up to this size are built in parallel in memory, in groups.
const SMALL_FILE: u64 = 4 << 20;
/// Upper bound of file bytes in one parallel group.
const GROUP_BYTES: u64 = 8 << 20;

/// Reads every file once and appends its DAG's CAR sections to `spool`, in walk order. Small
/// files are read and hashed in parallel groups; large files stream through the importer.
fn spool_entries(
    files: &[BatchFile],
    profile: &Profile,
    spool: &File,
    observer: &mut dyn Observer,
) -> Result<Vec<Spooled>, BatchError> {
    let mut spooled = Vec::with_capacity(files.len());
    let mut sink = FileSink::new(spool);
    let mut end = 0;
    let mut i = 0;
    while i < files.len() {
        let mut j = i;
        let mut group_bytes = 0;
        while j < files.len() {
            let size = files[j].entry.totals().1;
            if size > SMALL_FILE || group_bytes + size > GROUP_BYTES {
                break;
            }
            group_bytes += size;
            j += 1;
        }
        if j == i {
            // A large file: streamed, leaves hashed in parallel inside the importer.
            let mut b = Builder::new(*profile, &mut sink, observer, end);
            let (root, _) = b.entry(&files[i].entry)?;
            let next = b.cursor();
            spooled.push(Spooled { root, offset: end, len: next - end });
            end = next;
            i += 1;
            continue;
        }
        let built: Vec<Result<(Cid, Vec<u8>), ImportError>> = files[i..j]
            .par_iter()
            .map(|f| {
                let size = crate::importer::layout::predict(&f.entry, profile).0.car_bytes;
                let mut mem = crate::sink::VecSink { bytes: Vec::with_capacity(size as usize) };
                let mut quiet = crate::event::Ignore;
                let root = Builder::new(*profile, &mut mem, &mut quiet, 0).entry(&f.entry)?.0;
                Ok((root, mem.bytes))
            })
            .collect();
        for r in built {
            let (root, bytes) = r?;
            sink.write_at(end, &bytes).map_err(BatchError::Spool)?;
            spooled.push(Spooled { root, offset: end, len: bytes.len() as u64 });
            end += bytes.len() as u64;
        }
        observer.event(crate::event::Event::BytesRead(group_bytes));
        i = j;
    }
    sink.flush().map_err(BatchError::Spool)?;
    Ok(spooled)
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
    let mut hasher = with_commp.then(PieceHasher::new);
    let mut w = TeeWriter::new(out, hasher.as_mut());
    w.write_all(&car::header(&agg.root)).map_err(BatchError::Output)?;
    let mut visited: HashSet<Cid> = HashSet::new();
    for item in agg.car_items() {
        match item {
            CarItem::Block(b) => {
                if visited.insert(b.cid) {
                    w.write_all(&car::section_prefix(&b.cid, b.data.len())).map_err(BatchError::Output)?;
                    w.write_all(&b.data).map_err(BatchError::Output)?;
                }
            }
            CarItem::Entry { cid_v1, original, .. } => write_entry(&original, &cid_v1, &mut visited, &mut w)?,
        }
    }
    w.flush().map_err(BatchError::Output)?;
    let car_size = w.written();
    let piece = match hasher {
        Some(h) => Some(h.finish(car_size).map_err(|e| BatchError::Piece(e.to_string()))?),
        None => None,
    };
    Ok((car_size, piece))
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
        files: roots.iter().map(|r| (r.to_string(), *r)).collect(),
        unique: agg.entries().len(),
        manifest: agg.manifest_bytes().to_vec(),
        piece,
    })
}

/// Copies one entry's spooled sections: the root under `root_as`, the rest as spooled, skipping
/// CIDs already written.
fn copy_entry(
    spool: &File,
    s: &Spooled,
    root_as: &Cid,
    visited: &mut HashSet<Cid>,
    w: &mut TeeWriter<'_>,
) -> Result<(), BatchError> {
    let range = RangeReader { file: spool, pos: s.offset, end: s.offset + s.len };
    let mut reader = BufReader::with_capacity(s.len.clamp(64, 1 << 20) as usize, range);
    let reader = &mut reader;
    let mut left = s.len;
    let mut first = true;
    let mut buf = Vec::new();
    while left > 0 {
        let (len, n) = read_varint(reader).map_err(BatchError::Spool)?;
        buf.resize(len as usize, 0);
        reader.read_exact(&mut buf).map_err(BatchError::Spool)?;
        left -= n as u64 + len;
        let mut cursor = io::Cursor::new(&buf[..]);
        let cid = Cid::read_bytes(&mut cursor).map_err(|e| BatchError::Spool(io::Error::other(e)))?;
        let data = &buf[cursor.position() as usize..];
        let cid = if first { *root_as } else { cid };
        first = false;
        if visited.insert(cid) {
            w.write_all(&car::section_prefix(&cid, data.len())).map_err(BatchError::Output)?;
            w.write_all(data).map_err(BatchError::Output)?;
        }
    }
    Ok(())
}

/// Reads `pos..end` of a file with positional reads (no seeking, no shared cursor).
struct RangeReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = buf.len().min((self.end - self.pos) as usize);
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn read_varint(r: &mut impl Read) -> io::Result<(u64, usize)> {
    let mut bytes = [0u8; 10];
    for i in 0..10 {
        r.read_exact(&mut bytes[i..=i])?;
        if bytes[i] & 0x80 == 0 {
            return varint::read(&bytes[..=i]).ok_or_else(|| io::Error::other("bad varint in spool"));
        }
    }
    Err(io::Error::other("bad varint in spool"))
}
