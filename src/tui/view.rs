//! Drawing: a pure function of the state. Only the visible rows are formatted, so a folder of
//! any size draws in the same time.

use super::app::{digits, noun, App, Focus, Left, Level, Modal, PreviewContent, Shown, Sort, FORM_FIELDS};
use super::batches::{Frozen, WsBatch};
use super::builds::{clock, Activity};
use super::tree::NONE;
use carload::human::{ibytes, rate as human_rate, secs as human_secs};
use carload::walk::Kind;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

/// Smallest usable terminal.
pub const MIN_SIZE: (u16, u16) = (80, 24);

/// Columns of the browser pane in a terminal `w` wide.
pub fn browser_width(w: u16) -> u16 {
    w * 3 / 5
}

struct Theme {
    color: bool,
}

impl Theme {
    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    fn selected(&self, focused: bool) -> Style {
        if focused {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default().add_modifier(Modifier::UNDERLINED)
        }
    }
    fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
}

/// Draws the whole screen: a pure function of the state (the update function keeps the derived
/// data the view shows — the browser's rows, the marked totals — up to date).
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let th = Theme { color: app.settings.color };
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let text = format!(
            "Terminal too small: {}×{}. carload needs at least {}×{}; enlarge it or press q to quit.",
            area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
        );
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let rows = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .split(area);
    let w = area.width as usize;
    f.render_widget(Paragraph::new(title(app, w)).style(th.bold()), rows[0]);
    f.render_widget(Paragraph::new(fit(&location(app), w)), rows[1]);
    let bw = browser_width(area.width);
    let panes = Layout::horizontal([Constraint::Length(bw), Constraint::Min(10)]).split(rows[2]);
    match app.left {
        Left::Browser => draw_browser(f, app, panes[0], &th),
        Left::Progress => draw_progress(f, app, panes[0], &th),
        Left::Drives => draw_drives(f, app, panes[0], &th),
        Left::Deals => draw_deals(f, app, panes[0], &th),
    }
    draw_batches(f, app, panes[1], &th);
    let line = |text: String| {
        let text = if width(&text) > w { without_byte_counts(&text) } else { text };
        fit(&text, w)
    };
    f.render_widget(Paragraph::new(line(clean(&details(app)).into_owned())), rows[3]);
    f.render_widget(Paragraph::new(line(marked_line(app))), rows[4]);
    f.render_widget(Paragraph::new(line(status_line(app))), rows[5]);
    let footer = match &app.message {
        Some((Level::Error, m)) => Line::styled(fit(m, w), th.fg(Color::Red).add_modifier(Modifier::BOLD)),
        Some((Level::Info, m)) => Line::styled(fit(m, w), th.fg(Color::Green)),
        None => {
            let items: Vec<String> = footer_keys(app).split(" · ").map(str::to_owned).collect();
            // The help and quit keys stay; the others from the first while they fit.
            let keep = if items.len() > 2 { 2 } else { 0 };
            Line::styled(fit_parts(&items, keep, w), th.fg(Color::DarkGray))
        }
    };
    f.render_widget(Paragraph::new(footer), rows[6]);
    if let Some(m) = &app.modal {
        draw_modal(f, app, m, area, &th);
    }
}

/// The title in `w` columns: the whole when it fits, else without the CAR bound, the profile and
/// the sector (in that order), the shipment's path shortened from the left (its file name kept).
fn title(app: &App, w: usize) -> String {
    let s = &app.settings;
    let file = s.shipment.as_ref().map_or("no shipment file yet".into(), |p| p.display().to_string());
    let file = clean(&file).into_owned();
    let modified = if app.dirty { " [modified]" } else { "" };
    let piece = ibytes(s.plan.piece_size);
    let variants = [
        format!(
            " · sector {} · piece {piece} (CAR ≤ {} bytes) · {}",
            ibytes(s.plan.sector_size),
            digits(app.capacity()),
            s.plan.profile.describe()
        ),
        format!(" · sector {} · piece {piece} · {}", ibytes(s.plan.sector_size), s.plan.profile.describe()),
        format!(" · sector {} · piece {piece}", ibytes(s.plan.sector_size)),
        format!(" · piece {piece}"),
    ];
    let head = "carload · ";
    for rest in &variants {
        let line = format!("{head}{file}{modified}{rest}");
        if width(&line) <= w {
            return line;
        }
    }
    // The path from the left, keeping its end (the file name) and what follows.
    let rest = format!("{modified}{}", variants[3]);
    let room = w.saturating_sub(width(head) + width(&rest) + 1);
    let chars: Vec<char> = file.chars().collect();
    let mut start = chars.len();
    let mut used = 0;
    while start > 0 {
        let cw = unicode_width::UnicodeWidthChar::width(chars[start - 1]).unwrap_or(0);
        if used + cw > room {
            break;
        }
        used += cw;
        start -= 1;
    }
    let tail: String = chars[start..].iter().collect();
    fit(&format!("{head}…{tail}{rest}"), w).trim_end().to_string()
}

fn location(app: &App) -> String {
    let b = &app.browser;
    let sort = match b.sort {
        Sort::Name => "name",
        Sort::Size => "size",
        Sort::Count => "files",
    };
    // Names ascend by default, sizes and counts descend; the sort key again reverses.
    let arrow = if (b.sort == Sort::Name) != b.reverse { "↑" } else { "↓" };
    let mut s = format!("▸ {}  · sorted by {sort} {arrow}", app.location());
    if b.editing_filter || !b.filter.is_empty() {
        s.push_str(&format!("  · filter /{}{}", b.filter, if b.editing_filter { "▏" } else { "" }));
    }
    if !b.show_hidden {
        s.push_str("  · dot-entries hidden");
    }
    s
}

fn batch_label(app: &App, id: u32) -> String {
    let t = &app.tree;
    if t.node(id).kind.is_file() {
        return match app.batches.batch_of(id) {
            Some((b, 1)) => app.batches.list[b].id.clone(),
            Some((b, n)) => format!("{}+{}", app.batches.list[b].id, n - 1),
            None => String::new(),
        };
    }
    match t.folder_of(id) {
        Some(f) if f.totals.files > 0 && f.batched >= f.totals.files => "all".into(),
        Some(f) if f.batched > 0 => "part".into(),
        _ => String::new(),
    }
}

/// `s` with control characters escaped: file names and messages must never drive the terminal.
pub fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    carload::text::escape_controls(s)
}

/// Columns `s` takes on a terminal (CJK and most emoji take two).
pub fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// `s` (control characters escaped) in exactly `w` columns: padded, or cut with `…` at a
/// character boundary, measured by display width so wide characters never overflow.
pub fn fit(s: &str, w: usize) -> String {
    let s = clean(s);
    let n = width(&s);
    if n <= w {
        return format!("{s}{}", " ".repeat(w - n));
    }
    if w == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + cw > w - 1 {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    // A wide character that did not fit leaves a column: pad it.
    out.push_str(&" ".repeat(w - 1 - used));
    out
}

/// `s` without its exact byte counts in parentheses (`42 GiB (44,757,420,841 bytes)` → `42 GiB`),
/// the first thing a line too wide gives up.
fn without_byte_counts(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(" (") {
        let Some(j) = rest[i..].find(')').map(|j| i + j) else { break };
        let inner = &rest[i + 2..j];
        out.push_str(&rest[..i]);
        if !(inner.ends_with(" bytes") && inner[..inner.len() - 6].chars().all(|c| c.is_ascii_digit() || c == ',')) {
            out.push_str(&rest[i..=j]);
        }
        rest = &rest[j + 1..];
    }
    out.push_str(rest);
    out
}

/// Parts joined by ` · ` in at most `w` columns: the parts from `keep_last` on are kept (the
/// help and quit keys), those before them kept from the first while they fit, the rest
/// replaced by `…`; a first part alone too wide is cut. Never cuts a part in the middle
/// otherwise.
pub fn fit_parts(parts: &[String], keep_last: usize, w: usize) -> String {
    let all = parts.join(" · ");
    if width(&all) <= w {
        return all;
    }
    let split = parts.len().saturating_sub(keep_last);
    let (head, tail) = parts.split_at(split);
    let tail = tail.join(" · ");
    let mut kept: Vec<&str> = Vec::new();
    for p in head {
        let mut trial = kept.clone();
        trial.push(p);
        let line =
            format!("{} · …{}", trial.join(" · "), if tail.is_empty() { String::new() } else { format!(" · {tail}") });
        if width(&line) > w {
            break;
        }
        kept.push(p);
    }
    if kept.is_empty() {
        return fit(&all, w).trim_end().to_string();
    }
    format!("{} · …{}", kept.join(" · "), if tail.is_empty() { String::new() } else { format!(" · {tail}") })
}

fn pane_block(title: String, focused: bool, th: &Theme) -> Block<'static> {
    let style = if focused { th.fg(Color::Cyan).add_modifier(Modifier::BOLD) } else { Style::default() };
    Block::default().borders(Borders::ALL).title(Span::styled(title, style)).border_style(style)
}

fn draw_browser(f: &mut Frame, app: &App, area: Rect, th: &Theme) {
    let focused = app.focus == Focus::Browser;
    let b = &app.browser;
    let title = format!(
        " Browser {} ",
        if b.rows.is_empty() {
            String::new()
        } else {
            format!("{}/{}", app.selected_row() + 1, digits(b.rows.len() as u64))
        }
    );
    let block = pane_block(title, focused, th);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let w = inner.width as usize;
    let wide = w >= 56;
    let (size_w, files_w, car_w, batch_w) = (9, if wide { 9 } else { 0 }, if wide { 9 } else { 0 }, 9);
    let name_w = w.saturating_sub(2 + size_w + files_w + car_w + batch_w);
    let mut lines = Vec::with_capacity(inner.height as usize);
    let mut head = format!("  {}{:>size_w$}", fit("NAME", name_w), "SIZE");
    if wide {
        head.push_str(&format!("{:>files_w$}{:>car_w$}", "FILES", "CAR"));
    }
    head.push_str(&format!(" {:<8}", "BATCH"));
    lines.push(Line::styled(head, th.bold()));
    let t = &app.tree;
    let rows = inner.height.saturating_sub(1) as usize;
    if b.rows.is_empty() {
        let node = t.folders.get(b.folder as usize).map_or(NONE, |f| f.node);
        let unreadable = (node != NONE).then(|| t.error(node)).flatten().map(|e| format!("(not read: {e})"));
        let empty = if let Some(e) = &unreadable {
            e.as_str()
        } else if t.complete() {
            if b.filter.is_empty() {
                "(empty)"
            } else {
                "(no entry matches the filter)"
            }
        } else {
            "(scanning…)"
        };
        lines.push(Line::raw(format!("  {empty}")));
    }
    for &id in b.rows.iter().skip(b.offset).take(rows) {
        let n = t.node(id);
        let tot = t.totals(id);
        let marked = app.marks.is_marked(t, id);
        let err = t.error(id).is_some();
        let mut name = t.display_name(id).into_owned();
        match n.kind {
            Kind::Folder => name.push('/'),
            Kind::LinkToFile => name.push_str(" →"),
            Kind::LinkToFolder => name.push_str(" ⇢/"),
            _ => {}
        }
        if err {
            name.insert_str(0, "! ");
        }
        let complete = t.folder_of(id).is_none_or(|f| f.complete());
        let size =
            if n.kind == Kind::Folder && !complete { format!("≥{}", ibytes(tot.bytes)) } else { ibytes(tot.bytes) };
        let size = if n.kind.is_file() || n.kind == Kind::Folder { size } else { "-".into() };
        let mut row = format!("{}{}{:>size_w$}", if marked { "● " } else { "  " }, fit(&name, name_w), size);
        if wide {
            let (files, car) = if n.kind.is_file() || n.kind == Kind::Folder {
                (digits(tot.files), ibytes(tot.cost))
            } else {
                ("-".into(), "-".into())
            };
            row.push_str(&format!("{files:>files_w$}{car:>car_w$}"));
        }
        row.push_str(&format!(" {}", fit(&batch_label(app, id), 8)));
        let mut style = if err || !(n.kind.is_file() || n.kind == Kind::Folder) {
            th.fg(Color::Red)
        } else if marked {
            th.fg(Color::Yellow)
        } else if n.kind == Kind::Folder {
            th.fg(Color::Blue).add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        if id == b.selected {
            style = style.patch(th.selected(focused));
        }
        lines.push(Line::styled(row, style));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

/// First batch shown when batch `row` is selected and `per` batches fit (two lines each).
pub fn batch_offset(row: usize, per: usize) -> usize {
    if row >= per {
        row + 1 - per
    } else {
        0
    }
}

/// Batches that fit in the batches pane of a terminal `h` rows high.
pub fn batches_per_pane(h: u16) -> usize {
    super::app::list_rows(h).div_ceil(2)
}

fn draw_progress(f: &mut Frame, app: &App, area: Rect, th: &Theme) {
    let (built, total, done, bytes) = app.shipment_totals();
    let title = format!(" Builds · Built {}/{} ", digits(built as u64), digits(total as u64));
    let block = pane_block(title, app.focus == Focus::Browser, th);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let w = inner.width as usize;
    // The rate and ETA only mean something while builds run here.
    let rate = if app.builds.busy_here() > 0 { app.builds.rate() } else { 0.0 };
    let left = (bytes as f64 - done).max(0.0);
    let eta = if rate > 0.0 && left > 0.0 { format!(" · ETA {}", human_secs(left / rate)) } else { String::new() };
    let frac = if bytes == 0 { 0.0 } else { done / bytes as f64 };
    let lines = vec![
        Line::raw(fit(
            &format!(
                "Shipment: {} of {}{}{eta}",
                ibytes(done as u64),
                ibytes(bytes),
                if rate > 0.0 { format!(" · {}", human_rate(rate)) } else { String::new() }
            ),
            w,
        )),
        Line::from(vec![
            Span::styled(gauge(frac, w.saturating_sub(8)), th.fg(Color::Green)),
            Span::raw(format!(" {:>5.1}%", frac * 100.0)),
        ]),
    ];
    let spark_h = 2u16;
    let mut running: Vec<(&String, &super::builds::Progress)> = app
        .builds
        .activity
        .iter()
        .filter_map(|(id, a)| if let Activity::Running(p) = a { Some((id, p)) } else { None })
        .collect();
    running.sort_by(|a, b| a.0.cmp(b.0));
    let queued = app.builds.activity.values().filter(|a| matches!(a, Activity::Queued)).count();
    let mut body = Vec::new();
    for (id, p) in &running {
        let phase = match p.phase {
            carload::event::Phase::Checking => "checking sources",
            carload::event::Phase::Hashing => "hashing",
            carload::event::Phase::Writing => "writing CAR + commP",
        };
        let eta = p.eta().map_or(String::new(), |e| format!(" · ETA {}", human_secs(e)));
        body.push(Line::raw(fit(
            &format!(
                "{id} {phase} · {}/{} files · {}{eta}",
                digits(p.files),
                digits(p.files_total),
                human_rate(p.rate())
            ),
            w,
        )));
        body.push(Line::from(vec![
            Span::styled(gauge(p.fraction(), w.saturating_sub(8)), th.fg(Color::Cyan)),
            Span::raw(format!(" {:>5.1}%", p.fraction() * 100.0)),
        ]));
    }
    // Other builders whose locks report progress (as of their last heartbeat).
    let mut foreign: Vec<(&String, &str, &carload::shipment::lock::Progress)> = app
        .builds
        .activity
        .iter()
        .filter_map(|(id, a)| match a {
            Activity::Foreign { holder, stale: false, progress: Some(p), .. } => {
                Some((id, holder.trim_start_matches("host=").split(' ').next().unwrap_or(""), p))
            }
            _ => None,
        })
        .collect();
    foreign.sort_by(|a, b| a.0.cmp(b.0));
    for (id, host, p) in &foreign {
        body.push(Line::raw(fit(
            &format!(
                "{id} on {host}: {} · {} of {} read · {}/{} files",
                p.phase.name(),
                ibytes(p.bytes_done),
                ibytes(p.bytes_total),
                digits(p.files_done),
                digits(p.files_total)
            ),
            w,
        )));
        body.push(Line::from(vec![
            Span::styled(gauge(p.fraction(), w.saturating_sub(8)), th.fg(Color::Magenta)),
            Span::raw(format!(" {:>5.1}%", p.fraction() * 100.0)),
        ]));
    }
    if queued > 0 {
        body.push(Line::raw(format!("{queued} queued")));
    }
    if running.is_empty() && queued == 0 && foreign.is_empty() {
        body.push(Line::styled("No build running here: b builds the selected batch, B all.", th.fg(Color::DarkGray)));
    }
    body.push(Line::styled("Log", th.bold()));
    let rows = inner.height as usize;
    let used = lines.len() + spark_h as usize + body.len();
    let room = rows.saturating_sub(used);
    let log: Vec<&super::builds::LogLine> = app.builds.log.iter().rev().take(room).collect();
    let mut prev: Option<f64> = None;
    let mut log_lines: Vec<Line> = Vec::new();
    // Oldest shown first; "+Δ" is the time since the line before it.
    for (k, l) in log.iter().rev().enumerate() {
        let before = if k == 0 {
            let all: Vec<_> = app.builds.log.iter().collect();
            let idx = all.len() - log.len();
            (idx > 0).then(|| all[idx - 1].at)
        } else {
            prev
        };
        let delta = before.map_or("      ".to_string(), |b| format!("+{:>4.0}s", (l.at - b).max(0.0)));
        prev = Some(l.at);
        let style = if l.error { th.fg(Color::Red) } else { Style::default() };
        log_lines.push(Line::styled(fit(&format!("{} {delta} {}", clock(l.at), l.text), w), style));
    }
    let areas = Layout::vertical([
        Constraint::Length(lines.len() as u16),
        Constraint::Length(spark_h),
        Constraint::Length(body.len() as u16),
        Constraint::Min(0),
    ])
    .split(inner);
    f.render_widget(Paragraph::new(lines), areas[0]);
    let data: Vec<u64> = app.builds.history.iter().rev().take(w).rev().copied().collect();
    f.render_widget(ratatui::widgets::Sparkline::default().data(&data).style(th.fg(Color::Green)), areas[1]);
    f.render_widget(Paragraph::new(body), areas[2]);
    f.render_widget(Paragraph::new(log_lines), areas[3]);
}

fn state_of(app: &App, b: &WsBatch) -> (String, Color) {
    match app.batch_state(b) {
        Shown::Resolving => ("matching…".into(), Color::DarkGray),
        Shown::Queued => ("queued".into(), Color::Cyan),
        Shown::Running(p) => (format!("{:.0}% built", p.fraction() * 100.0), Color::Cyan),
        Shown::Built { sources_changed: None } => ("built".into(), Color::Green),
        Shown::Built { sources_changed: Some(_) } => ("built*".into(), Color::Yellow),
        Shown::Failed(_) => ("FAILED".into(), Color::Red),
        Shown::Foreign { stale: true, .. } => ("stale lock".into(), Color::Red),
        Shown::Foreign { holder, progress, .. } => {
            let host = holder.trim_start_matches("host=").split(' ').next().unwrap_or("").to_string();
            match progress {
                Some(p) => (format!("{:.0}%@{host}", p.fraction() * 100.0), Color::Magenta),
                None => (format!("@{host}"), Color::Magenta),
            }
        }
        Shown::Outputs(_) => ("corrupt!".into(), Color::Red),
        Shown::Waits(_) => ("waits".into(), Color::Yellow),
        Shown::Changed(_) if matches!(b.frozen, Some(Frozen::Changed { missing: 1.., .. })) => {
            ("missing!".into(), Color::Red)
        }
        Shown::Changed(_) => ("changed!".into(), Color::Red),
        Shown::Empty => ("empty".into(), Color::DarkGray),
        Shown::NotBuilt => ("not built".into(), Color::Reset),
    }
}

/// The drives pane: one entry per drive of the set, by position — its label, a gauge of the
/// bytes used of its size, the batches built of those assigned to it, `FULL` when its room is
/// below what the next batch needs, `not given` when its folder is not among the output
/// folders — then the folders given that are not there and the next batch's need.
fn draw_drives(f: &mut Frame, app: &App, area: Rect, th: &Theme) {
    let s = &app.settings;
    let seen = app.drives_seen.as_ref();
    let title = match seen {
        Some(d) if !s.drives.is_empty() => {
            let given = d.usage.iter().filter(|u| u.dir.is_some()).count();
            format!(" Drives · {given} of {} given ", d.usage.len())
        }
        _ => " Drives ".to_string(),
    };
    let block = pane_block(title, app.focus == Focus::Browser, th);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let w = inner.width as usize;
    let add = s.keys.key(super::keys::Action::AddDrive, super::keys::Context::Global);
    let mut lines: Vec<Line> = Vec::new();
    let dim = |t: String| Line::styled(fit(&t, w), th.fg(Color::DarkGray));
    if s.drives.is_empty() {
        match &s.out {
            Some(out) => lines.push(Line::raw(fit(&format!("One output folder: {}", out.display()), w))),
            None => lines.push(Line::raw("No output folder yet (b asks for one).")),
        }
        lines.push(dim(format!("{add} adds a drive folder: the CARs then")));
        lines.push(dim("spread over the drives, each batch on the".into()));
        lines.push(dim("first with room (build --out D1 --out D2).".into()));
        f.render_widget(Paragraph::new(lines), inner);
        return;
    }
    let Some(d) = seen else {
        lines.push(Line::raw("Reading the drives…"));
        f.render_widget(Paragraph::new(lines), inner);
        return;
    };
    if let Some(e) = &d.error {
        lines.push(Line::styled(fit(&format!("The drives do not read: {e}"), w), th.fg(Color::Red)));
    }
    for u in &d.usage {
        let built = app
            .batches
            .list
            .iter()
            .filter(|b| b.result.is_some() && d.of_batch.get(&b.id) == Some(&u.position))
            .count();
        let flag = if u.dir.is_none() {
            " · not given"
        } else if d.full(u) {
            " · FULL"
        } else {
            ""
        };
        let head = format!("{}/{} {} · built {}/{}{flag}", u.position, u.of, u.label, built, u.assigned);
        let color = if u.dir.is_none() || d.full(u) { Color::Red } else { Color::Reset };
        lines.push(Line::styled(fit(&head, w), th.fg(color).add_modifier(Modifier::BOLD)));
        match (u.size, u.free) {
            (Some(size), Some(free)) => {
                let used = size.saturating_sub(free);
                let frac = if size == 0 { 1.0 } else { used as f64 / size as f64 };
                lines.push(Line::from(vec![
                    Span::styled(
                        gauge(frac, w.saturating_sub(8)),
                        th.fg(if d.full(u) { Color::Red } else { Color::Green }),
                    ),
                    Span::raw(format!(" {:>5.1}%", frac * 100.0)),
                ]));
                lines.push(dim(format!(
                    "  room {} · {}/{} used · ≤ {} of CAR assigned",
                    ibytes(u.room.unwrap_or(0)),
                    ibytes(used),
                    ibytes(size),
                    ibytes(u.assigned_bound)
                )));
            }
            _ if u.dir.is_none() => lines.push(dim(format!(
                "  {} {}: mount it, {add} its folder",
                u.assigned,
                if u.assigned == 1 { "batch waits" } else { "batches wait" }
            ))),
            _ => lines.push(dim("  size not readable".into())),
        }
    }
    for m in &d.missing {
        lines
            .push(Line::styled(fit(&format!("not there: {} (drive not mounted?)", m.display()), w), th.fg(Color::Red)));
    }
    if let Some(need) = d.next_need {
        lines.push(dim(format!("The next batch needs {} on a drive.", ibytes(need))));
    }
    lines.push(dim(format!("{add} adds a drive to the set.")));
    f.render_widget(Paragraph::new(lines), inner);
}

/// The deals pane: the shipment's deals file (`segment plan`'s, beside the shipment), one entry
/// per deal — its ID, how many of its batches are built, a gauge of its fill — and what it
/// waits for: batches not built, or built with another piece than the deals file records (plan
/// the deals again). Without a deals file, how to make one.
fn draw_deals(f: &mut Frame, app: &App, area: Rect, th: &Theme) {
    let seen = app.deals_seen.as_ref();
    let title = match seen {
        Some(d) if d.error.is_none() => {
            let n = d.deals.len() as u64;
            format!(" Deals · {} · {n} {} ", d.name, carload::human::plural(n, "deal", "deals"))
        }
        _ => " Deals ".to_string(),
    };
    let block = pane_block(title, app.focus == Focus::Browser, th);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let w = inner.width as usize;
    let dim = |t: String| Line::styled(fit(&t, w), th.fg(Color::DarkGray));
    let mut lines: Vec<Line> = Vec::new();
    let Some(d) = seen else {
        let file = app.settings.shipment.as_deref().map(carload::segment::deals::default_path);
        let name = file.as_deref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
        lines.push(Line::raw(fit(
            &format!("No deals file ({}).", name.as_deref().unwrap_or("save the shipment first")),
            w,
        )));
        lines.push(dim("`carload segment plan SHIPMENT --out OUT".into()));
        lines.push(dim("--deal-size 32GiB` packs the built batches".into()));
        lines.push(dim("into FRC-0058 deals and writes it here.".into()));
        f.render_widget(Paragraph::new(lines), inner);
        return;
    };
    if let Some(e) = &d.error {
        lines.push(Line::styled(fit(&format!("{}: {e}", d.name), w), th.fg(Color::Red)));
        f.render_widget(Paragraph::new(lines), inner);
        return;
    }
    // Each batch's result, once per frame (not a search of the list per segment).
    let results: std::collections::HashMap<&str, Option<&str>> =
        app.batches.list.iter().map(|wb| (wb.id.as_str(), wb.result.as_ref().map(|r| r.piece_cid.as_str()))).collect();
    let mut ready = 0;
    for deal in &d.deals {
        // Built as the deals file records, built with another piece, or waited for.
        let (mut built, mut differ, mut waits) = (0, Vec::new(), Vec::new());
        for (b, p) in deal.batches.iter().zip(&deal.pieces) {
            match results.get(b.as_str()).copied().flatten() {
                Some(piece) if piece == p => built += 1,
                Some(_) => differ.push(b.as_str()),
                None => waits.push(b.as_str()),
            }
        }
        let all = built == deal.batches.len();
        ready += usize::from(all);
        let color = if !differ.is_empty() {
            Color::Red
        } else if all {
            Color::Green
        } else {
            Color::Reset
        };
        let head = format!("{} · built {}/{} · {}", deal.id, built, deal.batches.len(), ibytes(deal.size));
        lines.push(Line::styled(fit(&head, w), th.fg(color).add_modifier(Modifier::BOLD)));
        lines.push(Line::from(vec![
            Span::styled(gauge(deal.fill, w.saturating_sub(8)), th.fg(Color::Green)),
            Span::raw(format!(" {:>5.1}%", deal.fill * 100.0)),
        ]));
        if !differ.is_empty() {
            lines.push(Line::styled(
                fit(&format!("  other piece: {} (plan the deals again)", differ.join(" ")), w),
                th.fg(Color::Red),
            ));
        }
        if !waits.is_empty() {
            lines.push(dim(format!("  waits for {}", waits.join(" "))));
        } else if differ.is_empty() {
            lines.push(dim(format!("  ready: {}", deal.batches.join(" "))));
        }
    }
    lines.push(dim(format!("{ready} of {} deals have every batch built.", d.deals.len())));
    lines.push(dim("`carload segment build` writes them.".into()));
    f.render_widget(Paragraph::new(lines), inner);
}

fn gauge(fill: f64, w: usize) -> String {
    let cells = (fill.clamp(0.0, 1.0) * w as f64).round() as usize;
    format!("{}{}", "█".repeat(cells), "░".repeat(w - cells))
}

fn draw_batches(f: &mut Frame, app: &App, area: Rect, th: &Theme) {
    let focused = app.focus == Focus::Batches;
    let list = &app.batches.list;
    if let Some(open) = app.pane.open.filter(|&i| i < list.len()) {
        let b = &list[open];
        let block = pane_block(format!(" {} entries ({}) · Esc back ", b.id, digits(b.len() as u64)), focused, th);
        let inner = block.inner(area);
        f.render_widget(block, area);
        let w = inner.width as usize;
        let mut lines = Vec::new();
        for (k, it) in b.bin.items.iter().enumerate().skip(app.pane.entry_offset).take(inner.height as usize) {
            let id = it.file as u32;
            let len = it.part.map_or(app.tree.node(id).size, |p| p.len);
            let mut name = app.tree.path(id);
            if let Some(p) = it.part {
                name.push_str(&format!(" [part @{}]", p.offset));
            }
            let size = ibytes(len);
            let row = format!("{}{:>9}", fit(&name, w.saturating_sub(9)), size);
            let style = if k == app.pane.entry_row { th.selected(focused) } else { Style::default() };
            lines.push(Line::styled(row, style));
        }
        f.render_widget(Paragraph::new(lines), inner);
        return;
    }
    let built = list.iter().filter(|b| b.result.is_some()).count();
    let same = app.same_pieces();
    let title = format!(
        " Batches {} · {} built{} ",
        digits(list.len() as u64),
        digits(built as u64),
        if same.is_empty() { String::new() } else { format!(" · {} share a piece!", same.len()) }
    );
    let block = pane_block(title, focused, th);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let w = inner.width as usize;
    let mut lines = Vec::new();
    if list.is_empty() {
        lines.push(Line::raw("No batches yet."));
        lines.push(Line::raw("Mark files (Space, A), then"));
        lines.push(Line::raw("p auto-packs them, or"));
        lines.push(Line::raw("n + a fills a batch by hand."));
    }
    let per = (inner.height as usize / 2).max(1);
    let offset = batch_offset(app.pane.row, per);
    let o = &app.settings.plan;
    for (i, b) in list.iter().enumerate().skip(offset).take(per) {
        let (state, color) = state_of(app, b);
        let sel = i == app.pane.row;
        let style = if sel { th.selected(focused) } else { Style::default() };
        let files = format!("{} file{}", digits(b.len() as u64), if b.len() == 1 { "" } else { "s" });
        let head = match b.smaller_piece(o) {
            // The real piece first: the file count is what a narrow pane cuts.
            Some(_) => format!("{} · {} · {files}", b.id, piece_label(b, o)),
            None => format!("{} · {files} · {}", b.id, piece_label(b, o)),
        };
        let pct = b.fill(o);
        let (state, color) =
            if same.contains_key(&b.id) { ("same piece".to_string(), Color::Red) } else { (state, color) };
        let bar_w = w.saturating_sub(8 + 12);
        lines.push(Line::from(vec![
            Span::styled(fit(&head, w.saturating_sub(10)), style),
            Span::styled(format!("{:>10}", fit(&state, 10).trim_end()), th.fg(color).patch(style)),
        ]));
        lines.push(Line::from(vec![
            Span::styled(gauge(pct, bar_w), th.fg(if pct > 0.9 { Color::Green } else { Color::Yellow })),
            Span::raw(format!(" {:>7.3}% full", pct * 100.0)),
        ]));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

/// A batch's piece: its planned size, or the real one its build made when smaller.
fn piece_label(b: &WsBatch, o: &carload::shipment::PlanOptions) -> String {
    match b.smaller_piece(o) {
        Some(real) => format!("{} (planned {})", ibytes(real), ibytes(b.piece_size(o))),
        None => ibytes(b.piece_size(o)),
    }
}

fn details(app: &App) -> String {
    if app.focus == Focus::Batches {
        let Some(b) = app.batches.list.get(app.pane.row) else { return String::new() };
        let o = &app.settings.plan;
        let mut s = format!(
            "{}: {} {}, {} bytes · CAR ≤ {} bytes · piece {} · fill {:.3}% of its {} usable bytes",
            b.id,
            digits(b.len() as u64),
            noun(b.len(), "file", "files"),
            digits(b.bytes(&app.tree)),
            digits(b.bound()),
            piece_label(b, o),
            b.fill(o) * 100.0,
            digits(carload::commp::unpadded_piece_size(b.piece_size(o)))
        );
        if let Some(Frozen::Changed { missing, changed, example }) = &b.frozen {
            s = if b.result.is_some() {
                format!("{}: sources changed since built ({example}); its CAR is what ships", b.id)
            } else {
                format!("{}: {missing} missing, {changed} changed files ({example}) · R re-plans it", b.id)
            };
        }
        match app.builds.activity.get(&b.id) {
            Some(Activity::Failed(e)) => s = format!("{} FAILED (i full reason, r retries, R re-plans): {e}", b.id),
            Some(Activity::Waits(why)) => s = format!("{} waits: {why} · + adds the drive, r retries", b.id),
            Some(Activity::Foreign { holder, age, stale, progress }) => {
                s = format!(
                    "{}: {} by {holder}{}, lock refreshed {age} s ago{}",
                    b.id,
                    if *stale { "stale lock" } else { "building" },
                    progress.as_ref().map_or(String::new(), super::builds::foreign_progress),
                    if *stale { " · r takes it over" } else { "" }
                )
            }
            _ => {}
        }
        if let Some(line) = app.deals_seen.as_ref().and_then(|d| d.line_of(&b.id)) {
            // Before the result's CIDs: the line is cut from its end.
            s.push_str(&format!(" · {line}"));
        }
        if let Some(r) = &b.result {
            s.push_str(&format!(" · built: payload {} · piece {} · i shows all", r.payload_cid, r.piece_cid));
        }
        if let Some(u) = app.drives_seen.as_ref().and_then(|d| d.drive_of(&b.id)) {
            // Its drive first: the line is cut from its end.
            if let Some(rest) = s.strip_prefix(b.id.as_str()) {
                s = format!(
                    "{} on drive {}/{} ({}) ·{}",
                    b.id,
                    u.position,
                    u.of,
                    u.label,
                    rest.trim_start_matches(':')
                );
            }
        }
        if let Some(others) = app.same_pieces().get(&b.id) {
            s = format!(
                "{}: SAME PIECE as {} ({}): a deal for each would store the same data twice; ship one",
                b.id,
                others.join(", "),
                b.result.as_ref().map_or("", |r| r.piece_cid.as_str())
            );
        }
        return s;
    }
    let id = app.browser.selected;
    if id == NONE || !app.tree.loaded(id) {
        return String::new();
    }
    let t = &app.tree;
    let n = t.node(id);
    let tot = t.totals(id);
    let what = match n.kind {
        Kind::File => "file",
        Kind::LinkToFile => "symlink to file",
        Kind::Folder => "folder",
        Kind::LinkToFolder => "symlink to folder",
        Kind::Other => "not shippable",
    };
    if let Some(e) = t.error(id) {
        return format!("{what} {}: {e}", t.path(id));
    }
    let mut s = format!("{what}: {} bytes", digits(tot.bytes));
    if n.kind == Kind::Folder {
        let f = t.folder_of(id).unwrap();
        s.push_str(&format!(" in {} {}", digits(tot.files), noun(tot.files as usize, "file", "files")));
        if f.batched > 0 {
            s.push_str(&format!(" ({} in batches)", digits(f.batched)));
        }
        if tot.unshippable > 0 {
            s.push_str(&format!(" · {} not shippable", digits(tot.unshippable)));
        }
    }
    s.push_str(&format!(" · CAR {} bytes", digits(tot.cost)));
    if let Some((b, parts)) = app.batches.batch_of(id) {
        s.push_str(&format!(" · in batch {}", app.batches.list[b].id));
        if parts > 1 {
            s.push_str(&format!(" (split over {parts} batches)"));
        }
    }
    s
}

fn marked_line(app: &App) -> String {
    if app.marks.is_empty() {
        return "Marked: nothing (Space marks the entry, A every entry here)".into();
    }
    let t = app.marked_totals();
    let pieces = app.pieces_needed();
    format!(
        "Marked: {} {} · {} ({} bytes) · CAR {} · ≈ {} piece{} of {}",
        digits(t.files),
        noun(t.files as usize, "file", "files"),
        ibytes(t.bytes),
        digits(t.bytes),
        ibytes(t.cost),
        digits(pieces),
        if pieces == 1 { "" } else { "s" },
        ibytes(app.settings.plan.piece_size)
    )
}

fn status_line(app: &App) -> String {
    let g = app.tree.grand_totals();
    let folders = app.tree.folders.len().saturating_sub(1) as u64;
    let files = noun(g.files as usize, "file", "files");
    let folders_word = noun(folders as usize, "folder", "folders");
    let mut s = match app.scan_secs {
        Some(secs) => format!(
            "Scanned {} {files} · {} {folders_word} · {} ({} bytes) in {secs:.1} s",
            digits(g.files),
            digits(folders),
            ibytes(g.bytes),
            digits(g.bytes)
        ),
        None => {
            format!("Scanning… {} {files} · {} {folders_word} · {}", digits(g.files), digits(folders), ibytes(g.bytes))
        }
    };
    if app.settings.out.is_some() && !app.batches.list.is_empty() {
        let built = app.batches.list.iter().filter(|b| b.result.is_some()).count();
        s.push_str(&format!(" · Built {}/{}", digits(built as u64), digits(app.batches.list.len() as u64)));
        let queued = app.builds.activity.values().filter(|a| matches!(a, Activity::Queued)).count();
        let running = app.builds.busy_here() - queued;
        match (running, queued) {
            (0, 0) => {}
            (r, 0) => s.push_str(&format!(" ({r} building here)")),
            (r, q) => s.push_str(&format!(" ({r} building, {q} queued here)")),
        }
    }
    // After the builds: the line is cut from its end at 80 columns.
    if g.unshippable > 0 {
        s.push_str(&format!(" · {} not shippable (!)", digits(g.unshippable)));
    }
    if app.packing {
        s.push_str(" · packing…");
    }
    if app.saving {
        s.push_str(" · saving…");
    }
    s
}

fn footer_keys(app: &App) -> String {
    use super::keys::{
        Context, FOOTER_BATCHES, FOOTER_BROWSER, FOOTER_DEALS, FOOTER_DRIVES, FOOTER_ENTRIES, FOOTER_PROGRESS,
    };
    if app.browser.editing_filter {
        return "type to filter · Enter keep · Esc clear".into();
    }
    let k = &app.settings.keys;
    match app.focus {
        Focus::Browser if app.left == Left::Progress => k.footer(FOOTER_PROGRESS, Context::Global),
        Focus::Browser if app.left == Left::Drives => k.footer(FOOTER_DRIVES, Context::Global),
        Focus::Browser if app.left == Left::Deals => k.footer(FOOTER_DEALS, Context::Global),
        Focus::Browser => k.footer(FOOTER_BROWSER, Context::Browser),
        Focus::Batches if app.pane.open.is_some() => k.footer(FOOTER_ENTRIES, Context::Entries),
        Focus::Batches => k.footer(FOOTER_BATCHES, Context::Batches),
    }
}

/// What builds here the quit dialog names: `1 build runs here`, `2 builds run here and 3 are
/// queued`, `3 builds are queued here` (queued ones do not run yet); `None` when there are none.
fn builds_here(app: &App) -> Option<String> {
    let queued = app.builds.activity.values().filter(|a| matches!(a, Activity::Queued)).count();
    let running = app.builds.busy_here() - queued;
    let runs = |n: usize| format!("{n} {}", if n == 1 { "build runs here" } else { "builds run here" });
    let waits = |n: usize| if n == 1 { "1 is queued".to_string() } else { format!("{n} are queued") };
    match (running, queued) {
        (0, 0) => None,
        (r, 0) => Some(runs(r)),
        (0, q) => Some(format!("{q} {} queued here", if q == 1 { "build is" } else { "builds are" })),
        (r, q) => Some(format!("{} and {}", runs(r), waits(q))),
    }
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

fn draw_modal(f: &mut Frame, app: &App, m: &Modal, area: Rect, th: &Theme) {
    let (title, lines, rect): (String, Vec<Line>, Rect) = match m {
        &Modal::Help(scroll) => {
            let mut lines = Vec::new();
            for (group, keys) in app.settings.keys.help() {
                lines.push(Line::styled(group.to_string(), th.bold()));
                for (k, what) in keys {
                    lines.push(Line::raw(format!("  {k:<15} {what}")));
                }
            }
            lines.push(Line::raw(""));
            lines.push(Line::raw("Mouse: start with --mouse (or \"mouse\": true in the config)."));
            lines.push(Line::raw("Keys: change any in the config, e.g. \"keys\": {\"build\": [\"F5\"]}."));
            if let Some(p) = &app.settings.config_path {
                lines.push(Line::raw(format!("Config: {}", p.display())));
            }
            let lines = lines.into_iter().skip(scroll).collect();
            (" Keys (any key closes, ↑↓ scroll) ".into(), lines, centered(area, 96, area.height - 2))
        }
        Modal::Preview(p) => {
            let r = preview_rect(area);
            let w = r.width as usize;
            // Laid out by the update function for this width; a layout for another width (a
            // resize not yet seen) is made here, for this frame only.
            let fresh;
            let starts = match &p.layout {
                Some((width, starts)) if *width == r.width => starts,
                _ => {
                    fresh = preview_layout(&p.content, w);
                    &fresh
                }
            };
            let lines = preview_rows(&p.content, starts, p.scroll, r.height.saturating_sub(2) as usize, w);
            f.render_widget(Clear, r);
            let block = Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(format!(" Manifest preview: {} ", p.batch), th.bold()));
            f.render_widget(Paragraph::new(lines).block(block), r);
            return;
        }
        Modal::ConfirmQuit => (
            if app.dirty { " Unsaved changes ".into() } else { " Builds running ".into() },
            vec![
                Line::raw(match (builds_here(app), app.dirty) {
                    (None, _) => "The batches changed since the last save.".to_string(),
                    (Some(b), false) => format!("{b}; quitting cancels them."),
                    (Some(b), true) => format!("{b}; quitting cancels them. Unsaved changes."),
                }),
                Line::raw(""),
                Line::raw(if app.dirty { "s  save, then quit" } else { "y  quit" }),
                Line::raw(if app.dirty { "d  quit and discard the changes" } else { "" }),
                Line::raw("Esc/n  stay"),
            ],
            centered(area, 64, 7),
        ),
        &Modal::ConfirmRemove(i) => {
            let b = &app.batches.list[i.min(app.batches.list.len().saturating_sub(1))];
            (
                " Remove batch ".into(),
                vec![
                    Line::raw(format!(
                        "Remove {} ({} {})?",
                        b.id,
                        digits(b.len() as u64),
                        noun(b.len(), "file", "files")
                    )),
                    Line::raw("Its files become free to pack again."),
                    Line::raw(""),
                    Line::raw("y  remove      any other key  keep"),
                ],
                centered(area, 50, 6),
            )
        }
        Modal::SavePath(s) => (
            " Save shipment as ".into(),
            vec![Line::raw(format!("{s}▏")), Line::raw(""), Line::raw("Enter  save      Esc  cancel")],
            centered(area, 70, 5),
        ),
        Modal::OutPath(s) => (
            " Output folder for the CARs ".into(),
            vec![
                Line::raw(format!("{s}▏")),
                Line::raw(""),
                Line::raw("Enter  build there (remembered)      Esc  cancel"),
            ],
            centered(area, 70, 5),
        ),
        Modal::AddDrive(s) => (
            " Add a drive folder ".into(),
            vec![
                Line::raw(format!("{s}▏")),
                Line::raw(""),
                Line::raw("Enter  add it to the set (remembered)      Esc  cancel"),
            ],
            centered(area, 70, 5),
        ),
        &Modal::Info { batch, row } => {
            let lines: Vec<Line> = app
                .info_lines(batch)
                .into_iter()
                .enumerate()
                .map(|(i, (label, value))| {
                    let style = if i == row { th.selected(true) } else { Style::default() };
                    Line::styled(format!("{label:<26} {}", clean(&value)), style)
                })
                .chain([Line::raw(""), Line::raw("↑↓ select · y/Enter copy the value (OSC 52) · any other key closes")])
                .collect();
            // Long values (a failure's full reason) wrap: the box is as high as their rows.
            let inner = area.width.saturating_sub(6).max(1) as usize;
            let rows: usize = lines.iter().map(|l| wrapped_rows(&text_of(l), inner)).sum();
            (" Batch ".into(), lines, centered(area, area.width - 4, rows as u16 + 2))
        }
        &Modal::Export { field } => {
            let mut lines: Vec<Line> = FORM_FIELDS
                .iter()
                .enumerate()
                .map(|(i, label)| {
                    let mut value = app.deal.value(i);
                    if i == field && i != 0 && i != 4 {
                        value.push('▏');
                    }
                    let hint = match i {
                        0 => "  (←/→)",
                        4 => "  (Space)",
                        _ => "",
                    };
                    let style = if i == field { th.selected(true) } else { Style::default() };
                    Line::styled(format!("{label:<34} {value}{hint}"), style)
                })
                .collect();
            lines.push(Line::raw(
                "↑↓/Tab field · type to edit · Enter write the file (asks before replacing) · Esc close",
            ));
            if let Some(left) = app.export_left_out() {
                lines.push(Line::styled(format!("warning: {left}"), th.fg(Color::Red)));
            }
            lines.push(Line::styled("Preview (the bytes `carload export` writes):", th.bold()));
            match &app.export_preview {
                Ok(text) => lines.extend(text.lines().map(|l| Line::raw(clean(l).into_owned()))),
                Err(e) => lines.push(Line::styled(e.clone(), th.fg(Color::Red))),
            }
            (" Export deal commands ".into(), lines, centered(area, area.width - 2, area.height - 2))
        }
        Modal::ConfirmExportOverwrite(p) => (
            " File exists ".into(),
            vec![
                Line::raw(format!("{} exists. Replace it?", p.display())),
                Line::raw(""),
                Line::raw("y  replace      any other key  back to the form"),
            ],
            centered(area, 70, 5),
        ),
        Modal::ConfirmEdit { title, lines, .. } => {
            let w = 84.min(area.width);
            let inner = w.saturating_sub(2).max(1) as usize;
            let rows: usize = lines.iter().map(|l| wrapped_rows(l, inner)).sum();
            (title.clone(), lines.iter().map(|l| Line::raw(l.clone())).collect(), centered(area, w, rows as u16 + 2))
        }
        Modal::ConfirmOverwrite(p) => (
            " File exists ".into(),
            vec![
                Line::raw(format!("{} exists. Overwrite it?", p.display())),
                Line::raw(""),
                Line::raw("y  overwrite      any other key  cancel"),
            ],
            centered(area, 70, 5),
        ),
    };
    f.render_widget(Clear, rect);
    let block = Block::default().borders(Borders::ALL).title(Span::styled(title, th.bold()));
    f.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), rect);
}

/// Rows `line` takes when wrapped at word boundaries to `width` columns (as the dialog's
/// paragraph wraps it), so a dialog is made tall enough for its last line.
fn wrapped_rows(line: &str, width: usize) -> usize {
    let width = width.max(1);
    let (mut rows, mut used) = (1, 0usize);
    for word in line.split(' ') {
        let w = word.chars().count();
        if used > 0 && used + 1 + w <= width {
            used += 1 + w;
        } else if used == 0 && w <= width {
            used = w;
        } else {
            // On a new row (long words broken over several).
            if used > 0 {
                rows += 1;
            }
            let full = w.saturating_sub(1) / width;
            rows += full;
            used = w - full * width;
        }
    }
    rows
}

/// The preview's rectangle on a screen of `area` (the view draws it there; the update function
/// lays its lines out for its width).
pub fn preview_rect(area: Rect) -> Rect {
    centered(area, area.width.saturating_sub(4), area.height.saturating_sub(2))
}

/// How many logical lines the preview shows.
pub fn preview_len(c: &PreviewContent) -> usize {
    match c {
        PreviewContent::Planned(entries) => 3 + entries.len(),
        PreviewContent::Hashing { .. } | PreviewContent::Failed(_) => 2,
        PreviewContent::Reading => 1,
        PreviewContent::Hashed { hashed: h, .. } => {
            let head = if h.piece_cid.is_empty() { 2 } else { 5 };
            head + 3 + h.entries.len() + 2 + h.manifest.len()
        }
    }
}

/// Logical line `i` of the preview, formatted for a box `w` columns wide: only the lines shown
/// are ever formatted (a batch of 100,000 entries is not formatted on every frame).
pub fn preview_line(c: &PreviewContent, i: usize, w: usize) -> Line<'static> {
    let bold = |s: String| Line::styled(s, Style::default().add_modifier(Modifier::BOLD));
    match c {
        PreviewContent::Planned(entries) => match i {
            0 => Line::raw(format!(
                "Before hashing: {} entries, listed in batch order (the manifest orders them by DAG CID).",
                digits(entries.len() as u64)
            )),
            1 => Line::raw("d  dry run: hash without writing a CAR, to see every CID · Esc  close"),
            2 => Line::raw(""),
            _ => {
                let (name, len) = &entries[i - 3];
                Line::raw(format!("{} {:>16}", fit(name, w.saturating_sub(20)), digits(*len)))
            }
        },
        PreviewContent::Hashing { done, total } => {
            let pct = if *total == 0 { 1.0 } else { *done as f64 / *total as f64 };
            if i == 0 {
                Line::raw(format!(
                    "Dry run: hashed {} of {} ({:.0}%) · c  cancel",
                    ibytes(*done),
                    ibytes(*total),
                    pct * 100.0
                ))
            } else {
                Line::raw(gauge(pct, w.saturating_sub(4)))
            }
        }
        PreviewContent::Reading => Line::raw("Reading the manifest from the built CAR…"),
        PreviewContent::Failed(e) => match i {
            0 => Line::raw(format!("Failed: {e}")),
            _ => Line::raw("d  try the dry run again · Esc  close"),
        },
        PreviewContent::Hashed { hashed: h, built } => {
            let mut head = vec![if *built {
                "Read from the built CAR (as `carload manifest` does):".to_string()
            } else {
                "Dry run (no CAR written): these are the values `carload build` will produce.".to_string()
            }];
            head.push(format!("Payload CID:    {}", h.payload_cid));
            if !h.piece_cid.is_empty() {
                head.push(format!("Piece CID:      {}", h.piece_cid));
                head.push(format!("Piece CID v2:   {}", h.piece_cid_v2));
                head.push(format!(
                    "Piece size:     {} bytes padded ({}), {} bytes unpadded",
                    h.piece_size,
                    ibytes(h.piece_size),
                    h.piece_size / 128 * 127
                ));
            }
            let n = if h.piece_cid.is_empty() { 2 } else { 5 };
            let (e, m) = (h.entries.len(), h.manifest.len());
            match i {
                i if i < n => Line::raw(head.swap_remove(i)),
                i if i == n => Line::raw(format!("CAR size:       {} bytes ({})", h.car_size, ibytes(h.car_size))),
                i if i == n + 1 => Line::raw(""),
                i if i == n + 2 => bold(format!("Entries ({}): file → DAG CID", digits(e as u64))),
                i if i < n + 3 + e => {
                    let (name, cid) = &h.entries[i - n - 3];
                    Line::raw(format!("  {}  {cid}", clean(name)))
                }
                i if i == n + 3 + e => Line::raw(""),
                i if i == n + 4 + e => bold(format!("@AggregateManifest.ndjson ({m} lines):")),
                i => Line::raw(h.manifest[i - n - 5 - e].clone()),
            }
        }
    }
}

/// `text` wrapped at `inner` columns: at the last space that fits (the space dropped), else
/// within a word longer than a row.
fn wrap(text: &str, inner: usize) -> Vec<String> {
    let inner = inner.max(1);
    let chars: Vec<char> = text.chars().collect();
    let mut rows = Vec::new();
    let mut start = 0;
    while chars.len() - start > inner {
        let end = start + inner;
        match (start + 1..=end).rev().find(|&i| chars[i] == ' ') {
            Some(sp) => {
                rows.push(chars[start..sp].iter().collect());
                start = sp + 1;
            }
            None => {
                rows.push(chars[start..end].iter().collect());
                start = end;
            }
        }
    }
    rows.push(chars[start..].iter().collect());
    rows
}

/// The text of a line.
fn text_of(line: &Line) -> String {
    line.spans.iter().map(|s| s.content.as_ref()).collect()
}

/// Rows a line takes when wrapped at `inner` columns ([`wrap`]).
fn rows_of(line: &Line, inner: usize) -> u32 {
    wrap(&text_of(line), inner).len() as u32
}

/// Where each logical line of the preview starts, in rows, for a box `w` columns wide (its
/// inside `w - 2`), and the total (one more entry than lines). The update function computes it
/// once per content and width; the view then formats only the lines it shows.
pub fn preview_layout(c: &PreviewContent, w: usize) -> Vec<u32> {
    let inner = w.saturating_sub(2);
    let mut starts = Vec::with_capacity(preview_len(c) + 1);
    let mut at = 0u32;
    for i in 0..preview_len(c) {
        starts.push(at);
        at += rows_of(&preview_line(c, i, w), inner);
    }
    starts.push(at);
    starts
}

/// The rows of the preview from row `scroll`, at most `height` of them, wrapped at `inner`.
fn preview_rows(c: &PreviewContent, starts: &[u32], scroll: usize, height: usize, w: usize) -> Vec<Line<'static>> {
    let inner = w.saturating_sub(2).max(1);
    let n = preview_len(c);
    let first = starts.partition_point(|&s| s as usize <= scroll).saturating_sub(1);
    let mut skip = scroll.saturating_sub(starts.get(first).copied().unwrap_or(0) as usize);
    let mut out = Vec::with_capacity(height);
    for i in first..n {
        if out.len() >= height {
            break;
        }
        let line = preview_line(c, i, w);
        let style = line.spans.first().map(|s| s.style).unwrap_or_default();
        for piece in wrap(&text_of(&line), inner) {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            if out.len() >= height {
                break;
            }
            out.push(Line::styled(piece, style));
        }
    }
    out
}
