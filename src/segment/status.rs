//! Where the build of a deals file stands in a folder: for each deal, built (its sidecar is the
//! plan's deal and the file has the deal's length: [`super::deals::judge_deal`]), being built
//! (its lock's holder is live, with the builder's progress when its lock reports it), left by a
//! builder that is gone, not built, or outputs that are not this deal. `carload segment status`
//! shows it; `segment build` decides with the same judgement and lock rule.
//!
//! Nothing here reads a clock: the caller passes `now`.

use super::deals::{judge_deal, Deal, Judged};
use crate::shipment::lock::{self, Progress, Rule, Verdict};
use serde::Serialize;
use std::path::Path;
use std::time::SystemTime;

/// One deal's state in an output folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DealState {
    /// No sidecar and no lock.
    NotBuilt,
    /// A live builder holds its lock.
    Building {
        /// The lock's `host`.
        host: String,
        /// The lock's `pid`.
        pid: u32,
        /// Seconds since the lock was refreshed.
        heartbeat_age: u64,
        /// The builder's progress as of its last heartbeat (`bytes_done` of `bytes_total` CAR
        /// bytes re-hashed and copied, segments as files), when its lock reports it.
        #[serde(flatten)]
        progress: Option<Progress>,
    },
    /// Its lock's holder is gone as the lock rule judges it (`segment build` takes it over).
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
    /// Built: its sidecar is the plan's deal, and the deal file has the deal's length.
    Built,
    /// Outputs are there that are not this deal as planned (`segment build` rebuilds over them).
    Other {
        /// What does not match.
        reason: String,
    },
    /// The folder or the lock could not be read.
    Problem {
        /// The error.
        reason: String,
    },
}

/// One deal's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DealStatus {
    /// The deal's ID.
    pub id: String,
    /// Its state.
    #[serde(flatten)]
    pub state: DealState,
}

/// The state of deal `d` in `dir` as of `now`, a lock's holder judged by `rule`. A built deal
/// is built whatever lock remains (a builder that died after committing); otherwise a lock
/// decides between building and stale, and without one the outputs between not built and other.
pub fn deal_status(dir: &Path, d: &Deal, now: SystemTime, rule: &Rule) -> DealStatus {
    let state = match judge_deal(dir, d) {
        Err(e) => DealState::Problem { reason: format!("reading {}: {e}", dir.display()) },
        Ok(Judged::Built) => DealState::Built,
        Ok(judged) => match lock::read_lock(dir, &d.id, now, rule) {
            Err(e) => DealState::Problem { reason: e.to_string() },
            Ok(Some(held)) => {
                let (host, pid, heartbeat_age) = (held.host, held.pid, held.age.as_secs());
                match held.verdict {
                    Verdict::Live => {
                        // As a deal build records it: CAR bytes of the deal, its segments.
                        let (total, n) = (d.car_bytes(), d.segments.len() as u64);
                        let progress = held.progress.filter(|p| p.is_for(total, n, total));
                        DealState::Building { host, pid, heartbeat_age, progress }
                    }
                    reason => DealState::StaleLock { host, pid, heartbeat_age, reason },
                }
            }
            Ok(None) => match judged {
                Judged::Other(reason) => DealState::Other { reason },
                _ => DealState::NotBuilt,
            },
        },
    };
    DealStatus { id: d.id.clone(), state }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Phase;
    use crate::segment::deals::{deal_path, plan, result_bytes, result_path, Piece};
    use crate::segment::layout;
    use crate::shipment::lock::{claim, Claim, Owner};
    use std::time::Duration;

    fn one_deal() -> Deal {
        let pieces = vec![Piece { batch: "b1".into(), root: [7; 32], size: 1 << 10, car_size: 900 }];
        plan(&pieces, 1 << 14).unwrap().remove(0)
    }

    #[test]
    fn each_state_is_judged_from_the_folder_and_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let d = one_deal();
        let me = Owner::named("here", std::process::id());
        let rule = Rule::new(&me, Duration::from_secs(60));
        let now = SystemTime::now();
        let status = |now| deal_status(dir.path(), &d, now, &rule).state;
        assert_eq!(status(now), DealState::NotBuilt);

        // A live lock with a progress record: building, with the record.
        let Claim::Claimed { lock, .. } = claim(dir.path(), &d.id, &rule, now).unwrap() else { panic!("claimed") };
        let p = Progress {
            phase: Phase::Writing,
            bytes_done: 400,
            bytes_total: 900,
            files_done: 0,
            files_total: 1,
            car_bytes: 400,
            car_bound: 900,
            elapsed_ms: 1500,
        };
        assert!(lock.heartbeat_with(&p).unwrap());
        match status(now) {
            DealState::Building { host, progress, .. } => {
                assert_eq!(host, "here");
                assert_eq!(progress, Some(p));
            }
            other => panic!("{other:?}"),
        }
        // A record of other totals (another plan's deal of this ID) is not shown as this one's.
        assert!(lock.heartbeat_with(&Progress { bytes_total: 901, ..p }).unwrap());
        assert!(matches!(status(now), DealState::Building { progress: None, .. }));
        assert!(lock.heartbeat_with(&p).unwrap());
        // The same lock an hour later: stale.
        assert!(matches!(
            status(now + Duration::from_secs(3600)),
            DealState::StaleLock { reason: Verdict::NotRefreshed, .. }
        ));
        // A sidecar of another deal, under the lock: still the lock's; without it, other.
        std::fs::write(result_path(dir.path(), &d.id), b"{}\n").unwrap();
        assert!(matches!(status(now), DealState::Building { .. }));
        lock.release().unwrap();
        assert!(matches!(status(now), DealState::Other { reason } if reason.contains("not the result")));
        // The plan's sidecar and a deal file of the right length: built.
        std::fs::write(result_path(dir.path(), &d.id), result_bytes(&d)).unwrap();
        assert!(matches!(status(now), DealState::Other { reason } if reason.contains(".deal is missing")));
        let f = std::fs::File::create(deal_path(dir.path(), &d.id)).unwrap();
        f.set_len(layout::unpadded(d.piece.padded_size) - 1).unwrap();
        assert!(matches!(status(now), DealState::Other { reason } if reason.contains("bytes, not")));
        f.set_len(layout::unpadded(d.piece.padded_size)).unwrap();
        assert_eq!(status(now), DealState::Built);
        // Built wins over a lock left behind.
        let Claim::Claimed { lock, .. } = claim(dir.path(), &d.id, &rule, now).unwrap() else { panic!("claimed") };
        assert_eq!(status(now), DealState::Built);
        drop(lock);
    }
}
