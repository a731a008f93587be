//! `carload extract`: round trips of `prepare` over random trees, a shipment's files restored
//! (split parts joined), and hostile CARs that never write outside the target.

use crate::common;

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
        // Identical folders or files (which random trees produce) need --allow-reuse by design;
        // the refusal has its own tests (`identical_files_need_allow_reuse`). This one checks
        // the bytes that come back.
        carload().current_dir(dir.path()).args(["extract", "out.car", "--to", "back", "--allow-reuse"]).assert().success();
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
        let out = carload().current_dir(dir.path()).args(["extract", "evil.car", "--to", "in/x"]).output().unwrap();
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
    carload().current_dir(dir.path()).args(["extract", "s.jsonl", "--cars", "cars", "--to", "back"]).assert().success();
    assert_eq!(listing(&dir.path().join("back/data")), listing(&data));
    // Again: the files exist now.
    let again = carload()
        .current_dir(dir.path())
        .args(["extract", "s.jsonl", "--cars", "cars", "--to", "back"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists (use --force"));
    carload()
        .current_dir(dir.path())
        .args(["extract", "s.jsonl", "--cars", "cars", "--to", "back", "--force"])
        .assert()
        .success();
    // `--out` still restores for one release, with a warning naming its replacement.
    let old = carload()
        .current_dir(dir.path())
        .args(["extract", "s.jsonl", "--cars", "cars", "--out", "old"])
        .output()
        .unwrap();
    assert!(old.status.success(), "{}", String::from_utf8_lossy(&old.stderr));
    assert_eq!(
        String::from_utf8_lossy(&old.stderr),
        "warning: `extract --out DIR` is deprecated, use `--to DIR` (in the other shipment commands --out is the CAR folder)\n"
    );
    assert_eq!(listing(&dir.path().join("old/data")), listing(&data));
    // One target: both spellings together, or neither, is a usage error.
    for args in [&["--to", "a", "--out", "b"][..], &[]] {
        let out = carload()
            .current_dir(dir.path())
            .args(["extract", "s.jsonl", "--cars", "cars"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

/// Crafted UnixFS DAGs and CARs: a tiny writer for hostile inputs.
mod craft {
    use carload::block::{Block, CidVersion, DAG_PB, RAW};
    use carload::dagpb::{encode, Link};
    use cid::Cid;

    /// A UnixFS `Data` message with any fields, lies included.
    pub fn unixfs(kind: u64, data: Option<&[u8]>, filesize: Option<u64>, blocksizes: &[u64]) -> Vec<u8> {
        let mut out = vec![0x08];
        carload::varint::write(&mut out, kind);
        if let Some(d) = data {
            out.push(0x12);
            carload::varint::write(&mut out, d.len() as u64);
            out.extend_from_slice(d);
        }
        if let Some(s) = filesize {
            out.push(0x18);
            carload::varint::write(&mut out, s);
        }
        for &b in blocksizes {
            out.push(0x20);
            carload::varint::write(&mut out, b);
        }
        out
    }

    /// A dag-pb node (CIDv1) with links in the order given (duplicates allowed).
    pub fn pb(links: &[(&str, Cid)], data: Vec<u8>) -> Block {
        let links: Vec<Link> =
            links.iter().map(|(n, c)| Link { cid: *c, name: n.as_bytes().to_vec(), tsize: 0 }).collect();
        Block::new(CidVersion::V1, DAG_PB, encode(&links, Some(&data)))
    }

    /// A basic folder.
    pub fn dir(entries: &[(&str, &Block)]) -> Block {
        let links: Vec<(&str, Cid)> = entries.iter().map(|(n, b)| (*n, b.cid)).collect();
        pb(&links, carload::unixfs::directory())
    }

    /// A raw leaf.
    pub fn raw(data: &[u8]) -> Block {
        Block::new(CidVersion::V1, RAW, data.to_vec())
    }

    /// A symlink node.
    pub fn symlink(target: &str) -> Block {
        pb(&[], carload::unixfs::symlink(target.as_bytes()))
    }

    /// A file node with links and the `Data` given.
    pub fn file(children: &[&Block], data: Vec<u8>) -> Block {
        let links: Vec<(&str, Cid)> = children.iter().map(|b| ("", b.cid)).collect();
        pb(&links, data)
    }

    /// A CARv1 of `blocks` with root `root`.
    pub fn car(root: &Cid, blocks: &[&Block]) -> Vec<u8> {
        let mut car = carload::car::header(root);
        for b in blocks {
            car.extend(carload::car::section_prefix(&b.cid, b.data.len()));
            car.extend(&b.data);
        }
        car
    }
}

/// Writes `car` as `evil.car` in `dir` and runs `carload extract evil.car --to out` with `args`.
fn extract_crafted(dir: &Path, car: &[u8], args: &[&str]) -> std::process::Output {
    std::fs::write(dir.join("evil.car"), car).unwrap();
    carload()
        .current_dir(dir)
        .args(["extract", "evil.car", "--to", "out"])
        .args(args)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every path under `root` (relative), including hidden temporaries.
fn all_paths(root: &Path) -> Vec<String> {
    if !root.exists() {
        return Vec::new();
    }
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap().path().strip_prefix(root).unwrap().display().to_string())
        .collect()
}

/// A folder holding a symlink `x` to a victim folder and, later, a folder also named `x` (or a
/// second link of that name): extract refuses the duplicate name and never writes through the
/// link, with or without `--force`.
#[test]
fn a_symlink_and_a_folder_of_the_same_name_never_write_through() {
    for force in [false, true] {
        for second_is_folder in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let victim = dir.path().join("victim");
            std::fs::create_dir(&victim).unwrap();
            let link = craft::symlink(victim.to_str().unwrap());
            let pwned = craft::raw(b"pwned");
            let inner = craft::dir(&[("pwned", &pwned)]);
            let second = if second_is_folder { &inner } else { &pwned };
            let a = craft::dir(&[("x", &link), ("x", second)]);
            let root = craft::dir(&[("a", &a)]);
            let car = craft::car(&root.cid, &[&root, &a, &link, &inner, &pwned]);
            let out = extract_crafted(dir.path(), &car, if force { &["--force"] } else { &[] });
            assert!(!out.status.success(), "force={force}");
            assert!(stderr(&out).contains("duplicate name"), "{}", stderr(&out));
            assert!(all_paths(&victim).is_empty(), "wrote through the link: {:?}", all_paths(&victim));
            assert!(
                all_paths(&dir.path().join("out")).is_empty(),
                "nothing is written: {:?}",
                all_paths(&dir.path().join("out"))
            );
        }
    }
}

/// A symlink already in `--to` where the DAG has a folder: `--force` never writes through it.
#[test]
fn a_symlink_already_in_out_is_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("out/x")).unwrap();
    let pwned = craft::raw(b"pwned");
    let x = craft::dir(&[("pwned", &pwned)]);
    let root = craft::dir(&[("x", &x)]);
    let car = craft::car(&root.cid, &[&root, &x, &pwned]);
    let out = extract_crafted(dir.path(), &car, &["--force"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert!(all_paths(&victim).is_empty(), "wrote through the link");
    // A file where a symlink stands replaces the link (with --force), never its target.
    std::fs::write(victim.join("f"), b"victim").unwrap();
    std::os::unix::fs::symlink(victim.join("f"), dir.path().join("out/f")).unwrap();
    let f = craft::raw(b"new");
    let root = craft::dir(&[("f", &f)]);
    let car = craft::car(&root.cid, &[&root, &f]);
    let out = extract_crafted(dir.path(), &car, &["--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(victim.join("f")).unwrap(), b"victim");
    assert_eq!(std::fs::read(dir.path().join("out/f")).unwrap(), b"new");
    assert!(!dir.path().join("out/f").is_symlink());
}

/// Plans and builds a shipment of `data` (a 1.5 MB file split over 1 MiB batches and small files).
fn built_shipment(dir: &Path) {
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("big.bin"), pseudo_random(1_500_000, 1)).unwrap();
    for i in 0..5 {
        std::fs::write(data.join(format!("sub/f{i}")), pseudo_random(20_000 * (i + 1), i as u64 + 9)).unwrap();
    }
    carload()
        .current_dir(dir)
        .args(["plan", "data", "-o", "s.jsonl", "--piece-size", "1MiB", "--min-piece-size", "1MiB", "-q"])
        .assert()
        .success();
    carload().current_dir(dir).args(["build", "s.jsonl", "--out", "cars", "-q"]).assert().success();
}

/// The shipment form with a symlink in `--to` (no `--force`): refused, nothing written through.
#[test]
fn shipment_extract_never_writes_through_a_symlink_in_out() {
    let dir = tempfile::tempdir().unwrap();
    built_shipment(dir.path());
    let victim = dir.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::create_dir_all(dir.path().join("back")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("back/data")).unwrap();
    let out = carload()
        .current_dir(dir.path())
        .args(["extract", "s.jsonl", "--cars", "cars", "--to", "back"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert!(all_paths(&victim).is_empty(), "wrote through the link: {:?}", all_paths(&victim));
}

/// A shipment whose batch holding a part of a split file is not built restores the other
/// files, never the split file under its name (nor a temporary), and says what is missing.
#[test]
fn shipment_split_file_with_a_missing_part_is_not_left_truncated() {
    let dir = tempfile::tempdir().unwrap();
    built_shipment(dir.path());
    let s = carload::shipment::read_shipment(std::io::BufReader::new(
        std::fs::File::open(dir.path().join("s.jsonl")).unwrap(),
    ))
    .unwrap();
    // The last batch holding a part of big.bin is made "not built".
    let b = s.batches.iter().rev().find(|b| b.files.iter().any(|f| f.part.is_some())).unwrap();
    std::fs::remove_file(dir.path().join(format!("cars/{}.json", b.id))).unwrap();
    let out = carload()
        .current_dir(dir.path())
        .args(["extract", "s.jsonl", "--cars", "cars", "--to", "back"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not built"), "{}", stderr(&out));
    let left = all_paths(&dir.path().join("back/data"));
    assert!(!left.iter().any(|p| p.contains("big.bin") || p.contains("partial")), "{left:?}");
}

/// A file whose second leaf is missing or corrupt, or that an I/O error (the file-size limit,
/// as a full disk) cuts short: no file under its name, no temporary left, and with `--force`
/// the existing file is kept.
#[test]
fn a_failed_file_leaves_no_truncated_file() {
    let a = craft::raw(&[7u8; 4000]);
    let b = craft::raw(&[8u8; 4000]);
    let f = craft::file(&[&a, &b], craft::unixfs(2, None, Some(8000), &[4000, 4000]));
    let root = craft::dir(&[("f", &f)]);
    let missing = craft::car(&root.cid, &[&root, &f, &a]);
    let mut corrupt = craft::car(&root.cid, &[&root, &f, &a, &b]);
    let n = corrupt.len();
    corrupt[n - 1] ^= 1;
    for (what, car) in [("missing", &missing), ("corrupt", &corrupt)] {
        for force in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            if force {
                std::fs::create_dir(dir.path().join("out")).unwrap();
                std::fs::write(dir.path().join("out/f"), b"old").unwrap();
            }
            let out = extract_crafted(dir.path(), car, if force { &["--force"] } else { &[] });
            assert!(!out.status.success(), "{what}");
            assert!(stderr(&out).contains(&b.cid.to_string()), "{what}: {}", stderr(&out));
            if force {
                assert_eq!(all_paths(&dir.path().join("out")), ["f"], "{what}");
                assert_eq!(std::fs::read(dir.path().join("out/f")).unwrap(), b"old", "{what}");
            } else {
                assert!(
                    all_paths(&dir.path().join("out")).is_empty(),
                    "{what}: {:?}",
                    all_paths(&dir.path().join("out"))
                );
            }
        }
    }
    // An I/O error while writing: the file-size limit turns writes past 5000 bytes into EFBIG.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("evil.car"), craft::car(&root.cid, &[&root, &f, &a, &b])).unwrap();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("carload"));
    cmd.current_dir(dir.path()).args(["extract", "evil.car", "--to", "out"]);
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit and signal are async-signal-safe; SIGXFSZ ignored makes writes fail
    // with EFBIG instead of killing the process (ignored signals stay ignored across exec).
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit { rlim_cur: 5000, rlim_max: 5000 };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("File too large"), "{}", stderr(&out));
    assert!(all_paths(&dir.path().join("out")).is_empty(), "{:?}", all_paths(&dir.path().join("out")));
}

/// UnixFS nodes that lie about their sizes, types or links: extract fails naming the block (as
/// the reference exporter does) and leaves no file under its name.
#[test]
fn unixfs_nodes_that_lie_are_refused() {
    let three = craft::raw(b"abc");
    let five = craft::raw(b"abcde");
    let folder = craft::dir(&[("x", &three)]);
    let weird = craft::pb(&[], craft::unixfs(99, Some(b"abc"), Some(3), &[]));
    // A dag-pb leaf too large to be read before writing: checked as it is written.
    let big = craft::pb(&[], craft::unixfs(2, Some(&[1u8; 20_001]), Some(20_001), &[]));
    // (what, the lying node, blocks under it, words the error must hold)
    let lies: Vec<(&str, carload::block::Block, Vec<&carload::block::Block>, &str)> = vec![
        (
            "leaf claims 1,000,000 bytes over 3",
            craft::pb(&[], craft::unixfs(2, Some(b"abc"), Some(1_000_000), &[])),
            vec![],
            "filesize",
        ),
        (
            "type 0 leaf claims 1,000,000 bytes over 3",
            craft::pb(&[], craft::unixfs(0, Some(b"abc"), Some(1_000_000), &[])),
            vec![],
            "filesize",
        ),
        (
            "blocksizes disagree with a child",
            craft::file(&[&three, &five], craft::unixfs(2, None, Some(6), &[3, 3])),
            vec![&three, &five],
            "blocksize",
        ),
        (
            "fewer blocksizes than links",
            craft::file(&[&three, &three], craft::unixfs(2, None, Some(3), &[3])),
            vec![&three],
            "blocksizes",
        ),
        (
            "type 0 node with links and no blocksizes",
            craft::file(&[&three], craft::unixfs(0, None, None, &[])),
            vec![&three],
            "blocksizes",
        ),
        (
            "a large leaf disagrees with its blocksize",
            craft::file(&[&three, &big], craft::unixfs(2, None, Some(20_003), &[3, 20_000])),
            vec![&three, &big],
            "blocksize",
        ),
        (
            "file links to a folder",
            craft::file(&[&folder], craft::unixfs(2, None, Some(3), &[3])),
            vec![&folder, &three],
            "folder",
        ),
        (
            "file links to type 99",
            craft::file(&[&weird], craft::unixfs(2, None, Some(3), &[3])),
            vec![&weird],
            "type 99",
        ),
        ("type 99 entry", weird.clone(), vec![], "type 99"),
        ("symlink with links", craft::pb(&[("", three.cid)], carload::unixfs::symlink(b"t")), vec![&three], "symlink"),
        (
            "HAMT folder",
            craft::pb(&[("00x", three.cid)], craft::unixfs(5, Some(&[0u8; 32]), None, &[])),
            vec![&three],
            "HAMT",
        ),
    ];
    for (what, node, under, words) in lies {
        let dir = tempfile::tempdir().unwrap();
        let good = craft::raw(b"good");
        // `a` (a good file) comes first.
        let root = craft::dir(&[("a", &good), ("f", &node)]);
        let mut blocks = vec![&root, &good, &node];
        blocks.extend(under);
        let out = extract_crafted(dir.path(), &craft::car(&root.cid, &blocks), &[]);
        assert!(!out.status.success(), "{what}: exit 0; wrote {:?}", all_paths(&dir.path().join("out")));
        let err = stderr(&out);
        assert!(err.contains(words), "{what}: {err}");
        assert!(err.lines().count() == 1, "{what}: one line: {err}");
        let written = all_paths(&dir.path().join("out"));
        assert!(!written.iter().any(|p| p.starts_with('f') || p.contains("partial")), "{what}: {written:?}");
        // Only a leaf too large to be read before writing is found while writing; every other
        // lie is found before the first file is written.
        if !what.starts_with("a large leaf") {
            assert!(written.is_empty(), "{what}: {written:?}");
        }
    }
}

/// A DAG reusing one folder node 4096 times at each of three levels (4096³ entries from a
/// 600 KB CAR) is refused at once, before anything is written, naming `--allow-reuse`; with the
/// flag it is still refused, for the space and inodes it would need.
#[test]
fn a_dag_that_reuses_folders_without_limit_is_refused_quickly() {
    let empty = craft::raw(b"");
    let names: Vec<String> = (0..4096).map(|i| format!("{i:04}")).collect();
    let level = |child: &carload::block::Block| {
        let entries: Vec<(&str, &carload::block::Block)> = names.iter().map(|n| (n.as_str(), child)).collect();
        craft::dir(&entries)
    };
    let c = level(&empty);
    let b = level(&c);
    let a = level(&b);
    let car = craft::car(&a.cid, &[&a, &b, &c, &empty]);
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = extract_crafted(dir.path(), &car, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let entries = 1 + 4096 + 4096u64.pow(2) + 4096u64.pow(3);
    assert!(err.contains(&format!("{entries} entries")) && err.contains("--allow-reuse"), "{err}");
    assert!(all_paths(&dir.path().join("out")).is_empty());
    let out = extract_crafted(dir.path(), &car, &["--allow-reuse"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("free"), "{}", stderr(&out));
    assert!(all_paths(&dir.path().join("out")).is_empty());
    assert!(started.elapsed().as_secs() < 30, "took {:?}", started.elapsed());
}

/// Identical files expand a DAG beyond its CAR (legitimately): refused without `--allow-reuse`,
/// restored with it.
#[test]
fn identical_files_need_allow_reuse() {
    let same = craft::raw(&[5u8; 3000]);
    let root = craft::dir(&[("one", &same), ("two", &same)]);
    let car = craft::car(&root.cid, &[&root, &same]);
    let dir = tempfile::tempdir().unwrap();
    let out = extract_crafted(dir.path(), &car, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("6000 bytes") && err.contains("identical files") && err.contains("--allow-reuse"), "{err}");
    let out = extract_crafted(dir.path(), &car, &["--allow-reuse"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.path().join("out/two")).unwrap(), [5u8; 3000]);
    // Many empty files share one CID: no reuse flag needed.
    let empty = craft::raw(b"");
    let names: Vec<String> = (0..100).map(|i| format!("e{i:03}")).collect();
    let entries: Vec<(&str, &carload::block::Block)> = names.iter().map(|n| (n.as_str(), &empty)).collect();
    let root = craft::dir(&entries);
    let dir = tempfile::tempdir().unwrap();
    let out = extract_crafted(dir.path(), &craft::car(&root.cid, &[&root, &empty]), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(all_paths(&dir.path().join("out")).len(), 100);
}

/// A block is found by its multihash whatever the CID version that names it, and identity CIDs
/// are inline blocks (never looked up in the CAR).
#[test]
fn cid_versions_and_identity_cids_find_their_blocks() {
    use carload::block::{Block, CidVersion, DAG_PB};
    let leaf = Block::new(CidVersion::V0, DAG_PB, carload::unixfs::file_leaf(b"by v0"));
    let as_v1 = carload::block::to_v1(&leaf.cid);
    let inline = cid::Cid::new_v1(
        carload::block::RAW,
        multihash::Multihash::<64>::wrap(carload::block::IDENTITY, b"inline bytes").unwrap(),
    );
    let links = vec![
        carload::dagpb::Link { cid: inline, name: b"inline".to_vec(), tsize: 12 },
        carload::dagpb::Link { cid: as_v1, name: b"v1".to_vec(), tsize: 0 },
    ];
    let root = Block::new(CidVersion::V0, DAG_PB, carload::dagpb::encode(&links, Some(&carload::unixfs::directory())));
    let car = craft::car(&root.cid, &[&root, &leaf]);
    let dir = tempfile::tempdir().unwrap();
    let out = extract_crafted(dir.path(), &car, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.path().join("out/v1")).unwrap(), b"by v0");
    assert_eq!(std::fs::read(dir.path().join("out/inline")).unwrap(), b"inline bytes");
}

/// Folders nested deeper than extract holds open (one descriptor a level) are refused before
/// anything is written, not met by "too many open files" halfway.
#[test]
fn folders_nested_too_deep_are_refused_before_writing() {
    let mut blocks = vec![craft::raw(b"bottom")];
    for _ in 0..600 {
        let below = blocks.last().unwrap().clone();
        blocks.push(craft::dir(&[("d", &below)]));
    }
    let root = blocks.last().unwrap().cid;
    let refs: Vec<&carload::block::Block> = blocks.iter().rev().collect();
    let dir = tempfile::tempdir().unwrap();
    let out = extract_crafted(dir.path(), &craft::car(&root, &refs), &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nested deeper than 512"), "{}", stderr(&out));
    assert!(all_paths(&dir.path().join("out")).is_empty());
}

/// `carload verify` and `carload extract` read every node through one reader, so they give one
/// verdict on one block, with the same reason: UnixFS fields the spec does not define are
/// skipped (whatever their skippable wire type), a spec field with another wire type than its
/// own, a group, or a dag-pb field given twice is refused.
#[test]
fn verify_and_extract_give_one_verdict_on_a_block() {
    use carload::block::{Block, CidVersion, DAG_PB};
    fn field(key: u8, value: &[u8]) -> Vec<u8> {
        [&[key][..], value].concat()
    }
    let file = |extra: &[u8]| {
        let mut data = craft::unixfs(2, Some(b"abc"), Some(3), &[]);
        data.extend_from_slice(extra);
        craft::pb(&[], data)
    };
    let leaf = craft::raw(b"abc");
    let dup_hash = {
        let hash = [&[0x0a, leaf.cid.to_bytes().len() as u8][..], &leaf.cid.to_bytes()].concat();
        let link = [hash.clone(), hash].concat();
        let data = craft::unixfs(2, None, Some(3), &[3]);
        let bytes = [vec![0x12, link.len() as u8], link, vec![0x0a, data.len() as u8], data].concat();
        Block::new(CidVersion::V1, DAG_PB, bytes)
    };
    let dir_data = carload::unixfs::directory();
    let two_data = [vec![0x0a, 2], dir_data.clone(), vec![0x0a, 2], dir_data].concat();
    // (what, the node named `f` in the root folder, the reason both must give, or None: both pass)
    let cases: Vec<(&str, Block, Option<&str>)> = vec![
        ("unknown field 9, a varint", file(&field(0x48, &[0x07])), None),
        (
            "unknown fields of each skippable wire type",
            file(&[field(0x51, &[0; 8]), field(0x5d, &[0; 4]), field(0xa2, &[0x06, 0x01, 0x02])].concat()),
            None,
        ),
        ("field 2 as a varint", file(&field(0x10, &[0x05])), Some("UnixFS field 2 with wire type 0")),
        ("field 7 (mode) as bytes", file(&field(0x3a, &[0x01, 0x00])), Some("UnixFS field 7 with wire type 2")),
        ("an unknown group", file(&[0x4b, 0x4c]), Some("UnixFS field 9 with wire type 3")),
        ("two Data fields", Block::new(CidVersion::V1, DAG_PB, two_data), Some("a dag-pb Data field given twice")),
        ("a link with two Hash fields", dup_hash, Some("a dag-pb Hash field given twice")),
    ];
    for (what, node, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        let good = craft::raw(b"good");
        let root = craft::dir(&[("a", &good), ("f", &node)]);
        let mut blocks = vec![&root, &good, &node];
        if what.contains("link") {
            blocks.push(&leaf);
        }
        let car = craft::car(&root.cid, &blocks);
        let extracted = extract_crafted(dir.path(), &car, &[]);
        let verified = carload().current_dir(dir.path()).args(["verify", "evil.car"]).output().unwrap();
        let (e, v) = (stderr(&extracted), stderr(&verified));
        match reason {
            None => {
                assert!(extracted.status.success(), "{what}: extract: {e}");
                assert!(verified.status.success(), "{what}: verify: {v}");
                assert_eq!(std::fs::read(dir.path().join("out/f")).unwrap(), b"abc", "{what}");
            }
            Some(reason) => {
                assert!(!extracted.status.success(), "{what}: extract passed");
                assert!(
                    !verified.status.success(),
                    "{what}: verify passed: {}",
                    String::from_utf8_lossy(&verified.stdout)
                );
                let block = format!("block {}", node.cid);
                assert!(e.contains(&block) && e.contains(reason), "{what}: extract: {e}");
                assert!(v.contains(&block) && v.contains(reason), "{what}: verify: {v}");
                assert!(all_paths(&dir.path().join("out")).is_empty(), "{what}");
            }
        }
    }
}
