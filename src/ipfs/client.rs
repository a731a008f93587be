//! RPC calls to a node, with timeouts, bounded retries with exponential backoff, kubo error
//! bodies turned into one-line messages, and hash verification of every block.

use super::http::{self, HttpFailure, Response};
use super::{ApiAddr, FetchConfig, IpfsError};
use crate::block;
use cid::Cid;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A client for one node's RPC API (`/api/v0`). Cheap to share between threads by reference.
#[derive(Debug)]
pub struct Client {
    addr: ApiAddr,
    config: FetchConfig,
    retries: AtomicU64,
    pool: http::Pool,
}

/// One failed attempt: the error, and whether trying again may help.
struct Failure {
    error: IpfsError,
    transient: bool,
}

impl Client {
    /// A client for the node at `addr`.
    pub fn new(addr: ApiAddr, config: FetchConfig) -> Self {
        Client { addr, config, retries: AtomicU64::new(0), pool: http::Pool::default() }
    }

    /// The node's address.
    pub fn addr(&self) -> &ApiAddr {
        &self.addr
    }

    /// The configuration in use.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Retries made so far by this client (all requests).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Fetches the bytes of block `cid` (`POST /api/v0/block/get?arg=<cid>&timeout=<n>s`) and
    /// checks they hash to `cid`. Identity-hashed CIDs are answered locally.
    pub fn block_get(&self, cid: &Cid) -> Result<Vec<u8>, IpfsError> {
        if cid.hash().code() == block::IDENTITY {
            return Ok(cid.hash().digest().to_vec());
        }
        let path = format!("/api/v0/block/get?arg={cid}&timeout={}ms", self.config.node_timeout.as_millis().max(1));
        let what = format!("block/get {cid}");
        let data = self.with_retries(|| {
            let resp = self.send(&path, None, &what, Some(cid))?;
            self.check(resp, &what, Some(cid))
        })?;
        if !block::verify(cid, &data) {
            return Err(IpfsError::HashMismatch { addr: self.addr.to_string(), cid: Box::new(*cid), len: data.len() });
        }
        Ok(data)
    }

    /// Makes any RPC call, e.g. `call("/api/v0/id", None)` or an `add` with a multipart body
    /// given as `(content type, bytes)`, and returns the body of a successful response. Transient
    /// failures are retried as for [`Client::block_get`]; beware that retrying a call that is
    /// not idempotent repeats it.
    pub fn call(&self, path_and_query: &str, body: Option<(&str, &[u8])>) -> Result<Vec<u8>, IpfsError> {
        let what =
            path_and_query.split('?').next().unwrap_or(path_and_query).trim_start_matches("/api/v0/").to_string();
        self.with_retries(|| {
            let resp = self.send(path_and_query, body, &what, None)?;
            self.check(resp, &what, None)
        })
    }

    fn with_retries<T>(&self, mut f: impl FnMut() -> Result<T, Failure>) -> Result<T, IpfsError> {
        let mut delay = self.config.backoff;
        let mut attempt = 1;
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(Failure { error, transient }) => {
                    if !transient {
                        return Err(error);
                    }
                    if attempt > self.config.retries {
                        return Err(if attempt == 1 {
                            error
                        } else {
                            IpfsError::GaveUp { attempts: attempt, last: Box::new(error) }
                        });
                    }
                }
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(delay);
            delay = (delay * 2).min(self.config.max_backoff);
            attempt += 1;
        }
    }

    fn send(
        &self,
        path_and_query: &str,
        body: Option<(&str, &[u8])>,
        what: &str,
        cid: Option<&Cid>,
    ) -> Result<Response, Failure> {
        let req = http::Request {
            host: self.addr.host(),
            port: self.addr.port(),
            ipv4_only: self.addr.family(),
            path_and_query,
            body,
            connect_timeout: self.config.connect_timeout,
            timeout: self.config.request_timeout,
            max_body: self.config.max_block_size,
        };
        let addr = self.addr.to_string();
        let what = what.to_string();
        http::post(&self.pool, &req).map_err(|f| match f {
            HttpFailure::Connect(source) | HttpFailure::Io(source) => {
                Failure { error: IpfsError::Unreachable { addr, what, source }, transient: true }
            }
            HttpFailure::Timeout => Failure {
                error: match cid {
                    Some(cid) => IpfsError::NotHeld {
                        addr,
                        cid: Box::new(*cid),
                        detail: format!("no answer within {}", secs(self.config.request_timeout)),
                    },
                    None => IpfsError::Timeout { addr, what, secs: self.config.request_timeout.as_secs_f64() },
                },
                transient: false,
            },
            HttpFailure::Truncated(detail) => {
                Failure { error: IpfsError::Truncated { addr, what, detail }, transient: true }
            }
            HttpFailure::Protocol(message) => Failure {
                error: IpfsError::Node { addr, what, status: 0, message: format!("invalid HTTP response: {message}") },
                transient: false,
            },
        })
    }

    fn check(&self, resp: Response, what: &str, cid: Option<&Cid>) -> Result<Vec<u8>, Failure> {
        let addr = self.addr.to_string();
        let what = what.to_string();
        if resp.status == 200 {
            let stream_err = resp.header("x-stream-error").or_else(|| resp.trailer("x-stream-error"));
            if let Some(msg) = stream_err.filter(|m| !m.trim().is_empty()) {
                return Err(Failure {
                    error: IpfsError::Node {
                        addr,
                        what,
                        status: 200,
                        message: format!("stream error: {}", one_line(msg)),
                    },
                    transient: true,
                });
            }
            return Ok(resp.body);
        }
        let (message, code) = error_message(&resp);
        if let Some(cid) = cid {
            if is_not_found(&message) {
                return Err(Failure {
                    error: IpfsError::NotHeld { addr, cid: Box::new(*cid), detail: message },
                    transient: false,
                });
            }
            if resp.status == 400 || code == Some(1) {
                return Err(Failure {
                    error: IpfsError::BadCid { addr, cid: cid.to_string(), message },
                    transient: false,
                });
            }
        }
        let transient = resp.status >= 500;
        Err(Failure { error: IpfsError::Node { addr, what, status: resp.status, message }, transient })
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Collapses whitespace so a message fits on one line, and bounds its length.
fn one_line(s: &str) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() > 300 {
        joined.chars().take(300).collect::<String>() + "…"
    } else {
        joined
    }
}

/// The message of an error response: kubo's `{"Message":…,"Code":…,"Type":"error"}` if the body
/// is that, else the body text, else the status.
fn error_message(resp: &Response) -> (String, Option<u64>) {
    #[derive(serde::Deserialize)]
    struct KuboError {
        #[serde(rename = "Message")]
        message: String,
        #[serde(rename = "Code")]
        code: Option<u64>,
    }
    if let Ok(e) = serde_json::from_slice::<KuboError>(&resp.body) {
        return (one_line(&e.message), e.code);
    }
    let text = one_line(&String::from_utf8_lossy(&resp.body));
    if text.is_empty() {
        (format!("HTTP status {}", resp.status), None)
    } else {
        (text, None)
    }
}

/// Whether a node's message says it does not have a block (kubo offline: "block was not found
/// locally (offline)"; kubo online: "context deadline exceeded"; js-ipfs: "request timed out").
fn is_not_found(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["not found", "could not find", "timed out", "deadline exceeded", "timeout"].iter().any(|p| m.contains(p))
}
