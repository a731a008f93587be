//! Command-line arguments.

use crate::edge::options::ProfileArgs;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Prepare data for Filecoin offline deals: UnixFS DAG, CARv1 and piece CID (commP).
/// Byte-compatible with Powergate's `pow offline prepare | car | commp`.
#[derive(Parser, Debug)]
#[command(name = "carload", version, about, long_about = None, max_term_width = 100)]
#[command(
    mut_subcommand("plan", |c| c.arg(threads("Worker threads for sizing files and writing batch records (default: all cores)"))),
    mut_subcommand("build", |c| c.arg(threads("Worker threads for hashing, shared by the batches built at once (default: all cores)"))),
    mut_subcommand("tui", |c| c.arg(threads("Worker threads for hashing in builds and dry runs (default: all cores)"))),
    mut_subcommand("export", |c| c.arg(threads("Not used by export").hide(true))),
    mut_subcommand("status", |c| c.arg(threads("Not used by status").hide(true))),
    mut_subcommand("manifest", |c| c.arg(threads("Not used by manifest").hide(true))),
    mut_subcommand("commd", |c| c.arg(threads("Not used by commd").hide(true))),
)]
pub struct Cli {
    /// Worker threads for hashing (default: all cores).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// The command to run (none on a terminal: the workstation on the current folder).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--threads` with the help of one command (the global one says "for hashing", which is what it
/// does for `prepare`, `car`, `commp`, `verify` and `extract`); `clap` keeps a command's own
/// argument over the global one and hands its value up.
fn threads(help: &'static str) -> clap::Arg {
    clap::Arg::new("threads")
        .long("threads")
        .value_name("N")
        .value_parser(clap::value_parser!(u16).range(1..))
        .help(help)
}

/// carload's commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build the DAG, write the CAR and compute the piece size and piece CID, in one pass.
    #[command(visible_alias = "prep")]
    Prepare(PrepareArgs),
    /// Write the CAR only.
    Car(CarArgs),
    /// Compute the piece size and piece CID (commP) of a CAR file or of standard input.
    #[command(visible_alias = "commP")]
    Commp(CommpArgs),
    /// The unsealed sector CID (CommD) of pieces placed in a sector as Lotus places them.
    #[command(visible_alias = "commD")]
    Commd(super::commd::CommdArgs),
    /// List the entries of a Filecoin batch CAR's `@AggregateManifest.ndjson`.
    Manifest(ManifestArgs),
    /// Plan a shipment: pack files into batches that fit a sector's piece (sizes only, no reads).
    Plan(super::shipment::PlanArgs),
    /// Build the batches of a shipment (resumable; several builders may share the output folder).
    Build(super::shipment::BuildArgs),
    /// Export deal commands (Lotus, Boost, Curio) or CSV for the built batches of a shipment.
    Export(super::shipment::ExportArgs),
    /// How far along a shipment's build is: built, building (host, heartbeat), stale locks.
    Status(super::status::StatusArgs),
    /// Restore the files of a CAR (or of a shipment's built batches), every block verified.
    Extract(super::extract::ExtractArgs),
    /// Verify a CAR (blocks, DAG, UnixFS, manifest, piece CID) or every built batch of a shipment.
    Verify(super::verify::VerifyArgs),
    /// A drive (a CAR folder) and its manifest carload-drive.json: check it, re-label it.
    Drive(super::drive::DriveArgs),
    /// The provider's side: verify received CARs, join the client's deal list by piece CID and
    /// print the import commands (Boost, Curio, Lotus). Nothing is imported or moved.
    Receive(super::receive::ReceiveArgs),
    /// FRC-0058 data segments: pack CARs into one deal piece with a data segment index, list
    /// its segments, prove a segment's inclusion (PoDSI), verify a deal.
    Segment(super::segment::SegmentArgs),
    /// The terminal workstation: browse folders, mark files, pack batches, preview manifests,
    /// save the shipment.
    Tui(crate::tui::TuiArgs),
}

/// Options for Filecoin batches (`--aggregate`).
#[derive(Args, Debug, Clone, Default)]
pub struct BatchArgs {
    /// Aggregate every file under the folder into one Filecoin batch (go-dagaggregator-unixfs v0.1.0).
    #[arg(long)]
    pub aggregate: bool,
    /// Where to write the batch manifest (default for prepare: <out.car>.manifest).
    #[arg(long, value_name = "PATH", requires = "aggregate")]
    pub manifest: Option<PathBuf>,
    /// Folder for the temporary spool of an aggregate build (default: the output's folder).
    #[arg(long, value_name = "DIR", requires = "aggregate")]
    pub tmpdir: Option<PathBuf>,
    /// Fetch the DAG named by the CID given as PATH from this IPFS node's RPC API
    /// (multiaddr such as /ip4/127.0.0.1/tcp/5001, or http://host:port). With --aggregate, PATH
    /// is a comma-separated list of CIDs or a file with one CID per line.
    #[arg(long, value_name = "ADDR")]
    pub ipfs_api: Option<String>,
    /// Seconds to wait for the node to produce one block before giving up on it.
    #[arg(long, value_name = "SECS", default_value = "30", requires = "ipfs_api",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub ipfs_timeout: u64,
}

/// `carload manifest`.
#[derive(Args, Debug)]
pub struct ManifestArgs {
    /// A batch CAR written by `prepare --aggregate` (or Powergate).
    pub car: PathBuf,
    /// Print the entries as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Deal parameters for the printed or exported offline-deal commands; values not given are
/// printed as `<placeholder>`s.
#[derive(Args, Debug, Clone, Default)]
pub struct DealArgs {
    /// Storage provider ID.
    #[arg(long, visible_alias = "miner", value_name = "f0…")]
    pub provider: Option<String>,
    /// Lotus legacy price in FIL per epoch.
    #[arg(long, value_name = "FIL")]
    pub price: Option<String>,
    /// Deal duration in epochs (Boost/Curio default 518400; Lotus placeholder <duration>).
    #[arg(long, value_name = "EPOCHS")]
    pub duration: Option<u64>,
    /// Boost/Curio storage price in attoFIL per GiB per epoch.
    #[arg(long, value_name = "ATTOFIL")]
    pub storage_price: Option<String>,
    /// Verified (Fil+) deal; written explicitly either way.
    #[arg(long, value_name = "BOOL", default_value = "true", action = clap::ArgAction::Set)]
    pub verified: bool,
    /// Client wallet address.
    #[arg(long, value_name = "ADDRESS")]
    pub wallet: Option<String>,
    /// `sptool --actor` for Curio (default: the provider).
    #[arg(long, value_name = "f0…")]
    pub actor: Option<String>,
}

impl DealArgs {
    /// The library's deal parameters.
    pub fn params(&self) -> carload::shipment::export::DealParams {
        carload::shipment::export::DealParams {
            provider: self.provider.clone(),
            price: self.price.clone(),
            duration: self.duration,
            storage_price: self.storage_price.clone(),
            verified: self.verified,
            wallet: self.wallet.clone(),
            actor: self.actor.clone(),
        }
    }
}

/// `carload prepare`.
#[derive(Args, Debug)]
pub struct PrepareArgs {
    /// File or folder to prepare (a CID with --ipfs-api).
    pub path: PathBuf,
    /// Output CAR file; omitted or `-` streams the CAR to stdout.
    pub out: Option<PathBuf>,
    /// Print one JSON object (Powergate's keys plus piece_size_unpadded, car_size, piece_cid_v2).
    #[arg(long)]
    pub json: bool,
    /// Print only results and errors (no progress).
    #[arg(long, short)]
    pub quiet: bool,
    /// Overwrite the output file if it exists.
    #[arg(long, short)]
    pub force: bool,
    /// DAG options.
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Batch options.
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Deal command options.
    #[command(flatten)]
    pub deal: DealArgs,
}

/// `carload car`.
#[derive(Args, Debug)]
pub struct CarArgs {
    /// File or folder to turn into a CAR (a CID with --ipfs-api).
    pub path: PathBuf,
    /// Output CAR file; omitted or `-` streams the CAR to stdout.
    pub out: Option<PathBuf>,
    /// Print only errors (no progress, no summary).
    #[arg(long, short)]
    pub quiet: bool,
    /// Overwrite the output file if it exists.
    #[arg(long, short)]
    pub force: bool,
    /// DAG options.
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Batch options.
    #[command(flatten)]
    pub batch: BatchArgs,
}

/// `carload commp`.
#[derive(Args, Debug)]
pub struct CommpArgs {
    /// CAR file to hash; omitted or `-` reads standard input (not validated).
    pub path: Option<PathBuf>,
    /// Print one JSON object: piece_size, piece_cid, piece_size_unpadded, payload_size, piece_cid_v2.
    #[arg(long)]
    pub json: bool,
    /// Hash the file even if it does not start with a CARv1 header.
    #[arg(long)]
    pub skip_car_validation: bool,
    /// Print only results and errors (no progress).
    #[arg(long, short)]
    pub quiet: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn help_of(command: &str) -> String {
        let mut cli = Cli::command();
        cli.build();
        cli.find_subcommand_mut(command).unwrap().render_help().to_string()
    }

    #[test]
    fn threads_says_what_it_does_for_each_command() {
        let line = |command: &str| help_of(command).lines().find(|l| l.contains("--threads")).map(str::to_owned);
        assert!(line("prepare").unwrap().contains("for hashing"));
        assert!(line("plan").unwrap().contains("for sizing files"));
        assert!(line("build").unwrap().contains("shared by the batches built at once"));
        assert!(line("tui").unwrap().contains("builds and dry runs"));
        // Commands it does nothing for do not describe it.
        for command in ["export", "status", "manifest", "commd"] {
            assert_eq!(line(command), None, "{command}");
        }
    }

    #[test]
    fn threads_is_taken_before_or_after_the_command() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap().threads;
        assert_eq!(parse(&["carload", "--threads", "3", "plan", "a", "-o", "s"]), Some(3));
        assert_eq!(parse(&["carload", "plan", "a", "-o", "s", "--threads", "4"]), Some(4));
        assert_eq!(parse(&["carload", "export", "s", "--format", "csv", "--threads", "2"]), Some(2));
        assert_eq!(parse(&["carload", "verify", "x.car", "--threads", "5"]), Some(5));
        assert!(Cli::try_parse_from(["carload", "plan", "a", "-o", "s", "--threads", "0"]).is_err());
    }
}
