//! The DAG-building profile: the `ipfs add` options that decide CIDs.

use crate::block::{CidVersion, DAG_PB, RAW};
use crate::unixfs::hamt::{self, Estimation};

/// Default chunk size (go-ipfs `size-262144`).
pub const DEFAULT_CHUNK_SIZE: usize = 262_144;
/// Default links per file node (go-unixfs `DefaultLinksPerBlock` = 8192/47).
pub const DEFAULT_MAX_LINKS: usize = 174;
/// Most links per file node a profile may ask for (`--max-links`, shipment files).
pub const MAX_LINKS: usize = 1 << 20;
/// Largest chunk size kubo accepts (`chunker.ChunkSizeLimit`, 2 MiB − 256).
pub const MAX_CHUNK_SIZE: usize = 2_096_896;

/// How a file's chunks are arranged under its root (kubo `--trickle`, `Import.UnixFSDAGLayout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// A left-packed complete `max_links`-ary tree, all leaves at one depth (kubo's default).
    #[default]
    Balanced,
    /// boxo's trickle DAG (leaves first, then repeated deeper subtrees; for streaming appends).
    Trickle,
}

impl Layout {
    /// The name kubo gives it (`balanced`, `trickle`).
    pub fn name(self) -> &'static str {
        match self {
            Layout::Balanced => "balanced",
            Layout::Trickle => "trickle",
        }
    }

    fn is_balanced(&self) -> bool {
        *self == Layout::Balanced
    }
}

/// Options with kubo's meaning. [`Profile::default`] is Powergate's (= go-ipfs 0.8 `ipfs add`).
/// Fields added after the first shipment format are skipped when they hold their default, so a
/// `pow` profile serializes (and fingerprints) as it always did; unknown fields are refused, so
/// this carload never builds a profile with an option it does not know (older ones ignored them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// File layout (absent in the shipment file when balanced).
    #[serde(default, skip_serializing_if = "Layout::is_balanced")]
    pub layout: Layout,
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
            layout: Layout::Balanced,
            hamt_estimation: Estimation::Disabled,
            hamt_threshold: hamt::DEFAULT_THRESHOLD,
            hamt_fanout: hamt::DEFAULT_FANOUT,
        }
    }
}

/// The named profiles of `--profile`: Powergate's and kubo's IPIP-499 ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preset {
    /// Powergate / go-ipfs 0.8 (carload's default): CIDv0, dag-pb leaves, 256 KiB, 174 links, no HAMT.
    #[default]
    Pow,
    /// kubo's `unixfs-v0-2015` (its CIDv0 default): CIDv0, dag-pb leaves, 256 KiB, 174 links,
    /// HAMT folders above 256 KiB by links.
    UnixfsV0_2015,
    /// kubo's `unixfs-v1-2025`: CIDv1, raw leaves, 1 MiB chunks, 1024 links, HAMT folders above
    /// 256 KiB by block size.
    UnixfsV1_2025,
}

/// The individual options given beside a preset; each one given replaces the preset's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Knobs {
    /// `--cid-version`.
    pub cid_version: Option<CidVersion>,
    /// `--raw-leaves`.
    pub raw_leaves: Option<bool>,
    /// `--chunker size-N`.
    pub chunk_size: Option<usize>,
    /// `--max-links` (kubo `--max-file-links`).
    pub max_links: Option<usize>,
    /// `--layout` (kubo `--trickle`).
    pub layout: Option<Layout>,
    /// `--hamt-threshold` (kubo `Import.UnixFSHAMTDirectorySizeThreshold`).
    pub hamt_threshold: Option<u64>,
    /// `--hamt-estimation` (kubo `Import.UnixFSHAMTDirectorySizeEstimation`).
    pub hamt_estimation: Option<Estimation>,
    /// `--hamt-fanout` (kubo `Import.UnixFSHAMTDirectoryMaxFanout`).
    pub hamt_fanout: Option<u32>,
    /// `--hidden`.
    pub hidden: bool,
}

impl Preset {
    /// Every preset, in the order `--help` lists them.
    pub const ALL: [Preset; 3] = [Preset::Pow, Preset::UnixfsV0_2015, Preset::UnixfsV1_2025];

    /// The name `--profile` takes.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Pow => "pow",
            Preset::UnixfsV0_2015 => "unixfs-v0-2015",
            Preset::UnixfsV1_2025 => "unixfs-v1-2025",
        }
    }

    /// The preset named `name`.
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The preset's profile.
    pub fn profile(self) -> Profile {
        self.with(&Knobs::default())
    }

    /// The preset's profile with the knobs given applied as kubo applies `ipfs add` flags over a
    /// config profile: a knob given wins; raw leaves not given follow the preset (kubo's profiles
    /// set `Import.UnixFSRawLeaves`), or for `pow` (no config) the CID version (on for CIDv1).
    pub fn with(self, k: &Knobs) -> Profile {
        // HAMT folders: pow never shards (go-ipfs 0.8); kubo's profiles shard above 256 KiB,
        // fanout 256, estimated by links (v0-2015) or by block size (v1-2025).
        let mut p = match self {
            Preset::Pow => Profile::default(),
            Preset::UnixfsV0_2015 => Profile { hamt_estimation: Estimation::Links, ..Profile::default() },
            Preset::UnixfsV1_2025 => Profile {
                cid_version: CidVersion::V1,
                raw_leaves: true,
                chunk_size: 1 << 20,
                max_links: 1024,
                hamt_estimation: Estimation::Block,
                ..Profile::default()
            },
        };
        p.cid_version = k.cid_version.unwrap_or(p.cid_version);
        let preset_raw = if self == Preset::Pow { p.cid_version == CidVersion::V1 } else { p.raw_leaves };
        p.raw_leaves = k.raw_leaves.unwrap_or(preset_raw);
        p.chunk_size = k.chunk_size.unwrap_or(p.chunk_size);
        p.max_links = k.max_links.unwrap_or(p.max_links);
        p.layout = k.layout.unwrap_or(p.layout);
        p.hamt_threshold = k.hamt_threshold.unwrap_or(p.hamt_threshold);
        p.hamt_estimation = k.hamt_estimation.unwrap_or(p.hamt_estimation);
        p.hamt_fanout = k.hamt_fanout.unwrap_or(p.hamt_fanout);
        p.hidden = k.hidden;
        p
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

    /// A short description, e.g. `cidv0, dag-pb leaves, size-262144, 174 links` (`, trickle` for
    /// the trickle layout; `, HAMT > 262144 by links, fanout 256` when folders shard).
    pub fn describe(&self) -> String {
        let hamt = if self.hamt_estimation.is_disabled() {
            String::new()
        } else {
            format!(", HAMT > {} by {}, fanout {}", self.hamt_threshold, self.hamt_estimation.name(), self.hamt_fanout)
        };
        format!(
            "cidv{}, {} leaves, size-{}, {} links{}{}{hamt}",
            if self.cid_version == CidVersion::V0 { 0 } else { 1 },
            if self.raw_leaves { "raw" } else { "dag-pb" },
            self.chunk_size,
            self.max_links,
            if self.layout == Layout::Trickle { ", trickle" } else { "" },
            if self.hidden { ", hidden" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_kubos() {
        assert_eq!(Preset::Pow.profile(), Profile::default());
        let v0 = Preset::UnixfsV0_2015.profile();
        assert_eq!((v0.cid_version, v0.raw_leaves, v0.chunk_size, v0.max_links), (CidVersion::V0, false, 262_144, 174));
        let v1 = Preset::UnixfsV1_2025.profile();
        assert_eq!((v1.cid_version, v1.raw_leaves, v1.chunk_size, v1.max_links), (CidVersion::V1, true, 1 << 20, 1024));
        assert_eq!(v1.layout, Layout::Balanced);
        let hamt = |p: Profile| (p.hamt_estimation, p.hamt_threshold, p.hamt_fanout);
        assert_eq!(hamt(Preset::Pow.profile()), (Estimation::Disabled, 262_144, 256));
        assert_eq!(hamt(v0), (Estimation::Links, 262_144, 256));
        assert_eq!(hamt(v1), (Estimation::Block, 262_144, 256));
        for p in Preset::ALL {
            assert_eq!(Preset::from_name(p.name()), Some(p));
        }
        assert_eq!(Preset::from_name("kubo"), None);
    }

    #[test]
    fn knobs_given_replace_the_presets_values() {
        let k = |cid_version, raw_leaves| Knobs { cid_version, raw_leaves, ..Knobs::default() };
        // pow has no config: CIDv1 turns raw leaves on unless they are given.
        assert!(Preset::Pow.with(&k(Some(CidVersion::V1), None)).raw_leaves);
        assert!(!Preset::Pow.with(&k(Some(CidVersion::V1), Some(false))).raw_leaves);
        // kubo's profiles set raw leaves in the config: the CID version alone does not change them.
        let p = Preset::UnixfsV1_2025.with(&k(Some(CidVersion::V0), None));
        assert_eq!((p.cid_version, p.raw_leaves), (CidVersion::V0, true));
        assert!(!Preset::UnixfsV0_2015.with(&k(Some(CidVersion::V1), None)).raw_leaves);
        let all = Knobs {
            chunk_size: Some(1000),
            max_links: Some(7),
            layout: Some(Layout::Trickle),
            hidden: true,
            ..Knobs::default()
        };
        let p = Preset::UnixfsV1_2025.with(&all);
        assert_eq!((p.chunk_size, p.max_links, p.layout, p.hidden), (1000, 7, Layout::Trickle, true));
        assert_eq!(
            p.describe(),
            "cidv1, raw leaves, size-1000, 7 links, trickle, hidden, HAMT > 262144 by block, fanout 256"
        );
    }

    #[test]
    fn a_balanced_profile_serializes_as_before_and_unknown_fields_are_refused() {
        let pow = r#"{"cid_version":"V0","raw_leaves":false,"chunk_size":262144,"max_links":174,"hidden":false}"#;
        assert_eq!(serde_json::to_string(&Profile::default()).unwrap(), pow);
        assert_eq!(serde_json::from_str::<Profile>(pow).unwrap(), Profile::default());
        let trickle = Profile { layout: Layout::Trickle, ..Profile::default() };
        let json = serde_json::to_string(&trickle).unwrap();
        assert!(json.ends_with(r#","layout":"trickle"}"#), "{json}");
        assert_eq!(serde_json::from_str::<Profile>(&json).unwrap(), trickle);
        let unknown = pow.replace('}', r#","future_knob":1}"#);
        assert!(serde_json::from_str::<Profile>(&unknown).unwrap_err().to_string().contains("future_knob"));
    }

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
