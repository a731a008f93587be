//! Result output: JSON, human text and offline-deal command templates.

use super::args::DealArgs;
use carload::commp::PieceInfo;
use carload::human::ibytes;
use carload::shipment::export::{self, DealPiece};
use cid::Cid;
use serde::Serialize;
use std::time::Duration;

/// `prepare --json`: Powergate's keys first, then carload's additions.
#[derive(Serialize)]
pub struct PrepareJson {
    /// Root CID of the DAG.
    pub payload_cid: String,
    /// Padded piece size (Powergate's `piece_size`).
    pub piece_size: u64,
    /// Piece CID v1.
    pub piece_cid: String,
    /// Unpadded piece size (what Lotus `--manual-piece-size` takes).
    pub piece_size_unpadded: u64,
    /// Bytes of the CAR.
    pub car_size: u64,
    /// Piece CID v2 (FRC-0069).
    pub piece_cid_v2: String,
    /// Batch files in walk order (`--aggregate` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<FileJson>>,
}

/// One file of a batch in `--json` output. The key `Cid` keeps Powergate's capital C (its struct
/// tag was misspelled), so existing scripts keep working.
#[derive(Serialize)]
pub struct FileJson {
    /// Walk path.
    pub name: String,
    /// Root CID of the file's DAG.
    #[serde(rename = "Cid")]
    pub cid: String,
}

impl FileJson {
    /// The `files` list for (walk name, root) pairs.
    pub fn list<'a>(files: impl IntoIterator<Item = (&'a str, Cid)>) -> Vec<FileJson> {
        files.into_iter().map(|(name, cid)| FileJson { name: name.to_string(), cid: cid.to_string() }).collect()
    }
}

impl PrepareJson {
    /// Builds the record.
    pub fn new(root: &Cid, car_size: u64, piece: &PieceInfo) -> Self {
        PrepareJson {
            payload_cid: root.to_string(),
            piece_size: piece.padded_size,
            piece_cid: piece.cid_v1().to_string(),
            piece_size_unpadded: piece.unpadded_size,
            car_size,
            piece_cid_v2: piece.cid_v2().to_string(),
            files: None,
        }
    }
}

/// `commp --json`.
#[derive(Serialize)]
pub struct CommpJson {
    /// Padded piece size.
    pub piece_size: u64,
    /// Piece CID v1.
    pub piece_cid: String,
    /// Unpadded piece size.
    pub piece_size_unpadded: u64,
    /// Bytes hashed.
    pub payload_size: u64,
    /// Piece CID v2 (FRC-0069).
    pub piece_cid_v2: String,
}

impl CommpJson {
    /// Builds the record.
    pub fn new(piece: &PieceInfo) -> Self {
        CommpJson {
            piece_size: piece.padded_size,
            piece_cid: piece.cid_v1().to_string(),
            piece_size_unpadded: piece.unpadded_size,
            payload_size: piece.payload_size,
            piece_cid_v2: piece.cid_v2().to_string(),
        }
    }
}

fn deal_piece<'a>(root: &'a str, piece_cid: &'a str, piece: &PieceInfo) -> DealPiece<'a> {
    DealPiece { payload_cid: root, piece_cid, piece_size: piece.padded_size, piece_size_unpadded: piece.unpadded_size }
}

/// Throughput text such as `812 MB/s` ([`carload::human::rate`]).
pub fn rate(bytes: u64, elapsed: Duration) -> String {
    carload::human::rate(bytes as f64 / elapsed.as_secs_f64().max(1e-9))
}

/// The human summary of a prepare run.
pub fn prepare_human(
    root: &Cid,
    car_size: u64,
    piece: &PieceInfo,
    input_bytes: u64,
    elapsed: Duration,
    deal: &DealArgs,
) -> String {
    let (root_s, piece_cid) = (root.to_string(), piece.cid_v1().to_string());
    let p = deal.params();
    let dp = deal_piece(&root_s, &piece_cid, piece);
    format!(
        "Payload CID:   {root}\n\
         CAR size:      {car_size} bytes ({})\n\
         Piece size:    {} bytes padded ({}), {} bytes unpadded ({})\n\
         Piece CID:     {}\n\
         Piece CID v2:  {}\n\
         Time:          {:.2} s ({} of input)\n\
         \n\
         Offline-deal commands:\n\
         \x20 Boost:           {}\n\
         \x20 Curio:           {}\n\
         \x20 Lotus (legacy):  {}\n",
        ibytes(car_size),
        piece.padded_size,
        ibytes(piece.padded_size),
        piece.unpadded_size,
        ibytes(piece.unpadded_size),
        piece.cid_v1(),
        piece.cid_v2(),
        elapsed.as_secs_f64(),
        rate(input_bytes, elapsed),
        export::boost_command(&p, &dp),
        export::curio_command(&p, &dp),
        export::lotus_command(&p, &dp),
    )
}
