//! The command-line options both edges take: the DAG profile ([`ProfileArgs`]) and the planning
//! options ([`PlanOptionArgs`]: sector, piece sizes, margin, packing, profile), flattened into
//! `carload plan` and `carload tui` alike and turned into the library's `PlanOptions` by one
//! function; the size parsers behind them.

use carload::block::CidVersion;
use carload::profile::{Knobs, Layout, Preset, Profile, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MAX_LINKS};
use carload::shipment::plan::{check_sector, Pack, PlanError, PlanOptions, SECTOR_32GIB};
use carload::shipment::size::parse_size;
use carload::unixfs::hamt::{self, Estimation};
use clap::{Args, ValueEnum};

/// Parses a size argument (`32GiB`, `1MiB`, bytes).
pub fn size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

/// Parses a sector size: `32GiB` or `64GiB` (checked by the library's [`check_sector`]).
pub fn sector_arg(s: &str) -> Result<u64, String> {
    parse_size(s)
        .ok()
        .and_then(|n| check_sector(n).ok())
        .ok_or_else(|| format!("unsupported sector size {s:?} (use 32GiB or 64GiB)"))
}

/// Packing modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PackArg {
    /// Best-fit decreasing on predicted sizes (fullest pieces).
    BestFit,
    /// Keep the files of one folder together where they fit.
    KeepFolders,
}

impl From<PackArg> for Pack {
    fn from(p: PackArg) -> Pack {
        match p {
            PackArg::BestFit => Pack::BestFit,
            PackArg::KeepFolders => Pack::KeepFolders,
        }
    }
}

/// The named profiles `--profile` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    /// Powergate / go-ipfs 0.8 (the default): CIDv0, dag-pb leaves, size-262144, 174 links.
    Pow,
    /// kubo's CIDv0 default (IPIP-499): CIDv0, dag-pb leaves, size-262144, 174 links.
    #[value(name = "unixfs-v0-2015")]
    UnixfsV0_2015,
    /// kubo's modern profile (IPIP-499): CIDv1, raw leaves, size-1048576, 1024 links.
    #[value(name = "unixfs-v1-2025")]
    UnixfsV1_2025,
}

impl From<PresetArg> for Preset {
    fn from(p: PresetArg) -> Preset {
        match p {
            PresetArg::Pow => Preset::Pow,
            PresetArg::UnixfsV0_2015 => Preset::UnixfsV0_2015,
            PresetArg::UnixfsV1_2025 => Preset::UnixfsV1_2025,
        }
    }
}

/// File layouts `--layout` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    /// All leaves at one depth under full `--max-links`-wide nodes (kubo's default).
    Balanced,
    /// kubo's `--trickle` DAG.
    Trickle,
}

impl From<LayoutArg> for Layout {
    fn from(l: LayoutArg) -> Layout {
        match l {
            LayoutArg::Balanced => Layout::Balanced,
            LayoutArg::Trickle => Layout::Trickle,
        }
    }
}

/// HAMT size estimations `--hamt-estimation` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EstimationArg {
    /// Σ (name length + CID length) over the folder's links (kubo's default; unixfs-v0-2015).
    Links,
    /// The length of the folder's dag-pb block (unixfs-v1-2025).
    Block,
    /// Never shard (go-ipfs 0.8, Powergate).
    Disabled,
}

impl From<EstimationArg> for Estimation {
    fn from(e: EstimationArg) -> Estimation {
        match e {
            EstimationArg::Links => Estimation::Links,
            EstimationArg::Block => Estimation::Block,
            EstimationArg::Disabled => Estimation::Disabled,
        }
    }
}

/// Options shared by commands that build a DAG: a named profile and the individual options,
/// each of which, when given, replaces the profile's value (as `ipfs add` flags replace kubo's
/// config profile).
#[derive(Args, Debug, Clone)]
pub struct ProfileArgs {
    /// DAG profile: pow (Powergate, go-ipfs 0.8; the default), or kubo's unixfs-v0-2015 or
    /// unixfs-v1-2025.
    #[arg(long, value_enum, value_name = "NAME")]
    pub profile: Option<PresetArg>,
    /// CID version of the DAG (default: the profile's; 0 for pow).
    #[arg(long, value_name = "0|1", value_parser = parse_cid_version)]
    pub cid_version: Option<u8>,
    /// Store file chunks as raw blocks (default: the profile's; for pow on with --cid-version 1).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub raw_leaves: Option<bool>,
    /// Chunker, as kubo names it: size-<bytes> (default: the profile's; rabin/buzhash are not supported).
    #[arg(long, value_name = "size-N", value_parser = parse_chunker)]
    pub chunker: Option<usize>,
    /// Most links per file node (kubo --max-file-links; default: the profile's, 174 or 1024).
    #[arg(long, visible_alias = "max-file-links", value_name = "N", value_parser = parse_max_links)]
    pub max_links: Option<usize>,
    /// File layout: balanced or trickle (kubo --trickle; default: balanced).
    #[arg(long, value_enum, value_name = "LAYOUT")]
    pub layout: Option<LayoutArg>,
    /// Shard a folder into a HAMT when its estimated size is above BYTES (kubo
    /// Import.UnixFSHAMTDirectorySizeThreshold; default: the profile's, 262144).
    #[arg(long, value_name = "BYTES", value_parser = parse_hamt_threshold)]
    pub hamt_threshold: Option<u64>,
    /// How a folder's size is estimated for the HAMT switch: links (Σ name + CID lengths), block
    /// (the folder block's length) or disabled (never shard); default: the profile's (pow: disabled).
    #[arg(long, value_enum, value_name = "HOW")]
    pub hamt_estimation: Option<EstimationArg>,
    /// Slots per HAMT shard, a power of two from 8 to 1024 (kubo Import.UnixFSHAMTDirectoryMaxFanout;
    /// default: the profile's, 256).
    #[arg(long, value_name = "N", value_parser = parse_hamt_fanout)]
    pub hamt_fanout: Option<u32>,
    /// Include dot-files and dot-folders inside folders (go-ipfs skips them).
    #[arg(long)]
    pub hidden: bool,
}

impl ProfileArgs {
    /// The profile these options describe.
    pub fn profile(&self) -> Profile {
        let knobs = Knobs {
            cid_version: self.cid_version.map(|v| if v == 1 { CidVersion::V1 } else { CidVersion::V0 }),
            raw_leaves: self.raw_leaves,
            chunk_size: self.chunker,
            max_links: self.max_links,
            layout: self.layout.map(Layout::from),
            hamt_threshold: self.hamt_threshold,
            hamt_estimation: self.hamt_estimation.map(Estimation::from),
            hamt_fanout: self.hamt_fanout,
            hidden: self.hidden,
        };
        self.profile.map_or(Preset::Pow, Preset::from).with(&knobs)
    }
}

fn parse_cid_version(s: &str) -> Result<u8, String> {
    match s {
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(format!("unsupported CID version {s:?} (use 0 or 1)")),
    }
}

fn parse_chunker(s: &str) -> Result<usize, String> {
    let n = s.strip_prefix("size-").ok_or_else(|| {
        format!("unsupported chunker {s:?}: only size-N is supported (e.g. size-{DEFAULT_CHUNK_SIZE})")
    })?;
    let n: usize = n.parse().map_err(|_| format!("chunker {s:?}: {n:?} is not a number"))?;
    if n == 0 || n > MAX_CHUNK_SIZE {
        return Err(format!("chunker {s:?}: size must be between 1 and {MAX_CHUNK_SIZE} bytes"));
    }
    Ok(n)
}

fn parse_hamt_threshold(s: &str) -> Result<u64, String> {
    s.parse::<u64>().map_err(|_| format!("HAMT threshold {s:?} is not a number of bytes"))
}

fn parse_hamt_fanout(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|_| format!("HAMT fanout {s:?} is not a number"))?;
    hamt::check_fanout(n).map_err(|e| e.to_string())?;
    Ok(n)
}

fn parse_max_links(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (2..=MAX_LINKS).contains(&n) => Ok(n),
        _ => Err(format!("max links {s:?}: must be a number between 2 and {MAX_LINKS}")),
    }
}

/// The planning options of `carload plan` and the workstation. The sizes not given come from
/// the config ([`crate::edge::config`]), else the planner's defaults, for both.
#[derive(Args, Debug, Clone)]
pub struct PlanOptionArgs {
    /// Sector size the pieces are for: 32GiB or 64GiB (default: the config's, else 32GiB).
    #[arg(long, value_name = "SIZE", value_parser = sector_arg)]
    pub sector: Option<u64>,
    /// Target padded piece size (power of two; default: the config's, else the sector size).
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    pub piece_size: Option<u64>,
    /// Smallest padded piece size a batch gets (default: the config's, else 1MiB, the Fil+ floor).
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    pub min_piece_size: Option<u64>,
    /// Bytes to keep free in every piece beyond the exact bound.
    #[arg(long, value_name = "BYTES", default_value = "0", value_parser = size_arg)]
    pub margin: u64,
    /// Packing: best-fit (fullest pieces) or keep-folders (a folder's files stay together).
    #[arg(long, value_enum, default_value = "best-fit")]
    pub pack: PackArg,
    /// DAG options.
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// Values a configuration supplies for the sizes not given on the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct SizeDefaults {
    /// Sector size (else 32 GiB).
    pub sector: Option<u64>,
    /// Target piece size (else the sector size).
    pub piece_size: Option<u64>,
    /// Smallest piece size (else 1 MiB).
    pub min_piece_size: Option<u64>,
}

impl PlanOptionArgs {
    /// The library's plan options: what was given, else `defaults`, else the planner's own; the
    /// sector size checked (the caller checks the whole with `plan::check_options`).
    pub fn options(&self, defaults: &SizeDefaults) -> Result<PlanOptions, PlanError> {
        let sector = check_sector(self.sector.or(defaults.sector).unwrap_or(SECTOR_32GIB))?;
        let mut o = PlanOptions::for_sector(sector, self.profile.profile());
        o.piece_size = self.piece_size.or(defaults.piece_size).unwrap_or(sector);
        o.min_piece_size = self.min_piece_size.or(defaults.min_piece_size).unwrap_or(o.min_piece_size);
        o.margin = self.margin;
        o.pack = self.pack.into();
        Ok(o)
    }

    /// The flags given here that `opened`'s options (an existing shipment's) override, each as
    /// `--flag VALUE (the shipment's: VALUE)`. A size counts when given; the other options when
    /// they differ from their defaults (clap cannot tell `--margin 0` from no `--margin`).
    pub fn overridden_by(&self, opened: &PlanOptions) -> Vec<String> {
        use carload::human::ibytes;
        let mut out = Vec::new();
        let mut size = |flag: &str, given: Option<u64>, theirs: u64| {
            if let Some(v) = given.filter(|&v| v != theirs) {
                out.push(format!("{flag} {} (the shipment's: {})", ibytes(v), ibytes(theirs)));
            }
        };
        size("--sector", self.sector, opened.sector_size);
        size("--piece-size", self.piece_size, opened.piece_size);
        size("--min-piece-size", self.min_piece_size, opened.min_piece_size);
        size("--margin", Some(self.margin).filter(|&m| m != 0), opened.margin);
        let pack: Pack = self.pack.into();
        if pack != Pack::BestFit && pack != opened.pack {
            out.push(format!("--pack {} (the shipment's: {})", pack_name(pack), pack_name(opened.pack)));
        }
        let mine = self.profile.profile();
        let theirs = &opened.profile;
        let given = &self.profile;
        if let Some(preset) = given.profile.filter(|_| mine != *theirs) {
            let name = Preset::from(preset).name();
            out.push(format!("--profile {name} (the shipment's: {})", theirs.describe()));
        }
        if given.cid_version.is_some() && mine.cid_version != theirs.cid_version {
            let v = |c| if c == CidVersion::V1 { 1 } else { 0 };
            out.push(format!("--cid-version {} (the shipment's: {})", v(mine.cid_version), v(theirs.cid_version)));
        }
        if given.raw_leaves.is_some() && mine.raw_leaves != theirs.raw_leaves {
            out.push(format!("--raw-leaves={} (the shipment's: {})", mine.raw_leaves, theirs.raw_leaves));
        }
        if given.chunker.is_some() && mine.chunk_size != theirs.chunk_size {
            out.push(format!("--chunker size-{} (the shipment's: size-{})", mine.chunk_size, theirs.chunk_size));
        }
        if given.max_links.is_some() && mine.max_links != theirs.max_links {
            out.push(format!("--max-links {} (the shipment's: {})", mine.max_links, theirs.max_links));
        }
        if given.layout.is_some() && mine.layout != theirs.layout {
            out.push(format!("--layout {} (the shipment's: {})", mine.layout.name(), theirs.layout.name()));
        }
        if given.hamt_threshold.is_some() && mine.hamt_threshold != theirs.hamt_threshold {
            out.push(format!("--hamt-threshold {} (the shipment's: {})", mine.hamt_threshold, theirs.hamt_threshold));
        }
        if given.hamt_estimation.is_some() && mine.hamt_estimation != theirs.hamt_estimation {
            let (m, t) = (mine.hamt_estimation.name(), theirs.hamt_estimation.name());
            out.push(format!("--hamt-estimation {m} (the shipment's: {t})"));
        }
        if given.hamt_fanout.is_some() && mine.hamt_fanout != theirs.hamt_fanout {
            out.push(format!("--hamt-fanout {} (the shipment's: {})", mine.hamt_fanout, theirs.hamt_fanout));
        }
        if mine.hidden && !theirs.hidden {
            out.push("--hidden (the shipment's: without)".into());
        }
        out
    }
}

fn pack_name(p: Pack) -> &'static str {
    match p {
        Pack::BestFit => "best-fit",
        Pack::KeepFolders => "keep-folders",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: PlanOptionArgs,
    }

    fn options(args: &[&str], defaults: &SizeDefaults) -> Result<PlanOptions, String> {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied())).map_err(|e| e.to_string())?;
        cli.options.options(defaults).map_err(|e| e.to_string())
    }

    #[test]
    fn given_then_configured_then_the_planners_defaults() {
        let none = SizeDefaults::default();
        let o = options(&["--pack", "keep-folders", "--margin", "1KiB"], &none).unwrap();
        assert_eq!((o.sector_size, o.piece_size, o.min_piece_size), (SECTOR_32GIB, SECTOR_32GIB, 1 << 20));
        assert_eq!((o.pack, o.margin), (Pack::KeepFolders, 1024));
        let cfg = SizeDefaults { sector: Some(64 << 30), piece_size: Some(1 << 30), min_piece_size: Some(1 << 21) };
        let o = options(&[], &cfg).unwrap();
        assert_eq!((o.sector_size, o.piece_size, o.min_piece_size), (64 << 30, 1 << 30, 1 << 21));
        let o = options(&["--sector", "32GiB", "--piece-size", "1MiB"], &cfg).unwrap();
        assert_eq!((o.sector_size, o.piece_size, o.min_piece_size), (SECTOR_32GIB, 1 << 20, 1 << 21));
        // One sector check: on the command line and in a configuration.
        assert!(options(&["--sector", "16GiB"], &none).unwrap_err().contains("unsupported sector size \"16GiB\""));
        let bad = SizeDefaults { sector: Some(16 << 30), ..none };
        assert_eq!(options(&[], &bad).unwrap_err(), "unsupported sector size 17179869184 bytes (use 32GiB or 64GiB)");
    }

    #[test]
    fn flags_an_opened_shipment_overrides_are_named() {
        let none = SizeDefaults::default();
        let opened = options(&[], &none).unwrap();
        let cli = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
                .unwrap()
                .options
                .overridden_by(&opened)
        };
        assert_eq!(cli(&["--sector", "64GiB"]), ["--sector 64 GiB (the shipment's: 32 GiB)"]);
        // Given but equal, or not given: nothing to say.
        assert!(cli(&["--sector", "32GiB", "--pack", "best-fit"]).is_empty());
        assert!(cli(&[]).is_empty());
        let all =
            cli(&["--piece-size", "1MiB", "--pack", "keep-folders", "--cid-version", "1", "--chunker", "size-1024"]);
        assert_eq!(
            all,
            [
                "--piece-size 1.0 MiB (the shipment's: 32 GiB)",
                "--pack keep-folders (the shipment's: best-fit)",
                "--cid-version 1 (the shipment's: 0)",
                "--chunker size-1024 (the shipment's: size-262144)",
            ]
            .map(String::from)
        );
    }

    #[test]
    fn a_profile_and_its_knobs_given_against_an_opened_shipment_are_named() {
        let none = SizeDefaults::default();
        let opened = options(&[], &none).unwrap();
        let cli = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
                .unwrap()
                .options
                .overridden_by(&opened)
        };
        assert_eq!(
            cli(&["--profile", "unixfs-v1-2025", "--max-links", "7", "--layout", "trickle"]),
            [
                "--profile unixfs-v1-2025 (the shipment's: cidv0, dag-pb leaves, size-262144, 174 links)",
                "--max-links 7 (the shipment's: 174)",
                "--layout trickle (the shipment's: balanced)",
            ]
            .map(String::from)
        );
        // Given but what the shipment has: nothing to say.
        assert!(cli(&["--profile", "pow", "--cid-version", "0", "--layout", "balanced"]).is_empty());
        assert_eq!(
            cli(&["--hamt-threshold", "1000", "--hamt-estimation", "block", "--hamt-fanout", "16"]),
            [
                "--hamt-threshold 1000 (the shipment's: 262144)",
                "--hamt-estimation block (the shipment's: disabled)",
                "--hamt-fanout 16 (the shipment's: 256)",
            ]
            .map(String::from)
        );
        let o = options(&["--profile", "unixfs-v0-2015", "--hamt-estimation", "block", "--hamt-fanout", "1024"], &none)
            .unwrap();
        assert_eq!(
            (o.profile.hamt_estimation, o.profile.hamt_threshold, o.profile.hamt_fanout),
            (Estimation::Block, 262_144, 1024)
        );
        assert!(options(&["--hamt-fanout", "4"], &none).unwrap_err().contains("HAMT fanout 4 is not a power of two"));
        let o = options(&["--profile", "unixfs-v1-2025", "--raw-leaves=false"], &none).unwrap();
        assert_eq!((o.profile.cid_version, o.profile.raw_leaves, o.profile.max_links), (CidVersion::V1, false, 1024));
    }
}
