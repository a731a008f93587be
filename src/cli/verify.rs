//! `carload verify`: check a CAR (or every built batch of a shipment) independently: blocks
//! against their CIDs, the DAG complete from the root, UnixFS as the reference exporters read it,
//! an aggregate's manifest entry by entry against its buckets, and the piece commitment against
//! what the deal names.

use anyhow::{bail, Context, Result};
use carload::human::ibytes;
use carload::shipment::build::{find_result, Found};
use carload::shipment::drives::{PlaceError, Placement};
use carload::shipment::BatchResult;
use clap::Args;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// `carload verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// A CAR file, or a shipment file (then every built batch in --out is verified).
    pub path: PathBuf,
    /// The piece CID (v1 `baga…` or v2 `bafkzcib…`) the CAR must have.
    #[arg(long, value_name = "CID")]
    pub piece_cid: Option<String>,
    /// The padded piece size of the deal (when larger than the CAR's own piece).
    #[arg(long, value_name = "SIZE", value_parser = crate::edge::options::size_arg)]
    pub piece_size: Option<u64>,
    /// A batch result (`<id>.json`) whose payload CID, CAR size and piece CID the CAR must have.
    #[arg(long, value_name = "FILE")]
    pub result: Option<PathBuf>,
    /// CAR folder of `carload build` (with a shipment file), as `build --out`; repeat it for the
    /// drives of a build spread over drives.
    #[arg(long, value_name = "DIR")]
    pub out: Vec<PathBuf>,
    /// Print only problems.
    #[arg(long, short)]
    pub quiet: bool,
    /// With a shipment: check the built batches only (batches not built do not fail the run).
    #[arg(long)]
    pub built_only: bool,
}

/// What the CAR must match.
#[derive(Default)]
struct Expect {
    piece_cid: Option<String>,
    piece_size: Option<u64>,
    result: Option<BatchResult>,
}

/// Runs `carload verify`.
pub fn verify(a: VerifyArgs) -> Result<()> {
    if is_shipment(&a.path) {
        return verify_shipment(&a);
    }
    let result = match &a.result {
        Some(p) => Some(
            serde_json::from_slice::<BatchResult>(&std::fs::read(p).with_context(|| p.display().to_string())?)
                .with_context(|| format!("{}: not a batch result", p.display()))?,
        ),
        None => None,
    };
    let expect = Expect { piece_cid: a.piece_cid.clone(), piece_size: a.piece_size, result };
    let problems = verify_one(&a.path, &expect, "", a.quiet)?;
    if problems > 0 {
        bail!("{}: {problems} problems", a.path.display());
    }
    Ok(())
}

fn is_shipment(path: &Path) -> bool {
    use std::io::{BufRead, Read};
    let Ok(f) = std::fs::File::open(path) else { return false };
    let mut first = String::new();
    let _ = BufReader::new(f.take(1 << 16)).read_line(&mut first);
    first.trim_start().starts_with('{') && first.contains("\"carload-shipment\"")
}

/// Verifies one CAR; prints its summary, problems and warnings (prefixed); returns the problem
/// count.
fn verify_one(car: &Path, e: &Expect, prefix: &str, quiet: bool) -> Result<u64> {
    let name = car.display().to_string();
    let mut extra: Vec<String> = Vec::new();
    let f = std::fs::File::open(car).with_context(|| name.clone())?;
    super::run::positional(&f, &name)?;
    let mut r = carload::verify::verify_file(&f, car).with_context(|| name.clone())?;
    let padded = e.result.as_ref().map(|r| r.piece_size).or(e.piece_size).unwrap_or(r.piece.padded_size);
    if !padded.is_power_of_two() || padded < r.piece.padded_size {
        extra.push(format!(
            "piece size {padded} is not a power of two at least the CAR's natural piece of {}",
            r.piece.padded_size
        ));
    }
    let piece = r.piece.pad_to(padded);
    if let Some(res) = &e.result {
        extra.extend(carload::shipment::check::compare_result(res, &r, None));
    }
    if let Some(want) = &e.piece_cid {
        let got = if want.starts_with("bafkzcib") { piece.cid_v2().to_string() } else { piece.cid_v1().to_string() };
        if &got != want {
            extra.push(format!("piece CID {got} is not the expected {want}"));
        }
    }
    r.problem_count += extra.len() as u64;
    r.problems.extend(extra);
    for p in &r.problems {
        eprintln!("problem: {prefix}{p}");
    }
    if r.problem_count > r.problems.len() as u64 {
        eprintln!("problem: {prefix}… {} more", r.problem_count - r.problems.len() as u64);
    }
    if !quiet {
        for w in &r.warnings {
            eprintln!("warning: {prefix}{w}");
        }
        if r.warning_count > r.warnings.len() as u64 {
            eprintln!("warning: {prefix}… {} more", r.warning_count - r.warnings.len() as u64);
        }
        let root = r.roots.first().map(|c| c.to_string()).unwrap_or_default();
        println!("{prefix}CAR:           {name} ({} bytes, {} blocks)", r.car_size, r.blocks);
        println!("{prefix}Payload CID:   {root}");
        println!(
            "{prefix}Piece CID:     {} ({} padded, {})",
            piece.cid_v1(),
            piece.padded_size,
            ibytes(piece.padded_size)
        );
        println!("{prefix}Piece CID v2:  {}", piece.cid_v2());
        if let Some(m) = &r.manifest {
            let entries = m.entries.map_or("unreadable".to_string(), |n| format!("{n} entries"));
            match m.content {
                Some((bytes, sha)) => {
                    let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
                    println!("{prefix}Manifest:      {entries} ({bytes} bytes, sha256 {hex})");
                }
                None => println!("{prefix}Manifest:      {entries}"),
            }
        }
        if r.duplicates > 0 {
            println!("{prefix}Repeated:      {} sections (allowed by CARv1)", r.duplicates);
        }
        if r.hamt_shards > 0 {
            println!("{prefix}HAMT shards:   {}", r.hamt_shards);
        }
        println!(
            "{prefix}{}",
            if r.problem_count == 0 { "OK".to_string() } else { format!("{} problems", r.problem_count) }
        );
    }
    Ok(r.problem_count)
}

fn verify_shipment(a: &VerifyArgs) -> Result<()> {
    if a.out.is_empty() {
        bail!("{}: a shipment: pass --out DIR, the folder `carload build` wrote", a.path.display())
    }
    let folders = crate::cli::shipment::OutFolders::read(&a.out)?.expect("--out given");
    let outs = folders.outs();
    let mut away = Vec::new();
    // One batch record at a time: a shipment of millions of files is never held whole.
    let (file, index) = crate::cli::shipment::open_index(&a.path)?;
    let (mut ok, mut bad, mut problems) = (0usize, 0usize, 0u64);
    let mut missing = Vec::new();
    for at in &index.batches {
        let prefix = format!("{}: ", at.id);
        let mut lines: Vec<String> = Vec::new();
        let mut count = 0u64;
        let elsewhere = (missing.len(), away.len());
        match carload::shipment::read_batch_at(&file, &index.header, at) {
            Err(e) => {
                lines.push(format!("{}: {e}", a.path.display()));
                count += 1;
            }
            Ok(b) => match outs.placement(&b.id) {
                Placement::Unassigned => missing.push(at.id.clone()),
                Placement::Refused(e @ PlaceError::Absent { .. }) => away.push(format!("{} ({e})", at.id)),
                Placement::Refused(e) => {
                    lines.push(e.to_string());
                    count += 1;
                }
                Placement::Dir(out) => match find_result(out, &index.header, &b) {
                    Found::Built(r) => {
                        let c = carload::shipment::check::check_batch(out, &index.header, &b, &r);
                        count += c.problem_count;
                        lines.extend(c.problems);
                        if !a.quiet {
                            if let Some(rep) = &c.report {
                                println!(
                                    "{prefix}{} · CAR {} bytes, {} blocks · piece {} · {}",
                                    r.payload_cid,
                                    rep.car_size,
                                    rep.blocks,
                                    r.piece_cid,
                                    if count == 0 { "OK".to_string() } else { format!("{count} problems") }
                                );
                            }
                        }
                    }
                    Found::Missing => missing.push(at.id.clone()),
                    Found::Other(reason) | Found::Corrupt(reason) | Found::Unreadable(reason) => {
                        lines.push(reason);
                        count += 1;
                    }
                },
            },
        }
        for l in &lines {
            eprintln!("problem: {prefix}{l}");
        }
        if count > lines.len() as u64 {
            eprintln!("problem: {prefix}… {} more", count - lines.len() as u64);
        }
        problems += count;
        match count {
            0 if (missing.len(), away.len()) == elsewhere => ok += 1,
            0 => {}
            _ => bad += 1,
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(20).map(String::as_str).collect();
        let more = if missing.len() > shown.len() {
            format!(" and {} more", missing.len() - shown.len())
        } else {
            String::new()
        };
        eprintln!("not built: {}{more}", shown.join(", "));
    }
    for w in &away {
        eprintln!("not here: {w}");
    }
    println!(
        "Verified {} batches: {ok} OK, {bad} with problems ({problems} problems), {} not built{}",
        index.batches.len(),
        missing.len(),
        if away.is_empty() { String::new() } else { format!(", {} on drives not given", away.len()) }
    );
    if problems > 0 {
        bail!("{}: {problems} problems in {bad} batches", a.path.display());
    }
    if !missing.is_empty() && !a.built_only {
        let wher = folders.dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
        bail!(
            "{}: {} batches are not built in {wher} (--built-only checks only the built ones)",
            a.path.display(),
            missing.len(),
        );
    }
    if !away.is_empty() && !a.built_only {
        bail!(
            "{}: {} batches are on drives not given (--built-only checks only the ones here)",
            a.path.display(),
            away.len()
        );
    }
    Ok(())
}
