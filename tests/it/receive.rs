//! `carload receive`: a built shipment received by the provider, joined with the client's deal
//! list; swapped, truncated and foreign CARs and deals whose CAR is missing are flagged.

use crate::common::pseudo_random;
use assert_cmd::Command;
use std::path::{Path, PathBuf};

/// `carload` with no config of the user's.
fn carload() -> Command {
    let mut c = Command::cargo_bin("carload").unwrap();
    c.env("XDG_CONFIG_HOME", "/nonexistent/carload-tests");
    c
}

/// Runs `carload ARGS` in `cwd`: (exit success, stdout, stderr).
fn run(cwd: &Path, args: &[&str]) -> (bool, String, String) {
    let out = carload().current_dir(cwd).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A built batch as `status --json` reports it.
struct Built {
    id: String,
    piece_cid: String,
    car_size: u64,
}

/// A shipment of three batches planned, built into `out` and exported as `deals.csv`; returns
/// the folder, its canonical path and the batches from `status --json`.
fn shipment() -> (tempfile::TempDir, PathBuf, Vec<Built>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..6 {
        std::fs::write(data.join(format!("f{i}")), pseudo_random(200_000 + i * 1000, 7 + i as u64)).unwrap();
    }
    let d = dir.path();
    for args in [
        &["plan", "data", "-o", "s.jsonl", "--piece-size", "512KiB", "--min-piece-size", "512KiB"][..],
        &["build", "s.jsonl", "--out", "out"],
        &["export", "s.jsonl", "--out", "out", "--format", "csv", "-o", "deals.csv"],
    ] {
        let (ok, _, err) = run(d, args);
        assert!(ok, "{args:?}: {err}");
    }
    let (ok, status, err) = run(d, &["status", "s.jsonl", "--out", "out", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let built: Vec<Built> = v["status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| Built {
            id: b["id"].as_str().unwrap().to_string(),
            piece_cid: b["piece_cid"].as_str().unwrap().to_string(),
            car_size: b["car_size"].as_u64().unwrap(),
        })
        .collect();
    assert_eq!(built.len(), 3, "{status}");
    let canon = d.canonicalize().unwrap();
    (dir, canon, built)
}

/// `uuid-<id> <piece-cid>` lines, as an operator pastes them from Boost's output.
fn uuid_list(dir: &Path, built: &[Built]) {
    let text: String = built.iter().map(|b| format!("uuid-{} {}\n", b.id, b.piece_cid)).collect();
    std::fs::write(dir.join("uuids.txt"), text).unwrap();
}

fn import_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("boostd import-data")).collect()
}

#[test]
fn receive_prints_one_import_line_per_car() {
    let (dir, canon, built) = shipment();
    let d = dir.path();
    uuid_list(d, &built);
    // A folder given twice is read once.
    let (ok, out, err) = run(d, &["receive", "out", "out/", "--deals", "deals.csv", "--deals", "uuids.txt"]);
    assert!(ok, "{out}\n{err}");
    let want: Vec<String> = built
        .iter()
        .map(|b| {
            format!("boostd import-data uuid-{} {}", b.id, canon.join("out").join(format!("{}.car", b.id)).display())
        })
        .collect();
    assert_eq!(import_lines(&out), want, "{out}");
    for b in &built {
        let line = out.lines().find(|l| l.contains(&format!("/{}.car ", b.id))).unwrap();
        assert!(line.starts_with("OK ") && line.contains(&b.piece_cid), "{line}");
    }
    assert!(out.contains("3 CARs: 3 OK, 0 with problems; 3 of 3 deals found their CAR"), "{out}");

    // The same as JSON, and for Curio and Lotus.
    let (ok, json, _) = run(d, &["receive", "out", "--deals", "deals.csv", "--deals", "uuids.txt", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ok"], true);
    for (car, b) in v["cars"].as_array().unwrap().iter().zip(&built) {
        assert_eq!(car["piece_cid"], b.piece_cid.as_str());
        assert_eq!(car["batch"], b.id.as_str());
        assert_eq!(car["deals"][0], format!("uuid-{}", b.id));
        assert_eq!(car["commands"].as_array().unwrap().len(), 1);
    }
    assert!(v["deals"].as_array().unwrap().iter().all(|d| d["state"] == "found"));
    let (ok, curio, _) = run(d, &["receive", "out", "--deals", "uuids.txt", "--format", "curio"]);
    assert!(ok);
    let b = &built[0];
    let car = canon.join("out").join(format!("{}.car", b.id));
    assert!(
        curio.contains(&format!("curio market add-url --url file://{} uuid-{} {}\n", car.display(), b.id, b.car_size)),
        "{curio}"
    );
    let (ok, lotus, _) = run(d, &["receive", "out", "--deals", "uuids.txt", "--format", "lotus"]);
    assert!(ok);
    assert!(lotus.contains(&format!("lotus-miner storage-deals import-data uuid-{} {}\n", b.id, car.display())));

    // The CSV alone names no deal UUID: placeholders, clearly marked; no list at all: the same.
    let (ok, csv_only, _) = run(d, &["receive", "out", "--deals", "deals.csv"]);
    assert!(ok);
    assert!(csv_only.contains("# In the deal list without a deal ID: replace <deal-uuid> before running"));
    assert_eq!(import_lines(&csv_only).len(), 3);
    assert!(import_lines(&csv_only).iter().all(|l| l.starts_with("boostd import-data <deal-uuid> /")));
    let (ok, bare, _) = run(d, &["receive", "out"]);
    assert!(ok);
    assert!(bare.contains("# No deal list given (--deals): replace <deal-uuid> before running"), "{bare}");
    // The shipment with its results, as `export --format shipment` writes it, is a deal list too.
    let (ok, _, err) = run(d, &["export", "s.jsonl", "--out", "out", "--format", "shipment", "-o", "ship.jsonl"]);
    assert!(ok, "{err}");
    let (ok, shipped, err) = run(d, &["receive", "out", "--deals", "ship.jsonl", "--deals", "uuids.txt"]);
    assert!(ok, "{shipped}{err}");
    assert_eq!(import_lines(&shipped).len(), 3);
    assert!(shipped.contains("3 of 3 deals found their CAR"), "{shipped}");
}

#[test]
fn a_swapped_car_is_flagged() {
    let (dir, _, built) = shipment();
    let d = dir.path();
    let out = d.join("out");
    let (a, b) = (out.join("b00000.car"), out.join("b00001.car"));
    std::fs::rename(&a, out.join("t")).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(out.join("t"), &b).unwrap();
    let (ok, stdout, err) = run(d, &["receive", "out", "--deals", "deals.csv"]);
    assert!(!ok);
    assert!(stdout.contains("b00000.car [b00000] · swapped: it holds batch b00001's CAR"), "{stdout}");
    assert!(stdout.contains("b00001.car [b00001] · swapped: it holds batch b00000's CAR"), "{stdout}");
    assert!(stdout.contains(&format!("piece CID {} is not the result's {}", built[1].piece_cid, built[0].piece_cid)));
    // The sidecars stayed: each is compared with the manifest in the CAR it now lies beside.
    assert!(stdout.contains("b00000.car.manifest (") && stdout.contains("is not the manifest in the CAR"), "{stdout}");
    assert!(err.contains("error: 2 of 3 CARs with problems, 0 deals without their CAR"), "{err}");
    assert_eq!(import_lines(&stdout).len(), 1, "only the good CAR is imported: {stdout}");
    // Without the results beside them, the deal list's batch names tell the swap.
    for id in ["b00000", "b00001", "b00002"] {
        std::fs::remove_file(out.join(format!("{id}.json"))).unwrap();
    }
    let (ok, stdout, _) = run(d, &["receive", "out", "--deals", "deals.csv"]);
    assert!(!ok);
    assert!(stdout.contains("b00000.car [b00001] · swapped: it holds batch b00001's CAR"), "{stdout}");
}

#[test]
fn a_truncated_car_is_flagged_and_its_deal_has_no_car() {
    let (dir, _, built) = shipment();
    let d = dir.path();
    uuid_list(d, &built);
    let car = d.join("out/b00002.car");
    let len = std::fs::metadata(&car).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&car).unwrap().set_len(len - 1000).unwrap();
    let (ok, stdout, err) = run(d, &["receive", "out", "--deals", "deals.csv", "--deals", "uuids.txt"]);
    assert!(!ok);
    let line = stdout.lines().find(|l| l.contains("b00002.car")).unwrap();
    assert!(line.starts_with("PROBLEM ") && line.contains("[b00002]") && line.contains("truncated"), "{line}");
    assert!(stdout.contains(&format!("MISSING  uuid-b00002 batch b00002 · piece {}", built[2].piece_cid)), "{stdout}");
    assert!(stdout.contains("b00002.car does not hold its piece"), "{stdout}");
    assert!(err.contains("1 of 3 CARs with problems, 1 deal without their CAR"), "{err}");
    assert_eq!(import_lines(&stdout).len(), 2);
}

#[test]
fn a_foreign_car_is_flagged() {
    let (dir, _, _) = shipment();
    let d = dir.path();
    let (ok, _, err) = run(d, &["prepare", "data/f0", "out/stray.car"]);
    assert!(ok, "{err}");
    let (ok, stdout, err) = run(d, &["receive", "out", "--deals", "deals.csv"]);
    assert!(!ok);
    assert!(stdout.contains("stray.car · foreign: in no deal and no result beside it"), "{stdout}");
    assert!(err.contains("1 of 4 CARs with problems"), "{err}");
    // Without a deal list nothing is foreign: it verifies, with a placeholder command.
    let (ok, stdout, _) = run(d, &["receive", "out"]);
    assert!(ok, "{stdout}");
    assert!(stdout.contains("/stray.car\n"), "{stdout}");
}

#[test]
fn a_second_copy_of_a_car_is_flagged_and_each_deal_imported_once() {
    let (dir, canon, built) = shipment();
    let d = dir.path();
    uuid_list(d, &built);
    std::fs::copy(d.join("out/b00000.car"), d.join("out/copy.car")).unwrap();
    let (ok, stdout, _) = run(d, &["receive", "out", "--deals", "deals.csv", "--deals", "uuids.txt"]);
    assert!(!ok);
    let first = canon.join("out/b00000.car");
    assert!(
        stdout.contains(&format!(
            "copy.car [b00000] · duplicate: the same piece as {}, which its deals go to",
            first.display()
        )),
        "{stdout}"
    );
    assert_eq!(import_lines(&stdout).len(), 3, "{stdout}");
    assert!(stdout.contains(&format!("boostd import-data uuid-b00000 {}\n", first.display())));
}

#[test]
fn identical_batches_are_not_swaps() {
    let (dir, canon, built) = shipment();
    let d = dir.path();
    let out = d.join("out");
    // Batch b00009 holds the same files as b00000: the same CAR, the same piece, its own deal.
    for ext in ["car", "car.manifest"] {
        std::fs::copy(out.join(format!("b00000.{ext}")), out.join(format!("b00009.{ext}"))).unwrap();
    }
    let result = std::fs::read_to_string(out.join("b00000.json")).unwrap();
    std::fs::write(out.join("b00009.json"), result.replace("\"b00000\"", "\"b00009\"")).unwrap();
    let csv = std::fs::read_to_string(d.join("deals.csv")).unwrap();
    let row = csv.lines().find(|l| l.ends_with(",b00000")).unwrap().replace("b00000", "b00009");
    std::fs::write(d.join("deals.csv"), format!("{csv}{row}\n")).unwrap();
    uuid_list(d, &built);
    let uuids = std::fs::read_to_string(d.join("uuids.txt")).unwrap();
    std::fs::write(d.join("uuids.txt"), format!("{uuids}uuid-b00009 {}\n", built[0].piece_cid)).unwrap();
    let (ok, stdout, err) = run(d, &["receive", "out", "--deals", "deals.csv", "--deals", "uuids.txt"]);
    assert!(ok, "{stdout}{err}");
    for id in ["b00000", "b00009"] {
        let car = canon.join(format!("out/{id}.car"));
        assert!(stdout.contains(&format!("boostd import-data uuid-{id} {}\n", car.display())), "{stdout}");
    }
    assert!(stdout.contains("4 of 4 deals found their CAR"), "{stdout}");
}

#[test]
fn a_deal_whose_car_is_missing_is_flagged() {
    let (dir, _, built) = shipment();
    let d = dir.path();
    uuid_list(d, &built);
    for ext in ["car", "car.manifest", "json"] {
        std::fs::remove_file(d.join(format!("out/b00001.{ext}"))).unwrap();
    }
    let (ok, stdout, err) = run(d, &["receive", "out", "--deals", "uuids.txt", "--json"]);
    assert!(!ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let missing: Vec<_> = v["deals"].as_array().unwrap().iter().filter(|d| d["state"] == "missing").collect();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["uuid"], "uuid-b00001");
    assert_eq!(missing[0]["piece_cid"], built[1].piece_cid.as_str());
    assert!(v["cars"].as_array().unwrap().iter().all(|c| c["ok"] == true));
    let (ok, stdout, _) = run(d, &["receive", "out", "--deals", "uuids.txt"]);
    assert!(!ok);
    assert!(
        stdout.contains(&format!(
            "MISSING  uuid-b00001 · piece {} · no CAR holds its piece (uuids.txt:2)",
            built[1].piece_cid
        )),
        "{stdout}"
    );
    assert_eq!(import_lines(&stdout).len(), 2);
}

#[test]
fn bad_input_is_one_line_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("drive")).unwrap();
    std::fs::write(d.join("bad.txt"), "u-1 not-a-piece\n").unwrap();
    for (args, want) in [
        (&["receive", "nowhere"][..], "nowhere: No such file or directory"),
        (&["receive", "drive", "--deals", "none.csv"], "none.csv: No such file or directory"),
        (
            &["receive", "drive", "--deals", "bad.txt"],
            "bad.txt:1: \"u-1 not-a-piece\" is not `<deal-uuid> <piece-cid>`",
        ),
        (&["receive", "drive"], "drive: no .car or .deal files"),
    ] {
        let (ok, _, err) = run(d, args);
        assert!(!ok);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
