use super::*;
use proptest::prelude::*;

fn hex(h: u64) -> String {
    format!("{h:016x}")
}

#[test]
fn murmur3_keys_match_boxo() {
    // The reference's examples (spaolacci/murmur3 New64().Sum(nil)).
    assert_eq!(hex(hash(b"hello")), "cbd8a7b341bd9b02");
    assert_eq!(hex(hash(b"mars.txt")), "3e93ed84d2c3e70a");
    assert_eq!(hex(hash(b"470.txt")), "006e88df5847e67c");
}

proptest! {
    #[test]
    fn our_murmur3_equals_the_murmur3_crate(data in proptest::collection::vec(any::<u8>(), 0..70), seed in any::<u32>()) {
        let want = murmur3::murmur3_x64_128(&mut &data[..], seed).unwrap();
        let (h1, h2) = crate::murmur3::x64_128(&data, seed);
        prop_assert_eq!(((h2 as u128) << 64) | h1 as u128, want);
    }
}

#[test]
fn bitfield_is_go_bitfield_bytes() {
    let s = Shard {
        slots: vec![Slot { index: 0x3E, child: Child::Value(0) }, Slot { index: 0x68, child: Child::Value(1) }],
    };
    let mut want = vec![0x01, 0, 0, 0, 0, 0, 0x40];
    want.extend([0; 7]);
    assert_eq!(s.bitfield(256), want);
    assert_eq!(s.bitfield_len(), 14);
    let full = Shard { slots: (0..256).map(|i| Slot { index: i, child: Child::Value(i as usize) }).collect() };
    assert_eq!(full.bitfield(256), vec![0xff; 32]);
    let low = Shard { slots: vec![Slot { index: 3, child: Child::Value(0) }] };
    assert_eq!(low.bitfield(256), vec![0x08]);
    assert_eq!(low.bitfield_len(), 1);
}

#[test]
fn shard_data_bytes() {
    let d = shard_data(&[0x01, 0x40], 256);
    assert_eq!(d, [0x08, 0x05, 0x12, 0x02, 0x01, 0x40, 0x28, 0x22, 0x30, 0x80, 0x02]);
    assert_eq!(d.len(), shard_data_len(2, 256));
    for (bits, fanout) in [(0usize, 8u32), (1, 16), (32, 256), (128, 1024), (200, 1024)] {
        assert_eq!(shard_data(&vec![1; bits], fanout).len(), shard_data_len(bits, fanout));
    }
}

#[test]
fn link_names_are_padded_upper_hex() {
    assert_eq!(link_name(0x0a, 256, b"x.txt"), b"0Ax.txt");
    assert_eq!(link_name(0xff, 256, b""), b"FF");
    assert_eq!(link_name(5, 1024, b"a"), b"005a");
    assert_eq!(link_name(15, 16, b""), b"F");
    assert_eq!(link_name(7, 8, b"q"), b"7q");
    assert_eq!(prefix_len(512), 3);
}

#[test]
fn fanout_must_be_a_power_of_two_from_8_to_1024() {
    for f in [8, 16, 256, 512, 1024] {
        assert_eq!(check_fanout(f), Ok(()));
    }
    for f in [0, 4, 7, 100, 2048] {
        assert_eq!(check_fanout(f), Err(HamtError::BadFanout(f)));
        assert!(Shard::build([&b"a"[..]], f).is_err());
    }
}

/// Every entry sits at its hash bits; each slot holds a value or a shard of ≥ 2 entries.
fn check_structure(shard: &Shard, names: &[Vec<u8>], fanout: u32, level: u32, seen: &mut Vec<usize>) -> usize {
    let bits = fanout.trailing_zeros();
    let mut count = 0;
    assert!(shard.slots.windows(2).all(|w| w[0].index < w[1].index), "slots ascending");
    for s in &shard.slots {
        match &s.child {
            Child::Value(i) => {
                let h = hash(&names[*i]);
                assert_eq!(((h >> (64 - (level + 1) * bits)) & (fanout as u64 - 1)) as u32, s.index);
                seen.push(*i);
                count += 1;
            }
            Child::Shard(sub) => {
                let n = check_structure(sub, names, fanout, level + 1, seen);
                assert!(n >= 2, "a sub-shard holds at least two entries");
                count += n;
            }
        }
    }
    count
}

/// The shard as text: `slot:name` for values, `slot:[ … ]` around sub-shards.
fn flatten(s: &Shard, names: &[Vec<u8>]) -> Vec<String> {
    let mut out = Vec::new();
    for slot in &s.slots {
        match &slot.child {
            Child::Value(i) => out.push(format!("{}:{}", slot.index, String::from_utf8_lossy(&names[*i]))),
            Child::Shard(sub) => {
                out.push(format!("{}:[", slot.index));
                out.extend(flatten(sub, names));
                out.push("]".into());
            }
        }
    }
    out
}

proptest! {
    #[test]
    fn every_name_sits_at_its_hash_path(n in 0usize..600, fanout_bits in 3u32..11) {
        let fanout = 1 << fanout_bits;
        let names: Vec<Vec<u8>> = (0..n).map(|i| format!("file-{i}.txt").into_bytes()).collect();
        let shard = Shard::build(names.iter().map(Vec::as_slice), fanout).unwrap();
        let mut seen = Vec::new();
        prop_assert_eq!(check_structure(&shard, &names, fanout, 0, &mut seen), n);
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
        // A pure function of the set: another input order gives the same shards.
        let reversed: Vec<Vec<u8>> = names.iter().rev().cloned().collect();
        let again = Shard::build(reversed.iter().map(Vec::as_slice), fanout).unwrap();
        prop_assert_eq!(flatten(&shard, &names), flatten(&again, &reversed));
    }
}

#[test]
fn small_fanouts_nest_shards() {
    let names: Vec<Vec<u8>> = (0..200).map(|i| format!("{i}").into_bytes()).collect();
    let shard = Shard::build(names.iter().map(Vec::as_slice), 8).unwrap();
    assert!(shard.slots.iter().all(|s| matches!(s.child, Child::Shard(_))), "200 names in 8 slots");
}

#[test]
fn identical_names_are_too_deep() {
    let err = Shard::build([&b"same"[..], b"same"], 256).unwrap_err();
    assert_eq!(err, HamtError::TooDeep("same".into(), "same".into()));
    assert!(err.to_string().contains("too deep"));
}

#[test]
fn switch_is_strictly_greater_and_skips_empty_folders() {
    // Links: Σ name + CID. 2 × (3 + 34) = 74.
    let links = [(3usize, 34usize, 100u64), (3, 34, 5)];
    assert!(!exceeds(Estimation::Links, 74, links));
    assert!(exceeds(Estimation::Links, 73, links));
    // Block: the basic folder block's length (4 + each link's serialized size).
    let block = crate::dagpb::encoded_len(links.map(|(name, cid, tsize)| (cid, name, tsize)), Some(2)) as u64;
    assert!(!exceeds(Estimation::Block, block, links));
    assert!(exceeds(Estimation::Block, block - 1, links));
    assert!(!exceeds(Estimation::Disabled, 1, links));
    assert!(!exceeds(Estimation::Links, 0, links), "threshold 0 disables (boxo)");
    assert!(!exceeds(Estimation::Block, 1, []), "no AddChild, no switch");
}

#[test]
fn estimation_serde_names() {
    assert_eq!(serde_json::to_string(&Estimation::Block).unwrap(), "\"block\"");
    assert_eq!(serde_json::from_str::<Estimation>("\"links\"").unwrap(), Estimation::Links);
    assert_eq!(Estimation::default(), Estimation::Disabled);
    assert_eq!(Estimation::Links.name(), "links");
}
