//! FRC-0058 data segments (`carload segment`): the published aggregates and go-data-segment's
//! sample deal byte for byte, bad deals crafted byte by byte, a property test (the commP of every
//! deal written is the reported piece CID) and the data-segment oracle (`#[ignore]`d: needs node).

use assert_cmd::Command;
use carload::commp::{self, PieceInfo};
use carload::event::Ignore;
use carload::segment::{self, fr32, layout, Entry};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn carload() -> Command {
    let mut c = Command::cargo_bin("carload").unwrap();
    c.env("NO_COLOR", "1");
    c
}

fn vector(dir: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(dir).join(name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn vectors() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(vector("segment", "aggregates.json")).unwrap()).unwrap()
}

/// Writes payload `name` of the vectors file into `dir`.
fn payload(dir: &Path, v: &serde_json::Value, name: &str) -> PathBuf {
    let p = &v["payloads"][name];
    let len = p["len"].as_u64().unwrap() as usize;
    let data: Vec<u8> = match p["byte"].as_u64() {
        Some(b) => vec![b as u8; len],
        None => (0..len).map(|i| i as u8).collect(),
    };
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path
}

fn commp_of_path(path: &Path) -> PieceInfo {
    commp::commp_of_bytes(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn the_published_aggregates_pack_to_their_vectors_byte_for_byte() {
    let v = vectors();
    let dir = tempfile::tempdir().unwrap();
    for a in v["aggregates"].as_array().unwrap() {
        let id = a["id"].as_str().unwrap();
        let order: Vec<&str> = a["order"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
        let inputs: Vec<PathBuf> = order.iter().map(|n| payload(dir.path(), &v, n)).collect();
        let deal_size = a["deal_size"].as_u64().unwrap();
        let out = dir.path().join(format!("{id}.deal"));
        let f = std::fs::File::create(&out).unwrap();
        let packed = segment::pack(&inputs, deal_size, Some(segment::DealOut::new(&f, &out)), &mut Ignore).unwrap();
        drop(f);
        assert_eq!(packed.deal.cid_v1().to_string(), a["v1"].as_str().unwrap(), "{id}");
        assert_eq!(packed.deal.cid_v2().to_string(), a["v2"].as_str().unwrap(), "{id}");
        let offsets: Vec<u64> = packed.aggregate.entries().iter().map(|(_, e)| e.offset).collect();
        let want: Vec<u64> = a["offsets"].as_array().unwrap().iter().map(|o| o.as_u64().unwrap()).collect();
        assert_eq!(offsets, want, "{id}");
        for (piece, name) in packed.pieces.iter().zip(&order) {
            assert_eq!(piece.cid_v1().to_string(), v["payloads"][name]["v1"].as_str().unwrap(), "{id} {name}");
            assert_eq!(piece.cid_v2().to_string(), v["payloads"][name]["v2"].as_str().unwrap(), "{id} {name}");
        }
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(bytes.len() as u64, layout::unpadded(deal_size));
        assert_eq!(hex(&Sha256::digest(&bytes)), a["deal_sha256"].as_str().unwrap(), "{id}: deal bytes");
        assert_eq!(commp::commp_of_bytes(&bytes).unwrap().root, packed.deal.root, "{id}: commP of the file");
        if let Some(name) = a["proof_of"].as_str() {
            let n = order.iter().position(|o| o == &name).unwrap();
            assert_eq!(packed.aggregate.proof(n).link().to_string(), a["proof_cid"].as_str().unwrap());
        }
    }
}

fn sample(name: &str) -> PathBuf {
    vector("commp", name)
}

/// go-data-segment's sample aggregate: cat.png.car then the VDA png CAR in a 1 MiB deal.
fn pack_sample(out: &Path) -> serde_json::Value {
    let o = carload()
        .args(["segment", "pack", "--json", "--deal-size", "1MiB", "-o"])
        .arg(out)
        .arg(sample("cat.png.car"))
        .arg(sample("verifiable-data-aggregation.png.car"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn go_data_segments_sample_deal_and_index_are_reproduced_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let deal = dir.path().join("deal");
    let j = pack_sample(&deal);
    assert_eq!(j["piece_cid"], "baga6ea4seaqnqkeoqevjjjfe46wo2lpfclcbmkyms4wkz5srou3vzmr3w3c72bq");
    assert_eq!(j["piece_size"], 1 << 20);
    let segs = j["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0]["piece_cid"], "baga6ea4seaqae5ysjdbsr4b5jhotaz5ooh62jrrdbxwygfpkkfjz44kvywycmgy");
    assert_eq!((segs[0]["offset"].as_u64(), segs[0]["size"].as_u64()), (Some(0), Some(524_288)));
    assert_eq!(segs[1]["piece_cid"], "baga6ea4seaqnrm2n2g4m23t6rs26obxjw2tjtr7tcho24gepj2naqhevytduyoa");
    assert_eq!((segs[1]["offset"].as_u64(), segs[1]["size"].as_u64()), (Some(524_288), Some(262_144)));
    assert_eq!(segs[0]["piece_cid_v2"], commp_of_path(&sample("cat.png.car")).cid_v2().to_string());
    let bytes = std::fs::read(&deal).unwrap();
    assert!(bytes == std::fs::read(sample("deal.data")).unwrap(), "deal bytes differ from go-data-segment's deal.data");
    let start = layout::unpadded(layout::index_start(1 << 20)) as usize;
    assert!(bytes[start..] == std::fs::read(sample("index.data")).unwrap()[..], "index differs from index.data");
    let pc = commp::commp_of_bytes(&bytes).unwrap();
    assert_eq!(pc.cid_v1().to_string(), j["piece_cid"].as_str().unwrap());
    assert_eq!(pc.cid_v2().to_string(), j["piece_cid_v2"].as_str().unwrap());
}

#[test]
fn list_proof_and_verify_read_a_deal_back() {
    let dir = tempfile::tempdir().unwrap();
    let deal = dir.path().join("deal");
    let j = pack_sample(&deal);
    let o = carload().args(["segment", "list", "--json"]).arg(&deal).output().unwrap();
    assert!(o.status.success());
    let l: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((l["piece_size"].as_u64(), l["index_entries"].as_u64()), (Some(1 << 20), Some(8)));
    assert_eq!(l["segments"][1]["piece_cid"], j["segments"][1]["piece_cid"]);
    assert_eq!(l["segments"][1]["entry"], 1);

    // verify: the deal's piece CID, and a wrong one refused.
    let piece = j["piece_cid"].as_str().unwrap();
    let o = carload().args(["segment", "verify", "--json", "--piece-cid", piece]).arg(&deal).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["piece_cid_v2"], j["piece_cid_v2"]);
    let other = j["segments"][0]["piece_cid"].as_str().unwrap();
    let o = carload().args(["segment", "verify", "--piece-cid", other]).arg(&deal).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("not {other}")));

    // proof: from the deal and from the pack report alike; it verifies as go-data-segment does.
    let report = dir.path().join("deal.json");
    std::fs::write(&report, j.to_string()).unwrap();
    let seg = j["segments"][1]["piece_cid_v2"].as_str().unwrap();
    let mut outs = Vec::new();
    for src in [&deal, &report] {
        let o = carload().args(["segment", "proof", "--json"]).arg(src).arg(seg).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        outs.push(o.stdout);
    }
    assert_eq!(outs[0], outs[1]);
    let p: serde_json::Value = serde_json::from_slice(&outs[0]).unwrap();
    let proof: segment::InclusionProof = serde_json::from_value(p["proof"].clone()).unwrap();
    assert_eq!(hex(&proof.to_cbor()), p["proof_cbor"].as_str().unwrap());
    assert_eq!(proof.link().to_string(), p["proof_cid"].as_str().unwrap());
    let r = segment::parse_piece_cid(seg).unwrap();
    let (root, size) = proof.resolve(commp::Kernel::detect(), &r.root, r.size.unwrap()).unwrap();
    let deal_piece = PieceInfo {
        root,
        payload_size: layout::unpadded(size),
        padded_size: size,
        unpadded_size: layout::unpadded(size),
    };
    assert_eq!(deal_piece.cid_v1().to_string(), piece);
    let o = carload().args(["segment", "proof"]).arg(&deal).arg(piece).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no segment with piece CID"));
}

/// Runs `carload segment ARGS DEAL` expecting a one-line error containing `cause` and the path.
fn fails(args: &[&str], deal: &Path, cause: &str) {
    let o = carload().arg("segment").args(args).arg(deal).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(cause), "{args:?}: wanted {cause:?} in {err}");
    assert!(err.contains(&deal.display().to_string()), "names the deal: {err}");
}

/// The sample deal with its index area replaced by `entries` (padded, Fr32-unpadded in place).
fn with_index(good: &[u8], entries: &[[u8; 64]]) -> Vec<u8> {
    let mut padded = vec![0u8; layout::index_size(1 << 20) as usize];
    for (i, e) in entries.iter().enumerate() {
        padded[64 * i..64 * i + 64].copy_from_slice(e);
    }
    let mut bytes = good.to_vec();
    let start = layout::unpadded(layout::index_start(1 << 20)) as usize;
    bytes[start..].copy_from_slice(&fr32::unpad(&padded));
    bytes
}

#[test]
fn bad_deals_are_refused_with_one_line_naming_the_deal_and_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let deal = dir.path().join("deal");
    pack_sample(&deal);
    let good = std::fs::read(&deal).unwrap();
    let agg = segment::read_index(&std::fs::File::open(&deal).unwrap(), &deal).unwrap();
    let (e0, e1) = (agg.entries()[0].1, agg.entries()[1].1);
    let bad = dir.path().join("bad");
    let write = |bytes: &[u8]| std::fs::write(&bad, bytes).unwrap();

    // The index as pack wrote it, rebuilt by hand, is accepted.
    write(&with_index(&good, &[e0.to_bytes(), e1.to_bytes()]));
    assert_eq!(std::fs::read(&bad).unwrap(), good);

    write(&good[..good.len() - 1]);
    for cmd in ["list", "verify"] {
        fails(&[cmd], &bad, "not the size of a deal piece");
    }
    let mut b = good.clone();
    b[layout::unpadded(layout::index_start(1 << 20)) as usize] ^= 0x10;
    write(&b);
    fails(&["list"], &bad, "index entry 0: bad checksum");
    fails(&["verify"], &bad, "index entry 0: bad checksum");

    let overlapping = Entry { offset: 0, ..e1 };
    write(&with_index(&good, &[e0.to_bytes(), overlapping.to_bytes()]));
    fails(&["list"], &bad, "index entries 0 and 1 describe overlapping segments");

    let outside = Entry { offset: 1 << 20, ..e1 };
    write(&with_index(&good, &[e0.to_bytes(), outside.to_bytes()]));
    fails(
        &["list"],
        &bad,
        "index entry 1: segment at padded offset 1048576 of 262144 bytes lies outside the data area",
    );
    let into_index = Entry { root: e0.root, offset: (1 << 20) - 128, size: 128 };
    write(&with_index(&good, &[into_index.to_bytes()]));
    fails(&["list"], &bad, "lies outside the data area");

    let unaligned = Entry { offset: 128 * 4097, ..e1 };
    write(&with_index(&good, &[e0.to_bytes(), unaligned.to_bytes()]));
    fails(&["list"], &bad, "is not a multiple of its size");

    // verify recomputes every segment and checks the gaps.
    let mut b = good.clone();
    b[1000] ^= 1;
    write(&b);
    fails(&["verify"], &bad, "index entry 0: the segment at padded offset 0 hashes to");
    let mut b = good.clone();
    b[layout::unpadded(800 << 10) as usize] = 7;
    write(&b);
    fails(&["verify"], &bad, "is not zero");

    // proof names a deal it cannot read.
    std::fs::write(&bad, b"").unwrap();
    let o = carload().args(["segment", "proof"]).arg(&bad).arg(e0.piece().cid_v1().to_string()).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not the size of a deal piece"));
}

#[test]
fn pack_refuses_a_deal_too_small_with_what_is_missing_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let deal = dir.path().join("deal");
    let o = carload()
        .args(["segment", "pack", "--deal-size", "512KiB", "-o"])
        .arg(&deal)
        .arg(sample("cat.png.car"))
        .arg(sample("verifiable-data-aggregation.png.car"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("too small") && err.contains("missing") && err.contains("smallest deal that holds them: 1.0 MiB"),
        "{err}"
    );
    assert!(!deal.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no temporary left");

    // --no-write computes the same deal without a file; DEAL is not replaced without --force.
    let o = carload()
        .args(["segment", "pack", "--json", "--no-write", "--deal-size", "1MiB"])
        .arg(sample("cat.png.car"))
        .arg(sample("verifiable-data-aggregation.png.car"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["piece_cid"], "baga6ea4seaqnqkeoqevjjjfe46wo2lpfclcbmkyms4wkz5srou3vzmr3w3c72bq");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    std::fs::write(&deal, b"keep").unwrap();
    let o = carload()
        .args(["segment", "pack", "--deal-size", "1MiB", "-o"])
        .arg(&deal)
        .arg(sample("cat.png.car"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(std::fs::read(&deal).unwrap(), b"keep");

    // Inputs must be CARs unless told otherwise.
    let o = carload()
        .args(["segment", "pack", "--no-write", "--deal-size", "1MiB"])
        .arg(sample("index.data"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a CARv1 file"));
    let o = carload()
        .args(["segment", "pack", "--no-write", "--skip-car-validation", "--deal-size", "1MiB"])
        .arg(sample("index.data"))
        .output()
        .unwrap();
    assert!(o.status.success());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// The commP of every deal written is the reported deal piece CID; every segment's is its
    /// input's; the deal verifies; every proof resolves to the deal.
    #[test]
    fn the_commp_of_every_deal_written_is_the_reported_piece_cid(
        lens in proptest::collection::vec(0usize..300_000, 1..6),
        seed in any::<u64>(),
        larger in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (inputs, deal_size) = crate::common::deal_inputs(dir.path(), &lens, seed, larger);
        let out = dir.path().join("deal");
        let f = std::fs::File::create(&out).unwrap();
        let packed = segment::pack(&inputs, deal_size, Some(segment::DealOut::new(&f, &out)), &mut Ignore).unwrap();
        drop(f);
        let written = commp::commp_of_bytes(&std::fs::read(&out).unwrap()).unwrap();
        prop_assert_eq!(written.cid_v1(), packed.deal.cid_v1());
        prop_assert_eq!(written.cid_v2(), packed.deal.cid_v2());
        for (p, input) in packed.pieces.iter().zip(&inputs) {
            prop_assert_eq!(*p, commp_of_path(input));
        }
        let f = std::fs::File::open(&out).unwrap();
        let v = segment::verify_deal(&f, &out, &mut Ignore).unwrap();
        prop_assert_eq!(v.deal, packed.deal);
        prop_assert_eq!(&v.aggregate, &packed.aggregate);
        for (n, (_, e)) in packed.aggregate.entries().iter().enumerate() {
            let r = packed.aggregate.proof(n).resolve(commp::Kernel::detect(), &e.root, e.size).unwrap();
            prop_assert_eq!(r, (packed.deal.root, deal_size));
        }
    }
}

/// `tests/ipfs-node`, with data-segment installed (fails the test without it).
fn node_dir() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ipfs-node");
    assert!(
        here.join("node_modules/@web3-storage/data-segment/package.json").exists(),
        "@web3-storage/data-segment is not installed: run .ci/ipfs-node-setup.sh (CI does)"
    );
    here
}

#[test]
#[ignore = "needs node + @web3-storage/data-segment (set up by .ci/ipfs-node-setup.sh)"]
fn aggregates_index_and_proofs_equal_data_segments_and_it_verifies_carloads_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed: u64 = 0xda7a_5e6e;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut cars = 0;
    for round in 0..8 {
        // Several real CARs (carload's own, as pack takes them) of random sizes, some repeated.
        let count = 1 + next(6) as usize;
        let mut inputs: Vec<PathBuf> = Vec::new();
        for i in 0..count {
            if i > 0 && next(5) == 0 {
                inputs.push(inputs[next(i as u64) as usize].clone());
                continue;
            }
            let n = match next(4) {
                0 => next(200) as usize,
                1 => next(5_000) as usize,
                _ => next(600_000) as usize,
            };
            let src = dir.path().join(format!("r{round}f{i}"));
            std::fs::write(&src, crate::common::pseudo_random(n, next(u64::MAX))).unwrap();
            let car = dir.path().join(format!("r{round}f{i}.car"));
            carload().arg("car").arg(&src).arg(&car).arg("-q").assert().success();
            inputs.push(car);
            cars += 1;
        }
        let sizes: Vec<u64> =
            inputs.iter().map(|p| commp::padded_piece_size(std::fs::metadata(p).unwrap().len())).collect();
        let (_, end) = layout::offsets(&sizes);
        let deal_size = layout::smallest_deal(sizes.len() as u64, end).unwrap() << next(3);
        let out = dir.path().join(format!("r{round}.deal"));
        let f = std::fs::File::create(&out).unwrap();
        let packed = segment::pack(&inputs, deal_size, Some(segment::DealOut::new(&f, &out)), &mut Ignore).unwrap();
        drop(f);
        let agg = &packed.aggregate;
        let proofs: Vec<serde_json::Value> = packed
            .pieces
            .iter()
            .map(|p| {
                let n = agg.find(&p.root, Some(p.padded_size)).unwrap();
                serde_json::json!({"piece": p.cid_v2().to_string(), "cbor": hex(&agg.proof(n).to_cbor())})
            })
            .collect();
        let input = serde_json::json!({
            "size": deal_size,
            "pieces": packed.pieces.iter().map(|p| p.cid_v2().to_string()).collect::<Vec<_>>(),
            "proofs": proofs,
        });
        let o = std::process::Command::new("node")
            .arg(node_dir().join("data-segment.mjs"))
            .arg(input.to_string())
            .output()
            .expect("node (Node.js) is needed: run .ci/ipfs-node-setup.sh (CI does)");
        assert!(o.status.success(), "data-segment.mjs failed: {}", String::from_utf8_lossy(&o.stderr));
        let js: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let ctx = format!("round {round}: {} pieces in {deal_size}", inputs.len());
        assert_eq!(js["link"], packed.deal.cid_v2().to_string(), "{ctx}: aggregate piece CID");
        let offsets: Vec<String> = agg.entries().iter().map(|(_, e)| e.offset.to_string()).collect();
        let sizes: Vec<String> = agg.entries().iter().map(|(_, e)| e.size.to_string()).collect();
        assert_eq!(js["offsets"], serde_json::json!(offsets), "{ctx}: offsets");
        assert_eq!(js["sizes"], serde_json::json!(sizes), "{ctx}: sizes");
        let index = agg.index_padded();
        assert_eq!(js["index"], hex(&index[..64 * inputs.len()]), "{ctx}: index entries");
        let deal_bytes = std::fs::read(&out).unwrap();
        let start = layout::unpadded(layout::index_start(deal_size)) as usize;
        assert!(fr32::pad(&deal_bytes[start..]) == index, "{ctx}: index bytes in the deal");
        for (n, p) in proofs.iter().enumerate() {
            assert_eq!(js["proofs"][n], p["cbor"], "{ctx}: proof of piece {n}");
            assert_eq!(js["resolved"][n], packed.deal.cid_v2().to_string(), "{ctx}: data-segment verifies proof {n}");
        }
    }
    assert!(cars >= 8, "{cars} CARs");
}

#[test]
fn vouched_piece_cids_are_copied_not_hashed_and_verify_catches_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let (cat, vda) = (sample("cat.png.car"), sample("verifiable-data-aggregation.png.car"));
    let (cat_v2, vda_v1) = (commp_of_path(&cat).cid_v2().to_string(), commp_of_path(&vda).cid_v1().to_string());
    let pack = |out: &Path, cids: &[&str]| {
        let mut c = carload();
        c.args(["segment", "pack", "--json", "--deal-size", "1MiB", "-o"]).arg(out).arg(&cat).arg(&vda);
        for cid in cids {
            c.args(["--piece-cid", cid]);
        }
        c.output().unwrap()
    };
    let hashed = dir.path().join("hashed");
    let vouched = dir.path().join("vouched");
    let (a, b) = (pack(&hashed, &[]), pack(&vouched, &[&cat_v2, &vda_v1]));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(std::fs::read(&hashed).unwrap(), std::fs::read(&vouched).unwrap());

    // A wrong (swapped) vouch makes another deal, which verify refuses.
    let wrong = dir.path().join("wrong");
    let vda_v1_as_cat = vda_v1.clone();
    let cat_v1 = commp_of_path(&cat).cid_v1().to_string();
    let o = pack(&wrong, &[&vda_v1_as_cat, &cat_v1]);
    assert!(o.status.success());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_ne!(j["piece_cid"], "baga6ea4seaqnqkeoqevjjjfe46wo2lpfclcbmkyms4wkz5srou3vzmr3w3c72bq");
    fails(&["verify"], &wrong, "index entry 0: the segment at padded offset 0 hashes to");

    // Once per CAR; a v2 CID must be the CAR's size.
    let o = pack(&dir.path().join("x"), &[&cat_v2]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--piece-cid given 1 times for 2 CARs"));
    let vda_v2 = commp_of_path(&vda).cid_v2().to_string();
    let o = pack(&dir.path().join("x"), &[&vda_v2, &vda_v1]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not the payload of piece CID"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!dir.path().join("x").exists());
}

#[test]
fn mapped_inputs_of_several_steps_are_copied_and_hashed_exactly() {
    // Inputs of 1 MiB and more are mapped and written by a writer thread behind the hasher, in
    // steps of 64 commP units (66,584,576 bytes): one input of two steps, one just mapped.
    let dir = tempfile::tempdir().unwrap();
    let lens = [66_584_576 + 12_345, 1 << 20, 1000];
    let inputs: Vec<PathBuf> = lens
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let p = dir.path().join(format!("in{i}"));
            std::fs::write(&p, crate::common::pseudo_random(n, 77 + i as u64)).unwrap();
            p
        })
        .collect();
    let out = dir.path().join("deal");
    let f = std::fs::File::create(&out).unwrap();
    let packed = segment::pack(&inputs, 256 << 20, Some(segment::DealOut::new(&f, &out)), &mut Ignore).unwrap();
    drop(f);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(commp::commp_of_bytes(&bytes).unwrap(), packed.deal);
    for ((p, input), (_, e)) in packed.pieces.iter().zip(&inputs).zip(packed.aggregate.entries()) {
        let data = std::fs::read(input).unwrap();
        assert_eq!(*p, commp::commp_of_bytes(&data).unwrap());
        let at = layout::unpadded(e.offset) as usize;
        assert!(bytes[at..at + data.len()] == data[..], "{} copied to its place", input.display());
    }
    let nowrite = segment::pack(&inputs, 256 << 20, None, &mut Ignore).unwrap();
    assert_eq!(nowrite.deal, packed.deal);
}

#[test]
fn a_pack_report_that_lies_is_refused_by_proof() {
    let dir = tempfile::tempdir().unwrap();
    let j = pack_sample(&dir.path().join("deal"));
    let seg = j["segments"][0]["piece_cid"].as_str().unwrap().to_string();
    let report = dir.path().join("report.json");
    let refused = |j: &serde_json::Value, cause: &str| {
        std::fs::write(&report, j.to_string()).unwrap();
        let o = carload().args(["segment", "proof"]).arg(&report).arg(&seg).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains(cause) && err.contains("report.json"), "wanted {cause:?} naming the report: {err}");
    };
    // The report as pack wrote it gives a proof.
    std::fs::write(&report, j.to_string()).unwrap();
    let o = carload().args(["segment", "proof"]).arg(&report).arg(&seg).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Another deal's piece CID claimed for the same segments.
    let mut lie = j.clone();
    lie["piece_cid"] = j["segments"][1]["piece_cid"].clone();
    refused(&lie, "the segments do not make the deal piece CID");
    // The index entries listed in the other order (the same places): another index, another deal.
    let mut lie = j.clone();
    lie["segments"] = serde_json::json!([j["segments"][1], j["segments"][0]]);
    refused(&lie, "the segments do not make the deal piece CID");
    // A segment's piece swapped for the other's: another deal.
    let mut lie = j.clone();
    lie["segments"][0]["piece_cid"] = j["segments"][1]["piece_cid"].clone();
    refused(&lie, "the segments do not make the deal piece CID");
    // Overlapping segments, a deal size that is no deal, a segment that is no piece CID.
    let mut lie = j.clone();
    lie["segments"][1]["offset"] = 0.into();
    refused(&lie, "overlapping");
    let mut lie = j.clone();
    lie["piece_size"] = 1000.into();
    refused(&lie, "");
    let mut lie = j.clone();
    lie["segments"][0]["piece_cid"] = "bafy-not-a-piece".into();
    refused(&lie, "");
    // Not a report at all.
    refused(&serde_json::json!({"piece_cid": 7}), "not a `segment pack --json` report");
}
