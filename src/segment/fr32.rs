//! Fr32 padding of whole quads (127 payload bytes ↔ 128 padded bytes), byte-wise: the four
//! 254-bit runs of a quad's 1016 bits each become a 32-byte node with its top two bits clear.
//! Used for the data segment index only (the piece hasher has its own fused expansion).

/// Bit offsets of the four 254-bit runs of a quad: byte `BYTE[j]`, shift `SHIFT[j]`.
const BYTE: [usize; 4] = [0, 31, 63, 95];
const SHIFT: [u32; 4] = [0, 6, 4, 2];

/// Fr32-expands whole quads: `unpadded.len()` must be a multiple of 127.
pub fn pad(unpadded: &[u8]) -> Vec<u8> {
    assert!(unpadded.len().is_multiple_of(127), "whole quads only");
    let mut out = vec![0u8; unpadded.len() / 127 * 128];
    for (q, o) in unpadded.chunks_exact(127).zip(out.chunks_exact_mut(128)) {
        for j in 0..4 {
            let node = &mut o[32 * j..32 * j + 32];
            for (i, b) in node.iter_mut().enumerate() {
                let lo = q[BYTE[j] + i];
                let hi = q.get(BYTE[j] + i + 1).copied().unwrap_or(0);
                *b = ((u16::from(lo) | u16::from(hi) << 8) >> SHIFT[j]) as u8;
            }
            node[31] &= 0x3f;
        }
    }
    out
}

/// The inverse of [`pad`]: `padded.len()` must be a multiple of 128. The top two bits of each
/// 32-byte node are ignored (they are zero in any valid Fr32 data).
pub fn unpad(padded: &[u8]) -> Vec<u8> {
    assert!(padded.len().is_multiple_of(128), "whole quads only");
    let mut out = vec![0u8; padded.len() / 128 * 127];
    for (p, o) in padded.chunks_exact(128).zip(out.chunks_exact_mut(127)) {
        for j in 0..4 {
            for i in 0..32 {
                let mut v = p[32 * j + i];
                if i == 31 {
                    v &= 0x3f;
                }
                let v = u16::from(v) << SHIFT[j];
                o[BYTE[j] + i] |= v as u8;
                if let Some(next) = o.get_mut(BYTE[j] + i + 1) {
                    *next |= (v >> 8) as u8;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 3) as u8).collect()
    }

    #[test]
    fn unpad_inverts_pad_and_pad_inverts_unpad_on_valid_nodes() {
        let u = bytes(127 * 3, 7);
        let p = pad(&u);
        assert!(p.chunks(32).all(|n| n[31] & 0xc0 == 0));
        assert_eq!(unpad(&p), u);
        assert_eq!(pad(&unpad(&p)), p);
    }

    #[test]
    fn pad_agrees_with_the_piece_hasher_expansion() {
        // commP of 127 bytes is H(H(n0, n1), H(n2, n3)) over the padded nodes.
        let u = bytes(127, 99);
        let p = pad(&u);
        let k = crate::commp::Kernel::detect();
        let n = |i: usize| -> [u8; 32] { p[32 * i..32 * i + 32].try_into().unwrap() };
        let root = k.node(&k.node(&n(0), &n(1)), &k.node(&n(2), &n(3)));
        assert_eq!(root, crate::commp::commp_of_bytes(&u).unwrap().root);
    }

    #[test]
    fn the_last_bit_of_each_run_lands_where_it_should() {
        // Bit 253 of the quad (the last of run 0) is bit 5 of padded byte 31; bit 254 (the first
        // of run 1) is bit 0 of padded byte 32.
        let mut u = vec![0u8; 127];
        u[31] = 0b0110_0000;
        let p = pad(&u);
        assert_eq!(p[31], 0b0010_0000);
        assert_eq!(p[32], 0b0000_0001);
        assert_eq!(unpad(&p), u);
    }
}
