//! Builds spread over several drives (`build --out A --out B …`): each batch on exactly one
//! drive, the assignment recorded on every drive and stable across kills, resumes, concurrent
//! builders and missing drives; status, export, verify and receive over the drives; the drive
//! logs untrusted.

use crate::common::pseudo_random;
use assert_cmd::Command;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `carload` with no config of the user's.
fn carload() -> Command {
    let mut c = Command::cargo_bin("carload").unwrap();
    c.env("XDG_CONFIG_HOME", "/nonexistent/carload-tests");
    c
}

/// Runs `carload ARGS` in `cwd`: (exit code, stdout, stderr).
fn run(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = carload().current_dir(cwd).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_ok(cwd: &Path, args: &[&str]) -> String {
    let (code, out, err) = run(cwd, args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A shipment of `files` small files planned into 512 KiB pieces in `dir/s.jsonl`, and three
/// empty drive folders `d1`, `d2`, `d3`. Returns the batch IDs.
fn planned(dir: &Path, files: usize) -> Vec<String> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..files {
        std::fs::write(data.join(format!("f{i:03}")), pseudo_random(20_000 + (i * 7919) % 40_000, 91 + i as u64))
            .unwrap();
    }
    for d in ["d1", "d2", "d3"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    run_ok(dir, &["plan", "data", "-o", "s.jsonl", "--piece-size", "512KiB", "--min-piece-size", "128KiB", "-q"]);
    let s =
        carload::shipment::read_shipment(std::io::BufReader::new(std::fs::File::open(dir.join("s.jsonl")).unwrap()))
            .unwrap();
    s.batches.iter().map(|b| b.id.clone()).collect()
}

/// The batches whose CAR lies in `dir`.
fn cars(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_string_lossy().strip_suffix(".car").map(str::to_string))
        .collect()
}

/// The batch IDs the drive manifest in `dir` lists.
fn listed(dir: &Path) -> BTreeSet<String> {
    let m = json(&dir.join("carload-drive.json"));
    m["cars"].as_array().unwrap().iter().map(|c| c["batch"].as_str().unwrap().to_string()).collect()
}

/// The batch → drive records of `dir`'s drive log.
fn assignment(dir: &Path) -> BTreeMap<String, u64> {
    std::fs::read_to_string(dir.join("carload-drives.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Some((v["batch"].as_str()?.to_string(), v["drive"].as_u64().unwrap()))
        })
        .collect()
}

const DRIVES: [&str; 3] = ["d1", "d2", "d3"];

/// Every batch in `ids` has its CAR on exactly one drive, the one every drive's log names, and
/// each drive's manifest lists exactly its CARs at its position.
fn each_car_on_exactly_one_drive(dir: &Path, ids: &[String]) {
    let logs: Vec<BTreeMap<String, u64>> = DRIVES.iter().map(|d| assignment(&dir.join(d))).collect();
    assert!(logs.iter().all(|l| *l == logs[0]), "every drive records the same assignment: {logs:?}");
    for id in ids {
        let on: Vec<usize> = (0..3).filter(|&k| cars(&dir.join(DRIVES[k])).contains(id)).collect();
        assert_eq!(on.len(), 1, "{id} on drives {on:?}");
        assert_eq!(logs[0][id], on[0] as u64 + 1, "{id} lies on the drive recorded");
    }
    for (k, d) in DRIVES.iter().enumerate() {
        let d = dir.join(d);
        assert_eq!(listed(&d), cars(&d), "{}'s manifest lists its CARs", d.display());
        let m = json(&d.join("carload-drive.json"));
        assert_eq!(m["drive"]["position"], k as u64 + 1);
        assert_eq!(m["drive"]["of"], 3);
        for c in m["cars"].as_array().unwrap() {
            let r = json(&d.join(format!("{}.json", c["batch"].as_str().unwrap())));
            assert_eq!(c["piece_cid"], r["piece_cid"]);
            assert_eq!(
                c["car_size"].as_u64().unwrap(),
                std::fs::metadata(d.join(c["file"].as_str().unwrap())).unwrap().len()
            );
        }
    }
}

#[test]
fn a_shipment_spreads_over_drives_with_every_car_on_exactly_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ids = planned(d, 90);
    assert!(ids.len() >= 6, "{ids:?}");
    // Each drive holds about two batches' CARs.
    let build = ["build", "s.jsonl", "--out", "d1", "--out", "d2", "--out", "d3", "--reserve", "0", "--tmpdir", "."];
    let (code, _, err) = run(d, &[&build[..], &["--drive-capacity", "1200KiB", "-q"]].concat());
    assert_ne!(code, 0, "not every batch fits: {err}");
    assert!(err.contains("FAILED: no drive has room for it: it needs"), "{err}");
    assert!(err.contains("drive 3 (d3): "), "each drive's room is named: {err}");
    // More room: every batch built, each on one drive, filled in order.
    run_ok(d, &[&build[..], &["--drive-capacity", "2MiB", "-q"]].concat());
    each_car_on_exactly_one_drive(d, &ids);
    assert!(!cars(&d.join("d1")).is_empty() && !cars(&d.join("d3")).is_empty(), "spread over the drives");
    for k in DRIVES {
        let used: u64 = std::fs::read_dir(d.join(k)).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        assert!(used <= 2 << 20, "{k} holds {used} bytes, more than its capacity");
    }
    run_ok(d, &["drive", "check", "d2", "--verify"]);
    // The whole set verifies, status shows each drive, export names each CAR on its drive.
    let v = run_ok(d, &["verify", "s.jsonl", "--out", "d1", "--out", "d2", "--out", "d3", "-q"]);
    assert!(v.contains(&format!("Verified {n} batches: {n} OK", n = ids.len())), "{v}");
    let st = run_ok(d, &["status", "s.jsonl", "--out", "d1", "--out", "d2", "--out", "d3"]);
    assert!(st.starts_with(&format!("Built {n}/{n} batches", n = ids.len())), "{st}");
    for (k, name) in DRIVES.iter().enumerate() {
        let n = cars(&d.join(name)).len();
        assert!(st.contains(&format!("drive {} of 3 \"{name}\" {name}: ", k + 1)), "{st}");
        assert!(st.contains(&format!("built {n}/{n}\n")), "{st}");
    }
    let csv = run_ok(d, &["export", "s.jsonl", "--out", "d1", "--out", "d2", "--out", "d3", "--format", "csv"]);
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (car, id) = (f[5], f[6]);
        let k = assignment(&d.join("d1"))[id] as usize;
        assert_eq!(Path::new(car), d.join(DRIVES[k - 1]).join(format!("{id}.car")).canonicalize().unwrap());
    }
    std::fs::write(d.join("deals.csv"), &csv).unwrap();
    // The provider receives the three drives: one import line per CAR.
    let (code, out, err) = run(d, &["receive", "d1", "d2", "d3", "--deals", "deals.csv"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("{n} CARs: {n} OK", n = ids.len())), "{out}");
    assert!(out.contains("DRIVE    ") && out.contains("drive 2 of 3 \"d2\" of shipment \"s\""), "{out}");
    // A CAR lost in transit: the drive's own manifest says so, even without a deal list.
    let lost = cars(&d.join("d2")).into_iter().next().unwrap();
    let lost_car = d.join("d2").join(format!("{lost}.car"));
    std::fs::rename(&lost_car, d.join("lost.car")).unwrap();
    let (code, out, err) = run(d, &["receive", "d1", "d2", "d3"]);
    assert_ne!(code, 0);
    assert!(out.contains(&format!("PROBLEM  missing {lost}.car: carload-drive.json lists it")), "{out}");
    assert!(err.contains("1 drive manifest problems"), "{err}");
    std::fs::rename(d.join("lost.car"), &lost_car).unwrap();
    // The files come back from the three drives.
    run_ok(d, &["extract", "s.jsonl", "--cars", "d1", "--cars", "d2", "--cars", "d3", "--to", "restored"]);
    for e in std::fs::read_dir(d.join("data")).unwrap() {
        let e = e.unwrap();
        let back = std::fs::read(d.join("restored/data").join(e.file_name())).unwrap();
        assert_eq!(back, std::fs::read(e.path()).unwrap(), "{:?}", e.file_name());
    }
    // A second run finds every batch built where it is.
    let again = run_ok(d, &[&build[..], &["--drive-capacity", "2MiB"]].concat());
    assert_eq!(again.matches("skipped: already built").count(), ids.len(), "{again}");
}

#[test]
fn a_missing_drive_stops_only_its_batches_and_its_mount_point_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ids = planned(d, 60);
    let build = [
        "build",
        "s.jsonl",
        "--out",
        "d1",
        "--out",
        "d2",
        "--out",
        "d3",
        "--reserve",
        "0",
        "--drive-capacity",
        "1200KiB",
        "--tmpdir",
        ".",
        "-q",
    ];
    let (_, _, err) = run(d, &build);
    let on_d2 = cars(&d.join("d2"));
    assert!(!on_d2.is_empty(), "{err}");
    // d2 unplugged: the other batches' state is unchanged, d2's wait (EX_TEMPFAIL).
    std::fs::rename(d.join("d2"), d.join("away")).unwrap();
    let (code, _, err) = run(
        d,
        &[
            "build",
            "s.jsonl",
            "--out",
            "d1",
            "--out",
            "d3",
            "--drive-capacity",
            "1200KiB",
            "--reserve",
            "0",
            "--tmpdir",
            ".",
        ],
    );
    assert_eq!(code, 75, "{err}");
    for id in &on_d2 {
        assert!(
            err.contains(&format!("{id} waits: assigned to drive 2 (d2), which is not among the output folders")),
            "{err}"
        );
    }
    // Its empty mount point is refused, and nothing is written into it.
    std::fs::create_dir(d.join("d2")).unwrap();
    let (code, _, err) = run(d, &build);
    assert_ne!(code, 0);
    assert!(
        err.contains("d2 has no drive log, but drive 2 of the set is labelled \"d2\": is the drive mounted?"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(d.join("d2")).unwrap().count(), 0, "nothing written into the mount point");
    // Status and verify without it say where those batches are.
    let st = run_ok(d, &["status", "s.jsonl", "--out", "d1", "--out", "d3"]);
    assert!(st.contains("drive 2 of 3 \"d2\": not given"), "{st}");
    let (code, _, err) = run(d, &["verify", "s.jsonl", "--out", "d1", "--out", "d3", "-q"]);
    assert_ne!(code, 0);
    assert!(err.contains("batches are on drives not given"), "{err}");
    run_ok(d, &["verify", "s.jsonl", "--out", "d1", "--out", "d3", "-q", "--built-only"]);
    // Back: the assignment held, every CAR on one drive.
    std::fs::remove_dir(d.join("d2")).unwrap();
    std::fs::rename(d.join("away"), d.join("d2")).unwrap();
    let _ = run(d, &build);
    assert_eq!(cars(&d.join("d2")), on_d2, "d2's batches never moved");
    let built: BTreeSet<String> = DRIVES.iter().flat_map(|k| cars(&d.join(k))).collect();
    each_car_on_exactly_one_drive(d, &built.into_iter().collect::<Vec<_>>());
    let _ = ids;
}

#[test]
fn killed_and_concurrent_builders_keep_one_assignment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ids = planned(d, 240);
    assert!(ids.len() >= 12, "{ids:?}");
    let args = ["build", "s.jsonl", "--out", "d1", "--out", "d2", "--out", "d3", "--drive-capacity", "8MiB", "-q"];
    let spawn = || {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("carload"))
            .current_dir(d)
            .env("XDG_CONFIG_HOME", "/nonexistent/carload-tests")
            .args(args)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // Killed as soon as one CAR is on a drive.
    let mut kid = spawn();
    let start = std::time::Instant::now();
    while DRIVES.iter().all(|k| cars(&d.join(k)).is_empty()) {
        assert!(start.elapsed().as_secs() < 120, "nothing built");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    kid.kill().unwrap();
    kid.wait().unwrap();
    let before = assignment(&d.join("d1"));
    assert!(!before.is_empty());
    // Three builders at once finish it.
    let mut kids: Vec<_> = (0..3).map(|_| spawn()).collect();
    for k in &mut kids {
        k.wait().unwrap();
    }
    let after = assignment(&d.join("d1"));
    for (id, drive) in &before {
        assert_eq!(after.get(id), Some(drive), "{id} kept its drive");
    }
    assert_eq!(after.keys().cloned().collect::<Vec<_>>(), ids, "every batch assigned once");
    each_car_on_exactly_one_drive(d, &ids);
    let leftovers: Vec<PathBuf> = DRIVES
        .iter()
        .flat_map(|k| std::fs::read_dir(d.join(k)).unwrap().map(|e| e.unwrap().path()))
        .filter(|p| p.to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn drive_logs_are_untrusted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ids = planned(d, 30);
    let build = ["build", "s.jsonl", "--out", "d1", "--out", "d2", "--out", "d3", "-q"];
    run_ok(d, &build);
    let log = d.join("d1/carload-drives.jsonl");
    let good = std::fs::read_to_string(&log).unwrap();
    // A torn last line (a writer killed while appending) is ignored.
    std::fs::write(&log, format!("{good}{{\"batch\":\"b0")).unwrap();
    run_ok(d, &build);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), good, "the torn line is cut, nothing else changed");
    // A garbled complete line is refused, naming the file and line.
    let lines = good.lines().count();
    std::fs::write(&log, format!("{good}{{\"batch\":\"../etc\",\"drive\":1}}\n")).unwrap();
    let (code, _, err) = run(d, &build);
    assert_ne!(code, 0);
    assert!(err.contains(&format!("d1/carload-drives.jsonl:{}: not a carload drive log record", lines + 1)), "{err}");
    // A record putting a batch on another drive: that batch is refused, never guessed.
    let id = &ids[0];
    let other = if assignment(&d.join("d2"))[id] == 1 { 2 } else { 1 };
    std::fs::write(&log, format!("{good}{{\"batch\":\"{id}\",\"drive\":{other}}}\n")).unwrap();
    let (code, _, err) = run(d, &build);
    assert_ne!(code, 0);
    assert!(err.contains(&format!("{id} FAILED: the drive logs put it on drives 1 and 2; refusing to guess")), "{err}");
    // Drives of two different sets are not mixed.
    std::fs::write(&log, &good).unwrap();
    let e = tempfile::tempdir().unwrap();
    planned(e.path(), 10);
    run_ok(e.path(), &["build", "s.jsonl", "--out", "d1", "--out", "d2", "-q"]);
    let foreign = e.path().join("d1");
    let (code, _, err) = run(d, &["build", "s.jsonl", "--out", "d1", "--out", foreign.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("belong to different drive sets"), "{err}");
}

/// Real capacity: three 3 MiB tmpfs drives in a private mount namespace, no capacity flag.
#[test]
#[ignore = "needs root for unshare -m and tmpfs mounts (run by .ci/run)"]
fn drives_of_real_size_fill_without_running_out_of_space() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ids = planned(d, 90);
    let bin = assert_cmd::cargo::cargo_bin("carload");
    let script = format!(
        "set -e; for k in d1 d2 d3; do mount -t tmpfs -o size=3M tmpfs {d}/$k; done; \
         cd {d}; XDG_CONFIG_HOME=/nonexistent {bin} build s.jsonl --out d1 --out d2 --out d3 --tmpdir {d} -q; \
         for k in d1 d2 d3; do ls $k; done > {d}/listing; \
         XDG_CONFIG_HOME=/nonexistent {bin} status s.jsonl --out d1 --out d2 --out d3 > {d}/status",
        d = d.display(),
        bin = bin.display()
    );
    let out = std::process::Command::new("unshare").args(["-m", "sh", "-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = std::fs::read_to_string(d.join("listing")).unwrap();
    for id in &ids {
        assert_eq!(listing.matches(&format!("{id}.car\n")).count(), 1, "{id}: {listing}");
    }
    let status = std::fs::read_to_string(d.join("status")).unwrap();
    assert!(status.starts_with(&format!("Built {n}/{n}", n = ids.len())), "{status}");
    assert!(status.contains("drive 3 of 3"), "{status}");
}
