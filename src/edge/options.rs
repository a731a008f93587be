//! The command-line options both edges take: the DAG profile ([`ProfileArgs`]) and the planning
//! options ([`PlanOptionArgs`]: sector, piece sizes, margin, packing, profile), flattened into
//! `carload plan` and `carload tui` alike and turned into the library's `PlanOptions` by one
//! function; the size parsers behind them.

use carload::block::CidVersion;
use carload::profile::{Profile, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE};
use carload::shipment::plan::{check_sector, Pack, PlanError, PlanOptions, SECTOR_32GIB};
use carload::shipment::size::parse_size;
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

/// Options shared by commands that build a DAG.
#[derive(Args, Debug, Clone)]
pub struct ProfileArgs {
    /// CID version of the DAG (0 = Powergate/go-ipfs 0.8 default).
    #[arg(long, value_name = "0|1", default_value = "0", value_parser = parse_cid_version)]
    pub cid_version: u8,
    /// Store file chunks as raw blocks (default: on with --cid-version 1, off otherwise).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub raw_leaves: Option<bool>,
    /// Chunker, as kubo names it: size-<bytes> (fixed-size chunks; rabin/buzhash are not supported).
    #[arg(long, value_name = "size-N", default_value = "size-262144", value_parser = parse_chunker)]
    pub chunker: usize,
    /// Include dot-files and dot-folders inside folders (go-ipfs skips them).
    #[arg(long)]
    pub hidden: bool,
}

impl ProfileArgs {
    /// The profile these options describe.
    pub fn profile(&self) -> Profile {
        let cid_version = if self.cid_version == 1 { CidVersion::V1 } else { CidVersion::V0 };
        Profile {
            cid_version,
            raw_leaves: self.raw_leaves.unwrap_or(cid_version == CidVersion::V1),
            chunk_size: self.chunker,
            hidden: self.hidden,
            ..Profile::default()
        }
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

/// The planning options of `carload plan` and the workstation. A command states its own
/// defaults for `--sector` and `--min-piece-size` (`plan`: 32GiB and 1MiB; the workstation: its
/// config's) with `mut_arg`.
#[derive(Args, Debug, Clone)]
pub struct PlanOptionArgs {
    /// Sector size the pieces are for: 32GiB or 64GiB.
    #[arg(long, value_name = "SIZE", value_parser = sector_arg)]
    pub sector: Option<u64>,
    /// Target padded piece size (power of two; default: the sector size).
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    pub piece_size: Option<u64>,
    /// Smallest padded piece size a batch should get (Fil+ floor 1 MiB).
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
}
