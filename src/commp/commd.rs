//! CommD: the unsealed sector CID of pieces placed in a sector as Lotus places them.
//!
//! The pieces go in the order given, each at the next offset aligned to its own padded size;
//! zero pieces fill the gaps and the tail up to the sector size. CommD is the root of the tree
//! over the whole sector: the piece roots are its subtrees, the zero pieces `Z[level]`. Its CID
//! is a piece CID v1 (`baga6ea4seaq…`).
//!
//! This equals filecoin-ffi / rust-fil-proofs `compute_comm_d` and go-commp-utils
//! `GenerateUnsealedCID` (`PieceAggregateCommP` since v2.1.0) on the sector's full piece list
//! (the pieces and the fillers Lotus adds, [`layout`]), Lotus `chain/proofs.GenerateUnsealedCID`
//! and the FVM's `compute_unsealed_sector_cid` on the pieces alone: all place pieces with the
//! same stack of subtree roots ([`aggregate`]). go-commp-utils on the pieces alone returns the
//! root of the smallest tree holding them, not the sector's ([`aggregate`] returns both).
//!
//! Pieces are given as piece CIDs v1 with their padded size, or v2 (FRC-0069), which carry it.

use super::{tree, Kernel, FIL_COMMITMENT_UNSEALED, FR32_SHA256_TRUNC254_PADBINTREE, RAW, SHA2_256_TRUNC254_PADDED};
use cid::Cid;
use multihash::Multihash;

/// Smallest padded piece (and sector) size: one 127-byte quad, Fr32-expanded.
pub const MIN_PIECE_SIZE: u64 = 128;

/// A piece as a sector holds it: its commitment and its padded size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SectorPiece {
    /// The piece's root (commP).
    pub root: [u8; 32],
    /// Padded piece size (a power of two ≥ 128).
    pub padded_size: u64,
}

impl SectorPiece {
    /// The all-zero piece of `padded_size` bytes (a power of two ≥ 32): root `Z[level]`.
    pub fn zero(padded_size: u64) -> SectorPiece {
        SectorPiece { root: *tree::zero_root(level(padded_size)), padded_size }
    }

    /// Its piece CID v1 (`fil-commitment-unsealed` / `sha2-256-trunc254-padded`).
    pub fn cid_v1(&self) -> Cid {
        let mh = Multihash::<64>::wrap(SHA2_256_TRUNC254_PADDED, &self.root).expect("32-byte digest fits");
        Cid::new_v1(FIL_COMMITMENT_UNSEALED, mh)
    }
}

impl From<&super::PieceInfo> for SectorPiece {
    fn from(p: &super::PieceInfo) -> SectorPiece {
        SectorPiece { root: p.root, padded_size: p.padded_size }
    }
}

/// Tree level of a padded size: `log2(size / 32)`.
fn level(padded_size: u64) -> u32 {
    padded_size.trailing_zeros() - 5
}

/// Why a CommD cannot be computed, or a piece not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommdError {
    /// The sector size is not a power of two of at least 128 bytes.
    #[error("sector size {0} bytes is not a power of two of at least 128 bytes (padded), such as 32GiB or 64GiB")]
    SectorSize(u64),
    /// A piece size is not a power of two of at least 128 bytes.
    #[error("piece {piece}: size {size} is not a power of two of at least 128 bytes (padded piece sizes are)")]
    PieceSize {
        /// The piece (its CID).
        piece: String,
        /// The size given.
        size: u64,
    },
    /// A piece size that is an unpadded size (`127·2^k`).
    #[error("piece {piece}: size {size} is an unpadded size; give the padded size {padded}")]
    UnpaddedSize {
        /// The piece (its CID).
        piece: String,
        /// The size given.
        size: u64,
        /// The padded size it stands for.
        padded: u64,
    },
    /// A piece larger than the sector.
    #[error("piece {number} ({piece}) of {size} bytes is larger than the sector of {sector} bytes")]
    PieceLargerThanSector {
        /// Its position in the list, from 1.
        number: usize,
        /// The piece (its CID).
        piece: String,
        /// Its padded size.
        size: u64,
        /// The sector size.
        sector: u64,
    },
    /// The pieces, placed in order and aligned, run past the end of the sector.
    #[error(
        "the pieces do not fit the sector: piece {number} ({piece}) would end at byte {end}, {excess} bytes past the end of the {sector}-byte sector (each piece is aligned to its size; pieces in decreasing size order leave no gaps)"
    )]
    DoesNotFit {
        /// The first piece that does not fit, from 1.
        number: usize,
        /// That piece (its CID).
        piece: String,
        /// Where it would end (padded bytes).
        end: u128,
        /// `end − sector`.
        excess: u128,
        /// The sector size.
        sector: u64,
    },
    /// Not a CID.
    #[error("{value:?} is not a CID: {reason}")]
    NotCid {
        /// The text given.
        value: String,
        /// The parser's reason.
        reason: String,
    },
    /// A CID that is not a piece CID.
    #[error("{value} is not a piece CID (v1: fil-commitment-unsealed / sha2-256-trunc254-padded, baga6ea4seaq…; v2: raw / fr32-sha256-trunc254-padbintree, bafkzcib…)")]
    NotPieceCid {
        /// The CID given.
        value: String,
    },
    /// A piece CID v2 whose digest is malformed.
    #[error("{value}: malformed piece CID v2 digest: {reason}")]
    BadPieceCidV2 {
        /// The CID given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A piece CID v1 without its size.
    #[error("piece CID v1 {value} needs its padded size: {value}:SIZE (or give its piece CID v2)")]
    MissingSize {
        /// The CID given.
        value: String,
    },
    /// A size that contradicts the piece CID v2's.
    #[error("{value}: size {given} given, but the piece CID v2 is of a {size}-byte padded piece")]
    SizeMismatch {
        /// The CID given.
        value: String,
        /// The size given.
        given: u64,
        /// The padded size the CID carries.
        size: u64,
    },
    /// A size that does not parse.
    #[error("{value:?} is not a size (bytes, or with a unit: 512MiB, 32GiB)")]
    BadSize {
        /// The text given.
        value: String,
    },
    /// A line of a piece list that is wrong.
    #[error("line {line}: {reason}")]
    Line {
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Checks a sector size: a power of two of at least 128 bytes.
pub fn check_sector_size(sector: u64) -> Result<(), CommdError> {
    if sector.is_power_of_two() && sector >= MIN_PIECE_SIZE {
        Ok(())
    } else {
        Err(CommdError::SectorSize(sector))
    }
}

/// Checks a padded piece size (`piece` names the piece in the error).
pub fn check_piece_size(piece: &str, size: u64) -> Result<(), CommdError> {
    if size.is_power_of_two() && size >= MIN_PIECE_SIZE {
        return Ok(());
    }
    let quads = size / 127;
    if size.is_multiple_of(127) && quads.is_power_of_two() {
        return Err(CommdError::UnpaddedSize { piece: piece.to_string(), size, padded: quads * 128 });
    }
    Err(CommdError::PieceSize { piece: piece.to_string(), size })
}

/// One stretch of a sector: a piece of the list, or a zero piece Lotus adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The piece at `index` (from 0) of the list.
    Piece {
        /// Its position in the list, from 0.
        index: usize,
        /// Padded offset in the sector.
        offset: u64,
        /// Padded size.
        size: u64,
    },
    /// A zero piece (filler).
    Zero {
        /// Padded offset in the sector.
        offset: u64,
        /// Padded size.
        size: u64,
    },
}

impl Slot {
    /// Padded offset in the sector.
    pub fn offset(&self) -> u64 {
        match *self {
            Slot::Piece { offset, .. } | Slot::Zero { offset, .. } => offset,
        }
    }

    /// Padded size.
    pub fn size(&self) -> u64 {
        match *self {
            Slot::Piece { size, .. } | Slot::Zero { size, .. } => size,
        }
    }
}

/// Zero pieces from `from` to `to` (padded offsets, multiples of 128), smallest first, as
/// Lotus's `GetRequiredPadding` cuts a gap: each is aligned to its size.
fn zero_slots(from: u64, to: u64, out: &mut Vec<Slot>) {
    let mut at = from;
    while at < to {
        // The largest size that keeps `at` aligned and does not run past `to`.
        let align = if at == 0 { u64::MAX } else { 1 << at.trailing_zeros() };
        let room = 1 << (63 - (to - at).leading_zeros());
        let size = align.min(room);
        out.push(Slot::Zero { offset: at, size });
        at += size;
    }
}

/// The sector's layout: every piece in order, each at the next offset aligned to its size, and
/// the zero pieces between them and after the last one up to `sector` — the piece list Lotus
/// seals (the on-chain deal list's `0` entries are these fillers). Checks the sector size, the
/// piece sizes and that the pieces fit. `pieces` are `(name, padded size)`; names are only used
/// in errors.
pub fn layout(pieces: &[(String, u64)], sector: u64) -> Result<Vec<Slot>, CommdError> {
    check_sector_size(sector)?;
    let mut slots = Vec::with_capacity(pieces.len() * 2 + 1);
    let mut end = 0u64;
    for (index, (name, size)) in pieces.iter().enumerate() {
        check_piece_size(name, *size)?;
        if *size > sector {
            return Err(CommdError::PieceLargerThanSector {
                number: index + 1,
                piece: name.clone(),
                size: *size,
                sector,
            });
        }
        let offset = u128::from(end).next_multiple_of(u128::from(*size));
        let piece_end = offset + u128::from(*size);
        if piece_end > u128::from(sector) {
            return Err(CommdError::DoesNotFit {
                number: index + 1,
                piece: name.clone(),
                end: piece_end,
                excess: piece_end - u128::from(sector),
                sector,
            });
        }
        let offset = offset as u64; // ≤ sector
        zero_slots(end, offset, &mut slots);
        slots.push(Slot::Piece { index, offset, size: *size });
        end = offset + size;
    }
    zero_slots(end, sector, &mut slots);
    Ok(slots)
}

/// The root of the smallest tree holding `pieces` placed in order, each aligned to its size
/// (zero pieces between them and after the last one up to a power of two): go-commp-utils'
/// `GenerateUnsealedCID` / `PieceAggregateCommP` and rust-fil-proofs' `compute_comm_d` stack.
/// `None` for no pieces. Sizes must be powers of two ≥ 128 (see [`check_piece_size`]).
pub fn aggregate(pieces: &[SectorPiece]) -> Result<Option<SectorPiece>, CommdError> {
    for p in pieces {
        check_piece_size(&p.cid_v1().to_string(), p.padded_size)?;
    }
    let kernel = Kernel::detect();
    // Subtree roots of strictly decreasing sizes: the binary expansion of the end offset.
    let mut stack: Vec<SectorPiece> = Vec::with_capacity(64);
    let push = |stack: &mut Vec<SectorPiece>, p: SectorPiece| {
        stack.push(p);
        while let [.., l, r] = stack.as_slice() {
            if l.padded_size != r.padded_size {
                break;
            }
            let joined = SectorPiece { root: kernel.node(&l.root, &r.root), padded_size: l.padded_size * 2 };
            stack.truncate(stack.len() - 2);
            stack.push(joined);
        }
    };
    for p in pieces {
        // Zero pieces until the end offset is aligned to this piece's size.
        while let Some(top) = stack.last().filter(|top| top.padded_size < p.padded_size) {
            let z = SectorPiece::zero(top.padded_size);
            push(&mut stack, z);
        }
        push(&mut stack, *p);
    }
    while let [_, .., top] = stack.as_slice() {
        let z = SectorPiece::zero(top.padded_size);
        push(&mut stack, z);
    }
    Ok(stack.pop())
}

/// CommD of `pieces` placed in a sector of `sector` padded bytes ([`layout`]): the root of the
/// sector's tree. No pieces give the empty sector's (`Z[log2(sector/32)]`).
pub fn commd(pieces: &[SectorPiece], sector: u64) -> Result<SectorPiece, CommdError> {
    let named: Vec<(String, u64)> = pieces.iter().map(|p| (p.cid_v1().to_string(), p.padded_size)).collect();
    layout(&named, sector)?;
    let Some(mut tree) = aggregate(pieces)? else { return Ok(SectorPiece::zero(sector)) };
    let kernel = Kernel::detect();
    while tree.padded_size < sector {
        tree.root = kernel.node(&tree.root, tree::zero_root(level(tree.padded_size)));
        tree.padded_size *= 2;
    }
    Ok(tree)
}

/// A piece CID (v1 or v2) and its padded size: `size` is required for v1 and must agree with
/// a v2's.
pub fn parse_piece(cid: &str, size: Option<u64>) -> Result<SectorPiece, CommdError> {
    let value = cid.trim();
    let c: Cid = value
        .parse()
        .map_err(|e: cid::Error| CommdError::NotCid { value: value.to_string(), reason: e.to_string() })?;
    let not_piece = || CommdError::NotPieceCid { value: value.to_string() };
    if c.version() != cid::Version::V1 {
        return Err(not_piece());
    }
    let digest = c.hash().digest();
    match (c.codec(), c.hash().code()) {
        (FIL_COMMITMENT_UNSEALED, SHA2_256_TRUNC254_PADDED) => {
            let root: [u8; 32] = digest.try_into().map_err(|_| not_piece())?;
            let size = size.ok_or_else(|| CommdError::MissingSize { value: value.to_string() })?;
            check_piece_size(value, size)?;
            Ok(SectorPiece { root, padded_size: size })
        }
        (RAW, FR32_SHA256_TRUNC254_PADBINTREE) => {
            let bad = |reason: &str| CommdError::BadPieceCidV2 { value: value.to_string(), reason: reason.to_string() };
            let (padding, n) = crate::varint::read(digest).ok_or_else(|| bad("the padding is not a varint"))?;
            let rest = &digest[n..];
            if rest.len() != 33 {
                return Err(bad("not uvarint(padding) ‖ height ‖ 32-byte root"));
            }
            let height = u32::from(rest[0]);
            if !(2..=58).contains(&height) {
                return Err(bad(&format!("height {height} is outside 2..=58 (pieces of 128 bytes and up)")));
            }
            let padded_size = 32u64 << height;
            if padding > super::unpadded_piece_size(padded_size) {
                return Err(bad(&format!(
                    "padding {padding} exceeds the piece's {} unpadded bytes",
                    super::unpadded_piece_size(padded_size)
                )));
            }
            if let Some(given) = size.filter(|&s| s != padded_size) {
                return Err(CommdError::SizeMismatch { value: value.to_string(), given, size: padded_size });
            }
            let root: [u8; 32] = rest[1..].try_into().expect("33 − 1 bytes");
            Ok(SectorPiece { root, padded_size })
        }
        _ => Err(not_piece()),
    }
}

/// A piece as the command line gives it: `CID` or `CID:SIZE` (bytes, or with a unit: `32GiB`).
pub fn parse_piece_arg(s: &str) -> Result<SectorPiece, CommdError> {
    match s.trim().split_once(':') {
        Some((cid, size)) => {
            let size =
                crate::shipment::size::parse_size(size).map_err(|_| CommdError::BadSize { value: size.to_string() })?;
            parse_piece(cid, Some(size))
        }
        None => parse_piece(s, None),
    }
}

/// The pieces of a list, in order. Blank lines and `#` comments are skipped. Accepted forms:
///
/// * one piece a line: `CID` or `CID:SIZE` (as on the command line);
/// * JSON, one object a line: the shipment file `carload export --format shipment` (or `build`)
///   writes — each batch's `result` gives `piece_cid` and `piece_size`, a batch not built is an
///   error, the header is skipped — and the objects `carload commp --json` and `prepare --json`
///   print (`piece_cid`, `piece_size`);
/// * the CSV `carload export --format csv` writes (a header naming `piece_cid` and
///   `piece_size`; columns by name).
///
/// Errors name the line ([`CommdError::Line`]).
pub fn parse_piece_list(text: &str) -> Result<Vec<SectorPiece>, CommdError> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let line_err = |line: usize, e: CommdError| CommdError::Line { line, reason: e.to_string() };
    let reason = |line: usize, reason: String| CommdError::Line { line, reason };
    let mut pieces = Vec::new();
    let Some(&(first_no, first)) = lines.first() else { return Ok(pieces) };
    if first.starts_with('{') {
        for &(no, l) in &lines {
            let v: serde_json::Value = serde_json::from_str(l).map_err(|e| reason(no, format!("not JSON: {e}")))?;
            if v.get("format").is_some() && v.get("piece_cid").is_none() {
                continue; // the shipment's header
            }
            let record = match v.get("result") {
                Some(r) if !r.is_null() => r,
                _ if v.get("piece_cid").is_some() => &v,
                _ => {
                    let what = match v.get("id").and_then(|id| id.as_str()) {
                        Some(id) => format!("batch {id} is not built (no result, so no piece)"),
                        None => "no piece_cid".to_string(),
                    };
                    return Err(reason(no, what));
                }
            };
            let cid =
                record.get("piece_cid").and_then(|c| c.as_str()).ok_or_else(|| reason(no, "no piece_cid".into()))?;
            let size = match record.get("piece_size") {
                None | Some(serde_json::Value::Null) => None,
                Some(s) => Some(s.as_u64().ok_or_else(|| reason(no, format!("piece_size {s} is not a byte count")))?),
            };
            pieces.push(parse_piece(cid, size).map_err(|e| line_err(no, e))?);
        }
    } else if first.contains(',') {
        let header =
            crate::shipment::export::csv_fields(first).ok_or_else(|| reason(first_no, "unterminated quote".into()))?;
        let col = |name: &str| header.iter().position(|h| h.trim() == name);
        let piece_col =
            col("piece_cid").ok_or_else(|| reason(first_no, "a CSV header without a piece_cid column".into()))?;
        let size_col = col("piece_size");
        for &(no, l) in &lines[1..] {
            let f = crate::shipment::export::csv_fields(l).ok_or_else(|| reason(no, "unterminated quote".into()))?;
            if f.len() != header.len() {
                return Err(reason(no, format!("{} fields, the header has {}", f.len(), header.len())));
            }
            let size = match size_col.map(|c| f[c].trim()).filter(|s| !s.is_empty()) {
                Some(s) => {
                    Some(s.parse::<u64>().map_err(|_| reason(no, format!("piece_size {s:?} is not a byte count")))?)
                }
                None => None,
            };
            pieces.push(parse_piece(&f[piece_col], size).map_err(|e| line_err(no, e))?);
        }
    } else {
        for &(no, l) in &lines {
            pieces.push(parse_piece_arg(l).map_err(|e| line_err(no, e))?);
        }
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(byte: u8, size: u64) -> SectorPiece {
        SectorPiece { root: [byte; 32], padded_size: size }
    }

    fn names(sizes: &[u64]) -> Vec<(String, u64)> {
        sizes.iter().enumerate().map(|(i, &s)| (format!("p{i}"), s)).collect()
    }

    #[test]
    fn zero_slots_are_aligned_smallest_first() {
        let mut out = Vec::new();
        zero_slots(128, 1024, &mut out);
        let sizes: Vec<u64> = out.iter().map(Slot::size).collect();
        assert_eq!(sizes, [128, 256, 512]);
        assert!(out.iter().all(|s| s.offset() % s.size() == 0));
        out.clear();
        zero_slots(0, 4096, &mut out);
        assert_eq!(out, [Slot::Zero { offset: 0, size: 4096 }]);
    }

    #[test]
    fn layout_aligns_each_piece_to_its_size() {
        let slots = layout(&names(&[128, 512, 256]), 2048).unwrap();
        assert_eq!(
            slots,
            [
                Slot::Piece { index: 0, offset: 0, size: 128 },
                Slot::Zero { offset: 128, size: 128 },
                Slot::Zero { offset: 256, size: 256 },
                Slot::Piece { index: 1, offset: 512, size: 512 },
                Slot::Piece { index: 2, offset: 1024, size: 256 },
                Slot::Zero { offset: 1280, size: 256 },
                Slot::Zero { offset: 1536, size: 512 },
            ]
        );
    }

    #[test]
    fn pieces_that_fit_only_in_another_order_are_refused_with_the_excess() {
        // 128 + 512 + 256 = 896 ≤ 1024, but aligned the 256 ends at 1280.
        let e = layout(&names(&[128, 512, 256]), 1024).unwrap_err();
        assert_eq!(e, CommdError::DoesNotFit { number: 3, piece: "p2".into(), end: 1280, excess: 256, sector: 1024 });
        assert!(layout(&names(&[512, 256, 128]), 1024).is_ok());
    }

    #[test]
    fn sizes_are_checked() {
        assert_eq!(check_sector_size(1000), Err(CommdError::SectorSize(1000)));
        assert_eq!(check_sector_size(64), Err(CommdError::SectorSize(64)));
        assert!(check_sector_size(128).is_ok());
        assert!(matches!(layout(&names(&[64]), 2048), Err(CommdError::PieceSize { size: 64, .. })));
        assert!(matches!(layout(&names(&[384]), 2048), Err(CommdError::PieceSize { size: 384, .. })));
        assert!(matches!(
            layout(&names(&[1016]), 2048),
            Err(CommdError::UnpaddedSize { size: 1016, padded: 1024, .. })
        ));
        assert!(matches!(layout(&names(&[4096]), 2048), Err(CommdError::PieceLargerThanSector { number: 1, .. })));
    }

    #[test]
    fn commd_equals_aggregate_of_the_full_layout() {
        let pieces = [piece(1, 128), piece(2, 512), piece(3, 256), piece(4, 1024)];
        let sector = 8192;
        let named: Vec<(String, u64)> = pieces.iter().map(|p| (String::new(), p.padded_size)).collect();
        let full: Vec<SectorPiece> = layout(&named, sector)
            .unwrap()
            .into_iter()
            .map(|s| match s {
                Slot::Piece { index, .. } => pieces[index],
                Slot::Zero { size, .. } => SectorPiece::zero(size),
            })
            .collect();
        let via_layout = aggregate(&full).unwrap().unwrap();
        assert_eq!(via_layout.padded_size, sector);
        assert_eq!(commd(&pieces, sector).unwrap(), via_layout);
    }

    #[test]
    fn empty_sector_is_the_zero_root() {
        assert_eq!(commd(&[], 2048).unwrap(), SectorPiece::zero(2048));
        assert_eq!(aggregate(&[]).unwrap(), None);
    }

    #[test]
    fn piece_cids_v1_need_a_size_and_v2_carry_theirs() {
        let info = crate::commp::commp_of_bytes(&[7u8; 300]).unwrap();
        let (v1, v2) = (info.cid_v1().to_string(), info.cid_v2().to_string());
        let want = SectorPiece::from(&info);
        assert_eq!(parse_piece(&v1, Some(512)).unwrap(), want);
        assert_eq!(parse_piece(&v2, None).unwrap(), want);
        assert_eq!(parse_piece(&v2, Some(512)).unwrap(), want);
        assert_eq!(parse_piece_arg(&format!("{v1}:512")).unwrap(), want);
        assert_eq!(parse_piece_arg(&format!("{v1}:512B")).unwrap(), want);
        assert_eq!(parse_piece(&v1, None), Err(CommdError::MissingSize { value: v1.clone() }));
        assert_eq!(
            parse_piece(&v2, Some(1024)),
            Err(CommdError::SizeMismatch { value: v2.clone(), given: 1024, size: 512 })
        );
        assert!(matches!(parse_piece_arg(&format!("{v1}:lots")), Err(CommdError::BadSize { .. })));
        // A CID of another kind (a UnixFS root), and not a CID at all.
        let other = "bafybeicydk4fcfvi6sg7yk5quohn263pbqxndjqv2owybmxv2befswus4i";
        assert!(matches!(parse_piece(other, Some(512)), Err(CommdError::NotPieceCid { .. })));
        assert!(matches!(parse_piece("nope", Some(512)), Err(CommdError::NotCid { .. })));
    }

    #[test]
    fn piece_lists_in_every_form() {
        let a = crate::commp::commp_of_bytes(&[1u8; 300]).unwrap();
        let b = crate::commp::commp_of_bytes(&[2u8; 100]).unwrap();
        let want = vec![SectorPiece::from(&a), SectorPiece::from(&b)];
        let lines = format!("# pieces\n{}:512\n\n{}\n", a.cid_v1(), b.cid_v2());
        assert_eq!(parse_piece_list(&lines).unwrap(), want);
        let csv = format!(
            "piece_cid,piece_size,piece_size_unpadded,car_size,payload_cid,car_file,batch\n{},512,508,300,x,\"a,b.car\",b0\n{},128,127,100,y,c.car,b1\n",
            a.cid_v1(),
            b.cid_v1()
        );
        assert_eq!(parse_piece_list(&csv).unwrap(), want);
        let shipment = format!(
            "{{\"format\":\"carload-shipment\",\"version\":2,\"sector_size\":34359738368}}\n{{\"id\":\"b0\",\"result\":{{\"piece_cid\":\"{}\",\"piece_size\":512}}}}\n{{\"piece_size\":128,\"piece_cid\":\"{}\"}}\n",
            a.cid_v1(),
            b.cid_v1()
        );
        assert_eq!(parse_piece_list(&shipment).unwrap(), want);
        let unbuilt = "{\"format\":\"carload-shipment\"}\n{\"id\":\"b7\",\"files\":[]}\n";
        assert_eq!(
            parse_piece_list(unbuilt),
            Err(CommdError::Line { line: 2, reason: "batch b7 is not built (no result, so no piece)".into() })
        );
        let bad = format!("{}:512\n{}\n", a.cid_v1(), a.cid_v1());
        assert!(matches!(parse_piece_list(&bad), Err(CommdError::Line { line: 2, .. })));
        assert_eq!(parse_piece_list("\n# nothing\n").unwrap(), vec![]);
    }
}
