//! FRC-0058 data segments (Verifiable Data Aggregation): many client pieces (CARs) placed in one
//! deal piece, each aligned to its padded size, with a data segment index at the end of the deal,
//! and the proofs (PoDSI) that a piece is in the deal — byte for byte as go-data-segment and
//! @web3-storage/data-segment build, encode and verify them.
//!
//! - [`layout`]: where pieces and the index go in a deal of a given size;
//! - [`entry`]: one index entry (commitment, offset, size, checksum);
//! - [`tree`]: the aggregate (a deal's index) and its hybrid Merkle tree (root, proofs);
//! - [`proof`]: inclusion proofs, their verification and encodings;
//! - [`pack`]: writing a deal from files in one read of each;
//! - [`write`]: how a deal's bytes reach its file (direct I/O where the file system allows);
//! - [`read`]: reading a deal's index back, and checking a deal against it;
//! - [`deals`]: the built batches of a shipment packed into deals (the plan, `deals.jsonl`, a
//!   deal written and judged).

pub mod deals;
pub mod entry;
pub mod fr32;
pub mod layout;
pub mod pack;
pub mod proof;
pub mod read;
pub mod status;
pub mod tree;
pub mod write;

pub use entry::{Entry, EntryFault};
pub use pack::{pack, pack_sized, pack_vouched, DealOut, Packed};
pub use proof::{InclusionProof, ProofData, ProofError};
pub use read::{read_index, verify_deal, Verified};
pub use tree::Aggregate;
pub use write::WriteMode;

use std::path::PathBuf;

/// Errors of data segment packing, reading and checking.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// The deal size is not a power of two from 512 bytes to 64 GiB.
    #[error("deal size {size} is not a power of two from 512 B to 64 GiB (padded bytes, e.g. 32GiB)")]
    DealSize {
        /// The size given.
        size: u64,
    },
    /// No input.
    #[error("no pieces to pack")]
    NoPieces,
    /// A piece is not a power of two ≥ 128 no larger than the deal.
    #[error("a piece of padded size {size} cannot go in a deal of {deal} bytes")]
    PieceSize {
        /// Padded size of the piece.
        size: u64,
        /// Padded deal size.
        deal: u64,
    },
    /// More pieces than the deal's index has entries.
    #[error("{count} pieces need {count} index entries, a deal of {} holds {entries}{}",
            crate::human::ibytes(*deal), smallest_hint(*smallest))]
    TooManyPieces {
        /// Pieces given.
        count: u64,
        /// Entries of the deal's index.
        entries: u64,
        /// Padded deal size.
        deal: u64,
        /// The smallest deal size that holds them.
        smallest: Option<u64>,
    },
    /// The pieces and the index do not fit the deal.
    #[error("the deal of {} is too small: the pieces end at padded offset {end} and the index needs {index} bytes, {missing} padded bytes missing{}",
            crate::human::ibytes(*deal), smallest_hint(*smallest))]
    TooSmall {
        /// Padded deal size.
        deal: u64,
        /// Padded end of the last piece.
        end: u64,
        /// Padded size of the index area.
        index: u64,
        /// Padded bytes missing.
        missing: u64,
        /// The smallest deal size that holds them.
        smallest: Option<u64>,
    },
    /// An input is not a regular file.
    #[error("{0}: not a regular file")]
    NotAFile(PathBuf),
    /// An input changed size while it was read.
    #[error("{path}: changed while it was read ({expected} bytes when opened, {found} now)")]
    Changed {
        /// The input.
        path: PathBuf,
        /// Size when opened.
        expected: u64,
        /// Size found later.
        found: u64,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Hashing an input failed.
    #[error("{path}: {source}")]
    Commp {
        /// The input.
        path: PathBuf,
        /// The cause.
        source: crate::commp::CommpError,
    },
    /// The file's length is not that of a deal (`127·2^k` bytes, a padded deal of `128·2^k`).
    #[error("{len} bytes is not the size of a deal piece (127·2^k bytes from 508 B to 63.5 GiB; truncated?)")]
    NotADeal {
        /// The file's length.
        len: u64,
    },
    /// An index entry is not valid.
    #[error("index entry {entry}: {fault}")]
    BadEntry {
        /// Position in the index.
        entry: u64,
        /// Why.
        fault: EntryFault,
    },
    /// Entries out of order, or beyond the index.
    #[error("index entry {entry} is out of place (the index holds {entries})")]
    Position {
        /// Position in the index.
        entry: u64,
        /// Entries of the index.
        entries: u64,
    },
    /// A segment lies outside the deal's data area.
    #[error("index entry {entry}: segment at padded offset {offset} of {size} bytes lies outside the data area (which ends at {start})")]
    OutsideDeal {
        /// Position in the index.
        entry: u64,
        /// Padded offset.
        offset: u64,
        /// Padded size.
        size: u64,
        /// Start of the index area.
        start: u64,
    },
    /// Two segments overlap.
    #[error("index entries {first} and {second} describe overlapping segments")]
    Overlap {
        /// Position of one.
        first: u64,
        /// Position of the other.
        second: u64,
    },
    /// A segment's bytes do not hash to its index entry's commitment.
    #[error("index entry {entry}: the segment at padded offset {offset} hashes to {found}, its entry says {expected}")]
    SegmentMismatch {
        /// Position in the index.
        entry: u64,
        /// Padded offset.
        offset: u64,
        /// Piece CID of the bytes.
        found: String,
        /// Piece CID in the entry.
        expected: String,
    },
    /// Bytes outside every segment and the index are not zero.
    #[error("byte {offset} (unpadded) lies in no segment and is not zero: the deal is not the aggregate its index describes")]
    NonZeroGap {
        /// Unpadded offset of the first such byte.
        offset: u64,
    },
    /// The observer asked to stop.
    #[error("cancelled")]
    Cancelled,
}

fn smallest_hint(smallest: Option<u64>) -> String {
    match smallest {
        Some(d) => format!(" (the smallest deal that holds them: {})", crate::human::ibytes(d)),
        None => " (no deal up to 64 GiB holds them)".into(),
    }
}

/// A piece named by its CID: v1 gives the root only, v2 also the padded size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceRef {
    /// The commP root.
    pub root: [u8; 32],
    /// Padded size (piece CID v2 only).
    pub size: Option<u64>,
}

/// Parses a piece CID: v1 (`baga6ea4seaq…`: fil-commitment-unsealed, sha2-256-trunc254-padded)
/// or v2 (`bafkzcib…`: raw, fr32-sha256-trunc254-padbintree, FRC-0069).
pub fn parse_piece_cid(s: &str) -> Result<PieceRef, String> {
    use crate::commp::{FIL_COMMITMENT_UNSEALED, FR32_SHA256_TRUNC254_PADBINTREE, RAW, SHA2_256_TRUNC254_PADDED};
    let bad = |why: &str| format!("{s:?} is not a piece CID ({why})");
    let cid = cid::Cid::try_from(s.trim()).map_err(|e| bad(&e.to_string()))?;
    let (codec, mh) = (cid.codec(), cid.hash());
    let digest = mh.digest();
    if codec == FIL_COMMITMENT_UNSEALED && mh.code() == SHA2_256_TRUNC254_PADDED && digest.len() == 32 {
        return Ok(PieceRef { root: digest.try_into().expect("32 bytes"), size: None });
    }
    if codec == RAW && mh.code() == FR32_SHA256_TRUNC254_PADBINTREE {
        let mut r = digest;
        let (_padding, n) = crate::varint::read(r).ok_or_else(|| bad("bad padding varint"))?;
        r = &r[n..];
        if r.len() == 33 && (2..=58).contains(&r[0]) {
            return Ok(PieceRef { root: r[1..].try_into().expect("32 bytes"), size: Some(32u64 << r[0]) });
        }
        return Err(bad("bad v2 digest"));
    }
    Err(bad("neither a v1 nor a v2 piece CID"))
}
