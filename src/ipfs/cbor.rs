//! Finding the links of a dag-cbor block.

use cid::Cid;

/// Deepest nesting of arrays, maps and tags accepted (a guard against hostile input).
const MAX_DEPTH: usize = 1024;

/// The CIDs (tag 42, a byte string `0x00 ‖ CID bytes`) in a dag-cbor block, **in the order they
/// appear in the encoded bytes** — a pre-order scan of the CBOR data items, map keys before
/// their values, entries in stored order (canonical DAG-CBOR stores map keys sorted by length,
/// then bytewise). Duplicates are kept; the walker skips CIDs it has visited.
///
/// go-ipld-cbor, which Powergate used, lists links while traversing its decoded object, which
/// visits map entries in Go's sorted-string key order; for maps whose keys differ in length that
/// order can differ from the stored one. The stored order is the one used here.
///
/// Indefinite-length items are rejected, as DAG-CBOR forbids them.
pub fn cbor_links(block: &[u8]) -> Result<Vec<Cid>, String> {
    let mut r = Reader { buf: block };
    let mut links = Vec::new();
    // Items still to read at each open nesting level.
    let mut pending: Vec<u64> = vec![1];
    while let Some(top) = pending.last_mut() {
        if *top == 0 {
            pending.pop();
            continue;
        }
        *top -= 1;
        let (major, arg) = r.head()?;
        match major {
            0 | 1 | 7 => {}
            2 | 3 => {
                r.take(arg)?;
            }
            4 | 5 => {
                let n = if major == 5 { arg.checked_mul(2).ok_or("map too large")? } else { arg };
                if n > r.buf.len() as u64 {
                    return Err("container longer than the block".into());
                }
                push(&mut pending, n)?;
            }
            6 if arg == 42 => {
                let (m, n) = r.head()?;
                if m != 2 {
                    return Err("tag 42 is not followed by a byte string".into());
                }
                let bytes = r.take(n)?;
                match bytes.split_first() {
                    Some((0, cid)) => {
                        links.push(Cid::try_from(cid).map_err(|e| format!("invalid CID in tag 42: {e}"))?)
                    }
                    _ => return Err("tag 42 byte string lacks the 0x00 prefix".into()),
                }
            }
            6 => push(&mut pending, 1)?,
            _ => unreachable!("major type is 3 bits"),
        }
    }
    if !r.buf.is_empty() {
        return Err("trailing bytes after the CBOR item".into());
    }
    Ok(links)
}

fn push(pending: &mut Vec<u64>, n: u64) -> Result<(), String> {
    if pending.len() >= MAX_DEPTH {
        return Err("CBOR nested too deeply".into());
    }
    pending.push(n);
    Ok(())
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let (&b, rest) = self.buf.split_first().ok_or("truncated CBOR")?;
        self.buf = rest;
        Ok(b)
    }

    fn head(&mut self) -> Result<(u8, u64), String> {
        let b = self.byte()?;
        let (major, info) = (b >> 5, b & 0x1f);
        let n = match info {
            0..=23 => return Ok((major, info as u64)),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => return Err("indefinite-length or reserved CBOR item (not DAG-CBOR)".into()),
        };
        let bytes = self.take(n)?;
        Ok((major, bytes.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64)))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        if n > self.buf.len() as u64 {
            return Err("truncated CBOR".into());
        }
        let (a, b) = self.buf.split_at(n as usize);
        self.buf = b;
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{cid_of, CidVersion, DAG_PB, RAW};

    fn tag42(c: &Cid) -> Vec<u8> {
        let b = c.to_bytes();
        let mut out = vec![0xd8, 0x2a, 0x58, (b.len() + 1) as u8, 0x00];
        out.extend_from_slice(&b);
        out
    }

    #[test]
    fn links_in_encoded_order() {
        let a = cid_of(CidVersion::V1, RAW, b"a");
        let b = cid_of(CidVersion::V0, DAG_PB, b"b");
        let c = cid_of(CidVersion::V1, RAW, b"c");
        // {"x": [a, {"y": b}, 1.5, "s"], "zz": c, "n": null} (key order as stored)
        let mut blk = vec![0xa3, 0x61, b'x', 0x84];
        blk.extend(tag42(&a));
        blk.extend([0xa1, 0x61, b'y']);
        blk.extend(tag42(&b));
        blk.extend([0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x61, b's']);
        blk.extend([0x62, b'z', b'z']);
        blk.extend(tag42(&c));
        blk.extend([0x61, b'n', 0xf6]);
        assert_eq!(cbor_links(&blk).unwrap(), vec![a, b, c]);
    }

    #[test]
    fn rejects_malformed() {
        assert!(cbor_links(&[]).is_err());
        assert!(cbor_links(&[0x9f, 0xff]).is_err()); // indefinite array
        assert!(cbor_links(&[0x82, 0x01]).is_err()); // truncated
        assert!(cbor_links(&[0x01, 0x02]).is_err()); // trailing
        assert!(cbor_links(&[0xd8, 0x2a, 0x41, 0x01]).is_err()); // no 0x00 prefix
        assert!(cbor_links(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert_eq!(cbor_links(&[0xa0]).unwrap(), vec![]);
    }
}
