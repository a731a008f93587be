//! Published kubo / gateway-conformance fixture CARs, rebuilt byte for byte from their content.
//!
//! Not rebuilt, because its profile is outside what carload builds: `t0114-gateway-subdomains`
//! (sha2-512 and identity CIDs). `gwc-hamt` (HAMT-sharded folders) is rebuilt in `hamt.rs`.

use crate::common;

use carload::block::{verify, CidVersion, RAW};
use carload::car::BlockReader;
use carload::dagpb;
use carload::profile::Profile;
use carload::unixfs;
use cid::Cid;
use std::collections::HashMap;
use std::path::Path;

type Blocks = HashMap<Cid, Vec<u8>>;

fn read_car(path: &str) -> (Cid, Vec<u8>, Blocks) {
    let bytes = std::fs::read(path).unwrap();
    let (header, mut r) = BlockReader::new(&bytes[..]).unwrap();
    let mut blocks = HashMap::new();
    while let Some((cid, data)) = r.next_block().unwrap() {
        assert!(verify(&cid, &data), "{path}: block {cid} does not match its CID");
        blocks.insert(cid, data);
    }
    (header.roots[0], bytes, blocks)
}

/// What the DAG tells us about the profile it was built with.
#[derive(Default)]
struct Seen {
    raw_leaves: bool,
    chunk: usize,
}

fn file_bytes(cid: &Cid, blocks: &Blocks, seen: &mut Seen, leaf: bool) -> Vec<u8> {
    let data = &blocks[cid];
    if cid.codec() == RAW {
        seen.raw_leaves = true;
        return data.clone();
    }
    let node = dagpb::decode(data).unwrap();
    let fs = unixfs::decode(node.data.as_deref().unwrap()).unwrap();
    if node.links.is_empty() {
        let chunk = fs.data.clone().unwrap_or_default();
        return chunk;
    }
    let _ = leaf;
    let mut out = Vec::new();
    for l in &node.links {
        let part = file_bytes(&l.cid, blocks, seen, true);
        seen.chunk = seen.chunk.max(part.len());
        out.extend(part);
    }
    out
}

/// Writes the UnixFS tree under `cid` to `path`.
fn extract(cid: &Cid, blocks: &Blocks, path: &Path, seen: &mut Seen) {
    if cid.codec() == RAW {
        std::fs::write(path, file_bytes(cid, blocks, seen, false)).unwrap();
        return;
    }
    let node = dagpb::decode(&blocks[cid]).unwrap();
    let fs = unixfs::decode(node.data.as_deref().unwrap()).unwrap();
    match fs.kind {
        1 => {
            std::fs::create_dir(path).unwrap();
            for l in &node.links {
                let name = std::str::from_utf8(&l.name).unwrap();
                extract(&l.cid, blocks, &path.join(name), seen);
            }
        }
        2 => std::fs::write(path, file_bytes(cid, blocks, seen, false)).unwrap(),
        4 => std::os::unix::fs::symlink(std::str::from_utf8(fs.data.as_deref().unwrap()).unwrap(), path).unwrap(),
        k => panic!("unsupported UnixFS type {k}"),
    }
}

fn rebuild(fixture: &str) {
    let (root, bytes, blocks) = read_car(fixture);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("content");
    let mut seen = Seen::default();
    extract(&root, &blocks, &target, &mut seen);
    let profile = Profile {
        cid_version: if root.version() == cid::Version::V0 { CidVersion::V0 } else { CidVersion::V1 },
        raw_leaves: seen.raw_leaves,
        chunk_size: if seen.chunk > 0 { seen.chunk } else { 262_144 },
        hidden: true,
        ..Profile::default()
    };
    let (built, rebuilt) = common::import(&target, &profile);
    assert_eq!(built.root, root, "{fixture}: root");
    assert_eq!(rebuilt, bytes, "{fixture}: CAR bytes");
}

#[test]
fn t0400_echo_testing() {
    rebuild("tests/vectors/unixfs/t0400-api-no-gateway.car");
}

#[test]
fn t0115_dir_listing() {
    rebuild("tests/vectors/unixfs/t0115-gateway-dir-listing.car");
}

#[test]
fn t0116_gateway_cache() {
    rebuild("tests/vectors/unixfs/t0116-gateway-cache.car");
}

#[test]
fn dir_with_duplicate_files() {
    rebuild("tests/vectors/unixfs/gwc-dir-with-duplicate-files.car");
}
