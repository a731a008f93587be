//! `--aggregate` batches: Powergate vectors, the manifest, and the streaming build against the
//! in-memory reference.

use crate::common;

use assert_cmd::Command;
use carload::aggregate::{aggregate, parse_manifest, write_car_in_memory, Entry};
use carload::batch::{build, walk};
use carload::event::Ignore;
use carload::importer::memory::file_dag;
use carload::profile::Profile;
use common::{pseudo_random, write_tree};

fn carload() -> Command {
    Command::cargo_bin("carload").unwrap()
}

fn json(c: &mut Command) -> serde_json::Value {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The streaming batch CAR must equal the in-memory reference assembly for the same files.
fn check_against_reference(dir: &std::path::Path, profile: &Profile) -> Vec<u8> {
    let files = walk(dir, profile).unwrap();
    let spool = tempfile::tempdir().unwrap();
    let mut car = Vec::new();
    let built = build(files.as_slice(), profile, spool.path(), &mut car, true, &mut Ignore).unwrap();
    assert_eq!(built.car_size, car.len() as u64);
    let dags: Vec<_> = files
        .iter()
        .map(|f| match &f.entry {
            carload::importer::Entry::File { path, .. } => file_dag(&std::fs::read(path).unwrap(), profile),
            other => panic!("test trees hold files only: {other:?}"),
        })
        .collect();
    let agg = aggregate(&dags.iter().map(|d| Entry::new(d.root)).collect::<Vec<_>>()).unwrap();
    assert_eq!(agg.root, built.root);
    assert_eq!(write_car_in_memory(&agg, &dags).unwrap(), car, "streaming batch CAR == reference");
    assert_eq!(agg.manifest_bytes(), &built.manifest.to_vec().unwrap()[..]);
    car
}

#[test]
fn two_file_folder_vector() {
    let dir = tempfile::tempdir().unwrap();
    let foo = dir.path().join("foo");
    write_tree(&foo, &[("a", &[b'A'; 100]), ("b", &[b'A'; 1000])]);
    let out = dir.path().join("myfoo.car");
    let v = json(carload().current_dir(dir.path()).args(["prepare", "--aggregate", "--json", "./foo/", "myfoo.car"]));
    assert_eq!(v["payload_cid"], "bafybeibpekhkoirl7uhwki5jvgwmongt44ecc7legz2xvj3ss773fmxb44");
    assert_eq!(v["piece_size"], 4096);
    assert_eq!(v["piece_cid"], "baga6ea4seaqksvo5gnjuiexza6jxtzghmw3jgte65wgk4bdrhnqloalyqqepcmq");
    assert_eq!(v["car_size"], 2694);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 2694);
    assert_eq!(
        v["files"],
        serde_json::json!([
            {"name": "foo/a", "Cid": "QmY6zHswPvyZkAyxwM9uup1DDPb67hZqChv8hnyu4MrFWk"},
            {"name": "foo/b", "Cid": "QmQRAjpSLWziADGz8p5ezxTguFNn18yYbSnduKqMrbJ93c"}
        ])
    );
    let manifest = std::fs::read_to_string(dir.path().join("myfoo.car.manifest")).unwrap();
    assert_eq!(
        manifest,
        concat!(
            "{\"RecordType\":\"DagAggregatePreamble\",\"Version\":1}\n",
            "{\"RecordType\":\"DagAggregateSummary\",\"EntryCount\":2,\"EntriesSortedBy\":\"DagCidV1\",\"Description\":\"Aggregate of non-related DAGs, produced by github.com/filecoin-project/go-dagaggregator-unixfs\"}\n",
            "{\"RecordType\":\"DagAggregateEntry\",\"DagCidV1\":\"bafybeia636tm3baq746dtjl7plyzsssc7uqhhe53askwolryr3ejgj75d4\",\"DagCidV0\":\"QmQRAjpSLWziADGz8p5ezxTguFNn18yYbSnduKqMrbJ93c\",\"PathPrefixes\":[\"baf...d4\",\"baf...75d4\"],\"PathIndexes\":[1,0,0]}\n",
            "{\"RecordType\":\"DagAggregateEntry\",\"DagCidV1\":\"bafybeierctqthka2we4w7mzbdzyzkoffnnmy6zb5ktbz2fhbua2a56kypu\",\"DagCidV0\":\"QmY6zHswPvyZkAyxwM9uup1DDPb67hZqChv8hnyu4MrFWk\",\"PathPrefixes\":[\"baf...pu\",\"baf...kypu\"],\"PathIndexes\":[2,0,0]}\n",
        )
    );
    // `carload manifest` reads back what was put in.
    let m = json(carload().args(["manifest", "--json"]).arg(&out));
    assert_eq!(m["payload_cid"], v["payload_cid"]);
    assert_eq!(m["entry_count"], 2);
    assert_eq!(m["entries"][0]["DagCidV0"], "QmQRAjpSLWziADGz8p5ezxTguFNn18yYbSnduKqMrbJ93c");
    check_against_reference(&foo, &Profile::default());
    // `car --aggregate` writes the same CAR and no manifest unless asked.
    let car_out = dir.path().join("c.car");
    carload().args(["car", "--quiet", "--aggregate"]).arg(&foo).arg(&car_out).assert().success();
    assert_eq!(std::fs::read(&car_out).unwrap(), std::fs::read(&out).unwrap());
    assert!(!dir.path().join("c.car.manifest").exists());
}

#[test]
fn duplicates_nested_hidden_and_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("batch");
    write_tree(
        &root,
        &[
            ("a.txt", b"same content\n"),
            ("copy-of-a.txt", b"same content\n"),
            (".hidden", b"hidden files are included in batches\n"),
            ("deep/er/file.bin", &pseudo_random(600_000, 5)),
            ("z/last", b"last\n"),
        ],
    );
    std::os::unix::fs::symlink(root.join("z/last"), root.join("link-to-last")).unwrap();
    let out = dir.path().join("b.car");
    let v = json(carload().args(["prepare", "--aggregate", "--json"]).arg(&root).arg(&out));
    let names: Vec<&str> = v["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    let base = root.to_string_lossy();
    let expect: Vec<String> = [".hidden", "a.txt", "copy-of-a.txt", "deep/er/file.bin", "link-to-last", "z/last"]
        .iter()
        .map(|n| format!("{base}/{n}"))
        .collect();
    assert_eq!(names, expect);
    let files = v["files"].as_array().unwrap();
    assert_eq!(files[1]["Cid"], files[2]["Cid"], "duplicate content, same CID");
    assert_eq!(files[4]["Cid"], files[5]["Cid"], "symlink followed to its target");
    let m = json(carload().args(["manifest", "--json"]).arg(&out));
    assert_eq!(m["entry_count"], 4, "duplicates are one entry");
    let human = carload().args(["prepare", "--aggregate"]).arg(&root).arg(dir.path().join("h.car")).output().unwrap();
    let text = String::from_utf8(human.stdout).unwrap();
    assert!(text.contains("Files:         6 (4 unique, 2 duplicates)"), "{text}");
}

#[test]
fn large_manifest_spans_several_blocks_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("many");
    std::fs::create_dir(&root).unwrap();
    for i in 0..1200 {
        std::fs::write(root.join(format!("f{i:05}")), format!("file number {i}\n")).unwrap();
    }
    let car = check_against_reference(&root, &Profile::default());
    let (_, manifest) = carload::aggregate::read_manifest_from_car(&car[..]).unwrap();
    assert!(manifest.len() > 262_144, "manifest is {} bytes", manifest.len());
    assert_eq!(parse_manifest(&manifest).unwrap().len(), 1200);
}

#[test]
fn streaming_matches_reference_with_other_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("p");
    write_tree(&root, &[("x", &pseudo_random(5000, 1)), ("y", &[7u8; 3000]), ("sub/z", b"zz"), ("sub/zz", b"")]);
    for p in [
        Profile { chunk_size: 100, ..Profile::default() },
        Profile { chunk_size: 64, cid_version: carload::block::CidVersion::V1, raw_leaves: true, ..Profile::default() },
    ] {
        check_against_reference(&root, &p);
    }
}

#[test]
fn bad_batches_fail_up_front_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("empty")).unwrap();
    let run = |args: &[&str]| -> String {
        let out = carload().current_dir(d).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        err
    };
    assert!(run(&["prepare", "--aggregate", "empty", "o.car"]).contains("no files to aggregate"));
    std::fs::write(d.join("file"), b"x").unwrap();
    assert!(run(&["prepare", "--aggregate", "file", "o.car"]).contains("is not a folder"));
    write_tree(&d.join("withbroken"), &[("ok", b"ok")]);
    std::os::unix::fs::symlink("nowhere", d.join("withbroken/dangling")).unwrap();
    assert!(run(&["prepare", "--aggregate", "withbroken", "o.car"]).contains("broken symlink"));
    write_tree(&d.join("good"), &[("ok", b"ok")]);
    let err = run(&["prepare", "--aggregate", "good"]);
    assert!(err.contains("--manifest"), "{err}");
    assert!(!d.join("o.car").exists() && !d.join("o.car.manifest").exists());
    for e in std::fs::read_dir(d).unwrap() {
        assert!(!e.unwrap().file_name().to_string_lossy().ends_with(".partial"));
    }
    // With --manifest, the CAR can go to stdout.
    let out = carload()
        .current_dir(d)
        .args(["prepare", "--aggregate", "--json", "--manifest", "m.ndjson", "good"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.len() > 100);
    assert!(d.join("m.ndjson").exists());
}

#[test]
fn large_files_are_reread_and_match_reference() {
    // Files over 4 MiB skip the spool (hashed, then read again when the CAR is written);
    // include two that share their first chunks, and a duplicate.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("big");
    let shared = pseudo_random(3 << 20, 77);
    let mut a = shared.clone();
    a.extend(pseudo_random(2 << 20, 78));
    let mut b = shared.clone();
    b.extend(pseudo_random(2 << 20, 79));
    write_tree(&root, &[("a.bin", &a), ("b.bin", &b), ("c-copy-of-a.bin", &a), ("small.txt", b"small\n")]);
    check_against_reference(&root, &Profile::default());
    let v1 = Profile { cid_version: carload::block::CidVersion::V1, raw_leaves: true, ..Profile::default() };
    check_against_reference(&root, &v1);
}

#[test]
fn a_large_file_changed_between_passes_is_an_error() {
    use carload::event::{Event, Observer};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("changing");
    write_tree(&root, &[("a.bin", &pseudo_random(5 << 20, 1)), ("b.bin", &pseudo_random(5 << 20, 2))]);
    let files = walk(&root, &Profile::default()).unwrap();
    // When the second file starts, the first has been hashed: rewrite it (same size).
    struct Tamper(std::path::PathBuf);
    impl Observer for Tamper {
        fn event(&mut self, e: Event) {
            if let Event::FileStarted { path, .. } = e {
                if path.ends_with("b.bin") {
                    std::fs::write(&self.0, pseudo_random(5 << 20, 3)).unwrap();
                }
            }
        }
    }
    let spool = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let err =
        build(files.as_slice(), &Profile::default(), spool.path(), &mut out, true, &mut Tamper(root.join("a.bin")))
            .unwrap_err()
            .to_string();
    assert!(err.contains("a.bin") && err.contains("changed between hashing and writing"), "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Files built from a few 64-byte chunks share blocks every way the dedup rules must handle:
    /// a file's leaf equals another file's root (before or after it in CAR order), files repeat,
    /// leaves repeat inside a file. The batch CAR must still equal the reference.
    #[test]
    fn shared_blocks_match_the_reference(
        files in proptest::collection::vec(proptest::collection::vec(0u8..4, 1..6), 1..24),
        raw in proptest::prelude::any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        let contents: Vec<(String, Vec<u8>)> = files
            .iter()
            .enumerate()
            .map(|(i, chunks)| (format!("f{i:02}"), chunks.iter().flat_map(|&c| pseudo_random(64, u64::from(c))).collect()))
            .collect();
        let refs: Vec<(&str, &[u8])> = contents.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        write_tree(&root, &refs);
        let profile = if raw {
            Profile { chunk_size: 64, cid_version: carload::block::CidVersion::V1, raw_leaves: true, ..Profile::default() }
        } else {
            Profile { chunk_size: 64, ..Profile::default() }
        };
        check_against_reference(&root, &profile);
    }
}

/// Small files are built in parallel tasks, each spooled where it takes room, and read back in
/// CAR order ahead of the writer: many folders of files spanning several tasks, groups and
/// read-ahead batches, duplicates across tasks and a large file between them give the
/// reference CAR.
#[test]
fn many_small_files_across_tasks_and_groups_match_reference() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("many");
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for d in 0..10 {
        for f in 0..100 {
            let i = d * 100 + f;
            // Every 97th file repeats an earlier one (in another task), some are empty.
            let data = match i {
                _ if i % 97 == 96 => pseudo_random(20_000, 5),
                _ if i % 250 == 3 => Vec::new(),
                _ => pseudo_random(20_000, i as u64 + 1000),
            };
            files.push((format!("d{d:02}/f{f:03}"), data));
        }
        if d == 4 {
            files.push(("d04/zz-large".into(), pseudo_random(5 << 20, 9)));
        }
    }
    let tree: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    write_tree(&root, &tree);
    check_against_reference(&root, &Profile::default());
}
