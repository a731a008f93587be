//! A minimal HTTP/1.1 client for the node's RPC API: one `POST` per connection
//! (`Connection: close`), `Content-Length` or chunked bodies, and chunked trailers.
//!
//! Why not `ureq` (or another client crate): kubo and js-ipfs report a failure that happens after
//! the `200 OK` status line in an `X-Stream-Error` *trailer* of the chunked body, and ureq 3
//! (ureq-proto 0.7 `chunk.rs`) parses and discards trailers, so such a failure would look like a
//! short but successful body. The RPC API is plain HTTP on loopback or a LAN (no TLS, no
//! redirects, no compression, no proxies), which this file covers in a couple of hundred lines
//! with no new dependencies, with exact control over timeouts and truncation.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Largest status line / header line / chunk-size line accepted.
const MAX_LINE: usize = 16 * 1024;
/// Most header (or trailer) lines accepted.
const MAX_HEADERS: usize = 128;

/// A parsed response.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Trailer names lower-cased (chunked bodies only).
    pub trailers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// How an exchange failed, before any HTTP-level interpretation.
#[derive(Debug)]
pub(crate) enum HttpFailure {
    /// No TCP connection could be made.
    Connect(io::Error),
    /// The deadline passed.
    Timeout,
    /// The connection broke (reset, or closed before the status line).
    Io(io::Error),
    /// The body ended before its announced length.
    Truncated(String),
    /// The response is not valid HTTP/1.1 or exceeds a limit.
    Protocol(String),
}

/// Request parameters.
pub(crate) struct Request<'a> {
    pub host: &'a str,
    pub port: u16,
    /// Address family restriction (`/dns4`, `/dns6`).
    pub ipv4_only: Option<bool>,
    pub path_and_query: &'a str,
    /// `(content type, body)`.
    pub body: Option<(&'a str, &'a [u8])>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_body: usize,
}

fn map_io(e: io::Error) -> HttpFailure {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HttpFailure::Timeout,
        _ => HttpFailure::Io(e),
    }
}

/// A reader that re-arms the socket read timeout to the time left before `deadline`.
#[derive(Debug)]
pub(crate) struct DeadlineReader {
    stream: TcpStream,
    deadline: Instant,
}

impl Read for DeadlineReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

fn connect(host: &str, port: u16, ipv4_only: Option<bool>, timeout: Duration) -> Result<TcpStream, HttpFailure> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(HttpFailure::Connect)?
        .filter(|a| ipv4_only.is_none_or(|v4| a.is_ipv4() == v4))
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} resolves to no address"));
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(HttpFailure::Connect(last))
}

/// An open connection, kept between requests (HTTP/1.1 keep-alive).
pub(crate) type Conn = BufReader<DeadlineReader>;

/// Idle connections to one node, reused so that a walk over many blocks does not open (and
/// leave in TIME_WAIT) one TCP connection per block.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    idle: Mutex<Vec<Conn>>,
}

/// Most idle connections kept.
const MAX_IDLE: usize = 16;

impl Pool {
    fn take(&self) -> Option<Conn> {
        self.idle.lock().ok()?.pop()
    }
    fn put(&self, conn: Conn) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
    }
}

/// Sends one `POST` and reads the whole response, on an idle connection from `pool` if there
/// is one (retrying once on a fresh connection if the server had closed it), else on a new one.
pub(crate) fn post(pool: &Pool, req: &Request<'_>) -> Result<Response, HttpFailure> {
    let deadline = Instant::now() + req.timeout;
    if let Some(conn) = pool.take() {
        match exchange(pool, conn, req, deadline) {
            Err(Exchange::Stale) => {}
            Err(Exchange::Failed(f)) => return Err(f),
            Ok(r) => return Ok(r),
        }
    }
    let stream = connect(req.host, req.port, req.ipv4_only, req.connect_timeout.min(req.timeout))?;
    let _ = stream.set_nodelay(true);
    let conn = BufReader::new(DeadlineReader { stream, deadline });
    exchange(pool, conn, req, deadline).map_err(|e| match e {
        Exchange::Stale => {
            HttpFailure::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a response"))
        }
        Exchange::Failed(f) => f,
    })
}

enum Exchange {
    /// The connection failed before any byte of a response: the server may have closed an
    /// idle keep-alive connection.
    Stale,
    Failed(HttpFailure),
}

impl From<HttpFailure> for Exchange {
    fn from(f: HttpFailure) -> Self {
        Exchange::Failed(f)
    }
}

fn exchange(pool: &Pool, mut conn: Conn, req: &Request<'_>, deadline: Instant) -> Result<Response, Exchange> {
    conn.get_mut().deadline = deadline;
    let host_header = if req.host.contains(':') {
        format!("[{}]:{}", req.host, req.port)
    } else {
        format!("{}:{}", req.host, req.port)
    };
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: carload/{}\r\nAccept: */*\r\n",
        req.path_and_query,
        env!("CARGO_PKG_VERSION")
    );
    let body: &[u8] = match req.body {
        Some((ct, b)) => {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
            b
        }
        None => &[],
    };
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    {
        let stream = &conn.get_ref().stream;
        stream.set_write_timeout(Some(req.timeout)).map_err(HttpFailure::Io)?;
        let mut w = stream;
        let sent = w.write_all(head.as_bytes()).and_then(|()| w.write_all(body)).and_then(|()| w.flush());
        if let Err(e) = sent {
            return Err(match map_io(e) {
                HttpFailure::Io(_) => Exchange::Stale,
                f => Exchange::Failed(f),
            });
        }
    }
    let status_line = match read_line(&mut conn) {
        Ok(Some(l)) => l,
        Ok(None) | Err(HttpFailure::Io(_)) | Err(HttpFailure::Truncated(_)) => return Err(Exchange::Stale),
        Err(f) => return Err(f.into()),
    };
    let (resp, reusable) = read_response(&mut conn, &status_line, req.max_body)?;
    if reusable {
        pool.put(conn);
    }
    Ok(resp)
}

/// Reads the rest of a response after its status line; also says whether the connection can
/// carry another request.
fn read_response(r: &mut Conn, status_line: &str, max_body: usize) -> Result<(Response, bool), HttpFailure> {
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(HttpFailure::Protocol(format!("not an HTTP/1.x response: {:?}", truncate(status_line))));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| HttpFailure::Protocol(format!("bad status line {:?}", truncate(status_line))))?;
    let headers = read_fields(r)?;
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let chunked = get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut trailers = Vec::new();
    let mut until_eof = false;
    let body = if chunked {
        read_chunked(r, max_body, &mut trailers)?
    } else if let Some(cl) = get("content-length") {
        let n: usize = cl.trim().parse().map_err(|_| HttpFailure::Protocol(format!("bad Content-Length {cl:?}")))?;
        if n > max_body {
            return Err(HttpFailure::Protocol(format!("response of {n} bytes exceeds the {} byte limit", max_body)));
        }
        let mut body = Vec::with_capacity(n);
        r.take(n as u64).read_to_end(&mut body).map_err(map_io)?;
        if body.len() < n {
            return Err(HttpFailure::Truncated(format!("got {} of {n} bytes (Content-Length)", body.len())));
        }
        body
    } else {
        until_eof = true;
        let mut body = Vec::new();
        r.take(max_body as u64 + 1).read_to_end(&mut body).map_err(map_io)?;
        if body.len() > max_body {
            return Err(HttpFailure::Protocol(format!("response exceeds the {} byte limit", max_body)));
        }
        body
    };
    let reusable = !until_eof && !get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    Ok((Response { status, headers, trailers, body }, reusable))
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Reads one CRLF- (or LF-) terminated line; `None` at a clean EOF before any byte.
fn read_line(r: &mut impl BufRead) -> Result<Option<String>, HttpFailure> {
    let mut buf = Vec::new();
    let n = r.take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).map_err(map_io)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(if buf.len() > MAX_LINE {
            HttpFailure::Protocol("line too long".into())
        } else {
            HttpFailure::Truncated("connection closed mid-line".into())
        });
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Reads header (or trailer) fields up to the empty line.
fn read_fields(r: &mut impl BufRead) -> Result<Vec<(String, String)>, HttpFailure> {
    let mut out = Vec::new();
    loop {
        let line = read_line(r)?.ok_or_else(|| HttpFailure::Truncated("connection closed in headers".into()))?;
        if line.is_empty() {
            return Ok(out);
        }
        if out.len() >= MAX_HEADERS {
            return Err(HttpFailure::Protocol("too many header lines".into()));
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| HttpFailure::Protocol(format!("bad header line {:?}", truncate(&line))))?;
        out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
}

fn read_chunked(
    r: &mut impl BufRead,
    max_body: usize,
    trailers: &mut Vec<(String, String)>,
) -> Result<Vec<u8>, HttpFailure> {
    let mut body = Vec::new();
    loop {
        let line =
            read_line(r)?.ok_or_else(|| HttpFailure::Truncated("chunked body ended without its last chunk".into()))?;
        let size_str = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_str, 16)
            .map_err(|_| HttpFailure::Protocol(format!("bad chunk size {:?}", truncate(&line))))?;
        if size == 0 {
            *trailers = read_fields(r)?;
            return Ok(body);
        }
        // A size near 2^64 must not overflow the sum (it would slip past the limit).
        if body.len().checked_add(size).is_none_or(|total| total > max_body) {
            return Err(HttpFailure::Protocol(format!("response exceeds the {max_body} byte limit")));
        }
        let start = body.len();
        r.take(size as u64).read_to_end(&mut body).map_err(map_io)?;
        if body.len() - start < size {
            return Err(HttpFailure::Truncated(format!("chunk of {size} bytes cut short")));
        }
        match read_line(r)? {
            Some(l) if l.is_empty() => {}
            Some(_) => return Err(HttpFailure::Protocol("chunk not followed by CRLF".into())),
            None => return Err(HttpFailure::Truncated("chunked body cut short".into())),
        }
    }
}

#[cfg(test)]
mod hostile {
    use super::*;

    #[test]
    fn chunk_sizes_near_2_64_and_endless_bodies_are_refused() {
        let mut trailers = Vec::new();
        for body in
            ["ffffffffffffffff\r\nabc\r\n0\r\n\r\n", "fffffffffffffffff\r\n", "8\r\n12345678\r\n8\r\n12345678\r\n"]
        {
            let mut r = std::io::BufReader::new(body.as_bytes());
            let e = read_chunked(&mut r, 10, &mut trailers);
            assert!(matches!(e, Err(HttpFailure::Protocol(_))), "{body:?}: {e:?}");
        }
    }
}
