//! Where a shipment's build stands, from its output folder alone: which batches are built (their
//! result belongs to them), which are locked by a builder (how fresh the lock is, and how far
//! the builder is when its lock reports progress), which are not built; totals, and a rate and
//! ETA. The CLI's `carload status` and the workstation's watcher call the same [`status`].
//!
//! Nothing here reads a clock: the caller passes `now`, and earlier snapshots for a measured
//! rate ([`estimate`]).

use super::file::{Batch, BatchResult, Header};
use super::judge::{judge, Fingerprints};
use super::lock::{Progress, Rule, Verdict};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// One batch's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// No result, no lock.
    NotBuilt,
    /// A builder holds its lock.
    Building {
        /// The lock's `host`.
        host: String,
        /// The lock's `pid`.
        pid: u32,
        /// Seconds since the lock was refreshed.
        heartbeat_age: u64,
        /// The builder's progress as of its last heartbeat, when its lock reports one for
        /// this batch (`bytes_done` of `bytes_total`, files, CAR bytes, phase; absent from
        /// builders that do not report it).
        #[serde(flatten)]
        progress: Option<Progress>,
    },
    /// Its lock's holder is gone as the lock rule judges it (`build` takes it over): not
    /// refreshed within the stale limit, or provably dead (its process gone from this host,
    /// its host rebooted).
    StaleLock {
        /// The lock's `host`.
        host: String,
        /// The lock's `pid`.
        pid: u32,
        /// Seconds since the lock was refreshed.
        heartbeat_age: u64,
        /// Why the holder is judged gone.
        reason: Verdict,
    },
    /// Built: the result belongs to the batch.
    Built {
        /// Payload CID.
        payload_cid: String,
        /// Piece CID v1.
        piece_cid: String,
        /// Padded piece size.
        piece_size: u64,
        /// CAR bytes.
        car_size: u64,
        /// Why its sources no longer match the record it was built from, when a caller checked
        /// them ([`super::source::changed_since`]): the CAR is still what ships.
        #[serde(skip_serializing_if = "Option::is_none")]
        sources_changed: Option<String>,
    },
    /// Not built: its last build failed (`<id>.failed`, written by the builder).
    Failed {
        /// The builder's host.
        host: String,
        /// Why.
        reason: String,
    },
    /// Its outputs are present but inconsistent (a result that lies, a CAR missing, truncated
    /// or over the bound, no sidecar manifest): not built; `build` rebuilds it.
    Corrupt {
        /// What.
        reason: String,
    },
    /// Something is wrong with its outputs (a result from other contents, an unreadable one).
    Problem {
        /// What.
        reason: String,
    },
}

/// One batch and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchStatus {
    /// Batch ID.
    pub id: String,
    /// Source bytes.
    pub bytes: u64,
    /// Its state.
    #[serde(flatten)]
    pub state: State,
    /// The whole result when built (checked to belong to the batch; the state summarizes it).
    #[serde(skip)]
    pub result: Option<BatchResult>,
}

impl BatchStatus {
    /// Source bytes done: all of them when built, a running builder's reported share of its
    /// work ([`Progress::done_bytes`]), else none.
    pub fn done_bytes(&self) -> u64 {
        match &self.state {
            State::Built { .. } => self.bytes,
            State::Building { progress: Some(p), .. } => p.done_bytes(),
            _ => 0,
        }
    }
}

/// What [`status_of`] needs of a batch: its ID, totals and fingerprint, without its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// Batch ID.
    pub id: String,
    /// Source bytes.
    pub bytes: u64,
    /// Files (and file parts).
    pub files: u64,
    /// CAR size bound.
    pub car_size_bound: u64,
    /// The fingerprints its results may carry.
    pub fingerprints: Fingerprints,
    /// Bytes of its file names (what its sidecars' sizes grow with).
    pub name_bytes: u64,
    /// Upper bound of the temporary spool a build of it writes beside its CAR (the sections of
    /// its small files: [`crate::batch::spool_bound`]).
    pub spool_bound: u64,
}

impl Watched {
    /// The record of `b` planned with `header`.
    pub fn of(header: &Header, b: &Batch) -> Self {
        Watched {
            id: b.id.clone(),
            bytes: b.bytes(),
            files: b.files.len() as u64,
            car_size_bound: b.car_size_bound,
            fingerprints: Fingerprints::of(header, b),
            name_bytes: b.files.iter().map(|f| f.name.len() as u64).sum(),
            spool_bound: crate::batch::spool_bound(b.files.iter().map(|f| f.len()), header.profile.chunk_size as u64),
        }
    }
}

/// The state of every batch in `dir` at time `now`, each judged by [`judge`] (lock holders
/// judged by `rule`, as `build` judges them).
pub fn status(dir: &Path, header: &Header, batches: &[Batch], now: SystemTime, rule: &Rule) -> Vec<BatchStatus> {
    batches.iter().map(|b| judge(dir, header, &Watched::of(header, b), &|| Some(b.clone()), now, rule)).collect()
}

/// [`status`] of batches known by their [`Watched`] records (no file lists held: a shipment of
/// millions of files is read once). `batch(i)` gives batch `i` whole, asked for only to judge a
/// version 1 result written before fingerprints existed.
pub fn status_of(
    dir: &Path,
    header: &Header,
    batches: &[Watched],
    batch: &dyn Fn(usize) -> Option<Batch>,
    now: SystemTime,
    rule: &Rule,
) -> Vec<BatchStatus> {
    batches.iter().enumerate().map(|(i, w)| judge(dir, header, w, &|| batch(i), now, rule)).collect()
}

/// [`status_of`] over batches whose outputs are where `outs` says: a batch on a drive not given
/// is a [`State::Problem`] saying so, one not assigned to a drive is not built.
pub fn status_at(
    outs: super::drives::Outs<'_>,
    header: &Header,
    batches: &[Watched],
    batch: &dyn Fn(usize) -> Option<Batch>,
    now: SystemTime,
    rule: &Rule,
) -> Vec<BatchStatus> {
    use super::drives::Placement;
    batches
        .iter()
        .enumerate()
        .map(|(i, w)| match outs.placement(&w.id) {
            Placement::Dir(d) => judge(d, header, w, &|| batch(i), now, rule),
            Placement::Unassigned => {
                BatchStatus { id: w.id.clone(), bytes: w.bytes, state: State::NotBuilt, result: None }
            }
            Placement::Refused(e) => BatchStatus {
                id: w.id.clone(),
                bytes: w.bytes,
                state: State::Problem { reason: e.to_string() },
                result: None,
            },
        })
        .collect()
}

/// Totals over a status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Batches.
    pub batches: usize,
    /// Batches built.
    pub built: usize,
    /// Batches a live builder holds.
    pub building: usize,
    /// Batches with a stale lock.
    pub stale_locks: usize,
    /// Batches whose outputs are present but inconsistent.
    pub corrupt: usize,
    /// Batches whose last build failed.
    pub failed: usize,
    /// Batches with a problem.
    pub problems: usize,
    /// Batches not built and not locked.
    pub not_built: usize,
    /// Source bytes of every batch.
    pub bytes: u64,
    /// Source bytes of the batches built.
    pub built_bytes: u64,
    /// Source bytes of the batches building.
    pub building_bytes: u64,
    /// Source bytes the running builders' reported work stands for.
    pub building_done_bytes: u64,
    /// Source bytes of the batches not built and not locked.
    pub not_built_bytes: u64,
    /// Source bytes done: built plus the running builders' share.
    pub done_bytes: u64,
}

/// Totals of `list`.
pub fn summary(list: &[BatchStatus]) -> Summary {
    let mut t = Summary { batches: list.len(), ..Summary::default() };
    for b in list {
        t.bytes += b.bytes;
        t.done_bytes += b.done_bytes();
        match b.state {
            State::Built { .. } => {
                t.built += 1;
                t.built_bytes += b.bytes;
            }
            State::Building { .. } => {
                t.building += 1;
                t.building_bytes += b.bytes;
                t.building_done_bytes += b.done_bytes();
            }
            State::StaleLock { .. } => t.stale_locks += 1,
            State::Corrupt { .. } => t.corrupt += 1,
            State::Failed { .. } => {
                t.failed += 1;
                t.not_built_bytes += b.bytes;
            }
            State::Problem { .. } => t.problems += 1,
            State::NotBuilt => {
                t.not_built += 1;
                t.not_built_bytes += b.bytes;
            }
        }
    }
    t
}

/// An earlier snapshot: when, and [`Summary::done_bytes`] then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The `now` of that snapshot.
    pub at: SystemTime,
    /// Source bytes done then.
    pub done_bytes: u64,
}

/// How a rate was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum Basis {
    /// Bytes done now against an earlier snapshot this many seconds old.
    Observed {
        /// Seconds between the snapshots.
        secs: u64,
    },
    /// The sum of the running builders' own rates: each one's work done over the time its
    /// batch has been building (both from its lock).
    Builders {
        /// Builders counted.
        builders: usize,
    },
}

/// A build rate and the time left at that rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// Source bytes per second.
    pub bytes_per_sec: f64,
    /// How it was measured.
    #[serde(flatten)]
    pub basis: Basis,
    /// Seconds until every batch is built at this rate (none at a rate of 0).
    pub eta_secs: Option<u64>,
}

/// An observed rate needs snapshots at least this far apart.
pub const MIN_OBSERVED: Duration = Duration::from_secs(60);
/// Snapshots older than this are not used (the rate is over the last minutes).
pub const WINDOW: Duration = Duration::from_secs(600);

/// The shipment's build rate and ETA as of `now`, from `list` (taken at `now`) and `earlier`
/// snapshots. Observed when a snapshot between [`MIN_OBSERVED`] and [`WINDOW`] old exists
/// (the oldest one): source bytes done now minus then, over the time between — completed
/// batches and the running builders' reported progress alike, whoever the builders are.
/// Otherwise (a single look) the sum of the running builders' own rates ([`Progress::rate`]),
/// which assumes they keep going at their pace; builders that report no progress, and the
/// gaps between one builder's batches, are not counted. `None` when neither is available.
pub fn estimate(list: &[BatchStatus], now: SystemTime, earlier: &[Sample]) -> Option<Estimate> {
    let t = summary(list);
    let old = earlier
        .iter()
        .filter_map(|s| now.duration_since(s.at).ok().map(|d| (d, s)))
        .filter(|(d, _)| (MIN_OBSERVED..=WINDOW).contains(d))
        .max_by_key(|(d, _)| *d);
    let (rate, basis) = match old {
        Some((d, s)) => {
            (t.done_bytes.saturating_sub(s.done_bytes) as f64 / d.as_secs_f64(), Basis::Observed { secs: d.as_secs() })
        }
        None => {
            let rates: Vec<f64> = list
                .iter()
                .filter_map(|b| match &b.state {
                    State::Building { progress: Some(p), .. } => p.rate(),
                    _ => None,
                })
                .collect();
            if rates.is_empty() {
                return None;
            }
            (rates.iter().sum(), Basis::Builders { builders: rates.len() })
        }
    };
    let left = t.bytes.saturating_sub(t.done_bytes);
    let eta_secs = if left == 0 {
        Some(0)
    } else if rate > 0.0 {
        Some((left as f64 / rate).ceil() as u64)
    } else {
        None
    };
    Some(Estimate { bytes_per_sec: rate, basis, eta_secs })
}

/// Built batches that share a piece CID: the same data would be stored by two deals (a wasted
/// deal). From `(batch ID, piece CID)` of the built batches; each group is the piece CID and the
/// IDs holding it (two or more), in the order given, groups ordered by their first ID's place.
pub fn same_pieces<'a>(built: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (id, piece) in built {
        let g = *at.entry(piece).or_insert_with(|| {
            groups.push((piece.to_string(), Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(id.to_string());
    }
    groups.retain(|(_, ids)| ids.len() > 1);
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Phase;
    use crate::shipment::lock::{claim, lock_path, Claim, Owner};

    /// The rule of a judge on host `here` (boot `b1`, PID namespace 7, pid 1) to whom only pid
    /// 10 exists.
    fn here() -> Owner {
        Owner { host: "here".into(), pid: 1, boot: Some("b1".into()), pidns: Some(7) }
    }

    fn rule(me: &Owner) -> Rule<'_> {
        Rule { me, stale_after: Duration::from_secs(300), exists: &|pid| pid == 10 }
    }
    use crate::shipment::plan::{plan, PlanOptions, SourceFile, SECTOR_32GIB};

    fn shipment() -> crate::shipment::Shipment {
        let mut o = PlanOptions::for_sector(SECTOR_32GIB, crate::profile::Profile::default());
        o.piece_size = 1 << 20;
        o.min_piece_size = 1 << 20;
        let ident = crate::shipment::file::Ident { ctime_ns: 1, ino: 1 };
        let files = (0..12u64)
            .map(|i| SourceFile { name: format!("f{i:02}"), size: 300_000 + i, mtime_ns: 1, ident })
            .collect();
        plan(files, &o, vec!["data".into()], Some("/data".into())).unwrap()
    }

    /// A version 1 shipment (planned before files had an identity and base folders counted).
    fn shipment_v1() -> crate::shipment::Shipment {
        let mut s = shipment();
        s.header.version = 1;
        s.header.base = None;
        for b in &mut s.batches {
            for f in &mut b.files {
                f.ident = None;
            }
        }
        s
    }

    /// `status_of` (records without files) judges results as `status` does: by fingerprint, and a
    /// result from before fingerprints by the batch's file list, asked for only then.
    #[test]
    fn status_of_watched_records_equals_status_of_whole_batches() {
        use crate::shipment::build::{outputs, read_result};
        use crate::shipment::file::{write_result_json, BatchResult, ResultFile};
        let s = shipment_v1();
        let dir = tempfile::tempdir().unwrap();
        let result = |b: &Batch, fingerprint: Option<String>| BatchResult::sample(&b.id, fingerprint);
        let files = |b: &Batch| {
            b.files
                .iter()
                .map(|f| ResultFile {
                    name: f.name.clone(),
                    cid: "bafy1".into(),
                    offset: f.part.map(|p| p.offset),
                    length: f.part.map(|p| p.len),
                })
                .collect::<Vec<_>>()
        };
        let write = |b: &Batch, r: &BatchResult, list: Vec<ResultFile>| {
            let out = outputs(dir.path(), &b.id);
            let mut json = Vec::new();
            write_result_json(&mut json, r, list).unwrap();
            std::fs::write(out.json, json).unwrap();
            std::fs::write(out.car, b"car").unwrap();
            std::fs::write(out.manifest, b"{}").unwrap();
        };
        // 0: built with the right fingerprint; 1: before fingerprints, same files; 2: another
        // plan's fingerprint; 3: before fingerprints, other files; the rest: not built.
        let (b0, b1, b2, b3) = (&s.batches[0], &s.batches[1], &s.batches[2], &s.batches[3]);
        write(b0, &result(b0, Some(crate::shipment::build::fingerprint(&s.header, b0))), files(b0));
        write(b1, &result(b1, None), files(b1));
        write(b2, &result(b2, Some("00".into())), files(b2));
        write(b3, &result(b3, None), files(b3)[1..].to_vec());
        assert!(read_result(dir.path(), &b3.id).unwrap().is_some());
        let now = SystemTime::now();
        let me = here();
        let stale = rule(&me);
        let whole = status(dir.path(), &s.header, &s.batches, now, &stale);
        let watched: Vec<Watched> = s.batches.iter().map(|b| Watched::of(&s.header, b)).collect();
        let asked = std::cell::Cell::new(0);
        let by_record = status_of(
            dir.path(),
            &s.header,
            &watched,
            &|i| {
                asked.set(asked.get() + 1);
                Some(s.batches[i].clone())
            },
            now,
            &stale,
        );
        assert_eq!(by_record, whole);
        let kinds: Vec<&str> = whole
            .iter()
            .take(4)
            .map(|b| match b.state {
                State::Built { .. } => "built",
                State::Problem { .. } => "problem",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["built", "built", "problem", "problem"]);
        assert_eq!(asked.get(), 2, "the file lists are read only for the results without a fingerprint");
    }

    #[test]
    fn a_building_batch_reports_its_builders_bytes_and_the_totals_and_rate_follow() {
        let s = shipment();
        assert!(s.batches.len() >= 3, "{}", s.batches.len());
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let b = &s.batches[1];
        let owner = Owner::named("node7", 42);
        let me = here();
        let rule = rule(&me);
        let Claim::Claimed { lock, .. } = claim(dir.path(), &b.id, &Rule { me: &owner, ..rule }, now).unwrap() else {
            panic!()
        };
        let list = status(dir.path(), &s.header, &s.batches, now, &rule);
        assert!(matches!(&list[1].state, State::Building { progress: None, .. }), "{:?}", list[1]);
        assert_eq!(estimate(&list, now, &[]), None, "no builder reports progress yet");
        let p = Progress {
            phase: Phase::Hashing,
            bytes_done: b.bytes() / 2,
            bytes_total: b.bytes(),
            files_done: 1,
            files_total: b.files.len() as u64,
            car_bytes: 0,
            car_bound: b.car_size_bound,
            elapsed_ms: 10_000,
        };
        assert!(lock.heartbeat_with(&p).unwrap());
        let list = status(dir.path(), &s.header, &s.batches, now, &rule);
        let State::Building { host, pid, progress: Some(got), .. } = &list[1].state else { panic!("{:?}", list[1]) };
        assert_eq!((host.as_str(), *pid, *got), ("node7", 42, p));
        let j = serde_json::to_value(&list[1]).unwrap();
        assert_eq!(j["state"], "building");
        assert_eq!(j["bytes_done"], b.bytes() / 2);
        assert_eq!(j["bytes_total"], b.bytes());
        assert_eq!(j["phase"], "hashing");
        let t = summary(&list);
        assert_eq!((t.building, t.built, t.not_built), (1, 0, s.batches.len() - 1));
        assert_eq!(t.building_done_bytes, p.done_bytes());
        assert_eq!(t.done_bytes, p.done_bytes());
        // One look: the builder's own rate.
        let e = estimate(&list, now, &[]).unwrap();
        assert_eq!(e.basis, Basis::Builders { builders: 1 });
        assert!((e.bytes_per_sec - p.done_bytes() as f64 / 10.0).abs() < 1e-6);
        assert_eq!(e.eta_secs, Some(((t.bytes - t.done_bytes) as f64 / e.bytes_per_sec).ceil() as u64));
        // With a snapshot two minutes earlier: observed over those two minutes.
        let then = Sample { at: now - Duration::from_secs(120), done_bytes: 0 };
        let too_recent = Sample { at: now - Duration::from_secs(10), done_bytes: 0 };
        let too_old = Sample { at: now - Duration::from_secs(3600), done_bytes: 0 };
        let e = estimate(&list, now, &[too_old, then, too_recent]).unwrap();
        assert_eq!(e.basis, Basis::Observed { secs: 120 });
        assert!((e.bytes_per_sec - p.done_bytes() as f64 / 120.0).abs() < 1e-6);
        // A record with another batch's totals (an earlier plan's batch of the same ID) is not shown.
        let other = Progress { bytes_total: b.bytes() + 1, ..p };
        assert!(lock.heartbeat_with(&other).unwrap());
        let list = status(dir.path(), &s.header, &s.batches, now, &rule);
        assert!(matches!(&list[1].state, State::Building { progress: None, .. }), "{:?}", list[1]);
        // Stale: no progress counted.
        let later = now + Duration::from_secs(900);
        let list = status(dir.path(), &s.header, &s.batches, later, &rule);
        assert!(matches!(&list[1].state, State::StaleLock { reason: Verdict::NotRefreshed, .. }));
        assert_eq!(summary(&list).done_bytes, 0);
        lock.release().unwrap();
    }

    /// `status` judges a lock's holder by the rule `build` takes it over by: a provably dead
    /// holder is a stale lock at once (with the reason), one that cannot be judged from here is
    /// building until its heartbeat is stale, and a lock path that is not a file is a problem.
    #[test]
    fn a_provably_dead_holder_is_a_stale_lock_at_once_and_others_wait_for_the_heartbeat() {
        let s = shipment();
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = (0..8).map(|i| format!("w{i}")).collect();
        let watched: Vec<Watched> = ids
            .iter()
            .map(|id| Watched {
                id: id.clone(),
                bytes: 1,
                files: 1,
                car_size_bound: 1,
                fingerprints: crate::shipment::judge::Fingerprints { current: "f".into(), legacy: None },
                name_bytes: 1,
                spool_bound: 1,
            })
            .collect();
        let look = |now, rule: &Rule| status_of(dir.path(), &s.header, &watched, &|_| None, now, rule);
        let now = SystemTime::now();
        let me = here();
        let rule = rule(&me);
        let holders = [
            // Same host, boot and namespace, no such process: gone.
            (Owner { pid: 9, ..here() }, Some(Verdict::ProcessGone)),
            // Same host, another boot: rebooted since.
            (Owner { pid: 10, boot: Some("b0".into()), ..here() }, Some(Verdict::Rebooted)),
            // Another PID namespace on this host (a container): pid 9 means nothing here.
            (Owner { pid: 9, pidns: Some(8), ..here() }, None),
            // A lock line of an older version: host and pid only.
            (Owner::named("here", 9), None),
            // Alive.
            (Owner { pid: 10, ..here() }, None),
        ];
        for (i, (owner, _)) in holders.iter().enumerate() {
            let r = Rule { me: owner, ..rule };
            assert!(matches!(claim(dir.path(), &ids[i], &r, now).unwrap(), Claim::Claimed { .. }));
        }
        let list = look(now, &rule);
        for (i, (owner, dead)) in holders.iter().enumerate() {
            match (&list[i].state, dead) {
                (State::StaleLock { reason, heartbeat_age: 0, pid, .. }, Some(want)) => {
                    assert_eq!((reason, *pid), (want, owner.pid));
                }
                (State::Building { .. }, None) => {}
                (other, _) => panic!("{i}: {other:?}"),
            }
        }
        let j = serde_json::to_value(&list[0]).unwrap();
        assert_eq!((j["state"].as_str(), j["reason"].as_str()), (Some("stale_lock"), Some("process_gone")));
        // Five minutes on, every lock is stale; those not provably dead for want of a heartbeat.
        let later = look(now + Duration::from_secs(301), &rule);
        assert!(matches!(later[2].state, State::StaleLock { reason: Verdict::NotRefreshed, .. }), "{later:?}");
        assert!(matches!(later[0].state, State::StaleLock { reason: Verdict::ProcessGone, .. }), "{later:?}");
        // A symlink or a folder at a lock path: a problem naming the path, never followed.
        let (l6, l7) = (lock_path(dir.path(), &ids[6]), lock_path(dir.path(), &ids[7]));
        std::os::unix::fs::symlink(lock_path(dir.path(), &ids[4]), &l6).unwrap();
        std::fs::create_dir(&l7).unwrap();
        let list = look(now, &rule);
        for (i, l, kind) in [(6, &l6, "a symbolic link"), (7, &l7, "a folder")] {
            let State::Problem { reason } = &list[i].state else { panic!("{:?}", list[i]) };
            assert!(reason.contains(&l.display().to_string()) && reason.contains(kind), "{reason}");
        }
    }

    #[test]
    fn same_pieces_groups_two_or_more() {
        let g = same_pieces([("b0", "p1"), ("b1", "p2"), ("b2", "p1"), ("b3", "p3"), ("b4", "p1"), ("b5", "p3")]);
        assert_eq!(
            g,
            vec![
                ("p1".to_string(), vec!["b0".into(), "b2".into(), "b4".into()]),
                ("p3".into(), vec!["b3".into(), "b5".into()])
            ]
        );
        assert!(same_pieces([("b0", "p1"), ("b1", "p2")]).is_empty());
    }
}
