//! The CIDs of the blocks written so far, held compactly: the streaming importer writes a block
//! once per exact CID, so it remembers every CID it wrote — a million for a folder of a million
//! distinct files — in about 45 bytes each instead of a hash set of 100-byte [`Cid`]s.

use cid::Cid;
use std::collections::HashSet;

/// The longest CID kept as bytes: every sha2-256 CID (34 bytes for v0, 36 for v1).
const SHORT: usize = 36;

/// A set of CIDs. A CID of at most [`SHORT`] bytes is kept as its bytes zero-padded to
/// [`SHORT`] (CID bytes delimit themselves, so padding keeps them distinct) in one arena,
/// found through an open-addressing table of arena indices; any other CID in a plain set.
#[derive(Debug, Default)]
pub struct Written {
    /// The CIDs' padded bytes, in insertion order.
    keys: Vec<[u8; SHORT]>,
    /// Index + 1 into `keys` (0 = empty), by hash, linear probing; at most half full.
    table: Vec<u32>,
    /// CIDs longer than [`SHORT`] bytes (none that carload makes).
    other: HashSet<Cid>,
}

impl Written {
    /// Records `cid`; whether it was new.
    pub fn insert(&mut self, cid: &Cid) -> bool {
        let mut key = [0u8; SHORT];
        if cid.encoded_len() > SHORT
            || cid.write_bytes(&mut key[..]).is_err()
            || self.keys.len() >= u32::MAX as usize / 2
        {
            return self.other.insert(*cid);
        }
        if (self.keys.len() + 1) * 2 > self.table.len() {
            self.grow();
        }
        let mut at = self.home(&key);
        loop {
            match self.table[at] {
                0 => break,
                i if self.keys[i as usize - 1] == key => return false,
                _ => at = (at + 1) & (self.table.len() - 1),
            }
        }
        self.keys.push(key);
        self.table[at] = self.keys.len() as u32;
        true
    }

    /// Number of CIDs recorded.
    pub fn len(&self) -> usize {
        self.keys.len() + self.other.len()
    }

    /// Whether no CID was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held on the heap for the CIDs kept as bytes (allocated capacity).
    pub fn heap_bytes(&self) -> usize {
        self.keys.capacity() * SHORT + self.table.capacity() * std::mem::size_of::<u32>()
    }

    /// The table slot where a key's probe starts: bytes of the digest (uniformly distributed
    /// for sha2-256: bytes 4..12 are digest bytes in a v0 and a v1 CID alike).
    fn home(&self, key: &[u8; SHORT]) -> usize {
        let h = u64::from_le_bytes(key[4..12].try_into().expect("8 bytes"));
        (h as usize) & (self.table.len() - 1)
    }

    fn grow(&mut self) {
        let size = (self.table.len() * 2).max(64);
        self.table = vec![0; size];
        for i in 0..self.keys.len() {
            let mut at = self.home(&self.keys[i]);
            while self.table[at] != 0 {
                at = (at + 1) & (size - 1);
            }
            self.table[at] = i as u32 + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{cid_of, CidVersion, DAG_PB, RAW};

    #[test]
    fn each_cid_is_new_once_whatever_its_version_and_codec() {
        let mut w = Written::default();
        let mut cids = Vec::new();
        for i in 0..5000u32 {
            let data = i.to_le_bytes();
            // One block's bytes under three CIDs: each is a distinct CID, written once.
            cids.push(cid_of(CidVersion::V0, DAG_PB, &data));
            cids.push(cid_of(CidVersion::V1, DAG_PB, &data));
            cids.push(cid_of(CidVersion::V1, RAW, &data));
        }
        for c in &cids {
            assert!(w.insert(c), "{c} is new");
        }
        for c in &cids {
            assert!(!w.insert(c), "{c} was written");
        }
        assert_eq!(w.len(), cids.len());
    }

    #[test]
    fn other_cids_are_kept_too() {
        let long = Cid::new_v1(DAG_PB, multihash::Multihash::<64>::wrap(0x13, &[7; 64]).unwrap());
        let mut w = Written::default();
        assert!(w.insert(&long));
        assert!(!w.insert(&long));
        assert_eq!(w.len(), 1);
    }
}
