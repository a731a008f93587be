//! `carload commd PIECE_CID[:SIZE]... --sector SIZE`: the unsealed sector CID (CommD) of
//! pieces placed in a sector as Lotus places them ([`carload::commp::commd`]).

use anyhow::{Context, Result};
use carload::commp::commd::{aggregate, commd, layout, parse_piece_arg, parse_piece_list, SectorPiece, Slot};
use carload::human::{ibytes, plural};
use clap::Args;
use serde::Serialize;
use std::io::{Read, Write};
use std::path::PathBuf;

/// `carload commd`.
#[derive(Args, Debug)]
pub struct CommdArgs {
    /// The pieces in sector order: a piece CID v1 with its padded size (`baga…:34359738368`,
    /// `baga…:32GiB`) or a piece CID v2 (`bafkzcib…`, which carries its size). None: the empty
    /// sector.
    #[arg(value_name = "PIECE_CID[:SIZE]")]
    pub pieces: Vec<String>,
    /// Sector size (padded): 32GiB, 64GiB, or any power of two from 128 bytes.
    #[arg(long, value_name = "SIZE", value_parser = crate::edge::options::size_arg)]
    pub sector: u64,
    /// Read the pieces, in order, from FILE (`-`: standard input): one `CID[:SIZE]` a line, the
    /// CSV of `export --format csv`, the shipment JSON Lines of `export --format shipment`, or
    /// `commp --json` lines.
    #[arg(long = "pieces", value_name = "FILE", conflicts_with = "pieces")]
    pub pieces_file: Option<PathBuf>,
    /// Print one JSON object: commd, sector_size, pieces, layout (fillers included),
    /// aggregate_piece_cid and aggregate_piece_size.
    #[arg(long)]
    pub json: bool,
}

/// `commd --json`.
#[derive(Serialize)]
struct CommdJson {
    /// CommD (a piece CID v1).
    commd: String,
    /// Sector size, padded bytes.
    sector_size: u64,
    /// The pieces in order, with their padded offsets.
    pieces: Vec<PieceJson>,
    /// Every stretch of the sector in order: the pieces and the zero pieces (fillers).
    layout: Vec<SlotJson>,
    /// Root of the smallest tree holding the pieces (go-commp-utils `GenerateUnsealedCID` on the
    /// pieces alone); `null` without pieces.
    aggregate_piece_cid: Option<String>,
    /// Its padded size.
    aggregate_piece_size: Option<u64>,
}

#[derive(Serialize)]
struct PieceJson {
    piece_cid: String,
    piece_size: u64,
    offset: u64,
}

#[derive(Serialize)]
struct SlotJson {
    offset: u64,
    size: u64,
    piece_cid: String,
    filler: bool,
}

/// Runs `carload commd`.
pub fn commd_cmd(a: CommdArgs) -> Result<()> {
    let pieces: Vec<SectorPiece> = match &a.pieces_file {
        Some(path) => {
            let stdin = path.as_os_str() == "-";
            let name = if stdin { "standard input".to_string() } else { path.display().to_string() };
            let mut text = String::new();
            if stdin {
                std::io::stdin().read_to_string(&mut text).with_context(|| name.clone())?;
            } else {
                text = std::fs::read_to_string(path).with_context(|| name.clone())?;
            }
            parse_piece_list(&text).with_context(|| name.clone())?
        }
        None => a.pieces.iter().map(|p| parse_piece_arg(p)).collect::<Result<_, _>>()?,
    };
    let cid = |p: &SectorPiece| p.cid_v1().to_string();
    let named: Vec<(String, u64)> = pieces.iter().map(|p| (cid(p), p.padded_size)).collect();
    let slots = layout(&named, a.sector)?;
    let sector = commd(&pieces, a.sector)?;
    let tree = aggregate(&pieces)?;
    let slot_cid = |s: &Slot| match *s {
        Slot::Piece { index, .. } => named[index].0.clone(),
        Slot::Zero { size, .. } => cid(&SectorPiece::zero(size)),
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        let json = CommdJson {
            commd: cid(&sector),
            sector_size: a.sector,
            pieces: slots
                .iter()
                .filter_map(|s| match *s {
                    Slot::Piece { index, offset, size } => {
                        Some(PieceJson { piece_cid: named[index].0.clone(), piece_size: size, offset })
                    }
                    Slot::Zero { .. } => None,
                })
                .collect(),
            layout: slots
                .iter()
                .map(|s| SlotJson {
                    offset: s.offset(),
                    size: s.size(),
                    piece_cid: slot_cid(s),
                    filler: matches!(s, Slot::Zero { .. }),
                })
                .collect(),
            aggregate_piece_cid: tree.as_ref().map(cid),
            aggregate_piece_size: tree.map(|t| t.padded_size),
        };
        writeln!(out, "{}", serde_json::to_string(&json)?)?;
        return Ok(());
    }
    let used: u64 = pieces.iter().map(|p| p.padded_size).sum();
    let fill = a.sector - used;
    let fillers = slots.iter().filter(|s| matches!(s, Slot::Zero { .. })).count();
    let mut text = format!("CommD:        {}\n", cid(&sector));
    text.push_str(&format!("Sector size:  {} bytes padded ({})\n", a.sector, ibytes(a.sector)));
    text.push_str(&format!("Pieces:       {}, {} bytes padded ({})\n", pieces.len(), used, ibytes(used)));
    text.push_str(&format!(
        "Zero fill:    {} bytes padded ({}), {} zero {}\n",
        fill,
        ibytes(fill),
        fillers,
        plural(fillers as u64, "piece", "pieces")
    ));
    text.push_str("\nLayout (padded offsets; zero pieces as Lotus fills the sector):\n");
    let width = a.sector.to_string().len();
    for s in &slots {
        let what = match *s {
            Slot::Piece { index, .. } => format!("piece {}", index + 1),
            Slot::Zero { .. } => "zero".to_string(),
        };
        text.push_str(&format!("  {:>width$}  {:>9}  {:<9}  {}\n", s.offset(), ibytes(s.size()), what, slot_cid(s)));
    }
    out.write_all(text.as_bytes())?;
    Ok(())
}
