//! Aggregates of millions of entries in bounded memory.
//!
//! [`super::aggregate`] keeps every entry's CIDs, names, manifest record and bucket links in
//! memory (about 1 KB per entry). Here an entry is a [`Member`]: a [`Key`] (its 36-byte sha2-256
//! CIDv1, compared in the order of its base32 string without building the string) and a small
//! payload of the caller's. The members are sorted twice in place — by CID string to write the
//! manifest, then in CAR order (outer bucket, inner bucket, CID) — the manifest goes to a spool
//! file while its leaves are hashed, and inner bucket blocks are rebuilt when they are written
//! instead of being kept. What stays in memory besides the members is bounded by the number of
//! buckets (at most 256 outer buckets and 262,144 inner ones for sha2-256 CIDs) and the
//! manifest's internal nodes (one link per 256 KiB of manifest).
//!
//! The blocks and the manifest are byte-identical to [`super::aggregate`]'s for the same roots
//! with unknown DAG sizes (as Powergate aggregates them); a test compares the two.

use super::manifest::{write_manifest_entry, write_manifest_head, ManifestEntry};
use super::{directory, AggregateError, MANIFEST_LINK_NAME, MANIFEST_PROFILE};
use crate::block::{cid_from_multihash, cid_of, Block, CidVersion, DAG_PB, RAW, SHA2_256};
use crate::dagpb::Link;
use crate::importer::memory::{balanced_tree, car_order, TreeNode};
use cid::Cid;
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

/// Bytes of a sha2-256 CIDv1 with a one-byte codec (dag-pb or raw).
pub const KEY_LEN: usize = 36;
/// Characters of such a CID's base32 string after its `b` prefix.
const CHARS: usize = 58;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A sha2-256 CIDv1 (dag-pb or raw) as its 36 bytes, ordered as its base32 string is (the
/// aggregator sorts and names entries by that string).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// The key of `cid`'s CIDv1 form, or `None` when it is not a sha2-256 CID of 36 bytes.
    pub fn of(cid: &Cid) -> Option<Key> {
        let (mh, codec) = (cid.hash(), cid.codec());
        if mh.code() != SHA2_256 || mh.size() != 32 || codec >= 0x80 {
            return None;
        }
        // CIDv1 bytes: version, codec and multihash code as one-byte varints, length, digest.
        let mut key = [0; KEY_LEN];
        key[..4].copy_from_slice(&[1, codec as u8, SHA2_256 as u8, 32]);
        key[4..].copy_from_slice(mh.digest());
        Some(Key(key))
    }

    /// The CIDv1.
    pub fn cid(&self) -> Cid {
        Cid::try_from(&self.0[..]).expect("a key holds a valid CIDv1")
    }

    /// Whether the codec is dag-pb (the manifest then also names the CIDv0).
    pub fn is_dag_pb(&self) -> bool {
        u64::from(self.0[1]) == DAG_PB
    }

    /// Character `i` of the base32 string after its `b` prefix.
    fn char_at(&self, i: usize) -> u8 {
        let bit = i * 5;
        let byte = bit / 8;
        let hi = u16::from(self.0[byte]) << 8;
        let lo = self.0.get(byte + 1).copied().map_or(0, u16::from);
        ALPHABET[usize::from(((hi | lo) >> (11 - bit % 8)) & 31)]
    }

    /// Compares as the CIDs' base32 strings compare.
    pub fn cmp_str(&self, other: &Key) -> Ordering {
        let Some(d) = self.0.iter().zip(&other.0).position(|(a, b)| a != b) else { return Ordering::Equal };
        // Characters wholly before byte `d` are equal.
        (d * 8 / 5..CHARS)
            .map(|i| self.char_at(i).cmp(&other.char_at(i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }

    /// The CIDv0 form, when the codec is dag-pb (the manifest's `DagCidV0`).
    pub fn cid_v0(&self) -> Option<Cid> {
        self.is_dag_pb().then(|| cid_from_multihash(CidVersion::V0, DAG_PB, *self.cid().hash()))
    }

    /// Compares in CAR order: by bucket ([`Key::bucket_code`]), then as CID strings.
    fn cmp_car(&self, other: &Key) -> Ordering {
        self.bucket_code().cmp(&other.bucket_code()).then_with(|| self.cmp_str(other))
    }

    /// The order of CAR writing: outer bucket name (`b`, characters 0-1, the last two), inner
    /// bucket name (then characters 54-55), as one number. Ties break by [`Key::cmp_str`].
    fn bucket_code(&self) -> u64 {
        // Characters 0-1 are bits 0-9; characters 54-57 are bits 270-289 (the last two bits
        // are base32's zero padding).
        let k = &self.0;
        let head = ((u16::from(k[0]) << 8) | u16::from(k[1])) >> 6;
        let tail = ((u32::from(k[33]) << 16) | (u32::from(k[34]) << 8) | u32::from(k[35])) << 2;
        let c = |v: u32| u64::from(ALPHABET[(v & 31) as usize]);
        [c(u32::from(head) >> 5), c(u32::from(head)), c(tail >> 5), c(tail), c(tail >> 15), c(tail >> 10)]
            .iter()
            .fold(0, |acc, &ch| (acc << 8) | ch)
    }

    fn outer_name(&self) -> String {
        self.name_with_tail(2)
    }

    fn inner_name(&self) -> String {
        self.name_with_tail(4)
    }

    /// `string[..3] + "..." + string[len - keep..]`, as the aggregator names buckets.
    fn name_with_tail(&self, keep: usize) -> String {
        let mut s = vec![b'b', self.char_at(0), self.char_at(1), b'.', b'.', b'.'];
        s.extend((CHARS - keep..CHARS).map(|i| self.char_at(i)));
        String::from_utf8(s).expect("base32 is ASCII")
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s: Vec<u8> = std::iter::once(b'b').chain((0..CHARS).map(|i| self.char_at(i))).collect();
        f.write_str(std::str::from_utf8(&s).expect("base32 is ASCII"))
    }
}

/// One entry of a compact aggregate.
#[derive(Clone, Copy, Debug)]
pub struct Member<T> {
    /// The entry's root.
    pub key: Key,
    /// The caller's index of the entry (its walk order). Of entries with the same root, the
    /// lowest order is aggregated; the others are duplicates.
    pub order: u32,
    /// The caller's data (e.g. where the entry's DAG is).
    pub payload: T,
    duplicate: bool,
}

impl<T> Member<T> {
    /// A member for the entry of index `order`.
    pub fn new(key: Key, order: u32, payload: T) -> Self {
        Member { key, order, payload, duplicate: false }
    }

    /// Whether an entry of lower order has the same root (it is not aggregated again).
    pub fn is_duplicate(&self) -> bool {
        self.duplicate
    }
}

/// Bytes held in a spool file (the manifest of a compact aggregate).
#[derive(Debug)]
pub struct SpooledBytes {
    file: File,
    len: u64,
}

impl SpooledBytes {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes `offset..offset + len`.
    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// Copies every byte to `w`.
    pub fn copy_to(&self, w: &mut dyn Write) -> io::Result<()> {
        let mut at = 0;
        while at < self.len {
            let n = (self.len - at).min(1 << 20) as usize;
            w.write_all(&self.read(at, n)?)?;
            at += n as u64;
        }
        Ok(())
    }

    /// Every byte, in memory.
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        self.read(0, self.len as usize)
    }
}

/// Writes the manifest to its spool file, hashing its raw leaves as they fill.
struct ManifestWriter {
    out: SpooledBytes,
    buf: Vec<u8>,
    leaves: Vec<(Cid, u64, u64)>,
}

impl ManifestWriter {
    fn leaf(&mut self, n: usize) -> io::Result<()> {
        let chunk = &self.buf[..n];
        self.out.file.write_all_at(chunk, self.out.len)?;
        self.out.len += n as u64;
        self.leaves.push((cid_of(CidVersion::V1, RAW, chunk), n as u64, n as u64));
        self.buf.drain(..n);
        Ok(())
    }

    fn finish(mut self) -> io::Result<(SpooledBytes, Vec<TreeNode>, usize)> {
        if !self.buf.is_empty() || self.leaves.is_empty() {
            self.leaf(self.buf.len())?;
        }
        let (nodes, root) = balanced_tree(self.leaves, &MANIFEST_PROFILE);
        Ok((self.out, nodes, root))
    }
}

impl Write for ManifestWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        while self.buf.len() >= MANIFEST_PROFILE.chunk_size {
            self.leaf(MANIFEST_PROFILE.chunk_size)?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A built compact aggregate: its root, the outer buckets and the manifest (spooled), with the
/// members in CAR order.
#[derive(Debug)]
pub struct CompactAggregate<T> {
    /// The payload CID (CIDv1 dag-pb).
    pub root: Cid,
    root_block: Block,
    manifest: SpooledBytes,
    manifest_nodes: Vec<TreeNode>,
    manifest_root: usize,
    /// The outer bucket blocks, in CAR order.
    outers: Vec<Block>,
    members: Vec<Member<T>>,
    unique: usize,
}

/// One item of a compact aggregate's CAR, in order (see [`CompactAggregate::for_each_item`]).
pub enum Item<'a, T> {
    /// An aggregate-owned block (root, manifest or bucket directory), written as is.
    Block(&'a Block),
    /// An entry's DAG, written by the caller as [`super::CarItem::Entry`] says: its root block
    /// under the key's CIDv1, then the rest of its DAG, each CID once in the whole CAR.
    Entry {
        /// The member's position in CAR order (see [`CompactAggregate::is_entry_before`]).
        position: usize,
        /// The member.
        member: &'a Member<T>,
    },
}

/// The inner bucket block holding `members` (one bucket, CID order, no duplicates).
fn inner_block<T>(members: &[Member<T>]) -> (Block, u64) {
    let links = members
        .iter()
        .filter(|m| !m.duplicate)
        .map(|m| Link { cid: m.key.cid(), name: m.key.to_string().into_bytes(), tsize: 0 })
        .collect();
    directory(links)
}

/// Runs of members sharing `code`, as index ranges.
fn runs<'a, T>(
    members: &'a [Member<T>],
    code: impl Fn(&Key) -> u64 + 'a,
) -> impl Iterator<Item = std::ops::Range<usize>> + 'a {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= members.len() {
            return None;
        }
        let c = code(&members[start].key);
        let end = start + members[start..].iter().position(|m| code(&m.key) != c).unwrap_or(members.len() - start);
        let run = start..end;
        start = end;
        Some(run)
    })
}

/// Outer buckets whose inner bucket blocks are rebuilt ahead of the writer at most.
const INNER_AHEAD: usize = 2;

/// Members whose manifest records are formatted together (in parallel tasks of
/// [`MANIFEST_TASK`]); about 300 bytes of text each while they are written.
const MANIFEST_WINDOW: usize = 16384;
const MANIFEST_TASK: usize = 512;

/// Aggregates `members` as go-dagaggregator-unixfs v0.1.0 does with unknown DAG sizes
/// (duplicates merged, the lowest order kept), writing the manifest to `spool`.
pub fn aggregate_compact<T: Copy + Send + Sync>(
    mut members: Vec<Member<T>>,
    spool: File,
) -> Result<CompactAggregate<T>, AggregateError> {
    if members.is_empty() {
        return Err(AggregateError::NoEntries);
    }
    let spool_err = |e: io::Error| AggregateError::Spool(e.to_string());
    // The manifest: entries in CID string order, each once.
    members.par_sort_unstable_by(|a, b| a.key.cmp_str(&b.key).then(a.order.cmp(&b.order)));
    for i in 1..members.len() {
        members[i].duplicate = members[i].key == members[i - 1].key;
    }
    let unique = members.iter().filter(|m| !m.duplicate).count();
    // Each inner bucket's indexes: [outer in root (from 1), inner in outer, next entry in inner].
    let mut buckets: BTreeMap<u64, [u64; 3]> =
        members.iter().filter(|m| !m.duplicate).map(|m| (m.key.bucket_code(), [0; 3])).collect();
    let (mut outer, mut inner, mut last_outer) = (0, 0, None);
    for (code, idx) in buckets.iter_mut() {
        if last_outer != Some(code >> 16) {
            (outer, inner, last_outer) = (outer + 1, 0, Some(code >> 16));
        }
        *idx = [outer, inner, 0];
        inner += 1;
    }
    let mut w = ManifestWriter {
        out: SpooledBytes { file: spool, len: 0 },
        buf: Vec::with_capacity(2 * MANIFEST_PROFILE.chunk_size),
        leaves: Vec::new(),
    };
    write_manifest_head(&mut w, unique as u64).map_err(spool_err)?;
    // The records are formatted in parallel, a window of entries at a time (their bucket
    // indexes first, in order), and written in order.
    let mut window = Vec::with_capacity(MANIFEST_WINDOW);
    for part in members.chunks(MANIFEST_WINDOW) {
        window.clear();
        for m in part.iter().filter(|m| !m.duplicate) {
            let idx = buckets.get_mut(&m.key.bucket_code()).expect("every bucket is indexed");
            window.push((m.key, *idx));
            idx[2] += 1;
        }
        let lines: Vec<Vec<u8>> = window
            .par_chunks(MANIFEST_TASK)
            .map(|task| {
                let mut out = Vec::with_capacity(task.len() * 300);
                for (key, idx) in task {
                    let entry = ManifestEntry {
                        dag_cid_v1: key.cid(),
                        dag_cid_v0: key.cid_v0(),
                        dag_size: None,
                        node_count: None,
                        path_prefixes: [key.outer_name(), key.inner_name()],
                        path_indexes: *idx,
                    };
                    write_manifest_entry(&mut out, &entry).expect("writing to memory");
                }
                out
            })
            .collect();
        for l in lines {
            w.write_all(&l).map_err(spool_err)?;
        }
    }
    drop(buckets);
    let (manifest, manifest_nodes, manifest_root) = w.finish().map_err(spool_err)?;

    // CAR order; a duplicate sorts right after the entry it repeats.
    members.par_sort_unstable_by(|a, b| a.key.cmp_car(&b.key).then(a.order.cmp(&b.order)));
    let mut outers = Vec::new();
    let mut root_links = Vec::new();
    for outer in runs(&members, |k| k.bucket_code() >> 16) {
        let group = &members[outer.clone()];
        let links = runs(group, Key::bucket_code)
            .map(|r| {
                let (block, size) = inner_block(&group[r.clone()]);
                Link { cid: block.cid, name: group[r.start].key.inner_name().into_bytes(), tsize: size }
            })
            .collect();
        let (block, size) = directory(links);
        root_links.push(Link { cid: block.cid, name: group[0].key.outer_name().into_bytes(), tsize: size });
        outers.push(block);
    }
    let m = &manifest_nodes[manifest_root];
    root_links.push(Link { cid: m.cid, name: MANIFEST_LINK_NAME.as_bytes().to_vec(), tsize: m.tsize });
    let (root_block, _) = directory(root_links);
    Ok(CompactAggregate {
        root: root_block.cid,
        root_block,
        manifest,
        manifest_nodes,
        manifest_root,
        outers,
        members,
        unique,
    })
}

impl<T> CompactAggregate<T> {
    /// Entries in the manifest (distinct roots).
    pub fn unique(&self) -> usize {
        self.unique
    }

    /// The manifest bytes, spooled.
    pub fn manifest(&self) -> &SpooledBytes {
        &self.manifest
    }

    /// Whether the entry with root `key` is written before CAR position `position` (so its root
    /// block is already in the CAR under that CIDv1).
    pub fn is_entry_before(&self, key: &Key, position: usize) -> bool {
        // The first member with this key is the aggregated one (duplicates follow it).
        let code = key.bucket_code();
        let first = self
            .members
            .partition_point(|m| m.key.bucket_code().cmp(&code).then_with(|| m.key.cmp_str(key)) == Ordering::Less);
        first < position && self.members.get(first).is_some_and(|m| m.key == *key)
    }

    /// Calls `f` with every item of the CAR in order: the root, the manifest's blocks, then per
    /// outer bucket its block and, per inner bucket, its block followed by its entries (each
    /// root once).
    pub fn for_each_item<E: From<AggregateError>>(
        &self,
        f: &mut dyn FnMut(Item<'_, T>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        T: Sync,
    {
        f(Item::Block(&self.root_block))?;
        for i in car_order(&self.manifest_nodes, self.manifest_root) {
            let node = &self.manifest_nodes[i];
            match &node.block {
                Some(block) => f(Item::Block(block))?,
                None => {
                    // Leaves come first in the node list, one per full chunk.
                    let offset = (i * MANIFEST_PROFILE.chunk_size) as u64;
                    let data = self
                        .manifest
                        .read(offset, node.tsize as usize)
                        .map_err(|e| AggregateError::Spool(e.to_string()))?;
                    let block = Block { cid: node.cid, data };
                    f(Item::Block(&block))?;
                }
            }
        }
        // The inner bucket blocks are rebuilt on another thread, an outer bucket ahead of the
        // caller (at most INNER_AHEAD outer buckets' blocks held).
        let outer_runs: Vec<std::ops::Range<usize>> = runs(&self.members, |k| k.bucket_code() >> 16).collect();
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Block>>(INNER_AHEAD);
            let (members, outer_runs) = (&self.members, &outer_runs);
            scope.spawn(move || {
                for outer in outer_runs {
                    let group = &members[outer.clone()];
                    let blocks = runs(group, Key::bucket_code).map(|r| inner_block(&group[r]).0).collect();
                    if tx.send(blocks).is_err() {
                        return;
                    }
                }
            });
            let mut outers = self.outers.iter();
            for outer in outer_runs {
                let block = outers.next().expect("one block per outer bucket");
                f(Item::Block(block))?;
                let inner_blocks = rx.recv().expect("the inner bucket builder sends every outer bucket");
                for (inner, block) in runs(&self.members[outer.clone()], Key::bucket_code).zip(&inner_blocks) {
                    let range = outer.start + inner.start..outer.start + inner.end;
                    f(Item::Block(block))?;
                    for position in range.filter(|&p| !self.members[p].duplicate) {
                        f(Item::Entry { position, member: &self.members[position] })?;
                    }
                }
            }
            Ok(())
        })
    }

    /// The members, in CAR order: [`CompactAggregate::for_each_item`] gives the entries of those
    /// that are not duplicates, in this order.
    pub fn members(&self) -> &[Member<T>] {
        &self.members
    }

    /// The members (in CAR order) and the spooled manifest.
    pub fn into_parts(self) -> (Vec<Member<T>>, SpooledBytes) {
        (self.members, self.manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{aggregate, CarItem, Entry};
    use crate::block::to_v1;
    use proptest::prelude::*;

    fn cid(codec: u64, seed: &[u8]) -> Cid {
        cid_of(CidVersion::V1, codec, seed)
    }

    proptest! {
        /// The bucket code taken from the bits is the one of the characters.
        #[test]
        fn bucket_code_is_the_characters_code(digest in any::<[u8; 32]>(), pb: bool) {
            let key = Key::of(&cid_from_multihash(
                CidVersion::V1,
                if pb { DAG_PB } else { RAW },
                multihash::Multihash::<64>::wrap(SHA2_256, &digest).unwrap(),
            ))
            .unwrap();
            let by_chars = [0, 1, 56, 57, 54, 55].iter().fold(0, |acc, &i| (acc << 8) | u64::from(key.char_at(i)));
            prop_assert_eq!(key.bucket_code(), by_chars);
        }

        #[test]
        fn keys_order_as_their_strings(a in any::<Vec<u8>>(), b in any::<Vec<u8>>(), pb_a: bool, pb_b: bool) {
            let ca = cid(if pb_a { DAG_PB } else { RAW }, &a);
            let cb = cid(if pb_b { DAG_PB } else { RAW }, &b);
            let (ka, kb) = (Key::of(&ca).unwrap(), Key::of(&cb).unwrap());
            prop_assert_eq!(ka.to_string(), ca.to_string());
            prop_assert_eq!(ka.cid(), ca);
            prop_assert_eq!(ka.cmp_str(&kb), ca.to_string().cmp(&cb.to_string()));
        }

        /// Same blocks, same order, same manifest as the in-memory aggregate, duplicates and
        /// CIDv0 roots included.
        #[test]
        fn same_as_the_in_memory_aggregate(
            seeds in proptest::collection::vec((0u16..400, any::<bool>(), any::<bool>()), 1..300)
        ) {
            let roots: Vec<Cid> = seeds
                .iter()
                .map(|&(s, pb, v0)| {
                    let c = cid(if pb { DAG_PB } else { RAW }, &s.to_le_bytes());
                    if pb && v0 { Cid::new_v0(*c.hash()).unwrap() } else { c }
                })
                .collect();
            let reference = aggregate(&roots.iter().map(|r| Entry::new(*r)).collect::<Vec<_>>()).unwrap();
            let members =
                roots.iter().enumerate().map(|(i, r)| Member::new(Key::of(r).unwrap(), i as u32, ())).collect();
            let compact = aggregate_compact(members, tempfile::tempfile().unwrap()).unwrap();
            prop_assert_eq!(compact.root, reference.root);
            prop_assert_eq!(compact.unique(), reference.entries().len());
            prop_assert_eq!(compact.manifest().to_vec().unwrap(), reference.manifest_bytes());
            let want: Vec<(Cid, Option<Vec<u8>>)> = reference
                .car_items()
                .map(|item| match item {
                    CarItem::Block(b) => (b.cid, Some(b.data.clone())),
                    CarItem::Entry { cid_v1, .. } => (cid_v1, None),
                })
                .collect();
            let mut got = Vec::new();
            compact
                .for_each_item(&mut |item| -> Result<(), AggregateError> {
                    got.push(match item {
                        Item::Block(b) => (b.cid, Some(b.data.clone())),
                        Item::Entry { member, .. } => (member.key.cid(), None),
                    });
                    Ok(())
                })
                .unwrap();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_manifest_of_several_leaves_matches() {
        // 3,000 entries make a manifest of about 700 KB: three leaves under one node.
        let roots: Vec<Cid> = (0u32..3000).map(|i| cid(DAG_PB, &i.to_le_bytes())).collect();
        let reference = aggregate(&roots.iter().map(|r| Entry::new(*r)).collect::<Vec<_>>()).unwrap();
        assert!(reference.manifest_dag().blocks.len() > 2);
        let members = roots.iter().enumerate().map(|(i, r)| Member::new(Key::of(r).unwrap(), i as u32, ())).collect();
        let compact = aggregate_compact(members, tempfile::tempfile().unwrap()).unwrap();
        assert_eq!(compact.root, reference.root);
        let mut blocks = Vec::new();
        compact
            .for_each_item(&mut |item| -> Result<(), AggregateError> {
                if let Item::Block(b) = item {
                    blocks.push(b.clone());
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(&blocks[1..1 + reference.manifest_dag().blocks.len()], &reference.manifest_dag().blocks[..]);
    }

    /// More entries than one window of manifest records (formatted in parallel tasks, written
    /// in order), with duplicates, give the reference manifest and CAR items; a caller that stops
    /// early stops the inner bucket builder too.
    #[test]
    fn several_manifest_windows_and_an_early_stop() {
        let n = 2 * MANIFEST_WINDOW as u32 + 1000;
        let roots: Vec<Cid> =
            (0..n).map(|i| cid(if i % 3 == 0 { RAW } else { DAG_PB }, &(i % (n - 500)).to_le_bytes())).collect();
        let reference = aggregate(&roots.iter().map(|r| Entry::new(*r)).collect::<Vec<_>>()).unwrap();
        let members = roots.iter().enumerate().map(|(i, r)| Member::new(Key::of(r).unwrap(), i as u32, ())).collect();
        let compact = aggregate_compact(members, tempfile::tempfile().unwrap()).unwrap();
        assert_eq!(compact.root, reference.root);
        assert_eq!(compact.manifest().to_vec().unwrap(), reference.manifest_bytes());
        let want: Vec<Cid> = reference
            .car_items()
            .map(|item| match item {
                CarItem::Block(b) => b.cid,
                CarItem::Entry { cid_v1, .. } => cid_v1,
            })
            .collect();
        let mut got = Vec::new();
        compact
            .for_each_item(&mut |item| -> Result<(), AggregateError> {
                got.push(match item {
                    Item::Block(b) => b.cid,
                    Item::Entry { member, .. } => member.key.cid(),
                });
                Ok(())
            })
            .unwrap();
        assert_eq!(got, want);
        let mut entries = 0;
        let stopped = compact.for_each_item(&mut |item| -> Result<(), AggregateError> {
            if let Item::Entry { .. } = item {
                entries += 1;
                if entries == 10 {
                    return Err(AggregateError::NoEntries);
                }
            }
            Ok(())
        });
        assert!(matches!(stopped, Err(AggregateError::NoEntries)));
        assert_eq!(entries, 10);
    }

    #[test]
    fn only_sha256_cids_of_36_bytes_are_keys() {
        let identity = Cid::new_v1(RAW, cid::multihash::Multihash::<64>::wrap(0, b"abc").unwrap());
        assert!(Key::of(&identity).is_none());
        let v0 = Cid::new_v0(*cid(DAG_PB, b"x").hash()).unwrap();
        assert_eq!(Key::of(&v0).unwrap().cid(), to_v1(&v0));
    }
}
