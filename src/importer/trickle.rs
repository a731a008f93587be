//! boxo's trickle file layout (`importer/trickle/trickledag.go`), as a shape: which leaves and
//! subtrees each node holds and the exact size of every block, from the file size alone.
//!
//! ```text
//! root = fill(File node, depth unbounded)
//! fill(node, max_depth): append up to max_links leaves while data remains; then for
//!     depth = 1, 2, … below max_depth, while data remains: append up to 4 (LAYER_REPEAT)
//!     children fill(File node, depth)
//! ```
//!
//! The root is always a dag-pb File node (a one-chunk file is `File[leaf]`, an empty file a node
//! without links); leaves are UnixFS `Raw` (type 0) dag-pb nodes, or raw blocks with raw leaves.
//! A subtree of depth `d` holds at most `cap(d) = max_links + 4·Σ_{j<d} cap(j)` leaves, so the
//! root is the node of the smallest depth whose capacity covers the file, and every node is named
//! by its depth and the leaves it covers. Subtrees holding `cap(d)` full chunks have equal sizes
//! and are sized once per depth.

use crate::car;
use crate::dagpb;
use crate::importer::layout::NodeSize;
use crate::profile::Profile;
use crate::unixfs;
use crate::varint;

/// Subtrees of each depth a node holds (boxo `depthRepeat`).
pub const LAYER_REPEAT: u64 = 4;

/// A node of a trickle DAG: depth bound (1 = leaves only) and the leaves it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// Depth bound: the node holds subtrees of depths `1..depth`.
    pub depth: u32,
    /// First leaf covered.
    pub start: u64,
    /// Leaves covered (the node's own and its subtrees').
    pub count: u64,
}

/// The shape of the trickle DAG of a file of a given size.
#[derive(Debug, Clone)]
pub struct TrickleShape {
    size: u64,
    chunk: u64,
    max_links: u64,
    /// Leaves (0 for the empty file).
    pub leaves: u64,
    raw_leaves: bool,
    leaf_cid_len: usize,
    node_cid_len: usize,
    /// `caps[d]`: leaves under a full subtree of depth `d` (`caps[0]` unused).
    caps: Vec<u64>,
    /// Sizes of full subtrees by depth.
    full: Vec<Option<NodeSize>>,
}

impl TrickleShape {
    /// The shape of a `size`-byte file under `profile`.
    pub fn new(size: u64, profile: &Profile) -> Self {
        let chunk = profile.chunk_size as u64;
        let max_links = profile.max_links as u64;
        let leaves = size.div_ceil(chunk);
        let mut caps = vec![0, max_links];
        let mut below: u64 = 0;
        while *caps.last().expect("caps") < leaves {
            below = below.saturating_add(*caps.last().expect("caps"));
            caps.push(max_links.saturating_add(below.saturating_mul(LAYER_REPEAT)));
        }
        TrickleShape {
            size,
            chunk,
            max_links,
            leaves,
            raw_leaves: profile.raw_leaves,
            leaf_cid_len: profile.leaf_cid_len(),
            node_cid_len: profile.node_cid_len(),
            full: vec![None; caps.len()],
            caps,
        }
    }

    /// File size the shape was made for.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root node.
    pub fn root(&self) -> Node {
        Node { depth: (self.caps.len() - 1) as u32, start: 0, count: self.leaves }
    }

    /// File bytes in leaf `i`.
    pub fn leaf_bytes(&self, i: u64) -> u64 {
        (self.size - (i * self.chunk).min(self.size)).min(self.chunk)
    }

    /// The leaves `node` links directly (its first links): `start..end`.
    pub fn own_leaves(&self, node: Node) -> std::ops::Range<u64> {
        node.start..node.start + node.count.min(self.max_links)
    }

    /// The subtrees `node` links after its own leaves, in order.
    pub fn subtrees(&self, node: Node) -> Vec<Node> {
        let end = node.start + node.count;
        let mut s = self.own_leaves(node).end;
        let mut out = Vec::new();
        for depth in 1..node.depth {
            for _ in 0..LAYER_REPEAT {
                if s >= end {
                    return out;
                }
                let count = self.caps[depth as usize].min(end - s);
                out.push(Node { depth, start: s, count });
                s += count;
            }
        }
        out
    }

    fn leaf(&self, i: u64) -> NodeSize {
        let bytes = self.leaf_bytes(i);
        let block_len = if self.raw_leaves { bytes } else { leaf_len(bytes) };
        NodeSize {
            block_len,
            tsize: block_len,
            file_bytes: bytes,
            car_bytes: car::section_len(self.leaf_cid_len, block_len),
        }
    }

    /// Sizes of the subtree `node`.
    pub fn node(&mut self, node: Node) -> NodeSize {
        let end = node.start + node.count;
        let full = node.count == self.caps[node.depth as usize]
            && (end < self.leaves || self.leaf_bytes(self.leaves - 1) == self.chunk);
        if full {
            if let Some(n) = self.full[node.depth as usize] {
                return n;
            }
        }
        let mut children: Vec<(usize, NodeSize)> =
            self.own_leaves(node).map(|i| (self.leaf_cid_len, self.leaf(i))).collect();
        for sub in self.subtrees(node) {
            children.push((self.node_cid_len, self.node(sub)));
        }
        let file_bytes = children.iter().map(|(_, c)| c.file_bytes).sum();
        let data_len = unixfs::file_node_data_len(file_bytes, children.iter().map(|(_, c)| c.file_bytes));
        let block_len = dagpb::encoded_len(children.iter().map(|(cid, c)| (*cid, 0, c.tsize)), Some(data_len)) as u64;
        let n = NodeSize {
            block_len,
            tsize: block_len + children.iter().map(|(_, c)| c.tsize).sum::<u64>(),
            file_bytes,
            car_bytes: car::section_len(self.node_cid_len, block_len)
                + children.iter().map(|(_, c)| c.car_bytes).sum::<u64>(),
        };
        if full {
            self.full[node.depth as usize] = Some(n);
        }
        n
    }

    /// Byte length of the root CID (always a dag-pb node).
    pub fn root_cid_len(&self) -> usize {
        self.node_cid_len
    }
}

/// The bytes around a chunk of `n > 0` bytes in its trickle leaf block (a dag-pb node with
/// UnixFS `Type=Raw, Data=chunk, filesize=n`): `block = head ‖ chunk ‖ tail`.
pub fn leaf_parts(n: usize) -> (Vec<u8>, Vec<u8>) {
    let inner = 2 + 1 + varint::len(n as u64) + n + 1 + varint::len(n as u64);
    let mut head = vec![0x0a];
    varint::write(&mut head, inner as u64);
    head.extend_from_slice(&[0x08, 0x00, 0x12]);
    varint::write(&mut head, n as u64);
    let mut tail = vec![0x18];
    varint::write(&mut tail, n as u64);
    (head, tail)
}

/// The trickle leaf block of `chunk` (non-empty) with dag-pb leaves.
pub fn leaf(chunk: &[u8]) -> Vec<u8> {
    let (head, tail) = leaf_parts(chunk.len());
    [&head[..], chunk, &tail[..]].concat()
}

/// Length of [`leaf`] for a chunk of `n` bytes.
pub fn leaf_len(n: u64) -> u64 {
    // Same framing as a balanced File leaf: only the type byte differs.
    unixfs::file_leaf_len(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_is_a_raw_type_node() {
        let b = leaf(b"ab");
        assert_eq!(b, [0x0a, 0x08, 0x08, 0x00, 0x12, 0x02, b'a', b'b', 0x18, 0x02]);
        for n in [1u64, 127, 128, 300, 262_144, 1 << 20] {
            assert_eq!(leaf(&vec![1; n as usize]).len() as u64, leaf_len(n), "n={n}");
        }
    }

    #[test]
    fn subtrees_follow_the_repeat_pattern() {
        // 3 links: cap(1) = 3, cap(2) = 3 + 4·3 = 15, cap(3) = 3 + 4·(3 + 15) = 75.
        let p = Profile { chunk_size: 1, max_links: 3, ..Profile::default() };
        let s = TrickleShape::new(20, &p);
        let root = s.root();
        assert_eq!(root, Node { depth: 3, start: 0, count: 20 });
        assert_eq!(s.own_leaves(root), 0..3);
        let subs = s.subtrees(root);
        let d = |n: &Node| (n.depth, n.start, n.count);
        assert_eq!(subs.iter().map(d).collect::<Vec<_>>(), [(1, 3, 3), (1, 6, 3), (1, 9, 3), (1, 12, 3), (2, 15, 5)]);
        assert_eq!(s.subtrees(subs[4]).iter().map(d).collect::<Vec<_>>(), [(1, 18, 2)]);
        // The empty file: a root without links; one leaf: the root holds it.
        assert_eq!(TrickleShape::new(0, &p).root(), Node { depth: 1, start: 0, count: 0 });
        assert_eq!(TrickleShape::new(1, &p).root(), Node { depth: 1, start: 0, count: 1 });
    }
}
