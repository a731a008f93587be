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

/// One node of the input tree.
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
    /// A folder with its children sorted by name bytes.
    Dir {
        /// Its path.
        path: PathBuf,
        /// (name, entry) pairs sorted by name bytes.
        children: Vec<(Vec<u8>, Entry)>,
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
            Entry::Dir { children, .. } => children.iter().fold((0, 0), |(f, b), (_, c)| {
                let (cf, cb) = c.totals();
                (f + cf, b + cb)
            }),
        }
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
    let mut children = Vec::new();
    for item in fs::read_dir(path).map_err(|e| ImportError::io(path, e))? {
        let item = item.map_err(|e| ImportError::io(path, e))?;
        let name = item.file_name();
        if !profile.hidden && is_hidden(&name) {
            continue;
        }
        let child = item.path();
        let meta = fs::symlink_metadata(&child).map_err(|e| ImportError::io(&child, e))?;
        children.push((name.as_bytes().to_vec(), scan_with(&child, &meta, profile)?));
    }
    children.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Entry::Dir { path: path.to_path_buf(), children })
}
