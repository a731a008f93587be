//! Helpers shared by integration tests.

use carload::event::Ignore;
use carload::importer::{scan, write_car, Built};
use carload::profile::Profile;
use carload::sink::VecSink;
use std::path::Path;

/// Imports `path` with the streaming importer into memory.
pub fn import(path: &Path, profile: &Profile) -> (Built, Vec<u8>) {
    let entry = scan(path, profile).expect("scan");
    let mut sink = VecSink::default();
    let built = write_car(&entry, profile, &mut sink, &mut Ignore).expect("import");
    assert_eq!(built.car_size, sink.bytes.len() as u64, "car_size equals bytes written");
    (built, sink.bytes)
}

/// Deterministic pseudo-random bytes (xorshift), for tests that need incompressible data.
pub fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Writes `files` (relative path, contents) under `dir`, creating folders.
pub fn write_tree(dir: &Path, files: &[(&str, &[u8])]) {
    for (rel, data) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

/// Runs `cmd` to a successful end and returns the peak resident set of its own process, in
/// bytes: the `VmHWM` of its address space, read from `/proc` every millisecond while it runs.
/// Not `ru_maxrss` from `wait4`: Linux carries into it the high-water mark of the address space
/// the child had before `exec`, which is this (multi-threaded, busy) test process's, so a test
/// run beside others measured the harness instead of carload. The read misses at most the
/// growth of the child's last millisecond.
pub fn peak_rss(cmd: &mut std::process::Command) -> u64 {
    let mut child = cmd.spawn().expect("spawn");
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        let hwm = std::fs::read_to_string(&status).ok().and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        });
        peak = peak.max(hwm.unwrap_or(0) * 1024);
        if let Some(done) = child.try_wait().expect("wait") {
            assert!(done.success(), "{cmd:?} failed: {done}");
            return peak;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Pseudo-random inputs of `lens` bytes in `dir` (`in0`, `in1`, …, seeded from `seed`) and the
/// padded size of the smallest deal that holds them (twice that with `larger`: gaps at the end).
pub fn deal_inputs(dir: &Path, lens: &[usize], seed: u64, larger: bool) -> (Vec<std::path::PathBuf>, u64) {
    use carload::segment::layout;
    let inputs = lens
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let p = dir.join(format!("in{i}"));
            std::fs::write(&p, pseudo_random(n, seed ^ i as u64)).unwrap();
            p
        })
        .collect();
    let sizes: Vec<u64> = lens.iter().map(|&n| carload::commp::padded_piece_size(n as u64)).collect();
    let (_, end) = layout::offsets(&sizes);
    let smallest = layout::smallest_deal(sizes.len() as u64, end).unwrap();
    (inputs, if larger { smallest * 2 } else { smallest })
}
