//! A DAG's expansion — the entries and bytes extracting it writes — measured before anything is
//! written, in time and memory proportional to its CAR: each distinct node is read once and its
//! totals memoized (16 bytes per indexed block, touched only for dag-pb nodes), sums saturate.
//! Every folder is checked on the way (names, duplicates, types; a sharded folder's shards and
//! the place of each entry, each shard memoized with its place so a shard reached at two places
//! is refused), and every file
//! DAG's structure (each block present, internal nodes and small leaves checked as the write
//! will check them), so a missing block or a lying node anywhere in the tree is refused before
//! the first file is written. Large dag-pb leaves (data) are only looked up; the write checks
//! them.

use super::folder::{open_shard, FolderNode, Item};
use super::index::Place;
use super::{bad_node, classify, CarIndex, Entry, ExtractError, OutDir, MAX_DEPTH, MAX_HELD};
use crate::block::{DAG_PB, RAW};
use crate::nodeview::hamt::Position;
use crate::nodeview::{next_link, unixfs_node, NodeError};
use cid::Cid;
use std::collections::HashMap;

/// What extracting a DAG writes, and what its CAR could hold without reusing nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expansion {
    /// The DAG's root.
    pub root: Cid,
    /// Folders, files and symlinks (the root included).
    pub entries: u64,
    /// File bytes.
    pub bytes: u64,
    /// Entries without reuse: the root plus the entries of each distinct folder node (a basic
    /// folder, or a shard of a sharded folder; many empty files share one CID, so counting
    /// sections would refuse them).
    pub distinct_entries: u64,
    /// Bytes of the CAR file.
    pub car_bytes: u64,
}

impl Expansion {
    /// Whether the DAG expands beyond what its CAR holds without reusing nodes.
    pub fn reuses_nodes(&self) -> bool {
        self.entries > self.distinct_entries || self.bytes > self.car_bytes
    }
}

/// Bytes counted per entry against free space on file systems that do not count inodes.
const ENTRY_BYTES: u64 = 512;

/// Refuses an expansion beyond the CAR unless `allow_reuse`, and then one beyond the free space
/// (bytes and inodes) of `out`.
pub fn check_expansion(exp: &Expansion, allow_reuse: bool, out: &OutDir) -> Result<(), ExtractError> {
    if !exp.reuses_nodes() {
        return Ok(());
    }
    if !allow_reuse {
        return Err(ExtractError::Expands(Box::new(*exp)));
    }
    let space = out.free_space()?;
    let fits = match space.inodes {
        Some(inodes) => exp.entries <= inodes && exp.bytes <= space.bytes,
        None => exp.bytes.saturating_add(exp.entries.saturating_mul(ENTRY_BYTES)) <= space.bytes,
    };
    if fits {
        Ok(())
    } else {
        Err(ExtractError::NoSpace { expansion: Box::new(*exp), path: out.path().to_path_buf(), space })
    }
}

/// A folder node being measured (a folder, or a sub-shard of a sharded folder), and the totals
/// of its entries so far.
struct Frame {
    place: Option<usize>,
    node: FolderNode,
    totals: [u64; 2],
}

fn add(a: &mut [u64; 2], b: [u64; 2]) {
    a[0] = a[0].saturating_add(b[0]);
    a[1] = a[1].saturating_add(b[1]);
}

/// The memo slot of a dag-pb node (a raw CID of the same bytes is a different entry).
fn slot(car: &CarIndex, cid: &Cid) -> Option<usize> {
    match car.place(cid) {
        Ok(Place::Indexed(i)) if cid.codec() == DAG_PB => Some(i),
        _ => None,
    }
}

/// The measuring walk's state.
struct Measure<'a> {
    car: &'a CarIndex,
    /// Totals per indexed block (zeroed pages cost nothing until touched; entries ≥ 1 marks
    /// a computed slot).
    memo: Vec<[u64; 2]>,
    /// One bit per indexed block: checked as a file node (its size in `memo`).
    files: Vec<u64>,
    distinct: u64,
    held: usize,
    stack: Vec<Frame>,
    /// Folders on the stack (its sub-shards not counted).
    folders: usize,
    /// The place of each shard read, by index slot ([`Position::pack`]).
    shards: HashMap<usize, u64>,
}

/// dag-pb children of a file larger than this are only looked up before writing (they are
/// data leaves in any DAG an importer writes; the write checks them).
const SMALL_NODE: u64 = 16 << 10;

/// A file node whose children are being checked.
struct FileFrame {
    cid: Cid,
    block: Vec<u8>,
    at: usize,
    sizes: Vec<u64>,
    next: usize,
}

impl FileFrame {
    /// Bytes it holds, as counted against [`MAX_HELD`].
    fn held(&self) -> usize {
        self.block.len() + 8 * self.sizes.len() + 64
    }
}

impl Measure<'_> {
    /// Records that the shard `cid` (index slot `place`) is at `pos`; refused if it was read at
    /// another place (its entries would be in both).
    fn claim(&mut self, place: Option<usize>, cid: &Cid, pos: Position) -> Result<(), ExtractError> {
        let Some(i) = place else { return Ok(()) };
        match self.shards.insert(i, pos.pack()) {
            Some(p) if p != pos.pack() => {
                let source = NodeError::HamtTwoPlaces { first: Position::unpack(p).describe(), second: pos.describe() };
                Err(ExtractError::Node { cid: *cid, source: Box::new(source) })
            }
            _ => Ok(()),
        }
    }

    /// Pushes a folder node to measure; refused when nodes nested below one another hold too
    /// much, or (`folder`) folders are nested too deep.
    fn push(&mut self, place: Option<usize>, node: FolderNode, folder: bool) -> Result<(), ExtractError> {
        let refuse = |reason: String| ExtractError::Block { cid: node.cid, reason };
        if folder && self.folders >= MAX_DEPTH {
            return Err(refuse(format!("folders nested deeper than {MAX_DEPTH} levels")));
        }
        self.held += node.block.len();
        if self.held > MAX_HELD {
            return Err(refuse(format!("folder nodes nested below one another hold over {} MiB", MAX_HELD >> 20)));
        }
        if let (Some(pos), Some(_)) = (node.shard, place) {
            self.claim(place, &node.cid, pos)?;
        }
        self.distinct = self.distinct.saturating_add(node.entries);
        self.folders += usize::from(folder);
        let totals = [u64::from(folder), 0];
        self.stack.push(Frame { place, node, totals });
        Ok(())
    }

    /// The totals of the sub-shard `cid` at `pos` below the shard `parent`, or `None` when it
    /// is now on the stack.
    fn visit_shard(&mut self, cid: &Cid, pos: Position, parent: &Cid) -> Result<Option<[u64; 2]>, ExtractError> {
        let place = slot(self.car, cid);
        if let Some(i) = place {
            if self.shards.contains_key(&i) {
                self.claim(place, cid, pos)?;
                if self.memo[i][0] > 0 {
                    return Ok(Some(self.memo[i]));
                }
            }
        }
        let node = open_shard(self.car, cid, pos, parent)?;
        self.push(place, node, false)?;
        Ok(None)
    }

    /// The totals of the entry `cid`, or `None` when it is a folder now on the stack.
    fn visit(&mut self, cid: &Cid) -> Result<Option<[u64; 2]>, ExtractError> {
        let place = slot(self.car, cid);
        if let Some(i) = place {
            if self.memo[i][0] > 0 {
                // A sub-shard's totals are not a folder's.
                if let Some(&p) = self.shards.get(&i).filter(|&&p| Position::unpack(p).depth() > 0) {
                    let source = NodeError::HamtTwoPlaces {
                        first: Position::unpack(p).describe(),
                        second: "the root shard of a folder".into(),
                    };
                    return Err(ExtractError::Node { cid: *cid, source: Box::new(source) });
                }
                return Ok(Some(self.memo[i]));
            }
        }
        let totals = match classify(self.car, cid)? {
            Entry::Folder(node) => {
                self.push(place, node, true)?;
                return Ok(None);
            }
            Entry::File { size, root: Some(block) } => {
                if let Some(i) = place {
                    self.mark_file(i, size);
                }
                self.check_file(cid, block)?;
                [1, size]
            }
            Entry::File { size, root: None } => [1, size],
            Entry::Symlink { .. } => [1, 0],
        };
        if let Some(i) = place {
            self.memo[i] = totals;
        }
        Ok(Some(totals))
    }

    fn mark_file(&mut self, i: usize, size: u64) {
        self.memo[i] = [1, size];
        self.files[i / 64] |= 1 << (i % 64);
    }

    /// The size of the file node in slot `i`, if already checked.
    fn file_size(&self, i: usize) -> Option<u64> {
        (self.files[i / 64] & 1 << (i % 64) != 0).then_some(self.memo[i][1])
    }

    /// Checks the file DAG below the (checked) root node `block` of `cid`: every block present,
    /// each child of the size its blocksize says (see the module documentation).
    fn check_file(&mut self, cid: &Cid, block: Vec<u8>) -> Result<(), ExtractError> {
        let node = unixfs_node(&block).map_err(bad_node(cid))?;
        if node.pb.link_count == 0 {
            return Ok(());
        }
        let sizes = node.fs.blocksizes().collect();
        let root = FileFrame { cid: *cid, block, at: 0, sizes, next: 0 };
        let mut held = root.held();
        let mut stack = vec![root];
        while let Some(top) = stack.last_mut() {
            let Some(link) = next_link(&top.block, &mut top.at) else {
                let done = stack.pop().map_or(0, |f| f.held());
                held -= done;
                continue;
            };
            let parent = top.cid;
            let child = link.map_err(bad_node(&parent))?.cid;
            let expect = top.sizes.get(top.next).copied().unwrap_or_default();
            top.next += 1;
            let bad = |reason: String| ExtractError::Block { cid: child, reason };
            let says =
                |what: &str, size: u64| format!("{what} of {size} bytes where the blocksize in {parent} says {expect}");
            let len = self.car.size_of(&child)?;
            match child.codec() {
                RAW if len != expect => return Err(bad(says("a raw leaf", len))),
                RAW => {}
                DAG_PB => {
                    let i = slot(self.car, &child);
                    if let Some(size) = i.and_then(|i| self.file_size(i)) {
                        if size != expect {
                            return Err(bad(says("a file node", size)));
                        }
                        continue;
                    }
                    if len > SMALL_NODE {
                        continue;
                    }
                    let block = self.car.block(&child)?;
                    let node = unixfs_node(&block).map_err(bad_node(&child))?;
                    if !node.kind().is_file() {
                        return Err(bad(format!("the file node {parent} links to a {} node", node.kind().describe())));
                    }
                    let size = node.file_size().map_err(bad_node(&child))?;
                    if size != expect {
                        return Err(bad(says("a file node", size)));
                    }
                    if let Some(i) = i {
                        self.mark_file(i, size);
                    }
                    if node.pb.link_count > 0 {
                        let sizes = node.fs.blocksizes().collect();
                        let frame = FileFrame { cid: child, block, at: 0, sizes, next: 0 };
                        held += frame.held();
                        if held > MAX_HELD {
                            let mib = MAX_HELD >> 20;
                            return Err(bad(format!("file nodes nested below one another hold over {mib} MiB")));
                        }
                        stack.push(frame);
                    }
                }
                c => return Err(bad(format!("codec 0x{c:x} in a file (only dag-pb and raw)"))),
            }
        }
        Ok(())
    }
}

/// Measures the DAG `root` (see the module documentation).
pub fn expansion(car: &CarIndex, root: &Cid) -> Result<Expansion, ExtractError> {
    let n = car.len();
    let (memo, files) = (vec![[0u64; 2]; n], vec![0u64; n.div_ceil(64)]);
    let mut m =
        Measure { car, memo, files, distinct: 1, held: 0, stack: Vec::new(), folders: 0, shards: HashMap::new() };
    let mut result = m.visit(root)?.unwrap_or_default();
    while let Some(top) = m.stack.last_mut() {
        let parent = top.node.cid;
        let totals = match top.node.next() {
            Some(item) => match item? {
                Item::Entry(_, cid) => m.visit(&cid)?,
                Item::SubShard(cid, pos) => m.visit_shard(&cid, pos, &parent)?,
            },
            None => {
                let Some(done) = m.stack.pop() else { break };
                m.held -= done.node.block.len();
                m.folders -= usize::from(done.node.shard.is_none_or(|p| p.depth() == 0));
                if let Some(i) = done.place {
                    m.memo[i] = done.totals;
                }
                match m.stack.last_mut() {
                    Some(parent) => add(&mut parent.totals, done.totals),
                    None => result = done.totals,
                }
                continue;
            }
        };
        if let (Some(t), Some(top)) = (totals, m.stack.last_mut()) {
            add(&mut top.totals, t);
        }
    }
    Ok(Expansion {
        root: *root,
        entries: result[0],
        bytes: result[1],
        distinct_entries: m.distinct,
        car_bytes: car.car_len(),
    })
}
