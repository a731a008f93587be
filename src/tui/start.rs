//! The start screen of `carload` alone on a terminal: the recent shipments (remembered in the
//! state file) with how many of their batches are built in the output folder remembered for
//! each, and browsing the current folder. Choosing a shipment opens it as `--shipment` does.
//!
//! Built counts are the library's judgement ([`carload::shipment::status::status_of`], as
//! `carload status` reads them: a batch at a time, no file list held), read on a background
//! thread so the screen shows at once.

use super::config::State;
use anyhow::{Context, Result};
use carload::shipment::file::{index_shipment, read_batch_at};
use carload::shipment::status::{status_of, summary, Watched};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One recent shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recent {
    /// The shipment file (absolute).
    pub path: PathBuf,
    /// The output folders remembered for it (one, or a drive set's).
    pub outs: Vec<PathBuf>,
    /// Where its build stands, once read: `Built K/N`, or why it cannot be read.
    pub built: Option<Result<(usize, usize), String>>,
}

/// What the operator chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Open this shipment (as `--shipment` would, with its remembered folder).
    Shipment(PathBuf),
    /// Browse the current folder.
    Browse,
    /// Leave.
    Quit,
}

/// The start screen's state: the recent shipments, then "browse the current folder".
#[derive(Debug, Clone)]
pub struct Start {
    /// Recent shipments that still exist, most recent first.
    pub recent: Vec<Recent>,
    /// The current folder (browsed by the last row).
    pub here: PathBuf,
    /// The selected row (`recent.len()` is the browse row).
    pub selected: usize,
}

impl Start {
    /// The screen for the shipments `state` remembers that still exist.
    pub fn new(state: &State, here: PathBuf) -> Start {
        let recent = state
            .recent_shipments
            .iter()
            .filter(|p| p.is_file())
            .map(|p| Recent { path: p.clone(), outs: state.outs_of(p).to_vec(), built: None })
            .collect();
        Start { recent, here, selected: 0 }
    }

    /// Handles a key: moves the selection, or returns the choice.
    pub fn key(&mut self, k: &KeyEvent) -> Option<Choice> {
        if k.kind == KeyEventKind::Release {
            return None;
        }
        let last = self.recent.len();
        match k.code {
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab => self.selected = (self.selected + 1).min(last),
            KeyCode::Up | KeyCode::Char('k') | KeyCode::BackTab => self.selected = self.selected.saturating_sub(1),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::End | KeyCode::Char('G') => self.selected = last,
            KeyCode::Char('b') | KeyCode::Char('.') => return Some(Choice::Browse),
            KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => {
                return match self.recent.get(self.selected) {
                    // Its row says why it does not read: opening it would only end the program.
                    Some(r) if matches!(r.built, Some(Err(_))) => None,
                    Some(r) => Some(Choice::Shipment(r.path.clone())),
                    None => Some(Choice::Browse),
                };
            }
            KeyCode::Char('q') | KeyCode::Esc => return Some(Choice::Quit),
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => return Some(Choice::Quit),
            _ => {}
        }
        None
    }
}

/// `Built K/N` of `shipment` in `outs` (one folder, or a drive set's: each batch judged on its
/// drive), judged as `carload status` judges it (locks by `rule`); without `outs`, `0/N` once
/// the shipment reads (a shipment that does not read says why).
pub fn built_count(
    shipment: &Path,
    outs: &[PathBuf],
    rule: &carload::shipment::lock::Rule,
) -> Result<(usize, usize), String> {
    let name = |e: &dyn std::fmt::Display| format!("{}: {e}", shipment.display());
    let f = std::fs::File::open(shipment).map_err(|e| name(&e))?;
    let index = index_shipment(std::io::BufReader::with_capacity(1 << 20, &f)).map_err(|e| name(&e))?;
    let Some(out) = outs.first() else { return Ok((0, index.batches.len())) };
    let watched = index
        .batches
        .iter()
        .map(|at| read_batch_at(&f, &index.header, at).map(|b| Watched::of(&index.header, &b)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| name(&e))?;
    let batch = |i: usize| read_batch_at(&f, &index.header, &index.batches[i]).ok();
    let now = std::time::SystemTime::now();
    let list = if carload::shipment::drives::DriveSet::is_set(outs) {
        let present: Vec<PathBuf> = outs.iter().filter(|d| d.is_dir()).cloned().collect();
        let set = carload::shipment::drives::DriveSet::read(&present).map_err(|e| e.to_string())?;
        let outs = carload::shipment::drives::Outs::Drives(&set);
        carload::shipment::status::status_at(outs, &index.header, &watched, &batch, now, rule)
    } else {
        status_of(out, &index.header, &watched, &batch, now, rule)
    };
    let t = summary(&list);
    Ok((t.built, t.batches))
}

/// Draws the start screen.
pub fn draw(f: &mut Frame, s: &Start) {
    let area = f.area();
    let block = Block::default().borders(Borders::ALL).title(" carload · Recent shipments ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let w = inner.width as usize;
    let mut lines = Vec::new();
    let selected = Style::default().add_modifier(Modifier::REVERSED);
    for (i, r) in s.recent.iter().enumerate() {
        let built = match (&r.built, &r.outs[..]) {
            (None, _) => "reading…".to_string(),
            (Some(Ok((_, n))), []) => format!("{} · no output folder remembered", batches(*n)),
            (Some(Ok((k, n))), [out]) => format!("Built {k}/{n} in {}", out.display()),
            (Some(Ok((k, n))), outs) => format!("Built {k}/{n} on {} drives ({} …)", outs.len(), outs[0].display()),
            (Some(Err(e)), _) => format!("unreadable: {e}"),
        };
        let text = fit(&format!(" {}  ·  {built}", r.path.display()), w);
        lines.push(Line::styled(text, if i == s.selected { selected } else { Style::default() }));
    }
    lines.push(Line::raw(""));
    let browse = fit(&format!(" Browse the current folder ({})", s.here.display()), w);
    lines.push(Line::styled(browse, if s.selected == s.recent.len() { selected } else { Style::default() }));
    lines.push(Line::raw(""));
    lines.push(Line::raw(fit(" ↑/↓ choose · Enter opens · b browses the current folder · q quits", w)));
    f.render_widget(Paragraph::new(lines), Rect { height: inner.height, ..inner });
}

/// `n batches`, plural right.
fn batches(n: usize) -> String {
    crate::tui::app::plural(n as u64, "batch", "batches")
}

/// `s` cut to `w` columns of display width (wide characters count two).
fn fit(s: &str, w: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let s = carload::text::escape_controls(s);
    if unicode_width::UnicodeWidthStr::width(&*s) <= w {
        return s.into_owned();
    }
    let mut t = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if used + cw + 1 > w {
            break;
        }
        used += cw;
        t.push(c);
    }
    t.push('…');
    t
}

/// Shows the start screen over `state` and returns the choice; the built counts are read on a
/// background thread while it shows.
pub fn choose(state: &State) -> Result<Choice> {
    let here = std::env::current_dir().context("reading the working folder")?;
    let mut s = Start::new(state, here);
    if s.recent.is_empty() {
        return Ok(Choice::Browse);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let jobs: Vec<(usize, PathBuf, Vec<PathBuf>)> =
        s.recent.iter().enumerate().map(|(i, r)| (i, r.path.clone(), r.outs.clone())).collect();
    std::thread::spawn(move || {
        let me = crate::edge::host::owner();
        let rule =
            carload::shipment::lock::Rule::new(&me, Duration::from_secs(carload::shipment::lock::DEFAULT_STALE_AFTER));
        for (i, path, outs) in jobs {
            if tx.send((i, built_count(&path, &outs, &rule))).is_err() {
                return;
            }
        }
    });
    let _guard = super::terminal::Guard::enter(false).context("setting up the terminal")?;
    let mut term = ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
    loop {
        while let Ok((i, built)) = rx.try_recv() {
            s.recent[i].built = Some(built);
        }
        term.draw(|f| draw(f, &s))?;
        if !crossterm::event::poll(Duration::from_millis(100)).context("reading the terminal")? {
            continue;
        }
        if let Event::Key(k) = crossterm::event::read().context("reading the terminal")? {
            if let Some(c) = s.key(&k) {
                return Ok(c);
            }
        }
    }
}
