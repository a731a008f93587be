//! Where the importer takes a file's bytes from: a read-only memory map when the file can be
//! mapped (no copy out of the page cache), else plain reads into a reusable buffer.
//!
//! A mapped file that shrinks while it is read makes the process receive SIGBUS; the CLI turns
//! that into a one-line error and removes its temporary outputs. Growth and size changes before
//! or after the read are detected and reported as [`ImportError::Changed`].

use super::scan::ImportError;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Address ranges of the inputs mapped right now (start, length; 0 = free slot), readable from
/// a signal handler (atomics only): a SIGBUS whose fault address lies in one of them is a mapped
/// input that shrank; any other SIGBUS is not ours to explain.
pub static MAPPED: [(std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicUsize); 32] =
    [const { (std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0)) }; 32];

/// The path of each mapped range, by start address (for the SIGBUS message; `try_lock` it).
pub static MAPPED_PATHS: std::sync::Mutex<Vec<(usize, PathBuf)>> = std::sync::Mutex::new(Vec::new());

/// The path of the mapped input holding address `addr`, if any (`Some(None)`: mapped, path
/// unknown). Async-signal-safe apart from the `try_lock`.
pub fn mapped_input_at(addr: usize) -> Option<Option<PathBuf>> {
    use std::sync::atomic::Ordering;
    let start = MAPPED.iter().find_map(|(s, l)| {
        let (s, l) = (s.load(Ordering::Acquire), l.load(Ordering::Acquire));
        (s != 0 && addr >= s && addr < s + l).then_some(s)
    })?;
    Some(MAPPED_PATHS.try_lock().ok().and_then(|v| v.iter().find(|(s, _)| *s == start).map(|(_, p)| p.clone())))
}

fn register_map(start: usize, len: usize, path: &Path) {
    use std::sync::atomic::Ordering;
    for (s, l) in &MAPPED {
        if s.compare_exchange(0, start, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            l.store(len, Ordering::Release);
            if let Ok(mut v) = MAPPED_PATHS.lock() {
                v.push((start, path.to_path_buf()));
            }
            return;
        }
    }
}

fn unregister_map(start: usize) {
    use std::sync::atomic::Ordering;
    if let Ok(mut v) = MAPPED_PATHS.lock() {
        v.retain(|(s, _)| *s != start);
    }
    for (s, l) in &MAPPED {
        if s.load(Ordering::Acquire) == start {
            l.store(0, Ordering::Release);
            s.store(0, Ordering::Release);
        }
    }
}

/// A read-only memory map of a file, registered in [`MAPPED`] for as long as it lives, so a
/// SIGBUS from it (the file shrank while it was read) is explained by the CLI as a one-line
/// error naming the file, with its cleanup. Every mapped read in carload goes through one
/// (the importer's inputs, `commp` of a file).
pub struct Map {
    map: memmap2::Mmap,
}

impl Map {
    /// Maps the first `len` bytes of `file` (named `path` in the SIGBUS message).
    pub fn new(file: &File, len: usize, path: &Path) -> std::io::Result<Map> {
        // SAFETY: a read-only, private map; a file that shrinks while mapped raises SIGBUS on
        // access past its new end, which the registration lets the CLI report (see above).
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(file)? };
        register_map(map.as_ptr() as usize, map.len(), path);
        Ok(Map { map })
    }
}

impl std::ops::Deref for Map {
    type Target = memmap2::Mmap;

    fn deref(&self) -> &memmap2::Mmap {
        &self.map
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        unregister_map(self.map.as_ptr() as usize);
    }
}

/// Files smaller than this are read, not mapped (mapping costs more than it saves).
const MAP_MIN: u64 = 1 << 20;

/// Granularity of releasing mapped pages (the common page size; `madvise` rejects, harmlessly,
/// ranges that are not aligned to a larger page size).
const PAGE: usize = 4096;

/// The bytes `offset..offset+len` of one file, handed out in order.
pub enum Input {
    /// A read-only map of the whole file.
    Mapped {
        /// The map.
        map: Map,
        /// Where the range starts in the file.
        offset: u64,
        /// Bytes handed out so far (relative to `offset`).
        pos: u64,
        /// Map bytes before this (page-aligned) are already released.
        released: usize,
        /// The file, for the final size check.
        file: File,
        /// Its path.
        path: PathBuf,
        /// Its modification and change times when opened.
        stamp: Stamp,
    },
    /// Plain reads.
    Read {
        /// The file, positioned at the next byte.
        file: File,
        /// The reusable buffer (taken from and given back to this thread's spare, see
        /// [`SPARE_BUF`]).
        buf: Vec<u8>,
        /// Bytes handed out so far.
        pos: u64,
        /// Its path.
        path: PathBuf,
        /// Its modification and change times when opened.
        stamp: Stamp,
        /// For a whole file, its length: the read that reaches it asks for one byte more, so a
        /// small file is read, and its end seen, in one `read`.
        end: Option<u64>,
        /// The end of the file was seen right after its last byte (a short read).
        at_eof: bool,
    },
}

thread_local! {
    /// This thread's spare read buffer: files read one after another reuse one allocation.
    static SPARE_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Read buffers larger than this are not kept as the thread's spare.
const SPARE_MAX: usize = 2 << 20;

impl Drop for Input {
    fn drop(&mut self) {
        if let Input::Read { buf, .. } = self {
            if buf.capacity() <= SPARE_MAX {
                let buf = std::mem::take(buf);
                SPARE_BUF.with(|s| {
                    let spare = s.take();
                    s.set(if spare.capacity() < buf.capacity() { buf } else { spare });
                });
            }
        }
    }
}

/// A file's modification and status-change times (ns): any write changes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        Stamp { mtime: (m.mtime(), m.mtime_nsec()), ctime: (m.ctime(), m.ctime_nsec()) }
    }
}

/// What a file must be when it is opened: the file a shipment's pre-build check found (device
/// and inode) with the times it had then (see `shipment::source`). A file replaced, or written
/// in place since (its change time moves whatever its modification time says), is not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, i64),
    /// Status-change time (seconds, nanoseconds).
    pub ctime: (i64, i64),
}

impl Expected {
    /// What `meta` describes.
    pub fn of(meta: &std::fs::Metadata) -> Self {
        let s = Stamp::of(meta);
        Expected { dev: meta.dev(), ino: meta.ino(), mtime: s.mtime, ctime: s.ctime }
    }

    /// How `meta` differs from what is expected, if it does.
    pub fn differs(&self, meta: &std::fs::Metadata) -> Option<String> {
        let now = Expected::of(meta);
        if (now.dev, now.ino) != (self.dev, self.ino) {
            Some(format!(
                "it is another file now (inode {} on device {}, checked {} on {})",
                now.ino, now.dev, self.ino, self.dev
            ))
        } else if now.ctime != self.ctime || now.mtime != self.mtime {
            Some("it was written or its metadata changed".into())
        } else {
            None
        }
    }
}

impl Input {
    /// Opens `len` bytes of `path` from `offset`. When `whole`, the file must be exactly
    /// `offset + len` bytes long; with `expect`, it must be that file, unchanged.
    pub fn open(
        path: &Path,
        offset: u64,
        len: u64,
        whole: bool,
        expect: Option<&Expected>,
    ) -> Result<Self, ImportError> {
        Self::open_in(None, path, offset, len, whole, expect)
    }

    /// [`Input::open`], with `path`'s last component opened relative to `dir` (its parent
    /// folder, already open) when given: no path walk per file of a folder. The checks are
    /// those of [`Input::open`].
    pub fn open_in(
        dir: Option<&Folder>,
        path: &Path,
        offset: u64,
        len: u64,
        whole: bool,
        expect: Option<&Expected>,
    ) -> Result<Self, ImportError> {
        use std::os::unix::fs::OpenOptionsExt;
        // Non-blocking: a FIFO put in a file's place must not hang the open.
        let opened = match (dir, path.file_name()) {
            (Some(dir), Some(name)) => dir.open_file(name),
            _ => std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path),
        };
        let mut file = opened.map_err(|e| ImportError::io(path, e))?;
        let meta = file.metadata().map_err(|e| ImportError::io(path, e))?;
        if let Some(why) = expect.and_then(|e| e.differs(&meta)) {
            return Err(ImportError::NotAsPlanned { path: path.to_path_buf(), detail: why });
        }
        if !meta.is_file() {
            return Err(ImportError::NotAsPlanned { path: path.to_path_buf(), detail: "not a regular file".into() });
        }
        let (actual, stamp) = (meta.len(), Stamp::of(&meta));
        let end = offset + len;
        if (whole && actual != end) || actual < end {
            return Err(ImportError::Changed {
                path: path.to_path_buf(),
                expected: end,
                found: format!("it is now {actual} bytes"),
            });
        }
        if len >= MAP_MIN {
            if let Ok(map) = Map::new(&file, end as usize, path) {
                let _ = map.advise(memmap2::Advice::Sequential);
                let released = offset as usize / PAGE * PAGE;
                return Ok(Input::Mapped { map, offset, pos: 0, released, file, path: path.to_path_buf(), stamp });
            }
        }
        if offset > 0 {
            file.seek(SeekFrom::Start(offset)).map_err(|e| ImportError::io(path, e))?;
        }
        let buf = SPARE_BUF.with(|s| s.take());
        let end = whole.then_some(len);
        Ok(Input::Read { file, buf, pos: 0, path: path.to_path_buf(), stamp, end, at_eof: false })
    }

    /// The next `len` bytes.
    pub fn next(&mut self, len: usize) -> Result<&[u8], ImportError> {
        match self {
            Input::Mapped { map, offset, pos, released, .. } => {
                let start = (*offset + *pos) as usize;
                // Pages hashed since the last call are dropped from this process (the page cache
                // keeps them); each page is released once.
                let to = start / PAGE * PAGE;
                if to > *released {
                    // SAFETY: DONTNEED on a read-only file map only drops our references; those
                    // bytes are not read again.
                    let _ = unsafe {
                        map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, *released, to - *released)
                    };
                    *released = to;
                }
                *pos += len as u64;
                Ok(&map[start..start + len])
            }
            Input::Read { file, buf, pos, path, end, at_eof, .. } => {
                // The read reaching a whole file's end asks for one byte more: a short read is
                // its end (what `check_end` would otherwise read again for), a full one growth.
                let last = end.is_some_and(|e| *pos + len as u64 == e);
                let want = len + usize::from(last);
                if buf.len() < want {
                    buf.resize(want, 0);
                }
                let mut filled = 0;
                while filled < len {
                    match file.read(&mut buf[filled..want]) {
                        Ok(0) => {
                            return Err(ImportError::Changed {
                                path: path.clone(),
                                expected: *pos + len as u64,
                                found: format!("it ended after {} bytes", *pos + filled as u64),
                            })
                        }
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(ImportError::io(path, e)),
                    }
                }
                if last {
                    if filled > len {
                        return Err(ImportError::Changed {
                            path: path.clone(),
                            expected: *pos + len as u64,
                            found: "it grew".into(),
                        });
                    }
                    // The last read returned less than asked for: the end of a regular file.
                    *at_eof = true;
                }
                *pos += len as u64;
                Ok(&buf[..len])
            }
        }
    }

    /// Checks that the file was not written while it was read (its modification and change
    /// times are those it had when opened): a file rewritten in place, even at the same size,
    /// would otherwise give blocks that do not match their CIDs.
    pub fn check_unchanged(&self) -> Result<(), ImportError> {
        let (file, path, stamp) = match self {
            Input::Mapped { file, path, stamp, .. } | Input::Read { file, path, stamp, .. } => (file, path, stamp),
        };
        let meta = file.metadata().map_err(|e| ImportError::io(path, e))?;
        if let Input::Read { end: Some(end), .. } = self {
            if meta.len() != *end {
                return Err(ImportError::Changed {
                    path: path.clone(),
                    expected: *end,
                    found: format!("it is now {} bytes", meta.len()),
                });
            }
        }
        let now = Stamp::of(&meta);
        if now != *stamp {
            return Err(ImportError::Changed {
                path: path.clone(),
                expected: file.metadata().map(|m| m.len()).unwrap_or(0),
                found: "it was rewritten in place".into(),
            });
        }
        Ok(())
    }

    /// Checks that a whole file still has the size it had when opened plus nothing more.
    pub fn check_end(&mut self, expected: u64) -> Result<(), ImportError> {
        let grew = |path: &Path| ImportError::Changed { path: path.to_path_buf(), expected, found: "it grew".into() };
        match self {
            Input::Mapped { file, path, .. } => {
                let now = file.metadata().map_err(|e| ImportError::io(path, e))?.len();
                if now != expected {
                    return Err(if now > expected {
                        grew(path)
                    } else {
                        ImportError::Changed { path: path.clone(), expected, found: format!("it is now {now} bytes") }
                    });
                }
                Ok(())
            }
            Input::Read { at_eof: true, .. } => Ok(()),
            Input::Read { file, path, .. } => {
                let mut extra = [0u8; 1];
                match file.read(&mut extra) {
                    Ok(0) => Ok(()),
                    Ok(_) => Err(grew(path)),
                    Err(e) => Err(ImportError::io(path, e)),
                }
            }
        }
    }
}

/// An open folder whose files are opened by name relative to it ([`Input::open_in`]): one
/// path walk per folder instead of one per file.
#[derive(Debug)]
pub struct Folder {
    dir: File,
    path: PathBuf,
}

impl Folder {
    /// Opens the folder `path` (`O_PATH`: for looking names up only).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)?;
        Ok(Folder { dir, path: path.to_path_buf() })
    }

    /// The folder's path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the entry `name` of this folder for reading as `open(2)` of its path would
    /// (following a symlink), without blocking on a FIFO.
    fn open_file(&self, name: &std::ffi::OsStr) -> std::io::Result<File> {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::io::{AsRawFd, FromRawFd};
        let c = std::ffi::CString::new(name.as_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL byte in the name"))?;
        // SAFETY: a valid directory descriptor and a NUL-terminated name.
        let fd = unsafe {
            libc::openat(self.dir.as_raw_fd(), c.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC)
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a new descriptor that nothing else owns.
        Ok(unsafe { File::from_raw_fd(fd) })
    }
}

/// Reads `len` bytes of a file from `offset` with positional reads (no seeking, no shared cursor:
/// threads may read one file at once).
#[derive(Debug)]
pub struct RangeReader<'a> {
    file: &'a std::fs::File,
    pos: u64,
    end: u64,
}

impl<'a> RangeReader<'a> {
    /// Bytes `offset..offset + len` of `file`.
    pub fn new(file: &'a std::fs::File, offset: u64, len: u64) -> Self {
        RangeReader { file, pos: offset, end: offset + len }
    }
}

impl std::io::Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = buf.len().min((self.end - self.pos) as usize);
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A small whole file is read, and its end seen, by the one read of its bytes: the end check
    /// then needs no further read.
    #[test]
    fn a_small_whole_file_is_read_and_its_end_seen_in_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        let mut input = Input::open(&p, 0, 10, true, None).unwrap();
        assert_eq!(input.next(10).unwrap(), b"0123456789");
        assert!(matches!(input, Input::Read { at_eof: true, .. }));
        input.check_end(10).unwrap();
        input.check_unchanged().unwrap();
        // A range of the file is not read past its end.
        let mut part = Input::open(&p, 2, 4, false, None).unwrap();
        assert_eq!(part.next(4).unwrap(), b"2345");
        assert!(matches!(part, Input::Read { at_eof: false, .. }));
    }

    /// A file longer than its size when opened (it grew in between) is refused by that read.
    #[test]
    fn growth_is_seen_by_the_read_that_reaches_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        let mut input = Input::open(&p, 0, 10, true, None).unwrap();
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"x").unwrap();
        let err = input.next(10).unwrap_err();
        assert!(err.to_string().contains("it grew"), "{err}");
        // Grown after the read: the size check after reading sees it.
        std::fs::write(&p, b"0123456789").unwrap();
        let mut input = Input::open(&p, 0, 10, true, None).unwrap();
        input.next(10).unwrap();
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"x").unwrap();
        let err = input.check_unchanged().unwrap_err();
        assert!(err.to_string().contains("it is now 11 bytes"), "{err}");
    }

    /// The thread's read buffer is reused from file to file and never shows an earlier file's
    /// bytes.
    #[test]
    fn the_reused_buffer_holds_only_the_files_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (big, small) = (dir.path().join("big"), dir.path().join("small"));
        std::fs::write(&big, vec![7u8; 10_000]).unwrap();
        std::fs::write(&small, b"abc").unwrap();
        let mut a = Input::open(&big, 0, 10_000, true, None).unwrap();
        assert_eq!(a.next(10_000).unwrap(), &vec![7u8; 10_000][..]);
        drop(a);
        assert!(SPARE_BUF.with(|s| {
            let b = s.take();
            let cap = b.capacity();
            s.set(b);
            cap > 10_000
        }));
        let mut b = Input::open(&small, 0, 3, true, None).unwrap();
        assert_eq!(b.next(3).unwrap(), b"abc");
        b.check_end(3).unwrap();
    }

    /// A file opened by name in its open folder gets the checks of one opened by path: the
    /// file must be the one expected, and a FIFO does not block the open.
    #[test]
    fn a_file_opened_in_its_folder_is_checked_as_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        let folder = Folder::open(dir.path()).unwrap();
        let expect = Expected::of(&std::fs::metadata(&p).unwrap());
        let mut input = Input::open_in(Some(&folder), &p, 0, 5, true, Some(&expect)).unwrap();
        assert_eq!(input.next(5).unwrap(), b"hello");
        // Replaced by another file of the same size: not the file planned.
        std::fs::remove_file(&p).unwrap();
        std::fs::write(dir.path().join("g"), b"HELLO").unwrap();
        std::fs::rename(dir.path().join("g"), &p).unwrap();
        let err = Input::open_in(Some(&folder), &p, 0, 5, true, Some(&expect)).err().unwrap();
        assert!(matches!(err, ImportError::NotAsPlanned { .. }), "{err}");
        // A FIFO: refused as not a regular file, without blocking.
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = Input::open_in(Some(&folder), &fifo, 0, 0, true, None).err().unwrap();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        // A missing name is reported with the file's path.
        let err = Input::open_in(Some(&folder), &dir.path().join("none"), 0, 0, true, None).err().unwrap();
        assert!(err.to_string().contains("none"), "{err}");
    }
}
