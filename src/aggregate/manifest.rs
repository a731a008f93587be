//! The aggregate manifest: NDJSON records written byte-for-byte as Go's `json.NewEncoder` writes
//! go-dagaggregator-unixfs v0.1.0's records, and a validating parser for it.

use cid::{Cid, Version};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};

/// `Description` of the summary record, as go-dagaggregator-unixfs v0.1.0 writes it.
pub const DESCRIPTION: &str =
    "Aggregate of non-related DAGs, produced by github.com/filecoin-project/go-dagaggregator-unixfs";
/// `EntriesSortedBy` of the summary record.
pub const ENTRIES_SORTED_BY: &str = "DagCidV1";
/// Manifest format version in the preamble record.
pub const MANIFEST_VERSION: u64 = 1;

/// One `DagAggregateEntry` record of the manifest: where an aggregated DAG sits in the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The DAG's root as CIDv1; also its link name in its inner bucket.
    #[serde(rename = "DagCidV1", with = "cid_string")]
    pub dag_cid_v1: Cid,
    /// The CIDv0 form, present when the root is dag-pb with a sha2-256 multihash.
    #[serde(rename = "DagCidV0", default, with = "opt_cid_string", skip_serializing_if = "Option::is_none")]
    pub dag_cid_v0: Option<Cid>,
    /// Cumulative DAG size, when known (never from Powergate).
    #[serde(rename = "DagSize", default, skip_serializing_if = "Option::is_none")]
    pub dag_size: Option<u64>,
    /// Number of DAG nodes, when known (never from Powergate).
    #[serde(rename = "NodeCount", default, skip_serializing_if = "Option::is_none")]
    pub node_count: Option<u64>,
    /// Link names leading to the entry: `[outer bucket, inner bucket]`.
    #[serde(rename = "PathPrefixes")]
    pub path_prefixes: [String; 2],
    /// Link indexes leading to the entry: `[outer in root, inner in outer, entry in inner]`.
    #[serde(rename = "PathIndexes")]
    pub path_indexes: [u64; 3],
}

/// Errors parsing a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A line is not a JSON record of a known type.
    #[error("manifest line {line}: {source}")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A record is valid JSON but breaks the manifest format.
    #[error("manifest line {line}: {reason}")]
    Invalid {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The summary's `EntryCount` disagrees with the entry records.
    #[error("manifest summary announces {expected} entries but holds {found}")]
    Count {
        /// `EntryCount` of the summary.
        expected: u64,
        /// Entry records found.
        found: u64,
    },
}

#[derive(Serialize)]
struct Preamble {
    #[serde(rename = "RecordType")]
    record_type: &'static str,
    #[serde(rename = "Version")]
    version: u64,
}

#[derive(Serialize)]
struct Summary {
    #[serde(rename = "RecordType")]
    record_type: &'static str,
    #[serde(rename = "EntryCount")]
    entry_count: u64,
    #[serde(rename = "EntriesSortedBy")]
    entries_sorted_by: &'static str,
    #[serde(rename = "Description")]
    description: &'static str,
}

#[derive(Serialize)]
struct EntryRecord<'a> {
    #[serde(rename = "RecordType")]
    record_type: &'static str,
    #[serde(flatten)]
    entry: &'a ManifestEntry,
}

/// Any record, for parsing.
#[derive(Deserialize)]
#[serde(tag = "RecordType")]
enum Record {
    #[serde(rename = "DagAggregatePreamble")]
    Preamble {
        #[serde(rename = "Version")]
        version: u64,
    },
    #[serde(rename = "DagAggregateSummary")]
    Summary {
        #[serde(rename = "EntryCount")]
        entry_count: u64,
        #[serde(rename = "EntriesSortedBy")]
        entries_sorted_by: String,
    },
    #[serde(rename = "DagAggregateEntry")]
    Entry(Box<ManifestEntry>),
}

/// A `serde_json` formatter that escapes strings as Go's `encoding/json` does with HTML escaping on
/// (`<`, `>`, `&`, U+2028, U+2029 as `\u…`; `\b` and `\f` as `\u0008`/`\u000c`).
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            w.write_all(&fragment.as_bytes()[start..i])?;
            w.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> io::Result<()> {
        use serde_json::ser::CharEscape;
        match escape {
            CharEscape::Backspace => w.write_all(b"\\u0008"),
            CharEscape::FormFeed => w.write_all(b"\\u000c"),
            other => serde_json::ser::CompactFormatter.write_char_escape(w, other),
        }
    }
}

/// Writes `value` as one Go-encoded JSON line (record followed by `\n`).
fn write_record(w: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(&mut *w, GoFormatter);
    value.serialize(&mut ser).map_err(io::Error::other)?;
    w.write_all(b"\n")
}

/// Writes the manifest's first two records: the preamble and the summary announcing
/// `entry_count` entries.
pub fn write_manifest_head(w: &mut dyn Write, entry_count: u64) -> io::Result<()> {
    write_record(w, &Preamble { record_type: "DagAggregatePreamble", version: MANIFEST_VERSION })?;
    write_record(
        w,
        &Summary {
            record_type: "DagAggregateSummary",
            entry_count,
            entries_sorted_by: ENTRIES_SORTED_BY,
            description: DESCRIPTION,
        },
    )
}

/// Writes one entry record of the manifest (entries follow the head in `DagCidV1` order).
pub fn write_manifest_entry(w: &mut dyn Write, entry: &ManifestEntry) -> io::Result<()> {
    write_record(w, &EntryRecord { record_type: "DagAggregateEntry", entry })
}

/// Writes the manifest for `entries` (already sorted by `DagCidV1`).
pub fn write_manifest(entries: &[ManifestEntry]) -> Vec<u8> {
    // A dag-pb entry line is about 250 bytes; over-reserve a little rather than double.
    let mut out = Vec::with_capacity(300 + entries.len() * 280);
    write_manifest_head(&mut out, entries.len() as u64).expect("writing to memory");
    for entry in entries {
        write_manifest_entry(&mut out, entry).expect("writing to memory");
    }
    out.shrink_to_fit();
    out
}

/// Parses a manifest: a preamble (version 1), a summary (sorted by `DagCidV1`, with a matching
/// `EntryCount`), then the entry records, which must be in strictly increasing `DagCidV1` order.
/// Every record ends with `\n`; a missing final newline is tolerated.
pub fn parse_manifest(ndjson: &[u8]) -> Result<Vec<ManifestEntry>, ManifestError> {
    let mut parser = ManifestParser::new();
    let mut entries = Vec::new();
    parser.feed(ndjson, &mut |record| {
        if let ManifestRecord::Entry(e) = record {
            entries.push(*e);
        }
        Ok::<(), ManifestError>(())
    })?;
    parser.finish()?;
    Ok(entries)
}

/// Longest manifest line [`ManifestParser`] accepts: an entry line is about 250 bytes.
pub const MAX_LINE: usize = 64 << 10;

/// A manifest record handed out by [`ManifestParser`] as soon as its line is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestRecord {
    /// The summary (line 2): the number of entries announced.
    Summary {
        /// `EntryCount`.
        entry_count: u64,
    },
    /// An entry record, in manifest order.
    Entry(Box<ManifestEntry>),
}

/// A streaming manifest parser: bytes in, in any pieces; records out as their lines complete,
/// checked as [`parse_manifest`] checks them. Holds one line (at most [`MAX_LINE`] bytes).
#[derive(Debug, Default)]
pub struct ManifestParser {
    line: Vec<u8>,
    number: usize,
    expected: Option<u64>,
    entries: u64,
    previous: String,
}

impl ManifestParser {
    /// A parser at the start of a manifest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entry records parsed so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Feeds the next bytes of the manifest; `f` gets each record completed by them. An error of
    /// `f` stops the parse and is returned.
    pub fn feed<E: From<ManifestError>>(
        &mut self,
        mut bytes: &[u8],
        f: &mut dyn FnMut(ManifestRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        while !bytes.is_empty() {
            let (part, done) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], true),
                None => (bytes, false),
            };
            if self.line.len() + part.len() > MAX_LINE {
                return Err(self.invalid(self.number + 1, format!("line longer than {MAX_LINE} bytes")).into());
            }
            bytes = &bytes[part.len() + usize::from(done)..];
            if !done {
                self.line.extend_from_slice(part);
                break;
            }
            if self.line.is_empty() {
                self.line_record(part, f)?;
            } else {
                self.line.extend_from_slice(part);
                let line = std::mem::take(&mut self.line);
                self.line_record(&line, f)?;
                self.line = line;
                self.line.clear();
            }
        }
        Ok(())
    }

    /// Ends the manifest: a last line without `\n` is parsed, then the summary's `EntryCount` is
    /// compared with the entries read. Returns the number of entries.
    pub fn finish(mut self) -> Result<u64, ManifestError> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_record(&line, &mut |_| Ok::<(), ManifestError>(()))?;
        }
        let expected = self.expected.ok_or_else(|| self.invalid(2, "missing DagAggregateSummary".into()))?;
        if expected != self.entries {
            return Err(ManifestError::Count { expected, found: self.entries });
        }
        Ok(self.entries)
    }

    fn invalid(&self, line: usize, reason: String) -> ManifestError {
        ManifestError::Invalid { line, reason }
    }

    fn line_record<E: From<ManifestError>>(
        &mut self,
        line: &[u8],
        f: &mut dyn FnMut(ManifestRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        self.number += 1;
        let n = self.number;
        if line.is_empty() {
            return Err(self.invalid(n, "empty line".into()).into());
        }
        let invalid = |reason: String| ManifestError::Invalid { line: n, reason };
        let record: Record = serde_json::from_slice(line).map_err(|source| ManifestError::Json { line: n, source })?;
        match (n, record) {
            (1, Record::Preamble { version }) => {
                if version != MANIFEST_VERSION {
                    return Err(invalid(format!("unsupported manifest version {version}")).into());
                }
            }
            (1, _) => return Err(invalid("first record is not the DagAggregatePreamble".into()).into()),
            (2, Record::Summary { entry_count, entries_sorted_by }) => {
                if entries_sorted_by != ENTRIES_SORTED_BY {
                    return Err(invalid(format!("entries sorted by {entries_sorted_by:?}, not DagCidV1")).into());
                }
                self.expected = Some(entry_count);
                f(ManifestRecord::Summary { entry_count })?;
            }
            (2, _) => return Err(invalid("second record is not the DagAggregateSummary".into()).into()),
            (_, Record::Entry(entry)) => {
                if entry.dag_cid_v1.version() != Version::V1 {
                    return Err(invalid("DagCidV1 is not a CIDv1".into()).into());
                }
                if let Some(v0) = entry.dag_cid_v0 {
                    if v0.version() != Version::V0 || v0.hash() != entry.dag_cid_v1.hash() {
                        return Err(invalid("DagCidV0 is not the CIDv0 form of DagCidV1".into()).into());
                    }
                }
                let key = entry.dag_cid_v1.to_string();
                if key <= self.previous {
                    return Err(invalid(format!("entry {key} is out of DagCidV1 order or repeated")).into());
                }
                self.previous = key;
                self.entries += 1;
                f(ManifestRecord::Entry(entry))?;
            }
            (_, _) => return Err(invalid("only DagAggregateEntry records may follow the summary".into()).into()),
        }
        Ok(())
    }
}

mod cid_string {
    use cid::Cid;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(cid: &Cid, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(cid)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cid, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|e| D::Error::custom(format!("invalid CID {s:?}: {e}")))
    }
}

mod opt_cid_string {
    use cid::Cid;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(cid: &Option<Cid>, s: S) -> Result<S::Ok, S::Error> {
        match cid {
            Some(c) => super::cid_string::serialize(c, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cid>, D::Error> {
        super::cid_string::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_escaping() {
        let mut out = Vec::new();
        write_record(&mut out, &"a<b>&c\u{2028}\u{8}\u{c}\n\"\\\u{1}é").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\u003cb\\u003e\\u0026c\\u2028\\u0008\\u000c\\n\\\"\\\\\\u0001é\"\n"
        );
    }

    #[test]
    fn rejects_malformed_manifests() {
        let good = write_manifest(&[]);
        assert_eq!(parse_manifest(&good).unwrap(), vec![]);
        let text = String::from_utf8(good).unwrap();
        let bad = [
            String::new(),
            "not json\n".into(),
            text.replace("\"Version\":1", "\"Version\":2"),
            text.replace("\"EntryCount\":0", "\"EntryCount\":1"),
            text.replace("\"DagCidV1\"", "\"Size\""),
            text.lines().nth(1).unwrap().to_string(),
            text.lines().next().unwrap().to_string(),
            format!("{text}\n"),
            format!("{text}{}\n", text.lines().next().unwrap()),
        ];
        for b in bad {
            assert!(parse_manifest(b.as_bytes()).is_err(), "accepted {b:?}");
        }
    }
}
