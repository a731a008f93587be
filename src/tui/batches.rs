//! The workstation's batches: the planner's [`Bin`]s whose items name tree entries, plus what a
//! shipment file said about them.
//!
//! Bounds, piece sizes and splitting come from the library's planner (`shipment::pack`,
//! `shipment::plan`), never recomputed here. A batch that was saved or loaded gets a new ID
//! when it is edited, so an output folder's old result for the old contents is never taken for
//! the new ones.

use super::tree::{Tree, NONE};
use carload::shipment::overhead::EntryCost;
use carload::shipment::pack::{Bin, Item};
use carload::shipment::plan::{batch_record, PlanOptions};
use carload::shipment::{Batch, BatchResult, FileRef};
use std::collections::HashMap;

/// Why a loaded batch cannot be edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frozen {
    /// Its files are not all known yet (the scan is running).
    Resolving,
    /// Files missing from the tree or changed since planning.
    Changed {
        /// Files not found.
        missing: usize,
        /// Files found with another size or modification time.
        changed: usize,
        /// What: the first names not found and changed (three of each at most).
        example: String,
    },
}

/// One batch.
#[derive(Debug, Clone, PartialEq)]
pub struct WsBatch {
    /// Its ID (`b00000`, …): output files are named after it.
    pub id: String,
    /// Its entries; `Item::file` is a tree entry ID.
    pub bin: Bin,
    /// The record it was loaded from, while it is frozen (then it is saved as it was).
    pub loaded: Option<Batch>,
    /// Why it cannot be edited, if so.
    pub frozen: Option<Frozen>,
    /// Saved to or loaded from a shipment file: editing it gives it a new ID.
    pub saved: bool,
    /// Its build result, when one in the output folder matches its files.
    pub result: Option<BatchResult>,
}

impl WsBatch {
    /// Number of entries (files and file parts).
    pub fn len(&self) -> usize {
        self.loaded.as_ref().map_or(self.bin.items.len(), |b| b.files.len())
    }

    /// Upper bound on the CAR bytes.
    pub fn bound(&self) -> u64 {
        self.loaded.as_ref().map_or_else(|| self.bin.bound(), |b| b.car_size_bound)
    }

    /// Source bytes.
    pub fn bytes(&self, tree: &Tree) -> u64 {
        match &self.loaded {
            Some(b) => b.bytes(),
            None => self.bin.items.iter().map(|i| i.part.map_or(tree.node(i.file as u32).size, |p| p.len)).sum(),
        }
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its planned padded piece size (as its shipment record says: [`batch_record`]).
    pub fn piece_size(&self, o: &PlanOptions) -> u64 {
        self.loaded
            .as_ref()
            .map_or_else(|| carload::commp::padded_piece_size(self.bound()).max(o.min_piece_size), |b| b.piece_size)
    }

    /// Its fill, the one figure `plan` and `status` print: CAR bound ÷ the usable bytes of its
    /// planned piece ([`carload::shipment::file::fill`]).
    pub fn fill(&self, o: &PlanOptions) -> f64 {
        carload::shipment::file::fill(self.bound(), self.piece_size(o))
    }

    /// The padded piece its build made, when smaller than planned (repeated blocks are written
    /// once, so a batch of repetitive data builds a smaller CAR than its bound).
    pub fn smaller_piece(&self, o: &PlanOptions) -> Option<u64> {
        self.result.as_ref().map(|r| r.piece_size).filter(|&p| p < self.piece_size(o))
    }
}

/// Every batch, and which batch each entry is in.
#[derive(Debug, Default)]
pub struct Batches {
    /// The batches in display order.
    pub list: Vec<WsBatch>,
    next_id: u64,
    /// Entry → index of the (first) batch holding it, or [`NONE`].
    member: Vec<u32>,
    /// Files in more than one batch (split into parts): every batch index.
    split: HashMap<u32, Vec<u32>>,
}

/// The parse of a batch ID's number.
fn id_number(id: &str) -> Option<u64> {
    id.strip_prefix('b')?.parse().ok()
}

impl Batches {
    /// A fresh batch ID: one more than any ID seen in this session (removed ones included).
    pub fn fresh_id(&mut self) -> String {
        let n = self.next_id;
        self.next_id += 1;
        format!("b{n:05}")
    }

    /// Notes an ID that exists (loaded, or given by the planner) so fresh IDs never repeat it.
    pub fn note_id(&mut self, id: &str) {
        if let Some(n) = id_number(id) {
            self.next_id = self.next_id.max(n + 1);
        }
    }

    /// Index of the batch holding entry `id`, and how many batches hold parts of it.
    pub fn batch_of(&self, id: u32) -> Option<(usize, usize)> {
        let b = *self.member.get(id as usize)?;
        (b != NONE).then(|| (b as usize, self.split.get(&id).map_or(1, Vec::len)))
    }

    /// Indices of every batch holding entry `id` (several for a split file).
    pub fn holders(&self, id: u32) -> Vec<usize> {
        match self.batch_of(id) {
            None => Vec::new(),
            Some((b, 1)) => vec![b],
            Some(_) => self.split[&id].iter().map(|&b| b as usize).collect(),
        }
    }

    fn set_member(&mut self, tree: &mut Tree, id: u32, batch: u32) {
        if self.member.len() <= id as usize {
            self.member.resize(tree.len().max(id as usize + 1), NONE);
        }
        let cur = self.member[id as usize];
        if cur == NONE {
            self.member[id as usize] = batch;
            tree.add_batched(id, 1);
        } else if cur != batch {
            let e = self.split.entry(id).or_insert_with(|| vec![cur]);
            if !e.contains(&batch) {
                e.push(batch);
            }
        }
    }

    /// Recomputes membership from the batches (after a removal).
    fn rebuild_members(&mut self, tree: &mut Tree) {
        for (id, &b) in self.member.iter().enumerate() {
            if b != NONE {
                tree.add_batched(id as u32, -1);
            }
        }
        self.member.clear();
        self.split.clear();
        let mut items: Vec<(u32, u32)> = self
            .list
            .iter()
            .enumerate()
            .flat_map(|(bi, b)| b.bin.items.iter().map(move |i| (i.file as u32, bi as u32)))
            .collect();
        // A loaded batch kept as recorded (its sources changed) still holds the files it names:
        // they are in its CAR or its plan, never free to be packed again.
        for bi in 0..self.list.len() {
            if self.list[bi].loaded.is_some() && self.list[bi].frozen != Some(Frozen::Resolving) {
                items.extend(self.recorded_files(tree, bi).into_iter().map(|id| (id, bi as u32)));
            }
        }
        for (id, bi) in items {
            self.set_member(tree, id, bi);
        }
    }

    /// Starts a new empty batch at the end; returns its index.
    pub fn new_batch(&mut self) -> usize {
        let id = self.fresh_id();
        self.list.push(WsBatch { id, bin: Bin::default(), loaded: None, frozen: None, saved: false, result: None });
        self.list.len() - 1
    }

    /// Gives an edited batch a new ID if it was saved (its old outputs describe other contents).
    fn edited(&mut self, i: usize) {
        if self.list[i].saved {
            let id = self.fresh_id();
            let b = &mut self.list[i];
            b.id = id;
            b.saved = false;
        }
        self.list[i].result = None;
    }

    /// Adds `files` (entry IDs, not in any batch) to batch `i` if they fit the capacity;
    /// otherwise says why not.
    pub fn add(&mut self, tree: &mut Tree, i: usize, files: &[u32], o: &PlanOptions) -> Result<(), String> {
        if let Some(f) = &self.list[i].frozen {
            return Err(frozen_reason(&self.list[i].id, f));
        }
        let items: Vec<Item> = files
            .iter()
            .map(|&f| Item { file: f as usize, part: None, cost: EntryCost::of_file(tree.node(f).size, &o.profile) })
            .collect();
        let bound = self.list[i].bin.bound_with(&items);
        let capacity = o.capacity();
        if bound > capacity {
            return Err(format!(
                "{} files would not fit {}: its CAR bound would be {} bytes, {} over the piece's {} usable bytes{}",
                files.len(),
                self.list[i].id,
                bound,
                bound - capacity,
                capacity,
                if files.len() == 1 { " (auto-pack with p splits large files)" } else { "" }
            ));
        }
        self.edited(i);
        let mut items = items;
        let mut all = std::mem::take(&mut self.list[i].bin.items);
        all.append(&mut items);
        all.sort_by_key(|it| (it.file, it.part));
        self.list[i].bin = Bin::from_items(all);
        for &f in files {
            self.set_member(tree, f, i as u32);
        }
        Ok(())
    }

    /// Appends packed bins (items index `files`) as new batches, numbered as `plan` numbers a
    /// shipment when there are no batches yet.
    pub fn append_packed(&mut self, tree: &mut Tree, bins: Vec<Bin>, files: &[u32]) -> std::ops::Range<usize> {
        let start = self.list.len();
        let fresh = self.list.is_empty() && self.next_id == 0;
        let n = bins.len();
        for (k, bin) in bins.into_iter().enumerate() {
            let id = if fresh { carload::shipment::plan::batch_id(k, n) } else { self.fresh_id() };
            self.note_id(&id);
            let items: Vec<Item> = bin.items.iter().map(|it| Item { file: files[it.file] as usize, ..*it }).collect();
            let bi = self.list.len() as u32;
            for it in &items {
                self.set_member(tree, it.file as u32, bi);
            }
            self.list.push(WsBatch {
                id,
                bin: Bin::from_items(items),
                loaded: None,
                frozen: None,
                saved: false,
                result: None,
            });
        }
        start..self.list.len()
    }

    /// Adds `items` (entries a top-up planned into batch `i`: they fit) to batch `i`, which
    /// gets a new ID if it was saved.
    pub fn extend(&mut self, tree: &mut Tree, i: usize, items: Vec<Item>) {
        self.edited(i);
        let mut all = std::mem::take(&mut self.list[i].bin.items);
        all.extend(items.iter().copied());
        all.sort_by_key(|it| (it.file, it.part));
        self.list[i].bin = Bin::from_items(all);
        for it in &items {
            self.set_member(tree, it.file as u32, i as u32);
        }
    }

    /// Removes batch `i`.
    pub fn remove_batch(&mut self, tree: &mut Tree, i: usize) -> WsBatch {
        let b = self.list.remove(i);
        self.rebuild_members(tree);
        b
    }

    /// Removes `files` (every part of each, from every batch) in one edit: the batches changed
    /// get their new IDs in list order, and membership is rebuilt once. Nothing changes when a
    /// batch holding one of them is frozen. Returns the IDs of the batches changed, in order.
    pub fn remove_files(&mut self, tree: &mut Tree, files: &[u32]) -> Result<Vec<String>, String> {
        let mut touched = std::collections::BTreeSet::new();
        for &f in files {
            for b in self.holders(f) {
                if let Some(why) = &self.list[b].frozen {
                    return Err(frozen_reason(&self.list[b].id, why));
                }
                touched.insert(b);
            }
        }
        let gone: std::collections::HashSet<usize> = files.iter().map(|&f| f as usize).collect();
        let mut changed = Vec::with_capacity(touched.len());
        for b in touched {
            self.edited(b);
            let items: Vec<Item> =
                self.list[b].bin.items.iter().filter(|it| !gone.contains(&it.file)).copied().collect();
            self.list[b].bin = Bin::from_items(items);
            changed.push(self.list[b].id.clone());
        }
        self.rebuild_members(tree);
        Ok(changed)
    }

    /// The shipment records of every batch (frozen ones as they were loaded).
    pub fn records(&self, tree: &Tree, o: &PlanOptions) -> Vec<Batch> {
        self.list
            .iter()
            .map(|b| match &b.loaded {
                Some(rec) => rec.clone(),
                None => record(tree, b, o),
            })
            .collect()
    }

    /// Loads batches read from a shipment file; they stay frozen until [`Batches::resolve`].
    pub fn load(&mut self, batches: Vec<Batch>) {
        for b in batches {
            self.note_id(&b.id);
            self.list.push(WsBatch {
                id: b.id.clone(),
                bin: Bin::default(),
                frozen: Some(Frozen::Resolving),
                loaded: Some(b),
                saved: true,
                result: None,
            });
        }
    }

    /// Maps loaded batches' files to tree entries once the scan is complete. A batch whose files
    /// are all found unchanged becomes editable; others stay frozen with the reason.
    pub fn resolve(&mut self, tree: &mut Tree, o: &PlanOptions) {
        for i in 0..self.list.len() {
            if self.list[i].frozen != Some(Frozen::Resolving) {
                continue;
            }
            let rec = self.list[i].loaded.clone().expect("resolving batches keep their record");
            let (mut missing, mut changed) = (Vec::new(), Vec::new());
            let mut unshippable: Vec<String> = Vec::new();
            let mut items = Vec::with_capacity(rec.files.len());
            for f in &rec.files {
                match tree.find(&f.name) {
                    Some(id) if tree.node(id).kind.is_file() => {
                        let n = tree.node(id);
                        if n.size != f.size || n.mtime_ns != f.mtime_ns || f.ident.is_some_and(|i| i != n.ident) {
                            changed.push(&f.name);
                        }
                        items.push(Item {
                            file: id as usize,
                            part: f.part,
                            cost: EntryCost::of_file(f.len(), &o.profile),
                        });
                    }
                    Some(id) if tree.error(id).is_some() => {
                        // Found but not shippable (unreadable, a carload output…): say why.
                        unshippable.push(format!("{} ({})", f.name, tree.error(id).unwrap_or_default()));
                    }
                    _ => missing.push(&f.name),
                }
            }
            let unshippable_refs: Vec<&String> = unshippable.iter().collect();
            let example =
                [(&missing, "not found"), (&unshippable_refs, "not shippable"), (&changed, "changed since planning")]
                    .iter()
                    .filter(|(names, _)| !names.is_empty())
                    .map(|(names, what)| format!("{what}: {}", first_names(names)))
                    .collect::<Vec<_>>()
                    .join("; ");
            let (missing, changed) = (missing.len() + unshippable.len(), changed.len());
            if missing + changed > 0 {
                self.list[i].frozen = Some(Frozen::Changed { missing, changed, example });
                for id in self.recorded_files(tree, i) {
                    self.set_member(tree, id, i as u32);
                }
                continue;
            }
            let b = &mut self.list[i];
            b.bin = Bin::from_items(items);
            b.loaded = None;
            b.frozen = None;
            for it in self.list[i].bin.items.clone() {
                self.set_member(tree, it.file as u32, i as u32);
            }
        }
    }

    /// The files a loaded batch's records name that are in the tree as files.
    fn recorded_files(&self, tree: &Tree, i: usize) -> Vec<u32> {
        let Some(rec) = &self.list[i].loaded else { return Vec::new() };
        let mut ids: Vec<u32> =
            rec.files.iter().filter_map(|f| tree.find(&f.name)).filter(|&id| tree.node(id).kind.is_file()).collect();
        ids.dedup();
        ids
    }

    /// The files of batch `i` as tree entries: its items, or for a frozen loaded batch the
    /// entries its records name (files not in the tree left out).
    pub fn entries_of(&self, tree: &Tree, i: usize) -> Vec<u32> {
        let b = &self.list[i];
        let mut ids: Vec<u32> = match &b.loaded {
            Some(rec) => rec.files.iter().filter_map(|f| tree.find(&f.name)).collect(),
            None => b.bin.items.iter().map(|it| it.file as u32).collect(),
        };
        ids.dedup();
        ids
    }

    /// Re-plans batch `i` after its files were stat'ed again (`now`: entry → size and time, or
    /// gone): the tree takes the new values, files that vanished leave the batch, a split file
    /// that changed leaves every batch (its parts no longer cover it), and files are moved out
    /// from the end until the batch fits its piece again. The batch gets a new ID. Returns the
    /// files freed (to pack again) and how many vanished.
    pub fn replan(
        &mut self,
        tree: &mut Tree,
        i: usize,
        now: &[(u32, Option<crate::tui::tree::FileStat>)],
        o: &PlanOptions,
    ) -> (Vec<u32>, usize) {
        let mut vanished = 0;
        let mut freed = Vec::new();
        let changed_split: Vec<u32> = now
            .iter()
            .filter(|(id, st)| {
                let n = tree.node(*id);
                self.batch_of(*id).is_some_and(|(_, k)| k > 1)
                    && st.is_none_or(|(s, m, i)| s != n.size || m != n.mtime_ns || i != n.ident)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &changed_split {
            let _ = self.remove_file_unchecked(tree, *id);
            freed.push(*id);
        }
        for (id, st) in now {
            if st.is_none() {
                vanished += 1;
            }
            tree.update_file(*id, *st);
        }
        let keep: Vec<u32> =
            now.iter().filter(|(id, st)| st.is_some() && !changed_split.contains(id)).map(|(id, _)| *id).collect();
        let mut items: Vec<Item> = keep
            .iter()
            .map(|&f| Item { file: f as usize, part: None, cost: EntryCost::of_file(tree.node(f).size, &o.profile) })
            .collect();
        // Parts of a file that did not change stay as they were.
        if self.list[i].loaded.is_none() {
            for it in &self.list[i].bin.items {
                if let Some(k) = items.iter_mut().find(|k| k.file == it.file && it.part.is_some()) {
                    k.part = it.part;
                    k.cost = it.cost;
                }
            }
        }
        items.sort_by_key(|it| (it.file, it.part));
        while !items.is_empty() && Bin::from_items(items.clone()).bound() > o.capacity() {
            let last = items.pop().unwrap();
            freed.push(last.file as u32);
        }
        self.list[i].saved = true; // a re-planned batch never keeps its old ID
        self.edited(i);
        let b = &mut self.list[i];
        b.bin = Bin::from_items(items);
        b.loaded = None;
        b.frozen = None;
        self.rebuild_members(tree);
        (freed, vanished)
    }

    fn remove_file_unchecked(&mut self, tree: &mut Tree, id: u32) -> Vec<String> {
        let mut changed = Vec::new();
        for b in 0..self.list.len() {
            if self.list[b].bin.items.iter().any(|it| it.file == id as usize) {
                self.edited(b);
                let items: Vec<Item> =
                    self.list[b].bin.items.iter().filter(|it| it.file != id as usize).copied().collect();
                self.list[b].bin = Bin::from_items(items);
                changed.push(self.list[b].id.clone());
            }
        }
        self.rebuild_members(tree);
        changed
    }

    /// Takes a list put back by undo or redo: membership follows it, and its IDs are noted so
    /// fresh IDs never repeat them.
    pub fn restored(&mut self, tree: &mut Tree) {
        for i in 0..self.list.len() {
            let id = self.list[i].id.clone();
            self.note_id(&id);
        }
        self.rebuild_members(tree);
    }

    /// Marks every batch saved (after a save).
    pub fn mark_saved(&mut self) {
        for b in &mut self.list {
            b.saved = true;
        }
    }
}

/// The record of a batch as `plan` would write it.
pub fn record(tree: &Tree, b: &WsBatch, o: &PlanOptions) -> Batch {
    batch_record(b.id.clone(), &b.bin, o, |it| {
        let n = tree.node(it.file as u32);
        FileRef {
            name: tree.path(it.file as u32),
            size: n.size,
            mtime_ns: n.mtime_ns,
            ident: Some(n.ident),
            part: it.part,
        }
    })
}

/// The first three of `names` (split files once), and how many more.
fn first_names(names: &[&String]) -> String {
    let mut shown: Vec<&str> = Vec::new();
    for n in names {
        if shown.len() == 3 {
            break;
        }
        if !shown.contains(&n.as_str()) {
            shown.push(n);
        }
    }
    let more = names.iter().filter(|n| !shown.contains(&n.as_str())).count();
    format!("{}{}", shown.join(", "), if more > 0 { format!(" and {more} more") } else { String::new() })
}

/// Why frozen batch `id` cannot be edited.
pub fn frozen_reason(id: &str, f: &Frozen) -> String {
    match f {
        Frozen::Resolving => format!("{id} is still being matched to the scanned files; wait for the scan to finish"),
        Frozen::Changed { example, .. } => {
            format!("{id} cannot be edited: {example}; R re-plans it (if it is not built)")
        }
    }
}
