//! One pass from an input tree to a CAR and its piece commitment: the engine behind
//! `carload prepare` and `carload car`, for the CLI and the terminal UI alike.

use crate::commp::{PieceHasher, PieceInfo, SharedFeed};
use crate::event::Observer;
use crate::importer::layout::predict_car_size;
use crate::importer::{write_car, Built, Entry, ImportError};
use crate::profile::Profile;
use crate::sink::{drain_to, ChannelSink, OffsetWrite, RecordingSink, ReplaySink, TeeWriter};
use std::fs::File;
use std::io::{self, Write};

/// What a prepare run produced.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The DAG and CAR written.
    pub built: Built,
    /// The piece commitment of the CAR, when asked for.
    pub piece: Option<PieceInfo>,
}

impl OffsetWrite for SharedFeed {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.write_shared(offset, std::sync::Arc::new(data.to_vec())).map(drop).map_err(io::Error::other)
    }
    fn write_shared(&mut self, offset: u64, buf: std::sync::Arc<Vec<u8>>) -> io::Result<Vec<std::sync::Arc<Vec<u8>>>> {
        SharedFeed::write_shared(self, offset, buf).map_err(io::Error::other)
    }
}

/// Fails before any work when the predicted CAR of `entry` exceeds the largest piece
/// (64 GiB sector capacity). The prediction counts repeated blocks each time, so it is an upper
/// bound; inputs that only fit thanks to repeated content are refused too (documented).
pub fn check_fits_piece(entry: &Entry, profile: &Profile) -> Result<u64, ImportError> {
    let predicted = predict_car_size(entry, profile);
    crate::commp::check_payload_size(predicted).map_err(|e| ImportError::Piece(e.to_string()))?;
    Ok(predicted)
}

/// Writes the CAR of `entry` into `file` in place (one read of the input), computing commP on
/// the way when `with_commp`.
pub fn prepare_to_file(
    entry: &Entry,
    profile: &Profile,
    file: &File,
    with_commp: bool,
    observer: &mut dyn Observer,
) -> Result<Prepared, ImportError> {
    // Whole units of each buffer are hashed as separate tasks on the thread pool, so the pool
    // never waits for a buffer's last unit (see [`SharedFeed`]).
    let mut hasher = with_commp.then(SharedFeed::new);
    // Reserve the predicted CAR size up front: one allocation instead of one per write, and a
    // full disk is reported before the work. (Trimmed to the written size at the end.)
    let predicted = predict_car_size(entry, profile);
    preallocate(file, predicted).map_err(ImportError::Output)?;
    // The importer (reading, leaf hashing) runs here; writing and commP run on a second thread,
    // fed a few staged 8 MiB buffers at a time.
    let (built, written) = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel(3);
        let (spare_tx, spare_rx) = std::sync::mpsc::channel();
        let tee = hasher.as_mut().map(|h| h as &mut (dyn OffsetWrite + Send));
        // Written with direct I/O where that saves the kernel's page-cache copy (a disk).
        let writer = s.spawn(move || drain_to(rx, spare_tx, file, true, tee));
        let mut sink = ChannelSink::new(tx, spare_rx);
        let built = write_car(entry, profile, &mut sink, observer);
        let sent = sink.finish();
        let written = writer.join().expect("writer thread does not panic");
        (built.and_then(|b| sent.map(|_| b).map_err(ImportError::Output)), written)
    });
    // A writer failure explains a send failure, so it is reported first.
    written.map_err(ImportError::Output)?;
    let built = built?;
    file.set_len(built.car_size).map_err(ImportError::Output)?;
    let piece = match hasher {
        Some(h) => Some(h.finish(built.car_size).map_err(|e| ImportError::Piece(e.to_string()))?),
        None => None,
    };
    Ok(Prepared { built, piece })
}

/// Makes room for `len` bytes in `file`: fails up front (ENOSPC) when the file system has less
/// free space, and reserves the blocks with `posix_fallocate` where that is cheap. On tmpfs
/// reserving means allocating every page before any work starts (0.3 s per GiB measured, all of
/// it before the pipeline starts), so there only the free space is checked.
#[allow(clippy::unnecessary_cast)] // libc's field types differ between targets
fn preallocate(file: &File, len: u64) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    if len == 0 {
        return Ok(());
    }
    let fd = file.as_raw_fd();
    // SAFETY: a plain syscall on an open descriptor, writing into a zeroed struct we own.
    let vfs = unsafe {
        let mut vfs: libc::statvfs = std::mem::zeroed();
        (libc::fstatvfs(fd, &mut vfs) == 0).then_some(vfs)
    };
    // Some file systems (FUSE, network) report no sizes at all; only a known size is checked.
    if let Some(v) = vfs.filter(|v| v.f_blocks > 0) {
        // Root may also use the blocks reserved for it (ext4 keeps ~5 %).
        // SAFETY: geteuid has no preconditions.
        let blocks = if unsafe { libc::geteuid() } == 0 { v.f_bfree } else { v.f_bavail };
        let free = (blocks as u64).saturating_mul(v.f_frsize as u64);
        if free < len {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
    }
    if crate::blockwrite::on_tmpfs(file) {
        return Ok(());
    }
    // SAFETY: a plain syscall on an open descriptor.
    let rc = unsafe { libc::posix_fallocate(fd, 0, len as libc::off_t) };
    match rc {
        0 | libc::EOPNOTSUPP | libc::EINVAL => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Streams the CAR of `entry` to `out` strictly in order. A pipe cannot seek, so this reads the
/// input twice: the first pass computes the internal nodes (kept in memory, about 1/5000 of the
/// data), the second writes. A file that changes between the passes is an error.
pub fn prepare_to_writer(
    entry: &Entry,
    profile: &Profile,
    out: &mut dyn Write,
    with_commp: bool,
    observer: &mut dyn Observer,
) -> Result<Prepared, ImportError> {
    let mut record = RecordingSink::default();
    write_car(entry, profile, &mut record, &mut crate::event::Ignore)?;
    let mut hasher = with_commp.then(PieceHasher::new);
    let built = {
        let mut tee = TeeWriter::new(out, hasher.as_mut());
        let mut sink = ReplaySink::new(record, &mut tee);
        write_car(entry, profile, &mut sink, observer)?
    };
    out.flush().map_err(ImportError::Output)?;
    let piece = match hasher {
        Some(h) => Some(h.finish(built.car_size).map_err(|e| ImportError::Piece(e.to_string()))?),
        None => None,
    };
    Ok(Prepared { built, piece })
}

/// What preparing a DAG held by an IPFS node produced.
#[derive(Debug, Clone)]
pub struct FromNode {
    /// The root CID, as given.
    pub root: cid::Cid,
    /// Bytes of CAR written.
    pub car_size: u64,
    /// Blocks written.
    pub blocks: u64,
    /// The piece commitment, when asked for.
    pub piece: Option<PieceInfo>,
}

/// Streams the CAR of the DAG under `root`, fetched from an IPFS node, to `out` (every block
/// verified against its CID), computing commP on the way when `with_commp`.
pub fn prepare_from_node(
    fetcher: &crate::ipfs::Fetcher,
    root: &cid::Cid,
    out: &mut dyn Write,
    with_commp: bool,
) -> Result<FromNode, crate::batch::BatchError> {
    use crate::batch::BatchError;
    let mut hasher = with_commp.then(PieceHasher::new);
    let (car_size, blocks) = {
        let mut tee = TeeWriter::new(out, hasher.as_mut());
        let stats = crate::ipfs::export_car(fetcher, root, &mut tee)?;
        tee.flush().map_err(BatchError::Output)?;
        (tee.written(), stats.blocks)
    };
    let piece = match hasher {
        Some(h) => Some(h.finish(car_size).map_err(|e| BatchError::Piece(e.to_string()))?),
        None => None,
    };
    Ok(FromNode { root: *root, car_size, blocks, piece })
}
