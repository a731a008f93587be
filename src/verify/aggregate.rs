//! An aggregate's manifest checked against its DAG, entry by entry, whatever the block order.
//!
//! After the pass over the CAR, the buckets are walked from the root with positional reads (each
//! bucket block read once; one linked twice is a problem): every entry link must be named by its
//! CIDv1 and sit in the buckets its name gives (`baf...xu`, `baf...jjxu`), and its place
//! (`[outer, inner, entry]`), its CID and its `Tsize` are kept, 24 bytes per entry. The manifest
//! is then read in order and each entry looked up at the place its `PathIndexes` name: its CID,
//! `PathPrefixes`, `DagCidV0` and `DagSize` must be what that place holds, and a bitmap marks the
//! places claimed. Counts must agree, and every place left unclaimed is an entry the manifest
//! omits. `NodeCount` is not in the buckets: it is counted as unchecked.

use super::blocks::{flag, section_cid, Key, Kind, Table};
use super::{Findings, ManifestReport};
use crate::aggregate::{bucket_name, ManifestEntry, ManifestError, ManifestParser, ManifestRecord, ReadError};
use crate::block::{key, verify, DAG_PB, SHA2_256};
use crate::car::{read_section_at, ReadAt};
use crate::nodeview::pb_node;
use cid::{Cid, Version};

/// One inner bucket: where its entries start in [`Buckets::entries`], how many, its section.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    base: u32,
    count: u32,
    at: u64,
}

/// The entries of the DAG's buckets, by place.
#[derive(Debug, Default)]
struct Buckets {
    /// Per outer bucket (root link 1, 2, …): its first inner bucket in `buckets`.
    outers: Vec<u32>,
    /// Inner buckets in order (outer by outer).
    buckets: Vec<Bucket>,
    /// Every entry: key of its CID and its link's `Tsize`.
    entries: Vec<(Key, u64)>,
    /// Inner buckets that are identity CIDs (their `at` is [`INLINE`]), by index.
    inline: Vec<(usize, Cid)>,
}

/// The `at` of an inner bucket carried inline by an identity CID.
const INLINE: u64 = u64::MAX;

impl Buckets {
    /// The entry at `[outer, inner, entry]`, if the buckets have it.
    fn ordinal(&self, [p, q, r]: [u64; 3]) -> Option<usize> {
        let p = usize::try_from(p).ok()?.checked_sub(1)?;
        let start = *self.outers.get(p)? as usize;
        let end = self.outers.get(p + 1).map_or(self.buckets.len(), |&s| s as usize);
        let q = usize::try_from(q).ok()?;
        let b = self.buckets.get(start + q).filter(|_| start + q < end)?;
        let r = u32::try_from(r).ok().filter(|&r| r < b.count)?;
        Some((b.base + r) as usize)
    }

    /// The place `[outer, inner, entry]` of entry `ord`, its inner bucket and that bucket's index.
    fn place(&self, ord: usize) -> ([u64; 3], Bucket, usize) {
        let i = self.buckets.partition_point(|b| (b.base + b.count) as usize <= ord);
        let b = self.buckets[i];
        let p = self.outers.partition_point(|&s| s as usize <= i) - 1;
        ([p as u64 + 1, (i - self.outers[p] as usize) as u64, (ord - b.base as usize) as u64], b, i)
    }
}

/// Checks the aggregate among `roots`, if one is; its manifest's report.
pub(super) fn check<S: ReadAt + ?Sized>(
    src: &S,
    table: &mut Table,
    roots: &[Cid],
    findings: &mut Findings,
) -> Option<ManifestReport> {
    let mut aggregates = Vec::new();
    for root in roots {
        let Some(data) = block(src, table, root, findings) else { continue };
        if let Ok(manifest) = crate::aggregate::manifest_link(root, &data) {
            aggregates.push((*root, data, manifest));
        }
    }
    let (root, data, manifest_root) = aggregates.first().cloned()?;
    if roots.len() > 1 {
        let n = roots.len();
        findings.problem(|| format!("root {root} is an aggregate, whose CAR has one root (its payload CID), not {n}"));
    }
    for (other, _, _) in &aggregates[1..] {
        findings.problem(|| format!("root {other} is an aggregate too: only the manifest of {root} is checked"));
    }
    let buckets = walk(src, table, &data, findings);
    let mut report = ManifestReport { manifest_root, content: None, entries: None, node_counts: 0 };
    let mut parser = ManifestParser::new();
    let mut claims =
        Claims { buckets: &buckets, src, marked: vec![0; buckets.entries.len().div_ceil(64)], node_counts: 0 };
    let table = &*table;
    let locate = |c: &Cid| table.get(&key(c)).filter(|r| r.has(flag::SEEN)).map(|r| r.at());
    let walked = crate::aggregate::walk_manifest(src, root, manifest_root, &locate, u64::MAX, &mut |chunk| {
        parser.feed(chunk, &mut |record| {
            if let ManifestRecord::Entry(e) = record {
                claims.entry(&e, findings);
            }
            Ok::<(), Stop>(())
        })
    });
    report.node_counts = claims.node_counts;
    match walked {
        Ok(info) => {
            report.content = Some((info.bytes, info.sha256));
            match parser.finish() {
                Ok(n) => {
                    report.entries = Some(n);
                    claims.unclaimed(n, findings);
                }
                Err(e) => findings.problem(|| format!("manifest {manifest_root}: {e}")),
            }
        }
        Err(Stop::Read(e)) => findings.problem(|| format!("manifest {manifest_root} cannot be read: {e}")),
        Err(Stop::Parse(e)) => findings.problem(|| format!("manifest {manifest_root}: {e}")),
    }
    if report.node_counts > 0 {
        let n = report.node_counts;
        findings.warning(|| {
            format!("{n} manifest entries carry a NodeCount, which the buckets do not record: not checked")
        });
    }
    Some(report)
}

/// Why reading the manifest stopped.
enum Stop {
    Read(ReadError),
    Parse(ManifestError),
}

impl From<ReadError> for Stop {
    fn from(e: ReadError) -> Self {
        Stop::Read(e)
    }
}

impl From<ManifestError> for Stop {
    fn from(e: ManifestError) -> Self {
        Stop::Parse(e)
    }
}

/// The bytes of a block the pass over the CAR read (re-read by position and checked again).
fn block<S: ReadAt + ?Sized>(src: &S, table: &Table, cid: &Cid, findings: &mut Findings) -> Option<Vec<u8>> {
    let r = table.get(&key(cid)).filter(|r| r.has(flag::SEEN))?;
    match read_section_at(src, r.at()) {
        Ok(Some(s)) if key(&s.cid) == key(cid) && verify(cid, &s.data) => Some(s.data),
        _ => {
            findings.problem(|| format!("block {cid}: changed while it was verified"));
            None
        }
    }
}

/// A bucket block, once: `None` (and a problem) if it is linked a second time or not a folder;
/// `None` alone if it is missing (reported as such already). An identity CID is its own block.
fn bucket<S: ReadAt + ?Sized>(src: &S, table: &mut Table, cid: &Cid, findings: &mut Findings) -> Option<Vec<u8>> {
    if cid.hash().code() == crate::block::IDENTITY {
        return Some(cid.hash().digest().to_vec());
    }
    let r = table.get_mut(&key(cid)).filter(|r| r.has(flag::SEEN))?;
    if r.has(flag::VISITED) {
        findings.problem(|| format!("aggregate bucket {cid} is linked more than once"));
        return None;
    }
    r.set(flag::VISITED);
    if r.kind() != Kind::Dir {
        findings.problem(|| format!("aggregate bucket {cid} is not a UnixFS directory"));
        return None;
    }
    block(src, table, cid, findings)
}

/// Walks the buckets below the aggregate root (`root_data`), checking each entry's name and
/// buckets, and keeps every entry's place.
fn walk<S: ReadAt + ?Sized>(src: &S, table: &mut Table, root_data: &[u8], findings: &mut Findings) -> Buckets {
    let mut out = Buckets::default();
    let Ok(root) = pb_node(root_data) else { return out };
    for (p, outer_link) in root.links().enumerate().skip(1) {
        out.outers.push(out.buckets.len() as u32);
        let Some(outer) = bucket(src, table, &outer_link.cid, findings) else { continue };
        let Ok(outer) = pb_node(&outer) else { continue };
        for (q, inner_link) in outer.links().enumerate() {
            let base = out.entries.len() as u32;
            let Some(inner_data) = bucket(src, table, &inner_link.cid, findings) else {
                out.buckets.push(Bucket { base, count: 0, at: 0 });
                continue;
            };
            let at = if inner_link.cid.hash().code() == crate::block::IDENTITY {
                out.inline.push((out.buckets.len(), inner_link.cid));
                INLINE
            } else {
                table.get(&key(&inner_link.cid)).map_or(0, |r| r.at())
            };
            if let Ok(inner) = pb_node(&inner_data) {
                for (r, link) in inner.links().enumerate() {
                    let place = [p, q, r];
                    let cid = link.cid;
                    let name = cid.to_string();
                    if cid.version() != Version::V1 {
                        findings.problem(|| format!("aggregate entry {cid} at {place:?}: not a CIDv1"));
                    } else if link.name != name.as_bytes() {
                        let shown = String::from_utf8_lossy(link.name).into_owned();
                        findings
                            .problem(|| format!("aggregate entry {cid} at {place:?}: named {shown:?}, not by its CID"));
                    } else if name.len() < 7
                        || outer_link.name != bucket_name(&name, 2).as_bytes()
                        || inner_link.name != bucket_name(&name, 4).as_bytes()
                    {
                        let (o, i) =
                            (String::from_utf8_lossy(outer_link.name), String::from_utf8_lossy(inner_link.name));
                        findings.problem(|| {
                            format!(
                                "aggregate entry {cid} at {place:?}: in buckets {o}/{i}, which its CID does not name"
                            )
                        });
                    }
                    out.entries.push((key(&cid), link.tsize));
                }
            }
            let count = out.entries.len() as u32 - base;
            out.buckets.push(Bucket { base, count, at });
        }
    }
    out
}

/// The manifest's claims against the buckets.
struct Claims<'a, S: ?Sized> {
    buckets: &'a Buckets,
    src: &'a S,
    /// Places claimed, one bit per entry.
    marked: Vec<u64>,
    node_counts: u64,
}

impl<S: ReadAt + ?Sized> Claims<'_, S> {
    /// Checks one manifest entry at the place it names.
    fn entry(&mut self, e: &ManifestEntry, findings: &mut Findings) {
        let v1 = e.dag_cid_v1;
        let idx = e.path_indexes;
        let Some(ord) = self.buckets.ordinal(idx) else {
            findings.problem(|| format!("manifest entry {v1}: PathIndexes {idx:?} lead to no entry of the buckets"));
            return;
        };
        let (k, tsize) = self.buckets.entries[ord];
        if k != key(&v1) {
            findings.problem(|| format!("manifest entry {v1}: PathIndexes {idx:?} lead to {}", self.name(ord)));
            return;
        }
        let (word, bit) = (ord / 64, 1u64 << (ord % 64));
        if self.marked[word] & bit != 0 {
            findings.problem(|| format!("manifest entry {v1}: listed twice"));
        }
        self.marked[word] |= bit;
        let name = v1.to_string();
        if name.len() >= 7 {
            let want = [bucket_name(&name, 2), bucket_name(&name, 4)];
            if e.path_prefixes != want {
                let got = &e.path_prefixes;
                findings.problem(|| format!("manifest entry {v1}: PathPrefixes {got:?}, the buckets are {want:?}"));
            }
        }
        let mh = v1.hash();
        let v0 = (v1.codec() == DAG_PB && mh.code() == SHA2_256 && mh.size() == 32)
            .then(|| Cid::new_v0(*mh).expect("sha2-256/32 is a valid CIDv0"));
        if e.dag_cid_v0 != v0 {
            let got = e.dag_cid_v0.map_or("none".to_string(), |c| c.to_string());
            let want = v0.map_or("none".to_string(), |c| c.to_string());
            findings.problem(|| format!("manifest entry {v1}: DagCidV0 {got}, should be {want}"));
        }
        if e.dag_size.unwrap_or(0) != tsize {
            let got = e.dag_size.map_or("none".to_string(), |s| s.to_string());
            findings.problem(|| format!("manifest entry {v1}: DagSize {got}, its bucket link says {tsize}"));
        }
        if e.node_count.is_some() {
            self.node_counts += 1;
        }
    }

    /// After a manifest of `listed` entries: counts agree, every place was claimed.
    fn unclaimed(&self, listed: u64, findings: &mut Findings) {
        let held = self.buckets.entries.len() as u64;
        if listed != held {
            findings.problem(|| format!("the manifest lists {listed} entries, the buckets hold {held}"));
        }
        for ord in (0..self.buckets.entries.len()).filter(|&o| self.marked[o / 64] & (1 << (o % 64)) == 0) {
            findings.problem(|| {
                let (place, _, _) = self.buckets.place(ord);
                format!("DAG entry {} at {place:?}: not listed there in the manifest", self.name(ord))
            });
        }
    }

    /// The CID of entry `ord`, read back from its bucket.
    fn name(&self, ord: usize) -> String {
        let ([_, _, r], b, i) = self.buckets.place(ord);
        let data = if b.at == INLINE {
            self.buckets.inline.iter().find(|(j, _)| *j == i).map(|(_, c)| c.hash().digest().to_vec())
        } else {
            read_section_at(self.src, b.at).ok().flatten().map(|s| s.data)
        };
        data.and_then(|d| pb_node(&d).ok().and_then(|n| n.links().nth(r as usize)).map(|l| l.cid.to_string()))
            .or_else(|| section_cid(self.src, b.at).map(|c| format!("an entry of bucket {c}")))
            .unwrap_or_else(|| "another entry".into())
    }
}
