//! Where a shipment's build stands, from its output folder alone: which batches are built (their
//! result belongs to them), which are locked by a builder (and how fresh the lock is), which
//! are not built. The CLI's `carload status` and the workstation's cluster view read the same
//! files.

use super::build::{find_result, Found};
use super::file::{Batch, Header};
use super::lock::holder;
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
    },
    /// Its lock was not refreshed within the stale limit: its builder likely died.
    StaleLock {
        /// The lock's `host`.
        host: String,
        /// The lock's `pid`.
        pid: u32,
        /// Seconds since the lock was refreshed.
        heartbeat_age: u64,
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
}

/// The state of every batch in `dir` at time `now` (locks older than `stale_after` are stale).
pub fn status(
    dir: &Path,
    header: &Header,
    batches: &[Batch],
    now: SystemTime,
    stale_after: Duration,
) -> Vec<BatchStatus> {
    batches
        .iter()
        .map(|b| {
            let state = match find_result(dir, header, b) {
                Found::Built(r) => State::Built {
                    payload_cid: r.payload_cid,
                    piece_cid: r.piece_cid,
                    piece_size: r.piece_size,
                    car_size: r.car_size,
                },
                Found::Other(reason) | Found::Unreadable(reason) => State::Problem { reason },
                Found::Missing => match holder(dir, &b.id, now) {
                    Some((host, pid, age)) if age >= stale_after => {
                        State::StaleLock { host, pid, heartbeat_age: age.as_secs() }
                    }
                    Some((host, pid, age)) => State::Building { host, pid, heartbeat_age: age.as_secs() },
                    None => State::NotBuilt,
                },
            };
            BatchStatus { id: b.id.clone(), bytes: b.bytes(), state }
        })
        .collect()
}
