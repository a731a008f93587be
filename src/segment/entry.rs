//! One entry of the data segment index (FRC-0058): 64 padded bytes, the segment's commP root
//! (32), its padded offset and padded size (u64 little-endian each) and a checksum: the first
//! 16 bytes of `SHA-256(bytes 0..48 ‖ 16 zero bytes)`, the top two bits of its last byte
//! cleared (so both 32-byte halves are valid Fr32 nodes).

use sha2::{Digest, Sha256};

/// A segment as the index describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The segment's commP root (its piece CID v1 digest).
    pub root: [u8; 32],
    /// Padded offset from the start of the deal.
    pub offset: u64,
    /// Padded size of the segment.
    pub size: u64,
}

/// Why 64 index bytes are not a valid entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryFault {
    /// The checksum does not match the other 48 bytes.
    #[error("bad checksum")]
    Checksum,
    /// The root's or the checksum's top two bits are set (not a valid Fr32 node).
    #[error("not a valid Fr32 node (top bits set)")]
    NotFr32,
    /// The size is not a power of two of at least 128 bytes.
    #[error("size {0} is not a power of two of at least 128 bytes")]
    Size(u64),
    /// The offset is not a multiple of the size.
    #[error("offset {offset} is not a multiple of its size {size}")]
    Alignment {
        /// Padded offset.
        offset: u64,
        /// Padded size.
        size: u64,
    },
}

impl Entry {
    /// The 16-byte checksum of this entry.
    pub fn checksum(&self) -> [u8; 16] {
        let mut h = Sha256::new();
        h.update(self.root);
        h.update(self.offset.to_le_bytes());
        h.update(self.size.to_le_bytes());
        h.update([0u8; 16]);
        let digest = h.finalize();
        let mut sum: [u8; 16] = digest[..16].try_into().expect("16 bytes");
        sum[15] &= 0x3f;
        sum
    }

    /// The 64 padded bytes of this entry.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[..32].copy_from_slice(&self.root);
        b[32..40].copy_from_slice(&self.offset.to_le_bytes());
        b[40..48].copy_from_slice(&self.size.to_le_bytes());
        b[48..].copy_from_slice(&self.checksum());
        b
    }

    /// Parses 64 padded index bytes: `None` for an unused (all-zero) entry; a fault unless the
    /// checksum matches, both halves are Fr32 nodes, the size is a power of two ≥ 128 and the
    /// offset a multiple of it (the placement both reference libraries use; a segment placed
    /// otherwise could not be proved).
    pub fn parse(bytes: &[u8; 64]) -> Result<Option<Entry>, EntryFault> {
        if bytes.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        if bytes[31] & 0xc0 != 0 || bytes[63] & 0xc0 != 0 {
            return Err(EntryFault::NotFr32);
        }
        let e = Entry {
            root: bytes[..32].try_into().expect("32 bytes"),
            offset: u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes")),
            size: u64::from_le_bytes(bytes[40..48].try_into().expect("8 bytes")),
        };
        if e.checksum()[..] != bytes[48..] {
            return Err(EntryFault::Checksum);
        }
        if !e.size.is_power_of_two() || e.size < 128 {
            return Err(EntryFault::Size(e.size));
        }
        if !e.offset.is_multiple_of(e.size) {
            return Err(EntryFault::Alignment { offset: e.offset, size: e.size });
        }
        Ok(Some(e))
    }

    /// End of the segment (padded), `None` on overflow.
    pub fn end(&self) -> Option<u64> {
        self.offset.checked_add(self.size)
    }

    /// Tree level of the segment's root: `log2(size/32)`.
    pub fn level(&self) -> u32 {
        self.size.trailing_zeros() - 5
    }

    /// The segment's commitment as a piece: root, padded size (the payload length is not in
    /// the index: the whole slot, `size·127/128` bytes, counts as payload).
    pub fn piece(&self) -> crate::commp::PieceInfo {
        let unpadded = super::layout::unpadded(self.size);
        crate::commp::PieceInfo {
            root: self.root,
            payload_size: unpadded,
            padded_size: self.size,
            unpadded_size: unpadded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn entry(root: &str, offset: u64, size: u64) -> Entry {
        Entry { root: hex(root).try_into().unwrap(), offset, size }
    }

    #[test]
    fn entries_encode_as_the_published_vectors() {
        // data-segments.md §3 (go-data-segment's sample aggregate) and §7.
        for (e, want) in [
            (
                entry("02771248c328f03d49dd3067ae71fda4c6230ded8315ea51539e7155c5b0261b", 0, 524_288),
                "02771248c328f03d49dd3067ae71fda4c6230ded8315ea51539e7155c5b0261b 0000000000000000 0000080000000000 f09f73f5f2710ab83fd968425c73b91e",
            ),
            (
                entry("b08ed2d94c31e1f93214ba65a3ddf1a8a6f3806c71524221106b0ceeb20f7c3f", 1_048_576, 1_048_576),
                "b08ed2d94c31e1f93214ba65a3ddf1a8a6f3806c71524221106b0ceeb20f7c3f 0000100000000000 0000100000000000 2da367536e1ea0ca4813cc8e833e7d3a",
            ),
            (
                entry("a63cba415f9ae6e9870f7a3561f1e46c63935807490d2bae15861ecf1a0aa537", 2_621_440, 128),
                "a63cba415f9ae6e9870f7a3561f1e46c63935807490d2bae15861ecf1a0aa537 0000280000000000 8000000000000000 0748e8e0c7246b310fceb213af72083b",
            ),
            (
                entry("351e29320f80eb7b86199d1ab6bd836ebcb09580a8df21efb25cbc6cbdfbe723", 1_572_864, 131_072),
                "351e29320f80eb7b86199d1ab6bd836ebcb09580a8df21efb25cbc6cbdfbe723 0000180000000000 0000020000000000 0cd2f5e43be1c1cea7cceb1a2f59522b",
            ),
            (
                entry("983a9debbb3a513d71fcb2959e0df2183662940ffad90318986e5dad75d1fb25", 256, 256),
                "983a9debbb3a513d71fcb2959e0df2183662940ffad90318986e5dad75d1fb25 0001000000000000 0001000000000000 05ffc50e97c489e459b4190f631ade27",
            ),
        ] {
            assert_eq!(e.to_bytes().to_vec(), hex(want));
            assert_eq!(Entry::parse(&e.to_bytes()), Ok(Some(e)));
        }
    }

    #[test]
    fn the_level_one_node_of_an_entry_is_the_hash_of_its_64_bytes() {
        let e = entry("02771248c328f03d49dd3067ae71fda4c6230ded8315ea51539e7155c5b0261b", 0, 524_288);
        let b = e.to_bytes();
        let k = crate::commp::Kernel::detect();
        let node = k.node(b[..32].try_into().unwrap(), b[32..].try_into().unwrap());
        assert_eq!(node.to_vec(), hex("8331fa8dfcb0fe1a210e32016d60e4c5f0a3a9711317626406d625ac9863af15"));
    }

    #[test]
    fn bad_entries_are_refused_with_their_fault() {
        let e = entry("983a9debbb3a513d71fcb2959e0df2183662940ffad90318986e5dad75d1fb25", 256, 256);
        assert_eq!(Entry::parse(&[0; 64]), Ok(None));
        let mut b = e.to_bytes();
        b[0] ^= 1;
        assert_eq!(Entry::parse(&b), Err(EntryFault::Checksum));
        let mut b = e.to_bytes();
        b[31] |= 0x80;
        assert_eq!(Entry::parse(&b), Err(EntryFault::NotFr32));
        let odd = Entry { size: 384, ..e };
        assert_eq!(Entry::parse(&odd.to_bytes()), Err(EntryFault::Size(384)));
        let unaligned = Entry { offset: 128, ..e };
        assert_eq!(Entry::parse(&unaligned.to_bytes()), Err(EntryFault::Alignment { offset: 128, size: 256 }));
    }
}
