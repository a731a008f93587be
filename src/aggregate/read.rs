//! Reading the manifest back out of an aggregate CAR, streamed and in bounded memory.
//!
//! The manifest is a UnixFS file linked from the root as link 0, `@AggregateManifest.ndjson`.
//! Its blocks are found wherever they are in the CAR: a first scan over the section headers (not
//! the data) finds the root and the manifest blocks, rescanning only when a block came before the
//! block that links to it (a CAR written children first); in the usual parent-first order it
//! stops as soon as the manifest is found. The manifest file is then walked in order with
//! positional reads, each block checked against its CID, and its bytes are handed out as they
//! come. A manifest DAG that uses a block twice is refused (a few kilobytes of reused nodes
//! could otherwise expand to gigabytes), as are DAGs deeper, wider or larger than any manifest
//! go-dagaggregator-unixfs writes.

use super::manifest::{ManifestError, ManifestParser, ManifestRecord};
use super::MANIFEST_LINK_NAME;
use crate::block::{key, verify, DAG_PB, IDENTITY, RAW};
use crate::car::{read_header_at, read_section_at, CarError, ReadAt, MAX_SECTION};
use crate::nodeview::{fs_data, pb_node};
use cid::Cid;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// Largest manifest [`read_manifest_from_car`] returns in memory (4 GiB, some 16 million
/// entries); the streaming readers have no such limit.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 30;
/// Most blocks in a manifest DAG (a 4 GiB manifest has 16,384 leaves and 96 parents).
pub const MAX_MANIFEST_BLOCKS: usize = 1 << 16;
/// Most levels of parents above a manifest leaf (a 4 GiB manifest has 2).
pub const MAX_MANIFEST_DEPTH: usize = 8;
/// Most links of one manifest node (go-dagaggregator-unixfs writes at most 174).
pub const MAX_MANIFEST_LINKS: usize = 8192;

/// Errors reading the manifest from a CAR.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The CAR itself is malformed or unreadable.
    #[error(transparent)]
    Car(#[from] CarError),
    /// An aggregate CAR has exactly one root.
    #[error("aggregate CAR must have exactly one root, found {0}")]
    RootCount(usize),
    /// The CAR ended before the root block.
    #[error("root block {0} is not in the CAR")]
    RootNotFound(Cid),
    /// The root is not an aggregate directory.
    #[error("not an aggregate: {0}")]
    NotAggregate(String),
    /// A block's bytes do not hash to its CID.
    #[error("block {0} does not match its CID")]
    HashMismatch(Cid),
    /// A manifest block is not a UnixFS file block, or the manifest DAG is malformed.
    #[error("manifest block {cid}: {reason}")]
    BadManifestBlock {
        /// The block's CID.
        cid: Cid,
        /// What is wrong.
        reason: String,
    },
    /// The CAR ended before every manifest block was seen.
    #[error("the CAR ends with {missing} manifest block(s) missing")]
    ManifestIncomplete {
        /// Manifest blocks not found.
        missing: usize,
    },
    /// The manifest disagrees with its declared size or exceeds the caller's limit.
    #[error("manifest size is inconsistent or too large")]
    BadManifestSize,
    /// The manifest's text is not a valid manifest.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// What reading a manifest found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    /// The aggregate's root (the payload CID).
    pub root: Cid,
    /// The manifest file's root.
    pub manifest_root: Cid,
    /// Length of the manifest in bytes.
    pub bytes: u64,
    /// SHA-256 of the manifest's bytes (compare a sidecar `.car.manifest` without holding it).
    pub sha256: [u8; 32],
}

/// The manifest link of an aggregate root block (`data` under `root`), or why it is none.
pub(crate) fn manifest_link(root: &Cid, data: &[u8]) -> Result<Cid, String> {
    if root.codec() != DAG_PB {
        return Err("the root is not a dag-pb block".into());
    }
    let node = pb_node(data).map_err(|e| e.to_string())?;
    let link = node.links().next().ok_or("the root has no links")?;
    if link.name != MANIFEST_LINK_NAME.as_bytes() {
        return Err(format!("root link 0 is not named {MANIFEST_LINK_NAME}"));
    }
    Ok(link.cid)
}

/// Streams the manifest of the aggregate CAR `src`: `f` gets its bytes in order, in pieces of
/// at most one block. Memory stays bounded whatever the CAR holds (see the module docs).
pub fn for_each_manifest_chunk<S, E>(src: &S, mut f: impl FnMut(&[u8]) -> Result<(), E>) -> Result<ManifestInfo, E>
where
    S: ReadAt + ?Sized,
    E: From<ReadError>,
{
    let found = locate(src)?;
    let locate = |c: &Cid| found.blocks.get(&key(c)).copied();
    walk_manifest(src, found.root, found.manifest_root, &locate, u64::MAX, &mut f)
}

/// What [`for_each_manifest_entry`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestSummary {
    /// Where the manifest is and what its bytes are.
    pub info: ManifestInfo,
    /// Entries read (equal to the summary's `EntryCount`).
    pub entries: u64,
}

/// Streams the records of the manifest of the aggregate CAR `src`, checked as
/// [`super::parse_manifest`] checks them: the summary (its announced `EntryCount`), then every
/// entry in manifest order (by `DagCidV1`). Holds one line at a time.
pub fn for_each_manifest_record<S, E>(
    src: &S,
    mut f: impl FnMut(ManifestRecord) -> Result<(), E>,
) -> Result<ManifestSummary, E>
where
    S: ReadAt + ?Sized,
    E: From<ReadError>,
{
    let mut parser = ManifestParser::new();
    let info = for_each_manifest_chunk(src, |chunk| {
        parser.feed(chunk, &mut |r| f(r).map_err(Wrap::Caller)).map_err(|e: Wrap<E>| match e {
            Wrap::Caller(e) => e,
            Wrap::Manifest(e) => E::from(ReadError::Manifest(e)),
        })
    })?;
    let entries = parser.finish().map_err(|e| E::from(ReadError::Manifest(e)))?;
    Ok(ManifestSummary { info, entries })
}

/// Streams the entries of the manifest of the aggregate CAR `src` in manifest order (sorted by
/// `DagCidV1`), each checked as [`super::parse_manifest`] checks it, in bounded memory: the way
/// to merge a batch's manifest against another sorted list. The summary's `EntryCount` is
/// compared with the entries at the end (an error then, after every entry was handed out).
pub fn for_each_manifest_entry<S, E>(
    src: &S,
    mut f: impl FnMut(super::ManifestEntry) -> Result<(), E>,
) -> Result<ManifestSummary, E>
where
    S: ReadAt + ?Sized,
    E: From<ReadError>,
{
    for_each_manifest_record(src, |r| match r {
        ManifestRecord::Entry(e) => f(*e),
        ManifestRecord::Summary { .. } => Ok(()),
    })
}

enum Wrap<E> {
    Caller(E),
    Manifest(ManifestError),
}

impl<E> From<ManifestError> for Wrap<E> {
    fn from(e: ManifestError) -> Self {
        Wrap::Manifest(e)
    }
}

/// Reads an aggregate CAR's root and its whole manifest into memory (at most
/// [`MAX_MANIFEST_BYTES`]). Prefer [`for_each_manifest_chunk`] or [`for_each_manifest_entry`],
/// which hold one block or one line.
///
/// The root block's link 0 must be named `@AggregateManifest.ndjson`; the manifest may be one raw
/// block or a UnixFS file DAG of raw or dag-pb leaves, in any block order. Each block is
/// verified against its CID.
pub fn read_manifest_from_car<S: ReadAt + ?Sized>(src: &S) -> Result<(Cid, Vec<u8>), ReadError> {
    let found = locate(src)?;
    let locate = |c: &Cid| found.blocks.get(&key(c)).copied();
    let mut out = Vec::new();
    let info = walk_manifest(src, found.root, found.manifest_root, &locate, MAX_MANIFEST_BYTES, &mut |b: &[u8]| {
        out.extend_from_slice(b);
        Ok::<(), ReadError>(())
    })?;
    Ok((info.root, out))
}

/// The manifest's blocks found in a CAR.
struct Located {
    root: Cid,
    manifest_root: Cid,
    /// Section offsets of the manifest DAG's blocks (by [`key`]).
    blocks: HashMap<[u8; 16], u64>,
}

/// Finds the root and the manifest's blocks (see the module docs).
fn locate<S: ReadAt + ?Sized>(src: &S) -> Result<Located, ReadError> {
    let header = read_header_at(src)?;
    if header.version != 1 {
        return Err(CarError::Version(header.version).into());
    }
    let [root] = header.roots[..] else {
        return Err(ReadError::RootCount(header.roots.len()));
    };
    let size = src.size().map_err(CarError::Io)?;
    let mut manifest_root = None;
    let mut wanted: HashMap<[u8; 16], Cid> = HashMap::from([(key(&root), root)]);
    let mut blocks: HashMap<[u8; 16], u64> = HashMap::new();
    loop {
        let mut progress = false;
        let mut scan = Scan::new(src, header.len, size);
        while let Some((at, cid)) = scan.next()? {
            let k = key(&cid);
            let Some(want) = wanted.remove(&k) else { continue };
            progress = true;
            blocks.insert(k, at);
            if manifest_root.is_some() && want.codec() == RAW {
                if wanted.is_empty() {
                    break;
                }
                continue;
            }
            let section =
                read_section_at(src, at)?.ok_or(CarError::BadSection { offset: at, reason: "vanished".into() })?;
            if !verify(&want, &section.data) {
                return Err(ReadError::HashMismatch(want));
            }
            let children: Vec<Cid> = if manifest_root.is_none() {
                let m = manifest_link(&root, &section.data).map_err(ReadError::NotAggregate)?;
                manifest_root = Some(m);
                vec![m]
            } else {
                let bad = |reason: String| ReadError::BadManifestBlock { cid: want, reason };
                let node = pb_node(&section.data).map_err(|e| bad(e.to_string()))?;
                if node.link_count > MAX_MANIFEST_LINKS {
                    return Err(bad(format!("more than {MAX_MANIFEST_LINKS} links")));
                }
                node.links().map(|l| l.cid).collect()
            };
            for c in children {
                let k = key(&c);
                if c.hash().code() != IDENTITY && !blocks.contains_key(&k) {
                    wanted.insert(k, c);
                }
            }
            if blocks.len() + wanted.len() > MAX_MANIFEST_BLOCKS {
                return Err(ReadError::BadManifestBlock {
                    cid: manifest_root.unwrap_or(root),
                    reason: format!("the manifest DAG has more than {MAX_MANIFEST_BLOCKS} blocks"),
                });
            }
            if wanted.is_empty() {
                break;
            }
        }
        match manifest_root {
            Some(m) if wanted.is_empty() => return Ok(Located { root, manifest_root: m, blocks }),
            None if !progress => return Err(ReadError::RootNotFound(root)),
            _ if !progress => return Err(ReadError::ManifestIncomplete { missing: wanted.len() }),
            _ => {}
        }
    }
}

/// The sections of a CAR, read by position: offset and CID of each, the data skipped (a window
/// of 16 KiB holds the sections' heads, so small blocks cost no read of their own).
struct Scan<'a, S: ?Sized> {
    src: &'a S,
    at: u64,
    size: u64,
    window: Vec<u8>,
    window_at: u64,
}

impl<'a, S: ReadAt + ?Sized> Scan<'a, S> {
    const WINDOW: usize = 16 << 10;
    /// Bytes of a section's head always held in the window: its length and CID.
    const HEAD: usize = 128;

    fn new(src: &'a S, at: u64, size: u64) -> Self {
        Scan { src, at, size, window: Vec::new(), window_at: 0 }
    }

    fn next(&mut self) -> Result<Option<(u64, Cid)>, CarError> {
        let at = self.at;
        if at >= self.size {
            return Ok(None);
        }
        let bad = |reason: &str| CarError::BadSection { offset: at, reason: reason.to_string() };
        let end = (at + Self::HEAD as u64).min(self.size);
        if at < self.window_at || end > self.window_at + self.window.len() as u64 {
            let n = (self.size - at).min(Self::WINDOW as u64) as usize;
            self.window.resize(n, 0);
            self.src.read_exact_at(&mut self.window, at).map_err(CarError::Io)?;
            self.window_at = at;
        }
        let head = &self.window[(at - self.window_at) as usize..(end - self.window_at) as usize];
        let (len, n) = crate::varint::read(head).ok_or_else(|| bad("bad length"))?;
        if len > MAX_SECTION {
            return Err(bad("section larger than 64 MiB"));
        }
        let next = at + n as u64 + len;
        if next > self.size {
            return Err(bad("truncated section"));
        }
        let body = &head[n..head.len().min(n + len as usize)];
        let cid = Cid::read_bytes(&mut &body[..]).map_err(|e| bad(&format!("bad CID: {e}")))?;
        self.at = next;
        Ok(Some((at, cid)))
    }
}

/// Walks the manifest file DAG from `manifest_root` in order, handing its bytes to `f`; `locate`
/// gives each block's section offset in `src`. Every block is read once, checked against its CID
/// and its parent's block size; a block used twice, a DAG deeper than [`MAX_MANIFEST_DEPTH`] or
/// wider than [`MAX_MANIFEST_LINKS`], and a manifest over `limit` bytes are errors.
pub(crate) fn walk_manifest<S, E>(
    src: &S,
    root: Cid,
    manifest_root: Cid,
    locate: &dyn Fn(&Cid) -> Option<u64>,
    limit: u64,
    f: &mut dyn FnMut(&[u8]) -> Result<(), E>,
) -> Result<ManifestInfo, E>
where
    S: ReadAt + ?Sized,
    E: From<ReadError>,
{
    /// A node being walked: its children (CID, block size) and the next one to visit.
    struct Frame {
        children: Vec<(Cid, u64)>,
        next: usize,
    }
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let mut used = HashSet::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut visit = Some((manifest_root, None::<u64>));
    while let Some((cid, expected)) = visit.take() {
        let bad = |reason: String| ReadError::BadManifestBlock { cid, reason };
        if !used.insert(key(&cid)) {
            return Err(bad("used twice in the manifest DAG".into()).into());
        }
        let data = block_bytes(src, &cid, locate)?;
        let (inline, children, size) = match cid.codec() {
            RAW => (&data[..], Vec::new(), data.len() as u64),
            DAG_PB => {
                let node = pb_node(&data).map_err(|e| bad(e.to_string()))?;
                let fs = node.data.ok_or_else(|| bad("no UnixFS data".into()))?;
                let fs = fs_data(fs).map_err(|e| bad(e.to_string()))?;
                if !fs.kind.is_file() {
                    return Err(bad("not a UnixFS file node".into()).into());
                }
                if node.link_count > MAX_MANIFEST_LINKS {
                    return Err(bad(format!("more than {MAX_MANIFEST_LINKS} links")).into());
                }
                if node.link_count != fs.blocksize_count {
                    return Err(bad(format!("{} links but {} block sizes", node.link_count, fs.blocksize_count)).into());
                }
                if node.link_count > 0 && stack.len() >= MAX_MANIFEST_DEPTH {
                    return Err(bad(format!("the manifest DAG is deeper than {MAX_MANIFEST_DEPTH} levels")).into());
                }
                let inline = fs.data.unwrap_or_default();
                let sum = fs.blocksizes().try_fold(inline.len() as u64, u64::checked_add);
                if sum.is_none() || fs.filesize.is_some_and(|s| Some(s) != sum) {
                    return Err(ReadError::BadManifestSize.into());
                }
                let children: Vec<(Cid, u64)> = node.links().map(|l| l.cid).zip(fs.blocksizes()).collect();
                (inline, children, sum.unwrap_or(0))
            }
            other => return Err(bad(format!("codec 0x{other:x} is neither raw nor dag-pb")).into()),
        };
        if expected.is_some_and(|e| e != size) {
            return Err(bad(format!("holds {size} bytes, its parent says {}", expected.unwrap_or(0))).into());
        }
        if cid == manifest_root && size > limit {
            return Err(ReadError::BadManifestSize.into());
        }
        if !inline.is_empty() {
            hasher.update(inline);
            total += inline.len() as u64;
            f(inline)?;
        }
        if !children.is_empty() {
            stack.push(Frame { children, next: 0 });
        }
        while let Some(top) = stack.last_mut() {
            if let Some(&(c, size)) = top.children.get(top.next) {
                top.next += 1;
                visit = Some((c, Some(size)));
                break;
            }
            stack.pop();
        }
    }
    Ok(ManifestInfo { root, manifest_root, bytes: total, sha256: hasher.finalize().into() })
}

/// A manifest block's bytes: inline for an identity CID, else read at its section and checked.
fn block_bytes<S: ReadAt + ?Sized>(
    src: &S,
    cid: &Cid,
    locate: &dyn Fn(&Cid) -> Option<u64>,
) -> Result<Vec<u8>, ReadError> {
    if cid.hash().code() == IDENTITY {
        return Ok(cid.hash().digest().to_vec());
    }
    let at = locate(cid).ok_or(ReadError::ManifestIncomplete { missing: 1 })?;
    let section = read_section_at(src, at)?.ok_or(CarError::BadSection { offset: at, reason: "vanished".into() })?;
    if key(&section.cid) != key(cid) || !verify(cid, &section.data) {
        return Err(ReadError::HashMismatch(*cid));
    }
    Ok(section.data)
}

#[cfg(test)]
mod hostile {
    use super::*;
    use crate::block::{Block, CidVersion};
    use crate::dagpb::{encode, Link};

    /// A hash-valid aggregate whose manifest DAG repeats links 4096 times at three levels
    /// (4096³ paths): reading it ends at once with an error, in bounded time and memory.
    #[test]
    fn a_manifest_dag_repeating_links_is_refused_quickly() {
        for leaf in [Vec::new(), b"x".to_vec()] {
            let e = Block::new(CidVersion::V1, RAW, leaf.clone());
            let mut level = e.cid;
            let mut blocks = vec![e];
            for _ in 0..3 {
                let links: Vec<Link> = (0..4096).map(|_| Link { cid: level, name: Vec::new(), tsize: 1 }).collect();
                let data = crate::unixfs::file_node_data(leaf.len() as u64 * 4096, &vec![leaf.len() as u64; 4096]);
                let b = Block::new(CidVersion::V1, DAG_PB, encode(&links, Some(&data)));
                level = b.cid;
                blocks.push(b);
            }
            let root_links = vec![Link { cid: level, name: MANIFEST_LINK_NAME.as_bytes().to_vec(), tsize: 1 }];
            let root = Block::new(CidVersion::V1, DAG_PB, encode(&root_links, Some(&crate::unixfs::directory())));
            let mut car = crate::car::header(&root.cid);
            for b in std::iter::once(&root).chain(blocks.iter().rev()) {
                car.extend(crate::car::section_prefix(&b.cid, b.data.len()));
                car.extend(&b.data);
            }
            let start = std::time::Instant::now();
            let err = read_manifest_from_car(&car[..]).unwrap_err();
            assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
            assert!(matches!(err, ReadError::BadManifestBlock { .. } | ReadError::BadManifestSize), "{err}");
            let mut chunks = 0;
            let streamed = for_each_manifest_chunk(&car[..], |_| {
                chunks += 1;
                Ok::<(), ReadError>(())
            });
            assert!(streamed.is_err() && chunks <= 1, "{chunks} chunks");
        }
    }
}
