//! The checks of each block (its hash, dag-pb form, UnixFS semantics) and across blocks (every
//! link resolves, every block is reached, every file child holds the bytes its parent's block
//! size says), made in one pass whatever the block order, with one 32-byte record per distinct
//! block: a 16-byte key ([`crate::block::key`]) and 16 bytes of what the cross-block checks need.
//!
//! UnixFS is checked as the reference exporters (js `ipfs-unixfs-exporter`, boxo) read it: known
//! types only; a file or raw node has one block size per link, inline data plus block sizes equal
//! to its `filesize`, and links only to file or raw nodes (or raw blocks) holding exactly their
//! block size; a directory's links are named, each name one safe path component, no name twice;
//! a symlink has no links. HAMT shards are walked (their links resolve) and counted, their
//! structure is not checked here. Nodes are read and their sizes checked by [`crate::nodeview`],
//! as `extract` reads them, so the two give one verdict on a block.
//!
//! An identity CID (multihash 0x00) carries its block inline: it needs no section, and its bytes
//! are checked as its codec says wherever it is linked.

use super::Findings;
use crate::block::{key, DAG_PB, IDENTITY, RAW, SHA2_256};
use crate::car::ReadAt;
use crate::nodeview::{fs_data, pb_node, Kind as UnixFs, Node, NodeError, PbNode};
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
}

/// A block's record: its section's offset (or, until it is seen, the offset of the section
/// that first linked to it), flags and kind in one word; its size (file bytes) or the size
/// expected of it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Rec {
    word: u64,
    /// File bytes held (kind [`Kind::File`]), or expected (flag [`flag::WANT`]).
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
            c.table.entry(key(root)).0.set(flag::LINKED | flag::ROOT);
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
                self.links(at, cid, node.links().map(|l| (l.cid, Expect::Any)), depth);
                (Kind::Hamt, 0)
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
            if child.hash().code() == IDENTITY {
                let (kind, size) = self.inline(at, &child, depth + 1);
                self.table.entry(k).0.set(flag::LINKED);
                self.check_child(Parent::Cid(parent), &child, kind, size, expect);
                continue;
            }
            let (r, fresh) = self.table.entry(k);
            if fresh {
                r.set_at(at);
            }
            r.set(flag::LINKED);
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
        let r = self.table.entry(k).0;
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

    /// Reports the blocks linked but missing and the blocks nothing reaches: all counted, the
    /// first [`super::MAX_LISTED`] of each in CAR order named (only those are kept to sort).
    pub fn finish(&mut self, roots: &[Cid]) {
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
