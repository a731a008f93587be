//! The shipment file: JSON Lines, one header record then one record per batch.
//!
//! ```text
//! {"format":"carload-shipment","version":1,"profile":{…},"sector_size":…,"piece_size":…,…}
//! {"id":"b00000","car_size_bound":…,"piece_size":…,"files":[["data/a",1234,1700000000000000000],…]}
//! {"id":"b00001",…,"files":[["data/big.iso",90000000000,1700000000000000000,0,34000000000]]}
//! ```
//!
//! Each file is a compact array `[name, size, mtime_ns]`, or `[name, size, mtime_ns, offset,
//! length]` for a part of a file split across batches (offsets are multiples of the profile's
//! chunk size; the parts of a file, in offset order, cover it exactly). `name` is the walk path
//! (relative names resolve against the header's `base`), `size` and `mtime_ns` (nanoseconds
//! since the Unix epoch) are the file's at planning time and are checked again before building.
//! A batch record may carry a `result` (the same object as `DIR/<id>.json`) once built.
//! JSON Lines keeps a million-file shipment streamable and diff-friendly: about 60 bytes per
//! file plus its name.

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
pub const VERSION: u64 = 1;

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

/// One file (or file part) of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FileTuple", into = "FileTuple")]
pub struct FileRef {
    /// Walk path.
    pub name: String,
    /// Size of the whole file at planning time.
    pub size: u64,
    /// Modification time at planning time, in nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
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
    Part(String, u64, i64, u64, u64),
    Whole(String, u64, i64),
}

impl From<FileTuple> for FileRef {
    fn from(t: FileTuple) -> Self {
        match t {
            FileTuple::Whole(name, size, mtime_ns) => FileRef { name, size, mtime_ns, part: None },
            FileTuple::Part(name, size, mtime_ns, offset, len) => {
                FileRef { name, size, mtime_ns, part: Some(Part { offset, len }) }
            }
        }
    }
}

impl From<FileRef> for FileTuple {
    fn from(f: FileRef) -> Self {
        match f.part {
            None => FileTuple::Whole(f.name, f.size, f.mtime_ns),
            Some(p) => FileTuple::Part(f.name, f.size, f.mtime_ns, p.offset, p.len),
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

#[cfg(test)]
impl BatchResult {
    /// A result for tests: batch `batch`, a 3-byte CAR, no files.
    pub(crate) fn sample(batch: &str, fingerprint: Option<String>) -> Self {
        BatchResult {
            payload_cid: "bafyroot".into(),
            piece_size: 2048,
            piece_cid: "baga".into(),
            piece_size_unpadded: 2032,
            car_size: 3,
            piece_cid_v2: "bafkz".into(),
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

/// Reads a shipment written by [`write_shipment`]; blank lines are ignored.
pub fn read_shipment(r: impl BufRead) -> Result<Shipment, FormatError> {
    let mut batches = Vec::new();
    let mut ids = std::collections::HashSet::new();
    let header = for_each_record(r, &mut |h, line, _, text| {
        let b: Batch = serde_json::from_str(text).map_err(|source| FormatError::Json { line, source })?;
        let parts = b.files.iter().enumerate().filter(|(_, f)| f.part.is_some());
        check_batch(h, (&b.id, b.piece_size), parts, line, &mut ids)?;
        batches.push(b);
        Ok(())
    })?;
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
    let mut ids = std::collections::HashSet::new();
    let header = for_each_record(r, &mut |h, line, offset, text| {
        let b: BatchSkim = serde_json::from_str(text).map_err(|source| FormatError::Json { line, source })?;
        let parts = b.files.parts.iter().map(|(k, f)| (*k, f));
        check_batch(h, (&b.id, b.piece_size), parts, line, &mut ids)?;
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
    Ok(ShipmentIndex { header, batches })
}

/// Reads the batch record `at` of an indexed shipment `file` (positional reads: threads may
/// share the file).
pub fn read_batch_at(file: &std::fs::File, at: &BatchAt) -> Result<Batch, FormatError> {
    // Parsed from the file as it is read: the line (about 90 bytes per file) is never buffered.
    let range = crate::importer::input::RangeReader::new(file, at.offset, at.len);
    let b: Batch = serde_json::from_reader(io::BufReader::with_capacity(1 << 16, range))
        .map_err(|source| FormatError::Json { line: at.line, source })?;
    if b.id != at.id {
        return Err(FormatError::Invalid {
            line: at.line,
            field: "id".into(),
            reason: format!("{:?} where the index found {:?}: the shipment file changed", b.id, at.id),
        });
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
                if format != FORMAT || version != VERSION {
                    return Err(FormatError::NotAShipment { format, version });
                }
                let h: Header = serde_json::from_value(v).map_err(json)?;
                check_header(&h)?;
                header = Some(h);
            }
            Some(h) => {
                count += 1;
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

/// Whether `id` is a safe batch ID: 1–64 characters of `A-Z a-z 0-9 _ - .`, not starting with
/// a dot. IDs name output files and appear in exported shell lines.
pub fn valid_batch_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

fn check_header(h: &Header) -> Result<(), FormatError> {
    let bad = |field: &str, reason: String| Err(FormatError::Invalid { line: 1, field: field.into(), reason });
    let p = &h.profile;
    if p.chunk_size == 0 || p.chunk_size > crate::profile::MAX_CHUNK_SIZE {
        return bad(
            "profile.chunk_size",
            format!("{} is not between 1 and {}", p.chunk_size, crate::profile::MAX_CHUNK_SIZE),
        );
    }
    if p.max_links < 2 || p.max_links > 1 << 20 {
        return bad("profile.max_links", format!("{} is not between 2 and {}", p.max_links, 1 << 20));
    }
    if let Err(e) = super::plan::check_options(&super::plan::PlanOptions::of_header(h)) {
        return bad("sizes", e.to_string());
    }
    Ok(())
}

/// Checks a batch record: its ID (safe, unique), piece size, and the files with a `part` (given
/// with their index) lying in their file at chunk-aligned offsets.
fn check_batch<'a>(
    h: &Header,
    (id, piece_size): (&str, u64),
    parts: impl IntoIterator<Item = (usize, &'a FileRef)>,
    line: usize,
    ids: &mut std::collections::HashSet<String>,
) -> Result<(), FormatError> {
    let bad = |field: String, reason: String| Err(FormatError::Invalid { line, field, reason });
    if !valid_batch_id(id) {
        return bad(
            "id".into(),
            format!("{id:?} is not a safe batch ID (1-64 of A-Z a-z 0-9 _ - ., not starting with a dot)"),
        );
    }
    if !ids.insert(id.to_string()) {
        return bad("id".into(), format!("{id:?} appears twice"));
    }
    if !piece_size.is_power_of_two() || piece_size < 128 {
        return bad("piece_size".into(), format!("{piece_size} is not a power of two of at least 128"));
    }
    let chunk = h.profile.chunk_size as u64;
    for (k, f) in parts {
        if let Some(p) = f.part {
            let end = p.offset.checked_add(p.len);
            if p.len == 0 || end.is_none_or(|e| e > f.size) || p.offset % chunk != 0 {
                return bad(
                    format!("files[{k}] ({})", f.name),
                    format!(
                        "part at {} of {} bytes does not lie in the file of {} bytes at a multiple of the chunk size {chunk}",
                        p.offset, p.len, f.size
                    ),
                );
            }
        }
    }
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

#[derive(Default)]
struct FilesSkim {
    count: u64,
    bytes: u64,
    parts: Vec<(usize, FileRef)>,
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
                    s.bytes = s.bytes.saturating_add(f.len());
                    if f.part.is_some() {
                        s.parts.push((s.count as usize, f));
                    }
                    s.count += 1;
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
            assert_eq!(&read_batch_at(&f, at).unwrap(), b);
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
        let whole = FileRef { name: "a".into(), size: 3, mtime_ns: -5, part: None };
        let part = FileRef { name: "b".into(), size: 9, mtime_ns: 7, part: Some(Part { offset: 4, len: 5 }) };
        assert_eq!(serde_json::to_string(&whole).unwrap(), r#"["a",3,-5]"#);
        assert_eq!(serde_json::to_string(&part).unwrap(), r#"["b",9,7,4,5]"#);
        assert_eq!(serde_json::from_str::<FileRef>(r#"["b",9,7,4,5]"#).unwrap(), part);
        assert_eq!(serde_json::from_str::<FileRef>(r#"["a",3,-5]"#).unwrap(), whole);
    }

    #[test]
    fn hostile_records_are_refused_with_line_and_field() {
        let header = r#"{"format":"carload-shipment","version":1,"profile":{"cid_version":"V0","raw_leaves":false,"chunk_size":262144,"max_links":174,"hidden":false},"sector_size":34359738368,"piece_size":34359738368,"min_piece_size":1048576,"margin":0,"pack":"best-fit","inputs":["d"],"batches":1,"files":1,"bytes":5,"car_bytes_bound":100}"#;
        let read = |h: &str, b: &str| read_shipment(format!("{h}\n{b}\n").as_bytes()).unwrap_err().to_string();
        let ok = r#"{"id":"b00000","car_size_bound":100,"piece_size":1048576,"files":[["d/a",5,1]]}"#;
        assert!(read_shipment(format!("{header}\n{ok}\n").as_bytes()).is_ok());
        let e = read(header, &ok.replace("b00000", "../../etc/x"));
        assert!(e.contains("line 2") && e.contains("id"), "{e}");
        let e = read(header, &ok.replace("b00000", "b0; rm -rf ~"));
        assert!(e.contains("not a safe batch ID"), "{e}");
        let e = read(&header.replace("262144", "0"), ok);
        assert!(e.contains("line 1") && e.contains("chunk_size"), "{e}");
        let e = read(&header.replace(r#""max_links":174"#, r#""max_links":1"#), ok);
        assert!(e.contains("max_links"), "{e}");
        let part =
            r#"{"id":"b00000","car_size_bound":100,"piece_size":1048576,"files":[["d/a",5,1,18446744073709551615,2]]}"#;
        let e = read(header, part);
        assert!(e.contains("files[0]") && e.contains("does not lie in the file"), "{e}");
        let twice = format!("{header}\n{ok}\n{ok}\n").replace(r#""batches":1"#, r#""batches":2"#);
        let e = read_shipment(twice.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("appears twice"), "{e}");
    }
}
