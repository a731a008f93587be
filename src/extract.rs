//! Restoring files from a CAR's UnixFS DAG: folders, files and symlinks, every block verified
//! against its CID when read, names checked so a hostile CAR can never write outside the target.
//!
//! The CAR is indexed once (section offsets by multihash, so a CIDv0 and its CIDv1 find the same
//! block), then read at random: memory holds the index, not the data.

use crate::block::{self, DAG_PB, RAW};
use crate::car::{self, CarError};
use crate::unixfs::DataType;
use cid::Cid;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

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
    /// A block is missing, corrupt or not UnixFS.
    #[error("block {cid}: {reason}")]
    Block {
        /// The block.
        cid: Cid,
        /// What is wrong.
        reason: String,
    },
    /// A name in the DAG is not a safe single path component.
    #[error("unsafe name {0:?} in the DAG (it could write outside the target folder)")]
    UnsafeName(String),
    /// The target exists.
    #[error("{0}: exists (use --force to replace it)")]
    Exists(PathBuf),
    /// No entry at the path asked for.
    #[error("no entry {0:?} in the DAG")]
    NoSuchEntry(String),
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> ExtractError + '_ {
    move |source| ExtractError::Io { path: path.to_path_buf(), source }
}

/// A CAR opened for random access.
pub struct CarIndex {
    file: File,
    /// Root CIDs from the header.
    pub roots: Vec<Cid>,
    sections: HashMap<Vec<u8>, (u64, u32)>,
}

impl CarIndex {
    /// Indexes the CAR at `path` (one sequential pass over the section headers).
    pub fn open(path: &Path) -> Result<Self, ExtractError> {
        let file = File::open(path).map_err(io_err(path))?;
        let mut r = io::BufReader::with_capacity(1 << 20, file.try_clone().map_err(io_err(path))?);
        let header = car::read_header(&mut r)?;
        let mut offset = header.len;
        let mut sections = HashMap::new();
        loop {
            let bad = |reason: &str| CarError::BadSection { offset, reason: reason.into() };
            let Some((len, n)) = car::read_varint(&mut r).map_err(|e| bad(&e.to_string()))? else {
                return Ok(CarIndex { file, roots: header.roots, sections });
            };
            let n = n as u64;
            if len > 64 << 20 {
                return Err(bad("section larger than 64 MiB").into());
            }
            let mut buf = vec![0u8; len as usize];
            r.read_exact(&mut buf).map_err(|_| bad("truncated section"))?;
            let mut cur = io::Cursor::new(&buf[..]);
            let cid = Cid::read_bytes(&mut cur).map_err(|e| bad(&e.to_string()))?;
            let data_at = offset + n + cur.position();
            let data_len = (len - cur.position()) as u32;
            sections.entry(cid.hash().to_bytes()).or_insert((data_at, data_len));
            offset += n + len;
        }
    }

    /// The block `cid` names, verified.
    pub fn block(&self, cid: &Cid) -> Result<Vec<u8>, ExtractError> {
        if cid.hash().code() == block::IDENTITY {
            return Ok(cid.hash().digest().to_vec());
        }
        let &(at, len) = self
            .sections
            .get(&cid.hash().to_bytes())
            .ok_or_else(|| ExtractError::Block { cid: *cid, reason: "missing from the CAR".into() })?;
        let mut data = vec![0u8; len as usize];
        self.file.read_exact_at(&mut data, at).map_err(|source| ExtractError::Io { path: "CAR".into(), source })?;
        if !block::verify(cid, &data) {
            return Err(ExtractError::Block { cid: *cid, reason: "its data does not hash to its CID".into() });
        }
        Ok(data)
    }

    /// A dag-pb node and its UnixFS data.
    fn node(&self, cid: &Cid) -> Result<(crate::dagpb::Node, crate::unixfs::Data), ExtractError> {
        let data = self.block(cid)?;
        let bad = |reason: &str| ExtractError::Block { cid: *cid, reason: reason.into() };
        let node = crate::dagpb::decode(&data).map_err(|e| bad(&e.to_string()))?;
        let fs = node.data.as_deref().and_then(crate::unixfs::decode).ok_or_else(|| bad("no UnixFS data"))?;
        Ok((node, fs))
    }

    /// Writes the bytes of the file DAG `cid` to `out`; returns how many.
    pub fn write_file(&self, cid: &Cid, out: &mut dyn Write) -> Result<u64, ExtractError> {
        let mut stack = vec![*cid];
        let mut total = 0u64;
        while let Some(c) = stack.pop() {
            let bytes = match c.codec() {
                RAW => self.block(&c)?,
                DAG_PB => {
                    let (node, fs) = self.node(&c)?;
                    if fs.kind != DataType::File as u64 && fs.kind != DataType::Raw as u64 {
                        return Err(ExtractError::Block { cid: c, reason: "not a file node".into() });
                    }
                    stack.extend(node.links.iter().rev().map(|l| l.cid));
                    fs.data.unwrap_or_default()
                }
                other => {
                    return Err(ExtractError::Block { cid: c, reason: format!("codec 0x{other:x} is not UnixFS") })
                }
            };
            out.write_all(&bytes).map_err(|source| ExtractError::Io { path: "output".into(), source })?;
            total += bytes.len() as u64;
        }
        Ok(total)
    }
}

/// Checks that a link name is one ordinary path component.
pub fn safe_name(name: &[u8]) -> Result<&std::ffi::OsStr, ExtractError> {
    use std::os::unix::ffi::OsStrExt;
    let os = std::ffi::OsStr::from_bytes(name);
    let mut comps = Path::new(os).components();
    match (comps.next(), comps.next()) {
        (Some(Component::Normal(c)), None) if c == os && !name.contains(&0) => Ok(os),
        _ => Err(ExtractError::UnsafeName(String::from_utf8_lossy(name).into_owned())),
    }
}

fn create_new(path: &Path, force: bool) -> Result<File, ExtractError> {
    if force {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => return Err(ExtractError::Exists(path.to_path_buf())),
            Ok(_) => std::fs::remove_file(path).map_err(io_err(path))?,
            Err(_) => {}
        }
    }
    std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            ExtractError::Exists(path.to_path_buf())
        } else {
            ExtractError::Io { path: path.to_path_buf(), source: e }
        }
    })
}

/// Restores the DAG `cid` (a file, folder or symlink) at `target` (which must not exist unless
/// `force`). Returns the number of files, folders and symlinks written.
pub fn extract(car: &CarIndex, cid: &Cid, target: &Path, force: bool) -> Result<u64, ExtractError> {
    let mut count = 0;
    let mut stack = vec![(*cid, target.to_path_buf())];
    while let Some((c, path)) = stack.pop() {
        count += 1;
        if c.codec() == RAW {
            let mut f = create_new(&path, force)?;
            car.write_file(&c, &mut f)?;
            continue;
        }
        let (node, fs) = car.node(&c)?;
        match fs.kind {
            k if k == DataType::Directory as u64 => {
                match std::fs::create_dir(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {
                        if !force && path != target {
                            return Err(ExtractError::Exists(path));
                        }
                    }
                    Err(e) => return Err(ExtractError::Io { path, source: e }),
                }
                for l in node.links.iter().rev() {
                    stack.push((l.cid, path.join(safe_name(&l.name)?)));
                }
            }
            k if k == DataType::File as u64 || k == DataType::Raw as u64 => {
                let f = create_new(&path, force)?;
                let mut w = io::BufWriter::with_capacity(1 << 20, f);
                car.write_file(&c, &mut w)?;
                w.flush().map_err(io_err(&path))?;
            }
            k if k == DataType::Symlink as u64 => {
                use std::os::unix::ffi::OsStrExt;
                let target = fs.data.unwrap_or_default();
                if force {
                    let _ = std::fs::remove_file(&path);
                }
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &path).map_err(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        ExtractError::Exists(path.clone())
                    } else {
                        ExtractError::Io { path: path.clone(), source: e }
                    }
                })?;
            }
            k => {
                return Err(ExtractError::Block {
                    cid: c,
                    reason: format!("UnixFS type {k} is not supported (HAMT-sharded folders are not)"),
                })
            }
        }
    }
    Ok(count)
}

/// The entry at `path` (names joined by `/`) below the folder DAG `root`.
pub fn resolve(car: &CarIndex, root: &Cid, path: &str) -> Result<Cid, ExtractError> {
    let mut at = *root;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        let (node, _) = car.node(&at)?;
        at = node
            .links
            .iter()
            .find(|l| l.name == part.as_bytes())
            .map(|l| l.cid)
            .ok_or_else(|| ExtractError::NoSuchEntry(path.to_string()))?;
    }
    Ok(at)
}
