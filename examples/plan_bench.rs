//! Planning benchmark on a synthetic in-memory list of files (no files are created).
//!
//! ```text
//! cargo run --release --example plan_bench -- [FILES] [small|media] [best-fit|keep-folders] [32|64]
//! ```
//!
//! Defaults: 1,000,000 files, the `small` mix, best fit, 32 GiB sectors. Prints the planning time
//! (packing included, walking excluded), the time to write the shipment file (to memory), the
//! peak resident memory of the process (VmHWM, so run one configuration per process) and the
//! fill of the batches.
//!
//! Mixes (sizes drawn from a fixed xorshift seed, 1,000 files per folder):
//! * `small`: 99 % log-uniform 1 KiB – 4 MiB (many small files), 1 % log-uniform
//!   64 MiB – 64 GiB (some large ones, split when larger than a piece);
//! * `media`: log-uniform 1 MiB – 4 GiB (photos to video).

use carload::shipment::plan::{plan, stats, PlanOptions, SourceFile, SECTOR_32GIB, SECTOR_64GIB};
use carload::shipment::{write_shipment, Pack};
use std::time::Instant;

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn log_uniform(r: u64, lo: f64, hi: f64) -> u64 {
    let t = (r % 1_000_000) as f64 / 1_000_000.0;
    (lo.ln() + t * (hi.ln() - lo.ln())).exp() as u64
}

fn files(n: usize, mix: &str) -> Vec<SourceFile> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let size = match mix {
                "media" => log_uniform(next(), 1048576.0, 4294967296.0),
                _ if next() % 100 == 0 => log_uniform(next(), 67108864.0, 68719476736.0),
                _ => log_uniform(next(), 1024.0, 4194304.0),
            };
            SourceFile {
                name: format!("data/d{:04}/f{:07}.bin", i / 1000, i),
                size,
                mtime_ns: 1_700_000_000_000_000_000,
                ident: carload::shipment::file::Ident { ctime_ns: 1_700_000_000_000_000_000, ino: i as u64 },
            }
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let mix = args.get(1).map(String::as_str).unwrap_or("small");
    let pack = match args.get(2).map(String::as_str) {
        Some("keep-folders") => Pack::KeepFolders,
        _ => Pack::BestFit,
    };
    let sector = if args.get(3).map(String::as_str) == Some("64") { SECTOR_64GIB } else { SECTOR_32GIB };
    let profile = carload::profile::Preset::UnixfsV1_2025.profile();
    let list = files(n, mix);
    let bytes: u64 = list.iter().map(|f| f.size).sum();
    let rss_list = peak_rss_mib();
    let mut o = PlanOptions::for_sector(sector, profile);
    o.pack = pack;
    let t = Instant::now();
    let s = plan(list, &o, vec!["data".into()], None).expect("plan");
    let plan_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut buf = Vec::new();
    write_shipment(&mut buf, &s).expect("write");
    let write_secs = t.elapsed().as_secs_f64();
    let st = stats(&s);
    let parts = s.batches.iter().flat_map(|b| &b.files).filter(|f| f.part.is_some()).count();
    println!(
        "files:            {n} ({mix} mix, {:.1} TiB), {:?}, {} GiB sectors",
        bytes as f64 / (1u64 << 40) as f64,
        pack,
        sector >> 30
    );
    println!("profile:          {}", profile.describe());
    println!("plan time:        {plan_secs:.2} s (packing and prediction; walk not included)");
    println!("write time:       {write_secs:.2} s ({:.1} MiB shipment file)", buf.len() as f64 / 1048576.0);
    println!("peak memory:      {:.0} MiB (VmHWM; {rss_list:.0} MiB after building the file list)", peak_rss_mib());
    println!("batches:          {} ({parts} file parts)", st.batches);
    println!(
        "fill (all but last): mean {:.4} %, lowest {:.4} %",
        st.mean_fill_but_last * 100.0,
        st.min_fill_but_last * 100.0
    );
    let head = &s.batches[..s.batches.len().saturating_sub(1)];
    if !head.is_empty() {
        let pad: u64 = head.iter().map(|b| b.padding()).sum();
        println!("padding (all but last): mean {} bytes per batch", pad / head.len() as u64);
    }
    if let Some(last) = s.batches.last() {
        println!("last batch fill:  {:.2} %", last.fill() * 100.0);
    }
}
