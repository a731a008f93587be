//! `carload tui` driven through a real pseudo-terminal: keys in, screen (parsed by `vt100`) out.
//!
//! Every step waits for a text on the screen (polling every 20 ms) instead of sleeping, so the
//! tests hold on a slow, loaded machine. A lone Escape is always followed by a wait for its
//! effect before the next key, or the terminal parser would read ESC+key as Alt+key.

use crate::common;

use common::{pseudo_random, write_tree};
use portable_pty::{native_pty_system, Child, CommandBuilder, ExitStatus, MasterPty, PtySize};
use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_carload");
/// How long a wait may take before the test fails (generous: the machine may be loaded).
const TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);
const ESC: &[u8] = b"\x1b";

/// A temporary working folder with `HOME` and the XDG folders inside it, so the user's config
/// and remembered state are neither read nor written.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        for d in ["home", "config", "share"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Sandbox { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn env(&self) -> [(&'static str, PathBuf); 3] {
        [
            ("HOME", self.path().join("home")),
            ("XDG_CONFIG_HOME", self.path().join("config")),
            ("XDG_DATA_HOME", self.path().join("share")),
        ]
    }

    /// `carload ARGS` run to completion in the sandbox, off a terminal.
    fn carload(&self, args: &[&str]) -> std::process::Output {
        let mut c = Command::new(BIN);
        c.args(args).current_dir(self.path()).stdin(Stdio::null()).env_remove("NO_COLOR");
        for (k, v) in self.env() {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "carload {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts `carload ARGS` on a `rows`×`cols` pseudo-terminal in the sandbox.
    fn tui(&self, rows: u16, cols: u16, args: &[&str]) -> Tui {
        Tui::spawn(self, rows, cols, args)
    }
}

/// The program under test on a pseudo-terminal, and the screen it drew.
struct Tui {
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    pid: libc::pid_t,
    parser: Arc<Mutex<vt100::Parser>>,
    /// Set once the reader saw the end of the program's output (every slave end closed).
    drained: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Tui {
    fn spawn(sb: &Sandbox, rows: u16, cols: u16, args: &[&str]) -> Tui {
        let pair = native_pty_system()
            .openpty(PtySize { rows, cols, pixel_width: 0, pixel_height: 0 })
            .expect("opening a pseudo-terminal");
        let mut cmd = CommandBuilder::new(BIN);
        cmd.args(args);
        cmd.cwd(sb.path());
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        for (k, v) in sb.env() {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).expect("spawning carload tui");
        // Only the child holds the slave end now: its exit ends the reader's stream.
        drop(pair.slave);
        let pid = child.process_id().expect("child pid") as libc::pid_t;
        let parser =
            Arc::new(Mutex::new(vt100::Parser::new(NonZeroU16::new(rows).unwrap(), NonZeroU16::new(cols).unwrap(), 0)));
        let drained = Arc::new(AtomicBool::new(false));
        let mut rd = pair.master.try_clone_reader().unwrap();
        let reader = {
            let parser = Arc::clone(&parser);
            let drained = Arc::clone(&drained);
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match rd.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => parser.lock().unwrap().process(&buf[..n]),
                    }
                }
                drained.store(true, Ordering::SeqCst);
            })
        };
        let writer = pair.master.take_writer().unwrap();
        Tui { master: pair.master, writer, child, pid, parser, drained, reader: Some(reader), status: None }
    }

    /// The screen's text, one line per row.
    fn screen(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Runs `f` on the parsed screen.
    fn with_screen<T>(&self, f: impl FnOnce(&vt100::Screen) -> T) -> T {
        f(self.parser.lock().unwrap().screen())
    }

    /// Waits until `pred` holds for the screen's text; panics with the screen on timeout.
    fn wait_until(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if start.elapsed() > TIMEOUT {
                panic!("timed out after {TIMEOUT:?} waiting for {what}; screen:\n{}", frame(&s));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until `text` is on the screen; returns the screen.
    fn wait_for(&self, text: &str) -> String {
        self.wait_until(&format!("{text:?}"), |s| s.contains(text))
    }

    /// Waits until `text` is no longer on the screen; returns the screen.
    fn wait_gone(&self, text: &str) -> String {
        self.wait_until(&format!("{text:?} to go away"), |s| !s.contains(text))
    }

    /// Types `bytes` into the terminal.
    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
        self.writer.flush().unwrap();
    }

    /// Waits for the program to exit and for all its output to be parsed.
    fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > TIMEOUT {
                panic!("carload tui did not exit within {TIMEOUT:?}; screen:\n{}", frame(&self.screen()));
            }
            std::thread::sleep(POLL);
        };
        while !self.drained.load(Ordering::SeqCst) {
            if start.elapsed() > TIMEOUT * 2 {
                panic!("the terminal output did not end after the program exited");
            }
            std::thread::sleep(POLL);
        }
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        self.status = Some(status.clone());
        status
    }

    /// Panics unless the screen is back to normal: main screen, visible cursor.
    fn assert_restored(&self) {
        let (alt, hidden) = self.with_screen(|s| (s.alternate_screen(), s.hide_cursor()));
        assert!(!alt, "still in the alternate screen after exit; screen:\n{}", frame(&self.screen()));
        assert!(!hidden, "cursor still hidden after exit");
    }

    /// The pseudo-terminal's local modes (`c_lflag`), as the program left them.
    fn local_flags(&self) -> libc::tcflag_t {
        let t = self.master.get_termios().expect("reading the terminal's modes");
        libc::termios::from(t).c_lflag
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        if self.status.is_none() {
            // A failed test: do not leave the program running.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
            let _ = self.child.wait();
        }
    }
}

/// The screen framed, for failure messages.
fn frame(s: &str) -> String {
    let mut out = String::from("+----\n");
    for l in s.lines() {
        out.push('|');
        out.push_str(l);
        out.push('\n');
    }
    out.push_str("+----");
    out
}

/// The first word after `label` on the screen (e.g. a CID after `Payload CID:`).
fn value_after(screen: &str, label: &str) -> String {
    screen
        .lines()
        .find_map(|l| l.find(label).map(|i| l[i + label.len()..].split_whitespace().next().unwrap_or("").to_string()))
        .unwrap_or_else(|| panic!("no {label:?} on the screen:\n{}", frame(screen)))
}

/// A deterministic tree under `data/`: sub-folders, 30 files of varied sizes, a dot-file, an
/// empty file and a 300 KiB file (two 256 KiB chunks).
fn make_tree(root: &Path) {
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("data/.dotfile".into(), b"hidden but included\n".to_vec()),
        ("data/empty.txt".into(), Vec::new()),
        ("data/big/300k.bin".into(), pseudo_random(300 * 1024, 7)),
        ("data/README.md".into(), b"# sample data\n".to_vec()),
    ];
    let folders = ["alpha", "beta", "beta/deep", "gamma"];
    for i in 0..26usize {
        let folder = folders[i % folders.len()];
        let size = (i * i * 97 + 13 * i) % 20_000 + 1;
        files.push((format!("data/{folder}/file-{i:02}.dat"), pseudo_random(size, i as u64 + 100)));
    }
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
    write_tree(root, &refs);
}

#[test]
fn tui_packs_previews_saves_like_plan() {
    let sb = Sandbox::new();
    make_tree(sb.path());
    let mut t = sb.tui(30, 100, &["tui", "data", "--shipment", "ship.jsonl"]);
    let s = t.wait_for("Scanned");
    assert!(s.contains("Scanned 30 files"), "status line counts 30 files:\n{}", frame(&s));

    t.send(b"A");
    t.wait_for("Marked: 30 files");
    t.send(b"p");
    let s = t.wait_for("auto-packed");
    assert!(s.contains("auto-packed 30 files into 1 new batch"), "{}", frame(&s));

    t.send(b"v");
    t.wait_for("Manifest preview");
    t.send(b"d");
    let s = t.wait_until("the dry run's CIDs", |s| s.contains("Payload CID:") && s.contains("Piece CID:"));
    let payload = value_after(&s, "Payload CID:");
    let piece = value_after(&s, "Piece CID:");
    assert!(payload.starts_with("bafy") || payload.starts_with("Qm"), "payload CID {payload:?}");
    assert!(piece.starts_with("baga"), "piece CID {piece:?}");
    t.send(ESC);
    t.wait_gone("Manifest preview");

    t.send(b"s");
    let s = t.wait_for("saved");
    assert!(s.contains("saved 1 batches to"), "{}", frame(&s));
    t.send(b"q");
    let st = t.wait_exit();
    assert!(st.success(), "exit status {st}");
    t.assert_restored();

    sb.carload(&["plan", "data", "-o", "plan.jsonl"]);
    let ship = std::fs::read_to_string(sb.path().join("ship.jsonl")).unwrap();
    let plan = std::fs::read_to_string(sb.path().join("plan.jsonl")).unwrap();
    assert_eq!(ship, plan, "the workstation's shipment equals `carload plan data`'s");

    sb.carload(&["build", "plan.jsonl", "--out", "out", "-q"]);
    let built: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.path().join("out/b00000.json")).unwrap()).unwrap();
    assert_eq!(built["payload_cid"].as_str(), Some(payload.as_str()), "dry run's payload CID = build's");
    assert_eq!(built["piece_cid"].as_str(), Some(piece.as_str()), "dry run's piece CID = build's");
}

#[test]
fn tui_restores_the_terminal() {
    let sb = Sandbox::new();
    make_tree(sb.path());
    let mut t = sb.tui(30, 100, &["tui", "data"]);
    t.wait_for("Scanned");
    assert!(t.with_screen(|s| s.alternate_screen() && s.hide_cursor()), "alternate screen, hidden cursor");
    // The check below would prove nothing if the modes read were not the program's terminal's.
    let running = t.local_flags();
    assert_eq!(running & (libc::ICANON | libc::ECHO), 0, "raw mode while running");
    t.send(b"q");
    let st = t.wait_exit();
    assert!(st.success(), "exit status {st}");
    t.assert_restored();
    let after = t.local_flags();
    assert_ne!(after & libc::ICANON, 0, "ICANON set again after exit");
    assert_ne!(after & libc::ECHO, 0, "ECHO set again after exit");
}

#[test]
fn tui_quit_with_unsaved_changes_asks() {
    let sb = Sandbox::new();
    make_tree(sb.path());
    let mut t = sb.tui(30, 100, &["tui", "data", "--shipment", "ship.jsonl"]);
    t.wait_for("Scanned");
    t.send(b" ");
    t.wait_for("Marked: 1 file ·");
    t.send(b"n");
    t.wait_for("[modified]");
    t.send(b"q");
    t.wait_for("Unsaved changes");
    t.send(ESC);
    let s = t.wait_gone("Unsaved changes");
    assert!(s.contains("Browser") && s.contains("[modified]"), "back in the browser:\n{}", frame(&s));
    t.send(b"q");
    t.wait_for("Unsaved changes");
    // The key that opened the dialog does not discard: q q stays.
    t.send(b"q");
    let s = t.wait_gone("Unsaved changes");
    assert!(s.contains("[modified]"), "q q stayed:\n{}", frame(&s));
    t.send(b"q");
    t.wait_for("Unsaved changes");
    t.send(b"d");
    let st = t.wait_exit();
    assert!(st.success(), "exit status {st}");
    t.assert_restored();
    assert!(!sb.path().join("ship.jsonl").exists(), "quitting without saving writes no shipment");
}

#[test]
fn tui_sigterm_restores_the_terminal() {
    let sb = Sandbox::new();
    make_tree(sb.path());
    let mut t = sb.tui(30, 100, &["tui", "data"]);
    t.wait_for("Scanned");
    assert!(t.with_screen(|s| s.alternate_screen()), "alternate screen while running");
    assert_eq!(unsafe { libc::kill(t.pid, libc::SIGTERM) }, 0);
    let st = t.wait_exit();
    assert_eq!(st.signal(), None, "SIGTERM is handled, not fatal ({st})");
    assert!(!st.success(), "a terminated run does not report success");
    assert_eq!(st.exit_code(), 143, "128 + SIGTERM ({st})");
    t.assert_restored();
    let after = t.local_flags();
    assert_ne!(after & libc::ICANON, 0, "ICANON set again after SIGTERM");
    assert_ne!(after & libc::ECHO, 0, "ECHO set again after SIGTERM");
}

#[test]
fn tui_off_a_terminal_fails_cleanly() {
    let sb = Sandbox::new();
    make_tree(sb.path());
    let mut c = Command::new(BIN);
    c.args(["tui", "data"]).current_dir(sb.path()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in sb.env() {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "usage exit status; stderr: {err}");
    assert!(out.stdout.is_empty(), "nothing on stdout, got {:?}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error, got: {err}");
    assert!(err.starts_with("error:"), "{err}");
    assert!(err.contains("terminal"), "{err}");
}

#[test]
fn tui_too_small_terminal_says_so() {
    let sb = Sandbox::new();
    make_tree(sb.path());
    let mut t = sb.tui(20, 60, &["tui", "data"]);
    t.wait_for("Terminal too small");
    t.send(b"q");
    let st = t.wait_exit();
    assert!(st.success(), "exit status {st}");
    t.assert_restored();
}

// ---------------------------------------------------------------------------------------------
// Part 2: building batches, cancelling, other builders, export.
// ---------------------------------------------------------------------------------------------

/// How long a build of a few MB may take on a slow, loaded machine.
const BUILD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long builds may stay queued with none running before the queue counts as stopped.
const STALL: Duration = Duration::from_secs(15);
/// The progress view's phases of a running build (`b00000 hashing · …`).
const RUNNING: [&str; 3] = ["checking sources", "hashing", "writing CAR"];
/// The workstation polls the output folder every 3 s; other builders' work shows within this.
const WATCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Size of the sparse file whose build the cancel tests catch mid-way: hashing it takes
/// seconds even at memory speed, and being sparse it costs no disk.
const HUGE: u64 = 16 << 30;

impl Tui {
    /// Like [`Tui::wait_until`], with its own time limit.
    fn wait_until_within(&self, limit: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if start.elapsed() > limit {
                panic!("timed out after {limit:?} waiting for {what}; screen:\n{}", frame(&s));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until every batch is built (`Built n/n`), failing at once on a failed build, and
    /// after [`STALL`] of builds queued while none runs (a queue that stopped).
    fn wait_all_built(&self, n: usize) -> String {
        let built = format!("Built {n}/{n}");
        let stalled_since = std::cell::Cell::new(None::<Instant>);
        let s = self.wait_until_within(BUILD_TIMEOUT, &format!("{built:?}"), |s| {
            let stalled = s.contains(" queued") && !RUNNING.iter().any(|r| s.contains(r));
            match (stalled, stalled_since.get()) {
                (false, _) => stalled_since.set(None),
                (true, None) => stalled_since.set(Some(Instant::now())),
                (true, Some(t)) => {
                    assert!(t.elapsed() < STALL, "builds stay queued but none runs (for {STALL:?}):\n{}", frame(s))
                }
            }
            s.contains(&built) || s.contains("FAILED")
        });
        assert!(!s.contains("FAILED"), "a build failed:\n{}", frame(&s));
        s
    }

    /// Waits until `pred` holds for the screen (true) or the program exited (false).
    fn wait_until_or_exit(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> bool {
        let start = Instant::now();
        loop {
            if pred(&self.screen()) {
                return true;
            }
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if start.elapsed() > TIMEOUT {
                panic!("timed out after {TIMEOUT:?} waiting for {what}; screen:\n{}", frame(&self.screen()));
            }
            std::thread::sleep(POLL);
        }
    }
}

/// A tree of 40 files under `data/` (5.4 MB): 39 small incompressible files in sub-folders and
/// one 3 MiB file, which 2 MiB pieces split.
fn make_build_tree(root: &Path) {
    let mut files: Vec<(String, Vec<u8>)> = vec![("data/big/3m.bin".into(), pseudo_random(3 << 20, 3))];
    let folders = ["one", "two", "two/deep", "three"];
    for i in 0..39usize {
        let size = 20_000 + (i * 7919 * 13) % 90_000;
        files.push((format!("data/{}/f{i:02}.bin", folders[i % folders.len()]), pseudo_random(size, i as u64 + 500)));
    }
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
    write_tree(root, &refs);
}

/// `data/huge.bin`: [`HUGE`] bytes, 1 MiB of them random at the start and the rest a hole.
fn make_sparse_tree(root: &Path) {
    std::fs::create_dir_all(root.join("data")).unwrap();
    let f = std::fs::File::create(root.join("data/huge.bin")).unwrap();
    (&f).write_all(&pseudo_random(1 << 20, 11)).unwrap();
    f.set_len(HUGE).unwrap();
}

/// The names in `dir` (none if it does not exist), sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Panics if `dir` holds a batch lock or a partial CAR spool (and, with `cars`, a CAR).
fn assert_no_leftovers(dir: &Path, cars: bool) {
    let names = names_in(dir);
    let bad: Vec<&String> = names
        .iter()
        .filter(|n| n.ends_with(".lock") || n.ends_with(".partial") || (cars && n.ends_with(".car")))
        .collect();
    assert!(bad.is_empty(), "left in {}: {bad:?} (all: {names:?})", dir.display());
}

/// The batch IDs of a shipment file, in order.
fn shipment_ids(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// The number in `… into N new batch…` of the auto-pack message.
fn packed_batches(screen: &str) -> usize {
    value_after(screen, "into ").parse().unwrap_or_else(|_| panic!("no batch count:\n{}", frame(screen)))
}

#[test]
fn tui_builds_all_like_the_cli() {
    let sb = Sandbox::new();
    make_build_tree(sb.path());
    let mut t = sb.tui(
        36,
        120,
        &[
            "tui",
            "data",
            "--shipment",
            "ship.jsonl",
            "--out",
            "cars",
            "--piece-size",
            "2MiB",
            "--min-piece-size",
            "1MiB",
        ],
    );
    t.wait_for("Scanned");
    t.send(b"A");
    t.wait_for("Marked: 40 files");
    t.send(b"p");
    let s = t.wait_for("auto-packed");
    let n = packed_batches(&s);
    assert!(n >= 3, "5.4 MB in 2 MiB pieces makes at least 3 batches:\n{}", frame(&s));

    t.send(b"B");
    let s = t.wait_all_built(n);
    assert!(s.contains(&format!("Builds · Built {n}/{n}")), "the progress view shows:\n{}", frame(&s));
    let ids = shipment_ids(&sb.path().join("ship.jsonl"));
    assert_eq!(ids.len(), n, "B saved the shipment with its {n} batches first");

    t.send(b"e");
    t.wait_for("Export deal commands");
    t.send(b"f01234");
    t.wait_for("--provider=f01234");
    t.send(b"\r");
    // Named after the shipment, beside it.
    t.wait_for("ship.boost.sh");
    let s = t.wait_gone("Export deal commands");
    assert!(!s.contains("[modified]"), "nothing left unsaved:\n{}", frame(&s));
    t.send(b"q");
    let st = t.wait_exit();
    assert!(st.success(), "exit status {st}");
    t.assert_restored();

    let (cars, cars2) = (sb.path().join("cars"), sb.path().join("cars2"));
    assert_no_leftovers(&cars, false);
    sb.carload(&["build", "ship.jsonl", "--out", "cars2", "-q"]);
    let car_names = |d: &Path| names_in(d).into_iter().filter(|n| n.ends_with(".car")).collect::<Vec<_>>();
    let want: Vec<String> = ids.iter().map(|id| format!("{id}.car")).collect();
    assert_eq!(car_names(&cars), want, "the workstation built every batch");
    assert_eq!(car_names(&cars2), want, "the CLI built every batch");
    for id in &ids {
        let car = std::fs::read(cars.join(format!("{id}.car"))).unwrap();
        let car2 = std::fs::read(cars2.join(format!("{id}.car"))).unwrap();
        assert!(car == car2, "{id}.car differs between the workstation's and the CLI's build");
        let here = read_json(&cars.join(format!("{id}.json")));
        let cli = read_json(&cars2.join(format!("{id}.json")));
        assert_eq!(here["payload_cid"], cli["payload_cid"], "{id}: payload CID");
        assert_eq!(here["piece_cid"], cli["piece_cid"], "{id}: piece CID");
        let out = sb.carload(&["commp", &format!("cars/{id}.car"), "--json"]);
        let commp: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(here["piece_cid"].as_str().is_some_and(|c| c.starts_with("baga")), "{id}: {here}");
        assert_eq!(commp["piece_cid"], here["piece_cid"], "{id}: commp of the CAR = its result's piece CID");
    }
    let out = sb.carload(&["export", "ship.jsonl", "--out", "cars", "--format", "boost", "--provider", "f01234"]);
    let written = std::fs::read(sb.path().join("ship.boost.sh")).unwrap();
    assert!(
        out.stdout == written,
        "ship.boost.sh differs from `carload export`:\n--- ship.boost.sh\n{}\n--- export\n{}",
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Starts the workstation on one [`HUGE`] batch, builds it (`B`) and waits until it hashes.
fn start_huge_build(sb: &Sandbox) -> Tui {
    make_sparse_tree(sb.path());
    let mut t = sb.tui(36, 120, &["tui", "data", "--shipment", "ship.jsonl", "--out", "cars", "--piece-size", "32GiB"]);
    t.wait_for("Scanned");
    t.send(b"A");
    t.wait_for("Marked: 1 file ·");
    t.send(b"p");
    let s = t.wait_for("auto-packed");
    assert_eq!(packed_batches(&s), 1, "one batch:\n{}", frame(&s));
    t.send(b"B");
    t.wait_until("b00000 building", |s| s.contains("b00000 hashing") || s.contains("b00000 writing"));
    let names = names_in(&sb.path().join("cars"));
    assert!(names.iter().any(|n| n == "b00000.lock"), "a build in progress holds its lock: {names:?}");
    t
}

#[test]
fn tui_cancel_mid_build_leaves_nothing() {
    let sb = Sandbox::new();
    let mut t = start_huge_build(&sb);
    t.send(b"\t");
    t.send(b"c");
    let s = t.wait_for("cancelled: temporary files removed");
    assert!(s.contains("Built 0/1"), "nothing built:\n{}", frame(&s));
    assert!(!s.contains("FAILED"), "a cancel is no failure:\n{}", frame(&s));
    assert_no_leftovers(&sb.path().join("cars"), true);
    let s = t.wait_until("b00000 no longer building", |s| !s.contains("b00000 hashing") && !s.contains("% built"));
    assert!(s.contains("not built"), "b00000 is back to not built:\n{}", frame(&s));
    t.send(b"q");
    let st = t.wait_exit();
    assert!(st.success(), "exit status {st}");
    t.assert_restored();
    assert_no_leftovers(&sb.path().join("cars"), true);
}

#[test]
fn tui_sees_a_cli_builder_beside_it() {
    let sb = Sandbox::new();
    make_build_tree(sb.path());
    sb.carload(&["plan", "data", "-o", "ship.jsonl", "--piece-size", "2MiB", "--min-piece-size", "1MiB"]);
    let ids = shipment_ids(&sb.path().join("ship.jsonl"));
    let n = ids.len();
    assert!(n >= 3, "several batches: {ids:?}");
    let mut t = sb.tui(36, 120, &["tui", "--shipment", "ship.jsonl", "--out", "cars"]);
    t.wait_for("Scanned");
    t.send(b"w");
    t.wait_for(&format!("Builds · Built 0/{n}"));

    sb.carload(&["build", "ship.jsonl", "--out", "cars", "--batch", "b00000", "-q"]);
    let cars = sb.path().join("cars");
    let mtime = |name: &str| std::fs::metadata(cars.join(name)).unwrap().modified().unwrap();
    let json0 = std::fs::read(cars.join("b00000.json")).unwrap();
    let (json0_at, car0_at) = (mtime("b00000.json"), mtime("b00000.car"));

    let s = t.wait_until_within(WATCH_TIMEOUT, "the CLI's build seen", |s| {
        s.contains("b00000 built by another builder") && s.contains(&format!("Built 1/{n}"))
    });
    assert!(!s.contains("b00000 started"), "the workstation did not build b00000 itself:\n{}", frame(&s));

    t.send(b"B");
    let s = t.wait_all_built(n);
    for id in &ids[1..] {
        assert!(s.contains(&format!("{id} started")), "{id} built here:\n{}", frame(&s));
    }
    assert!(!s.contains("b00000 started"), "B skipped b00000, built beside it:\n{}", frame(&s));
    t.send(b"q");
    let st = t.wait_exit();
    assert!(st.success(), "exit status {st}");
    t.assert_restored();

    for id in &ids {
        assert!(cars.join(format!("{id}.json")).is_file(), "{id}.json");
        assert!(cars.join(format!("{id}.car")).is_file(), "{id}.car");
    }
    assert!(std::fs::read(cars.join("b00000.json")).unwrap() == json0, "b00000.json rewritten");
    assert_eq!(mtime("b00000.json"), json0_at, "b00000.json rewritten");
    assert_eq!(mtime("b00000.car"), car0_at, "b00000.car rebuilt");
    assert_no_leftovers(&cars, false);
}

#[test]
fn tui_quit_while_building_cancels_cleanly() {
    let sb = Sandbox::new();
    let mut t = start_huge_build(&sb);
    t.send(b"q");
    let asked = t.wait_until_or_exit("the quit confirmation", |s| s.contains(" here; quitting cancels them"));
    if asked {
        t.send(b"y");
    }
    let st = t.wait_exit();
    assert!(st.success(), "exit status {st}");
    t.assert_restored();
    assert_no_leftovers(&sb.path().join("cars"), true);
    assert!(asked, "q while a build runs quit at once, without asking (the build was cancelled)");
}

/// The operator's safety net, end to end: `x` on the root folder of built batches asks with
/// numbers, `y` takes every file out, the save keeps the previous shipment file beside it, and
/// `u` brings the built batches back (a second save puts them in the shipment again).
#[test]
fn tui_unbuilding_asks_and_undo_brings_the_built_batches_back() {
    let sb = Sandbox::new();
    make_build_tree(sb.path());
    let args = ["tui", "data", "--shipment", "ship.jsonl", "--out", "cars", "--piece-size", "2MiB"];
    let mut t = sb.tui(36, 120, &[&args[..], &["--min-piece-size", "1MiB"]].concat());
    t.wait_for("Scanned");
    t.send(b"A");
    t.wait_for("Marked: 40 files");
    t.send(b"p");
    let n = packed_batches(&t.wait_for("auto-packed"));
    t.send(b"B");
    t.wait_all_built(n);
    let ship = sb.path().join("ship.jsonl");
    let built = std::fs::read(&ship).unwrap();
    let ids = shipment_ids(&ship);
    assert_eq!(ids.len(), n);

    // Back to the browser, up to the roots, the first row (the root folder), x: it asks.
    t.send(b"w");
    t.wait_for("Marked:");
    t.send(b"h");
    t.wait_for("(roots)");
    t.send(b"gx");
    let s = t.wait_for("Take files out of built batches?");
    let text = format!("takes 40 files out of {n} built batches; their CARs stay on disk but leave");
    assert!(s.contains(&text), "the dialog says what it does:\n{}", frame(&s));
    t.send(b"y");
    t.wait_for("removed from");
    t.send(b"s");
    t.wait_for(&format!("saved {n} batches"));
    assert!(std::fs::read(sb.path().join("ship.jsonl.1")).unwrap() == built, "the save kept the built shipment");
    assert!(std::fs::read(&ship).unwrap() != built);

    t.send(b"u");
    t.wait_for(&format!("undid: take 40 files out of {n} batches"));
    let s = t.wait_for(&format!("Built {n}/{n}"));
    assert!(s.contains("[modified]"), "the file holds the emptied batches:\n{}", frame(&s));
    t.send(b"s");
    let s = t.wait_for(&format!("saved {n} batches"));
    assert!(!s.contains("[modified]"), "{}", frame(&s));
    assert!(std::fs::read(&ship).unwrap() == built, "the built batches are in the shipment again, as they were");
    assert!(std::fs::read(sb.path().join("ship.jsonl.2")).unwrap() == built);
    t.send(b"q");
    let st = t.wait_exit();
    assert!(st.success(), "exit status {st}");
    t.assert_restored();
    let out = sb.carload(&["status", "ship.jsonl", "--out", "cars"]);
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains(&format!("{n}/{n}")), "carload status sees every batch built:\n{status}");
}

/// Opened on a folder that holds a build's output folder beside the data, the workstation lists
/// the CARs, manifests and results marked `!` with the reason and packs only the data (before,
/// it packed them too, and the saved shipment shipped carload's own outputs).
#[test]
fn tui_never_packs_carload_outputs() {
    let sb = Sandbox::new();
    make_tree(&sb.path().join("work"));
    sb.carload(&["plan", "work/data", "-o", "plan.jsonl", "-q"]);
    sb.carload(&["build", "plan.jsonl", "--out", "work/cars", "-q"]);
    let mut t = sb.tui(30, 110, &["tui", "work", "--shipment", "ship.jsonl"]);
    let s = t.wait_for("Scanned");
    assert!(s.contains("Scanned 30 files"), "the 3 outputs are not counted as files:\n{}", frame(&s));
    t.send(b"A");
    t.wait_for("Marked: 30 files");
    t.send(b"p");
    let s = t.wait_for("auto-packed");
    assert!(s.contains("auto-packed 30 files into 1 new batch"), "{}", frame(&s));
    // cars/ is the first row: open it.
    t.send(b"l");
    let s = t.wait_for("! b00000.car.manifest");
    assert!(s.contains("! b00000.car ") && s.contains("! b00000.json"), "{}", frame(&s));
    t.send(b"s");
    t.wait_for("saved");
    t.send(b"q");
    assert!(t.wait_exit().success());
    let ship = std::fs::read_to_string(sb.path().join("ship.jsonl")).unwrap();
    assert!(!ship.contains("cars/"), "no output shipped:\n{ship}");
    let plan = std::fs::read_to_string(sb.path().join("plan.jsonl")).unwrap();
    let batches = |s: &str| s.lines().skip(1).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(batches(&ship), batches(&plan), "the batch `plan work/data` makes, and only that");
}

/// `p` tops up the open batch before opening a new one (config default), and says so.
#[test]
fn tui_auto_pack_tops_up_the_open_batch() {
    let sb = Sandbox::new();
    make_tree(sb.path());
    let mut t = sb.tui(30, 110, &["tui", "data"]);
    t.wait_for("Scanned");
    t.send(b" ");
    t.wait_for("Marked: 1 file");
    t.send(b"p");
    let s = t.wait_for("auto-packed");
    assert!(s.contains("auto-packed 1 file into 1 new batch"), "{}", frame(&s));
    t.send(b" ");
    t.wait_for("Marked: 1 file");
    t.send(b"p");
    let s = t.wait_for("topped up");
    assert!(s.contains("auto-packed 1 file: topped up b00000 with 1 entry"), "{}", frame(&s));
    assert!(s.contains("Batches 1 ·"), "still one batch:\n{}", frame(&s));
    assert!(s.contains("b00000 · 2 files"), "{}", frame(&s));
    // Unsaved: dropping `t` ends the program (the quit dialog is another test's subject).
}

/// The number of batches the batches pane's title says are built (`Batches N · K built`).
fn built_in_title(screen: &str) -> Option<(usize, usize)> {
    let l = screen.lines().find(|l| l.contains("Batches ") && l.contains(" built"))?;
    let rest = &l[l.find("Batches ")? + 8..];
    let mut w = rest.split_whitespace();
    let n = w.next()?.replace(',', "").parse().ok()?;
    w.next()?;
    let k = w.next()?.replace(',', "").parse().ok()?;
    Some((n, k))
}

/// Waits for the batches pane to say `Batches n · k built`.
fn wait_built(t: &Tui, n: usize, k: usize) -> String {
    t.wait_until(&format!("Batches {n} · {k} built"), |s| built_in_title(s) == Some((n, k)))
}

/// Writes the export through the form (`e`, provider f01234, Enter) and checks that the file
/// equals `carload export`'s text for the same shipment and folder.
fn export_like_the_cli(sb: &Sandbox, t: &mut Tui, out: &str) {
    t.send(b"e");
    t.wait_for("Export deal commands");
    t.send(b"f01234");
    t.wait_for("--provider=f01234");
    t.send(b"\r");
    t.wait_for("export written to");
    t.wait_gone("Export deal commands");
    let cli = Command::new(BIN)
        .args(["export", "ship.jsonl", "--out", out, "--format", "boost", "--provider", "f01234"])
        .current_dir(sb.path())
        .output()
        .unwrap();
    let written = std::fs::read(sb.path().join("ship.boost.sh")).unwrap();
    assert!(
        cli.stdout == written,
        "ship.boost.sh differs from `carload export`:\n--- ship.boost.sh\n{}\n--- export\n{}",
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(&cli.stdout)
    );
}

/// Item 2 of issue 20: a shipment outlives its sources. Planned from `proj/data` (base `proj`),
/// one batch built, then `proj` moved away: the workstation opens, the built batch is built
/// (info, export, verify), the others are flagged with their missing files.
#[test]
fn tui_opens_a_shipment_whose_sources_moved_away() {
    let sb = Sandbox::new();
    let proj = sb.path().join("proj");
    make_build_tree(&proj);
    // Planned in proj: the shipment's base folder is proj.
    let ship = sb.path().join("ship.jsonl");
    let mut plan = Command::new(BIN);
    plan.args(["plan", "data", "-o", ship.to_str().unwrap(), "--piece-size", "2MiB", "--min-piece-size", "1MiB"]);
    for (k, v) in sb.env() {
        plan.env(k, v);
    }
    let planned = plan.current_dir(&proj).stdin(Stdio::null()).output().unwrap();
    assert!(planned.status.success(), "{}", String::from_utf8_lossy(&planned.stderr));
    let ids = shipment_ids(&ship);
    let n = ids.len();
    assert!(n >= 3, "several batches: {ids:?}");
    sb.carload(&["build", "ship.jsonl", "--out", "cars", "--batch", "b00000", "-q"]);
    std::fs::rename(sb.path().join("proj"), sb.path().join("moved")).unwrap();
    let status = sb.carload(&["status", "ship.jsonl", "--out", "cars"]);
    assert!(String::from_utf8_lossy(&status.stdout).starts_with(&format!("Built 1/{n} batches")));

    let mut t = sb.tui(36, 120, &["tui", "--shipment", "ship.jsonl", "--out", "cars"]);
    t.wait_for("Scanned");
    wait_built(&t, n, 1);
    // Unbuilt batches with missing files are flagged, their details name the files.
    t.wait_until("missing! on the unbuilt batches", |s| s.matches("missing!").count() == n - 1);
    t.send(b"\t");
    t.send(b"j");
    t.wait_until("b00001's missing files named", |s| {
        s.contains("b00001: 4 missing, 0 changed files (not found: data/") && s.contains(" and 1 more")
    });
    t.send(b"k");
    t.wait_for("b00000: ");
    t.send(b"i");
    // Waited for whole (a screen may be caught half drawn).
    let json = read_json(&sb.path().join("cars/b00000.json"));
    let payload = json["payload_cid"].as_str().unwrap();
    let s = t.wait_until("the payload CID", |s| s.lines().any(|l| l.contains("Payload CID") && l.contains(payload)));
    assert_eq!(value_after(&s, "Payload CID"), payload, "{}", frame(&s));
    t.send(ESC);
    t.wait_gone("Payload CID");
    export_like_the_cli(&sb, &mut t, "cars");
    t.send(b"q");
    let st = t.wait_exit();
    assert!(st.success(), "exit status {st}");
    t.assert_restored();
    sb.carload(&["verify", "ship.jsonl", "--out", "cars", "--built-only", "-q"]);
    assert_eq!(shipment_ids(&sb.path().join("ship.jsonl")), ids, "the shipment is unchanged");
}

/// Item 3 of issue 20: after one source is touched and another deleted, the workstation says
/// what `status` says (every batch built, a note on the changed ones) and exports what
/// `export` writes; re-planning a built batch asks first. A batch not built whose source
/// changed is `changed!`, and its fix is `R`.
#[test]
fn tui_agrees_with_status_and_export_after_sources_change() {
    let sb = Sandbox::new();
    make_build_tree(sb.path());
    sb.carload(&["plan", "data", "-o", "ship.jsonl", "--piece-size", "2MiB", "--min-piece-size", "1MiB"]);
    let ship = std::fs::read_to_string(sb.path().join("ship.jsonl")).unwrap();
    let batches: Vec<serde_json::Value> = ship
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["id"].is_string())
        .collect();
    let n = batches.len();
    assert!(n >= 3, "several batches");
    // A file of the batch that is in no other (not the split 3 MiB one).
    let first_file = |b: &serde_json::Value| {
        let files = b["files"].as_array().unwrap();
        files.iter().map(|f| f[0].as_str().unwrap()).find(|n| !n.ends_with("3m.bin")).unwrap().to_string()
    };
    sb.carload(&["build", "ship.jsonl", "--out", "cars", "-q"]);
    // Touched (same bytes, a new time) and deleted: in the first two batches.
    let touched = sb.path().join(first_file(&batches[0]));
    let f = std::fs::File::options().write(true).open(&touched).unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(5)).unwrap();
    drop(f);
    std::fs::remove_file(sb.path().join(first_file(&batches[1]))).unwrap();
    let status = sb.carload(&["status", "ship.jsonl", "--out", "cars"]);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(status.starts_with(&format!("Built {n}/{n} batches")), "{status}");
    assert_eq!(status.matches("sources changed since").count(), 2, "{status}");

    let mut t = sb.tui(36, 120, &["tui", "--shipment", "ship.jsonl", "--out", "cars"]);
    t.wait_for("Scanned");
    wait_built(&t, n, n);
    // A note on the two changed batches, no `changed!`, no advice that throws CARs away.
    let s = t.wait_until("built* on the two changed batches", |s| s.matches("built*").count() == 2);
    assert!(!s.contains("changed!") && !s.contains("missing!"), "built batches are built:\n{}", frame(&s));
    assert!(s.contains("a built one keeps its CAR"), "the scan's note:\n{}", frame(&s));
    assert!(!s.contains("remove and re-pack"), "no advice that throws CARs away:\n{}", frame(&s));
    t.send(b"\t");
    t.wait_until("the first batch's details", |s| s.contains("b00000: sources changed since built"));
    // R on a built batch asks first; n keeps it, built.
    t.send(b"R");
    t.wait_for("Re-plan a built batch?");
    t.send(b"n");
    t.wait_gone("Re-plan a built batch?");
    t.send(b"w");
    t.wait_for(&format!("Builds · Built {n}/{n}"));
    t.send(b"w");
    export_like_the_cli(&sb, &mut t, "cars");
    t.send(b"q");
    assert!(t.wait_exit().success());
    t.assert_restored();

    // The last batch not built, one of its sources touched: `changed!`, and R re-plans it.
    let last = batches[n - 1]["id"].as_str().unwrap().to_string();
    for ext in ["car", "car.manifest", "json"] {
        std::fs::remove_file(sb.path().join(format!("cars/{last}.{ext}"))).unwrap();
    }
    let touched = sb.path().join(first_file(&batches[n - 1]));
    let f = std::fs::File::options().write(true).open(&touched).unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(5)).unwrap();
    drop(f);
    let mut t = sb.tui(36, 120, &["tui", "--shipment", "ship.jsonl", "--out", "cars"]);
    t.wait_for("Scanned");
    wait_built(&t, n, n - 1);
    let s = t.wait_until("changed! on the batch not built", |s| s.matches("changed!").count() == 1);
    assert_eq!(s.matches("built*").count(), 2, "the built ones keep their note:\n{}", frame(&s));
    t.send(b"\t");
    t.send(b"G");
    t.wait_for(&format!("{last}: 0 missing, 1 changed files"));
    t.send(b"R");
    t.wait_for(&format!("{last} re-planned as"));
}

/// Item 4 of issue 20: the output folder is remembered per shipment, and `carload` alone offers
/// the recent shipments with their built counts.
#[test]
fn tui_remembers_where_it_built_and_offers_recent_shipments() {
    let sb = Sandbox::new();
    make_build_tree(sb.path());
    sb.carload(&["plan", "data", "-o", "ship.jsonl", "--piece-size", "2MiB", "--min-piece-size", "1MiB"]);
    let n = shipment_ids(&sb.path().join("ship.jsonl")).len();
    sb.carload(&["build", "ship.jsonl", "--out", "cars", "-q"]);
    let mut t = sb.tui(36, 120, &["tui", "--shipment", "ship.jsonl", "--out", "cars"]);
    wait_built(&t, n, n);
    t.send(b"q");
    assert!(t.wait_exit().success());

    // Elsewhere (the shipment named by its absolute path), without --out.
    let ship = sb.path().join("ship.jsonl");
    let mut t = sb.tui(36, 120, &["tui", "--shipment", ship.to_str().unwrap()]);
    wait_built(&t, n, n);
    t.send(b"q");
    assert!(t.wait_exit().success());

    let mut t = sb.tui(36, 120, &[]);
    t.wait_for("Recent shipments");
    let s = t.wait_for(&format!("Built {n}/{n}"));
    assert!(s.contains("ship.jsonl"), "{}", frame(&s));
    assert!(s.contains("Browse"), "browsing the current folder is offered:\n{}", frame(&s));
    t.send(b"\r");
    wait_built(&t, n, n);
    t.send(b"q");
    assert!(t.wait_exit().success());
    t.assert_restored();
}

/// A CLI builder on this host killed with SIGKILL leaves its lock: the workstation judges it
/// as `build` and `status` do (its process is gone), `stale lock` at once, not for 300 s
/// `@host`.
#[test]
fn tui_shows_a_killed_cli_builders_lock_as_stale_at_once() {
    let sb = Sandbox::new();
    make_sparse_tree(sb.path());
    sb.carload(&["plan", "data", "-o", "ship.jsonl", "--piece-size", "32GiB"]);
    let mut build = Command::new(BIN);
    build.args(["build", "ship.jsonl", "--out", "cars", "-q"]).current_dir(sb.path()).stdin(Stdio::null());
    for (k, v) in sb.env() {
        build.env(k, v);
    }
    let mut child = build.spawn().unwrap();
    let lock = sb.path().join("cars/b00000.lock");
    let start = Instant::now();
    while !lock.exists() {
        assert!(start.elapsed() < TIMEOUT, "the CLI builder took no lock");
        std::thread::sleep(POLL);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(lock.exists(), "SIGKILL leaves the lock");
    let mut t = sb.tui(36, 120, &["tui", "--shipment", "ship.jsonl", "--out", "cars"]);
    let s = t.wait_for("stale lock");
    assert!(!s.contains("@"), "not shown as building elsewhere:\n{}", frame(&s));
    t.send(b"q");
    assert!(t.wait_exit().success());
    t.assert_restored();
}

/// Flags an opened shipment's own options override are named on the status line (not
/// ignored silently).
#[test]
fn tui_names_the_flags_an_opened_shipment_overrides() {
    let sb = Sandbox::new();
    make_tree(sb.path());
    sb.carload(&["plan", "data", "-o", "s.jsonl", "-q"]);
    let mut t = sb.tui(30, 120, &["tui", "--shipment", "s.jsonl", "--sector", "64GiB"]);
    let s = t.wait_for("the shipment's options win over --sector 64 GiB (the shipment's: 32 GiB)");
    assert!(s.contains("sector 32 GiB"), "the shipment's sector is used:\n{}", frame(&s));
    t.send(b"q");
    let st = t.wait_exit();
    assert!(st.success(), "exit status {st}");
    t.assert_restored();
}

/// `carload tui --out d1 --out d2` builds onto a drive set as `carload build` does: every CAR on
/// exactly one drive, the one both drive logs name; the drives pane shows each drive's built
/// count (builds spool on the drive: a batch needs about twice its CAR); the CLI then finds the shipment fully built and verified across the drives.
#[test]
fn tui_builds_onto_two_drives() {
    let sb = Sandbox::new();
    make_build_tree(sb.path());
    std::fs::create_dir_all(sb.path().join("d1")).unwrap();
    std::fs::create_dir_all(sb.path().join("d2")).unwrap();
    let mut t = sb.tui(
        36,
        120,
        &[
            "tui",
            "data",
            "--shipment",
            "ship.jsonl",
            "--out",
            "d1",
            "--out",
            "d2",
            "--drive-capacity",
            "5MiB",
            "--reserve",
            "0",
            "--piece-size",
            "2MiB",
            "--min-piece-size",
            "1MiB",
        ],
    );
    t.wait_for("Scanned");
    t.send(b"A");
    t.wait_for("Marked: 40 files");
    t.send(b"p");
    let s = t.wait_for("auto-packed");
    let n = packed_batches(&s);
    assert!(n >= 3, "5.4 MB in 2 MiB pieces makes at least 3 batches:\n{}", frame(&s));
    t.send(b"B");
    let s = t.wait_all_built(n);
    assert!(!s.contains("FAILED"), "{}", frame(&s));
    t.send(b"D");
    let s = t.wait_for("Drives");
    assert!(s.contains("1/2") && s.contains("2/2"), "both drives listed:\n{}", frame(&s));
    t.send(b"q");
    let st = t.wait_exit();
    assert!(st.success(), "exit status {st}");
    t.assert_restored();

    let ids = shipment_ids(&sb.path().join("ship.jsonl"));
    assert_eq!(ids.len(), n);
    let cars_on = |d: &str| -> Vec<String> {
        names_in(&sb.path().join(d)).into_iter().filter_map(|n| n.strip_suffix(".car").map(str::to_string)).collect()
    };
    let (on1, on2) = (cars_on("d1"), cars_on("d2"));
    assert!(!on1.is_empty() && !on2.is_empty(), "5 MiB drives: the CARs spread over both ({on1:?} / {on2:?})");
    let mut all: Vec<String> = on1.iter().chain(&on2).cloned().collect();
    all.sort();
    assert_eq!(all, ids, "every batch on exactly one drive");
    for d in ["d1", "d2"] {
        assert_no_leftovers(&sb.path().join(d), false);
        let log = std::fs::read_to_string(sb.path().join(d).join("carload-drives.jsonl")).unwrap();
        for id in cars_on(d) {
            assert!(log.contains(&format!("\"{id}\"")), "{d}'s log records {id}:\n{log}");
        }
    }
    let out = sb.carload(&["status", "ship.jsonl", "--out", "d1", "--out", "d2", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["built"], n, "{status}");
    sb.carload(&["verify", "ship.jsonl", "--out", "d1", "--out", "d2"]);
    // The CLI agrees: nothing left to build.
    let out = sb.carload(&["build", "ship.jsonl", "--out", "d1", "--out", "d2", "-q"]);
    assert!(out.status.success());
    assert_eq!((cars_on("d1"), cars_on("d2")), (on1, on2), "a CLI build moves nothing");
}

/// The deals `segment plan` wrote beside the shipment, seen in the real binary: `L` lists each
/// deal with its batches built; a batch removed from the CAR folder makes its deal wait.
#[test]
fn tui_shows_the_deals_of_the_shipment() {
    let sb = Sandbox::new();
    make_build_tree(sb.path());
    sb.carload(&["plan", "data", "-o", "ship.jsonl", "--piece-size", "2MiB", "--min-piece-size", "1MiB"]);
    sb.carload(&["build", "ship.jsonl", "--out", "cars", "-q"]);
    sb.carload(&["segment", "plan", "ship.jsonl", "--out", "cars", "--deal-size", "8MiB", "-q"]);
    let plan =
        carload::segment::deals::parse_plan(&std::fs::read(sb.path().join("ship.deals.jsonl")).unwrap()).unwrap();
    assert!(!plan.deals.is_empty());
    let first = &plan.deals[0];
    let gone = &first.segments[0].batch;
    std::fs::remove_file(sb.path().join("cars").join(format!("{gone}.json"))).unwrap();
    let mut t = sb.tui(36, 120, &["tui", "--shipment", "ship.jsonl", "--out", "cars"]);
    t.wait_for("Scanned");
    t.send(b"L");
    let n = first.segments.len();
    let s = t.wait_until_within(WATCH_TIMEOUT, "the deals pane", |s| {
        s.contains(&format!("{} · built {}/{n}", first.id, n - 1)) && s.contains(&format!("waits for {gone}"))
    });
    assert!(s.contains(&format!("Deals · ship.deals.jsonl · {} deal", plan.deals.len())), "{}", frame(&s));
    t.send(b"q");
    let st = t.wait_exit();
    assert!(st.success(), "exit status {st}");
    t.assert_restored();
}
