//! `segment pack` against `commp` of the same bytes: inputs of about 1 GiB in all (halving
//! sizes), warm page cache, the median of five interleaved rounds; prints each time, the ratio of
//! pack's throughput to commp's (the issue asks for at least 0.9) and the CPU (user + system) of
//! the process per GiB, for the deal written with direct I/O and `--buffered`, on the inputs'
//! disk and in /dev/shm (each deal synced, as the CLI does before its rename; the kernel's
//! writeback threads are not counted).
//!
//! `cargo bench --bench segment` (env `SEGMENT_BENCH_MIB` changes the total, `SEGMENT_BENCH_DIR`
//! the folder of the inputs and the deal; default the system's temporary folder;
//! `SEGMENT_BENCH_ROUNDS` the rounds).

mod common;

use carload::commp::commp_of_file;
use carload::event::Ignore;
use carload::segment::{self, layout, DealOut, WriteMode};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    // As the CLI writes a deal: a new file (the last run's removed before the clock starts),
    // packed, synced (before its rename).
    let pack = |deal: Option<(&Path, WriteMode)>| {
        let Some((deal, mode)) = deal else {
            segment::pack(&inputs, deal_size, None, &mut Ignore).unwrap();
            return;
        };
        let f = File::create(deal).unwrap();
        let packed =
            segment::pack(&inputs, deal_size, Some(DealOut::new(&f, deal).with_mode(mode)), &mut Ignore).unwrap();
        assert_eq!(packed.direct, mode == WriteMode::Direct && probe_direct(deal), "{}", deal.display());
        f.sync_all().unwrap();
    };
    commp(); // warm the page cache
    let _ = std::process::Command::new("sync").status(); // the inputs' writeback out of the way
                                                         // In memory (/dev/shm): the CPU cost of copying into the deal; on the inputs' disk: as used.
    let shm = Path::new("/dev/shm").is_dir().then(|| tempfile::tempdir_in("/dev/shm").unwrap());
    let mut runs: Vec<(String, Box<dyn Fn() + '_>)> = vec![
        ("commp of the inputs".into(), Box::new(commp)),
        ("segment pack --no-write".into(), Box::new(|| pack(None))),
    ];
    for mode in [WriteMode::Direct, WriteMode::Buffered] {
        let name = if mode == WriteMode::Direct { "direct" } else { "--buffered" };
        if let Some(d) = &shm {
            let deal = d.path().join("deal");
            runs.push((format!("pack {name}, deal in /dev/shm"), Box::new(move || pack(Some((&deal, mode))))));
        }
        let deal = deal.clone();
        runs.push((format!("pack {name}, deal beside the inputs"), Box::new(move || pack(Some((&deal, mode))))));
    }
    // Rounds interleave the runs, so a burst of other work on the machine hits them alike.
    let rounds: usize = std::env::var("SEGMENT_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let mut samples: Vec<Vec<(f64, f64)>> = vec![Vec::new(); runs.len()];
    for _ in 0..rounds {
        for ((_, run), got) in runs.iter().zip(&mut samples) {
            let _ = std::fs::remove_file(&deal);
            if let Some(d) = &shm {
                let _ = std::fs::remove_file(d.path().join("deal"));
            }
            let (t, cpu) = (Instant::now(), cpu_seconds());
            run();
            got.push((t.elapsed().as_secs_f64(), cpu_seconds() - cpu));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let stats: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (median(s.iter().map(|x| x.0).collect()), median(s.iter().map(|x| x.1).collect())))
        .collect();
    let gib = bytes as f64 / (1u64 << 30) as f64;
    println!(
        "{} inputs, {} MB in a deal of {} MiB ({} threads), median of {rounds} (time; CPU of this process, user + system)",
        inputs.len(),
        bytes / 1_000_000,
        deal_size >> 20,
        rayon::current_num_threads()
    );
    let c = stats[0].0;
    for ((name, _), (t, cpu)) in runs.iter().zip(&stats) {
        println!(
            "{name:<40} {t:>7.3} s {:>7.0} MB/s  {:.2}x commp  {:.2} CPU-s/GiB",
            bytes as f64 / t / 1e6,
            c / t,
            cpu / gib
        );
    }
}

/// CPU seconds (user + system) of this process so far.
fn cpu_seconds() -> f64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let u = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr());
        u.assume_init()
    };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(u.ru_utime) + s(u.ru_stime)
}

/// Whether the file system of `deal` takes `O_DIRECT` (else the direct mode writes buffered).
fn probe_direct(deal: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let p = deal.with_extension("probe");
    let ok = std::fs::OpenOptions::new().write(true).create(true).custom_flags(libc::O_DIRECT).open(&p).is_ok();
    let _ = std::fs::remove_file(&p);
    ok
}
