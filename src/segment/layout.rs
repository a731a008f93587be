//! Where things go in a deal of padded size `D` (FRC-0058; go-data-segment and data-segment
//! place the same way): pieces in the order given, each at the first offset after the previous
//! piece that is a multiple of its own padded size, never reordered or back-filled; the index
//! area, `64·N(D)` padded bytes, at the end of the deal. All offsets and sizes are padded bytes.

use super::SegmentError;

/// Padded bytes of one index entry.
pub const ENTRY_SIZE: u64 = 64;
/// Smallest deal: a 128-byte piece and the 256-byte index of four entries fit in 512 bytes.
pub const MIN_DEAL_SIZE: u64 = 512;
/// Largest deal: a 64 GiB sector (the largest piece commP accepts).
pub const MAX_DEAL_SIZE: u64 = 64 << 30;
/// Smallest padded piece.
pub const MIN_PIECE_SIZE: u64 = 128;

/// Entries the index of a deal of padded size `deal` holds: `max(4, 2^ceil(log2(deal/2048/64)))`.
pub fn max_entries(deal: u64) -> u64 {
    (deal / 2048 / 64).next_power_of_two().max(4)
}

/// Padded bytes of the index area: `64·N(D)`.
pub fn index_size(deal: u64) -> u64 {
    ENTRY_SIZE * max_entries(deal)
}

/// Padded offset of the index area: `D − 64·N(D)`.
pub fn index_start(deal: u64) -> u64 {
    deal - index_size(deal)
}

/// Unpadded bytes of a padded size or offset that is a multiple of 128: `p·127/128`.
pub fn unpadded(padded: u64) -> u64 {
    padded / 128 * 127
}

/// Fails unless `deal` is a power of two from [`MIN_DEAL_SIZE`] to [`MAX_DEAL_SIZE`].
pub fn check_deal_size(deal: u64) -> Result<(), SegmentError> {
    if deal.is_power_of_two() && (MIN_DEAL_SIZE..=MAX_DEAL_SIZE).contains(&deal) {
        Ok(())
    } else {
        Err(SegmentError::DealSize { size: deal })
    }
}

/// Padded offsets of pieces of padded sizes `sizes` (each a power of two ≥ 128) placed in
/// order, and the end of the last one.
pub fn offsets(sizes: &[u64]) -> (Vec<u64>, u64) {
    let mut end = 0u64;
    let offsets = sizes
        .iter()
        .map(|&s| {
            debug_assert!(s.is_power_of_two() && s >= MIN_PIECE_SIZE);
            let off = end.div_ceil(s) * s;
            end = off + s;
            off
        })
        .collect();
    (offsets, end)
}

/// Whether `count` pieces ending at padded offset `end` fit a deal of padded size `deal` with
/// its index.
pub fn fits(count: u64, end: u64, deal: u64) -> bool {
    count <= max_entries(deal) && end.checked_add(index_size(deal)).is_some_and(|e| e <= deal)
}

/// The smallest deal size (a power of two up to [`MAX_DEAL_SIZE`]) that holds `count` pieces
/// ending at `end`, or `None`.
pub fn smallest_deal(count: u64, end: u64) -> Option<u64> {
    (9..=MAX_DEAL_SIZE.trailing_zeros()).map(|k| 1u64 << k).find(|&d| fits(count, end, d))
}

/// The padded offsets of pieces of padded sizes `sizes` in a deal of padded size `deal`; fails
/// if the deal cannot hold them and their index, saying how much is missing.
pub fn place(sizes: &[u64], deal: u64) -> Result<Vec<u64>, SegmentError> {
    check_deal_size(deal)?;
    if sizes.is_empty() {
        return Err(SegmentError::NoPieces);
    }
    if let Some(&s) = sizes.iter().find(|&&s| !s.is_power_of_two() || !(MIN_PIECE_SIZE..=deal).contains(&s)) {
        return Err(SegmentError::PieceSize { size: s, deal });
    }
    let (offsets, end) = offsets(sizes);
    let count = sizes.len() as u64;
    let smallest = smallest_deal(count, end);
    if count > max_entries(deal) {
        return Err(SegmentError::TooManyPieces { count, entries: max_entries(deal), deal, smallest });
    }
    let need = end + index_size(deal);
    if need > deal {
        return Err(SegmentError::TooSmall { deal, end, index: index_size(deal), missing: need - deal, smallest });
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_area_matches_the_reference_table() {
        // data-segments.md §2.2.
        for (d, n, start) in [
            (512u64, 4u64, 256u64),
            (4 << 10, 4, 3840),
            (1 << 20, 8, 1_048_064),
            (8 << 20, 64, 8_384_512),
            (1 << 30, 8192, 1_073_217_536),
            (32 << 30, 262_144, 34_342_961_152),
            (64 << 30, 524_288, 68_685_922_304),
        ] {
            assert_eq!(max_entries(d), n, "{d}");
            assert_eq!(index_start(d), start, "{d}");
        }
        assert_eq!(unpadded(index_start(1 << 20)), 1_039_876);
        assert_eq!(unpadded(index_start(64 << 30)), 68_149_313_536);
    }

    #[test]
    fn placement_aligns_each_piece_to_its_size_in_order() {
        // A1 and A2 of data-segments.md §7.
        let a1 = place(&[131_072, 1_048_576, 524_288, 128], 8 << 20).unwrap();
        assert_eq!(a1, [0, 1_048_576, 2_097_152, 2_621_440]);
        let a2 = place(&[1_048_576, 524_288, 131_072, 128], 8 << 20).unwrap();
        assert_eq!(a2, [0, 1_048_576, 1_572_864, 1_703_936]);
        assert_eq!(place(&[128, 256, 128], 4096).unwrap(), [0, 256, 512]);
    }

    #[test]
    fn a_deal_too_small_is_refused_with_what_is_missing() {
        // go-data-segment TestTwoPieces: 128 KiB + 512 KiB into 1 MiB leaves no room for the index.
        match place(&[128 << 10, 512 << 10], 1 << 20) {
            Err(SegmentError::TooSmall { missing, index, smallest, .. }) => {
                assert_eq!((missing, index, smallest), (512, 512, Some(2 << 20)));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            place(&[128; 5], 512),
            Err(SegmentError::TooManyPieces { count: 5, entries: 4, smallest: Some(0x10_0000), .. })
        ));
        assert!(matches!(place(&[128], 1000), Err(SegmentError::DealSize { size: 1000 })));
        assert!(matches!(place(&[1024], 512), Err(SegmentError::PieceSize { .. })));
        assert!(matches!(place(&[], 512), Err(SegmentError::NoPieces)));
    }

    #[test]
    fn the_smallest_deal_reserves_the_whole_index() {
        // §2.5: end = 8 MiB − 1 KiB needs 16 MiB (8 MiB would need a 4 KiB index).
        assert_eq!(smallest_deal(1, (8 << 20) - 1024), Some(16 << 20));
        assert_eq!(smallest_deal(1, 128), Some(512));
        assert_eq!(smallest_deal(1, MAX_DEAL_SIZE), None);
    }
}
