//! `verify` on good CARs and on crafted bytes: every attack the module guards against.

use super::*;
use crate::aggregate::{aggregate, write_car_in_memory, Entry, MANIFEST_LINK_NAME, MANIFEST_PROFILE};
use crate::block::{Block, CidVersion, DAG_PB, IDENTITY, RAW};
use crate::car::BlockReader;
use crate::dagpb::{encode, Link};
use crate::importer::memory::{car_bytes, file_dag, Dag};
use crate::profile::Profile;
use crate::unixfs;

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn car_of(data: &[u8]) -> Vec<u8> {
    car_bytes(&file_dag(data, &Profile { chunk_size: 1024, ..Profile::default() }))
}

#[test]
fn a_good_car_passes_and_its_piece_is_the_commp() {
    let data = bytes(10_000, 7);
    let car = car_of(&data);
    let r = verify_car(&car[..]).unwrap();
    assert!(r.ok(), "{:?}", r.problems);
    assert_eq!(r.car_size, car.len() as u64);
    assert_eq!(r.piece, crate::commp::commp_of_reader(&car[..]).unwrap());
    assert!(r.blocks > 10);
}

#[test]
fn corrupt_missing_and_extra_blocks_are_each_named_and_a_duplicate_is_a_warning() {
    let data = bytes(10_000, 13);
    let car = car_of(&data);
    let (h, mut br) = BlockReader::new(&car[..]).unwrap();
    let mut blocks = Vec::new();
    while let Some(b) = br.next_block().unwrap() {
        blocks.push(b);
    }
    let write = |bs: &[(Cid, Vec<u8>)]| {
        let mut out = crate::car::header(&h.roots[0]);
        for (c, d) in bs {
            out.extend(crate::car::section_prefix(c, d.len()));
            out.extend(d);
        }
        out
    };
    // A flipped byte in a leaf.
    let mut bad = blocks.clone();
    let last = bad.len() - 1;
    bad[last].1[0] ^= 1;
    let r = verify_car(&write(&bad)[..]).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("does not hash to its CID")), "{:?}", r.problems);
    assert!(r.problems.iter().any(|p| p.contains("missing")));
    // A missing leaf, a duplicated one, an extra one.
    let mut v = blocks.clone();
    let gone = v.remove(last);
    v.push(blocks[1].clone());
    let stray = crate::block::Block::new(crate::block::CidVersion::V1, RAW, b"stray".to_vec());
    v.push((stray.cid, stray.data.clone()));
    let r = verify_car(&write(&v)[..]).unwrap();
    let text = r.problems.join("\n");
    assert!(text.contains(&format!("block {} (linked from", gone.0)) && text.contains("missing"), "{text}");
    assert!(text.contains(&format!("block {}: not reachable", stray.cid)), "{text}");
    assert_eq!(r.problem_count, 2, "{text}");
    assert_eq!((r.duplicates, r.warning_count), (1, 1));
    assert!(r.warnings[0].contains(&blocks[1].0.to_string()), "{:?}", r.warnings);
}

// --- Tiny writers for crafted CARs. ---

fn raw(data: &[u8]) -> Block {
    Block::new(CidVersion::V1, RAW, data.to_vec())
}

fn node(links: &[Link], data: &[u8]) -> Block {
    Block::new(CidVersion::V0, DAG_PB, encode(links, Some(data)))
}

fn link(cid: Cid, name: &str) -> Link {
    Link { cid, name: name.as_bytes().to_vec(), tsize: 0 }
}

/// A UnixFS file node over `parts` (child, block size) claiming `filesize`.
fn file(parts: &[(Cid, u64)], filesize: u64) -> Block {
    let links: Vec<Link> = parts.iter().map(|(c, _)| link(*c, "")).collect();
    let sizes: Vec<u64> = parts.iter().map(|p| p.1).collect();
    node(&links, &unixfs::file_node_data(filesize, &sizes))
}

/// A UnixFS directory with `entries` in the order given.
fn dir(entries: &[(&str, Cid)]) -> Block {
    let links: Vec<Link> = entries.iter().map(|(n, c)| link(*c, n)).collect();
    node(&links, &unixfs::directory())
}

fn identity(codec: u64, data: &[u8]) -> Cid {
    Cid::new_v1(codec, multihash::Multihash::wrap(IDENTITY, data).unwrap())
}

/// A CAR with `roots` (any number) and `blocks` in the order given.
fn car(roots: &[Cid], blocks: &[&Block]) -> Vec<u8> {
    let mut body = vec![0xa2, 0x65];
    body.extend_from_slice(b"roots");
    body.push(0x80 | roots.len() as u8);
    for r in roots {
        let c = r.to_bytes();
        body.extend_from_slice(&[0xd8, 0x2a, 0x58, c.len() as u8 + 1, 0]);
        body.extend_from_slice(&c);
    }
    body.push(0x67);
    body.extend_from_slice(b"version");
    body.push(0x01);
    let mut out = Vec::new();
    crate::varint::write(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    for b in blocks {
        out.extend_from_slice(&crate::car::section_prefix(&b.cid, b.data.len()));
        out.extend_from_slice(&b.data);
    }
    out
}

fn check(car: &[u8]) -> Report {
    verify_car(car).unwrap()
}

fn text(r: &Report) -> String {
    r.problems.join("\n")
}

// --- Valid CARs that used to be refused. ---

/// ipfs-car writes a folder holding two identical files with the shared leaf twice: CARv1
/// allows it. A repeated section is a warning, counted, not a problem.
#[test]
fn a_repeated_section_is_allowed_and_counted() {
    let leaf = raw(b"same bytes");
    let folder = dir(&[("a.txt", leaf.cid), ("b.txt", leaf.cid)]);
    let r = check(&car(&[folder.cid], &[&folder, &leaf, &leaf]));
    assert!(r.ok(), "{}", text(&r));
    assert_eq!((r.duplicates, r.warning_count), (1, 1));
    assert!(r.warnings[0].contains(&leaf.cid.to_string()), "{:?}", r.warnings);
}

/// An identity CID carries its block: linked, it needs no section; present as a section too, it
/// is reached; its inline bytes must decode as its codec says.
#[test]
fn identity_cids_are_understood() {
    let inline = identity(RAW, b"tiny");
    let big = raw(b"0123456789");
    let f = file(&[(inline, 4), (big.cid, 10)], 14);
    let with_section = Block { cid: inline, data: b"tiny".to_vec() };
    let folder = dir(&[("f", f.cid), ("g", inline)]);
    for blocks in [vec![&folder, &f, &big], vec![&folder, &f, &big, &with_section]] {
        let r = check(&car(&[folder.cid], &blocks));
        assert!(r.ok(), "{}", text(&r));
    }
    // An identity dag-pb link whose bytes are not dag-pb, and one that lies about its size.
    let garbage = identity(DAG_PB, &[0xff, 0x01]);
    let liar = identity(RAW, b"abc");
    let f = file(&[(liar, 5)], 5);
    let folder = dir(&[("bad", garbage), ("f", f.cid)]);
    let r = check(&car(&[folder.cid], &[&folder, &f]));
    let t = text(&r);
    assert!(t.contains(&format!("block {garbage}: not a valid dag-pb node")), "{t}");
    assert!(t.contains(&format!("gives {liar} the block size 5, but it holds 3 bytes")), "{t}");
    assert_eq!(r.problem_count, 2, "{t}");
}

// --- UnixFS semantics, as the reference exporters read them. ---

/// A leaf claiming 1,000,000 bytes over 3 (extract would write the wrong length).
#[test]
fn a_leaf_claiming_more_bytes_than_it_holds_is_a_problem() {
    let mut data = vec![0x08, 0x02, 0x12, 0x03];
    data.extend_from_slice(b"abc");
    data.push(0x18);
    crate::varint::write(&mut data, 1_000_000);
    let leaf = node(&[], &data);
    let t = text(&check(&car(&[leaf.cid], &[&leaf])));
    assert!(t.contains(&format!("block {}: filesize 1000000 but data (3) plus blocksizes make 3", leaf.cid)), "{t}");
}

/// Block sizes that add up to the file size but disagree with the children's real sizes (a
/// raw leaf's length, a dag-pb child's size), whether the parent comes first or last.
#[test]
fn block_sizes_must_equal_the_children_sizes_in_any_block_order() {
    let (a, b) = (raw(b"abc"), raw(b"defg"));
    let inner = file(&[(b.cid, 4)], 4);
    let f = file(&[(a.cid, 3), (inner.cid, 5)], 8);
    for order in [vec![&f, &a, &inner, &b], vec![&b, &inner, &a, &f], vec![&a, &f, &b, &inner]] {
        let r = check(&car(&[f.cid], &order));
        let t = text(&r);
        assert!(
            t.contains(&format!("block {}: gives {} the block size 5, but it holds 4 bytes", f.cid, inner.cid)),
            "{t}"
        );
        assert_eq!(r.problem_count, 1, "{t}");
    }
    // One blocksize per link.
    let f = file(&[(a.cid, 3)], 3);
    let mut two = crate::dagpb::decode(&f.data).unwrap();
    two.links.push(link(b.cid, ""));
    let two = node(&two.links, two.data.as_deref().unwrap());
    let t = text(&check(&car(&[two.cid], &[&two, &a, &b])));
    assert!(t.contains("2 links but 1 blocksizes"), "{t}");
}

/// A file linking to a folder, a symlink with links, an unknown UnixFS type.
#[test]
fn files_link_only_to_file_parts_and_types_are_known() {
    let leaf = raw(b"x");
    let folder = dir(&[("x", leaf.cid)]);
    let f = file(&[(folder.cid, 0)], 0);
    let t = text(&check(&car(&[f.cid], &[&f, &folder, &leaf])));
    assert!(t.contains(&format!("block {}: is a file linking to {}, a directory", f.cid, folder.cid)), "{t}");

    let link_data = unixfs::symlink(b"target");
    let sym = node(&[link(leaf.cid, "")], &link_data);
    let t = text(&check(&car(&[sym.cid], &[&sym, &leaf])));
    assert!(t.contains("a symlink with 1 links"), "{t}");

    let odd = node(&[], &[0x08, 99]);
    let t = text(&check(&car(&[odd.cid], &[&odd])));
    assert!(t.contains("UnixFS type 99 is not a known type"), "{t}");
}

/// Folder entries are named, each name one safe path component, no name twice.
#[test]
fn folder_names_are_present_safe_and_distinct() {
    let leaf = raw(b"x");
    for (names, want) in [
        (vec!["a/b"], "\"a/b\", not one safe path component"),
        (vec![".."], "\"..\", not one safe path component"),
        (vec![""], "\"\", not one safe path component"),
        (vec!["x", "x"], "two links are named \"x\""),
        (vec!["nul\0"], "not one safe path component"),
    ] {
        let entries: Vec<(&str, Cid)> = names.iter().map(|n| (*n, leaf.cid)).collect();
        let folder = dir(&entries);
        let t = text(&check(&car(&[folder.cid], &[&folder, &leaf])));
        assert!(t.contains(want), "{names:?}: {t}");
    }
}

/// A HAMT shard (fanout 256, CIDv1) with links named as given, in name (slot) order: its
/// bitfield sets their slots.
fn shard(links: &[(String, Cid)]) -> Block {
    let mut links = links.to_vec();
    links.sort();
    let mut bitfield = [0u8; 32];
    for (name, _) in &links {
        let slot = u8::from_str_radix(&name[..2], 16).unwrap();
        bitfield[31 - slot as usize / 8] |= 1 << (slot % 8);
    }
    let first = bitfield.iter().position(|&b| b != 0).unwrap_or(32);
    let mut data = vec![0x08, 0x05, 0x12, (32 - first) as u8];
    data.extend_from_slice(&bitfield[first..]);
    data.extend_from_slice(&[0x28, 0x22, 0x30, 0x80, 0x02]);
    let links: Vec<Link> = links.iter().map(|(n, c)| link(*c, n)).collect();
    Block::new(CidVersion::V1, DAG_PB, encode(&links, Some(&data)))
}

/// Byte `level` of a name's HAMT key (its slot at that level for fanout 256).
fn slot(name: &str, level: usize) -> u8 {
    crate::murmur3::hamt_key(name.as_bytes()).to_be_bytes()[level]
}

/// Two names of one root slot (a sub-shard) and one of another.
fn three_names() -> (String, String, String) {
    let names: Vec<String> = (0..1000).map(|i| format!("n{i}")).collect();
    let (a, b) = names
        .iter()
        .enumerate()
        .find_map(|(i, a)| names[i + 1..].iter().find(|b| slot(a, 0) == slot(b, 0)).map(|b| (a.clone(), b.clone())))
        .unwrap();
    let c = names.iter().find(|c| slot(c, 0) != slot(&a, 0)).unwrap().clone();
    (a, b, c)
}

fn entry(name: &str, level: usize, cid: Cid) -> (String, Cid) {
    (format!("{:02X}{name}", slot(name, level)), cid)
}

/// A sharded folder of three files (a root shard, a sub-shard) passes whatever the block order;
/// its shards are counted.
#[test]
fn hamt_folders_pass_in_any_block_order() {
    let (a, b, c) = three_names();
    let leaves: Vec<Block> = [&a, &b, &c].iter().map(|n| raw(n.as_bytes())).collect();
    let sub = shard(&[entry(&a, 1, leaves[0].cid), entry(&b, 1, leaves[1].cid)]);
    let root = shard(&[(format!("{:02X}", slot(&a, 0)), sub.cid), entry(&c, 0, leaves[2].cid)]);
    let orders: [Vec<&Block>; 2] =
        [vec![&root, &sub, &leaves[0], &leaves[1], &leaves[2]], vec![&leaves[2], &leaves[1], &leaves[0], &sub, &root]];
    for blocks in orders {
        let r = check(&car(&[root.cid], &blocks));
        assert!(r.ok(), "{}", text(&r));
        assert_eq!(r.hamt_shards, 2);
    }
    // A missing child of a shard is found.
    let r = check(&car(&[root.cid], &[&root, &sub, &leaves[0], &leaves[1]]));
    assert!(text(&r).contains(&format!("block {} (linked from {}): missing", leaves[2].cid, root.cid)), "{}", text(&r));
}

/// Entries where their key does not put them, a sub-shard that is not a shard or is reached at
/// two places: each a problem naming the block, in either block order.
#[test]
fn hamt_places_are_checked_across_blocks() {
    let (a, b, c) = three_names();
    let leaf = raw(b"x");
    let root_with = |sub: &Block, at: u8, more: &[(String, Cid)]| {
        let mut links = vec![(format!("{at:02X}"), sub.cid)];
        links.extend_from_slice(more);
        shard(&links)
    };
    // The sub-shard's entries are in their level-1 slots, but under the wrong root slot.
    let sub = shard(&[entry(&a, 1, leaf.cid), entry(&b, 1, leaf.cid)]);
    let wrong = slot(&a, 0).wrapping_add(1);
    let root = root_with(&sub, wrong, &[]);
    for blocks in [vec![&root, &sub, &leaf], vec![&leaf, &sub, &root]] {
        let t = text(&check(&car(&[root.cid], &blocks)));
        assert!(t.contains(&format!("block {}: HAMT entry", sub.cid)) && t.contains("(and 1 more misplaced)"), "{t}");
        assert!(t.contains(&format!("is at {wrong:02X}/")), "{t}");
    }
    // The same name in the root and in a sub-shard: the second is misplaced.
    let sub = shard(&[entry(&a, 1, leaf.cid), entry(&c, 1, leaf.cid)]);
    let root = root_with(&sub, slot(&a, 0), &[entry(&c, 0, leaf.cid)]);
    let t = text(&check(&car(&[root.cid], &[&root, &sub, &leaf])));
    assert!(t.contains(&format!("block {}: HAMT entry {c:?}", sub.cid)) && t.contains("repeated"), "{t}");
    // A sub-shard link to a file.
    let root = root_with(&leaf, slot(&a, 0), &[]);
    let t = text(&check(&car(&[root.cid], &[&leaf, &root])));
    assert!(
        t.contains(&format!("block {}: HAMT sub-shard link", root.cid)) && t.contains("a file, not a HAMT shard"),
        "{t}"
    );
    // One sub-shard at two slots.
    let sub = shard(&[entry(&a, 1, leaf.cid), entry(&b, 1, leaf.cid)]);
    let root = shard(&[(format!("{:02X}", slot(&a, 0)), sub.cid), (format!("{wrong:02X}"), sub.cid)]);
    let t = text(&check(&car(&[root.cid], &[&sub, &root, &leaf])));
    assert!(t.contains(&format!("block {}: a HAMT shard reached at two places", sub.cid)), "{t}");
    // A folder's root shard that is also a sub-shard elsewhere.
    let folder = dir(&[("inner", sub.cid)]);
    let root = root_with(&sub, slot(&a, 0), &[]);
    let top = dir(&[("hamt", root.cid), ("also", folder.cid)]);
    let t = text(&check(&car(&[top.cid], &[&top, &folder, &root, &sub, &leaf])));
    assert!(t.contains("reached at two places (") && t.contains("the root shard"), "{t}");
    // A shard that is not valid alone is one problem, its own.
    let mut bad = root.data.clone();
    let at = bad.windows(2).position(|w| w == [0x28, 0x22]).unwrap();
    bad[at + 1] = 0x23;
    let bad = Block::new(CidVersion::V1, DAG_PB, bad);
    let r = check(&car(&[bad.cid], &[&bad, &sub, &leaf]));
    assert_eq!(r.problem_count, 1, "{}", text(&r));
    assert!(text(&r).contains("hash type 0x23, not murmur3-x64-64"), "{}", text(&r));
}

// --- Aggregates: the manifest against the buckets. ---

fn dags(n: usize) -> Vec<Dag> {
    (0..n).map(|i| file_dag(format!("entry {i}").as_bytes(), &Profile::default())).collect()
}

/// The blocks of an aggregate CAR of `dags`, in CAR order, and its root.
fn aggregate_blocks(dags: &[Dag]) -> (Cid, Vec<Block>) {
    let agg = aggregate(&dags.iter().map(|d| Entry::new(d.root)).collect::<Vec<_>>()).unwrap();
    let car = write_car_in_memory(&agg, dags).unwrap();
    let (_, mut r) = BlockReader::new(&car[..]).unwrap();
    let mut blocks = Vec::new();
    while let Some((cid, data)) = r.next_block().unwrap() {
        blocks.push(Block { cid, data });
    }
    (agg.root, blocks)
}

/// The same aggregate with its manifest replaced by `manifest`: a new manifest DAG and root.
fn with_manifest(blocks: &[Block], manifest: &[u8]) -> (Cid, Vec<Block>) {
    let root = crate::dagpb::decode(&blocks[0].data).unwrap();
    let old = root.links[0].cid;
    let new = file_dag(manifest, &MANIFEST_PROFILE);
    let mut links = root.links.clone();
    links[0] = Link { cid: new.root, name: MANIFEST_LINK_NAME.as_bytes().to_vec(), tsize: new.tsize };
    let root = Block::new(CidVersion::V1, DAG_PB, encode(&links, Some(&unixfs::directory())));
    let mut out = vec![root.clone()];
    out.extend(new.blocks);
    // The old manifest is one raw block (small manifests) right after the root.
    assert_eq!(blocks[1].cid, old);
    out.extend(blocks[2..].iter().cloned());
    (root.cid, out)
}

fn car_of_blocks(roots: &[Cid], blocks: &[Block]) -> Vec<u8> {
    car(roots, &blocks.iter().collect::<Vec<_>>())
}

/// A batch CAR verifies in any block order and reports its manifest's length, SHA-256 and
/// entry count (to compare a sidecar with, byte for byte).
#[test]
fn an_aggregate_is_checked_whatever_the_block_order() {
    let (root, mut blocks) = aggregate_blocks(&dags(40));
    let manifest = blocks[1].data.clone();
    for reversed in [false, true] {
        if reversed {
            blocks.reverse();
        }
        let r = check(&car_of_blocks(&[root], &blocks));
        assert!(r.ok(), "reversed {reversed}: {}", text(&r));
        let m = r.manifest.expect("an aggregate");
        use sha2::Digest;
        let sha: [u8; 32] = sha2::Sha256::digest(&manifest).into();
        assert_eq!(m.content, Some((manifest.len() as u64, sha)));
        assert_eq!(m.entries, Some(40));
    }
}

/// Each way a manifest can lie is a problem naming the entry.
#[test]
fn manifest_lies_are_named() {
    use crate::aggregate::{parse_manifest, write_manifest, ManifestEntry};
    let (_, blocks) = aggregate_blocks(&dags(30));
    let honest = parse_manifest(&blocks[1].data).unwrap();
    let (first, second) = (honest[0].dag_cid_v1.to_string(), honest[1].dag_cid_v1.to_string());
    let stranger = crate::block::to_v1(&dags(31).pop().unwrap().root);
    type Lie = fn(&mut Vec<ManifestEntry>, Cid);
    let lies: [(&str, Lie, &str); 7] = [
        (
            "PathIndexes swapped",
            |e, _| {
                let (a, b) = (e[0].path_indexes, e[1].path_indexes);
                (e[0].path_indexes, e[1].path_indexes) = (b, a);
            },
            &first,
        ),
        ("PathPrefixes", |e, _| e[0].path_prefixes[0] = "baf...zz".into(), &first),
        ("DagSize", |e, _| e[0].dag_size = Some(42), &first),
        ("DagCidV0", |e, _| e[0].dag_cid_v0 = None, &first),
        (
            "an omitted entry",
            |e, _| {
                e.remove(1);
            },
            &second,
        ),
        (
            "an entry the DAG does not hold",
            |e, stranger| {
                let mut x = e[0].clone();
                x.dag_cid_v1 = stranger;
                x.dag_cid_v0 = Some(Cid::new_v0(*stranger.hash()).unwrap());
                e.push(x);
                e.sort_by_key(|x| x.dag_cid_v1.to_string());
            },
            "the manifest lists 31 entries, the buckets hold 30",
        ),
        ("PathIndexes past the buckets", |e, _| e[0].path_indexes = [1, 0, 99], &first),
    ];
    for (what, lie, named) in lies {
        let mut entries = honest.clone();
        lie(&mut entries, stranger);
        let (root, blocks) = with_manifest(&blocks, &write_manifest(&entries));
        let r = check(&car_of_blocks(&[root], &blocks));
        let t = text(&r);
        assert!(!r.ok() && t.contains(named), "{what}: {t}");
    }
    // A wrong EntryCount.
    let count = String::from_utf8(write_manifest(&honest)).unwrap().replace("\"EntryCount\":30", "\"EntryCount\":31");
    let (root, lying) = with_manifest(&blocks, count.as_bytes());
    let t = text(&check(&car_of_blocks(&[root], &lying)));
    assert!(t.contains("announces 31 entries but holds 30"), "{t}");
    // Two roots no longer hide a lie.
    let mut entries = honest.clone();
    entries[0].path_prefixes[1] = "baf...zzzz".into();
    let (root, mut lying) = with_manifest(&blocks, &write_manifest(&entries));
    let other = raw(b"another root");
    lying.push(other.clone());
    let t = text(&check(&car_of_blocks(&[root, other.cid], &lying)));
    assert!(t.contains(&format!("manifest entry {first}: PathPrefixes")), "{t}");
    assert!(t.contains("whose CAR has one root"), "{t}");
}

/// A manifest that is not a manifest, in a CAR that is an aggregate, is a problem.
#[test]
fn an_unreadable_manifest_is_a_problem() {
    let (_, blocks) = aggregate_blocks(&dags(3));
    let (root, blocks) = with_manifest(&blocks, b"not a manifest\n");
    let r = check(&car_of_blocks(&[root], &blocks));
    assert!(text(&r).contains("manifest"), "{}", text(&r));
    assert!(!r.ok());
    assert_eq!(r.manifest.map(|m| m.entries), Some(None));
}

/// A 1 GiB manifest made of a few reused nodes (a few hundred KiB of CAR) is refused at once,
/// by `verify` and by the manifest readers alike, without expanding it.
#[test]
fn a_manifest_dag_reusing_nodes_is_refused_without_expanding() {
    let leaf = raw(&[b'x'; 64]);
    let mut level = (leaf.cid, 64u64);
    let mut blocks = vec![leaf];
    for _ in 0..3 {
        let f = file(&vec![level; 4096], level.1 * 4096);
        let f = Block::new(CidVersion::V1, DAG_PB, f.data);
        level = (f.cid, level.1 * 4096);
        blocks.push(f);
    }
    let root_links = vec![Link { cid: level.0, name: MANIFEST_LINK_NAME.as_bytes().to_vec(), tsize: 1 }];
    let root = Block::new(CidVersion::V1, DAG_PB, encode(&root_links, Some(&unixfs::directory())));
    blocks.push(root.clone());
    blocks.reverse();
    let bytes = car_of_blocks(&[root.cid], &blocks);
    let start = std::time::Instant::now();
    let r = check(&bytes);
    assert!(text(&r).contains("used twice in the manifest DAG"), "{}", text(&r));
    assert!(crate::aggregate::read_manifest_from_car(&bytes[..]).is_err());
    let mut seen = 0u64;
    let read = crate::aggregate::for_each_manifest_chunk(&bytes[..], |c| {
        seen += c.len() as u64;
        Ok::<(), crate::aggregate::ReadError>(())
    });
    assert!(read.is_err() && seen <= 64, "{seen} bytes handed out");
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
}

/// 100,000 blocks in one CAR: checked in one pass (a cheap stand-in for the bench's millions).
#[test]
fn many_small_blocks() {
    let leaves: Vec<Block> = (0..100_000u32).map(|i| raw(&i.to_le_bytes())).collect();
    let mut parents = Vec::new();
    for group in leaves.chunks(1000) {
        let parts: Vec<(Cid, u64)> = group.iter().map(|b| (b.cid, 4)).collect();
        parents.push(file(&parts, 4000));
    }
    let parts: Vec<(Cid, u64)> = parents.iter().map(|b| (b.cid, 4000)).collect();
    let top = file(&parts, 400_000);
    let mut all: Vec<&Block> = vec![&top];
    all.extend(parents.iter());
    all.extend(leaves.iter());
    let r = check(&car(&[top.cid], &all));
    assert!(r.ok(), "{}", text(&r));
    assert_eq!(r.blocks, 100_101);
}

/// An entry hidden in buckets that are identity CIDs (no section of their own) is still an
/// entry of the DAG: a manifest that omits it is caught.
#[test]
fn entries_in_identity_buckets_are_counted() {
    let (_, blocks) = aggregate_blocks(&dags(5));
    let entry = identity(RAW, b"z");
    let name = entry.to_string();
    let inner_bytes = encode(&[link(entry, &name)], Some(&unixfs::directory()));
    let inner = identity(DAG_PB, &inner_bytes);
    let outer = Block::new(
        CidVersion::V1,
        DAG_PB,
        encode(&[link(inner, &crate::aggregate::bucket_name(&name, 4))], Some(&unixfs::directory())),
    );
    let mut root = crate::dagpb::decode(&blocks[0].data).unwrap();
    root.links.push(link(outer.cid, &crate::aggregate::bucket_name(&name, 2)));
    let root = Block::new(CidVersion::V1, DAG_PB, encode(&root.links, root.data.as_deref()));
    let mut all = vec![root.clone()];
    all.extend(blocks[1..].iter().cloned());
    all.push(outer);
    let r = check(&car_of_blocks(&[root.cid], &all));
    let t = text(&r);
    assert!(t.contains("the manifest lists 5 entries, the buckets hold 6"), "{t}");
    assert!(t.contains(&format!("DAG entry {name} at [")), "{t}");
}
