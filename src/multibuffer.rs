//! Multi-buffer SHA-256: several independent messages hashed at once.
//!
//! One SHA-256 stream waits on the latency of every `sha256rnds2`; interleaving the rounds of
//! independent messages keeps the SHA unit busy, so on SHA-NI cores two messages cost about
//! half as much as hashing them one after another. Messages are given in parts (a UnixFS leaf is
//! header ‖ chunk ‖ trailer), so callers do not copy them into one buffer. The SHA-NI round and
//! schedule primitives here are shared with the commP node kernel.

use sha2::{Digest, Sha256};

/// Messages hashed together. Two keep the SHA unit busy on Zen 3; more need more than the 16
/// vector registers and run slower (measured on 256 KiB leaves: 2 lanes 2.95 GiB/s, 3 lanes
/// 2.24 GiB/s, 4 lanes 2.08 GiB/s, one stream 1.55 GiB/s).
pub const LANES: usize = 2;

/// SHA-256 of every message (the concatenation of its parts), in order.
///
/// Messages of equal length share the SHA unit best; unequal ones are still correct.
pub fn digest_all<'a, M: AsRef<[&'a [u8]]>>(messages: &[M]) -> Vec<[u8; 32]> {
    digest_all_with(shani_available(), messages)
}

/// [`digest_all`] with the SHA-NI path on or off (tests force the portable one).
pub(crate) fn digest_all_with<'a, M: AsRef<[&'a [u8]]>>(use_shani: bool, messages: &[M]) -> Vec<[u8; 32]> {
    let mut out = vec![[0u8; 32]; messages.len()];
    #[cfg(target_arch = "x86_64")]
    if use_shani && shani_available() {
        for (group, digests) in messages.chunks(LANES).zip(out.chunks_mut(LANES)) {
            // SAFETY: the CPU features were checked just above.
            unsafe { shani::digest_group(group, digests) };
        }
        return out;
    }
    let _ = use_shani;
    for (m, d) in messages.iter().zip(out.iter_mut()) {
        let mut h = Sha256::new();
        for part in m.as_ref() {
            h.update(part);
        }
        *d = h.finalize().into();
    }
    out
}

/// Whether this CPU has the SHA extensions (and the SSE levels the kernels use).
pub(crate) fn shani_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse4.1")
            && std::arch::is_x86_feature_detected!("ssse3")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// SHA-256 initial hash value.
pub(crate) const H0: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// SHA-256 round constants.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];

/// Walks one message's 64-byte blocks, padding included, without copying whole parts.
struct Blocks<'a> {
    parts: &'a [&'a [u8]],
    part: usize,
    at: usize,
    /// Message bytes not yet handed out as whole blocks.
    left: usize,
    /// Blocks still to come, padding blocks included.
    remaining: usize,
    bit_len: u64,
    /// A block that straddles parts, assembled here.
    scratch: [u8; 64],
    /// The last one or two blocks: the message's tail, `0x80`, zeros, the bit length.
    tail: [u8; 128],
    tail_next: usize,
}

impl<'a> Blocks<'a> {
    fn new(parts: &'a [&'a [u8]]) -> Self {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let tail_blocks = if len % 64 + 9 <= 64 { 1 } else { 2 };
        Blocks {
            parts,
            part: 0,
            at: 0,
            left: len,
            remaining: len / 64 + tail_blocks,
            bit_len: 8 * len as u64,
            scratch: [0; 64],
            tail: [0; 128],
            tail_next: usize::MAX,
        }
    }

    /// Copies the next `out.len()` message bytes into `out`.
    fn copy_into(&mut self, out: &mut [u8]) {
        let mut filled = 0;
        while filled < out.len() {
            let p = self.parts[self.part];
            let n = (p.len() - self.at).min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&p[self.at..self.at + n]);
            filled += n;
            self.at += n;
            if self.at == p.len() {
                self.part += 1;
                self.at = 0;
            }
        }
        self.left -= out.len();
    }

    /// How many whole blocks can be read straight from the current part.
    fn direct_run(&mut self) -> usize {
        if self.left < 64 {
            return 0;
        }
        while self.at == self.parts[self.part].len() {
            self.part += 1;
            self.at = 0;
        }
        (self.parts[self.part].len() - self.at).min(self.left) / 64
    }

    /// Takes `n` blocks counted by [`Blocks::direct_run`]; returns where the first starts.
    fn take_direct(&mut self, n: usize) -> *const u8 {
        let ptr = self.parts[self.part][self.at..].as_ptr();
        self.at += 64 * n;
        self.left -= 64 * n;
        self.remaining -= n;
        ptr
    }

    /// The next block; the pointer stays valid until the next call or until `self` moves.
    fn next_block(&mut self) -> *const u8 {
        debug_assert!(self.remaining > 0);
        self.remaining -= 1;
        if self.left >= 64 {
            while self.at == self.parts[self.part].len() {
                self.part += 1;
                self.at = 0;
            }
            let p = self.parts[self.part];
            if p.len() - self.at >= 64 {
                let ptr = p[self.at..].as_ptr();
                self.at += 64;
                self.left -= 64;
                return ptr;
            }
            let mut scratch = [0u8; 64];
            self.copy_into(&mut scratch);
            self.scratch = scratch;
            return self.scratch.as_ptr();
        }
        if self.tail_next == usize::MAX {
            let rest = self.left;
            let mut tail = [0u8; 128];
            self.copy_into(&mut tail[..rest]);
            tail[rest] = 0x80;
            let end = if rest + 9 <= 64 { 64 } else { 128 };
            tail[end - 8..end].copy_from_slice(&self.bit_len.to_be_bytes());
            self.tail = tail;
            self.tail_next = 0;
        }
        let ptr = self.tail[self.tail_next..].as_ptr();
        self.tail_next += 64;
        ptr
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)] // lane loops index several parallel arrays
pub(crate) mod shani {
    //! SHA-NI primitives. The state lives in two registers in the layout `sha256rnds2` wants:
    //! `abef` holds lanes (f, e, b, a) and `cdgh` holds (h, g, d, c), lowest lane first.
    use super::{Blocks, H0, K};
    use std::arch::x86_64::*;

    /// One message's chaining state.
    #[derive(Clone, Copy)]
    pub(crate) struct State {
        pub(crate) abef: __m128i,
        pub(crate) cdgh: __m128i,
    }

    /// The initial hash value as a [`State`].
    #[inline(always)]
    pub(crate) unsafe fn initial() -> State {
        let [a, b, c, d, e, f, g, h] = H0.map(|x| x as i32);
        State { abef: _mm_set_epi32(a, b, e, f), cdgh: _mm_set_epi32(c, d, g, h) }
    }

    /// Four rounds on every lane with the message-plus-constant words `wk`.
    #[inline(always)]
    pub(crate) unsafe fn rounds4<const N: usize>(st: &mut [State; N], wk: &[__m128i; N]) {
        for n in 0..N {
            st[n].cdgh = _mm_sha256rnds2_epu32(st[n].cdgh, st[n].abef, wk[n]);
        }
        for n in 0..N {
            st[n].abef = _mm_sha256rnds2_epu32(st[n].abef, st[n].cdgh, _mm_shuffle_epi32(wk[n], 0x0e));
        }
    }

    /// Compresses one 64-byte block per lane into that lane's state.
    #[inline(always)]
    pub(crate) unsafe fn compress<const N: usize>(st: &mut [State; N], src: [*const u8; N]) {
        let bswap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
        let saved = *st;
        // Message schedule: the last 16 words, as four 4-word vectors per lane.
        let mut w = [[_mm_setzero_si128(); 4]; N];
        for n in 0..N {
            for (j, wj) in w[n].iter_mut().enumerate() {
                *wj = _mm_shuffle_epi8(_mm_loadu_si128(src[n].add(16 * j).cast()), bswap);
            }
        }
        let mut wk = [_mm_setzero_si128(); N];
        for g in 0..4 {
            let k = _mm_loadu_si128(K.as_ptr().add(4 * g).cast());
            for n in 0..N {
                wk[n] = _mm_add_epi32(w[n][g], k);
            }
            rounds4(st, &wk);
        }
        for g in 4..16 {
            let k = _mm_loadu_si128(K.as_ptr().add(4 * g).cast());
            for n in 0..N {
                // W[t..t+4] from W[t-16..t); the window slides by rotating whole vectors, so
                // every index is constant and the schedule stays in registers.
                let [w16, w12, w8, w4] = w[n];
                let t = _mm_add_epi32(_mm_sha256msg1_epu32(w16, w12), _mm_alignr_epi8(w4, w8, 4));
                let next = _mm_sha256msg2_epu32(t, w4);
                w[n] = [w12, w8, w4, next];
                wk[n] = _mm_add_epi32(next, k);
            }
            rounds4(st, &wk);
        }
        for (s, old) in st.iter_mut().zip(saved) {
            s.abef = _mm_add_epi32(s.abef, old.abef);
            s.cdgh = _mm_add_epi32(s.cdgh, old.cdgh);
        }
    }

    /// The big-endian digest of a final state.
    #[inline(always)]
    unsafe fn digest(st: State) -> [u8; 32] {
        let mut abef = [0u32; 4];
        let mut cdgh = [0u32; 4];
        _mm_storeu_si128(abef.as_mut_ptr().cast(), st.abef);
        _mm_storeu_si128(cdgh.as_mut_ptr().cast(), st.cdgh);
        let words = [abef[3], abef[2], cdgh[3], cdgh[2], abef[1], abef[0], cdgh[1], cdgh[0]];
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(words) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    #[inline(always)]
    unsafe fn digest_lanes<'a, const N: usize, M: AsRef<[&'a [u8]]>>(group: &[M], out: &mut [[u8; 32]]) {
        let mut blocks: [Blocks<'_>; N] = std::array::from_fn(|n| Blocks::new(group[n].as_ref()));
        let together = blocks.iter().map(|b| b.remaining).min().unwrap_or(0);
        let st = lockstep(&mut blocks, together);
        // Lanes of unequal length finish one by one.
        for ((s, b), o) in st.into_iter().zip(blocks.iter_mut()).zip(out.iter_mut()) {
            let mut one = [s];
            while b.remaining > 0 {
                compress(&mut one, [b.next_block()]);
            }
            *o = digest(one[0]);
        }
    }

    /// `count` blocks of every lane, interleaved. A function of its own so that the states stay
    /// in registers (indexing them by a run-time lane number afterwards would put them in memory).
    #[inline(always)]
    unsafe fn lockstep<const N: usize>(blocks: &mut [Blocks<'_>; N], count: usize) -> [State; N] {
        let mut st = [initial(); N];
        let mut done = 0;
        while done < count {
            let run = blocks.iter_mut().map(|b| b.direct_run()).min().unwrap_or(0).min(count - done);
            if run == 0 {
                let src: [*const u8; N] = std::array::from_fn(|n| blocks[n].next_block());
                compress(&mut st, src);
                done += 1;
                continue;
            }
            // The common case: whole blocks straight from every lane's current part, with no
            // call in the loop (a call would make the compiler keep the states in memory).
            let base: [*const u8; N] = std::array::from_fn(|n| blocks[n].take_direct(run));
            st = direct(st, base, run);
            done += run;
        }
        st
    }

    /// `count` consecutive blocks of every lane from `base`. Not inlined, so that its loop has
    /// the states to itself and keeps them in registers.
    #[inline(never)]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn direct<const N: usize>(mut st: [State; N], base: [*const u8; N], count: usize) -> [State; N] {
        for i in 0..count {
            compress(&mut st, std::array::from_fn(|n| base[n].add(64 * i)));
        }
        st
    }

    /// Digests of up to [`super::LANES`] messages, hashed in interleaved lanes.
    ///
    /// # Safety
    /// The CPU must support SHA, SSSE3 and SSE4.1.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn digest_group<'a, M: AsRef<[&'a [u8]]>>(group: &[M], out: &mut [[u8; 32]]) {
        match group.len() {
            2 => digest_lanes::<2, M>(group, out),
            1 => digest_lanes::<1, M>(group, out),
            n => unreachable!("group of {n} messages"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(parts: &[&[u8]]) -> [u8; 32] {
        Sha256::digest(parts.concat()).into()
    }

    #[test]
    fn every_length_around_block_and_padding_edges() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
        for len in (0..=200).chain([255, 256, 257, 511, 512, 513, 999]) {
            // Split points inside the first and last blocks, as leaf header and trailer do.
            let a = len.min(11);
            let b = len - (len - a).min(5);
            let m: [&[u8]; 3] = [&data[..a], &data[a..b], &data[b..len]];
            for shani in [false, true] {
                let got = digest_all_with(shani, &[m, m, m, m]);
                assert!(got.iter().all(|d| *d == reference(&m)), "len {len} shani {shani}");
            }
        }
    }

    #[test]
    fn empty_and_known_vectors() {
        let empty: [&[u8]; 0] = [];
        let abc: [&[u8]; 2] = [b"a", b"bc"];
        let got = digest_all(&[&empty[..], &abc[..]]);
        let hex = |d: &[u8; 32]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(&got[0]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(hex(&got[1]), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    proptest! {
        #[test]
        fn lanes_of_any_lengths_and_splits_match_sha2(
            msgs in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..400), 0usize..400, 0usize..400), 0..8)
        ) {
            let split: Vec<[&[u8]; 3]> = msgs
                .iter()
                .map(|(m, x, y)| {
                    let (x, y) = ((*x).min(m.len()), (*y).min(m.len()));
                    let (lo, hi) = (x.min(y), x.max(y));
                    [&m[..lo], &m[lo..hi], &m[hi..]]
                })
                .collect();
            for shani in [false, true] {
                let got = digest_all_with(shani, &split);
                for (g, m) in got.iter().zip(&split) {
                    prop_assert_eq!(*g, reference(m));
                }
            }
        }
    }
}
