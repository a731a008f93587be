//! The metadata walk: what will be imported, without reading contents.

use crate::profile::Profile;
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// Errors raised while scanning or reading the input.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input path does not exist.
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
    /// A top-level symlink points nowhere.
    #[error("{0}: broken symlink")]
    BrokenSymlink(PathBuf),
    /// A symlink loop was found while resolving the top-level path.
    #[error("{0}: symlink loop")]
    SymlinkLoop(PathBuf),
    /// A FIFO, socket or device was found.
    #[error("{path}: unsupported file type ({kind}); only regular files, folders and symlinks can be imported")]
    UnsupportedType {
        /// The path.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A file's size changed while carload read it.
    #[error("{path}: file changed while being read (expected {expected} bytes, {found})")]
    Changed {
        /// The path.
        path: PathBuf,
        /// Size at scan time.
        expected: u64,
        /// What was found instead.
        found: String,
    },
    /// A file is not the one planned, or was written since (a shipment's source).
    #[error("{path}: changed since planning ({detail})")]
    NotAsPlanned {
        /// The path.
        path: PathBuf,
        /// What differs.
        detail: String,
    },
    /// Any other I/O error, with the path it concerns.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Output could not be written.
    #[error("writing output: {0}")]
    Output(#[source] io::Error),
    /// The piece hasher refused the data.
    #[error("{0}")]
    Piece(String),
    /// The caller cancelled the work ([`crate::event::Observer::cancelled`]).
    #[error("cancelled")]
    Cancelled,
    /// A folder cannot be written as a HAMT (bad fanout, or two names with one hash).
    #[error("{path}: {source}")]
    Hamt {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: crate::unixfs::hamt::HamtError,
    },
    /// A block size differed from its prediction (a bug; please report).
    #[error("internal error: predicted {predicted} bytes for a block of {actual}")]
    Prediction {
        /// Predicted length.
        predicted: u64,
        /// Actual length.
        actual: u64,
    },
}

impl ImportError {
    /// Wraps an I/O error with the path it concerns, mapping common kinds to clearer variants.
    pub fn io(path: &Path, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::NotFound => ImportError::Missing(path.to_path_buf()),
            _ if source.raw_os_error() == Some(40) => ImportError::SymlinkLoop(path.to_path_buf()),
            _ => ImportError::Io { path: path.to_path_buf(), source },
        }
    }
}

/// One node of the input tree, as given (a root, or a file of a batch or shipment).
#[derive(Debug, Clone)]
pub enum Entry {
    /// A regular file.
    File {
        /// Path to read it from.
        path: PathBuf,
        /// Size at scan time.
        size: u64,
        /// The file it must be when opened, if known.
        expect: Option<super::input::Expected>,
    },
    /// A byte range of a regular file, imported as if those bytes were a file of their own
    /// (shipments split files larger than a piece at chunk-aligned offsets).
    FileRange {
        /// Path to read it from.
        path: PathBuf,
        /// Offset of the first byte.
        offset: u64,
        /// Bytes in the range.
        len: u64,
        /// The file it must be when opened, if known.
        expect: Option<super::input::Expected>,
    },
    /// A folder and, compactly, everything under it.
    Dir {
        /// Its path (its entries' paths are this path joined with their names).
        path: PathBuf,
        /// Its entries.
        folder: Folder,
    },
    /// A symlink stored as a UnixFS symlink node.
    Symlink {
        /// Its path.
        path: PathBuf,
        /// The link target bytes.
        target: Vec<u8>,
    },
}

impl Entry {
    /// Number of regular files and their total size.
    pub fn totals(&self) -> (u64, u64) {
        match self {
            Entry::File { size, .. } => (1, *size),
            Entry::FileRange { len, .. } => (1, *len),
            Entry::Symlink { .. } => (0, 0),
            Entry::Dir { folder, .. } => folder.totals(),
        }
    }
}

/// A folder's entries sorted by name bytes, held compactly so that a folder of millions of
/// entries fits in memory: names in one byte arena, a 16-byte [`Item`] per entry, no paths (an
/// entry's path is its folder's joined with its name, made when it is opened).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folder {
    /// All names, concatenated in order.
    names: Vec<u8>,
    /// End of each name in `names`.
    ends: Vec<usize>,
    /// Each entry, in name order.
    items: Vec<Item>,
    /// Symlink targets, by [`Item::Symlink`] index.
    targets: Vec<Box<[u8]>>,
}

/// One entry of a [`Folder`] (16 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A regular file of this size at scan time.
    File(u64),
    /// A symlink, its target the folder's target of this index.
    Symlink(u32),
    /// A folder.
    Dir(Box<Folder>),
}

/// An entry of a [`Folder`] as importers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child<'a> {
    /// A regular file of this size at scan time.
    File(u64),
    /// A symlink with this target.
    Symlink(&'a [u8]),
    /// A folder.
    Dir(&'a Folder),
}

impl Folder {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the folder has no entries.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The name of entry `i`.
    pub fn name(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.names[start..self.ends[i]]
    }

    /// Entry `i`.
    pub fn child(&self, i: usize) -> Child<'_> {
        match &self.items[i] {
            Item::File(size) => Child::File(*size),
            Item::Symlink(t) => Child::Symlink(&self.targets[*t as usize]),
            Item::Dir(sub) => Child::Dir(sub),
        }
    }

    /// The names in order.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &[u8]> + Clone + '_ {
        (0..self.len()).map(|i| self.name(i))
    }

    /// (name, entry) pairs in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], Child<'_>)> + '_ {
        (0..self.len()).map(|i| (self.name(i), self.child(i)))
    }

    /// Number of regular files under the folder and their total size.
    pub fn totals(&self) -> (u64, u64) {
        self.items.iter().fold((0, 0), |(f, b), item| match item {
            Item::File(size) => (f + 1, b + size),
            Item::Symlink(_) => (f, b),
            Item::Dir(sub) => {
                let (sf, sb) = sub.totals();
                (f + sf, b + sb)
            }
        })
    }

    /// Bytes the folder holds on the heap, the folders under it included (allocated capacity).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let own = self.names.capacity()
            + self.ends.capacity() * size_of::<usize>()
            + self.items.capacity() * size_of::<Item>()
            + self.targets.capacity() * size_of::<Box<[u8]>>()
            + self.targets.iter().map(|t| t.len()).sum::<usize>();
        own + self
            .items
            .iter()
            .map(|i| if let Item::Dir(sub) = i { size_of::<Folder>() + sub.heap_bytes() } else { 0 })
            .sum::<usize>()
    }
}

fn kind_of(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_fifo() {
        Some("FIFO")
    } else if t.is_socket() {
        Some("socket")
    } else if t.is_block_device() {
        Some("block device")
    } else if t.is_char_device() {
        Some("character device")
    } else {
        None
    }
}

/// Whether a folder entry name is hidden (starts with a dot), as go-ipfs-files defines it.
pub fn is_hidden(name: &OsStr) -> bool {
    name.as_bytes().first() == Some(&b'.')
}

/// Scans `path` as `ipfs add -r` would see it: a top-level symlink is followed, symlinks inside
/// folders are kept as symlinks, dot-entries inside folders are skipped unless `profile.hidden`.
pub fn scan(path: &Path, profile: &Profile) -> Result<Entry, ImportError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound && fs::symlink_metadata(path).is_ok() => {
            return Err(ImportError::BrokenSymlink(path.to_path_buf()))
        }
        Err(e) => return Err(ImportError::io(path, e)),
    };
    scan_with(path, &meta, profile)
}

fn scan_with(path: &Path, meta: &Metadata, profile: &Profile) -> Result<Entry, ImportError> {
    if meta.is_file() {
        return Ok(Entry::File { path: path.to_path_buf(), size: meta.len(), expect: None });
    }
    if let Some(kind) = kind_of(meta) {
        return Err(ImportError::UnsupportedType { path: path.to_path_buf(), kind });
    }
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).map_err(|e| ImportError::io(path, e))?;
        return Ok(Entry::Symlink { path: path.to_path_buf(), target: target.as_os_str().as_bytes().to_vec() });
    }
    Ok(Entry::Dir { path: path.to_path_buf(), folder: scan_folder(path, profile)? })
}

/// Scans a folder's entries. Names go into one arena as they are read and are sorted through
/// an index, so a folder of millions of entries never holds a path or a name allocation each.
fn scan_folder(path: &Path, profile: &Profile) -> Result<Folder, ImportError> {
    let mut names = Vec::new();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut items = Vec::new();
    let mut targets = Vec::new();
    for entry in fs::read_dir(path).map_err(|e| ImportError::io(path, e))? {
        let entry = entry.map_err(|e| ImportError::io(path, e))?;
        let name = entry.file_name();
        if !profile.hidden && is_hidden(&name) {
            continue;
        }
        let child = || path.join(&name);
        // `DirEntry::metadata` does not follow symlinks, like `symlink_metadata`.
        let meta = entry.metadata().map_err(|e| ImportError::io(&child(), e))?;
        let item = if meta.is_file() {
            Item::File(meta.len())
        } else if let Some(kind) = kind_of(&meta) {
            return Err(ImportError::UnsupportedType { path: child(), kind });
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(child()).map_err(|e| ImportError::io(&child(), e))?;
            targets.push(target.as_os_str().as_bytes().into());
            Item::Symlink(targets.len() as u32 - 1)
        } else {
            Item::Dir(Box::new(scan_folder(&child(), profile)?))
        };
        spans.push((names.len(), name.len()));
        names.extend_from_slice(name.as_bytes());
        items.push(item);
    }
    let mut order: Vec<u32> = (0..items.len() as u32).collect();
    let name_of = |i: u32| {
        let (start, len) = spans[i as usize];
        &names[start..start + len]
    };
    order.sort_unstable_by(|&a, &b| name_of(a).cmp(name_of(b)));
    let mut folder = Folder {
        names: Vec::with_capacity(names.len()),
        ends: Vec::with_capacity(items.len()),
        items: Vec::with_capacity(items.len()),
        targets,
    };
    let mut items: Vec<Option<Item>> = items.into_iter().map(Some).collect();
    for i in order {
        folder.names.extend_from_slice(name_of(i));
        folder.ends.push(folder.names.len());
        folder.items.push(items[i as usize].take().expect("each entry once"));
    }
    Ok(folder)
}

#[cfg(test)]
impl Folder {
    /// A folder of regular files with these names (any order, distinct) and sizes, held as a
    /// scan holds it.
    pub(crate) fn of_files<'a>(files: impl IntoIterator<Item = (&'a [u8], u64)>) -> Folder {
        let mut files: Vec<(&[u8], u64)> = files.into_iter().collect();
        files.sort_unstable();
        let mut folder = Folder {
            names: Vec::with_capacity(files.iter().map(|(n, _)| n.len()).sum()),
            ends: Vec::with_capacity(files.len()),
            items: Vec::with_capacity(files.len()),
            targets: Vec::new(),
        };
        for (name, size) in files {
            folder.names.extend_from_slice(name);
            folder.ends.push(folder.names.len());
            folder.items.push(Item::File(size));
        }
        folder
    }
}
