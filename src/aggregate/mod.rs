//! Filecoin batch aggregation, byte-compatible with go-dagaggregator-unixfs v0.1.0 as used by
//! `pow offline prepare --aggregate`.
//!
//! Many unrelated DAGs are grouped under one UnixFS directory tree named by their CIDv1 strings:
//! root → outer bucket (`baf...xu`) → inner bucket (`baf...jjxu`) → entry (full CIDv1), plus a
//! root link `@AggregateManifest.ndjson` to an NDJSON manifest listing every entry and its path.
//! This module builds the aggregate-owned blocks; the entries' own DAGs stay with the caller,
//! which writes them where [`Aggregate::car_items`] says.

pub mod compact;
mod manifest;
mod read;

pub use manifest::{
    parse_manifest, write_manifest, write_manifest_entry, write_manifest_head, ManifestEntry, ManifestError,
    ManifestParser, ManifestRecord, DESCRIPTION, MAX_LINE,
};
pub use read::{
    for_each_manifest_chunk, for_each_manifest_entry, for_each_manifest_record, read_manifest_from_car, ManifestInfo,
    ManifestSummary, ReadError, MAX_MANIFEST_BYTES,
};
pub(crate) use read::{manifest_link, walk_manifest};

use crate::block::{to_v1, Block, CidVersion, DAG_PB, IDENTITY, SHA2_256};
use crate::dagpb::{self, Link};
use crate::importer::memory::{file_dag, Dag};
use crate::profile::{Profile, DEFAULT_CHUNK_SIZE, DEFAULT_MAX_LINKS};
use crate::unixfs;
use cid::Cid;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Name of the root link to the manifest (always link 0: `@` sorts before `b`).
pub const MANIFEST_LINK_NAME: &str = "@AggregateManifest.ndjson";

/// The profile of the manifest file DAG: raw CIDv1 leaves, 256 KiB chunks, balanced 174.
pub const MANIFEST_PROFILE: Profile = Profile {
    cid_version: CidVersion::V1,
    raw_leaves: true,
    chunk_size: DEFAULT_CHUNK_SIZE,
    max_links: DEFAULT_MAX_LINKS,
    hidden: false,
    hamt_estimation: crate::unixfs::hamt::Estimation::Disabled,
    hamt_threshold: crate::unixfs::hamt::DEFAULT_THRESHOLD,
    hamt_fanout: crate::unixfs::hamt::DEFAULT_FANOUT,
    layout: crate::profile::Layout::Balanced,
};

/// One DAG to aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The DAG's root, in any CID version.
    pub root: Cid,
    /// Cumulative DAG size, if known (Powergate never knows it: `None`).
    pub dag_size: Option<u64>,
    /// Node count, if known (Powergate never knows it: `None`).
    pub node_count: Option<u64>,
}

impl Entry {
    /// An entry with unknown sizes, as Powergate creates them.
    pub fn new(root: Cid) -> Self {
        Entry { root, dag_size: None, node_count: None }
    }
}

/// Errors building or writing an aggregate.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AggregateError {
    /// Nothing left to aggregate after skipping identity CIDs.
    #[error("no valid entries to aggregate")]
    NoEntries,
    /// A CIDv1 string too short to cut bucket names from (cannot come from a real hash).
    #[error("CID {0} is too short to aggregate")]
    ShortCid(Cid),
    /// [`write_car_in_memory`] was not given the DAG of an entry.
    #[error("no DAG given for aggregate entry {0}")]
    MissingEntryDag(Cid),
    /// The spool file of a compact aggregate could not be used.
    #[error("aggregate spool: {0}")]
    Spool(String),
}

/// One item of an aggregate CAR, in canonical order (see [`Aggregate::car_items`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarItem<'a> {
    /// An aggregate-owned block (root, manifest or bucket directory), written as is.
    Block(&'a Block),
    /// An entry's DAG, written by the caller: its root block under `cid_v1`, then the rest of the
    /// DAG in depth-first pre-order under the CIDs their parents use. Skip any CID (the root's
    /// `cid_v1` included) already written anywhere in the CAR.
    Entry {
        /// Index into [`Aggregate::entries`].
        index: usize,
        /// The CID the entry's root block is written under.
        cid_v1: Cid,
        /// The root CID as first given to [`aggregate`].
        original: Cid,
    },
}

#[derive(Debug, Clone)]
struct Inner {
    block: Block,
    /// Indexes into the sorted entries.
    entries: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Outer {
    block: Block,
    inner: Vec<Inner>,
}

/// A built aggregate: the root and every block the aggregate owns.
#[derive(Debug, Clone)]
pub struct Aggregate {
    /// The payload CID (CIDv1 dag-pb).
    pub root: Cid,
    root_block: Block,
    manifest: Dag,
    manifest_bytes: Vec<u8>,
    entries: Vec<ManifestEntry>,
    originals: Vec<Cid>,
    outer: Vec<Outer>,
}

/// `name[..3] + "..." + name[len - keep..]`.
pub(crate) fn bucket_name(cid: &str, keep: usize) -> String {
    format!("{}...{}", &cid[..3], &cid[cid.len() - keep..])
}

/// An empty UnixFS directory holding `links`, CIDv1; returns it and its `Size()`.
fn directory(mut links: Vec<Link>) -> (Block, u64) {
    dagpb::sort_links(&mut links);
    let bytes = dagpb::encode(&links, Some(&unixfs::directory()));
    let size = bytes.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>();
    (Block::new(CidVersion::V1, DAG_PB, bytes), size)
}

/// Aggregates `entries` as go-dagaggregator-unixfs v0.1.0 does: identity CIDs are skipped,
/// duplicates (same CIDv1) are merged with the first occurrence's sizes kept, and the rest are
/// sorted by CIDv1 string.
pub fn aggregate(entries: &[Entry]) -> Result<Aggregate, AggregateError> {
    struct Item {
        v1: Cid,
        name: String,
        original: Cid,
        dag_size: Option<u64>,
        node_count: Option<u64>,
    }
    let mut items = Vec::with_capacity(entries.len());
    for e in entries.iter().filter(|e| e.root.hash().code() != IDENTITY) {
        let v1 = to_v1(&e.root);
        let name = v1.to_string();
        if name.len() < 7 {
            return Err(AggregateError::ShortCid(v1));
        }
        let nonzero = |v: Option<u64>| v.filter(|&n| n != 0);
        items.push(Item {
            v1,
            name,
            original: e.root,
            dag_size: nonzero(e.dag_size),
            node_count: nonzero(e.node_count),
        });
    }
    if items.is_empty() {
        return Err(AggregateError::NoEntries);
    }
    // A stable sort keeps duplicates in input order, so dedup keeps the first occurrence.
    items.sort_by(|a, b| a.name.cmp(&b.name));
    items.dedup_by(|later, first| later.name == first.name);

    // outer name → inner name → entry indexes (BTreeMap<String> orders by bytes, as Go sorts links).
    let mut tree: BTreeMap<String, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        let inner = bucket_name(&it.name, 4);
        tree.entry(bucket_name(&it.name, 2)).or_default().entry(inner).or_default().push(i);
    }

    let mut manifest_entries: Vec<Option<ManifestEntry>> = vec![None; items.len()];
    let mut outer = Vec::with_capacity(tree.len());
    let mut root_links = Vec::with_capacity(tree.len() + 1);
    for (oi, (outer_name, inners)) in tree.into_iter().enumerate() {
        let mut outer_links = Vec::with_capacity(inners.len());
        let mut inner_buckets = Vec::with_capacity(inners.len());
        for (ii, (inner_name, members)) in inners.into_iter().enumerate() {
            let links = members
                .iter()
                .map(|&i| Link {
                    cid: items[i].v1,
                    name: items[i].name.clone().into_bytes(),
                    tsize: items[i].dag_size.unwrap_or(0),
                })
                .collect();
            let (block, size) = directory(links);
            for (ei, &i) in members.iter().enumerate() {
                let it = &items[i];
                let v0 = (it.v1.codec() == DAG_PB && it.v1.hash().code() == SHA2_256 && it.v1.hash().size() == 32)
                    .then(|| Cid::new_v0(*it.v1.hash()).expect("sha2-256/32 is a valid CIDv0"));
                manifest_entries[i] = Some(ManifestEntry {
                    dag_cid_v1: it.v1,
                    dag_cid_v0: v0,
                    dag_size: it.dag_size,
                    node_count: it.node_count,
                    path_prefixes: [outer_name.clone(), inner_name.clone()],
                    path_indexes: [oi as u64 + 1, ii as u64, ei as u64],
                });
            }
            outer_links.push(Link { cid: block.cid, name: inner_name.into_bytes(), tsize: size });
            inner_buckets.push(Inner { block, entries: members });
        }
        let (block, size) = directory(outer_links);
        root_links.push(Link { cid: block.cid, name: outer_name.into_bytes(), tsize: size });
        outer.push(Outer { block, inner: inner_buckets });
    }

    let entries: Vec<ManifestEntry> =
        manifest_entries.into_iter().map(|e| e.expect("every entry is bucketed")).collect();
    let manifest_bytes = write_manifest(&entries);
    let manifest = file_dag(&manifest_bytes, &MANIFEST_PROFILE);
    root_links.push(Link { cid: manifest.root, name: MANIFEST_LINK_NAME.as_bytes().to_vec(), tsize: manifest.tsize });
    let (root_block, _) = directory(root_links);
    Ok(Aggregate {
        root: root_block.cid,
        root_block,
        manifest,
        manifest_bytes,
        entries,
        originals: items.iter().map(|it| it.original).collect(),
        outer,
    })
}

impl Aggregate {
    /// The manifest file's bytes (NDJSON), consuming the aggregate.
    pub fn into_manifest_bytes(self) -> Vec<u8> {
        self.manifest_bytes
    }

    /// The manifest file's bytes (NDJSON).
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    /// The manifest file's DAG (raw CIDv1 leaves; one raw block up to 256 KiB).
    pub fn manifest_dag(&self) -> &Dag {
        &self.manifest
    }

    /// The manifest entries, sorted by CIDv1 string.
    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// The root CID each entry was first given as, parallel to [`Aggregate::entries`].
    pub fn original_roots(&self) -> &[Cid] {
        &self.originals
    }

    /// The root directory block.
    pub fn root_block(&self) -> &Block {
        &self.root_block
    }

    /// Items in canonical CAR order (go-car's depth-first walk from the root): the root, the
    /// manifest blocks, then per outer bucket its block and, per inner bucket, its block followed
    /// by its entries. See [`CarItem::Entry`] for how to write an entry.
    pub fn car_items(&self) -> impl Iterator<Item = CarItem<'_>> {
        let head = std::iter::once(&self.root_block).chain(&self.manifest.blocks).map(CarItem::Block);
        let buckets = self.outer.iter().flat_map(move |o| {
            std::iter::once(CarItem::Block(&o.block)).chain(o.inner.iter().flat_map(move |inner| {
                std::iter::once(CarItem::Block(&inner.block)).chain(inner.entries.iter().map(move |&index| {
                    CarItem::Entry { index, cid_v1: self.entries[index].dag_cid_v1, original: self.originals[index] }
                }))
            }))
        });
        head.chain(buckets)
    }

    /// Bytes of all aggregate-owned CAR sections (root, manifest and bucket blocks, each with its
    /// length prefix and CID), the CAR header excluded. Entry sections are not counted: note that
    /// an entry whose root is CIDv0 costs 2 bytes more here than in its own CAR, because its root
    /// is written under its 36-byte CIDv1.
    pub fn overhead_bytes(&self) -> u64 {
        self.car_items()
            .map(|item| match item {
                CarItem::Block(b) => crate::car::section_len(b.cid.encoded_len(), b.data.len() as u64),
                CarItem::Entry { .. } => 0,
            })
            .sum()
    }
}

/// Writes the whole aggregate CAR in memory: header (root = [`Aggregate::root`]), then
/// [`Aggregate::car_items`], each entry taken from `entry_dags` (matched by root, in any CID
/// version) and every exact CID written once. Meant for small batches and tests; streaming
/// writers follow the same rules.
pub fn write_car_in_memory(agg: &Aggregate, entry_dags: &[Dag]) -> Result<Vec<u8>, AggregateError> {
    let dags: HashMap<Cid, &Dag> = entry_dags.iter().map(|d| (to_v1(&d.root), d)).collect();
    let mut out = crate::car::header(&agg.root);
    let mut written = HashSet::new();
    let mut put = |out: &mut Vec<u8>, cid: &Cid, data: &[u8]| {
        if written.insert(*cid) {
            out.extend_from_slice(&crate::car::section_prefix(cid, data.len()));
            out.extend_from_slice(data);
        }
    };
    for item in agg.car_items() {
        match item {
            CarItem::Block(b) => put(&mut out, &b.cid, &b.data),
            CarItem::Entry { cid_v1, .. } => {
                let dag = dags.get(&cid_v1).ok_or(AggregateError::MissingEntryDag(cid_v1))?;
                for (i, b) in dag.blocks.iter().enumerate() {
                    put(&mut out, if i == 0 { &cid_v1 } else { &b.cid }, &b.data);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
