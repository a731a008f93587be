//! Reading a deal back: its size from its length, its index from the index area (every entry's
//! checksum and placement checked), and the strict check of a deal against its index — every
//! segment's commP recomputed, every other byte zero — in one read of the deal.

use super::entry::Entry;
use super::layout;
use super::pack::read_at_full;
use super::tree::Aggregate;
use super::SegmentError;
use crate::commp::{PieceHasher, PieceInfo};
use crate::event::{Event, Observer};
use std::fs::File;
use std::path::Path;

/// Padded deal size of a deal file of `len` (unpadded) bytes.
pub fn deal_size_of(len: u64) -> Result<u64, SegmentError> {
    let padded = len / 127 * 128;
    if len.is_multiple_of(127) && layout::check_deal_size(padded).is_ok() {
        Ok(padded)
    } else {
        Err(SegmentError::NotADeal { len })
    }
}

/// Reads and checks the index of the deal in `file` (named `path` in errors): every non-zero
/// entry must have a valid checksum, a power-of-two size, an aligned offset, lie before the
/// index area and overlap no other segment.
pub fn read_index(file: &File, path: &Path) -> Result<Aggregate, SegmentError> {
    let io = |source| SegmentError::Io { path: path.to_path_buf(), source };
    let len = file.metadata().map_err(io)?.len();
    let deal = deal_size_of(len)?;
    let start = layout::unpadded(layout::index_start(deal));
    let mut raw = vec![0u8; layout::unpadded(layout::index_size(deal)) as usize];
    let n = read_at_full(file, &mut raw, start).map_err(io)?;
    if n < raw.len() {
        return Err(SegmentError::NotADeal { len: start + n as u64 });
    }
    let padded = super::fr32::pad(&raw);
    let mut entries = Vec::new();
    for (pos, bytes) in padded.chunks_exact(layout::ENTRY_SIZE as usize).enumerate() {
        match Entry::parse(bytes.try_into().expect("64 bytes")) {
            Ok(Some(e)) => entries.push((pos as u64, e)),
            Ok(None) => {}
            Err(fault) => return Err(SegmentError::BadEntry { entry: pos as u64, fault }),
        }
    }
    Aggregate::with_positions(deal, entries)
}

/// A deal checked against its index by [`verify_deal`].
#[derive(Debug, Clone)]
pub struct Verified {
    /// The index.
    pub aggregate: Aggregate,
    /// The deal piece, computed from the checked segments and index (the commP of its bytes).
    pub deal: PieceInfo,
}

/// Bytes read per step.
const STEP: usize = 8 * 127 * 8192;

/// Checks the deal in `file` against its index in one read: each segment's slot hashed (its
/// commP must be its entry's), every byte in no segment and before the index zero. Then the
/// deal's commP is the aggregate's root. Events: `BytesRead` (unpadded bytes of the deal).
pub fn verify_deal(file: &File, path: &Path, observer: &mut dyn Observer) -> Result<Verified, SegmentError> {
    let io = |source| SegmentError::Io { path: path.to_path_buf(), source };
    let aggregate = read_index(file, path)?;
    let deal = aggregate.deal_size();
    let mut by_offset: Vec<(u64, Entry)> = aggregate.entries().to_vec();
    by_offset.sort_by_key(|(_, e)| e.offset);
    let mut buf = vec![0u8; STEP];
    let mut pos = 0u64; // unpadded
    let mut zeros_until = |end: u64, pos: &mut u64, observer: &mut dyn Observer| -> Result<(), SegmentError> {
        while *pos < end {
            let want = buf.len().min((end - *pos) as usize);
            let n = read_at_full(file, &mut buf[..want], *pos).map_err(io)?;
            if n < want {
                return Err(SegmentError::NotADeal { len: *pos + n as u64 });
            }
            if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
                return Err(SegmentError::NonZeroGap { offset: *pos + i as u64 });
            }
            *pos += n as u64;
            observer.event(Event::BytesRead(n as u64));
            if observer.cancelled() {
                return Err(SegmentError::Cancelled);
            }
        }
        Ok(())
    };
    let mut data = vec![0u8; STEP];
    for (entry, e) in &by_offset {
        zeros_until(layout::unpadded(e.offset), &mut pos, observer)?;
        let len = layout::unpadded(e.size);
        let mut hasher = PieceHasher::new();
        let mut done = 0u64;
        while done < len {
            let want = data.len().min((len - done) as usize);
            let n = read_at_full(file, &mut data[..want], pos + done).map_err(io)?;
            if n < want {
                return Err(SegmentError::NotADeal { len: pos + done + n as u64 });
            }
            hasher
                .write_at(done, &data[..n])
                .map_err(|source| SegmentError::Commp { path: path.to_path_buf(), source })?;
            done += n as u64;
            observer.event(Event::BytesRead(n as u64));
            if observer.cancelled() {
                return Err(SegmentError::Cancelled);
            }
        }
        let piece = hasher.finish(len).map_err(|source| SegmentError::Commp { path: path.to_path_buf(), source })?;
        if piece.root != e.root {
            return Err(SegmentError::SegmentMismatch {
                entry: *entry,
                offset: e.offset,
                found: piece.cid_v1().to_string(),
                expected: e.piece().cid_v1().to_string(),
            });
        }
        pos += len;
    }
    zeros_until(layout::unpadded(layout::index_start(deal)), &mut pos, observer)?;
    let deal = aggregate.piece();
    Ok(Verified { aggregate, deal })
}
