//! Builds as the workstation sees them: this workstation's running builds with their progress
//! (from the library's events), other builders' locks seen in the output folder, failures with
//! their reasons, the shipment's overall rate and a timestamped log. Times come in the messages
//! (seconds since the Unix epoch), so this state never reads a clock.

use carload::event::Phase;
use std::collections::{HashMap, VecDeque};

/// Progress of one batch built here.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Current phase.
    pub phase: Phase,
    /// Source bytes hashed.
    pub bytes: u64,
    /// Source bytes of the batch.
    pub bytes_total: u64,
    /// Files hashed.
    pub files: u64,
    /// Files (and parts) of the batch.
    pub files_total: u64,
    /// CAR bytes written.
    pub car: u64,
    /// CAR bytes expected (the planned bound).
    pub car_total: u64,
    /// When it started.
    pub started: f64,
    /// Time of the latest report.
    pub at: f64,
}

impl Progress {
    /// Work done over work to do: reading the sources, then writing the CAR.
    pub fn fraction(&self) -> f64 {
        let total = (self.bytes_total + self.car_total).max(1) as f64;
        ((self.bytes + self.car) as f64 / total).min(1.0)
    }

    /// Work bytes per second since the start.
    pub fn rate(&self) -> f64 {
        let dt = self.at - self.started;
        if dt <= 0.0 {
            0.0
        } else {
            (self.bytes + self.car) as f64 / dt
        }
    }

    /// Seconds left at the current rate.
    pub fn eta(&self) -> Option<f64> {
        let r = self.rate();
        (r > 0.0).then(|| (self.bytes_total + self.car_total).saturating_sub(self.bytes + self.car) as f64 / r)
    }

    /// Source bytes the work done so far stands for (for the shipment's total).
    pub fn done_bytes(&self) -> f64 {
        self.fraction() * self.bytes_total as f64
    }
}

/// What is happening to a batch, beyond its plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Activity {
    /// Waiting for a build slot here.
    Queued,
    /// Being built here.
    Running(Progress),
    /// The last build here failed.
    Failed(String),
    /// Its outputs in the output folder cannot count as built (corrupt, or another plan's), with
    /// the judge's reason; `build` rebuilds over them.
    Outputs(String),
    /// Its drive is not given: it waits, for the reason (`assigned to drive 2 (d2), which is
    /// not among the output folders`).
    Waits(String),
    /// Another builder holds its lock.
    Foreign {
        /// The lock's owner line (`host=… pid=…`).
        holder: String,
        /// Seconds since the lock was refreshed.
        age: u64,
        /// Whether the lock is older than the stale limit (its builder likely died).
        stale: bool,
        /// The builder's progress as its lock reports it (as of its last heartbeat).
        progress: Option<carload::shipment::lock::Progress>,
    },
}

/// One log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// When (seconds since the Unix epoch).
    pub at: f64,
    /// Whether it reports a failure.
    pub error: bool,
    /// The text.
    pub text: String,
}

/// Every build's state.
#[derive(Debug, Default)]
pub struct Builds {
    /// By batch ID.
    pub activity: HashMap<String, Activity>,
    /// The log, oldest first (the last 2,000 lines).
    pub log: VecDeque<LogLine>,
    /// Shipment bytes done at each tick, for the rate.
    samples: VecDeque<(f64, f64)>,
    /// Throughput history in MB/s, one value per tick (the sparkline).
    pub history: VecDeque<u64>,
    /// Batches built by this workstation in this session.
    pub built_here: usize,
}

impl Builds {
    /// Adds a log line.
    pub fn log(&mut self, at: f64, error: bool, text: impl Into<String>) {
        self.log.push_back(LogLine { at, error, text: text.into() });
        while self.log.len() > 2000 {
            self.log.pop_front();
        }
    }

    /// Batches building or queued here.
    pub fn busy_here(&self) -> usize {
        self.activity.values().filter(|a| matches!(a, Activity::Queued | Activity::Running(_))).count()
    }

    /// Whether `id` is queued or building here.
    pub fn is_busy(&self, id: &str) -> bool {
        matches!(self.activity.get(id), Some(Activity::Queued | Activity::Running(_)))
    }

    /// Records the shipment's bytes done at time `at`; returns the rate over the last 30 s.
    pub fn tick(&mut self, at: f64, done: f64) -> f64 {
        if let Some(&(t0, d0)) = self.samples.back() {
            let rate = if at > t0 { (done - d0).max(0.0) / (at - t0) } else { 0.0 };
            self.history.push_back((rate / 1e6).round() as u64);
            while self.history.len() > 120 {
                self.history.pop_front();
            }
        }
        self.samples.push_back((at, done));
        while self.samples.front().is_some_and(|&(t, _)| at - t > 30.0) {
            self.samples.pop_front();
        }
        self.rate()
    }

    /// Shipment bytes per second over the samples kept (the last 30 s).
    pub fn rate(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, d0)), Some(&(t1, d1))) if t1 > t0 => (d1 - d0).max(0.0) / (t1 - t0),
            _ => 0.0,
        }
    }
}

/// `HH:MM:SS` (UTC) of a time in seconds since the Unix epoch.
pub fn clock(at: f64) -> String {
    let s = at.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Another builder's progress as its lock reports it, for the batch info and details:
/// ` (hashing, 1.20 GiB of 3.00 GiB read, 40% done)`.
pub fn foreign_progress(p: &carload::shipment::lock::Progress) -> String {
    format!(
        " ({}, {} of {} read, {:.0}% done)",
        p.phase.name(),
        carload::human::ibytes(p.bytes_done),
        carload::human::ibytes(p.bytes_total),
        p.fraction() * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_rate_eta_and_the_shipment_rate() {
        let p = Progress {
            phase: Phase::Hashing,
            bytes: 50,
            bytes_total: 100,
            files: 1,
            files_total: 2,
            car: 0,
            car_total: 100,
            started: 10.0,
            at: 15.0,
        };
        assert_eq!(p.fraction(), 0.25);
        assert_eq!(p.rate(), 10.0);
        assert_eq!(p.eta(), Some(15.0));
        let mut b = Builds::default();
        assert_eq!(b.tick(0.0, 0.0), 0.0);
        assert_eq!(b.tick(1.0, 2e6), 2e6);
        assert_eq!(b.tick(2.0, 6e6), 3e6);
        assert_eq!(b.history.iter().copied().collect::<Vec<_>>(), [2, 4]);
        assert_eq!(clock(3_600.0 * 25.0 + 61.0), "01:01:01");
    }
}
