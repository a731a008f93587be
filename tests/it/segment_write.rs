//! How a deal reaches its file (`segment::write`): direct I/O and buffered writes give the same
//! bytes, byte for byte, as a deal built in memory; the direct path is taken where the file
//! system accepts `O_DIRECT` (tests write under the system's temporary folder); a write that
//! fails leaves no deal.

use carload::commp;
use carload::event::Ignore;
use carload::segment::write::{DealWriter, WriteMode};
use carload::segment::{self, layout, DealOut};
use proptest::prelude::*;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Whether the file system of `dir` takes one aligned direct write (probed independently of
/// carload's writer).
fn direct_io_works(dir: &Path) -> bool {
    let p = dir.join("probe");
    let Ok(mut f) = std::fs::OpenOptions::new().write(true).create(true).custom_flags(libc::O_DIRECT).open(&p) else {
        return false;
    };
    let mut storage = vec![7u8; 2 * 4096];
    let at = storage.as_ptr().align_offset(4096);
    let ok = f.write_all(&storage[at..at + 4096]).is_ok();
    storage.clear();
    std::fs::remove_file(&p).unwrap();
    ok
}

/// The deal's bytes built in memory: each input at its slot's unpadded offset, the index at the
/// end, zeros elsewhere.
fn deal_in_memory(inputs: &[PathBuf], packed: &segment::Packed, deal_size: u64) -> Vec<u8> {
    let mut deal = vec![0u8; layout::unpadded(deal_size) as usize];
    for (input, (_, e)) in inputs.iter().zip(packed.aggregate.entries()) {
        let data = std::fs::read(input).unwrap();
        let at = layout::unpadded(e.offset) as usize;
        deal[at..at + data.len()].copy_from_slice(&data);
    }
    let index = packed.aggregate.index_unpadded();
    let at = layout::unpadded(layout::index_start(deal_size)) as usize;
    deal[at..at + index.len()].copy_from_slice(&index);
    deal
}

/// Packs `inputs` into `dir/<name>` in `mode`.
fn pack_to(dir: &Path, name: &str, inputs: &[PathBuf], deal_size: u64, mode: WriteMode) -> (segment::Packed, Vec<u8>) {
    let out = dir.join(name);
    let f = File::create(&out).unwrap();
    let packed = segment::pack(inputs, deal_size, Some(DealOut::new(&f, &out).with_mode(mode)), &mut Ignore).unwrap();
    drop(f);
    (packed, std::fs::read(&out).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]
    /// Tiny pieces sharing a block, mapped ones (≥ 1 MiB, written from the map), gaps of a larger
    /// deal, the index: the direct and the buffered deal are the same bytes as the deal built in
    /// memory, and their commP is the reported piece.
    #[test]
    fn direct_and_buffered_deals_are_the_same_bytes(
        lens in proptest::collection::vec(prop_oneof![0usize..300, 0usize..70_000, (1usize << 20)..(3 << 20)], 1..7),
        seed in any::<u64>(),
        larger in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (inputs, deal_size) = crate::common::deal_inputs(dir.path(), &lens, seed, larger);
        let (direct, d_bytes) = pack_to(dir.path(), "direct", &inputs, deal_size, WriteMode::Direct);
        let (buffered, b_bytes) = pack_to(dir.path(), "buffered", &inputs, deal_size, WriteMode::Buffered);
        prop_assert_eq!(direct.direct, direct_io_works(dir.path()));
        prop_assert!(!buffered.direct);
        prop_assert_eq!(direct.deal, buffered.deal);
        let want = deal_in_memory(&inputs, &direct, deal_size);
        prop_assert!(d_bytes == want, "direct deal differs from the deal in memory");
        prop_assert!(b_bytes == want, "buffered deal differs from the deal in memory");
        prop_assert_eq!(commp::commp_of_bytes(&d_bytes).unwrap(), direct.deal);
    }

    /// Any increasing writes (unaligned offsets and memory, gaps within and across blocks, runs
    /// longer than the writer's buffer) give, in both modes, the bytes written over zeros.
    #[test]
    fn a_deal_writer_writes_what_it_is_given(
        writes in proptest::collection::vec((0u64..20_000, 0usize..9_000_000, 0usize..64), 1..8),
        tail in 0u64..10_000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let source = crate::common::pseudo_random(9_000_000 + 8192, 5);
        // An aligned view of the source, so that some writes go from aligned memory.
        let a = source.as_ptr().align_offset(4096);
        let mut want = Vec::new();
        let mut placed = Vec::new();
        let mut off = 0u64;
        for &(gap, len, skew) in &writes {
            off += gap;
            let from = a + skew * (skew % 2) * 64; // aligned, or a multiple of 64 off it
            let len = len.min(source.len() - from);
            placed.push((off, from, len));
            want.resize((off as usize + len).max(want.len()), 0);
            want[off as usize..off as usize + len].copy_from_slice(&source[from..from + len]);
            off += len as u64;
        }
        let total = off + tail;
        want.resize(total as usize, 0);
        for mode in [WriteMode::Direct, WriteMode::Buffered] {
            let p = dir.path().join(format!("{mode:?}"));
            let f = File::create(&p).unwrap();
            let mut w = DealWriter::new(&f, mode);
            for &(off, from, len) in &placed {
                w.write_at(off, &source[from..from + len]).unwrap();
            }
            w.finish(total).unwrap();
            prop_assert_eq!(w.is_direct(), mode == WriteMode::Direct && direct_io_works(dir.path()));
            drop(w);
            drop(f);
            prop_assert!(std::fs::read(&p).unwrap() == want, "{:?}", mode);
        }
    }
}

/// A deal writer leaves the file's flags as they were (no `O_DIRECT` left behind for the
/// caller's later writes).
#[test]
fn a_deal_writer_restores_the_files_flags() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("deal");
    let mut f = File::create(&p).unwrap();
    let before = rustix::fs::fcntl_getfl(&f).unwrap();
    {
        let mut w = DealWriter::new(&f, WriteMode::Direct);
        assert_eq!(w.is_direct(), direct_io_works(dir.path()));
        w.write_at(3, b"abc").unwrap();
        w.finish(10).unwrap();
    }
    assert_eq!(rustix::fs::fcntl_getfl(&f).unwrap(), before);
    f.write_all(b"x").unwrap(); // unaligned: refused under O_DIRECT
    assert_eq!(std::fs::read(&p).unwrap(), b"x\0\0abc\0\0\0\0");
}

/// `segment pack` with a write that fails (a file-size limit: EFBIG) in both modes: exit 1, one
/// line naming the deal and the cause, and no deal (nor temporary file) left.
#[test]
fn a_deal_whose_write_fails_is_not_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let car = dir.path().join("in.car");
    std::fs::write(&car, crate::common::pseudo_random(3 << 20, 9)).unwrap();
    for buffered in [false, true] {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("carload"));
        cmd.current_dir(dir.path()).args([
            "segment",
            "pack",
            "--skip-car-validation",
            "-q",
            "--deal-size",
            "8MiB",
            "in.car",
            "-o",
            "deal",
        ]);
        if buffered {
            cmd.arg("--buffered");
        }
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit and signal are async-signal-safe; SIGXFSZ ignored makes writes fail
        // with EFBIG instead of killing the process (ignored signals stay ignored across exec).
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let lim = libc::rlimit { rlim_cur: 1 << 20, rlim_max: 1 << 20 };
                libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
                Ok(())
            });
        }
        let o = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "buffered {buffered}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains("deal") && err.contains("File too large"), "buffered {buffered}: {err}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("in.car")], "buffered {buffered}");
    }
}

/// `segment pack --buffered` and the default write the same deal (the CLI's opt-out reaches the
/// library).
#[test]
fn segment_pack_buffered_writes_the_same_deal() {
    let dir = tempfile::tempdir().unwrap();
    let car = dir.path().join("in.car");
    std::fs::write(&car, crate::common::pseudo_random((2 << 20) + 123, 11)).unwrap();
    let pack = |name: &str, extra: &[&str]| {
        let o = std::process::Command::new(assert_cmd::cargo::cargo_bin("carload"))
            .current_dir(dir.path())
            .args([
                "segment",
                "pack",
                "--skip-car-validation",
                "-q",
                "--json",
                "--deal-size",
                "8MiB",
                "in.car",
                "-o",
                name,
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (String::from_utf8(o.stdout).unwrap(), std::fs::read(dir.path().join(name)).unwrap())
    };
    let (direct_json, direct) = pack("direct", &[]);
    let (buffered_json, buffered) = pack("buffered", &["--buffered"]);
    assert_eq!(direct_json, buffered_json);
    assert!(direct == buffered, "the deals differ");
    assert_eq!(direct.len() as u64, layout::unpadded(8 << 20));
}
