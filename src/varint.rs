//! Unsigned LEB128 varints, as used by multiformats, protobuf and CAR framing.

/// Appends `value` to `out` as an unsigned LEB128 varint.
pub fn write(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Number of bytes [`write`] uses for `value`.
pub fn len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads a varint from the front of `bytes`, returning it and the bytes it used.
/// Returns `None` for a truncated or over-long (more than 10 bytes) varint.
pub fn read(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        let part = u64::from(b & 0x7f);
        if i == 9 && part > 1 {
            return None;
        }
        value |= part << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_length() {
        for v in [0u64, 1, 127, 128, 255, 300, 16383, 16384, u32::MAX as u64, u64::MAX] {
            let mut buf = Vec::new();
            write(&mut buf, v);
            assert_eq!(buf.len(), len(v), "len of {v}");
            assert_eq!(read(&buf), Some((v, buf.len())));
        }
    }

    #[test]
    fn known_bytes() {
        let mut buf = Vec::new();
        write(&mut buf, 300);
        assert_eq!(buf, [0xac, 0x02]);
    }

    #[test]
    fn truncated_is_none() {
        assert_eq!(read(&[0x80]), None);
        assert_eq!(read(&[]), None);
    }
}
