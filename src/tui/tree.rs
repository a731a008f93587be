//! The browser's tree: every entry of the scanned roots in compact, fixed-size records (32 bytes
//! plus the name), built from the walk's listings as they arrive.
//!
//! Entry IDs are the walk's: a folder's children are a contiguous range sorted by name bytes, so
//! the planner's walk order is a plain depth-first pass over ID ranges. Folders carry running
//! totals (files, bytes, predicted CAR bytes) that include every listing ingested so far, and a
//! count of sub-folders still being read, so a folder knows when its totals are final.

use carload::shipment::file::Ident;
use carload::walk::{Kind, Listing, ROOTS};
use std::collections::HashMap;
use std::ops::Range;

/// No entry / no folder.
pub const NONE: u32 = u32::MAX;

/// One entry.
#[derive(Debug, Clone, Copy)]
pub struct Node {
    name_off: u32,
    name_len: u16,
    /// What it is.
    pub kind: Kind,
    loaded: bool,
    /// Parent entry, or [`NONE`] for a root.
    pub parent: u32,
    /// Folder record index, for folders.
    pub folder: u32,
    /// Size in bytes (files).
    pub size: u64,
    /// Modification time in ns (files).
    pub mtime_ns: i64,
    /// Status-change time and inode (files): with size and mtime, the file a batch records.
    pub ident: Ident,
}

/// What a file is now: size, modification time (ns), status-change time and inode.
pub type FileStat = (u64, i64, Ident);

/// A file entry as the tree holds it (what [`Tree::update_file`] changes), to be put back with
/// [`Tree::restore_file`]: its kind, its stat, and its error if it is not shippable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    kind: Kind,
    stat: FileStat,
    error: Option<Box<str>>,
}

const PLACEHOLDER: Node = Node {
    name_off: 0,
    name_len: 0,
    kind: Kind::Other,
    loaded: false,
    parent: NONE,
    folder: NONE,
    size: 0,
    mtime_ns: 0,
    ident: Ident { ctime_ns: 0, ino: 0 },
};

/// Totals of a subtree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Files shipped (regular files and symlinks to files).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Their predicted CAR bytes in a batch.
    pub cost: u64,
    /// Entries that cannot be shipped (special files, broken links, links to folders, unreadable).
    pub unshippable: u64,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.files += o.files;
        self.bytes += o.bytes;
        self.cost += o.cost;
        self.unshippable += o.unshippable;
    }
}

/// A folder's record.
#[derive(Debug, Clone)]
pub struct Folder {
    /// Its entry ([`NONE`] for the top level that holds the roots).
    pub node: u32,
    /// Its children's IDs.
    pub children: Range<u32>,
    /// Totals of everything ingested under it.
    pub totals: Totals,
    /// Files under it that are in a batch (whole or a part).
    pub batched: u64,
    /// Sub-folders (at any depth) ingested so far.
    pub folders: u64,
    pending: u32,
}

impl Folder {
    /// Whether it and every folder below it have been read.
    pub fn complete(&self) -> bool {
        self.pending == 0
    }
}

/// The tree.
pub struct Tree {
    nodes: Vec<Node>,
    names: Vec<u8>,
    /// Folder records; 0 is the top level (the roots).
    pub folders: Vec<Folder>,
    errors: HashMap<u32, Box<str>>,
    cost: Box<dyn Fn(u64) -> u64 + Send>,
    /// The roots' names in shipment names (see [`Tree::root_name`]).
    root_names: Vec<Vec<u8>>,
}

impl Tree {
    /// An empty tree; `cost` predicts a file's CAR bytes from its size.
    pub fn new(cost: Box<dyn Fn(u64) -> u64 + Send>) -> Self {
        let top = Folder { node: NONE, children: 0..0, totals: Totals::default(), batched: 0, folders: 0, pending: 1 };
        Tree {
            nodes: Vec::new(),
            names: Vec::new(),
            folders: vec![top],
            errors: HashMap::new(),
            cost,
            root_names: Vec::new(),
        }
    }

    /// Number of entry IDs in use.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Entry `id`.
    pub fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    /// Name bytes of entry `id`.
    pub fn name(&self, id: u32) -> &[u8] {
        let n = &self.nodes[id as usize];
        &self.names[n.name_off as usize..n.name_off as usize + n.name_len as usize]
    }

    /// The name root `id` has in shipment names: its place below the shipment's base folder
    /// ([`Tree::set_root_names`]), else its name as walked.
    pub fn root_name(&self, id: u32) -> &[u8] {
        match self.root_names.get(id as usize) {
            Some(n) => n,
            None => self.name(id),
        }
    }

    /// Sets the names the roots have in shipment names, in root order (the walk names the
    /// roots as given: `.`, `../x`, an absolute path; shipment names are relative to the base).
    pub fn set_root_names(&mut self, names: Vec<Vec<u8>>) {
        self.root_names = names;
    }

    /// Name of `id` for display: not-UTF-8 bytes replaced, control characters escaped (a name
    /// must never drive the terminal).
    pub fn display_name(&self, id: u32) -> std::borrow::Cow<'_, str> {
        match String::from_utf8_lossy(self.name(id)) {
            std::borrow::Cow::Borrowed(s) => carload::text::escape_controls(s),
            std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(carload::text::escape_controls(&s).into_owned()),
        }
    }

    /// Why `id` cannot be read or shipped, if so.
    pub fn error(&self, id: u32) -> Option<&str> {
        self.errors.get(&id).map(|e| &**e)
    }

    /// Whether the name starts with a dot.
    pub fn is_hidden(&self, id: u32) -> bool {
        self.nodes[id as usize].parent != NONE && self.name(id).first() == Some(&b'.')
    }

    /// Predicted CAR bytes of a file of `size` bytes.
    pub fn cost_of(&self, size: u64) -> u64 {
        (self.cost)(size)
    }

    /// The folder record of folder entry `id`.
    pub fn folder_of(&self, id: u32) -> Option<&Folder> {
        let f = self.nodes[id as usize].folder;
        (f != NONE).then(|| &self.folders[f as usize])
    }

    /// Totals of entry `id` (a file's own, a folder's subtree).
    pub fn totals(&self, id: u32) -> Totals {
        let n = &self.nodes[id as usize];
        if n.kind.is_file() {
            Totals { files: 1, bytes: n.size, cost: self.cost_of(n.size), unshippable: 0 }
        } else if let Some(f) = self.folder_of(id) {
            f.totals
        } else {
            Totals { unshippable: 1, ..Totals::default() }
        }
    }

    /// The whole tree's totals.
    pub fn grand_totals(&self) -> Totals {
        self.folders[0].totals
    }

    /// Whether the walk has read every folder.
    pub fn complete(&self) -> bool {
        self.folders[0].complete()
    }

    /// The walk path of `id` as `plan` names it: the root as given (cleaned), then the names
    /// below it joined with `/` (a path that is not UTF-8 in the shipment file's escaped form).
    pub fn path(&self, id: u32) -> String {
        let mut ids = Vec::with_capacity(8);
        let mut at = id;
        while at != NONE {
            ids.push(at);
            at = self.nodes[at as usize].parent;
        }
        let mut bytes = Vec::new();
        for (i, &a) in ids.iter().rev().enumerate() {
            let name = if i == 0 { self.root_name(a) } else { self.name(a) };
            if !bytes.is_empty() && bytes.last() != Some(&b'/') {
                bytes.push(b'/');
            }
            bytes.extend_from_slice(name);
        }
        use std::os::unix::ffi::OsStrExt;
        carload::shipment::file::path_to_name(std::path::Path::new(std::ffi::OsStr::from_bytes(&bytes)))
    }

    /// The path the walk read `id` at: the root as given, then the names below it.
    pub fn walk_path(&self, id: u32) -> std::path::PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let mut ids: Vec<u32> = self.ancestors(id).collect();
        ids.reverse();
        ids.push(id);
        let mut p = std::path::PathBuf::new();
        for a in ids {
            p.push(std::ffi::OsStr::from_bytes(self.name(a)));
        }
        p
    }

    /// Ancestors of `id`, nearest first (not including `id`).
    pub fn ancestors(&self, id: u32) -> impl Iterator<Item = u32> + '_ {
        let mut at = self.nodes[id as usize].parent;
        std::iter::from_fn(move || {
            (at != NONE).then(|| {
                let this = at;
                at = self.nodes[at as usize].parent;
                this
            })
        })
    }

    /// Calls `f` on every shippable file at or under `id`, in walk order.
    pub fn for_each_file(&self, id: u32, f: &mut dyn FnMut(u32)) {
        let n = &self.nodes[id as usize];
        if n.kind.is_file() {
            f(id);
        } else if n.folder != NONE {
            let r = self.folders[n.folder as usize].children.clone();
            for c in r {
                self.for_each_file(c, f);
            }
        }
    }

    /// Finds the entry of walk path `path` (as [`Tree::path`] writes it).
    pub fn find(&self, path: &str) -> Option<u32> {
        use std::os::unix::ffi::OsStrExt;
        let path = carload::shipment::file::name_to_path(path);
        let path = path.as_os_str().as_bytes();
        let roots = self.folders[0].children.clone();
        for r in roots {
            let name = self.root_name(r);
            let Some(rest) = path.strip_prefix(name) else { continue };
            if rest.is_empty() {
                return Some(r);
            }
            let rest = if name.is_empty() || name.ends_with(b"/") { rest } else { rest.strip_prefix(b"/")? };
            let mut at = r;
            for part in rest.split(|&b| b == b'/') {
                let f = self.folder_of(at)?;
                let (mut lo, mut hi) = (f.children.start, f.children.end);
                at = loop {
                    if lo >= hi {
                        return None;
                    }
                    let mid = lo + (hi - lo) / 2;
                    match self.name(mid).cmp(part) {
                        std::cmp::Ordering::Less => lo = mid + 1,
                        std::cmp::Ordering::Greater => hi = mid,
                        std::cmp::Ordering::Equal => break mid,
                    }
                };
            }
            return Some(at);
        }
        None
    }

    /// Adds a listing from the walk.
    pub fn ingest(&mut self, l: Listing) {
        let end = l.first as usize + l.children.len();
        if self.nodes.len() < end {
            self.nodes.resize(end, PLACEHOLDER);
        }
        let folder = if l.folder == ROOTS { 0 } else { self.nodes[l.folder as usize].folder };
        let parent = if l.folder == ROOTS { NONE } else { l.folder };
        let mut sum = Totals::default();
        let mut subfolders = 0u32;
        let mut start = 0usize;
        for (i, c) in l.children.iter().enumerate() {
            let id = l.first + i as u32;
            let name = &l.names[start..c.name_end as usize];
            start = c.name_end as usize;
            let name_off = self.names.len() as u32;
            self.names.extend_from_slice(name);
            let mut node = Node {
                name_off,
                name_len: name.len().min(u16::MAX as usize) as u16,
                kind: c.kind,
                loaded: true,
                parent,
                folder: NONE,
                size: c.size,
                mtime_ns: c.mtime_ns,
                ident: c.ident,
            };
            if c.kind == Kind::Folder {
                node.folder = self.folders.len() as u32;
                self.folders.push(Folder {
                    node: id,
                    children: 0..0,
                    totals: Totals::default(),
                    batched: 0,
                    folders: 0,
                    pending: 1,
                });
                subfolders += 1;
            }
            if let Some(e) = &c.error {
                self.errors.insert(id, e.clone());
            }
            if c.kind.is_file() {
                sum.files += 1;
                sum.bytes += c.size;
                sum.cost += c.cost;
            } else if c.kind != Kind::Folder {
                sum.unshippable += 1;
            }
            self.nodes[id as usize] = node;
        }
        if let Some(e) = l.error {
            if l.folder != ROOTS {
                self.errors.insert(l.folder, e.into());
                sum.unshippable += 1;
            }
        }
        let f = &mut self.folders[folder as usize];
        f.children = l.first..end as u32;
        f.pending = f.pending - 1 + subfolders;
        let done = f.pending == 0;
        // Totals up the chain.
        let mut at = folder;
        loop {
            let f = &mut self.folders[at as usize];
            f.totals.add(&sum);
            f.folders += subfolders as u64;
            if f.node == NONE {
                break;
            }
            let p = self.nodes[f.node as usize].parent;
            at = if p == NONE { 0 } else { self.nodes[p as usize].folder };
        }
        if done {
            self.finish(folder);
        }
    }

    fn finish(&mut self, mut folder: u32) {
        loop {
            let node = self.folders[folder as usize].node;
            if node == NONE {
                return;
            }
            let p = self.nodes[node as usize].parent;
            let up = if p == NONE { 0 } else { self.nodes[p as usize].folder };
            let f = &mut self.folders[up as usize];
            f.pending -= 1;
            if f.pending != 0 {
                return;
            }
            folder = up;
        }
    }

    /// Records a file's new size and time (or that it is gone), keeping folder totals right.
    pub fn update_file(&mut self, id: u32, now: Option<FileStat>) {
        let n = self.nodes[id as usize];
        if !n.kind.is_file() {
            return;
        }
        let old = Totals { files: 1, bytes: n.size, cost: self.cost_of(n.size), unshippable: 0 };
        let new = match now {
            Some((size, _, _)) => Totals { files: 1, bytes: size, cost: self.cost_of(size), unshippable: 0 },
            None => Totals { unshippable: 1, ..Totals::default() },
        };
        match now {
            Some((size, mtime, ident)) => {
                self.nodes[id as usize].size = size;
                self.nodes[id as usize].mtime_ns = mtime;
                self.nodes[id as usize].ident = ident;
            }
            None => {
                self.nodes[id as usize].kind = Kind::Other;
                self.errors.insert(id, "vanished since the scan".into());
            }
        }
        self.retotal(n.parent, old, new);
    }

    /// Replaces an entry's contribution `old` by `new` in the totals of every folder above it
    /// (`parent` and its ancestors, up to the roots).
    fn retotal(&mut self, parent: u32, old: Totals, new: Totals) {
        let mut at = parent;
        loop {
            let fi = if at == NONE { 0 } else { self.nodes[at as usize].folder };
            let t = &mut self.folders[fi as usize].totals;
            t.files = t.files + new.files - old.files;
            t.bytes = t.bytes + new.bytes - old.bytes;
            t.cost = t.cost + new.cost - old.cost;
            t.unshippable = t.unshippable + new.unshippable - old.unshippable;
            if at == NONE {
                break;
            }
            at = self.nodes[at as usize].parent;
        }
    }

    /// Entry `id`'s file record now (for undoing [`Tree::update_file`]).
    pub fn file_record(&self, id: u32) -> FileRecord {
        let n = &self.nodes[id as usize];
        FileRecord { kind: n.kind, stat: (n.size, n.mtime_ns, n.ident), error: self.errors.get(&id).cloned() }
    }

    /// Puts back a record taken by [`Tree::file_record`], keeping folder totals right.
    pub fn restore_file(&mut self, id: u32, rec: FileRecord) {
        let totals = |kind: Kind, size: u64| {
            if kind.is_file() {
                Totals { files: 1, bytes: size, cost: self.cost_of(size), unshippable: 0 }
            } else if kind != Kind::Folder {
                Totals { unshippable: 1, ..Totals::default() }
            } else {
                Totals::default()
            }
        };
        let n = self.nodes[id as usize];
        let (old, new) = (totals(n.kind, n.size), totals(rec.kind, rec.stat.0));
        let node = &mut self.nodes[id as usize];
        node.kind = rec.kind;
        (node.size, node.mtime_ns, node.ident) = rec.stat;
        match rec.error {
            Some(e) => self.errors.insert(id, e),
            None => self.errors.remove(&id),
        };
        self.retotal(n.parent, old, new);
    }

    /// Adds `delta` to the batched-file count of every folder above file `id`.
    pub fn add_batched(&mut self, id: u32, delta: i64) {
        let mut at = self.nodes[id as usize].parent;
        loop {
            let fi = if at == NONE { 0 } else { self.nodes[at as usize].folder };
            let f = &mut self.folders[fi as usize];
            f.batched = f.batched.saturating_add_signed(delta);
            if at == NONE {
                break;
            }
            at = self.nodes[at as usize].parent;
        }
    }

    /// Whether entry `id` has been ingested (IDs of listings still in flight are placeholders).
    pub fn loaded(&self, id: u32) -> bool {
        self.nodes.get(id as usize).is_some_and(|n| n.loaded)
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use carload::walk::Child;

    /// A listing of `(name, kind, size)` children.
    pub fn listing(folder: u32, first: u32, kids: &[(&str, Kind, u64)]) -> Listing {
        listing_with(folder, first, kids, &|s| s + 100)
    }

    /// A listing whose files cost `cost(size)`; `Other` entries are FIFOs.
    pub fn listing_with(folder: u32, first: u32, kids: &[(&str, Kind, u64)], cost: &dyn Fn(u64) -> u64) -> Listing {
        let mut l = Listing { folder, first, ..Listing::default() };
        for (name, kind, size) in kids {
            l.names.extend_from_slice(name.as_bytes());
            l.children.push(Child {
                name_end: l.names.len() as u32,
                kind: *kind,
                size: *size,
                mtime_ns: 1_700_000_000_000_000_000,
                ident: Ident { ctime_ns: 1_700_000_000_000_000_000, ino: first as u64 + l.children.len() as u64 },
                cost: if kind.is_file() { cost(*size) } else { 0 },
                error: (*kind == Kind::Other).then(|| "FIFO: not a regular file".into()),
            });
        }
        l
    }

    #[test]
    fn totals_and_completion_follow_the_listings() {
        let mut t = Tree::new(Box::new(|s| s + 100));
        t.ingest(listing(ROOTS, 0, &[("data", Kind::Folder, 0)]));
        assert!(!t.complete());
        t.ingest(listing(0, 1, &[("a", Kind::File, 10), ("sub", Kind::Folder, 0), ("z", Kind::File, 5)]));
        assert_eq!(t.grand_totals().files, 2);
        assert!(!t.complete());
        t.ingest(listing(2, 4, &[("b", Kind::File, 7), ("fifo", Kind::Other, 0)]));
        assert!(t.complete());
        let g = t.grand_totals();
        assert_eq!((g.files, g.bytes, g.cost, g.unshippable), (3, 22, 322, 1));
        assert_eq!(t.path(4), "data/sub/b");
        assert_eq!(t.find("data/sub/b"), Some(4));
        assert_eq!(t.find("data/sub/nope"), None);
        assert_eq!(t.find("data"), Some(0));
        let mut order = Vec::new();
        t.for_each_file(0, &mut |id| order.push(t.path(id)));
        assert_eq!(order, ["data/a", "data/sub/b", "data/z"]);
        assert_eq!(std::mem::size_of::<Node>(), 48);
    }

    #[test]
    fn listings_may_arrive_out_of_id_order() {
        let mut t = Tree::new(Box::new(|s| s));
        t.ingest(listing(ROOTS, 0, &[("r", Kind::Folder, 0)]));
        t.ingest(listing(0, 1, &[("x", Kind::Folder, 0), ("y", Kind::Folder, 0)]));
        // y's listing reserved IDs 3..5 but x's (5..6) arrives first.
        t.ingest(listing(1, 5, &[("f", Kind::File, 1)]));
        assert!(!t.loaded(3));
        t.ingest(listing(2, 3, &[("g", Kind::File, 2), ("h", Kind::File, 3)]));
        assert!(t.complete());
        assert_eq!(t.grand_totals().bytes, 6);
        assert_eq!(t.path(5), "r/x/f");
    }
}
