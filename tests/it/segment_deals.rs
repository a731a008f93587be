//! Deals from a shipment (`carload segment plan|build`, `export --deals`): the plan's properties
//! (every batch in exactly one deal, valid layouts, no two deals mergeable, determinism), the
//! deals file read back without trust (bad files crafted byte by byte), and the commands.

use carload::segment::deals::{self, Deal, DealsError, DealsPlan, Header, Piece};
use carload::segment::{layout, Aggregate, Entry};
use proptest::prelude::*;
use std::io::Write as _;

fn root(seed: u64) -> [u8; 32] {
    let mut r = [0u8; 32];
    for (i, b) in r.iter_mut().enumerate() {
        *b = (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(i as u32 * 7) >> 8) as u8;
    }
    r[31] &= 0x3f;
    r
}

/// Pieces of padded sizes `2^exps[i]` (CARs of half that).
fn pieces(exps: &[u32]) -> Vec<Piece> {
    exps.iter()
        .enumerate()
        .map(|(i, &e)| Piece { batch: format!("b{i:05}"), root: root(i as u64), size: 1 << e, car_size: (1 << e) / 2 })
        .collect()
}

fn check_plan(ps: &[Piece], d: u64, plan: &[Deal]) {
    // Every batch in exactly one deal.
    let mut placed: Vec<&str> = plan.iter().flat_map(|d| d.segments.iter().map(|s| s.batch.as_str())).collect();
    placed.sort();
    let mut given: Vec<&str> = ps.iter().map(|p| p.batch.as_str()).collect();
    given.sort();
    assert_eq!(placed, given);
    for (n, deal) in plan.iter().enumerate() {
        assert_eq!(deal.id, deals::deal_id(n + 1));
        // The layout is FRC-0058's placement, and the piece CID the aggregate's root.
        let sizes: Vec<u64> = deal.segments.iter().map(|s| s.size).collect();
        let offsets: Vec<u64> = deal.segments.iter().map(|s| s.offset).collect();
        assert_eq!(layout::place(&sizes, d).unwrap(), offsets);
        let entries = deal.segments.iter().map(|s| Entry { root: s.root, offset: s.offset, size: s.size }).collect();
        assert_eq!(Aggregate::new(d, entries).unwrap().piece(), deal.piece);
        for s in &deal.segments {
            let p = ps.iter().find(|p| p.batch == s.batch).unwrap();
            assert_eq!((s.root, s.size, s.car_size), (p.root, p.size, p.car_size));
        }
    }
    // No two deals could be merged: placed largest first their pieces leave no gap, so a merge
    // fits only if the sizes' sum and the count do. (Best fit guarantees it: the piece that
    // opened the later deal did not fit the earlier one, which only grew since.)
    for i in 0..plan.len() {
        for j in i + 1..plan.len() {
            let count = (plan[i].segments.len() + plan[j].segments.len()) as u64;
            assert!(!layout::fits(count, plan[i].used() + plan[j].used(), d), "deals {i} and {j} could be one");
        }
    }
    // At least as many deals as the bytes and the entries need.
    let total: u64 = ps.iter().map(|p| p.size).sum();
    let lower = total.div_ceil(layout::index_start(d)).max((ps.len() as u64).div_ceil(layout::max_entries(d)));
    assert!(plan.len() as u64 >= lower);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn plans_place_every_batch_once_validly_and_tightly(
        exps in prop::collection::vec(7u32..=15, 0..60),
        deal_exp in 12u32..=17,
        rotate in 0usize..60,
    ) {
        let d = 1u64 << deal_exp;
        let ps = pieces(&exps);
        match deals::plan(&ps, d) {
            Ok(plan) => {
                check_plan(&ps, d, &plan);
                // Deterministic, and independent of the order the batches come in.
                let mut turned = ps.clone();
                if !turned.is_empty() {
                    let k = rotate % turned.len();
                    turned.rotate_left(k);
                    turned.reverse();
                }
                prop_assert_eq!(deals::plan(&turned, d).unwrap(), plan.clone());
                // The file round-trips.
                let file = DealsPlan { header: header(d, plan.len()), deals: plan };
                let mut bytes = Vec::new();
                deals::write_plan(&mut bytes, &file).unwrap();
                prop_assert_eq!(deals::parse_plan(&bytes).unwrap(), file);
            }
            Err(DealsError::TooLarge { size, .. }) => prop_assert!(size > layout::index_start(d)),
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}

fn header(d: u64, n: usize) -> Header {
    Header {
        format: deals::FORMAT.into(),
        version: deals::VERSION,
        shipment: "ab".repeat(32),
        deal_size: d,
        cars: "out".into(),
        deals: n as u64,
    }
}

/// A valid deals file of a few deals (4 KiB deals: pieces of 128 B to 2 KiB).
fn sample() -> (DealsPlan, Vec<u8>) {
    let ps = pieces(&[11, 10, 10, 9, 8, 7, 7, 11, 9]);
    let plan = deals::plan(&ps, 4096).unwrap();
    let file = DealsPlan { header: header(4096, plan.len()), deals: plan };
    let mut bytes = Vec::new();
    deals::write_plan(&mut bytes, &file).unwrap();
    (file, bytes)
}

fn refused(bytes: &[u8]) -> String {
    match deals::parse_plan(bytes) {
        Ok(_) => panic!("accepted:\n{}", String::from_utf8_lossy(bytes)),
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "{msg}");
            msg
        }
    }
}

fn edit(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(s.contains(from), "{from}");
    s.replacen(from, to, 1).into_bytes()
}

#[test]
fn crafted_deals_files_are_refused_naming_line_and_field() {
    let (file, bytes) = sample();
    assert!(file.deals.len() >= 3, "{}", file.deals.len());
    let d1 = &file.deals[0];
    let seg0 = &d1.segments[0];
    let v1 = d1.piece.cid_v1().to_string();
    for (bad, want) in [
        (edit(&bytes, "\"carload-deals\"", "\"carload-deal\""), "line 1: format:"),
        (edit(&bytes, "\"version\":1", "\"version\":2"), "line 1: version:"),
        (edit(&bytes, &"ab".repeat(32), &"AB".repeat(32)), "line 1: shipment:"),
        (edit(&bytes, "\"deal_size\":4096", "\"deal_size\":4000"), "line 1: deal_size:"),
        (edit(&bytes, "\"deals\":", "\"deals\":1"), "line 1: deals:"),
        (edit(&bytes, "\"cars\":\"out\"", "\"cars\":\"\""), "line 1: cars:"),
        (edit(&bytes, "\"cars\":\"out\"", "\"cars\":\"out\",\"extra\":1"), "line 1: record: unknown field `extra`"),
        (edit(&bytes, "\"id\":\"deal-0001\"", "\"id\":\"deal-0002\""), "line 2: id:"),
        (
            edit(
                &bytes,
                &format!("\"piece_cid\":\"{v1}\""),
                "\"piece_cid\":\"baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq\"",
            ),
            "line 2: piece_cid:",
        ),
        (edit(&bytes, "\"piece_cid_v2\":\"bafkzcib", "\"piece_cid_v2\":\"bafkzcic"), "line 2: piece_cid_v2:"),
        (edit(&bytes, "\"piece_size\":4096", "\"piece_size\":8192"), "line 2: piece_size:"),
        (edit(&bytes, &format!("\"car_size\":{}", seg0.car_size), "\"car_size\":0"), "line 2: segments[0].car_size:"),
        (edit(&bytes, &format!("\"size\":{}", seg0.size), "\"size\":128"), "line 2: segments[0].size:"),
        (edit(&bytes, &format!("\"batch\":\"{}\"", seg0.batch), "\"batch\":\"a/b\""), "line 2: segments[0].batch:"),
        (edit(&bytes, "\"segments\":[", "\"segments\":[],\"x\":["), "line 2: record:"),
        (bytes[..bytes.len() - 1].to_vec(), "does not end in a newline"),
        ([&bytes[..], b"\n"].concat(), "blank line"),
        (Vec::new(), "line 1: record: empty file"),
        ([&bytes[..], &[0xff, b'\n']].concat(), "not UTF-8"),
    ] {
        let msg = refused(&bad);
        assert!(msg.contains(want), "{want:?} not in {msg:?}");
    }
    // A batch in two deals.
    let other = &file.deals[1].segments[0].batch;
    let s = String::from_utf8(bytes.clone()).unwrap();
    let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
    lines[2] = lines[2].replacen(&format!("\"batch\":\"{other}\""), &format!("\"batch\":\"{}\"", seg0.batch), 1);
    let msg = refused((lines.join("\n") + "\n").as_bytes());
    assert!(msg.starts_with("line 3: segments[0].batch: batch b"), "{msg}");
}

#[test]
fn a_deal_reordered_is_refused_whether_or_not_its_offsets_follow() {
    // The same pieces in another order lie elsewhere: with the old offsets the placement is
    // wrong; with the offsets placement gives, the deal's root is another.
    let plan = deals::plan(&pieces(&[9, 8, 7, 7]), 8192).unwrap();
    let file = DealsPlan { header: header(8192, plan.len()), deals: plan };
    let mut bytes = Vec::new();
    deals::write_plan(&mut bytes, &file).unwrap();
    let (n, line) = (0, 2);
    let replace = |rec: &deals::DealRecord| {
        let s = String::from_utf8(bytes.clone()).unwrap();
        let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
        lines[line - 1] = serde_json::to_string(rec).unwrap();
        lines.join("\n") + "\n"
    };
    let mut rec = deals::DealRecord::of(&file.deals[n]);
    let last = rec.segments.len() - 1;
    rec.segments.swap(1, last);
    let msg = refused(replace(&rec).as_bytes());
    assert!(msg.starts_with(&format!("line {line}: segments[1].offset:")), "{msg}");
    let sizes: Vec<u64> = rec.segments.iter().map(|s| s.size).collect();
    for (s, o) in rec.segments.iter_mut().zip(layout::place(&sizes, 8192).unwrap()) {
        s.offset = o;
    }
    let msg = refused(replace(&rec).as_bytes());
    assert!(msg.starts_with(&format!("line {line}: piece_cid:")), "{msg}");
}

#[test]
fn every_byte_of_a_piece_cid_offset_or_size_changed_is_refused() {
    let (_, bytes) = sample();
    let text = String::from_utf8(bytes.clone()).unwrap();
    // The value ranges of every piece_cid, offset, size and car_size.
    let mut ranges = Vec::new();
    for key in ["\"piece_cid\":\"", "\"offset\":", "\"size\":", "\"piece_size\":"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(key) {
            let start = from + at + key.len();
            let end = start + text[start..].find(['"', ',', '}']).unwrap();
            ranges.push(start..end);
            from = end;
        }
    }
    assert!(ranges.len() > 30, "{}", ranges.len());
    let mut tried = 0;
    for r in ranges {
        for i in r {
            for c in [b'0', b'7', b'a', b'q', b'z'] {
                if bytes[i] == c {
                    continue;
                }
                let mut bad = bytes.clone();
                bad[i] = c;
                let line = bytes[..i].iter().filter(|&&b| b == b'\n').count() + 1;
                let msg = refused(&bad);
                assert!(msg.starts_with(&format!("line {line}: ")), "byte {i}: {msg}");
                tried += 1;
            }
        }
    }
    assert!(tried > 500, "{tried}");
}

#[test]
fn any_byte_changed_is_refused_or_read_as_a_consistent_plan() {
    let (_, bytes) = sample();
    for i in 0..bytes.len() {
        for c in [b'0', b'1', b'x', b'"', b'}', b'\n', b' ', b'\\'] {
            let mut bad = bytes.clone();
            bad[i] = c;
            if let Ok(p) = deals::parse_plan(&bad) {
                // Whatever is accepted is self-consistent: it writes and reads back as itself.
                let mut again = Vec::new();
                deals::write_plan(&mut again, &p).unwrap();
                assert_eq!(deals::parse_plan(&again).unwrap(), p, "byte {i} = {c}");
                for d in &p.deals {
                    assert_eq!(d.aggregate().unwrap().piece(), d.piece);
                }
            }
        }
    }
}

fn carload() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("carload").unwrap();
    c.env("NO_COLOR", "1");
    c
}

fn run(cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    carload().current_dir(cwd).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `dir/s.jsonl` planned from 31 files into batches of 256 KiB pieces (128 KiB at least), and
/// its CAR folder `dir/out` with the batches of `built` built (all when `None`).
fn shipment(dir: &std::path::Path, built: Option<&[&str]>) -> usize {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..31usize {
        std::fs::write(data.join(format!("f{i:03}")), crate::common::pseudo_random(20_000 + i * 3000, 7 + i as u64))
            .unwrap();
    }
    let o = run(dir, &["plan", "data", "-o", "s.jsonl", "--piece-size", "256KiB", "--min-piece-size", "128KiB", "-q"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut args = vec!["build", "s.jsonl", "--out", "out", "-q"];
    for b in built.unwrap_or(&[]) {
        args.extend(["--batch", b]);
    }
    let o = run(dir, &args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s =
        carload::shipment::read_shipment(std::io::BufReader::new(std::fs::File::open(dir.join("s.jsonl")).unwrap()))
            .unwrap();
    s.batches.len()
}

#[test]
fn segment_plan_packs_only_built_batches_and_refuses_others_unless_built_only() {
    let dir = tempfile::tempdir().unwrap();
    let n = shipment(dir.path(), Some(&["b00000", "b00002", "b00003"]));
    assert!(n >= 6, "{n}");
    let plan = ["segment", "plan", "s.jsonl", "--out", "out", "--deal-size", "1MiB", "-o", "deals.jsonl"];
    let o = run(dir.path(), &plan);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("not packed: b00001 (not built)"), "{err}");
    assert!(err.contains("--built-only"), "{err}");
    assert!(!dir.path().join("deals.jsonl").exists(), "nothing written");
    // A corrupt batch is named with its reason.
    let car = dir.path().join("out/b00002.car");
    let len = std::fs::metadata(&car).unwrap().len();
    std::fs::File::options().write(true).open(&car).unwrap().set_len(len - 1).unwrap();
    let o = run(dir.path(), &[&plan[..], &["--built-only"]].concat());
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("not packed: b00002 (corrupt: b00002.car is"), "{err}");
    let out = text(&o.stdout);
    assert!(out.contains("Planned 1 deal of 1.0 MiB (8 index entries each) for 2 batches"), "{out}");
    let p = deals::parse_plan(&std::fs::read(dir.path().join("deals.jsonl")).unwrap()).unwrap();
    let batches: Vec<&str> = p.deals[0].segments.iter().map(|s| s.batch.as_str()).collect();
    assert_eq!(batches, ["b00000", "b00003"]);
    assert_eq!(p.header.cars, "out");
    // The segments are the batches' own pieces.
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/b00000.json")).unwrap()).unwrap();
    assert_eq!(p.deals[0].segments[0].piece().cid_v1().to_string(), r["piece_cid"].as_str().unwrap());
    // An existing deals file is not replaced without --force.
    let o = run(dir.path(), &[&plan[..], &["--built-only"]].concat());
    assert!(text(&o.stderr).contains("already exists (use --force"), "{}", text(&o.stderr));
    let o = run(dir.path(), &[&plan[..], &["--built-only", "--force"]].concat());
    assert!(o.status.success());
    // Without -o, beside the shipment (where the workstation looks).
    let o =
        run(dir.path(), &["segment", "plan", "s.jsonl", "--out", "out", "--deal-size", "1MiB", "--built-only", "-q"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read(dir.path().join("s.deals.jsonl")).unwrap(),
        std::fs::read(dir.path().join("deals.jsonl")).unwrap()
    );
    // A deal size that holds no batch is an error naming it.
    let o = run(
        dir.path(),
        &["segment", "plan", "s.jsonl", "--out", "out", "--deal-size", "256KiB", "-o", "d2.jsonl", "--built-only"],
    );
    assert!(
        text(&o.stderr).contains("batch b00000: its piece of 256 KiB cannot go in a deal of 256 KiB"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_deal_is_written_from_its_cars_each_rehashed_in_slots_of_its_planned_size() {
    use carload::commp;
    let dir = tempfile::tempdir().unwrap();
    let cars = dir.path().join("cars");
    std::fs::create_dir_all(&cars).unwrap();
    // b00000 is a piece padded to a minimum piece size (4 KiB for a 1000-byte CAR).
    let mut ps = Vec::new();
    for (i, (len, size)) in [(1000usize, 4096u64), (3000, 0), (200, 0)].into_iter().enumerate() {
        let bytes = crate::common::pseudo_random(len, 40 + i as u64);
        let id = format!("b{i:05}");
        std::fs::write(cars.join(format!("{id}.car")), &bytes).unwrap();
        let p = commp::commp_of_bytes(&bytes).unwrap().pad_to(size);
        ps.push(Piece { batch: id, root: p.root, size: p.padded_size, car_size: len as u64 });
    }
    let plan = deals::plan(&ps, 16 << 10).unwrap();
    assert_eq!(plan.len(), 1);
    let d = &plan[0];
    assert_eq!(d.segments[0].size, 4096);
    let path = dir.path().join("d.deal");
    let f = std::fs::File::create(&path).unwrap();
    deals::write_deal(d, &cars, carload::segment::DealOut::new(&f, &path), &mut carload::event::Ignore).unwrap();
    drop(f);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(commp::commp_of_bytes(&bytes).unwrap().root, d.piece.root, "the file's commP is the plan's");
    let v = carload::segment::verify_deal(&std::fs::File::open(&path).unwrap(), &path, &mut carload::event::Ignore)
        .unwrap();
    assert_eq!(v.deal.root, d.piece.root);

    // A CAR changed after planning fails the deal, naming its batch: same size, other bytes…
    let car = cars.join("b00001.car");
    let mut b = std::fs::read(&car).unwrap();
    b[100] ^= 1;
    std::fs::write(&car, &b).unwrap();
    let f = std::fs::File::create(&path).unwrap();
    let err = deals::write_deal(d, &cars, carload::segment::DealOut::new(&f, &path), &mut carload::event::Ignore)
        .unwrap_err();
    assert!(matches!(&err, DealsError::PieceMismatch { batch, .. } if batch == "b00001"), "{err}");
    // …or another size (refused before anything is read).
    b.push(0);
    std::fs::write(&car, &b).unwrap();
    let err = deals::write_deal(d, &cars, carload::segment::DealOut::new(&f, &path), &mut carload::event::Ignore)
        .unwrap_err();
    assert!(err.to_string().starts_with("batch b00001: "), "{err}");
    assert!(matches!(err, DealsError::CarSize { expected: 3000, found: 3001, .. }));
}

fn built(stdout: &[u8]) -> Vec<String> {
    text(stdout).lines().filter(|l| l.contains(" built:")).map(|l| l.split(' ').next().unwrap().to_string()).collect()
}

/// A planned shipment built whole, its deals planned into `dir/deals.jsonl` (deals of 1 MiB).
fn planned_deals(dir: &std::path::Path) -> DealsPlan {
    shipment(dir, None);
    let o = run(dir, &["segment", "plan", "s.jsonl", "--out", "out", "--deal-size", "1MiB", "-o", "deals.jsonl", "-q"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    deals::parse_plan(&std::fs::read(dir.join("deals.jsonl")).unwrap()).unwrap()
}

#[test]
fn segment_build_writes_each_deal_once_resumes_and_skips_what_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let plan = planned_deals(dir.path());
    assert!(plan.deals.len() >= 3, "{}", plan.deals.len());
    let dl = dir.path().join("dl");
    std::fs::create_dir_all(&dl).unwrap();
    // A killed builder left deal-0002's lock (no heartbeat for an hour) and a partial deal.
    let lock = dl.join("deal-0002.lock");
    std::fs::write(&lock, "host=dead pid=1 time=0 token=0\n").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&lock).unwrap().set_modified(old).unwrap();
    std::fs::write(dl.join(".deal-0002.deal.abc123.partial"), b"half a deal").unwrap();
    // A live builder holds deal-0003.
    std::fs::write(dl.join("deal-0003.lock"), "host=alive pid=2 time=0 token=0\n").unwrap();
    let o = run(dir.path(), &["segment", "build", "deals.jsonl", "-o", "dl", "--stale-after", "60"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let ids = built(&o.stdout);
    assert!(ids.contains(&"deal-0001".into()) && ids.contains(&"deal-0002".into()), "{ids:?}");
    assert!(text(&o.stdout).contains("deal-0003 busy: claimed by host=alive"), "{}", text(&o.stdout));
    assert!(!lock.exists() && !dl.join(".deal-0002.deal.abc123.partial").exists());
    // Selected explicitly, a deal another builder holds is not a success (exit 75).
    let o = run(dir.path(), &["segment", "build", "deals.jsonl", "-o", "dl", "--deal-index", "2"]);
    assert_eq!(o.status.code(), Some(75), "{}", text(&o.stderr));
    std::fs::remove_file(dl.join("deal-0003.lock")).unwrap();
    // The rerun builds only what is missing.
    let o = run(dir.path(), &["segment", "build", "deals.jsonl", "-o", "dl"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut want: Vec<String> = plan.deals.iter().map(|d| d.id.clone()).collect();
    want.retain(|id| !ids.contains(id));
    assert_eq!(built(&o.stdout), want);
    for d in &plan.deals {
        let path = dl.join(format!("{}.deal", d.id));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(carload::commp::commp_of_bytes(&bytes).unwrap().root, d.piece.root, "{}", d.id);
        let o = run(
            dir.path(),
            &["segment", "verify", path.to_str().unwrap(), "--piece-cid", &d.piece.cid_v1().to_string()],
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    // A sidecar of another deal, or a truncated deal, is rebuilt; --deal picks by ID.
    let d1 = dl.join("deal-0001.deal");
    let len = std::fs::metadata(&d1).unwrap().len();
    std::fs::File::options().write(true).open(&d1).unwrap().set_len(len - 1).unwrap();
    let o = run(dir.path(), &["segment", "build", "deals.jsonl", "-o", "dl", "--deal", "deal-0001"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(built(&o.stdout), ["deal-0001"]);
    assert!(text(&o.stderr).contains("deal-0001: deal-0001.deal is"), "{}", text(&o.stderr));
    assert_eq!(std::fs::metadata(&d1).unwrap().len(), len);
    std::fs::copy(dl.join("deal-0002.deal.json"), dl.join("deal-0001.deal.json")).unwrap();
    let o = run(dir.path(), &["segment", "build", "deals.jsonl", "-o", "dl", "--deal", "deal-0001"]);
    assert_eq!(built(&o.stdout), ["deal-0001"]);
    assert!(
        text(&o.stderr)
            .contains("deal-0001: deal-0001.deal.json is not the result of the plan's deal-0001; rebuilding"),
        "{}",
        text(&o.stderr)
    );
    let o = run(dir.path(), &["segment", "build", "deals.jsonl", "-o", "dl"]);
    assert_eq!(text(&o.stdout).matches("skipped: already built").count(), plan.deals.len(), "{}", text(&o.stdout));
    // `segment status` agrees: every deal built, with the plan's piece CID.
    let s = deal_status(dir.path());
    assert_eq!(s["built"].as_u64(), Some(plan.deals.len() as u64), "{s}");
    for (st, d) in s["status"].as_array().unwrap().iter().zip(&plan.deals) {
        assert_eq!((st["id"].as_str(), st["state"].as_str()), (Some(d.id.as_str()), Some("built")), "{st}");
        assert_eq!(st["piece_cid"], d.piece.cid_v1().to_string());
    }
    // A truncated deal is not built as far as status is concerned either.
    std::fs::File::options().write(true).open(&d1).unwrap().set_len(len - 1).unwrap();
    let s = deal_status(dir.path());
    assert_eq!(s["status"][0]["state"], "other", "{s}");
    let o = run(dir.path(), &["segment", "build", "deals.jsonl", "-o", "dl", "-q"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = run(dir.path(), &["segment", "build", "deals.jsonl", "-o", "dl", "--deal", "deal-0009"]);
    assert!(text(&o.stderr).contains("no deal \"deal-0009\""), "{}", text(&o.stderr));
}

#[test]
fn a_car_changed_after_planning_fails_its_deal_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let plan = planned_deals(dir.path());
    let victim = plan.deals[1].segments[0].batch.clone();
    let car = dir.path().join(format!("out/{victim}.car"));
    let mut b = std::fs::read(&car).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x40;
    std::fs::write(&car, &b).unwrap();
    let o = run(dir.path(), &["segment", "build", "deals.jsonl", "-o", "dl"]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("deal-0002 FAILED: batch {victim}: ")) && err.contains("hashes to piece CID"),
        "{err}"
    );
    assert!(err.contains("1 of"), "{err}");
    let names: Vec<String> = std::fs::read_dir(dir.path().join("dl"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with("deal-0002") || n.contains(".partial")), "{names:?}");
    assert!(names.contains(&"deal-0001.deal".to_string()), "{names:?}");
}

#[test]
fn two_concurrent_builders_never_both_build_a_deal() {
    let dir = tempfile::tempdir().unwrap();
    let plan = planned_deals(dir.path());
    std::fs::create_dir_all(dir.path().join("dl")).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("carload");
    let spawn = || {
        std::process::Command::new(&bin)
            .current_dir(dir.path())
            .args(["segment", "build", "deals.jsonl", "-o", "dl"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{}{}", text(&a.stderr), text(&b.stderr));
    let mut all = built(&a.stdout);
    all.extend(built(&b.stdout));
    all.sort();
    let want: Vec<String> = plan.deals.iter().map(|d| d.id.clone()).collect();
    assert_eq!(all, want, "every deal built exactly once across both builders");
    for id in &want {
        assert!(!dir.path().join(format!("dl/{id}.lock")).exists());
    }
}

#[test]
fn export_with_deals_gives_each_built_deals_command_and_its_batches() {
    let dir = tempfile::tempdir().unwrap();
    let plan = planned_deals(dir.path());
    let o = run(dir.path(), &["segment", "build", "deals.jsonl", "-o", "dl", "--deal", "deal-0001", "deal-0002"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let export = |format: &str, deals: &str| {
        run(
            dir.path(),
            &[
                "export",
                "s.jsonl",
                "--out",
                "out",
                "--format",
                format,
                "--deals",
                deals,
                "--deal-dir",
                "dl",
                "--car-paths",
                "as-given",
                "--provider",
                "f01234",
            ],
        )
    };
    let o = export("boost", "deals.jsonl");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("warning: {} of {} deals not built in dl yet", plan.deals.len() - 2, plan.deals.len())),
        "{err}"
    );
    for d in &plan.deals[..2] {
        let payload: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(format!("out/{}.json", d.segments[0].batch))).unwrap(),
        )
        .unwrap();
        let cmd = format!(
            "boost offline-deal --provider=f01234 --commp={} --piece-size={} --payload-cid={} ",
            d.piece.cid_v1(),
            d.piece.padded_size,
            payload["payload_cid"].as_str().unwrap()
        );
        assert!(out.contains(&cmd), "{cmd}\n{out}");
        assert!(out.contains(&format!("# SP: boostd import-data <deal-uuid> dl/{}.deal\n", d.id)), "{out}");
        for s in &d.segments {
            assert!(out.contains(&format!("#   {} {} at {} ", s.batch, s.piece().cid_v1(), s.offset)), "{out}");
        }
    }
    assert!(!out.contains("deal-0003"), "{out}");
    let lotus = text(&export("lotus", "deals.jsonl").stdout);
    assert!(
        lotus.contains(&format!(
            "--manual-piece-cid={} --manual-piece-size={} ",
            plan.deals[0].piece.cid_v1(),
            plan.deals[0].piece.unpadded_size
        )),
        "{lotus}"
    );
    let csv = text(&export("csv", "deals.jsonl").stdout);
    let row = format!(
        "{},{},{},{},",
        plan.deals[1].piece.cid_v1(),
        plan.deals[1].piece.padded_size,
        plan.deals[1].piece.unpadded_size,
        plan.deals[1].piece.unpadded_size
    );
    assert!(csv.lines().nth(2).unwrap().starts_with(&row) && csv.contains(",dl/deal-0002.deal,deal-0002\n"), "{csv}");
    // A deals file of another plan is refused.
    let bytes = std::fs::read(dir.path().join("deals.jsonl")).unwrap();
    let other = String::from_utf8(bytes).unwrap().replacen(&plan.header.shipment, &"0".repeat(64), 1);
    std::fs::write(dir.path().join("other.jsonl"), other).unwrap();
    let o = export("boost", "other.jsonl");
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("other.jsonl: the deals file is of another plan"), "{}", text(&o.stderr));
    // A deal file tampered with after it was written is not counted built by its sidecar alone:
    // its length is checked (the bytes are `segment verify`'s).
    let d2 = dir.path().join("dl/deal-0002.deal");
    std::fs::File::options().append(true).open(&d2).unwrap().write_all(b"x").unwrap();
    let o = export("boost", "deals.jsonl");
    assert!(!text(&o.stdout).contains("deal-0002.deal"), "{}", text(&o.stdout));
}

/// A deal build ended by SIGTERM exits 143 and leaves neither its lock nor its temporary; the
/// next run builds the deal.
#[test]
fn a_signalled_deal_build_leaves_nothing_and_the_next_run_builds_it() {
    let dir = tempfile::tempdir().unwrap();
    let cars = dir.path().join("cars");
    std::fs::create_dir_all(&cars).unwrap();
    // A sparse CAR of 400 MiB of zeros (seconds to copy, no disk read): its piece is the zero
    // piece of 512 MiB.
    let len = 400u64 << 20;
    std::fs::File::create(cars.join("b00000.car")).unwrap().set_len(len).unwrap();
    let zero = carload::commp::commp_of_bytes(&[0u8; 127]).unwrap().pad_to(512 << 20);
    let plan =
        deals::plan(&[Piece { batch: "b00000".into(), root: zero.root, size: 512 << 20, car_size: len }], 1 << 30)
            .unwrap();
    let file = DealsPlan { header: Header { cars: "cars".into(), ..header(1 << 30, 1) }, deals: plan.clone() };
    let mut bytes = Vec::new();
    deals::write_plan(&mut bytes, &file).unwrap();
    std::fs::write(dir.path().join("deals.jsonl"), bytes).unwrap();
    let dl = dir.path().join("dl");
    std::fs::create_dir_all(&dl).unwrap();
    let mut kid = std::process::Command::new(assert_cmd::cargo::cargo_bin("carload"))
        .current_dir(dir.path())
        .args(["segment", "build", "deals.jsonl", "-o", "dl"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let partial =
        || std::fs::read_dir(&dl).unwrap().flatten().any(|e| e.file_name().to_string_lossy().ends_with(".partial"));
    while !(dl.join("deal-0001.lock").exists() && partial()) {
        assert!(start.elapsed().as_secs() < 60 && kid.try_wait().unwrap().is_none(), "no lock and temporary appeared");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    unsafe { libc::kill(kid.id() as i32, libc::SIGTERM) };
    assert_eq!(kid.wait().unwrap().code(), Some(143));
    let left: Vec<String> =
        std::fs::read_dir(&dl).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(left.is_empty(), "left behind {left:?}");
    let o = run(dir.path(), &["segment", "build", "deals.jsonl", "-o", "dl"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(built(&o.stdout), ["deal-0001"]);
    assert_eq!(deals::judge_deal(&dl, &plan[0]).unwrap(), deals::Judged::Built);
}

/// `segment status --json` of `deals.jsonl` into `dl`, parsed.
fn deal_status(dir: &std::path::Path) -> serde_json::Value {
    let o = run(dir, &["segment", "status", "deals.jsonl", "-o", "dl", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn segment_status_shows_a_builders_progress_and_a_killed_builders_stale_lock() {
    let dir = tempfile::tempdir().unwrap();
    let cars = dir.path().join("cars");
    std::fs::create_dir_all(&cars).unwrap();
    // A sparse CAR of 4 GiB of zeros (seconds to copy on one thread, no disk read; killed long
    // before it is all written): its piece is the zero piece.
    let len = 4u64 << 30;
    std::fs::File::create(cars.join("b00000.car")).unwrap().set_len(len).unwrap();
    let size = carload::commp::padded_piece_size(len);
    let zero = carload::commp::commp_of_bytes(&[0u8; 127]).unwrap().pad_to(size);
    let plan =
        deals::plan(&[Piece { batch: "b00000".into(), root: zero.root, size, car_size: len }], size * 2).unwrap();
    let file = DealsPlan { header: Header { cars: "cars".into(), ..header(size * 2, 1) }, deals: plan.clone() };
    let mut bytes = Vec::new();
    deals::write_plan(&mut bytes, &file).unwrap();
    std::fs::write(dir.path().join("deals.jsonl"), bytes).unwrap();
    let dl = dir.path().join("dl");
    std::fs::create_dir_all(&dl).unwrap();
    let s = deal_status(dir.path());
    assert_eq!((s["deals"].as_u64(), s["not_built"].as_u64()), (Some(1), Some(1)), "{s}");
    assert_eq!(s["status"][0]["state"], "not_built");

    let mut kid = std::process::Command::new(assert_cmd::cargo::cargo_bin("carload"))
        .current_dir(dir.path())
        .args(["segment", "build", "deals.jsonl", "-o", "dl", "--heartbeat", "1", "--threads", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The builder's lock reports how far it is: some bytes done, not all.
    let start = std::time::Instant::now();
    let seen = loop {
        assert!(kid.try_wait().unwrap().is_none(), "the build ended before its progress was seen");
        assert!(start.elapsed().as_secs() < 120, "no progress seen");
        let s = deal_status(dir.path());
        let d = &s["status"][0];
        if d["state"] == "building" && d["bytes_done"].as_u64().is_some_and(|b| b > 0) {
            break d.clone();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(seen["pid"].as_u64(), Some(kid.id() as u64), "{seen}");
    assert_eq!((seen["bytes_total"].as_u64(), seen["files_total"].as_u64()), (Some(len), Some(1)), "{seen}");
    assert!(seen["bytes_done"].as_u64().unwrap() < len, "{seen}");
    assert_eq!(seen["phase"], "writing");
    let o = run(dir.path(), &["segment", "status", "deals.jsonl", "-o", "dl"]);
    let out = text(&o.stdout);
    assert!(out.starts_with("0 of 1 deal built, 1 building"), "{out}");
    assert!(out.contains("deal-0001  building on ") && out.contains("segments done), refreshed"), "{out}");

    // Killed: its lock stays, and status says why a build will take it over at once.
    unsafe { libc::kill(kid.id() as i32, libc::SIGKILL) };
    kid.wait().unwrap();
    let s = deal_status(dir.path());
    assert_eq!(s["status"][0]["state"], "stale_lock", "{s}");
    assert_eq!(s["status"][0]["reason"], "process_gone", "{s}");
    let o = run(dir.path(), &["segment", "status", "deals.jsonl", "-o", "dl"]);
    assert!(
        text(&o.stdout)
            .contains("its process is gone (this host, same boot and PID namespace)); `segment build` takes it over"),
        "{}",
        text(&o.stdout)
    );
    let o = run(dir.path(), &["segment", "status", "deals.jsonl", "-o", "nowhere"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("nowhere: no such folder"), "{}", text(&o.stderr));
}

#[test]
fn receive_verifies_deal_files_joins_them_to_the_deal_list_and_flags_what_lies() {
    let dir = tempfile::tempdir().unwrap();
    let plan = planned_deals(dir.path());
    assert!(plan.deals.len() >= 3, "{}", plan.deals.len());
    let o = run(dir.path(), &["segment", "build", "deals.jsonl", "-o", "dl", "-q"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = run(
        dir.path(),
        &["export", "s.jsonl", "--out", "out", "--format", "csv", "--deals", "deals.jsonl", "--deal-dir", "dl"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    std::fs::write(dir.path().join("deals.csv"), &o.stdout).unwrap();
    let receive = |extra: &[&str]| {
        let mut args = vec!["receive", "dl", "--json"];
        args.extend(extra);
        let o = run(dir.path(), &args);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
        (o.status.code(), v, text(&o.stderr))
    };
    let problems = |v: &serde_json::Value, name: &str| -> Vec<String> {
        let car = v["cars"].as_array().unwrap().iter().find(|c| c["path"].as_str().unwrap().ends_with(name)).unwrap();
        car["problems"].as_array().unwrap().iter().map(|p| p["message"].as_str().unwrap().to_string()).collect()
    };

    // Every deal verifies, is its own result, finds its deal in the list, and gets a command.
    let (code, v, err) = receive(&["--deals", "deals.csv"]);
    assert_eq!(code, Some(0), "{err}\n{v}");
    let cars = v["cars"].as_array().unwrap();
    assert_eq!(cars.len(), plan.deals.len());
    for (c, d) in cars.iter().zip(&plan.deals) {
        assert_eq!((c["kind"].as_str(), c["batch"].as_str()), (Some("deal"), Some(d.id.as_str())), "{c}");
        assert_eq!(c["piece_cid"], d.piece.cid_v1().to_string());
        assert_eq!(c["piece_size"].as_u64(), Some(d.piece.padded_size));
        assert_eq!(c["segments"].as_u64(), Some(d.segments.len() as u64));
        assert!(c["commands"][0].as_str().unwrap().contains(&format!("{}.deal", d.id)), "{c}");
    }
    let o = run(dir.path(), &["receive", "dl"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("[deal-0001] · ") && out.contains(" · deal piece baga"), "{out}");
    assert!(out.contains(&format!("0 CARs and {} deal files: {} OK", plan.deals.len(), plan.deals.len())), "{out}");

    let dl = dir.path().join("dl");
    let (d1, d2) = (dl.join("deal-0001.deal"), dl.join("deal-0002.deal"));
    let good1 = std::fs::read(&d1).unwrap();
    // A byte of a segment changed in transit: the deal does not verify and its deal finds no file.
    let mut bad = good1.clone();
    bad[100] ^= 1;
    std::fs::write(&d1, &bad).unwrap();
    let (code, v, err) = receive(&["--deals", "deals.csv"]);
    assert_eq!(code, Some(1), "{v}");
    assert!(err.contains("1 of 0 CARs and"), "{err}");
    let p = problems(&v, "deal-0001.deal");
    assert!(
        p[0].starts_with("does not verify (1 problems): index entry 0: the segment at padded offset 0 hashes to"),
        "{p:?}"
    );
    assert_eq!(v["deals"][0]["state"], "wrong_car", "{v}");
    // A truncated deal.
    std::fs::write(&d1, &good1[..good1.len() - 1]).unwrap();
    let (_, v, _) = receive(&[]);
    assert!(problems(&v, "deal-0001.deal")[0].contains("not the size of a deal piece"), "{v}");
    std::fs::write(&d1, &good1).unwrap();

    // Two deal files swapped by name (results left where they were): each result lies, and the
    // list says whose piece each holds.
    let good2 = std::fs::read(&d2).unwrap();
    std::fs::write(&d1, &good2).unwrap();
    std::fs::write(&d2, &good1).unwrap();
    let (code, v, _) = receive(&["--deals", "deals.csv"]);
    assert_eq!(code, Some(1));
    let p = problems(&v, "deal-0001.deal");
    assert_eq!(p[0], "swapped: it holds deal deal-0002's piece", "{p:?}");
    assert!(p[1].starts_with("its result does not match: deal-0001.deal.json records piece "), "{p:?}");
    std::fs::write(&d1, &good1).unwrap();
    std::fs::write(&d2, &good2).unwrap();

    // A result edited: a segment's offset; a result of another deal; a garbled result.
    let side = dl.join("deal-0001.deal.json");
    let record = std::fs::read_to_string(&side).unwrap();
    let offset = format!("\"offset\":{}", plan.deals[0].segments[1].offset);
    assert!(record.contains(&offset), "{record}");
    std::fs::write(&side, record.replacen(&offset, "\"offset\":0", 1)).unwrap();
    let (_, v, _) = receive(&[]);
    let p = problems(&v, "deal-0001.deal");
    assert!(p[0].contains("segment 1 (") && p[0].contains(" at 0 of "), "{p:?}");
    std::fs::copy(dl.join("deal-0002.deal.json"), &side).unwrap();
    let (_, v, _) = receive(&[]);
    assert!(problems(&v, "deal-0001.deal")[0].contains("deal-0001.deal.json is deal deal-0002's result"), "{v}");
    std::fs::write(&side, b"{\"id\":").unwrap();
    let (_, v, _) = receive(&[]);
    assert!(problems(&v, "deal-0001.deal")[0].contains("deal-0001.deal.json is not a deal result"), "{v}");
    std::fs::write(&side, record).unwrap();

    // A deal whose file is gone: its deal is missing; a deal file with no result and in no deal
    // of the list is foreign.
    std::fs::remove_file(&d2).unwrap();
    std::fs::remove_file(dl.join("deal-0003.deal.json")).unwrap();
    std::fs::rename(dl.join("deal-0003.deal"), dl.join("extra.deal")).unwrap();
    let (code, v, _) = receive(&["--deals", "deals.csv"]);
    assert_eq!(code, Some(1));
    assert_eq!(v["deals"][1]["state"], "missing", "{v}");
    assert_eq!(v["deals"][2]["state"], "found", "{v}");
    assert!(problems(&v, "extra.deal").is_empty(), "the list's deal-0003 finds its piece in extra.deal: {v}");
    let (code, _, _) = receive(&[]);
    assert_eq!(code, Some(0), "without a list, a verified deal file is OK");
}

/// `segment build --buffered` writes the same deals, byte for byte, as the default (direct I/O
/// where the file system allows): the opt-out reaches the writer and changes no byte.
#[test]
fn segment_build_buffered_writes_the_same_deals() {
    let dir = tempfile::tempdir().unwrap();
    let plan = planned_deals(dir.path());
    let o = run(dir.path(), &["segment", "build", "deals.jsonl", "-o", "direct", "-q"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = run(dir.path(), &["segment", "build", "deals.jsonl", "-o", "buffered", "-q", "--buffered"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for d in &plan.deals {
        let name = format!("{}.deal", d.id);
        let direct = std::fs::read(dir.path().join("direct").join(&name)).unwrap();
        let buffered = std::fs::read(dir.path().join("buffered").join(&name)).unwrap();
        assert_eq!(direct.len() as u64, carload::segment::layout::unpadded(d.piece.padded_size), "{name}");
        assert!(direct == buffered, "{name}: the deals differ");
        assert_eq!(carload::commp::commp_of_bytes(&direct).unwrap().root, d.piece.root, "{name}");
    }
}
