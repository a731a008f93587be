//! The provider's side of an offline deal (`carload receive`): the CARs that arrived in one or
//! more folders (a received drive, a `build --out` folder, or bare `.car` files), each verified
//! strictly, joined with the client's deal list by piece CID, and the import command of the
//! provider's software for each. Nothing is imported or moved.
//!
//! A CAR is judged by what it holds, never by its name: the CAR is verified in full
//! ([`crate::verify::verify_file`]: blocks, DAG, UnixFS, manifest, commP); a `<id>.json` result
//! beside it must match what was recomputed ([`super::check::compare_result`], as `verify CAR
//! --result`), and a `<id>.car.manifest` sidecar the manifest in the CAR. Its piece is then looked
//! up in the deal list by piece CID (v1 or v2), padded to the result's piece size, else to the
//! smallest power of two up to a 64 GiB piece that a deal names (a shipment pads small CARs to its
//! minimum piece size). Flagged: a CAR that does not verify (truncated, damaged), a result that
//! lies, a CAR holding another batch's piece (swapped: its piece is another result's or a deal
//! for another batch), a CAR in no deal and with no result (foreign, when a deal list is given),
//! a second copy of a dealt piece (each deal is imported once: from the CAR named for it, else
//! the first holding its piece), and a deal whose CAR is missing or does not hold its piece.
//!
//! Deal lists ([`parse_deals`]): the CSV `carload export --format csv` writes (columns by name;
//! an added `deal_uuid`, `uuid`, `deal` or `proposal_cid` column gives the deal), the JSON Lines
//! `export --format shipment` writes (each record's `result`), the JSON lines `boost --json
//! offline-deal` prints (`dealUuid`, `commp`), or plain `<deal-uuid> <piece-cid>` lines (either
//! order, spaces, tabs or a comma between; `#` comments). Several lists are joined by piece CID,
//! so the client's CSV and the UUIDs Boost returned can be given together.

use super::build::outputs;
use super::check::compare_result;
use super::judge::{load_result, Loaded};
use crate::commp::PieceInfo;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

/// The largest padded piece a deal can name (a 64 GiB sector).
pub const MAX_PIECE_SIZE: u64 = 64 << 30;

/// One deal of the client's list (fields the list does not give are `None`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Deal {
    /// Deal UUID (Boost, Curio) or proposal CID (Lotus legacy).
    pub uuid: Option<String>,
    /// Piece CID as the list gives it (v1 `baga…` or v2 `bafkzcib…`).
    pub piece_cid: String,
    /// Padded piece size.
    pub piece_size: Option<u64>,
    /// Batch ID.
    pub batch: Option<String>,
    /// The CAR's file name as the list names it (its last component).
    pub car_file: Option<String>,
    /// The list and line it came from (`path:line`).
    pub from: String,
}

/// Why a deal list cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DealsError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The list.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A line is not a deal.
    #[error("{path}:{line}: {reason}")]
    Line {
        /// The list.
        path: PathBuf,
        /// Line number (1-based).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No deal in the file.
    #[error("{0}: no deals in it (expected the CSV or JSON Lines `carload export` writes, `boost --json offline-deal` output or `<deal-uuid> <piece-cid>` lines)")]
    Empty(PathBuf),
}

/// Why the received folders cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// A folder cannot be listed.
    #[error("{path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// Whether `s` looks like a piece CID (v1 or v2).
fn is_piece_cid(s: &str) -> bool {
    (s.starts_with("baga") || s.starts_with("bafkzcib")) && s.parse::<cid::Cid>().is_ok()
}

/// The last component of a path as a list names it.
fn file_name_of(s: &str) -> Option<String> {
    Path::new(s).file_name().map(|n| n.to_string_lossy().into_owned())
}

/// Parses a deal list (`path` names it in errors); see the module documentation for the forms.
pub fn parse_deals(path: &Path, text: &str) -> Result<Vec<Deal>, DealsError> {
    let err = |line: usize, reason: String| DealsError::Line { path: path.to_path_buf(), line, reason };
    let at = |line: usize| format!("{}:{line}", path.display());
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let Some(&(first_no, first)) = lines.first() else { return Err(DealsError::Empty(path.to_path_buf())) };
    let mut deals = Vec::new();
    if first.starts_with('{') {
        for &(no, l) in &lines {
            let v: serde_json::Value = serde_json::from_str(l).map_err(|e| err(no, format!("not JSON: {e}")))?;
            let text_of = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
            if let Some(commp) = text_of(&v, "commp") {
                // `boost --json offline-deal`.
                deals.push(Deal {
                    uuid: text_of(&v, "dealUuid"),
                    piece_cid: commp,
                    piece_size: None,
                    batch: None,
                    car_file: None,
                    from: at(no),
                });
            } else if let Some(r) = v.get("result").filter(|r| !r.is_null()) {
                // A batch record of `export --format shipment` with its result.
                let piece = text_of(r, "piece_cid").ok_or_else(|| err(no, "the result has no piece_cid".into()))?;
                let batch = text_of(r, "batch").or_else(|| text_of(&v, "id"));
                deals.push(Deal {
                    uuid: text_of(&v, "deal_uuid"),
                    piece_cid: piece,
                    piece_size: r.get("piece_size").and_then(|x| x.as_u64()),
                    car_file: batch.as_ref().map(|b| format!("{b}.car")),
                    batch,
                    from: at(no),
                });
            }
            // The shipment's header and batches not built name no piece.
        }
    } else if first.contains(',') && first.split(',').any(|c| c.trim() == "piece_cid") {
        let header: Vec<String> =
            super::export::csv_fields(first).ok_or_else(|| err(first_no, "unterminated quote".into()))?;
        let col = |names: &[&str]| header.iter().position(|h| names.contains(&h.trim()));
        let piece_col = col(&["piece_cid"]).expect("checked above");
        let (size_col, batch_col, car_col) = (col(&["piece_size"]), col(&["batch"]), col(&["car_file"]));
        let uuid_col = col(&["deal_uuid", "uuid", "deal", "deal_id", "proposal_cid"]);
        for &(no, l) in &lines[1..] {
            let f = super::export::csv_fields(l).ok_or_else(|| err(no, "unterminated quote".into()))?;
            if f.len() != header.len() {
                return Err(err(no, format!("{} fields, the header has {}", f.len(), header.len())));
            }
            let get = |c: Option<usize>| c.map(|c| f[c].trim().to_string()).filter(|s| !s.is_empty());
            let piece_size = match get(size_col) {
                Some(s) => Some(s.parse::<u64>().map_err(|_| err(no, format!("piece_size {s:?} is not a number")))?),
                None => None,
            };
            deals.push(Deal {
                uuid: get(uuid_col),
                piece_cid: get(Some(piece_col)).ok_or_else(|| err(no, "no piece_cid".into()))?,
                piece_size,
                batch: get(batch_col),
                car_file: get(car_col).and_then(|c| file_name_of(&c)),
                from: at(no),
            });
        }
    } else {
        for &(no, l) in &lines {
            let words: Vec<&str> = l.split([' ', '\t', ',']).filter(|w| !w.is_empty()).collect();
            let (piece, uuid) = match words.as_slice() {
                [a, b] if is_piece_cid(b) && !is_piece_cid(a) => (*b, *a),
                [a, b] if is_piece_cid(a) && !is_piece_cid(b) => (*a, *b),
                _ => return Err(err(no, format!("{l:?} is not `<deal-uuid> <piece-cid>`"))),
            };
            deals.push(Deal {
                uuid: Some(uuid.to_string()),
                piece_cid: piece.to_string(),
                piece_size: None,
                batch: None,
                car_file: None,
                from: at(no),
            });
        }
    }
    for d in &deals {
        if !is_piece_cid(&d.piece_cid) {
            return Err(DealsError::Line {
                path: path.to_path_buf(),
                line: d.from.rsplit(':').next().and_then(|n| n.parse().ok()).unwrap_or(0),
                reason: format!("{:?} is not a piece CID", d.piece_cid),
            });
        }
    }
    if deals.is_empty() {
        return Err(DealsError::Empty(path.to_path_buf()));
    }
    Ok(deals)
}

/// Reads and parses the deal list at `path`.
pub fn read_deals(path: &Path) -> Result<Vec<Deal>, DealsError> {
    let text = std::fs::read_to_string(path).map_err(|source| DealsError::Read { path: path.to_path_buf(), source })?;
    parse_deals(path, &text)
}

/// What was wrong with a received CAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file cannot be opened or read as a CAR at all.
    Unreadable(String),
    /// The CAR does not verify (truncated, damaged): the problem count and the first lines.
    Invalid {
        /// Problems in all.
        count: u64,
        /// The first ones.
        lines: Vec<String>,
    },
    /// Its `<id>.json` result (or `<id>.car.manifest`) claims what the CAR does not hold.
    Result(Vec<String>),
    /// It holds another batch's piece (named for one batch, holding another's), or a deal file
    /// another deal's.
    Swapped {
        /// The batch (or deal) whose piece it holds.
        holds: String,
        /// Whether it is a deal file.
        deal: bool,
    },
    /// In no deal of the list and with no result beside it.
    Foreign,
    /// A second copy of a CAR whose deals go to the first copy (`of`).
    Duplicate {
        /// The copy the deals are imported from.
        of: PathBuf,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Unreadable(why) => write!(f, "unreadable: {why}"),
            Problem::Invalid { count, lines } => {
                write!(f, "does not verify ({count} problems): {}", lines.first().map(String::as_str).unwrap_or("?"))
            }
            Problem::Result(lines) => write!(f, "its result does not match: {}", lines.join("; ")),
            Problem::Swapped { holds, deal: false } => write!(f, "swapped: it holds batch {holds}'s CAR"),
            Problem::Swapped { holds, deal: true } => write!(f, "swapped: it holds deal {holds}'s piece"),
            Problem::Foreign => f.write_str("foreign: in no deal and no result beside it"),
            Problem::Duplicate { of } => {
                write!(f, "duplicate: the same piece as {}, which its deals go to", of.display())
            }
        }
    }
}

impl Problem {
    /// A short name of its kind (`unreadable`, `invalid`, `result`, `swapped`, `foreign`,
    /// `duplicate`).
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::Unreadable(_) => "unreadable",
            Problem::Invalid { .. } => "invalid",
            Problem::Result(_) => "result",
            Problem::Swapped { .. } => "swapped",
            Problem::Foreign => "foreign",
            Problem::Duplicate { .. } => "duplicate",
        }
    }
}

/// What a received CAR was found to hold (recomputed, nothing taken from its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Payload CID (the CAR's single root; empty if it has none).
    pub payload_cid: String,
    /// CAR bytes.
    pub car_size: u64,
    /// Piece CID v1, padded to `piece_size`.
    pub piece_cid: String,
    /// Piece CID v2.
    pub piece_cid_v2: String,
    /// Padded piece size (the result's or the deal's; the CAR's natural piece otherwise).
    pub piece_size: u64,
    /// Unpadded piece size.
    pub piece_size_unpadded: u64,
}

impl Piece {
    fn of(payload_cid: String, p: &PieceInfo) -> Self {
        Piece {
            payload_cid,
            car_size: p.payload_size,
            piece_cid: p.cid_v1().to_string(),
            piece_cid_v2: p.cid_v2().to_string(),
            piece_size: p.padded_size,
            piece_size_unpadded: p.unpadded_size,
        }
    }
}

/// One received CAR and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedCar {
    /// Its path (the folder as given, joined with its name).
    pub path: PathBuf,
    /// File size.
    pub size: u64,
    /// The batch it holds: its result's, else its deal's.
    pub batch: Option<String>,
    /// What it holds, when it could be read.
    pub piece: Option<Piece>,
    /// Indexes into [`Received::deals`] of the deals for its piece.
    pub deals: Vec<usize>,
    /// Problems (none: OK).
    pub problems: Vec<Problem>,
    /// For a deal file (`.deal`), its segments as its index lists them; `None` for a CAR.
    pub segments: Option<usize>,
}

impl ReceivedCar {
    /// Whether it verified and nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Whether a deal found its CAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DealState {
    /// Its piece is in the CAR (index into [`Received::cars`]).
    Found(usize),
    /// The CAR named for it is there but does not hold its piece.
    WrongCar(usize),
    /// No CAR holds its piece.
    Missing,
}

/// What `receive` found: every CAR in folder order, every deal of the list in list order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The CARs.
    pub cars: Vec<ReceivedCar>,
    /// The deals (joined, in list order) and whether each found its CAR.
    pub deals: Vec<(Deal, DealState)>,
    /// Whether a deal list was given.
    pub with_deals: bool,
}

impl Received {
    /// Whether every CAR verified and every deal found its CAR.
    pub fn ok(&self) -> bool {
        self.cars.iter().all(ReceivedCar::ok) && self.deals.iter().all(|(_, s)| matches!(s, DealState::Found(_)))
    }
}

/// The `.car` and `.deal` files directly in `dir` (not below: a drive or an output folder is
/// flat), by name; hidden files (atomic-write temporaries) are left out.
pub fn car_files(dir: &Path) -> Result<Vec<PathBuf>, ReceiveError> {
    let folder = |source| ReceiveError::Folder { path: dir.to_path_buf(), source };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(folder)? {
        let e = e.map_err(folder)?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !(name.ends_with(".car") || name.ends_with(".deal")) {
            continue;
        }
        let p = e.path();
        if std::fs::metadata(&p).map(|m| m.is_file()).unwrap_or(false) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// The stem of a CAR's or deal's file name (`b00001.car` → `b00001`, `deal-0001.deal` →
/// `deal-0001`).
fn stem_of(car: &Path) -> String {
    let name = car.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.strip_suffix(".car").or_else(|| name.strip_suffix(".deal")).unwrap_or(&name).to_string()
}

/// Whether `path` names an FRC-0058 deal (`<deal>.deal`, as `segment build` writes it) rather
/// than a CAR.
pub fn is_deal(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "deal")
}

/// What one CAR's verification left for the join.
#[derive(Default)]
struct Checked {
    natural: Option<PieceInfo>,
    payload: String,
    result: Option<super::file::BatchResult>,
    has_result: bool,
    /// A deal's segments, as its index lists them.
    segments: Option<usize>,
    /// A deal's ID, from a result beside it that matches it.
    deal_id: Option<String>,
}

/// Verifies the deal at `path` in full ([`crate::segment::verify_deal`]: every segment's commP
/// against the index, every other byte zero) and compares its `<deal>.deal.json` result, when
/// one is beside it, with what was recomputed: the deal's ID, piece CIDs and size, and every
/// segment's piece CID, offset and size in placement order. (A segment's batch and CAR size
/// are not in the deal's bytes, so they cannot be checked.)
fn check_deal(path: &Path, problems: &mut Vec<Problem>) -> Checked {
    use crate::segment::deals::DealRecord;
    let stem = stem_of(path);
    let mut c = Checked::default();
    let verified = match std::fs::File::open(path) {
        Err(e) => {
            problems.push(Problem::Unreadable(e.to_string()));
            None
        }
        Ok(f) => match crate::segment::verify_deal(&f, path, &mut crate::event::Ignore) {
            Err(e) => {
                problems.push(Problem::Invalid { count: 1, lines: vec![e.to_string()] });
                None
            }
            Ok(v) => Some(v),
        },
    };
    if let Some(v) = &verified {
        c.natural = Some(v.deal);
        c.segments = Some(v.aggregate.entries().len());
    }
    let sidecar = path.with_file_name(format!("{stem}.deal.json"));
    let name = format!("{stem}.deal.json");
    let record = match std::fs::read(&sidecar) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return c,
        Err(e) => Err(format!("{name}: {e}")),
        Ok(bytes) => {
            serde_json::from_slice::<DealRecord>(&bytes).map_err(|e| format!("{name} is not a deal result: {e}"))
        }
    };
    c.has_result = true;
    let mut claims = Vec::new();
    match (record, &verified) {
        (Err(why), _) => claims.push(why),
        (Ok(r), Some(v)) => {
            if r.id != stem {
                claims.push(format!("{name} is deal {}'s result", r.id));
            }
            let deal = &v.deal;
            if r.piece_cid != deal.cid_v1().to_string()
                || r.piece_cid_v2 != deal.cid_v2().to_string()
                || r.piece_size != deal.padded_size
            {
                claims.push(format!(
                    "{name} records piece {} ({} padded), the deal is {} ({} padded)",
                    r.piece_cid,
                    r.piece_size,
                    deal.cid_v1(),
                    deal.padded_size
                ));
            }
            let entries = v.aggregate.entries();
            if r.segments.len() != entries.len() {
                claims.push(format!(
                    "{name} records {} segments, the deal's index {}",
                    r.segments.len(),
                    entries.len()
                ));
            }
            for (i, (s, (_, e))) in r.segments.iter().zip(entries).enumerate() {
                if s.piece_cid != e.piece().cid_v1().to_string() || s.offset != e.offset || s.size != e.size {
                    claims.push(format!(
                        "{name}: segment {i} ({}) is piece {} at {} of {} bytes, the deal's index says {} at {} of {}",
                        s.batch,
                        s.piece_cid,
                        s.offset,
                        s.size,
                        e.piece().cid_v1(),
                        e.offset,
                        e.size
                    ));
                }
            }
        }
        (Ok(_), None) => {}
    }
    if claims.is_empty() {
        c.deal_id = verified.is_some().then_some(stem);
    } else {
        problems.push(Problem::Result(claims));
    }
    c
}

/// Verifies `car` and compares it with the result and sidecar beside it.
fn check_car(car: &Path, problems: &mut Vec<Problem>) -> Checked {
    let dir = car.parent().unwrap_or(Path::new("."));
    let stem = stem_of(car);
    let mut c = Checked::default();
    let loaded = load_result(dir, &stem);
    let report = match std::fs::File::open(car) {
        Err(e) => {
            problems.push(Problem::Unreadable(e.to_string()));
            None
        }
        Ok(f) => match crate::verify::verify_file(&f, car) {
            Err(e) => {
                problems.push(Problem::Unreadable(format!("not a readable CAR: {e}")));
                None
            }
            Ok(r) => {
                if r.problem_count > 0 {
                    problems.push(Problem::Invalid { count: r.problem_count, lines: r.problems.clone() });
                }
                Some(r)
            }
        },
    };
    if let Some(r) = &report {
        c.natural = Some(r.piece);
        c.payload = match r.roots.as_slice() {
            [one] => one.to_string(),
            _ => String::new(),
        };
    }
    let mut claims = Vec::new();
    match loaded {
        Ok(Loaded::Absent) => {}
        Ok(Loaded::Garbled(why)) => {
            c.has_result = true;
            claims.push(format!("{stem}.json is not a batch result: {why}"));
        }
        Err(e) => {
            c.has_result = true;
            claims.push(format!("{stem}.json: {e}"));
        }
        Ok(Loaded::Result(res)) => {
            c.has_result = true;
            if res.batch != stem {
                claims.push(format!("{stem}.json is batch {}'s result", res.batch));
            }
            if let Some(r) = &report {
                claims.extend(compare_result(&res, r, None));
                if let Some(line) = sidecar_problem(&outputs(dir, &stem).manifest, r) {
                    claims.push(line);
                }
            }
            c.result = Some(res);
        }
    }
    if !claims.is_empty() {
        problems.push(Problem::Result(claims));
    }
    c
}

/// A sidecar `<id>.car.manifest` that is there but is not the manifest in the CAR (compared as
/// `verify SHIPMENT` compares it, [`super::check::sidecar_mismatch`]); none is no problem.
fn sidecar_problem(path: &Path, r: &crate::verify::Report) -> Option<String> {
    let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
    if !path.exists() {
        return None;
    }
    let Some(content) = r.manifest.as_ref().and_then(|m| m.content) else {
        return Some(format!("{name} is there but the CAR holds no readable manifest"));
    };
    match super::check::sidecar_mismatch(path, content) {
        Ok(line) => line,
        Err(e) => Some(format!("{name}: {e}")),
    }
}

/// The piece of `natural` padded to every size from its own up to [`MAX_PIECE_SIZE`], smallest
/// first, calling `f` until it returns `Some`.
fn find_padded<T>(natural: &PieceInfo, mut f: impl FnMut(&PieceInfo) -> Option<T>) -> Option<T> {
    let mut p = *natural;
    loop {
        if let Some(t) = f(&p) {
            return Some(t);
        }
        if p.padded_size >= MAX_PIECE_SIZE {
            return None;
        }
        p = p.pad_to(p.padded_size * 2);
    }
}

/// The deals of several lists joined by piece CID: a deal of one list (the client's CSV) and
/// one of another (the UUID Boost returned) naming the same piece are one deal, unless both give
/// a UUID and the UUIDs differ (then both are deals of the piece, each to import). Fields one
/// gives and the other does not are filled in; `from` names every line.
pub fn merge_deals(deals: Vec<Deal>) -> Vec<Deal> {
    let mut out: Vec<Deal> = Vec::with_capacity(deals.len());
    let mut by_piece: HashMap<String, Vec<usize>> = HashMap::new();
    for d in deals {
        let same = by_piece.get(&d.piece_cid).and_then(|ks| {
            ks.iter().copied().find(|&k| {
                let o = &out[k];
                let fits = |a: &Option<String>, b: &Option<String>| a.is_none() || b.is_none() || a == b;
                fits(&o.uuid, &d.uuid)
                    && fits(&o.batch, &d.batch)
                    && (o.piece_size.is_none() || d.piece_size.is_none() || o.piece_size == d.piece_size)
            })
        });
        match same {
            Some(k) => {
                let o = &mut out[k];
                o.uuid = o.uuid.take().or(d.uuid);
                o.batch = o.batch.take().or(d.batch);
                o.car_file = o.car_file.take().or(d.car_file);
                o.piece_size = o.piece_size.or(d.piece_size);
                o.from = format!("{}, {}", o.from, d.from);
            }
            None => {
                by_piece.entry(d.piece_cid.clone()).or_default().push(out.len());
                out.push(d);
            }
        }
    }
    out
}

/// Receives the CARs `cars` (from [`car_files`]) against the deal list `deals` (`None`: no list
/// given): each verified, compared with its result, joined by piece CID (see the module
/// documentation). Deals naming the same piece stay separate (each is imported).
pub fn receive(cars: &[PathBuf], deals: Option<Vec<Deal>>) -> Received {
    receive_observed(cars, deals, &mut |_, _| {})
}

/// [`receive`], calling `before(k, car)` before the `k`th CAR (0-based) is verified (a CAR of
/// 32 GiB takes tens of seconds: the edge shows which one is being read).
pub fn receive_observed(cars: &[PathBuf], deals: Option<Vec<Deal>>, before: &mut dyn FnMut(usize, &Path)) -> Received {
    let with_deals = deals.is_some();
    let deals = merge_deals(deals.unwrap_or_default());
    // Deals by piece CID (v1 or v2 as given).
    let mut by_piece: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, d) in deals.iter().enumerate() {
        by_piece.entry(d.piece_cid.as_str()).or_default().push(i);
    }
    let mut checked = Vec::with_capacity(cars.len());
    let mut out = Vec::with_capacity(cars.len());
    for (k, car) in cars.iter().enumerate() {
        before(k, car);
        let mut problems = Vec::new();
        let c = if is_deal(car) { check_deal(car, &mut problems) } else { check_car(car, &mut problems) };
        let size = std::fs::metadata(car).map(|m| m.len()).unwrap_or(0);
        let segments = c.segments;
        out.push(ReceivedCar {
            path: car.clone(),
            size,
            batch: None,
            piece: None,
            deals: Vec::new(),
            problems,
            segments,
        });
        checked.push(c);
    }
    // Results by piece CID v1 (identical batches share a piece), to tell which batch a
    // swapped CAR holds.
    let mut result_of: HashMap<String, Vec<String>> = HashMap::new();
    for c in &checked {
        if let Some(r) = &c.result {
            result_of.entry(r.piece_cid.clone()).or_default().push(r.batch.clone());
        }
    }
    let batches: std::collections::HashSet<String> =
        deals.iter().filter_map(|d| d.batch.clone()).chain(result_of.values().flatten().cloned()).collect();
    // The deals holding each CAR's piece.
    let mut hits_of: Vec<Vec<usize>> = vec![Vec::new(); out.len()];
    for ((car, c), hits_out) in out.iter_mut().zip(&checked).zip(hits_of.iter_mut()) {
        car.batch = c.result.as_ref().map(|r| r.batch.clone());
        let Some(natural) = &c.natural else { continue };
        let lookup = |p: &PieceInfo| {
            let (v1, v2) = (p.cid_v1().to_string(), p.cid_v2().to_string());
            let mut hits: Vec<usize> = Vec::new();
            for key in [&v1, &v2] {
                hits.extend(by_piece.get(key.as_str()).into_iter().flatten());
            }
            hits.sort_unstable();
            hits.dedup();
            (!hits.is_empty()).then_some(hits)
        };
        // The result's piece size first, then the smallest that a deal names.
        let claimed =
            c.result.as_ref().map(|r| r.piece_size).filter(|s| s.is_power_of_two() && *s >= natural.padded_size);
        let (piece, hits) = match claimed.map(|s| natural.pad_to(s)) {
            Some(p) => (p, lookup(&p).unwrap_or_default()),
            // A deal is a piece of its own size, never padded further.
            None if c.segments.is_some() => (*natural, lookup(natural).unwrap_or_default()),
            None => find_padded(natural, |p| lookup(p).map(|h| (*p, h))).unwrap_or((*natural, Vec::new())),
        };
        let stem = stem_of(&car.path);
        // The batches that claim this piece: the deals' and the results'.
        let mut claims: Vec<String> = hits.iter().filter_map(|&i| deals[i].batch.clone()).collect();
        claims.extend(find_padded(natural, |p| result_of.get(&p.cid_v1().to_string()).cloned()).unwrap_or_default());
        // Only a CAR whose name claims a batch (it has a result, or the list or a result names
        // a batch so) can be swapped; bare CARs may be named anyhow.
        let named_as_batch = c.has_result || batches.contains(stem.as_str());
        if named_as_batch && !claims.is_empty() && !claims.contains(&stem) {
            car.problems.insert(0, Problem::Swapped { holds: claims[0].clone(), deal: c.segments.is_some() });
        }
        if with_deals && hits.is_empty() && !c.has_result {
            car.problems.push(Problem::Foreign);
        }
        let holds = if claims.contains(&stem) { Some(stem) } else { claims.first().cloned() };
        car.batch = car.batch.take().or(c.deal_id.clone()).or(holds);
        car.piece = Some(Piece::of(c.payload.clone(), &piece));
        *hits_out = hits;
    }
    // Each deal is imported once: into the CAR named for it when that CAR holds its piece, else
    // into the first CAR holding it.
    let names = |d: &Deal, car: &Path| {
        let name = car.file_name().map(|n| n.to_string_lossy().into_owned());
        d.car_file.is_some() && d.car_file == name || d.batch.as_ref().is_some_and(|b| *b == stem_of(car))
    };
    let mut assigned: Vec<Option<usize>> = vec![None; deals.len()];
    for named_only in [true, false] {
        for (k, hits) in hits_of.iter().enumerate() {
            for &i in hits {
                if assigned[i].is_none() && (!named_only || names(&deals[i], &out[k].path)) {
                    assigned[i] = Some(k);
                }
            }
        }
    }
    for (k, hits) in hits_of.iter().enumerate() {
        out[k].deals = (0..deals.len()).filter(|&i| assigned[i] == Some(k)).collect();
        // A second copy of a dealt piece, with no result of its own: its deal is imported from
        // the first copy.
        if out[k].deals.is_empty() && !checked[k].has_result {
            if let Some(first) = hits.first().and_then(|&i| assigned[i]) {
                let of = out[first].path.clone();
                out[k].problems.push(Problem::Duplicate { of });
            }
        }
    }
    let states = deals
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let state = match assigned[i] {
                Some(k) => DealState::Found(k),
                None => match out.iter().position(|c| names(&d, &c.path)) {
                    Some(k) => DealState::WrongCar(k),
                    None => DealState::Missing,
                },
            };
            (d, state)
        })
        .collect();
    Received { cars: out, deals: states, with_deals }
}

/// What a received drive's own manifest (`carload-drive.json` in `dir`) claims against what was
/// found: a CAR it lists that is not there, or one whose recomputed payload, size or piece
/// differs from its entry. One line each.
pub fn drive_problems(r: &Received, dir: &Path, m: &super::drive::DriveManifest) -> Vec<String> {
    let mut out = Vec::new();
    for e in &m.cars {
        let path = dir.join(&e.file);
        let Some(car) = r.cars.iter().find(|c| c.path == path) else {
            out.push(format!(
                "missing {}: {} lists it (batch {}, piece {}, {} bytes) but it is not on the drive",
                e.file,
                super::drive::MANIFEST,
                e.batch,
                e.piece_cid,
                e.car_size
            ));
            continue;
        };
        let Some(p) = &car.piece else { continue };
        let mut differs = Vec::new();
        if p.car_size != e.car_size {
            differs.push(format!("{} bytes, listed {}", p.car_size, e.car_size));
        }
        if p.payload_cid != e.payload_cid {
            differs.push(format!("payload {}, listed {}", p.payload_cid, e.payload_cid));
        }
        if p.piece_cid != e.piece_cid && p.piece_cid_v2 != e.piece_cid_v2 {
            differs.push(format!("piece {}, listed {}", p.piece_cid, e.piece_cid));
        }
        if !differs.is_empty() {
            out.push(format!("{}: holds {} ({})", e.file, differs.join("; "), super::drive::MANIFEST));
        }
    }
    out
}

/// The provider's software an import command is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Software {
    /// `boostd import-data <deal-uuid> <car>`.
    Boost,
    /// `curio market add-url --url file://<car> <deal-uuid> <car-size>`.
    Curio,
    /// Legacy `lotus-miner storage-deals import-data <proposal-cid> <car>`.
    Lotus,
}

impl Software {
    /// Every one, in the order `--format` lists them.
    pub const ALL: [Software; 3] = [Software::Boost, Software::Curio, Software::Lotus];

    /// Its name, as `--format` takes it.
    pub const fn name(self) -> &'static str {
        match self {
            Software::Boost => "boost",
            Software::Curio => "curio",
            Software::Lotus => "lotus",
        }
    }

    /// The placeholder for a deal not in the list.
    pub const fn placeholder(self) -> &'static str {
        match self {
            Software::Lotus => "<proposal-cid>",
            _ => "<deal-uuid>",
        }
    }

    /// The one it is named `name`.
    pub fn from_name(name: &str) -> Option<Software> {
        Software::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The command importing the CAR at `path` (`car_size` bytes) for deal `deal` (`None`: the
/// placeholder); the path and the deal are quoted for the shell.
pub fn import_command(software: Software, deal: Option<&str>, path: &Path, car_size: u64) -> String {
    use super::export::shell_word;
    let deal = deal.map(shell_word).unwrap_or(std::borrow::Cow::Borrowed(software.placeholder()));
    let path = path.to_string_lossy();
    match software {
        Software::Boost => format!("boostd import-data {deal} {}", shell_word(&path)),
        Software::Curio => {
            format!("curio market add-url --url {} {deal} {car_size}", shell_word(&format!("file://{path}")))
        }
        Software::Lotus => format!("lotus-miner storage-deals import-data {deal} {}", shell_word(&path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece() -> String {
        crate::commp::commp_of_bytes(&[7u8; 300]).unwrap().cid_v1().to_string()
    }

    #[test]
    fn deal_lists_in_every_form() {
        let piece = piece();
        #[allow(non_snake_case)]
        let PIECE = piece.as_str();
        let p = Path::new("d");
        let csv = format!("piece_cid,piece_size,piece_size_unpadded,car_size,payload_cid,car_file,batch\n{PIECE},1048576,1040384,10,bafy,\"/x/b00001.car\",b00001\n");
        let d = parse_deals(p, &csv).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].batch.as_deref(), d[0].car_file.as_deref(), d[0].piece_size),
            (Some("b00001"), Some("b00001.car"), Some(1048576))
        );
        assert_eq!(d[0].uuid, None);
        let with_uuid = format!("deal_uuid,piece_cid\nu-1,{PIECE}\n");
        assert_eq!(parse_deals(p, &with_uuid).unwrap()[0].uuid.as_deref(), Some("u-1"));
        let plain = format!("# from boost\nu-2 {PIECE}\n{PIECE}\tu-3\n");
        let d = parse_deals(p, &plain).unwrap();
        assert_eq!(d.iter().map(|d| d.uuid.clone().unwrap()).collect::<Vec<_>>(), ["u-2", "u-3"]);
        let boost = format!("{{\"dealUuid\":\"u-4\",\"commp\":\"{PIECE}\",\"startEpoch\":1}}\n");
        assert_eq!(parse_deals(p, &boost).unwrap()[0].uuid.as_deref(), Some("u-4"));
        let ship = format!("{{\"carload-shipment\":2}}\n{{\"id\":\"b00000\"}}\n{{\"id\":\"b00001\",\"result\":{{\"piece_cid\":\"{PIECE}\",\"piece_size\":128,\"batch\":\"b00001\"}}}}\n");
        let d = parse_deals(p, &ship).unwrap();
        assert_eq!((d.len(), d[0].batch.as_deref(), d[0].from.as_str()), (1, Some("b00001"), "d:3"));
    }

    #[test]
    fn bad_deal_lists_name_the_line() {
        let p = Path::new("deals.txt");
        assert_eq!(
            parse_deals(p, "u-1 notapiece\n").unwrap_err().to_string(),
            "deals.txt:1: \"u-1 notapiece\" is not `<deal-uuid> <piece-cid>`"
        );
        assert!(parse_deals(p, "# nothing\n\n").unwrap_err().to_string().starts_with("deals.txt: no deals"));
        let e = parse_deals(p, "piece_cid,batch\nbafyx,b1\n").unwrap_err().to_string();
        assert_eq!(e, "deals.txt:2: \"bafyx\" is not a piece CID");
        assert!(parse_deals(p, "{nope\n").unwrap_err().to_string().starts_with("deals.txt:1: not JSON"));
    }

    #[test]
    fn lists_are_joined_by_piece_cid() {
        let deal = |uuid: Option<&str>, batch: Option<&str>, from: &str| Deal {
            uuid: uuid.map(Into::into),
            piece_cid: piece(),
            piece_size: None,
            batch: batch.map(Into::into),
            car_file: None,
            from: from.into(),
        };
        let merged = merge_deals(vec![
            deal(None, Some("b1"), "a.csv:2"),
            deal(Some("u-1"), None, "u.txt:1"),
            deal(Some("u-2"), None, "u.txt:2"),
        ]);
        // The CSV's row and the first UUID are one deal; a second UUID is a second deal.
        assert_eq!(merged.len(), 2);
        assert_eq!((merged[0].uuid.as_deref(), merged[0].batch.as_deref()), (Some("u-1"), Some("b1")));
        assert_eq!(merged[0].from, "a.csv:2, u.txt:1");
        assert_eq!((merged[1].uuid.as_deref(), merged[1].batch.as_deref()), (Some("u-2"), None));
    }

    #[test]
    fn cars_are_read_in_name_order_and_each_is_announced() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.car", "a.car", ".a.car.123.partial", ".hidden.car", "a.car.manifest", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"not a CAR").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.car")).unwrap();
        let cars = car_files(dir.path()).unwrap();
        assert_eq!(cars, [dir.path().join("a.car"), dir.path().join("b.car")]);
        let mut seen = Vec::new();
        let r = receive_observed(&cars, None, &mut |k, p| seen.push((k, p.to_path_buf())));
        assert_eq!(seen, [(0, cars[0].clone()), (1, cars[1].clone())]);
        assert!(r.cars.iter().all(|c| matches!(c.problems.as_slice(), [Problem::Unreadable(_)])));
        assert!(!r.ok());
        let e = car_files(&dir.path().join("none")).unwrap_err().to_string();
        assert!(e.ends_with("none: No such file or directory (os error 2)"), "{e}");
    }

    #[test]
    fn import_commands_quote_and_mark_placeholders() {
        let car = Path::new("/mnt/drive 1/b00001.car");
        assert_eq!(
            import_command(Software::Boost, Some("u-1"), car, 10),
            "boostd import-data u-1 '/mnt/drive 1/b00001.car'"
        );
        assert_eq!(
            import_command(Software::Boost, None, Path::new("/d/a.car"), 10),
            "boostd import-data <deal-uuid> /d/a.car"
        );
        assert_eq!(
            import_command(Software::Curio, Some("u-1"), Path::new("/d/a.car"), 10),
            "curio market add-url --url file:///d/a.car u-1 10"
        );
        assert_eq!(
            import_command(Software::Lotus, None, Path::new("/d/a.car"), 10),
            "lotus-miner storage-deals import-data <proposal-cid> /d/a.car"
        );
        for s in Software::ALL {
            assert_eq!(Software::from_name(s.name()), Some(s));
        }
    }
}
