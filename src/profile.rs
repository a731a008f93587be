//! The DAG-building profile: the `ipfs add` options that decide CIDs.

use crate::block::{CidVersion, DAG_PB, RAW};
use crate::unixfs::hamt::{self, Estimation};

/// Default chunk size (go-ipfs `size-262144`).
pub const DEFAULT_CHUNK_SIZE: usize = 262_144;
/// Default links per file node (go-unixfs `DefaultLinksPerBlock` = 8192/47).
pub const DEFAULT_MAX_LINKS: usize = 174;
/// Largest chunk size kubo accepts (`chunker.ChunkSizeLimit`, 2 MiB − 256).
pub const MAX_CHUNK_SIZE: usize = 2_096_896;

/// Options with kubo's meaning. [`Profile::default`] is Powergate's (= go-ipfs 0.8 `ipfs add`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    /// CID version of dag-pb nodes.
    pub cid_version: CidVersion,
    /// Store file chunks as raw blocks (CIDv1 raw) instead of UnixFS File leaves.
    pub raw_leaves: bool,
    /// Fixed chunk size in bytes.
    pub chunk_size: usize,
    /// Maximum links per internal file node.
    pub max_links: usize,
    /// Include dot-entries inside folders.
    pub hidden: bool,
    /// How a folder's size is estimated for the switch to a HAMT (kubo
    /// `Import.UnixFSHAMTDirectorySizeEstimation`); `disabled` (go-ipfs 0.8) never shards.
    #[serde(default, skip_serializing_if = "Estimation::is_disabled")]
    pub hamt_estimation: Estimation,
    /// A folder whose estimate is above this many bytes becomes a HAMT (0: never).
    #[serde(default = "hamt::default_threshold", skip_serializing_if = "hamt::is_default_threshold")]
    pub hamt_threshold: u64,
    /// Slots per HAMT shard, a power of two from 8 to 1024.
    #[serde(default = "hamt::default_fanout", skip_serializing_if = "hamt::is_default_fanout")]
    pub hamt_fanout: u32,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            cid_version: CidVersion::V0,
            raw_leaves: false,
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_links: DEFAULT_MAX_LINKS,
            hidden: false,
            hamt_estimation: Estimation::Disabled,
            hamt_threshold: hamt::DEFAULT_THRESHOLD,
            hamt_fanout: hamt::DEFAULT_FANOUT,
        }
    }
}

impl Profile {
    /// Codec of leaf blocks.
    pub fn leaf_codec(&self) -> u64 {
        if self.raw_leaves {
            RAW
        } else {
            DAG_PB
        }
    }

    /// Byte length of a leaf CID.
    pub fn leaf_cid_len(&self) -> usize {
        crate::block::cid_len(self.cid_version, self.leaf_codec())
    }

    /// Byte length of a dag-pb node CID.
    pub fn node_cid_len(&self) -> usize {
        crate::block::cid_len(self.cid_version, DAG_PB)
    }

    /// A short description, e.g. `cidv0, dag-pb leaves, size-262144, 174 links` (and, when
    /// folders shard, `, HAMT > 262144 by links, fanout 256`).
    pub fn describe(&self) -> String {
        let hamt = if self.hamt_estimation.is_disabled() {
            String::new()
        } else {
            format!(", HAMT > {} by {}, fanout {}", self.hamt_threshold, self.hamt_estimation.name(), self.hamt_fanout)
        };
        format!(
            "cidv{}, {} leaves, size-{}, {} links{}{hamt}",
            if self.cid_version == CidVersion::V0 { 0 } else { 1 },
            if self.raw_leaves { "raw" } else { "dag-pb" },
            self.chunk_size,
            self.max_links,
            if self.hidden { ", hidden" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow_serde_form_is_unchanged_and_hamt_fields_round_trip() {
        let pow = r#"{"cid_version":"V0","raw_leaves":false,"chunk_size":262144,"max_links":174,"hidden":false}"#;
        assert_eq!(serde_json::to_string(&Profile::default()).unwrap(), pow);
        assert_eq!(serde_json::from_str::<Profile>(pow).unwrap(), Profile::default());
        let sharded =
            Profile { hamt_estimation: Estimation::Block, hamt_threshold: 1000, hamt_fanout: 16, ..Profile::default() };
        let json = serde_json::to_string(&sharded).unwrap();
        assert!(json.ends_with(r#""hamt_estimation":"block","hamt_threshold":1000,"hamt_fanout":16}"#), "{json}");
        assert_eq!(serde_json::from_str::<Profile>(&json).unwrap(), sharded);
        assert_eq!(sharded.describe(), "cidv0, dag-pb leaves, size-262144, 174 links, HAMT > 1000 by block, fanout 16");
        assert_eq!(Profile::default().describe(), "cidv0, dag-pb leaves, size-262144, 174 links");
    }
}
