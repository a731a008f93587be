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
        if self.profile.cid_version != 0 && mine.cid_version != theirs.cid_version {
            let theirs = if theirs.cid_version == CidVersion::V1 { 1 } else { 0 };
            out.push(format!("--cid-version {} (the shipment's: {theirs})", self.profile.cid_version));
        }
        if self.profile.raw_leaves.is_some() && mine.raw_leaves != theirs.raw_leaves {
            out.push(format!("--raw-leaves={} (the shipment's: {})", mine.raw_leaves, theirs.raw_leaves));
        }
        if mine.chunk_size != DEFAULT_CHUNK_SIZE && mine.chunk_size != theirs.chunk_size {
            out.push(format!("--chunker size-{} (the shipment's: size-{})", mine.chunk_size, theirs.chunk_size));
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
}
