//! Building, watching the output folder and exporting.

use super::*;

impl App {
    /// Clears the status message once it has been shown long enough (dating it at the first
    /// tick when it was said before any).
    pub(super) fn expire_message(&mut self, at: f64) {
        let Some((level, _)) = &self.message else { return };
        let keep = if *level == Level::Error { 3.0 * MESSAGE_SECS } else { MESSAGE_SECS };
        match self.message_at {
            None => self.message_at = Some(at),
            Some(t) if at - t >= keep => {
                self.message = None;
                self.message_at = None;
            }
            Some(_) => {}
        }
    }

    /// Says which command-line flags the opened shipment's own options override (status line
    /// and log), so they are not ignored silently.
    pub fn note_overridden(&mut self, flags: &[String]) {
        if flags.is_empty() {
            return;
        }
        let text = format!("the shipment's options win over {}", flags.join(", "));
        self.builds.log(self.now, true, text.clone());
        self.say(Level::Error, text);
    }

    /// Queues builds of batches `idx` (saving first when there are unsaved changes, and asking
    /// for the output folder once).
    pub(super) fn build(&mut self, idx: Vec<usize>) -> Vec<Effect> {
        let Some(out) = self.settings.out.clone() else {
            self.pending_build = idx;
            self.modal = Some(Modal::OutPath("cars".into()));
            return Vec::new();
        };
        if self.dirty {
            // The shipment file must describe what is built: other builders, `export` and a
            // later session read it.
            self.pending_build = idx;
            let e = self.save(None);
            if self.pending_build.is_empty() || !self.saving && self.modal.is_none() {
                self.pending_build.clear();
            }
            return e;
        }
        let mut effects = Vec::new();
        let mut skipped = Vec::new();
        // The drive manifest names the shipment and lists every batch judged built: the book
        // of the whole shipment as saved (its header and each batch's fingerprint).
        let drive = self.settings.shipment.as_ref().map(|path| {
            let all = self.batches.records(&self.tree, &self.settings.plan);
            let full = self.header(&all);
            let watched = all.iter().map(|b| carload::shipment::status::Watched::of(&full, b)).collect();
            let name = carload::shipment::drive::shipment_name(path);
            std::sync::Arc::new(carload::shipment::drive::DriveBook::new(&name, &full, watched))
        });
        // Spread over drives: each batch's drive is assigned when its build starts, on the set
        // opened once for this session with the whole shipment's header.
        let drives = match (&drive, self.settings.drives.is_empty()) {
            (Some(_), false) => {
                let all = self.batches.records(&self.tree, &self.settings.plan);
                let header = self.header(&all);
                Some(std::sync::Arc::new(DriveTarget { dirs: self.settings.drives.clone(), header }))
            }
            _ => None,
        };
        for i in idx {
            let Some(b) = self.batches.list.get(i) else { continue };
            let id = b.id.clone();
            let why = if b.result.is_some() {
                Some("it is built")
            } else if b.frozen.is_some() {
                Some("its files changed since planning; R re-plans it")
            } else if b.is_empty() {
                Some("it is empty")
            } else if self.builds.is_busy(&id) {
                Some("it is already queued here")
            } else if matches!(self.builds.activity.get(&id), Some(Activity::Foreign { stale: false, .. })) {
                Some("another builder holds it")
            } else {
                None
            };
            if let Some(why) = why {
                skipped.push(format!("{id} ({why})"));
                continue;
            }
            let rec = record(&self.tree, b, &self.settings.plan);
            let header = self.header(std::slice::from_ref(&rec));
            self.builds.activity.insert(id, Activity::Queued);
            effects.push(Effect::Build {
                batch: rec,
                header,
                out: out.clone(),
                drive: drive.clone(),
                drives: drives.clone(),
            });
        }
        if !effects.is_empty() {
            self.left = Left::Progress;
            let into = match self.settings.drives.len() {
                0 => format!("into {}", out.display()),
                n => format!("onto {n} {}", noun(n, "drive", "drives")),
            };
            self.say(
                Level::Info,
                format!("building {} {} {into}…", effects.len(), noun(effects.len(), "batch", "batches")),
            );
        }
        if !skipped.is_empty() {
            let shown: Vec<String> = skipped.iter().take(3).cloned().collect();
            let more = if skipped.len() > 3 { format!(" and {} more", skipped.len() - 3) } else { String::new() };
            self.say(
                if effects.is_empty() { Level::Error } else { Level::Info },
                format!("not built: {}{more}", shown.join(", ")),
            );
        }
        effects
    }

    /// The folder of batch `id`'s outputs: its drive's (as the watcher last saw the drive set),
    /// else the output folder.
    pub fn dir_of(&self, id: &str) -> Option<PathBuf> {
        if self.settings.drives.is_empty() {
            return self.settings.out.clone();
        }
        self.drives_seen.as_ref().and_then(|d| d.drive_of(id)).and_then(|u| u.dir.clone())
    }

    pub(super) fn batch_index(&self, id: &str) -> Option<usize> {
        self.batches.list.iter().position(|b| b.id == id)
    }

    pub(super) fn build_report(&mut self, id: String, at: f64, report: Report) {
        let Some(i) = self.batch_index(&id) else { return };
        let b = &self.batches.list[i];
        match report {
            Report::Started => {
                let p = Progress {
                    phase: Phase::Checking,
                    bytes: 0,
                    bytes_total: b.bytes(&self.tree),
                    files: 0,
                    files_total: b.len() as u64,
                    car: 0,
                    car_total: b.bound(),
                    started: at,
                    at,
                };
                let text = format!(
                    "{id} started: {} {}, {} ({} bytes)",
                    digits(p.files_total),
                    noun(p.files_total as usize, "file", "files"),
                    ibytes(p.bytes_total),
                    digits(p.bytes_total)
                );
                self.builds.log(at, false, text);
                self.builds.activity.insert(id, Activity::Running(p));
            }
            Report::Phase(phase) => {
                if let Some(Activity::Running(p)) = self.builds.activity.get_mut(&id) {
                    p.phase = phase;
                    p.at = at;
                }
            }
            Report::Notice(line) => self.builds.log(at, false, line),
            Report::Progress { bytes, files, car } => {
                if let Some(Activity::Running(p)) = self.builds.activity.get_mut(&id) {
                    p.bytes = bytes;
                    p.files = files;
                    p.car = car;
                    p.at = at;
                }
            }
            Report::Finished(done) => {
                self.builds.activity.remove(&id);
                // "building N batches…" is over once nothing is queued or building here.
                if self.builds.busy_here() == 0
                    && self.message.as_ref().is_some_and(|(_, m)| m.starts_with("building "))
                {
                    self.message = None;
                }
                match done {
                    Done::Built(r, secs) => {
                        self.builds.built_here += 1;
                        self.builds.log(
                            at,
                            false,
                            format!(
                                "{id} built in {}: payload {} · piece {} ({} padded) · CAR {} bytes",
                                human_secs(secs),
                                r.payload_cid,
                                r.piece_cid,
                                ibytes(r.piece_size),
                                digits(r.car_size)
                            ),
                        );
                        self.batches.list[i].result = Some(r);
                        self.refresh_export();
                    }
                    Done::Already(r) => {
                        self.builds.log(at, false, format!("{id} already built in the output folder"));
                        let b = &self.batches.list[i];
                        let rec = b.loaded.clone().unwrap_or_else(|| record(&self.tree, b, &self.settings.plan));
                        let header = self.header(std::slice::from_ref(&rec));
                        if let Some(r) = r.filter(|r| carload::shipment::build::result_belongs(&header, &rec, r)) {
                            self.batches.list[i].result = Some(r);
                            self.refresh_export();
                        }
                    }
                    Done::Busy(holder) => {
                        self.builds.log(at, false, format!("{id} not built here: another builder holds it ({holder})"));
                        self.builds
                            .activity
                            .insert(id, Activity::Foreign { holder, age: 0, stale: false, progress: None });
                    }
                    Done::Failed(e) => {
                        let e = workstation_advice(&e);
                        self.builds.log(at, true, format!("{id} FAILED: {e}"));
                        self.say(Level::Error, format!("{id} failed: {e}"));
                        self.builds.activity.insert(id, Activity::Failed(e));
                    }
                    Done::Cancelled => {
                        self.builds.log(at, false, format!("{id} cancelled: temporary files removed, lock released"));
                    }
                    Done::Waits(why) => {
                        self.builds.log(at, true, format!("{id} waits: {why}"));
                        self.builds.activity.insert(id, Activity::Waits(why));
                    }
                }
            }
        }
    }

    /// Source bytes of the shipment built so far, counting running builds' share.
    pub(super) fn shipment_done(&self) -> f64 {
        self.shipment_totals().2
    }

    /// Totals for the progress pane, in one pass over the batches: (built batches, batches,
    /// source bytes done — running builds counted by their share —, source bytes).
    pub fn shipment_totals(&self) -> (usize, usize, f64, u64) {
        let (mut built, mut done, mut total) = (0, 0.0, 0u64);
        for b in &self.batches.list {
            let bytes = b.bytes(&self.tree);
            total += bytes;
            if b.result.is_some() {
                built += 1;
                done += bytes as f64;
            } else if let Some(Activity::Running(p)) = self.builds.activity.get(&b.id) {
                done += p.done_bytes();
            }
        }
        (built, self.batches.list.len(), done, total)
    }

    pub(super) fn watched(&mut self, at: f64, seen: Vec<BatchStatus>) {
        let mut found = Vec::new();
        for s in seen {
            let Some(i) = self.batch_index(&s.id) else { continue };
            if self.builds.is_busy(&s.id) {
                continue; // our own lock and result
            }
            if !matches!(s.state, State::Built { .. }) {
                self.seen_unbuilt.insert(s.id.clone());
            }
            let has = self.batches.list[i].result.is_some();
            match (&s.state, s.result) {
                // The judge checked that the result belongs to the batch's record (a frozen batch's
                // as it was loaded: its CAR ships whatever its sources became); checked again
                // against the batch as it is now, in case it was edited meanwhile.
                (State::Built { .. }, Some(r)) if !has => {
                    let b = &self.batches.list[i];
                    let rec = b.loaded.clone().unwrap_or_else(|| record(&self.tree, b, &self.settings.plan));
                    let header = self.header(std::slice::from_ref(&rec));
                    if carload::shipment::build::result_belongs(&header, &rec, &r) {
                        if self.seen_unbuilt.contains(&s.id) {
                            self.builds.log(
                                at,
                                false,
                                format!("{} built by another builder: piece {}", s.id, r.piece_cid),
                            );
                        } else {
                            found.push(s.id.clone());
                        }
                        self.batches.list[i].result = Some(r);
                        self.builds.activity.remove(&s.id);
                        self.refresh_export();
                    }
                }
                // No valid result any more (an unreadable one may be a transient error: kept).
                (State::NotBuilt | State::Building { .. } | State::StaleLock { .. } | State::Corrupt { .. }, _)
                    if has =>
                {
                    self.builds.log(
                        at,
                        true,
                        format!("{}: its result left the output folder or is no longer valid", s.id),
                    );
                    self.batches.list[i].result = None;
                    self.refresh_export();
                }
                _ => {}
            }
            // Outputs that are present but cannot count (corrupt, another plan's): shown as such.
            match &s.state {
                State::Failed { host, reason } => {
                    if !self.builds.activity.contains_key(&s.id) {
                        self.builds.activity.insert(
                            s.id.clone(),
                            Activity::Failed(format!("on {host}: {}", workstation_advice(reason))),
                        );
                    }
                    continue;
                }
                State::Problem { .. } if self.drives_seen.as_ref().is_some_and(|d| d.waits.contains_key(&s.id)) => {
                    let why = self.drives_seen.as_ref().and_then(|d| d.waits.get(&s.id)).cloned().unwrap_or_default();
                    if !matches!(self.builds.activity.get(&s.id), Some(Activity::Failed(_))) {
                        self.builds.activity.insert(s.id.clone(), Activity::Waits(why));
                    }
                    continue;
                }
                State::Corrupt { reason } | State::Problem { reason } => {
                    if !matches!(self.builds.activity.get(&s.id), Some(Activity::Failed(_))) {
                        self.builds.activity.insert(s.id.clone(), Activity::Outputs(reason.clone()));
                    }
                    continue;
                }
                _ => {
                    if matches!(self.builds.activity.get(&s.id), Some(Activity::Outputs(_) | Activity::Waits(_))) {
                        self.builds.activity.remove(&s.id);
                    }
                }
            }
            let (host, pid, age, stale, progress) = match s.state {
                State::Building { host, pid, heartbeat_age, progress } => (host, pid, heartbeat_age, false, progress),
                State::StaleLock { host, pid, heartbeat_age, .. } => (host, pid, heartbeat_age, true, None),
                _ => {
                    // Built (a lock seen on it is a finishing builder's, ours included), or no lock.
                    if matches!(self.builds.activity.get(&s.id), Some(Activity::Foreign { .. })) {
                        self.builds.activity.remove(&s.id);
                    }
                    continue;
                }
            };
            if self.batches.list[i].result.is_some() {
                self.builds.activity.remove(&s.id);
                continue;
            }
            let holder = format!("host={host} pid={pid}");
            if !matches!(self.builds.activity.get(&s.id), Some(Activity::Foreign { .. })) {
                self.builds.log(at, false, format!("{} claimed by {holder}", s.id));
            }
            self.builds.activity.insert(s.id, Activity::Foreign { holder, age, stale, progress });
        }
        if let Some(first) = found.first() {
            // Built before this session looked (by it earlier, or by anyone): one line.
            let out = match self.settings.drives.len() {
                0 => self.settings.out.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
                n => format!("the {n} drives"),
            };
            let which = match found.len() {
                1 => first.clone(),
                n => format!("{first}…{} ({n} batches)", found[n - 1]),
            };
            self.builds.log(at, false, format!("{which} already built in {out}"));
        }
    }

    /// Recomputes the export preview from the results in memory, with `carload export`'s code.
    pub(super) fn refresh_export(&mut self) {
        let Some(out) = self.settings.out.clone() else {
            self.export_preview = Err("no output folder: builds go to --out (b asks for it)".into());
            return;
        };
        // CAR paths absolute, as `carload export` writes them by default; each on its drive.
        let rows: Vec<(BatchResult, String)> = self
            .batches
            .list
            .iter()
            .filter_map(|b| {
                let dir = self.dir_of(&b.id).unwrap_or_else(|| out.clone());
                let dir = std::path::absolute(&dir).unwrap_or(dir);
                b.result.clone().map(|r| (r, export::car_path(Some(&dir), &b.id)))
            })
            .collect();
        if rows.is_empty() {
            self.export_preview = Err("no batch is built yet: b builds the selected batch, B every batch".into());
            return;
        }
        let params = match self.deal.params() {
            Ok(p) => p,
            Err(e) => {
                self.export_preview = Err(e);
                return;
            }
        };
        // Results were checked against their batches when they were taken.
        let s = Shipment { header: self.header(&[]), batches: Vec::new() };
        let format = FORMATS[self.deal.format % FORMATS.len()].1;
        self.export_preview = export::render(&s, &rows, &[], format, &params).map_err(|e| e.to_string());
    }

    pub(super) fn open_export(&mut self) {
        let format = FORMATS[self.deal.format % FORMATS.len()].1;
        if self.deal.output.is_empty() || self.is_default_output(&self.deal.output) {
            self.deal.output = self.default_output(format);
        }
        self.refresh_export();
        self.modal = Some(Modal::Export { field: 1 });
    }

    /// The export file's default for `format`: named after the shipment, beside it.
    pub(super) fn default_output(&self, format: Format) -> String {
        export::default_output(self.settings.shipment.as_deref(), format).display().to_string()
    }

    /// Whether `output` is a default name (this shipment's for any format, or the `deals.sh`
    /// of earlier versions): it follows the shipment and the format.
    pub(super) fn is_default_output(&self, output: &str) -> bool {
        matches!(output, "deals.sh" | "deals.csv") || FORMATS.iter().any(|(_, f)| self.default_output(*f) == output)
    }

    /// The batches an export leaves out, named: being built (here or by another builder) and
    /// not built; `None` when every batch with files is in it.
    pub fn export_left_out(&self) -> Option<String> {
        let (mut building, mut missing) = (Vec::new(), Vec::new());
        for b in self.batches.list.iter().filter(|b| b.result.is_none() && !b.is_empty()) {
            match self.batch_state(b) {
                Shown::Queued | Shown::Running(_) | Shown::Foreign { stale: false, .. } => building.push(b.id.as_str()),
                _ => missing.push(b.id.as_str()),
            }
        }
        let total = building.len() + missing.len();
        if total == 0 {
            return None;
        }
        let names = |ids: &[&str]| {
            let more = if ids.len() > 5 { ", …" } else { "" };
            format!("{}{more}", ids.iter().take(5).copied().collect::<Vec<_>>().join(", "))
        };
        let mut parts = Vec::new();
        if !building.is_empty() {
            parts.push(format!("{} being built ({})", building.len(), names(&building)));
        }
        if !missing.is_empty() {
            parts.push(format!("{} not built ({})", missing.len(), names(&missing)));
        }
        let of = self.batches.list.iter().filter(|b| !b.is_empty()).count();
        Some(format!("{total} of {of} {} left out: {}", noun(of, "batch", "batches"), parts.join(", ")))
    }

    /// What the workstation says of batch `b`: one judgement in one order for the list, the
    /// info screen and the counts. A batch running or queued here shows that; a batch whose
    /// result the judge accepted is built (a note when its sources changed since: its CAR is
    /// what ships); then a failure here, another builder's lock, outputs that cannot count,
    /// sources changed before it was built.
    pub fn batch_state(&self, b: &crate::tui::batches::WsBatch) -> Shown {
        let changed = match &b.frozen {
            Some(Frozen::Changed { example, .. }) => Some(example.clone()),
            _ => None,
        };
        match (self.builds.activity.get(&b.id), &b.result) {
            (Some(Activity::Running(p)), _) => Shown::Running(p.clone()),
            (Some(Activity::Queued), _) => Shown::Queued,
            (_, Some(_)) => Shown::Built { sources_changed: changed },
            (_, None) if b.frozen == Some(Frozen::Resolving) => Shown::Resolving,
            (Some(Activity::Failed(e)), None) => Shown::Failed(e.clone()),
            (Some(Activity::Foreign { holder, age, stale, progress }), None) => {
                Shown::Foreign { holder: holder.clone(), age: *age, stale: *stale, progress: *progress }
            }
            (Some(Activity::Outputs(why)), None) => Shown::Outputs(why.clone()),
            (Some(Activity::Waits(why)), None) => Shown::Waits(why.clone()),
            (None, None) => match changed {
                Some(why) => Shown::Changed(why),
                None if b.is_empty() => Shown::Empty,
                None => Shown::NotBuilt,
            },
        }
    }

    /// Lines of the info screen: (label, value), copyable.
    pub fn info_lines(&self, i: usize) -> Vec<(String, String)> {
        let Some(b) = self.batches.list.get(i) else { return Vec::new() };
        let mut v = vec![
            ("Batch".to_string(), b.id.clone()),
            ("Files".into(), digits(b.len() as u64)),
            ("Source bytes".into(), digits(b.bytes(&self.tree))),
            ("CAR bytes (planned bound)".into(), digits(b.bound())),
        ];
        let state = match self.batch_state(b) {
            Shown::Resolving => "matching to the scan".into(),
            Shown::Queued => "queued".into(),
            Shown::Running(p) => format!("building ({:?}, {:.0}%)", p.phase, p.fraction() * 100.0),
            Shown::Built { sources_changed: None } => "built".into(),
            Shown::Built { sources_changed: Some(why) } => {
                format!("built; its sources changed since ({why}): the CAR is what ships")
            }
            Shown::Failed(e) => format!("failed: {e}"),
            Shown::Foreign { holder, age, stale, progress } => format!(
                "{} by {holder}{}, lock refreshed {age} s ago",
                if stale { "stale lock" } else { "building" },
                progress.as_ref().map_or(String::new(), foreign_progress)
            ),
            Shown::Outputs(why) => format!("not built: {why}"),
            Shown::Waits(why) => format!("waits: {why}"),
            Shown::Changed(why) => format!("changed since planning: {why}"),
            Shown::Empty | Shown::NotBuilt => "not built".into(),
        };
        v.push(("State".into(), state));
        if let Some(u) = self.drives_seen.as_ref().and_then(|d| d.drive_of(&b.id)) {
            v.push(("Drive".into(), format!("drive {} of {} ({})", u.position, u.of, u.label)));
        }
        if let Some(r) = &b.result {
            v.push(("Payload CID".into(), r.payload_cid.clone()));
            v.push(("Piece CID".into(), r.piece_cid.clone()));
            v.push(("Piece CID v2".into(), r.piece_cid_v2.clone()));
            v.push(("Piece size (padded)".into(), r.piece_size.to_string()));
            v.push(("Piece size (unpadded)".into(), r.piece_size_unpadded.to_string()));
            v.push(("CAR size".into(), r.car_size.to_string()));
            if let Some(out) = self.dir_of(&b.id) {
                let out = std::path::absolute(&out).unwrap_or(out);
                v.push(("CAR file".into(), export::car_path(Some(&out), &b.id)));
                if let Ok(params) = self.deal.params() {
                    for (name, f) in [
                        ("Boost command", Format::Boost),
                        ("Curio command", Format::Curio),
                        ("Lotus command", Format::Lotus),
                    ] {
                        let command = export::command(f, &params, &r.into()).unwrap_or_default();
                        v.push((name.into(), command.lines().next().unwrap_or("").to_string()));
                    }
                }
            }
        }
        v
    }
}

/// The word for `n` things (`1 file`, `2 files`), as the command line says it.
pub fn noun(n: usize, one: &'static str, many: &'static str) -> &'static str {
    carload::human::plural(n as u64, one, many)
}

/// A library reason with the command line's advice replaced by the workstation's own fix: a
/// batch whose sources changed is re-planned with `R`, not with `carload plan`.
pub fn workstation_advice(reason: &str) -> String {
    reason.replace("re-run `carload plan`", "R re-plans the batch")
}
