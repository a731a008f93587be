//! Restoring files from a CAR's UnixFS DAG: folders, files and symlinks, every block verified
//! against its CID when read, every node checked as the reference exporter checks it, and
//! nothing ever written outside the output folder. Folders are basic or HAMT-sharded (their
//! entries read shard by shard, each where its name's hash puts it).
//!
//! In order: the CAR is indexed ([`CarIndex`]: 28 bytes a block, data never held); the DAG's
//! expansion is computed before anything is written ([`expansion`]: every folder checked —
//! names, duplicates, types —, per-node totals memoized, so a DAG that reuses nodes is measured
//! in time and memory proportional to its CAR, and refused when it expands beyond what the CAR
//! holds unless the caller allows reuse); then the tree is written through open folder
//! descriptors ([`OutDir`]: no link followed), each file under a temporary name renamed into
//! place once its bytes are complete and checked ([`CarIndex::write_file`]).

mod expand;
mod file;
mod folder;
mod index;
mod out;

pub use expand::{check_expansion, expansion, Expansion};
pub use index::{CarIndex, Place};
pub use out::{Existing, OutDir, PendingFile, Space, TempHook};

use crate::block::{DAG_PB, RAW};
use crate::car::CarError;
use crate::nodeview::{hamt, next_link, unixfs_node, Kind, NodeError};
use cid::Cid;
use folder::{open_shard, FolderNode, Item};
use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

/// Deepest folder nesting extracted (one open folder descriptor per level while writing).
pub const MAX_DEPTH: usize = 512;
/// Most bytes of nodes a walk holds at once (the chain of folders or file nodes above the
/// current one); a hostile DAG of huge nodes nested deep is refused rather than held.
pub const MAX_HELD: usize = 64 << 20;

/// Errors extracting.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The CAR cannot be read.
    #[error(transparent)]
    Car(#[from] CarError),
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A block is missing, corrupt, or not UnixFS as the reference exporter reads it.
    #[error("block {cid}: {reason}")]
    Block {
        /// The block.
        cid: Cid,
        /// What is wrong.
        reason: String,
    },
    /// A block is not a dag-pb node with UnixFS data, or a file node's sizes do not add up.
    #[error("block {cid}: {source}")]
    Node {
        /// The block.
        cid: Cid,
        /// What is wrong (boxed: it keeps the error small).
        source: Box<NodeError>,
    },
    /// A name in the DAG is not a safe single path component.
    #[error("unsafe name {0:?} in the DAG (it could write outside the target folder)")]
    UnsafeName(String),
    /// The target exists.
    #[error("{0}: exists (use --force to replace it)")]
    Exists(PathBuf),
    /// A folder stands where a file or symlink goes.
    #[error("{0}: is a folder; extract replaces files and links, never folders")]
    IsFolder(PathBuf),
    /// A symbolic link stands where a folder goes.
    #[error("{0}: is a symbolic link; extract never writes through links")]
    Symlink(PathBuf),
    /// Something other than a folder stands where a folder goes.
    #[error("{0}: exists and is not a folder")]
    NotAFolder(PathBuf),
    /// No entry at the path asked for.
    #[error("no entry {0:?} in the DAG")]
    NoSuchEntry(String),
    /// The DAG expands beyond what its CAR holds without reusing nodes.
    #[error(
        "{}: extracting it would write {} entries and {} bytes, more than its CAR holds without \
         reusing nodes ({} entries, {} bytes); identical files or folders and zero-filled regions do \
         this legitimately, but a hostile CAR can expand without limit: use --allow-reuse to extract \
         it anyway (still refused beyond the free space of the output folder)",
        .0.root, .0.entries, .0.bytes, .0.distinct_entries, .0.car_bytes
    )]
    Expands(Box<Expansion>),
    /// The DAG expands beyond the free space of the output folder.
    #[error(
        "{}: extracting it would write {} entries and {} bytes; {} has {} bytes{} free",
        .expansion.root, .expansion.entries, .expansion.bytes, .path.display(), .space.bytes,
        .space.inodes.map(|i| format!(" and {i} inodes")).unwrap_or_default()
    )]
    NoSpace {
        /// The expansion.
        expansion: Box<Expansion>,
        /// The output folder.
        path: PathBuf,
        /// Its free space.
        space: Space,
    },
    /// The DAG read while writing is not the one measured before (the CAR changed).
    #[error("{0}: the DAG grew beyond its measured expansion while being written (the CAR changed?)")]
    Changed(Cid),
}

fn bad(cid: &Cid) -> impl Fn(String) -> ExtractError + '_ {
    move |reason| ExtractError::Block { cid: *cid, reason }
}

/// The error of the node `cid`.
fn bad_node(cid: &Cid) -> impl Fn(NodeError) -> ExtractError + '_ {
    move |source| ExtractError::Node { cid: *cid, source: Box::new(source) }
}

/// Checks that a link name is one ordinary path component.
pub fn safe_name(name: &[u8]) -> Result<&OsStr, ExtractError> {
    use std::os::unix::ffi::OsStrExt;
    let os = OsStr::from_bytes(name);
    let mut comps = Path::new(os).components();
    match (comps.next(), comps.next()) {
        (Some(Component::Normal(c)), None) if c == os && !name.contains(&0) => Ok(os),
        _ => Err(ExtractError::UnsafeName(String::from_utf8_lossy(name).into_owned())),
    }
}

/// A DAG entry, its node checked.
pub(crate) enum Entry {
    /// A folder: a basic folder's node (names safe and distinct), or a sharded folder's root
    /// shard (valid alone; its entries are checked as they are read).
    Folder(FolderNode),
    /// A file of `size` bytes (its root's claim, checked when written), with its root block
    /// when it is dag-pb.
    File { size: u64, root: Option<Vec<u8>> },
    /// A symbolic link.
    Symlink { target: Vec<u8> },
}

/// Reads and checks the node `cid` as an entry of a folder (or the root).
pub(crate) fn classify(car: &CarIndex, cid: &Cid) -> Result<Entry, ExtractError> {
    let bad = bad(cid);
    match cid.codec() {
        RAW => Ok(Entry::File { size: car.size_of(cid)?, root: None }),
        DAG_PB => {
            let block = car.block(cid)?;
            let node = unixfs_node(&block).map_err(bad_node(cid))?;
            let links = node.pb.link_count;
            match node.kind() {
                k if k.is_file() => {
                    let size = node.file_size().map_err(bad_node(cid))?;
                    Ok(Entry::File { size, root: Some(block) })
                }
                Kind::Directory => {
                    check_folder(&block, cid)?;
                    Ok(Entry::Folder(FolderNode::basic(*cid, block, links)))
                }
                Kind::HamtShard => {
                    let shard = hamt::shard(&node).map_err(bad_node(cid))?;
                    let (bits, entries) = (shard.bits, shard.entries);
                    Ok(Entry::Folder(FolderNode::root_shard(*cid, block, bits, entries)))
                }
                Kind::Symlink if links > 0 => Err(bad(format!("a symlink with {links} links"))),
                Kind::Symlink if node.fs.inline().is_empty() => Err(bad("a symlink with an empty target".into())),
                Kind::Symlink => Ok(Entry::Symlink { target: node.fs.inline().to_vec() }),
                k => Err(bad(format!("{} is not supported", k.describe()))),
            }
        }
        c => Err(bad(format!("codec 0x{c:x} is not UnixFS (dag-pb or raw)"))),
    }
}

/// A folder's links are named, each name a safe single component, no name twice (the
/// reference exporter and UnixFS forbid it: a link and a folder of one name would let a write
/// go through the link).
fn check_folder(block: &[u8], cid: &Cid) -> Result<(), ExtractError> {
    let mut names = Vec::new();
    let mut at = 0;
    while let Some(link) = next_link(block, &mut at) {
        let link = link.map_err(bad_node(cid))?;
        safe_name(link.name)?;
        names.push(link.name);
    }
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        let name = String::from_utf8_lossy(w[0]);
        return Err(bad(cid)(format!("duplicate name {name:?} in a folder")));
    }
    Ok(())
}

/// The entry at `path` (names joined by `/`) below the folder DAG `root`.
pub fn resolve(car: &CarIndex, root: &Cid, path: &str) -> Result<Cid, ExtractError> {
    let mut at = *root;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        let Entry::Folder(folder) = classify(car, &at)? else {
            return Err(ExtractError::NoSuchEntry(path.to_string()));
        };
        // The folder's nodes: a basic folder, or a sharded folder's shards as they are reached.
        let mut nodes = vec![folder];
        at = 'found: loop {
            let Some(node) = nodes.last_mut() else {
                return Err(ExtractError::NoSuchEntry(path.to_string()));
            };
            match node.next() {
                Some(Ok(Item::Entry(name, cid))) if name.as_encoded_bytes() == part.as_bytes() => break 'found cid,
                Some(Ok(Item::Entry(..))) => {}
                Some(Ok(Item::SubShard(cid, pos))) => {
                    let parent = node.cid;
                    nodes.push(open_shard(car, &cid, pos, &parent)?);
                }
                Some(Err(e)) => return Err(e),
                None => {
                    nodes.pop();
                }
            }
        };
    }
    Ok(at)
}

/// How [`extract`] treats what exists and what expands.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Replace files and links that exist, and merge into folders that exist.
    pub force: bool,
    /// Extract a DAG that expands beyond its CAR (reused nodes), within the free space.
    pub allow_reuse: bool,
}

/// What [`extract`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Folders, files and symlinks written (the root included).
    pub entries: u64,
    /// File bytes written.
    pub bytes: u64,
    /// Where the root went.
    pub target: PathBuf,
}

/// Restores the DAG `cid` (a file, folder or symlink) into `out`: a folder root without a
/// `name` is written into `out` itself, any other root as `name` (default: its CID) in `out`.
/// Folders that exist are refused unless `force` (then merged); files and links that exist
/// are refused unless `force` (then replaced by a rename, never written through).
pub fn extract(
    car: &CarIndex,
    cid: &Cid,
    out: &OutDir,
    name: Option<&OsStr>,
    opts: &Options,
) -> Result<Summary, ExtractError> {
    let exp = expansion(car, cid)?;
    check_expansion(&exp, opts.allow_reuse, out)?;
    let mut w = Writer { car, opts: *opts, root: *cid, limit: exp, entries: 0, bytes: 0 };
    let existing = if opts.force { Existing::Merge } else { Existing::Refuse };
    let cid_name = cid.to_string();
    let target = match (classify(car, cid)?, name) {
        (Entry::Folder(folder), None) => {
            w.count(0)?;
            w.folder(out.clone(), folder)?;
            out.path().to_path_buf()
        }
        (Entry::Folder(folder), Some(name)) => {
            w.count(0)?;
            let dir = out.dir(name, existing)?;
            let path = dir.path().to_path_buf();
            w.folder(dir, folder)?;
            path
        }
        (leaf, name) => {
            let name = name.unwrap_or(OsStr::new(&cid_name));
            w.leaf(out, name, cid, leaf)?;
            out.path().join(name)
        }
    };
    Ok(Summary { entries: w.entries, bytes: w.bytes, target })
}

/// The write pass: counts what it writes against the measured expansion.
struct Writer<'a> {
    car: &'a CarIndex,
    opts: Options,
    root: Cid,
    limit: Expansion,
    entries: u64,
    bytes: u64,
}

impl Writer<'_> {
    fn count(&mut self, bytes: u64) -> Result<(), ExtractError> {
        self.entries += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        if self.entries > self.limit.entries || self.bytes > self.limit.bytes {
            return Err(ExtractError::Changed(self.root));
        }
        Ok(())
    }

    /// Writes the entries of a folder into `dir`, depth first (a sharded folder's sub-shards
    /// are read into the same `dir`).
    fn folder(&mut self, dir: OutDir, folder: FolderNode) -> Result<(), ExtractError> {
        let existing = if self.opts.force { Existing::Merge } else { Existing::Refuse };
        let mut stack = vec![(dir, folder)];
        while let Some((dir, node)) = stack.last_mut() {
            let Some(item) = node.next() else {
                stack.pop();
                continue;
            };
            match item? {
                Item::SubShard(cid, pos) => {
                    let parent = node.cid;
                    let (dir, sub) = (dir.clone(), open_shard(self.car, &cid, pos, &parent)?);
                    stack.push((dir, sub));
                }
                Item::Entry(name, cid) => match classify(self.car, &cid)? {
                    Entry::Folder(sub) => {
                        self.count(0)?;
                        let dir = dir.dir(name, existing)?;
                        stack.push((dir, sub));
                    }
                    leaf => self.leaf(dir, name, &cid, leaf)?,
                },
            }
        }
        Ok(())
    }

    /// Writes a file or symlink `name` in `dir`.
    fn leaf(&mut self, dir: &OutDir, name: &OsStr, cid: &Cid, entry: Entry) -> Result<(), ExtractError> {
        match entry {
            Entry::Symlink { target } => {
                self.count(0)?;
                dir.symlink(name, &target, self.opts.force)
            }
            Entry::File { size, root } => {
                self.count(size)?;
                dir.check_free(name, self.opts.force)?;
                let pending = dir.temp_file(name)?;
                let mut w = io::BufWriter::with_capacity(1 << 20, pending.file());
                self.car.write_file_from(cid, root, Some(size), &mut w)?;
                w.flush().map_err(|source| ExtractError::Io { path: pending.temp_path(), source })?;
                drop(w);
                pending.commit(self.opts.force)
            }
            Entry::Folder(_) => unreachable!("folders are written by Writer::folder"),
        }
    }
}
