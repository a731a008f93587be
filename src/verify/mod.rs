//! Verifying a CAR independently of how it was made: what a storage provider runs on a received
//! drive and a client runs before shipping.
//!
//! One read of the CAR, in chunks, each going to a piece-commitment thread and to a parser that
//! cuts it into sections ([`frames`]), hashes their blocks two at a time (SHA-NI lanes,
//! [`crate::multibuffer`]) and checks each block and the links between blocks ([`blocks`]): every
//! block matches its CID, every dag-pb block is well formed UnixFS as the reference exporters read
//! it, every link resolves (identity CIDs carry their block inline), every block is reached from
//! a root, file sizes agree with the children's real sizes, every entry of a HAMT-sharded folder
//! is where its name's hash puts it. A repeated section is allowed (CARv1
//! allows it; ipfs-car writes them) and counted as a warning. When a root is a
//! go-dagaggregator-unixfs aggregate, its manifest is then checked entry by entry against the
//! buckets ([`aggregate`]), reading only the blocks involved again. Each problem is one line
//! naming the block.
//!
//! Memory: one 32-byte record per distinct block or linked CID (in hash tables: 38–75 bytes
//! each), 24 bytes per aggregate entry and 16 per inner bucket, four chunks of 8 MiB in flight, a
//! section being assembled (at most 64 MiB); nothing grows with what a DAG expands to (measured
//! in `benches/verify.py`: 1,000,000 blocks in 115 MiB, an aggregate of 1,000,000 entries in
//! 139 MiB). A file is mapped (no copy out of the page cache) and its pages released behind the
//! reader; blocks read again go through positional reads. Time: proportional to the CAR.

mod aggregate;
mod blocks;
mod frames;

use crate::block::SHA2_256;
use crate::car::{read_header_at, CarError, ReadAt};
use crate::commp::{PieceHasher, PieceInfo};
use blocks::Checker;
use cid::Cid;
use frames::Framer;
use std::sync::mpsc::{channel, sync_channel};
use std::sync::Arc;

/// Problems (and warnings) listed at most (the counts are always exact).
pub const MAX_LISTED: usize = 100;

/// What verifying a CAR found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The header's roots.
    pub roots: Vec<Cid>,
    /// Sections read.
    pub blocks: u64,
    /// CAR bytes.
    pub car_size: u64,
    /// The CAR's piece commitment (natural size; pad it for a larger deal piece).
    pub piece: PieceInfo,
    /// One line per problem (at most [`MAX_LISTED`]).
    pub problems: Vec<String>,
    /// Problems found in all.
    pub problem_count: u64,
    /// One line per warning: something allowed but worth knowing (at most [`MAX_LISTED`]).
    pub warnings: Vec<String>,
    /// Warnings in all.
    pub warning_count: u64,
    /// Sections repeating an earlier section's block (allowed; each is a warning).
    pub duplicates: u64,
    /// UnixFS HAMT shard nodes (each checked, and the places of their entries).
    pub hamt_shards: u64,
    /// The manifest, when a root is a go-dagaggregator-unixfs aggregate (root link 0
    /// `@AggregateManifest.ndjson`).
    pub manifest: Option<ManifestReport>,
}

/// An aggregate's manifest, as read from the CAR and checked against its buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestReport {
    /// The manifest file's root.
    pub manifest_root: Cid,
    /// Length and SHA-256 of the manifest's bytes, when they could be read in full (compare a
    /// sidecar `<id>.car.manifest` with them).
    pub content: Option<(u64, [u8; 32])>,
    /// Entries of the manifest, when it parsed as a valid manifest.
    pub entries: Option<u64>,
    /// Entries carrying a `NodeCount` (not recorded in the buckets, so not checked).
    pub node_counts: u64,
}

impl Report {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problem_count == 0
    }
}

/// Problems and warnings, counted exactly, listed up to [`MAX_LISTED`] each.
#[derive(Debug, Default)]
struct Findings {
    problems: Vec<String>,
    problem_count: u64,
    warnings: Vec<String>,
    warning_count: u64,
}

impl Findings {
    /// A problem; its line is made only if it is listed.
    fn problem(&mut self, line: impl FnOnce() -> String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(line());
        }
    }

    /// Problems counted but not listed.
    fn more_problems(&mut self, n: u64) {
        self.problem_count += n;
    }

    /// A warning; its line is made only if it is listed.
    fn warning(&mut self, line: impl FnOnce() -> String) {
        self.warning_count += 1;
        if self.warnings.len() < MAX_LISTED {
            self.warnings.push(line());
        }
    }
}

/// Errors that stop verification (the CAR cannot be read as a CAR at all).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The header or a section cannot be parsed.
    #[error(transparent)]
    Car(#[from] CarError),
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The piece commitment failed.
    #[error("{0}")]
    Piece(String),
}

/// Bytes read at a time: 8 commP units (8,323,072 bytes), so every unit is hashed in place.
const CHUNK: usize = 8 * 127 * 8192;
/// Chunks in flight at most (queued for or being used by the two consumers): 33 MB.
const IN_FLIGHT: usize = 4;
/// Blocks hashed per call of the lane hasher.
const GROUP: usize = 256;

/// Verifies the CAR file `file` at `path`, mapped into memory when it can be (no copy out of the
/// page cache; pages released as they are passed), else read.
pub fn verify_file(file: &std::fs::File, path: &std::path::Path) -> Result<Report, VerifyError> {
    match crate::car::MappedCar::new(file, path) {
        Some(map) => verify_car(&map),
        None => verify_car(file),
    }
}

/// A chunk of the CAR: borrowed from memory, or read into a buffer.
enum Chunk<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Chunk<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Chunk::Borrowed(b) => b,
            Chunk::Owned(v) => v,
        }
    }
}

/// A chunk and its offset, shared by the two consumers; the last one done sends it back.
type Shared<'a> = Arc<(u64, Chunk<'a>)>;

/// Hands `chunk` back to the reader if this was its last user.
fn give_back<'a>(chunk: Shared<'a>, back: &std::sync::mpsc::Sender<(u64, Chunk<'a>)>) {
    if let Some(done) = Arc::into_inner(chunk) {
        let _ = back.send(done);
    }
}

/// Verifies the CAR in `src` (a file, bytes in memory, a [`crate::car::MappedCar`]): see the
/// module docs.
pub fn verify_car<S: ReadAt + ?Sized>(src: &S) -> Result<Report, VerifyError> {
    let header = read_header_at(src)?;
    if header.version != 1 {
        return Err(CarError::Version(header.version).into());
    }
    let (tx_piece, rx_piece) = sync_channel::<Shared<'_>>(2);
    let (tx_parse, rx_parse) = sync_channel::<Shared<'_>>(2);
    let (tx_back, rx_back) = channel::<(u64, Chunk<'_>)>();
    std::thread::scope(|s| {
        let back = tx_back.clone();
        let piece = s.spawn(move || {
            let mut h = PieceHasher::new();
            let mut offset = 0u64;
            for chunk in rx_piece {
                h.write_at(offset, &chunk.1)?;
                offset += chunk.1.len() as u64;
                give_back(chunk, &back);
            }
            h.finish(offset)
        });
        let back = tx_back;
        let roots = header.roots.clone();
        let parse = s.spawn(move || {
            let mut checker = Checker::new(src, &roots);
            let mut framer = Framer::new(header.len);
            for chunk in rx_parse {
                sections(&mut checker, &mut framer, &chunk.1)?;
                give_back(chunk, &back);
            }
            framer.finish()?;
            checker.finish(&roots);
            Ok::<_, CarError>(checker)
        });
        let (mut total, mut in_flight, mut spare) = (0u64, 0, Vec::new());
        let reclaim = |(at, chunk): (u64, Chunk<'_>), spare: &mut Vec<Vec<u8>>| match chunk {
            Chunk::Owned(buf) => spare.push(buf),
            Chunk::Borrowed(b) => src.release(at, b.len()),
        };
        let read: std::io::Result<()> = loop {
            while let Ok(done) = rx_back.try_recv() {
                in_flight -= 1;
                reclaim(done, &mut spare);
            }
            if in_flight == IN_FLIGHT {
                // Both consumers gone: one stopped on an error, reported below.
                let Ok(done) = rx_back.recv() else { break Ok(()) };
                in_flight -= 1;
                reclaim(done, &mut spare);
            }
            let chunk = match src.as_slice() {
                Some(all) => {
                    let start = total.min(all.len() as u64) as usize;
                    Chunk::Borrowed(&all[start..all.len().min(start + CHUNK)])
                }
                None => {
                    let mut buf = spare.pop().unwrap_or_default();
                    buf.resize(CHUNK, 0);
                    match read_full_at(src, &mut buf, total) {
                        Ok(n) => buf.truncate(n),
                        Err(e) => break Err(e),
                    }
                    Chunk::Owned(buf)
                }
            };
            let n = chunk.len();
            if n == 0 {
                break Ok(());
            }
            let shared = Arc::new((total, chunk));
            total += n as u64;
            in_flight += 1;
            // A consumer that stopped (an unreadable CAR) makes its send fail: stop reading.
            if tx_piece.send(shared.clone()).is_err() || tx_parse.send(shared).is_err() || n < CHUNK {
                break Ok(());
            }
        };
        drop((tx_piece, tx_parse, rx_back));
        let parsed = parse.join().expect("parser thread");
        let piece = piece.join().expect("commP thread");
        read?;
        let piece = piece.map_err(|e| VerifyError::Piece(e.to_string()))?;
        let mut checker = parsed?;
        let manifest = aggregate::check(src, &mut checker.table, &header.roots, &mut checker.findings);
        let f = checker.findings;
        Ok(Report {
            roots: header.roots.clone(),
            blocks: checker.blocks,
            car_size: total,
            piece,
            problems: f.problems,
            problem_count: f.problem_count,
            warnings: f.warnings,
            warning_count: f.warning_count,
            duplicates: checker.duplicates,
            hamt_shards: checker.hamt_shards,
            manifest,
        })
    })
}

/// Fills `buf` from `offset`; fewer bytes only at the end of `src`.
fn read_full_at<S: ReadAt + ?Sized>(src: &S, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Checks the sections `chunk` completes, hashing their blocks in lanes.
fn sections<S: ReadAt + ?Sized>(
    checker: &mut Checker<'_, S>,
    framer: &mut Framer,
    chunk: &[u8],
) -> Result<(), CarError> {
    let cut = framer.feed(chunk)?;
    let carried = cut.carried;
    let pieces = carried
        .as_ref()
        .map(|(at, bytes, n)| (*at, &bytes[*n..]))
        .into_iter()
        .chain(cut.inside.iter().map(|(at, range)| (*at, &chunk[range.clone()])));
    let mut group: Vec<(u64, Cid, &[u8])> = Vec::with_capacity(GROUP);
    for (at, payload) in pieces {
        let mut data = payload;
        let cid = Cid::read_bytes(&mut data)
            .map_err(|e| CarError::BadSection { offset: at, reason: format!("bad CID: {e}") })?;
        group.push((at, cid, data));
        if group.len() == GROUP {
            check_group(checker, &mut group);
        }
    }
    check_group(checker, &mut group);
    Ok(())
}

fn is_sha256(cid: &Cid) -> bool {
    cid.hash().code() == SHA2_256 && cid.hash().size() == 32
}

/// Hashes a group of blocks in lanes and checks each, in order.
fn check_group<S: ReadAt + ?Sized>(checker: &mut Checker<'_, S>, group: &mut Vec<(u64, Cid, &[u8])>) {
    use rayon::prelude::*;
    let messages: Vec<[&[u8]; 1]> = group.iter().filter(|b| is_sha256(&b.1)).map(|b| [b.2]).collect();
    // In the pool commP hashes in: one set of threads shares the cores between both.
    let digests: Vec<[u8; 32]> =
        messages.par_chunks(crate::multibuffer::LANES).flat_map_iter(crate::multibuffer::digest_all).collect();
    let mut digests = digests.iter();
    for (at, cid, data) in group.drain(..) {
        let digest = if is_sha256(&cid) { digests.next() } else { None };
        checker.section(at, &cid, data, digest);
    }
}

#[cfg(test)]
mod tests;
