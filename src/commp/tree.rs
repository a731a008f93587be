//! Fr32 expansion fused with subtree hashing, and the zero-subtree table.

use super::kernel::Kernel;
use std::sync::OnceLock;

/// Quads (127 input bytes → 128 padded bytes) Fr32-expanded and hashed per step inside a
/// subtree: 64 quads = 8 KiB of padded data, which stays in L1 while its layers are hashed
/// (64, 128 and 32 measured within noise of each other; 256 was slower).
pub(crate) const CHUNK_QUADS: usize = 64;

/// Level of a chunk root (32·2^level = chunk padded size).
const CHUNK_LEVEL: u32 = (CHUNK_QUADS * 4).trailing_zeros();

/// `Z[l]`: root of an all-zero subtree of level `l` (`Z[0]` = 32 zero bytes).
pub(crate) fn zero_root(level: u32) -> &'static [u8; 32] {
    static TABLE: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let kernel = Kernel::detect();
        let mut t = vec![[0u8; 32]];
        for l in 0..63 {
            let z = t[l];
            t.push(kernel.node(&z, &z));
        }
        t
    });
    &table[level as usize]
}

/// Fr32-expands whole quads: `input.len() == 127 * q`, `out.len() == 128 * q`.
pub(crate) fn fr32(input: &[u8], out: &mut [u8]) {
    let quads = input.len() / 127;
    debug_assert_eq!(input.len(), 127 * quads);
    debug_assert_eq!(out.len(), 128 * quads);
    let mut last = [0u8; 128];
    for (q, o) in out.chunks_exact_mut(128).enumerate() {
        // The word view reads 128 bytes per quad; the 128th byte only reaches bits that are
        // masked off, so for the last quad a zero-extended copy stands in for the input.
        let src: &[u8] = if q + 1 < quads {
            &input[127 * q..127 * q + 128]
        } else {
            last[..127].copy_from_slice(&input[127 * q..]);
            &last
        };
        fr32_quad(src.try_into().expect("128 bytes"), o.try_into().expect("128 bytes"));
    }
}

#[inline(always)]
fn fr32_quad(q: &[u8; 128], o: &mut [u8; 128]) {
    #[inline(always)]
    fn word(q: &[u8; 128], at: usize) -> u64 {
        u64::from_le_bytes(q[at..at + 8].try_into().expect("8 bytes"))
    }
    const MASK254: u64 = (1 << 62) - 1;
    let mut w = [0u64; 16];
    // Node 0 is the first 32 bytes; node k (1..=3) is the input from byte 32k shifted left by
    // 2k bits, taking the top 2k bits of the byte before it.
    w[..4].copy_from_slice(&[word(q, 0), word(q, 8), word(q, 16), word(q, 24)]);
    for k in 1..4 {
        let shift = 2 * k as u32;
        for j in 0..4 {
            let at = 32 * k + 8 * j;
            w[4 * k + j] = (word(q, at) << shift) | (word(q, at - 8) >> (64 - shift));
        }
    }
    for k in 0..4 {
        w[4 * k + 3] &= MASK254;
    }
    for (o, w) in o.chunks_exact_mut(8).zip(w) {
        o.copy_from_slice(&w.to_le_bytes());
    }
}

/// Hashes the `nodes` 32-byte nodes at the front of `buf` down to one, in place.
fn reduce(kernel: Kernel, buf: &mut [u8], mut nodes: usize) {
    debug_assert!(nodes.is_power_of_two());
    while nodes > 1 {
        nodes /= 2;
        kernel.hash_layer(buf, nodes);
    }
}

/// Root of the subtree over `data` (`127 * quads` bytes, `quads` a power of two), at level
/// `log2(quads) + 2`.
pub(crate) fn subtree_root(kernel: Kernel, data: &[u8], quads: usize) -> [u8; 32] {
    assert!(quads.is_power_of_two() && data.len() == 127 * quads);
    let mut buf = [0u8; 128 * CHUNK_QUADS];
    let mut root = [0u8; 32];
    if quads <= CHUNK_QUADS {
        let padded = &mut buf[..128 * quads];
        fr32(data, padded);
        reduce(kernel, padded, 4 * quads);
        root.copy_from_slice(&padded[..32]);
        return root;
    }
    let chunks = quads / CHUNK_QUADS;
    let mut roots = vec![0u8; 32 * chunks];
    for (c, r) in data.chunks_exact(127 * CHUNK_QUADS).zip(roots.chunks_exact_mut(32)) {
        if c.iter().all(|&b| b == 0) {
            r.copy_from_slice(zero_root(CHUNK_LEVEL));
            continue;
        }
        fr32(c, &mut buf);
        reduce(kernel, &mut buf, 4 * CHUNK_QUADS);
        r.copy_from_slice(&buf[..32]);
    }
    reduce(kernel, &mut roots, chunks);
    root.copy_from_slice(&roots[..32]);
    root
}

/// Root over subtree roots of equal level (a power of two of them), in order.
pub(crate) fn root_of_roots(kernel: Kernel, roots: impl Iterator<Item = [u8; 32]>) -> [u8; 32] {
    let mut buf: Vec<u8> = roots.flatten().collect();
    let n = buf.len() / 32;
    reduce(kernel, &mut buf, n);
    buf[..32].try_into().expect("32 bytes")
}
