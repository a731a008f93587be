//! `carload tui`: the terminal workstation. Browse the roots, mark files, pack them into
//! sector-bounded batches with the planner, preview manifests, save the shipment file.
//!
//! * [`tree`]: the compact tree the scan fills; [`marks`]: marks by entry; [`batches`]: batches
//!   over tree entries, converted to shipment records with the planner's code;
//! * [`app`]: state and the update function (messages in, effects out);
//! * [`view`]: drawing, a function of the state;
//! * [`worker`]: background jobs (scan, pack, dry run, save) reporting over a channel;
//! * [`terminal`]: raw mode and the alternate screen, always restored; [`config`]: defaults and
//!   remembered state; [`start`]: the start screen of `carload` alone.

pub mod app;
pub mod batches;
pub mod builds;
pub mod config;
pub mod deals;
pub mod drives;
pub mod history;
pub mod keys;
pub mod marks;
pub mod start;
pub mod terminal;
pub mod tree;
pub mod view;
pub mod worker;

#[cfg(test)]
mod tests;

use crate::edge::options::PlanOptionArgs;
use crate::edge::UsageError;
use anyhow::{Context, Result};
use app::{App, Effect, Msg, Settings};
use carload::shipment::plan::{check_options, PlanOptions};
use carload::shipment::{read_shipment, Batch};
use clap::Args;
use ratatui::backend::{Backend, CrosstermBackend, TestBackend};
use ratatui::Terminal;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `carload tui`.
#[derive(Args, Debug, Clone)]
pub struct TuiArgs {
    /// Files and folders to browse (default: the opened shipment's inputs, else the current folder).
    pub paths: Vec<PathBuf>,
    /// Shipment file: opened if it exists (its batches, its options); `s` saves to it.
    #[arg(long, value_name = "FILE")]
    pub shipment: Option<PathBuf>,
    /// CAR folder: where builds write and built batches' results are found (as `build --out`;
    /// default: the folders remembered for the shipment, the config's `out`, else the last one
    /// used). Repeat it, one per mounted drive in order, to spread the CARs over drives as
    /// `carload build --out D1 --out D2` does.
    #[arg(long, value_name = "DIR")]
    pub out: Vec<PathBuf>,
    /// With several --out drives: keep this much of each drive free (e.g. 1%, 50GiB).
    #[arg(long, value_name = "PCT|SIZE", default_value = "1%", value_parser = carload::shipment::drives::Reserve::parse)]
    pub reserve: carload::shipment::drives::Reserve,
    /// With several --out drives: use at most SIZE bytes of each (what its folder holds counts).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub drive_capacity: Option<u64>,
    /// Planning and DAG options (auto-pack packs with them).
    #[command(flatten)]
    pub options: PlanOptionArgs,
    /// Capture the mouse (click to select, wheel to scroll; the terminal's own text selection
    /// then needs Shift).
    #[arg(long)]
    pub mouse: bool,
    /// Folder for a dry run's temporary spool (default: the system's temporary folder).
    #[arg(long, value_name = "DIR")]
    pub tmpdir: Option<PathBuf>,
    /// Batches built at once by the workstation.
    #[arg(long, short, value_name = "N", default_value = "1")]
    pub jobs: usize,
    /// List carload's own outputs in the inputs as files to ship (else marked `!`), and save
    /// shipments that ship them.
    #[arg(long)]
    pub include_carload_outputs: bool,
    /// Measure the scan, key handling and auto-pack without a terminal; prints one JSON line.
    #[arg(long, hide = true)]
    pub bench: bool,
    /// Measure building every batch of --shipment into --out through the workstation's loop
    /// (drawn to an in-memory terminal); prints one JSON line.
    #[arg(long, hide = true, requires_all = ["shipment", "out"])]
    pub bench_build: bool,
}

fn parse_size_arg(s: &str) -> Result<u64, String> {
    carload::shipment::size::parse_size(s).map_err(|e| e.to_string())
}

/// What the workstation opens with.
struct Setup {
    settings: Settings,
    roots: Vec<PathBuf>,
    loaded: Vec<Batch>,
    mouse: bool,
    /// Flags the opened shipment's options override, as `--flag VALUE (the shipment's: …)`.
    overridden: Vec<String>,
    /// What the opening found worth saying (inputs gone since the shipment was planned).
    notes: Vec<String>,
}

fn setup(a: &TuiArgs) -> Result<Setup> {
    let cfg = config::load_config()?;
    let mut o = a.options.options(&cfg.size_defaults()?)?;
    let keys = match &cfg.keys {
        Some(changes) => keys::Keymap::with_changes(changes).map_err(|e| {
            let at = config::config_path().map(|p| p.display().to_string()).unwrap_or_else(|| "config".into());
            anyhow::anyhow!("{at}: {e}")
        })?,
        None => keys::Keymap::default(),
    };
    let state = config::load_state();
    let mut shipment = a.shipment.clone().map(|p| std::path::absolute(&p).unwrap_or(p));
    // Kept as given (exports name CARs by it, as `carload export --out` does), made absolute
    // only if the workstation moves to a shipment's base folder below. Without `--out`, the
    // folder this shipment was last built into, then the config's, then the last one used.
    let remembered = shipment.as_deref().map(|s| state.outs_of(s).to_vec()).unwrap_or_default();
    let mut outs: Vec<PathBuf> = if !a.out.is_empty() {
        a.out.clone()
    } else if !remembered.is_empty() {
        remembered
    } else {
        cfg.out.clone().or(state.out.clone()).into_iter().collect()
    };
    let mut deal = state.deal.clone().unwrap_or_default();
    if deal.provider.is_empty() {
        deal.provider = cfg.provider.clone().unwrap_or_default();
    }
    let mut inputs: Vec<String> = a.paths.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let mut loaded = Vec::new();
    let mut overridden = Vec::new();
    // The opened shipment's base and inputs, kept as recorded when its inputs are browsed: its
    // batches' fingerprints cover the base, and its sources may have moved away since.
    let mut recorded: Option<(Option<String>, Vec<String>)> = None;
    let mut notes = Vec::new();
    if let Some(path) = shipment.clone().filter(|p| p.exists()) {
        let f = std::fs::File::open(&path).with_context(|| path.display().to_string())?;
        let s =
            read_shipment(std::io::BufReader::with_capacity(1 << 20, f)).with_context(|| path.display().to_string())?;
        let h = &s.header;
        o = PlanOptions::of_header(h);
        overridden = a.options.overridden_by(&o);
        if inputs.is_empty() {
            inputs = h.inputs.clone();
            recorded = Some((h.base.clone(), h.inputs.clone()));
        }
        // Relative names in the shipment resolve against its base: browse from there.
        match h.base.as_deref() {
            Some(base) if Path::new(base).is_dir() => {
                let here = std::env::current_dir().ok();
                if here.as_deref() != Some(Path::new(base)) {
                    outs = outs.into_iter().map(|p| std::path::absolute(&p).unwrap_or(p)).collect();
                    std::env::set_current_dir(base)
                        .with_context(|| format!("entering the shipment's base folder {base}"))?;
                }
            }
            Some(base) if recorded.is_some() => {
                // Its sources moved or vanished: nothing to browse, its built batches still ship.
                notes.push(format!("the shipment's base folder {base} is gone: built batches stay usable"));
                inputs.clear();
            }
            _ => {}
        }
        loaded = s.batches;
        shipment = Some(path);
    }
    check_options(&o)?;
    if inputs.is_empty() && recorded.is_none() {
        inputs.push(".".into());
    }
    let mut roots: Vec<PathBuf> = inputs.iter().map(|i| carload::shipment::file::name_to_path(i)).collect();
    if recorded.is_some() {
        // A shipment outlives its sources: inputs that vanished are left out of the browser.
        let (here, gone): (Vec<PathBuf>, Vec<PathBuf>) = roots.into_iter().partition(|r| r.exists());
        if let Some(g) = gone.first() {
            notes.push(format!(
                "{} of the shipment's inputs not found ({}{})",
                gone.len(),
                g.display(),
                if gone.len() > 1 { ", …" } else { "" }
            ));
        }
        roots = here;
    }
    for r in &roots {
        std::fs::metadata(r).with_context(|| r.display().to_string())?;
    }
    // Shipment names are relative to a base folder (as `plan` makes them): the roots keep their
    // names as given on screen and are named below the base in the shipment.
    let cwd = std::env::current_dir().context("reading the working folder")?;
    let resolved = carload::shipment::plan::resolve_inputs(&cwd, &roots)?;
    let (base, inputs) = match recorded {
        Some(r) => r,
        None => (Some(carload::shipment::file::path_to_name(&resolved.base)), resolved.input_names()),
    };
    let root_names = {
        use std::os::unix::ffi::OsStrExt;
        resolved.names.iter().map(|n| n.as_os_str().as_bytes().to_vec()).collect()
    };
    let tmpdir = a.tmpdir.clone().unwrap_or_else(std::env::temp_dir);
    // Several folders (or one holding a drive log): a drive set, as `carload build` takes it.
    let drives = if carload::shipment::drives::DriveSet::is_set(&outs) { outs.clone() } else { Vec::new() };
    let out = outs.first().cloned();
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    Ok(Setup {
        settings: Settings {
            plan: o,
            inputs,
            base,
            root_names,
            shipment,
            out,
            drives,
            tmpdir,
            color,
            stale_after: carload::shipment::lock::DEFAULT_STALE_AFTER,
            deal,
            keys,
            config_path: config::config_path(),
            include_carload_outputs: a.include_carload_outputs,
            pack_top_up: cfg.pack_top_up.unwrap_or(true),
        },
        roots,
        loaded,
        mouse: a.mouse || cfg.mouse.unwrap_or(false),
        overridden,
        notes,
    })
}

/// Runs `carload tui` (and `carload` alone: the start screen first).
pub fn run(a: TuiArgs) -> Result<()> {
    if a.bench {
        return bench(&a);
    }
    if a.bench_build {
        return bench_build(&a);
    }
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return Err(UsageError(
            "carload tui needs a terminal (standard input and output are not a TTY); use `carload plan` in scripts"
                .into(),
        )
        .into());
    }
    if std::env::args_os().len() <= 1 {
        return start(a);
    }
    run_on(a)
}

/// Runs the workstation on a terminal with `a`.
fn run_on(a: TuiArgs) -> Result<()> {
    let s = setup(&a)?;
    if let Some(ship) = s.settings.shipment.as_deref().filter(|p| p.exists()) {
        // Offered by `carload` alone next time, with the folder given for it.
        let given = if a.out.is_empty() { Vec::new() } else { s.settings.outs() };
        config::remember_shipment_outs(ship, &given);
    }
    let (tx, rx) = mpsc::channel();
    let mut workers = worker::Workers::new(tx.clone(), s.settings.tmpdir.clone());
    workers.jobs = a.jobs.max(1);
    workers.ship_outputs = a.include_carload_outputs;
    workers.drives.lock().unwrap().options = drives::DriveOptions { reserve: a.reserve, capacity: a.drive_capacity };
    let size = crossterm::terminal::size().context("reading the terminal size")?;
    let profile = s.settings.plan.profile;
    let mut app = App::new(s.settings, size);
    app.load_batches(s.loaded);
    app.note_overridden(&s.overridden);
    if !s.notes.is_empty() {
        let notes = s.notes.join("; ");
        app.message = Some(match app.message.take() {
            Some((level, said)) => (level, format!("{said}; {notes}")),
            None => (app::Level::Info, notes),
        });
    }
    let guard = terminal::Guard::enter(s.mouse).context("setting up the terminal")?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    term.draw(|f| view::draw(f, &app))?;
    workers.scan(s.roots, profile);
    std::thread::spawn(move || loop {
        let msg = match crossterm::event::read() {
            Ok(crossterm::event::Event::Key(k)) => Msg::Key(k),
            Ok(crossterm::event::Event::Mouse(m)) => Msg::Mouse(m),
            Ok(crossterm::event::Event::Resize(w, h)) => Msg::Resize(w, h),
            Ok(_) => continue,
            Err(_) => break,
        };
        if tx.send(msg).is_err() {
            break;
        }
    });
    let r = event_loop(&mut app, &mut term, &rx, &mut workers, &|_, _| false);
    workers.stop_all();
    drop(term);
    drop(guard);
    r
}

/// `carload` alone on a terminal (the command router runs the workstation with its defaults
/// when no command is given): the start screen offers the recent shipments and browsing the
/// current folder (straight to browsing when no recent shipment exists); a shipment chosen
/// opens as `--shipment` opens it.
fn start(mut a: TuiArgs) -> Result<()> {
    match start::choose(&config::load_state())? {
        start::Choice::Quit => Ok(()),
        start::Choice::Browse => run_on(a),
        start::Choice::Shipment(p) => {
            a.shipment = Some(p);
            run_on(a)
        }
    }
}

/// Redraws at most this often while only background messages arrive.
const PACE: Duration = Duration::from_millis(50);
/// Longest stretch of background messages handled before drawing again.
const BUDGET: Duration = Duration::from_millis(12);

fn event_loop<B: Backend>(
    app: &mut App,
    term: &mut Terminal<B>,
    rx: &mpsc::Receiver<Msg>,
    workers: &mut worker::Workers,
    until: &dyn Fn(&App, &worker::Workers) -> bool,
) -> Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let mut last_draw = Instant::now();
    let mut last_tick = Instant::now();
    let mut pending = false;
    loop {
        let idle = if workers.busy() > 0 { Duration::from_millis(250) } else { Duration::from_secs(1) };
        let wait = if pending { PACE.saturating_sub(last_draw.elapsed()) } else { idle };
        let first = match rx.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let start = Instant::now();
        let mut urgent = false;
        let mut next = first;
        while let Some(msg) = next {
            urgent |= matches!(msg, Msg::Key(_) | Msg::Mouse(_) | Msg::Resize(..));
            if let Msg::Saved(Ok(p)) = &msg {
                config::remember_shipment_outs(p, &app.settings.outs());
            }
            let finished = match &msg {
                Msg::Build { id, report: app::Report::Finished(done), .. } => {
                    if let (app::Done::Built(..), Some(ship)) = (done, &app.settings.shipment) {
                        // Reopening this shipment finds what it built.
                        config::remember_shipment_outs(ship, &app.settings.outs());
                    }
                    Some(id.clone())
                }
                _ => None,
            };
            for e in app.update(msg) {
                match e {
                    Effect::Quit => {
                        if workers.busy() > 0 {
                            workers.cancel_builds(Duration::from_secs(30));
                        }
                        return Ok(());
                    }
                    Effect::Copy(text) => copy_to_clipboard(&text),
                    e => workers.run(e),
                }
            }
            if let Some(id) = finished {
                workers.finished(&id);
            }
            pending = true;
            if urgent || start.elapsed() > BUDGET {
                break;
            }
            next = rx.try_recv().ok();
        }
        if workers.busy() > 0 && last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            app.update(Msg::Tick(worker::now()));
            pending = true;
        }
        if pending && (urgent || last_draw.elapsed() >= PACE) {
            term.draw(|f| view::draw(f, app))?;
            last_draw = Instant::now();
            pending = false;
        }
        if until(app, workers) {
            return Ok(());
        }
    }
}

/// CPU time of the calling thread, in seconds.
fn thread_cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    ru.ru_utime.tv_sec as f64
        + ru.ru_utime.tv_usec as f64 / 1e6
        + ru.ru_stime.tv_sec as f64
        + ru.ru_stime.tv_usec as f64 / 1e6
}

/// `--bench-build`: opens the shipment, scans, presses `B` and runs the terminal loop (drawing
/// to a 120×40 in-memory terminal) until every batch is built; reports the wall time and the
/// interface thread's own CPU time.
fn bench_build(a: &TuiArgs) -> Result<()> {
    let s = setup(a)?;
    let (tx, rx) = mpsc::channel();
    let mut workers = worker::Workers::new(tx.clone(), s.settings.tmpdir.clone());
    workers.jobs = a.jobs.max(1);
    workers.drives.lock().unwrap().options = drives::DriveOptions { reserve: a.reserve, capacity: a.drive_capacity };
    let profile = s.settings.plan.profile;
    let mut app = App::new(s.settings, (120, 40));
    app.load_batches(s.loaded);
    let mut term = Terminal::new(TestBackend::new(120, 40))?;
    workers.scan(s.roots, profile);
    event_loop(&mut app, &mut term, &rx, &mut workers, &|app, _| app.scan_secs.is_some())?;
    let bytes: u64 = app.batches.list.iter().map(|b| b.bytes(&app.tree)).sum();
    let (cpu0, t0) = (thread_cpu_secs(), Instant::now());
    let key = Msg::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('B'),
        crossterm::event::KeyModifiers::NONE,
    ));
    tx.send(key)?;
    let started = std::cell::Cell::new(false);
    event_loop(&mut app, &mut term, &rx, &mut workers, &|app, w| {
        if w.busy() > 0 {
            started.set(true);
        }
        started.get() && w.busy() == 0 && app.builds.busy_here() == 0
    })?;
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), thread_cpu_secs() - cpu0);
    let failed = app.builds.activity.values().filter(|a| matches!(a, builds::Activity::Failed(_))).count();
    let out = serde_json::json!({
        "batches": app.batches.list.len(),
        "built": app.batches.list.iter().filter(|b| b.result.is_some()).count(),
        "failed": failed,
        "bytes": bytes,
        "build_s": wall,
        "mb_s": bytes as f64 / wall / 1e6,
        "ui_cpu_s": cpu,
        "ui_cpu_pct": cpu / wall * 100.0,
    });
    println!("{out}");
    Ok(())
}

/// Puts `text` on the clipboard through the terminal (OSC 52); terminals that do not allow it
/// ignore the sequence.
fn copy_to_clipboard(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = write!(out, "\x1b]52;c;{}\x07", base64(text.as_bytes()));
    let _ = out.flush();
}

/// Standard base64 with padding (for OSC 52).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn rss_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `--bench`: the scan through the same channel and update function as the terminal loop, then
/// key handling in the largest folder and an auto-pack of everything, drawn on a 120×40
/// in-memory terminal.
fn bench(a: &TuiArgs) -> Result<()> {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let t0 = Instant::now();
    let s = setup(a)?;
    let (tx, rx) = mpsc::channel();
    let mut workers = worker::Workers::new(tx, s.settings.tmpdir.clone());
    let profile = s.settings.plan.profile;
    let mut app = App::new(s.settings, (120, 40));
    let mut term = Terminal::new(TestBackend::new(120, 40))?;
    term.draw(|f| view::draw(f, &app))?;
    let first_frame_ms = t0.elapsed().as_secs_f64() * 1e3;
    workers.scan(s.roots, profile);
    let mut last_draw = Instant::now();
    let scan_s = loop {
        let msg = rx.recv()?;
        let done = if let Msg::ScanDone(secs) = &msg { Some(*secs) } else { None };
        app.update(msg);
        if last_draw.elapsed() >= PACE {
            term.draw(|f| view::draw(f, &app))?;
            last_draw = Instant::now();
        }
        if let Some(secs) = done {
            break secs;
        }
    };
    let scan_wall_s = t0.elapsed().as_secs_f64();
    term.draw(|f| view::draw(f, &app))?;
    let rss_after_scan = rss_kib("VmRSS:");
    // The largest folder, by direct entries.
    let big = (1..app.tree.folders.len()).max_by_key(|&i| app.tree.folders[i].children.len()).unwrap_or(0);
    let big_entries = app.tree.folders[big].children.len();
    let node = app.tree.folders[big].node;
    let key = |c: KeyCode| Msg::Key(KeyEvent::new(c, KeyModifiers::NONE));
    if node != tree::NONE {
        let parent = app.tree.node(node).parent;
        app.browser.folder = if parent == tree::NONE { 0 } else { app.tree.node(parent).folder };
        app.browser.selected = node;
        app.update(key(KeyCode::Enter));
    }
    let mut keys = Vec::new();
    for i in 0..400 {
        keys.push(match i % 40 {
            0..=19 => KeyCode::Char('j'),
            20..=24 => KeyCode::PageDown,
            25..=29 => KeyCode::Char(' '),
            30 => KeyCode::Char('S'),
            31 => KeyCode::Char('C'),
            32 => KeyCode::Char('N'),
            33 => KeyCode::Char('G'),
            34 => KeyCode::Char('g'),
            35 => KeyCode::PageUp,
            36 => KeyCode::Tab,
            37 => KeyCode::Tab,
            _ => KeyCode::Char('k'),
        });
    }
    let mut lat = Vec::with_capacity(keys.len());
    for k in keys {
        let t = Instant::now();
        app.update(key(k));
        term.draw(|f| view::draw(f, &app))?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    // Auto-pack everything: mark each root, press p, wait for the planner.
    app.marks.clear();
    for r in app.tree.folders[0].children.clone() {
        app.marks.mark(&app.tree, r);
    }
    let t = Instant::now();
    let effects = app.update(key(KeyCode::Char('p')));
    let files = app.marked_totals().files;
    for e in effects {
        workers.run(e);
    }
    let batches = loop {
        let msg = rx.recv()?;
        let done = matches!(msg, Msg::Packed { .. });
        app.update(msg);
        if done {
            break app.batches.list.len();
        }
    };
    term.draw(|f| view::draw(f, &app))?;
    let pack_s = t.elapsed().as_secs_f64();
    // The preview of the largest batch: key → frame while it is open.
    let largest = (0..app.batches.list.len()).max_by_key(|&i| app.batches.list[i].len()).unwrap_or(0);
    app.focus = app::Focus::Batches;
    app.pane.row = largest;
    let t = Instant::now();
    app.update(key(KeyCode::Char('v')));
    term.draw(|f| view::draw(f, &app))?;
    let preview_open_ms = t.elapsed().as_secs_f64() * 1e3;
    let preview_entries = app.batches.list.get(largest).map_or(0, |b| b.len());
    let mut plat = Vec::with_capacity(200);
    for i in 0..200 {
        let k = match i % 20 {
            0..=11 => KeyCode::Char('j'),
            12..=15 => KeyCode::PageDown,
            16 => KeyCode::End,
            17 => KeyCode::Home,
            _ => KeyCode::Char('k'),
        };
        let t = Instant::now();
        app.update(key(k));
        term.draw(|f| view::draw(f, &app))?;
        plat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    plat.sort_by(|a, b| a.total_cmp(b));
    let ppct = |p: f64| plat[((plat.len() - 1) as f64 * p).round() as usize];
    let g = app.tree.grand_totals();
    let out = serde_json::json!({
        "entries": app.tree.len(),
        "files": g.files,
        "dirs": app.tree.folders.len() - 1,
        "bytes": g.bytes,
        "scan_s": scan_s,
        "scan_wall_s": scan_wall_s,
        "rss_kib": rss_after_scan,
        "peak_rss_kib": rss_kib("VmHWM:"),
        "first_frame_ms": first_frame_ms,
        "big_folder_entries": big_entries,
        "key_p50_ms": pct(0.5),
        "key_p95_ms": pct(0.95),
        "key_max_ms": pct(1.0),
        "pack_files": files,
        "pack_s": pack_s,
        "pack_batches": batches,
        "preview_entries": preview_entries,
        "preview_open_ms": preview_open_ms,
        "preview_key_p50_ms": ppct(0.5),
        "preview_key_p95_ms": ppct(0.95),
    });
    println!("{out}");
    Ok(())
}
