//! How a deal's bytes reach its file: direct I/O (`O_DIRECT`) where the file system accepts it,
//! buffered writes otherwise.
//!
//! A deal is written once, front to back, and never read back by the writer; through the page
//! cache every byte costs a copy into a new cache page plus the kernel's writeback, CPU that a
//! two-core machine hashing at full speed takes from commP. Direct writes go from the mapped
//! input straight to the device where the input's bytes and their place in the deal are both
//! aligned (every mapped input's: its slot starts at a multiple of 127·4096 bytes), through a
//! small aligned buffer otherwise (small inputs, the tail of each input, the index).
//!
//! [`DealWriter::write_at`] takes the deal's bytes in strictly increasing offsets; gaps between
//! them stay holes when they cover whole blocks, a partial block is written padded with zeros
//! (the bytes there are zeros in the deal anyway: the rest of a segment's slot, or past the end,
//! cut by [`DealWriter::finish`]'s `set_len`).

use crate::blockwrite::{AlignedBuf, DirectFile};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// How a deal is written to its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Direct I/O where the file system accepts it (at open or at the first write), buffered
    /// writes where it does not.
    #[default]
    Direct,
    /// Buffered writes through the page cache.
    Buffered,
}

/// Bytes of the aligned copy buffer of a direct writer.
const BUFFER: usize = 4 << 20;

/// Writes a deal's bytes into a file, in increasing offsets (see the module's doc).
pub struct DealWriter<'a> {
    file: &'a File,
    direct: Option<Direct<'a>>,
}

/// The state of direct writing: the file, the aligned buffer, the pending block(s).
struct Direct<'a> {
    /// The file with `O_DIRECT` set (restored when dropped).
    file: DirectFile<'a>,
    /// The aligned buffer.
    buf: AlignedBuf,
    /// File offset of the buffer's first byte (a multiple of the block when `len > 0`).
    start: u64,
    /// Bytes pending in the buffer.
    len: usize,
}

impl<'a> DealWriter<'a> {
    /// A writer of `file` in `mode`: for [`WriteMode::Direct`], `O_DIRECT` is set on the file
    /// (restored when the writer is dropped) if the file system accepts it; buffered otherwise.
    pub fn new(file: &'a File, mode: WriteMode) -> Self {
        let direct = match mode {
            WriteMode::Buffered => None,
            WriteMode::Direct => DirectFile::enable(file, BUFFER).map(|file| {
                let buf = AlignedBuf::new(BUFFER, file.block);
                Direct { file, buf, start: 0, len: 0 }
            }),
        };
        DealWriter { file, direct }
    }

    /// Whether the writes go (so far) with direct I/O.
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Writes `data` at `offset`, which is at or past the end of the previous write.
    ///
    /// # Panics
    /// If `offset` is before the end of the previous write (direct mode).
    pub fn write_at(&mut self, mut offset: u64, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let Some(d) = self.direct.as_mut() else {
                return self.file.write_all_at(data, offset);
            };
            if d.past_pending(offset) {
                self.flush()?;
                continue;
            }
            d.position(offset);
            if d.len == 0 {
                // The buffer is empty and `offset` aligned: aligned whole blocks go straight.
                let whole = data.len() / d.file.block * d.file.block;
                if whole > 0 && (data.as_ptr() as usize).is_multiple_of(d.file.mem_align) {
                    if !d.file.write(offset, &data[..whole])? {
                        self.direct = None; // refused: buffered from here on
                    }
                    offset += whole as u64;
                    data = &data[whole..];
                    continue;
                }
            }
            let (len, n) = (d.len, data.len().min(BUFFER - d.len));
            d.buf.bytes_mut()[len..len + n].copy_from_slice(&data[..n]);
            d.len += n;
            offset += n as u64;
            data = &data[n..];
            if d.len == BUFFER {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Writes what is pending and cuts (or extends) the file to `len` bytes.
    pub fn finish(&mut self, len: u64) -> io::Result<()> {
        self.flush()?;
        self.file.set_len(len)
    }

    /// Writes the pending bytes, their last block padded with zeros.
    fn flush(&mut self) -> io::Result<()> {
        let Some(d) = self.direct.as_mut() else { return Ok(()) };
        if d.len == 0 {
            return Ok(());
        }
        let padded = d.len.next_multiple_of(d.file.block);
        let (start, len) = (d.start, d.len);
        d.buf.bytes_mut()[len..padded].fill(0);
        d.len = 0;
        d.start += padded as u64;
        if !d.file.write(start, &d.buf.bytes()[..padded])? {
            self.direct = None; // refused: buffered from here on
        }
        Ok(())
    }
}

impl Direct<'_> {
    /// Whether `offset` is past the pending bytes' last block (they are to be written first).
    ///
    /// # Panics
    /// If `offset` is before the end of the pending bytes.
    fn past_pending(&self, offset: u64) -> bool {
        let end = self.start + self.len as u64;
        assert!(offset >= end, "deal written out of order: {offset} before {end}");
        self.len > 0 && offset > end && offset >= end.next_multiple_of(self.file.block as u64)
    }

    /// Makes the buffer end at `offset` (not past the pending bytes' last block): zeros up to
    /// it; an empty buffer starts at `offset`'s block.
    fn position(&mut self, offset: u64) {
        if self.len == 0 {
            let block = self.file.block as u64;
            self.start = offset / block * block;
        }
        let (from, to) = (self.len, (offset - self.start) as usize);
        self.buf.bytes_mut()[from..to].fill(0);
        self.len = to;
    }
}
