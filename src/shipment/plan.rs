//! Planning: walk the inputs (metadata only), predict every file's CAR sections and pack them
//! into batches that fit the target piece.

use super::file::{Batch, FileRef, Header, Ident, Shipment, FORMAT, VERSION};
use super::pack::{pack, pack_ids, Bin, Item, PackError, Slots};
use crate::commp::{padded_piece_size, unpadded_piece_size};
use crate::importer::ImportError;
use crate::profile::Profile;
use crate::walk::clean_path;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};

pub use super::walked::{walk_tree, WalkedFiles};

/// 32 GiB sector (padded bytes).
pub const SECTOR_32GIB: u64 = 32 << 30;
/// 64 GiB sector (padded bytes).
pub const SECTOR_64GIB: u64 = 64 << 30;
/// Default minimum piece size: the Fil+ floor of 1 MiB.
pub const DEFAULT_MIN_PIECE: u64 = 1 << 20;

/// How files are grouped into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pack {
    /// Best-fit decreasing on predicted sizes: the fullest pieces.
    #[default]
    BestFit,
    /// Keep the files of one folder in one batch where they fit.
    KeepFolders,
}

/// A source file found by the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Walk path (the input as given joined with the path below it).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Status-change time and inode.
    pub ident: Ident,
}

/// Planning settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// DAG profile.
    pub profile: Profile,
    /// Sector size (padded).
    pub sector_size: u64,
    /// Target padded piece size (a power of two, at most the sector size).
    pub piece_size: u64,
    /// Minimum padded piece size.
    pub min_piece_size: u64,
    /// Bytes kept free in each piece beyond the bound.
    pub margin: u64,
    /// Packing mode.
    pub pack: Pack,
}

impl PlanOptions {
    /// Defaults for a sector: piece = sector, 1 MiB minimum, no margin, best fit.
    pub fn for_sector(sector_size: u64, profile: Profile) -> Self {
        PlanOptions {
            profile,
            sector_size,
            piece_size: sector_size,
            min_piece_size: DEFAULT_MIN_PIECE,
            margin: 0,
            pack: Pack::BestFit,
        }
    }

    /// The options a shipment was planned with (its header).
    pub fn of_header(h: &Header) -> Self {
        PlanOptions {
            profile: h.profile,
            sector_size: h.sector_size,
            piece_size: h.piece_size,
            min_piece_size: h.min_piece_size,
            margin: h.margin,
            pack: h.pack,
        }
    }

    /// Largest CAR bound a batch may have: the piece's unpadded capacity minus the margin.
    pub fn capacity(&self) -> u64 {
        unpadded_piece_size(self.piece_size).saturating_sub(self.margin)
    }
}

/// Errors planning.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Walking the inputs failed.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// A symlink to a file outside the plan's base folder.
    #[error("{link}: symlink to {target}, outside the base folder {base}: a shipment reads only below its base (copy the file in, or plan from a folder holding both)")]
    LinkOutside {
        /// The symlink.
        link: PathBuf,
        /// Where it leads.
        target: PathBuf,
        /// The base folder.
        base: PathBuf,
    },
    /// A file type shipments do not take.
    #[error("{0}: symlink to a folder (shipments take regular files; pass the folder itself)")]
    SymlinkToFolder(PathBuf),
    /// Settings that cannot work.
    #[error("{0}")]
    Settings(String),
    /// No files found.
    #[error("no files found in the inputs")]
    Empty,
    /// Packing failed.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// Writing the shipment failed.
    #[error("writing the shipment: {0}")]
    Write(String),
    /// A sector size other than 32 GiB or 64 GiB.
    #[error("unsupported sector size {0} bytes (use 32GiB or 64GiB)")]
    Sector(u64),
    /// The shipment file would be written inside an input folder.
    #[error("{}: the shipment file would lie inside the input folder {} and be shipped by the next plan; write it elsewhere", output.display(), input.display())]
    InsideInputs {
        /// The shipment file.
        output: PathBuf,
        /// The input folder.
        input: PathBuf,
    },
    /// One of carload's own outputs ([`super::outputs`]) is among the files to ship.
    #[error("{}: a carload output ({reason}) lies inside the inputs and would be shipped; move the output folder out of the inputs, or pass --include-carload-outputs", path.display())]
    CarloadOutput {
        /// The file.
        path: PathBuf,
        /// What it is.
        reason: String,
    },
}

/// Checks a sector size: pieces are planned for 32 GiB or 64 GiB sectors.
pub fn check_sector(size: u64) -> Result<u64, PlanError> {
    match size {
        SECTOR_32GIB | SECTOR_64GIB => Ok(size),
        _ => Err(PlanError::Sector(size)),
    }
}

/// Refuses a shipment file `output` inside one of the `inputs` folders: the next plan of the
/// same inputs would ship it.
pub fn not_inside_inputs(output: &Path, inputs: &[PathBuf]) -> Result<(), PlanError> {
    let Ok(out) = std::path::absolute(output) else { return Ok(()) };
    let out = out.parent().and_then(|p| p.canonicalize().ok()).map(|p| p.join(out.file_name().unwrap_or_default()));
    let Some(out) = out else { return Ok(()) };
    for input in inputs {
        if let Ok(dir) = input.canonicalize() {
            if dir.is_dir() && out.starts_with(&dir) {
                return Err(PlanError::InsideInputs { output: output.to_path_buf(), input: input.clone() });
            }
        }
    }
    Ok(())
}

/// Refuses carload's own outputs among the files to ship, by the one rule of
/// [`super::outputs::carload_outputs`] applied to the files of each folder (shipping them is asked
/// for explicitly, `--include-carload-outputs`). Names the first in the order given.
pub fn refuse_carload_outputs(files: impl IntoIterator<Item = PathBuf>) -> Result<(), PlanError> {
    use std::os::unix::ffi::OsStrExt;
    let files: Vec<PathBuf> = files.into_iter().collect();
    let mut folders: HashMap<&Path, Vec<usize>> = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        folders.entry(f.parent().unwrap_or(Path::new(""))).or_default().push(i);
    }
    let mut first: Option<(usize, String)> = None;
    for members in folders.values() {
        let names: Vec<&[u8]> =
            members.iter().map(|&i| files[i].file_name().map_or(&[][..], |n| n.as_bytes())).collect();
        let found = members.iter().zip(super::outputs::carload_outputs(&names)).find_map(|(&i, r)| Some((i, r?)));
        if let Some((i, reason)) = found {
            if first.as_ref().is_none_or(|(j, _)| i < *j) {
                first = Some((i, reason));
            }
        }
    }
    match first {
        Some((i, reason)) => Err(PlanError::CarloadOutput { path: files[i].clone(), reason }),
        None => Ok(()),
    }
}

/// Modification time of `meta` in nanoseconds since the Unix epoch.
pub fn mtime_ns(meta: &Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec())
}

/// Where a plan's names start: the base folder every name is relative to, and each input as
/// it is walked and named below the base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The base folder (absolute, symlinks resolved).
    pub base: PathBuf,
    /// Each input, absolute with its symlinks resolved (what is walked).
    pub paths: Vec<PathBuf>,
    /// Each input's name relative to the base (empty for the base itself).
    pub names: Vec<PathBuf>,
}

impl Resolved {
    /// The inputs as a shipment header records them: their names below the base (`.` for the
    /// base itself), so they resolve against the base wherever the shipment is opened.
    pub fn input_names(&self) -> Vec<String> {
        self.names
            .iter()
            .map(|n| if n.as_os_str().is_empty() { ".".into() } else { super::file::path_to_name(n) })
            .collect()
    }
}

/// Resolves `inputs` (as given, relative to the working folder `cwd`) for a plan: each is made
/// absolute and its symlinks resolved, so no name passes through a symlink. The base is `cwd`
/// when every input lies inside it (names are then the paths below `cwd`, as given), else the
/// deepest folder holding every input's parent. Names never contain `.` or `..`.
pub fn resolve_inputs(cwd: &Path, inputs: &[PathBuf]) -> Result<Resolved, PlanError> {
    let cwd = cwd.canonicalize().map_err(|e| ImportError::io(cwd, e))?;
    let paths = inputs
        .iter()
        .map(|p| cwd.join(p).canonicalize().map_err(|e| ImportError::io(p, e).into()))
        .collect::<Result<Vec<PathBuf>, PlanError>>()?;
    let base = if paths.iter().all(|p| p.starts_with(&cwd)) {
        cwd
    } else {
        let mut base: Option<PathBuf> = None;
        for p in &paths {
            let parent = p.parent().unwrap_or(p);
            base = Some(match base {
                None => parent.to_path_buf(),
                Some(b) => {
                    b.components().zip(parent.components()).take_while(|(x, y)| x == y).map(|(x, _)| x).collect()
                }
            });
        }
        base.unwrap_or_else(|| PathBuf::from("/"))
    };
    let names = paths.iter().map(|p| p.strip_prefix(&base).unwrap_or(p).to_path_buf()).collect();
    Ok(Resolved { base, paths, names })
}

/// Checks that each file of a walk that is a symlink resolves inside `base`: a shipment reads
/// only below its base, so such a file could never be built.
pub fn check_links_inside(files: &WalkedFiles, base: &Path) -> Result<(), PlanError> {
    for i in 0..files.len() {
        if files.kind(i) != crate::walk::Kind::LinkToFile {
            continue;
        }
        let path = base.join(files.path(i));
        let real = path.canonicalize().map_err(|e| ImportError::io(&path, e))?;
        if !real.starts_with(base) {
            return Err(PlanError::LinkOutside { link: path, target: real, base: base.to_path_buf() });
        }
    }
    Ok(())
}

/// Lists every regular file under `inputs` (files or folders), following symlinks to files, in
/// byte-sorted walk order per input; duplicates are dropped. Folders are read in parallel by the
/// [`crate::walk`] walker (files `stat`ed relative to their folder); a symlink to a folder, a
/// special file or an unreadable folder is an error naming it (the first in walk order).
pub fn walk_inputs(inputs: &[PathBuf]) -> Result<Vec<SourceFile>, PlanError> {
    let w = walk_files(inputs)?;
    Ok((0..w.len()).map(|i| w.source_file(i)).collect())
}

/// [`walk_inputs`], keeping the files compact ([`WalkedFiles`]).
pub fn walk_files(inputs: &[PathBuf]) -> Result<WalkedFiles, PlanError> {
    let names: Vec<PathBuf> = inputs.iter().map(|r| clean_path(r)).collect();
    walk_tree(inputs, &names, false)
}

/// The error for an entry the walk could not ship: a special file, or what stat said.
pub(super) fn other_error(path: PathBuf, reason: Option<&str>) -> PlanError {
    let reason = reason.unwrap_or("not a regular file");
    for kind in ["FIFO", "socket", "device"] {
        if reason.starts_with(kind) {
            return ImportError::UnsupportedType { path, kind }.into();
        }
    }
    if reason.starts_with("broken symlink") {
        return ImportError::Missing(path).into();
    }
    ImportError::Io { path, source: std::io::Error::other(reason.to_string()) }.into()
}

/// Checks the settings.
pub fn check_options(o: &PlanOptions) -> Result<(), PlanError> {
    let bad = |m: String| Err(PlanError::Settings(m));
    check_sector(o.sector_size)?;
    for (what, v) in [("piece size", o.piece_size), ("minimum piece size", o.min_piece_size)] {
        if !v.is_power_of_two() || v < 128 {
            return bad(format!("{what} {v} is not a power of two of at least 128 bytes (padded sizes are 128·2^k)"));
        }
    }
    if o.piece_size > o.sector_size {
        return bad(format!("piece size {} exceeds the sector size {}", o.piece_size, o.sector_size));
    }
    if o.min_piece_size > o.piece_size {
        return bad(format!("minimum piece size {} exceeds the piece size {}", o.min_piece_size, o.piece_size));
    }
    Ok(())
}

/// Folder keys for [`Pack::KeepFolders`]: files whose `parents` are equal share a key; keys are
/// numbered in order of first appearance.
pub fn folder_keys<K: std::hash::Hash + Eq>(parents: impl Iterator<Item = K>) -> Vec<u32> {
    let mut ids: HashMap<K, u32> = HashMap::new();
    parents
        .map(|parent| {
            let n = ids.len() as u32;
            *ids.entry(parent).or_insert(n)
        })
        .collect()
}

/// The packing step of [`plan`], shared with the terminal workstation: files of `sizes` (in walk
/// order; `folders` from [`folder_keys`] for keep-folders, else empty) packed into bins whose
/// `Item::file` indexes `sizes`.
pub fn pack_files(sizes: &[u64], folders: &[u32], o: &PlanOptions) -> Result<Vec<Bin>, PlanError> {
    check_options(o)?;
    if sizes.is_empty() {
        return Err(PlanError::Empty);
    }
    let folders = if o.pack == Pack::KeepFolders { folders } else { &[] };
    Ok(pack(sizes, folders, &o.profile, o.capacity(), o.pack)?)
}

/// [`pack_files`], first into the `open` batches (the workstation's top-up, see
/// [`super::pack::top_up`]): their free space is taken before new batches are opened. With no
/// open batch the new batches are exactly [`pack_files`]'s.
pub fn top_up_files(
    open: &[Bin],
    sizes: &[u64],
    folders: &[u32],
    o: &PlanOptions,
) -> Result<super::pack::TopUp, PlanError> {
    check_options(o)?;
    if sizes.is_empty() {
        return Err(PlanError::Empty);
    }
    let folders = if o.pack == Pack::KeepFolders { folders } else { &[] };
    Ok(super::pack::top_up(open, sizes, folders, &o.profile, o.capacity(), o.pack)?)
}

/// The ID `plan` gives batch `i` of `n`: `b00000`, … (wider when `n` needs more digits).
pub fn batch_id(i: usize, n: usize) -> String {
    let width = (n.max(1) - 1).to_string().len().max(5);
    format!("b{i:0width$}")
}

/// The shipment record of `bin`: its bound, its piece size (at least the minimum) and its files,
/// each named by `file_ref(item)`.
pub fn batch_record(id: String, bin: &Bin, o: &PlanOptions, file_ref: impl Fn(&Item) -> FileRef) -> Batch {
    let bound = bin.bound();
    Batch {
        id,
        car_size_bound: bound,
        piece_size: padded_piece_size(bound).max(o.min_piece_size),
        files: bin.items.iter().map(file_ref).collect(),
        result: None,
    }
}

/// The header record of a shipment of `batches` planned with `o`: counts every file once (a
/// split file by its first part).
pub fn header(o: &PlanOptions, inputs: Vec<String>, base: Option<String>, batches: &[Batch]) -> Header {
    let firsts = || batches.iter().flat_map(|b| &b.files).filter(|f| f.part.is_none_or(|p| p.offset == 0));
    let totals = Totals {
        batches: batches.len() as u64,
        files: firsts().count() as u64,
        bytes: firsts().map(|f| f.size).sum(),
        car_bytes_bound: batches.iter().map(|b| b.car_size_bound).sum(),
    };
    header_with(o, inputs, base, totals)
}

/// The totals a header records.
struct Totals {
    batches: u64,
    files: u64,
    bytes: u64,
    car_bytes_bound: u64,
}

fn header_with(o: &PlanOptions, inputs: Vec<String>, base: Option<String>, t: Totals) -> Header {
    Header {
        format: FORMAT.into(),
        version: VERSION,
        profile: o.profile,
        sector_size: o.sector_size,
        piece_size: o.piece_size,
        min_piece_size: o.min_piece_size,
        margin: o.margin,
        pack: o.pack,
        base,
        inputs,
        batches: t.batches,
        files: t.files,
        bytes: t.bytes,
        car_bytes_bound: t.car_bytes_bound,
    }
}

/// Plans `files` into a shipment. `inputs` and `base` are recorded in the header.
pub fn plan(
    files: Vec<SourceFile>,
    o: &PlanOptions,
    inputs: Vec<String>,
    base: Option<String>,
) -> Result<Shipment, PlanError> {
    check_options(o)?;
    let sizes: Vec<u64> = files.iter().map(|f| f.size).collect();
    let folders = if o.pack == Pack::KeepFolders {
        folder_keys(
            files
                .iter()
                .map(|f| super::file::name_to_path(&f.name).parent().map(Path::to_path_buf).unwrap_or_default()),
        )
    } else {
        Vec::new()
    };
    let bins = pack_files(&sizes, &folders, o)?;
    let batches: Vec<Batch> = bins
        .par_iter()
        .enumerate()
        .map(|(i, bin)| {
            batch_record(batch_id(i, bins.len()), bin, o, |it| {
                let f = &files[it.file];
                FileRef {
                    name: f.name.clone(),
                    size: f.size,
                    mtime_ns: f.mtime_ns,
                    ident: Some(f.ident),
                    part: it.part,
                }
            })
        })
        .collect();
    let header = header(o, inputs, base, &batches);
    Ok(Shipment { header, batches })
}

/// One batch of a plan written by [`plan_to`], without its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedBatch {
    /// Batch ID.
    pub id: String,
    /// Files (and file parts) in it.
    pub files: u64,
    /// File parts among them.
    pub parts: u64,
    /// Its CAR size bound.
    pub car_size_bound: u64,
    /// Its padded piece size.
    pub piece_size: u64,
}

/// Plans `files` and writes the shipment to `w` one batch record at a time (a record is made,
/// written and dropped: the plan of a hundred million files never holds their records). The
/// bytes are those of [`plan`] then [`super::write_shipment`]. Returns the header and the
/// batches without their files.
pub fn plan_to(
    files: &WalkedFiles,
    o: &PlanOptions,
    inputs: Vec<String>,
    base: Option<String>,
    w: &mut dyn std::io::Write,
) -> Result<(Header, Vec<PlannedBatch>), PlanError> {
    check_options(o)?;
    if files.is_empty() {
        return Err(PlanError::Empty);
    }
    let folders =
        if o.pack == Pack::KeepFolders { folder_keys((0..files.len()).map(|i| files.folder(i))) } else { Vec::new() };
    let packing = pack_ids(Vec::new(), files.len(), &|i| files.size(i), &folders, &o.profile, o.capacity(), o.pack)?;
    drop(folders);
    let bins = &packing.bins;
    let first = |id: u32| packing.part(id).is_none_or(|p| p.offset == 0);
    let firsts = || bins.iter().flat_map(|b| &b.ids).filter(|&&id| first(id));
    let totals = Totals {
        batches: bins.len() as u64,
        files: firsts().count() as u64,
        bytes: firsts().map(|&id| files.size(packing.file(id))).sum(),
        car_bytes_bound: bins.iter().map(Slots::bound).sum(),
    };
    let header = header_with(o, inputs, base, totals);
    let io = |e: std::io::Error| PlanError::Write(e.to_string());
    serde_json::to_writer(&mut *w, &header).map_err(|e| io(e.into()))?;
    w.write_all(b"\n").map_err(io)?;
    let mut planned = Vec::with_capacity(bins.len());
    for (i, bin) in bins.iter().enumerate() {
        // The record `batch_record` makes, its files serialized as they are named.
        let id = batch_id(i, bins.len());
        let bound = bin.bound();
        let piece_size = padded_piece_size(bound).max(o.min_piece_size);
        let file_refs =
            bin.ids.iter().map(|&id| FileRef { part: packing.part(id), ..files.file_ref(packing.file(id)) });
        super::file::write_batch_json(w, &id, bound, piece_size, file_refs).map_err(io)?;
        planned.push(PlannedBatch {
            id,
            files: bin.ids.len() as u64,
            parts: bin.ids.iter().filter(|&&id| packing.part(id).is_some()).count() as u64,
            car_size_bound: bound,
            piece_size,
        });
    }
    w.flush().map_err(io)?;
    Ok((header, planned))
}

/// Summary numbers of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PlanStats {
    /// Batches.
    pub batches: u64,
    /// Sum of padded piece sizes.
    pub piece_bytes: u64,
    /// Sum of CAR bounds.
    pub car_bytes: u64,
    /// Sum of zero padding (unpadded capacity minus CAR bound).
    pub padding: u64,
    /// Mean fill of all batches but the last (the last's fill when there is only one).
    pub mean_fill_but_last: f64,
    /// Lowest fill of all batches but the last.
    pub min_fill_but_last: f64,
}

/// Computes [`PlanStats`].
pub fn stats(s: &Shipment) -> PlanStats {
    stats_of(&s.batches.iter().map(|b| (b.car_size_bound, b.piece_size)).collect::<Vec<_>>())
}

/// [`PlanStats`] of batches given as `(CAR size bound, padded piece size)`.
pub fn stats_of(batches: &[(u64, u64)]) -> PlanStats {
    let fill = |&(bound, piece): &(u64, u64)| super::file::fill(bound, piece);
    let padding = |&(bound, piece): &(u64, u64)| super::file::padding(bound, piece);
    let head = if batches.len() > 1 { &batches[..batches.len() - 1] } else { batches };
    let fills: Vec<f64> = head.iter().map(fill).collect();
    PlanStats {
        batches: batches.len() as u64,
        piece_bytes: batches.iter().map(|x| x.1).sum(),
        car_bytes: batches.iter().map(|x| x.0).sum(),
        padding: batches.iter().map(padding).sum(),
        mean_fill_but_last: if fills.is_empty() { 0.0 } else { fills.iter().sum::<f64>() / fills.len() as f64 },
        min_fill_but_last: fills.iter().copied().fold(f64::INFINITY, f64::min).min(1.0),
    }
}
