//! commP throughput against plain SHA-256 of the same bytes (64 MiB of pseudo-random data).

mod common;

use carload::commp::{Kernel, PieceHasher};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sha2::{Digest, Sha256};
use std::hint::black_box;

const LEN: usize = 64 << 20;

fn data() -> Vec<u8> {
    common::pseudo_random(LEN, 0x1234_5678_9abc_def1)
}

/// Writes the payload in 16 MiB buffers, as `commp_of_reader` does.
fn commp(kernel: Kernel, data: &[u8]) -> [u8; 32] {
    let mut h = PieceHasher::with_kernel(kernel);
    let step = 16 * 127 * 8192;
    for (i, chunk) in data.chunks(step).enumerate() {
        h.write_at((i * step) as u64, chunk).unwrap();
    }
    h.finish(data.len() as u64).unwrap().root
}

fn bench(c: &mut Criterion) {
    let data = data();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let all = rayon::ThreadPoolBuilder::new().build().unwrap();
    let threads = all.current_num_threads();
    let mut g = c.benchmark_group("commp_64MiB");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(LEN as u64));
    g.bench_function("sha256_plain", |b| b.iter(|| Sha256::digest(black_box(&data))));
    g.bench_function("commp_portable_1t", |b| b.iter(|| one.install(|| commp(Kernel::Portable, black_box(&data)))));
    if Kernel::Avx2.is_available() {
        g.bench_function("commp_avx2_1t", |b| b.iter(|| one.install(|| commp(Kernel::Avx2, black_box(&data)))));
    }
    if Kernel::ShaNi.is_available() {
        g.bench_function("commp_shani_1t", |b| b.iter(|| one.install(|| commp(Kernel::ShaNi, black_box(&data)))));
        g.bench_function(format!("commp_shani_{threads}t"), |b| {
            b.iter(|| all.install(|| commp(Kernel::ShaNi, black_box(&data))))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
