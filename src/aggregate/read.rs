//! Reading the manifest back out of an aggregate CAR.

use super::MANIFEST_LINK_NAME;
use crate::block::{verify, DAG_PB, RAW};
use crate::car::{BlockReader, CarError};
use crate::{dagpb, unixfs};
use cid::Cid;
use std::collections::{HashMap, HashSet};
use std::io::Read;

/// Largest manifest [`read_manifest_from_car`] reassembles (4 GiB, some 20 million entries).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 30;

/// Errors reading the manifest from a CAR.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The CAR itself is malformed or unreadable.
    #[error(transparent)]
    Car(#[from] CarError),
    /// An aggregate CAR has exactly one root.
    #[error("aggregate CAR must have exactly one root, found {0}")]
    RootCount(usize),
    /// The CAR ended before the root block.
    #[error("root block {0} is not in the CAR")]
    RootNotFound(Cid),
    /// The root is not an aggregate directory.
    #[error("not an aggregate: {0}")]
    NotAggregate(String),
    /// A block's bytes do not hash to its CID.
    #[error("block {0} does not match its CID")]
    HashMismatch(Cid),
    /// A manifest block is not a UnixFS file block.
    #[error("manifest block {cid}: {reason}")]
    BadManifestBlock {
        /// The block's CID.
        cid: Cid,
        /// What is wrong.
        reason: String,
    },
    /// The CAR ended before every manifest block was seen.
    #[error("the CAR ends with {missing} manifest block(s) missing")]
    ManifestIncomplete {
        /// Manifest blocks not found.
        missing: usize,
    },
    /// The manifest disagrees with its declared size or exceeds [`MAX_MANIFEST_BYTES`].
    #[error("manifest size is inconsistent or too large")]
    BadManifestSize,
}

enum Part {
    Raw(Vec<u8>),
    Node { data: Vec<u8>, children: Vec<Cid> },
}

/// Reads an aggregate CAR far enough to return its root and the manifest file's bytes.
///
/// The root block's link 0 must be named `@AggregateManifest.ndjson`; the manifest may be one raw
/// block or a UnixFS file DAG of raw or dag-pb leaves. Each block is verified against its CID.
/// Blocks must come parent before child, as in any CAR written by a depth-first walk; reading
/// stops as soon as the manifest is complete, so the entries' data is not read.
pub fn read_manifest_from_car(r: impl Read) -> Result<(Cid, Vec<u8>), ReadError> {
    let (header, mut blocks) = BlockReader::new(r)?;
    let [root] = header.roots[..] else {
        return Err(ReadError::RootCount(header.roots.len()));
    };
    let mut manifest_root = None;
    let mut declared_size = None;
    let mut pending = HashSet::new();
    let mut parts: HashMap<Cid, Part> = HashMap::new();
    loop {
        if manifest_root.is_some() && pending.is_empty() {
            break;
        }
        let Some((cid, data)) = blocks.next_block()? else {
            return Err(match manifest_root {
                None => ReadError::RootNotFound(root),
                Some(_) => ReadError::ManifestIncomplete { missing: pending.len() },
            });
        };
        if manifest_root.is_none() {
            if cid != root {
                continue;
            }
            check_hash(&cid, &data)?;
            let not_agg = |reason: String| ReadError::NotAggregate(reason);
            if cid.codec() != DAG_PB {
                return Err(not_agg("the root is not a dag-pb block".into()));
            }
            let node = dagpb::decode(&data).map_err(|e| not_agg(e.to_string()))?;
            let link = node.links.first().ok_or_else(|| not_agg("the root has no links".into()))?;
            if link.name != MANIFEST_LINK_NAME.as_bytes() {
                return Err(not_agg(format!("root link 0 is not named {MANIFEST_LINK_NAME}")));
            }
            manifest_root = Some(link.cid);
            pending.insert(link.cid);
            continue;
        }
        if !pending.remove(&cid) {
            continue;
        }
        check_hash(&cid, &data)?;
        let bad = |reason: &str| ReadError::BadManifestBlock { cid, reason: reason.to_string() };
        let part = match cid.codec() {
            RAW => Part::Raw(data),
            DAG_PB => {
                let node = dagpb::decode(&data).map_err(|e| bad(&e.to_string()))?;
                let fs = node.data.as_deref().and_then(unixfs::decode).ok_or_else(|| bad("no UnixFS data"))?;
                if fs.kind != unixfs::DataType::File as u64 && fs.kind != unixfs::DataType::Raw as u64 {
                    return Err(bad("not a UnixFS file node"));
                }
                if Some(cid) == manifest_root {
                    declared_size = Some(fs.filesize.ok_or_else(|| bad("file root without filesize"))?);
                }
                let children: Vec<Cid> = node.links.iter().map(|l| l.cid).collect();
                pending.extend(children.iter().filter(|c| !parts.contains_key(c)));
                Part::Node { data: fs.data.unwrap_or_default(), children }
            }
            _ => return Err(bad("neither raw nor dag-pb")),
        };
        parts.insert(cid, part);
    }
    let manifest_root = manifest_root.expect("the loop ends once the manifest root is known");
    let limit = declared_size.unwrap_or(MAX_MANIFEST_BYTES).min(MAX_MANIFEST_BYTES);
    let mut out = Vec::new();
    let mut stack = vec![manifest_root];
    while let Some(cid) = stack.pop() {
        let bytes = match &parts[&cid] {
            Part::Raw(data) => data,
            Part::Node { data, children } => {
                stack.extend(children.iter().rev());
                data
            }
        };
        if out.len() as u64 + bytes.len() as u64 > limit {
            return Err(ReadError::BadManifestSize);
        }
        out.extend_from_slice(bytes);
    }
    if declared_size.is_some_and(|n| n != out.len() as u64) {
        return Err(ReadError::BadManifestSize);
    }
    Ok((root, out))
}

fn check_hash(cid: &Cid, data: &[u8]) -> Result<(), ReadError> {
    if verify(cid, data) {
        Ok(())
    } else {
        Err(ReadError::HashMismatch(*cid))
    }
}
