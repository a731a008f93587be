//! The streaming importer against the in-memory reference importer and published vectors.

use crate::common;

use carload::block::CidVersion;
use carload::importer::layout::predict_car_size;
use carload::importer::memory::{car_bytes, file_dag};
use carload::importer::scan;
use carload::profile::Profile;
use common::{import, pseudo_random, write_tree};
use proptest::prelude::*;
use std::os::unix::fs::symlink;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn check_file(data: &[u8], profile: &Profile) {
    let dir = tmp();
    let p = dir.path().join("f");
    std::fs::write(&p, data).unwrap();
    let (built, bytes) = import(&p, profile);
    let reference = file_dag(data, profile);
    assert_eq!(built.root, reference.root, "root for {} bytes, {:?}", data.len(), profile);
    assert_eq!(built.tsize, reference.tsize);
    assert_eq!(bytes, car_bytes(&reference), "CAR bytes for {} bytes", data.len());
    let entry = scan(&p, profile).unwrap();
    let predicted = predict_car_size(&entry, profile);
    assert!(predicted >= bytes.len() as u64);
}

#[test]
fn powergate_vectors() {
    for (n, cid, car) in [
        (100, "QmY6zHswPvyZkAyxwM9uup1DDPb67hZqChv8hnyu4MrFWk", 201),
        (1000, "QmQRAjpSLWziADGz8p5ezxTguFNn18yYbSnduKqMrbJ93c", 1104),
        (10000, "QmRP8TCp9bthhzLACAao6mh8cfLypqXncdNbzuPtuqFYP7", 10104),
    ] {
        let dir = tmp();
        let p = dir.path().join("a");
        std::fs::write(&p, vec![b'A'; n]).unwrap();
        let (built, bytes) = import(&p, &Profile::default());
        assert_eq!(built.root.to_string(), cid);
        assert_eq!(bytes.len(), car);
    }
}

#[test]
fn empty_file_and_empty_folder() {
    let dir = tmp();
    let f = dir.path().join("empty");
    std::fs::write(&f, b"").unwrap();
    assert_eq!(import(&f, &Profile::default()).0.root.to_string(), "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH");
    let d = dir.path().join("d");
    std::fs::create_dir(&d).unwrap();
    let (built, bytes) = import(&d, &Profile::default());
    assert_eq!(built.root.to_string(), "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn");
    assert_eq!(bytes.len(), 57 + 1 + 34 + 4);
}

#[test]
fn multi_level_files_match_reference() {
    // size-1 chunks make 174-ary trees cheap: 1, 174, 175 and 174²+1 leaves.
    let p = Profile { chunk_size: 1, ..Profile::default() };
    for n in [1usize, 2, 174, 175, 348, 349, 174 * 174, 174 * 174 + 1] {
        check_file(&pseudo_random(n, n as u64), &p);
    }
}

#[test]
fn default_profile_multi_chunk_files() {
    for n in [262_143usize, 262_144, 262_145, 3 * 262_144 + 17] {
        check_file(&pseudo_random(n, 7), &Profile::default());
    }
}

#[test]
fn cidv1_and_raw_leaves_match_reference() {
    let v1 = Profile { cid_version: CidVersion::V1, raw_leaves: true, chunk_size: 64, ..Profile::default() };
    let v1_pb = Profile { cid_version: CidVersion::V1, raw_leaves: false, chunk_size: 64, ..Profile::default() };
    let v0_raw = Profile { raw_leaves: true, chunk_size: 64, ..Profile::default() };
    for p in [v1, v1_pb, v0_raw] {
        for n in [0usize, 1, 64, 65, 64 * 174, 64 * 174 + 1] {
            check_file(&pseudo_random(n, 3), &p);
        }
    }
}

#[test]
fn repeated_chunks_and_subtrees_are_written_once() {
    // All-zero data: every leaf, and every full level-1 node, repeats.
    let p = Profile { chunk_size: 4, max_links: 3, ..Profile::default() };
    for n in [0usize, 4, 12, 13, 36, 37, 100, 400] {
        check_file(&vec![0u8; n], &p);
    }
    let p =
        Profile { chunk_size: 4, max_links: 3, cid_version: CidVersion::V1, raw_leaves: true, ..Profile::default() };
    check_file(&vec![0u8; 400], &p);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn streaming_equals_reference(len in 0usize..3000, chunk in 1usize..40, links in 2usize..6, seed in 0u64..4, v1 in any::<bool>(), raw in any::<bool>()) {
        let p = Profile { chunk_size: chunk, max_links: links, cid_version: if v1 { CidVersion::V1 } else { CidVersion::V0 }, raw_leaves: raw, ..Profile::default() };
        // seed 0 gives repetitive data, to exercise de-duplication
        let data = if seed == 0 { vec![1u8; len] } else { pseudo_random(len, seed) };
        check_file(&data, &p);
    }

    #[test]
    fn prediction_is_exact_without_repeats(len in 0usize..5000, chunk in 1usize..64, links in 2usize..8) {
        let p = Profile { chunk_size: chunk.max(9), max_links: links, ..Profile::default() };
        let data = pseudo_random(len, len as u64 + 11);
        let dir = tmp();
        let f = dir.path().join("f");
        std::fs::write(&f, &data).unwrap();
        let (_, bytes) = import(&f, &p);
        prop_assert_eq!(predict_car_size(&scan(&f, &p).unwrap(), &p), bytes.len() as u64);
    }
}

#[test]
fn kubo_directory_vectors() {
    let dir = tmp();
    let planets = dir.path().join("planets");
    write_tree(&planets, &[("mars.txt", b"Hello Mars!\n"), ("venus.txt", b"Hello Venus!\n")]);
    let cases = [
        (Profile::default(), "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY"),
        (Profile { raw_leaves: true, ..Profile::default() }, "QmfWfQfKCY5Ukv9peBbxM5vqWM9BzmqUSXvdCgjT2wsiBT"),
        (
            Profile { cid_version: CidVersion::V1, raw_leaves: true, ..Profile::default() },
            "bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi",
        ),
        (
            Profile { cid_version: CidVersion::V1, raw_leaves: false, ..Profile::default() },
            "bafybeif5tuep5ap2d7zyhbktucey75aoacxufgt6i3v4gebmixyipnyp7y",
        ),
    ];
    for (p, want) in cases {
        assert_eq!(import(&planets, &p).0.root.to_string(), want);
    }
    let t = dir.path().join("t");
    write_tree(&t, &[("hey", b"Hey\n"), ("hello/world", b"World\n")]);
    assert_eq!(import(&t, &Profile::default()).0.root.to_string(), "QmZQWnfcqJ6hNkkPvrY9Q5X39GP3jUnUbAV4AbmbbR3Cb1");
}

#[test]
fn symlinks_hidden_entries_and_empty_folders() {
    let dir = tmp();
    // t0044: files/{foo/baz:"some text\n", bar/baz -> "files/foo/baz", bad -> "files/does/not/exist"}
    let files = dir.path().join("files");
    write_tree(&files, &[("foo/baz", b"some text\n")]);
    std::fs::create_dir_all(files.join("bar")).unwrap();
    symlink("files/foo/baz", files.join("bar/baz")).unwrap();
    symlink("files/does/not/exist", files.join("bad")).unwrap();
    assert_eq!(
        import(&files, &Profile::default()).0.root.to_string(),
        "QmWdiHKoeSW8G1u7ATCgpx4yMoUhYaJBQGkyPLkS9goYZ8"
    );
    let v1 = Profile { cid_version: CidVersion::V1, raw_leaves: true, ..Profile::default() };
    assert_eq!(import(&files, &v1).0.root.to_string(), "bafybeibyhlx64cklod6isy3h7tsmr4qvam3ae3b74n3hfes5bythjrwyua");

    // Hidden entries are skipped unless asked for; empty folders are kept.
    let h = dir.path().join("h");
    write_tree(&h, &[("a.txt", b"a\n"), (".secret", b"s\n"), (".dir/x", b"x\n")]);
    std::fs::create_dir_all(h.join("empty")).unwrap();
    std::fs::create_dir_all(h.join("empty2")).unwrap();
    let (plain, plain_bytes) = import(&h, &Profile::default());
    let (hidden, _) = import(&h, &Profile { hidden: true, ..Profile::default() });
    assert_ne!(plain.root, hidden.root);
    // Two identical empty folders: the block is written once.
    let entry = scan(&h, &Profile::default()).unwrap();
    assert_eq!(predict_car_size(&entry, &Profile::default()) - 39, plain_bytes.len() as u64);

    // A top-level symlink is followed.
    symlink(h.join("a.txt"), dir.path().join("link")).unwrap();
    let direct = import(&h.join("a.txt"), &Profile::default()).0.root;
    assert_eq!(import(&dir.path().join("link"), &Profile::default()).0.root, direct);
}

#[test]
fn unicode_and_non_utf8_names_are_raw_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tmp();
    let d = dir.path().join("u");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("żółw 🐢.txt"), b"turtle").unwrap();
    std::fs::write(d.join(std::ffi::OsStr::from_bytes(b"bad\xff\xfename")), b"x").unwrap();
    let (built, bytes) = import(&d, &Profile::default());
    let (_, mut r) = carload::car::BlockReader::new(&bytes[..]).unwrap();
    let (cid, root) = r.next_block().unwrap().unwrap();
    assert_eq!(cid, built.root);
    let node = carload::dagpb::decode(&root).unwrap();
    let names: Vec<Vec<u8>> = node.links.iter().map(|l| l.name.clone()).collect();
    assert_eq!(names, vec![b"bad\xff\xfename".to_vec(), "żółw 🐢.txt".as_bytes().to_vec()]);
}

#[test]
fn a_file_that_changes_size_is_an_error() {
    use carload::importer::{write_car, Entry, ImportError};
    use carload::sink::VecSink;
    let dir = tmp();
    let f = dir.path().join("f");
    std::fs::write(&f, vec![1u8; 1000]).unwrap();
    // Pretend the scan saw a different size: longer (file shrank) and shorter (file grew).
    // The size is checked when the file is opened, and again (or by reading past the end) after.
    for (size, word) in [(2000u64, "it is now 1000 bytes"), (10, "it is now 1000 bytes")] {
        let entry = Entry::File { path: f.clone(), size, expect: None };
        let err =
            write_car(&entry, &Profile::default(), &mut VecSink::default(), &mut carload::event::Ignore).unwrap_err();
        assert!(matches!(err, ImportError::Changed { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("changed while being read") && msg.contains(word), "{msg}");
    }
}

/// Reads a file back out of a CAR produced by the importer: every block verifies, each CID
/// appears once, and the leaves in order are the file's bytes.
fn read_back(car: &[u8]) -> (cid::Cid, Vec<u8>, usize) {
    use carload::block::{verify, RAW};
    use std::collections::HashMap;
    let (header, mut r) = carload::car::BlockReader::new(car).unwrap();
    let mut blocks = HashMap::new();
    let mut count = 0;
    while let Some((cid, data)) = r.next_block().unwrap() {
        assert!(verify(&cid, &data), "block {cid} verifies");
        assert!(blocks.insert(cid, data).is_none(), "each CID once");
        count += 1;
    }
    fn bytes_of(cid: &cid::Cid, blocks: &HashMap<cid::Cid, Vec<u8>>, out: &mut Vec<u8>) {
        let data = &blocks[cid];
        if cid.codec() == RAW {
            out.extend_from_slice(data);
            return;
        }
        let node = carload::dagpb::decode(data).unwrap();
        if node.links.is_empty() {
            let fs = carload::unixfs::decode(node.data.as_deref().unwrap()).unwrap();
            out.extend(fs.data.unwrap_or_default());
        }
        for l in &node.links {
            bytes_of(&l.cid, blocks, out);
        }
    }
    let mut out = Vec::new();
    bytes_of(&header.roots[0], &blocks, &mut out);
    (header.roots[0], out, count)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn car_round_trips(len in 0usize..4000, chunk in 1usize..50, links in 2usize..6, v1 in any::<bool>(), raw in any::<bool>(), repetitive in any::<bool>()) {
        let p = Profile { chunk_size: chunk, max_links: links, cid_version: if v1 { CidVersion::V1 } else { CidVersion::V0 }, raw_leaves: raw, ..Profile::default() };
        let data = if repetitive { vec![5u8; len] } else { pseudo_random(len, len as u64) };
        let dir = tmp();
        let f = dir.path().join("f");
        std::fs::write(&f, &data).unwrap();
        let (built, car) = import(&f, &p);
        let (root, back, count) = read_back(&car);
        prop_assert_eq!(root, built.root);
        prop_assert_eq!(back, data);
        prop_assert_eq!(count as u64, built.blocks);
    }
}

#[test]
fn mapped_files_match_reference() {
    // Files of 1 MiB and more are read through a memory map; smaller ones with read(2).
    check_file(&pseudo_random((1 << 20) - 1, 21), &Profile::default());
    check_file(&pseudo_random(1 << 20, 22), &Profile::default());
    check_file(&pseudo_random(3 * (1 << 20) + 17, 23), &Profile::default());
    check_file(&pseudo_random(1_500_000, 24), &Profile { chunk_size: 1000, ..Profile::default() });
    check_file(&vec![0u8; 5 << 20], &Profile::default());
    let v1 = Profile { cid_version: CidVersion::V1, raw_leaves: true, ..Profile::default() };
    check_file(&pseudo_random(2 << 20, 25), &v1);
}
