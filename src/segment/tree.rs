//! The aggregate (a deal size and its index) and its hybrid Merkle tree: the deal's tree with
//! each segment's root and each index entry's level-1 node fixed, every other node the zero
//! subtree root `Z[level]` when nothing below it is fixed, else the hash of its children
//! (go-data-segment `merkletree.Hybrid`, data-segment `aggregate/tree.js`). Its root is the
//! commP of the deal bytes; paths through it are the inclusion proofs.

use super::entry::Entry;
use super::layout::{self, ENTRY_SIZE};
use super::proof::{InclusionProof, ProofData};
use super::SegmentError;
use crate::commp::{Kernel, PieceInfo};
use std::sync::OnceLock;

/// `Z[level]`: the root of an all-zero subtree of height `level`.
fn zero(level: u32) -> &'static [u8; 32] {
    static TABLE: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let k = Kernel::detect();
        let mut t = vec![[0u8; 32]];
        for l in 0..64 {
            let z = t[l];
            t.push(k.node(&z, &z));
        }
        t
    });
    &table[level as usize]
}

/// A node whose value is known: (level, index in level, value).
#[derive(Debug, Clone, Copy)]
struct Fixed {
    level: u32,
    index: u64,
    value: [u8; 32],
}

impl Fixed {
    /// First leaf below it.
    fn start(&self) -> u64 {
        self.index << self.level
    }
}

/// A deal's index: its padded size and its entries with their positions in the index area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    deal_size: u64,
    /// (position in the index, entry), positions increasing.
    entries: Vec<(u64, Entry)>,
}

impl Aggregate {
    /// An aggregate whose entry `i` is `entries[i]` (as `pack` writes it).
    pub fn new(deal_size: u64, entries: Vec<Entry>) -> Result<Self, SegmentError> {
        Self::with_positions(deal_size, entries.into_iter().enumerate().map(|(i, e)| (i as u64, e)).collect())
    }

    /// An aggregate from entries and their positions in the index (increasing; unused positions
    /// are all-zero entries). Checks every segment lies in the deal before the index area, is
    /// aligned to its size and overlaps no other.
    pub fn with_positions(deal_size: u64, entries: Vec<(u64, Entry)>) -> Result<Self, SegmentError> {
        layout::check_deal_size(deal_size)?;
        let start = layout::index_start(deal_size);
        let max = layout::max_entries(deal_size);
        for (n, &(pos, e)) in entries.iter().enumerate() {
            if pos >= max || (n > 0 && entries[n - 1].0 >= pos) {
                return Err(SegmentError::Position { entry: pos, entries: max });
            }
            if let Err(fault) = Entry::parse(&e.to_bytes()).and_then(|p| p.ok_or(super::entry::EntryFault::Checksum)) {
                return Err(SegmentError::BadEntry { entry: pos, fault });
            }
            if e.end().is_none_or(|end| end > start) {
                return Err(SegmentError::OutsideDeal { entry: pos, offset: e.offset, size: e.size, start });
            }
        }
        let mut by_offset: Vec<&(u64, Entry)> = entries.iter().collect();
        by_offset.sort_by_key(|(_, e)| e.offset);
        for w in by_offset.windows(2) {
            let ((a, ea), (b, eb)) = (w[0], w[1]);
            if ea.offset + ea.size > eb.offset {
                return Err(SegmentError::Overlap { first: *a, second: *b });
            }
        }
        Ok(Aggregate { deal_size, entries })
    }

    /// Padded size of the deal.
    pub fn deal_size(&self) -> u64 {
        self.deal_size
    }

    /// The entries with their positions in the index.
    pub fn entries(&self) -> &[(u64, Entry)] {
        &self.entries
    }

    /// The index area's padded bytes (`64·N(D)`): each entry at its position, zeros elsewhere.
    pub fn index_padded(&self) -> Vec<u8> {
        let mut out = vec![0u8; layout::index_size(self.deal_size) as usize];
        for (pos, e) in &self.entries {
            let at = (pos * ENTRY_SIZE) as usize;
            out[at..at + ENTRY_SIZE as usize].copy_from_slice(&e.to_bytes());
        }
        out
    }

    /// The index area as it lies in the deal's unpadded bytes (`index_padded`, Fr32-unpadded).
    pub fn index_unpadded(&self) -> Vec<u8> {
        super::fr32::unpad(&self.index_padded())
    }

    fn height(&self) -> u32 {
        (self.deal_size / 32).trailing_zeros()
    }

    /// The fixed nodes, ordered by their first leaf.
    fn fixed(&self, kernel: Kernel) -> Vec<Fixed> {
        let mut fixed: Vec<Fixed> = self
            .entries
            .iter()
            .map(|(_, e)| Fixed { level: e.level(), index: e.offset / e.size, value: e.root })
            .collect();
        fixed.sort_by_key(Fixed::start);
        let base = layout::index_start(self.deal_size) / ENTRY_SIZE;
        fixed.extend(self.entries.iter().map(|(pos, e)| {
            let b = e.to_bytes();
            let value = kernel.node(b[..32].try_into().expect("32"), b[32..].try_into().expect("32"));
            Fixed { level: 1, index: base + pos, value }
        }));
        fixed
    }

    /// The deal's commP root.
    pub fn root(&self) -> [u8; 32] {
        let k = Kernel::detect();
        node(k, &self.fixed(k), self.height(), 0)
    }

    /// The deal as a piece: its root, padded size `D` and `D·127/128` payload bytes (piece CID
    /// v2 with padding 0, as data-segment links an aggregate).
    pub fn piece(&self) -> PieceInfo {
        let u = layout::unpadded(self.deal_size);
        PieceInfo { root: self.root(), payload_size: u, padded_size: self.deal_size, unpadded_size: u }
    }

    /// Position in [`Aggregate::entries`] of the first entry with this root (and this padded
    /// size, when given), as both libraries look a piece up.
    pub fn find(&self, root: &[u8; 32], size: Option<u64>) -> Option<usize> {
        self.entries.iter().position(|(_, e)| &e.root == root && size.is_none_or(|s| s == e.size))
    }

    /// The inclusion proof of `self.entries()[n]`.
    pub fn proof(&self, n: usize) -> InclusionProof {
        let k = Kernel::detect();
        let fixed = self.fixed(k);
        let (pos, e) = self.entries[n];
        let subtree = path(k, &fixed, self.height(), e.level(), e.offset / e.size);
        let index = path(k, &fixed, self.height(), 1, layout::index_start(self.deal_size) / ENTRY_SIZE + pos);
        InclusionProof { subtree, index }
    }
}

/// The value of node (level, index); `fixed` holds exactly the fixed nodes below it.
fn node(k: Kernel, fixed: &[Fixed], level: u32, index: u64) -> [u8; 32] {
    match fixed {
        [] => *zero(level),
        [f] if f.level == level => {
            debug_assert_eq!(f.index, index);
            f.value
        }
        _ => {
            debug_assert!(fixed.iter().all(|f| f.level < level), "a node below a fixed node");
            let mid = (2 * index + 1) << (level - 1);
            let (left, right) = fixed.split_at(fixed.partition_point(|f| f.start() < mid));
            k.node(&node(k, left, level - 1, 2 * index), &node(k, right, level - 1, 2 * index + 1))
        }
    }
}

/// The proof of node (level, index) in a tree of height `height`.
fn path(k: Kernel, fixed: &[Fixed], height: u32, level: u32, index: u64) -> ProofData {
    let mut siblings = Vec::with_capacity((height - level) as usize);
    let mut slice = fixed;
    for l in (level + 1..=height).rev() {
        let cur = index >> (l - level);
        let mid = (2 * cur + 1) << (l - 1);
        let (left, right) = slice.split_at(slice.partition_point(|f| f.start() < mid));
        if (index >> (l - 1 - level)) & 1 == 0 {
            siblings.push(node(k, right, l - 1, 2 * cur + 1));
            slice = left;
        } else {
            siblings.push(node(k, left, l - 1, 2 * cur));
            slice = right;
        }
    }
    siblings.reverse();
    ProofData { path: siblings, index }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        let v: Vec<u8> = (0..64).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect();
        v.try_into().unwrap()
    }

    /// go-data-segment's `commForDeal(i)`: `0d 0e 0a 01 00` then the decimal digits of `i`.
    fn comm_for_deal(i: u64) -> [u8; 32] {
        let mut r = [0u8; 32];
        r[..5].copy_from_slice(&[0x0d, 0x0e, 0x0a, 0x01, 0x00]);
        for (j, d) in i.to_string().bytes().enumerate() {
            r[5 + j] = d - b'0';
        }
        r
    }

    /// G2 (go-data-segment TestAggregateCreation): ten synthetic pieces in a 32 GiB deal.
    fn g2() -> Aggregate {
        const M: u64 = 1 << 20;
        let sizes = [256 * M, 1024 * M, 512 * M, 512 * M, 1024 * M, 256 * M, 512 * M, 1024 * M, 256 * M, 512 * M];
        let offsets = layout::place(&sizes, 32 << 30).unwrap();
        let entries =
            (0..10).map(|i| Entry { root: comm_for_deal(i as u64), offset: offsets[i], size: sizes[i] }).collect();
        Aggregate::new(32 << 30, entries).unwrap()
    }

    #[test]
    fn the_go_aggregate_of_ten_pieces_has_its_published_root() {
        let a = g2();
        assert_eq!(a.root(), hex32("3f46bc645b07a3ea2c04f066f939ddf7e269dd77671f9e1e61a3a3797e665127"));
        assert_eq!(a.piece().cid_v1().to_string(), "baga6ea4seaqd6rv4mrnqpi7kfqcpazxzhho7pytj3v3woh46dzq2hi3zpztfcjy");
    }

    #[test]
    fn the_golden_proof_of_go_data_segment_has_its_shape_and_verifies() {
        // G3 (incusion_golden_test.go): entry 3, 512 MiB: subtree index 5, depth 6; index proof
        // index 0x1ffc0003, depth 29; leads to G2's root and 32 GiB.
        let a = g2();
        let p = a.proof(3);
        assert_eq!((p.subtree.index, p.subtree.path.len()), (5, 6));
        assert_eq!((p.index.index, p.index.path.len()), (0x1ffc_0003, 29));
        let (root, size) = p.resolve(Kernel::detect(), &comm_for_deal(3), 512 << 20).unwrap();
        assert_eq!((root, size), (a.root(), 32 << 30));
    }

    #[test]
    fn every_proof_of_an_aggregate_verifies_against_its_root() {
        let a = g2();
        for (n, (_, e)) in a.entries().iter().enumerate() {
            assert_eq!(a.proof(n).resolve(Kernel::detect(), &e.root, e.size), Ok((a.root(), a.deal_size())));
        }
        assert_eq!(a.find(&comm_for_deal(4), None), Some(4));
        assert_eq!(a.find(&comm_for_deal(4), Some(256 << 20)), None);
    }

    #[test]
    fn the_empty_aggregate_is_the_zero_tree() {
        let a = Aggregate::new(32 << 30, vec![]).unwrap();
        assert_eq!(a.root(), *zero(30));
    }

    #[test]
    fn overlapping_or_outlying_entries_are_refused() {
        let e = |offset, size| Entry { root: [7; 32], offset, size };
        assert!(matches!(
            Aggregate::new(4096, vec![e(0, 256), e(128, 128)]),
            Err(SegmentError::Overlap { first: 0, second: 1 })
        ));
        assert!(matches!(Aggregate::new(4096, vec![e(3840, 128)]), Err(SegmentError::OutsideDeal { entry: 0, .. })));
        assert!(matches!(
            Aggregate::with_positions(4096, vec![(4, e(0, 128))]),
            Err(SegmentError::Position { entry: 4, entries: 4 })
        ));
    }
}
