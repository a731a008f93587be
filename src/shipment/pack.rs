//! Packing entries into batches whose CAR bound fits a piece.
//!
//! Every entry (file or file part) costs its exact CAR sections ([`EntryCost`]); a batch of
//! entries costs their sum plus [`overhead_bound`]. Files whose single-entry batch would not fit
//! are first cut at chunk-aligned offsets into parts of the largest size that fits alone, and a
//! remainder; parts are then packed like any other file (small files fill the space a part leaves).
//!
//! * [`Pack::BestFit`]: best-fit decreasing. Entries are taken largest first and each goes into
//!   the fullest batch it still fits (a batch's free space is kept in an ordered set, so this is
//!   `O(n log b)`); batches are then ordered fullest first.
//! * [`Pack::KeepFolders`]: the files directly inside one folder form a group placed as a unit
//!   (best fit, largest groups first); a group too large for one batch fills fresh batches in walk
//!   order and its tail is placed as a group again. Batches keep their creation order.

use super::file::Part;
use super::overhead::{overhead_bound, EntryCost};
use super::plan::Pack;
use crate::profile::Profile;
use std::collections::{BTreeMap, BTreeSet};

/// One entry to pack: a file or a part of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// Index of the file in the input list.
    pub file: usize,
    /// The byte range, for a part.
    pub part: Option<Part>,
    /// Its cost.
    pub cost: EntryCost,
}

/// A packed batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bin {
    /// Entries, in input order.
    pub items: Vec<Item>,
    own: u64,
    dag_pb: u64,
}

impl Bin {
    /// Upper bound on the batch's CAR size.
    pub fn bound(&self) -> u64 {
        self.own + overhead_bound(self.items.len() as u64, self.dag_pb)
    }

    /// A batch holding `items` (kept in the order given).
    pub fn from_items(items: Vec<Item>) -> Bin {
        let mut bin = Bin::default();
        for it in items {
            bin.push(it);
        }
        bin
    }

    /// The bound the batch would have with `more` entries added.
    pub fn bound_with(&self, more: &[Item]) -> u64 {
        let own: u64 = more.iter().map(|i| i.cost.car_bytes).sum();
        let dag_pb = more.iter().filter(|i| i.cost.dag_pb_root).count() as u64;
        self.own + own + overhead_bound((self.items.len() + more.len()) as u64, self.dag_pb + dag_pb)
    }

    /// Adds an entry at the end.
    pub fn push(&mut self, item: Item) {
        self.own += item.cost.car_bytes;
        self.dag_pb += item.cost.dag_pb_root as u64;
        self.items.push(item);
    }
}

/// Errors packing.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PackError {
    /// Not even one chunk fits the capacity.
    #[error(
        "a batch capacity of {capacity} bytes cannot hold even one chunk (a single-entry batch needs {needed} bytes)"
    )]
    TooSmall {
        /// The capacity.
        capacity: u64,
        /// Bytes a one-chunk batch needs.
        needed: u64,
    },
    /// More entries than 32-bit IDs can number.
    #[error("{entries} files and file parts: at most 4,294,967,295 can be planned at once")]
    TooMany {
        /// Files and parts.
        entries: u64,
    },
}

/// The largest chunk-aligned part length whose single-entry batch fits `capacity`.
fn max_part_len(size: u64, profile: &Profile, capacity: u64) -> Result<u64, PackError> {
    let chunk = profile.chunk_size as u64;
    let alone = |len: u64| EntryCost::of_file(len, profile).car_bytes + overhead_bound(1, 1);
    if alone(chunk) > capacity {
        return Err(PackError::TooSmall { capacity, needed: alone(chunk) });
    }
    let (mut lo, mut hi) = (1u64, size.div_ceil(chunk));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if alone(mid * chunk) <= capacity {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(lo * chunk)
}

/// Packs files of the given `(sizes, folder keys)` into batches whose bound is at most
/// `capacity`. `sizes[i]` is file `i`'s size; `folders[i]` groups files for
/// [`Pack::KeepFolders`] (ignored by best fit).
pub fn pack(
    sizes: &[u64],
    folders: &[u32],
    profile: &Profile,
    capacity: u64,
    mode: Pack,
) -> Result<Vec<Bin>, PackError> {
    Ok(top_up(&[], sizes, folders, profile, capacity, mode)?.fresh)
}

/// What [`top_up`] did: the entries added to each open batch, and the new batches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopUp {
    /// Per open batch (in the order given), the entries added to it (`Item::file` indexes the
    /// sizes), in input order.
    pub added: Vec<Vec<Item>>,
    /// New batches, as [`pack`] orders them.
    pub fresh: Vec<Bin>,
}

/// Packs files as [`pack`] does, but first into the `open` batches (their free space is taken
/// before any new batch is opened; their entries are never moved). With no open batch this is
/// exactly [`pack`].
pub fn top_up(
    open: &[Bin],
    sizes: &[u64],
    folders: &[u32],
    profile: &Profile,
    capacity: u64,
    mode: Pack,
) -> Result<TopUp, PackError> {
    let seeds: Vec<Slots> = open
        .iter()
        .map(|b| Slots { held: b.items.len() as u64, own: b.own, dag_pb: b.dag_pb, ids: Vec::new() })
        .collect();
    let packing = pack_ids(seeds, sizes.len(), &|i| sizes[i], folders, profile, capacity, mode)?;
    let item = |id: u32| {
        let file = packing.file(id);
        let part = packing.part(id);
        let cost = EntryCost::of_file(part.map_or(sizes[file], |p| p.len), profile);
        Item { file, part, cost }
    };
    use rayon::prelude::*;
    let (seeds, fresh) = packing.bins.split_at(open.len());
    let added = seeds.iter().map(|b| b.ids.iter().map(|&id| item(id)).collect()).collect();
    let fresh = fresh
        .par_iter()
        .map(|b| {
            let bin = Bin { items: b.ids.iter().map(|&id| item(id)).collect(), own: b.own, dag_pb: b.dag_pb };
            debug_assert_eq!(bin.bound(), b.bound());
            bin
        })
        .collect();
    Ok(TopUp { added, fresh })
}

/// A batch as [`pack_ids`] packs it: its entries as IDs (see [`Packing`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slots {
    /// The entries packed into it, in input order (for an open batch: the ones added).
    pub ids: Vec<u32>,
    /// Entries it held before (an open batch's).
    held: u64,
    own: u64,
    dag_pb: u64,
}

impl Slots {
    /// Upper bound on the batch's CAR size.
    pub fn bound(&self) -> u64 {
        self.own + overhead_bound(self.count(), self.dag_pb)
    }

    fn count(&self) -> u64 {
        self.held + self.ids.len() as u64
    }

    /// Whether adding entries of total `cost`, `count` of them with `dag_pb` dag-pb roots, keeps
    /// the bound within `capacity`.
    fn fits(&self, cost: u64, count: u64, dag_pb: u64, capacity: u64) -> bool {
        self.own + cost + overhead_bound(self.count() + count, self.dag_pb + dag_pb) <= capacity
    }

    /// Free space for one more entry of any kind.
    fn free_for_one(&self, capacity: u64) -> u64 {
        capacity.saturating_sub(self.own + overhead_bound(self.count() + 1, self.dag_pb + 1))
    }

    fn push(&mut self, id: u32, cost: u64) {
        self.own += cost >> 1;
        self.dag_pb += cost & 1;
        self.ids.push(id);
    }
}

/// The result of [`pack_ids`]: batches of entry IDs. ID `i` below the number of files is file
/// `i` whole; the IDs above it are the parts of the files too large for one batch, in file and
/// offset order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packing {
    files: u32,
    parts: Vec<(u32, Part)>,
    /// The open batches given (with the entries added to each), then the new ones.
    pub bins: Vec<Slots>,
}

impl Packing {
    /// The file entry `id` is (of).
    pub fn file(&self, id: u32) -> usize {
        match id.checked_sub(self.files) {
            Some(k) => self.parts[k as usize].0 as usize,
            None => id as usize,
        }
    }

    /// The byte range of entry `id`, if it is a part.
    pub fn part(&self, id: u32) -> Option<Part> {
        id.checked_sub(self.files).map(|k| self.parts[k as usize].1)
    }

    /// Heap bytes held (capacities).
    pub fn heap_bytes(&self) -> usize {
        self.parts.capacity() * std::mem::size_of::<(u32, Part)>()
            + self.bins.capacity() * std::mem::size_of::<Slots>()
            + self.bins.iter().map(|b| b.ids.capacity() * 4).sum::<usize>()
    }
}

/// Bytes [`pack_ids`] holds per entry besides its result, at most: best fit's sort key (16);
/// keep-folders holds 12 (a cost and an ID in its folder's group).
pub const PACK_BYTES_PER_ENTRY: usize = std::mem::size_of::<u128>();

/// [`top_up`] on entry IDs, the compact form `plan` uses (issue #23): `count` files of the
/// sizes `size(i)` (in input order) packed first into the `open` batches (each given by its
/// bound's terms and no IDs), then into new ones. Best fit holds one 16-byte sort key an entry
/// while it packs, keep-folders an 8-byte cost and a 4-byte ID; a batch holds 4 bytes an entry.
pub fn pack_ids(
    open: Vec<Slots>,
    count: usize,
    size: &(dyn Fn(usize) -> u64 + Sync),
    folders: &[u32],
    profile: &Profile,
    capacity: u64,
    mode: Pack,
) -> Result<Packing, PackError> {
    use rayon::prelude::*;
    let one = overhead_bound(1, 1);
    let files = u32::try_from(count).map_err(|_| PackError::TooMany { entries: count as u64 })?;
    // An entry's cost, packed: its CAR bytes, shifted, and whether its root is dag-pb (the low
    // bit). `None` for a file too large for a batch alone: it is cut into parts.
    let packed = |c: EntryCost| (c.car_bytes << 1) | c.dag_pb_root as u64;
    let whole = |i: usize| {
        let c = EntryCost::of_file(size(i), profile);
        (c.car_bytes + one <= capacity && c.car_bytes < 1 << 62).then(|| packed(c))
    };
    // The parts of the files cut, in file and offset order, and their costs.
    let mut parts: Vec<(u32, Part)> = Vec::new();
    let mut part_costs: Vec<u64> = Vec::new();
    let cut = |file: usize, parts: &mut Vec<(u32, Part)>, part_costs: &mut Vec<u64>| -> Result<(), PackError> {
        let size = size(file);
        let len = max_part_len(size, profile, capacity)?;
        let mut offset = 0;
        let full = EntryCost::of_file(len, profile);
        while offset < size {
            let this = len.min(size - offset);
            let cost = if this == len { full } else { EntryCost::of_file(this, profile) };
            parts.push((file as u32, Part { offset, len: this }));
            part_costs.push(packed(cost));
            offset += this;
        }
        Ok(())
    };
    let too_many = |parts: usize| {
        let entries = count as u64 + parts as u64;
        if entries > u32::MAX as u64 {
            return Err(PackError::TooMany { entries });
        }
        Ok(())
    };
    let seeds = open.len();
    let mut bins = match mode {
        Pack::BestFit => {
            // One sort key an entry, nothing else: the cost, the file inverted (equal costs in
            // input order), then the part's rank in its file, whether the file was cut and
            // whether the root is dag-pb. Sorted, taken largest first.
            const CUT: u128 = u128::MAX;
            let key = |cost: u64, file: usize, low: u32| {
                (((cost >> 1) as u128) << 64) | ((!(file as u32) as u128) << 32) | low as u128
            };
            let mut keys: Vec<u128> =
                (0..count).into_par_iter().map(|i| whole(i).map_or(CUT, |c| key(c, i, (c & 1) as u32))).collect();
            for file in 0..count {
                if keys[file] != CUT {
                    continue;
                }
                let first = part_costs.len();
                cut(file, &mut parts, &mut part_costs)?;
                if part_costs.len() - first > 1 << 30 {
                    return Err(PackError::TooMany { entries: count as u64 + part_costs.len() as u64 });
                }
                for (rank, &c) in part_costs[first..].iter().enumerate() {
                    let k = key(c, file, ((rank as u32) << 2) | 2 | (c & 1) as u32);
                    if rank == 0 {
                        keys[file] = k;
                    } else {
                        keys.push(k);
                    }
                }
            }
            too_many(parts.len())?;
            keys.par_sort_unstable();
            best_fit(open, keys, files, &parts, capacity)
        }
        Pack::KeepFolders => {
            const CUT: u64 = u64::MAX;
            let mut costs: Vec<u64> = (0..count).into_par_iter().map(|i| whole(i).unwrap_or(CUT)).collect();
            for (file, &c) in costs.iter().enumerate() {
                if c == CUT {
                    cut(file, &mut parts, &mut part_costs)?;
                }
            }
            too_many(parts.len())?;
            costs.extend_from_slice(&part_costs);
            // The entries in input order: each file whole, or its parts.
            let mut next_part = 0;
            let in_order = (0..files).flat_map(|f| {
                if costs[f as usize] != CUT {
                    return f..f + 1;
                }
                let start = next_part;
                while next_part < parts.len() && parts[next_part].0 == f {
                    next_part += 1;
                }
                files + start as u32..files + next_part as u32
            });
            keep_folders(open, in_order, &costs, &parts, files, folders, capacity)
        }
    };
    let file_of = |id: u32| if id < files { id } else { parts[(id - files) as usize].0 };
    for b in &mut bins {
        b.ids.sort_unstable_by_key(|&id| ((file_of(id) as u64) << 32) | id as u64);
    }
    for b in &mut bins[seeds..] {
        b.ids.shrink_to_fit();
    }
    if mode == Pack::BestFit {
        // Fullest first, so only the last batch is (usually) the underfilled one.
        bins[seeds..].sort_by_cached_key(|b| std::cmp::Reverse(b.bound()));
    }
    Ok(Packing { files, parts, bins })
}

/// Best fit of the entries `keys` (sorted, see [`pack_ids`]) into `bins` (open batches first,
/// then new ones appended), largest first.
fn best_fit(mut bins: Vec<Slots>, mut keys: Vec<u128>, files: u32, parts: &[(u32, Part)], capacity: u64) -> Vec<Slots> {
    let mut free: BTreeSet<(u64, usize)> = (0..bins.len()).map(|i| (bins[i].free_for_one(capacity), i)).collect();
    while let Some(key) = keys.pop() {
        if keys.capacity() > 4096 && keys.len() < keys.capacity() / 4 {
            keys.shrink_to(keys.len() * 2);
        }
        let car_bytes = (key >> 64) as u64;
        let file = !((key >> 32) as u32);
        let low = key as u32;
        let id = match low & 2 {
            0 => file,
            _ => files + parts.partition_point(|p| p.0 < file) as u32 + (low >> 2),
        };
        let found = free.range((car_bytes, 0)..).next().copied();
        let i = match found {
            Some(key) => {
                free.remove(&key);
                key.1
            }
            None => {
                bins.push(Slots::default());
                bins.len() - 1
            }
        };
        bins[i].push(id, (car_bytes << 1) | (low & 1) as u64);
        free.insert((bins[i].free_for_one(capacity), i));
    }
    bins
}

/// Keep-folders packing of the entries `ids` (in input order) into `bins` (open batches first,
/// then new ones appended).
fn keep_folders(
    mut bins: Vec<Slots>,
    ids: impl Iterator<Item = u32>,
    costs: &[u64],
    parts: &[(u32, Part)],
    files: u32,
    folders: &[u32],
    capacity: u64,
) -> Vec<Slots> {
    let mut groups: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for id in ids {
        let file = if id < files { id } else { parts[(id - files) as usize].0 };
        groups.entry(folders[file as usize]).or_default().push(id);
    }
    let mut groups: Vec<Vec<u32>> = groups.into_values().collect();
    let total = |g: &[u32]| g.iter().map(|&id| costs[id as usize] >> 1).sum::<u64>();
    groups.sort_by_cached_key(|g| std::cmp::Reverse(total(g)));
    let mut free: BTreeSet<(u64, usize)> = (0..bins.len()).map(|i| (bins[i].free_for_one(capacity), i)).collect();
    for group in groups {
        let mut rest = &group[..];
        while !rest.is_empty() {
            let cost = total(rest);
            let count = rest.len() as u64;
            let dag_pb = rest.iter().map(|&id| costs[id as usize] & 1).sum::<u64>();
            // Candidates in increasing free space; the first that really fits is the best fit.
            let found = free.range((cost, 0)..).find(|&&(_, b)| bins[b].fits(cost, count, dag_pb, capacity)).copied();
            let i = match found {
                Some(key) => {
                    free.remove(&key);
                    key.1
                }
                None if Slots::default().fits(cost, count, dag_pb, capacity) => {
                    bins.push(Slots::default());
                    bins.len() - 1
                }
                None => {
                    // Too big for one batch: fill a fresh one in walk order, place the tail again.
                    let mut bin = Slots::default();
                    let mut taken = 0;
                    for &id in rest {
                        let c = costs[id as usize];
                        if !bin.ids.is_empty() && !bin.fits(c >> 1, 1, c & 1, capacity) {
                            break;
                        }
                        bin.push(id, c);
                        taken += 1;
                    }
                    rest = &rest[taken..];
                    bins.push(bin);
                    let i = bins.len() - 1;
                    free.insert((bins[i].free_for_one(capacity), i));
                    continue;
                }
            };
            for &id in rest {
                bins[i].push(id, costs[id as usize]);
            }
            rest = &[];
            free.insert((bins[i].free_for_one(capacity), i));
        }
    }
    bins
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(n: usize, seed: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 33) % 300_000
            })
            .collect()
    }

    /// Without open batches, the top-up is exactly `pack` (what `plan` uses), in both modes.
    #[test]
    fn top_up_without_open_batches_is_pack() {
        let p = Profile::default();
        for seed in 0..8 {
            let s = sizes(200, seed);
            let folders: Vec<u32> = (0..s.len() as u32).map(|i| i / 7).collect();
            for mode in [Pack::BestFit, Pack::KeepFolders] {
                let packed = pack(&s, &folders, &p, 1 << 20, mode).unwrap();
                let t = top_up(&[], &s, &folders, &p, 1 << 20, mode).unwrap();
                assert!(t.added.is_empty());
                assert_eq!(t.fresh, packed);
            }
        }
    }

    /// Open batches are filled before any new batch is opened, within the capacity.
    #[test]
    fn top_up_fills_open_batches_first() {
        let p = Profile::default();
        let cap = 1 << 20;
        let s = sizes(40, 3);
        for mode in [Pack::BestFit, Pack::KeepFolders] {
            let first = pack(&s[..1], &[0], &p, cap, mode).unwrap();
            let folders = vec![0; s.len() - 1];
            let t = top_up(&first, &s[1..], &folders, &p, cap, mode).unwrap();
            let mut topped = first[0].clone();
            for it in &t.added[0] {
                topped.push(*it);
            }
            assert!(topped.bound() <= cap);
            assert!(!t.added[0].is_empty(), "{mode:?}");
            let all = t.added[0].len() + t.fresh.iter().map(|b| b.items.len()).sum::<usize>();
            assert_eq!(all, s.len() - 1);
        }
    }

    // The packer on `Item`s as it was before it worked on IDs (issue #23 part 4): the
    // executable reference `pack_ids` must match batch for batch, entry for entry.

    fn fits(b: &Bin, cost: u64, count: u64, dag_pb: u64, capacity: u64) -> bool {
        b.own + cost + overhead_bound(b.items.len() as u64 + count, b.dag_pb + dag_pb) <= capacity
    }

    fn free_for_one(b: &Bin, capacity: u64) -> u64 {
        capacity.saturating_sub(b.own + overhead_bound(b.items.len() as u64 + 1, b.dag_pb + 1))
    }

    fn reference_top_up(
        open: &[Bin],
        sizes: &[u64],
        folders: &[u32],
        profile: &Profile,
        capacity: u64,
        mode: Pack,
    ) -> Result<TopUp, PackError> {
        use rayon::prelude::*;
        let costs: Vec<EntryCost> = sizes.par_iter().map(|&s| EntryCost::of_file(s, profile)).collect();
        let one = overhead_bound(1, 1);
        let mut items = Vec::with_capacity(sizes.len());
        for (file, (&size, &cost)) in sizes.iter().zip(&costs).enumerate() {
            if cost.car_bytes + one <= capacity {
                items.push(Item { file, part: None, cost });
                continue;
            }
            let len = max_part_len(size, profile, capacity)?;
            let mut offset = 0;
            let full = EntryCost::of_file(len, profile);
            while offset < size {
                let this = len.min(size - offset);
                let cost = if this == len { full } else { EntryCost::of_file(this, profile) };
                items.push(Item { file, part: Some(Part { offset, len: this }), cost });
                offset += this;
            }
        }
        drop(costs);
        let seeds: Vec<Bin> = open.to_vec();
        let mut bins = match mode {
            Pack::BestFit => reference_best_fit(seeds, items, capacity),
            Pack::KeepFolders => reference_keep_folders(seeds, items, folders, capacity),
        };
        let mut fresh = bins.split_off(open.len());
        let added = bins
            .into_iter()
            .zip(open)
            .map(|(b, o)| {
                let mut more = b.items[o.items.len()..].to_vec();
                more.sort_by_key(|i| (i.file, i.part));
                more
            })
            .collect();
        for b in &mut fresh {
            b.items.sort_by_key(|i| (i.file, i.part));
            b.items.shrink_to_fit();
        }
        if mode == Pack::BestFit {
            // Fullest first, so only the last batch is (usually) the underfilled one.
            fresh.sort_by_cached_key(|b| std::cmp::Reverse(b.bound()));
        }
        Ok(TopUp { added, fresh })
    }

    /// Best fit of `items` into `bins` (open batches first, then new ones appended).
    fn reference_best_fit(mut bins: Vec<Bin>, mut items: Vec<Item>, capacity: u64) -> Vec<Bin> {
        // Sorted smallest first and taken from the end, so the list shrinks as the bins fill.
        items.sort_by(|a, b| a.cost.car_bytes.cmp(&b.cost.car_bytes).then(b.file.cmp(&a.file)));
        let mut free: BTreeSet<(u64, usize)> = (0..bins.len()).map(|i| (free_for_one(&bins[i], capacity), i)).collect();
        while let Some(item) = items.pop() {
            if items.capacity() > 4096 && items.len() < items.capacity() / 4 {
                items.shrink_to(items.len() * 2);
            }
            let found = free.range((item.cost.car_bytes, 0)..).next().copied();
            let i = match found {
                Some(key) => {
                    free.remove(&key);
                    key.1
                }
                None => {
                    bins.push(Bin::default());
                    bins.len() - 1
                }
            };
            bins[i].push(item);
            free.insert((free_for_one(&bins[i], capacity), i));
        }
        bins
    }

    /// Keep-folders packing of `items` into `bins` (open batches first, then new ones appended).
    fn reference_keep_folders(mut bins: Vec<Bin>, items: Vec<Item>, folders: &[u32], capacity: u64) -> Vec<Bin> {
        let mut groups: BTreeMap<u32, Vec<Item>> = BTreeMap::new();
        for it in items {
            groups.entry(folders[it.file]).or_default().push(it);
        }
        let mut groups: Vec<Vec<Item>> = groups.into_values().collect();
        let total = |g: &[Item]| g.iter().map(|i| i.cost.car_bytes).sum::<u64>();
        groups.sort_by_cached_key(|g| std::cmp::Reverse(total(g)));
        let mut free: BTreeSet<(u64, usize)> = (0..bins.len()).map(|i| (free_for_one(&bins[i], capacity), i)).collect();
        for group in groups {
            let mut rest = &group[..];
            while !rest.is_empty() {
                let cost = total(rest);
                let count = rest.len() as u64;
                let dag_pb = rest.iter().filter(|i| i.cost.dag_pb_root).count() as u64;
                // Candidates in increasing free space; the first that really fits is the best fit.
                let found =
                    free.range((cost, 0)..).find(|&&(_, b)| fits(&bins[b], cost, count, dag_pb, capacity)).copied();
                let i = match found {
                    Some(key) => {
                        free.remove(&key);
                        key.1
                    }
                    None if fits(&Bin::default(), cost, count, dag_pb, capacity) => {
                        bins.push(Bin::default());
                        bins.len() - 1
                    }
                    None => {
                        // Too big for one batch: fill a fresh one in walk order, place the tail again.
                        let mut bin = Bin::default();
                        let mut taken = 0;
                        for it in rest {
                            if !bin.items.is_empty()
                                && !fits(&bin, it.cost.car_bytes, 1, it.cost.dag_pb_root as u64, capacity)
                            {
                                break;
                            }
                            bin.push(*it);
                            taken += 1;
                        }
                        rest = &rest[taken..];
                        bins.push(bin);
                        let i = bins.len() - 1;
                        free.insert((free_for_one(&bins[i], capacity), i));
                        continue;
                    }
                };
                for it in rest {
                    bins[i].push(*it);
                }
                rest = &[];
                free.insert((free_for_one(&bins[i], capacity), i));
            }
        }
        bins
    }

    /// Sizes with many equal costs (ties decided by input order), empty files and files split
    /// into parts of equal and unequal cost.
    fn tricky_sizes(n: usize, seed: u64) -> Vec<u64> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match x % 10 {
                    0 => 0,
                    1 => 1024,
                    2 => 5000,
                    3 => 3 << 20,
                    4 => (x >> 8) % (8 << 20),
                    _ => (x >> 8) % 200_000,
                }
            })
            .collect()
    }

    /// The packer on IDs packs exactly as the packer on `Item`s did: the same batches, entries,
    /// parts and order, for both modes, with and without open batches, for several profiles.
    #[test]
    fn packing_on_ids_is_the_item_packing() {
        use crate::profile::Preset;
        for preset in Preset::ALL {
            let p = Profile { chunk_size: 64 << 10, ..preset.profile() };
            for seed in 1..6 {
                let s = tricky_sizes(600, seed);
                let folders: Vec<u32> = (0..s.len() as u32).map(|i| (i / 5) % 37).collect();
                for cap in [1 << 20, 3 << 20, 1 << 24] {
                    for mode in [Pack::BestFit, Pack::KeepFolders] {
                        let want = reference_top_up(&[], &s, &folders, &p, cap, mode).unwrap();
                        let got = top_up(&[], &s, &folders, &p, cap, mode).unwrap();
                        let split = want.fresh.iter().any(|b| b.items.iter().any(|i| i.part.is_some()));
                        assert_eq!(split, cap < 8 << 20, "files split when larger than a batch");
                        assert_eq!(got, want, "{} seed {seed} cap {cap} {mode:?}", preset.name());
                        let open: Vec<Bin> = want
                            .fresh
                            .iter()
                            .take(3)
                            .map(|b| Bin::from_items(b.items[..b.items.len() / 2].to_vec()))
                            .collect();
                        let want = reference_top_up(&open, &s, &folders, &p, cap, mode).unwrap();
                        let got = top_up(&open, &s, &folders, &p, cap, mode).unwrap();
                        assert_eq!(got, want, "open, {} seed {seed} cap {cap} {mode:?}", preset.name());
                    }
                }
            }
        }
        assert_eq!(
            top_up(&[], &[1 << 30], &[0], &Profile::default(), 100, Pack::BestFit),
            reference_top_up(&[], &[1 << 30], &[0], &Profile::default(), 100, Pack::BestFit)
        );
    }
}
