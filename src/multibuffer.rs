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
        *d = digest_one(m.as_ref());
    }
    out
}

/// SHA-256 of one message's parts, one stream.
fn digest_one(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
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

/// Where each 64-byte block of one message comes from: its longest part is read in place, the
/// few blocks before and after it (other parts, straddling bytes, the padding) are assembled
/// into small buffers. Works for messages like a UnixFS leaf (short header ‖ chunk ‖ short
/// trailer); [`Plan::new`] gives `None` for shapes with more than a few assembled blocks.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[derive(Clone, Copy)]
struct Plan {
    /// Blocks `0..n_pre`.
    pre: [u8; 64 * Plan::MAX_PRE],
    n_pre: usize,
    /// Blocks `n_pre..n_pre + n_mid`, in place in the caller's data.
    mid: *const u8,
    n_mid: usize,
    /// Blocks `n_pre + n_mid..total`, ending with the padding.
    post: [u8; 64 * Plan::MAX_POST],
    total: usize,
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
impl Plan {
    const MAX_PRE: usize = 2;
    const MAX_POST: usize = 3;

    fn new(parts: &[&[u8]]) -> Option<Plan> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let total = len / 64 + if len % 64 + 9 <= 64 { 1 } else { 2 };
        // The longest part and where it starts in the message.
        let (mut body, mut body_at, mut at) = (&[][..], 0, 0);
        for p in parts {
            if p.len() > body.len() {
                (body, body_at) = (p, at);
            }
            at += p.len();
        }
        // Blocks before the first whole block of the longest part (never past the message's
        // whole blocks), then the whole blocks inside it.
        let first = body_at.div_ceil(64).min(len / 64);
        let end = ((body_at + body.len()) / 64).max(first);
        if first > Plan::MAX_PRE || total - end > Plan::MAX_POST {
            return None;
        }
        let mut plan = Plan {
            pre: [0; 64 * Plan::MAX_PRE],
            n_pre: first,
            mid: body[(64 * first).saturating_sub(body_at).min(body.len())..].as_ptr(),
            n_mid: end - first,
            post: [0; 64 * Plan::MAX_POST],
            total,
        };
        copy_message(parts, 0, &mut plan.pre[..64 * first]);
        let rest = len - 64 * end;
        copy_message(parts, 64 * end, &mut plan.post[..rest]);
        plan.post[rest] = 0x80;
        let last = 64 * (total - end);
        plan.post[last - 8..last].copy_from_slice(&(8 * len as u64).to_be_bytes());
        Some(plan)
    }

    /// Block `i` (`i < total`); the pointer is valid while `self` and the message are.
    #[inline(always)]
    fn block(&self, i: usize) -> *const u8 {
        if i < self.n_pre {
            self.pre[64 * i..].as_ptr()
        } else if i < self.n_pre + self.n_mid {
            // Block i of the middle run lies inside the longest part (checked by `new`).
            self.mid.wrapping_add(64 * (i - self.n_pre))
        } else {
            self.post[64 * (i - self.n_pre - self.n_mid)..].as_ptr()
        }
    }
}

/// Copies the message bytes `[start, start + out.len())` of `parts` into `out`.
fn copy_message(parts: &[&[u8]], mut start: usize, out: &mut [u8]) {
    let mut filled = 0;
    for p in parts {
        if filled == out.len() {
            break;
        }
        if start >= p.len() {
            start -= p.len();
            continue;
        }
        let n = (p.len() - start).min(out.len() - filled);
        out[filled..filled + n].copy_from_slice(&p[start..start + n]);
        filled += n;
        start = 0;
    }
    debug_assert_eq!(filled, out.len());
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)] // lane loops index several parallel arrays
pub(crate) mod shani {
    //! SHA-NI primitives. The state lives in two registers in the layout `sha256rnds2` wants:
    //! `abef` holds lanes (f, e, b, a) and `cdgh` holds (h, g, d, c), lowest lane first.
    use super::{Plan, H0, K};
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

    /// Every plan's blocks, the lanes interleaved; all plans have the same block count. The
    /// loop makes no calls, so the states stay in registers.
    #[inline(always)]
    unsafe fn lanes<const N: usize>(plans: &[Plan; N]) -> [State; N] {
        let mut st = [initial(); N];
        for i in 0..plans[0].total {
            compress(&mut st, std::array::from_fn(|n| plans[n].block(i)));
        }
        st
    }

    /// Digests of up to [`super::LANES`] messages, hashed in interleaved lanes when they have
    /// the same number of blocks, else one after another.
    ///
    /// # Safety
    /// The CPU must support SHA, SSSE3 and SSE4.1.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn digest_group<'a, M: AsRef<[&'a [u8]]>>(group: &[M], out: &mut [[u8; 32]]) {
        let plans: Vec<Option<Plan>> = group.iter().map(|m| Plan::new(m.as_ref())).collect();
        if let [Some(a), Some(b)] = &plans[..] {
            if a.total == b.total {
                let [x, y] = lanes::<2>(&[*a, *b]);
                (out[0], out[1]) = (digest(x), digest(y));
                return;
            }
        }
        for ((plan, m), o) in plans.into_iter().zip(group).zip(out.iter_mut()) {
            *o = match plan {
                Some(p) => digest(lanes::<1>(&[p])[0]),
                None => super::digest_one(m.as_ref()),
            };
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

    #[test]
    fn unequal_lanes_and_shapes_without_a_plan() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        // Equal lengths, unequal lengths, a long header (no plan: assembled one stream).
        let msgs: [[&[u8]; 3]; 4] = [
            [&data[..14], &data[14..4000], &data[4000..4004]],
            [&data[..14], &data[14..3000], &data[3000..3004]],
            [&data[..700], &data[700..800], &data[800..900]],
            [&data[..1], &data[1..2], &data[2..4000]],
        ];
        for shani in [false, true] {
            let got = digest_all_with(shani, &msgs);
            for (g, m) in got.iter().zip(&msgs) {
                assert_eq!(*g, reference(m), "shani {shani}");
            }
        }
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
