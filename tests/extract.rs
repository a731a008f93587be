//! `carload extract`: round trips of `prepare` over random trees, a shipment's files restored
//! (split parts joined), and hostile CARs that never write outside the target.

mod common;

use assert_cmd::Command;
use carload::block::{Block, CidVersion, DAG_PB, RAW};
use carload::dagpb::{encode, Link};
use common::pseudo_random;
use proptest::prelude::*;
use std::path::Path;

fn carload() -> Command {
    Command::cargo_bin("carload").unwrap()
}

/// Every file (contents), folder and symlink (target) under `root`, by relative path.
fn listing(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        let t = e.file_type();
        let what = if t.is_symlink() {
            format!("-> {}", std::fs::read_link(e.path()).unwrap().display())
        } else if t.is_dir() {
            "dir".into()
        } else {
            format!("{:x?}", &std::fs::read(e.path()).unwrap()[..].iter().map(|b| *b as u64).sum::<u64>())
                + &format!(" {}", std::fs::metadata(e.path()).unwrap().len())
        };
        out.push((rel, what));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// `prepare` then `extract` gives back the same tree: contents, names, symlink targets, and
    /// dot-entries as the profile included them.
    #[test]
    fn prepare_then_extract_round_trips(
        files in proptest::collection::vec(("[a-c]{1,2}(/\\.?[a-c]{1,2}){0,2}", 0usize..300_000), 1..10),
        hidden in any::<bool>(),
        v1 in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        for (i, (rel, size)) in files.iter().enumerate() {
            let p = src.join(rel);
            if p.exists() || p.ancestors().any(|a| a.is_file()) {
                continue;
            }
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, pseudo_random(*size, i as u64)).unwrap();
        }
        std::os::unix::fs::symlink("target/elsewhere", src.join("link")).unwrap();
        std::fs::write(src.join(".dot"), b"hidden file").unwrap();
        let mut prep = carload();
        prep.current_dir(dir.path()).args(["prepare", "src", "out.car", "-q"]);
        if hidden {
            prep.arg("--hidden");
        }
        if v1 {
            prep.args(["--cid-version", "1"]);
        }
        prep.assert().success();
        carload().current_dir(dir.path()).args(["extract", "out.car", "--out", "back"]).assert().success();
        let mut want = listing(&src);
        if !hidden {
            want.retain(|(rel, _)| !rel.split('/').any(|c| c.starts_with('.')));
        }
        prop_assert_eq!(listing(&dir.path().join("back")), want);
    }
}

/// A hostile CAR whose folder links a name `..` (or one with a `/`) cannot write outside the
/// target: extract fails naming it and nothing appears outside.
#[test]
fn hostile_names_never_write_outside_the_target() {
    for name in ["..", "../escape", "a/b", "."] {
        let dir = tempfile::tempdir().unwrap();
        let leaf = Block::new(CidVersion::V1, RAW, b"pwned".to_vec());
        let links = vec![Link { cid: leaf.cid, name: name.as_bytes().to_vec(), tsize: 5 }];
        let root = Block::new(CidVersion::V1, DAG_PB, encode(&links, Some(&carload::unixfs::directory())));
        let mut car = carload::car::header(&root.cid);
        for b in [&root, &leaf] {
            car.extend(carload::car::section_prefix(&b.cid, b.data.len()));
            car.extend(&b.data);
        }
        std::fs::write(dir.path().join("evil.car"), car).unwrap();
        let out = carload().current_dir(dir.path()).args(["extract", "evil.car", "--out", "in/x"]).output().unwrap();
        assert!(!out.status.success(), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("unsafe name"), "{name}: {err}");
        assert!(!dir.path().join("escape").exists() && !dir.path().join("in/escape").exists());
    }
}

/// Extract never replaces a file without `--force`, and restores a shipment's split files.
#[test]
fn shipment_files_are_restored_with_their_parts_joined() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("big.bin"), pseudo_random(1_500_000, 1)).unwrap();
    for i in 0..5 {
        std::fs::write(data.join(format!("sub/f{i}")), pseudo_random(20_000 * (i + 1), i as u64 + 9)).unwrap();
    }
    carload()
        .current_dir(dir.path())
        .args(["plan", "data", "-o", "s.jsonl", "--piece-size", "1MiB", "--min-piece-size", "1MiB", "-q"])
        .assert()
        .success();
    let s = carload::shipment::read_shipment(std::io::BufReader::new(
        std::fs::File::open(dir.path().join("s.jsonl")).unwrap(),
    ))
    .unwrap();
    assert!(s.batches.iter().flat_map(|b| &b.files).any(|f| f.part.is_some()), "big.bin is split");
    carload().current_dir(dir.path()).args(["build", "s.jsonl", "--out", "cars", "-q"]).assert().success();
    carload()
        .current_dir(dir.path())
        .args(["extract", "s.jsonl", "--cars", "cars", "--out", "back"])
        .assert()
        .success();
    assert_eq!(listing(&dir.path().join("back/data")), listing(&data));
    // Again: the files exist now.
    let again = carload()
        .current_dir(dir.path())
        .args(["extract", "s.jsonl", "--cars", "cars", "--out", "back"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists (use --force"));
    carload()
        .current_dir(dir.path())
        .args(["extract", "s.jsonl", "--cars", "cars", "--out", "back", "--force"])
        .assert()
        .success();
}
