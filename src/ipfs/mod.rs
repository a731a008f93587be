//! The IPFS-node data source: fetch a DAG from a node's RPC API (kubo or js-ipfs,
//! `POST /api/v0/block/get`) and write it as a CARv1, as Powergate's
//! `pow offline prepare --ipfs-api <multiaddr> <cid>` does (reference §8).
//!
//! - [`ApiAddr`] parses the `--ipfs-api` value.
//! - [`Client`] does the RPC calls, with timeouts, bounded retries and hash verification.
//! - [`Fetcher`] walks a DAG in CAR order (depth-first pre-order, each exact CID once), fetching
//!   blocks ahead of the writer on a few worker threads; [`export_car`] writes a whole CAR.
//!
//! No terminal I/O, environment or clock reads happen here except the deadlines of HTTP
//! requests and retry backoff, all set by [`FetchConfig`].
//!
//! ```no_run
//! use carload::ipfs::{export_car, ApiAddr, FetchConfig, Fetcher};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let addr = ApiAddr::parse("/ip4/127.0.0.1/tcp/5001")?;
//! let root: cid::Cid = "QmY6zHswPvyZkAyxwM9uup1DDPb67hZqChv8hnyu4MrFWk".parse()?;
//! let fetcher = Fetcher::new(addr, FetchConfig::default()).with_progress(|p| {
//!     let _ = (p.blocks, p.bytes); // e.g. advance a progress bar
//! });
//! let mut out = std::fs::File::create("out.car")?;
//! let stats = export_car(&fetcher, &root, &mut out)?;
//! # let _ = stats; Ok(()) }
//! ```

mod addr;
mod cbor;
mod client;
mod http;
mod walk;

pub use addr::ApiAddr;
pub use cbor::cbor_links;
pub use client::Client;
pub use walk::{block_links, export_car, EmitError, EmitFn, Fetcher, Progress, WalkStats};

use cid::Cid;
use std::time::Duration;

/// Timeouts, retries and parallelism for talking to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchConfig {
    /// Worker threads fetching blocks concurrently (at least 1).
    pub parallelism: usize,
    /// How far ahead of the writer blocks are fetched: the next `prefetch` blocks of the walk
    /// (as far as it is known) are requested; at most `2 × prefetch + 1` blocks are held in
    /// memory. At least 1.
    pub prefetch: usize,
    /// Timeout asked of the node for one block (`&timeout=<n>s`); a node that does not hold a
    /// block answers "not found" (kubo offline) or waits this long (js-ipfs, kubo online).
    pub node_timeout: Duration,
    /// Client-side limit for a whole request (connect, send, receive). Should exceed
    /// `node_timeout` so the node's own answer arrives first.
    pub request_timeout: Duration,
    /// Limit for establishing the TCP connection.
    pub connect_timeout: Duration,
    /// Retries after a transient failure (so at most `retries + 1` attempts per request).
    pub retries: u32,
    /// Delay before the first retry; doubles on each further retry.
    pub backoff: Duration,
    /// Upper bound of the retry delay.
    pub max_backoff: Duration,
    /// Largest response body accepted (blocks are at most 2 MiB on the IPFS network).
    pub max_block_size: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            parallelism: 4,
            prefetch: 32,
            node_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(40),
            connect_timeout: Duration::from_secs(5),
            retries: 4,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_block_size: 4 << 20,
        }
    }
}

/// Errors from the IPFS-node data source. Each names the node address and, where one is
/// involved, the CID.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpfsError {
    /// The `--ipfs-api` value is not a supported address.
    #[error("invalid IPFS API address {value:?}: {reason}")]
    BadAddr {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made to the node, or it kept breaking.
    #[error("IPFS node at {addr} is unreachable ({what}): {source}")]
    Unreachable {
        /// Node address.
        addr: String,
        /// The request, e.g. `block/get <cid>`.
        what: String,
        /// The network error.
        #[source]
        source: std::io::Error,
    },
    /// The node does not have the block (it said so, or it did not answer in time).
    #[error("IPFS node at {addr} does not hold block {cid}: {detail}")]
    NotHeld {
        /// Node address.
        addr: String,
        /// The block asked for.
        cid: Box<Cid>,
        /// The node's message, or which timeout ran out.
        detail: String,
    },
    /// The node rejected the CID as malformed.
    #[error("IPFS node at {addr} rejected CID {cid}: {message}")]
    BadCid {
        /// Node address.
        addr: String,
        /// The CID sent.
        cid: String,
        /// The node's message.
        message: String,
    },
    /// The node answered with an error (kubo's `{"Message":…}` body, an HTTP error status, or
    /// an `X-Stream-Error` after the status line).
    #[error("IPFS node at {addr} failed {what}: {message} (HTTP {status})")]
    Node {
        /// Node address.
        addr: String,
        /// The request, e.g. `block/get <cid>`.
        what: String,
        /// HTTP status (200 for a stream error).
        status: u16,
        /// One-line message.
        message: String,
    },
    /// The response ended early.
    #[error("truncated response from IPFS node at {addr} for {what}: {detail}")]
    Truncated {
        /// Node address.
        addr: String,
        /// The request.
        what: String,
        /// What was cut short.
        detail: String,
    },
    /// A client-side timeout ran out on a request that is not a block fetch.
    #[error("IPFS node at {addr} did not answer {what} within {secs:.1}s")]
    Timeout {
        /// Node address.
        addr: String,
        /// The request.
        what: String,
        /// The timeout in seconds.
        secs: f64,
    },
    /// The node sent bytes that do not hash to the CID asked for.
    #[error("block {cid} from IPFS node at {addr} does not match its CID (hash mismatch, {len} bytes)")]
    HashMismatch {
        /// Node address.
        addr: String,
        /// The CID asked for.
        cid: Box<Cid>,
        /// Bytes received.
        len: usize,
    },
    /// A fetched block could not be decoded to find its links.
    #[error("cannot decode block {cid} from IPFS node at {addr}: {reason}")]
    Decode {
        /// Node address.
        addr: String,
        /// The block.
        cid: Box<Cid>,
        /// Why.
        reason: String,
    },
    /// A transient failure persisted through all retries.
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        last: Box<IpfsError>,
    },
    /// The caller's `emit` callback failed (e.g. writing the CAR).
    #[error("writing block {cid}: {source}")]
    Emit {
        /// The block being written.
        cid: Box<Cid>,
        /// The callback's error.
        #[source]
        source: EmitError,
    },
    /// Writing the CAR header failed.
    #[error("writing the CAR header: {0}")]
    Io(#[from] std::io::Error),
}

impl IpfsError {
    /// The innermost failure, looking through [`IpfsError::GaveUp`].
    pub fn root_cause(&self) -> &IpfsError {
        match self {
            IpfsError::GaveUp { last, .. } => last.root_cause(),
            e => e,
        }
    }
}
