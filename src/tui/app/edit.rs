//! Editing the shipment: marks, batches, packing, the preview and saving.

use super::*;

impl App {
    pub(super) fn unshippable(&self, id: u32) -> Option<String> {
        let n = self.tree.node(id);
        if n.kind.is_file() || n.kind == carload::walk::Kind::Folder && self.tree.error(id).is_none() {
            return None;
        }
        Some(format!(
            "{}: cannot be shipped ({})",
            self.tree.path(id),
            self.tree.error(id).unwrap_or("not a regular file")
        ))
    }

    pub(super) fn sort(&mut self, s: Sort) {
        if self.browser.sort == s {
            self.browser.reverse = !self.browser.reverse;
        } else {
            self.browser.sort = s;
            self.browser.reverse = false;
        }
        self.browser.stale = true;
    }

    pub(super) fn mark_all(&mut self) {
        self.refresh_rows();
        let rows: Vec<u32> = self.browser.rows.iter().copied().filter(|&id| self.unshippable(id).is_none()).collect();
        let all = rows.iter().all(|&id| self.marks.is_marked(&self.tree, id));
        for id in rows {
            if all {
                self.marks.unmark(&self.tree, id);
            } else {
                self.marks.mark(&self.tree, id);
            }
        }
        self.marks_changed();
    }

    /// Marked files not yet in a batch, in walk order, and how many were skipped.
    pub(super) fn marked_free_files(&self) -> (Vec<u32>, usize) {
        let all = self.marks.files(&self.tree);
        let n = all.len();
        let free: Vec<u32> = all.into_iter().filter(|&f| self.batches.batch_of(f).is_none()).collect();
        let skipped = n - free.len();
        (free, skipped)
    }

    pub(super) fn add_marked(&mut self, confirmed: bool) {
        if self.marks.is_empty() {
            self.say(Level::Error, "nothing marked: Space marks the selected entry, A every entry here");
            return;
        }
        let all = self.marks.files(&self.tree);
        if let Some(&f) = all.iter().find(|&&f| self.batches.batch_of(f).is_some()) {
            let (b, _) = self.batches.batch_of(f).unwrap();
            let others = all.iter().filter(|&&f| self.batches.batch_of(f).is_some()).count();
            self.say(
                Level::Error,
                format!(
                    "not added: {} of the marked files are already in batches ({} is in {}); unmark them or remove them there",
                    digits(others as u64),
                    self.tree.path(f),
                    self.batches.list[b].id
                ),
            );
            return;
        }
        if all.is_empty() {
            self.say(Level::Error, "the marked entries hold no files that can be shipped");
            return;
        }
        if !self.batches.list.is_empty() && !confirmed {
            let b = &self.batches.list[self.pane.row.min(self.batches.list.len() - 1)];
            if b.result.is_some() && b.frozen.is_none() {
                let undo = self.settings.keys.key(Action::Undo, crate::tui::keys::Context::Global);
                self.modal = Some(Modal::ConfirmEdit {
                    edit: Pending::Add(b.id.clone()),
                    title: " Change a built batch? ".into(),
                    lines: vec![
                        format!(
                            "Adding {} to {} un-builds it (a built batch of {}): its CAR stays on disk but leaves the shipment.",
                            plural(all.len() as u64, "file", "files"),
                            b.id,
                            plural(b.len() as u64, "file", "files"),
                        ),
                        format!("The batch gets a new ID and must be built again ({undo} undoes this)."),
                        String::new(),
                        "y  add them      n/Esc  keep everything as it is".into(),
                    ],
                });
                return;
            }
        }
        let touched: Vec<usize> = (!self.batches.list.is_empty())
            .then(|| self.pane.row.min(self.batches.list.len() - 1))
            .into_iter()
            .collect();
        let before = self.before_edit(Some(&touched));
        if self.batches.list.is_empty() {
            self.pane.row = self.batches.new_batch();
        }
        let i = self.pane.row.min(self.batches.list.len() - 1);
        let result = self.batches.add(&mut self.tree, i, &all, &self.settings.plan);
        let id = self.batches.list[i].id.clone();
        match result {
            Ok(()) => {
                self.marks.clear();
                self.marks_changed();
                self.record_edit(before, format!("add {} to {id}", plural(all.len() as u64, "file", "files")));
                self.dirty = true;
                let b = &self.batches.list[i];
                self.say(
                    Level::Info,
                    format!(
                        "added {} {} to {} (fill {:.3}%)",
                        digits(all.len() as u64),
                        noun(all.len(), "file", "files"),
                        b.id,
                        b.fill(&self.settings.plan) * 100.0
                    ),
                );
            }
            Err(e) => {
                self.record_edit(before, format!("new batch {id}"));
                self.say(Level::Error, e)
            }
        }
    }

    pub(super) fn auto_pack(&mut self) -> Vec<Effect> {
        if self.packing {
            self.say(Level::Error, "auto-pack is already running");
            return Vec::new();
        }
        let (files, skipped) = self.marked_free_files();
        if files.is_empty() {
            self.say(
                Level::Error,
                if skipped > 0 { "every marked file is already in a batch" } else { "nothing marked to pack" },
            );
            return Vec::new();
        }
        let t = &self.tree;
        let sizes: Vec<u64> = files.iter().map(|&f| t.node(f).size).collect();
        let folders = folder_keys(files.iter().map(|&f| {
            let p = t.node(f).parent;
            if p != NONE {
                (p, String::new())
            } else {
                let path = t.path(f);
                let parent = carload::shipment::file::name_to_path(&path)
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                (NONE, parent)
            }
        }));
        self.packing = true;
        self.say(
            Level::Info,
            format!(
                "auto-packing {} {}{}…",
                digits(files.len() as u64),
                noun(files.len(), "file", "files"),
                if skipped > 0 {
                    format!(" ({} already in batches, skipped)", digits(skipped as u64))
                } else {
                    String::new()
                }
            ),
        );
        let open = if self.settings.pack_top_up { self.open_batches() } else { Vec::new() };
        vec![Effect::Pack {
            files,
            sizes,
            folders,
            options: self.settings.plan,
            generation: self.marks_generation,
            open,
        }]
    }

    /// Built batches that share a piece CID with others: batch ID → the other IDs (a wasted
    /// deal; [`carload::shipment::status::same_pieces`], as `carload status` flags them).
    pub fn same_pieces(&self) -> std::collections::HashMap<String, Vec<String>> {
        let built =
            self.batches.list.iter().filter_map(|b| Some((b.id.as_str(), b.result.as_ref()?.piece_cid.as_str())));
        let mut out = std::collections::HashMap::new();
        for (_, ids) in carload::shipment::status::same_pieces(built) {
            for id in &ids {
                out.insert(id.clone(), ids.iter().filter(|o| *o != id).cloned().collect());
            }
        }
        out
    }

    /// Batches auto-pack may top up: not built, not being built or queued, not failed or locked
    /// elsewhere, not frozen (what [`App::batch_state`] calls not built or empty).
    fn open_batches(&self) -> Vec<(String, Bin)> {
        self.batches
            .list
            .iter()
            .filter(|b| b.frozen.is_none() && matches!(self.batch_state(b), Shown::NotBuilt | Shown::Empty))
            .map(|b| (b.id.clone(), b.bin.clone()))
            .collect()
    }

    /// Takes auto-pack's result: the open batches topped up (if none of them changed meanwhile),
    /// then the new batches.
    pub(super) fn packed(
        &mut self,
        files: Vec<u32>,
        bins: Result<carload::shipment::pack::TopUp, String>,
        generation: u64,
        open: Vec<(String, usize)>,
    ) {
        let bins = match bins {
            Err(e) => return self.say(Level::Error, format!("auto-pack failed: {e}")),
            Ok(b) => b,
        };
        let discard = |why: &str| format!("auto-pack discarded: {why} meanwhile; press p again");
        if files.iter().any(|&f| self.batches.batch_of(f).is_some()) {
            return self.say(Level::Error, discard("some of its files were added to batches"));
        }
        // The open batches as they were when packing started, still open.
        let mut targets = Vec::with_capacity(open.len());
        for ((id, len), added) in open.iter().zip(&bins.added) {
            let i = self.batches.list.iter().position(|b| &b.id == id);
            let still = i.filter(|&i| {
                let b = &self.batches.list[i];
                b.len() == *len && b.frozen.is_none() && matches!(self.batch_state(b), Shown::NotBuilt | Shown::Empty)
            });
            match still {
                Some(i) => targets.push((i, added)),
                None if added.is_empty() => {}
                None => return self.say(Level::Error, discard(&format!("batch {id} changed"))),
            }
        }
        // Any batch may change (packing tops up open ones): the undo step keeps them all.
        let before = self.before_edit(None);
        let mut topped = Vec::new();
        let mut topped_files = 0;
        for (i, added) in targets {
            if added.is_empty() {
                continue;
            }
            let items: Vec<carload::shipment::pack::Item> =
                added.iter().map(|it| carload::shipment::pack::Item { file: files[it.file] as usize, ..*it }).collect();
            topped_files += items.len();
            self.batches.extend(&mut self.tree, i, items);
            topped.push(self.batches.list[i].id.clone());
        }
        let n = bins.fresh.len();
        let range = self.batches.append_packed(&mut self.tree, bins.fresh, &files);
        if generation == self.marks_generation {
            self.marks.clear();
            self.marks_changed();
        }
        let label = match topped.len() {
            0 => format!("pack {}", plural(n as u64, "batch", "batches")),
            t => format!(
                "pack {} and top up {}",
                plural(n as u64, "batch", "batches"),
                plural(t as u64, "batch", "batches")
            ),
        };
        self.record_edit(before, label);
        self.dirty = true;
        let mut parts = Vec::new();
        if !topped.is_empty() {
            parts.push(format!(
                "topped up {} with {} entr{}",
                topped.join(", "),
                digits(topped_files as u64),
                if topped_files == 1 { "y" } else { "ies" }
            ));
        }
        if n > 0 {
            self.pane.row = range.start;
            parts.push(format!(
                "{n} new batch{} of {} pieces ({}–{})",
                if n == 1 { "" } else { "es" },
                ibytes(self.settings.plan.piece_size),
                self.batches.list[range.start].id,
                self.batches.list[range.end - 1].id
            ));
        }
        let how =
            if topped.is_empty() { format!(" into {}", parts.join("")) } else { format!(": {}", parts.join(" and ")) };
        self.say(
            Level::Info,
            format!("auto-packed {} {}{how}", digits(files.len() as u64), noun(files.len(), "file", "files")),
        );
    }

    /// The files under entry `id` that are in batches, and how many of them each batch holds
    /// (a split file counts in every batch holding a part); or why they cannot be taken out.
    fn batched_under(&self, id: u32) -> Result<(Vec<u32>, std::collections::BTreeMap<usize, u64>), String> {
        let mut files = Vec::new();
        self.tree.for_each_file(id, &mut |f| files.push(f));
        files.retain(|&f| self.batches.batch_of(f).is_some());
        let mut per = std::collections::BTreeMap::new();
        for &f in &files {
            for b in self.batches.holders(f) {
                let batch = &self.batches.list[b];
                if let Some(why) = &batch.frozen {
                    return Err(crate::tui::batches::frozen_reason(&batch.id, why));
                }
                *per.entry(b).or_insert(0) += 1;
            }
        }
        Ok((files, per))
    }

    /// Takes the files under entry `id` out of their batches (every part of a split file),
    /// asking first when built batches would lose files.
    pub(super) fn remove_from_batches(&mut self, id: u32, confirmed: bool) {
        let (files, per) = match self.batched_under(id) {
            Ok(x) => x,
            Err(e) => return self.say(Level::Error, e),
        };
        if files.is_empty() {
            return self.say(Level::Error, "not in any batch");
        }
        let built: Vec<usize> = per.keys().copied().filter(|&b| self.batches.list[b].result.is_some()).collect();
        if !built.is_empty() && !confirmed {
            let built_files = files
                .iter()
                .filter(|&&f| self.batches.holders(f).iter().any(|b| self.batches.list[*b].result.is_some()))
                .count() as u64;
            let other_files = files.len() as u64 - built_files;
            let others = per.len() - built.len();
            let undo = self.settings.keys.key(Action::Undo, crate::tui::keys::Context::Global);
            let mut lines = vec![format!("This {}.", unbuilds(built_files, built.len()))];
            if others > 0 {
                lines.push(format!(
                    "It also takes {} out of {} not built.",
                    plural(other_files, "file", "files"),
                    plural(others as u64, "batch", "batches")
                ));
            }
            lines.push(format!(
                "The batches get new IDs and must be built again ({undo} undoes this; saving keeps the shipment file's last {} versions).",
                crate::tui::worker::SHIPMENT_BACKUPS
            ));
            lines.push(String::new());
            lines.push("y  take them out      n/Esc  keep everything as it is".into());
            self.modal = Some(Modal::ConfirmEdit {
                edit: Pending::TakeOut(id),
                title: " Take files out of built batches? ".into(),
                lines,
            });
            return;
        }
        let touched: Vec<usize> = per.keys().copied().collect();
        let before = self.before_edit(Some(&touched));
        let changed = match self.batches.remove_files(&mut self.tree, &files) {
            Ok(c) => c,
            Err(e) => return self.say(Level::Error, e),
        };
        let label = format!(
            "take {} out of {}",
            plural(files.len() as u64, "file", "files"),
            plural(touched.len() as u64, "batch", "batches")
        );
        self.record_edit(before, label);
        self.dirty = true;
        self.clamp_pane();
        self.say(Level::Info, format!("removed from {}", changed.join(", ")));
    }

    /// Removes batch `i` (after the operator's yes when it has files).
    pub(super) fn remove_batch(&mut self, i: usize) {
        let before = self.before_edit(Some(&[i]));
        let b = self.batches.remove_batch(&mut self.tree, i);
        self.record_edit(before, format!("remove batch {}", b.id));
        self.pane.row = self.pane.row.min(self.batches.list.len().saturating_sub(1));
        self.pane.open = None;
        self.dirty = true;
        self.say(Level::Info, format!("removed batch {} ({} entries); its files are free again", b.id, b.len()));
    }

    /// Asks before removing batch `i` (with numbers when it is built).
    pub(super) fn ask_remove_batch(&mut self, i: usize) {
        let b = &self.batches.list[i];
        if b.result.is_none() {
            self.modal = Some(Modal::ConfirmRemove(i));
            return;
        }
        let undo = self.settings.keys.key(Action::Undo, crate::tui::keys::Context::Global);
        self.modal = Some(Modal::ConfirmEdit {
            edit: Pending::RemoveBatch(b.id.clone()),
            title: " Remove a built batch? ".into(),
            lines: vec![
                format!("Removing {} {}.", b.id, unbuilds(b.len() as u64, 1)),
                format!("Its files become free to pack again ({undo} undoes this)."),
                String::new(),
                "y  remove it      n/Esc  keep it".into(),
            ],
        });
    }

    /// What the history needs before an edit that changes at most the batches at `touched`
    /// (`None`: any) and may append new ones.
    pub(super) fn before_edit(&self, touched: Option<&[usize]>) -> crate::tui::history::Before {
        crate::tui::history::Before::take(&self.batches.list, touched, &self.marks)
    }

    /// Records an edit for undo, if it changed anything.
    pub(super) fn record_edit(&mut self, before: crate::tui::history::Before, label: String) {
        self.history.record(label, before, &self.batches.list, &self.marks);
    }

    /// Keeps the batches pane's rows inside the list after it changed.
    pub(super) fn clamp_pane(&mut self) {
        let n = self.batches.list.len();
        self.pane.row = self.pane.row.min(n.saturating_sub(1));
        if self.pane.open.is_some_and(|o| o >= n) {
            self.pane.open = None;
        }
        if let Some(o) = self.pane.open {
            let len = self.batches.list[o].bin.items.len();
            self.pane.entry_row = self.pane.entry_row.min(len.saturating_sub(1));
            self.pane.entry_offset = self.pane.entry_offset.min(self.pane.entry_row);
        }
    }

    /// Undoes the last edit of the batches (`redo`: redoes the last one undone): the batches
    /// exactly as they were (IDs and results included), the marks the edit changed, and the
    /// files a re-plan read again. Refused while a batch it would take away builds here.
    pub(super) fn undo(&mut self, redo: bool) {
        let (done, none) = if redo { ("redid", "nothing to redo") } else { ("undid", "nothing to undo") };
        let Some(mut step) = self.history.take(redo) else {
            return self.say(Level::Error, none);
        };
        if !step.fits(self.batches.list.len()) {
            self.history.clear();
            return self.say(Level::Error, "the edit history no longer matches the batches: it was cleared");
        }
        let busy: Vec<String> = step
            .leaving(self.batches.list.len())
            .into_iter()
            .map(|i| self.batches.list[i].id.clone())
            .filter(|id| self.builds.is_busy(id))
            .collect();
        if !busy.is_empty() {
            self.history.put_back(redo, step);
            let cancel = self.settings.keys.key(Action::CancelBuild, crate::tui::keys::Context::Batches);
            return self.say(
                Level::Error,
                format!("not {done}: {} is building here; cancel it first ({cancel})", busy.join(", ")),
            );
        }
        let current = std::mem::take(&mut self.batches.list);
        let marks_before = self.marks.clone();
        let (list, restored) = step.swap(current, &mut self.marks, &mut self.tree);
        self.batches.list = list;
        self.batches.restored(&mut self.tree);
        if self.scan_secs.is_some() {
            // A loaded batch removed before the scan ended comes back still to be matched.
            self.batches.resolve(&mut self.tree, &self.settings.plan);
        }
        if self.marks != marks_before {
            self.marks_changed();
        }
        self.marked_totals = None;
        self.browser.stale = true;
        if let Some(&first) = restored.first() {
            self.pane.row = first;
        }
        self.clamp_pane();
        let label = step.label.clone();
        self.history.swapped(redo, step);
        self.dirty = !self.history.at_saved();
        self.refresh_export();
        self.say(Level::Info, format!("{done}: {label}"));
    }

    /// Re-plans the selected batch (its files are stat'ed again first), asking first when it
    /// is built.
    pub(super) fn replan(&mut self, confirmed: bool) -> Vec<Effect> {
        let Some(b) = self.batches.list.get(self.pane.row) else { return Vec::new() };
        let id = b.id.clone();
        if self.builds.is_busy(&id) {
            self.say(Level::Error, "this batch is building: cancel it first (c)");
            return Vec::new();
        }
        if !self.tree.complete() {
            self.say(Level::Error, "wait for the scan to finish before re-planning");
            return Vec::new();
        }
        if b.result.is_some() && !confirmed {
            let undo = self.settings.keys.key(Action::Undo, crate::tui::keys::Context::Global);
            self.modal = Some(Modal::ConfirmEdit {
                edit: Pending::Replan(id.clone()),
                title: " Re-plan a built batch? ".into(),
                lines: vec![
                    format!(
                        "Re-planning {id} (a built batch of {}) gives it a new ID: its CAR stays on disk but leaves the shipment.",
                        plural(b.len() as u64, "file", "files")
                    ),
                    format!("It must be built again ({undo} undoes this)."),
                    String::new(),
                    "y  re-plan it      n/Esc  keep it as it is".into(),
                ],
            });
            return Vec::new();
        }
        let files = self
            .batches
            .entries_of(&self.tree, self.pane.row)
            .into_iter()
            .map(|e| (e, self.tree.walk_path(e)))
            .collect();
        self.say(Level::Info, format!("checking {id}'s files again…"));
        vec![Effect::Restat { id, files }]
    }

    /// Does an edit the operator confirmed.
    pub(super) fn confirmed(&mut self, edit: Pending) -> Vec<Effect> {
        let index = |app: &Self, id: &str| app.batches.list.iter().position(|b| b.id == id);
        match edit {
            Pending::TakeOut(entry) => self.remove_from_batches(entry, true),
            Pending::Add(id) => match index(self, &id) {
                Some(i) => {
                    self.pane.row = i;
                    self.add_marked(true);
                }
                None => self.say(Level::Error, format!("{id} is gone")),
            },
            Pending::RemoveBatch(id) => match index(self, &id) {
                Some(_) if self.builds.is_busy(&id) => {
                    self.say(Level::Error, format!("{id} is building: cancel it first"));
                }
                Some(i) => self.remove_batch(i),
                None => self.say(Level::Error, format!("{id} is gone")),
            },
            Pending::Replan(id) => match index(self, &id) {
                Some(i) => {
                    self.pane.row = i;
                    return self.replan(true);
                }
                None => self.say(Level::Error, format!("{id} is gone")),
            },
        }
        Vec::new()
    }

    pub(super) fn preview(&mut self) -> Vec<Effect> {
        let Some(i) = self.target_batch() else {
            self.say(Level::Error, "no batch to preview: pack some files first");
            return Vec::new();
        };
        let b = &self.batches.list[i];
        let rec = match &b.loaded {
            Some(r) => r.clone(),
            None => record(&self.tree, b, &self.settings.plan),
        };
        let planned = rec.files.iter().map(|f| (f.name.clone(), f.len())).collect();
        let mut preview = Preview {
            batch: b.id.clone(),
            scroll: 0,
            content: PreviewContent::Planned(planned),
            layout: None,
            layout_key: (0, 0, 0),
        };
        let mut effects = Vec::new();
        if let (Some(_), Some(out)) = (&b.result, self.dir_of(&b.id)) {
            preview.content = PreviewContent::Reading;
            let car = carload::shipment::build::outputs(&out, &b.id).car;
            effects.push(Effect::ReadManifest { car, batch: rec });
        }
        self.modal = Some(Modal::Preview(preview));
        effects
    }

    pub(super) fn start_dry_run(&mut self, mut p: Preview) -> Vec<Effect> {
        let Some(i) = self.batches.list.iter().position(|b| b.id == p.batch) else {
            self.modal = None;
            return Vec::new();
        };
        let b = &self.batches.list[i];
        let rec = match &b.loaded {
            Some(r) => r.clone(),
            None => record(&self.tree, b, &self.settings.plan),
        };
        p.content = PreviewContent::Hashing { done: 0, total: rec.bytes() };
        self.modal = Some(Modal::Preview(p));
        self.dry_run_batch = Some(rec.id.clone());
        let header = self.header(std::slice::from_ref(&rec));
        vec![Effect::DryRun { batch: rec, header }]
    }

    /// Saves to the opened shipment, or asks where.
    pub(super) fn save(&mut self, path: Option<PathBuf>) -> Vec<Effect> {
        self.save_to(path, true)
    }

    /// Saves to `path` (replacing a file there only with `overwrite`), the opened shipment, or
    /// asks where.
    pub(super) fn save_to(&mut self, path: Option<PathBuf>, overwrite: bool) -> Vec<Effect> {
        if self.saving {
            return Vec::new();
        }
        if self.batches.list.iter().any(|b| b.frozen == Some(Frozen::Resolving)) {
            self.say(Level::Error, "not saved: the shipment's batches are still being matched to the scan");
            self.quit_after_save = false;
            return Vec::new();
        }
        let Some(path) = path.or_else(|| self.settings.shipment.clone()) else {
            self.modal = Some(Modal::SavePath(self.default_shipment_name()));
            return Vec::new();
        };
        if self.batches.list.is_empty() {
            self.say(Level::Error, "nothing to save: no batches yet");
            self.quit_after_save = false;
            return Vec::new();
        }
        let batches = self.batches.records(&self.tree, &self.settings.plan);
        let header = self.header(&batches);
        self.saving = true;
        self.history.save_started();
        self.say(Level::Info, format!("saving {}…", path.display()));
        let include_carload_outputs = self.settings.include_carload_outputs;
        vec![Effect::Save {
            path,
            shipment: Box::new(Shipment { header, batches }),
            overwrite,
            include_carload_outputs,
        }]
    }

    /// Where to offer saving: `shipment.jsonl` here, or beside this folder when this folder is
    /// itself an input (a shipment file inside an input would be shipped by the next plan).
    pub(super) fn default_shipment_name(&self) -> String {
        let here_is_input = self.settings.inputs.iter().any(|i| {
            let t = i.trim_end_matches('/');
            t == "." || t.is_empty() || self.settings.base.as_deref() == Some(t)
        });
        match (here_is_input, self.settings.base.as_deref().and_then(|b| std::path::Path::new(b).file_name())) {
            (true, Some(name)) => format!("../{}.shipment.jsonl", name.to_string_lossy()),
            _ => "shipment.jsonl".into(),
        }
    }
}

/// What un-building says: "takes 1,204 files out of 15 built batches; their CARs stay on disk
/// but leave the shipment".
fn unbuilds(files: u64, batches: usize) -> String {
    format!(
        "takes {} out of {}; {}",
        plural(files, "file", "files"),
        plural(batches as u64, "built batch", "built batches"),
        if batches == 1 {
            "its CAR stays on disk but leaves the shipment"
        } else {
            "their CARs stay on disk but leave the shipment"
        }
    )
}
