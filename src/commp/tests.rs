use super::*;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

/// Deterministic pseudo-random bytes (xorshift64*).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// The reference algorithm, literally: pad, Fr32 bit by bit, hash whole layers with `sha2`.
fn naive(data: &[u8]) -> ([u8; 32], u64) {
    let quads = data.len().div_ceil(127).max(1).next_power_of_two();
    let mut input = data.to_vec();
    input.resize(127 * quads, 0);
    let mut padded = vec![0u8; 128 * quads];
    for (q, out) in input.chunks(127).zip(padded.chunks_mut(128)) {
        for unit in 0..4 {
            for bit in 0..254 {
                let i = 254 * unit + bit;
                if (q[i / 8] >> (i % 8)) & 1 == 1 {
                    let o = 256 * unit + bit;
                    out[o / 8] |= 1 << (o % 8);
                }
            }
        }
    }
    let mut layer: Vec<[u8; 32]> = padded.chunks(32).map(|c| c.try_into().unwrap()).collect();
    while layer.len() > 1 {
        layer = layer
            .chunks(2)
            .map(|p| {
                let mut h = Sha256::new();
                h.update(p[0]);
                h.update(p[1]);
                let mut d: [u8; 32] = h.finalize().into();
                d[31] &= 0x3f;
                d
            })
            .collect();
    }
    (layer[0], 128 * quads as u64)
}

fn hash_with(hasher: PieceHasher, data: &[u8]) -> PieceInfo {
    let mut h = hasher;
    h.write_at(0, data).unwrap();
    h.finish(data.len() as u64).unwrap()
}

#[test]
fn fr32_matches_bit_definition() {
    let data = noise(127 * 5, 7);
    let mut fast = vec![0u8; 128 * 5];
    tree::fr32(&data, &mut fast);
    let (root, _) = naive(&data[..127]);
    let mut one = vec![0u8; 128];
    tree::fr32(&data[..127], &mut one);
    assert_eq!(&fast[..128], &one[..]);
    // Compare against the bit-level expansion through the small-tree root.
    assert_eq!(tree::subtree_root(Kernel::Portable, &data[..127], 1), root);
    for q in 0..5 {
        assert!(fast[128 * q..128 * q + 128].chunks(32).all(|n| n[31] & 0xc0 == 0));
    }
}

#[test]
fn matches_naive_reference() {
    let data = noise(40_000, 1);
    for n in [0, 1, 64, 65, 126, 127, 128, 254, 255, 508, 509, 1016, 1017, 4065, 16256, 16257, 32513, 40_000] {
        let info = commp_of_bytes(&data[..n]).unwrap();
        assert_eq!((info.root, info.padded_size), naive(&data[..n]), "{n} bytes");
    }
}

#[test]
fn zero_table() {
    assert_eq!(tree::zero_root(0), &[0; 32]);
    for l in 0..40 {
        let z = tree::zero_root(l);
        assert_eq!(&Kernel::Portable.node(z, z), tree::zero_root(l + 1));
    }
}

/// Lengths around every interesting boundary: quads, chunks, units and their powers of two.
fn edge_lengths() -> Vec<usize> {
    let unit = 127 * UNIT_QUADS;
    let mut v = vec![0, 1, 31, 32, 63, 64, 65, 96, 126, 127, 128, 129, 254, 255, 256, 381, 508, 509];
    for k in 2..=13 {
        let n = 127usize << k;
        v.extend([n - 1, n, n + 1]);
    }
    for n in [unit / 2, unit, 2 * unit, 3 * unit, 4 * unit] {
        v.extend([n - 1, n, n + 1]);
    }
    v.push(2 * unit + 12345);
    v
}

#[test]
fn fast_kernels_equal_portable() {
    let fast: Vec<Kernel> = [Kernel::ShaNi, Kernel::Avx2].into_iter().filter(|k| k.is_available()).collect();
    if fast.is_empty() {
        eprintln!("neither SHA-NI nor AVX2 on this CPU: nothing to compare");
        return;
    }
    let data = noise(4 * 127 * UNIT_QUADS + 1, 2);
    for n in edge_lengths() {
        let a = hash_with(PieceHasher::with_kernel(Kernel::Portable), &data[..n]);
        for &k in &fast {
            let b = hash_with(PieceHasher::with_kernel(k), &data[..n]);
            assert_eq!(a, b, "{k:?}, {n} bytes");
        }
    }
}

#[test]
fn unit_size_does_not_matter() {
    let data = noise(127 * 1100 + 3, 3);
    for n in [0, 127, 128, 127 * 4, 127 * 4 + 1, 127 * 64 - 1, 127 * 300, 127 * 1024, 127 * 1100 + 3] {
        let want = commp_of_bytes(&data[..n]).unwrap();
        for quads in [1, 2, 4, 16, 256] {
            let got = hash_with(PieceHasher::with_unit_quads(Kernel::detect(), quads), &data[..n]);
            assert_eq!(got, want, "{n} bytes, unit of {quads} quads");
        }
    }
}

#[test]
fn overlap_and_missing() {
    let mut h = PieceHasher::new();
    h.write_at(100, &[1; 50]).unwrap();
    for (off, len) in [(100, 1), (149, 1), (90, 11), (120, 100), (0, 1000)] {
        let err = h.write_at(off, &vec![0; len]).unwrap_err();
        assert!(matches!(err, CommpError::Overlap { offset, .. } if offset == off), "{err}");
    }
    // Rejected writes change nothing.
    assert_eq!(h.bytes_written(), 50);
    h.write_at(150, &[2; 10]).unwrap();
    h.write_at(90, &[3; 10]).unwrap();
    assert_eq!(h.contiguous_len(), 0);
    let err = h.finish(160).unwrap_err();
    assert!(matches!(err, CommpError::Incomplete { total_len: 160, missing: 90, first_missing: 0 }), "{err}");
    assert!(err.to_string().contains("offset 0"), "{err}");

    let mut h = PieceHasher::new();
    h.write_at(0, &[0; 300]).unwrap();
    assert!(matches!(h.finish(200), Err(CommpError::PastEnd { end: 300, total_len: 200 })));

    let mut h = PieceHasher::new();
    h.write_at(0, &[0; 100]).unwrap();
    h.write_at(101, &[0; 99]).unwrap();
    assert!(matches!(h.finish(200), Err(CommpError::Incomplete { missing: 1, first_missing: 100, .. })));

    // Overlap inside a unit that has already been hashed.
    let unit = 127 * UNIT_QUADS;
    let data = noise(unit + 10, 4);
    let mut h = PieceHasher::new();
    h.write_at(0, &data).unwrap();
    assert!(matches!(h.write_at(5, &[0]), Err(CommpError::Overlap { .. })));
}

#[test]
fn io_write_appends_after_contiguous_prefix() {
    use std::io::Write;
    let data = noise(3000, 5);
    let mut h = PieceHasher::new();
    h.write_at(0, &data[..10]).unwrap();
    h.write_at(1000, &data[1000..]).unwrap();
    h.write_all(&data[10..500]).unwrap();
    assert_eq!(h.contiguous_len(), 500);
    h.write_all(&data[500..1000]).unwrap();
    assert_eq!(h.contiguous_len(), 3000);
    assert!(h.write_all(&[0]).is_ok());
    assert!(matches!(h.finish(3000), Err(CommpError::PastEnd { .. })));
}

/// Splits `[0, len)` at the given cut points and writes the parts in the given order.
fn scattered(hasher: PieceHasher, data: &[u8], cuts: &[usize], order_seed: u64) -> Result<PieceInfo, CommpError> {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    bounds.push(0);
    bounds.push(data.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut parts: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    // Fisher–Yates with a tiny LCG.
    let mut x = order_seed;
    for i in (1..parts.len()).rev() {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        parts.swap(i, (x >> 33) as usize % (i + 1));
    }
    let mut h = hasher;
    for (s, e) in parts {
        h.write_at(s as u64, &data[s..e])?;
    }
    h.finish(data.len() as u64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn out_of_order_equals_sequential_small_units(
        len in 0usize..20_000,
        cuts in prop::collection::vec(any::<usize>(), 0..24),
        seed in any::<u64>(),
        quads in prop::sample::select(vec![1usize, 2, 8, 32]),
        chunk_shift in 0u32..4,
        max_buffered in 0usize..3,
    ) {
        let data = noise(len, seed ^ 0x9e37);
        let want = commp_of_bytes(&data).unwrap();
        let mut h = PieceHasher::with_unit_quads(Kernel::detect(), quads);
        h.chunk_quads = (quads >> chunk_shift).max(1);
        h.max_buffered = max_buffered;
        let got = scattered(h, &data, &cuts, seed).unwrap();
        prop_assert_eq!(got, want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn out_of_order_equals_sequential_real_units(
        len in 0usize..(3 * 127 * UNIT_QUADS + 5000),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        seed in any::<u64>(),
    ) {
        let data = noise(len, seed);
        let want = commp_of_bytes(&data).unwrap();
        prop_assert_eq!(scattered(PieceHasher::new(), &data, &cuts, seed).unwrap(), want);
        prop_assert_eq!(
            scattered(PieceHasher::with_kernel(Kernel::Portable), &data, &cuts, !seed).unwrap(),
            want
        );
    }
}

#[test]
fn memory_stays_bounded_for_sequential_small_writes() {
    let data = noise(5 * 127 * UNIT_QUADS, 6);
    let mut h = PieceHasher::new();
    for (i, chunk) in data.chunks(65536).enumerate() {
        h.write_at((i * 65536) as u64, chunk).unwrap();
        assert!(h.pending.len() <= 1);
        assert!(h.ready.len() < PieceHasher::batch());
        assert!(h.roots.len() <= 4);
        assert!(h.covered.len() <= 1);
    }
    assert_eq!(h.finish(data.len() as u64).unwrap(), commp_of_bytes(&data).unwrap());
}

#[test]
fn reader_block_boundaries_and_errors() {
    let data = noise(READ_BYTES + 127, 8);
    for n in [0, 1, READ_BYTES - 1, READ_BYTES, READ_BYTES + 127] {
        let got = commp_of_reader(std::io::Cursor::new(&data[..n])).unwrap();
        assert_eq!(got, commp_of_bytes(&data[..n]).unwrap(), "{n} bytes");
    }

    /// Yields `left` bytes in odd-sized reads, then fails.
    struct Failing {
        left: usize,
    }
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.left == 0 {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.left).min(100_003);
            buf[..n].fill(1);
            self.left -= n;
            Ok(n)
        }
    }
    for left in [0, 10, READ_BYTES, READ_BYTES + 5] {
        let err = commp_of_reader(Failing { left }).unwrap_err();
        assert!(matches!(err, CommpError::Io(_)), "{err}");
        assert!(err.to_string().contains("disk on fire"), "{err}");
    }
}

#[test]
fn reader_need_not_be_send() {
    struct NotSend<'a>(std::marker::PhantomData<std::rc::Rc<()>>, &'a [u8]);
    impl std::io::Read for NotSend<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            std::io::Read::read(&mut self.1, buf)
        }
    }
    let data = noise(300_000, 9);
    let got = commp_of_reader(NotSend(std::marker::PhantomData, &data)).unwrap();
    assert_eq!(got, commp_of_bytes(&data).unwrap());
}

impl PieceHasher {
    /// Bytes held for partly written units.
    fn pending_bytes(&self) -> usize {
        self.pending
            .values()
            .map(|p| match p {
                Pending::Buffer(b) => b.capacity(),
                Pending::Compact(c) => 32 * c.roots.len() + c.partial.values().map(Vec::capacity).sum::<usize>(),
            })
            .sum()
    }
}

#[test]
fn holes_are_compacted() {
    // A small hole every 3 units, filled only at the end (as the CAR writer does for DAG nodes
    // and the header): buffered memory must not grow with the number of holes.
    let unit = 127 * UNIT_QUADS;
    let data = noise(12 * unit + 777, 10);
    let holes: Vec<usize> = (0..4).map(|k| k * 3 * unit + 1000 + 5000 * k).collect();
    let mut h = PieceHasher::new();
    let mut at = 0;
    for &hole in &holes {
        h.write_at(at as u64, &data[at..hole]).unwrap();
        at = hole + 300;
    }
    for chunk in data[at..].chunks(100_000) {
        h.write_at(at as u64, chunk).unwrap();
        at += chunk.len();
        assert!(h.pending_bytes() < 3 * unit + 4 * 20_000, "{}", h.pending_bytes());
    }
    assert!(h.pending.len() >= 4);
    assert!(h.pending_bytes() < 3 * unit, "{}", h.pending_bytes());
    for &hole in holes.iter().rev() {
        h.write_at(hole as u64, &data[hole..hole + 300]).unwrap();
    }
    assert!(h.pending.len() <= 1);
    assert_eq!(h.finish(data.len() as u64).unwrap(), commp_of_bytes(&data).unwrap());
}

#[test]
fn debug_is_short() {
    let mut h = PieceHasher::new();
    h.write_at(10, &[0; 100_000]).unwrap();
    let s = format!("{h:?}");
    assert!(s.len() < 300 && s.contains("bytes_written: 100000"), "{s}");
}

#[test]
fn pad_to_equals_zero_filled_payload() {
    for len in [0usize, 100, 127, 5000, 127 * 8192 + 3] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
        let piece = commp_of_bytes(&data).unwrap();
        for target in [piece.padded_size, piece.padded_size * 2, piece.padded_size * 8] {
            let mut filled = data.clone();
            filled.resize(unpadded_piece_size(target) as usize, 0);
            let want = commp_of_bytes(&filled).unwrap();
            let got = piece.pad_to(target);
            assert_eq!(got.root, want.root, "len {len} target {target}");
            assert_eq!(
                (got.padded_size, got.unpadded_size, got.payload_size),
                (target, want.unpadded_size, len as u64)
            );
        }
        assert_eq!(piece.pad_to(64), piece);
    }
}

#[test]
fn mapped_file_equals_bytes() {
    use std::io::Write as _;
    // Sizes around the release step and unit boundaries, plus tiny and empty files.
    let ub = 127 * UNIT_QUADS;
    for len in [0usize, 1, 65, ub - 1, ub, ub + 1, RELEASE_BYTES - 1, RELEASE_BYTES + ub + 5] {
        let data = noise(len, len as u64 + 3);
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        let got = commp_of_file(&f, std::path::Path::new("test")).expect("regular files can be mapped").unwrap();
        assert_eq!(got, commp_of_bytes(&data).unwrap(), "len {len}");
    }
}

/// Units hashed by every thread from a shared counter give the same piece at any thread count,
/// and the hashed bytes are released in order, page-aligned, without gaps, up to the last whole
/// page of whole units.
#[test]
fn mapped_units_on_many_threads_release_in_order() {
    let ub = 127 * UNIT_QUADS;
    let data = noise(RELEASE_BYTES + 3 * ub + 1000, 11);
    let want = commp_of_bytes(&data).unwrap();
    for threads in [1, 2, 5] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let released = std::sync::Mutex::new(Vec::new());
        let got = pool.install(|| commp_of_mapped(&data, |s, e| released.lock().unwrap().push((s, e)))).unwrap();
        assert_eq!(got, want, "{threads} threads");
        let released = released.into_inner().unwrap();
        let mut at = 0;
        for &(s, e) in &released {
            assert_eq!((s, s % 4096, e % 4096), (at, 0, 0), "{released:?}");
            assert!(e > s);
            at = e;
        }
        assert_eq!(at, (data.len() / ub * ub) / 4096 * 4096, "{threads} threads: {released:?}");
        if threads == 1 {
            // In order: released every RELEASE_BYTES, not only at the end.
            assert!(released.len() >= 2, "released in steps: {released:?}");
        }
    }
}

/// Shared buffers (whole units hashed as pool tasks, edges through the pending buffers) give
/// the same piece as one write, in any order, with a header written last; each buffer is
/// handed back at most once.
#[test]
fn shared_feed_equals_bytes() {
    let ub = 127 * UNIT_QUADS;
    let data = noise(9 * ub + 777, 12);
    let want = commp_of_bytes(&data).unwrap();
    for (step, head) in [(8 << 20, 100), (3 * ub, 0), (ub / 3, 5), (2 * ub + 1, ub + 3)] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let got = pool.install(|| {
            let mut feed = SharedFeed::new();
            // Handed-back buffers are kept, so no address is reused.
            let mut back = Vec::new();
            let mut give = |feed: &mut SharedFeed, at: usize, end: usize| {
                let buf = std::sync::Arc::new(data[at..end].to_vec());
                for done in feed.write_shared(at as u64, buf).unwrap() {
                    assert!(
                        back.iter().all(|b: &std::sync::Arc<Vec<u8>>| b.as_ptr() != done.as_ptr()),
                        "handed back twice"
                    );
                    back.push(done);
                }
            };
            let mut at = head;
            while at < data.len() {
                let end = (at + step).min(data.len());
                give(&mut feed, at, end);
                at = end;
            }
            give(&mut feed, 0, head);
            feed.finish(data.len() as u64).unwrap()
        });
        assert_eq!(got, want, "step {step} head {head}");
    }
    let mut feed = SharedFeed::new();
    feed.write_shared(0, std::sync::Arc::new(vec![1; 10])).unwrap();
    let err = feed.write_shared(5, std::sync::Arc::new(vec![1; 2 * ub])).unwrap_err();
    assert!(matches!(err, CommpError::Overlap { .. }), "{err}");
}
