//! The workstation's state and its update function: every input and every worker result is a
//! [`Msg`]; [`App::update`] changes the state and returns the [`Effect`]s (background work) the
//! runtime must start. Nothing here touches the terminal, the disk or the clock, so the whole
//! behaviour is testable by feeding messages.

mod builds;
mod edit;
mod input;

pub use builds::noun;

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
    /// Its drive is not given (a drive set's folder not mounted): it waits, for the reason.
    Waits(String),
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
    /// The output folder of builds, where results are looked up (a drive set's first drive).
    pub out: Option<PathBuf>,
    /// A drive set's folders, in order, when builds spread over drives (`--out` repeated, or
    /// one folder holding a drive log); empty: everything in `out`.
    pub drives: Vec<PathBuf>,
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
    /// Auto-pack tops up open batches before opening new ones (`config.json`
    /// `"pack_top_up"`, default on).
    pub pack_top_up: bool,
}

impl Settings {
    /// The output folders: a drive set's, else the output folder (none: not chosen yet).
    pub fn outs(&self) -> Vec<PathBuf> {
        if self.drives.is_empty() {
            self.out.iter().cloned().collect()
        } else {
            self.drives.clone()
        }
    }
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
    /// Not started: its drive is not given (the reason names it).
    Waits(String),
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
        /// What was added to the open batches and the new bins, or why packing failed.
        bins: Result<carload::shipment::pack::TopUp, String>,
        /// The marks generation when packing started.
        generation: u64,
        /// The open batches topped up: ID and entry count when packing started.
        open: Vec<(String, usize)>,
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
    /// What the watcher saw of the drive set (sent before the [`Msg::Watched`] of the same
    /// poll).
    Drives(super::drives::DrivesSeen),
    /// The shipment's deals file as the watcher read it (`None`: there is none).
    Deals(Option<super::deals::DealsSeen>),
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
        /// Open batches to top up first: ID and bin (items name tree entries).
        open: Vec<(String, Bin)>,
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
        /// The whole shipment, for the drive manifest (`carload-drive.json`) regenerated in
        /// `out` after the batch is built, as `carload build` does.
        drive: Option<std::sync::Arc<carload::shipment::drive::DriveBook>>,
        /// The drive set the batch goes on (its drive assigned when it starts), when spread.
        drives: Option<std::sync::Arc<DriveTarget>>,
    },
    /// Add a drive folder to the set of the running builds (the next assignment can use it).
    AddDrive(PathBuf),
    /// Cancel a queued or running build.
    CancelBuild(String),
    /// Watch these batches' locks and results in the output folder.
    Watch {
        /// Output folder.
        out: PathBuf,
        /// A drive set's folders (each batch judged on its drive); empty: `out` alone.
        drives: Vec<PathBuf>,
        /// The shipment header of the batches (results are checked against it).
        header: carload::shipment::Header,
        /// The batches' IDs, totals and fingerprints (a result counts only if it belongs).
        batches: std::sync::Arc<Vec<carload::shipment::status::Watched>>,
        /// Seconds after which a lock not refreshed is stale.
        stale_after: u64,
        /// The shipment's deals file (read when it exists: [`Msg::Deals`]).
        deals: Option<PathBuf>,
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
    /// Remember the output folders and the export form for next time.
    Remember {
        /// Output folders (one, or a drive set's; none: not remembered).
        outs: Vec<PathBuf>,
        /// The shipment the output folder is remembered for.
        shipment: Option<PathBuf>,
        /// Export form.
        deal: Option<DealForm>,
    },
    /// Leave the workstation (running builds are cancelled first).
    Quit,
}

/// A build session's drive set: its folders and the whole shipment's header (the set is opened
/// with it).
#[derive(Debug)]
pub struct DriveTarget {
    /// The drive folders, in order.
    pub dirs: Vec<PathBuf>,
    /// The header of the shipment as saved.
    pub header: carload::shipment::Header,
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
    /// A drive folder to add to the set.
    AddDrive(String),
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
    /// An edit that un-builds built batches: what it does, with numbers; `y` does it.
    ConfirmEdit {
        /// The edit.
        edit: Pending,
        /// The dialog's title.
        title: String,
        /// What it does.
        lines: Vec<String>,
    },
}

/// An edit waiting for the operator's yes (it changes or removes built batches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// Take the files under this entry out of their batches.
    TakeOut(u32),
    /// Add the marked files to the batch with this ID.
    Add(String),
    /// Remove the batch with this ID.
    RemoveBatch(String),
    /// Re-plan the batch with this ID.
    Replan(String),
}

/// What the left pane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// The folder browser.
    Browser,
    /// Build progress and the log.
    Progress,
    /// The drives of a drive set.
    Drives,
    /// The deals of the shipment's deals file.
    Deals,
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
    /// When it was said (the clock of the messages; `None` until a tick dates it): it expires
    /// after [`MESSAGE_SECS`] (errors after three times that), or at the next key.
    message_at: Option<f64>,
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
    /// Batches the output folder's watcher saw not built: a result appearing for one later was
    /// built by another builder (one there from the start is an earlier build's).
    pub seen_unbuilt: std::collections::HashSet<String>,
    /// Edits of the batches, for undo and redo.
    pub history: super::history::History,
    /// What the watcher last saw of the drive set (with `--out` repeated).
    pub drives_seen: Option<super::drives::DrivesSeen>,
    /// The shipment's deals file (`segment plan`) as the watcher last read it.
    pub deals_seen: Option<super::deals::DealsSeen>,
    watched_outs: Vec<PathBuf>,
}

/// Rows of the browser list for a terminal of height `h` (the view's layout).
/// Seconds a status message stays (an error three times as long).
pub const MESSAGE_SECS: f64 = 10.0;

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
            message_at: None,
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
            seen_unbuilt: Default::default(),
            history: Default::default(),
            drives_seen: None,
            deals_seen: None,
            watched_outs: Vec::new(),
        }
        .with_deal()
    }

    fn with_deal(mut self) -> Self {
        self.deal = self.settings.deal.clone();
        // The export file is named after this session's shipment, not the last one's.
        self.deal.output.clear();
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
        self.message_at = (self.now > 0.0).then_some(self.now);
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
            if self.scan_secs.is_some() && (!same() || self.watched_outs != self.settings.drives) {
                self.watched_ids = self.batches.list.iter().map(|b| b.id.clone()).collect();
                self.watched_outs = self.settings.drives.clone();
                // An ID names fixed contents (an edited batch gets a new one), so the records
                // are made again only when the IDs change.
                let batches = self.batches.records(&self.tree, &self.settings.plan);
                let header = self.header(&batches);
                // What the watcher needs of each batch: ID, totals, fingerprint (no file lists).
                let watched = batches.iter().map(|b| carload::shipment::status::Watched::of(&header, b)).collect();
                let (out, stale_after) = (out.clone(), self.settings.stale_after);
                let drives = self.settings.drives.clone();
                let deals = self.settings.shipment.as_deref().map(carload::segment::deals::default_path);
                let batches = std::sync::Arc::new(watched);
                effects.push(Effect::Watch { out, drives, header, batches, stale_after, deals });
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
                    // Which of them are built is the watcher's to say: a built one keeps its CAR.
                    let replan = self.settings.keys.key(Action::Replan, super::keys::Context::Batches);
                    // Info: sources moving away after building is the normal lifecycle.
                    self.say(
                        Level::Info,
                        format!(
                            "{frozen} loaded batch{} sources missing or changed since planning: a built one keeps its CAR (a note on it); {replan} re-plans one not built",
                            if frozen == 1 { " has" } else { "es have" }
                        ),
                    );
                }
                Vec::new()
            }
            Msg::Packed { files, bins, generation, open } => {
                self.packing = false;
                self.packed(files, bins, generation, open);
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
                self.expire_message(at);
                let done = self.shipment_done();
                self.builds.tick(at, done);
                Vec::new()
            }
            Msg::Deals(d) => {
                self.deals_seen = d;
                Vec::new()
            }
            Msg::Drives(d) => {
                self.drives_seen = Some(d);
                self.refresh_export();
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
                        match self.export_left_out() {
                            None => self.say(Level::Info, format!("export written to {}", p.display())),
                            Some(left) => self.say(Level::Error, format!("export written to {}; {left}", p.display())),
                        }
                        return vec![Effect::Remember {
                            outs: Vec::new(),
                            shipment: None,
                            deal: Some(self.deal.clone()),
                        }];
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
                let files = now.iter().map(|(e, _)| (*e, self.tree.file_record(*e))).collect();
                let before = self.before_edit(None).with_files(files);
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
                self.record_edit(before, format!("re-plan {id} as {new_id}"));
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
                        self.history.save_done();
                        self.dirty = !self.history.at_saved();
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
}

/// `n` and the noun for that many, with thousands separators ("1 file", "1,204 files").
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", digits(n), if n == 1 { one } else { many })
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
