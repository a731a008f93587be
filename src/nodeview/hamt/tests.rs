//! Shard nodes checked alone, and the places of entries and sub-shards.

use super::*;
use crate::block::{Block, CidVersion, RAW};
use crate::dagpb::{encode, Link};
use crate::nodeview::unixfs_node;

/// A shard's `Data`: type 5, the bitfield, hash type and fanout as given.
fn data(bitfield: &[u8], hash_type: Option<u64>, fanout: Option<u64>) -> Vec<u8> {
    let mut out = vec![0x08, 0x05, 0x12];
    crate::varint::write(&mut out, bitfield.len() as u64);
    out.extend_from_slice(bitfield);
    if let Some(h) = hash_type {
        out.push(0x28);
        crate::varint::write(&mut out, h);
    }
    if let Some(f) = fanout {
        out.push(0x30);
        crate::varint::write(&mut out, f);
    }
    out
}

/// The go-bitfield bytes of `slots` for `fanout`, leading zero bytes trimmed.
fn bitfield(fanout: u32, slots: &[u32]) -> Vec<u8> {
    let mut b = vec![0u8; fanout as usize / 8];
    let n = b.len();
    for &s in slots {
        b[n - 1 - s as usize / 8] |= 1 << (s % 8);
    }
    let first = b.iter().position(|&x| x != 0).unwrap_or(n);
    b[first..].to_vec()
}

fn leaf() -> Cid {
    Block::new(CidVersion::V1, RAW, b"x".to_vec()).cid
}

fn block(links: &[&str], data: Vec<u8>) -> Vec<u8> {
    let links: Vec<Link> = links.iter().map(|n| Link { cid: leaf(), name: n.as_bytes().to_vec(), tsize: 1 }).collect();
    encode(&links, Some(&data))
}

fn check(bytes: &[u8]) -> Result<(u32, usize), NodeError> {
    let node = unixfs_node(bytes).unwrap();
    shard(&node).map(|s| (s.bits, s.entries))
}

/// Where `name` goes in a root shard of `fanout`, as its link name.
fn named(fanout: u32, name: &str) -> String {
    let bits = fanout.trailing_zeros();
    let slot = hamt_key(name.as_bytes()) >> (64 - bits);
    format!("{slot:0w$X}{name}", w = width(bits))
}

#[test]
fn widths_are_the_hex_digits_of_the_last_slot() {
    for (fanout, w) in [(8, 1), (16, 1), (32, 2), (256, 2), (512, 3), (1024, 3)] {
        let bits = u32::trailing_zeros(fanout);
        assert_eq!(width(bits), format!("{:X}", fanout - 1).len(), "fanout {fanout}");
        assert_eq!(width(bits), w);
    }
}

#[test]
fn a_shard_as_boxo_writes_it_passes() {
    // Two entries at 0x3E (mars.txt) and 0x68, one sub-shard at 0x80: kubo's byte layout.
    let mars = named(256, "mars.txt");
    assert!(mars.starts_with("3E"));
    let slots = [0x3E, 0x68, 0x80];
    let bf = bitfield(256, &slots);
    assert_eq!(bf.len(), 17, "trimmed to the highest set byte");
    let bytes = block(&[&mars, "68other", "80"], data(&bf, Some(0x22), Some(256)));
    assert_eq!(check(&bytes).unwrap(), (8, 2));
    let node = unixfs_node(&bytes).unwrap();
    let s = shard(&node).unwrap();
    let links: Vec<(u32, Option<&[u8]>)> = s.links().map(|l| (l.slot, l.name)).collect();
    assert_eq!(
        links,
        vec![(0x3E, Some(&b"mars.txt"[..])), (0x68, Some(&b"other"[..])), (0x80, None)],
        "entries named after the slot, a sub-shard by the slot alone"
    );
    // The cursor form reads the same links.
    let mut at = 0;
    let mut cursor = Vec::new();
    while let Some(l) = next_shard_link(&bytes, &mut at, 8) {
        cursor.push(l.unwrap().slot);
    }
    assert_eq!(cursor, slots);
    // An untrimmed bitfield (all 32 bytes) is read as go-bitfield reads it.
    let mut full = vec![0u8; 32 - bf.len()];
    full.extend(&bf);
    assert!(check(&block(&[&mars, "68other", "80"], data(&full, Some(0x22), Some(256)))).is_ok());
}

#[test]
fn each_broken_rule_is_refused_with_its_cause() {
    let bf = bitfield(256, &[0x3E]);
    let one = |name: &str, d: Vec<u8>| check(&block(&[name], d)).unwrap_err();
    let ok = data(&bf, Some(0x22), Some(256));
    assert_eq!(one("3Ex", data(&bf, Some(0x11), Some(256))), NodeError::HamtHashType(Some(0x11)));
    assert_eq!(one("3Ex", data(&bf, None, Some(256))), NodeError::HamtHashType(None));
    for bad in [None, Some(0), Some(4), Some(255), Some(100), Some(2048)] {
        assert_eq!(one("3Ex", data(&bf, Some(0x22), bad)), NodeError::HamtFanout(bad), "{bad:?}");
    }
    assert!(check(&block(&["3x"], data(&bitfield(8, &[3]), Some(0x22), Some(8)))).is_ok(), "fanout 8");
    assert!(matches!(
        one("3Ex", data(&[0u8; 33], Some(0x22), Some(256))),
        NodeError::HamtBitfieldLength { len: 33, fanout: 256 }
    ));
    assert_eq!(
        one("3Ex", data(&bitfield(256, &[1, 2]), Some(0x22), Some(256))),
        NodeError::HamtPopcount { set: 2, links: 1 }
    );
    for name in ["3ex", "3", "", "G0x", "x3E"] {
        let e = one(name, ok.clone());
        assert!(matches!(e, NodeError::HamtLinkName { index: 0, width: 2, fanout: 256, .. }), "{name:?}: {e}");
    }
    // A slot the fanout does not have (width 3 reaches 0xFFF, fanout 512 stops at 0x1FF).
    let e = check(&block(&["200x"], data(&bitfield(512, &[0x1FF]), Some(0x22), Some(512)))).unwrap_err();
    assert!(matches!(e, NodeError::HamtLinkName { width: 3, fanout: 512, .. }), "{e}");
    assert_eq!(one("3Fx", ok.clone()), NodeError::HamtSlotUnset { index: 0, slot: 0x3F });
    let two = bitfield(256, &[0x3E, 0x40]);
    let e = check(&block(&["40a", "3Eb"], data(&two, Some(0x22), Some(256)))).unwrap_err();
    assert_eq!(e, NodeError::HamtSlotOrder { index: 1, slot: 0x3E });
    let e = check(&block(&["3Ea", "3Eb"], data(&two, Some(0x22), Some(256)))).unwrap_err();
    assert_eq!(e, NodeError::HamtSlotOrder { index: 1, slot: 0x3E }, "two links in one slot");
    // The messages say what is wrong in words.
    assert_eq!(
        NodeError::HamtFanout(Some(100)).to_string(),
        "a HAMT shard with fanout 100, not a power of two from 8 to 1024"
    );
    assert!(one("3Ex", data(&bf, Some(0x11), Some(256))).to_string().contains("hash type 0x11"));
}

#[test]
fn entries_must_be_where_their_key_puts_them_at_every_level() {
    // mars.txt: 3e93ed84d2c3e70a.
    let root = Position::root(8);
    assert!(root.check_entry(0x3E, b"mars.txt").is_ok());
    let e = root.check_entry(0x3F, b"mars.txt").unwrap_err();
    assert_eq!(e.to_string(), "HAMT entry \"mars.txt\" is at 3F, but the murmur3 hash of its name (3e93ed84d2c3e70a) puts it at 3E (a name has one place in a sharded folder: misplaced or repeated)");
    let under = root.child(0x3E).unwrap();
    assert!(under.check_entry(0x93, b"mars.txt").is_ok());
    assert!(matches!(under.check_entry(0x3E, b"mars.txt"), Err(NodeError::HamtMisplaced { .. })));
    // The right slot at this level under the wrong parent slot is still misplaced.
    let other = root.child(0x12).unwrap();
    let e = other.check_entry(0x93, b"mars.txt").unwrap_err();
    assert!(matches!(&e, NodeError::HamtMisplaced { at, want, .. } if at == "12/93" && want == "3E/93"), "{e}");
    // Fanout 16: one hex digit a level, 4 bits; fanout 1024: 10 bits (not byte-aligned).
    let r16 = Position::root(4);
    assert!(r16.check_entry(0x3, b"mars.txt").is_ok());
    assert!(r16.child(0x3).unwrap().child(0xE).unwrap().check_entry(0x9, b"mars.txt").is_ok());
    let r1024 = Position::root(10);
    let key = hamt_key(b"mars.txt");
    let (s0, s1) = ((key >> 54) as u32, ((key >> 44) & 0x3FF) as u32);
    assert!(r1024.child(s0).unwrap().check_entry(s1, b"mars.txt").is_ok());
    assert_eq!(r1024.child(s0).unwrap().place(s1), format!("{s0:03X}/{s1:03X}"));
}

#[test]
fn depth_is_bounded_by_the_64_bits_of_a_key() {
    for bits in 3..=10 {
        let mut p = Position::root(bits);
        let mut levels = 1;
        while let Ok(c) = p.child(1) {
            p = c;
            levels += 1;
        }
        assert_eq!(levels, 64 / bits, "bits {bits}: levels");
        assert!(matches!(p.child(1), Err(NodeError::HamtTooDeep { .. })));
    }
}

#[test]
fn positions_pack_into_64_bits_and_back() {
    for bits in 3..=10 {
        let mut p = Position::root(bits);
        let mut seen = std::collections::HashSet::new();
        loop {
            assert_eq!(Position::unpack(p.pack()), p, "{p:?}");
            assert_ne!(p.pack(), 0);
            assert!(seen.insert(p.pack()));
            let slot = (1 << bits) - 1 - p.depth() % 2;
            match p.child(slot) {
                Ok(c) => p = c,
                Err(_) => break,
            }
        }
    }
    let p = Position::root(8).child(0x3E).unwrap().child(0x07).unwrap();
    assert_eq!(p.describe(), "sub-shard 3E/07");
    assert_eq!(Position::root(8).describe(), "the root shard");
    assert_ne!(p.pack(), Position::root(8).child(0x3E).unwrap().child(0x08).unwrap().pack());
    assert!(p.check_bits(8).is_ok());
    assert_eq!(p.check_bits(4), Err(NodeError::HamtFanoutChanged { fanout: 16, parent: 256 }));
}
