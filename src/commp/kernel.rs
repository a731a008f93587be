//! Node-hash kernels: `trunc254(SHA-256(left ‖ right))` over whole tree layers.
//!
//! A layer is hashed in place: `count` 64-byte pairs at the front of a buffer become `count`
//! 32-byte digests at the front of the same buffer. Digest `i` is written to `[32i, 32i+32)`,
//! which never reaches pair `i+1`'s input, so a kernel only has to read a pair before it writes
//! that pair's digest.

use sha2::digest::generic_array::GenericArray;

/// Which implementation hashes tree nodes. Both give identical results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Portable code: `sha2::compress256` on the data block and the constant padding block.
    Portable,
    /// x86_64 SHA extensions, two independent node hashes interleaved, with a precomputed
    /// message schedule for the padding block. Only used where the CPU has it.
    ShaNi,
    /// AVX2, eight node hashes in the eight 32-bit lanes of 256-bit vectors: for x86_64 CPUs
    /// without SHA extensions (e.g. Intel Xeons before Ice Lake).
    Avx2,
}

impl Kernel {
    /// The fastest kernel this CPU supports.
    pub fn detect() -> Kernel {
        [Kernel::ShaNi, Kernel::Avx2].into_iter().find(|k| k.is_available()).unwrap_or(Kernel::Portable)
    }

    /// Whether this kernel can run on this CPU.
    pub fn is_available(self) -> bool {
        match self {
            Kernel::Portable => true,
            Kernel::ShaNi => shani_available(),
            Kernel::Avx2 => avx2_available(),
        }
    }

    /// `self` if it is available here, else [`Kernel::Portable`].
    pub(crate) fn or_portable(self) -> Kernel {
        if self.is_available() {
            self
        } else {
            Kernel::Portable
        }
    }

    /// Hashes the `count` 64-byte pairs at the front of `buf` into `count` digests, in place.
    pub(crate) fn hash_layer(self, buf: &mut [u8], count: usize) {
        assert!(buf.len() >= 64 * count, "layer buffer too short");
        match self {
            Kernel::Portable => portable::hash_layer(buf, count),
            Kernel::ShaNi => {
                #[cfg(target_arch = "x86_64")]
                {
                    assert!(shani_available(), "SHA-NI kernel selected on a CPU without it");
                    // SAFETY: the CPU features are checked above; the buffer holds 64*count bytes.
                    unsafe { shani::hash_layer(buf.as_mut_ptr(), count) }
                }
                #[cfg(not(target_arch = "x86_64"))]
                portable::hash_layer(buf, count)
            }
            Kernel::Avx2 => {
                #[cfg(target_arch = "x86_64")]
                {
                    assert!(avx2_available(), "AVX2 kernel selected on a CPU without it");
                    // SAFETY: the CPU features are checked above; the buffer holds 64*count bytes.
                    let done = unsafe { avx2::hash_layer(buf.as_mut_ptr(), count) };
                    portable::hash_pairs(buf, done, count);
                }
                #[cfg(not(target_arch = "x86_64"))]
                portable::hash_layer(buf, count)
            }
        }
    }

    /// One node: `trunc254(SHA-256(left ‖ right))`.
    pub(crate) fn node(self, left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
        let mut buf = [0u8; 64];
        buf[..32].copy_from_slice(left);
        buf[32..].copy_from_slice(right);
        self.hash_layer(&mut buf, 1);
        let mut out = [0u8; 32];
        out.copy_from_slice(&buf[..32]);
        out
    }
}

use crate::multibuffer::{shani_available, H0, K};

fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The second block of every 64-byte message: `0x80`, zeros, bit length 512 (big-endian u64).
const PAD_BLOCK: [u8; 64] = {
    let mut b = [0u8; 64];
    b[0] = 0x80;
    b[62] = 0x02;
    b
};

/// `W[t] + K[t]` of [`PAD_BLOCK`]'s message schedule: the padding compression needs no
/// schedule work at run time.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const PAD_WK: [u32; 64] = {
    let mut w = [0u32; 64];
    w[0] = 0x8000_0000;
    w[15] = 512;
    let mut t = 16;
    while t < 64 {
        let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
        let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16].wrapping_add(s0).wrapping_add(w[t - 7]).wrapping_add(s1);
        t += 1;
    }
    let mut wk = [0u32; 64];
    let mut t = 0;
    while t < 64 {
        wk[t] = w[t].wrapping_add(K[t]);
        t += 1;
    }
    wk
};

mod portable {
    use super::*;

    pub(super) fn hash_layer(buf: &mut [u8], count: usize) {
        hash_pairs(buf, 0, count)
    }

    /// Hashes pairs `from..to` of a layer in place (the pairs before `from` are done).
    pub(super) fn hash_pairs(buf: &mut [u8], from: usize, to: usize) {
        let pad = GenericArray::from(PAD_BLOCK);
        for i in from..to {
            let block = GenericArray::clone_from_slice(&buf[64 * i..64 * i + 64]);
            let mut state = H0;
            sha2::compress256(&mut state, &[block, pad]);
            let out = &mut buf[32 * i..32 * i + 32];
            for (o, s) in out.chunks_exact_mut(4).zip(state) {
                o.copy_from_slice(&s.to_be_bytes());
            }
            out[31] &= 0x3f;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)] // lane loops index several parallel arrays
mod shani {
    //! SHA-NI kernel, built on the multi-buffer SHA-256 primitives.
    use super::PAD_WK;
    use crate::multibuffer::shani::{compress, initial, rounds4, State};
    use std::arch::x86_64::*;

    /// Independent node hashes interleaved. Two already keep the SHA unit busy on Zen 3 (one
    /// `sha256rnds2` per 2 cycles); three need more than the 16 vector registers for state and
    /// message schedules, and the spilled states then lengthen the critical path (measured:
    /// 36.5 ns per node with two, 39 ns with three).
    const WAYS: usize = 2;

    /// Compresses N data blocks (one per lane), starting each lane from the initial state.
    #[inline(always)]
    unsafe fn data_block<const N: usize>(src: [*const u8; N]) -> [State; N] {
        let mut st = [initial(); N];
        compress(&mut st, src);
        st
    }

    /// Compresses the constant padding block on every lane.
    #[inline(always)]
    unsafe fn pad_block<const N: usize>(st: &mut [State; N]) {
        let saved = *st;
        for g in 0..16 {
            let wk = _mm_loadu_si128(PAD_WK.as_ptr().add(4 * g).cast());
            rounds4(st, &[wk; N]);
        }
        for (s, old) in st.iter_mut().zip(saved) {
            s.abef = _mm_add_epi32(s.abef, old.abef);
            s.cdgh = _mm_add_epi32(s.cdgh, old.cdgh);
        }
    }

    /// Writes the big-endian digest with the top two bits of byte 31 cleared.
    #[inline(always)]
    unsafe fn store(st: State, dst: *mut u8) {
        // Reversing all 16 bytes reverses the lanes and byte-swaps each word.
        let rev = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let dcba = _mm_unpackhi_epi64(st.cdgh, st.abef);
        let hgfe = _mm_unpacklo_epi64(st.cdgh, st.abef);
        let trunc = _mm_set_epi8(0x3f, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
        _mm_storeu_si128(dst.cast(), _mm_shuffle_epi8(dcba, rev));
        _mm_storeu_si128(dst.add(16).cast(), _mm_and_si128(_mm_shuffle_epi8(hgfe, rev), trunc));
    }

    #[inline(always)]
    unsafe fn hash_group<const N: usize>(buf: *mut u8, first: usize) {
        let src: [*const u8; N] = std::array::from_fn(|n| buf.add(64 * (first + n)).cast_const());
        let mut st = data_block::<N>(src);
        pad_block(&mut st);
        // All inputs of the group are in registers now; outputs land at or before them.
        for (n, s) in st.into_iter().enumerate() {
            store(s, buf.add(32 * (first + n)));
        }
    }

    /// # Safety
    /// The CPU must support SHA, SSSE3 and SSE4.1; `buf` must be valid for `64 * count` bytes.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn hash_layer(buf: *mut u8, count: usize) {
        let mut i = 0;
        while i + WAYS <= count {
            hash_group::<WAYS>(buf, i);
            i += WAYS;
        }
        // At most WAYS - 1 left, one at a time.
        while i < count {
            hash_group::<1>(buf, i);
            i += 1;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! AVX2 kernel: eight node hashes at once, one per 32-bit lane ("structure of arrays").
    use super::{H0, K, PAD_WK};
    use std::arch::x86_64::*;

    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn rotr<const R: i32, const L: i32>(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_srli_epi32::<R>(x), _mm256_slli_epi32::<L>(x))
    }

    /// The 64 rounds of one block on all lanes, with `W[t] + K[t]` given by `wk(t)`.
    #[inline(always)]
    unsafe fn rounds(st: &mut [__m256i; 8], mut wk: impl FnMut(usize) -> __m256i) {
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *st;
        for t in 0..64 {
            let s1 = _mm256_xor_si256(_mm256_xor_si256(rotr::<6, 26>(e), rotr::<11, 21>(e)), rotr::<25, 7>(e));
            let ch = _mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, g));
            let t1 = _mm256_add_epi32(_mm256_add_epi32(h, s1), _mm256_add_epi32(ch, wk(t)));
            let s0 = _mm256_xor_si256(_mm256_xor_si256(rotr::<2, 30>(a), rotr::<13, 19>(a)), rotr::<22, 10>(a));
            let maj = _mm256_or_si256(_mm256_and_si256(_mm256_or_si256(a, b), c), _mm256_and_si256(a, b));
            let t2 = _mm256_add_epi32(s0, maj);
            h = g;
            g = f;
            f = e;
            e = _mm256_add_epi32(d, t1);
            d = c;
            c = b;
            b = a;
            a = _mm256_add_epi32(t1, t2);
        }
        let out = [a, b, c, d, e, f, g, h];
        for (s, o) in st.iter_mut().zip(out) {
            *s = _mm256_add_epi32(*s, o);
        }
    }

    /// Hashes pairs `first..first + 8` of the layer at `buf` in place.
    #[inline(always)]
    unsafe fn hash8(buf: *mut u8, first: usize) {
        // Word j of every lane's 64-byte message, big-endian: a gather of stride 64 bytes.
        let bswap = _mm256_set_epi8(
            12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3,
        );
        let stride = _mm256_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112);
        let base = buf.add(64 * first) as *const i32;
        let mut w = [_mm256_setzero_si256(); 64];
        for (j, wj) in w.iter_mut().take(16).enumerate() {
            *wj = _mm256_shuffle_epi8(_mm256_i32gather_epi32::<4>(base.add(j), stride), bswap);
        }
        for t in 16..64 {
            let x = w[t - 15];
            let s0 = _mm256_xor_si256(_mm256_xor_si256(rotr::<7, 25>(x), rotr::<18, 14>(x)), _mm256_srli_epi32::<3>(x));
            let y = w[t - 2];
            let s1 =
                _mm256_xor_si256(_mm256_xor_si256(rotr::<17, 15>(y), rotr::<19, 13>(y)), _mm256_srli_epi32::<10>(y));
            w[t] = _mm256_add_epi32(_mm256_add_epi32(w[t - 16], s0), _mm256_add_epi32(w[t - 7], s1));
        }
        let mut st = H0.map(|x| _mm256_set1_epi32(x as i32));
        rounds(&mut st, |t| _mm256_add_epi32(w[t], _mm256_set1_epi32(K[t] as i32)));
        rounds(&mut st, |t| _mm256_set1_epi32(PAD_WK[t] as i32));
        // All inputs of the group were read above; the digests land at or before them.
        let mut words = [[0u32; LANES]; 8];
        for (row, s) in words.iter_mut().zip(st) {
            _mm256_storeu_si256(row.as_mut_ptr().cast(), s);
        }
        for n in 0..LANES {
            let out = buf.add(32 * (first + n));
            for (j, row) in words.iter().enumerate() {
                let mut be = row[n].to_be_bytes();
                if j == 7 {
                    be[3] &= 0x3f;
                }
                std::ptr::copy_nonoverlapping(be.as_ptr(), out.add(4 * j), 4);
            }
        }
    }

    /// Hashes whole groups of eight pairs of a layer in place; returns how many pairs it did
    /// (the rest are left to the caller).
    ///
    /// # Safety
    /// The CPU must support AVX2; `buf` must be valid for `64 * count` bytes.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn hash_layer(buf: *mut u8, count: usize) -> usize {
        let groups = count / LANES;
        for g in 0..groups {
            hash8(buf, LANES * g);
        }
        LANES * groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn reference_layer(input: &[u8]) -> Vec<u8> {
        input
            .chunks_exact(64)
            .flat_map(|pair| {
                let mut d: [u8; 32] = Sha256::digest(pair).into();
                d[31] &= 0x3f;
                d
            })
            .collect()
    }

    #[test]
    fn pad_wk_matches_published_table() {
        assert_eq!(PAD_WK[0], 0xc28a2f98);
        assert_eq!(PAD_WK[15], 0xc19bf374);
        assert_eq!(PAD_WK[16], 0x649b69c1);
        assert_eq!(PAD_WK[63], 0x4c191d76);
    }

    #[test]
    fn kernels_match_sha2_for_every_group_size() {
        let input: Vec<u8> = (0..64 * 20u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for count in 0..=20 {
            let want = reference_layer(&input[..64 * count]);
            for kernel in [Kernel::Portable, Kernel::ShaNi.or_portable(), Kernel::Avx2.or_portable()] {
                let mut buf = input.clone();
                kernel.hash_layer(&mut buf, count);
                assert_eq!(&buf[..32 * count], &want[..], "{kernel:?} count {count}");
                assert_eq!(&buf[64 * count..], &input[64 * count..], "{kernel:?} wrote past the layer");
            }
        }
    }

    #[test]
    fn z1_from_node() {
        let z1 = Kernel::detect().node(&[0; 32], &[0; 32]);
        assert_eq!(
            z1.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb0b"
        );
    }
}
