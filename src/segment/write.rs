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

use rustix::fs::{fcntl_setfl, OFlags};
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
    direct: Option<Direct>,
}

/// The state of direct writing: the file's flags before, the alignment, the pending block(s).
struct Direct {
    /// The file's status flags before `O_DIRECT` was set (restored when done).
    flags: OFlags,
    /// Alignment of offsets and lengths (a power of two, at least 4 KiB).
    block: usize,
    /// Alignment of memory written from without a copy.
    mem_align: usize,
    /// Backing storage of the aligned buffer.
    storage: Vec<u8>,
    /// Where the aligned buffer starts in `storage`.
    at: usize,
    /// File offset of the buffer's first byte (a multiple of `block` when `len > 0`).
    start: u64,
    /// Bytes pending in the buffer.
    len: usize,
    /// Whether a direct write has succeeded (the file system's refusal is looked for only at the
    /// first one).
    proven: bool,
}

impl<'a> DealWriter<'a> {
    /// A writer of `file` in `mode`: for [`WriteMode::Direct`], `O_DIRECT` is set on the file
    /// (restored when the writer is dropped) if the file system accepts it; buffered otherwise.
    pub fn new(file: &'a File, mode: WriteMode) -> Self {
        let direct = match mode {
            WriteMode::Buffered => None,
            WriteMode::Direct => Direct::enable(file),
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
                let whole = data.len() / d.block * d.block;
                if whole > 0 && (data.as_ptr() as usize).is_multiple_of(d.mem_align) {
                    self.write_direct(offset, &data[..whole])?;
                    offset += whole as u64;
                    data = &data[whole..];
                    continue;
                }
            }
            let (len, n) = (d.len, data.len().min(BUFFER - d.len));
            d.buffer()[len..len + n].copy_from_slice(&data[..n]);
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
        let padded = d.len.next_multiple_of(d.block);
        let (start, len) = (d.start, d.len);
        d.buffer()[len..padded].fill(0);
        d.len = 0;
        d.start += padded as u64;
        // The buffer is moved out while it is written (the writer may turn buffered).
        let storage = std::mem::take(&mut d.storage);
        let at = d.at;
        let res = self.write_direct(start, &storage[at..at + padded]);
        if let Some(d) = self.direct.as_mut() {
            d.storage = storage;
        }
        res
    }

    /// Writes aligned `data` at aligned `offset` with direct I/O; if the file system refuses the
    /// first direct write (`EINVAL`), turns buffered and writes it buffered.
    fn write_direct(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        match self.file.write_all_at(data, offset) {
            Ok(()) => {
                if let Some(d) = self.direct.as_mut() {
                    d.proven = true;
                }
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && self.direct.as_ref().is_some_and(|d| !d.proven) => {
                let d = self.direct.take().expect("direct");
                fcntl_setfl(self.file, d.flags)?;
                self.file.write_all_at(data, offset)
            }
            Err(e) => Err(e),
        }
    }
}

impl Drop for DealWriter<'_> {
    fn drop(&mut self) {
        if let Some(d) = &self.direct {
            let _ = fcntl_setfl(self.file, d.flags);
        }
    }
}

impl Direct {
    /// Sets `O_DIRECT` on `file` if its file system reports a direct I/O alignment (or does not
    /// say) and accepts the flag.
    fn enable(file: &File) -> Option<Direct> {
        let (flags, block, mem_align) = crate::blockwrite::enable_direct(file, BUFFER)?;
        let storage = vec![0u8; BUFFER + block];
        let at = storage.as_ptr().align_offset(block);
        Some(Direct { flags, block, mem_align, storage, at, start: 0, len: 0, proven: false })
    }

    /// The aligned buffer.
    fn buffer(&mut self) -> &mut [u8] {
        &mut self.storage[self.at..self.at + BUFFER]
    }

    /// Whether `offset` is past the pending bytes' last block (they are to be written first).
    ///
    /// # Panics
    /// If `offset` is before the end of the pending bytes.
    fn past_pending(&self, offset: u64) -> bool {
        let end = self.start + self.len as u64;
        assert!(offset >= end, "deal written out of order: {offset} before {end}");
        self.len > 0 && offset > end && offset >= end.next_multiple_of(self.block as u64)
    }

    /// Makes the buffer end at `offset` (not past the pending bytes' last block): zeros up to
    /// it; an empty buffer starts at `offset`'s block.
    fn position(&mut self, offset: u64) {
        if self.len == 0 {
            let block = self.block as u64;
            self.start = offset / block * block;
        }
        let (from, to) = (self.len, (offset - self.start) as usize);
        self.buffer()[from..to].fill(0);
        self.len = to;
    }
}
