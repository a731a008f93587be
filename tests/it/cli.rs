//! The `carload` binary: outputs, streams, exit codes and error messages.

use crate::common;

use assert_cmd::Command;
use common::{pseudo_random, write_tree};
use std::path::Path;

fn carload() -> Command {
    let mut c = Command::cargo_bin("carload").unwrap();
    c.env_remove("NO_COLOR");
    // No config of the user's.
    c.env("XDG_CONFIG_HOME", "/nonexistent/carload-tests");
    c
}

fn stdout_of(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn stderr_fail(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(!out.status.success(), "expected failure, got success");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error, got: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn no_partial_files(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".partial"), "temporary file left behind: {name}");
    }
}

/// Starts `carload` with `args` and returns once its temporary output exists in `dir`.
fn spawn_until_partial(args: &[&std::ffi::OsStr], dir: &Path) -> std::process::Child {
    let exe = assert_cmd::cargo::cargo_bin("carload");
    let child = std::process::Command::new(exe)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !std::fs::read_dir(dir).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".partial")) {
        assert!(start.elapsed().as_secs() < 20, "no temporary output appeared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child
}

/// Returns once process `pid` has `file` mapped (it is hashing it), failing after 20 s.
fn wait_until_mapped(pid: u32, file: &Path) {
    let start = std::time::Instant::now();
    let name = file.to_string_lossy().into_owned();
    while !std::fs::read_to_string(format!("/proc/{pid}/maps")).is_ok_and(|m| m.contains(&name)) {
        assert!(start.elapsed().as_secs() < 20, "{name} was never mapped by pid {pid}");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[test]
fn prepare_json_matches_powergate_vectors() {
    let dir = tempfile::tempdir().unwrap();
    for (n, payload, size, piece) in [
        (
            10000,
            "QmRP8TCp9bthhzLACAao6mh8cfLypqXncdNbzuPtuqFYP7",
            16384,
            "baga6ea4seaqjuk4uh5g7cu5znbvrr7wvfsn2l3xj47rbymvi63uiiroya44lkiy",
        ),
        (
            1000,
            "QmQRAjpSLWziADGz8p5ezxTguFNn18yYbSnduKqMrbJ93c",
            2048,
            "baga6ea4seaqadahcx4ct54tlbvgkqlhmif7kxxkvxz3yf3vr2e4puhvsxdbrgka",
        ),
        (
            100,
            "QmY6zHswPvyZkAyxwM9uup1DDPb67hZqChv8hnyu4MrFWk",
            256,
            "baga6ea4seaqd4hgfl6texpf377k7igx2ga2mfwn3lb4c4kdpaq3g3oao2yftuki",
        ),
    ] {
        let input = dir.path().join(format!("a{n}"));
        std::fs::write(&input, vec![b'A'; n]).unwrap();
        let out = dir.path().join(format!("a{n}.car"));
        let json = stdout_of(carload().arg("prepare").arg("--json").arg(&input).arg(&out));
        assert!(json.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["payload_cid"], payload);
        assert_eq!(v["piece_size"], size);
        assert_eq!(v["piece_cid"], piece);
        assert_eq!(v["piece_size_unpadded"], size / 128 * 127);
        assert_eq!(v["car_size"], std::fs::metadata(&out).unwrap().len());
        assert!(v["piece_cid_v2"].as_str().unwrap().starts_with("bafkzcib"));
        // Powergate's keys come first, in its order.
        assert!(json
            .starts_with(&format!("{{\"payload_cid\":\"{payload}\",\"piece_size\":{size},\"piece_cid\":\"{piece}\"")));
        // `commp` of the written CAR agrees.
        let c = stdout_of(carload().arg("commp").arg("--json").arg(&out));
        let c: serde_json::Value = serde_json::from_str(&c).unwrap();
        assert_eq!(c["piece_cid"], piece);
        assert_eq!(c["piece_size"], size);
    }
}

#[test]
fn stdout_car_equals_file_car_and_car_command_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    write_tree(&input, &[("big.bin", &pseudo_random(700_000, 1)), ("small.txt", b"hi\n"), ("sub/x", b"x\n")]);
    let file_car = dir.path().join("f.car");
    let json = stdout_of(carload().args(["prepare", "--json"]).arg(&input).arg(&file_car));
    let out = carload().args(["prepare", "--json"]).arg(&input).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, std::fs::read(&file_car).unwrap(), "CAR on stdout == CAR in file");
    assert_eq!(String::from_utf8(out.stderr).unwrap(), json, "results go to stderr when the CAR owns stdout");
    let dash = carload().args(["prepare", "--json"]).arg(&input).arg("-").output().unwrap();
    assert_eq!(dash.stdout, out.stdout);
    let car_only = dir.path().join("c.car");
    carload().args(["car", "--quiet"]).arg(&input).arg(&car_only).assert().success().stdout("").stderr("");
    assert_eq!(std::fs::read(&car_only).unwrap(), out.stdout);
    let car_stdout = carload().args(["car", "--quiet"]).arg(&input).output().unwrap();
    assert_eq!(car_stdout.stdout, out.stdout);
    // commp over stdin equals the prepare result.
    let piece: serde_json::Value = serde_json::from_str(&json).unwrap();
    let c = stdout_of(carload().args(["commp", "--json", "-"]).write_stdin(out.stdout.clone()));
    let c: serde_json::Value = serde_json::from_str(&c).unwrap();
    assert_eq!(c["piece_cid"], piece["piece_cid"]);
    assert_eq!(c["piece_cid_v2"], piece["piece_cid_v2"]);
}

#[test]
fn human_output_has_both_sizes_and_deal_commands() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a");
    std::fs::write(&input, vec![b'A'; 10000]).unwrap();
    let text =
        stdout_of(carload().arg("prepare").arg(&input).arg(dir.path().join("a.car")).args(["--miner", "f01234"]));
    assert!(text.contains("Payload CID:   QmRP8TCp9bthhzLACAao6mh8cfLypqXncdNbzuPtuqFYP7"), "{text}");
    assert!(text.contains("16384 bytes padded (16 KiB), 16256 bytes unpadded (16 KiB)"), "{text}");
    assert!(text.contains("lotus client deal --manual-piece-cid=baga6ea4seaqjuk4uh5g7cu5znbvrr7wvfsn2l3xj47rbymvi63uiiroya44lkiy --manual-piece-size=16256 "), "{text}");
    assert!(text.contains("QmRP8TCp9bthhzLACAao6mh8cfLypqXncdNbzuPtuqFYP7 f01234 <price> <duration>"), "{text}");
    assert!(text.contains("boost offline-deal --provider=f01234 --commp=baga6ea4seaqjuk4uh5g7cu5znbvrr7wvfsn2l3xj47rbymvi63uiiroya44lkiy --piece-size=16384 --payload-cid=QmRP8TCp9bthhzLACAao6mh8cfLypqXncdNbzuPtuqFYP7"), "{text}");
    assert!(text.contains("--verified=true"), "{text}");
    assert!(text.contains("sptool --actor f01234 toolbox mk12-client offline-deal --provider f01234 --commp baga6ea4seaqjuk4uh5g7cu5znbvrr7wvfsn2l3xj47rbymvi63uiiroya44lkiy --piece-size 16384 "), "{text}");
    assert!(!text.contains('\x1b'), "no colour when not a terminal");
}

#[test]
fn profile_flags() {
    let dir = tempfile::tempdir().unwrap();
    let planets = dir.path().join("planets");
    write_tree(&planets, &[("mars.txt", b"Hello Mars!\n"), ("venus.txt", b"Hello Venus!\n"), (".hidden", b"h")]);
    let cid = |args: &[&str]| -> String {
        let out = stdout_of(
            carload()
                .arg("prepare")
                .arg("--json")
                .args(args)
                .arg(&planets)
                .arg(dir.path().join(format!("{}.car", args.join("_")))),
        );
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["payload_cid"].as_str().unwrap().to_string()
    };
    assert_eq!(cid(&[]), "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY");
    assert_eq!(cid(&["--raw-leaves"]), "QmfWfQfKCY5Ukv9peBbxM5vqWM9BzmqUSXvdCgjT2wsiBT");
    assert_eq!(cid(&["--cid-version", "1"]), "bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi");
    assert_eq!(
        cid(&["--cid-version", "1", "--raw-leaves=false"]),
        "bafybeif5tuep5ap2d7zyhbktucey75aoacxufgt6i3v4gebmixyipnyp7y"
    );
    assert_ne!(cid(&["--hidden"]), "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY");
    let foobar = dir.path().join("foobar");
    std::fs::write(&foobar, b"foobar\n").unwrap();
    let out = stdout_of(
        carload().args(["prepare", "--json", "--chunker", "size-2"]).arg(&foobar).arg(dir.path().join("fb.car")),
    );
    assert!(out.contains("QmRJHYTNvC3hmd9gJQARxLR1QMEincccBV53bBw524yyq6"));
    // Usage errors exit 2 (clap) and name the value on the first line.
    let out = carload().args(["prepare", "--chunker", "rabin"]).arg(&foobar).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.lines().next().unwrap().contains("rabin"), "{err}");
}

#[test]
fn bad_input_gives_one_line_errors_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out.car");
    let err = stderr_fail(carload().arg("prepare").arg(d.join("missing")).arg(&out));
    assert!(err.contains("missing") && err.contains("no such file"), "{err}");

    std::os::unix::fs::symlink(d.join("nowhere"), d.join("broken")).unwrap();
    let err = stderr_fail(carload().arg("prepare").arg(d.join("broken")).arg(&out));
    assert!(err.contains("broken symlink"), "{err}");

    std::os::unix::fs::symlink(d.join("loop2"), d.join("loop1")).unwrap();
    std::os::unix::fs::symlink(d.join("loop1"), d.join("loop2")).unwrap();
    let err = stderr_fail(carload().arg("prepare").arg(d.join("loop1")).arg(&out));
    assert!(err.contains("loop1") && err.contains("symlink loop"), "{err}");

    let withfifo = d.join("withfifo");
    std::fs::create_dir(&withfifo).unwrap();
    std::fs::write(withfifo.join("ok.txt"), b"ok").unwrap();
    let status = std::process::Command::new("mkfifo").arg(withfifo.join("pipe")).status().unwrap();
    assert!(status.success());
    let err = stderr_fail(carload().arg("prepare").arg(&withfifo).arg(&out));
    assert!(err.contains("pipe") && err.contains("FIFO"), "{err}");

    let input = d.join("in.txt");
    std::fs::write(&input, b"some data").unwrap();
    let err = stderr_fail(carload().arg("prepare").arg(&input).arg(d.join("nodir/out.car")));
    assert!(err.contains("nodir") && err.contains("does not exist"), "{err}");

    let err = stderr_fail(carload().arg("prepare").arg(&input).arg(&input).arg("--force"));
    assert!(err.contains("overwrite the input"), "{err}");

    std::fs::write(&out, b"keep me").unwrap();
    let err = stderr_fail(carload().arg("prepare").arg(&input).arg(&out));
    assert!(err.contains("already exists") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    carload().arg("prepare").arg(&input).arg(&out).arg("--force").arg("--quiet").assert().success();
    assert_ne!(std::fs::read(&out).unwrap(), b"keep me");

    let err = stderr_fail(carload().arg("commp").arg(&input));
    assert!(err.contains("in.txt") && err.contains("not a CARv1"), "{err}");
    // Tiny inputs follow FRC-0069 (height 2) instead of go-fil-commp-hashhash's 65-byte minimum.
    let c = stdout_of(carload().arg("commp").arg("--json").arg("--skip-car-validation").arg(&input));
    assert!(c.contains("\"piece_size\":128"), "{c}");
    no_partial_files(d);
}

#[test]
fn unreadable_file_is_reported_with_its_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("locked");
    write_tree(&sub, &[("secret.txt", b"s")]);
    std::fs::set_permissions(sub.join("secret.txt"), std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(sub.join("secret.txt")).is_ok() {
        // Privileged users (root in CI containers) read anything: nothing to check there.
        eprintln!("NOTE: permission-denied check not applicable: this user can read mode-000 files");
        return;
    }
    let err = stderr_fail(carload().arg("prepare").arg(&sub).arg(dir.path().join("o.car")));
    assert!(err.contains("secret.txt") && err.to_lowercase().contains("permission denied"), "{err}");
    assert!(!dir.path().join("o.car").exists());
    no_partial_files(dir.path());
}

#[test]
fn ipfs_api_errors_are_clear_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.car");
    let cid = "QmY6zHswPvyZkAyxwM9uup1DDPb67hZqChv8hnyu4MrFWk";
    // Nothing listens on port 1.
    let err = stderr_fail(carload().args(["prepare", "--ipfs-api", "/ip4/127.0.0.1/tcp/1", cid]).arg(&out));
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!out.exists());
    let err = stderr_fail(carload().args(["prepare", "--ipfs-api", "/ip4/127.0.0.1/udp/1", cid]).arg(&out));
    assert!(err.contains("/ip4/127.0.0.1/udp/1"), "{err}");
    let err = stderr_fail(carload().args(["prepare", "--ipfs-api", "/ip4/127.0.0.1/tcp/1", "not-a-cid"]).arg(&out));
    assert!(err.contains("invalid CID \"not-a-cid\""), "{err}");
    let err = stderr_fail(carload().args(["prepare", "--aggregate", "--ipfs-api", "http://127.0.0.1:1", cid]));
    assert!(err.contains("--manifest"), "{err}");
    no_partial_files(dir.path());
}

#[test]
fn interrupted_run_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.bin");
    // A sparse 2 GiB file: quick to create, a few seconds to import.
    std::fs::File::create(&input).unwrap().set_len(2 << 30).unwrap();
    let out = dir.path().join("big.car");
    let mut child =
        spawn_until_partial(&["prepare".as_ref(), "--quiet".as_ref(), input.as_os_str(), out.as_os_str()], dir.path());
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let code = child.wait().unwrap();
    assert_eq!(code.code(), Some(130), "exit code after Ctrl-C");
    assert!(!out.exists(), "no output at the final path");
    no_partial_files(dir.path());
}

#[test]
fn a_file_shrinking_while_mapped_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("shrinks.bin");
    // Sparse 8 GiB: seconds of hashing, so the truncation lands mid-read.
    std::fs::File::create(&input).unwrap().set_len(8 << 30).unwrap();
    let out = dir.path().join("s.car");
    let child =
        spawn_until_partial(&["car".as_ref(), "--quiet".as_ref(), input.as_os_str(), out.as_os_str()], dir.path());
    wait_until_mapped(child.id(), &input);
    std::fs::OpenOptions::new().write(true).open(&input).unwrap().set_len(1 << 20).unwrap();
    let res = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains("shrinks.bin") && err.contains("changed while being read"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!out.exists());
    no_partial_files(dir.path());
}

/// A file rewritten in place at the same size while `prepare` reads it gives a one-line error
/// naming it and no output (never a CAR whose blocks do not match their CIDs).
#[test]
fn a_file_rewritten_in_place_while_read_is_an_error() {
    use std::io::{Seek, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("busy.bin");
    let mut f = std::fs::File::create(&input).unwrap();
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..256 {
        f.write_all(&chunk).unwrap();
    }
    drop(f);
    let stop = AtomicBool::new(false);
    let out = dir.path().join("busy.car");
    let err = std::thread::scope(|s| {
        s.spawn(|| {
            // Rewrite the first bytes with the same values, over and over: same size, same
            // bytes even, but the file is written while it is read.
            let mut f = std::fs::OpenOptions::new().write(true).open(&input).unwrap();
            while !stop.load(Ordering::Relaxed) {
                f.seek(std::io::SeekFrom::Start(0)).unwrap();
                f.write_all(&[7u8; 4096]).unwrap();
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        let e = stderr_fail(carload().arg("prepare").arg(&input).arg(&out).arg("-q"));
        stop.store(true, Ordering::Relaxed);
        e
    });
    assert!(err.contains("busy.bin") && err.contains("changed while being read"), "{err}");
    assert!(!out.exists());
    no_partial_files(dir.path());
}

/// `commp` of a pipe, a FIFO or `/dev/stdin` reads the stream: the same piece as the file (it
/// used to fail with "Illegal seek", naming nothing).
#[test]
fn commp_reads_pipes_and_fifos() {
    use std::io::Write;
    let car = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/commp/cat.png.car");
    let bytes = std::fs::read(&car).unwrap();
    let want = stdout_of(carload().args(["commp", "--json"]).arg(&car));
    assert!(want.contains("\"payload_size\":392375"));
    // /dev/stdin, a pipe.
    let exe = assert_cmd::cargo::cargo_bin("carload");
    let mut child = std::process::Command::new(&exe)
        .args(["commp", "/dev/stdin", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
    // A FIFO.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let writer = {
        let (fifo, bytes) = (fifo.clone(), bytes.clone());
        std::thread::spawn(move || {
            std::fs::OpenOptions::new().write(true).open(fifo).unwrap().write_all(&bytes).unwrap()
        })
    };
    assert_eq!(stdout_of(carload().args(["commp", "--json"]).arg(&fifo)), want);
    writer.join().unwrap();
    // A stream that is not a CAR: one line naming it.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let _ = std::fs::OpenOptions::new().write(true).open(fifo).unwrap().write_all(b"not a car at all");
        })
    };
    let err = stderr_fail(carload().arg("commp").arg(&fifo));
    assert!(err.contains("fifo") && err.contains("not a CARv1 file"), "{err}");
    writer.join().unwrap();
}

/// `carload verify` passes a built batch, names a corrupted block, and checks a whole shipment.
#[test]
fn verify_checks_cars_and_shipments() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..12u64 {
        let bytes: Vec<u8> = (0..(3000 + i * 40_000)).map(|k| (k.wrapping_mul(2654435761) >> (i % 7)) as u8).collect();
        std::fs::write(data.join(format!("f{i}")), bytes).unwrap();
    }
    stdout_of(carload().current_dir(dir.path()).args(["plan", "data", "-o", "s.jsonl", "-q"]));
    stdout_of(carload().current_dir(dir.path()).args(["build", "s.jsonl", "--out", "out", "-q"]));
    let ok =
        stdout_of(carload().current_dir(dir.path()).args(["verify", "out/b00000.car", "--result", "out/b00000.json"]));
    assert!(ok.contains("Manifest:      12 entries") && ok.trim_end().ends_with("OK"), "{ok}");
    let all = stdout_of(carload().current_dir(dir.path()).args(["verify", "s.jsonl", "--out", "out", "-q"]));
    assert!(all.contains("Verified 1 batches: 1 OK, 0 with problems (0 problems), 0 not built"), "{all}");
    // Flip one byte in the middle of the CAR: the block is named, the piece differs.
    let car = dir.path().join("out/b00000.car");
    let mut bytes = std::fs::read(&car).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(dir.path().join("bad.car"), &bytes).unwrap();
    let out =
        carload().current_dir(dir.path()).args(["verify", "bad.car", "--result", "out/b00000.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().any(|l| l.starts_with("problem: block ") && l.contains("does not hash to its CID")), "{err}");
    assert!(err.contains("is not the result's"), "{err}");
    assert!(err.lines().last().unwrap().starts_with("error: bad.car:"), "{err}");
}

/// Untrusted text in error messages (here a file name) is printed with control characters
/// escaped, and option values near 2^64 are refused by name instead of overflowing.
#[test]
fn errors_escape_control_characters_and_huge_options_are_refused() {
    let err = stderr_fail(carload().args(["prepare", "/nonexistent/a\u{1b}[2Jb", "x.car"]));
    assert!(err.contains("a\\u{1b}[2Jb") && !err.contains('\u{1b}'), "{err}");
    for (flag, cmd) in [("--heartbeat", "build"), ("--stale-after", "build")] {
        let out = carload().args([cmd, "s.jsonl", "--out", "o", flag, "18446744073709551615"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains(flag) && !e.contains("panicked"), "{e}");
    }
    let out = carload()
        .args([
            "prepare",
            "--ipfs-api",
            "/ip4/127.0.0.1/tcp/1",
            "--ipfs-timeout",
            "18446744073709551615",
            "Qm",
            "x.car",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

/// A SIGBUS that is not a fault in one of carload's mapped inputs keeps its default action
/// (the process dies of it, nothing is explained away); a mapped input that shrinks is a
/// one-line error naming that file.
#[test]
fn sigbus_is_explained_only_for_a_shrinking_mapped_input() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(3 << 30).unwrap(); // sparse: reading it takes a while, costs no disk
    drop(f);
    let exe = assert_cmd::cargo::cargo_bin("carload");
    let start = |out_car: &std::path::Path| {
        std::process::Command::new(&exe)
            .args(["prepare", "-q"])
            .arg(&big)
            .arg(out_car)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Not ours: a SIGBUS sent from outside.
    let out_car = dir.path().join("a.car");
    let child = start(&out_car);
    wait_until_mapped(child.id(), &big);
    unsafe { libc::kill(child.id() as i32, libc::SIGBUS) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGBUS), "{:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
    // Ours: the mapped input shrinks while it is hashed.
    let out_car = dir.path().join("b.car");
    let child = start(&out_car);
    wait_until_mapped(child.id(), &big);
    std::fs::OpenOptions::new().write(true).open(&big).unwrap().set_len(1 << 20).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("big.bin") && err.contains("changed while being read"), "{err}");
    assert!(!out_car.exists());
}

/// Each terminating signal ends a run with its own status (128 + its number: SIGINT 130,
/// SIGTERM 143, SIGHUP 129; all three were 130) and the same cleanup: no temporary output left,
/// nothing at the final path.
#[test]
fn each_signal_exits_with_its_own_status_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.bin");
    // A sparse 2 GiB file: quick to create, seconds to import.
    std::fs::File::create(&input).unwrap().set_len(2 << 30).unwrap();
    for (sig, status) in [(libc::SIGINT, 130), (libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        let out = dir.path().join(format!("big{sig}.car"));
        let mut child = spawn_until_partial(
            &["prepare".as_ref(), "--quiet".as_ref(), input.as_os_str(), out.as_os_str()],
            dir.path(),
        );
        unsafe { libc::kill(child.id() as i32, sig) };
        let code = child.wait().unwrap();
        assert_eq!(code.code(), Some(status), "exit status after signal {sig}: {code:?}");
        assert!(!out.exists(), "no output at the final path");
        no_partial_files(dir.path());
    }
}

/// `carload commp` of a mapped file that shrinks while it is read is a one-line error naming
/// the file, exit 1 (it died of SIGBUS: its map was not registered as `prepare`'s are).
#[test]
fn commp_of_a_file_shrinking_while_mapped_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("shrinks.car");
    // Sparse 16 GiB: seconds of hashing, so the truncation lands mid-read.
    std::fs::File::create(&input).unwrap().set_len(16 << 30).unwrap();
    let exe = assert_cmd::cargo::cargo_bin("carload");
    let child = std::process::Command::new(exe)
        .args(["commp", "--skip-car-validation", "-q"])
        .arg(&input)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Truncated once the file is mapped (its path shows in the process's maps).
    let maps = format!("/proc/{}/maps", child.id());
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(&maps).unwrap_or_default().contains(input.to_str().unwrap()) {
        assert!(start.elapsed().as_secs() < 30, "the input was never mapped");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    std::fs::OpenOptions::new().write(true).open(&input).unwrap().set_len(1 << 20).unwrap();
    let res = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{:?}, stderr: {err}", res.status);
    assert!(err.contains("shrinks.car") && err.contains("changed while being read"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// `carload verify` of a batch prints its manifest's length and SHA-256 (those of the sidecar
/// `.car.manifest`), accepts a repeated section with a warning, and `carload manifest` streams
/// the entries.
#[test]
fn verify_reports_the_manifest_digest_and_allows_repeated_sections() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..5u8 {
        std::fs::write(data.join(format!("f{i}")), vec![i; 100 + i as usize]).unwrap();
    }
    stdout_of(carload().current_dir(dir.path()).args(["prepare", "--aggregate", "data", "a.car", "-q"]));
    let sidecar = std::fs::read(dir.path().join("a.car.manifest")).unwrap();
    let hex: String = sha2::Sha256::digest(&sidecar).iter().map(|b| format!("{b:02x}")).collect();
    let ok = stdout_of(carload().current_dir(dir.path()).args(["verify", "a.car"]));
    assert!(ok.contains(&format!("Manifest:      5 entries ({} bytes, sha256 {hex})", sidecar.len())), "{ok}");
    let table = stdout_of(carload().current_dir(dir.path()).args(["manifest", "a.car"]));
    assert_eq!(table.lines().count(), 2 + 5, "{table}");
    // The last section written twice (as ipfs-car writes a folder's repeated file).
    let mut car = std::fs::read(dir.path().join("a.car")).unwrap();
    let (_, mut r) = carload::car::BlockReader::new(&car[..]).unwrap();
    let mut last = None;
    while let Some(b) = r.next_block().unwrap() {
        last = Some(b);
    }
    let (cid, block) = last.unwrap();
    car.extend(carload::car::section_prefix(&cid, block.len()));
    car.extend(&block);
    std::fs::write(dir.path().join("twice.car"), &car).unwrap();
    let out = carload().current_dir(dir.path()).args(["verify", "twice.car"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Repeated:      1 sections") && stdout.trim_end().ends_with("OK"), "{stdout}");
    assert!(stderr.contains(&format!("warning: block {cid}: repeated")), "{stderr}");
}
