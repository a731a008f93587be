//! A file written with direct I/O (`O_DIRECT`) from writes at any offsets, each byte written once:
//! what `prepare` needs for a CAR, whose internal nodes are reserved first and filled in later.
//!
//! Through the page cache every byte written costs the kernel a copy into a new cache page plus
//! its writeback, CPU that a two-core machine hashing the same bytes takes from commP. Direct
//! writes go from an aligned buffer to the device: the whole blocks of each write are copied
//! into it (a user-space copy, a fraction of the kernel's cost) and written at once; a block
//! that a write covers only in part is kept in memory until all its bytes have arrived (they
//! do: every byte is written once), then written; [`BlockWriter::finish`] writes the blocks
//! still partial (the file's last one) padded with zeros: the caller then cuts the file to its
//! length.
//!
//! Direct I/O is used only where it saves work: not on tmpfs (its pages are the file: the
//! kernel copies either way, and the aligned copy would be one more), and not where the file
//! system refuses it (at `fcntl`, or `EINVAL` at the first write: then buffered from there on).

use rustix::fs::{fcntl_getfl, fcntl_setfl, statx, AtFlags, OFlags, StatxFlags};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The smallest block written with direct I/O, whatever smaller alignment the file system asks.
const MIN_BLOCK: usize = 4096;

/// Bytes of the aligned copy buffer.
const BUFFER: usize = 4 << 20;

/// A file with `O_DIRECT` set, written in aligned blocks; its status flags are restored when
/// it is dropped. Shared by [`BlockWriter`] and the deal writer (`segment::write`).
pub struct DirectFile<'a> {
    file: &'a File,
    /// The file's status flags before `O_DIRECT` was set.
    flags: OFlags,
    /// Alignment of offsets and lengths (a power of two, at least 4 KiB).
    pub block: usize,
    /// Alignment of memory written from (a power of two, no larger than `block`).
    pub mem_align: usize,
    /// Whether a direct write has succeeded (a refusal is looked for only at the first one).
    proven: bool,
}

impl<'a> DirectFile<'a> {
    /// Sets `O_DIRECT` on `file` if its file system reports a direct I/O alignment (or does not
    /// say) no larger than `max_block` and accepts the flag.
    pub fn enable(file: &'a File, max_block: usize) -> Option<Self> {
        let (mut mem_align, mut block) = (MIN_BLOCK, MIN_BLOCK);
        if let Ok(st) = statx(file, c"", AtFlags::EMPTY_PATH, StatxFlags::DIOALIGN) {
            if StatxFlags::from_bits_retain(st.stx_mask).contains(StatxFlags::DIOALIGN) {
                if st.stx_dio_offset_align == 0 || st.stx_dio_mem_align == 0 {
                    return None; // no direct I/O on this file
                }
                mem_align = (st.stx_dio_mem_align as usize).max(1);
                block = (st.stx_dio_offset_align as usize).max(MIN_BLOCK);
            }
        }
        if !block.is_power_of_two() || !mem_align.is_power_of_two() || block > max_block || mem_align > block {
            return None;
        }
        let flags = fcntl_getfl(file).ok()?;
        fcntl_setfl(file, flags | OFlags::DIRECT).ok()?;
        Some(DirectFile { file, flags, block, mem_align, proven: false })
    }

    /// Writes `data` (aligned to `mem_align`, a whole number of blocks) at `at` (aligned). If the
    /// file system refuses the first direct write (`EINVAL`), clears `O_DIRECT`, writes `data`
    /// buffered and returns `false`: the caller goes on with buffered writes.
    pub fn write(&mut self, at: u64, data: &[u8]) -> io::Result<bool> {
        match self.file.write_all_at(data, at) {
            Ok(()) => {
                self.proven = true;
                Ok(true)
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && !self.proven => {
                fcntl_setfl(self.file, self.flags)?;
                self.file.write_all_at(data, at)?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

impl Drop for DirectFile<'_> {
    fn drop(&mut self) {
        let _ = fcntl_setfl(self.file, self.flags);
    }
}

/// A zeroed buffer of `len` bytes whose start is aligned to `align` (a power of two).
pub struct AlignedBuf {
    storage: Vec<u8>,
    at: usize,
    len: usize,
}

impl AlignedBuf {
    /// A buffer of `len` bytes aligned to `align`.
    pub fn new(len: usize, align: usize) -> Self {
        let storage = vec![0u8; len + align];
        let at = storage.as_ptr().align_offset(align);
        AlignedBuf { storage, at, len }
    }

    /// Its bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.storage[self.at..self.at + self.len]
    }

    /// Its bytes, to fill.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.at..self.at + self.len]
    }
}

/// Whether `file` is on tmpfs (its pages are the file: direct I/O saves nothing there).
#[allow(clippy::unnecessary_cast)] // libc's field types differ between targets
pub fn on_tmpfs(file: &File) -> bool {
    use std::os::unix::io::AsRawFd;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    // SAFETY: a plain syscall on an open descriptor, writing into a zeroed struct we own.
    let fs = unsafe {
        let mut fs: libc::statfs = std::mem::zeroed();
        (libc::fstatfs(file.as_raw_fd(), &mut fs) == 0).then_some(fs)
    };
    fs.is_some_and(|f| f.f_type as i64 == TMPFS_MAGIC)
}

/// Writes a file from writes at any offsets, each byte once (see the module's doc).
pub struct BlockWriter<'a> {
    file: &'a File,
    direct: Option<Direct<'a>>,
    /// Blocks written in part, by index: their bytes so far (zeros elsewhere) and how many.
    partial: HashMap<u64, (Box<[u8]>, usize)>,
}

/// The state of direct writing: the file and the aligned buffer written from.
struct Direct<'a> {
    file: DirectFile<'a>,
    buf: AlignedBuf,
}

impl<'a> BlockWriter<'a> {
    /// A writer of `file`, with direct I/O when `direct` is asked, the file is not on tmpfs and
    /// its file system accepts it (restored when the writer is dropped); buffered otherwise.
    pub fn new(file: &'a File, direct: bool) -> Self {
        let direct = (direct && !on_tmpfs(file)).then(|| DirectFile::enable(file, BUFFER)).flatten().map(|file| {
            let buf = AlignedBuf::new(BUFFER, file.block);
            Direct { file, buf }
        });
        BlockWriter { file, direct, partial: HashMap::new() }
    }

    /// Whether the writes go (so far) with direct I/O.
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Writes `data` at `offset`. Every byte of the file is written once at most.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let Some(block) = self.direct.as_ref().map(|d| d.file.block) else {
            return self.file.write_all_at(data, offset);
        };
        let b = block as u64;
        let end = offset + data.len() as u64;
        let (first_whole, end_whole) = (offset.next_multiple_of(b), end / b * b);
        if first_whole >= end_whole {
            // No whole block: the bytes go to the partial blocks they touch.
            return self.add_partial(offset, data);
        }
        self.add_partial(offset, &data[..(first_whole - offset) as usize])?;
        let mut at = first_whole;
        while at < end_whole {
            let n = (end_whole - at).min(BUFFER as u64) as usize;
            let from = (at - offset) as usize;
            let d = self.direct.as_mut().expect("direct");
            d.buf.bytes_mut()[..n].copy_from_slice(&data[from..from + n]);
            self.write_block_run(at, n)?;
            at += n as u64;
        }
        self.add_partial(end_whole, &data[(end_whole - offset) as usize..])
    }

    /// Writes the blocks still partial, padded with zeros (the file may then be longer than
    /// its bytes: the caller cuts it with `set_len`).
    pub fn finish(&mut self) -> io::Result<()> {
        let mut rest: Vec<u64> = self.partial.keys().copied().collect();
        rest.sort_unstable();
        for k in rest {
            self.write_partial(k)?;
        }
        Ok(())
    }

    /// Adds `data` at `offset` (within the blocks it touches) to the partial blocks, writing
    /// each that becomes whole.
    fn add_partial(&mut self, mut offset: u64, mut data: &[u8]) -> io::Result<()> {
        let block = self.direct.as_ref().map_or(MIN_BLOCK, |d| d.file.block);
        while !data.is_empty() {
            let k = offset / block as u64;
            let within = (offset % block as u64) as usize;
            let n = data.len().min(block - within);
            let entry = self.partial.entry(k).or_insert_with(|| (vec![0u8; block].into_boxed_slice(), 0));
            entry.0[within..within + n].copy_from_slice(&data[..n]);
            entry.1 += n;
            if entry.1 >= block {
                self.write_partial(k)?;
            }
            offset += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    /// Writes partial block `k` (whole, padded with zeros) and forgets it.
    fn write_partial(&mut self, k: u64) -> io::Result<()> {
        let Some((bytes, _)) = self.partial.remove(&k) else { return Ok(()) };
        let at = k * bytes.len() as u64;
        match self.direct.as_mut() {
            Some(d) => {
                d.buf.bytes_mut()[..bytes.len()].copy_from_slice(&bytes);
                self.write_block_run(at, bytes.len())
            }
            // Buffered (after a refusal): the zeros written may be overwritten later.
            None => self.file.write_all_at(&bytes, at),
        }
    }

    /// Writes the first `n` bytes of the aligned buffer at `at` with direct I/O; if the file
    /// system refuses the first direct write, the writer turns buffered ([`DirectFile::write`]).
    fn write_block_run(&mut self, at: u64, n: usize) -> io::Result<()> {
        let d = self.direct.as_mut().expect("direct");
        if !d.file.write(at, &d.buf.bytes()[..n])? {
            self.direct = None;
            // Buffered from here on: the partial blocks are written now, before any later
            // write of their other bytes (which then overwrites the zeros).
            self.finish()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Writes `total` bytes of a pattern in the pieces `cuts` makes, in the order `order` gives,
    /// through a writer (direct when it can), and returns the file's bytes.
    fn written(total: usize, cuts: &[usize], order: &[usize], direct: bool) -> (Vec<u8>, bool) {
        let data: Vec<u8> = (0..total).map(|i| (i * 131 % 251) as u8 + 1).collect();
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (total + 1)).chain([0, total]).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut pieces: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        // A permutation of the pieces: each `order` value swaps two.
        for (i, o) in order.iter().enumerate() {
            let n = pieces.len();
            pieces.swap(i % n, o % n);
        }
        let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let mut w = BlockWriter::new(&file, direct);
        let was_direct = w.is_direct();
        for (a, b) in pieces {
            w.write_at(a as u64, &data[a..b]).unwrap();
        }
        w.finish().unwrap();
        drop(w);
        file.set_len(total as u64).unwrap();
        let back = std::fs::read(&path).unwrap();
        assert_eq!(back, data, "the file is the bytes written, whatever their order");
        (back, was_direct)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Writes at any offsets and in any order give the same file, direct or buffered.
        #[test]
        fn any_order_gives_the_bytes_written(
            total in 0usize..(3 * BUFFER / 2),
            cuts in proptest::collection::vec(0usize..(3 * BUFFER / 2), 0..24),
            order in proptest::collection::vec(0usize..64, 0..24),
        ) {
            written(total, &cuts, &order, true);
            written(total, &cuts, &order, false);
        }
    }

    #[test]
    fn direct_io_is_used_on_a_disk_and_the_flags_are_restored() {
        let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
        let file = File::create(dir.path().join("f")).unwrap();
        let before = fcntl_getfl(&file).unwrap();
        let probe = DirectFile::enable(&file, BUFFER).is_some();
        assert_eq!(fcntl_getfl(&file).unwrap(), before, "the probe's flags are restored when it is dropped");
        let w = BlockWriter::new(&file, true);
        // Where the file system takes O_DIRECT (and it is not tmpfs), the writer uses it.
        assert_eq!(w.is_direct(), probe && !on_tmpfs(&file));
        drop(w);
        assert_eq!(fcntl_getfl(&file).unwrap(), before);
        let (_, direct) = written(3 * MIN_BLOCK + 17, &[5, 4096, 9000], &[1], true);
        assert_eq!(direct, probe && !on_tmpfs(&file));
    }
}
