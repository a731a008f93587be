//! Drives: the manifest `carload-drive.json` (and `README.txt`) a build keeps in its CAR folder,
//! concurrent and killed builders, `carload drive check` and `carload drive label`.

use crate::common::pseudo_random;
use assert_cmd::Command;
use std::path::Path;

/// `carload` with no config of the user's.
fn carload() -> Command {
    let mut c = Command::cargo_bin("carload").unwrap();
    c.env("XDG_CONFIG_HOME", "/nonexistent/carload-tests");
    c
}

fn write_files(dir: &Path, n: usize, size: impl Fn(usize) -> usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("f{i:03}")), pseudo_random(size(i), 77 + i as u64)).unwrap();
    }
}

fn run_ok(cwd: &Path, args: &[&str]) -> String {
    let out = carload().current_dir(cwd).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn batch_ids(ship: &Path) -> Vec<String> {
    let s = carload::shipment::read_shipment(std::io::BufReader::new(std::fs::File::open(ship).unwrap())).unwrap();
    s.batches.iter().map(|b| b.id.clone()).collect()
}

/// The batch IDs the drive manifest in `out` lists.
fn listed(out: &Path) -> Vec<String> {
    let m = json(&out.join("carload-drive.json"));
    m["cars"].as_array().unwrap().iter().map(|c| c["batch"].as_str().unwrap().to_string()).collect()
}

/// A planned shipment of several 1 MiB-piece batches in `dir/s.jsonl`.
fn planned(dir: &Path, files: usize) -> Vec<String> {
    write_files(&dir.join("data"), files, |i| 20_000 + (i * 7919) % 40_000);
    run_ok(dir, &["plan", "data", "-o", "s.jsonl", "--piece-size", "512KiB", "--min-piece-size", "128KiB", "-q"]);
    batch_ids(&dir.join("s.jsonl"))
}

#[test]
fn the_manifest_lists_every_car_with_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let ids = planned(dir.path(), 30);
    assert!(ids.len() >= 3, "{ids:?}");
    run_ok(dir.path(), &["build", "s.jsonl", "--out", "out", "-q"]);
    let out = dir.path().join("out");
    let m = json(&out.join("carload-drive.json"));
    assert_eq!(m["format"], "carload-drive");
    assert_eq!(m["version"], 1);
    assert_eq!(m["shipment"]["name"], "s");
    let id = m["shipment"]["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 64);
    assert_eq!(m["drive"], serde_json::json!({"label": "out", "position": 1, "of": 1}));
    let cars = m["cars"].as_array().unwrap();
    assert_eq!(listed(&out), ids);
    for c in cars {
        let b = c["batch"].as_str().unwrap();
        let r = json(&out.join(format!("{b}.json")));
        assert_eq!(c["file"], format!("{b}.car"));
        for k in ["car_size", "payload_cid", "piece_cid", "piece_cid_v2", "piece_size", "piece_size_unpadded"] {
            assert_eq!(c[k], r[k], "{b} {k}");
        }
        assert_eq!(c["car_size"].as_u64().unwrap(), std::fs::metadata(out.join(format!("{b}.car"))).unwrap().len());
    }
    let readme = std::fs::read_to_string(out.join("README.txt")).unwrap();
    assert!(readme.starts_with("carload drive \"out\": drive 1 of 1 of shipment \"s\"\n"), "{readme}");
    assert!(readme.contains(&id) && readme.contains("carload drive check") && readme.contains("carload receive"));
    assert!(readme.contains(&format!("holds {} CAR file(s)", ids.len())), "{readme}");

    // The check passes, by size and strictly.
    let o = run_ok(dir.path(), &["drive", "check", "out"]);
    assert!(o.contains(&format!("{} good (by size); 0 missing, 0 extra, 0 damaged", ids.len())), "{o}");
    let o = run_ok(dir.path(), &["drive", "check", "out", "--verify", "-q"]);
    assert!(o.is_empty(), "{o}");

    // The shipment ID is the plan's: another builder into another folder gets the same one.
    run_ok(dir.path(), &["build", "s.jsonl", "--out", "other", "-q"]);
    assert_eq!(json(&dir.path().join("other/carload-drive.json"))["shipment"]["id"], id.as_str());

    // Re-labelled atomically; the label survives the next regeneration.
    run_ok(dir.path(), &["drive", "label", "out", "Box 3, drive 07"]);
    assert_eq!(json(&out.join("carload-drive.json"))["drive"]["label"], "Box 3, drive 07");
    std::fs::remove_file(out.join(format!("{}.car", ids[0]))).unwrap();
    run_ok(dir.path(), &["build", "s.jsonl", "--out", "out", "-q"]);
    assert_eq!(json(&out.join("carload-drive.json"))["drive"]["label"], "Box 3, drive 07");
    assert_eq!(listed(&out), ids);
    assert!(std::fs::read_to_string(out.join("README.txt")).unwrap().starts_with("carload drive \"Box 3, drive 07\""));
    let bad = carload().current_dir(dir.path()).args(["drive", "label", "out", "two\nlines"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("drive label"), "{}", String::from_utf8_lossy(&bad.stderr));

    // Nothing else in the folder is written half: no temporary is left.
    let partials: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(partials.is_empty(), "{partials:?}");

    // `status`, `export` and `verify` see the batches only.
    let o = run_ok(dir.path(), &["status", "s.jsonl", "--out", "out"]);
    assert!(!o.contains("carload-drive"), "{o}");
    let o = run_ok(dir.path(), &["export", "s.jsonl", "--out", "out", "--format", "csv"]);
    assert_eq!(o.lines().count(), ids.len() + 1, "{o}");
    run_ok(dir.path(), &["verify", "s.jsonl", "--out", "out", "-q"]);
    // The provider's `receive` takes the drive's CARs only.
    let o = run_ok(dir.path(), &["receive", "out"]);
    assert!(!o.contains("carload-drive") && !o.contains("README"), "{o}");
    assert_eq!(o.lines().filter(|l| l.starts_with("OK ")).count(), ids.len(), "{o}");
}

#[test]
fn concurrent_builders_never_lose_an_entry() {
    let dir = tempfile::tempdir().unwrap();
    let ids = planned(dir.path(), 30);
    assert!(ids.len() >= 3, "{ids:?}");
    let bin = assert_cmd::cargo::cargo_bin("carload");
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    let kids: Vec<_> = (0..ids.len())
        .map(|i| {
            std::process::Command::new(&bin)
                .current_dir(dir.path())
                .env("XDG_CONFIG_HOME", "/nonexistent/carload-tests")
                .args(["build", "s.jsonl", "--out", "out", "-q", "--batch-index", &i.to_string()])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut k in kids {
        assert!(k.wait().unwrap().success());
    }
    assert_eq!(listed(&dir.path().join("out")), ids);
    run_ok(dir.path(), &["drive", "check", "out", "--verify"]);
}

#[test]
fn a_builder_killed_mid_build_leaves_a_manifest_of_complete_cars() {
    let dir = tempfile::tempdir().unwrap();
    let ids = planned(dir.path(), 400);
    assert!(ids.len() >= 24, "{ids:?}");
    let out = dir.path().join("out");
    let mut kid = std::process::Command::new(assert_cmd::cargo::cargo_bin("carload"))
        .current_dir(dir.path())
        .env("XDG_CONFIG_HOME", "/nonexistent/carload-tests")
        .args(["build", "s.jsonl", "--out", "out", "-q"])
        .spawn()
        .unwrap();
    // Killed as soon as the manifest lists a CAR: the next batch is being built.
    let start = std::time::Instant::now();
    while !out.join("carload-drive.json").exists() || listed(&out).is_empty() {
        assert!(start.elapsed().as_secs() < 120, "no manifest");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    kid.kill().unwrap();
    kid.wait().unwrap();
    let first = listed(&out);
    assert!(first.len() < ids.len(), "killed after the whole build: {first:?}");
    assert_eq!(first, ids[..first.len()], "the CARs built, in order");
    // Every CAR listed is complete and judged built; nothing listed is missing or damaged.
    let o = carload().current_dir(dir.path()).args(["drive", "check", "out", "--verify"]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(!text.contains("missing ") && !text.contains("damaged "), "{text}");
    // `status` (the one judgement) counts at least the CARs listed as built.
    let status = run_ok(dir.path(), &["status", "s.jsonl", "--out", "out", "--stale-after", "2"]);
    let built: usize = status.split("Built ").nth(1).and_then(|t| t.split('/').next()).unwrap().parse().unwrap();
    assert!(built >= first.len(), "{status}");
    // Resumed: the manifest ends complete, no temporary left.
    run_ok(dir.path(), &["build", "s.jsonl", "--out", "out", "-q"]);
    assert_eq!(listed(&out), ids);
    let partials: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(partials.is_empty(), "{partials:?}");
    run_ok(dir.path(), &["drive", "check", "out"]);
}

#[test]
fn drive_check_flags_missing_extra_truncated_and_corrupted_cars() {
    let dir = tempfile::tempdir().unwrap();
    let ids = planned(dir.path(), 40);
    assert!(ids.len() >= 4, "{ids:?}");
    run_ok(dir.path(), &["build", "s.jsonl", "--out", "out", "-q"]);
    let out = dir.path().join("out");
    let car = |i: usize| out.join(format!("{}.car", ids[i]));
    // Missing, extra, truncated.
    std::fs::remove_file(car(0)).unwrap();
    std::fs::copy(car(1), out.join("foreign.car")).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(car(2)).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len - 100).unwrap();
    // Corrupted, same size: a byte flipped in the middle.
    let mut bytes = std::fs::read(car(3)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(car(3), &bytes).unwrap();

    let check = |strict: bool| {
        let mut c = carload();
        c.current_dir(dir.path()).args(["drive", "check", "out"]);
        if strict {
            c.arg("--verify");
        }
        let o = c.output().unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let fast = check(false);
    let lines: Vec<&str> = fast.lines().collect();
    assert!(lines.iter().any(|l| l.starts_with(&format!("missing {}.car: listed", ids[0]))), "{fast}");
    assert!(lines.iter().any(|l| l.starts_with("extra foreign.car: ")), "{fast}");
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "damaged {}.car: {} bytes, the manifest lists {len}",
            ids[2],
            len - 100
        ))),
        "{fast}"
    );
    assert!(!fast.contains(&format!("{}.car", ids[3])), "a same-size corruption passes the fast check: {fast}");
    assert!(fast.contains("1 missing, 1 extra, 1 damaged"), "{fast}");
    assert_eq!(lines.len(), 4, "one line per problem and a summary: {fast}");

    let strict = check(true);
    assert!(strict.lines().any(|l| l.starts_with(&format!("damaged {}.car: ", ids[3]))), "{strict}");
    assert!(strict.contains("1 missing, 1 extra, 2 damaged"), "{strict}");

    // The next regeneration (a run that builds nothing: batch 1 is built) lists only what the
    // judgement accepts: the missing and the truncated CARs are gone; the same-size corruption,
    // which only reading the CAR finds, stays.
    let o = carload()
        .current_dir(dir.path())
        .args(["build", "s.jsonl", "--out", "out", "--batch", &ids[1]])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want: Vec<String> =
        ids.iter().enumerate().filter(|(i, _)| ![0, 2].contains(i)).map(|(_, b)| b.clone()).collect();
    assert_eq!(listed(&out), want);

    // A folder without a manifest: a one-line error naming it.
    let o = carload().current_dir(dir.path()).args(["drive", "check", "data"]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("data: no carload-drive.json"));
}

#[test]
fn plan_never_packs_a_drive_manifest() {
    let dir = tempfile::tempdir().unwrap();
    write_files(&dir.path().join("data"), 3, |i| 1000 + i);
    std::fs::write(dir.path().join("data/README.txt"), b"the user's own readme").unwrap();
    // A README alone is data.
    run_ok(dir.path(), &["plan", "data", "-o", "a.jsonl", "-q"]);
    // Beside a drive manifest it is the drive's, and both are refused.
    std::fs::write(dir.path().join("data/carload-drive.json"), b"{}").unwrap();
    let o = carload().current_dir(dir.path()).args(["plan", "data", "-o", "b.jsonl", "-q"]).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("carload drive"), "{err}");
    // Asked to ship them anyway, they are packed as data.
    run_ok(dir.path(), &["plan", "data", "-o", "c.jsonl", "-q", "--include-carload-outputs"]);
}
