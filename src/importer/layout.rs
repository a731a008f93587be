//! Size prediction: the exact byte length of every block a profile produces for a file of a
//! given size, and so the CAR layout, without reading contents. The streaming importer reserves
//! CAR space for internal nodes with it; planners use it to size batches.

use crate::car;
use crate::dagpb;
use crate::importer::scan::{Child, Entry, Folder};
use crate::importer::trickle::TrickleShape;
use crate::profile::{Layout, Profile};
use crate::unixfs;
use crate::unixfs::hamt::{self, HamtError};

/// Sizes of one DAG node (or subtree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeSize {
    /// Length of the node's own block.
    pub block_len: u64,
    /// Cumulative size (Tsize) of the subtree.
    pub tsize: u64,
    /// File bytes under the subtree.
    pub file_bytes: u64,
    /// CAR bytes of all sections of the subtree, counting repeated blocks each time.
    pub car_bytes: u64,
}

/// The shape of a balanced file DAG for a file of a given size (the trickle layout's is
/// [`TrickleShape`]; [`file_root`] sizes either).
#[derive(Debug, Clone)]
pub struct FileShape {
    size: u64,
    chunk: u64,
    max_links: u64,
    /// Number of leaves (1 for the empty file).
    pub leaves: u64,
    /// Levels above the leaves (0 when the single leaf is the root).
    pub depth: u32,
    raw_leaves: bool,
    leaf_cid_len: usize,
    node_cid_len: usize,
    full: Vec<Option<NodeSize>>,
}

impl FileShape {
    /// The shape of a `size`-byte file under `profile`.
    pub fn new(size: u64, profile: &Profile) -> Self {
        let chunk = profile.chunk_size as u64;
        let max_links = profile.max_links as u64;
        let leaves = size.div_ceil(chunk).max(1);
        let mut depth = 0;
        let mut span: u64 = 1;
        while span < leaves {
            span = span.saturating_mul(max_links);
            depth += 1;
        }
        FileShape {
            size,
            chunk,
            max_links,
            leaves,
            depth,
            raw_leaves: profile.raw_leaves,
            leaf_cid_len: profile.leaf_cid_len(),
            node_cid_len: profile.node_cid_len(),
            // A single-leaf file (most files) needs no cache: no allocation.
            full: if depth == 0 { Vec::new() } else { vec![None; depth as usize + 1] },
        }
    }

    /// File size the shape was made for.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Chunk size of the profile.
    pub fn chunk_size(&self) -> u64 {
        self.chunk
    }

    /// Leaves covered by a full subtree at `level`.
    pub fn span(&self, level: u32) -> u64 {
        self.max_links.saturating_pow(level)
    }

    /// File bytes in leaf `i`.
    pub fn leaf_bytes(&self, i: u64) -> u64 {
        (self.size - (i * self.chunk).min(self.size)).min(self.chunk)
    }

    /// Byte length of a CID naming a node at `level` (0 = leaf).
    pub fn cid_len(&self, level: u32) -> usize {
        if level == 0 {
            self.leaf_cid_len
        } else {
            self.node_cid_len
        }
    }

    /// Sizes of the subtree at `level` covering leaves `start..start+count`.
    pub fn node(&mut self, level: u32, start: u64, count: u64) -> NodeSize {
        let span = self.span(level);
        let is_full = count == span && (start + count < self.leaves || self.leaf_bytes(self.leaves - 1) == self.chunk);
        let is_full = is_full && (level as usize) < self.full.len();
        if is_full {
            if let Some(n) = self.full[level as usize] {
                return n;
            }
        }
        let n = if level == 0 {
            let bytes = self.leaf_bytes(start);
            let block_len = if self.raw_leaves { bytes } else { unixfs::file_leaf_len(bytes) };
            NodeSize {
                block_len,
                tsize: block_len,
                file_bytes: bytes,
                car_bytes: car::section_len(self.leaf_cid_len, block_len),
            }
        } else {
            // All children but the last cover full spans without the file's last leaf, so they
            // are identical: size one of them (cached) and the last, not every child.
            let child_span = self.span(level - 1);
            let k = count.div_ceil(child_span);
            let last_start = start + (k - 1) * child_span;
            let last = self.node(level - 1, last_start, start + count - last_start);
            let full = (k > 1).then(|| self.node(level - 1, start, child_span));
            let q = k - 1;
            let child_cid = self.cid_len(level - 1);
            let link = |c: &NodeSize| dagpb::encoded_len([(child_cid, 0, c.tsize)], None) as u64;
            let blocksize = |c: &NodeSize| 1 + crate::varint::len(c.file_bytes) as u64;
            let (f_bytes, f_link, f_size, f_tsize, f_car) =
                full.map_or((0, 0, 0, 0, 0), |f| (f.file_bytes, link(&f), blocksize(&f), f.tsize, f.car_bytes));
            let file_bytes = q * f_bytes + last.file_bytes;
            let data_len = 3 + crate::varint::len(file_bytes) as u64 + q * f_size + blocksize(&last);
            let block_len = q * f_link + link(&last) + 1 + crate::varint::len(data_len) as u64 + data_len;
            NodeSize {
                block_len,
                tsize: block_len + q * f_tsize + last.tsize,
                file_bytes,
                car_bytes: car::section_len(self.node_cid_len, block_len) + q * f_car + last.car_bytes,
            }
        };
        if is_full {
            self.full[level as usize] = Some(n);
        }
        n
    }

    /// Sizes of the whole file DAG.
    pub fn root(&mut self) -> NodeSize {
        self.node(self.depth, 0, self.leaves)
    }

    /// Byte length of the root CID.
    pub fn root_cid_len(&self) -> usize {
        self.cid_len(self.depth)
    }
}

/// A file DAG's root as a parent or a CAR header sees it, under the profile's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRoot {
    /// Sizes of the whole file DAG.
    pub size: NodeSize,
    /// Byte length of the root CID.
    pub cid_len: usize,
    /// Whether the root is a dag-pb node (not a lone raw leaf).
    pub dag_pb: bool,
}

/// Sizes of the DAG of a `size`-byte file under `profile` (balanced or trickle).
pub fn file_root(size: u64, profile: &Profile) -> FileRoot {
    match profile.layout {
        Layout::Balanced => {
            let mut shape = FileShape::new(size, profile);
            let dag_pb = !(profile.raw_leaves && shape.depth == 0);
            FileRoot { size: shape.root(), cid_len: shape.root_cid_len(), dag_pb }
        }
        Layout::Trickle => {
            let mut shape = TrickleShape::new(size, profile);
            let root = shape.root();
            FileRoot { size: shape.node(root), cid_len: shape.root_cid_len(), dag_pb: true }
        }
    }
}

/// Byte length of the root CID of a `size`-byte file's DAG.
fn file_root_cid_len(size: u64, profile: &Profile) -> usize {
    match profile.layout {
        Layout::Balanced => FileShape::new(size, profile).root_cid_len(),
        Layout::Trickle => profile.node_cid_len(),
    }
}

/// Byte length of the root CID of an input tree's DAG (without predicting the whole tree).
pub fn root_cid_len(entry: &Entry, profile: &Profile) -> usize {
    match entry {
        Entry::File { size, .. } | Entry::FileRange { len: size, .. } => file_root_cid_len(*size, profile),
        Entry::Symlink { .. } | Entry::Dir { .. } => profile.node_cid_len(),
    }
}

/// Predicted sizes of an input tree's DAG and the CID length of its root.
pub fn predict(entry: &Entry, profile: &Profile) -> (NodeSize, usize) {
    match entry {
        Entry::File { size, .. } | Entry::FileRange { len: size, .. } => predict_child(Child::File(*size), profile),
        Entry::Symlink { target, .. } => predict_child(Child::Symlink(target), profile),
        Entry::Dir { folder, .. } => predict_child(Child::Dir(folder), profile),
    }
}

/// Predicted sizes of a folder entry's DAG and the CID length of its root.
pub fn predict_child(child: Child<'_>, profile: &Profile) -> (NodeSize, usize) {
    match child {
        Child::File(size) => {
            let root = file_root(size, profile);
            (root.size, root.cid_len)
        }
        Child::Symlink(target) => {
            let block_len = dagpb::encoded_len([], Some(unixfs::symlink(target).len())) as u64;
            let n = NodeSize {
                block_len,
                tsize: block_len,
                file_bytes: 0,
                car_bytes: car::section_len(profile.node_cid_len(), block_len),
            };
            (n, profile.node_cid_len())
        }
        Child::Dir(folder) => {
            let kids = kids(folder, profile);
            // A folder that cannot be sharded fails to import (`dir_shape`'s error); its size
            // is then only an estimate: that of a basic folder.
            let n = match dir_shape(folder, &kids, profile) {
                Ok(DirShape::Hamt(h)) => shard_size(&h, h.root(), &kids, profile),
                Ok(DirShape::Basic) | Err(_) => basic_dir_size(&kids, profile),
            };
            (n, profile.node_cid_len())
        }
    }
}

/// A folder entry as its parent's link sees it, predicted (32 bytes: a folder of a million
/// entries holds one each while it is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kid {
    /// Cumulative size (Tsize) of the entry's DAG.
    pub tsize: u64,
    /// File bytes under it.
    pub file_bytes: u64,
    /// CAR bytes of its sections.
    pub car_bytes: u64,
    /// Length of the entry's name.
    pub name_len: u32,
    /// Length of the entry's root CID.
    pub cid_len: u8,
}

impl Kid {
    /// The entry's sizes as a subtree of its folder (its own block's length is not kept).
    fn size(&self) -> NodeSize {
        NodeSize { block_len: 0, tsize: self.tsize, file_bytes: self.file_bytes, car_bytes: self.car_bytes }
    }

    fn name_len(&self) -> usize {
        self.name_len as usize
    }

    fn cid_len(&self) -> usize {
        self.cid_len as usize
    }
}

/// The predicted links of a folder's entries, in name order.
pub fn kids(folder: &Folder, profile: &Profile) -> Vec<Kid> {
    folder
        .iter()
        .map(|(name, child)| {
            let (size, cid_len) = predict_child(child, profile);
            Kid {
                tsize: size.tsize,
                file_bytes: size.file_bytes,
                car_bytes: size.car_bytes,
                // Names are file names: far below 4 GiB; CIDs are 34 or 36 bytes.
                name_len: name.len() as u32,
                cid_len: cid_len as u8,
            }
        })
        .collect()
}

/// How a folder is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirShape {
    /// One dag-pb block with a link per entry, sorted by name.
    Basic,
    /// A HAMT: its shards over the folder's entries.
    Hamt(hamt::Hamt),
}

/// Whether a folder with these entries (and their predicted `kids`) is basic or a HAMT under
/// `profile` (boxo's switch rule), and the HAMT's shards.
pub fn dir_shape(folder: &Folder, kids: &[Kid], profile: &Profile) -> Result<DirShape, HamtError> {
    let links = kids.iter().map(|k| (k.name_len(), k.cid_len(), k.tsize));
    if !hamt::exceeds(profile.hamt_estimation, profile.hamt_threshold, links) {
        return Ok(DirShape::Basic);
    }
    Ok(DirShape::Hamt(hamt::Hamt::build(folder.names(), profile.hamt_fanout)?))
}

fn sum_children(block_len: u64, children: impl Iterator<Item = NodeSize>, cid_len: usize) -> NodeSize {
    let mut n =
        NodeSize { block_len, tsize: block_len, file_bytes: 0, car_bytes: car::section_len(cid_len, block_len) };
    for c in children {
        n.tsize += c.tsize;
        n.file_bytes += c.file_bytes;
        n.car_bytes += c.car_bytes;
    }
    n
}

/// Sizes of a basic folder over its entries.
pub fn basic_dir_size(kids: &[Kid], profile: &Profile) -> NodeSize {
    let links = kids.iter().map(|k| (k.cid_len(), k.name_len(), k.tsize));
    let block_len = dagpb::encoded_len(links, Some(unixfs::directory().len())) as u64;
    sum_children(block_len, kids.iter().map(Kid::size), profile.node_cid_len())
}

/// Sizes of a HAMT shard (its block, and the subtree of its sub-shards and entries).
pub fn shard_size(h: &hamt::Hamt, shard: hamt::Run, kids: &[Kid], profile: &Profile) -> NodeSize {
    let fanout = h.fanout();
    let prefix = hamt::prefix_len(fanout);
    let link = |held: hamt::Held| match held {
        hamt::Held::Value(i) => (kids[i].cid_len(), prefix + kids[i].name_len(), kids[i].size()),
        hamt::Held::Shard(sub) => (profile.node_cid_len(), prefix, shard_size(h, sub, kids, profile)),
    };
    // Two walks over the slots (the block's length, then the sums) rather than a list of them.
    let data_len = hamt::shard_data_len(h.bitfield_len(shard), fanout);
    let links = h.slots(shard).map(|(_, held)| link(held)).map(|(c, n, s)| (c, n, s.tsize));
    let block_len = dagpb::encoded_len(links, Some(data_len)) as u64;
    sum_children(block_len, h.slots(shard).map(|(_, held)| link(held).2), profile.node_cid_len())
}

/// Predicted CAR size of an input tree (exact when no block repeats; repeats only make it smaller).
pub fn predict_car_size(entry: &Entry, profile: &Profile) -> u64 {
    let (n, cid_len) = predict(entry, profile);
    car::header_len(cid_len) + n.car_bytes
}
