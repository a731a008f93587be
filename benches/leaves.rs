//! UnixFS leaf hashing: one SHA-256 stream per leaf against interleaved multi-buffer lanes
//! (64 MiB of pseudo-random data in 256 KiB leaves, one thread).

mod common;

use carload::{multibuffer, unixfs};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sha2::{Digest, Sha256};
use std::hint::black_box;

const LEN: usize = 64 << 20;
const CHUNK: usize = 256 << 10;

fn data() -> Vec<u8> {
    common::pseudo_random(LEN, 0x9e37_79b9_7f4a_7c15)
}

fn bench(c: &mut Criterion) {
    let data = data();
    let (head, tail) = unixfs::file_leaf_parts(CHUNK);
    let leaves: Vec<[&[u8]; 3]> = data.chunks(CHUNK).map(|c| [&head[..], c, &tail[..]]).collect();
    let mut g = c.benchmark_group("leaves_64MiB");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(LEN as u64));
    g.bench_function("sha256_one_stream_per_leaf", |b| {
        b.iter(|| {
            black_box(&leaves)
                .iter()
                .map(|parts| {
                    let mut h = Sha256::new();
                    parts.iter().for_each(|p| h.update(p));
                    <[u8; 32]>::from(h.finalize())
                })
                .collect::<Vec<_>>()
        })
    });
    g.bench_function("multibuffer_lanes", |b| b.iter(|| multibuffer::digest_all(black_box(&leaves))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
