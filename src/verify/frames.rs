//! Cutting a CAR's bytes, which arrive in chunks, into sections (`varint(len) ‖ CID ‖ data`)
//! without copying them: a section inside a chunk is handed out in place; only one that spans
//! two chunks is assembled.

use crate::car::{CarError, MAX_SECTION};
use std::ops::Range;

/// The sections a chunk completes.
#[derive(Debug, Default)]
pub(super) struct Cut {
    /// A section that began in an earlier chunk: its offset, its bytes and where they begin
    /// after the length.
    pub carried: Option<(u64, Vec<u8>, usize)>,
    /// Sections inside the chunk: offset, and the range of the bytes after the length.
    pub inside: Vec<(u64, Range<usize>)>,
}

/// The cutting state between chunks.
#[derive(Debug)]
pub(super) struct Framer {
    /// Offset of the chunk's first byte not handed out yet.
    at: u64,
    /// Header bytes still to skip.
    skip: u64,
    /// Bytes of a section begun in an earlier chunk, from its length on.
    partial: Vec<u8>,
    /// Offset where `partial` begins.
    partial_at: u64,
}

/// A varint at the front of `bytes`: `Ok(None)` when `bytes` ends inside it.
fn varint(bytes: &[u8]) -> Result<Option<(u64, usize)>, ()> {
    match crate::varint::read(bytes) {
        Some(v) => Ok(Some(v)),
        None if bytes.len() < 10 && bytes.iter().all(|b| b & 0x80 != 0) => Ok(None),
        None => Err(()),
    }
}

impl Framer {
    /// Sections start after `header_len` bytes.
    pub fn new(header_len: u64) -> Self {
        Framer { at: 0, skip: header_len, partial: Vec::new(), partial_at: 0 }
    }

    /// The sections `chunk` (the next bytes of the CAR) completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Cut, CarError> {
        let mut cut = Cut::default();
        let chunk_at = self.at;
        self.at += chunk.len() as u64;
        let mut i = self.skip.min(chunk.len() as u64) as usize;
        self.skip -= i as u64;
        if !self.partial.is_empty() {
            // The length first (it may itself span chunks), then the section's bytes.
            let total = loop {
                match varint(&self.partial).map_err(|_| self.bad(self.partial_at, "bad length"))? {
                    Some((len, n)) => break Some(self.check_len(self.partial_at, len)? + n),
                    None if i < chunk.len() => {
                        self.partial.push(chunk[i]);
                        i += 1;
                    }
                    None => break None,
                }
            };
            let Some(total) = total else { return Ok(cut) };
            let need = total - self.partial.len();
            let take = need.min(chunk.len() - i);
            self.partial.extend_from_slice(&chunk[i..i + take]);
            i += take;
            if self.partial.len() < total {
                return Ok(cut);
            }
            let bytes = std::mem::take(&mut self.partial);
            let n = crate::varint::read(&bytes).map_or(0, |v| v.1);
            cut.carried = Some((self.partial_at, bytes, n));
        }
        while i < chunk.len() {
            let at = chunk_at + i as u64;
            let rest = &chunk[i..];
            if let Some((len, n)) = varint(rest).map_err(|_| self.bad(at, "bad length"))? {
                let len = self.check_len(at, len)?;
                if n + len <= rest.len() {
                    cut.inside.push((at, i + n..i + n + len));
                    i += n + len;
                    continue;
                }
            }
            self.partial_at = at;
            self.partial.extend_from_slice(rest);
            break;
        }
        Ok(cut)
    }

    /// Checks that the CAR did not end inside a section.
    pub fn finish(&self) -> Result<(), CarError> {
        if self.skip > 0 {
            return Err(CarError::BadHeader("truncated header".into()));
        }
        if !self.partial.is_empty() {
            return Err(self.bad(self.partial_at, "truncated section"));
        }
        Ok(())
    }

    fn check_len(&self, at: u64, len: u64) -> Result<usize, CarError> {
        if len > MAX_SECTION {
            return Err(self.bad(at, "section larger than 64 MiB"));
        }
        Ok(len as usize)
    }

    fn bad(&self, offset: u64, reason: &str) -> CarError {
        CarError::BadSection { offset, reason: reason.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way of cutting a CAR into chunks gives the same sections.
    #[test]
    fn sections_are_the_same_however_the_bytes_are_cut() {
        let mut car = vec![0xAA; 5]; // a stand-in header
        let mut want = Vec::new();
        for len in [1usize, 0, 200, 3, 130, 1] {
            let at = car.len() as u64;
            crate::varint::write(&mut car, len as u64);
            let body: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            car.extend_from_slice(&body);
            want.push((at, body));
        }
        for size in [1, 2, 3, 7, 64, 128, 129, 1000] {
            let mut f = Framer::new(5);
            let mut got = Vec::new();
            for chunk in car.chunks(size) {
                let cut = f.feed(chunk).unwrap();
                got.extend(cut.carried.map(|(at, b, n)| (at, b[n..].to_vec())));
                got.extend(cut.inside.into_iter().map(|(at, r)| (at, chunk[r].to_vec())));
            }
            f.finish().unwrap();
            assert_eq!(got, want, "chunks of {size}");
        }
        // Cut short inside a section, or inside a length.
        for end in [car.len() - 1, 6, 9] {
            let mut f = Framer::new(5);
            for chunk in car[..end].chunks(3) {
                f.feed(chunk).unwrap();
            }
            assert!(f.finish().is_err(), "cut at {end}");
        }
        let mut f = Framer::new(0);
        assert!(f.feed(&[0xff; 11]).is_err(), "an over-long length");
        let mut f = Framer::new(0);
        assert!(f.feed(&[0x80, 0x80, 0x80, 0x80, 0x40]).is_err(), "a section over 64 MiB");
    }
}
