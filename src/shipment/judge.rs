//! One judgement of a batch: what its output folder holds for it — its result `<id>.json`, its
//! CAR and sidecar manifest, its lock — checked against its record. `build`, `status`, `export`,
//! `verify`, `extract` and the workstation all ask [`judge`] (or [`find_result`], its part about
//! the outputs), so they never disagree about a batch.
//!
//! Nothing in an output folder is trusted: a result counts as built only if every field is
//! consistent with the others (the piece sizes and piece CID v2 follow from the piece CID and
//! the CAR size), its fingerprint is the batch's as planned ([`Fingerprints`]), its CAR has the
//! size it records and fits the batch's bound, and its sidecar manifest is present. What this
//! cheap judgement cannot see (the CAR's bytes) `verify` recomputes.

use super::build::outputs;
use super::file::{Batch, BatchResult, FileRef, Header, ResultFile};
use super::lock::{read_lock, Rule, Verdict};
use super::status::{BatchStatus, State, Watched};
use std::io::{self, Read};
use std::path::Path;
use std::time::SystemTime;

/// The fingerprints a result of a batch may carry: the current one, and for a version 1
/// shipment the one carload wrote before fingerprints covered the base folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprints {
    /// [`fingerprint`] of the batch.
    pub current: String,
    /// [`legacy_fingerprint`], accepted for version 1 shipments only.
    pub legacy: Option<String>,
}

impl Fingerprints {
    /// The fingerprints of `batch` planned in `header`.
    pub fn of(header: &Header, batch: &Batch) -> Self {
        Fingerprints {
            current: fingerprint(header, batch),
            legacy: (header.version < 2).then(|| legacy_fingerprint(header, batch)),
        }
    }

    /// Whether a result carrying fingerprint `f` was built from this batch.
    pub fn accepts(&self, f: &str) -> bool {
        f == self.current || self.legacy.as_deref() == Some(f)
    }
}

/// Prefix of the current fingerprints (a legacy one is bare hex).
const CURRENT: &str = "v2-";

/// A digest of everything a batch's outputs depend on: the shipment's format version and base
/// folder (where its names resolve), the DAG profile, the minimum piece size (the piece CID's
/// padding), the batch ID and every file record (name, size, modification time, status-change
/// time and inode, part). `v2-` and the hex SHA-256 of their JSON.
pub fn fingerprint(header: &Header, batch: &Batch) -> String {
    #[derive(serde::Serialize)]
    struct Canonical<'a> {
        base: Option<&'a str>,
        files: &'a [FileRef],
        id: &'a str,
        min_piece_size: u64,
        profile: serde_json::Value,
        version: u64,
    }
    let canonical = Canonical {
        base: header.base.as_deref(),
        files: &batch.files,
        id: &batch.id,
        min_piece_size: header.min_piece_size,
        profile: serde_json::to_value(header.profile).expect("profiles serialize"),
        version: header.version,
    };
    format!("{CURRENT}{}", digest_of(&canonical))
}

/// The fingerprint carload wrote before it covered the base folder and the format version:
/// profile, minimum piece size, ID and file records. Hex SHA-256 of their JSON.
pub fn legacy_fingerprint(header: &Header, batch: &Batch) -> String {
    /// The JSON `serde_json::json!` made of these fields (keys sorted at every level).
    #[derive(serde::Serialize)]
    struct Canonical<'a> {
        files: &'a [FileRef],
        id: &'a str,
        min_piece_size: u64,
        profile: serde_json::Value,
    }
    digest_of(&Canonical {
        files: &batch.files,
        id: &batch.id,
        min_piece_size: header.min_piece_size,
        profile: serde_json::to_value(header.profile).expect("profiles serialize"),
    })
}

/// Hex SHA-256 of `value`'s JSON, written as a stream into the hash (a file list is never
/// copied).
fn digest_of(value: &impl serde::Serialize) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    serde_json::to_writer(&mut h, value).expect("records serialize");
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `result` was built from `batch` as planned in `header`: its fingerprint is one
/// [`Fingerprints`] accepts, or, for a version 1 result written before fingerprints existed,
/// its files are exactly the batch's.
pub fn result_belongs(header: &Header, batch: &Batch, result: &BatchResult) -> bool {
    result.batch == batch.id
        && match &result.fingerprint {
            Some(f) => Fingerprints::of(header, batch).accepts(f),
            None => header.version < 2 && result_matches(batch, result),
        }
}

/// Whether `result` was built from exactly the files of `batch` (names and part ranges, in
/// order): how results written before fingerprints existed are matched.
pub fn result_matches(batch: &Batch, result: &BatchResult) -> bool {
    result.batch == batch.id
        && result.files.len() == batch.files.len()
        && result
            .files
            .iter()
            .zip(&batch.files)
            .all(|(r, f)| r.name == f.name && r.offset == f.part.map(|p| p.offset) && r.length == f.part.map(|p| p.len))
}

/// `<id>.json` without its file list.
#[derive(serde::Deserialize)]
struct Summary {
    payload_cid: String,
    piece_size: u64,
    piece_cid: String,
    piece_size_unpadded: u64,
    car_size: u64,
    piece_cid_v2: String,
    batch: String,
    #[serde(default)]
    fingerprint: Option<String>,
}

impl Summary {
    fn into_result(self) -> BatchResult {
        BatchResult {
            payload_cid: self.payload_cid,
            piece_size: self.piece_size,
            piece_cid: self.piece_cid,
            piece_size_unpadded: self.piece_size_unpadded,
            car_size: self.car_size,
            piece_cid_v2: self.piece_cid_v2,
            files: Vec::new(),
            batch: self.batch,
            fingerprint: self.fingerprint,
        }
    }
}

/// What `<id>.json` in an output folder holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// No result file.
    Absent,
    /// A result (without its file list), its fields not yet checked.
    Result(BatchResult),
    /// A file that is not a result (garbled, or not JSON of a result), with the parser's words.
    Garbled(String),
}

/// Reads batch `id`'s result in `dir` without its file list (a batch may list millions of
/// files). An I/O error other than "not found" is an `Err`: a transient error on a shared file
/// system must not make a finished batch look unbuilt.
pub fn load_result(dir: &Path, id: &str) -> io::Result<Loaded> {
    let file = match std::fs::File::open(outputs(dir, id).json) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Absent),
        Err(e) => return Err(e),
    };
    match serde_json::from_reader::<_, Summary>(io::BufReader::with_capacity(1 << 16, file)) {
        Ok(s) => Ok(Loaded::Result(s.into_result())),
        Err(e) if e.is_io() => Err(io::Error::new(e.io_error_kind().unwrap_or(io::ErrorKind::Other), e)),
        Err(e) => Ok(Loaded::Garbled(e.to_string())),
    }
}

/// The result recorded for batch `id` in `dir` if it is well formed and its CAR has its size
/// (whoever it belongs to: [`find_result`] judges that).
pub fn built_result(dir: &Path, id: &str) -> Option<BatchResult> {
    read_result(dir, id).ok().flatten()
}

/// [`built_result`], telling "none" (`Ok(None)`) from a failure to read (`Err`).
pub fn read_result(dir: &Path, id: &str) -> io::Result<Option<BatchResult>> {
    let Loaded::Result(r) = load_result(dir, id)? else { return Ok(None) };
    if r.batch != id || check_fields(&r, None).is_err() {
        return Ok(None);
    }
    match std::fs::metadata(outputs(dir, id).car) {
        Ok(m) => Ok((m.len() == r.car_size).then_some(r)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The file list of batch `id`'s result in `dir` (`[]` when there is no result).
pub fn read_result_files(dir: &Path, id: &str) -> io::Result<Vec<ResultFile>> {
    #[derive(serde::Deserialize)]
    struct Files {
        files: Vec<ResultFile>,
    }
    let file = match std::fs::File::open(outputs(dir, id).json) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let f: Files = serde_json::from_reader(io::BufReader::with_capacity(1 << 16, file)).map_err(io::Error::other)?;
    Ok(f.files)
}

/// Checks that a result's fields agree with each other (and with the shipment's minimum piece
/// size, when given): the payload CID is a CID, the piece CID a piece commitment (v1), the
/// padded piece size the CAR's natural piece or the minimum, whichever is larger, the unpadded
/// size the padded one's, and the piece CID v2 the one the piece CID, CAR size and piece size
/// make. A result that lies in any of them is refused whatever its CAR holds.
pub fn check_fields(r: &BatchResult, min_piece_size: Option<u64>) -> Result<(), String> {
    use crate::commp::{padded_piece_size, unpadded_piece_size, PieceInfo};
    r.payload_cid.parse::<cid::Cid>().map_err(|e| format!("payload_cid {:?}: {e}", r.payload_cid))?;
    let piece: cid::Cid = r.piece_cid.parse().map_err(|e| format!("piece_cid {:?}: {e}", r.piece_cid))?;
    let root: [u8; 32] = match (piece.version(), piece.codec(), piece.hash().code(), piece.hash().digest()) {
        (cid::Version::V1, crate::commp::FIL_COMMITMENT_UNSEALED, crate::commp::SHA2_256_TRUNC254_PADDED, d)
            if d.len() == 32 =>
        {
            d.try_into().expect("32 bytes")
        }
        _ => return Err(format!("piece_cid {}: not a piece commitment (v1)", r.piece_cid)),
    };
    let natural = padded_piece_size(r.car_size);
    let want = natural.max(min_piece_size.unwrap_or(0));
    if !r.piece_size.is_power_of_two() || r.piece_size < natural || min_piece_size.is_some_and(|_| r.piece_size != want)
    {
        return Err(format!(
            "piece_size {} is not {want}: the piece of a {}-byte CAR{}",
            r.piece_size,
            r.car_size,
            min_piece_size.map(|m| format!(" padded to the minimum piece size {m}")).unwrap_or_default()
        ));
    }
    if r.piece_size_unpadded != unpadded_piece_size(r.piece_size) {
        return Err(format!(
            "piece_size_unpadded {} is not {} (the unpadded size of a {}-byte piece)",
            r.piece_size_unpadded,
            unpadded_piece_size(r.piece_size),
            r.piece_size
        ));
    }
    let info = PieceInfo {
        root,
        payload_size: r.car_size,
        padded_size: r.piece_size,
        unpadded_size: unpadded_piece_size(r.piece_size),
    };
    let v2 = info.cid_v2().to_string();
    if r.piece_cid_v2 != v2 {
        return Err(format!("piece_cid_v2 {} is not {v2} (from piece_cid, car_size and piece_size)", r.piece_cid_v2));
    }
    Ok(())
}

/// What an output folder holds for a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A result built from exactly this batch, consistent, with its CAR and sidecar present.
    Built(BatchResult),
    /// No result.
    Missing,
    /// A result for the same ID built from other contents (an earlier plan), with the reason.
    Other(String),
    /// Outputs present but inconsistent (a result that lies, a CAR missing, truncated or over
    /// the bound, no sidecar manifest), with the reason. Never taken as built.
    Corrupt(String),
    /// The outputs could not be read (an I/O error other than "not found"): neither built nor
    /// safe to rebuild over.
    Unreadable(String),
}

/// What [`find_result`] needs of a batch: its ID, CAR bound and fingerprints; `batch` gives the
/// whole record, asked for only to judge a version 1 result written before fingerprints
/// existed (by its file list).
pub struct Expect<'a> {
    /// Batch ID.
    pub id: &'a str,
    /// Its CAR size bound.
    pub car_size_bound: u64,
    /// Its fingerprints.
    pub fingerprints: &'a Fingerprints,
    /// The record, on demand.
    pub batch: &'a dyn Fn() -> Option<Batch>,
}

/// Looks for `batch`'s result in `dir` and judges it (see the module documentation).
pub fn find_result(dir: &Path, header: &Header, batch: &Batch) -> Found {
    let fingerprints = Fingerprints::of(header, batch);
    let whole = || Some(batch.clone());
    let e = Expect { id: &batch.id, car_size_bound: batch.car_size_bound, fingerprints: &fingerprints, batch: &whole };
    find_result_by(dir, header, &e)
}

/// [`find_result`] for a batch known by what [`Expect`] holds (no file list needed).
pub fn find_result_by(dir: &Path, header: &Header, e: &Expect<'_>) -> Found {
    let out = outputs(dir, e.id);
    let json = out.json.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let unreadable = |what: &Path, err: io::Error| Found::Unreadable(format!("reading {}: {err}", what.display()));
    let r = match load_result(dir, e.id) {
        Err(err) => return unreadable(&out.json, err),
        Ok(Loaded::Absent) => return Found::Missing,
        Ok(Loaded::Garbled(why)) => return Found::Corrupt(format!("{json} is not a batch result ({why})")),
        Ok(Loaded::Result(r)) => r,
    };
    if r.batch != e.id {
        return Found::Corrupt(format!("{json} is the result of batch {:?}", r.batch));
    }
    if let Err(why) = check_fields(&r, Some(header.min_piece_size)) {
        return Found::Corrupt(format!("{json}: {why}"));
    }
    let belongs = match &r.fingerprint {
        Some(f) => e.fingerprints.accepts(f),
        None => {
            header.version < 2
                && (e.batch)().is_some_and(|b| {
                    read_result_files(dir, e.id)
                        .is_ok_and(|files| result_matches(&b, &BatchResult { files, ..r.clone() }))
                })
        }
    };
    if !belongs {
        return Found::Other(format!(
            "{json} in {} was built from other contents than the shipment's batch {} (an earlier plan, or another shipment's)",
            dir.display(),
            e.id
        ));
    }
    let car = match std::fs::metadata(&out.car) {
        Ok(m) => m,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Found::Corrupt(format!("{json} records a built batch but {}.car is missing", e.id))
        }
        Err(err) => return unreadable(&out.car, err),
    };
    if car.len() != r.car_size {
        return Found::Corrupt(format!("{}.car is {} bytes, its result records {}", e.id, car.len(), r.car_size));
    }
    if r.car_size > e.car_size_bound {
        return Found::Corrupt(format!(
            "{}.car of {} bytes exceeds the batch's bound of {}",
            e.id, r.car_size, e.car_size_bound
        ));
    }
    match std::fs::symlink_metadata(&out.manifest) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Found::Corrupt(format!("{}.car.manifest is not a regular file", e.id)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Found::Corrupt(format!("{}.car.manifest (the batch's manifest beside its CAR) is missing", e.id))
        }
        Err(err) => return unreadable(&out.manifest, err),
    }
    Found::Built(r)
}

/// What `<id>.failed` records: the batch, the fingerprint of what failed, where and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    /// Batch ID.
    pub batch: String,
    /// [`fingerprint`] of the batch that failed (a failure of an earlier plan is not shown).
    pub fingerprint: String,
    /// The builder's host.
    pub host: String,
    /// Why, one line.
    pub reason: String,
}

/// Records that building `batch` failed, in `dir` (atomically; a builder that later builds it
/// removes the record). Shown by [`judge`] while the batch is not built and not locked.
pub fn record_failure(dir: &Path, header: &Header, batch: &Batch, host: &str, reason: &str) -> io::Result<()> {
    let f = Failure {
        batch: batch.id.clone(),
        fingerprint: fingerprint(header, batch),
        host: host.to_string(),
        reason: reason.lines().next().unwrap_or("").to_string(),
    };
    let path = outputs(dir, &batch.id).failed;
    let file = crate::output::AtomicFile::create(&path, true).map_err(io::Error::other)?;
    serde_json::to_writer(file.file(), &f)?;
    file.commit().map_err(io::Error::other)
}

/// The failure recorded for batch `id` in `dir`, if it is one of the batch as planned now
/// (read at most 64 KiB: the file is untrusted).
fn read_failure(dir: &Path, id: &str, fingerprints: &Fingerprints) -> Option<Failure> {
    let mut text = Vec::new();
    std::fs::File::open(outputs(dir, id).failed).ok()?.take(64 << 10).read_to_end(&mut text).ok()?;
    let f: Failure = serde_json::from_slice(&text).ok()?;
    (f.batch == id && fingerprints.accepts(&f.fingerprint)).then_some(f)
}

/// Judges batch `w` in `dir` at time `now`: [`find_result_by`] on its outputs, then its lock,
/// its holder judged by `rule` (as `build` judges it: stale, or provably gone). A built batch is
/// built whatever its lock says; a live lock shows a batch being (re)built whatever outputs it
/// replaces; a lock path that is not a regular file is a problem.
pub fn judge(
    dir: &Path,
    header: &Header,
    w: &Watched,
    batch: &dyn Fn() -> Option<Batch>,
    now: SystemTime,
    rule: &Rule,
) -> BatchStatus {
    let e = Expect { id: &w.id, car_size_bound: w.car_size_bound, fingerprints: &w.fingerprints, batch };
    let found = find_result_by(dir, header, &e);
    let mut result = None;
    let state = match found {
        Found::Built(r) => {
            let state = State::Built {
                payload_cid: r.payload_cid.clone(),
                piece_cid: r.piece_cid.clone(),
                piece_size: r.piece_size,
                car_size: r.car_size,
                sources_changed: None,
            };
            result = Some(r);
            state
        }
        other => match read_lock(dir, &w.id, now, rule) {
            Err(e) => State::Problem { reason: e.to_string() },
            Ok(Some(h)) if h.verdict != Verdict::Live => {
                State::StaleLock { host: h.host, pid: h.pid, heartbeat_age: h.age.as_secs(), reason: h.verdict }
            }
            Ok(Some(h)) => State::Building {
                host: h.host,
                pid: h.pid,
                heartbeat_age: h.age.as_secs(),
                progress: h.progress.filter(|p| p.is_for(w.bytes, w.files, w.car_size_bound)),
            },
            Ok(None) => match other {
                Found::Missing => match read_failure(dir, &w.id, &w.fingerprints) {
                    Some(f) => State::Failed { host: f.host, reason: f.reason },
                    None => State::NotBuilt,
                },
                Found::Corrupt(reason) => State::Corrupt { reason },
                Found::Other(reason) | Found::Unreadable(reason) => State::Problem { reason },
                Found::Built(_) => unreachable!("handled above"),
            },
        },
    };
    BatchStatus { id: w.id.clone(), bytes: w.bytes, state, result }
}
