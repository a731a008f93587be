//! The update function's input: keys (as the binding table's actions), dialogs and the mouse.

use super::*;

impl App {
    pub(super) fn key(&mut self, k: KeyEvent) -> Vec<Effect> {
        self.message = None;
        if let Some(m) = self.modal.clone() {
            return self.modal_key(m, k);
        }
        if self.browser.editing_filter {
            match k.code {
                KeyCode::Enter => self.browser.editing_filter = false,
                KeyCode::Esc => {
                    self.browser.editing_filter = false;
                    self.browser.filter.clear();
                }
                _ => {
                    edit_line(&mut self.browser.filter, &k);
                }
            }
            self.browser.stale = true;
            self.refresh_rows();
            return Vec::new();
        }
        use crate::tui::keys::Context;
        let contexts: &[Context] = match (self.focus, self.left, self.pane.open) {
            (Focus::Browser, Left::Progress | Left::Drives | Left::Deals, _) => &[Context::Global],
            (Focus::Browser, _, _) => &[Context::Global, Context::Browser, Context::Lists],
            (Focus::Batches, _, Some(_)) => &[Context::Global, Context::Entries, Context::Lists],
            (Focus::Batches, _, None) => &[Context::Global, Context::Batches, Context::Lists],
        };
        match self.settings.keys.action(contexts, &k) {
            Some(a) => self.act(a),
            None => Vec::new(),
        }
    }

    /// Does what action `a` means outside dialogs.
    pub(super) fn act(&mut self, a: Action) -> Vec<Effect> {
        match a {
            Action::Quit => return self.quit(),
            Action::Help => self.modal = Some(Modal::Help(0)),
            Action::SwitchFocus => {
                self.focus = match self.focus {
                    Focus::Browser => Focus::Batches,
                    Focus::Batches => Focus::Browser,
                }
            }
            Action::Save => return self.save(None),
            Action::NewBatch => {
                let before = self.before_edit(Some(&[]));
                self.pane.row = self.batches.new_batch();
                self.pane.open = None;
                self.dirty = true;
                let id = self.batches.list[self.pane.row].id.clone();
                self.record_edit(before, format!("new batch {id}"));
                let add = self.settings.keys.key(Action::AddMarked, crate::tui::keys::Context::Global);
                self.say(Level::Info, format!("new batch {id}: {add} adds the marked entries to it"));
            }
            Action::AddMarked => self.add_marked(false),
            Action::Undo => self.undo(false),
            Action::Redo => self.undo(true),
            Action::AutoPack => return self.auto_pack(),
            Action::Preview => return self.preview(),
            Action::Build => {
                if let Some(i) = self.target_batch() {
                    return self.build(vec![i]);
                }
                self.say(Level::Error, "no batch to build: pack some files first");
            }
            Action::BuildAll => {
                let all: Vec<usize> = (0..self.batches.list.len())
                    .filter(|&i| {
                        let b = &self.batches.list[i];
                        b.result.is_none()
                            && b.frozen.is_none()
                            && !b.is_empty()
                            && !self.builds.is_busy(&b.id)
                            && !matches!(self.builds.activity.get(&b.id), Some(Activity::Foreign { stale: false, .. }))
                    })
                    .collect();
                if all.is_empty() {
                    self.say(Level::Info, "nothing to build: every batch is built, building or empty");
                } else {
                    return self.build(all);
                }
            }
            Action::Export => self.open_export(),
            Action::ToggleProgress => {
                self.left = match self.left {
                    Left::Browser | Left::Drives | Left::Deals => Left::Progress,
                    Left::Progress => Left::Browser,
                };
                self.focus = Focus::Browser;
            }
            Action::ToggleDrives => {
                self.left = if self.left == Left::Drives { Left::Browser } else { Left::Drives };
                self.focus = Focus::Browser;
            }
            Action::ToggleDeals => {
                self.left = if self.left == Left::Deals { Left::Browser } else { Left::Deals };
                self.focus = Focus::Browser;
            }
            Action::AddDrive => self.modal = Some(Modal::AddDrive(String::new())),
            Action::Info => match self.target_batch() {
                Some(batch) => self.modal = Some(Modal::Info { batch, row: 0 }),
                None => self.say(Level::Error, "no batch selected"),
            },
            a => match self.focus {
                Focus::Browser if self.left != Left::Browser => {}
                Focus::Browser => self.browser_act(a),
                Focus::Batches => return self.batches_act(a),
            },
        }
        Vec::new()
    }

    pub(super) fn quit(&mut self) -> Vec<Effect> {
        if self.dirty || self.builds.busy_here() > 0 {
            self.modal = Some(Modal::ConfirmQuit);
            Vec::new()
        } else {
            vec![Effect::Quit]
        }
    }

    /// The row a movement action leads to from `row` in a list of `len` rows.
    pub(super) fn nav(&self, a: Action, row: usize, len: usize) -> Option<usize> {
        let page = self.page();
        let last = len.saturating_sub(1);
        Some(match a {
            Action::Down => (row + 1).min(last),
            Action::Up => row.saturating_sub(1),
            Action::PageDown => (row + page).min(last),
            Action::PageUp => row.saturating_sub(page),
            Action::First => 0,
            Action::Last => last,
            _ => return None,
        })
    }

    pub(super) fn browser_act(&mut self, a: Action) {
        self.refresh_rows();
        let row = self.selected_row();
        if let Some(r) = self.nav(a, row, self.browser.rows.len()) {
            self.select_row(r);
            return;
        }
        let sel = self.browser.selected;
        match a {
            Action::Open if sel != NONE => self.enter_folder(sel),
            Action::Back => self.leave_folder(),
            Action::ClearFilter if !self.browser.filter.is_empty() => {
                self.browser.filter.clear();
                self.browser.stale = true;
            }
            Action::Filter => {
                self.browser.editing_filter = true;
                self.browser.filter.clear();
                self.browser.stale = true;
            }
            Action::ToggleHidden => {
                self.browser.show_hidden = !self.browser.show_hidden;
                self.browser.stale = true;
                let s = if self.browser.show_hidden { "shown" } else { "hidden (batches still include them)" };
                self.say(Level::Info, format!("dot-entries {s}"));
            }
            Action::SortName => self.sort(Sort::Name),
            Action::SortSize => self.sort(Sort::Size),
            Action::SortCount => self.sort(Sort::Count),
            Action::Mark if sel != NONE => {
                if let Some(e) = self.unshippable(sel) {
                    self.say(Level::Error, e);
                } else {
                    self.marks.toggle(&self.tree, sel);
                    self.marks_changed();
                }
                self.select_row(row + 1);
            }
            Action::MarkAll => self.mark_all(),
            Action::Remove if sel != NONE => self.remove_from_batches(sel, false),
            _ => {}
        }
        self.refresh_rows();
    }

    pub(super) fn batches_act(&mut self, a: Action) -> Vec<Effect> {
        let n = self.batches.list.len();
        if let Some(open) = self.pane.open {
            let len = self.batches.list.get(open).map_or(0, |b| b.bin.items.len());
            let page = self.page();
            if let Some(r) = self.nav(a, self.pane.entry_row, len) {
                self.pane.entry_row = r;
                if r < self.pane.entry_offset {
                    self.pane.entry_offset = r;
                } else if r >= self.pane.entry_offset + page {
                    self.pane.entry_offset = r + 1 - page;
                }
                return Vec::new();
            }
            match a {
                Action::Back => self.pane.open = None,
                Action::Remove => {
                    if let Some(it) = self.batches.list[open].bin.items.get(self.pane.entry_row) {
                        let f = it.file as u32;
                        self.remove_from_batches(f, false);
                    }
                }
                _ => {}
            }
            return Vec::new();
        }
        if let Some(r) = self.nav(a, self.pane.row, n) {
            self.pane.row = r;
            return Vec::new();
        }
        match a {
            Action::Open if self.pane.row < n => {
                if self.batches.list[self.pane.row].loaded.is_some() {
                    self.say(Level::Error, "this batch's files are not matched to the tree (see its state)");
                } else {
                    self.pane.open = Some(self.pane.row);
                    self.pane.entry_row = 0;
                    self.pane.entry_offset = 0;
                }
            }
            Action::CancelBuild if self.pane.row < n => {
                let id = self.batches.list[self.pane.row].id.clone();
                if self.builds.is_busy(&id) {
                    self.say(Level::Info, format!("cancelling {id}…"));
                    return vec![Effect::CancelBuild(id)];
                }
                self.say(Level::Error, format!("{id} is not building here"));
            }
            Action::Retry if self.pane.row < n => {
                let id = &self.batches.list[self.pane.row].id;
                if matches!(
                    self.builds.activity.get(id),
                    Some(Activity::Failed(_) | Activity::Waits(_) | Activity::Foreign { stale: true, .. })
                ) {
                    return self.build(vec![self.pane.row]);
                }
                let build = self.settings.keys.key(Action::Build, crate::tui::keys::Context::Global);
                self.say(Level::Error, format!("{id} has not failed: {build} builds it"));
            }
            Action::Replan if self.pane.row < n => return self.replan(false),
            Action::Remove if self.pane.row < n && self.builds.is_busy(&self.batches.list[self.pane.row].id) => {
                let cancel = self.settings.keys.key(Action::CancelBuild, crate::tui::keys::Context::Batches);
                self.say(Level::Error, format!("this batch is building: cancel it first ({cancel})"));
            }
            Action::Remove if self.pane.row < n => {
                if self.batches.list[self.pane.row].is_empty() {
                    self.remove_batch(self.pane.row);
                } else {
                    self.ask_remove_batch(self.pane.row);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    pub(super) fn modal_key(&mut self, m: Modal, k: KeyEvent) -> Vec<Effect> {
        use crate::tui::keys::Context;
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match m {
            Modal::Help(scroll) => match self.settings.keys.action(&[Context::Lists], &k) {
                Some(Action::Down) => self.modal = Some(Modal::Help(scroll + 1)),
                Some(Action::Up) => self.modal = Some(Modal::Help(scroll.saturating_sub(1))),
                _ => self.modal = None,
            },
            Modal::Preview(mut p) => {
                let hashing = matches!(p.content, PreviewContent::Hashing { .. });
                match self.settings.keys.action(&[Context::Preview, Context::Lists], &k) {
                    Some(Action::Down) => p.scroll += 1,
                    Some(Action::Up) => p.scroll = p.scroll.saturating_sub(1),
                    Some(Action::PageDown) => p.scroll += self.page(),
                    Some(Action::PageUp) => p.scroll = p.scroll.saturating_sub(self.page()),
                    Some(Action::First) => p.scroll = 0,
                    Some(Action::DryRun)
                        if matches!(p.content, PreviewContent::Planned(_) | PreviewContent::Failed(_)) =>
                    {
                        return self.start_dry_run(p);
                    }
                    Some(Action::Close) if hashing => {
                        self.dry_run_batch = None;
                        self.modal = None;
                        self.say(Level::Info, format!("dry run of {} cancelled", p.batch));
                        return vec![Effect::CancelDryRun];
                    }
                    Some(Action::Close) => {
                        self.modal = None;
                        return Vec::new();
                    }
                    _ => {}
                }
                self.modal = Some(Modal::Preview(p));
            }
            // Never the key that opened the dialog: `q` `q` (or Ctrl-C twice) must not throw
            // away unsaved batches. With unsaved changes: `s` saves then quits, `d` discards;
            // with builds only: `y` quits (cancelling them). Any other key stays.
            Modal::ConfirmQuit => match k.code {
                KeyCode::Char('s') if self.dirty && !ctrl => {
                    self.modal = None;
                    self.quit_after_save = true;
                    return self.save(None);
                }
                KeyCode::Char('d') if self.dirty && !ctrl => return vec![Effect::Quit],
                KeyCode::Char('y') if !self.dirty && !ctrl => return vec![Effect::Quit],
                _ => self.modal = None,
            },
            // Only y does an edit that un-builds batches (Enter is pressed too easily).
            Modal::ConfirmEdit { edit, .. } => {
                self.modal = None;
                if k.code == KeyCode::Char('y') && !ctrl {
                    return self.confirmed(edit);
                }
                self.say(Level::Info, "nothing changed");
            }
            Modal::ConfirmRemove(i) => {
                self.modal = None;
                if matches!(k.code, KeyCode::Char('y') | KeyCode::Enter) && i < self.batches.list.len() {
                    self.remove_batch(i);
                }
            }
            Modal::SavePath(mut s) => match k.code {
                KeyCode::Enter if !s.trim().is_empty() => {
                    self.modal = None;
                    // A file there is found by the save effect, which asks before replacing it.
                    return self.save_to(Some(PathBuf::from(s.trim())), false);
                }
                KeyCode::Esc => {
                    self.modal = None;
                    self.quit_after_save = false;
                }
                _ => {
                    if edit_line(&mut s, &k) {
                        self.modal = Some(Modal::SavePath(s));
                    }
                }
            },
            Modal::ConfirmOverwrite(path) => {
                self.modal = None;
                if matches!(k.code, KeyCode::Char('y')) {
                    return self.save_to(Some(path), true);
                }
                self.quit_after_save = false;
                self.pending_build.clear();
            }
            m => return self.extra_modal_key(m, k),
        }
        Vec::new()
    }

    pub(super) fn extra_modal_key(&mut self, m: Modal, k: KeyEvent) -> Vec<Effect> {
        match m {
            Modal::OutPath(mut s) => match k.code {
                KeyCode::Enter if !s.trim().is_empty() => {
                    let dir = PathBuf::from(s.trim());
                    let dir = if dir.is_relative() {
                        self.settings.base.as_deref().map_or(dir.clone(), |b| std::path::Path::new(b).join(&dir))
                    } else {
                        dir
                    };
                    self.modal = None;
                    self.settings.out = Some(dir.clone());
                    self.refresh_export();
                    let pending = std::mem::take(&mut self.pending_build);
                    let shipment = self.settings.shipment.clone();
                    let mut e = vec![Effect::Remember { outs: vec![dir], shipment, deal: None }];
                    e.extend(self.build(pending));
                    return e;
                }
                KeyCode::Esc => {
                    self.modal = None;
                    self.pending_build.clear();
                }
                _ => {
                    if edit_line(&mut s, &k) {
                        self.modal = Some(Modal::OutPath(s));
                    }
                }
            },
            Modal::AddDrive(mut s) => match k.code {
                KeyCode::Enter if !s.trim().is_empty() => {
                    self.modal = None;
                    return self.add_drive(PathBuf::from(s.trim()));
                }
                KeyCode::Esc => self.modal = None,
                _ => {
                    if edit_line(&mut s, &k) {
                        self.modal = Some(Modal::AddDrive(s));
                    }
                }
            },
            Modal::Info { batch, row } => {
                let n = self.info_lines(batch).len();
                use crate::tui::keys::Context;
                match self.settings.keys.action(&[Context::Info, Context::Lists], &k) {
                    Some(Action::Down) => {
                        self.modal = Some(Modal::Info { batch, row: (row + 1).min(n.saturating_sub(1)) })
                    }
                    Some(Action::Up) => self.modal = Some(Modal::Info { batch, row: row.saturating_sub(1) }),
                    Some(Action::Copy) => {
                        if let Some((label, value)) = self.info_lines(batch).get(row).cloned() {
                            self.say(
                                Level::Info,
                                format!("{label} copied to the clipboard (OSC 52, where the terminal allows it)"),
                            );
                            return vec![Effect::Copy(value)];
                        }
                    }
                    _ => self.modal = None,
                }
            }
            Modal::Export { field } => {
                let n = FORM_FIELDS.len();
                match k.code {
                    KeyCode::Esc => {
                        self.modal = None;
                        return vec![Effect::Remember {
                            outs: Vec::new(),
                            shipment: None,
                            deal: Some(self.deal.clone()),
                        }];
                    }
                    KeyCode::Down | KeyCode::Tab => self.modal = Some(Modal::Export { field: (field + 1) % n }),
                    KeyCode::Up | KeyCode::BackTab => self.modal = Some(Modal::Export { field: (field + n - 1) % n }),
                    KeyCode::Left | KeyCode::Right if field == 0 => {
                        let f = FORMATS.len();
                        self.deal.format = if k.code == KeyCode::Right {
                            (self.deal.format + 1) % f
                        } else {
                            (self.deal.format + f - 1) % f
                        };
                        let ext = if FORMATS[self.deal.format].0 == "csv" { "csv" } else { "sh" };
                        if self.is_default_output(&self.deal.output) {
                            self.deal.output = self.default_output(FORMATS[self.deal.format].1);
                        } else if let Some(stem) =
                            self.deal.output.strip_suffix(".sh").or_else(|| self.deal.output.strip_suffix(".csv"))
                        {
                            self.deal.output = format!("{stem}.{ext}");
                        }
                        self.refresh_export();
                    }
                    KeyCode::Char(' ') if field == 4 => {
                        self.deal.unverified = !self.deal.unverified;
                        self.refresh_export();
                    }
                    KeyCode::Enter => {
                        return match &self.export_preview {
                            Ok(text) if !self.deal.output.trim().is_empty() => {
                                vec![Effect::Export {
                                    path: PathBuf::from(self.deal.output.trim()),
                                    text: text.clone(),
                                    overwrite: false,
                                }]
                            }
                            Ok(_) => {
                                self.say(Level::Error, "give the file to write");
                                Vec::new()
                            }
                            Err(e) => {
                                self.say(Level::Error, format!("nothing to export: {e}"));
                                Vec::new()
                            }
                        };
                    }
                    _ => {
                        if self.deal.text(field).is_some_and(|t| edit_line(t, &k)) {
                            self.refresh_export();
                        }
                    }
                }
            }
            Modal::ConfirmExportOverwrite(path) => {
                self.modal = Some(Modal::Export { field: FORM_FIELDS.len() - 1 });
                if k.code == KeyCode::Char('y') {
                    if let Ok(text) = &self.export_preview {
                        return vec![Effect::Export { path, text: text.clone(), overwrite: true }];
                    }
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// Adds drive folder `dir` (relative: to the shipment's base) to the output folders: with
    /// the folder in use, they become a drive set (the folder its first drive, its CARs recorded
    /// there when the set is opened). Running builds place their next batches on it; the
    /// watcher reads the longer set; the list is remembered for the shipment.
    pub(super) fn add_drive(&mut self, dir: PathBuf) -> Vec<Effect> {
        let dir = match (&self.settings.base, dir.is_relative()) {
            (Some(b), true) => std::path::Path::new(b).join(&dir),
            _ => dir,
        };
        let mut outs = self.settings.outs();
        if outs.contains(&dir) {
            self.say(Level::Error, format!("{} is already an output folder", dir.display()));
            return Vec::new();
        }
        outs.push(dir.clone());
        self.settings.out = outs.first().cloned();
        if outs.len() > 1 {
            self.settings.drives = outs.clone();
        }
        let n = outs.len();
        self.say(
            Level::Info,
            if n == 1 {
                format!("builds go to {}", dir.display())
            } else {
                format!(
                    "{} added as drive {n}: the next batches go on it when the drives before it are full",
                    dir.display()
                )
            },
        );
        self.builds.log(self.now, false, format!("drive {n} added: {}", dir.display()));
        self.refresh_export();
        let shipment = self.settings.shipment.clone();
        vec![Effect::AddDrive(dir), Effect::Remember { outs, shipment, deal: None }]
    }

    pub(super) fn mouse(&mut self, m: MouseEvent) {
        let (w, h) = self.size;
        let left = m.column < crate::tui::view::browser_width(w);
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                self.focus = if left { Focus::Browser } else { Focus::Batches };
                // Browser rows start below the title, location, border and column header;
                // batches (two lines each) below the title, location and border.
                if left && m.row >= 4 {
                    self.refresh_rows();
                    let row = self.browser.offset + (m.row - 4) as usize;
                    if row < self.browser.rows.len() {
                        self.select_row(row);
                    }
                } else if !left && m.row >= 3 && self.pane.open.is_none() {
                    let per = crate::tui::view::batches_per_pane(h);
                    let row = crate::tui::view::batch_offset(self.pane.row, per) + (m.row - 3) as usize / 2;
                    if row < self.batches.list.len() {
                        self.pane.row = row;
                    }
                }
            }
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let a = if m.kind == MouseEventKind::ScrollDown { Action::Down } else { Action::Up };
                for _ in 0..3 {
                    if left {
                        self.browser_act(a);
                    } else {
                        let _ = self.batches_act(a);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Applies a key to a one-line text field: Backspace deletes, a character (without Ctrl) is
/// typed. Returns whether the text changed.
pub(super) fn edit_line(text: &mut String, k: &KeyEvent) -> bool {
    match k.code {
        KeyCode::Backspace => text.pop().is_some(),
        KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
            text.push(c);
            true
        }
        _ => false,
    }
}
