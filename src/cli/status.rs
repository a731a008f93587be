//! `carload status SHIPMENT --out DIR`: how far along a (cluster) build is.

use anyhow::{Context, Result};
use carload::human::{ibytes, rate as human_rate, secs as human_secs};
use carload::shipment::read_batch_at;
use carload::shipment::status::{
    estimate, status_at, summary, Basis, BatchStatus, Estimate, Sample, State, Watched, WINDOW,
};
use clap::Args;
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// `carload status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Shipment file.
    pub shipment: PathBuf,
    /// CAR folder the builders share (default: the config's `out`); repeat it for the drives of
    /// a build spread over drives (then each drive's fill and built count are shown).
    #[arg(long, value_name = "DIR")]
    pub out: Vec<PathBuf>,
    /// One JSON object: totals, rate and ETA, and every batch's state (with `--watch`, one per line).
    #[arg(long)]
    pub json: bool,
    /// Refresh in place every 3 s (Ctrl-C stops); the rate is then observed over the last minutes.
    #[arg(long)]
    pub watch: bool,
    /// List every batch (default: those building, stale or with a problem, and a few not built).
    #[arg(long)]
    pub all: bool,
    /// Seconds after which a lock not refreshed counts as stale (as `build --stale-after`).
    #[arg(long, value_name = "SECS", default_value_t = carload::shipment::lock::DEFAULT_STALE_AFTER, value_parser = clap::value_parser!(u64).range(2..=864_000))]
    pub stale_after: u64,
}

/// Each drive's figures with its built count, and their lines.
fn drive_lines(
    set: &carload::shipment::drives::DriveSet,
    watched: &[Watched],
    list: &[BatchStatus],
) -> (Vec<serde_json::Value>, String) {
    let usage = set.usage(watched);
    let mut lines = String::new();
    let mut values = Vec::new();
    for u in usage {
        let built = list
            .iter()
            .filter(|b| matches!(b.state, State::Built { .. }) && set.drive_of(&b.id) == Some(u.position))
            .count();
        lines.push_str(&format!("{} · built {built}/{}\n", crate::cli::shipment::drive_line(&u), u.assigned));
        let mut v = serde_json::to_value(&u).expect("plain data");
        v["built"] = serde_json::json!(built);
        values.push(v);
    }
    (values, lines)
}

/// A duration in whole seconds for people, as the workstation writes it.
fn secs(s: u64) -> String {
    human_secs(s as f64)
}

/// What `status` shows of each batch's plan, in the list's order: its CAR bound and planned
/// (padded) piece size.
pub type Planned = [(u64, u64)];

/// Each batch's fill as `plan` prints it: CAR bound ÷ the planned piece's usable bytes, in %.
fn fill_pct(planned: &Planned, i: usize) -> Option<f64> {
    planned.get(i).map(|&(bound, piece)| carload::shipment::file::fill(bound, piece) * 100.0)
}

/// Built batches sharing a piece CID (one piece stored by two deals).
fn same_pieces(list: &[BatchStatus]) -> Vec<(String, Vec<String>)> {
    carload::shipment::status::same_pieces(list.iter().filter_map(|b| match &b.state {
        State::Built { piece_cid, .. } => Some((b.id.as_str(), piece_cid.as_str())),
        _ => None,
    }))
}

/// The status as text: totals, the rate, built batches sharing a piece, one labelled line per
/// batch shown (with its fill, and its real piece when smaller than planned).
pub fn render(list: &[BatchStatus], planned: &Planned, all: bool, estimate: Option<&Estimate>) -> String {
    use std::fmt::Write as _;
    let t = summary(list);
    let pct = |done: u64, of: u64| if of == 0 { 100.0 } else { done as f64 * 100.0 / of as f64 };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Built {}/{} batches · {} of {} ({:.1}%) · {} building ({} of {} done) · {} not built · {} failed · {} corrupt · {} stale locks · {} problems",
        t.built,
        t.batches,
        ibytes(t.built_bytes),
        ibytes(t.bytes),
        pct(t.built_bytes, t.bytes),
        t.building,
        ibytes(t.building_done_bytes),
        ibytes(t.building_bytes),
        t.not_built,
        t.failed,
        t.corrupt,
        t.stale_locks,
        t.problems
    );
    if let Some(e) = estimate {
        let basis = match e.basis {
            Basis::Observed { secs: d } => format!("observed over the last {}", secs(d)),
            Basis::Builders { builders } => {
                format!(
                    "{builders} builder{} reporting, each since its batch started",
                    if builders == 1 { "" } else { "s" }
                )
            }
        };
        let eta = e.eta_secs.map_or(String::new(), |x| format!(" · ETA {}", secs(x)));
        let rate = human_rate(e.bytes_per_sec);
        let _ = writeln!(
            s,
            "Rate: {rate} ({basis}) · done {} of {} ({:.1}%){eta}",
            ibytes(t.done_bytes),
            ibytes(t.bytes),
            pct(t.done_bytes, t.bytes)
        );
    }
    for (piece, ids) in same_pieces(list) {
        let _ = writeln!(
            s,
            "WARNING: {} are built with the same piece {piece}: a deal for each would store the same data again (a wasted deal); ship one of them",
            ids.join(", ")
        );
    }
    let mut not_built_shown = 0;
    for (i, b) in list.iter().enumerate() {
        let fill = fill_pct(planned, i).map_or(String::new(), |f| format!(" fill {f:.3}%"));
        let line = match &b.state {
            State::Building { host, pid, heartbeat_age, progress } => {
                let done = match progress {
                    Some(p) => format!(
                        "{:.1}% done · {} · read {} of {} · {}/{} files · CAR {} of {}",
                        p.fraction() * 100.0,
                        p.phase.name(),
                        ibytes(p.bytes_done),
                        ibytes(p.bytes_total),
                        p.files_done,
                        p.files_total,
                        ibytes(p.car_bytes),
                        ibytes(p.car_bound)
                    ),
                    None => format!("no progress reported ({})", ibytes(b.bytes)),
                };
                format!("{} building on {host} (pid {pid}): {done} · heartbeat {heartbeat_age} s ago", b.id)
            }
            State::StaleLock { host, pid, heartbeat_age, reason } => format!(
                "{} STALE LOCK of {host} (pid {pid}, heartbeat {heartbeat_age} s ago): {}; a builder takes it over",
                b.id,
                reason.reason()
            ),
            State::Failed { host, reason } => format!("{} FAILED on {host}: {reason}", b.id),
            State::Corrupt { reason } => format!("{} CORRUPT: {reason}; `carload build` rebuilds it", b.id),
            State::Problem { reason } => format!("{} PROBLEM: {reason}", b.id),
            State::Built { sources_changed: Some(why), .. } => {
                format!("{} built; note: its sources changed since ({why}); the CAR is what ships", b.id)
            }
            State::Built { payload_cid, piece_cid, piece_size, car_size, .. } if all => {
                let planned_piece = planned.get(i).map_or(*piece_size, |p| p.1);
                let real = if *piece_size < planned_piece {
                    format!("{} padded, planned {}", ibytes(*piece_size), ibytes(planned_piece))
                } else {
                    format!("{} padded", ibytes(*piece_size))
                };
                format!(
                    "{} built: payload {payload_cid} · piece {piece_cid} ({real}) · CAR {car_size} bytes ·{fill}",
                    b.id
                )
            }
            State::NotBuilt if all || not_built_shown < 5 => {
                not_built_shown += 1;
                format!("{} not built ({},{fill})", b.id, ibytes(b.bytes))
            }
            _ => continue,
        };
        let _ = writeln!(s, "{line}");
    }
    if !all && t.not_built > not_built_shown {
        let _ = writeln!(s, "… {} more not built (--all lists every batch)", t.not_built - not_built_shown);
    }
    s
}

/// The `--json` object: the totals, the rate (or `null`), built batches sharing a piece
/// (`same_pieces`: piece CID and batch IDs) and every batch's state with its `fill` (%, as
/// `plan` prints it) and `planned_piece_size`.
pub fn json(list: &[BatchStatus], planned: &Planned, estimate: Option<&Estimate>) -> serde_json::Value {
    let mut v = serde_json::to_value(summary(list)).expect("plain data");
    v["rate"] = serde_json::to_value(estimate).expect("plain data");
    v["same_pieces"] = same_pieces(list)
        .into_iter()
        .map(|(piece, ids)| serde_json::json!({"piece_cid": piece, "batches": ids}))
        .collect();
    v["status"] = serde_json::to_value(list).expect("plain data");
    for (i, b) in v["status"].as_array_mut().into_iter().flatten().enumerate() {
        if let (Some(f), Some(&(_, piece))) = (fill_pct(planned, i), planned.get(i)) {
            b["fill"] = serde_json::json!(f);
            b["planned_piece_size"] = serde_json::json!(piece);
        }
    }
    v
}

/// Runs `carload status`.
pub fn status_cmd(a: StatusArgs) -> Result<()> {
    let folders =
        crate::cli::shipment::OutFolders::read(&a.out)?.ok_or_else(|| crate::edge::config::no_out("status"))?;
    // The shipment is read once, a batch at a time: what each refresh needs of a batch is its
    // totals and fingerprint (`Watched`), never its file list.
    let name = || a.shipment.display().to_string();
    let (f, index) = crate::cli::shipment::open_index(&a.shipment)?;
    let watched = index
        .batches
        .iter()
        .map(|at| read_batch_at(&f, &index.header, at).map(|b| (Watched::of(&index.header, &b), b.piece_size)))
        .collect::<Result<Vec<_>, _>>()
        .with_context(name)?;
    let planned: Vec<(u64, u64)> = watched.iter().map(|(w, piece)| (w.car_size_bound, *piece)).collect();
    let watched: Vec<Watched> = watched.into_iter().map(|(w, _)| w).collect();
    let batch = |i: usize| read_batch_at(&f, &index.header, &index.batches[i]).ok();
    // Lock holders judged as `build` judges them.
    let me = crate::edge::host::owner();
    let rule = carload::shipment::lock::Rule::new(&me, Duration::from_secs(a.stale_after));
    // Earlier snapshots (with their `now`) for the observed rate.
    let mut samples: VecDeque<Sample> = VecDeque::new();
    // Each built batch's sources are checked once (a note: its CAR is what ships).
    let mut noted: std::collections::HashMap<String, Option<String>> = std::collections::HashMap::new();
    let base = carload::shipment::build::source_root(&index.header, None).into_owned();
    loop {
        let now = SystemTime::now();
        let mut list = status_at(folders.outs(), &index.header, &watched, &batch, now, &rule);
        for (i, b) in list.iter_mut().enumerate() {
            if let State::Built { sources_changed, .. } = &mut b.state {
                let note = noted
                    .entry(b.id.clone())
                    .or_insert_with(|| batch(i).and_then(|rec| carload::shipment::source::changed_since(&rec, &base)));
                sources_changed.clone_from(note);
            }
        }
        let est = estimate(&list, now, samples.make_contiguous());
        samples.push_back(Sample { at: now, done_bytes: summary(&list).done_bytes });
        while samples.front().is_some_and(|x| now.duration_since(x.at).unwrap_or_default() > WINDOW) {
            samples.pop_front();
        }
        let drives = folders.set.as_ref().map(|set| drive_lines(set, &watched, &list));
        let mut o = std::io::stdout().lock();
        if a.json {
            let mut v = json(&list, &planned, est.as_ref());
            if let Some((usage, _)) = &drives {
                v["drives"] = serde_json::to_value(usage).expect("plain data");
            }
            let _ = writeln!(o, "{v}");
        } else {
            let render = |list: &[BatchStatus], planned: &Planned, all: bool, est: Option<&Estimate>| {
                let mut text = render(list, planned, all, est);
                if let Some((_, lines)) = &drives {
                    text.insert_str(text.find('\n').map_or(0, |i| i + 1), lines);
                }
                text
            };
            if a.watch {
                // Home, then each line cleared as it is rewritten, then the rest of the screen:
                // refreshed in place without a blank flash.
                let text = render(&list, &planned, a.all, est.as_ref()).replace('\n', "\x1b[K\n");
                let _ = write!(o, "\x1b[H{text}\x1b[J");
            } else {
                let _ = o.write_all(render(&list, &planned, a.all, est.as_ref()).as_bytes());
            }
        }
        let _ = o.flush();
        drop(o);
        if !a.watch {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}
