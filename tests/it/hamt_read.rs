//! HAMT-sharded folders read back: the reference JS importer's CARs (`tests/vectors/hamt/`, made
//! by `generate.mjs`) and kubo's (`gwc-hamt`) extract to exactly their files and verify, in any
//! block order; shards crafted byte by byte to break each rule are refused by `verify` and
//! `extract` alike, naming the block and the cause, with nothing written.

use assert_cmd::Command;
use carload::block::{Block, CidVersion, DAG_PB, RAW};
use carload::car::BlockReader;
use carload::dagpb::{encode, Link};
use carload::murmur3::hamt_key;
use cid::Cid;
use std::collections::BTreeMap;
use std::path::Path;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");

fn carload() -> Command {
    Command::cargo_bin("carload").unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file (its bytes) and folder (`None`) under `root`, by relative path.
fn restored(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().to_str().unwrap().to_string();
        let t = e.file_type();
        assert!(!t.is_symlink(), "{rel}: a symlink");
        out.insert(rel, (!t.is_dir()).then(|| std::fs::read(e.path()).unwrap()));
    }
    out
}

/// A file holding its path and a newline.
fn text(path: &str) -> (String, Option<Vec<u8>>) {
    (path.to_string(), Some(format!("{path}\n").into_bytes()))
}

/// The tree of `js-hamt-256.car` (see `generate.mjs`).
fn tree_256() -> BTreeMap<String, Option<Vec<u8>>> {
    let mut t: BTreeMap<_, _> = (0..3000).map(|i| text(&format!("f{i}.txt"))).collect();
    t.extend(["hello", "mars.txt", "470.txt", "with space.txt", "çà-ü.txt"].map(text));
    t.insert("big.bin".into(), Some((0..5000).map(|i| (i % 251) as u8).collect()));
    t.insert("nested".into(), None);
    t.extend((0..300).map(|i| text(&format!("nested/n{i}"))));
    t.insert("small".into(), None);
    t.extend(["small/a", "small/b"].map(text));
    t
}

/// The tree of `js-hamt-16.car`, `js-hamt-8.car` and `js-hamt-1024.car`: `n` files of `prefix`.
fn flat(prefix: &str, n: usize) -> BTreeMap<String, Option<Vec<u8>>> {
    (0..n).map(|i| text(&format!("{prefix}{i}"))).collect()
}

/// The sections of a CAR, and its root.
fn sections(car: &[u8]) -> (Cid, Vec<(Cid, Vec<u8>)>) {
    let (header, mut r) = BlockReader::new(car).unwrap();
    let mut blocks = Vec::new();
    while let Some(b) = r.next_block().unwrap() {
        blocks.push(b);
    }
    (header.roots[0], blocks)
}

/// A CARv1 of `blocks` in the order given.
fn car_of(root: &Cid, blocks: &[(Cid, Vec<u8>)]) -> Vec<u8> {
    let mut car = carload::car::header(root);
    for (cid, data) in blocks {
        car.extend(carload::car::section_prefix(cid, data.len()));
        car.extend(data);
    }
    car
}

/// Runs `carload verify` and `carload extract --to out` on `car` written in `dir`.
fn verify_and_extract(dir: &Path, car: &[u8], args: &[&str]) -> (std::process::Output, std::process::Output) {
    std::fs::write(dir.join("t.car"), car).unwrap();
    let verified = carload().current_dir(dir).args(["verify", "t.car"]).output().unwrap();
    let extracted = carload().current_dir(dir).args(["extract", "t.car", "--to", "out"]).args(args).output().unwrap();
    (verified, extracted)
}

/// The reference importer's sharded folders (nested shards, a sharded and a basic subfolder, a
/// file of five chunks; fanout 16 with CIDv0 dag-pb leaves; fanouts 8 and 1024, whose levels are
/// not whole bytes of the key) extract to exactly their files and verify, in the importer's
/// block order (children first) and reversed (root first).
#[test]
fn the_js_importers_sharded_folders_extract_exactly_and_verify() {
    let fixtures = [
        ("js-hamt-256.car", tree_256(), 413),
        ("js-hamt-16.car", flat("g", 400), 156),
        ("js-hamt-8.car", flat("h", 300), 136),
        ("js-hamt-1024.car", flat("k", 1200), 342),
    ];
    let bytes: u64 = fixtures.iter().map(|f| std::fs::metadata(format!("{VECTORS}/hamt/{}", f.0)).unwrap().len()).sum();
    assert!(bytes < 1 << 20, "the fixtures stay small: {bytes} bytes");
    for (name, tree, shards) in fixtures {
        let car = std::fs::read(format!("{VECTORS}/hamt/{name}")).unwrap();
        let (root, mut blocks) = sections(&car);
        for order in ["importer's", "reversed"] {
            if order == "reversed" {
                blocks.reverse();
            }
            let dir = tempfile::tempdir().unwrap();
            let (verified, extracted) = verify_and_extract(dir.path(), &car_of(&root, &blocks), &[]);
            let report = String::from_utf8_lossy(&verified.stdout);
            assert!(verified.status.success(), "{name}, {order} order: verify: {}{report}", stderr(&verified));
            assert!(report.contains(&format!("HAMT shards:   {shards}\n")), "{name}: {report}");
            assert!(extracted.status.success(), "{name}, {order} order: extract: {}", stderr(&extracted));
            let got = restored(&dir.path().join("out"));
            assert_eq!(got.len(), tree.len(), "{name}: entries");
            assert!(got == tree, "{name}, {order} order: the restored tree differs");
        }
    }
}

/// The fixture has what it is meant to test: sub-shards, some two levels below the root.
#[test]
fn the_js_fixture_has_nested_shards() {
    let car = std::fs::read(format!("{VECTORS}/hamt/js-hamt-256.car")).unwrap();
    let (_, blocks) = sections(&car);
    let (mut sub_shard_links, mut deepest) = (0, 0);
    for (cid, data) in &blocks {
        if cid.codec() != DAG_PB {
            continue;
        }
        let node = carload::dagpb::decode(data).unwrap();
        if carload::unixfs::decode(node.data.as_deref().unwrap()).unwrap().kind != 5 {
            continue;
        }
        sub_shard_links += node.links.iter().filter(|l| l.name.len() == 2).count();
        // Two entries of a shard at depth d differ in key byte d (their slots) and share the d
        // bytes above: the bytes all its entries share are its depth at most, and at least when
        // it holds two or more.
        let keys: Vec<[u8; 8]> =
            node.links.iter().filter(|l| l.name.len() > 2).map(|l| hamt_key(&l.name[2..]).to_be_bytes()).collect();
        if keys.len() >= 2 {
            let shared = (0..8).take_while(|&i| keys.iter().all(|k| k[i] == keys[0][i])).count();
            deepest = deepest.max(shared);
        }
    }
    assert!(sub_shard_links > 256, "{sub_shard_links} sub-shard links");
    assert!(deepest >= 2, "no shard two levels down");
}

/// kubo's sharded folder (gateway conformance `gwc-hamt`: 1000 files of one content) extracts
/// with `--allow-reuse` to its 1000 files and verifies; a single entry is found by its path.
#[test]
fn kubos_sharded_folder_extracts_and_verifies() {
    let car = std::fs::read(format!("{VECTORS}/unixfs/gwc-hamt.car")).unwrap();
    let lorem = std::fs::read(format!("{VECTORS}/unixfs/gwc-lorem.txt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (verified, extracted) = verify_and_extract(dir.path(), &car, &["--allow-reuse"]);
    assert!(verified.status.success(), "verify: {}", stderr(&verified));
    assert!(extracted.status.success(), "extract: {}", stderr(&extracted));
    let got = restored(&dir.path().join("out"));
    assert_eq!(got.len(), 1000);
    let names: Vec<String> = got.keys().cloned().collect();
    let mut want: Vec<String> = (1..=1000).map(|i| format!("{i}.txt")).collect();
    want.sort();
    assert_eq!(names, want);
    assert!(got.values().all(|v| v.as_deref() == Some(&lorem[..])));
    // One entry by its path (found through the shards).
    let one = carload().current_dir(dir.path()).args(["extract", "t.car", "470.txt", "--to", "one"]).output().unwrap();
    assert!(one.status.success(), "{}", stderr(&one));
    assert_eq!(std::fs::read(dir.path().join("one/470.txt")).unwrap(), lorem);
    let none =
        carload().current_dir(dir.path()).args(["extract", "t.car", "1001.txt", "--to", "none"]).output().unwrap();
    assert!(!none.status.success() && stderr(&none).contains("no entry \"1001.txt\""), "{}", stderr(&none));
}

// --- Sharded folders crafted byte by byte. ---

/// A shard being laid out: what is in each slot.
#[derive(Clone)]
struct Shard {
    slots: BTreeMap<u32, Child>,
}

#[derive(Clone)]
enum Child {
    /// An entry: its name and node.
    Entry(String, Cid),
    /// A sub-shard laid out below.
    Shard(Shard),
    /// A sub-shard link (named by its slot alone) to any node.
    Link(Cid),
}

const BITS: u32 = 8;

/// The slot of `name` at `depth` (fanout 256: byte `depth` of its key).
fn slot(name: &str, depth: usize) -> u32 {
    u32::from(hamt_key(name.as_bytes()).to_be_bytes()[depth])
}

/// Lays out `entries` as boxo does: one entry in a slot stays, more go to a sub-shard.
fn layout(entries: &[(String, Cid)], depth: usize) -> Shard {
    let mut by_slot: BTreeMap<u32, Vec<(String, Cid)>> = BTreeMap::new();
    for e in entries {
        by_slot.entry(slot(&e.0, depth)).or_default().push(e.clone());
    }
    let slots = by_slot
        .into_iter()
        .map(|(s, es)| {
            let child = if es.len() == 1 {
                Child::Entry(es[0].0.clone(), es[0].1)
            } else {
                Child::Shard(layout(&es, depth + 1))
            };
            (s, child)
        })
        .collect();
    Shard { slots }
}

/// How the root shard's `Data` is written.
#[derive(Clone, Copy)]
struct RootData {
    hash_type: u64,
    fanout: u64,
    /// Moves the bitfield's lowest set bit to the next free slot.
    shift_bit: bool,
}

const GOOD: RootData = RootData { hash_type: 0x22, fanout: 256, shift_bit: false };

/// Encodes `shard` (and its sub-shards into `blocks`); the root's `Data` as `root` says.
fn encode_shard(shard: &Shard, root: Option<RootData>, blocks: &mut Vec<Block>) -> Block {
    let d = root.unwrap_or(GOOD);
    let mut bitfield = [0u8; 32];
    let mut links = Vec::new();
    for (&s, child) in &shard.slots {
        bitfield[31 - s as usize / 8] |= 1 << (s % 8);
        let (name, cid) = match child {
            Child::Entry(name, cid) => (format!("{s:02X}{name}"), *cid),
            Child::Shard(sub) => (format!("{s:02X}"), encode_shard(sub, None, blocks).cid),
            Child::Link(cid) => (format!("{s:02X}"), *cid),
        };
        links.push(Link { cid, name: name.into_bytes(), tsize: 0 });
    }
    if d.shift_bit {
        let low = *shard.slots.keys().next().unwrap();
        bitfield[31 - low as usize / 8] &= !(1 << (low % 8));
        let up = (low + 1..256).find(|s| !shard.slots.contains_key(s)).unwrap();
        bitfield[31 - up as usize / 8] |= 1 << (up % 8);
    }
    let first = bitfield.iter().position(|&b| b != 0).unwrap_or(32);
    let mut data = vec![0x08, 0x05, 0x12, (32 - first) as u8];
    data.extend_from_slice(&bitfield[first..]);
    data.push(0x28);
    carload::varint::write(&mut data, d.hash_type);
    data.push(0x30);
    carload::varint::write(&mut data, d.fanout);
    let block = Block::new(CidVersion::V1, DAG_PB, encode(&links, Some(&data)));
    blocks.push(block.clone());
    block
}

/// A sharded folder of 60 one-line files (fanout 256: some root slots hold sub-shards).
fn files() -> (Vec<(String, Cid)>, Vec<Block>) {
    let leaves: Vec<(String, Block)> = (0..60)
        .map(|i| {
            let name = format!("file{i}");
            let leaf = Block::new(CidVersion::V1, RAW, format!("{name}\n").into_bytes());
            (name, leaf)
        })
        .collect();
    let entries = leaves.iter().map(|(n, b)| (n.clone(), b.cid)).collect();
    (entries, leaves.into_iter().map(|(_, b)| b).collect())
}

/// The CAR of a root shard laid out as `shard` (its `Data` as `root` says) over `leaves`.
fn hamt_car(shard: &Shard, root: RootData, leaves: &[Block]) -> (Vec<u8>, Block, Vec<Block>) {
    let mut blocks = Vec::new();
    let top = encode_shard(shard, Some(root), &mut blocks);
    let subs: Vec<Block> = blocks.iter().filter(|b| b.cid != top.cid).cloned().collect();
    let all: Vec<(Cid, Vec<u8>)> = blocks.iter().chain(leaves).map(|b| (b.cid, b.data.clone())).collect();
    (car_of(&top.cid, &all), top, subs)
}

/// A slot of `shard` holding a sub-shard, and that sub-shard.
fn a_sub_shard(shard: &Shard) -> (u32, Shard) {
    shard
        .slots
        .iter()
        .find_map(|(s, c)| match c {
            Child::Shard(sub) => Some((*s, sub.clone())),
            _ => None,
        })
        .expect("a sub-shard")
}

/// An entry directly in `shard`.
fn an_entry(shard: &Shard) -> (u32, String, Cid) {
    shard
        .slots
        .iter()
        .find_map(|(s, c)| match c {
            Child::Entry(n, cid) => Some((*s, n.clone(), *cid)),
            _ => None,
        })
        .expect("an entry")
}

/// Each broken rule of a sharded folder is refused by `verify` and `extract` alike: one line
/// naming the block and the cause, nothing written.
#[test]
fn crafted_shards_that_break_a_rule_are_refused_by_verify_and_extract() {
    let (entries, leaves) = files();
    let good = layout(&entries, 0);
    // The crafted folder itself is good.
    let dir = tempfile::tempdir().unwrap();
    let (car, _, _) = hamt_car(&good, GOOD, &leaves);
    let (verified, extracted) = verify_and_extract(dir.path(), &car, &[]);
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert!(extracted.status.success(), "{}", stderr(&extracted));
    assert_eq!(restored(&dir.path().join("out")).len(), 60);

    let (sub_slot, sub) = a_sub_shard(&good);
    let (entry_slot, entry_name, entry_cid) = an_entry(&good);
    let free = (0..256).find(|s| !good.slots.contains_key(s)).unwrap();
    // (what, root layout, root data, the guilty block: the root (None) or the sub-shard, cause)
    let mut cases: Vec<(&str, Shard, RootData, bool, String)> = Vec::new();
    cases.push((
        "wrong bitfield",
        good.clone(),
        RootData { shift_bit: true, ..GOOD },
        false,
        "which the shard's bitfield does not set".into(),
    ));
    let mut wrong_slot = good.clone();
    let moved = wrong_slot.slots.remove(&entry_slot).unwrap();
    wrong_slot.slots.insert(free, moved);
    cases.push((
        "name in the wrong slot",
        wrong_slot,
        GOOD,
        false,
        format!("HAMT entry {entry_name:?} is at {free:02X}, but the murmur3 hash of its name"),
    ));
    let mut duplicate = good.clone();
    let mut sub_with = sub.clone();
    let dup_slot = slot(&entry_name, 1);
    assert!(!sub_with.slots.contains_key(&dup_slot), "pick another entry for the test");
    sub_with.slots.insert(dup_slot, Child::Entry(entry_name.clone(), entry_cid));
    duplicate.slots.insert(sub_slot, Child::Shard(sub_with));
    cases.push((
        "duplicate name across shards",
        duplicate,
        GOOD,
        true,
        format!("HAMT entry {entry_name:?} is at {sub_slot:02X}/{dup_slot:02X}"),
    ));
    let mut to_file = good.clone();
    to_file.slots.insert(sub_slot, Child::Link(leaves[0].cid));
    cases.push((
        "sub-shard link to a file",
        to_file,
        GOOD,
        false,
        format!("HAMT sub-shard link {sub_slot:02X} goes to {}, a file", leaves[0].cid),
    ));
    cases.push((
        "bad hash type",
        good.clone(),
        RootData { hash_type: 0x12, ..GOOD },
        false,
        "a HAMT shard with hash type 0x12, not murmur3-x64-64 (0x22)".into(),
    ));
    cases.push((
        "fanout not a power of two",
        good.clone(),
        RootData { fanout: 255, ..GOOD },
        false,
        "a HAMT shard with fanout 255, not a power of two from 8 to 1024".into(),
    ));
    let mut two_places = good.clone();
    two_places.slots.insert(free, Child::Shard(sub.clone()));
    let (low, high) = (sub_slot.min(free), sub_slot.max(free));
    cases.push((
        "one sub-shard in two slots",
        two_places,
        GOOD,
        true,
        format!("a HAMT shard reached at two places (sub-shard {low:02X} and sub-shard {high:02X})"),
    ));
    // (extract, reading the shard at its first slot, may find its entries misplaced there first)
    let misplaced_at_low = format!("is at {low:02X}/");
    // A shard valid alone, of fanout 16 (one hex digit a slot, a 2-byte bitfield).
    let sixteen = {
        let link = Link { cid: leaves[0].cid, name: b"3file0".to_vec(), tsize: 0 };
        let data = [0x08, 0x05, 0x12, 0x01, 0x08, 0x28, 0x22, 0x30, 0x10];
        Block::new(CidVersion::V1, DAG_PB, encode(&[link], Some(&data)))
    };
    let mut other_fanout = good.clone();
    other_fanout.slots.insert(sub_slot, Child::Link(sixteen.cid));
    cases.push((
        "sub-shard of another fanout",
        other_fanout,
        GOOD,
        true,
        "a HAMT sub-shard with fanout 16 under a shard with fanout 256".into(),
    ));
    for (what, shard, data, in_sub, cause) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (mut car, top, subs) = hamt_car(&shard, data, &leaves);
        let guilty = match &shard.slots[&sub_slot] {
            _ if !in_sub => top.cid,
            Child::Shard(s) => encode_shard(s, None, &mut Vec::new()).cid,
            Child::Link(cid) => *cid,
            Child::Entry(..) => unreachable!(),
        };
        assert!(!in_sub || subs.iter().any(|b| b.cid == guilty) || guilty == sixteen.cid);
        if guilty == sixteen.cid {
            car.extend(carload::car::section_prefix(&sixteen.cid, sixteen.data.len()));
            car.extend(&sixteen.data);
        }
        let (verified, extracted) = verify_and_extract(dir.path(), &car, &[]);
        let (v, e) = (stderr(&verified), stderr(&extracted));
        let block = format!("block {guilty}");
        assert!(!verified.status.success(), "{what}: verify passed");
        assert!(
            v.lines().any(|l| l.contains(&block) && l.contains(&cause)),
            "{what}: verify does not say `{block}: …{cause}`:\n{v}"
        );
        assert!(!extracted.status.success(), "{what}: extract passed");
        assert_eq!(e.lines().count(), 1, "{what}: one line: {e}");
        let says = e.contains(&cause) || (what.contains("two slots") && e.contains(&misplaced_at_low));
        assert!(e.contains(&block) && says, "{what}: extract does not say `{block}: …{cause}`: {e}");
        let out = dir.path().join("out");
        assert!(!out.exists() || restored(&out).is_empty(), "{what}: extract wrote {:?}", restored(&out).keys());
    }
}

/// Two sharded folders may share a sub-shard at the same place (folders that differ in a few
/// entries do): it is measured once (its entries count once against the CAR, so the folders
/// need `--allow-reuse` as identical folders do) and written in both. Reached at another place
/// in another folder, or as a folder of its own, it is refused.
#[test]
fn sharded_folders_may_share_a_sub_shard_at_one_place_only() {
    let same = Block::new(CidVersion::V1, RAW, b"same\n".to_vec());
    let s = slot("shared0", 0);
    let shared: Vec<(String, Cid)> =
        (0..).map(|i| format!("shared{i}")).filter(|n| slot(n, 0) == s).take(40).map(|n| (n, same.cid)).collect();
    let sub = layout(&shared, 1);
    let own = |name: &str| {
        let file = Block::new(CidVersion::V1, RAW, format!("{name}\n").into_bytes());
        assert_ne!(slot(name, 0), s);
        (file.clone(), layout(&[(name.to_string(), file.cid)], 0))
    };
    let mut blocks = vec![same.clone()];
    let mut folder = |name: &str, at: u32| {
        let (file, mut shard) = own(name);
        shard.slots.insert(at, Child::Shard(sub.clone()));
        blocks.push(file);
        encode_shard(&shard, Some(GOOD), &mut blocks)
    };
    let elsewhere = (0..256).find(|&t| t != s && t != slot("u1", 0) && t != slot("u3", 0)).unwrap();
    let (r1, r2, r3) = (folder("u1", s), folder("u2", s), folder("u3", elsewhere));
    let sub_cid = encode_shard(&sub, None, &mut Vec::new()).cid;
    let basic = |links: &[(&str, Cid)]| {
        let links: Vec<Link> =
            links.iter().map(|(n, c)| Link { cid: *c, name: n.as_bytes().to_vec(), tsize: 0 }).collect();
        Block::new(CidVersion::V1, DAG_PB, encode(&links, Some(&carload::unixfs::directory())))
    };
    let car_with = |top: &Block| {
        let all: Vec<(Cid, Vec<u8>)> = std::iter::once(top).chain(&blocks).map(|b| (b.cid, b.data.clone())).collect();
        car_of(&top.cid, &all)
    };

    let top = basic(&[("a", r1.cid), ("b", r2.cid)]);
    let dir = tempfile::tempdir().unwrap();
    let (verified, extracted) = verify_and_extract(dir.path(), &car_with(&top), &[]);
    // verify lists every block of the CAR once it is reached; the two folders not reaching r3.
    let v = stderr(&verified);
    assert!(v.contains(&format!("block {}: not reachable", r3.cid)) && !v.contains("HAMT"), "{v}");
    let e = stderr(&extracted);
    // The top folder, a and b, and 41 entries in each; without reuse: 1 + 2 + 1 + 40 + 1.
    assert!(e.contains("would write 85 entries") && e.contains("(45 entries,") && e.contains("--allow-reuse"), "{e}");
    let out = carload()
        .current_dir(dir.path())
        .args(["extract", "t.car", "--to", "again", "--allow-reuse"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let got = restored(&dir.path().join("again"));
    assert_eq!(got.len(), 84);
    for (f, own) in [("a", "u1"), ("b", "u2")] {
        assert_eq!(got[&format!("{f}/{own}")].as_deref(), Some(format!("{own}\n").as_bytes()));
        for (n, _) in &shared {
            assert_eq!(got[&format!("{f}/{n}")].as_deref(), Some(&b"same\n"[..]), "{f}/{n}");
        }
    }

    // The sub-shard at another slot of another folder, or as a folder itself.
    // (verify walks the folders in no set order: either place may be the first)
    let two = format!("block {sub_cid}: a HAMT shard reached at two places (");
    let first = format!("sub-shard {s:02X}");
    for (what, second, place) in
        [("another slot", r3.cid, format!("sub-shard {elsewhere:02X}")), ("a folder", sub_cid, "the root shard".into())]
    {
        let top = basic(&[("a", r1.cid), ("c", second)]);
        let dir = tempfile::tempdir().unwrap();
        let (verified, extracted) = verify_and_extract(dir.path(), &car_with(&top), &["--allow-reuse"]);
        let (v, e) = (stderr(&verified), stderr(&extracted));
        let says = |t: &str| t.lines().any(|l| l.contains(&two) && l.contains(&first) && l.contains(&place));
        assert!(!verified.status.success() && says(&v), "{what}: verify: {v}");
        assert!(!extracted.status.success() && says(&e), "{what}: extract: {e}");
        assert!(e.contains(&format!("(sub-shard {s:02X} and {place}")), "{what}: extract reads `a` first: {e}");
        assert!(!dir.path().join("out").exists() || restored(&dir.path().join("out")).is_empty(), "{what}");
    }
}
