//! The strict check of a built batch (`carload verify SHIPMENT --out DIR`, `verify CAR
//! --result`): everything its result, its sidecar manifest and its shipment record claim is
//! recomputed from the CAR and compared. The cheap judgement ([`super::judge`]) decides whether
//! a batch counts as built; this reads the CAR.
//!
//! Checked: the CAR itself ([`crate::verify::verify_car`]: every block against its CID, UnixFS
//! semantics, the DAG complete, the aggregate manifest against the DAG), its payload CID and
//! size, its piece (CID v1 and v2, padded and unpadded size, padded to the shipment's minimum
//! piece size), the sidecar `<id>.car.manifest` byte for byte against the manifest in the CAR,
//! the result's file list against the batch record (names and parts, in order) and its file
//! DAG CIDs against the manifest's entries (as sets: identical files share one entry).

use super::build::outputs;
use super::file::{Batch, BatchResult, ResultFile};
use super::judge::check_fields;
use crate::commp::PieceInfo;
use std::io::{self, Read};
use std::path::Path;

/// What checking a built batch found: one line per problem, and the CAR's own report when it
/// could be read.
#[derive(Debug, Default)]
pub struct BatchCheck {
    /// One line per problem (the CAR's own problems included).
    pub problems: Vec<String>,
    /// Problems found in all (the CAR's list is capped; its count is exact).
    pub problem_count: u64,
    /// The CAR's report.
    pub report: Option<crate::verify::Report>,
}

impl BatchCheck {
    fn problem(&mut self, line: String) {
        self.problem_count += 1;
        self.problems.push(line);
    }
}

/// Compares what `result` claims with what `report` (the CAR's verification) found: payload
/// CID, CAR size, and the piece padded to `min_piece_size` (or, with `deal_size`, to the deal's
/// padded piece size, which must be a power of two at least the CAR's natural piece).
pub fn compare_result(
    result: &BatchResult,
    report: &crate::verify::Report,
    min_piece_size: Option<u64>,
) -> Vec<String> {
    let mut p = Vec::new();
    if let Err(why) = check_fields(result, min_piece_size) {
        p.push(format!("result: {why}"));
    }
    let root = report.roots.first().map(|c| c.to_string()).unwrap_or_default();
    if report.roots.len() != 1 || root != result.payload_cid {
        p.push(format!(
            "payload CID {root} (roots: {}) is not the result's {}",
            report.roots.len(),
            result.payload_cid
        ));
    }
    if report.car_size != result.car_size {
        p.push(format!("CAR size {} is not the result's {}", report.car_size, result.car_size));
    }
    let natural = report.piece;
    if !result.piece_size.is_power_of_two() || result.piece_size < natural.padded_size {
        p.push(format!(
            "piece size {} is not a power of two at least the CAR's natural piece of {}",
            result.piece_size, natural.padded_size
        ));
        return p;
    }
    let piece: PieceInfo = natural.pad_to(result.piece_size);
    if piece.cid_v1().to_string() != result.piece_cid {
        p.push(format!("piece CID {} is not the result's {}", piece.cid_v1(), result.piece_cid));
    }
    if piece.cid_v2().to_string() != result.piece_cid_v2 {
        p.push(format!("piece CID v2 {} is not the result's {}", piece.cid_v2(), result.piece_cid_v2));
    }
    if piece.unpadded_size != result.piece_size_unpadded {
        p.push(format!(
            "unpadded piece size {} is not the result's {}",
            piece.unpadded_size, result.piece_size_unpadded
        ));
    }
    p
}

/// Compares the sidecar manifest at `path` (`<id>.car.manifest`) byte for byte with the
/// manifest in the CAR (`content`: its length and SHA-256, from the CAR's verification): `None`
/// when they are the same, else the line saying how they differ. An error reading the sidecar
/// (not found included) is the `Err`.
pub fn sidecar_mismatch(path: &Path, content: (u64, [u8; 32])) -> io::Result<Option<String>> {
    let (digest, len) = std::fs::File::open(path).and_then(|f| digest_of(io::BufReader::new(f)))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    Ok(if (len, digest) == content {
        None
    } else if len == content.0 {
        Some(format!("{name} ({len} bytes) is not the manifest in the CAR (the same length, other bytes)"))
    } else {
        Some(format!("{name} ({len} bytes) is not the manifest in the CAR ({} bytes)", content.0))
    })
}

/// SHA-256 and length of everything `r` yields.
fn digest_of(mut r: impl Read) -> io::Result<([u8; 32], u64)> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let n = io::copy(&mut r, &mut h)?;
    Ok((h.finalize().into(), n))
}

/// Checks built batch `batch` in `dir` against its result `result` (see the module docs).
pub fn check_batch(dir: &Path, header: &super::file::Header, batch: &Batch, result: &BatchResult) -> BatchCheck {
    let out = outputs(dir, &batch.id);
    let mut c = BatchCheck::default();
    let car = match std::fs::File::open(&out.car) {
        Ok(f) => f,
        Err(e) => {
            c.problem(format!("{}: {e}", out.car.display()));
            return c;
        }
    };
    let report = match crate::verify::verify_file(&car, &out.car) {
        Ok(r) => r,
        Err(e) => {
            c.problem(format!("{}: not a readable CAR: {e}", out.car.display()));
            return c;
        }
    };
    c.problem_count += report.problem_count;
    c.problems.extend(report.problems.iter().cloned());
    for line in compare_result(result, &report, Some(header.min_piece_size)) {
        c.problem(line);
    }
    if result.car_size > batch.car_size_bound {
        c.problem(format!("CAR of {} bytes exceeds the batch's bound of {}", result.car_size, batch.car_size_bound));
    }
    c.report = Some(report);
    // The sidecar against the manifest in the CAR (its length and digest, from the same read).
    let content = match report_manifest(&c) {
        Ok(content) => content,
        Err(why) => {
            c.problem(why);
            return c;
        }
    };
    match sidecar_mismatch(&out.manifest, content) {
        Ok(None) => {}
        Ok(Some(line)) => c.problem(line),
        Err(e) => c.problem(format!("{}: {e} (the sidecar manifest is part of a built batch)", out.manifest.display())),
    }
    // The result's files against the record and the manifest's entries (streamed from the CAR).
    let files = match super::judge::read_result_files(dir, &batch.id) {
        Ok(f) => f,
        Err(e) => {
            c.problem(format!("{}: its file list: {e}", out.json.display()));
            return c;
        }
    };
    // 32 bytes per entry; an entry named in a problem is found again by a second pass.
    let mut entries = Vec::new();
    let streamed = crate::aggregate::for_each_manifest_entry(&car, |e| {
        entries.push(entry_key(&e.dag_cid_v1));
        Ok::<(), crate::aggregate::ReadError>(())
    });
    if let Err(e) = streamed {
        c.problem(format!("the manifest in the CAR: {e}"));
        return c;
    }
    let name = |key: &[u8; 32]| {
        let mut found = None;
        let _ = crate::aggregate::for_each_manifest_entry(&car, |e| {
            if found.is_none() && entry_key(&e.dag_cid_v1) == *key {
                found = Some(e.dag_cid_v1.to_string());
            }
            Ok::<(), crate::aggregate::ReadError>(())
        });
        found.unwrap_or_else(|| "?".into())
    };
    for line in compare_files(batch, &files, entries, &name) {
        c.problem(line);
    }
    c
}

/// The manifest in the CAR as the verification read it: its length and SHA-256.
fn report_manifest(c: &BatchCheck) -> Result<(u64, [u8; 32]), String> {
    match c.report.as_ref().and_then(|r| r.manifest.as_ref()) {
        None => Err("the CAR is not a batch (its root has no @AggregateManifest.ndjson)".into()),
        Some(m) => m.content.ok_or_else(|| "the manifest in the CAR cannot be read in full".to_string()),
    }
}

/// What a DAG CID is compared by: the SHA-256 of its CIDv1 bytes (32 bytes whatever the CID).
fn entry_key(c: &cid::Cid) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(crate::block::to_v1(c).to_bytes()).into()
}

/// Compares a result's file list with its batch record (names and parts, in order) and its
/// file DAG CIDs with the manifest's entries (as sets of CIDv1: identical files share one
/// entry). One line per kind of difference, naming the first.
/// `entries` are the manifest's entries by [`entry_key`]; `name` gives an entry's CID back.
pub fn compare_files(
    batch: &Batch,
    files: &[ResultFile],
    entries: Vec<[u8; 32]>,
    name: &dyn Fn(&[u8; 32]) -> String,
) -> Vec<String> {
    let mut p = Vec::new();
    if files.len() != batch.files.len() {
        p.push(format!("the result lists {} files, the batch {}", files.len(), batch.files.len()));
    }
    if let Some((k, (r, f))) = files.iter().zip(&batch.files).enumerate().find(|(_, (r, f))| {
        r.name != f.name || r.offset != f.part.map(|x| x.offset) || r.length != f.part.map(|x| x.len)
    }) {
        p.push(format!("result file {k} is {:?}, the batch's is {:?}", r.name, f.name));
    }
    let mut ours = Vec::with_capacity(files.len());
    for r in files {
        match r.cid.parse::<cid::Cid>() {
            Ok(c) => ours.push((entry_key(&c), r.cid.as_str())),
            Err(e) => {
                p.push(format!("result file {:?}: CID {:?}: {e}", r.name, r.cid));
                return p;
            }
        }
    }
    ours.sort_unstable();
    ours.dedup_by(|a, b| a.0 == b.0);
    let mut listed = entries;
    listed.sort_unstable();
    listed.dedup();
    let missing = ours.iter().find(|(k, _)| listed.binary_search(k).is_err());
    let extra = listed.iter().find(|k| ours.binary_search_by(|e| e.0.cmp(k)).is_err());
    match (missing, extra) {
        (Some((_, cid)), _) => p.push(format!("the result's file DAG {cid} is not an entry of the manifest")),
        (None, Some(k)) => p.push(format!("the manifest's entry {} is no file of the result", name(k))),
        (None, None) => {}
    }
    p
}
