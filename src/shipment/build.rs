//! Building one batch of a shipment: check the sources, build the aggregate CAR with
//! [`crate::batch::build`] (one read of every source, commP on the way), check it against the
//! planned bound, pad the piece to the shipment's minimum piece size, and write `DIR/<id>.car`, `<id>.car.manifest` and `<id>.json` atomically (the
//! JSON last: its presence with a matching CAR size marks the batch as built).

use super::file::{write_result_json, Batch, BatchResult, FileRef, Header, ResultFile};
use super::plan::mtime_ns;
use crate::batch::{BatchError, BatchFile};
use crate::event::Observer;
use crate::importer::Entry;
use crate::output::{AtomicFile, OutputError};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Errors building a batch.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A source file changed since planning.
    #[error("{path}: changed since planning ({detail}); re-run `carload plan`")]
    Changed {
        /// The file.
        path: PathBuf,
        /// What changed.
        detail: String,
    },
    /// A source file cannot be read.
    #[error("{path}: {source}")]
    Source {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Building failed.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// Writing an output failed.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Writing an output failed.
    #[error("{path}: {source}")]
    Write {
        /// The output.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The CAR came out larger than planned (a bug; please report).
    #[error("batch {id}: CAR of {actual} bytes exceeds the planned bound of {bound} bytes (internal error)")]
    OverBound {
        /// Batch ID.
        id: String,
        /// Planned bound.
        bound: u64,
        /// Bytes written.
        actual: u64,
    },
    /// Our lock was taken over while building.
    #[error("batch {0}: lock lost to another builder (heartbeat missed?); outputs not committed")]
    LockLost(String),
}

/// Output file paths of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// `<id>.car`.
    pub car: PathBuf,
    /// `<id>.car.manifest`.
    pub manifest: PathBuf,
    /// `<id>.json`.
    pub json: PathBuf,
}

/// Output paths of batch `id` in `dir`.
pub fn outputs(dir: &Path, id: &str) -> Outputs {
    Outputs {
        car: dir.join(format!("{id}.car")),
        manifest: dir.join(format!("{id}.car.manifest")),
        json: dir.join(format!("{id}.json")),
    }
}

/// Where `name` is read from: relative names resolve against `root`.
pub fn source_path(name: &str, root: Option<&Path>) -> PathBuf {
    let p = super::file::name_to_path(name);
    let p = p.as_path();
    match root {
        Some(r) if p.is_relative() => r.join(p),
        _ => p.to_path_buf(),
    }
}

/// The source root of a shipment: `override_root`, else the header's `base`.
pub fn source_root<'a>(header: &'a Header, override_root: Option<&'a Path>) -> Option<&'a Path> {
    override_root.or(header.base.as_deref().map(Path::new))
}

/// The files of a shipment batch as [`crate::batch::BatchFiles`]: each [`BatchFile`] is made
/// when the builder asks for it, so a batch of millions of files is held once, as its records.
#[derive(Debug, Clone, Copy)]
pub struct SourceFiles<'a> {
    batch: &'a Batch,
    root: Option<&'a Path>,
}

impl crate::batch::BatchFiles for SourceFiles<'_> {
    fn count(&self) -> usize {
        self.batch.files.len()
    }

    fn file(&self, i: usize) -> std::borrow::Cow<'_, BatchFile> {
        let f = &self.batch.files[i];
        let path = source_path(&f.name, self.root);
        let entry = match f.part {
            None => Entry::File { path, size: f.size },
            Some(p) => Entry::FileRange { path, offset: p.offset, len: p.len },
        };
        std::borrow::Cow::Owned(BatchFile { name: f.name.clone(), entry })
    }

    fn size(&self, i: usize) -> u64 {
        self.batch.files[i].len()
    }
}

/// Checks every source of `batch` still has its planned size and mtime, and returns the batch
/// files to build.
pub fn check_sources<'a>(batch: &'a Batch, root: Option<&'a Path>) -> Result<SourceFiles<'a>, BuildError> {
    for f in &batch.files {
        let path = source_path(&f.name, root);
        let meta = std::fs::metadata(&path).map_err(|source| BuildError::Source { path: path.clone(), source })?;
        let changed = |detail: String| BuildError::Changed { path: path.clone(), detail };
        if !meta.is_file() {
            return Err(changed("no longer a regular file".into()));
        }
        if meta.len() != f.size {
            return Err(changed(format!("size {} bytes, planned {}", meta.len(), f.size)));
        }
        if mtime_ns(&meta) != f.mtime_ns {
            return Err(changed(format!("modification time {} ns, planned {}", mtime_ns(&meta), f.mtime_ns)));
        }
    }
    Ok(SourceFiles { batch, root })
}

/// The result recorded for `batch` in `dir`, if the batch is built: `<id>.json` parses, names
/// the batch, and `<id>.car` has its `car_size`.
pub fn built_result(dir: &Path, id: &str) -> Option<BatchResult> {
    read_result(dir, id).ok().flatten()
}

/// [`built_result`], telling "not built" (`Ok(None)`) from a failure to read (`Err`): a transient
/// error on a shared file system must not make a finished batch look unbuilt.
pub fn read_result(dir: &Path, id: &str) -> io::Result<Option<BatchResult>> {
    let out = outputs(dir, id);
    let file = match std::fs::File::open(&out.json) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // The file list is skipped as it is read (a batch may list millions of files).
    let r = match serde_json::from_reader::<_, Summary>(io::BufReader::with_capacity(1 << 16, file)) {
        Ok(s) => s.into_result(),
        Err(e) if e.is_io() => return Err(io::Error::new(e.io_error_kind().unwrap_or(io::ErrorKind::Other), e)),
        Err(_) => return Ok(None),
    };
    let car = match std::fs::metadata(&out.car) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok((r.batch == id && car.len() == r.car_size).then_some(r))
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

/// A digest of everything a batch's outputs depend on: the DAG profile, the minimum piece size
/// (the piece CID's padding), the batch ID and every file record (name, size, modification time,
/// part). Hex SHA-256 of their JSON.
pub fn fingerprint(header: &Header, batch: &Batch) -> String {
    use sha2::Digest;
    /// The JSON `serde_json::json!` made of these fields (keys sorted at every level), written
    /// as a stream into the hash: the file list is never copied.
    #[derive(serde::Serialize)]
    struct Canonical<'a> {
        files: &'a [FileRef],
        id: &'a str,
        min_piece_size: u64,
        profile: serde_json::Value,
    }
    let canonical = Canonical {
        files: &batch.files,
        id: &batch.id,
        min_piece_size: header.min_piece_size,
        profile: serde_json::to_value(header.profile).expect("profiles serialize"),
    };
    let mut h = sha2::Sha256::new();
    serde_json::to_writer(&mut h, &canonical).expect("records serialize");
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `result` was built from `batch` as planned in `header`: its fingerprint matches, or,
/// for a result written before fingerprints existed, its files are exactly the batch's.
pub fn result_belongs(header: &Header, batch: &Batch, result: &BatchResult) -> bool {
    match &result.fingerprint {
        Some(f) => result.batch == batch.id && *f == fingerprint(header, batch),
        None => result_matches(batch, result),
    }
}

/// [`result_belongs`] for a result read from `dir` without its files: a result from before
/// fingerprints existed has its file list read to compare.
fn result_in_dir_belongs(dir: &Path, header: &Header, batch: &Batch, result: &BatchResult) -> bool {
    match &result.fingerprint {
        Some(_) => result_belongs(header, batch, result),
        None => read_result_files(dir, &batch.id)
            .is_ok_and(|files| result_matches(batch, &BatchResult { files, ..result.clone() })),
    }
}

/// What an output folder holds for a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A result built from exactly this batch.
    Built(BatchResult),
    /// Nothing (or an incomplete build).
    Missing,
    /// A result for the same ID built from other contents (an earlier plan), with the reason.
    Other(String),
    /// The result could not be read (an I/O error other than "not found"): neither built nor
    /// safe to rebuild over.
    Unreadable(String),
}

/// Looks for batch `batch`'s result in `dir`, and checks that it belongs to it
/// ([`result_belongs`]). A result for the same ID that does not is never taken as built.
pub fn find_result(dir: &Path, header: &Header, batch: &Batch) -> Found {
    find_result_with(dir, &batch.id, &|r| result_in_dir_belongs(dir, header, batch, r))
}

/// [`find_result`] for batch `id` with a precomputed [`fingerprint`]; `batch` is asked for only
/// to judge a result written before fingerprints existed (by its file list).
pub fn find_result_by(
    dir: &Path,
    header: &Header,
    id: &str,
    fingerprint: &str,
    batch: &dyn Fn() -> Option<Batch>,
) -> Found {
    find_result_with(dir, id, &|r| match &r.fingerprint {
        Some(f) => r.batch == id && f == fingerprint,
        None => batch().is_some_and(|b| result_in_dir_belongs(dir, header, &b, r)),
    })
}

fn find_result_with(dir: &Path, id: &str, belongs: &dyn Fn(&BatchResult) -> bool) -> Found {
    match read_result(dir, id) {
        Err(e) => Found::Unreadable(format!("reading its result in {}: {e}", dir.display())),
        Ok(None) => Found::Missing,
        Ok(Some(r)) if belongs(&r) => Found::Built(r),
        Ok(Some(_)) => Found::Other(format!(
            "{} in {} was built from other contents than the shipment's batch {id} (an earlier plan?)",
            outputs(dir, id).json.file_name().unwrap_or_default().to_string_lossy(),
            dir.display(),
        )),
    }
}

/// Whether `result` was built from exactly the files of `batch` (names and part ranges, in
/// order). A result left by an earlier plan of the same batch ID does not match.
pub fn result_matches(batch: &Batch, result: &BatchResult) -> bool {
    result.batch == batch.id
        && result.files.len() == batch.files.len()
        && result
            .files
            .iter()
            .zip(&batch.files)
            .all(|(r, f)| r.name == f.name && r.offset == f.part.map(|p| p.offset) && r.length == f.part.map(|p| p.len))
}

/// Recomputes the commP of a built batch's CAR (padded to the shipment's minimum piece size, as
/// [`build_batch`] records it) and compares it with its result.
pub fn verify(dir: &Path, result: &BatchResult, min_piece_size: u64) -> Result<bool, BuildError> {
    let path = outputs(dir, &result.batch).car;
    let f = std::fs::File::open(&path).map_err(|source| BuildError::Write { path: path.clone(), source })?;
    let piece = crate::commp::commp_of_reader(io::BufReader::with_capacity(1 << 20, f))
        .map_err(|e| BuildError::Write { path: path.clone(), source: io::Error::other(e) })?
        .pad_to(min_piece_size);
    Ok(piece.cid_v1().to_string() == result.piece_cid && piece.payload_size == result.car_size)
}

/// Removes temporary output files (`.<id>.car.*.partial` and the like) left in `dir` by a builder
/// of batch `id` that died. Call only while holding the batch's lock.
pub fn remove_partials(dir: &Path, id: &str) -> io::Result<usize> {
    let prefixes = [format!(".{id}.car."), format!(".{id}.car.manifest."), format!(".{id}.json.")];
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".partial") && prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            std::fs::remove_file(e.path())?;
            n += 1;
        }
    }
    Ok(n)
}

/// Writes `path` atomically with what `body` writes (buffered).
fn write_atomic(path: &Path, body: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), BuildError> {
    let f = AtomicFile::create(path, true)?;
    let mut w = BufWriter::with_capacity(1 << 20, f.file());
    body(&mut w).and_then(|_| w.flush()).map_err(|source| BuildError::Write { path: path.to_path_buf(), source })?;
    drop(w);
    f.commit()?;
    Ok(())
}

/// Where a batch is built.
#[derive(Debug, Clone, Copy)]
pub struct Places<'a> {
    /// The output folder.
    pub dir: &'a Path,
    /// Folder of the temporary spool.
    pub spool_dir: &'a Path,
    /// Root relative source names resolve against ([`source_root`]).
    pub source_root: Option<&'a Path>,
}

/// Builds `batch` into `places.dir`. `still_owned` is asked before committing (a builder that
/// lost its lock must not commit). Temporary paths are reported to `on_temp` (so a signal
/// handler can remove them).
pub fn build_batch(
    header: &Header,
    batch: &Batch,
    places: Places<'_>,
    observer: &mut dyn Observer,
    still_owned: &dyn Fn() -> bool,
    on_temp: &mut dyn FnMut(&Path),
) -> Result<BatchResult, BuildError> {
    observer.event(crate::event::Event::Phase(crate::event::Phase::Checking));
    let files = check_sources(batch, places.source_root)?;
    let out = outputs(places.dir, &batch.id);
    let car = AtomicFile::create(&out.car, true)?;
    on_temp(car.temp_path());
    let built = {
        let mut w = BufWriter::with_capacity(1 << 20, car.file());
        let b = crate::batch::build(&files, &header.profile, places.spool_dir, &mut w, true, observer)?;
        w.flush().map_err(|source| BuildError::Write { path: out.car.clone(), source })?;
        b
    };
    if built.car_size > batch.car_size_bound {
        return Err(BuildError::OverBound {
            id: batch.id.clone(),
            bound: batch.car_size_bound,
            actual: built.car_size,
        });
    }
    // A piece below the minimum is zero-padded to it (PadCommP): what the SP computes when the
    // deal's piece size exceeds the CAR's natural piece.
    let piece = built.piece.expect("commP requested").pad_to(header.min_piece_size);
    let result = BatchResult {
        payload_cid: built.root.to_string(),
        piece_size: piece.padded_size,
        piece_cid: piece.cid_v1().to_string(),
        piece_size_unpadded: piece.unpadded_size,
        car_size: built.car_size,
        piece_cid_v2: piece.cid_v2().to_string(),
        files: Vec::new(),
        batch: batch.id.clone(),
        fingerprint: Some(fingerprint(header, batch)),
    };
    if !still_owned() {
        return Err(BuildError::LockLost(batch.id.clone()));
    }
    car.commit()?;
    write_atomic(&out.manifest, |w| built.manifest.copy_to(w))?;
    let files = built.roots.iter().zip(&batch.files).map(|(cid, f)| ResultFile {
        name: f.name.clone(),
        cid: cid.to_string(),
        offset: f.part.map(|p| p.offset),
        length: f.part.map(|p| p.len),
    });
    write_atomic(&out.json, |w| write_result_json(w, &result, files))?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shipment::file::{Part, ResultFile};

    fn batch() -> Batch {
        Batch {
            id: "b00007".into(),
            car_size_bound: 1 << 20,
            piece_size: 1 << 21,
            files: vec![
                FileRef { name: "a/<b>&\"c\u{1}".into(), size: 5, mtime_ns: -3, part: None },
                FileRef {
                    name: "big".into(),
                    size: 1 << 30,
                    mtime_ns: 7,
                    part: Some(Part { offset: 1 << 20, len: 9 }),
                },
            ],
            result: None,
        }
    }

    /// The streamed fingerprint is the digest of the JSON `serde_json::json!` makes of the same
    /// fields (its first definition), so results written before keep belonging.
    #[test]
    fn the_streamed_fingerprint_equals_the_json_value_digest() {
        use sha2::Digest;
        let header: Header = serde_json::from_str(
            r#"{"format":"carload-shipment","version":1,"profile":{"cid_version":"V0","raw_leaves":false,"chunk_size":262144,"max_links":174,"hidden":false},"sector_size":34359738368,"piece_size":34359738368,"min_piece_size":1048576,"margin":0,"pack":"best-fit","inputs":["x"],"batches":1,"files":2,"bytes":1,"car_bytes_bound":1}"#,
        )
        .unwrap();
        let b = batch();
        let value = serde_json::json!({
            "profile": header.profile,
            "min_piece_size": header.min_piece_size,
            "id": b.id,
            "files": b.files,
        });
        let digest = sha2::Sha256::digest(serde_json::to_vec(&value).unwrap());
        let want: String = digest.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(fingerprint(&header, &b), want);
    }

    #[test]
    fn a_streamed_result_is_the_json_of_the_whole_result() {
        let files = vec![
            ResultFile { name: "a<b>".into(), cid: "bafy1".into(), offset: None, length: None },
            ResultFile { name: "big".into(), cid: "Qm2".into(), offset: Some(3), length: Some(4) },
        ];
        for fingerprint in [None, Some("ff00".to_string())] {
            let whole = BatchResult { files: files.clone(), ..BatchResult::sample("b00001", fingerprint) };
            let mut want = serde_json::to_vec(&whole).unwrap();
            want.push(b'\n');
            let mut got = Vec::new();
            write_result_json(&mut got, &BatchResult { files: Vec::new(), ..whole.clone() }, files.clone()).unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap());
        }
    }

    #[test]
    fn a_result_is_read_without_its_files_and_they_are_read_apart() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![ResultFile { name: "x".into(), cid: "bafy1".into(), offset: None, length: None }];
        let r = BatchResult::sample("b00001", Some("ab".into()));
        let mut json = Vec::new();
        write_result_json(&mut json, &r, files.clone()).unwrap();
        std::fs::write(dir.path().join("b00001.json"), json).unwrap();
        std::fs::write(dir.path().join("b00001.car"), b"car").unwrap();
        assert_eq!(read_result(dir.path(), "b00001").unwrap(), Some(r));
        assert_eq!(read_result_files(dir.path(), "b00001").unwrap(), files);
    }
}
