//! Building one batch of a shipment: check the sources, build the aggregate CAR with
//! [`crate::batch::build`] (one read of every source, commP on the way), check it against the
//! planned bound, pad the piece to the shipment's minimum piece size, and write `DIR/<id>.car`, `<id>.car.manifest` and `<id>.json` atomically (the
//! JSON last: its presence with a matching CAR size marks the batch as built).

use super::file::{write_result_json, Batch, BatchResult, Header, ResultFile};
use super::source::check_sources;
use crate::batch::BatchError;
use crate::event::Observer;
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
    /// A source name is not safe to read (it resolves outside the base folder, or is absolute).
    #[error("{path}: refused: {reason}")]
    Unsafe {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
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
    /// `<id>.failed`: why the last build failed (removed when it is built).
    pub failed: PathBuf,
}

/// Output paths of batch `id` in `dir`.
pub fn outputs(dir: &Path, id: &str) -> Outputs {
    Outputs {
        car: dir.join(format!("{id}.car")),
        manifest: dir.join(format!("{id}.car.manifest")),
        json: dir.join(format!("{id}.json")),
        failed: dir.join(format!("{id}.failed")),
    }
}

/// The source root of a shipment: `override_root`, else the header's `base`, else (a version 1
/// shipment without one) the working folder.
pub fn source_root<'a>(header: &'a Header, override_root: Option<&'a Path>) -> std::borrow::Cow<'a, Path> {
    match (override_root, header.base.as_deref()) {
        (Some(r), _) => std::borrow::Cow::Borrowed(r),
        (None, Some(b)) => std::borrow::Cow::Owned(super::file::name_to_path(b)),
        (None, None) => std::borrow::Cow::Borrowed(Path::new(".")),
    }
}

pub use super::judge::{
    built_result, find_result, find_result_by, fingerprint, read_result, read_result_files, result_belongs,
    result_matches, Found,
};

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
    let prefixes =
        [format!(".{id}.car."), format!(".{id}.car.manifest."), format!(".{id}.json."), format!(".{id}.lock.")];
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
fn write_atomic(
    path: &Path,
    register: crate::output::Registrar<'_>,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), BuildError> {
    let f = AtomicFile::create_registered(path, true, register)?;
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
    /// Folder the sources are read from instead of the shipment's base (`--source-root`; see
    /// [`source_root`]).
    pub source_root: Option<&'a Path>,
}

/// Builds `batch` into `places.dir`. `still_owned` is asked before committing (a builder that
/// lost its lock must not commit). Temporary files are created through `register` (so a signal
/// handler can remove them).
pub fn build_batch(
    header: &Header,
    batch: &Batch,
    places: Places<'_>,
    observer: &mut dyn Observer,
    still_owned: &dyn Fn() -> bool,
    register: crate::output::Registrar<'_>,
) -> Result<BatchResult, BuildError> {
    observer.event(crate::event::Event::Phase(crate::event::Phase::Checking));
    let files = check_sources(batch, &source_root(header, places.source_root))?;
    let out = outputs(places.dir, &batch.id);
    let car = AtomicFile::create_registered(&out.car, true, &mut *register)?;
    let built = {
        let mut w = BufWriter::with_capacity(1 << 20, car.file());
        let b = crate::batch::build(&files, &header.profile, places.spool_dir, &mut w, true, observer).map_err(
            |e| match e {
                // A source that is not the file checked, or was written since: changed since planning.
                BatchError::Import(crate::importer::ImportError::NotAsPlanned { path, detail }) => {
                    BuildError::Changed { path, detail }
                }
                BatchError::Import(crate::importer::ImportError::Changed { path, expected, found }) => {
                    BuildError::Changed { path, detail: format!("{found}; planned {expected} bytes") }
                }
                e => BuildError::Batch(e),
            },
        )?;
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
    write_atomic(&out.manifest, &mut *register, |w| built.manifest.copy_to(w))?;
    let files = built.roots.iter().zip(&batch.files).map(|(cid, f)| ResultFile {
        name: f.name.clone(),
        cid: cid.to_string(),
        offset: f.part.map(|p| p.offset),
        length: f.part.map(|p| p.len),
    });
    write_atomic(&out.json, &mut *register, |w| write_result_json(w, &result, files))?;
    // An earlier failure no longer holds (failing to remove it leaves a record the judge
    // ignores: a result wins).
    let _ = std::fs::remove_file(&out.failed);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shipment::file::{FileRef, Part, ResultFile};

    fn batch() -> Batch {
        Batch {
            id: "b00007".into(),
            car_size_bound: 1 << 20,
            piece_size: 1 << 21,
            files: vec![
                FileRef { name: "a/<b>&\"c\u{1}".into(), size: 5, mtime_ns: -3, ident: None, part: None },
                FileRef {
                    name: "big".into(),
                    size: 1 << 30,
                    mtime_ns: 7,
                    ident: None,
                    part: Some(Part { offset: 1 << 20, len: 9 }),
                },
            ],
            result: None,
        }
    }

    /// The streamed legacy fingerprint is the digest of the JSON `serde_json::json!` makes of the
    /// same fields (its first definition), so results written before keep belonging to version 1
    /// shipments.
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
        assert_eq!(crate::shipment::judge::legacy_fingerprint(&header, &b), want);
        assert_ne!(fingerprint(&header, &b), want, "the current fingerprint covers the base and version too");
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
