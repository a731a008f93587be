//! A folder's entries as extract reads them: the links of a basic folder, or the entries of a
//! HAMT-sharded folder shard by shard ([`crate::nodeview::hamt`]). Each entry's name is checked
//! as one safe path component, and each entry of a sharded folder where its name's hash puts it
//! (so a sharded folder yields no name twice); each sub-shard is checked when it is opened
//! ([`open_shard`]: a valid HAMT shard of its parent's fanout).

use super::{bad_node, safe_name, CarIndex, ExtractError};
use crate::block::{DAG_PB, RAW};
use crate::nodeview::hamt::{self, Position};
use crate::nodeview::{next_link, unixfs_node, Kind, NodeError};
use cid::Cid;
use std::ffi::OsStr;

/// One folder node being read: a basic folder, or one shard of a sharded folder at its place.
pub(crate) struct FolderNode {
    /// Its CID.
    pub cid: Cid,
    /// Its block.
    pub block: Vec<u8>,
    /// The next link.
    at: usize,
    /// A shard's place (`None`: a basic folder).
    pub shard: Option<Position>,
    /// Entries linked from this node itself (a shard's sub-shards not counted).
    pub entries: u64,
}

/// What a folder node's next link is.
pub(crate) enum Item<'a> {
    /// An entry: its name (one safe path component) and its node.
    Entry(&'a OsStr, Cid),
    /// A sub-shard of a sharded folder, and its place.
    SubShard(Cid, Position),
}

impl FolderNode {
    /// A basic folder (its names already checked by the caller) with `links` links.
    pub fn basic(cid: Cid, block: Vec<u8>, links: usize) -> FolderNode {
        FolderNode { cid, block, at: 0, shard: None, entries: links as u64 }
    }

    /// The root shard of a sharded folder (its block checked by the caller as a shard with
    /// `bits` bits a level and `entries` entries).
    pub fn root_shard(cid: Cid, block: Vec<u8>, bits: u32, entries: usize) -> FolderNode {
        FolderNode { cid, block, at: 0, shard: Some(Position::root(bits)), entries: entries as u64 }
    }

    /// The next item, checked; `None` after the last.
    pub fn next(&mut self) -> Option<Result<Item<'_>, ExtractError>> {
        let cid = self.cid;
        let link = match next_link(&self.block, &mut self.at)? {
            Ok(link) => link,
            Err(e) => return Some(Err(bad_node(&cid)(e))),
        };
        let Some(pos) = self.shard else {
            return Some(safe_name(link.name).map(|name| Item::Entry(name, link.cid)));
        };
        let link = hamt::shard_link(link, pos.bits());
        Some(match link.name {
            None => pos.child(link.slot).map(|p| Item::SubShard(link.cid, p)).map_err(bad_node(&cid)),
            Some(name) => pos
                .check_entry(link.slot, name)
                .map_err(bad_node(&cid))
                .and_then(|()| safe_name(name))
                .map(|name| Item::Entry(name, link.cid)),
        })
    }
}

/// Opens the sub-shard `cid` at `pos`, linked from the shard `parent`: a HAMT shard, valid alone,
/// with its parent's fanout.
pub(crate) fn open_shard(car: &CarIndex, cid: &Cid, pos: Position, parent: &Cid) -> Result<FolderNode, ExtractError> {
    let not_a_shard = |kind: String| {
        let source = NodeError::HamtSubShardKind { slot: pos.path(), child: cid.to_string(), kind };
        ExtractError::Node { cid: *parent, source: Box::new(source) }
    };
    match cid.codec() {
        DAG_PB => {}
        RAW => return Err(not_a_shard("file".into())),
        c => return Err(not_a_shard(format!("block of codec 0x{c:x}"))),
    }
    let block = car.block(cid)?;
    let node = unixfs_node(&block).map_err(bad_node(cid))?;
    if node.kind() != Kind::HamtShard {
        return Err(not_a_shard(node.kind().describe()));
    }
    let shard = hamt::shard(&node).map_err(bad_node(cid))?;
    pos.check_bits(shard.bits).map_err(bad_node(cid))?;
    let entries = shard.entries as u64;
    Ok(FolderNode { cid: *cid, block, at: 0, shard: Some(pos), entries })
}
