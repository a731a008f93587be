//! Deals from a shipment: the built batches (each a CAR with its piece) packed into as few
//! FRC-0058 deals of one padded size as placement allows, the plan written as `deals.jsonl`,
//! read back without trusting it, and each deal written and judged.
//!
//! * [`plan`]: best fit, decreasing. Pieces are taken largest first (ties by batch ID, so the
//!   plan depends only on the set of pieces) and each goes into the open deal it leaves least
//!   room in, else a new one. Placed largest first, every piece's offset is already a multiple
//!   of its size (all sizes are powers of two), so a deal has no gaps: its pieces end at the sum
//!   of their sizes, and a deal holds pieces while that sum stays at or below the start of its
//!   index area ([`layout::index_start`]) and their count within its entries. Each deal's
//!   piece CID is the root of its aggregate, computed from the pieces alone.
//! * [`write_plan`] / [`parse_plan`]: `deals.jsonl`, a header line then one line per deal.
//!   Nothing read is trusted: every field is checked, the placement and each deal's piece CID
//!   recomputed from its segments; the first fault is one error naming the line and the field.
//! * [`write_deal`]: a deal written from its CARs, each re-hashed while copied and compared with
//!   the plan; [`judge_deal`]: whether a deal is built (its result sidecar is the plan's, its
//!   file has the deal's length).

use super::entry::Entry;
use super::layout;
use super::tree::Aggregate;
use super::SegmentError;
use crate::commp::{self, PieceInfo};
use crate::event::Observer;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// `format` of a deals file's header.
pub const FORMAT: &str = "carload-deals";
/// Version of the deals file format.
pub const VERSION: u64 = 1;

/// A built batch as the plan takes it: its piece (v1 root, padded size) and its CAR's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Batch ID.
    pub batch: String,
    /// commP root (the batch's piece CID v1 digest).
    pub root: [u8; 32],
    /// Padded piece size (the batch's, at least its CAR's own piece).
    pub size: u64,
    /// CAR bytes.
    pub car_size: u64,
}

/// A batch placed in a deal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Batch ID.
    pub batch: String,
    /// commP root.
    pub root: [u8; 32],
    /// Padded offset in the deal.
    pub offset: u64,
    /// Padded size.
    pub size: u64,
    /// CAR bytes.
    pub car_size: u64,
}

impl Segment {
    /// The segment's piece (payload: its CAR).
    pub fn piece(&self) -> PieceInfo {
        PieceInfo {
            root: self.root,
            payload_size: self.car_size,
            padded_size: self.size,
            unpadded_size: commp::unpadded_piece_size(self.size),
        }
    }

    fn entry(&self) -> Entry {
        Entry { root: self.root, offset: self.offset, size: self.size }
    }
}

/// One deal of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal {
    /// `deal-0001`, `deal-0002`, …
    pub id: String,
    /// The deal piece: the aggregate's root, the deal's padded size.
    pub piece: PieceInfo,
    /// Its segments in placement order.
    pub segments: Vec<Segment>,
}

impl Deal {
    /// Padded bytes of its segments.
    pub fn used(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// Bytes of its CARs (what writing it reads, copies and hashes).
    pub fn car_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.car_size).sum()
    }

    /// Share of the deal's padded size its segments take (0 to 1).
    pub fn fill(&self) -> f64 {
        self.used() as f64 / self.piece.padded_size as f64
    }

    /// The deal's aggregate (its index) recomputed from its segments.
    pub fn aggregate(&self) -> Result<Aggregate, SegmentError> {
        Aggregate::new(self.piece.padded_size, self.segments.iter().map(Segment::entry).collect())
    }
}

/// Errors of planning, reading and writing deals.
#[derive(Debug, thiserror::Error)]
pub enum DealsError {
    /// A placement or deal size fault.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// A batch's piece cannot go in a deal of this size at all.
    #[error("batch {batch}: its piece of {} cannot go in a deal of {} (pieces may take {} of it; use a larger --deal-size)",
            crate::human::ibytes(*size), crate::human::ibytes(*deal), crate::human::ibytes(layout::index_start(*deal)))]
    TooLarge {
        /// Batch ID.
        batch: String,
        /// Its padded piece size.
        size: u64,
        /// The deal size.
        deal: u64,
    },
    /// A batch is given twice.
    #[error("batch {0} is given twice")]
    Duplicate(String),
    /// A field of a deals file is wrong.
    #[error("line {line}: {field}: {why}")]
    Line {
        /// Line number (1-based).
        line: usize,
        /// The field (`segments[2].offset`), or `record` for the line as a whole.
        field: String,
        /// Why.
        why: String,
    },
    /// A CAR does not have the size the plan records.
    #[error("batch {batch}: {} is {found} bytes, the deals plan records {expected} (changed since planning; plan the deals again)", path.display())]
    CarSize {
        /// Batch ID.
        batch: String,
        /// The CAR.
        path: PathBuf,
        /// Bytes in the plan.
        expected: u64,
        /// Bytes found.
        found: u64,
    },
    /// A CAR's bytes do not hash to the piece CID the plan records.
    #[error("batch {batch}: {} hashes to piece CID {found}, the deals plan records {expected} (changed since planning; the deal is not written)", path.display())]
    PieceMismatch {
        /// Batch ID.
        batch: String,
        /// The CAR.
        path: PathBuf,
        /// Piece CID of its bytes.
        found: String,
        /// Piece CID in the plan.
        expected: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// Where a shipment's deals file goes by default, and where the workstation looks for it:
/// beside the shipment file, `s.jsonl` → `s.deals.jsonl`.
pub fn default_path(shipment: &Path) -> PathBuf {
    let name = shipment.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.strip_suffix(".jsonl").unwrap_or(&name);
    shipment.with_file_name(format!("{stem}.deals.jsonl"))
}

/// The ID of the `n`th deal (from 1): `deal-0001`.
pub fn deal_id(n: usize) -> String {
    format!("deal-{n:04}")
}

/// Plans `pieces` into deals of padded size `deal_size`: best fit, decreasing (see the module
/// documentation). Every piece goes in exactly one deal; none (an empty plan) for no pieces.
pub fn plan(pieces: &[Piece], deal_size: u64) -> Result<Vec<Deal>, DealsError> {
    layout::check_deal_size(deal_size)?;
    let room = layout::index_start(deal_size);
    let entries = layout::max_entries(deal_size);
    let mut seen = HashSet::new();
    for p in pieces {
        if !seen.insert(p.batch.as_str()) {
            return Err(DealsError::Duplicate(p.batch.clone()));
        }
        if !p.size.is_power_of_two() || p.size < commp::padded_piece_size(p.car_size) {
            return Err(SegmentError::PieceSize { size: p.size, deal: deal_size }.into());
        }
        if p.size > room {
            return Err(DealsError::TooLarge { batch: p.batch.clone(), size: p.size, deal: deal_size });
        }
    }
    let mut order: Vec<&Piece> = pieces.iter().collect();
    order.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.batch.cmp(&b.batch)));
    // Open deals by (room left, position): the best fit is the first with room enough.
    let mut open: BTreeMap<(u64, usize), ()> = BTreeMap::new();
    let mut bins: Vec<(u64, Vec<&Piece>)> = Vec::new();
    for p in order {
        let found = open.range((p.size, 0)..).next().map(|(&k, _)| k);
        let at = match found {
            Some(k) => {
                open.remove(&k);
                k.1
            }
            None => {
                bins.push((0, Vec::new()));
                bins.len() - 1
            }
        };
        let (end, members) = &mut bins[at];
        *end += p.size;
        members.push(p);
        if (members.len() as u64) < entries {
            open.insert((room - *end, at), ());
        }
    }
    bins.into_iter()
        .enumerate()
        .map(|(n, (_, members))| {
            let sizes: Vec<u64> = members.iter().map(|p| p.size).collect();
            let offsets = layout::place(&sizes, deal_size)?;
            let segments = members
                .iter()
                .zip(offsets)
                .map(|(p, offset)| Segment {
                    batch: p.batch.clone(),
                    root: p.root,
                    offset,
                    size: p.size,
                    car_size: p.car_size,
                })
                .collect();
            deal_of(deal_id(n + 1), deal_size, segments)
        })
        .collect()
}

/// A deal of `segments` (placed), its piece computed from their aggregate.
fn deal_of(id: String, deal_size: u64, segments: Vec<Segment>) -> Result<Deal, DealsError> {
    let agg = Aggregate::new(deal_size, segments.iter().map(Segment::entry).collect())?;
    Ok(Deal { id, piece: agg.piece(), segments })
}

/// The header line of `deals.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u64,
    /// The shipment's ID (`shipment::drive::shipment_id`): a deals file of another plan is
    /// refused by what reads it with the shipment.
    pub shipment: String,
    /// Padded deal size.
    pub deal_size: u64,
    /// The CAR folder (`--out`) as given to `segment plan`.
    pub cars: String,
    /// Number of deal lines.
    pub deals: u64,
}

/// A deals file: its header and its deals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealsPlan {
    /// The header.
    pub header: Header,
    /// The deals, in order.
    pub deals: Vec<Deal>,
}

/// One segment as a deal line holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRecord {
    /// Batch ID.
    pub batch: String,
    /// Piece CID v1.
    pub piece_cid: String,
    /// Padded offset in the deal.
    pub offset: u64,
    /// Padded size.
    pub size: u64,
    /// CAR bytes.
    pub car_size: u64,
}

/// One deal line (also the result sidecar `<deal>.deal.json` [`write_deal`]'s caller writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DealRecord {
    /// Deal ID.
    pub id: String,
    /// The deal's piece CID v1.
    pub piece_cid: String,
    /// The deal's piece CID v2 (the whole deal as payload: padding 0).
    pub piece_cid_v2: String,
    /// Padded deal size.
    pub piece_size: u64,
    /// Its segments in placement order.
    pub segments: Vec<SegmentRecord>,
}

impl DealRecord {
    /// The record of `d`.
    pub fn of(d: &Deal) -> Self {
        DealRecord {
            id: d.id.clone(),
            piece_cid: d.piece.cid_v1().to_string(),
            piece_cid_v2: d.piece.cid_v2().to_string(),
            piece_size: d.piece.padded_size,
            segments: d
                .segments
                .iter()
                .map(|s| SegmentRecord {
                    batch: s.batch.clone(),
                    piece_cid: s.piece().cid_v1().to_string(),
                    offset: s.offset,
                    size: s.size,
                    car_size: s.car_size,
                })
                .collect(),
        }
    }
}

/// `deals.jsonl`: the header, then one line per deal.
pub fn write_plan(w: &mut dyn io::Write, plan: &DealsPlan) -> io::Result<()> {
    serde_json::to_writer(&mut *w, &plan.header)?;
    w.write_all(b"\n")?;
    for d in &plan.deals {
        serde_json::to_writer(&mut *w, &DealRecord::of(d))?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

fn line_err(line: usize, field: impl Into<String>, why: impl Into<String>) -> DealsError {
    DealsError::Line { line, field: field.into(), why: why.into() }
}

/// Reads `deals.jsonl` strictly: UTF-8, every line one JSON record ending in `\n` (no blank
/// lines), no unknown, missing or repeated field, the header's format, version, shipment ID
/// (64 hex digits), deal size and count, deal IDs in sequence, every batch once, each segment's
/// piece CID (v1), size (a power of two holding its CAR's piece, within the deal) and offset
/// (where placement in this order puts it), and each deal's piece CIDs recomputed from its
/// segments. The first fault is the error, naming its line and field.
pub fn parse_plan(bytes: &[u8]) -> Result<DealsPlan, DealsError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        line_err(line, "record", "not UTF-8")
    })?;
    if text.is_empty() {
        return Err(line_err(1, "record", "empty file: no header"));
    }
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.pop() != Some("") {
        return Err(line_err(lines.len(), "record", "the last line does not end in a newline (truncated?)"));
    }
    if let Some(n) = lines.iter().position(|l| l.trim().is_empty()) {
        return Err(line_err(n + 1, "record", "blank line"));
    }
    let header: Header = record(lines[0], 1)?;
    if header.format != FORMAT {
        return Err(line_err(1, "format", format!("{:?} is not {FORMAT:?}", header.format)));
    }
    if header.version != VERSION {
        return Err(line_err(1, "version", format!("{} (this carload reads version {VERSION})", header.version)));
    }
    if header.shipment.len() != 64 || !header.shipment.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(line_err(1, "shipment", "not a shipment ID (64 lowercase hex digits)"));
    }
    let deal_size = header.deal_size;
    layout::check_deal_size(deal_size).map_err(|e| line_err(1, "deal_size", e.to_string()))?;
    if header.cars.is_empty() || header.cars.chars().any(char::is_control) {
        return Err(line_err(1, "cars", "empty, or holds control characters"));
    }
    if header.deals != lines.len() as u64 - 1 {
        return Err(line_err(1, "deals", format!("{} deals, the file holds {}", header.deals, lines.len() - 1)));
    }
    let mut batches = HashSet::new();
    let mut deals = Vec::with_capacity(lines.len() - 1);
    for (n, text) in lines.iter().enumerate().skip(1) {
        let line = n + 1;
        let r: DealRecord = record(text, line)?;
        deals.push(check_record(&r, deal_size, line, &mut batches, n)?);
    }
    Ok(DealsPlan { header, deals })
}

fn record<T: serde::de::DeserializeOwned>(text: &str, line: usize) -> Result<T, DealsError> {
    if text.trim().is_empty() {
        return Err(line_err(line, "record", "blank line"));
    }
    serde_json::from_str(text).map_err(|e| {
        // serde_json's message names the field; drop its "at line 1 column N".
        let msg = e.to_string();
        let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m).to_string();
        line_err(line, "record", msg)
    })
}

/// Checks deal record `r` (the `n`th deal, on line `line`) against a deal of `deal_size`,
/// recording its batches in `batches`; the deal it describes.
fn check_record(
    r: &DealRecord,
    deal_size: u64,
    line: usize,
    batches: &mut HashSet<String>,
    n: usize,
) -> Result<Deal, DealsError> {
    if r.id != deal_id(n) {
        return Err(line_err(line, "id", format!("{:?} is not {:?} (deals are numbered in order)", r.id, deal_id(n))));
    }
    if r.piece_size != deal_size {
        return Err(line_err(line, "piece_size", format!("{} is not the deal size {deal_size}", r.piece_size)));
    }
    if r.segments.is_empty() {
        return Err(line_err(line, "segments", "no segments"));
    }
    let mut segments = Vec::with_capacity(r.segments.len());
    for (i, s) in r.segments.iter().enumerate() {
        let field = |f: &str| format!("segments[{i}].{f}");
        if s.batch.is_empty() || s.batch.len() > 255 || s.batch.chars().any(|c| c.is_control() || c == '/') {
            return Err(line_err(line, field("batch"), "not a batch ID"));
        }
        if !batches.insert(s.batch.clone()) {
            return Err(line_err(line, field("batch"), format!("batch {} is in an earlier segment", s.batch)));
        }
        let p = super::parse_piece_cid(&s.piece_cid).map_err(|e| line_err(line, field("piece_cid"), e))?;
        if p.size.is_some() || s.piece_cid.trim() != s.piece_cid {
            return Err(line_err(line, field("piece_cid"), "not a piece CID v1 (baga…)"));
        }
        if s.car_size == 0 || commp::check_payload_size(s.car_size).is_err() {
            return Err(line_err(line, field("car_size"), format!("{} is not the size of a CAR", s.car_size)));
        }
        let natural = commp::padded_piece_size(s.car_size);
        if !s.size.is_power_of_two() || s.size < natural || s.size > layout::index_start(deal_size) {
            return Err(line_err(
                line,
                field("size"),
                format!("{} is not a padded piece size of at least {natural} that fits the deal", s.size),
            ));
        }
        segments.push(Segment {
            batch: s.batch.clone(),
            root: p.root,
            offset: s.offset,
            size: s.size,
            car_size: s.car_size,
        });
    }
    let sizes: Vec<u64> = segments.iter().map(|s| s.size).collect();
    let offsets = layout::place(&sizes, deal_size).map_err(|e| line_err(line, "segments", e.to_string()))?;
    for (i, (s, want)) in segments.iter().zip(&offsets).enumerate() {
        if s.offset != *want {
            return Err(line_err(
                line,
                format!("segments[{i}].offset"),
                format!("{} is not {want}, where placement in this order puts it", s.offset),
            ));
        }
    }
    let deal = deal_of(r.id.clone(), deal_size, segments).map_err(|e| line_err(line, "segments", e.to_string()))?;
    let (v1, v2) = (deal.piece.cid_v1().to_string(), deal.piece.cid_v2().to_string());
    if r.piece_cid != v1 {
        return Err(line_err(line, "piece_cid", format!("{} is not {v1}, the root of its segments", r.piece_cid)));
    }
    if r.piece_cid_v2 != v2 {
        return Err(line_err(line, "piece_cid_v2", format!("{} is not {v2}", r.piece_cid_v2)));
    }
    Ok(deal)
}

/// Where deal `id` is written in `dir`: `<id>.deal`.
pub fn deal_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.deal"))
}

/// Its result sidecar: `<id>.deal.json` (the deal's record, written once the deal is in place).
pub fn result_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.deal.json"))
}

/// What an output folder holds for a deal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// Its sidecar is the plan's deal and the file has the deal's length.
    Built,
    /// No sidecar.
    Missing,
    /// Outputs that are not this deal as planned (why).
    Other(String),
}

/// The bytes of deal `d`'s result sidecar: its record as a deal line, and a newline.
pub fn result_bytes(d: &Deal) -> Vec<u8> {
    let mut b = serde_json::to_vec(&DealRecord::of(d)).expect("records serialize");
    b.push(b'\n');
    b
}

/// Judges deal `d` in `dir` by what is cheap to check: the sidecar byte for byte the plan's
/// record ([`result_bytes`]; no more than that is read), and `<id>.deal` a regular file of
/// `D·127/128` bytes. `segment verify` checks the deal's bytes. An I/O error other than "not
/// found" is an `Err`.
pub fn judge_deal(dir: &Path, d: &Deal) -> io::Result<Judged> {
    use std::io::Read;
    let sidecar = result_path(dir, &d.id);
    let want = result_bytes(d);
    let mut text = Vec::with_capacity(want.len() + 1);
    match File::open(&sidecar) {
        Ok(f) => f.take(want.len() as u64 + 1).read_to_end(&mut text)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Judged::Missing),
        Err(e) => return Err(e),
    };
    if text != want {
        let name = sidecar.file_name().unwrap_or_default().to_string_lossy().into_owned();
        return Ok(Judged::Other(format!("{name} is not the result of the plan's {}", d.id)));
    }
    let path = deal_path(dir, &d.id);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_file() && m.len() == layout::unpadded(d.piece.padded_size) => Ok(Judged::Built),
        Ok(m) => Ok(Judged::Other(format!(
            "{}.deal is {} bytes, not {}",
            d.id,
            m.len(),
            layout::unpadded(d.piece.padded_size)
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Judged::Other(format!("{}.deal is missing", d.id))),
        Err(e) => Err(e),
    }
}

/// Removes temporaries of deal `id` in `dir` (`.<id>.deal.*.partial`, `.<id>.deal.json.*.partial`)
/// left by a builder that died; call it holding the deal's lock. Returns how many.
pub fn remove_partials(dir: &Path, id: &str) -> io::Result<usize> {
    let prefix = format!(".{id}.deal.");
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".partial") {
            std::fs::remove_file(e.path())?;
            n += 1;
        }
    }
    Ok(n)
}

/// Writes deal `d` into `out` (`path` names it) from the CARs `cars/<batch>.car`: each CAR's
/// size checked against the plan before anything is read, each re-hashed while it is copied
/// (never taken on the plan's word), and its piece compared with the plan's. The caller
/// commits `out` only on success. Events: `FileStarted`, `BytesRead`.
pub fn write_deal(
    d: &Deal,
    cars: &Path,
    out: super::DealOut<'_>,
    observer: &mut dyn Observer,
) -> Result<(), DealsError> {
    let inputs: Vec<PathBuf> = d.segments.iter().map(|s| crate::shipment::build::outputs(cars, &s.batch).car).collect();
    for (s, path) in d.segments.iter().zip(&inputs) {
        let len = std::fs::metadata(path).map_err(|source| DealsError::Io { path: path.clone(), source })?.len();
        if len != s.car_size {
            return Err(DealsError::CarSize {
                batch: s.batch.clone(),
                path: path.clone(),
                expected: s.car_size,
                found: len,
            });
        }
    }
    let sizes: Vec<u64> = d.segments.iter().map(|s| s.size).collect();
    let packed = super::pack_sized(&inputs, &sizes, d.piece.padded_size, Some(out), observer)?;
    for ((s, p), path) in d.segments.iter().zip(&packed.pieces).zip(&inputs) {
        if p.root != s.root {
            return Err(DealsError::PieceMismatch {
                batch: s.batch.clone(),
                path: path.clone(),
                found: p.cid_v1().to_string(),
                expected: s.piece().cid_v1().to_string(),
            });
        }
    }
    // Every segment is the plan's, so the deal is too; checked all the same.
    if packed.deal.root != d.piece.root {
        return Err(DealsError::Segment(SegmentError::SegmentMismatch {
            entry: 0,
            offset: 0,
            found: packed.deal.cid_v1().to_string(),
            expected: d.piece.cid_v1().to_string(),
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(batch: &str, size: u64) -> Piece {
        let mut root = [0u8; 32];
        root[..batch.len().min(31)].copy_from_slice(&batch.as_bytes()[..batch.len().min(31)]);
        Piece { batch: batch.into(), root, size, car_size: size / 2 }
    }

    #[test]
    fn pieces_go_largest_first_into_the_tightest_deal() {
        // A 1 MiB deal: index 8 entries (512 B), pieces may take 1 MiB − 512 B.
        let d = 1 << 20;
        let pieces = [
            piece("a", 256 << 10),
            piece("b", 512 << 10),
            piece("c", 256 << 10),
            piece("d", 512 << 10),
            piece("e", 128),
        ];
        let deals = plan(&pieces, d).unwrap();
        let ids: Vec<Vec<&str>> = deals.iter().map(|d| d.segments.iter().map(|s| s.batch.as_str()).collect()).collect();
        // b opens deal 1; d does not fit its 512 KiB − 512 B left and opens deal 2; a ties and
        // goes to the first; c fits only deal 2; e ties again.
        assert_eq!(ids, [vec!["b", "a", "e"], vec!["d", "c"]]);
        assert_eq!(deals[0].segments.iter().map(|s| s.offset).collect::<Vec<_>>(), [0, 512 << 10, 768 << 10]);
        assert_eq!(deals[1].id, "deal-0002");
        for deal in &deals {
            assert_eq!(deal.piece, deal.aggregate().unwrap().piece());
        }
    }

    #[test]
    fn a_piece_no_deal_holds_is_named() {
        let err = plan(&[piece("big", 1 << 20)], 1 << 20).unwrap_err();
        assert!(matches!(&err, DealsError::TooLarge { batch, .. } if batch == "big"), "{err}");
        assert!(matches!(plan(&[piece("a", 128), piece("a", 256)], 4096), Err(DealsError::Duplicate(_))));
        assert!(plan(&[], 4096).unwrap().is_empty());
    }
}
