//! `carload segment pack|list|proof|verify`: FRC-0058 data segments — client pieces (CARs)
//! aggregated into one deal piece with a data segment index, and their inclusion proofs
//! (`segment plan|build`, deals from a shipment, are `cli::deals`).

use super::progress::Progress;
use anyhow::{bail, Context, Result};
use carload::commp::PieceInfo;
use carload::human::ibytes;
use carload::output::{check_not_input, AtomicFile};
use carload::segment::{self, layout, Aggregate, Entry};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `carload segment`.
#[derive(Args, Debug)]
pub struct SegmentArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SegmentCommand,
}

/// `carload segment` subcommands.
#[derive(Subcommand, Debug)]
pub enum SegmentCommand {
    /// Pack CARs into one deal piece (FRC-0058): each at an offset aligned to its padded size,
    /// in the order given, then the data segment index; one read of each CAR.
    Pack(PackArgs),
    /// List the segments of a deal from its index (every entry's checksum and place checked).
    List(ListArgs),
    /// The inclusion proof (PoDSI) of one segment: its subtree proof and index proof.
    Proof(ProofArgs),
    /// Check a deal: every segment's commP against the index, every other byte zero, and the
    /// deal's piece CID (against --piece-cid if given).
    Verify(VerifyArgs),
    /// Pack the built batches of a shipment into as few deals of --deal-size as placement
    /// allows (best fit, decreasing): writes the deals file (JSON Lines).
    Plan(super::deals::DealPlanArgs),
    /// Write the deals of a deals file (<deal>.deal and <deal>.deal.json), each CAR re-hashed
    /// while copied; resumable, several builders share the folder through locks.
    Build(super::deals::DealBuildArgs),
    /// Where the build of a deals file stands: each deal built, building (with its builder's
    /// progress), left with a stale lock, not built, or other outputs in its place.
    Status(super::deals::DealStatusArgs),
}

/// `carload segment pack`.
#[derive(Args, Debug)]
pub struct PackArgs {
    /// The CARs, in the order they are placed (order matters: each piece is aligned to its size).
    #[arg(required = true)]
    pub cars: Vec<PathBuf>,
    /// Padded size of the deal piece: a power of two from 512 B to 64 GiB (e.g. 32GiB).
    #[arg(long, value_name = "SIZE", value_parser = crate::edge::options::size_arg)]
    pub deal_size: u64,
    /// Where to write the deal (its unpadded bytes, D·127/128, written atomically).
    #[arg(short, long, value_name = "DEAL", required_unless_present = "no_write")]
    pub out: Option<PathBuf>,
    /// Compute the deal's piece CID and the segments without writing the deal.
    #[arg(long, conflicts_with = "out")]
    pub no_write: bool,
    /// Write DEAL through the page cache instead of with direct I/O (the default where the file
    /// system allows it: less CPU, and DEAL does not crowd the cache).
    #[arg(long, conflicts_with = "no_write")]
    pub buffered: bool,
    /// Replace DEAL if it exists.
    #[arg(long)]
    pub force: bool,
    /// Take each CAR's piece CID on your word instead of hashing it (once per CAR, in order;
    /// v1, or v2 to also check its size): the CARs are only copied. Check the deal afterwards
    /// with `segment verify`.
    #[arg(long, value_name = "CID")]
    pub piece_cid: Vec<String>,
    /// Print one JSON object: piece_cid, piece_cid_v2, piece_size, segments.
    #[arg(long)]
    pub json: bool,
    /// Pack files that do not start with a CARv1 header (Boost and Curio index CAR segments only).
    #[arg(long)]
    pub skip_car_validation: bool,
    /// Print only results and errors (no progress).
    #[arg(long, short)]
    pub quiet: bool,
}

/// `carload segment list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// A deal written by `segment pack` (or go-data-segment's aggregate reader).
    pub deal: PathBuf,
    /// Print one JSON object: piece_size, index_entries, segments.
    #[arg(long)]
    pub json: bool,
}

/// `carload segment proof`.
#[derive(Args, Debug)]
pub struct ProofArgs {
    /// The deal, or the JSON report of `segment pack --json` (the proof needs only the index).
    pub deal: PathBuf,
    /// The segment's piece CID (v1, or v2 to also match its size); the first matching entry.
    pub piece_cid: String,
    /// Print one JSON object: the deal's and the segment's pieces, the proof in go-data-segment's
    /// JSON form, its DAG-CBOR bytes (hex) and their CID.
    #[arg(long)]
    pub json: bool,
}

/// `carload segment verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The deal.
    pub deal: PathBuf,
    /// The deal's expected piece CID (v1 or v2).
    #[arg(long, value_name = "CID")]
    pub piece_cid: Option<String>,
    /// Print one JSON object (as `segment pack --json`), only if the deal verifies.
    #[arg(long)]
    pub json: bool,
    /// Print only results and errors (no progress).
    #[arg(long, short)]
    pub quiet: bool,
}

/// One segment in a JSON report: offsets and sizes in padded bytes.
#[derive(Serialize, Deserialize, Debug)]
pub struct SegmentJson {
    /// Piece CID v1.
    pub piece_cid: String,
    /// Piece CID v2 (when the payload size is known: not from a deal's index alone).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub piece_cid_v2: Option<String>,
    /// Padded offset in the deal.
    pub offset: u64,
    /// Padded size.
    pub size: u64,
}

/// A deal in a JSON report (`pack`, `verify`).
#[derive(Serialize, Deserialize, Debug)]
pub struct DealJson {
    /// The deal's piece CID v1.
    pub piece_cid: String,
    /// The deal's piece CID v2.
    pub piece_cid_v2: String,
    /// Padded size of the deal.
    pub piece_size: u64,
    /// The segments, in index order.
    pub segments: Vec<SegmentJson>,
}

fn deal_json(deal: &PieceInfo, aggregate: &Aggregate, pieces: Option<&[PieceInfo]>) -> DealJson {
    DealJson {
        piece_cid: deal.cid_v1().to_string(),
        piece_cid_v2: deal.cid_v2().to_string(),
        piece_size: deal.padded_size,
        segments: aggregate
            .entries()
            .iter()
            .enumerate()
            .map(|(n, (_, e))| SegmentJson {
                piece_cid: e.piece().cid_v1().to_string(),
                piece_cid_v2: pieces.map(|p| p[n].cid_v2().to_string()),
                offset: e.offset,
                size: e.size,
            })
            .collect(),
    }
}

/// Runs `carload segment`.
pub fn segment_cmd(a: SegmentArgs) -> Result<()> {
    match a.command {
        SegmentCommand::Pack(p) => pack(p),
        SegmentCommand::List(l) => list(l),
        SegmentCommand::Proof(p) => proof(p),
        SegmentCommand::Verify(v) => verify(v),
        SegmentCommand::Plan(p) => super::deals::plan(p),
        SegmentCommand::Build(b) => super::deals::build(b),
        SegmentCommand::Status(st) => super::deals::status(st),
    }
}

fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn check_car(path: &Path) -> Result<()> {
    let name = path.display();
    let f = File::open(path).with_context(|| name.to_string())?;
    let header = carload::car::read_header(&mut std::io::BufReader::new(f))
        .with_context(|| format!("{name}: not a CARv1 file (use --skip-car-validation to pack it anyway)"))?;
    if header.version != 1 {
        bail!("{name}: CAR version {} (use --skip-car-validation to pack it anyway)", header.version);
    }
    Ok(())
}

fn pack(a: PackArgs) -> Result<()> {
    if !a.skip_car_validation {
        for car in &a.cars {
            check_car(car)?;
        }
    }
    let vouched = vouched_roots(&a)?;
    let total: u64 = a.cars.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let mut progress = Progress::new(total, !a.quiet && !a.json);
    let packed = match &a.out {
        None => segment::pack_vouched(&a.cars, &vouched, a.deal_size, None, &mut progress)?,
        Some(target) => {
            for car in &a.cars {
                check_not_input(target, car)?;
            }
            let file = AtomicFile::create_registered(target, a.force, &mut crate::edge::signals::create_registered)?;
            let temp = file.temp_path().to_path_buf();
            let out = super::deals::deal_out(file.file(), target, a.buffered);
            let res = segment::pack_vouched(&a.cars, &vouched, a.deal_size, Some(out), &mut progress)
                .map_err(anyhow::Error::from)
                .and_then(|p| {
                    file.commit()?;
                    Ok(p)
                });
            crate::edge::signals::forget(std::slice::from_ref(&temp));
            res?
        }
    };
    progress.finish();
    let report = deal_json(&packed.deal, &packed.aggregate, Some(&packed.pieces));
    if a.json {
        return print(&(serde_json::to_string(&report)? + "\n"));
    }
    let mut text = deal_text(&report);
    text.push_str("Segments (offset and size in padded bytes):\n");
    for ((s, p), car) in report.segments.iter().zip(&packed.pieces).zip(&a.cars) {
        text.push_str(&format!(
            "  {:>14} {:>12}  {}  {}  ({} bytes) {}\n",
            s.offset,
            s.size,
            s.piece_cid,
            s.piece_cid_v2.as_deref().unwrap_or(""),
            p.payload_size,
            carload::text::escape_controls(&car.display().to_string())
        ));
    }
    if !a.piece_cid.is_empty() {
        text.push_str(
            "Piece CIDs of the CARs taken as given (not hashed): check the deal with `carload segment verify`\n",
        );
    }
    if let Some(out) = &a.out {
        text.push_str(&format!("Wrote {} ({} bytes)\n", out.display(), layout::unpadded(a.deal_size)));
    }
    print(&text)
}

/// The roots of `--piece-cid`, one per CAR (none given: all hashed), each checked against its
/// CAR's length when it is a v2 CID.
fn vouched_roots(a: &PackArgs) -> Result<Vec<Option<[u8; 32]>>> {
    if a.piece_cid.is_empty() {
        return Ok(Vec::new());
    }
    if a.piece_cid.len() != a.cars.len() {
        bail!("--piece-cid given {} times for {} CARs (once per CAR, in order)", a.piece_cid.len(), a.cars.len());
    }
    a.cars
        .iter()
        .zip(&a.piece_cid)
        .map(|(car, cid)| {
            let p = segment::parse_piece_cid(cid).map_err(anyhow::Error::msg)?;
            if let Some(size) = p.size {
                let len = std::fs::metadata(car).with_context(|| car.display().to_string())?.len();
                let v2 = PieceInfo {
                    root: p.root,
                    payload_size: len,
                    padded_size: carload::commp::padded_piece_size(len),
                    unpadded_size: carload::commp::unpadded_piece_size(carload::commp::padded_piece_size(len)),
                };
                if v2.padded_size != size || cid::Cid::try_from(cid.trim()).ok() != Some(v2.cid_v2()) {
                    bail!("{}: {} bytes, not the payload of piece CID {}", car.display(), len, cid.trim());
                }
            }
            Ok(Some(p.root))
        })
        .collect()
}

fn deal_text(d: &DealJson) -> String {
    format!(
        "Deal piece CID:     {}\nDeal piece CID v2:  {}\nDeal piece size:    {} bytes padded ({}), {} bytes unpadded\n",
        d.piece_cid,
        d.piece_cid_v2,
        d.piece_size,
        ibytes(d.piece_size),
        layout::unpadded(d.piece_size)
    )
}

fn read_index(path: &Path) -> Result<Aggregate> {
    let name = path.display().to_string();
    let f = File::open(path).with_context(|| name.clone())?;
    if f.metadata().with_context(|| name.clone())?.is_dir() {
        bail!("{name}: is a folder, not a deal");
    }
    segment::read_index(&f, path).with_context(|| name.clone())
}

/// `segment list --json`.
#[derive(Serialize)]
struct ListJson {
    piece_size: u64,
    index_entries: u64,
    segments: Vec<ListedSegment>,
}

#[derive(Serialize)]
struct ListedSegment {
    entry: u64,
    piece_cid: String,
    offset: u64,
    size: u64,
}

fn list(a: ListArgs) -> Result<()> {
    let agg = read_index(&a.deal)?;
    let d = agg.deal_size();
    let segments: Vec<ListedSegment> = agg
        .entries()
        .iter()
        .map(|(pos, e)| ListedSegment {
            entry: *pos,
            piece_cid: e.piece().cid_v1().to_string(),
            offset: e.offset,
            size: e.size,
        })
        .collect();
    if a.json {
        let j = ListJson { piece_size: d, index_entries: layout::max_entries(d), segments };
        return print(&(serde_json::to_string(&j)? + "\n"));
    }
    let mut text = format!(
        "{}: deal of {} bytes padded ({}), index of {} entries at padded offset {}, {} segments\n",
        a.deal.display(),
        d,
        ibytes(d),
        layout::max_entries(d),
        layout::index_start(d),
        segments.len()
    );
    text.push_str(&format!("{:>7} {:>14} {:>12}  piece CID\n", "entry", "offset", "size"));
    for s in &segments {
        text.push_str(&format!("{:>7} {:>14} {:>12}  {}\n", s.entry, s.offset, s.size, s.piece_cid));
    }
    print(&text)
}

/// The aggregate of a deal file or of `segment pack --json`'s report.
fn aggregate_of(path: &Path) -> Result<Aggregate> {
    let name = path.display().to_string();
    let mut head = [0u8; 1];
    let is_json = {
        use std::io::Read;
        let mut f = File::open(path).with_context(|| name.clone())?;
        f.read(&mut head).with_context(|| name.clone())? == 1 && head[0] == b'{'
    };
    if !is_json {
        return read_index(path);
    }
    let text = std::fs::read_to_string(path).with_context(|| name.clone())?;
    let report: DealJson =
        serde_json::from_str(&text).with_context(|| format!("{name}: not a `segment pack --json` report"))?;
    let entries = report
        .segments
        .iter()
        .map(|s| {
            let p = segment::parse_piece_cid(&s.piece_cid).map_err(anyhow::Error::msg)?;
            Ok(Entry { root: p.root, offset: s.offset, size: s.size })
        })
        .collect::<Result<Vec<_>>>()
        .with_context(|| name.clone())?;
    let agg = Aggregate::new(report.piece_size, entries).with_context(|| name.clone())?;
    if agg.piece().cid_v1().to_string() != report.piece_cid {
        bail!("{name}: the segments do not make the deal piece CID {} the report gives", report.piece_cid);
    }
    Ok(agg)
}

/// `segment proof --json`.
#[derive(Serialize)]
struct ProofJson {
    piece_cid: String,
    piece_cid_v2: String,
    piece_size: u64,
    segment: ListedSegment,
    proof: segment::InclusionProof,
    proof_cbor: String,
    proof_cid: String,
}

fn proof(a: ProofArgs) -> Result<()> {
    let agg = aggregate_of(&a.deal)?;
    let wanted = segment::parse_piece_cid(&a.piece_cid).map_err(anyhow::Error::msg)?;
    let Some(n) = agg.find(&wanted.root, wanted.size) else {
        bail!("{}: no segment with piece CID {}", a.deal.display(), a.piece_cid.trim());
    };
    let (pos, e) = agg.entries()[n];
    let proof = agg.proof(n);
    let deal = agg.piece();
    // The proof must verify as go-data-segment and data-segment verify it.
    let (root, size) = proof
        .resolve(carload::commp::Kernel::detect(), &e.root, e.size)
        .context("internal error: the proof does not verify")?;
    if root != deal.root || size != deal.padded_size {
        bail!("internal error: the proof of {} leads to another deal", a.piece_cid.trim());
    }
    let cbor = proof.to_cbor();
    let hex: String = cbor.iter().map(|b| format!("{b:02x}")).collect();
    let j = ProofJson {
        piece_cid: deal.cid_v1().to_string(),
        piece_cid_v2: deal.cid_v2().to_string(),
        piece_size: deal.padded_size,
        segment: ListedSegment {
            entry: pos,
            piece_cid: e.piece().cid_v1().to_string(),
            offset: e.offset,
            size: e.size,
        },
        proof_cid: proof.link().to_string(),
        proof,
        proof_cbor: hex,
    };
    if a.json {
        return print(&(serde_json::to_string(&j)? + "\n"));
    }
    let mut text = format!(
        "Segment:           {} (index entry {}, padded offset {}, size {})\nDeal piece CID:    {} ({} bytes padded)\n",
        j.segment.piece_cid, pos, e.offset, e.size, j.piece_cid, j.piece_size
    );
    text.push_str(&format!(
        "Subtree proof:     index {}, {} nodes\n",
        j.proof.subtree.index,
        j.proof.subtree.path.len()
    ));
    for node in &j.proof.subtree.path {
        text.push_str(&format!("  {}\n", hex32(node)));
    }
    text.push_str(&format!("Index proof:       index {}, {} nodes\n", j.proof.index.index, j.proof.index.path.len()));
    for node in &j.proof.index.path {
        text.push_str(&format!("  {}\n", hex32(node)));
    }
    text.push_str(&format!("Proof CID:         {}\nProof (DAG-CBOR):  {}\n", j.proof_cid, j.proof_cbor));
    print(&text)
}

fn hex32(n: &[u8; 32]) -> String {
    n.iter().map(|b| format!("{b:02x}")).collect()
}

fn verify(a: VerifyArgs) -> Result<()> {
    let name = a.deal.display().to_string();
    let expected = a.piece_cid.as_deref().map(segment::parse_piece_cid).transpose().map_err(anyhow::Error::msg)?;
    let f = File::open(&a.deal).with_context(|| name.clone())?;
    let len = f.metadata().with_context(|| name.clone())?.len();
    let mut progress = Progress::new(len, !a.quiet && !a.json);
    let v = segment::verify_deal(&f, &a.deal, &mut progress);
    progress.finish();
    let v = v.with_context(|| name.clone())?;
    if let Some(p) = expected {
        if p.root != v.deal.root || p.size.is_some_and(|s| s != v.deal.padded_size) {
            bail!(
                "{name}: the deal's piece CID is {} ({} bytes padded), not {}",
                v.deal.cid_v1(),
                v.deal.padded_size,
                a.piece_cid.as_deref().unwrap_or_default().trim()
            );
        }
    }
    let report = deal_json(&v.deal, &v.aggregate, None);
    if a.json {
        return print(&(serde_json::to_string(&report)? + "\n"));
    }
    let mut text = deal_text(&report);
    text.push_str(&format!(
        "{name}: OK — {} segments, each commP recomputed and equal to its index entry; all other bytes zero{}\n",
        report.segments.len(),
        if expected.is_some() { "; piece CID as expected" } else { "" }
    ));
    print(&text)
}
