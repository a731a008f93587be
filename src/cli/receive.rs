//! `carload receive`: the provider's side of an offline deal. Every CAR in the given folders is
//! verified and joined with the client's deal list ([`carload::shipment::receive`]); this prints
//! one line per CAR, the import commands of the provider's software, CARs with no deal apart and
//! deals whose CAR is missing. Nothing is imported or moved.

use anyhow::{Context, Result};
use carload::shipment::receive::{self, DealState, Received, ReceivedCar, Software};
use clap::Args;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// `carload receive`.
#[derive(Args, Debug)]
pub struct ReceiveArgs {
    /// Folders holding the received CARs (a drive, or a `build --out` folder) and FRC-0058 deal
    /// files (`segment build`'s `.deal`); the `.car` and `.deal` files directly in each are
    /// read, not below.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// The client's deal list: the CSV or JSON Lines `carload export` writes, `boost --json
    /// offline-deal` output, or `<deal-uuid> <piece-cid>` lines (repeat to join several).
    #[arg(long, value_name = "FILE")]
    pub deals: Vec<PathBuf>,
    /// The provider's software the import commands are for: boost, curio or lotus (legacy).
    #[arg(long, value_name = "SOFTWARE", default_value = "boost", value_parser = software_arg)]
    pub format: Software,
    /// One JSON document on standard output instead of text.
    #[arg(long)]
    pub json: bool,
}

fn software_arg(s: &str) -> Result<Software, String> {
    Software::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Software::ALL.iter().map(|s| s.name()).collect();
        format!("{s:?} is not one of {}", names.join(", "))
    })
}

/// Runs `carload receive`.
pub fn receive_cmd(a: ReceiveArgs) -> Result<()> {
    let mut cars = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in &a.dirs {
        let abs = std::path::absolute(d).with_context(|| d.display().to_string())?;
        // A folder given twice is read once.
        for car in receive::car_files(&abs)? {
            if seen.insert(car.clone()) {
                cars.push(car);
            }
        }
    }
    let deals = if a.deals.is_empty() {
        None
    } else {
        let mut all = Vec::new();
        for p in &a.deals {
            all.extend(receive::read_deals(p)?);
        }
        Some(all)
    };
    // Which CAR is being read, on a terminal only (a drive's CARs take minutes in all).
    let live = std::io::stderr().is_terminal();
    let n = cars.len();
    let r = receive::receive_observed(&cars, deals, &mut |k, car| {
        if live {
            eprint!("\r\x1b[2K[{}/{n}] verifying {}", k + 1, show(car));
        }
    });
    if live && n > 0 {
        eprint!("\r\x1b[2K");
    }
    // Each drive's own manifest is a second set of claims: a CAR it lists must be there and
    // hold what it says.
    let mut drive_lines = Vec::new();
    let mut drive_bad = 0usize;
    for d in &a.dirs {
        let abs = std::path::absolute(d).with_context(|| d.display().to_string())?;
        match carload::shipment::drive::read_manifest(&abs) {
            Ok(None) => {}
            Ok(Some(m)) => {
                drive_lines.push(format!(
                    "DRIVE    {}: drive {} of {} \"{}\" of shipment \"{}\", {} CARs listed",
                    show(&abs),
                    m.drive.position,
                    m.drive.of,
                    m.drive.label,
                    m.shipment.name,
                    m.cars.len()
                ));
                for p in receive::drive_problems(&r, &abs, &m) {
                    drive_bad += 1;
                    drive_lines.push(format!("PROBLEM  {}", carload::text::escape_controls(&p)));
                }
            }
            Err(e) => {
                drive_bad += 1;
                drive_lines.push(format!("PROBLEM  {}", carload::text::escape_controls(&e.to_string())));
            }
        }
    }
    if a.json {
        let mut v = json(&r, a.format);
        v["drive_problems"] =
            serde_json::json!(drive_lines.iter().filter_map(|l| l.strip_prefix("PROBLEM  ")).collect::<Vec<_>>());
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for l in &drive_lines {
            println!("{l}");
        }
        print_text(&r, a.format);
    }
    let bad = r.cars.iter().filter(|c| !c.ok()).count();
    let lost = r.deals.iter().filter(|(_, s)| !matches!(s, DealState::Found(_))).count();
    if r.cars.is_empty() {
        anyhow::bail!(
            "{}: no .car or .deal files",
            a.dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    if bad > 0 || lost > 0 || drive_bad > 0 {
        anyhow::bail!(
            "{bad} of {} with problems, {lost} {} without their CAR{}",
            files_label(&r),
            carload::human::plural(lost as u64, "deal", "deals"),
            if drive_bad > 0 { format!(", {drive_bad} drive manifest problems") } else { String::new() }
        );
    }
    Ok(())
}

/// The deals of a CAR as import arguments (`None`: no deal or one without a UUID).
fn deal_ids<'a>(r: &'a Received, c: &ReceivedCar) -> Vec<Option<&'a str>> {
    let ids: Vec<Option<&str>> = c.deals.iter().map(|&i| r.deals[i].0.uuid.as_deref()).collect();
    if ids.is_empty() {
        vec![None]
    } else {
        ids
    }
}

fn commands(r: &Received, c: &ReceivedCar, sw: Software) -> Vec<String> {
    deal_ids(r, c).into_iter().map(|d| receive::import_command(sw, d, &c.path, c.size)).collect()
}

fn show(p: &Path) -> String {
    carload::text::escape_controls(&p.display().to_string()).into_owned()
}

fn print_text(r: &Received, sw: Software) {
    for c in &r.cars {
        let what = match &c.piece {
            Some(p) => match c.segments {
                Some(n) => format!(
                    "{} bytes · deal piece {} ({} padded) · {n} {}",
                    c.size,
                    p.piece_cid,
                    p.piece_size,
                    carload::human::plural(n as u64, "segment", "segments")
                ),
                None => format!(
                    "{} bytes · piece {} ({} padded) · payload {}",
                    c.size, p.piece_cid, p.piece_size, p.payload_cid
                ),
            },
            None => format!("{} bytes", c.size),
        };
        let batch = c.batch.as_deref().map(|b| format!(" [{b}]")).unwrap_or_default();
        if c.ok() {
            println!("OK       {}{batch} · {what}", show(&c.path));
        } else {
            for p in &c.problems {
                let line = carload::text::escape_controls(&p.to_string()).into_owned();
                println!("PROBLEM  {}{batch} · {line}", show(&c.path));
            }
        }
    }
    let ok: Vec<&ReceivedCar> = r.cars.iter().filter(|c| c.ok()).collect();
    let has_uuid = |c: &&ReceivedCar| c.deals.iter().any(|&i| r.deals[i].0.uuid.is_some());
    let with_uuid: Vec<_> = ok.iter().copied().filter(has_uuid).collect();
    let no_uuid: Vec<_> = ok.iter().copied().filter(|c| !c.deals.is_empty() && !has_uuid(c)).collect();
    let no_deal: Vec<_> = ok.iter().copied().filter(|c| c.deals.is_empty()).collect();
    let ph = sw.placeholder();
    let sections = [
        (with_uuid, format!("Import ({})", sw.name())),
        (no_uuid, format!("In the deal list without a deal ID: replace {ph} before running")),
        (
            no_deal,
            if r.with_deals {
                format!("In no deal: replace {ph} before running")
            } else {
                format!("No deal list given (--deals): replace {ph} before running")
            },
        ),
    ];
    for (cars, title) in sections.iter().filter(|(cars, _)| !cars.is_empty()) {
        println!("\n# {title}:");
        for c in cars {
            for cmd in commands(r, c, sw) {
                println!("{}", carload::text::escape_controls(&cmd));
            }
        }
    }
    let lost: Vec<_> = r.deals.iter().filter(|(_, s)| !matches!(s, DealState::Found(_))).collect();
    if !lost.is_empty() {
        println!("\n# Deals without their CAR:");
        for (d, s) in lost {
            let deal = d.uuid.as_deref().unwrap_or("(no UUID)");
            let batch = d.batch.as_deref().map(|b| format!(" batch {b}")).unwrap_or_default();
            let why = match s {
                DealState::WrongCar(k) => format!("{} does not hold its piece", show(&r.cars[*k].path)),
                _ => "no CAR holds its piece".to_string(),
            };
            let line = format!("MISSING  {deal}{batch} · piece {} · {why} ({})", d.piece_cid, d.from);
            println!("{}", carload::text::escape_controls(&line));
        }
    }
    let ok = r.cars.iter().filter(|c| c.ok()).count();
    let found = r.deals.iter().filter(|(_, s)| matches!(s, DealState::Found(_))).count();
    if r.with_deals {
        println!(
            "\n{}: {ok} OK, {} with problems; {found} of {} deals found their CAR",
            files_label(r),
            r.cars.len() - ok,
            r.deals.len()
        );
    } else {
        println!("\n{}: {ok} OK, {} with problems (no deal list given)", files_label(r), r.cars.len() - ok);
    }
}

/// `3 CARs`, or `3 CARs and 2 deal files` when deal files (`.deal`) were received too.
fn files_label(r: &Received) -> String {
    let deals = r.cars.iter().filter(|c| receive::is_deal(&c.path)).count();
    let cars = r.cars.len() - deals;
    match deals {
        0 => format!("{cars} CARs"),
        _ => format!("{cars} CARs and {deals} deal {}", carload::human::plural(deals as u64, "file", "files")),
    }
}

fn json(r: &Received, sw: Software) -> serde_json::Value {
    use serde_json::json;
    let cars: Vec<_> = r
        .cars
        .iter()
        .map(|c| {
            json!({
                "path": c.path,
                "kind": if receive::is_deal(&c.path) { "deal" } else { "car" },
                "segments": c.segments,
                "size": c.size,
                "ok": c.ok(),
                "batch": c.batch,
                "payload_cid": c.piece.as_ref().map(|p| &p.payload_cid),
                "piece_cid": c.piece.as_ref().map(|p| &p.piece_cid),
                "piece_cid_v2": c.piece.as_ref().map(|p| &p.piece_cid_v2),
                "piece_size": c.piece.as_ref().map(|p| p.piece_size),
                "piece_size_unpadded": c.piece.as_ref().map(|p| p.piece_size_unpadded),
                "deals": c.deals.iter().map(|&i| r.deals[i].0.uuid.clone()).collect::<Vec<_>>(),
                "commands": if c.ok() { commands(r, c, sw) } else { Vec::new() },
                "problems": c.problems.iter().map(|p| json!({"kind": p.kind(), "message": p.to_string()})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let deals: Vec<_> = r
        .deals
        .iter()
        .map(|(d, s)| {
            let (state, car) = match s {
                DealState::Found(k) => ("found", Some(&r.cars[*k].path)),
                DealState::WrongCar(k) => ("wrong_car", Some(&r.cars[*k].path)),
                DealState::Missing => ("missing", None),
            };
            json!({
                "uuid": d.uuid, "piece_cid": d.piece_cid, "piece_size": d.piece_size, "batch": d.batch,
                "from": d.from, "state": state, "car": car,
            })
        })
        .collect();
    json!({
        "format": sw.name(),
        "ok": r.ok(),
        "with_deals": r.with_deals,
        "cars": cars,
        "deals": deals,
    })
}
