//! Planning: walk the inputs (metadata only), predict every file's CAR sections and pack them
//! into batches that fit the target piece.

use super::file::{Batch, FileRef, Header, Shipment, FORMAT, VERSION};
use super::pack::{pack, Bin, Item, PackError};
use crate::batch::clean_path;
use crate::commp::{padded_piece_size, unpadded_piece_size};
use crate::importer::ImportError;
use crate::profile::Profile;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};

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
}

/// Modification time of `meta` in nanoseconds since the Unix epoch.
pub fn mtime_ns(meta: &Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec())
}

/// Lists every regular file under `inputs` (files or folders), following symlinks to files, in
/// byte-sorted walk order per input; duplicates are dropped. Folders are read in parallel by the
/// [`crate::walk`] walker (files `stat`ed relative to their folder); a symlink to a folder, a
/// special file or an unreadable folder is an error naming it (the first in walk order).
pub fn walk_inputs(inputs: &[PathBuf]) -> Result<Vec<SourceFile>, PlanError> {
    use crate::walk::{walk, Kind, Listing, WalkOptions, ROOTS};
    for root in inputs {
        std::fs::metadata(root).map_err(|e| ImportError::io(root, e))?;
    }
    let listings = std::sync::Mutex::new(Vec::new());
    let stop = std::sync::atomic::AtomicBool::new(false);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    walk(inputs, &WalkOptions { threads, cost: &|_| 0, stop: &stop }, &|l| listings.lock().unwrap().push(l));
    let listings = listings.into_inner().unwrap();
    let by_folder: HashMap<u32, &Listing> = listings.iter().map(|l| (l.folder, l)).collect();
    let roots_listing = by_folder[&ROOTS];
    let mut files = Vec::new();
    // Depth-first over the listings, children in name order: the walk order of `walkdir`.
    for (r, root) in inputs.iter().enumerate() {
        let mut stack: Vec<(&Listing, usize, PathBuf)> = Vec::new();
        let top = &roots_listing.children[r];
        let base = clean_path(root);
        match top.kind {
            Kind::Folder => match by_folder.get(&(r as u32)) {
                Some(l) => stack.push((l, 0, base)),
                None => continue,
            },
            Kind::File | Kind::LinkToFile => {
                files.push(SourceFile {
                    name: super::file::path_to_name(&base),
                    size: top.size,
                    mtime_ns: top.mtime_ns,
                });
                continue;
            }
            Kind::LinkToFolder => return Err(PlanError::SymlinkToFolder(root.clone())),
            Kind::Other => return Err(other_error(root.clone(), top.error.as_deref())),
        }
        while let Some((l, i, dir)) = stack.pop() {
            if i == 0 {
                if let Some(e) = &l.error {
                    return Err(ImportError::Io { path: dir, source: std::io::Error::other(e.clone()) }.into());
                }
            }
            if i >= l.children.len() {
                continue;
            }
            stack.push((l, i + 1, dir.clone()));
            let c = &l.children[i];
            use std::os::unix::ffi::OsStrExt;
            let path = dir.join(std::ffi::OsStr::from_bytes(l.name(i)));
            match c.kind {
                Kind::File | Kind::LinkToFile => files.push(SourceFile {
                    name: super::file::path_to_name(&path),
                    size: c.size,
                    mtime_ns: c.mtime_ns,
                }),
                Kind::Folder => {
                    if let Some(sub) = by_folder.get(&(l.first + i as u32)) {
                        stack.push((sub, 0, path));
                    }
                }
                Kind::LinkToFolder => return Err(PlanError::SymlinkToFolder(path)),
                Kind::Other => return Err(other_error(path, c.error.as_deref())),
            }
        }
    }
    if inputs.len() > 1 {
        let mut seen = std::collections::HashSet::new();
        files.retain(|f| seen.insert(f.name.clone()));
    }
    Ok(files)
}

/// The error for an entry the walk could not ship: a special file, or what stat said.
fn other_error(path: PathBuf, reason: Option<&str>) -> PlanError {
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
    if o.sector_size != SECTOR_32GIB && o.sector_size != SECTOR_64GIB {
        return bad(format!("sector size {} is not 32GiB or 64GiB", o.sector_size));
    }
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
        batches: batches.len() as u64,
        files: firsts().count() as u64,
        bytes: firsts().map(|f| f.size).sum(),
        car_bytes_bound: batches.iter().map(|b| b.car_size_bound).sum(),
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
                FileRef { name: f.name.clone(), size: f.size, mtime_ns: f.mtime_ns, part: it.part }
            })
        })
        .collect();
    let header = header(o, inputs, base, &batches);
    Ok(Shipment { header, batches })
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
    let b = &s.batches;
    let head = if b.len() > 1 { &b[..b.len() - 1] } else { &b[..] };
    let fills: Vec<f64> = head.iter().map(Batch::fill).collect();
    PlanStats {
        batches: b.len() as u64,
        piece_bytes: b.iter().map(|x| x.piece_size).sum(),
        car_bytes: b.iter().map(|x| x.car_size_bound).sum(),
        padding: b.iter().map(Batch::padding).sum(),
        mean_fill_but_last: if fills.is_empty() { 0.0 } else { fills.iter().sum::<f64>() / fills.len() as f64 },
        min_fill_but_last: fills.iter().copied().fold(f64::INFINITY, f64::min).min(1.0),
    }
}
