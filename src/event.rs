//! Progress events. The library reports progress through an [`Observer`]; the CLI and the
//! terminal UI decide how to show it.

use std::path::PathBuf;

/// Something that happened while building.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The input was scanned: `files` files holding `bytes` bytes will be read.
    Scanned {
        /// Number of regular files.
        files: u64,
        /// Total bytes of those files.
        bytes: u64,
    },
    /// A file is about to be read.
    FileStarted {
        /// Its path.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// `n` more input bytes were read and hashed.
    BytesRead(u64),
    /// `n` more bytes of CAR output were produced.
    CarBytes(u64),
    /// A block was fetched from a remote source.
    BlockFetched {
        /// Its size in bytes.
        size: u64,
    },
    /// A batch build entered a new phase.
    Phase(Phase),
    /// `n` more files of a batch were read and hashed.
    FilesDone(u64),
    /// Something the user should be told that is not progress (e.g. a batch's outputs from
    /// another plan are being rebuilt over); one line.
    Notice(String),
}

/// The phases of a batch build, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Checking every source against its planned size and modification time.
    Checking,
    /// Reading and hashing every file (small files' sections spooled).
    Hashing,
    /// Writing the CAR in aggregate order while computing its piece commitment; `CarBytes`
    /// events count the bytes written.
    Writing,
}

impl Phase {
    /// Its name (`checking`, `hashing`, `writing`), as lock files and JSON reports write it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Checking => "checking",
            Phase::Hashing => "hashing",
            Phase::Writing => "writing",
        }
    }

    /// The phase named `name` ([`Phase::name`]).
    pub fn from_name(name: &str) -> Option<Phase> {
        [Phase::Checking, Phase::Hashing, Phase::Writing].into_iter().find(|p| p.name() == name)
    }
}

/// Receives [`Event`]s, and may ask for the work to stop.
pub trait Observer {
    /// Called for each event, on the thread doing the work.
    fn event(&mut self, event: Event);

    /// Whether the caller wants the work abandoned. Long-running work asks between units (a
    /// group of leaves, a file) and stops with a `Cancelled` error; the default never cancels.
    fn cancelled(&self) -> bool {
        false
    }
}

impl<F: FnMut(Event)> Observer for F {
    fn event(&mut self, event: Event) {
        self(event)
    }
}

/// An observer that forwards events to a closure and cancels when a flag is set (the terminal
/// UI's dry runs and builds are cancelled this way).
pub struct Cancellable<'a, F: FnMut(Event)> {
    /// Receives the events.
    pub on_event: F,
    /// Set to abandon the work.
    pub cancel: &'a std::sync::atomic::AtomicBool,
}

impl<F: FnMut(Event)> Observer for Cancellable<'_, F> {
    fn event(&mut self, event: Event) {
        (self.on_event)(event)
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// An observer that ignores everything.
pub struct Ignore;

impl Observer for Ignore {
    fn event(&mut self, _: Event) {}
}
