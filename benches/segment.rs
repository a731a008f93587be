//! `segment pack` against `commp` of the same bytes: inputs of about 1 GiB in all (halving
//! sizes), warm page cache, best of five runs; prints each time and the ratio of pack's
//! throughput to commp's (the issue asks for at least 0.9).
//!
//! `cargo bench --bench segment` (env `SEGMENT_BENCH_MIB` changes the total, `SEGMENT_BENCH_DIR`
//! the folder of the inputs and the deal; default the system's temporary folder).

mod common;

use carload::commp::commp_of_file;
use carload::event::Ignore;
use carload::segment::{self, layout};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn main() {
    let total_mib: u64 = std::env::var("SEGMENT_BENCH_MIB").ok().and_then(|s| s.parse().ok()).unwrap_or(1024);
    let base = std::env::var_os("SEGMENT_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).unwrap();
    // Pieces of 1/2, 1/4, 1/8 … 1 MiB of the total (payloads a little under their piece's
    // capacity), then the deal's index.
    let mut inputs = Vec::new();
    let mut part = (total_mib << 20) / 2;
    while part >= 1 << 20 {
        let n = part / 128 * 127 - 4096;
        let p = dir.path().join(format!("in{}.car", inputs.len()));
        std::fs::write(&p, common::pseudo_random(n as usize / 8 * 8, 0x5e6 + inputs.len() as u64)).unwrap();
        inputs.push(p);
        part /= 2;
    }
    let bytes: u64 = inputs.iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    let sizes: Vec<u64> =
        inputs.iter().map(|p| carload::commp::padded_piece_size(std::fs::metadata(p).unwrap().len())).collect();
    let (_, end) = layout::offsets(&sizes);
    let deal_size = layout::smallest_deal(sizes.len() as u64, end).expect("fits a 64 GiB deal");
    let deal = dir.path().join("deal");

    let commp = || {
        for p in &inputs {
            let f = File::open(p).unwrap();
            commp_of_file(&f, p).unwrap().unwrap();
        }
    };
    let pack = |deal: Option<&Path>| {
        let Some(deal) = deal else {
            segment::pack(&inputs, deal_size, None, &mut Ignore).unwrap();
            return;
        };
        let _ = std::fs::remove_file(deal);
        let f = File::create(deal).unwrap();
        segment::pack(&inputs, deal_size, Some(segment::DealOut::new(&f, deal)), &mut Ignore).unwrap();
    };
    let time = |f: &dyn Fn()| -> Duration {
        let t = Instant::now();
        f();
        t.elapsed()
    };
    commp(); // warm the page cache
    let _ = std::process::Command::new("sync").status(); // the inputs' writeback out of the way
                                                         // In memory (/dev/shm): the CPU cost of copying into the deal; on the inputs' disk: as used.
    let shm = Path::new("/dev/shm").is_dir().then(|| tempfile::tempdir_in("/dev/shm").unwrap());
    // Rounds interleave the four, so a burst of other work on the machine hits them alike.
    let (mut c, mut n, mut m, mut w) = (Duration::MAX, Duration::MAX, None::<Duration>, Duration::MAX);
    for _ in 0..5 {
        c = c.min(time(&commp));
        n = n.min(time(&|| pack(None)));
        if let Some(d) = &shm {
            let t = time(&|| pack(Some(&d.path().join("deal"))));
            m = Some(m.map_or(t, |m| m.min(t)));
        }
        w = w.min(time(&|| pack(Some(&deal))));
    }
    let rate = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    println!(
        "{} inputs, {} MB in a deal of {} MiB ({} threads), best of 5",
        inputs.len(),
        bytes / 1_000_000,
        deal_size >> 20,
        rayon::current_num_threads()
    );
    let line = |name: &str, d: Duration| {
        println!(
            "{name:<34} {:>7.3} s {:>7.0} MB/s  {:.2}x commp",
            d.as_secs_f64(),
            rate(d),
            c.as_secs_f64() / d.as_secs_f64()
        )
    };
    line("commp of the inputs", c);
    line("segment pack --no-write", n);
    if let Some(m) = m {
        line("segment pack, deal in /dev/shm", m);
    }
    line("segment pack, deal beside the inputs", w);
}
