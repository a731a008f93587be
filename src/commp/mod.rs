//! Filecoin piece commitment (commP) and piece CIDs v1 and v2 (FRC-0069).
//!
//! commP is the root of a binary Merkle tree whose leaves are the 32-byte nodes of the
//! Fr32-expanded payload (zero-padded to `127·2^k` bytes) and whose node function is
//! `trunc254(SHA-256(left ‖ right))` (SHA-256, then the top two bits of the last byte cleared).
//!
//! [`PieceHasher`] computes it in a streaming fashion from writes at arbitrary offsets: the
//! CAR writer places file data at its final offsets and fills in DAG nodes and the header later.
//! The stream is cut into fixed units of `127·8192` payload bytes (1 MiB padded). A unit covered
//! by one write is hashed straight from the caller's slice; other units gather bytes in a buffer
//! until covered. Each unit's root (level 15) goes into a sparse accumulator keyed by
//! (level, index) that merges sibling pairs upward, so it holds `O(pending units × height)`
//! roots. Units completed by one write, or buffered units once there is one per thread, are
//! hashed in parallel with rayon. At [`PieceHasher::finish`] the last partial unit is zero-padded
//! and the right edge of the tree is closed with the zero-subtree roots `Z[level]`.
//!
//! Holes: at most two partly written units are kept as whole buffers (the write frontier). Older
//! ones are compacted: their fully written 8 KiB-padded chunks are hashed and only the bytes of
//! partly written chunks are kept, so a small hole costs about 4–20 KiB until it is filled.
//!
//! Inside a unit, Fr32 expansion is fused with hashing per 64-quad chunk: the chunk is expanded
//! into an 8 KiB buffer that stays in L1 and its layers are hashed in place.
//!
//! # Tiny payloads
//!
//! go-fil-commp-hashhash refuses payloads shorter than 65 bytes. This module follows FRC-0069
//! and the data-segment library instead: every payload from 0 to 127 bytes, including the empty
//! one, gets a height-2 (128-byte padded) piece, with v2 padding `127 − n`.
//!
//! # Limits
//!
//! Payloads up to [`MAX_PAYLOAD`] (the capacity of a 64 GiB sector) are accepted; writes past it
//! fail with [`CommpError::TooLarge`].

pub mod commd;
mod kernel;
mod tree;

#[cfg(test)]
mod tests;

pub use kernel::Kernel;

use cid::Cid;
use multihash::Multihash;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::io;

/// Largest payload accepted: `127·2^29` bytes, the capacity of a 64 GiB sector.
pub const MAX_PAYLOAD: u64 = 68_182_605_824;

/// Multicodec code of fil-commitment-unsealed (piece CID v1 codec).
pub const FIL_COMMITMENT_UNSEALED: u64 = 0xf101;
/// Multihash code of sha2-256-trunc254-padded (piece CID v1).
pub const SHA2_256_TRUNC254_PADDED: u64 = 0x1012;
/// Multihash code of fr32-sha256-trunc254-padbintree (piece CID v2, FRC-0069).
pub const FR32_SHA256_TRUNC254_PADBINTREE: u64 = 0x1011;
/// Multicodec code of raw (piece CID v2 codec).
pub const RAW: u64 = 0x55;

/// Quads per unit: a unit is `127 · UNIT_QUADS` payload bytes, `128 · UNIT_QUADS` padded.
const UNIT_QUADS: usize = 8192;

/// Commitment and sizes of a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PieceInfo {
    /// commP: the root of the piece tree.
    pub root: [u8; 32],
    /// Payload bytes hashed (before zero padding and Fr32).
    pub payload_size: u64,
    /// Padded piece size `P = 128·2^k` (after Fr32).
    pub padded_size: u64,
    /// Unpadded piece size `U = P·127/128` (payload plus zero padding).
    pub unpadded_size: u64,
}

impl PieceInfo {
    /// Tree height: `log2(padded_size / 32)`.
    pub fn height(&self) -> u8 {
        (self.padded_size.trailing_zeros() - 5) as u8
    }

    /// Zero bytes appended to the payload before Fr32 (FRC-0069): `unpadded − payload`.
    pub fn padding(&self) -> u64 {
        self.unpadded_size - self.payload_size
    }

    /// The same payload in a larger piece of `padded` bytes (a power of two ≥ this piece's):
    /// the payload zero-filled to `padded·127/128` bytes, as `PadCommP` and SPs padding a CAR to
    /// the deal's piece size compute it. A smaller `padded` returns the piece unchanged.
    pub fn pad_to(&self, padded: u64) -> PieceInfo {
        let mut p = *self;
        if padded <= p.padded_size || !padded.is_power_of_two() {
            return p;
        }
        let kernel = Kernel::detect();
        while p.padded_size < padded {
            p.root = kernel.node(&p.root, tree::zero_root(p.height() as u32));
            p.padded_size *= 2;
        }
        p.unpadded_size = unpadded_piece_size(p.padded_size);
        p
    }

    /// Piece CID v1: `fil-commitment-unsealed` / `sha2-256-trunc254-padded` (`baga6ea4seaq…`).
    pub fn cid_v1(&self) -> Cid {
        let mh = Multihash::<64>::wrap(SHA2_256_TRUNC254_PADDED, &self.root).expect("32-byte digest fits");
        Cid::new_v1(FIL_COMMITMENT_UNSEALED, mh)
    }

    /// Piece CID v2 (FRC-0069): raw / `fr32-sha256-trunc254-padbintree` with digest
    /// `uvarint(padding) ‖ height ‖ root` (`bafkzcib…`).
    pub fn cid_v2(&self) -> Cid {
        let mut digest = Vec::with_capacity(44);
        crate::varint::write(&mut digest, self.padding());
        digest.push(self.height());
        digest.extend_from_slice(&self.root);
        let mh =
            Multihash::<64>::wrap(FR32_SHA256_TRUNC254_PADBINTREE, &digest).expect("digest of at most 43 bytes fits");
        Cid::new_v1(RAW, mh)
    }
}

/// Padded piece size for a payload of `payload` bytes: the next power of two ≥ 128 of
/// `ceil(payload/127)·128` (128 for an empty payload).
///
/// # Panics
/// If the result does not fit in a `u64` (payloads above `127·2^56` bytes, far beyond
/// [`MAX_PAYLOAD`]).
pub fn padded_piece_size(payload: u64) -> u64 {
    payload
        .div_ceil(127)
        .max(1)
        .checked_next_power_of_two()
        .and_then(|quads| quads.checked_mul(128))
        .expect("padded piece size overflows u64")
}

/// Unpadded piece size for a padded size: `padded·127/128`.
pub fn unpadded_piece_size(padded: u64) -> u64 {
    padded - padded / 128
}

/// Errors of piece commitment.
#[derive(Debug, thiserror::Error)]
pub enum CommpError {
    /// The payload exceeds [`MAX_PAYLOAD`].
    #[error("payload of {size} bytes exceeds the commP maximum of {max} bytes (a 64 GiB sector)")]
    TooLarge {
        /// Payload size (or end offset of the offending write).
        size: u64,
        /// [`MAX_PAYLOAD`].
        max: u64,
    },
    /// Some bytes of `[0, total_len)` were never written.
    #[error(
        "piece data incomplete: {missing} of {total_len} bytes never written, the first missing byte is at offset {first_missing}"
    )]
    Incomplete {
        /// Declared payload length.
        total_len: u64,
        /// Number of bytes not written.
        missing: u64,
        /// Offset of the first byte not written.
        first_missing: u64,
    },
    /// A write covered bytes that had already been written.
    #[error("write of {len} bytes at offset {offset} overlaps bytes already written")]
    Overlap {
        /// Offset of the rejected write.
        offset: u64,
        /// Length of the rejected write.
        len: u64,
    },
    /// Bytes were written at or past the declared end of the payload.
    #[error("bytes written up to offset {end}, past the declared payload length {total_len}")]
    PastEnd {
        /// End of the furthest write.
        end: u64,
        /// Declared payload length.
        total_len: u64,
    },
    /// Reading the input failed.
    #[error("reading piece data: {0}")]
    Io(#[from] io::Error),
}

/// Fails with [`CommpError::TooLarge`] if a payload of `n` bytes exceeds [`MAX_PAYLOAD`].
pub fn check_payload_size(n: u64) -> Result<(), CommpError> {
    if n > MAX_PAYLOAD {
        Err(CommpError::TooLarge { size: n, max: MAX_PAYLOAD })
    } else {
        Ok(())
    }
}

/// Streaming commP hasher that accepts bytes at arbitrary offsets, each byte exactly once.
///
/// Memory: up to two 1 MiB unit buffers at the write frontier, up to one complete unit per
/// thread (at most 8) waiting to be hashed in parallel, a few KiB per older hole (see the module
/// docs) and a few hashes per tree level. Write large buffers (MiB-sized) for the best speed.
pub struct PieceHasher {
    kernel: Kernel,
    unit_quads: usize,
    /// Written ranges, merged: start → end.
    covered: BTreeMap<u64, u64>,
    written: u64,
    /// Partly written units: unit index → their bytes, or their compacted form.
    pending: HashMap<u64, Pending>,
    /// Units of `pending` held as whole buffers, oldest first.
    buffered: Vec<u64>,
    /// Quads per compaction chunk (a power of two, at most `unit_quads`).
    chunk_quads: usize,
    /// Whole-unit buffers allowed in `pending` before the older ones are compacted.
    max_buffered: usize,
    /// Subtree roots not yet merged with their sibling: (level, index) → root.
    roots: HashMap<(u32, u64), [u8; 32]>,
    /// Buffered units that are complete but not hashed yet: they are hashed together, in
    /// parallel, once there are [`PieceHasher::batch`] of them.
    ready: Vec<(u64, Vec<u8>)>,
    spare: Vec<Vec<u8>>,
}

impl std::fmt::Debug for PieceHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PieceHasher")
            .field("kernel", &self.kernel)
            .field("bytes_written", &self.written)
            .field("contiguous_len", &self.contiguous_len())
            .field("written_ranges", &self.covered.len())
            .field("pending_units", &self.pending.len())
            .field("ready_units", &self.ready.len())
            .field("subtree_roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

impl Default for PieceHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// Whole-unit buffers kept before older partly written units are compacted.
const MAX_BUFFERED: usize = 2;

/// A partly written unit.
enum Pending {
    /// Bytes from the unit start up to the furthest byte written (zero where not written).
    Buffer(Vec<u8>),
    /// Compacted: roots of the fully written chunks, bytes of the partly written ones.
    Compact(Compact),
}

/// A partly written unit cut into chunks of `127 · chunk_quads` bytes: memory is a root per
/// chunk plus the bytes of the chunks that are still partly written (typically one or two).
struct Compact {
    roots: Vec<Option<[u8; 32]>>,
    /// Chunk index → bytes from the chunk start up to the furthest byte written.
    partial: HashMap<usize, Vec<u8>>,
}

/// Whether `[start, end)` is written, according to the merged ranges `covered`.
fn is_covered(covered: &BTreeMap<u64, u64>, start: u64, end: u64) -> bool {
    matches!(covered.range(..=start).next_back(), Some((_, &e)) if e >= end)
}

/// Copies `part` to `buf` at `at`, growing `buf` with zeros as needed.
fn put(buf: &mut Vec<u8>, at: usize, part: &[u8]) {
    if at == buf.len() {
        buf.extend_from_slice(part);
    } else {
        if buf.len() < at + part.len() {
            buf.resize(at + part.len(), 0);
        }
        buf[at..at + part.len()].copy_from_slice(part);
    }
}

/// A unit ready to hash: borrowed from the caller or taken from the pending buffers.
enum Job<'a> {
    Borrowed(u64, &'a [u8]),
    Owned(u64, Vec<u8>),
}

impl PieceHasher {
    /// A hasher using the fastest kernel of this CPU.
    pub fn new() -> Self {
        Self::with_kernel(Kernel::detect())
    }

    /// A hasher using `kernel`, or the portable kernel if this CPU cannot run `kernel`.
    pub fn with_kernel(kernel: Kernel) -> Self {
        Self::with_unit_quads(kernel, UNIT_QUADS)
    }

    fn with_unit_quads(kernel: Kernel, unit_quads: usize) -> Self {
        assert!(unit_quads.is_power_of_two());
        PieceHasher {
            kernel: kernel.or_portable(),
            unit_quads,
            covered: BTreeMap::new(),
            written: 0,
            pending: HashMap::new(),
            buffered: Vec::new(),
            chunk_quads: tree::CHUNK_QUADS.min(unit_quads),
            max_buffered: MAX_BUFFERED,
            roots: HashMap::new(),
            ready: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// The kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Total bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// End of the contiguous prefix `[0, end)` written so far; [`io::Write`] appends here.
    pub fn contiguous_len(&self) -> u64 {
        match self.covered.first_key_value() {
            Some((&0, &end)) => end,
            _ => 0,
        }
    }

    fn unit_bytes(&self) -> u64 {
        127 * self.unit_quads as u64
    }

    fn unit_level(&self) -> u32 {
        self.unit_quads.trailing_zeros() + 2
    }

    /// Records `[start, end)` as written; fails without changing anything if it overlaps.
    fn cover(&mut self, start: u64, end: u64) -> Result<(), CommpError> {
        let overlap = CommpError::Overlap { offset: start, len: end - start };
        let before = self.covered.range(..=start).next_back().map(|(&s, &e)| (s, e));
        if let Some((_, e)) = before {
            if e > start {
                return Err(overlap);
            }
        }
        let after = self.covered.range(start..).next().map(|(&s, &e)| (s, e));
        if let Some((s, _)) = after {
            if s < end {
                return Err(overlap);
            }
        }
        let (mut new_start, mut new_end) = (start, end);
        if let Some((s, e)) = before {
            if e == start {
                self.covered.remove(&s);
                new_start = s;
            }
        }
        if let Some((s, e)) = after {
            if s == end {
                self.covered.remove(&s);
                new_end = e;
            }
        }
        self.covered.insert(new_start, new_end);
        Ok(())
    }

    /// Writes `data` at payload offset `offset`. Each byte may be written only once.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), CommpError> {
        if data.is_empty() {
            return Ok(());
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= MAX_PAYLOAD)
            .ok_or(CommpError::TooLarge { size: offset.saturating_add(data.len() as u64), max: MAX_PAYLOAD })?;
        self.cover(offset, end)?;
        self.written += data.len() as u64;

        let ub = self.unit_bytes();
        let mut jobs = Vec::new();
        for unit in offset / ub..end.div_ceil(ub) {
            let (us, ue) = (unit * ub, (unit + 1) * ub);
            let (s, e) = (us.max(offset), ue.min(end));
            let part = &data[(s - offset) as usize..(e - offset) as usize];
            if s == us && e == ue {
                jobs.push(Job::Borrowed(unit, part));
                continue;
            }
            match self.pending.get_mut(&unit) {
                Some(Pending::Compact(c)) => {
                    let (kernel, cq) = (self.kernel, self.chunk_quads);
                    if Self::write_compact(kernel, cq, &self.covered, c, us, s, part) {
                        let Some(Pending::Compact(c)) = self.pending.remove(&unit) else {
                            unreachable!("compact unit")
                        };
                        let roots = c.roots.into_iter().map(|r| r.expect("all chunks"));
                        let root = tree::root_of_roots(kernel, roots);
                        self.insert_root(self.unit_level(), unit, root);
                    }
                }
                Some(Pending::Buffer(buf)) => {
                    put(buf, (s - us) as usize, part);
                    if is_covered(&self.covered, us, ue) {
                        let Some(Pending::Buffer(buf)) = self.pending.remove(&unit) else {
                            unreachable!("buffered unit")
                        };
                        self.buffered.retain(|&u| u != unit);
                        self.ready.push((unit, buf));
                    }
                }
                None => {
                    let mut buf = self.spare.pop().unwrap_or_default();
                    put(&mut buf, (s - us) as usize, part);
                    self.pending.insert(unit, Pending::Buffer(buf));
                    self.buffered.push(unit);
                }
            }
        }
        if self.buffered.len() > self.max_buffered {
            self.compact_old();
        }
        if !jobs.is_empty() || self.ready.len() >= Self::batch() {
            self.hash_jobs(jobs);
        }
        Ok(())
    }

    /// Writes `part` (at payload offset `s`) into the compacted unit starting at `us`, hashing
    /// every chunk it completes. Returns whether all chunks of the unit are now hashed.
    fn write_compact(
        kernel: Kernel,
        chunk_quads: usize,
        covered: &BTreeMap<u64, u64>,
        c: &mut Compact,
        us: u64,
        s: u64,
        part: &[u8],
    ) -> bool {
        let cb = 127 * chunk_quads as u64;
        let e = s + part.len() as u64;
        for j in ((s - us) / cb)..(e - us).div_ceil(cb) {
            let (cs, ce) = (us + j * cb, us + (j + 1) * cb);
            let (ps, pe) = (cs.max(s), ce.min(e));
            let bytes = &part[(ps - s) as usize..(pe - s) as usize];
            let j = j as usize;
            if ps == cs && pe == ce {
                c.roots[j] = Some(tree::subtree_root(kernel, bytes, chunk_quads));
                continue;
            }
            let buf = c.partial.entry(j).or_default();
            put(buf, (ps - cs) as usize, bytes);
            if is_covered(covered, cs, ce) {
                let buf = c.partial.remove(&j).expect("partial chunk");
                c.roots[j] = Some(tree::subtree_root(kernel, &buf, chunk_quads));
            }
        }
        c.roots.iter().all(Option::is_some)
    }

    /// Compacts the older whole-unit buffers, keeping the most recent `max_buffered`.
    fn compact_old(&mut self) {
        let keep = self.buffered.len().min(self.max_buffered);
        let old: Vec<u64> = self.buffered.drain(..self.buffered.len() - keep).collect();
        let (kernel, cq) = (self.kernel, self.chunk_quads);
        let cb = 127 * cq as u64;
        let ub = self.unit_bytes();
        for unit in old {
            let Some(Pending::Buffer(buf)) = self.pending.remove(&unit) else { unreachable!("buffered unit") };
            let us = unit * ub;
            let chunks = self.unit_quads / cq;
            let covered = &self.covered;
            let roots: Vec<Option<[u8; 32]>> = (0..chunks)
                .into_par_iter()
                .map(|j| {
                    let (cs, ce) = (us + j as u64 * cb, us + (j as u64 + 1) * cb);
                    is_covered(covered, cs, ce).then(|| {
                        let bytes = &buf[(cs - us) as usize..(ce - us) as usize];
                        tree::subtree_root(kernel, bytes, cq)
                    })
                })
                .collect();
            let partial = (0..chunks)
                .filter(|&j| roots[j].is_none())
                .filter_map(|j| {
                    let start = j * cb as usize;
                    (buf.len() > start).then(|| (j, buf[start..buf.len().min(start + cb as usize)].to_vec()))
                })
                .collect();
            if self.spare.len() < Self::batch() {
                let mut buf = buf;
                buf.clear();
                self.spare.push(buf);
            }
            self.pending.insert(unit, Pending::Compact(Compact { roots, partial }));
        }
    }

    /// Root over the first `127 · quads` bytes of a partly written unit, zero-padded.
    fn close_unit(&self, p: Pending, quads: usize) -> [u8; 32] {
        match p {
            Pending::Buffer(mut buf) => {
                buf.resize(127 * quads, 0);
                tree::subtree_root(self.kernel, &buf, quads)
            }
            Pending::Compact(mut c) => {
                let cq = self.chunk_quads;
                if quads < cq {
                    let mut buf = c.partial.remove(&0).unwrap_or_default();
                    buf.resize(127 * quads, 0);
                    return tree::subtree_root(self.kernel, &buf, quads);
                }
                let roots: Vec<[u8; 32]> = (0..quads / cq)
                    .map(|j| {
                        c.roots[j].unwrap_or_else(|| {
                            let mut buf = c.partial.remove(&j).unwrap_or_default();
                            buf.resize(127 * cq, 0);
                            tree::subtree_root(self.kernel, &buf, cq)
                        })
                    })
                    .collect();
                tree::root_of_roots(self.kernel, roots.into_iter())
            }
        }
    }

    /// Buffered complete units hashed at once: one per thread, at most 8 (8 MiB).
    fn batch() -> usize {
        rayon::current_num_threads().clamp(1, 8)
    }

    /// Hashes `jobs` and every ready unit, in parallel, and adds their roots.
    fn hash_jobs(&mut self, mut jobs: Vec<Job<'_>>) {
        jobs.extend(self.ready.drain(..).map(|(u, buf)| Job::Owned(u, buf)));
        let (kernel, quads) = (self.kernel, self.unit_quads);
        let hash = |job: &Job| match job {
            Job::Borrowed(u, d) => (*u, tree::subtree_root(kernel, d, quads)),
            Job::Owned(u, d) => (*u, tree::subtree_root(kernel, d, quads)),
        };
        let results: Vec<(u64, [u8; 32])> =
            if jobs.len() == 1 { jobs.iter().map(hash).collect() } else { jobs.par_iter().map(hash).collect() };
        for job in jobs {
            if let Job::Owned(_, mut buf) = job {
                if self.spare.len() < Self::batch() {
                    buf.clear();
                    self.spare.push(buf);
                }
            }
        }
        let level = self.unit_level();
        for (unit, root) in results {
            self.insert_root(level, unit, root);
        }
    }

    /// Adds a subtree root, merging it with its sibling (repeatedly) when that is present.
    fn insert_root(&mut self, mut level: u32, mut index: u64, mut root: [u8; 32]) {
        while let Some(sibling) = self.roots.remove(&(level, index ^ 1)) {
            root = if index & 1 == 0 { self.kernel.node(&root, &sibling) } else { self.kernel.node(&sibling, &root) };
            level += 1;
            index /= 2;
        }
        self.roots.insert((level, index), root);
    }

    /// Root of the subtree (level, index) over `units` complete units, all inserted.
    fn fold(&self, level: u32, index: u64, units: u64) -> [u8; 32] {
        if let Some(root) = self.roots.get(&(level, index)) {
            return *root;
        }
        let unit_level = self.unit_level();
        let first_unit = index << (level - unit_level);
        if first_unit >= units {
            return *tree::zero_root(level);
        }
        assert!(level > unit_level, "unit {index} missing from the accumulator");
        let left = self.fold(level - 1, 2 * index, units);
        let right = self.fold(level - 1, 2 * index + 1, units);
        self.kernel.node(&left, &right)
    }

    /// Adds the roots of whole units `0..roots.len()` hashed elsewhere, as if their bytes had
    /// been written (the hasher must be empty).
    fn add_unit_roots(&mut self, roots: &[[u8; 32]]) -> Result<(), CommpError> {
        assert_eq!(self.written, 0, "unit roots go into an empty hasher");
        let end = roots.len() as u64 * self.unit_bytes();
        check_payload_size(end)?;
        if end == 0 {
            return Ok(());
        }
        self.cover(0, end)?;
        self.written = end;
        for (unit, root) in roots.iter().enumerate() {
            self.insert_root(self.unit_level(), unit as u64, *root);
        }
        Ok(())
    }

    /// Completes the piece over payload `[0, total_len)`.
    ///
    /// Fails if any byte of that range was not written, or a byte past it was.
    pub fn finish(mut self, total_len: u64) -> Result<PieceInfo, CommpError> {
        check_payload_size(total_len)?;
        if let Some((_, &end)) = self.covered.last_key_value() {
            if end > total_len {
                return Err(CommpError::PastEnd { end, total_len });
            }
        }
        if self.written != total_len {
            let first_missing = self.contiguous_len();
            return Err(CommpError::Incomplete { total_len, missing: total_len - self.written, first_missing });
        }
        if !self.ready.is_empty() {
            self.hash_jobs(Vec::new());
        }
        let padded = padded_piece_size(total_len);
        let quads = (padded / 128) as usize;
        let ub = self.unit_bytes();
        let root = if total_len < ub {
            match self.pending.remove(&0) {
                Some(p) => self.close_unit(p, quads),
                None => tree::subtree_root(self.kernel, &[0; 127], 1), // empty payload
            }
        } else {
            let units = total_len.div_ceil(ub);
            if !total_len.is_multiple_of(ub) {
                let last = units - 1;
                let p = self.pending.remove(&last).expect("last unit pending");
                let root = self.close_unit(p, self.unit_quads);
                self.insert_root(self.unit_level(), last, root);
            }
            let height = padded.trailing_zeros() - 5;
            self.fold(height, 0, units)
        };
        Ok(PieceInfo { root, payload_size: total_len, padded_size: padded, unpadded_size: unpadded_piece_size(padded) })
    }
}

impl io::Write for PieceHasher {
    /// Appends at [`PieceHasher::contiguous_len`].
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_at(self.contiguous_len(), buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Buffers whose units may be hashing at once in a [`SharedFeed`] before it waits for the
/// oldest: enough queued units that no thread of a small machine runs out of work.
const FEED_IN_FLIGHT: usize = 3;

/// A [`PieceHasher`] fed shared buffers whose whole units are hashed as independent rayon tasks:
/// the pool starts on the next buffer's units while the last units of the previous one are
/// still hashing, so its threads do not wait for each other at every buffer. Bytes of units cut
/// by a buffer's edges go through [`PieceHasher::write_at`].
pub struct SharedFeed {
    hasher: PieceHasher,
    tx: std::sync::mpsc::Sender<(u64, [u8; 32])>,
    rx: std::sync::mpsc::Receiver<(u64, [u8; 32])>,
    /// Buffers with units still hashing, by sequence number: the buffer and its units left.
    in_flight: BTreeMap<u64, (std::sync::Arc<Vec<u8>>, usize)>,
    /// Unit → sequence number of the buffer it is hashed from.
    owner: HashMap<u64, u64>,
    seq: u64,
}

impl std::fmt::Debug for SharedFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedFeed")
            .field("hasher", &self.hasher)
            .field("buffers_in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl Default for SharedFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedFeed {
    /// A feed into a new [`PieceHasher`] with the fastest kernel of this CPU.
    pub fn new() -> Self {
        Self::with_hasher(PieceHasher::new())
    }

    fn with_hasher(hasher: PieceHasher) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        SharedFeed { hasher, tx, rx, in_flight: BTreeMap::new(), owner: HashMap::new(), seq: 0 }
    }

    /// Writes `buf` at payload offset `offset` (each byte once, as [`PieceHasher::write_at`]).
    /// Returns the buffers the feed no longer uses (this one, or earlier ones whose units are
    /// all hashed now), so the caller can reuse them.
    pub fn write_shared(
        &mut self,
        offset: u64,
        buf: std::sync::Arc<Vec<u8>>,
    ) -> Result<Vec<std::sync::Arc<Vec<u8>>>, CommpError> {
        let h = &mut self.hasher;
        let len = buf.len() as u64;
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= MAX_PAYLOAD)
            .ok_or(CommpError::TooLarge { size: offset.saturating_add(len), max: MAX_PAYLOAD })?;
        let ub = h.unit_bytes();
        let (first, last) = (offset.div_ceil(ub), end / ub);
        if first >= last {
            h.write_at(offset, &buf)?;
            self.collect(false);
            return Ok(vec![buf]);
        }
        let (head, tail) = ((first * ub - offset) as usize, (last * ub - offset) as usize);
        h.write_at(offset, &buf[..head])?;
        h.write_at(last * ub, &buf[tail..])?;
        h.cover(first * ub, last * ub)?;
        h.written += (last - first) * ub;
        let (kernel, quads) = (h.kernel, h.unit_quads);
        let seq = self.seq;
        self.seq += 1;
        for unit in first..last {
            let (data, tx) = (std::sync::Arc::clone(&buf), self.tx.clone());
            let at = (unit * ub - offset) as usize;
            rayon::spawn(move || {
                let root = tree::subtree_root(kernel, &data[at..at + ub as usize], quads);
                // The buffer is released before the result is sent, so the feed holds the last
                // reference once it has every result of a buffer.
                drop(data);
                let _ = tx.send((unit, root));
            });
            self.owner.insert(unit, seq);
        }
        self.in_flight.insert(seq, (buf, (last - first) as usize));
        Ok(self.collect(false))
    }

    /// Adds the roots hashed so far; waits for more while more than [`FEED_IN_FLIGHT`] buffers
    /// (or, with `all`, any) are in flight. Returns the buffers whose units are all hashed.
    fn collect(&mut self, all: bool) -> Vec<std::sync::Arc<Vec<u8>>> {
        let mut freed = Vec::new();
        loop {
            let limit = if all { 0 } else { FEED_IN_FLIGHT };
            let next = if self.in_flight.len() > limit { self.rx.recv().ok() } else { self.rx.try_recv().ok() };
            let Some((unit, root)) = next else { return freed };
            self.hasher.insert_root(self.hasher.unit_level(), unit, root);
            let seq = self.owner.remove(&unit).expect("unit of a buffer in flight");
            let left = &mut self.in_flight.get_mut(&seq).expect("buffer in flight").1;
            *left -= 1;
            if *left == 0 {
                freed.push(self.in_flight.remove(&seq).expect("buffer in flight").0);
            }
        }
    }

    /// Waits for every unit, then completes the piece as [`PieceHasher::finish`].
    pub fn finish(mut self, total_len: u64) -> Result<PieceInfo, CommpError> {
        self.collect(true);
        self.hasher.finish(total_len)
    }
}

/// Bytes read per step by [`commp_of_reader`]: 8 units (8,323,072 bytes), whole units for
/// every thread of a small machine.
const READ_BYTES: usize = 8 * 127 * UNIT_QUADS;

/// Fills `buf` from `r` until it is full or `r` ends; returns the bytes read.
pub fn read_full(r: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Bytes of a mapped file released at a time once hashed (keeps resident memory at about this
/// much plus a unit per thread, and the `madvise` calls few).
const RELEASE_BYTES: usize = 32 * 127 * UNIT_QUADS;

/// commP of a regular file's contents, hashed straight from a read-only memory map (no copy
/// into buffers). Every thread of the pool takes the next whole unit from a shared counter until
/// none is left, so the threads never wait for each other before the last unit; pages behind the
/// units all finished are released, so resident memory stays at about 32 MiB. Returns `None`
/// when the file cannot be mapped (the caller then reads it with [`commp_of_reader`]). The map
/// is registered ([`crate::importer::input::Map`]), so the CLI reports a file that shrinks while
/// it is read as an error naming `path`.
pub fn commp_of_file(file: &std::fs::File, path: &std::path::Path) -> Option<Result<PieceInfo, CommpError>> {
    let len = file.metadata().ok()?.len();
    if len == 0 {
        return Some(commp_of_bytes(&[]));
    }
    if let Err(e) = check_payload_size(len) {
        return Some(Err(e));
    }
    let map = crate::importer::input::Map::new(file, usize::try_from(len).ok()?, path).ok()?;
    let _ = map.advise(memmap2::Advice::Sequential);
    let release = |start: usize, end: usize| {
        // SAFETY: DONTNEED on a read-only file mapping only drops our page references; the
        // next access would re-read the file, and this range is not accessed again.
        let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start) };
    };
    Some(commp_of_mapped(&map, release))
}

/// commP of `data`: its whole units hashed by every thread of the pool, each taking the next
/// unit from a shared counter; `release(start, end)` is called with page-aligned ranges of
/// `data` that are hashed and not read again, in order.
fn commp_of_mapped(data: &[u8], release: impl Fn(usize, usize) + Sync) -> Result<PieceInfo, CommpError> {
    let mut h = PieceHasher::new();
    let ub = h.unit_bytes() as usize;
    let units = data.len() / ub;
    let roots = unit_roots_parallel(h.kernel, &data[..units * ub], h.unit_quads, &release);
    h.add_unit_roots(&roots)?;
    h.write_at((units * ub) as u64, &data[units * ub..])?;
    h.finish(data.len() as u64)
}

/// Roots of the whole units of `data` (`127 · unit_quads` bytes each), hashed on every thread
/// of the current rayon pool; see [`commp_of_mapped`] for `release`.
fn unit_roots_parallel(
    kernel: Kernel,
    data: &[u8],
    unit_quads: usize,
    release: &(dyn Fn(usize, usize) + Sync),
) -> Vec<[u8; 32]> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    const PAGE: usize = 4096;
    let ub = 127 * unit_quads;
    let units = data.len() / ub;
    let next = AtomicUsize::new(0);
    // Units finished out of order, the first unit not finished, and the bytes released so far.
    let frontier = Mutex::new((std::collections::BTreeSet::new(), 0usize, 0usize));
    let work = || {
        let mut mine = Vec::new();
        loop {
            let u = next.fetch_add(1, Ordering::Relaxed);
            if u >= units {
                return mine;
            }
            mine.push((u, tree::subtree_root(kernel, &data[u * ub..(u + 1) * ub], unit_quads)));
            let mut f = frontier.lock().unwrap_or_else(|e| e.into_inner());
            let (done, first, released) = &mut *f;
            done.insert(u);
            while done.remove(first) {
                *first += 1;
            }
            let end = (*first * ub) / PAGE * PAGE;
            if end >= *released + RELEASE_BYTES || (*first == units && end > *released) {
                release(*released, end);
                *released = end;
            }
        }
    };
    let threads = rayon::current_num_threads().min(units.max(1));
    let per_thread: Vec<Vec<(usize, [u8; 32])>> = if threads <= 1 {
        vec![work()]
    } else {
        rayon::broadcast(|ctx| if ctx.index() < threads { work() } else { Vec::new() })
    };
    let mut roots = vec![[0u8; 32]; units];
    for (u, root) in per_thread.into_iter().flatten() {
        roots[u] = root;
    }
    roots
}

/// commP of everything `r` yields, read in blocks of about 8 MiB.
///
/// The calling thread reads the next block while a helper thread hashes the current one (with
/// rayon's global pool for its parallel part); memory use is two blocks.
pub fn commp_of_reader(mut r: impl io::Read) -> Result<PieceInfo, CommpError> {
    use std::sync::mpsc::sync_channel;
    let (full_tx, full_rx) = sync_channel::<(Vec<u8>, usize)>(1);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(2);
    std::thread::scope(move |scope| {
        let hashing = scope.spawn(move || {
            let mut hasher = PieceHasher::new();
            let mut offset = 0u64;
            // Ends when the reader drops its sender; an error drops both channel ends, which
            // stops the reader.
            for (buf, n) in full_rx {
                hasher.write_at(offset, &buf[..n])?;
                offset += n as u64;
                let _ = empty_tx.send(buf);
            }
            hasher.finish(offset)
        });
        let mut fresh = 2;
        let result = loop {
            let mut buf = if fresh > 0 {
                fresh -= 1;
                vec![0u8; READ_BYTES]
            } else {
                match empty_rx.recv() {
                    Ok(buf) => buf,
                    Err(_) => break Ok(()), // the hashing thread stopped with an error
                }
            };
            let n = match read_full(&mut r, &mut buf) {
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            let last = n < buf.len();
            if full_tx.send((buf, n)).is_err() || last {
                break Ok(());
            }
        };
        drop(full_tx);
        let hashed = hashing.join().expect("commP hashing thread panicked");
        result?;
        hashed
    })
}

/// commP of an in-memory payload.
pub fn commp_of_bytes(data: &[u8]) -> Result<PieceInfo, CommpError> {
    let mut hasher = PieceHasher::new();
    hasher.write_at(0, data)?;
    hasher.finish(data.len() as u64)
}
