//! The IPFS data source against a stub RPC server: fault handling and exact CAR output.

use carload::block::{cid_of, to_v1, CidVersion, DAG_CBOR, DAG_PB, RAW};
use carload::importer::memory::{car_bytes, file_dag, Dag};
use carload::ipfs::{export_car, ApiAddr, Client, FetchConfig, Fetcher, IpfsError};
use carload::profile::Profile;
use cid::Cid;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the stub answers to one request.
enum Reply {
    /// 200 with the body (Content-Length).
    Ok(Vec<u8>),
    /// A status with a body.
    Status(u16, String),
    /// 200 announcing `declared` bytes but sending only the body, then closing.
    Truncated(usize, Vec<u8>),
    /// 200 after a delay.
    Slow(Duration, Vec<u8>),
    /// 200, chunked, with an `X-Stream-Error` trailer.
    StreamError(Vec<u8>, String),
}

/// A stub node: accepts at most `max_connections` connections (serving several requests on
/// each, keep-alive, unless `keep_alive` is false), and stops by itself after that or after 20 s.
struct Stub {
    addr: ApiAddr,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    requests: AtomicUsize,
    connections: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

type Handler = dyn Fn(&str, usize) -> Reply + Send + Sync;

impl Stub {
    fn start(max_connections: usize, handler: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Stub {
        Stub::with(true, max_connections, handler)
    }

    fn with(
        keep_alive: bool,
        max_connections: usize,
        handler: impl Fn(&str, usize) -> Reply + Send + Sync + 'static,
    ) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            let start = Instant::now();
            while c.connections.load(Ordering::SeqCst) < max_connections && start.elapsed() < Duration::from_secs(20) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        c.connections.fetch_add(1, Ordering::SeqCst);
                        let (handler, c) = (handler.clone(), c.clone());
                        std::thread::spawn(move || serve(stream, keep_alive, &c, &*handler));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Stub { addr: ApiAddr::parse(&format!("/ip4/127.0.0.1/tcp/{port}")).unwrap(), counters }
    }

    fn requests(&self) -> usize {
        self.counters.requests.load(Ordering::SeqCst)
    }

    fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::SeqCst)
    }

    fn max_in_flight(&self) -> usize {
        self.counters.max_in_flight.load(Ordering::SeqCst)
    }
}

fn serve(mut stream: TcpStream, keep_alive: bool, c: &Counters, handler: &Handler) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    loop {
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut b).unwrap_or(0) == 0 {
                return;
            }
            head.push(b[0]);
        }
        let n = c.requests.fetch_add(1, Ordering::SeqCst);
        let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        c.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let head = String::from_utf8_lossy(&head).into_owned();
        assert!(head.starts_with("POST /api/v0/block/get?arg="), "{head}");
        let path = head.split(' ').nth(1).unwrap();
        assert!(path.contains("&timeout="), "{path}");
        let arg = path.split("arg=").nth(1).unwrap().split('&').next().unwrap().to_string();
        let ok_head = |len: usize| {
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n")
        };
        let (bytes, close) = match handler(&arg, n) {
            Reply::Ok(body) => ([ok_head(body.len()).as_bytes(), &body].concat(), false),
            Reply::Status(code, body) => (
                format!(
                    "HTTP/1.1 {code} Oops\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes(),
                false,
            ),
            Reply::Truncated(declared, body) => ([ok_head(declared).as_bytes(), &body].concat(), true),
            Reply::Slow(d, body) => {
                std::thread::sleep(d);
                ([ok_head(body.len()).as_bytes(), &body].concat(), false)
            }
            Reply::StreamError(body, msg) => (
                [
                    b"HTTP/1.1 200 OK\r\nTrailer: X-Stream-Error\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice(),
                    format!("{:x}\r\n", body.len()).as_bytes(),
                    &body,
                    format!("\r\n0\r\nX-Stream-Error: {msg}\r\n\r\n").as_bytes(),
                ]
                .concat(),
                false,
            ),
        };
        c.in_flight.fetch_sub(1, Ordering::SeqCst);
        if stream.write_all(&bytes).and_then(|()| stream.flush()).is_err() || close || !keep_alive {
            return;
        }
    }
}

fn config() -> FetchConfig {
    FetchConfig {
        parallelism: 3,
        prefetch: 8,
        node_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        retries: 2,
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_block_size: 4 << 20,
    }
}

/// A stub serving the blocks of `blocks` by CID string.
fn serving(blocks: HashMap<String, Vec<u8>>, max_requests: usize) -> Stub {
    Stub::start(max_requests, move |arg, _| match blocks.get(arg) {
        Some(b) => Reply::Ok(b.clone()),
        None => {
            Reply::Status(500, r#"{"Message":"block was not found locally (offline)","Code":0,"Type":"error"}"#.into())
        }
    })
}

fn dag_blocks(dags: &[&Dag]) -> HashMap<String, Vec<u8>> {
    dags.iter().flat_map(|d| d.blocks.iter()).map(|b| (b.cid.to_string(), b.data.clone())).collect()
}

fn pseudo_random(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn export(stub: &Stub, cfg: FetchConfig, root: &Cid) -> Result<Vec<u8>, IpfsError> {
    let f = Fetcher::new(stub.addr.clone(), cfg);
    let mut out = Vec::new();
    export_car(&f, root, &mut out)?;
    Ok(out)
}

#[test]
fn exports_multi_level_dag_byte_for_byte() {
    let p = Profile { chunk_size: 16, ..Default::default() };
    let data = pseudo_random(4096 + 100, 7);
    let dag = file_dag(&data, &p);
    assert!(dag.blocks.len() > 256, "needs more than 174 leaves");
    for parallelism in [1, 4] {
        let stub = serving(dag_blocks(&[&dag]), 10_000);
        let seen = Arc::new(AtomicUsize::new(0));
        let seen2 = seen.clone();
        let f = Fetcher::new(stub.addr.clone(), FetchConfig { parallelism, ..config() })
            .with_progress(move |p| seen2.store(p.blocks as usize, Ordering::SeqCst));
        let mut out = Vec::new();
        let stats = export_car(&f, &dag.root, &mut out).unwrap();
        assert_eq!(out, car_bytes(&dag), "parallelism {parallelism}");
        assert_eq!(stats.blocks as usize, dag.blocks.len());
        assert_eq!(seen.load(Ordering::SeqCst), dag.blocks.len());
        assert_eq!(stub.requests(), dag.blocks.len(), "each block fetched once");
        assert!(stub.connections() <= parallelism, "connections are reused");
    }
}

#[test]
fn exports_dag_with_duplicate_blocks() {
    // Repeated 16-byte chunks: many links to the same leaf; raw leaves and CIDv1 as well.
    let mut data = vec![b'A'; 3000];
    data.extend(pseudo_random(500, 3));
    data.extend(vec![b'A'; 3000]);
    for p in [
        Profile { chunk_size: 16, ..Default::default() },
        Profile { chunk_size: 16, raw_leaves: true, cid_version: CidVersion::V1, ..Default::default() },
    ] {
        let dag = file_dag(&data, &p);
        assert!(dag.blocks.len() < data.len() / 16, "has duplicates");
        let stub = serving(dag_blocks(&[&dag]), 10_000);
        assert_eq!(export(&stub, config(), &dag.root).unwrap(), car_bytes(&dag));
    }
}

#[test]
fn shared_visited_and_root_written_as_v1() {
    let p = Profile { chunk_size: 64, ..Default::default() };
    let a = file_dag(&[vec![b'x'; 640], pseudo_random(200, 1)].concat(), &p);
    let b = file_dag(&[vec![b'x'; 640], pseudo_random(200, 2)].concat(), &p);
    let stub = serving(dag_blocks(&[&a, &b]), 1000);
    let f = Fetcher::new(stub.addr.clone(), config());
    let mut visited = HashSet::new();
    let mut written = Vec::new();
    for d in [&a, &b] {
        f.walk(&d.root, &to_v1(&d.root), &mut visited, &mut |c, data| {
            written.push((*c, data.len()));
            Ok(())
        })
        .unwrap();
    }
    // Roots under v1; the shared x-chunk leaf only once.
    assert_eq!(written[0].0, to_v1(&a.root));
    let b_root = written.iter().position(|(c, _)| *c == to_v1(&b.root)).unwrap();
    assert_eq!(b_root, a.blocks.len());
    assert_eq!(written.len(), a.blocks.len() + b.blocks.len() - 1);
    let unique: HashSet<_> = written.iter().map(|(c, _)| *c).collect();
    assert_eq!(unique.len(), written.len());
}

#[test]
fn walks_dag_cbor_links_in_encoded_order() {
    let leaf1 = b"raw leaf".to_vec();
    let leaf1_cid = cid_of(CidVersion::V1, RAW, &leaf1);
    let file = file_dag(b"hello", &Profile::default());
    let tag = |c: &Cid| {
        let b = c.to_bytes();
        [vec![0xd8, 0x2a, 0x58, (b.len() + 1) as u8, 0x00], b].concat()
    };
    // {"a": [leaf1, file], "b": leaf1}
    let root =
        [vec![0xa2, 0x61, b'a', 0x82], tag(&leaf1_cid), tag(&file.root), vec![0x61, b'b'], tag(&leaf1_cid)].concat();
    let root_cid = cid_of(CidVersion::V1, DAG_CBOR, &root);
    let mut blocks = dag_blocks(&[&file]);
    blocks.insert(leaf1_cid.to_string(), leaf1.clone());
    blocks.insert(root_cid.to_string(), root.clone());
    let stub = serving(blocks, 100);
    let f = Fetcher::new(stub.addr.clone(), config());
    let mut order = Vec::new();
    f.walk(&root_cid, &root_cid, &mut HashSet::new(), &mut |c, _| {
        order.push(*c);
        Ok(())
    })
    .unwrap();
    assert_eq!(order, vec![root_cid, leaf1_cid, file.root]);
}

#[test]
fn wrong_bytes_are_a_mismatch_naming_the_cid() {
    let dag = file_dag(b"some data", &Profile::default());
    let stub = Stub::start(5, |_, _| Reply::Ok(b"not the block".to_vec()));
    let e = export(&stub, config(), &dag.root).unwrap_err();
    assert!(matches!(e, IpfsError::HashMismatch { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&dag.root.to_string()) && msg.contains(&stub.addr.to_string()), "{msg}");
    assert_eq!(stub.requests(), 1, "a mismatch is not retried");
}

#[test]
fn server_errors_are_retried() {
    let dag = file_dag(b"retry me", &Profile::default());
    let block = dag.blocks[0].data.clone();
    let stub = Stub::start(10, move |_, n| {
        if n < 2 {
            Reply::Status(500, r#"{"Message":"internal hiccup","Code":0,"Type":"error"}"#.into())
        } else {
            Reply::Ok(block.clone())
        }
    });
    let client = Client::new(stub.addr.clone(), config());
    assert_eq!(client.block_get(&dag.root).unwrap(), dag.blocks[0].data);
    assert_eq!(stub.requests(), 3);
    assert_eq!(client.retries(), 2);
}

#[test]
fn persistent_server_errors_give_up() {
    let dag = file_dag(b"never", &Profile::default());
    let stub = Stub::start(10, |_, _| Reply::Status(503, "busy\n  try later".into()));
    let e = export(&stub, config(), &dag.root).unwrap_err();
    assert!(matches!(&e, IpfsError::GaveUp { attempts: 3, .. }), "{e:?}");
    assert!(matches!(e.root_cause(), IpfsError::Node { status: 503, .. }));
    assert!(e.to_string().contains("busy try later"), "{e}");
    assert_eq!(stub.requests(), 3);
}

#[test]
fn kubo_error_bodies_are_surfaced_and_not_retried() {
    let cid = file_dag(b"absent", &Profile::default()).root;
    let msg = format!("block was not found locally (offline): ipld: could not find {cid}");
    let body = format!(r#"{{"Message":"{msg}","Code":0,"Type":"error"}}"#);
    let stub = Stub::start(5, move |_, _| Reply::Status(500, body.clone()));
    let e = Client::new(stub.addr.clone(), config()).block_get(&cid).unwrap_err();
    assert!(matches!(e, IpfsError::NotHeld { .. }), "{e:?}");
    assert!(e.to_string().contains(&msg) && e.to_string().contains(&cid.to_string()), "{e}");
    assert!(!e.to_string().contains('\n'));
    assert_eq!(stub.requests(), 1);

    let stub = Stub::start(5, |_, _| {
        Reply::Status(
            400,
            r#"{"Message":"invalid path: selected encoding not supported","Code":1,"Type":"error"}"#.into(),
        )
    });
    let e = Client::new(stub.addr.clone(), config()).block_get(&cid).unwrap_err();
    assert!(matches!(e, IpfsError::BadCid { .. }), "{e:?}");
    assert!(e.to_string().contains("selected encoding not supported"), "{e}");
    assert_eq!(stub.requests(), 1);

    let stub = Stub::start(5, |_, _| Reply::Status(404, "404 page not here".into()));
    let e = Client::new(stub.addr.clone(), config()).block_get(&cid).unwrap_err();
    assert!(matches!(e, IpfsError::Node { status: 404, .. }), "{e:?}");
    assert_eq!(stub.requests(), 1);
}

#[test]
fn truncated_bodies_are_retried_then_reported() {
    let dag = file_dag(b"truncated", &Profile::default());
    let stub = Stub::start(10, |_, _| Reply::Truncated(100, b"0123456789".to_vec()));
    let e = Client::new(stub.addr.clone(), config()).block_get(&dag.root).unwrap_err();
    assert!(matches!(e.root_cause(), IpfsError::Truncated { .. }), "{e:?}");
    assert!(e.to_string().contains("10 of 100"), "{e}");
    assert_eq!(stub.requests(), 3);
}

#[test]
fn stream_error_trailer_is_a_failure() {
    let dag = file_dag(b"stream", &Profile::default());
    let block = dag.blocks[0].data.clone();
    let stub = Stub::start(10, move |_, _| Reply::StreamError(block.clone(), "disk on fire".into()));
    let e = Client::new(stub.addr.clone(), config()).block_get(&dag.root).unwrap_err();
    assert!(matches!(e.root_cause(), IpfsError::Node { status: 200, .. }), "{e:?}");
    assert!(e.to_string().contains("disk on fire"), "{e}");
    assert_eq!(stub.requests(), 3);
}

#[test]
fn slow_responses_time_out() {
    let dag = file_dag(b"slow", &Profile::default());
    let block = dag.blocks[0].data.clone();
    let stub = Stub::start(5, move |_, _| Reply::Slow(Duration::from_secs(3), block.clone()));
    let cfg = FetchConfig { request_timeout: Duration::from_millis(300), ..config() };
    let t = Instant::now();
    let e = Client::new(stub.addr.clone(), cfg).block_get(&dag.root).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(matches!(e, IpfsError::NotHeld { .. }), "{e:?}");
    assert!(e.to_string().contains("no answer within 0.3s"), "{e}");
    assert_eq!(stub.requests(), 1, "a timeout is not retried");
}

#[test]
fn connection_refused_is_unreachable() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = ApiAddr::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let cid = cid_of(CidVersion::V0, DAG_PB, b"x");
    let f = Fetcher::new(addr.clone(), config());
    let e = export_car(&f, &cid, &mut Vec::new()).unwrap_err();
    assert!(matches!(e.root_cause(), IpfsError::Unreachable { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&addr.to_string()) && msg.contains("unreachable") && msg.contains("3 attempts"), "{msg}");
}

#[test]
fn servers_closing_connections_are_fine() {
    // The stub closes each connection after one response without saying so: the client's
    // idle connection is stale and a fresh one is used, without counting as a retry.
    let dag = file_dag(&pseudo_random(2000, 5), &Profile { chunk_size: 100, ..Default::default() });
    let blocks = dag_blocks(&[&dag]);
    let stub = Stub::with(false, 1000, move |arg, _| Reply::Ok(blocks[arg].clone()));
    let f = Fetcher::new(stub.addr.clone(), config());
    let mut out = Vec::new();
    export_car(&f, &dag.root, &mut out).unwrap();
    assert_eq!(out, car_bytes(&dag));
    assert_eq!(stub.requests(), dag.blocks.len());
    assert_eq!(f.client().retries(), 0);
}

#[test]
fn prefetch_overlaps_requests() {
    // 2 levels: root -> 3 nodes -> 174/174/52 leaves; each answer takes 20 ms.
    let p = Profile { chunk_size: 8, ..Default::default() };
    let dag = file_dag(&pseudo_random(8 * 400, 11), &p);
    let blocks = dag_blocks(&[&dag]);
    let stub = Stub::start(100, move |arg, _| Reply::Slow(Duration::from_millis(20), blocks[arg].clone()));
    let cfg = FetchConfig { parallelism: 4, prefetch: 16, ..config() };
    let t = Instant::now();
    assert_eq!(export(&stub, cfg, &dag.root).unwrap(), car_bytes(&dag));
    let serial = Duration::from_millis(20) * dag.blocks.len() as u32;
    eprintln!("prefetch: {} blocks in {:?} (serial would be {serial:?})", dag.blocks.len(), t.elapsed());
    assert_eq!(stub.max_in_flight(), 4, "all workers busy at some point");
    assert!(t.elapsed() < serial * 3 / 4, "{:?} vs serial {serial:?}", t.elapsed());
}

#[test]
fn identity_cids_are_not_fetched() {
    // A dag-cbor root linking to an inline (identity-hashed) raw block.
    let inline = Cid::new_v1(RAW, multihash::Multihash::wrap(0x00, b"tiny").unwrap());
    let b = inline.to_bytes();
    let root = [vec![0x81, 0xd8, 0x2a, 0x58, (b.len() + 1) as u8, 0x00], b].concat();
    let root_cid = cid_of(CidVersion::V1, DAG_CBOR, &root);
    let r = root.clone();
    let stub = Stub::start(5, move |_, _| Reply::Ok(r.clone()));
    let f = Fetcher::new(stub.addr.clone(), config());
    let mut got = Vec::new();
    f.walk(&root_cid, &root_cid, &mut HashSet::new(), &mut |c, d| {
        got.push((*c, d.to_vec()));
        Ok(())
    })
    .unwrap();
    assert_eq!(got, vec![(root_cid, root), (inline, b"tiny".to_vec())]);
    assert_eq!(stub.requests(), 1);
}
