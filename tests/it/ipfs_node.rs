//! The IPFS data source against a real node: js-ipfs 0.66.1 (kubo-compatible RPC API), run
//! offline on loopback by `tests/ipfs-node/ipfs-node.sh`.
//!
//! Needs `tests/ipfs-node/ipfs-node.sh install` (CI runs `.ci/ipfs-node-setup.sh`), so these
//! tests are ignored unless asked for (`cargo test -- --include-ignored`); asked for without the
//! node, they fail.

use carload::block::{self, CidVersion};
use carload::car::BlockReader;
use carload::importer::memory::{car_bytes, file_dag};
use carload::ipfs::{export_car, ApiAddr, Client, FetchConfig, Fetcher, IpfsError};
use carload::profile::Profile;
use cid::Cid;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running node; stopped (by PID, via the script) when dropped.
struct Node {
    script: PathBuf,
    dir: tempfile::TempDir,
    addr: ApiAddr,
}

impl Node {
    /// Starts a node; fails the test if the node is not installed.
    fn start() -> Node {
        let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ipfs-node");
        assert!(
            here.join("node_modules/ipfs/src/cli.js").exists(),
            "the IPFS test node is not installed: run tests/ipfs-node/ipfs-node.sh install (CI does)"
        );
        let script = here.join("ipfs-node.sh");
        let dir = tempfile::Builder::new().prefix("carload-ipfs-node-").tempdir().unwrap();
        let out = Command::new("bash").arg(&script).arg("start").arg(dir.path()).output().unwrap();
        let node_addr = String::from_utf8_lossy(&out.stdout).trim().to_string();
        // Construct first so that Drop stops the daemon even if the checks below fail.
        let mut node = Node { script, dir, addr: ApiAddr::parse("/ip4/127.0.0.1/tcp/1").unwrap() };
        assert!(
            out.status.success(),
            "ipfs-node.sh start failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        node.addr = ApiAddr::parse(&node_addr).unwrap_or_else(|e| panic!("start printed {node_addr:?}: {e}"));
        node
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(&self.script).arg("stop").arg(self.dir.path()).status();
    }
}

fn config() -> FetchConfig {
    FetchConfig {
        node_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        backoff: Duration::from_millis(50),
        ..FetchConfig::default()
    }
}

/// One multipart part: (filename as sent, percent-encoded; content type; bytes).
type Part<'a> = (&'a str, &'a str, &'a [u8]);

/// `POST /api/v0/add` with js-ipfs-friendly multipart parts (every part has a Content-Type);
/// returns the CID of the last entry (the top-level one).
fn add(client: &Client, query: &str, parts: &[Part<'_>]) -> Cid {
    let boundary = "carload-test-boundary-7d1c0f";
    let mut body = Vec::new();
    for (name, ctype, data) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {ctype}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let resp = client.call(&format!("/api/v0/add?{query}"), Some((&ct, &body))).unwrap();
    let text = String::from_utf8(resp).unwrap();
    let last = text.lines().rfind(|l| !l.trim().is_empty()).expect("add returned nothing");
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    v["Hash"].as_str().unwrap().parse().unwrap()
}

fn pseudo_random(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        })
        .collect()
}

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    eprintln!("ipfs node: {label}: {:.2?}", t.elapsed());
    r
}

#[test]
#[ignore = "needs the IPFS test node: tests/ipfs-node/ipfs-node.sh install (CI does)"]
fn real_node_exports_match_local_dags() {
    let node = timed("start", Node::start);
    let client = Client::new(node.addr.clone(), config());
    let fetcher = Fetcher::new(node.addr.clone(), config());

    // A file over several chunks, added with default parameters (CIDv0, 256 KiB, balanced,
    // dag-pb leaves): the CAR must equal the one built from the same bytes on disk.
    let mut data = pseudo_random((1 << 20) + 12_345, 42);
    data.extend(vec![b'A'; 100]);
    let cid = timed("add 1 MiB file", || add(&client, "", &[("data.bin", "application/octet-stream", &data)]));
    let expected = file_dag(&data, &Profile::default());
    assert_eq!(cid, expected.root);
    let mut car = Vec::new();
    let stats = timed("export_car 1 MiB file", || export_car(&fetcher, &cid, &mut car).unwrap());
    assert_eq!(stats.blocks as usize, expected.blocks.len());
    assert!(car == car_bytes(&expected), "CAR from the node differs from the local one");

    // Same bytes, CIDv1 with raw leaves.
    let p1 = Profile { cid_version: CidVersion::V1, raw_leaves: true, ..Profile::default() };
    let cid1 = add(&client, "cid-version=1&raw-leaves=true", &[("data.bin", "application/octet-stream", &data)]);
    let expected1 = file_dag(&data, &p1);
    assert_eq!(cid1, expected1.root);
    let mut car1 = Vec::new();
    timed("export_car 1 MiB file (v1, raw leaves)", || export_car(&fetcher, &cid1, &mut car1).unwrap());
    assert!(car1 == car_bytes(&expected1), "CIDv1 CAR from the node differs from the local one");

    // 100×'A' (Powergate's test vector).
    let a100 = vec![b'A'; 100];
    let cid_a = add(&client, "", &[("hundred.txt", "application/octet-stream", &a100)]);
    assert_eq!(cid_a.to_string(), "QmY6zHswPvyZkAyxwM9uup1DDPb67hZqChv8hnyu4MrFWk");
    let mut car_a = Vec::new();
    export_car(&fetcher, &cid_a, &mut car_a).unwrap();
    assert_eq!(car_a, car_bytes(&file_dag(&a100, &Profile::default())));

    // A folder with a subfolder: a valid CAR rooted at the add result, every block verifying,
    // each CID once, and every block the node lists under the root present.
    let big = pseudo_random(600_000, 9);
    let dir_cid = timed("add folder", || {
        add(
            &client,
            "",
            &[
                ("folder", "application/x-directory", b""),
                ("folder%2Falpha.txt", "application/octet-stream", b"alpha file\n"),
                ("folder%2Fbeta.txt", "application/octet-stream", &a100),
                ("folder%2Fsubdir", "application/x-directory", b""),
                ("folder%2Fsubdir%2Fgamma.bin", "application/octet-stream", &big),
            ],
        )
    });
    let mut dir_car = Vec::new();
    let dstats = timed("export_car folder", || export_car(&fetcher, &dir_cid, &mut dir_car).unwrap());
    let (header, mut reader) = BlockReader::new(&dir_car[..]).unwrap();
    assert_eq!(header.roots, vec![dir_cid]);
    let mut seen = Vec::new();
    while let Some((c, bytes)) = reader.next_block().unwrap() {
        assert!(block::verify(&c, &bytes), "block {c} does not verify");
        seen.push(c);
    }
    assert_eq!(seen[0], dir_cid);
    assert_eq!(seen.len() as u64, dstats.blocks);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len(), "each CID once");
    // gamma.bin (3 chunks + its root) + subdir + 2 small files + root
    assert_eq!(seen.len(), 4 + 1 + 2 + 1);
    // The leaf file blocks are the ones the local importer makes.
    for f in [&b"alpha file\n"[..], &a100, &big] {
        let d = file_dag(f, &Profile::default());
        assert!(d.blocks.iter().all(|b| seen.contains(&b.cid)), "file blocks missing");
    }

    // A block the node does not hold: a clean "not held" error within the node timeout.
    let absent = block::cid_of(CidVersion::V0, block::DAG_PB, b"never added to this node");
    let short =
        FetchConfig { node_timeout: Duration::from_secs(1), request_timeout: Duration::from_secs(5), ..config() };
    let e = timed("missing block", || Client::new(node.addr.clone(), short).block_get(&absent).unwrap_err());
    assert!(matches!(e, IpfsError::NotHeld { .. }), "{e:?}");
    assert!(e.to_string().contains(&absent.to_string()), "{e}");

    // A malformed argument: the node's one-line error is surfaced.
    let e = client.call("/api/v0/block/get?arg=not-a-cid&timeout=1s", None).unwrap_err();
    assert!(matches!(e, IpfsError::Node { status: 400, .. }), "{e:?}");
    assert!(e.to_string().contains("Invalid request query input"), "{e}");
}

fn carload_json(args: &[&std::ffi::OsStr]) -> (serde_json::Value, Vec<u8>) {
    let out = Command::new(env!("CARGO_BIN_EXE_carload")).args(args).output().unwrap();
    assert!(out.status.success(), "carload failed: {}", String::from_utf8_lossy(&out.stderr));
    (serde_json::from_slice(&out.stdout).unwrap(), out.stdout)
}

#[test]
#[ignore = "needs the IPFS test node: tests/ipfs-node/ipfs-node.sh install (CI does)"]
fn cli_prepare_by_cid_equals_prepare_from_disk() {
    let node = Node::start();
    let client = Client::new(node.addr.clone(), config());
    let big = pseudo_random(700_000, 3);
    let files: [(&str, &[u8]); 3] =
        [("alpha.txt", b"alpha\n"), ("beta.bin", &big), ("sub/gamma.txt", b"gamma gamma\n")];
    // On disk.
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("folder");
    for (rel, data) in &files {
        let p = folder.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    // In the node, same names and layout.
    let dir_cid = add(
        &client,
        "",
        &[
            ("folder", "application/x-directory", b""),
            ("folder%2Falpha.txt", "application/octet-stream", files[0].1),
            ("folder%2Fbeta.bin", "application/octet-stream", files[1].1),
            ("folder%2Fsub", "application/x-directory", b""),
            ("folder%2Fsub%2Fgamma.txt", "application/octet-stream", files[2].1),
        ],
    );
    let api = node.addr.to_string();
    let (from_node, _) = carload_json(&[
        "prepare".as_ref(),
        "--json".as_ref(),
        "--ipfs-api".as_ref(),
        api.as_ref(),
        dir_cid.to_string().as_ref(),
        tmp.path().join("node.car").as_os_str(),
    ]);
    let (from_disk, _) = carload_json(&[
        "prepare".as_ref(),
        "--json".as_ref(),
        folder.as_os_str(),
        tmp.path().join("disk.car").as_os_str(),
    ]);
    assert_eq!(from_node, from_disk, "same payload CID, sizes and piece CIDs");
    assert_eq!(
        std::fs::read(tmp.path().join("node.car")).unwrap(),
        std::fs::read(tmp.path().join("disk.car")).unwrap()
    );

    // A batch of the files' DAGs held by the node equals the batch of the same files on disk.
    let file_cids: Vec<String> = files.iter().map(|(_, d)| file_dag(d, &Profile::default()).root.to_string()).collect();
    let list = tmp.path().join("cids.txt");
    std::fs::write(&list, format!("# batch\n{}\n", file_cids.join("\n"))).unwrap();
    let (batch_node, _) = carload_json(&[
        "prepare".as_ref(),
        "--json".as_ref(),
        "--aggregate".as_ref(),
        "--ipfs-api".as_ref(),
        api.as_ref(),
        list.as_os_str(),
        tmp.path().join("bn.car").as_os_str(),
    ]);
    let (batch_disk, _) = carload_json(&[
        "prepare".as_ref(),
        "--json".as_ref(),
        "--aggregate".as_ref(),
        folder.as_os_str(),
        tmp.path().join("bd.car").as_os_str(),
    ]);
    for key in ["payload_cid", "piece_cid", "piece_size", "car_size", "piece_cid_v2"] {
        assert_eq!(batch_node[key], batch_disk[key], "{key}");
    }
    assert_eq!(std::fs::read(tmp.path().join("bn.car")).unwrap(), std::fs::read(tmp.path().join("bd.car")).unwrap());
    assert_eq!(
        std::fs::read(tmp.path().join("bn.car.manifest")).unwrap(),
        std::fs::read(tmp.path().join("bd.car.manifest")).unwrap()
    );

    // A CID the node does not hold: one-line error, no output left behind.
    let absent = block::cid_of(CidVersion::V0, block::DAG_PB, b"not in this node").to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_carload"))
        .args(["car", "--quiet", "--ipfs-timeout", "2", "--ipfs-api", &api, &absent])
        .arg(tmp.path().join("absent.car"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&absent) && err.lines().count() == 1, "{err}");
    assert!(!tmp.path().join("absent.car").exists());
}
