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
        // Every block below the root must contribute bytes: a DAG that repeats links to empty
        // blocks could otherwise make this walk take forever without growing the output.
        let bytes = match &parts[&cid] {
            Part::Raw(data) => data,
            Part::Node { data, children } => {
                if children.is_empty() && data.is_empty() && cid != manifest_root {
                    return Err(ReadError::BadManifestBlock { cid, reason: "empty node in the manifest DAG".into() });
                }
                stack.extend(children.iter().rev());
                data
            }
        };
        if bytes.is_empty() && cid != manifest_root && matches!(parts[&cid], Part::Raw(_)) {
            return Err(ReadError::BadManifestBlock { cid, reason: "empty leaf in the manifest DAG".into() });
        }
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

#[cfg(test)]
mod hostile {
    use super::*;
    use crate::block::{Block, CidVersion};
    use crate::dagpb::{encode, Link};

    /// A hash-valid aggregate whose manifest DAG repeats links 4096 times at three levels
    /// (4096³ paths): reading it ends at once with an error, in bounded time and memory.
    #[test]
    fn a_manifest_dag_repeating_links_is_refused_quickly() {
        for leaf in [Vec::new(), b"x".to_vec()] {
            let e = Block::new(CidVersion::V1, RAW, leaf.clone());
            let mut level = e.cid;
            let mut blocks = vec![e];
            for _ in 0..3 {
                let links: Vec<Link> = (0..4096).map(|_| Link { cid: level, name: Vec::new(), tsize: 1 }).collect();
                let data = crate::unixfs::file_node_data(leaf.len() as u64 * 4096, &vec![leaf.len() as u64; 4096]);
                let b = Block::new(CidVersion::V1, DAG_PB, encode(&links, Some(&data)));
                level = b.cid;
                blocks.push(b);
            }
            let root_links = vec![Link { cid: level, name: MANIFEST_LINK_NAME.as_bytes().to_vec(), tsize: 1 }];
            let root = Block::new(CidVersion::V1, DAG_PB, encode(&root_links, Some(&crate::unixfs::directory())));
            let mut car = crate::car::header(&root.cid);
            for b in std::iter::once(&root).chain(blocks.iter().rev()) {
                car.extend(crate::car::section_prefix(&b.cid, b.data.len()));
                car.extend(&b.data);
            }
            let start = std::time::Instant::now();
            let err = read_manifest_from_car(&car[..]).unwrap_err();
            assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
            assert!(matches!(err, ReadError::BadManifestBlock { .. } | ReadError::BadManifestSize), "{err}");
        }
    }
}
