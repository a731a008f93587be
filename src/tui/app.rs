//! The workstation's state and its update function: every input and every worker result is a
//! [`Msg`]; [`App::update`] changes the state and returns the [`Effect`]s (background work) the
//! runtime must start. Nothing here touches the terminal, the disk or the clock, so the whole
//! behaviour is testable by feeding messages.

use super::batches::{record, Batches, Frozen};
use super::builds::{foreign_progress, Activity, Builds, Progress};
use super::keys::{Action, Keymap};
use super::marks::Marks;
use super::tree::{Totals, Tree, NONE};
use carload::event::Phase;
use carload::human::{ibytes, secs as human_secs};
use carload::shipment::export::{self, Format};
use carload::shipment::overhead::overhead_bound;
use carload::shipment::pack::Bin;
use carload::shipment::plan::{folder_keys, header, PlanOptions};
use carload::shipment::status::{BatchStatus, State};
use carload::shipment::BatchResult;
use carload::shipment::{Batch, Shipment};
use carload::walk::Listing;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use std::path::PathBuf;

/// A batch's state as the workstation shows it ([`App::batch_state`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    /// A loaded batch being matched to the scan.
    Resolving,
    /// Waiting for a build slot here.
    Queued,
    /// Being built here.
    Running(super::builds::Progress),
    /// Built: its result is in the output folder and belongs to it.
    Built {
        /// Why its sources no longer match its record, if they changed since it was planned.
        sources_changed: Option<String>,
    },
    /// The last build here failed.
    Failed(String),
    /// Another builder holds its lock.
    Foreign {
        /// The lock's owner line.
        holder: String,
        /// Seconds since the lock was refreshed.
        age: u64,
        /// Whether the lock is stale.
        stale: bool,
        /// The builder's reported progress.
        progress: Option<carload::shipment::lock::Progress>,
    },
    /// Outputs in the output folder that cannot count (corrupt, another plan's).
    Outputs(String),
    /// Its sources changed since planning, and it is not built.
    Changed(String),
    /// No files.
    Empty,
    /// Not built.
    NotBuilt,
}

/// Settings the workstation runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Planning options (profile, sector, piece sizes, packing mode).
    pub plan: PlanOptions,
    /// The roots as given (recorded in the shipment header).
    pub inputs: Vec<String>,
    /// Folder relative names resolve against (recorded in the header).
    pub base: Option<String>,
    /// Each root's name below `base` in shipment names (the roots are shown as given).
    pub root_names: Vec<Vec<u8>>,
    /// The shipment file saved to (and opened from, if it existed).
    pub shipment: Option<PathBuf>,
    /// The output folder of builds, where results are looked up.
    pub out: Option<PathBuf>,
    /// Folder for a dry run's temporary spool.
    pub tmpdir: PathBuf,
    /// Whether colours are used.
    pub color: bool,
    /// Seconds after which another builder's lock counts as stale.
    pub stale_after: u64,
    /// The export form's starting values (config and remembered state).
    pub deal: DealForm,
    /// The key bindings in force (the defaults with the config's changes).
    pub keys: Keymap,
    /// Where the config file is read from (shown in the help).
    pub config_path: Option<PathBuf>,
    /// Save shipments that ship carload's own outputs (`--include-carload-outputs`).
    pub include_carload_outputs: bool,
}

/// The export form: deal parameters, format and output file (remembered between runs).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DealForm {
    /// Index into [`FORMATS`].
    pub format: usize,
    /// Storage provider.
    pub provider: String,
    /// Boost/Curio storage price (attoFIL per GiB per epoch).
    pub storage_price: String,
    /// Duration in epochs.
    pub duration: String,
    /// Verified deal ("false" or anything else).
    pub unverified: bool,
    /// Client wallet.
    pub wallet: String,
    /// Curio `--actor`.
    pub actor: String,
    /// Lotus legacy price (FIL per epoch).
    pub price: String,
    /// File to write.
    pub output: String,
}

/// Export formats offered, as `carload export --format` names them.
pub const FORMATS: [(&str, Format); 4] = [
    (Format::Boost.name(), Format::Boost),
    (Format::Curio.name(), Format::Curio),
    (Format::Lotus.name(), Format::Lotus),
    (Format::Csv.name(), Format::Csv),
];

/// Labels of the export form's fields, in order.
pub const FORM_FIELDS: [&str; 9] = [
    "Format",
    "Provider",
    "Storage price (attoFIL/GiB/epoch)",
    "Duration (epochs)",
    "Verified (Fil+)",
    "Wallet",
    "Curio actor",
    "Lotus price (FIL/epoch)",
    "Write to file",
];

impl DealForm {
    fn text(&mut self, field: usize) -> Option<&mut String> {
        Some(match field {
            1 => &mut self.provider,
            2 => &mut self.storage_price,
            3 => &mut self.duration,
            5 => &mut self.wallet,
            6 => &mut self.actor,
            7 => &mut self.price,
            8 => &mut self.output,
            _ => return None,
        })
    }

    /// The value shown for field `i`.
    pub fn value(&self, i: usize) -> String {
        match i {
            0 => FORMATS[self.format % FORMATS.len()].0.to_string(),
            1 => self.provider.clone(),
            2 => self.storage_price.clone(),
            3 => self.duration.clone(),
            4 => (if self.unverified { "false" } else { "true" }).into(),
            5 => self.wallet.clone(),
            6 => self.actor.clone(),
            7 => self.price.clone(),
            _ => self.output.clone(),
        }
    }

    /// The deal parameters, as `carload export`'s flags give them.
    pub fn params(&self) -> Result<carload::shipment::export::DealParams, String> {
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        let duration = match opt(&self.duration) {
            None => None,
            Some(d) => Some(d.parse::<u64>().map_err(|_| format!("duration {d:?} is not a number of epochs"))?),
        };
        Ok(carload::shipment::export::DealParams {
            provider: opt(&self.provider),
            price: opt(&self.price),
            duration,
            storage_price: opt(&self.storage_price),
            verified: !self.unverified,
            wallet: opt(&self.wallet),
            actor: opt(&self.actor),
        })
    }
}

/// A build's report to the workstation.
#[derive(Debug, Clone)]
pub enum Report {
    /// It claimed the lock and started.
    Started,
    /// It entered a phase.
    Phase(Phase),
    /// Totals so far: source bytes hashed, files hashed, CAR bytes written.
    Progress {
        /// Source bytes hashed.
        bytes: u64,
        /// Files hashed.
        files: u64,
        /// CAR bytes written.
        car: u64,
    },
    /// Something to tell the operator (a library notice), for the log.
    Notice(String),
    /// It ended.
    Finished(Done),
}

/// How a build ended.
#[derive(Debug, Clone)]
pub enum Done {
    /// Built, in this many seconds.
    Built(BatchResult, f64),
    /// Already built (its result, when readable).
    Already(Option<BatchResult>),
    /// Another builder holds the lock.
    Busy(String),
    /// Failed, with the reason.
    Failed(String),
    /// Cancelled; temporaries removed, lock released.
    Cancelled,
}

/// Everything the update function reacts to.
#[derive(Debug)]
pub enum Msg {
    /// A key press.
    Key(KeyEvent),
    /// A mouse event (only with mouse capture on).
    Mouse(MouseEvent),
    /// The terminal was resized.
    Resize(u16, u16),
    /// A folder listing from the scan.
    Listing(Listing),
    /// The scan finished, in this many seconds.
    ScanDone(f64),
    /// Auto-pack finished: bins over `files` (entry IDs).
    Packed {
        /// The files packed, in walk order (`Item::file` indexes this).
        files: Vec<u32>,
        /// The bins, or why packing failed.
        bins: Result<Vec<Bin>, String>,
        /// The marks generation when packing started.
        generation: u64,
    },
    /// Progress of a dry run: bytes hashed so far.
    DryRunProgress(u64),
    /// A dry run ended.
    DryRunDone(Result<Hashed, String>),
    /// A built batch's manifest was read from its CAR.
    ManifestRead(Result<Hashed, String>),
    /// A save ended.
    Saved(Result<PathBuf, String>),
    /// A save to a new name found a file there (nothing written): ask before replacing it.
    SaveExists(PathBuf),
    /// A build reported.
    Build {
        /// Batch ID.
        id: String,
        /// When (seconds since the Unix epoch).
        at: f64,
        /// What.
        report: Report,
    },
    /// A second passed (while builds run): the shipment rate is sampled.
    Tick(f64),
    /// The output folder's locks and results (polled every few seconds with
    /// `shipment::status::status`, as `carload status` reads them).
    Watched {
        /// When.
        at: f64,
        /// One entry per watched batch.
        seen: Vec<BatchStatus>,
    },
    /// An export was written, or why not (`Err(None)`: the file exists).
    Exported(Result<PathBuf, Option<String>>),
    /// A batch's files were stat'ed again (for a re-plan).
    Restated {
        /// Batch ID.
        id: String,
        /// Each entry's size and modification time now, or `None` if it is gone.
        now: Vec<(u32, Option<crate::tui::tree::FileStat>)>,
    },
}

/// Background work the runtime starts for the update function.
#[derive(Debug)]
pub enum Effect {
    /// Pack these files (sizes and folder keys in the same order) with the planner.
    Pack {
        /// Entry IDs.
        files: Vec<u32>,
        /// Their sizes.
        sizes: Vec<u64>,
        /// Their folder keys ([`folder_keys`]).
        folders: Vec<u32>,
        /// Planning options.
        options: PlanOptions,
        /// Marks generation.
        generation: u64,
    },
    /// Hash a batch without writing its CAR.
    DryRun {
        /// The batch as the shipment file records it.
        batch: Batch,
        /// The shipment header (profile, minimum piece size, base).
        header: carload::shipment::Header,
    },
    /// Stop the running dry run.
    CancelDryRun,
    /// Read a built batch's manifest from its CAR.
    ReadManifest {
        /// The CAR.
        car: PathBuf,
        /// The batch's files (names shown beside their DAG CIDs).
        batch: Batch,
    },
    /// Write the shipment file.
    Save {
        /// Where.
        path: PathBuf,
        /// What.
        shipment: Box<Shipment>,
        /// Whether a file at `path` may be replaced (else [`Msg::SaveExists`] asks first).
        overwrite: bool,
        /// Whether carload's own outputs may be among its files (else it is refused).
        include_carload_outputs: bool,
    },
    /// Build a batch with `build_one`, as `carload build` does.
    Build {
        /// The batch record (as saved in the shipment file).
        batch: Batch,
        /// The shipment header.
        header: carload::shipment::Header,
        /// Output folder.
        out: PathBuf,
    },
    /// Cancel a queued or running build.
    CancelBuild(String),
    /// Watch these batches' locks and results in the output folder.
    Watch {
        /// Output folder.
        out: PathBuf,
        /// The shipment header of the batches (results are checked against it).
        header: carload::shipment::Header,
        /// The batches' IDs, totals and fingerprints (a result counts only if it belongs).
        batches: std::sync::Arc<Vec<carload::shipment::status::Watched>>,
        /// Seconds after which a lock not refreshed is stale.
        stale_after: u64,
    },
    /// Write an export file (atomically; `overwrite` when the operator agreed).
    Export {
        /// Where.
        path: PathBuf,
        /// What.
        text: String,
        /// Replace an existing file.
        overwrite: bool,
    },
    /// Put text on the terminal's clipboard (OSC 52).
    Copy(String),
    /// Stat a batch's files again (re-plan).
    Restat {
        /// Batch ID.
        id: String,
        /// Entries and their paths.
        files: Vec<(u32, PathBuf)>,
    },
    /// Remember the output folder and the export form for next time.
    Remember {
        /// Output folder.
        out: Option<PathBuf>,
        /// Export form.
        deal: Option<DealForm>,
    },
    /// Leave the workstation (running builds are cancelled first).
    Quit,
}

/// What hashing a batch (or reading its CAR) told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    /// Payload CID (the aggregate root).
    pub payload_cid: String,
    /// CAR bytes.
    pub car_size: u64,
    /// Padded piece size (0 when read from a CAR without its result).
    pub piece_size: u64,
    /// Piece CID v1.
    pub piece_cid: String,
    /// Piece CID v2.
    pub piece_cid_v2: String,
    /// Each entry's walk name and DAG CID, in batch order.
    pub entries: Vec<(String, String)>,
    /// The manifest's lines, exactly.
    pub manifest: Vec<String>,
}

/// Which pane has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The folder browser.
    Browser,
    /// The batches pane.
    Batches,
}

/// Sort order of the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// By name bytes (the walk order).
    Name,
    /// By bytes, largest first.
    Size,
    /// By file count, most first.
    Count,
}

/// The browser pane.
#[derive(Debug, Clone)]
pub struct Browser {
    /// Folder record shown (0: the roots).
    pub folder: u32,
    /// Entries shown, in order.
    pub rows: Vec<u32>,
    /// The selected entry (kept across sorts and filters).
    pub selected: u32,
    /// First row shown.
    pub offset: usize,
    /// Sort order.
    pub sort: Sort,
    /// Reversed order.
    pub reverse: bool,
    /// Name filter (substring, case-insensitive).
    pub filter: String,
    /// Whether the filter is being typed.
    pub editing_filter: bool,
    /// Whether dot-entries are listed.
    pub show_hidden: bool,
    stale: bool,
}

/// The batches pane.
#[derive(Debug, Clone, Default)]
pub struct BatchPane {
    /// Selected batch (the "current" batch `a` adds to).
    pub row: usize,
    /// The batch whose entries are listed, if one is open.
    pub open: Option<usize>,
    /// Selected entry of the open batch.
    pub entry_row: usize,
    /// First entry row shown.
    pub entry_offset: usize,
}

/// The manifest preview.
#[derive(Debug, Clone)]
pub struct Preview {
    /// Batch ID previewed.
    pub batch: String,
    /// First row shown.
    pub scroll: usize,
    /// What is known.
    pub content: PreviewContent,
    /// Where each line starts, in rows, for the box width given (`view::preview_layout`):
    /// made by the update function when the content or the width changes.
    pub layout: Option<(u16, Vec<u32>)>,
    /// What the layout was made for: width, kind of content, lines.
    pub layout_key: (u16, u8, usize),
}

/// What the preview shows.
#[derive(Debug, Clone)]
pub enum PreviewContent {
    /// Before hashing: the entries' paths and sizes, in batch order.
    Planned(Vec<(String, u64)>),
    /// A dry run is hashing: bytes done of total.
    Hashing {
        /// Bytes hashed.
        done: u64,
        /// Bytes to hash.
        total: u64,
    },
    /// Reading a built batch's CAR.
    Reading,
    /// Hashed (dry run) or read from the CAR.
    Hashed {
        /// The figures and lines.
        hashed: Hashed,
        /// Whether it comes from a built CAR.
        built: bool,
    },
    /// The dry run or read failed.
    Failed(String),
}

/// A modal screen over the panes.
#[derive(Debug, Clone)]
pub enum Modal {
    /// The key reference.
    Help(usize),
    /// A batch's manifest.
    Preview(Preview),
    /// Quit with unsaved changes?
    ConfirmQuit,
    /// Remove a batch?
    ConfirmRemove(usize),
    /// The shipment file to save to.
    SavePath(String),
    /// Overwrite an existing file?
    ConfirmOverwrite(PathBuf),
    /// The output folder for builds.
    OutPath(String),
    /// A batch's labelled CIDs and sizes; the selected line can be copied.
    Info {
        /// Batch index.
        batch: usize,
        /// Selected line.
        row: usize,
    },
    /// The export form.
    Export {
        /// Focused field.
        field: usize,
    },
    /// Overwrite an existing export file?
    ConfirmExportOverwrite(PathBuf),
}

/// What the left pane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// The folder browser.
    Browser,
    /// Build progress and the log.
    Progress,
}

/// How a status message reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something done.
    Info,
    /// Something refused or failed.
    Error,
}

/// The whole state.
pub struct App {
    /// Settings.
    pub settings: Settings,
    /// The scanned tree.
    pub tree: Tree,
    /// Marked entries.
    pub marks: Marks,
    marks_generation: u64,
    /// Batches.
    pub batches: Batches,
    /// Focused pane.
    pub focus: Focus,
    /// Browser pane.
    pub browser: Browser,
    /// Batches pane.
    pub pane: BatchPane,
    /// The open modal screen.
    pub modal: Option<Modal>,
    /// The last status message.
    pub message: Option<(Level, String)>,
    /// Unsaved changes.
    pub dirty: bool,
    /// Terminal size.
    pub size: (u16, u16),
    /// Scan time once done.
    pub scan_secs: Option<f64>,
    /// Auto-pack running.
    pub packing: bool,
    /// Saving running.
    pub saving: bool,
    quit_after_save: bool,
    dry_run_batch: Option<String>,
    marked_totals: Option<Totals>,
    /// Builds: activity, log, rate.
    pub builds: Builds,
    /// What the left pane shows.
    pub left: Left,
    /// The export form's values.
    pub deal: DealForm,
    /// The export preview (or why there is none), recomputed when the form or results change.
    pub export_preview: Result<String, String>,
    /// Batches to build once the save they wait for is done.
    pending_build: Vec<usize>,
    watched_ids: Vec<String>,
    /// The latest time a message carried.
    pub now: f64,
}

/// Rows of the browser list for a terminal of height `h` (the view's layout).
pub fn list_rows(h: u16) -> usize {
    (h as usize).saturating_sub(2 + 2 + 1 + 4)
}

impl App {
    /// A workstation over an empty tree (listings arrive as messages).
    pub fn new(settings: Settings, size: (u16, u16)) -> Self {
        let profile = settings.plan.profile;
        let cost = move |s: u64| carload::shipment::overhead::EntryCost::of_file(s, &profile).car_bytes;
        let mut tree = Tree::new(Box::new(cost));
        tree.set_root_names(settings.root_names.clone());
        App {
            settings,
            tree,
            marks: Marks::default(),
            marks_generation: 0,
            batches: Batches::default(),
            focus: Focus::Browser,
            browser: Browser {
                folder: 0,
                rows: Vec::new(),
                selected: NONE,
                offset: 0,
                sort: Sort::Name,
                reverse: false,
                filter: String::new(),
                editing_filter: false,
                show_hidden: true,
                stale: true,
            },
            pane: BatchPane::default(),
            modal: None,
            message: None,
            dirty: false,
            size,
            scan_secs: None,
            packing: false,
            saving: false,
            quit_after_save: false,
            dry_run_batch: None,
            marked_totals: None,
            builds: Builds::default(),
            left: Left::Browser,
            deal: DealForm::default(),
            export_preview: Err(String::new()),
            pending_build: Vec::new(),
            watched_ids: Vec::new(),
            now: 0.0,
        }
        .with_deal()
    }

    fn with_deal(mut self) -> Self {
        self.deal = self.settings.deal.clone();
        self
    }

    /// Loads the batches of an opened shipment.
    pub fn load_batches(&mut self, batches: Vec<Batch>) {
        self.batches.load(batches);
    }

    /// The cost function's capacity: the piece's usable bytes.
    pub fn capacity(&self) -> u64 {
        self.settings.plan.capacity()
    }

    /// Totals of the marked entries (cached until marks or the tree change).
    pub fn marked_totals(&self) -> Totals {
        self.marked_totals.unwrap_or_else(|| self.marks.totals(&self.tree))
    }

    /// Lays the open preview's lines out for its box (once per content and width: drawing then
    /// formats only the lines shown).
    fn lay_out_preview(&mut self) {
        let area = ratatui::layout::Rect { x: 0, y: 0, width: self.size.0, height: self.size.1 };
        let width = super::view::preview_rect(area).width;
        let Some(Modal::Preview(p)) = &mut self.modal else { return };
        let kind = match &p.content {
            PreviewContent::Planned(_) => 0,
            PreviewContent::Hashing { .. } => 1,
            PreviewContent::Reading => 2,
            PreviewContent::Hashed { .. } => 3,
            PreviewContent::Failed(_) => 4,
        };
        let key = (width, kind, super::view::preview_len(&p.content));
        // Hashing's two lines change as it goes: small, laid out each time.
        if p.layout.is_none() || p.layout_key != key || kind == 1 {
            p.layout = Some((width, super::view::preview_layout(&p.content, width as usize)));
            p.layout_key = key;
        }
    }

    /// Estimated pieces the marked files need (their CAR bytes plus the batch overhead bound,
    /// over the usable capacity).
    pub fn pieces_needed(&self) -> u64 {
        let t = self.marked_totals();
        if t.files == 0 {
            return 0;
        }
        let need = t.cost + overhead_bound(t.files, t.files);
        need.div_ceil(self.capacity().max(1))
    }

    /// Rows the browser shows.
    pub fn page(&self) -> usize {
        list_rows(self.size.1).max(1)
    }

    /// Brings the browser's rows up to date (after listings, sorts, filters).
    pub fn refresh_rows(&mut self) {
        if !self.browser.stale {
            return;
        }
        self.browser.stale = false;
        let b = &mut self.browser;
        let t = &self.tree;
        let f = &t.folders[b.folder as usize];
        let needle = b.filter.to_lowercase();
        let mut rows: Vec<u32> = f
            .children
            .clone()
            .filter(|&id| t.loaded(id))
            .filter(|&id| b.show_hidden || !t.is_hidden(id))
            .filter(|&id| needle.is_empty() || t.display_name(id).to_lowercase().contains(&needle))
            .collect();
        match b.sort {
            Sort::Name => {}
            Sort::Size => rows.sort_by_cached_key(|&id| std::cmp::Reverse(t.totals(id).bytes)),
            Sort::Count => rows.sort_by_cached_key(|&id| std::cmp::Reverse(t.totals(id).files)),
        }
        if b.reverse {
            rows.reverse();
        }
        b.rows = rows;
        if !b.rows.contains(&b.selected) {
            b.selected = b.rows.first().copied().unwrap_or(NONE);
        }
        self.scroll_to_selected();
    }

    /// Row index of the selection.
    pub fn selected_row(&self) -> usize {
        self.browser.rows.iter().position(|&r| r == self.browser.selected).unwrap_or(0)
    }

    fn scroll_to_selected(&mut self) {
        let row = self.selected_row();
        let page = self.page();
        let b = &mut self.browser;
        if row < b.offset {
            b.offset = row;
        } else if row >= b.offset + page {
            b.offset = row + 1 - page;
        }
        b.offset = b.offset.min(b.rows.len().saturating_sub(page));
    }

    fn select_row(&mut self, row: usize) {
        if self.browser.rows.is_empty() {
            return;
        }
        let row = row.min(self.browser.rows.len() - 1);
        self.browser.selected = self.browser.rows[row];
        self.scroll_to_selected();
    }

    fn enter_folder(&mut self, id: u32) {
        if let Some(_f) = self.tree.folder_of(id) {
            self.browser.folder = self.tree.node(id).folder;
            self.browser.selected = NONE;
            self.browser.offset = 0;
            self.browser.filter.clear();
            self.browser.stale = true;
            self.refresh_rows();
        }
    }

    fn leave_folder(&mut self) {
        let node = self.tree.folders[self.browser.folder as usize].node;
        if node == NONE {
            return;
        }
        let parent = self.tree.node(node).parent;
        self.browser.folder = if parent == NONE { 0 } else { self.tree.node(parent).folder };
        self.browser.filter.clear();
        self.browser.stale = true;
        self.browser.selected = node;
        self.refresh_rows();
        self.browser.selected = node;
        self.scroll_to_selected();
    }

    /// The path shown above the browser.
    pub fn location(&self) -> String {
        let node = self.tree.folders[self.browser.folder as usize].node;
        if node == NONE {
            "(roots)".into()
        } else {
            carload::text::escape_controls(&self.tree.walk_path(node).to_string_lossy()).into_owned()
        }
    }

    fn say(&mut self, level: Level, text: impl Into<String>) {
        self.message = Some((level, text.into()));
    }

    fn marks_changed(&mut self) {
        self.marks_generation += 1;
        self.marked_totals = None;
    }

    /// The update function. It leaves the derived data the view shows (the browser's rows, the
    /// marked totals) up to date, so drawing changes nothing.
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        let mut effects = self.handle(msg);
        self.refresh_rows();
        self.lay_out_preview();
        if self.marked_totals.is_none() && !self.marks.is_empty() {
            self.marked_totals = Some(self.marks.totals(&self.tree));
        }
        if let Some(out) = &self.settings.out {
            // After the scan, when loaded batches are matched to the tree.
            // Compared in place: this runs for every message, key presses included.
            let same = || {
                self.watched_ids.len() == self.batches.list.len()
                    && self.batches.list.iter().zip(&self.watched_ids).all(|(b, w)| b.id == *w)
            };
            if self.scan_secs.is_some() && !same() {
                self.watched_ids = self.batches.list.iter().map(|b| b.id.clone()).collect();
                // An ID names fixed contents (an edited batch gets a new one), so the records
                // are made again only when the IDs change.
                let batches = self.batches.records(&self.tree, &self.settings.plan);
                let header = self.header(&batches);
                // What the watcher needs of each batch: ID, totals, fingerprint (no file lists).
                let watched = batches.iter().map(|b| carload::shipment::status::Watched::of(&header, b)).collect();
                let (out, stale_after) = (out.clone(), self.settings.stale_after);
                effects.push(Effect::Watch { out, header, batches: std::sync::Arc::new(watched), stale_after });
            }
        }
        effects
    }

    fn handle(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Key(k) if k.kind != KeyEventKind::Release => self.key(k),
            Msg::Key(_) => Vec::new(),
            Msg::Mouse(m) => {
                self.mouse(m);
                Vec::new()
            }
            Msg::Resize(w, h) => {
                self.size = (w, h);
                self.scroll_to_selected();
                Vec::new()
            }
            Msg::Listing(l) => {
                let here = l.folder == self.tree.folders[self.browser.folder as usize].node
                    || (self.browser.folder == 0 && l.folder == carload::walk::ROOTS);
                let single_root = l.folder == carload::walk::ROOTS
                    && l.children.len() == 1
                    && l.children[0].kind == carload::walk::Kind::Folder;
                self.tree.ingest(l);
                if single_root {
                    // One folder to browse: open it (h goes up to the roots).
                    self.enter_folder(0);
                }
                self.marked_totals = None;
                if here || self.browser.sort != Sort::Name {
                    self.browser.stale = true;
                }
                Vec::new()
            }
            Msg::ScanDone(secs) => {
                self.scan_secs = Some(secs);
                self.browser.stale = true;
                self.marked_totals = None;
                // Results in the output folder arrive from the watcher's first poll.
                self.batches.resolve(&mut self.tree, &self.settings.plan);
                let frozen =
                    self.batches.list.iter().filter(|b| matches!(b.frozen, Some(Frozen::Changed { .. }))).count();
                if frozen > 0 {
                    self.say(Level::Error, format!("{frozen} loaded batches have files missing or changed since planning (marked !); remove and re-pack them"));
                }
                Vec::new()
            }
            Msg::Packed { files, bins, generation } => {
                self.packing = false;
                match bins {
                    Err(e) => self.say(Level::Error, format!("auto-pack failed: {e}")),
                    Ok(_) if files.iter().any(|&f| self.batches.batch_of(f).is_some()) => self.say(
                        Level::Error,
                        "auto-pack discarded: some of its files were added to batches meanwhile; press p again",
                    ),
                    Ok(bins) => {
                        let n = bins.len();
                        let range = self.batches.append_packed(&mut self.tree, bins, &files);
                        if generation == self.marks_generation {
                            self.marks.clear();
                            self.marks_changed();
                        }
                        self.dirty = true;
                        self.pane.row = range.start;
                        let pieces = self.settings.plan.piece_size;
                        self.say(
                            Level::Info,
                            format!(
                                "auto-packed {} files into {n} new batch{} of {} pieces ({}–{})",
                                digits(files.len() as u64),
                                if n == 1 { "" } else { "es" },
                                ibytes(pieces),
                                self.batches.list[range.start].id,
                                self.batches.list[range.end - 1].id
                            ),
                        );
                    }
                }
                Vec::new()
            }
            Msg::DryRunProgress(done) => {
                if let Some(Modal::Preview(p)) = &mut self.modal {
                    if let PreviewContent::Hashing { done: d, .. } = &mut p.content {
                        *d = done;
                    }
                }
                Vec::new()
            }
            Msg::DryRunDone(r) => {
                let Some(id) = self.dry_run_batch.take() else { return Vec::new() };
                if let Some(Modal::Preview(p)) = &mut self.modal {
                    if p.batch == id {
                        p.content = match r {
                            Ok(hashed) => PreviewContent::Hashed { hashed, built: false },
                            Err(e) => PreviewContent::Failed(e),
                        };
                    }
                }
                Vec::new()
            }
            Msg::ManifestRead(r) => {
                if let Some(Modal::Preview(p)) = &mut self.modal {
                    if matches!(p.content, PreviewContent::Reading) {
                        p.content = match r {
                            Ok(hashed) => PreviewContent::Hashed { hashed, built: true },
                            Err(e) => PreviewContent::Failed(e),
                        };
                    }
                }
                Vec::new()
            }
            Msg::Build { id, at, report } => {
                self.now = self.now.max(at);
                self.build_report(id, at, report);
                Vec::new()
            }
            Msg::Tick(at) => {
                self.now = self.now.max(at);
                let done = self.shipment_done();
                self.builds.tick(at, done);
                Vec::new()
            }
            Msg::Watched { at, seen } => {
                self.now = self.now.max(at);
                self.watched(at, seen);
                Vec::new()
            }
            Msg::Exported(r) => {
                match r {
                    Ok(p) => {
                        self.modal = None;
                        self.say(Level::Info, format!("export written to {}", p.display()));
                        return vec![Effect::Remember { out: None, deal: Some(self.deal.clone()) }];
                    }
                    Err(None) => {
                        self.modal = Some(Modal::ConfirmExportOverwrite(PathBuf::from(self.deal.output.trim())));
                    }
                    Err(Some(e)) => self.say(Level::Error, format!("export not written: {e}")),
                }
                Vec::new()
            }
            Msg::Restated { id, now } => {
                let Some(i) = self.batch_index(&id) else { return Vec::new() };
                if self.builds.is_busy(&id) {
                    return Vec::new();
                }
                let changed = now
                    .iter()
                    .filter(|(e, st)| {
                        let n = self.tree.node(*e);
                        st.is_none_or(|(s, m, i)| s != n.size || m != n.mtime_ns || i != n.ident)
                    })
                    .count();
                let (freed, vanished) = self.batches.replan(&mut self.tree, i, &now, &self.settings.plan);
                self.builds.activity.remove(&id);
                self.dirty = true;
                self.marked_totals = None;
                self.browser.stale = true;
                let new_id = self.batches.list[i].id.clone();
                let text = format!(
                    "{id} re-planned as {new_id}: {changed} files changed ({vanished} gone){}",
                    if freed.is_empty() {
                        String::new()
                    } else {
                        format!(", {} moved out to pack again (marked)", freed.len())
                    }
                );
                for f in &freed {
                    self.marks.mark(&self.tree, *f);
                }
                self.marks_changed();
                self.builds.log(self.now, false, text.clone());
                self.say(Level::Info, text);
                Vec::new()
            }
            Msg::SaveExists(path) => {
                self.saving = false;
                self.message = None;
                self.modal = Some(Modal::ConfirmOverwrite(path));
                Vec::new()
            }
            Msg::Saved(r) => {
                self.saving = false;
                match r {
                    Ok(path) => {
                        self.dirty = false;
                        self.batches.mark_saved();
                        self.say(
                            Level::Info,
                            format!("saved {} batches to {}", self.batches.list.len(), path.display()),
                        );
                        self.settings.shipment = Some(path);
                        if self.quit_after_save {
                            return vec![Effect::Quit];
                        }
                        let pending = std::mem::take(&mut self.pending_build);
                        if !pending.is_empty() {
                            return self.build(pending);
                        }
                    }
                    Err(e) => {
                        self.quit_after_save = false;
                        self.pending_build.clear();
                        self.say(Level::Error, format!("save failed: {e}"));
                    }
                }
                Vec::new()
            }
        }
    }

    fn key(&mut self, k: KeyEvent) -> Vec<Effect> {
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
        use super::keys::Context;
        let contexts: &[Context] = match (self.focus, self.left, self.pane.open) {
            (Focus::Browser, Left::Progress, _) => &[Context::Global],
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
    fn act(&mut self, a: Action) -> Vec<Effect> {
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
                self.pane.row = self.batches.new_batch();
                self.pane.open = None;
                self.dirty = true;
                let id = self.batches.list[self.pane.row].id.clone();
                let add = self.settings.keys.key(Action::AddMarked, super::keys::Context::Global);
                self.say(Level::Info, format!("new batch {id}: {add} adds the marked entries to it"));
            }
            Action::AddMarked => self.add_marked(),
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
                    Left::Browser => Left::Progress,
                    Left::Progress => Left::Browser,
                };
                self.focus = Focus::Browser;
            }
            Action::Info => match self.target_batch() {
                Some(batch) => self.modal = Some(Modal::Info { batch, row: 0 }),
                None => self.say(Level::Error, "no batch selected"),
            },
            a => match self.focus {
                Focus::Browser if self.left == Left::Progress => {}
                Focus::Browser => self.browser_act(a),
                Focus::Batches => return self.batches_act(a),
            },
        }
        Vec::new()
    }

    fn quit(&mut self) -> Vec<Effect> {
        if self.dirty || self.builds.busy_here() > 0 {
            self.modal = Some(Modal::ConfirmQuit);
            Vec::new()
        } else {
            vec![Effect::Quit]
        }
    }

    /// The row a movement action leads to from `row` in a list of `len` rows.
    fn nav(&self, a: Action, row: usize, len: usize) -> Option<usize> {
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

    fn browser_act(&mut self, a: Action) {
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
            Action::Remove if sel != NONE => self.remove_from_batches(sel),
            _ => {}
        }
        self.refresh_rows();
    }

    fn unshippable(&self, id: u32) -> Option<String> {
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

    fn sort(&mut self, s: Sort) {
        if self.browser.sort == s {
            self.browser.reverse = !self.browser.reverse;
        } else {
            self.browser.sort = s;
            self.browser.reverse = false;
        }
        self.browser.stale = true;
    }

    fn mark_all(&mut self) {
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
    fn marked_free_files(&self) -> (Vec<u32>, usize) {
        let all = self.marks.files(&self.tree);
        let n = all.len();
        let free: Vec<u32> = all.into_iter().filter(|&f| self.batches.batch_of(f).is_none()).collect();
        let skipped = n - free.len();
        (free, skipped)
    }

    fn add_marked(&mut self) {
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
        if self.batches.list.is_empty() {
            self.pane.row = self.batches.new_batch();
        }
        let i = self.pane.row.min(self.batches.list.len() - 1);
        match self.batches.add(&mut self.tree, i, &all, &self.settings.plan) {
            Ok(()) => {
                self.marks.clear();
                self.marks_changed();
                self.dirty = true;
                let b = &self.batches.list[i];
                self.say(
                    Level::Info,
                    format!(
                        "added {} files to {} ({:.1}% full)",
                        digits(all.len() as u64),
                        b.id,
                        b.bound() as f64 * 100.0 / self.capacity() as f64
                    ),
                );
            }
            Err(e) => self.say(Level::Error, e),
        }
    }

    fn auto_pack(&mut self) -> Vec<Effect> {
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
                "auto-packing {} files{}…",
                digits(files.len() as u64),
                if skipped > 0 {
                    format!(" ({} already in batches, skipped)", digits(skipped as u64))
                } else {
                    String::new()
                }
            ),
        );
        vec![Effect::Pack { files, sizes, folders, options: self.settings.plan, generation: self.marks_generation }]
    }

    fn remove_from_batches(&mut self, id: u32) {
        let mut files = Vec::new();
        self.tree.for_each_file(id, &mut |f| files.push(f));
        let mut changed: Vec<String> = Vec::new();
        for f in files {
            match self.batches.remove_file(&mut self.tree, f) {
                Ok(c) => changed.extend(c),
                Err(e) => return self.say(Level::Error, e),
            }
        }
        changed.sort();
        changed.dedup();
        if changed.is_empty() {
            self.say(Level::Error, "not in any batch");
        } else {
            self.dirty = true;
            self.say(Level::Info, format!("removed from {}", changed.join(", ")));
        }
    }

    fn batches_act(&mut self, a: Action) -> Vec<Effect> {
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
                        self.remove_from_batches(f);
                        let len = self.batches.list[open].bin.items.len();
                        self.pane.entry_row = self.pane.entry_row.min(len.saturating_sub(1));
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
                    Some(Activity::Failed(_) | Activity::Foreign { stale: true, .. })
                ) {
                    return self.build(vec![self.pane.row]);
                }
                let build = self.settings.keys.key(Action::Build, super::keys::Context::Global);
                self.say(Level::Error, format!("{id} has not failed: {build} builds it"));
            }
            Action::Replan if self.pane.row < n => {
                let id = self.batches.list[self.pane.row].id.clone();
                if self.builds.is_busy(&id) {
                    self.say(Level::Error, "this batch is building: cancel it first (c)");
                    return Vec::new();
                }
                if !self.tree.complete() {
                    self.say(Level::Error, "wait for the scan to finish before re-planning");
                    return Vec::new();
                }
                let files = self
                    .batches
                    .entries_of(&self.tree, self.pane.row)
                    .into_iter()
                    .map(|e| (e, self.tree.walk_path(e)))
                    .collect();
                self.say(Level::Info, format!("checking {id}'s files again…"));
                return vec![Effect::Restat { id, files }];
            }
            Action::Remove if self.pane.row < n && self.builds.is_busy(&self.batches.list[self.pane.row].id) => {
                let cancel = self.settings.keys.key(Action::CancelBuild, super::keys::Context::Batches);
                self.say(Level::Error, format!("this batch is building: cancel it first ({cancel})"));
            }
            Action::Remove if self.pane.row < n => {
                if self.batches.list[self.pane.row].is_empty() {
                    self.remove_batch(self.pane.row);
                } else {
                    self.modal = Some(Modal::ConfirmRemove(self.pane.row));
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn remove_batch(&mut self, i: usize) {
        let b = self.batches.remove_batch(&mut self.tree, i);
        self.pane.row = self.pane.row.min(self.batches.list.len().saturating_sub(1));
        self.pane.open = None;
        self.dirty = true;
        self.say(Level::Info, format!("removed batch {} ({} entries); its files are free again", b.id, b.len()));
    }

    /// The batch the preview and `a` act on: the batches pane's selection, or (from the browser)
    /// the batch holding the selected entry.
    fn target_batch(&self) -> Option<usize> {
        if self.focus == Focus::Browser && self.browser.selected != NONE {
            if let Some((b, _)) = self.batches.batch_of(self.browser.selected) {
                return Some(b);
            }
        }
        (self.pane.row < self.batches.list.len()).then_some(self.pane.row)
    }

    fn header(&self, batches: &[Batch]) -> carload::shipment::Header {
        header(&self.settings.plan, self.settings.inputs.clone(), self.settings.base.clone(), batches)
    }

    fn preview(&mut self) -> Vec<Effect> {
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
        if let (Some(_), Some(out)) = (&b.result, &self.settings.out) {
            preview.content = PreviewContent::Reading;
            let car = carload::shipment::build::outputs(out, &b.id).car;
            effects.push(Effect::ReadManifest { car, batch: rec });
        }
        self.modal = Some(Modal::Preview(preview));
        effects
    }

    fn modal_key(&mut self, m: Modal, k: KeyEvent) -> Vec<Effect> {
        use super::keys::Context;
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
            Modal::ConfirmQuit => match k.code {
                KeyCode::Char('s') => {
                    self.modal = None;
                    self.quit_after_save = true;
                    return self.save(None);
                }
                KeyCode::Char('q') | KeyCode::Char('y') => return vec![Effect::Quit],
                KeyCode::Char('c') if ctrl => return vec![Effect::Quit],
                _ => self.modal = None,
            },
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

    fn start_dry_run(&mut self, mut p: Preview) -> Vec<Effect> {
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
    fn save(&mut self, path: Option<PathBuf>) -> Vec<Effect> {
        self.save_to(path, true)
    }

    /// Saves to `path` (replacing a file there only with `overwrite`), the opened shipment, or
    /// asks where.
    fn save_to(&mut self, path: Option<PathBuf>, overwrite: bool) -> Vec<Effect> {
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
    fn default_shipment_name(&self) -> String {
        let here_is_input = self.settings.inputs.iter().any(|i| {
            let t = i.trim_end_matches('/');
            t == "." || t.is_empty() || self.settings.base.as_deref() == Some(t)
        });
        match (here_is_input, self.settings.base.as_deref().and_then(|b| std::path::Path::new(b).file_name())) {
            (true, Some(name)) => format!("../{}.shipment.jsonl", name.to_string_lossy()),
            _ => "shipment.jsonl".into(),
        }
    }

    fn mouse(&mut self, m: MouseEvent) {
        let (w, h) = self.size;
        let left = m.column < super::view::browser_width(w);
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
                    let per = super::view::batches_per_pane(h);
                    let row = super::view::batch_offset(self.pane.row, per) + (m.row - 3) as usize / 2;
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

/// Building, watching and exporting.
impl App {
    /// Queues builds of batches `idx` (saving first when there are unsaved changes, and asking
    /// for the output folder once).
    fn build(&mut self, idx: Vec<usize>) -> Vec<Effect> {
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
        for i in idx {
            let Some(b) = self.batches.list.get(i) else { continue };
            let id = b.id.clone();
            let why = if b.frozen.is_some() {
                Some("its files changed since planning")
            } else if b.is_empty() {
                Some("it is empty")
            } else if b.result.is_some() {
                Some("it is built")
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
            effects.push(Effect::Build { batch: rec, header, out: out.clone() });
        }
        if !effects.is_empty() {
            self.left = Left::Progress;
            self.say(
                Level::Info,
                format!(
                    "building {} batch{} into {}",
                    effects.len(),
                    if effects.len() == 1 { "" } else { "es" },
                    out.display()
                ),
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

    fn batch_index(&self, id: &str) -> Option<usize> {
        self.batches.list.iter().position(|b| b.id == id)
    }

    fn build_report(&mut self, id: String, at: f64, report: Report) {
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
                    "{id} started: {} files, {} ({} bytes)",
                    digits(p.files_total),
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
                        self.builds.log(at, true, format!("{id} FAILED: {e}"));
                        self.say(Level::Error, format!("{id} failed: {e}"));
                        self.builds.activity.insert(id, Activity::Failed(e));
                    }
                    Done::Cancelled => {
                        self.builds.log(at, false, format!("{id} cancelled: temporary files removed, lock released"));
                    }
                }
            }
        }
    }

    /// Source bytes of the shipment built so far, counting running builds' share.
    fn shipment_done(&self) -> f64 {
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

    fn watched(&mut self, at: f64, seen: Vec<BatchStatus>) {
        for s in seen {
            let Some(i) = self.batch_index(&s.id) else { continue };
            if self.builds.is_busy(&s.id) {
                continue; // our own lock and result
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
                        self.builds.log(at, false, format!("{} built by another builder: piece {}", s.id, r.piece_cid));
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
                        self.builds.activity.insert(s.id.clone(), Activity::Failed(format!("on {host}: {reason}")));
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
                    if matches!(self.builds.activity.get(&s.id), Some(Activity::Outputs(_))) {
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
    }

    /// Recomputes the export preview from the results in memory, with `carload export`'s code.
    fn refresh_export(&mut self) {
        let Some(out) = self.settings.out.clone() else {
            self.export_preview = Err("no output folder: builds go to --out (b asks for it)".into());
            return;
        };
        let rows: Vec<(BatchResult, String)> = self
            .batches
            .list
            .iter()
            .filter_map(|b| b.result.clone().map(|r| (r, export::car_path(Some(&out), &b.id))))
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

    fn open_export(&mut self) {
        if self.deal.output.is_empty() {
            let ext = if FORMATS[self.deal.format % FORMATS.len()].0 == "csv" { "csv" } else { "sh" };
            self.deal.output = format!("deals.{ext}");
        }
        self.refresh_export();
        self.modal = Some(Modal::Export { field: 1 });
    }

    /// What the workstation says of batch `b`: one judgement in one order for the list, the
    /// info screen and the counts. A batch running or queued here shows that; a batch whose
    /// result the judge accepted is built (a note when its sources changed since: its CAR is
    /// what ships); then a failure here, another builder's lock, outputs that cannot count,
    /// sources changed before it was built.
    pub fn batch_state(&self, b: &super::batches::WsBatch) -> Shown {
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
            Shown::Changed(why) => format!("changed since planning: {why}"),
            Shown::Empty | Shown::NotBuilt => "not built".into(),
        };
        v.push(("State".into(), state));
        if let Some(r) = &b.result {
            v.push(("Payload CID".into(), r.payload_cid.clone()));
            v.push(("Piece CID".into(), r.piece_cid.clone()));
            v.push(("Piece CID v2".into(), r.piece_cid_v2.clone()));
            v.push(("Piece size (padded)".into(), r.piece_size.to_string()));
            v.push(("Piece size (unpadded)".into(), r.piece_size_unpadded.to_string()));
            v.push(("CAR size".into(), r.car_size.to_string()));
            if let Some(out) = &self.settings.out {
                v.push(("CAR file".into(), carload::shipment::build::outputs(out, &b.id).car.display().to_string()));
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

    fn extra_modal_key(&mut self, m: Modal, k: KeyEvent) -> Vec<Effect> {
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
                    let mut e = vec![Effect::Remember { out: Some(dir), deal: None }];
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
            Modal::Info { batch, row } => {
                let n = self.info_lines(batch).len();
                use super::keys::Context;
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
                        return vec![Effect::Remember { out: None, deal: Some(self.deal.clone()) }];
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
                        if let Some(stem) =
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
}

/// Applies a key to a one-line text field: Backspace deletes, a character (without Ctrl) is
/// typed. Returns whether the text changed.
fn edit_line(text: &mut String, k: &KeyEvent) -> bool {
    match k.code {
        KeyCode::Backspace => text.pop().is_some(),
        KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
            text.push(c);
            true
        }
        _ => false,
    }
}

/// `n` with thousands separators.
pub fn digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
