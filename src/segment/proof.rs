//! Proofs of data segment inclusion (PoDSI): a subtree proof (the segment's root is a node of
//! the deal's tree) and an index proof (the segment's index entry is in the index area), as
//! go-data-segment's `InclusionProof` and data-segment's `InclusionProof` define them, their
//! verification (go-data-segment `ComputeExpectedAuxData`) and their encodings: DAG-CBOR tuples
//! (byte for byte what both libraries write) and go-data-segment's `encoding/json` form.

use super::entry::Entry;
use super::layout;
use crate::commp::Kernel;
use cid::Cid;
use multihash::Multihash;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A Merkle path: the node's index in its level and its siblings from its level upwards (the
/// last one is a child of the root). JSON: `{"Path": [[32 numbers], …], "Index": n}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofData {
    /// Siblings, bottom-up.
    #[serde(rename = "Path")]
    pub path: Vec<[u8; 32]>,
    /// Index of the proved node in its level.
    #[serde(rename = "Index")]
    pub index: u64,
}

/// The inclusion proof of one segment. JSON: `{"ProofSubtree": …, "ProofIndex": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// From the segment's root (at level `log2(size/32)`) to the deal's root.
    #[serde(rename = "ProofSubtree")]
    pub subtree: ProofData,
    /// From the hash of the segment's index entry (a level-1 node) to the deal's root.
    #[serde(rename = "ProofIndex")]
    pub index: ProofData,
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// A path longer than 63 nodes.
    #[error("path of {0} nodes is too long (at most 63)")]
    TooLong(usize),
    /// The index does not fit the path's width.
    #[error("index {index} is beyond the width of a tree of height {height}")]
    IndexTooLarge {
        /// The index.
        index: u64,
        /// The path length.
        height: usize,
    },
    /// The segment size is not a power of two ≥ 128, or the sizes overflow.
    #[error("segment size {0} is not a power of two of at least 128 bytes, or the deal is too large")]
    Size(u64),
    /// The two proofs lead to different roots.
    #[error("the subtree proof and the index proof lead to different roots")]
    RootsDiffer,
    /// The two proofs imply different deal sizes.
    #[error("the subtree proof implies a deal of {subtree} bytes, the index proof one of {index}")]
    SizesDiffer {
        /// From the subtree proof.
        subtree: u64,
        /// From the index proof.
        index: u64,
    },
    /// The index entry lies before the index area.
    #[error("the index entry at padded offset {offset} lies before the index area (at {start})")]
    OutsideIndex {
        /// Padded offset of the entry.
        offset: u64,
        /// Start of the index area.
        start: u64,
    },
}

impl ProofData {
    /// The root reached from `node` along this path.
    pub fn compute_root(&self, kernel: Kernel, node: &[u8; 32]) -> Result<[u8; 32], ProofError> {
        let height = self.path.len();
        if height > 63 {
            return Err(ProofError::TooLong(height));
        }
        if self.index >> height != 0 {
            return Err(ProofError::IndexTooLarge { index: self.index, height });
        }
        let (mut node, mut index) = (*node, self.index);
        for p in &self.path {
            node = if index & 1 == 1 { kernel.node(p, &node) } else { kernel.node(&node, p) };
            index >>= 1;
        }
        Ok(node)
    }

    fn cbor(&self, out: &mut Vec<u8>) {
        cbor_head(out, 4, 2);
        cbor_head(out, 0, self.index);
        cbor_head(out, 4, self.path.len() as u64);
        for node in &self.path {
            cbor_head(out, 2, 32);
            out.extend_from_slice(node);
        }
    }
}

/// A CBOR head: major type and argument, in the shortest form (as DAG-CBOR requires).
fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

impl InclusionProof {
    /// Verifies the proof for a segment of commP root `root` and padded size `size`, as
    /// go-data-segment's `ComputeExpectedAuxData` and data-segment's `resolveAggregate` do:
    /// returns the deal's root and padded size the proof leads to (the caller compares them with
    /// the deal's piece CID).
    pub fn resolve(&self, kernel: Kernel, root: &[u8; 32], size: u64) -> Result<([u8; 32], u64), ProofError> {
        if !size.is_power_of_two() || size < layout::MIN_PIECE_SIZE {
            return Err(ProofError::Size(size));
        }
        let a = self.subtree.compute_root(kernel, root)?;
        let size_a = 1u64
            .checked_shl(self.subtree.path.len() as u32)
            .and_then(|f| f.checked_mul(size))
            .ok_or(ProofError::Size(size))?;
        let offset = self.subtree.index * size;
        let entry = Entry { root: *root, offset, size }.to_bytes();
        let leaf = kernel.node(entry[..32].try_into().expect("32"), entry[32..].try_into().expect("32"));
        let b = self.index.compute_root(kernel, &leaf)?;
        if a != b {
            return Err(ProofError::RootsDiffer);
        }
        let size_b = 1u64
            .checked_shl(self.index.path.len() as u32)
            .and_then(|f| f.checked_mul(layout::ENTRY_SIZE))
            .ok_or(ProofError::Size(size))?;
        if size_a != size_b {
            return Err(ProofError::SizesDiffer { subtree: size_a, index: size_b });
        }
        let start = size_a - layout::ENTRY_SIZE * layout::max_entries(size_a);
        let at = self.index.index * layout::ENTRY_SIZE;
        if at < start {
            return Err(ProofError::OutsideIndex { offset: at, start });
        }
        Ok((a, size_a))
    }

    /// DAG-CBOR: `[[index, [node, …]], [index, [node, …]]]`, the bytes go-data-segment's
    /// cbor-gen tuples and data-segment's `@ipld/dag-cbor` write.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 34 * (self.subtree.path.len() + self.index.path.len()));
        cbor_head(&mut out, 4, 2);
        self.subtree.cbor(&mut out);
        self.index.cbor(&mut out);
        out
    }

    /// The CID of [`InclusionProof::to_cbor`] (dag-cbor, sha2-256: `bafyrei…`), as data-segment
    /// links its proofs.
    pub fn link(&self) -> Cid {
        let digest = Sha256::digest(self.to_cbor());
        Cid::new_v1(0x71, Multihash::<64>::wrap(0x12, &digest).expect("32-byte digest fits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn nodes(list: &[&str]) -> Vec<[u8; 32]> {
        list.iter().map(|s| hex(s).try_into().unwrap()).collect()
    }

    /// data-segments.md §4: the proof of P5 in A3 (data-segment, re-verified in Python).
    pub(crate) fn a3_p5() -> InclusionProof {
        InclusionProof {
            subtree: ProofData {
                index: 1,
                path: nodes(&[
                    "16ce0481024419d1eb1addf85b7471bd2eeb892ffb67be2c5abeb6bf42233b18",
                    "1bbb03d566cd173562eb27ab4c9970e0d5d543b26c9260fa6c8dcb4126cc333c",
                    "1f7ac9595510e09ea41c460b176430bb322cd6fb412ec57cb17d989a4310372f",
                    "89ee10aa08eacf7f80d6c71a33aca8adb605d4aa907140f3c78f1fde0004ad20",
                ]),
            },
            index: ProofData {
                index: 61,
                path: nodes(&[
                    "81329b6d10a1c864a0778c50bbd9669a953cdcf074f309141c0f6f2e645e4633",
                    "8383a421475e76442ade9d5b6293a1103e055bda0bb559a5afc6bbbaa2450513",
                    "642a607ef886b004bf2c1978463ae1d4693ac0f410eb2d1b7a47fe205e5e750f",
                    "57a2381a28652bf47f6bef7aca679be4aede5871ab5cf3eb2c08114488cb8526",
                    "1f7ac9595510e09ea41c460b176430bb322cd6fb412ec57cb17d989a4310372f",
                    "fb4092cb7c4f60b580ad17a3779d1c0da38add4f9572c493a1748198816c0223",
                ]),
            },
        }
    }

    #[test]
    fn the_published_proof_encodes_links_and_verifies() {
        let p = a3_p5();
        let cbor = p.to_cbor();
        assert_eq!(cbor.len(), 348);
        assert_eq!(cbor[..4], [0x82, 0x82, 0x01, 0x84]);
        assert_eq!(p.link().to_string(), "bafyreicefh36pb52frnczyjhchnpdmlp62jny3zm44iic5bm3yaobcawuy");
        let k = Kernel::detect();
        let root: [u8; 32] =
            hex("983a9debbb3a513d71fcb2959e0df2183662940ffad90318986e5dad75d1fb25").try_into().unwrap();
        let (deal, size) = p.resolve(k, &root, 256).unwrap();
        assert_eq!(size, 4096);
        let piece = crate::commp::PieceInfo { root: deal, payload_size: 4064, padded_size: 4096, unpadded_size: 4064 };
        assert_eq!(piece.cid_v1().to_string(), "baga6ea4seaqaacg2tn3bhwows4ez4oywamqjefpuxqjchfs36ldcc4f5rww4uky");
    }

    #[test]
    fn tampered_proofs_do_not_verify() {
        let k = Kernel::detect();
        let root: [u8; 32] =
            hex("983a9debbb3a513d71fcb2959e0df2183662940ffad90318986e5dad75d1fb25").try_into().unwrap();
        let mut p = a3_p5();
        p.subtree.path[0][0] ^= 1;
        assert_eq!(p.resolve(k, &root, 256), Err(ProofError::RootsDiffer));
        let mut p = a3_p5();
        p.index.index = 60;
        assert_eq!(p.resolve(k, &root, 256), Err(ProofError::RootsDiffer));
        let mut p = a3_p5();
        p.subtree.index = 16;
        assert_eq!(p.resolve(k, &root, 256), Err(ProofError::IndexTooLarge { index: 16, height: 4 }));
        assert_eq!(a3_p5().resolve(k, &root, 128), Err(ProofError::RootsDiffer));
        assert_eq!(a3_p5().resolve(k, &root, 100), Err(ProofError::Size(100)));
    }

    #[test]
    fn json_is_go_data_segments_encoding() {
        let p = InclusionProof {
            subtree: ProofData { path: vec![[1; 32]], index: 3 },
            index: ProofData { path: vec![], index: 0 },
        };
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.starts_with(r#"{"ProofSubtree":{"Path":[[1,1,"#), "{json}");
        assert!(json.ends_with(r#"]],"Index":3},"ProofIndex":{"Path":[],"Index":0}}"#), "{json}");
        assert_eq!(serde_json::from_str::<InclusionProof>(&json).unwrap(), p);
    }
}
