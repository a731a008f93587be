//! `carload drive check` and `carload drive label`: a drive (a CAR folder) against its manifest
//! `carload-drive.json`.

use anyhow::Result;
use carload::human::{ibytes, plural};
use carload::shipment::drive::{self, ProblemKind};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `carload drive`.
#[derive(Args, Debug)]
pub struct DriveArgs {
    /// What to do with the drive.
    #[command(subcommand)]
    pub command: DriveCommand,
}

/// `carload drive` subcommands.
#[derive(Subcommand, Debug)]
pub enum DriveCommand {
    /// List missing, extra and damaged CARs against the drive's carload-drive.json (by size;
    /// strictly with --verify). Exits non-zero on any problem.
    Check(CheckArgs),
    /// Give the drive a new label (its manifest and README rewritten atomically).
    Label(LabelArgs),
}

/// `carload drive check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The drive's CAR folder (holding carload-drive.json).
    pub dir: PathBuf,
    /// Read every CAR: verify it as `carload verify` does and compare its payload CID, piece CID
    /// and piece size with the manifest.
    #[arg(long)]
    pub verify: bool,
    /// Print only problems.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `carload drive label`.
#[derive(Args, Debug)]
pub struct LabelArgs {
    /// The drive's CAR folder (holding carload-drive.json).
    pub dir: PathBuf,
    /// The new label (one line of text).
    pub label: String,
}

/// Runs `carload drive`.
pub fn drive_cmd(a: DriveArgs) -> Result<()> {
    match a.command {
        DriveCommand::Check(c) => check(c),
        DriveCommand::Label(l) => {
            let m = drive::relabel(&l.dir, &l.label)?;
            println!(
                "{}: labelled {:?} (drive {} of {})",
                l.dir.display(),
                m.drive.label,
                m.drive.position,
                m.drive.of
            );
            Ok(())
        }
    }
}

/// Runs `carload drive check`.
fn check(a: CheckArgs) -> Result<()> {
    let quiet = a.quiet;
    let mut each = |file: &str| {
        if a.verify && !quiet {
            eprintln!("verifying {file}");
        }
    };
    let c = drive::check(&a.dir, a.verify, &mut each)?;
    let m = &c.manifest;
    for p in &c.problems {
        let kind = match p.kind {
            ProblemKind::Missing => "missing",
            ProblemKind::Extra => "extra",
            ProblemKind::Damaged => "damaged",
        };
        println!("{kind} {}: {}", p.file, p.reason);
    }
    let count = |k| c.problems.iter().filter(|p| p.kind == k).count();
    let (missing, extra, damaged) =
        (count(ProblemKind::Missing), count(ProblemKind::Extra), count(ProblemKind::Damaged));
    if !quiet || !c.problems.is_empty() {
        println!(
            "drive {:?} ({} of {}) of shipment {:?}: {} {} listed ({}), {} good{}; {missing} missing, {extra} extra, {damaged} damaged",
            m.drive.label,
            m.drive.position,
            m.drive.of,
            m.shipment.name,
            m.cars.len(),
            plural(m.cars.len() as u64, "CAR", "CARs"),
            ibytes(m.car_bytes()),
            c.good,
            if a.verify { " (verified)" } else { " (by size)" },
        );
    }
    if !c.problems.is_empty() {
        return Err(crate::cli::Exit(1, format!("{}: {} problem(s)", a.dir.display(), c.problems.len())).into());
    }
    Ok(())
}
