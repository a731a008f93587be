//! A simple in-memory balanced file importer. It is the executable specification that the
//! streaming importer is tested against, and it builds small DAGs held in memory (such as the
//! aggregate manifest).

use crate::block::{Block, CidVersion, DAG_PB};
use crate::dagpb::{self, Link};
use crate::profile::Profile;
use crate::unixfs;
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

struct Node {
    block: Block,
    tsize: u64,
    file_bytes: u64,
    children: Vec<usize>,
}

/// Builds the balanced UnixFS file DAG of `data` under `profile`.
pub fn file_dag(data: &[u8], profile: &Profile) -> Dag {
    let mut nodes: Vec<Node> = Vec::new();
    let leaf = |chunk: &[u8]| -> Node {
        let block = if profile.raw_leaves {
            Block::new(CidVersion::V1, crate::block::RAW, chunk.to_vec())
        } else {
            Block::new(profile.cid_version, DAG_PB, unixfs::file_leaf(chunk))
        };
        Node { tsize: block.data.len() as u64, file_bytes: chunk.len() as u64, block, children: vec![] }
    };
    let mut level: Vec<usize> = Vec::new();
    if data.is_empty() {
        nodes.push(leaf(&[]));
        level.push(0);
    }
    for chunk in data.chunks(profile.chunk_size) {
        nodes.push(leaf(chunk));
        level.push(nodes.len() - 1);
    }
    while level.len() > 1 {
        let mut next = Vec::new();
        for group in level.chunks(profile.max_links) {
            let links: Vec<Link> = group
                .iter()
                .map(|&i| Link { cid: nodes[i].block.cid, name: Vec::new(), tsize: nodes[i].tsize })
                .collect();
            let sizes: Vec<u64> = group.iter().map(|&i| nodes[i].file_bytes).collect();
            let total: u64 = sizes.iter().sum();
            let bytes = dagpb::encode(&links, Some(&unixfs::file_node_data(total, &sizes)));
            let tsize = bytes.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>();
            let block = Block::new(profile.cid_version, DAG_PB, bytes);
            nodes.push(Node { block, tsize, file_bytes: total, children: group.to_vec() });
            next.push(nodes.len() - 1);
        }
        level = next;
    }
    let root = level[0];
    let mut seen = HashSet::new();
    let mut blocks = Vec::new();
    let mut stack = vec![root];
    while let Some(i) = stack.pop() {
        if !seen.insert(nodes[i].block.cid) {
            continue;
        }
        blocks.push(nodes[i].block.clone());
        stack.extend(nodes[i].children.iter().rev());
    }
    Dag { root: nodes[root].block.cid, tsize: nodes[root].tsize, blocks }
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
