//! The checks of each block (its hash, dag-pb form, UnixFS semantics) and across blocks (every
//! link resolves, every block is reached, every file child holds the bytes its parent's block
//! size says), made in one pass whatever the block order, with one 32-byte record per distinct
//! block: a 16-byte key ([`crate::block::key`]) and 16 bytes of what the cross-block checks need.
//!
//! UnixFS is checked as the reference exporters (js `ipfs-unixfs-exporter`, boxo) read it: known
//! types only; a file or raw node has one block size per link, inline data plus block sizes equal
//! to its `filesize`, and links only to file or raw nodes (or raw blocks) holding exactly their
//! block size; a directory's links are named, each name one safe path component, no name twice;
//! a symlink has no links. A HAMT shard is checked alone when its section is read (hash type,
//! fanout, bitfield against its links, slot-named links, entry names safe: [`hamt::shard`]); the
//! places of its entries, which depend on where the shard is, are checked once every block is
//! known ([`Checker::check_hamts`]: from each folder's root shard down, each sub-shard read again
//! once and its place kept in its record, so a sub-shard reached at two places is found).
//! Nodes are read and their sizes checked by [`crate::nodeview`], as `extract` reads them, so the
//! two give one verdict on a block.
//!
//! An identity CID (multihash 0x00) carries its block inline: it needs no section, and its bytes
//! are checked as its codec says wherever it is linked.

use super::Findings;
use crate::block::{key, DAG_PB, IDENTITY, RAW, SHA2_256};
use crate::car::ReadAt;
use crate::nodeview::hamt::{self, Position};
use crate::nodeview::{fs_data, pb_node, unixfs_node, Kind as UnixFs, Node, NodeError, PbNode};
use cid::Cid;
use std::collections::HashMap;

/// A block's index key.
pub(super) type Key = [u8; 16];

/// What a block is, for the checks of the blocks linking to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Not known yet.
    Unknown,
    /// A raw block, or a UnixFS file or raw node: bytes of a file.
    File,
    /// A UnixFS directory.
    Dir,
    /// A UnixFS HAMT shard.
    Hamt,
    /// A UnixFS symlink.
    Symlink,
    /// A UnixFS metadata node.
    Metadata,
    /// Not a valid UnixFS block (already reported).
    Bad,
}

impl Kind {
    const ALL: [Kind; 7] = [Kind::Unknown, Kind::File, Kind::Dir, Kind::Hamt, Kind::Symlink, Kind::Metadata, Kind::Bad];

    fn name(self) -> &'static str {
        match self {
            Kind::Dir => "directory",
            Kind::Hamt => "HAMT shard",
            Kind::Symlink => "symlink",
            Kind::Metadata => "metadata node",
            _ => "file",
        }
    }
}

/// Flags of a [`Rec`].
pub(super) mod flag {
    /// Kind and size are known (the block was read, or is an identity CID).
    pub const KNOWN: u8 = 1;
    /// A section holds the block.
    pub const SEEN: u8 = 2;
    /// A block (or the header) links to it.
    pub const LINKED: u8 = 4;
    /// Linked from a file before it was known: `size` holds the block size expected.
    pub const WANT: u8 = 8;
    /// A root of the CAR.
    pub const ROOT: u8 = 16;
    /// An identity CID (never missing).
    pub const IDENT: u8 = 32;
    /// Visited by the aggregate check.
    pub const VISITED: u8 = 64;
    /// Linked as a folder entry or a root (any link but a HAMT sub-shard link): a HAMT shard
    /// so linked is the root shard of a sharded folder.
    pub const ENTRY: u8 = 128;
}

/// A block's record: its section's offset (or, until it is seen, the offset of the section
/// that first linked to it), flags and kind in one word; its size (file bytes) or the size
/// expected of it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Rec {
    word: u64,
    /// File bytes held (kind [`Kind::File`]), or expected (flag [`flag::WANT`]); for a HAMT
    /// shard, once its entries' places are checked, its place ([`Position::pack`], never 0).
    pub size: u64,
}

const OFFSET_BITS: u64 = 48;

impl Rec {
    /// Offset of the section (see the type's docs).
    pub fn at(&self) -> u64 {
        self.word & ((1 << OFFSET_BITS) - 1)
    }

    fn set_at(&mut self, at: u64) {
        self.word = (self.word & !((1 << OFFSET_BITS) - 1)) | (at & ((1 << OFFSET_BITS) - 1));
    }

    /// Whether `f` is set.
    pub fn has(&self, f: u8) -> bool {
        (self.word >> OFFSET_BITS) as u8 & f != 0
    }

    /// Sets `f`.
    pub fn set(&mut self, f: u8) {
        self.word |= u64::from(f) << OFFSET_BITS;
    }

    /// The block's kind.
    pub fn kind(&self) -> Kind {
        Kind::ALL.get((self.word >> 56) as usize).copied().unwrap_or(Kind::Bad)
    }

    fn set_kind(&mut self, k: Kind) {
        self.word = (self.word & !(0xff << 56)) | ((k as u64) << 56);
    }
}

/// The records, by key, in 256 hash tables picked by a keyed hash of the key: a table grows one
/// shard at a time (never a whole second copy of every record at once), and chosen keys (links
/// to blocks that are not there cost an attacker no section) cannot all land in one shard.
pub(super) struct Table {
    shards: Vec<HashMap<Key, Rec>>,
    pick: std::collections::hash_map::RandomState,
}

impl Table {
    fn new() -> Self {
        Table { shards: (0..256).map(|_| HashMap::new()).collect(), pick: Default::default() }
    }

    fn shard(&self, k: &Key) -> usize {
        use std::hash::BuildHasher;
        (self.pick.hash_one(k) >> 56) as usize
    }

    /// The record of `k`.
    pub fn get(&self, k: &Key) -> Option<&Rec> {
        self.shards[self.shard(k)].get(k)
    }

    /// The record of `k`, to change.
    pub fn get_mut(&mut self, k: &Key) -> Option<&mut Rec> {
        let i = self.shard(k);
        self.shards[i].get_mut(k)
    }

    /// The record of `k`, made empty if there was none; whether it was made.
    fn entry(&mut self, k: Key) -> (&mut Rec, bool) {
        let i = self.shard(&k);
        let shard = &mut self.shards[i];
        let fresh = !shard.contains_key(&k);
        (shard.entry(k).or_default(), fresh)
    }

    /// Every record.
    fn iter(&self) -> impl Iterator<Item = (&Key, &Rec)> {
        self.shards.iter().flatten()
    }
}

/// Deepest nesting of identity CIDs inside identity CIDs (each level costs bytes of a 64-byte
/// digest, so real ones are shallow).
const MAX_INLINE_DEPTH: usize = 8;

/// The table of blocks and the findings so far.
pub(super) struct Checker<'s, S: ?Sized> {
    src: &'s S,
    /// Every distinct block seen or linked.
    pub table: Table,
    /// Problems and warnings.
    pub findings: Findings,
    /// Sections read.
    pub blocks: u64,
    /// Sections repeating an earlier one.
    pub duplicates: u64,
    /// HAMT shard nodes.
    pub hamt_shards: u64,
}

/// What a parent expects of a child it links to.
#[derive(Clone, Copy)]
enum Expect {
    /// Anything (a directory's entry).
    Any,
    /// A HAMT sub-shard (checked by [`Checker::check_hamts`]), or a link of a shard that is not
    /// valid: not an entry.
    Shard,
    /// File bytes, of this many if known (a file's part).
    File(Option<u64>),
}

impl<'s, S: ReadAt + ?Sized> Checker<'s, S> {
    /// A checker for a CAR with `roots`, reading `src` only to name blocks in problems.
    pub fn new(src: &'s S, roots: &[Cid]) -> Self {
        let mut c = Checker {
            src,
            table: Table::new(),
            findings: Findings::default(),
            blocks: 0,
            duplicates: 0,
            hamt_shards: 0,
        };
        if roots.is_empty() {
            c.findings.problem(|| "CAR header: no root".into());
        }
        for root in roots {
            if root.hash().code() == IDENTITY {
                c.inline(0, root, 0);
            }
            c.table.entry(key(root)).0.set(flag::LINKED | flag::ROOT | flag::ENTRY);
        }
        c
    }

    /// Checks the section at `at` holding `data` under `cid`; `digest` is the SHA-256 of `data`
    /// when `cid` is sha2-256.
    pub fn section(&mut self, at: u64, cid: &Cid, data: &[u8], digest: Option<&[u8; 32]>) {
        self.blocks += 1;
        let mh = cid.hash();
        let intact = match mh.code() {
            SHA2_256 => digest.is_some_and(|d| mh.digest() == d),
            IDENTITY => mh.digest() == data,
            code => {
                self.findings.problem(|| {
                    format!("block {cid}: multihash 0x{code:x} cannot be checked (carload checks sha2-256)")
                });
                true
            }
        };
        if !intact {
            self.findings.problem(|| format!("block {cid}: its data does not hash to its CID"));
            return;
        }
        let k = key(cid);
        let prior = self.table.get(&k).copied().unwrap_or_default();
        if prior.has(flag::SEEN) {
            self.duplicates += 1;
            let first = prior.at();
            self.findings.warning(|| format!("block {cid}: repeated at byte {at} (first at byte {first})"));
            return;
        }
        let (kind, size) =
            if prior.has(flag::KNOWN) { (prior.kind(), prior.size) } else { self.examine(at, cid, data, 0) };
        let r = self.table.entry(k).0;
        r.set(flag::KNOWN | flag::SEEN);
        r.set_kind(kind);
        r.size = size;
        r.set_at(at);
        if prior.has(flag::WANT) && !prior.has(flag::KNOWN) {
            self.check_child(Parent::At(prior.at()), cid, kind, size, Expect::File(Some(prior.size)));
        }
    }

    /// Kind and size of a block, after checking it and recording its links.
    fn examine(&mut self, at: u64, cid: &Cid, data: &[u8], depth: usize) -> (Kind, u64) {
        match cid.codec() {
            RAW => (Kind::File, data.len() as u64),
            DAG_PB => self.node(at, cid, data, depth),
            other => {
                self.findings.problem(|| format!("block {cid}: codec 0x{other:x} is not UnixFS (dag-pb or raw)"));
                (Kind::Bad, 0)
            }
        }
    }

    /// Checks a dag-pb node and its links.
    fn node(&mut self, at: u64, cid: &Cid, data: &[u8], depth: usize) -> (Kind, u64) {
        let node = match pb_node(data) {
            Ok(n) => n,
            Err(e) => {
                self.findings.problem(|| format!("block {cid}: not a valid dag-pb node ({e})"));
                return (Kind::Bad, 0);
            }
        };
        let fs = match node.data.ok_or(NodeError::NoData).and_then(fs_data) {
            Ok(fs) => fs,
            Err(e) => {
                self.findings.problem(|| format!("block {cid}: {e}"));
                self.links(at, cid, node.links().map(|l| (l.cid, Expect::Any)), depth);
                return (Kind::Bad, 0);
            }
        };
        match fs.kind {
            UnixFs::Raw | UnixFs::File => {
                let size = match (Node { pb: node, fs }).file_size() {
                    Ok(size) => size,
                    Err(e) => {
                        self.findings.problem(|| format!("block {cid}: {e}"));
                        fs.parts_size().unwrap_or(0)
                    }
                };
                let sizes = fs.blocksizes().map(Some).chain(std::iter::repeat(None));
                self.links(at, cid, node.links().zip(sizes).map(|(l, s)| (l.cid, Expect::File(s))), depth);
                (Kind::File, size)
            }
            UnixFs::Directory => {
                self.names(cid, &node);
                self.links(at, cid, node.links().map(|l| (l.cid, Expect::Any)), depth);
                (Kind::Dir, 0)
            }
            UnixFs::Metadata => {
                self.links(at, cid, node.links().map(|l| (l.cid, Expect::Any)), depth);
                (Kind::Metadata, 0)
            }
            UnixFs::Symlink => {
                if node.link_count > 0 {
                    let n = node.link_count;
                    self.findings.problem(|| format!("block {cid}: a symlink with {n} links"));
                }
                self.links(at, cid, node.links().map(|l| (l.cid, Expect::Any)), depth);
                (Kind::Symlink, 0)
            }
            UnixFs::HamtShard => {
                self.hamt_shards += 1;
                match hamt::shard(&Node { pb: node, fs }) {
                    Ok(shard) => {
                        for (i, link) in shard.links().enumerate() {
                            let Some(name) = link.name.filter(|n| !safe_name(n)) else { continue };
                            let shown = show(name);
                            self.findings.problem(|| {
                                format!(
                                    "block {cid}: HAMT link {i} names the entry {shown:?}, not one safe path component \
                                     (a file or folder name)"
                                )
                            });
                        }
                        let expect =
                            |l: &hamt::ShardLink<'_>| if l.name.is_some() { Expect::Any } else { Expect::Shard };
                        self.links(at, cid, shard.links().map(|l| (l.cid, expect(&l))), depth);
                        (Kind::Hamt, 0)
                    }
                    Err(e) => {
                        self.findings.problem(|| format!("block {cid}: {e}"));
                        self.links(at, cid, node.links().map(|l| (l.cid, Expect::Shard)), depth);
                        (Kind::Bad, 0)
                    }
                }
            }
            other @ UnixFs::Other(_) => {
                self.findings.problem(|| format!("block {cid}: {other} is not a known type"));
                self.links(at, cid, node.links().map(|l| (l.cid, Expect::Any)), depth);
                (Kind::Bad, 0)
            }
        }
    }

    /// A directory's link names: present, one safe path component each, none twice.
    fn names(&mut self, cid: &Cid, node: &PbNode<'_>) {
        let mut names: Vec<&[u8]> = Vec::with_capacity(node.link_count);
        for (i, link) in node.links().enumerate() {
            if !safe_name(link.name) {
                let shown = show(link.name);
                self.findings.problem(|| {
                    format!(
                        "block {cid}: link {i} is named {shown:?}, not one safe path component (a file or folder name)"
                    )
                });
            }
            names.push(link.name);
        }
        names.sort_unstable();
        for pair in names.windows(2).filter(|w| w[0] == w[1] && !w[0].is_empty()) {
            let shown = show(pair[0]);
            self.findings.problem(|| format!("block {cid}: two links are named {shown:?}"));
        }
    }

    /// Records the links of the block `parent` (in the section at `at`).
    fn links(&mut self, at: u64, parent: &Cid, links: impl Iterator<Item = (Cid, Expect)>, depth: usize) {
        for (child, expect) in links {
            let k = key(&child);
            let linked = if matches!(expect, Expect::Shard) { flag::LINKED } else { flag::LINKED | flag::ENTRY };
            if child.hash().code() == IDENTITY {
                let (kind, size) = self.inline(at, &child, depth + 1);
                self.table.entry(k).0.set(linked);
                self.check_child(Parent::Cid(parent), &child, kind, size, expect);
                continue;
            }
            let (r, fresh) = self.table.entry(k);
            if fresh {
                r.set_at(at);
            }
            r.set(linked);
            let r = *r;
            if r.has(flag::KNOWN) {
                self.check_child(Parent::Cid(parent), &child, r.kind(), r.size, expect);
            } else if let Expect::File(Some(b)) = expect {
                if !r.has(flag::WANT) {
                    let r = self.table.get_mut(&k).expect("inserted above");
                    r.set(flag::WANT);
                    r.size = b;
                } else if r.size != b {
                    let other = r.size;
                    self.findings.problem(|| {
                        format!("block {parent}: gives {child} the block size {b}, another file node gives it {other}")
                    });
                }
            }
        }
    }

    /// Checks an identity CID's inline block once; its kind and size.
    fn inline(&mut self, at: u64, cid: &Cid, depth: usize) -> (Kind, u64) {
        let k = key(cid);
        if let Some(r) = self.table.get(&k).filter(|r| r.has(flag::KNOWN)) {
            return (r.kind(), r.size);
        }
        let (kind, size) = if depth > MAX_INLINE_DEPTH {
            self.findings.problem(|| format!("block {cid}: identity CIDs nested too deep"));
            (Kind::Bad, 0)
        } else {
            let data = cid.hash().digest().to_vec();
            self.examine(at, cid, &data, depth)
        };
        let (r, fresh) = self.table.entry(k);
        if fresh {
            // Where it was first linked from, so that the final checks can find its CID again.
            r.set_at(at);
        }
        r.set(flag::KNOWN | flag::IDENT);
        r.set_kind(kind);
        r.size = size;
        (kind, size)
    }

    /// Checks a known child against what its parent expects of it.
    fn check_child(&mut self, parent: Parent<'_>, child: &Cid, kind: Kind, size: u64, expect: Expect) {
        let Expect::File(want) = expect else { return };
        let problem = match kind {
            Kind::File => match want {
                Some(b) if b != size => format!("gives {child} the block size {b}, but it holds {size} bytes"),
                _ => return,
            },
            Kind::Bad | Kind::Unknown => return,
            other => format!("is a file linking to {child}, a {}", other.name()),
        };
        let src = self.src;
        self.findings.problem(|| format!("block {}: {problem}", parent.show(src)));
    }

    /// Checks where the entries of every sharded folder are: from each root shard (a valid HAMT
    /// shard linked as an entry or a CAR root) down through its sub-shards, each shard read again
    /// once (its place kept in its record), every entry where its name's key puts it, every
    /// sub-shard a HAMT shard of its parent's fanout, no shard reached at two places. Memory: the
    /// root shards' keys and the sub-shards waiting below the current path (at most the levels a
    /// key has times a fanout).
    fn check_hamts(&mut self, roots: &[Cid]) {
        let starts: Vec<Key> =
            self.table.iter().filter(|(_, r)| r.kind() == Kind::Hamt && r.has(flag::ENTRY)).map(|(k, _)| *k).collect();
        for k in starts {
            let Some(cid) = self.cid_of(&k, roots) else {
                self.findings.problem(|| "a HAMT shard could not be found again in the CAR".into());
                continue;
            };
            let mut todo = vec![(cid, None)];
            while let Some((cid, pos)) = todo.pop() {
                self.check_shard(&cid, pos, &mut todo);
            }
        }
    }

    /// The CID of the block with key `k`: from its section, a root, or the link to it (an
    /// identity CID).
    fn cid_of(&self, k: &Key, roots: &[Cid]) -> Option<Cid> {
        let r = self.table.get(k)?;
        if r.has(flag::SEEN) {
            return section_cid(self.src, r.at());
        }
        if let Some(root) = roots.iter().find(|c| key(c) == *k) {
            return Some(*root);
        }
        linked_from(self.src, r.at(), k).map(|(_, child)| child)
    }

    /// Records that the shard `cid` is at `pos`: whether it is to be checked there (not yet
    /// checked anywhere); a problem if it was checked at another place.
    fn claim(&mut self, cid: &Cid, pos: Position) -> bool {
        let Some(r) = self.table.get_mut(&key(cid)) else { return false };
        match r.size {
            0 => {
                r.size = pos.pack();
                true
            }
            p if p == pos.pack() => false,
            p => {
                let e = NodeError::HamtTwoPlaces { first: Position::unpack(p).describe(), second: pos.describe() };
                self.findings.problem(|| format!("block {cid}: {e}"));
                false
            }
        }
    }

    /// Checks the shard `cid` at `pos` (`None`: a folder's root shard) and queues its sub-shards.
    fn check_shard(&mut self, cid: &Cid, pos: Option<Position>, todo: &mut Vec<(Cid, Option<Position>)>) {
        let data = if cid.hash().code() == IDENTITY {
            cid.hash().digest().to_vec()
        } else {
            let at = self.table.get(&key(cid)).map(|r| r.at()).unwrap_or_default();
            match crate::car::read_section_at(self.src, at) {
                Ok(Some(section)) if section.cid == *cid => section.data,
                other => {
                    let why = match other {
                        Err(e) => e.to_string(),
                        _ => "not where it was".into(),
                    };
                    self.findings.problem(|| format!("block {cid}: could not be read again ({why})"));
                    return;
                }
            }
        };
        // The shard passed these checks when its section was read (it is of kind `Hamt`).
        let Ok(node) = unixfs_node(&data) else { return };
        let Ok(shard) = hamt::shard(&node) else { return };
        let pos = match pos {
            Some(pos) => pos,
            None => {
                let root = Position::root(shard.bits);
                if !self.claim(cid, root) {
                    return;
                }
                root
            }
        };
        if let Err(e) = pos.check_bits(shard.bits) {
            self.findings.problem(|| format!("block {cid}: {e}"));
            return;
        }
        let (mut misplaced, mut first) = (0u64, None);
        for link in shard.links() {
            let Some(name) = link.name else {
                let child = match pos.child(link.slot) {
                    Ok(child) => child,
                    Err(e) => {
                        self.findings.problem(|| format!("block {cid}: {e}"));
                        continue;
                    }
                };
                let kind = self.table.get(&key(&link.cid)).filter(|r| r.has(flag::KNOWN)).map(|r| r.kind());
                match kind {
                    Some(Kind::Hamt) => {
                        if self.claim(&link.cid, child) {
                            todo.push((link.cid, Some(child)));
                        }
                    }
                    // Missing or not valid: already a problem.
                    None | Some(Kind::Bad | Kind::Unknown) => {}
                    Some(other) => {
                        let e = NodeError::HamtSubShardKind {
                            slot: pos.place(link.slot),
                            child: link.cid.to_string(),
                            kind: other.name().into(),
                        };
                        self.findings.problem(|| format!("block {cid}: {e}"));
                    }
                }
                continue;
            };
            if let Err(e) = pos.check_entry(link.slot, name) {
                misplaced += 1;
                first.get_or_insert(e);
            }
        }
        if let Some(e) = first {
            let more = if misplaced > 1 { format!(" (and {} more misplaced)", misplaced - 1) } else { String::new() };
            self.findings.problem(|| format!("block {cid}: {e}{more}"));
        }
    }

    /// Reports the blocks linked but missing and the blocks nothing reaches: all counted, the
    /// first [`super::MAX_LISTED`] of each in CAR order named (only those are kept to sort).
    pub fn finish(&mut self, roots: &[Cid]) {
        self.check_hamts(roots);
        let mut missing = Lowest::default();
        let mut extra = Lowest::default();
        for (k, r) in self.table.iter() {
            if r.has(flag::LINKED) && !r.has(flag::KNOWN) {
                missing.push((r.at(), *k, r.has(flag::ROOT)));
            } else if r.has(flag::SEEN) && !r.has(flag::LINKED) {
                extra.push((r.at(), *k, false));
            }
        }
        let src = self.src;
        let (listed, more) = missing.sorted();
        for (at, k, root) in listed {
            self.findings.problem(|| match roots.iter().find(|c| root && key(c) == k) {
                Some(c) => format!("root {c}: missing"),
                None => match linked_from(src, at, &k) {
                    Some((parent, child)) => format!("block {child} (linked from {parent}): missing"),
                    None => format!("a block linked from the section at byte {at}: missing"),
                },
            });
        }
        self.findings.more_problems(more);
        let (listed, more) = extra.sorted();
        for (at, _, _) in listed {
            self.findings.problem(|| match section_cid(src, at) {
                Some(c) => format!("block {c}: not reachable from the root (extra block)"),
                None => format!("the block at byte {at}: not reachable from the root (extra block)"),
            });
        }
        self.findings.more_problems(more);
    }
}

/// The [`super::MAX_LISTED`] lowest items pushed, and how many others.
#[derive(Default)]
struct Lowest {
    heap: std::collections::BinaryHeap<(u64, Key, bool)>,
    more: u64,
}

impl Lowest {
    fn push(&mut self, item: (u64, Key, bool)) {
        self.heap.push(item);
        if self.heap.len() > super::MAX_LISTED {
            self.heap.pop();
            self.more += 1;
        }
    }

    fn sorted(self) -> (Vec<(u64, Key, bool)>, u64) {
        (self.heap.into_sorted_vec(), self.more)
    }
}

/// A parent named in a problem: its CID, or the offset of its section.
#[derive(Clone, Copy)]
enum Parent<'a> {
    Cid(&'a Cid),
    At(u64),
}

impl Parent<'_> {
    fn show<S: ReadAt + ?Sized>(self, src: &S) -> String {
        match self {
            Parent::Cid(c) => c.to_string(),
            Parent::At(at) => section_cid(src, at).map_or(format!("at byte {at}"), |c| c.to_string()),
        }
    }
}

/// Whether `name` is one ordinary path component: not empty, `.` or `..`, no `/` or NUL.
pub(super) fn safe_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

/// A name made safe to print.
fn show(name: &[u8]) -> String {
    crate::text::escape_controls(&String::from_utf8_lossy(name)).into_owned()
}

/// The CID of the section at `at` (for naming it in a problem).
pub(super) fn section_cid<S: ReadAt + ?Sized>(src: &S, at: u64) -> Option<Cid> {
    let mut head = [0u8; 256];
    let mut got = 0;
    while got < head.len() {
        match src.read_at(&mut head[got..], at + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(_) => return None,
        }
    }
    let (_, n) = crate::varint::read(&head[..got])?;
    Cid::read_bytes(&mut &head[n..got]).ok()
}

/// The CIDs of the block at `at` and of its link (possibly inside an identity CID) to `child`.
fn linked_from<S: ReadAt + ?Sized>(src: &S, at: u64, child: &Key) -> Option<(Cid, Cid)> {
    let section = crate::car::read_section_at(src, at).ok()??;
    fn find(data: &[u8], child: &Key, depth: usize) -> Option<Cid> {
        let node = pb_node(data).ok()?;
        for l in node.links() {
            if key(&l.cid) == *child {
                return Some(l.cid);
            }
            if l.cid.hash().code() == IDENTITY && l.cid.codec() == DAG_PB && depth < MAX_INLINE_DEPTH {
                if let Some(c) = find(l.cid.hash().digest(), child, depth + 1) {
                    return Some(c);
                }
            }
        }
        None
    }
    let child = find(&section.data, child, 0)?;
    Some((section.cid, child))
}
