//! The history of the batches' edits, for undo and redo (`u`, `U`/Ctrl-R).
//!
//! A step keeps only what its edit changed: the batches it changed or removed (whole, IDs and
//! results included), where the batches it kept are in the list, the marks if the edit changed
//! them, and the records of the files a re-plan read again. Undo and redo are one operation:
//! swapping the current state with the one a step describes (relative to the current list),
//! which leaves the step describing the state swapped out — the step for the other direction.
//!
//! The batch ID counter is not part of the history: an ID given once is never given again, so
//! an ID always names the same contents, whatever was undone.

use super::batches::WsBatch;
use super::marks::Marks;
use super::tree::{FileRecord, Tree};
use std::collections::{HashMap, VecDeque};

/// Most steps kept (the oldest are dropped first).
pub const LEVELS: usize = 100;

/// Most batch entries (files and file parts, 48 bytes each) the kept steps hold together
/// (≈190 MiB); beyond it the oldest steps are dropped (the newest is always kept).
pub const ENTRY_BUDGET: usize = 4_000_000;

/// A batch of the other state: the current list's batch at an index, or one of its own.
#[derive(Debug)]
enum Slot {
    Kept(usize),
    Own(Box<WsBatch>),
}

/// One edit, undoable (on the undo stack) or redoable (on the redo stack).
#[derive(Debug)]
pub struct Step {
    /// What the edit did ("pack 16 batches").
    pub label: String,
    slots: Vec<Slot>,
    /// Length of the list the slots refer to (checked before swapping).
    relative_to: usize,
    /// The marks to put in place when the step is swapped, and the ones for swapping back
    /// (the marks right before and right after the edit), when the edit changed them.
    marks: Option<(Marks, Marks)>,
    files: Vec<(u32, FileRecord)>,
    state: u64,
}

impl Step {
    fn entries(&self) -> usize {
        self.slots.iter().map(|s| if let Slot::Own(b) = s { b.len() } else { 0 }).sum()
    }

    /// Indices of the current list's batches that swapping would take out of the list.
    pub fn leaving(&self, current: usize) -> Vec<usize> {
        let mut kept = vec![false; current];
        for s in &self.slots {
            if let Slot::Kept(j) = s {
                if let Some(k) = kept.get_mut(*j) {
                    *k = true;
                }
            }
        }
        (0..current).filter(|&j| !kept[j]).collect()
    }

    /// Whether the step fits `current` (its slots refer to a list of that length).
    pub fn fits(&self, current: usize) -> bool {
        self.relative_to == current
    }

    /// Swaps the state the step describes with the current one: returns the list to use, puts
    /// the step's marks and file records in place, and leaves the step describing the state
    /// taken out. Marks are put as they were right before (undo) or right after (redo) the edit,
    /// if it changed them. Restored batches count as saved (editing one gives it a new ID),
    /// since the shipment file may have named them meanwhile. Returns the indices of the
    /// restored batches.
    pub fn swap(&mut self, current: Vec<WsBatch>, marks: &mut Marks, tree: &mut Tree) -> (Vec<WsBatch>, Vec<usize>) {
        let mut cur: Vec<Option<WsBatch>> = current.into_iter().map(Some).collect();
        let mut moved_to = vec![usize::MAX; cur.len()];
        let mut restored = Vec::new();
        let slots = std::mem::take(&mut self.slots);
        let list: Vec<WsBatch> = slots
            .into_iter()
            .enumerate()
            .map(|(k, s)| match s {
                Slot::Kept(j) => {
                    moved_to[j] = k;
                    cur[j].take().expect("each batch is kept once")
                }
                Slot::Own(b) => {
                    restored.push(k);
                    let mut b = *b;
                    b.saved = true;
                    b
                }
            })
            .collect();
        self.slots = cur
            .into_iter()
            .enumerate()
            .map(|(j, b)| match b {
                Some(b) => Slot::Own(Box::new(b)),
                None => Slot::Kept(moved_to[j]),
            })
            .collect();
        self.relative_to = list.len();
        if let Some((next, back)) = &mut self.marks {
            *marks = next.clone();
            std::mem::swap(next, back);
        }
        for (id, rec) in &mut self.files {
            let now = tree.file_record(*id);
            tree.restore_file(*id, rec.clone());
            *rec = now;
        }
        (list, restored)
    }
}

/// What an edit may change, taken before it.
pub struct Before {
    ids: Vec<String>,
    touched: Vec<(usize, WsBatch)>,
    marks: Marks,
    files: Vec<(u32, FileRecord)>,
}

impl Before {
    /// Takes the list before an edit that changes or removes at most the batches at `touched`
    /// (`None`: any) and may append new ones; the others keep their IDs and contents.
    pub fn take(list: &[WsBatch], touched: Option<&[usize]>, marks: &Marks) -> Before {
        let touched = match touched {
            None => list.iter().cloned().enumerate().collect(),
            Some(t) => t.iter().filter(|&&i| i < list.len()).map(|&i| (i, list[i].clone())).collect(),
        };
        Before { ids: list.iter().map(|b| b.id.clone()).collect(), touched, marks: marks.clone(), files: Vec::new() }
    }

    /// Adds the records of files the edit changes in the tree (a re-plan's new sizes).
    pub fn with_files(mut self, files: Vec<(u32, FileRecord)>) -> Before {
        self.files = files;
        self
    }
}

/// The undo and redo stacks, and which state was saved last.
#[derive(Debug)]
pub struct History {
    undo: VecDeque<Step>,
    redo: Vec<Step>,
    /// The current state's number (every edit makes a new one; undo and redo go back to one).
    state: u64,
    next: u64,
    /// The state the shipment file holds (the start counts as saved: nothing or the opened file).
    saved: Option<u64>,
    /// The state a running save writes.
    saving: u64,
}

impl Default for History {
    fn default() -> Self {
        History { undo: VecDeque::new(), redo: Vec::new(), state: 0, next: 1, saved: Some(0), saving: 0 }
    }
}

impl History {
    /// Records an edit from what it may have changed (`before`) and the list and marks after
    /// it. Returns false (and records nothing) when nothing changed.
    pub fn record(&mut self, label: String, before: Before, list: &[WsBatch], marks: &Marks) -> bool {
        let Before { ids, touched, marks: marks_before, files } = before;
        let mut at: HashMap<&str, Vec<usize>> = HashMap::new();
        for (j, b) in list.iter().enumerate() {
            at.entry(b.id.as_str()).or_default().push(j);
        }
        let mut used = vec![false; list.len()];
        let mut touched: HashMap<usize, WsBatch> = touched.into_iter().collect();
        let mut slots = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            let candidates = at.get(id.as_str()).map_or(&[][..], Vec::as_slice);
            let slot = match touched.remove(&i) {
                Some(b) => match candidates.iter().find(|&&j| !used[j] && list[j] == b) {
                    Some(&j) => Slot::Kept(j),
                    None => Slot::Own(Box::new(b)),
                },
                None => match candidates.iter().find(|&&j| !used[j]) {
                    Some(&j) => Slot::Kept(j),
                    None => {
                        // An edit changed a batch it did not declare: the history cannot
                        // describe it, and older steps would restore the wrong batches.
                        debug_assert!(false, "{id} changed outside the edit's scope");
                        self.clear();
                        return true;
                    }
                },
            };
            if let Slot::Kept(j) = slot {
                used[j] = true;
            }
            slots.push(slot);
        }
        let same_list =
            list.len() == ids.len() && slots.iter().enumerate().all(|(i, s)| matches!(s, Slot::Kept(j) if *j == i));
        let marks_changed = marks_before != *marks;
        if same_list && !marks_changed && files.is_empty() {
            return false;
        }
        let step = Step {
            label,
            slots,
            relative_to: list.len(),
            marks: marks_changed.then(|| (marks_before, marks.clone())),
            files,
            state: self.state,
        };
        self.state = self.next;
        self.next += 1;
        self.redo.clear();
        self.undo.push_back(step);
        self.trim();
        true
    }

    fn trim(&mut self) {
        while self.undo.len() > LEVELS {
            self.undo.pop_front();
        }
        let mut total: usize = self.undo.iter().map(Step::entries).sum();
        while total > ENTRY_BUDGET && self.undo.len() > 1 {
            total -= self.undo.pop_front().map_or(0, |s| s.entries());
        }
    }

    /// Takes the step to undo (`redo`: to redo), if any.
    pub fn take(&mut self, redo: bool) -> Option<Step> {
        if redo {
            self.redo.pop()
        } else {
            self.undo.pop_back()
        }
    }

    /// Puts back a step taken but not swapped (refused).
    pub fn put_back(&mut self, redo: bool, step: Step) {
        if redo {
            self.redo.push(step);
        } else {
            self.undo.push_back(step);
        }
    }

    /// Files a swapped step on the other stack; the current state becomes the one restored.
    pub fn swapped(&mut self, redo: bool, mut step: Step) {
        std::mem::swap(&mut self.state, &mut step.state);
        if redo {
            self.undo.push_back(step);
            self.trim();
        } else {
            self.redo.push(step);
        }
    }

    /// Forgets every step.
    pub fn clear(&mut self) {
        self.undo.clear();
        self.redo.clear();
    }

    /// Steps that can be undone and redone.
    #[cfg(test)]
    pub fn depth(&self) -> (usize, usize) {
        (self.undo.len(), self.redo.len())
    }

    /// A save of the current state started.
    pub fn save_started(&mut self) {
        self.saving = self.state;
    }

    /// The save started last ended well: its state is the file's.
    pub fn save_done(&mut self) {
        self.saved = Some(self.saving);
    }

    /// Whether the current state is the one the shipment file holds.
    pub fn at_saved(&self) -> bool {
        self.saved == Some(self.state)
    }
}
