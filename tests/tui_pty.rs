//! `carload tui` driven through a real pseudo-terminal: keys in, screen (parsed by `vt100`) out.
//!
//! Every step waits for a text on the screen (polling every 20 ms) instead of sleeping, so the
//! tests hold on a slow, loaded machine. A lone Escape is always followed by a wait for its
//! effect before the next key, or the terminal parser would read ESC+key as Alt+key.

#![cfg(unix)]

mod common;

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
    t.wait_for("Marked: 1 files");
    t.send(b"n");
    t.wait_for("[modified]");
    t.send(b"q");
    t.wait_for("Unsaved changes");
    t.send(ESC);
    let s = t.wait_gone("Unsaved changes");
    assert!(s.contains("Browser") && s.contains("[modified]"), "back in the browser:\n{}", frame(&s));
    t.send(b"q");
    t.wait_for("Unsaved changes");
    t.send(b"q");
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
