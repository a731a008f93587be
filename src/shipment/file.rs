//! The shipment file: JSON Lines, one header record then one record per batch.
//!
//! ```text
//! {"format":"carload-shipment","version":2,"profile":{…},"sector_size":…,"piece_size":…,"base":"/data",…}
//! {"id":"b00000","car_size_bound":…,"piece_size":…,"files":[["set/a",1234,1700000000000000000,[1700000000000000000,5512]],…]}
//! {"id":"b00001",…,"files":[["set/big.iso",90000000000,1700000000000000000,[1700000000000000000,77],0,34000000000]]}
//! ```
//!
//! Each file is a compact array `[name, size, mtime_ns, [ctime_ns, inode]]`, or `[name, size,
//! mtime_ns, [ctime_ns, inode], offset, length]` for a part of a file split across batches
//! (offsets are multiples of the profile's chunk size; the parts of a file, in offset order, cover
//! it exactly). `name` is the file's path relative to the header's `base` (normalized: no `.`,
//! `..` or empty components); `size`, `mtime_ns`, `ctime_ns` (nanoseconds since the Unix epoch)
//! and `inode` identify the file's contents as planned and are checked again when it is opened
//! and after it is read. Version 1 files (no `[ctime_ns, inode]`) are still read; their files are
//! checked by size and mtime only.
//! A batch record may carry a `result` (the same object as `DIR/<id>.json`) once built.
//! JSON Lines keeps a million-file shipment streamable and diff-friendly: about 90 bytes per
//! file plus its name.
//!
//! A shipment file is untrusted input: every record is checked as it is read
//! ([`check_name`], [`valid_batch_id`], the numeric ranges), and a refusal names the line, the
//! batch and the field.

use super::plan::Pack;
use crate::profile::Profile;
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, Write};

/// A path as the shipment file records it: as text when it is UTF-8, else a NUL character
/// (never part of a Unix path) followed by the hex of its bytes. Every name round-trips through
/// [`name_to_path`]; no two paths share a name.
pub fn path_to_name(p: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    match p.to_str() {
        Some(s) => s.to_string(),
        None => {
            let mut out = String::from("\0");
            for b in p.as_os_str().as_bytes() {
                out.push_str(&format!("{b:02x}"));
            }
            out
        }
    }
}

/// The path a recorded name stands for ([`path_to_name`]).
pub fn name_to_path(name: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    match name.strip_prefix('\0') {
        Some(hex) if hex.len() % 2 == 0 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            let bytes: Vec<u8> =
                (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)).collect();
            std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&bytes))
        }
        _ => std::path::PathBuf::from(name),
    }
}

/// `format` of the header record.
pub const FORMAT: &str = "carload-shipment";
/// Current format version.
pub const VERSION: u64 = 2;

/// The first record: how the shipment was planned, and totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version ([`VERSION`]).
    pub version: u64,
    /// The DAG profile every batch is built with.
    pub profile: Profile,
    /// Sector size (padded bytes) the pieces are meant for.
    pub sector_size: u64,
    /// Target padded piece size.
    pub piece_size: u64,
    /// Smallest padded piece size a batch should have (SPs and Fil+ reject smaller pieces).
    pub min_piece_size: u64,
    /// Bytes kept free in every piece on top of the exact bound.
    pub margin: u64,
    /// How files were packed.
    pub pack: Pack,
    /// Folder relative file names resolve against (the planner's working folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The input paths as given.
    pub inputs: Vec<String>,
    /// Number of batches.
    pub batches: u64,
    /// Number of source files.
    pub files: u64,
    /// Total source bytes.
    pub bytes: u64,
    /// Sum of the batches' CAR size bounds.
    pub car_bytes_bound: u64,
}

/// A byte range of a file split across batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Part {
    /// Offset of the first byte (a multiple of the chunk size).
    pub offset: u64,
    /// Bytes in the part.
    pub len: u64,
}

/// What identifies a file's contents beyond its size and mtime: its status-change time (which
/// users cannot set back: any write, chmod or rename of the file moves it) and its inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "(i64, u64)", into = "(i64, u64)")]
pub struct Ident {
    /// Status-change time, nanoseconds since the Unix epoch.
    pub ctime_ns: i64,
    /// Inode number.
    pub ino: u64,
}

impl From<(i64, u64)> for Ident {
    fn from((ctime_ns, ino): (i64, u64)) -> Self {
        Ident { ctime_ns, ino }
    }
}

impl From<Ident> for (i64, u64) {
    fn from(i: Ident) -> Self {
        (i.ctime_ns, i.ino)
    }
}

impl Ident {
    /// The identity of the file `meta` describes.
    pub fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Ident {
            ctime_ns: meta.ctime().saturating_mul(1_000_000_000).saturating_add(meta.ctime_nsec()),
            ino: meta.ino(),
        }
    }
}

/// One file (or file part) of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FileTuple", into = "FileTuple")]
pub struct FileRef {
    /// Path relative to the shipment's `base`.
    pub name: String,
    /// Size of the whole file at planning time.
    pub size: u64,
    /// Modification time at planning time, in nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Status-change time and inode at planning time (absent in version 1 shipments).
    pub ident: Option<Ident>,
    /// The byte range, for a part of a split file.
    pub part: Option<Part>,
}

impl FileRef {
    /// Bytes of the file in this batch.
    pub fn len(&self) -> u64 {
        self.part.map_or(self.size, |p| p.len)
    }

    /// Whether this entry holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum FileTuple {
    Whole(String, u64, i64),
    WholeId(String, u64, i64, Ident),
    Part(String, u64, i64, u64, u64),
    PartId(String, u64, i64, Ident, u64, u64),
}

impl From<FileTuple> for FileRef {
    fn from(t: FileTuple) -> Self {
        let part = |offset, len| Some(Part { offset, len });
        match t {
            FileTuple::Whole(name, size, mtime_ns) => FileRef { name, size, mtime_ns, ident: None, part: None },
            FileTuple::WholeId(name, size, mtime_ns, id) => {
                FileRef { name, size, mtime_ns, ident: Some(id), part: None }
            }
            FileTuple::Part(name, size, mtime_ns, o, l) => {
                FileRef { name, size, mtime_ns, ident: None, part: part(o, l) }
            }
            FileTuple::PartId(name, size, mtime_ns, id, o, l) => {
                FileRef { name, size, mtime_ns, ident: Some(id), part: part(o, l) }
            }
        }
    }
}

impl From<FileRef> for FileTuple {
    fn from(f: FileRef) -> Self {
        match (f.ident, f.part) {
            (None, None) => FileTuple::Whole(f.name, f.size, f.mtime_ns),
            (Some(id), None) => FileTuple::WholeId(f.name, f.size, f.mtime_ns, id),
            (None, Some(p)) => FileTuple::Part(f.name, f.size, f.mtime_ns, p.offset, p.len),
            (Some(id), Some(p)) => FileTuple::PartId(f.name, f.size, f.mtime_ns, id, p.offset, p.len),
        }
    }
}

/// One file of a built batch, as `prepare --aggregate --json` lists it (plus the range of a part).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultFile {
    /// Walk path.
    pub name: String,
    /// Root CID of the file's (or part's) DAG; Powergate's capital `Cid` key.
    #[serde(rename = "Cid")]
    pub cid: String,
    /// Offset of a part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Length of a part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
}

/// What building a batch produced: the keys of `prepare --aggregate --json`, plus the batch ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResult {
    /// Payload CID (aggregate root).
    pub payload_cid: String,
    /// Padded piece size.
    pub piece_size: u64,
    /// Piece CID v1.
    pub piece_cid: String,
    /// Unpadded piece size (what Lotus takes).
    pub piece_size_unpadded: u64,
    /// CAR bytes.
    pub car_size: u64,
    /// Piece CID v2 (FRC-0069).
    pub piece_cid_v2: String,
    /// Files in batch order, as `<id>.json` records them. Results returned by
    /// [`super::build::build_batch`] or read by [`super::build::read_result`] leave it empty, so a
    /// batch of millions of files is never held twice: [`super::build::read_result_files`] reads
    /// it.
    #[serde(default)]
    pub files: Vec<ResultFile>,
    /// The batch ID.
    pub batch: String,
    /// [`super::build::fingerprint`] of the batch record and profile it was built from: a
    /// result is only taken for a batch with the same fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// A batch record without a result as one JSON line, its files given as an iterator (written as
/// they come): the same bytes as `serde_json::to_writer` of the [`Batch`] and a newline.
pub fn write_batch_json<I>(
    w: &mut dyn Write,
    id: &str,
    car_size_bound: u64,
    piece_size: u64,
    files: I,
) -> io::Result<()>
where
    I: IntoIterator<Item = FileRef>,
{
    #[derive(Serialize)]
    struct Record<'a, F> {
        id: &'a str,
        car_size_bound: u64,
        piece_size: u64,
        files: F,
    }
    let files = SeqOf(std::cell::Cell::new(Some(files)));
    serde_json::to_writer(&mut *w, &Record { id, car_size_bound, piece_size, files })?;
    w.write_all(b"\n")
}

/// Serializes the items of an iterator as a JSON array, once.
struct SeqOf<I>(std::cell::Cell<Option<I>>);

impl<T: Serialize, I: IntoIterator<Item = T>> Serialize for SeqOf<I> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.take().into_iter().flatten())
    }
}

/// [`BatchResult`] as JSON, its files given as an iterator (written as they come, never
/// collected): the same bytes as `serde_json::to_vec` of the whole result.
pub fn write_result_json<I>(w: &mut dyn Write, result: &BatchResult, files: I) -> io::Result<()>
where
    I: IntoIterator<Item = ResultFile>,
{
    #[derive(Serialize)]
    struct Record<'a, F> {
        payload_cid: &'a str,
        piece_size: u64,
        piece_cid: &'a str,
        piece_size_unpadded: u64,
        car_size: u64,
        piece_cid_v2: &'a str,
        files: F,
        batch: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        fingerprint: Option<&'a str>,
    }
    let record = Record {
        payload_cid: &result.payload_cid,
        piece_size: result.piece_size,
        piece_cid: &result.piece_cid,
        piece_size_unpadded: result.piece_size_unpadded,
        car_size: result.car_size,
        piece_cid_v2: &result.piece_cid_v2,
        files: SeqOf(std::cell::Cell::new(Some(files))),
        batch: &result.batch,
        fingerprint: result.fingerprint.as_deref(),
    };
    serde_json::to_writer(&mut *w, &record)?;
    w.write_all(b"\n")
}

impl BatchResult {
    /// A result for tests (of this crate and the binary's): batch `batch`, a 3-byte CAR (`car`)
    /// whose piece is padded to 1 MiB, no files, no fingerprint; its fields agree with each other.
    #[doc(hidden)]
    pub fn sample_for_tests(batch: &str) -> Self {
        Self::sample(batch, None)
    }

    /// [`BatchResult::sample_for_tests`] with `fingerprint`.
    #[doc(hidden)]
    pub fn sample(batch: &str, fingerprint: Option<String>) -> Self {
        let piece = crate::commp::commp_of_bytes(b"car").unwrap().pad_to(1 << 20);
        BatchResult {
            payload_cid: crate::block::cid_of(crate::block::CidVersion::V1, crate::block::RAW, b"car").to_string(),
            piece_size: piece.padded_size,
            piece_cid: piece.cid_v1().to_string(),
            piece_size_unpadded: piece.unpadded_size,
            car_size: 3,
            piece_cid_v2: piece.cid_v2().to_string(),
            files: Vec::new(),
            batch: batch.into(),
            fingerprint,
        }
    }
}

/// One batch record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Batch ID (`b00000`, …): output files are `<id>.car`, `<id>.car.manifest`, `<id>.json`.
    pub id: String,
    /// Upper bound on the CAR size (see [`super::overhead`]).
    pub car_size_bound: u64,
    /// Padded piece size the batch lands in (at least the minimum piece size).
    pub piece_size: u64,
    /// Files in walk order.
    pub files: Vec<FileRef>,
    /// The build result, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<BatchResult>,
}

impl Batch {
    /// Source bytes in the batch.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(FileRef::len).sum()
    }

    /// Predicted fill: CAR bound over the piece's unpadded capacity.
    pub fn fill(&self) -> f64 {
        fill(self.car_size_bound, self.piece_size)
    }

    /// Predicted zero padding: unpadded capacity minus the CAR bound.
    pub fn padding(&self) -> u64 {
        padding(self.car_size_bound, self.piece_size)
    }
}

/// Predicted fill of a batch: its CAR bound over the unpadded capacity of its piece.
pub fn fill(car_size_bound: u64, piece_size: u64) -> f64 {
    car_size_bound as f64 / crate::commp::unpadded_piece_size(piece_size) as f64
}

/// Predicted zero padding of a batch: the unpadded capacity of its piece minus its CAR bound.
pub fn padding(car_size_bound: u64, piece_size: u64) -> u64 {
    crate::commp::unpadded_piece_size(piece_size).saturating_sub(car_size_bound)
}

/// A whole shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    /// The header record.
    pub header: Header,
    /// The batches, in order.
    pub batches: Vec<Batch>,
}

/// Errors reading a shipment file.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Reading failed.
    #[error("reading shipment: {0}")]
    Io(#[from] io::Error),
    /// A line is not valid.
    #[error("shipment line {line}: {source}")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The cause.
        source: serde_json::Error,
    },
    /// Not a shipment, or an unsupported version.
    #[error("not a carload shipment file (format {format:?}, version {version})")]
    NotAShipment {
        /// The `format` found.
        format: String,
        /// The `version` found.
        version: u64,
    },
    /// The file is empty.
    #[error("empty shipment file")]
    Empty,
    /// A record parses but a field is out of range or unsafe.
    #[error("shipment line {line}: {field}: {reason}")]
    Invalid {
        /// 1-based line number.
        line: usize,
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The header's batch count disagrees with the records.
    #[error("shipment announces {expected} batches but holds {found}")]
    Count {
        /// From the header.
        expected: u64,
        /// Records found.
        found: u64,
    },
}

/// Writes `s` as JSON Lines.
pub fn write_shipment(w: &mut dyn Write, s: &Shipment) -> io::Result<()> {
    serde_json::to_writer(&mut *w, &s.header)?;
    w.write_all(b"\n")?;
    for b in &s.batches {
        serde_json::to_writer(&mut *w, b)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Reads a shipment written by [`write_shipment`]; blank lines are ignored. Every record is
/// checked ([`index_shipment`] checks the same).
pub fn read_shipment(r: impl BufRead) -> Result<Shipment, FormatError> {
    let mut batches = Vec::new();
    let mut seen = Seen::default();
    let header = for_each_record(r, &mut |h, line, _, text| {
        let b: Batch = serde_json::from_str(text).map_err(|source| FormatError::Json { line, source })?;
        let mut files = FilesSkim::default();
        for f in &b.files {
            files.add(f);
        }
        check_batch(
            h,
            &BatchSkim { id: b.id.clone(), car_size_bound: b.car_size_bound, piece_size: b.piece_size, files },
            line,
            &mut seen,
        )?;
        batches.push(b);
        Ok(())
    })?;
    seen.check_totals(&header)?;
    Ok(Shipment { header, batches })
}

/// Where a batch record is in a shipment file, with what a scheduler needs without reading it
/// again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchAt {
    /// Batch ID.
    pub id: String,
    /// Byte offset of its line.
    pub offset: u64,
    /// Bytes in its line (without the newline).
    pub len: u64,
    /// Its 1-based line number.
    pub line: usize,
    /// Files in the batch.
    pub files: u64,
    /// Source bytes in the batch.
    pub bytes: u64,
    /// Its CAR size bound.
    pub car_size_bound: u64,
}

/// A shipment file's header and where each batch record is. Indexing reads and validates every
/// record, one at a time: a shipment of a hundred million files is never held whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentIndex {
    /// The header record.
    pub header: Header,
    /// The batch records, in order.
    pub batches: Vec<BatchAt>,
}

/// Indexes a shipment file (see [`ShipmentIndex`]).
pub fn index_shipment(r: impl BufRead) -> Result<ShipmentIndex, FormatError> {
    let mut batches = Vec::new();
    let mut seen = Seen::default();
    let header = for_each_record(r, &mut |h, line, offset, text| {
        let b: BatchSkim = serde_json::from_str(text).map_err(|source| FormatError::Json { line, source })?;
        check_batch(h, &b, line, &mut seen)?;
        batches.push(BatchAt {
            id: b.id,
            offset,
            len: text.len() as u64,
            line,
            files: b.files.count,
            bytes: b.files.bytes,
            car_size_bound: b.car_size_bound,
        });
        Ok(())
    })?;
    seen.check_totals(&header)?;
    Ok(ShipmentIndex { header, batches })
}

/// Reads the batch record `at` of an indexed shipment `file` (positional reads: threads may
/// share the file). The record is checked again: the file may have changed since it was indexed.
pub fn read_batch_at(file: &std::fs::File, header: &Header, at: &BatchAt) -> Result<Batch, FormatError> {
    // Parsed from the file as it is read: the line (about 90 bytes per file) is never buffered.
    let range = crate::importer::input::RangeReader::new(file, at.offset, at.len);
    let b: Batch = serde_json::from_reader(io::BufReader::with_capacity(1 << 16, range))
        .map_err(|source| FormatError::Json { line: at.line, source })?;
    let changed = |field: &str, found: String, indexed: String| FormatError::Invalid {
        line: at.line,
        field: field.into(),
        reason: format!("{found} where the index found {indexed}: the shipment file changed"),
    };
    if b.id != at.id {
        return Err(changed("id", format!("{:?}", b.id), format!("{:?}", at.id)));
    }
    let mut files = FilesSkim::default();
    for f in &b.files {
        files.add(f);
    }
    let skim = BatchSkim { id: b.id.clone(), car_size_bound: b.car_size_bound, piece_size: b.piece_size, files };
    check_batch(header, &skim, at.line, &mut Seen::default())?;
    if (skim.files.count, skim.files.bytes, skim.car_size_bound) != (at.files, at.bytes, at.car_size_bound) {
        return Err(changed("files", format!("{} files", skim.files.count), format!("{}", at.files)));
    }
    Ok(b)
}

/// What [`for_each_record`] calls with each batch line: header, line number, byte offset, text.
type EachRecord<'a> = dyn FnMut(&Header, usize, u64, &str) -> Result<(), FormatError> + 'a;

/// Reads and checks the header, then calls `each` with it and every other non-blank line (its
/// 1-based number, byte offset and text), one line at a time. Returns the header.
fn for_each_record(mut r: impl BufRead, each: &mut EachRecord<'_>) -> Result<Header, FormatError> {
    let mut header: Option<Header> = None;
    let mut count = 0u64;
    let mut buf = Vec::new();
    let (mut offset, mut line_no) = (0u64, 0usize);
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        let at = offset;
        offset += n as u64;
        line_no += 1;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = std::str::from_utf8(line)
            .map_err(|e| FormatError::Io(io::Error::new(io::ErrorKind::InvalidData, format!("line {line_no}: {e}"))))?;
        if line.trim().is_empty() {
            continue;
        }
        match &header {
            None => {
                let json = |source| FormatError::Json { line: line_no, source };
                let v: serde_json::Value = serde_json::from_str(line).map_err(json)?;
                let format = v.get("format").and_then(|f| f.as_str()).unwrap_or_default().to_string();
                let version = v.get("version").and_then(|f| f.as_u64()).unwrap_or(0);
                if format != FORMAT || !(1..=VERSION).contains(&version) {
                    return Err(FormatError::NotAShipment { format, version });
                }
                let h: Header = serde_json::from_value(v).map_err(json)?;
                check_header(&h)?;
                header = Some(h);
            }
            Some(h) => {
                count += 1;
                if count > h.batches {
                    return Err(FormatError::Count { expected: h.batches, found: count });
                }
                each(h, line_no, at, line)?;
            }
        }
    }
    let header = header.ok_or(FormatError::Empty)?;
    if header.batches != count {
        return Err(FormatError::Count { expected: header.batches, found: count });
    }
    Ok(header)
}

/// Whether `id` is a safe batch ID: 1–64 characters of `A-Z a-z 0-9 _ -`. IDs name output files
/// (`<id>.car`, and temporaries `.<id>.car.*`, so no dot: `a` and `a.x` would share
/// temporaries) and appear in exported shell lines.
pub fn valid_batch_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
}

/// Longest name a shipment may hold, in bytes of the path it stands for (Linux's `PATH_MAX`).
pub const MAX_NAME: usize = 4096;

/// Largest file size a shipment may record (files are read at `i64` offsets).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// Checks a recorded file name: the path it stands for ([`name_to_path`]) is relative, at most
/// [`MAX_NAME`] bytes, has no empty, `.` or `..` component and no NUL byte, and a name in the
/// NUL+hex form stands for a path that is not UTF-8 (so each path has exactly one name). With
/// `legacy` (version 1 shipments) an absolute name is accepted here; building refuses it.
pub fn check_name(name: &str, legacy: bool) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let bytes: Vec<u8> = match name.strip_prefix('\0') {
        Some(hex) => {
            let p = name_to_path(name);
            let b = p.as_os_str().as_bytes();
            if hex.len() != 2 * b.len() || b.contains(&0) {
                return Err("malformed NUL+hex name".into());
            }
            if std::str::from_utf8(b).is_ok() {
                return Err("NUL+hex form of a UTF-8 path (write it as text)".into());
            }
            b.to_vec()
        }
        None => name.as_bytes().to_vec(),
    };
    if bytes.is_empty() {
        return Err("empty name".into());
    }
    if bytes.len() > MAX_NAME {
        return Err(format!("{} bytes long, more than {MAX_NAME}", bytes.len()));
    }
    if bytes.contains(&0) {
        return Err("NUL byte in the name".into());
    }
    let rel = match bytes.strip_prefix(b"/") {
        Some(rest) if legacy => rest,
        Some(_) => return Err("absolute name (names are relative to the shipment's base)".into()),
        None => &bytes[..],
    };
    for c in rel.split(|&b| b == b'/') {
        match c {
            b"" => return Err("empty path component (a doubled or trailing /)".into()),
            b"." => return Err("`.` path component (names are normalized)".into()),
            b".." => return Err("`..` path component (it would climb out of the base folder)".into()),
            _ => {}
        }
    }
    Ok(())
}

/// Checks the header record.
fn check_header(h: &Header) -> Result<(), FormatError> {
    let bad = |field: &str, reason: String| Err(FormatError::Invalid { line: 1, field: field.into(), reason });
    let p = &h.profile;
    if p.chunk_size == 0 || p.chunk_size > crate::profile::MAX_CHUNK_SIZE {
        return bad(
            "profile.chunk_size",
            format!("{} is not between 1 and {}", p.chunk_size, crate::profile::MAX_CHUNK_SIZE),
        );
    }
    if p.max_links < 2 || p.max_links > crate::profile::MAX_LINKS {
        return bad("profile.max_links", format!("{} is not between 2 and {}", p.max_links, crate::profile::MAX_LINKS));
    }
    if let Err(e) = crate::unixfs::hamt::check_fanout(p.hamt_fanout) {
        return bad("profile.hamt_fanout", e.to_string());
    }
    if let Err(e) = super::plan::check_options(&super::plan::PlanOptions::of_header(h)) {
        return bad("sizes", e.to_string());
    }
    if h.margin >= crate::commp::unpadded_piece_size(h.piece_size) {
        return bad("margin", format!("{} leaves no room in a piece of {} bytes", h.margin, h.piece_size));
    }
    match h.base.as_deref() {
        None if h.version >= 2 => return bad("base", "missing (relative names resolve against it)".into()),
        None => {}
        Some(b) => {
            let p = name_to_path(b);
            if !p.is_absolute() {
                return bad("base", format!("{b:?} is not an absolute path"));
            }
            if let Err(e) = check_name(b, true) {
                return bad("base", format!("{b:?}: {e}"));
            }
        }
    }
    Ok(())
}

/// Totals over the batch records read so far, and their IDs (each must be unique).
#[derive(Default)]
struct Seen {
    ids: std::collections::HashSet<String>,
    files: u64,
    bytes: u64,
    car_bytes_bound: u64,
}

impl Seen {
    /// The header's totals must be the records' (a header that lies shows wrong totals).
    fn check_totals(&self, h: &Header) -> Result<(), FormatError> {
        for (field, claimed, found) in [
            ("files", h.files, self.files),
            ("bytes", h.bytes, self.bytes),
            ("car_bytes_bound", h.car_bytes_bound, self.car_bytes_bound),
        ] {
            if claimed != found {
                return Err(FormatError::Invalid {
                    line: 1,
                    field: field.into(),
                    reason: format!("{claimed} where the batch records add up to {found}"),
                });
            }
        }
        Ok(())
    }
}

/// Checks a batch record: its ID (safe, unique), piece size and bound against the header's sizes,
/// and what was found checking its files one at a time ([`FilesSkim`]).
fn check_batch(h: &Header, b: &BatchSkim, line: usize, seen: &mut Seen) -> Result<(), FormatError> {
    let id = b.id.as_str();
    let bad = |field: String, reason: String| Err(FormatError::Invalid { line, field, reason });
    if !valid_batch_id(id) {
        return bad("id".into(), format!("{id:?} is not a plain batch ID (1-64 of A-Z a-z 0-9 _ -)"));
    }
    let field = |name: &str| format!("batch {id}: {name}");
    if !seen.ids.insert(id.to_string()) {
        return bad(field("id"), format!("{id:?} appears twice"));
    }
    let piece = b.piece_size;
    if !piece.is_power_of_two() || piece < h.min_piece_size || piece > h.piece_size {
        return bad(
            field("piece_size"),
            format!(
                "{piece} is not a power of two between the minimum piece size {} and the piece size {}",
                h.min_piece_size, h.piece_size
            ),
        );
    }
    if b.car_size_bound > crate::commp::unpadded_piece_size(piece) {
        return bad(field("car_size_bound"), format!("{} does not fit a piece of {piece} bytes", b.car_size_bound));
    }
    let f = &b.files;
    if let Some((k, name, reason)) = &f.error {
        return bad(field(&format!("files[{k}] ({})", crate::text::escape_controls(name))), reason.clone());
    }
    let chunk = h.profile.chunk_size as u64;
    for (k, r) in &f.parts {
        let p = r.part.expect("parts are kept with their range");
        if p.offset % chunk != 0 {
            return bad(
                field(&format!("files[{k}] ({})", crate::text::escape_controls(&r.name))),
                format!("part at {} is not at a multiple of the chunk size {chunk}", p.offset),
            );
        }
    }
    if h.version >= 2 && f.without_ident > 0 {
        return bad(
            field("files"),
            format!("{} files without [ctime_ns, inode] in a version 2 shipment", f.without_ident),
        );
    }
    if h.version < 2 && f.count > f.without_ident {
        return bad(field("files"), "[ctime_ns, inode] in a version 1 shipment".into());
    }
    seen.files += f.firsts;
    seen.bytes = seen.bytes.saturating_add(f.first_bytes);
    seen.car_bytes_bound = seen.car_bytes_bound.saturating_add(b.car_size_bound);
    Ok(())
}

/// A batch record read for the index: its files are checked and counted as they are parsed,
/// one at a time, and only those with a `part` are kept (to be checked).
#[derive(Deserialize)]
struct BatchSkim {
    id: String,
    car_size_bound: u64,
    piece_size: u64,
    files: FilesSkim,
}

/// What checking a batch's files one at a time found.
#[derive(Default)]
struct FilesSkim {
    count: u64,
    bytes: u64,
    /// Files that are whole or a first part (the header counts these).
    firsts: u64,
    /// Their sizes.
    first_bytes: u64,
    without_ident: u64,
    /// Files with a part, with their index (checked against the chunk size by [`check_batch`]).
    parts: Vec<(usize, FileRef)>,
    /// The first file that is wrong: index, name, reason.
    error: Option<(u64, String, String)>,
}

impl FilesSkim {
    /// Counts and checks one file (names as version 1 allows them: [`check_batch`] refuses what
    /// version 2 does not).
    fn add(&mut self, f: &FileRef) {
        let k = self.count;
        self.count += 1;
        self.bytes = self.bytes.saturating_add(f.len());
        self.without_ident += f.ident.is_none() as u64;
        if self.error.is_some() {
            return;
        }
        let legacy = f.ident.is_none();
        let reason = match check_name(&f.name, legacy) {
            Err(e) => Some(e),
            Ok(()) if f.size > MAX_FILE_SIZE => Some(format!("size {} is larger than {MAX_FILE_SIZE}", f.size)),
            Ok(()) => match f.part {
                Some(p) if p.len == 0 || p.offset.checked_add(p.len).is_none_or(|e| e > f.size) => Some(format!(
                    "part at {} of {} bytes does not lie in the file of {} bytes",
                    p.offset, p.len, f.size
                )),
                _ => None,
            },
        };
        if let Some(reason) = reason {
            self.error = Some((k, f.name.clone(), reason));
            return;
        }
        if f.part.is_none_or(|p| p.offset == 0) {
            self.firsts += 1;
            self.first_bytes = self.first_bytes.saturating_add(f.size);
        }
        if f.part.is_some() {
            self.parts.push((k as usize, f.clone()));
        }
    }
}

impl<'de> Deserialize<'de> for FilesSkim {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Files;
        impl<'de> serde::de::Visitor<'de> for Files {
            type Value = FilesSkim;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of files")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<FilesSkim, A::Error> {
                let mut s = FilesSkim::default();
                while let Some(f) = seq.next_element::<FileRef>()? {
                    s.add(&f);
                }
                Ok(s)
            }
        }
        d.deserialize_seq(Files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index finds each record where it is; reading one back gives the batch that
    /// `read_shipment` gives, blank lines and CRLF endings included.
    #[test]
    fn an_indexed_batch_reads_back_as_the_whole_file_reads_it() {
        let text = concat!(
            r#"{"format":"carload-shipment","version":1,"profile":{"cid_version":"V0","raw_leaves":false,"chunk_size":262144,"max_links":174,"hidden":false},"sector_size":34359738368,"piece_size":34359738368,"min_piece_size":1048576,"margin":0,"pack":"best-fit","inputs":["x"],"batches":2,"files":3,"bytes":6,"car_bytes_bound":9}"#,
            "\r\n\n",
            r#"{"id":"b00000","car_size_bound":4,"piece_size":1048576,"files":[["a",1,0],["b",2,0]]}"#,
            "\n",
            r#"{"id":"b00001","car_size_bound":5,"piece_size":1048576,"files":[["c",3,0]]}"#,
        );
        let whole = read_shipment(text.as_bytes()).unwrap();
        let index = index_shipment(text.as_bytes()).unwrap();
        assert_eq!(index.header, whole.header);
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        for (at, b) in index.batches.iter().zip(&whole.batches) {
            assert_eq!(
                (at.id.as_str(), at.files, at.bytes, at.car_size_bound),
                (b.id.as_str(), b.files.len() as u64, b.bytes(), b.car_size_bound)
            );
            assert_eq!(&read_batch_at(&f, &index.header, at).unwrap(), b);
        }
        assert_eq!(index.batches[1].line, 4);
    }

    #[test]
    fn names_that_are_not_utf8_round_trip_and_never_collide() {
        use std::os::unix::ffi::OsStrExt;
        let raw = std::path::Path::new(std::ffi::OsStr::from_bytes(b"data/caf\xe9.txt"));
        let lossy = std::path::Path::new("data/caf\u{fffd}.txt");
        let (a, b) = (path_to_name(raw), path_to_name(lossy));
        assert_ne!(a, b, "the lossy look-alike is another name");
        assert!(a.starts_with('\0'));
        assert_eq!(name_to_path(&a), raw);
        assert_eq!(name_to_path(&b), lossy);
        assert_eq!(name_to_path("plain/name"), std::path::Path::new("plain/name"));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), a);
    }

    #[test]
    fn file_tuples() {
        let whole = FileRef { name: "a".into(), size: 3, mtime_ns: -5, ident: None, part: None };
        let part =
            FileRef { name: "b".into(), size: 9, mtime_ns: 7, ident: None, part: Some(Part { offset: 4, len: 5 }) };
        assert_eq!(serde_json::to_string(&whole).unwrap(), r#"["a",3,-5]"#);
        assert_eq!(serde_json::to_string(&part).unwrap(), r#"["b",9,7,4,5]"#);
        assert_eq!(serde_json::from_str::<FileRef>(r#"["b",9,7,4,5]"#).unwrap(), part);
        assert_eq!(serde_json::from_str::<FileRef>(r#"["a",3,-5]"#).unwrap(), whole);
        let id = Some(Ident { ctime_ns: 11, ino: 12 });
        let (whole2, part2) = (FileRef { ident: id, ..whole }, FileRef { ident: id, ..part });
        assert_eq!(serde_json::to_string(&whole2).unwrap(), r#"["a",3,-5,[11,12]]"#);
        assert_eq!(serde_json::to_string(&part2).unwrap(), r#"["b",9,7,[11,12],4,5]"#);
        assert_eq!(serde_json::from_str::<FileRef>(r#"["a",3,-5,[11,12]]"#).unwrap(), whole2);
        assert_eq!(serde_json::from_str::<FileRef>(r#"["b",9,7,[11,12],4,5]"#).unwrap(), part2);
    }

    const HEADER_V1: &str = r#"{"format":"carload-shipment","version":1,"profile":{"cid_version":"V0","raw_leaves":false,"chunk_size":262144,"max_links":174,"hidden":false},"sector_size":34359738368,"piece_size":34359738368,"min_piece_size":1048576,"margin":0,"pack":"best-fit","inputs":["d"],"batches":1,"files":1,"bytes":5,"car_bytes_bound":100}"#;

    fn header_v2() -> String {
        HEADER_V1.replace(r#""version":1"#, r#""version":2"#).replace(r#""pack":"#, r#""base":"/data","pack":"#)
    }

    fn refused(h: &str, b: &str) -> String {
        read_shipment(format!("{h}\n{b}\n").as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn hostile_records_are_refused_with_line_and_field() {
        let header = HEADER_V1;
        let read = refused;
        let ok = r#"{"id":"b00000","car_size_bound":100,"piece_size":1048576,"files":[["d/a",5,1]]}"#;
        assert!(read_shipment(format!("{header}\n{ok}\n").as_bytes()).is_ok());
        let e = read(header, &ok.replace("b00000", "../../etc/x"));
        assert!(e.contains("line 2") && e.contains("id"), "{e}");
        let e = read(header, &ok.replace("b00000", "b0; rm -rf ~"));
        assert!(e.contains("not a plain batch ID"), "{e}");
        let e = read(&header.replace("262144", "0"), ok);
        assert!(e.contains("line 1") && e.contains("chunk_size"), "{e}");
        let e = read(&header.replace(r#""max_links":174"#, r#""max_links":1"#), ok);
        assert!(e.contains("max_links"), "{e}");
        let e = read(
            &header.replace(r#""max_links":174"#, r#""max_links":174,"hamt_estimation":"links","hamt_fanout":12"#),
            ok,
        );
        assert!(e.contains("line 1") && e.contains("profile.hamt_fanout") && e.contains("fanout 12"), "{e}");
        let part =
            r#"{"id":"b00000","car_size_bound":100,"piece_size":1048576,"files":[["d/a",5,1,18446744073709551615,2]]}"#;
        let e = read(header, part);
        assert!(e.contains("files[0]") && e.contains("does not lie in the file"), "{e}");
        let twice = format!("{header}\n{ok}\n{ok}\n").replace(r#""batches":1"#, r#""batches":2"#);
        let e = read_shipment(twice.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("appears twice"), "{e}");
    }

    /// A profile's layout is read back; a layout or a profile field this carload does not know
    /// is refused on line 1 (never built as something else).
    #[test]
    fn profile_layouts_are_read_and_unknown_profile_fields_refused() {
        let ok = r#"{"id":"b00000","car_size_bound":100,"piece_size":1048576,"files":[["d/a",5,1]]}"#;
        let trickle = HEADER_V1.replace(r#""hidden":false}"#, r#""hidden":false,"layout":"trickle"}"#);
        let s = read_shipment(format!("{trickle}\n{ok}\n").as_bytes()).unwrap();
        assert_eq!(s.header.profile.layout, crate::profile::Layout::Trickle);
        let old = read_shipment(format!("{HEADER_V1}\n{ok}\n").as_bytes()).unwrap();
        assert_eq!(old.header.profile, crate::profile::Profile::default());
        for (bad, named) in [(r#""layout":"spiral""#, "spiral"), (r#""future_knob":1"#, "future_knob")] {
            let h = HEADER_V1.replace(r#""hidden":false}"#, &format!(r#""hidden":false,{bad}}}"#));
            let e = refused(&h, ok);
            assert!(e.contains("line 1") && e.contains(named) && !e.contains('\n'), "{e}");
        }
    }

    /// Names that would read outside the base folder, IDs that collide in temporaries, numbers
    /// out of range and totals that lie: each refused naming the line, batch and field.
    #[test]
    fn a_shipment_cannot_name_files_outside_its_base_or_lie_about_sizes() {
        let h = header_v2();
        let rec = |id: &str, files: &str| {
            format!(r#"{{"id":"{id}","car_size_bound":100,"piece_size":1048576,"files":[{files}]}}"#)
        };
        let ok = rec("b00000", r#"["d/a",5,1,[2,3]]"#);
        assert!(read_shipment(format!("{h}\n{ok}\n").as_bytes()).is_ok());
        let hex = |p: &[u8]| format!("\\u0000{}", p.iter().map(|b| format!("{b:02x}")).collect::<String>());
        for (name, why) in [
            ("/etc/shadow".to_string(), "absolute"),
            ("../etc/shadow".to_string(), "`..`"),
            ("d/../../etc/shadow".to_string(), "`..`"),
            ("d/./a".to_string(), "`.`"),
            ("d//a".to_string(), "empty path component"),
            ("d/a/".to_string(), "empty path component"),
            (hex(b"/etc/shadow"), "NUL+hex form of a UTF-8 path"),
            (hex(b"/etc/\xff"), "absolute"),
            (hex(b"../\xff"), "`..`"),
            ("\\u0000zz".to_string(), "malformed"),
            ("a\\u0000b".to_string(), "NUL"),
            ("x".repeat(5000), "more than 4096"),
        ] {
            let e = refused(&h, &rec("b00000", &format!(r#"["{name}",5,1,[2,3]]"#)));
            assert!(e.contains("batch b00000") && e.contains("files[0]") && e.contains(why), "{name}: {e}");
        }
        // Version 1 names may be absolute (building refuses them), never `..`.
        assert!(read_shipment(format!("{HEADER_V1}\n{}\n", rec("b00000", r#"["/d/a",5,1]"#)).as_bytes()).is_ok());
        let e = refused(HEADER_V1, &rec("b00000", r#"["../a",5,1]"#));
        assert!(e.contains("`..`"), "{e}");
        // IDs are plain words: `a` and `a.x` would share temporaries.
        for id in ["a.x", ".a", "", &"x".repeat(65)] {
            let e = refused(&h, &rec(id, r#"["d/a",5,1,[2,3]]"#));
            assert!(e.contains("not a plain batch ID"), "{id:?}: {e}");
        }
        // Identity: required in version 2, unknown in version 1.
        let e = refused(&h, &rec("b00000", r#"["d/a",5,1]"#));
        assert!(e.contains("without [ctime_ns, inode]"), "{e}");
        let e = refused(HEADER_V1, &rec("b00000", r#"["d/a",5,1,[2,3]]"#));
        assert!(e.contains("version 1"), "{e}");
        // Sizes: a piece over the header's, under the minimum, a bound over the piece, a huge file.
        let big = ok.replace(r#""piece_size":1048576"#, r#""piece_size":68719476736"#);
        assert!(refused(&h, &big).contains("piece_size"));
        let small = ok.replace(r#""piece_size":1048576"#, r#""piece_size":524288"#);
        assert!(refused(&h, &small).contains("piece_size"));
        let over = ok.replace(r#""car_size_bound":100"#, r#""car_size_bound":1040385"#);
        let e = refused(&h.replace(r#""car_bytes_bound":100"#, r#""car_bytes_bound":1040385"#), &over);
        assert!(e.contains("car_size_bound") && e.contains("does not fit"), "{e}");
        let huge = rec("b00000", r#"["d/a",9223372036854775808,1,[2,3]]"#);
        assert!(refused(&h, &huge).contains("larger than"));
        // Totals that lie, and a missing or relative base.
        let e = refused(&h.replace(r#""bytes":5"#, r#""bytes":6"#), &ok);
        assert!(e.contains("line 1") && e.contains("bytes") && e.contains("add up to 5"), "{e}");
        let e = refused(&h.replace(r#""base":"/data","#, ""), &ok);
        assert!(e.contains("base") && e.contains("missing"), "{e}");
        let e = refused(&h.replace(r#""base":"/data""#, r#""base":"data""#), &ok);
        assert!(e.contains("not an absolute path"), "{e}");
    }
}
