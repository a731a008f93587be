//! A simple in-memory file importer (balanced and trickle layouts). It is the executable specification that the
//! streaming importer is tested against, and it builds small DAGs held in memory (such as the
//! aggregate manifest), and whole input trees ([`tree_dag`]), HAMT folders included.

use crate::block::{Block, CidVersion, DAG_PB};
use crate::dagpb::{self, Link};
use crate::importer::scan::{Child, Entry, Folder, ImportError};
use crate::profile::{Layout, Profile};
use crate::unixfs;
use crate::unixfs::hamt;
use cid::Cid;
use std::collections::HashSet;

/// A DAG held in memory.
#[derive(Debug, Clone)]
pub struct Dag {
    /// The root CID.
    pub root: Cid,
    /// Cumulative size of the DAG (the Tsize a parent link would carry).
    pub tsize: u64,
    /// Blocks in CAR order: depth-first pre-order from the root, each CID once.
    pub blocks: Vec<Block>,
}

/// A node of a balanced file DAG: a leaf (the first nodes, in file order) or an internal node
/// holding its block.
#[derive(Debug, Clone)]
pub struct TreeNode {
    /// Its CID.
    pub cid: Cid,
    /// Cumulative size (the Tsize its parent's link carries).
    pub tsize: u64,
    /// File bytes under it.
    pub file_bytes: u64,
    /// The block of an internal node (`None` for a leaf: the caller has its bytes).
    pub block: Option<Block>,
    /// Children, as indexes into the node list.
    pub children: Vec<usize>,
}

/// go-ipfs's balanced layout over `leaves` given as `(cid, tsize, file bytes)` in file order:
/// returns every node (the leaves first, in order, then the internal nodes) and the root's index.
pub fn balanced_tree(leaves: impl IntoIterator<Item = (Cid, u64, u64)>, profile: &Profile) -> (Vec<TreeNode>, usize) {
    let mut nodes: Vec<TreeNode> = leaves
        .into_iter()
        .map(|(cid, tsize, file_bytes)| TreeNode { cid, tsize, file_bytes, block: None, children: Vec::new() })
        .collect();
    let mut level: Vec<usize> = (0..nodes.len()).collect();
    while level.len() > 1 {
        let mut next = Vec::new();
        for group in level.chunks(profile.max_links) {
            let links: Vec<Link> =
                group.iter().map(|&i| Link { cid: nodes[i].cid, name: Vec::new(), tsize: nodes[i].tsize }).collect();
            let sizes: Vec<u64> = group.iter().map(|&i| nodes[i].file_bytes).collect();
            let total: u64 = sizes.iter().sum();
            let bytes = dagpb::encode(&links, Some(&unixfs::file_node_data(total, &sizes)));
            let tsize = bytes.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>();
            let block = Block::new(profile.cid_version, DAG_PB, bytes);
            nodes.push(TreeNode {
                cid: block.cid,
                tsize,
                file_bytes: total,
                block: Some(block),
                children: group.to_vec(),
            });
            next.push(nodes.len() - 1);
        }
        level = next;
    }
    (nodes, level[0])
}

/// boxo's trickle layout (`trickledag.go`, depth repeat 4) over `leaves` given as `(cid, tsize,
/// file bytes)` in file order, written as boxo's recursion: returns every node (the leaves first,
/// in order, then the internal nodes) and the root's index. The root is always a File node.
pub fn trickle_tree(leaves: impl IntoIterator<Item = (Cid, u64, u64)>, profile: &Profile) -> (Vec<TreeNode>, usize) {
    let mut nodes: Vec<TreeNode> = leaves
        .into_iter()
        .map(|(cid, tsize, file_bytes)| TreeNode { cid, tsize, file_bytes, block: None, children: Vec::new() })
        .collect();
    let total = nodes.len();
    let mut next = 0;
    let root = fill_trickle(&mut nodes, &mut next, total, None, profile);
    (nodes, root)
}

/// `fillTrickleRec`: a File node with up to `max_links` leaves, then while leaves remain, up to
/// 4 subtrees of each depth `1..max_depth` (without bound for the root); returns its index.
fn fill_trickle(
    nodes: &mut Vec<TreeNode>,
    next: &mut usize,
    total: usize,
    max_depth: Option<u32>,
    profile: &Profile,
) -> usize {
    let mut children = Vec::new();
    while children.len() < profile.max_links && *next < total {
        children.push(*next);
        *next += 1;
    }
    let mut depth = 1;
    while max_depth.is_none_or(|m| depth < m) && *next < total {
        for _ in 0..crate::importer::trickle::LAYER_REPEAT {
            if *next >= total {
                break;
            }
            children.push(fill_trickle(nodes, next, total, Some(depth), profile));
        }
        depth += 1;
    }
    let links: Vec<Link> =
        children.iter().map(|&i| Link { cid: nodes[i].cid, name: Vec::new(), tsize: nodes[i].tsize }).collect();
    let sizes: Vec<u64> = children.iter().map(|&i| nodes[i].file_bytes).collect();
    let total_bytes: u64 = sizes.iter().sum();
    let bytes = dagpb::encode(&links, Some(&unixfs::file_node_data(total_bytes, &sizes)));
    let tsize = bytes.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>();
    let block = Block::new(profile.cid_version, DAG_PB, bytes);
    nodes.push(TreeNode { cid: block.cid, tsize, file_bytes: total_bytes, block: Some(block), children });
    nodes.len() - 1
}

/// The nodes of a tree in CAR order: depth-first pre-order from `root`, each CID once.
pub fn car_order(nodes: &[TreeNode], root: usize) -> Vec<usize> {
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    let mut stack = vec![root];
    while let Some(i) = stack.pop() {
        if !seen.insert(nodes[i].cid) {
            continue;
        }
        order.push(i);
        stack.extend(nodes[i].children.iter().rev());
    }
    order
}

/// The leaf block of `chunk` under `profile`: a raw block, or a UnixFS File (balanced) or Raw
/// (trickle) node.
fn leaf_block(chunk: &[u8], profile: &Profile) -> Block {
    if profile.raw_leaves {
        Block::new(CidVersion::V1, crate::block::RAW, chunk.to_vec())
    } else if profile.layout == Layout::Trickle {
        Block::new(profile.cid_version, DAG_PB, crate::importer::trickle::leaf(chunk))
    } else {
        Block::new(profile.cid_version, DAG_PB, unixfs::file_leaf(chunk))
    }
}

/// Builds the UnixFS file DAG of `data` under `profile` (its layout: balanced or trickle).
pub fn file_dag(data: &[u8], profile: &Profile) -> Dag {
    let mut leaves: Vec<(Block, u64)> =
        data.chunks(profile.chunk_size).map(|c| (leaf_block(c, profile), c.len() as u64)).collect();
    let tree = match profile.layout {
        Layout::Balanced => balanced_tree,
        Layout::Trickle => trickle_tree,
    };
    if leaves.is_empty() && profile.layout == Layout::Balanced {
        // A balanced empty file is one empty leaf; a trickle one, a File node without links.
        leaves.push((leaf_block(&[], profile), 0));
    }
    let (nodes, root) = tree(leaves.iter().map(|(b, n)| (b.cid, b.data.len() as u64, *n)), profile);
    let blocks = car_order(&nodes, root)
        .into_iter()
        .map(|i| nodes[i].block.clone().unwrap_or_else(|| leaves[i].0.clone()))
        .collect();
    Dag { root: nodes[root].cid, tsize: nodes[root].tsize, blocks }
}

/// Builds the DAG of an input tree (files read whole into memory): files as [`file_dag`],
/// symlinks, folders basic or HAMT-sharded by boxo's rule on their actual links. Blocks in
/// `ipfs dag export` order. The reference the streaming importer is tested against.
pub fn tree_dag(entry: &Entry, profile: &Profile) -> Result<Dag, ImportError> {
    let mut blocks = Vec::new();
    let (root, tsize) = tree_blocks(entry, profile, &mut blocks)?;
    // The pre-order listing with repeats dropped is the walk that visits each CID once: a
    // repeated node's subtree was listed, whole, at its first occurrence.
    let mut seen = HashSet::new();
    blocks.retain(|b| seen.insert(b.cid));
    Ok(Dag { root, tsize, blocks })
}

/// Appends the blocks of `entry`'s DAG in depth-first pre-order (repeats kept); returns its
/// root CID and Tsize.
fn tree_blocks(entry: &Entry, profile: &Profile, out: &mut Vec<Block>) -> Result<(Cid, u64), ImportError> {
    let read = |path: &std::path::Path, offset: u64, len: u64| -> Result<Vec<u8>, ImportError> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(path).map_err(|e| ImportError::io(path, e))?;
        f.seek(SeekFrom::Start(offset)).map_err(|e| ImportError::io(path, e))?;
        let mut data = Vec::new();
        f.take(len).read_to_end(&mut data).map_err(|e| ImportError::io(path, e))?;
        Ok(data)
    };
    let (data, path) = match entry {
        Entry::File { path, size, .. } => (read(path, 0, *size)?, path),
        Entry::FileRange { path, offset, len, .. } => (read(path, *offset, *len)?, path),
        Entry::Symlink { target, .. } => {
            let block = Block::new(profile.cid_version, DAG_PB, dagpb::encode(&[], Some(&unixfs::symlink(target))));
            let r = (block.cid, block.data.len() as u64);
            out.push(block);
            return Ok(r);
        }
        Entry::Dir { path, folder } => return dir_blocks(path, folder, profile, out),
    };
    if data.len() as u64 != entry.totals().1 {
        return Err(ImportError::Changed {
            path: path.clone(),
            expected: entry.totals().1,
            found: format!("{} bytes", data.len()),
        });
    }
    let dag = file_dag(&data, profile);
    out.extend(dag.blocks);
    Ok((dag.root, dag.tsize))
}

/// Appends the blocks of the DAG of the folder at `path` (see [`tree_blocks`]).
fn dir_blocks(
    path: &std::path::Path,
    folder: &Folder,
    profile: &Profile,
    out: &mut Vec<Block>,
) -> Result<(Cid, u64), ImportError> {
    use std::os::unix::ffi::OsStrExt;
    let mut links = Vec::with_capacity(folder.len());
    let mut below = Vec::with_capacity(folder.len());
    for (name, child) in folder.iter() {
        let child_path = path.join(std::ffi::OsStr::from_bytes(name));
        let mut blocks = Vec::new();
        let (cid, tsize) = match child {
            Child::File(size) => {
                tree_blocks(&Entry::File { path: child_path, size, expect: None }, profile, &mut blocks)?
            }
            Child::Symlink(target) => {
                tree_blocks(&Entry::Symlink { path: child_path, target: target.to_vec() }, profile, &mut blocks)?
            }
            Child::Dir(sub) => dir_blocks(&child_path, sub, profile, &mut blocks)?,
        };
        links.push(Link { cid, name: name.to_vec(), tsize });
        below.push(blocks);
    }
    dagpb::sort_links(&mut links);
    let sizes = links.iter().map(|l| (l.name.len(), l.cid.encoded_len(), l.tsize));
    if hamt::exceeds(profile.hamt_estimation, profile.hamt_threshold, sizes) {
        let shard = hamt::Shard::build(links.iter().map(|l| l.name.as_slice()), profile.hamt_fanout)
            .map_err(|source| ImportError::Hamt { path: path.to_path_buf(), source })?;
        return Ok(shard_blocks(&shard, &links, &below, profile, out));
    }
    let block = Block::new(profile.cid_version, DAG_PB, dagpb::encode(&links, Some(&unixfs::directory())));
    let r = (block.cid, block.data.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>());
    out.push(block);
    out.extend(below.into_iter().flatten());
    Ok(r)
}

/// Appends a HAMT shard's block and then, slot by slot, its entries' blocks (`below`, by entry)
/// and its sub-shards; returns its CID and Tsize.
fn shard_blocks(
    shard: &hamt::Shard,
    entries: &[Link],
    below: &[Vec<Block>],
    profile: &Profile,
    out: &mut Vec<Block>,
) -> (Cid, u64) {
    let fanout = profile.hamt_fanout;
    let mut links = Vec::with_capacity(shard.slots.len());
    let mut inner = Vec::new();
    for s in &shard.slots {
        match &s.child {
            hamt::Child::Value(i) => {
                let e = &entries[*i];
                links.push(Link { cid: e.cid, name: hamt::link_name(s.index, fanout, &e.name), tsize: e.tsize });
                inner.extend(below[*i].iter().cloned());
            }
            hamt::Child::Shard(sub) => {
                let (cid, tsize) = shard_blocks(sub, entries, below, profile, &mut inner);
                links.push(Link { cid, name: hamt::link_name(s.index, fanout, b""), tsize });
            }
        }
    }
    let data = hamt::shard_data(&shard.bitfield(fanout), fanout);
    let block = Block::new(profile.cid_version, DAG_PB, dagpb::encode(&links, Some(&data)));
    let r = (block.cid, block.data.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>());
    out.push(block);
    out.append(&mut inner);
    r
}

/// Serialises a DAG as a CARv1 byte vector (header, then its blocks in order).
pub fn car_bytes(dag: &Dag) -> Vec<u8> {
    let mut out = crate::car::header(&dag.root);
    for b in &dag.blocks {
        out.extend_from_slice(&crate::car::section_prefix(&b.cid, b.data.len()));
        out.extend_from_slice(&b.data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v0() -> Profile {
        Profile::default()
    }

    #[test]
    fn powergate_vectors() {
        for (n, cid, car) in [
            (100, "QmY6zHswPvyZkAyxwM9uup1DDPb67hZqChv8hnyu4MrFWk", 201),
            (1000, "QmQRAjpSLWziADGz8p5ezxTguFNn18yYbSnduKqMrbJ93c", 1104),
            (10000, "QmRP8TCp9bthhzLACAao6mh8cfLypqXncdNbzuPtuqFYP7", 10104),
        ] {
            let d = file_dag(&vec![b'A'; n], &v0());
            assert_eq!(d.root.to_string(), cid);
            assert_eq!(car_bytes(&d).len(), car);
        }
    }

    #[test]
    fn foobar_size_2_chunks() {
        let p = Profile { chunk_size: 2, ..v0() };
        assert_eq!(file_dag(b"foobar\n", &p).root.to_string(), "QmRJHYTNvC3hmd9gJQARxLR1QMEincccBV53bBw524yyq6");
        let p1 = Profile { chunk_size: 2, cid_version: CidVersion::V1, raw_leaves: true, ..v0() };
        assert!(file_dag(b"foobar\n", &p1).root.to_string().starts_with("bafybeiakab"));
    }

    #[test]
    fn empty_file_both_profiles() {
        assert_eq!(file_dag(b"", &v0()).root.to_string(), "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH");
        let p1 = Profile { cid_version: CidVersion::V1, raw_leaves: true, ..v0() };
        assert_eq!(file_dag(b"", &p1).root.to_string(), "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
        let p2 = Profile { cid_version: CidVersion::V1, raw_leaves: false, ..v0() };
        assert_eq!(file_dag(b"", &p2).root.to_string(), "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y");
    }

    #[test]
    fn repeated_chunks_are_stored_once() {
        let p = Profile { chunk_size: 4, ..v0() };
        let d = file_dag(&[0u8; 40], &p);
        // root + one distinct leaf
        assert_eq!(d.blocks.len(), 2);
    }
}
