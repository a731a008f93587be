//! Writing a deal: each input read once, its bytes copied to their place in the deal and hashed
//! (its commP) in the same pass; the index written last. The deal's commP is the aggregate's
//! root: each segment's slot in the deal holds exactly its piece (payload, then zeros up to the
//! slot's end, quad-aligned), so its subtree root is the piece's commP, the gaps are zero
//! subtrees and the index area hashes to the index entries — no byte is hashed twice.

use super::entry::Entry;
use super::layout;
use super::tree::Aggregate;
use super::write::{DealWriter, WriteMode};
use super::SegmentError;
use crate::commp::{self, PieceHasher, PieceInfo};
use crate::event::{Event, Observer};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A deal written (or computed) by [`pack`].
#[derive(Debug, Clone)]
pub struct Packed {
    /// The index: each input's entry, in input order.
    pub aggregate: Aggregate,
    /// The deal piece: root, padded size `D`, `D·127/128` payload bytes.
    pub deal: PieceInfo,
    /// Each input's piece (with its payload size, for the piece CID v2).
    pub pieces: Vec<PieceInfo>,
    /// Whether the deal was written with direct I/O to the end (false when not written, written
    /// buffered by request, or the file system refused direct I/O).
    pub direct: bool,
}

/// Where and how [`pack`] writes a deal.
#[derive(Debug, Clone, Copy)]
pub struct DealOut<'a> {
    /// The file written: empty (a new file), as the deal is written over holes.
    pub file: &'a File,
    /// Its name in errors.
    pub path: &'a Path,
    /// Direct or buffered writes.
    pub mode: WriteMode,
}

impl<'a> DealOut<'a> {
    /// `file` (named `path` in errors), written with direct I/O where the file system allows.
    pub fn new(file: &'a File, path: &'a Path) -> Self {
        DealOut { file, path, mode: WriteMode::Direct }
    }

    /// The same, written in `mode`.
    pub fn with_mode(self, mode: WriteMode) -> Self {
        DealOut { mode, ..self }
    }
}

/// Bytes read, copied and hashed per step of a small (read) input: 8 commP units.
const STEP: usize = 8 * 127 * 8192;

/// Bytes hashed per step of a mapped input: 64 commP units (about 64 MiB), as `commp` hashes a
/// mapped file (enough parallel work for many cores, no copy into buffers).
const MAP_STEP: usize = 64 * 127 * 8192;

/// Inputs smaller than this are read, larger ones mapped.
const MAP_MIN: u64 = 1 << 20;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SegmentError + '_ {
    move |source| SegmentError::Io { path: path.to_path_buf(), source }
}

/// Packs `inputs`, in this order, into a deal of padded size `deal_size` written to `out` (its
/// unpadded bytes, `D·127/128`, the gaps left as holes; with direct I/O where the file system
/// allows, see [`super::write`]), or only
/// computes the deal when `out` is `None`. Fails before reading anything if the deal cannot
/// hold the inputs and their index. Events: `FileStarted`, `BytesRead`.
pub fn pack(
    inputs: &[PathBuf],
    deal_size: u64,
    out: Option<DealOut<'_>>,
    observer: &mut dyn Observer,
) -> Result<Packed, SegmentError> {
    pack_vouched(inputs, &[], deal_size, out, observer)
}

/// [`pack`], taking the commP roots in `vouched` (by input; `None` or missing: hashed) on the
/// caller's word: those inputs are only copied, not hashed, and the deal's piece CID is right
/// only if the roots are (`verify_deal` checks a deal against its index later).
pub fn pack_vouched(
    inputs: &[PathBuf],
    vouched: &[Option<[u8; 32]>],
    deal_size: u64,
    out: Option<DealOut<'_>>,
    observer: &mut dyn Observer,
) -> Result<Packed, SegmentError> {
    pack_with(inputs, vouched, None, deal_size, out, observer)
}

/// [`pack`], each input in a slot of the padded size `sizes` gives it (a power of two at least
/// its own piece's: a piece padded to a minimum piece size, its root `PieceInfo::pad_to`'s).
///
/// # Panics
/// If `sizes` does not give one size per input.
pub fn pack_sized(
    inputs: &[PathBuf],
    sizes: &[u64],
    deal_size: u64,
    out: Option<DealOut<'_>>,
    observer: &mut dyn Observer,
) -> Result<Packed, SegmentError> {
    pack_with(inputs, &[], Some(sizes), deal_size, out, observer)
}

fn pack_with(
    inputs: &[PathBuf],
    vouched: &[Option<[u8; 32]>],
    slots: Option<&[u64]>,
    deal_size: u64,
    out: Option<DealOut<'_>>,
    observer: &mut dyn Observer,
) -> Result<Packed, SegmentError> {
    let mut files = Vec::with_capacity(inputs.len());
    for path in inputs {
        let file = File::open(path).map_err(io_err(path))?;
        let meta = file.metadata().map_err(io_err(path))?;
        if !meta.is_file() {
            return Err(SegmentError::NotAFile(path.clone()));
        }
        commp::check_payload_size(meta.len()).map_err(|source| SegmentError::Commp { path: path.clone(), source })?;
        files.push((file, meta.len()));
    }
    let mut sizes: Vec<u64> = files.iter().map(|(_, len)| commp::padded_piece_size(*len)).collect();
    if let Some(slots) = slots {
        assert_eq!(slots.len(), sizes.len(), "one slot size per input");
        for (natural, &slot) in sizes.iter_mut().zip(slots) {
            if !slot.is_power_of_two() || slot < *natural {
                return Err(SegmentError::PieceSize { size: slot, deal: deal_size });
            }
            *natural = slot;
        }
    }
    let offsets = layout::place(&sizes, deal_size)?;
    let deal_len = layout::unpadded(deal_size);
    // The file grows as it is written (gaps left as holes); `finish` sets its exact size.
    let mut writer = out.map(|o| (DealWriter::new(o.file, o.mode), o.path));
    let mut pieces = Vec::with_capacity(inputs.len());
    for (i, ((path, (file, len)), offset)) in inputs.iter().zip(&files).zip(&offsets).enumerate() {
        observer.event(Event::FileStarted { path: path.clone(), size: *len });
        let dest = writer.as_mut().map(|(w, p)| (w, *p, layout::unpadded(*offset)));
        let root = vouched.get(i).copied().flatten();
        let piece = copy_and_hash(file, path, *len, dest, root, observer)?;
        // The rest of a larger slot is zeros (a hole): its root is the padded piece's.
        pieces.push(piece.pad_to(sizes[i]));
    }
    let entries =
        pieces.iter().zip(&offsets).map(|(p, &offset)| Entry { root: p.root, offset, size: p.padded_size }).collect();
    let aggregate = Aggregate::new(deal_size, entries)?;
    let mut direct = false;
    if let Some((w, p)) = writer.as_mut() {
        let at = layout::unpadded(layout::index_start(deal_size));
        w.write_at(at, &aggregate.index_unpadded()).map_err(io_err(p))?;
        w.finish(deal_len).map_err(io_err(p))?;
        direct = w.is_direct();
    }
    let deal = aggregate.piece();
    Ok(Packed { aggregate, deal, pieces, direct })
}

/// Reads `file` (`len` bytes) once: each step is hashed (unless its root is `vouched`) and
/// written to `dest` (writer, path, unpadded offset) — by a writer thread a few steps behind the
/// hasher for a mapped input, in turn for a small one. Returns the input's piece.
fn copy_and_hash(
    file: &File,
    path: &Path,
    len: u64,
    mut dest: Option<(&mut DealWriter<'_>, &Path, u64)>,
    vouched: Option<[u8; 32]>,
    observer: &mut dyn Observer,
) -> Result<PieceInfo, SegmentError> {
    if let (Some(root), None) = (vouched, dest.as_ref()) {
        return Ok(vouched_piece(root, len)); // nothing to read
    }
    let mut hasher = vouched.is_none().then(PieceHasher::new);
    let commp_err = |source| SegmentError::Commp { path: path.to_path_buf(), source };
    let map = if len >= MAP_MIN {
        usize::try_from(len).ok().and_then(|n| crate::importer::input::Map::new(file, n, path).ok())
    } else {
        None
    };
    if let Some(map) = map {
        let _ = map.advise(memmap2::Advice::Sequential);
        let map = &map;
        let release = |off: usize, end: usize| {
            // SAFETY: DONTNEED on a read-only file mapping only drops our page references; the
            // next access would re-read the file, and this range is not accessed again.
            let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, off, end - off) };
        };
        // The writer follows the hasher a few steps behind, on its own thread; a step is
        // released once both are done with it (the hasher has finished step i when it hands
        // step i + 1 to the writer).
        std::thread::scope(|s| -> Result<(), SegmentError> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, usize)>(2);
            let writer = dest.map(|(f, p, at)| {
                s.spawn(move || -> Result<(), SegmentError> {
                    let mut prev = None;
                    for (off, end) in rx {
                        if let Some((o, e)) = prev.replace((off, end)) {
                            release(o, e);
                        }
                        f.write_at(at + off as u64, &map[off..end]).map_err(io_err(p))?;
                    }
                    if let Some((o, e)) = prev {
                        release(o, e);
                    }
                    Ok(())
                })
            });
            let mut result = Ok(());
            let mut off = 0usize;
            while off < map.len() {
                let end = (off + MAP_STEP).min(map.len());
                if observer.cancelled() {
                    result = Err(SegmentError::Cancelled);
                    break;
                }
                if writer.is_some() && tx.send((off, end)).is_err() {
                    break; // the writer failed: its error comes from join
                }
                if let Some(h) = hasher.as_mut() {
                    if let Err(e) = h.write_at(off as u64, &map[off..end]) {
                        result = Err(commp_err(e));
                        break;
                    }
                }
                if writer.is_none() {
                    release(off, end);
                }
                observer.event(Event::BytesRead((end - off) as u64));
                off = end;
            }
            drop(tx);
            let written = writer.map_or(Ok(()), |w| w.join().expect("deal writer panicked"));
            result.and(written)
        })?;
    } else {
        let mut buf = vec![0u8; STEP.min(len as usize).max(1)];
        let mut pos = 0u64;
        while pos < len {
            if observer.cancelled() {
                return Err(SegmentError::Cancelled);
            }
            let want = buf.len().min((len - pos) as usize);
            let n = read_at_full(file, &mut buf[..want], pos).map_err(io_err(path))?;
            if n < want {
                return Err(SegmentError::Changed { path: path.to_path_buf(), expected: len, found: pos + n as u64 });
            }
            let bytes = &buf[..n];
            if let Some((f, p, at)) = dest.as_mut() {
                f.write_at(*at + pos, bytes).map_err(io_err(p))?;
            }
            if let Some(h) = hasher.as_mut() {
                h.write_at(pos, bytes).map_err(commp_err)?;
            }
            observer.event(Event::BytesRead(n as u64));
            pos += n as u64;
        }
    }
    let now = file.metadata().map_err(io_err(path))?.len();
    if now != len {
        return Err(SegmentError::Changed { path: path.to_path_buf(), expected: len, found: now });
    }
    match (hasher, vouched) {
        (Some(h), _) => h.finish(len).map_err(commp_err),
        (None, root) => Ok(vouched_piece(root.expect("vouched root"), len)),
    }
}

/// The piece of a payload of `len` bytes whose root the caller vouches for.
fn vouched_piece(root: [u8; 32], len: u64) -> PieceInfo {
    let padded = commp::padded_piece_size(len);
    PieceInfo { root, payload_size: len, padded_size: padded, unpadded_size: commp::unpadded_piece_size(padded) }
}

/// Reads until `buf` is full or the file ends; the bytes read.
pub(crate) fn read_at_full(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
