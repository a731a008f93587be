//! `carload status SHIPMENT --out DIR`: how far along a (cluster) build is.

use super::report::ibytes;
use anyhow::{Context, Result};
use carload::shipment::read_shipment;
use carload::shipment::status::{status, BatchStatus, State};
use clap::Args;
use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// `carload status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Shipment file.
    pub shipment: PathBuf,
    /// Output folder the builders share.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// One JSON object: totals and every batch's state.
    #[arg(long)]
    pub json: bool,
    /// Refresh in place every few seconds (Ctrl-C stops); shows the build rate and ETA.
    #[arg(long)]
    pub watch: bool,
    /// List every batch (default: those building, stale or with a problem, and a few not built).
    #[arg(long)]
    pub all: bool,
    /// Seconds after which a lock not refreshed counts as stale (as `build --stale-after`).
    #[arg(long, value_name = "SECS", default_value_t = carload::shipment::lock::DEFAULT_STALE_AFTER, value_parser = clap::value_parser!(u64).range(2..=864_000))]
    pub stale_after: u64,
}

/// Totals over the batches.
struct Totals {
    batches: usize,
    built: usize,
    building: usize,
    stale: usize,
    problems: usize,
    bytes: u64,
    built_bytes: u64,
}

fn totals(list: &[BatchStatus]) -> Totals {
    let mut t = Totals { batches: list.len(), built: 0, building: 0, stale: 0, problems: 0, bytes: 0, built_bytes: 0 };
    for b in list {
        t.bytes += b.bytes;
        match b.state {
            State::Built { .. } => {
                t.built += 1;
                t.built_bytes += b.bytes;
            }
            State::Building { .. } => t.building += 1,
            State::StaleLock { .. } => t.stale += 1,
            State::Problem { .. } => t.problems += 1,
            State::NotBuilt => {}
        }
    }
    t
}

fn render(list: &[BatchStatus], all: bool, rate: Option<f64>) -> String {
    use std::fmt::Write as _;
    let t = totals(list);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Built {}/{} batches · {} of {} ({:.1}%) · {} building · {} stale locks · {} problems",
        t.built,
        t.batches,
        ibytes(t.built_bytes),
        ibytes(t.bytes),
        if t.bytes == 0 { 100.0 } else { t.built_bytes as f64 * 100.0 / t.bytes as f64 },
        t.building,
        t.stale,
        t.problems
    );
    if let Some(r) = rate {
        let left = t.bytes.saturating_sub(t.built_bytes) as f64;
        let eta = if r > 0.0 { format!(" · ETA {:.0} min", left / r / 60.0) } else { String::new() };
        let _ = writeln!(s, "Rate over the last minutes: {:.0} MB/s{eta}", r / 1e6);
    }
    let mut not_built_shown = 0;
    for b in list {
        let line = match &b.state {
            State::Building { host, pid, heartbeat_age } => {
                format!("{} building on {host} (pid {pid}), heartbeat {heartbeat_age} s ago", b.id)
            }
            State::StaleLock { host, pid, heartbeat_age } => format!(
                "{} STALE LOCK of {host} (pid {pid}), not refreshed for {heartbeat_age} s: its builder likely died",
                b.id
            ),
            State::Problem { reason } => format!("{} PROBLEM: {reason}", b.id),
            State::Built { payload_cid, piece_cid, piece_size, car_size } if all => format!(
                "{} built: payload {payload_cid} · piece {piece_cid} ({} padded) · CAR {car_size} bytes",
                b.id,
                ibytes(*piece_size)
            ),
            State::NotBuilt if all || not_built_shown < 5 => {
                not_built_shown += 1;
                format!("{} not built ({})", b.id, ibytes(b.bytes))
            }
            _ => continue,
        };
        let _ = writeln!(s, "{line}");
    }
    let hidden = t.batches - t.built - t.building - t.stale - t.problems;
    if !all && hidden > not_built_shown {
        let _ = writeln!(s, "… {} more not built (--all lists every batch)", hidden - not_built_shown);
    }
    s
}

/// Runs `carload status`.
pub fn status_cmd(a: StatusArgs) -> Result<()> {
    let f = std::fs::File::open(&a.shipment).with_context(|| a.shipment.display().to_string())?;
    let s = read_shipment(BufReader::with_capacity(1 << 20, f)).with_context(|| a.shipment.display().to_string())?;
    let stale = Duration::from_secs(a.stale_after);
    let mut samples: VecDeque<(Instant, u64)> = VecDeque::new();
    loop {
        let list = status(&a.out, &s.header, &s.batches, SystemTime::now(), stale);
        if a.json {
            let t = totals(&list);
            let out = serde_json::json!({
                "batches": t.batches, "built": t.built, "building": t.building, "stale_locks": t.stale,
                "problems": t.problems, "bytes": t.bytes, "built_bytes": t.built_bytes, "status": list,
            });
            println!("{out}");
        } else {
            let now = Instant::now();
            samples.push_back((now, totals(&list).built_bytes));
            while samples.front().is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(600)) {
                samples.pop_front();
            }
            let rate = match (samples.front(), samples.back()) {
                (Some((t0, b0)), Some((t1, b1))) if a.watch && t1 > t0 => {
                    Some(b1.saturating_sub(*b0) as f64 / t1.duration_since(*t0).as_secs_f64())
                }
                _ => None,
            };
            let text = render(&list, a.all, rate);
            let mut o = std::io::stdout().lock();
            if a.watch {
                let _ = write!(o, "\x1b[H\x1b[2J");
            }
            let _ = o.write_all(text.as_bytes());
            let _ = o.flush();
        }
        if !a.watch {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}
