//! Marks, keyed by entry ID (never by row): a bit per entry. A marked folder stands for
//! everything under it; no marked entry ever lies under another marked entry, so the set bits
//! are exactly the "mark roots" and totals are a plain sum over them.

use super::tree::{Totals, Tree};

/// The marked entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    bits: Vec<u64>,
    count: usize,
}

impl Marks {
    fn get(&self, id: u32) -> bool {
        self.bits.get(id as usize / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn set(&mut self, id: u32, on: bool) {
        let (w, b) = (id as usize / 64, id % 64);
        if self.bits.len() <= w {
            self.bits.resize(w + 1, 0);
        }
        let was = self.bits[w] & (1 << b) != 0;
        if on && !was {
            self.bits[w] |= 1 << b;
            self.count += 1;
        } else if !on && was {
            self.bits[w] &= !(1 << b);
            self.count -= 1;
        }
    }

    /// Whether nothing is marked.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether `id` is marked itself or through a marked folder above it.
    pub fn is_marked(&self, tree: &Tree, id: u32) -> bool {
        !self.is_empty() && (self.get(id) || tree.ancestors(id).any(|a| self.get(a)))
    }

    /// The marked folder above `id`, if any.
    fn marked_ancestor(&self, tree: &Tree, id: u32) -> Option<u32> {
        tree.ancestors(id).find(|&a| self.get(a))
    }

    /// The mark roots, in ID order.
    pub fn roots(&self) -> impl Iterator<Item = u32> + '_ {
        self.bits.iter().enumerate().flat_map(|(w, &bits)| {
            let mut bits = bits;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let b = bits.trailing_zeros();
                    bits &= bits - 1;
                    (w * 64) as u32 + b
                })
            })
        })
    }

    /// Marks `id` (and so everything under it).
    pub fn mark(&mut self, tree: &Tree, id: u32) {
        if self.is_marked(tree, id) {
            return;
        }
        if tree.folder_of(id).is_some() {
            let under: Vec<u32> = self.roots().filter(|&m| tree.ancestors(m).any(|a| a == id)).collect();
            for m in under {
                self.set(m, false);
            }
        }
        self.set(id, true);
    }

    /// Unmarks `id`. Under a marked folder, the folder's mark is replaced by marks on everything
    /// beside the path down to `id`.
    pub fn unmark(&mut self, tree: &Tree, id: u32) {
        if self.get(id) {
            self.set(id, false);
            return;
        }
        let Some(top) = self.marked_ancestor(tree, id) else { return };
        self.set(top, false);
        let mut path: Vec<u32> = std::iter::once(id).chain(tree.ancestors(id).take_while(|&a| a != top)).collect();
        path.push(top);
        path.reverse();
        for pair in path.windows(2) {
            let (folder, keep_out) = (pair[0], pair[1]);
            if let Some(f) = tree.folder_of(folder) {
                for c in f.children.clone() {
                    if c != keep_out {
                        self.set(c, true);
                    }
                }
            }
        }
    }

    /// Toggles `id`.
    pub fn toggle(&mut self, tree: &Tree, id: u32) {
        if self.is_marked(tree, id) {
            self.unmark(tree, id)
        } else {
            self.mark(tree, id)
        }
    }

    /// Unmarks everything.
    pub fn clear(&mut self) {
        self.bits.clear();
        self.count = 0;
    }

    /// Totals of everything marked.
    pub fn totals(&self, tree: &Tree) -> Totals {
        let mut t = Totals::default();
        for id in self.roots() {
            let o = tree.totals(id);
            t.files += o.files;
            t.bytes += o.bytes;
            t.cost += o.cost;
            t.unshippable += o.unshippable;
        }
        t
    }

    /// Every marked file, in the planner's walk order.
    pub fn files(&self, tree: &Tree) -> Vec<u32> {
        let mut out = Vec::new();
        if self.is_empty() {
            return out;
        }
        let mut stack: Vec<u32> = tree.folders[0].children.clone().rev().collect();
        while let Some(id) = stack.pop() {
            if !tree.loaded(id) {
                continue;
            }
            if self.get(id) {
                tree.for_each_file(id, &mut |f| out.push(f));
            } else if let Some(f) = tree.folder_of(id) {
                stack.extend(f.children.clone().rev());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::tree::tests::listing;
    use carload::walk::{Kind, ROOTS};

    fn tree() -> Tree {
        let mut t = Tree::new(Box::new(|s| s));
        t.ingest(listing(ROOTS, 0, &[("r", Kind::Folder, 0)]));
        t.ingest(listing(0, 1, &[("a", Kind::Folder, 0), ("b", Kind::File, 2), ("c", Kind::File, 3)]));
        t.ingest(listing(1, 4, &[("x", Kind::File, 10), ("y", Kind::File, 20)]));
        t
    }

    #[test]
    fn folder_marks_cover_their_files_and_unmarking_one_splits_them() {
        let t = tree();
        let mut m = Marks::default();
        m.toggle(&t, 4); // r/a/x
        m.toggle(&t, 0); // r: subsumes r/a/x
        assert_eq!(m.roots().collect::<Vec<_>>(), [0]);
        assert_eq!(m.totals(&t).bytes, 35);
        m.toggle(&t, 5); // unmark r/a/y under r
        assert!(!m.is_marked(&t, 5));
        assert!(m.is_marked(&t, 4) && m.is_marked(&t, 2) && m.is_marked(&t, 3));
        assert_eq!(m.totals(&t).bytes, 15);
        let names: Vec<String> = m.files(&t).iter().map(|&f| t.path(f)).collect();
        assert_eq!(names, ["r/a/x", "r/b", "r/c"]);
        m.toggle(&t, 1); // mark r/a again: x folds into it
        assert_eq!(m.totals(&t).bytes, 35);
        assert_eq!(m.roots().count(), 3);
    }
}
