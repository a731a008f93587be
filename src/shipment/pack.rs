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

    /// Whether adding `items` keeps the bound within `capacity`.
    fn fits(&self, cost: u64, count: u64, dag_pb: u64, capacity: u64) -> bool {
        self.own + cost + overhead_bound(self.items.len() as u64 + count, self.dag_pb + dag_pb) <= capacity
    }

    /// Free space for one more entry of any kind.
    fn free_for_one(&self, capacity: u64) -> u64 {
        capacity.saturating_sub(self.own + overhead_bound(self.items.len() as u64 + 1, self.dag_pb + 1))
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
        Pack::BestFit => best_fit(seeds, items, capacity),
        Pack::KeepFolders => keep_folders(seeds, items, folders, capacity),
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
fn best_fit(mut bins: Vec<Bin>, mut items: Vec<Item>, capacity: u64) -> Vec<Bin> {
    // Sorted smallest first and taken from the end, so the list shrinks as the bins fill.
    items.sort_by(|a, b| a.cost.car_bytes.cmp(&b.cost.car_bytes).then(b.file.cmp(&a.file)));
    let mut free: BTreeSet<(u64, usize)> = (0..bins.len()).map(|i| (bins[i].free_for_one(capacity), i)).collect();
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
        free.insert((bins[i].free_for_one(capacity), i));
    }
    bins
}

/// Keep-folders packing of `items` into `bins` (open batches first, then new ones appended).
fn keep_folders(mut bins: Vec<Bin>, items: Vec<Item>, folders: &[u32], capacity: u64) -> Vec<Bin> {
    let mut groups: BTreeMap<u32, Vec<Item>> = BTreeMap::new();
    for it in items {
        groups.entry(folders[it.file]).or_default().push(it);
    }
    let mut groups: Vec<Vec<Item>> = groups.into_values().collect();
    let total = |g: &[Item]| g.iter().map(|i| i.cost.car_bytes).sum::<u64>();
    groups.sort_by_cached_key(|g| std::cmp::Reverse(total(g)));
    let mut free: BTreeSet<(u64, usize)> = (0..bins.len()).map(|i| (bins[i].free_for_one(capacity), i)).collect();
    for group in groups {
        let mut rest = &group[..];
        while !rest.is_empty() {
            let cost = total(rest);
            let count = rest.len() as u64;
            let dag_pb = rest.iter().filter(|i| i.cost.dag_pb_root).count() as u64;
            // Candidates in increasing free space; the first that really fits is the best fit.
            let found = free.range((cost, 0)..).find(|&&(_, b)| bins[b].fits(cost, count, dag_pb, capacity)).copied();
            let i = match found {
                Some(key) => {
                    free.remove(&key);
                    key.1
                }
                None if Bin::default().fits(cost, count, dag_pb, capacity) => {
                    bins.push(Bin::default());
                    bins.len() - 1
                }
                None => {
                    // Too big for one batch: fill a fresh one in walk order, place the tail again.
                    let mut bin = Bin::default();
                    let mut taken = 0;
                    for it in rest {
                        if !bin.items.is_empty()
                            && !bin.fits(it.cost.car_bytes, 1, it.cost.dag_pb_root as u64, capacity)
                        {
                            break;
                        }
                        bin.push(*it);
                        taken += 1;
                    }
                    rest = &rest[taken..];
                    bins.push(bin);
                    let i = bins.len() - 1;
                    free.insert((bins[i].free_for_one(capacity), i));
                    continue;
                }
            };
            for it in rest {
                bins[i].push(*it);
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
}
