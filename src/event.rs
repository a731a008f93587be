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
}

/// Receives [`Event`]s.
pub trait Observer {
    /// Called for each event, on the thread doing the work.
    fn event(&mut self, event: Event);
}

impl<F: FnMut(Event)> Observer for F {
    fn event(&mut self, event: Event) {
        self(event)
    }
}

/// An observer that ignores everything.
pub struct Ignore;

impl Observer for Ignore {
    fn event(&mut self, _: Event) {}
}
