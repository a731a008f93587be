use super::*;
use crate::block::RAW;
use crate::car::BlockReader;

fn cid(s: &str) -> Cid {
    s.parse().unwrap()
}

fn blocks_of(car: &[u8]) -> Vec<(Cid, Vec<u8>)> {
    let (_, mut r) = BlockReader::new(car).unwrap();
    std::iter::from_fn(|| r.next_block().unwrap()).collect()
}

/// go-dagaggregator-unixfs v0.1.0 `aggregator_test.go`.
#[test]
fn upstream_vector() {
    let qm = cid("QmQy6xmJhrcC5QLboAcGFcAE1tC8CrwDVkrHdEYJkLscrQ");
    let entries = [
        Entry { root: qm, dag_size: Some(42), node_count: Some(1) },
        Entry::new(cid("bafkqaddgnfwc6nbpon4xg5dfnu")),
        Entry {
            root: cid("bafybeibhbx3y6tnn7q4gpsous6apnobft5jybvroiepdsmvps2lmycjjxu"),
            dag_size: Some(666),
            node_count: Some(666),
        },
        Entry::new(cid("bafkreihjji2ny4zwyh7ubc3bmdb5tj455vi5fhsbwf2uvcw6l75z446qea")),
        Entry::new(cid("bafkreialad2qaplrgjs2x2rs4fycwmwmpmocantoho3doxulmbmlrg6qea")),
        Entry::new(cid("bafkreiarcpog7fgb3cvs4iznh6jcqtxgyyk5rbsmk4dvxuty5tylof6qea")),
    ];
    let agg = aggregate(&entries).unwrap();
    assert_eq!(agg.root.to_string(), "bafybeib62b4ukyzjcj7d2h4mbzjgg7l6qiz3ma4vb4b2bawmcauf5afvua");
    let expected = r#"{"RecordType":"DagAggregatePreamble","Version":1}
{"RecordType":"DagAggregateSummary","EntryCount":4,"EntriesSortedBy":"DagCidV1","Description":"Aggregate of non-related DAGs, produced by github.com/filecoin-project/go-dagaggregator-unixfs"}
{"RecordType":"DagAggregateEntry","DagCidV1":"bafkreialad2qaplrgjs2x2rs4fycwmwmpmocantoho3doxulmbmlrg6qea","PathPrefixes":["baf...ea","baf...6qea"],"PathIndexes":[1,0,0]}
{"RecordType":"DagAggregateEntry","DagCidV1":"bafkreiarcpog7fgb3cvs4iznh6jcqtxgyyk5rbsmk4dvxuty5tylof6qea","PathPrefixes":["baf...ea","baf...6qea"],"PathIndexes":[1,0,1]}
{"RecordType":"DagAggregateEntry","DagCidV1":"bafkreihjji2ny4zwyh7ubc3bmdb5tj455vi5fhsbwf2uvcw6l75z446qea","PathPrefixes":["baf...ea","baf...6qea"],"PathIndexes":[1,0,2]}
{"RecordType":"DagAggregateEntry","DagCidV1":"bafybeibhbx3y6tnn7q4gpsous6apnobft5jybvroiepdsmvps2lmycjjxu","DagCidV0":"QmQy6xmJhrcC5QLboAcGFcAE1tC8CrwDVkrHdEYJkLscrQ","DagSize":42,"NodeCount":1,"PathPrefixes":["baf...xu","baf...jjxu"],"PathIndexes":[2,0,0]}
"#;
    assert_eq!(std::str::from_utf8(agg.manifest_bytes()).unwrap(), expected);
    assert_eq!(parse_manifest(agg.manifest_bytes()).unwrap(), agg.entries());
    assert_eq!(agg.original_roots()[3], qm, "first occurrence is kept");
    // The root's links: manifest first, then the outer buckets.
    let root = dagpb::decode(&agg.root_block().data).unwrap();
    let names: Vec<_> = root.links.iter().map(|l| String::from_utf8(l.name.clone()).unwrap()).collect();
    assert_eq!(names, [MANIFEST_LINK_NAME, "baf...ea", "baf...xu"]);
    assert_eq!(root.links[0].cid, agg.manifest_dag().root);
}

#[test]
fn identity_only_and_empty_are_errors() {
    assert_eq!(aggregate(&[]).unwrap_err(), AggregateError::NoEntries);
    let id = Entry::new(cid("bafkqaddgnfwc6nbpon4xg5dfnu"));
    assert_eq!(aggregate(&[id]).unwrap_err(), AggregateError::NoEntries);
    assert_eq!(AggregateError::NoEntries.to_string(), "no valid entries to aggregate");
}

fn file(data: &[u8]) -> Dag {
    file_dag(data, &Profile::default())
}

fn assemble(dags: &[Dag]) -> (Aggregate, Vec<u8>) {
    let entries: Vec<Entry> = dags.iter().map(|d| Entry::new(d.root)).collect();
    let agg = aggregate(&entries).unwrap();
    let car = write_car_in_memory(&agg, dags).unwrap();
    (agg, car)
}

/// Header + aggregate overhead + one section per (single-block) entry, its root under CIDv1.
fn expected_car_len(agg: &Aggregate, dags: &[Dag]) -> u64 {
    assert!(dags.iter().all(|d| d.blocks.len() == 1));
    let entries: u64 = dags.iter().map(|d| crate::car::section_len(36, d.blocks[0].data.len() as u64)).sum();
    crate::car::header_len(36) + agg.overhead_bytes() + entries
}

/// §10 "Derived": `pow offline prepare --aggregate foo` with foo/a = 100×A, foo/b = 1000×A.
#[test]
fn two_file_folder() {
    let dags = [file(&[b'A'; 100]), file(&[b'A'; 1000])];
    let (agg, car) = assemble(&dags);
    assert_eq!(agg.root.to_string(), "bafybeibpekhkoirl7uhwki5jvgwmongt44ecc7legz2xvj3ss773fmxb44");
    assert_eq!(car.len(), 2694);
    assert_eq!(expected_car_len(&agg, &dags), 2694);
    let root_names: Vec<_> = dagpb::decode(&agg.root_block().data).unwrap().links.into_iter().map(|l| l.name).collect();
    assert_eq!(root_names, [MANIFEST_LINK_NAME.as_bytes(), b"baf...d4", b"baf...pu"]);
    let blocks = blocks_of(&car);
    let names: Vec<String> = blocks.iter().map(|(c, _)| c.to_string()).collect();
    assert_eq!(names.len(), 8);
    assert_eq!(names[0], agg.root.to_string());
    assert_eq!(names[1], "bafkreifhjj42fouqeugwg2kehonxruhxxthuibyjmhcqwqllgvb7kglsc4");
    let e0 = crate::block::to_v1(&dags[0].root).to_string();
    let e1 = crate::block::to_v1(&dags[1].root).to_string();
    let (first, second) = if e0 < e1 { (e0, e1) } else { (e1, e0) };
    assert!(first.ends_with("75d4") && first.starts_with("bafybeia636"));
    assert!(second.ends_with("kypu") && second.starts_with("bafybeierctq"));
    assert_eq!(names[4], first);
    assert_eq!(names[7], second);
    let buckets: Vec<_> = [2, 3, 5, 6]
        .iter()
        .map(|&i| {
            let node = dagpb::decode(&blocks[i].1).unwrap();
            String::from_utf8(node.links[0].name.clone()).unwrap()
        })
        .collect();
    assert_eq!(buckets, ["baf...75d4", first.as_str(), "baf...kypu", second.as_str()]);
    // Entry roots under CIDv1, with the same bytes as their CIDv0 blocks.
    let dag_of = |v1: &str| dags.iter().find(|d| crate::block::to_v1(&d.root).to_string() == v1).unwrap();
    assert_eq!(blocks[4].1, dag_of(&first).blocks[0].data);
    assert_eq!(blocks[7].1, dag_of(&second).blocks[0].data);
    let (root, manifest) = read_manifest_from_car(&car[..]).unwrap();
    assert_eq!(root, agg.root);
    assert_eq!(parse_manifest(&manifest).unwrap(), agg.entries());
    assert!(agg.entries().iter().all(|e| e.dag_cid_v0.is_some() && e.dag_size.is_none()));
}

#[test]
fn duplicates_are_merged() {
    let a = file(b"same bytes");
    let b = file(b"other bytes");
    let entries =
        [Entry::new(a.root), Entry::new(b.root), Entry::new(crate::block::to_v1(&a.root)), Entry::new(a.root)];
    let agg = aggregate(&entries).unwrap();
    assert_eq!(agg.entries().len(), 2);
    let text = String::from_utf8(agg.manifest_bytes().to_vec()).unwrap();
    assert!(text.contains("\"EntryCount\":2,"));
    let car = write_car_in_memory(&agg, &[a.clone(), b]).unwrap();
    // root, manifest, and per entry: outer, inner, entry root.
    assert_eq!(blocks_of(&car).len(), 2 + 2 * 3);
    let b_v1 = agg.entries().iter().find(|e| e.dag_cid_v1 != crate::block::to_v1(&a.root)).unwrap().dag_cid_v1;
    assert_eq!(write_car_in_memory(&agg, &[a]).unwrap_err(), AggregateError::MissingEntryDag(b_v1));
}

fn car_from(header_root: &Cid, blocks: &[(Cid, Vec<u8>)]) -> Vec<u8> {
    let mut out = crate::car::header(header_root);
    for (c, d) in blocks {
        out.extend_from_slice(&crate::car::section_prefix(c, d.len()));
        out.extend_from_slice(d);
    }
    out
}

/// Follows each entry's PathPrefixes/PathIndexes through the blocks of `car`.
fn check_paths(agg: &Aggregate, car: &[u8]) {
    let blocks: HashMap<Cid, Vec<u8>> = blocks_of(car).into_iter().collect();
    let node = |c: &Cid| dagpb::decode(&blocks[c]).unwrap();
    let root = node(&agg.root);
    for e in agg.entries() {
        let [o, i, n] = e.path_indexes.map(|x| x as usize);
        let outer_link = &root.links[o];
        assert_eq!(outer_link.name, e.path_prefixes[0].as_bytes());
        let inner_link = &node(&outer_link.cid).links[i];
        assert_eq!(inner_link.name, e.path_prefixes[1].as_bytes());
        let entry_link = &node(&inner_link.cid).links[n];
        assert_eq!(entry_link.name, e.dag_cid_v1.to_string().as_bytes());
        assert_eq!(entry_link.cid, e.dag_cid_v1);
        assert!(blocks.contains_key(&e.dag_cid_v1));
    }
}

#[test]
fn large_manifest_spans_several_blocks() {
    let dags: Vec<Dag> = (0..2500).map(|i| file(format!("entry number {i}").as_bytes())).collect();
    let (agg, car) = assemble(&dags);
    assert_eq!(agg.entries().len(), 2500);
    assert!(agg.manifest_bytes().len() > 2 * 262_144);
    let manifest = agg.manifest_dag();
    assert_eq!(manifest.blocks.len(), 1 + agg.manifest_bytes().len().div_ceil(262_144));
    assert_eq!(manifest.blocks[0].cid.codec(), DAG_PB);
    assert!(manifest.blocks[1..].iter().all(|b| b.cid.codec() == RAW));
    // 256 outer buckets hold ~10 inner buckets each; of 262144 inner names, a few are shared.
    assert!(agg.entries().iter().filter(|e| e.path_indexes[2] >= 1).count() >= 5);
    assert!(agg.entries().iter().any(|e| e.path_indexes[1] >= 10));
    assert!(agg.entries().iter().any(|e| e.path_indexes[0] == 256));
    check_paths(&agg, &car);

    let (root, bytes) = read_manifest_from_car(&car[..]).unwrap();
    assert_eq!(root, agg.root);
    assert_eq!(bytes, agg.manifest_bytes());
    assert_eq!(parse_manifest(&bytes).unwrap(), agg.entries());

    assert_eq!(expected_car_len(&agg, &dags), car.len() as u64);

    // Missing a manifest leaf.
    let mut blocks = blocks_of(&car);
    blocks.remove(3);
    assert!(matches!(
        read_manifest_from_car(&car_from(&agg.root, &blocks)[..]),
        Err(ReadError::ManifestIncomplete { missing: 1 })
    ));
}

#[test]
fn corrupt_cars_are_errors() {
    let dags = [file(&[b'A'; 100]), file(&[b'A'; 1000])];
    let (agg, car) = assemble(&dags);
    let blocks = blocks_of(&car);

    // A tampered manifest block.
    let mut bad = blocks.clone();
    bad[1].1[10] ^= 1;
    assert!(matches!(read_manifest_from_car(&car_from(&agg.root, &bad)[..]), Err(ReadError::HashMismatch(_))));
    // Only the root.
    assert!(matches!(
        read_manifest_from_car(&car_from(&agg.root, &blocks[..1])[..]),
        Err(ReadError::ManifestIncomplete { missing: 1 })
    ));
    // No root block.
    assert!(matches!(read_manifest_from_car(&car_from(&agg.root, &blocks[1..])[..]), Err(ReadError::RootNotFound(_))));
    // A plain file CAR is not an aggregate.
    let plain = crate::importer::memory::car_bytes(&dags[1]);
    assert!(matches!(read_manifest_from_car(&plain[..]), Err(ReadError::NotAggregate(_))));
    // Not a CAR, truncated CARs.
    assert!(matches!(read_manifest_from_car(&b"nonsense"[..]), Err(ReadError::Car(_))));
    assert!(read_manifest_from_car(&b""[..]).is_err());
    for cut in [10, 70, 100, 200] {
        assert!(read_manifest_from_car(&car[..cut]).is_err(), "accepted a CAR cut at {cut}");
    }
    // No single flipped bit panics; those inside the root or manifest are caught.
    let section = |(c, d): &(Cid, Vec<u8>)| crate::car::section_len(c.encoded_len(), d.len() as u64);
    let manifest_end = crate::car::header_len(36) + blocks[..2].iter().map(section).sum::<u64>();
    for pos in 0..car.len() {
        let mut c = car.clone();
        c[pos] ^= 0x10;
        let result = read_manifest_from_car(&c[..]);
        if (pos as u64) < manifest_end {
            if let Ok((root, bytes)) = result {
                // Flips that survive must not change what is returned.
                assert!(root != agg.root || bytes == agg.manifest_bytes(), "flip at {pos} went unnoticed");
            }
        }
    }
}

/// A manifest of several blocks is read whatever the block order (a CAR written children
/// first, as ipfs-car writes, has the root last), streamed in pieces and entry by entry.
#[test]
fn the_manifest_is_read_in_any_block_order_and_streamed() {
    let dags: Vec<Dag> = (0..2500).map(|i| file(format!("entry number {i}").as_bytes())).collect();
    let (agg, car) = assemble(&dags);
    let mut blocks = blocks_of(&car);
    blocks.reverse();
    let reversed = car_from(&agg.root, &blocks);
    for bytes in [&car, &reversed] {
        let (root, manifest) = read_manifest_from_car(&bytes[..]).unwrap();
        assert_eq!((root, &manifest[..]), (agg.root, agg.manifest_bytes()));
        let mut streamed = Vec::new();
        let info = for_each_manifest_chunk(&bytes[..], |c| {
            assert!(c.len() <= 262_144);
            streamed.extend_from_slice(c);
            Ok::<(), ReadError>(())
        })
        .unwrap();
        assert_eq!(streamed, agg.manifest_bytes());
        use sha2::Digest;
        assert_eq!(info.sha256, <[u8; 32]>::from(sha2::Sha256::digest(agg.manifest_bytes())));
        assert_eq!(info.bytes, agg.manifest_bytes().len() as u64);
        let mut entries = Vec::new();
        let summary = for_each_manifest_entry(&bytes[..], |e| {
            entries.push(e);
            Ok::<(), ReadError>(())
        })
        .unwrap();
        assert_eq!((summary.entries, &entries[..]), (2500, agg.entries()));
    }
}

/// The streaming parser gives what the whole parser gives, however the bytes are cut, and
/// holds at most one line.
#[test]
fn the_streaming_parser_equals_the_whole_parser() {
    let dags: Vec<Dag> = (0..50).map(|i| file(format!("entry {i}").as_bytes())).collect();
    let (agg, _) = assemble(&dags);
    let bytes = agg.manifest_bytes();
    for piece in [1, 7, 100, bytes.len()] {
        let mut p = ManifestParser::new();
        let mut got = Vec::new();
        for c in bytes.chunks(piece) {
            p.feed(c, &mut |r| {
                if let ManifestRecord::Entry(e) = r {
                    got.push(*e);
                }
                Ok::<(), ManifestError>(())
            })
            .unwrap();
        }
        assert_eq!(p.finish().unwrap(), 50);
        assert_eq!(got, agg.entries());
    }
    let mut long = bytes[..bytes.len() - 1].to_vec();
    long.extend(std::iter::repeat_n(b' ', MAX_LINE));
    assert!(parse_manifest(&long).is_err());
    let mut p = ManifestParser::new();
    let r = p.feed(&long, &mut |_| Ok::<(), ManifestError>(()));
    assert!(matches!(r, Err(ManifestError::Invalid { reason, .. }) if reason.contains("longer than")));
}
