//! The files a plan's walk found, held compactly (issue #23, plan memory): fixed-width columns
//! (size, mtime, ctime, inode), every name in one arena with its folder's path held once, and
//! the walk order as one `u32` a file: 40 bytes a file plus its name's bytes
//! ([`WalkedFiles::heap_bytes`]); a file's walk path is made when asked for.
//!
//! The walk ([`crate::walk`]) hands over one listing per folder, from its threads, in any order;
//! each is folded into the columns as it arrives and dropped, so the walk's own per-entry
//! records (60 bytes and more) are never all held at once. The walk order (depth first, names
//! byte-sorted, `walkdir`'s order) is then found from the folders alone.

use super::file::{FileRef, Ident};
use super::plan::{PlanError, SourceFile};
use crate::importer::ImportError;
use crate::walk::{Kind, Listing};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The files a walk found ([`walk_tree`]), held compactly. File `i` is the `i`-th in walk order.
#[derive(Debug, Default)]
pub struct WalkedFiles {
    /// Per slot (a listed entry that is not a folder, in the order the folders were listed):
    /// size, mtime, ctime and inode.
    size: Vec<u64>,
    mtime: Vec<i64>,
    ctime: Vec<i64>,
    ino: Vec<u64>,
    /// End of each slot's name in `names`, from its folder's `name_base`.
    name_end: Vec<u32>,
    /// The slots' names back to back (for the roots: each root's walk path).
    names: Vec<u8>,
    /// Slots that are not regular files, by slot (sorted).
    kinds: Vec<(u32, Kind)>,
    /// The folders, in the order listed; their slots are consecutive.
    folders: Vec<Folder>,
    /// The slot of each file, in walk order.
    order: Vec<u32>,
    /// Index in `folders` of the roots' listing.
    roots: u32,
}

/// One listed folder.
#[derive(Debug, Default)]
struct Folder {
    /// Walk path (empty for the roots' listing: its names are whole walk paths).
    path: PathBuf,
    /// Its first slot.
    first_slot: u32,
    /// Where its names start in the arena.
    name_base: u64,
}

/// What the walk of a folder leaves besides its slots, until the walk order is known.
#[derive(Debug, Default)]
struct Pending {
    /// The folder's ID in the walk, and its first child's.
    id: u32,
    first: u32,
    /// Children (slots and sub-folders).
    count: u32,
    /// Why it could not be read.
    error: Option<String>,
    /// Sub-folders: position among the children, and name.
    dirs: Vec<(u32, Box<[u8]>)>,
}

impl WalkedFiles {
    /// Number of files.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn slot(&self, i: usize) -> usize {
        self.order[i] as usize
    }

    /// Index in `folders` of the folder holding `slot`.
    fn folder_of(&self, slot: usize) -> usize {
        self.folders.partition_point(|f| f.first_slot as usize <= slot) - 1
    }

    /// The name bytes of `slot` and its folder's index.
    fn name_of(&self, slot: usize) -> (&[u8], usize) {
        let f = self.folder_of(slot);
        let folder = &self.folders[f];
        let start = if slot == folder.first_slot as usize { 0 } else { self.name_end[slot - 1] as usize };
        let base = folder.name_base as usize;
        (&self.names[base + start..base + self.name_end[slot] as usize], f)
    }

    /// What file `i` is (a regular file or a symlink to one, unless the walk took specials).
    pub fn kind(&self, i: usize) -> Kind {
        let slot = self.order[i];
        match self.kinds.binary_search_by_key(&slot, |&(s, _)| s) {
            Ok(k) => self.kinds[k].1,
            Err(_) => Kind::File,
        }
    }

    /// File `i`'s size.
    pub fn size(&self, i: usize) -> u64 {
        self.size[self.slot(i)]
    }

    /// File `i`'s modification time.
    pub fn mtime_ns(&self, i: usize) -> i64 {
        self.mtime[self.slot(i)]
    }

    /// File `i`'s status-change time and inode.
    pub fn ident(&self, i: usize) -> Ident {
        let s = self.slot(i);
        Ident { ctime_ns: self.ctime[s], ino: self.ino[s] }
    }

    /// File `i`'s record in a shipment (the whole file).
    pub fn file_ref(&self, i: usize) -> FileRef {
        FileRef {
            name: self.name(i),
            size: self.size(i),
            mtime_ns: self.mtime_ns(i),
            ident: Some(self.ident(i)),
            part: None,
        }
    }

    /// File `i`'s walk path.
    pub fn path(&self, i: usize) -> PathBuf {
        let (name, f) = self.name_of(self.slot(i));
        self.folders[f].path.join(OsStr::from_bytes(name))
    }

    /// File `i`'s name in the shipment ([`super::file::path_to_name`] of its walk path).
    pub fn name(&self, i: usize) -> String {
        super::file::path_to_name(&self.path(i))
    }

    /// The folder holding file `i` (its walk path's parent).
    pub fn folder(&self, i: usize) -> &Path {
        let (name, f) = self.name_of(self.slot(i));
        if f == self.roots as usize {
            return Path::new(OsStr::from_bytes(name)).parent().unwrap_or(Path::new(""));
        }
        &self.folders[f].path
    }

    /// File `i` as a [`SourceFile`].
    pub fn source_file(&self, i: usize) -> SourceFile {
        SourceFile { name: self.name(i), size: self.size(i), mtime_ns: self.mtime_ns(i), ident: self.ident(i) }
    }

    /// Bytes held on the heap (capacities counted): what the bound on plan memory measures.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.size.capacity() * 8
            + self.mtime.capacity() * 8
            + self.ctime.capacity() * 8
            + self.ino.capacity() * 8
            + self.name_end.capacity() * 4
            + self.names.capacity()
            + self.kinds.capacity() * size_of::<(u32, Kind)>()
            + self.folders.capacity() * size_of::<Folder>()
            + self.folders.iter().map(|f| f.path.capacity()).sum::<usize>()
            + self.order.capacity() * 4
    }

    /// [`super::plan::refuse_carload_outputs`] of these files (their walk paths), without making
    /// every path: the files of each folder are judged together by their names.
    pub fn refuse_carload_outputs(&self) -> Result<(), PlanError> {
        let mut folders: HashMap<&Path, Vec<u32>> = HashMap::new();
        let mut start = 0;
        while start < self.len() {
            let folder = self.folder(start);
            let same = |i: usize| self.folder(i).as_os_str().as_bytes() == folder.as_os_str().as_bytes();
            let end = (start + 1..self.len()).find(|&i| !same(i)).unwrap_or(self.len());
            folders.entry(folder).or_default().extend(start as u32..end as u32);
            start = end;
        }
        let mut first: Option<(u32, String)> = None;
        for members in folders.values() {
            let names: Vec<&[u8]> = members
                .iter()
                .map(|&i| {
                    let (name, _) = self.name_of(self.slot(i as usize));
                    Path::new(OsStr::from_bytes(name)).file_name().map_or(&[][..], |n| n.as_bytes())
                })
                .collect();
            let found = members.iter().zip(super::outputs::carload_outputs(&names)).find_map(|(&i, r)| Some((i, r?)));
            if let Some((i, reason)) = found {
                if first.as_ref().is_none_or(|(j, _)| i < *j) {
                    first = Some((i, reason));
                }
            }
        }
        match first {
            Some((i, reason)) => Err(PlanError::CarloadOutput { path: self.path(i as usize), reason }),
            None => Ok(()),
        }
    }
}

/// The listings folded in so far, and what the walk order still needs of each.
#[derive(Debug, Default)]
struct Building {
    files: WalkedFiles,
    /// Per folder (parallel to `files.folders`).
    pending: Vec<Pending>,
    /// Why a slot cannot be shipped, by slot (sorted).
    errors: Vec<(u32, Box<str>)>,
}

impl Building {
    /// Folds one listing in. The roots' listing is named by `root_names`.
    fn add(&mut self, l: Listing, root_names: &[PathBuf]) {
        let w = &mut self.files;
        let first_slot = u32::try_from(w.size.len()).expect("at most 2^32 entries (the walk's IDs are 32-bit)");
        let name_base = w.names.len() as u64;
        let mut p = Pending {
            id: l.folder,
            first: l.first,
            count: l.children.len() as u32,
            error: l.error.clone(),
            dirs: Vec::new(),
        };
        let roots = l.folder == crate::walk::ROOTS;
        for (i, c) in l.children.iter().enumerate() {
            let name = match roots {
                true => root_names[i].as_os_str().as_bytes(),
                false => l.name(i),
            };
            if c.kind == Kind::Folder {
                p.dirs.push((i as u32, name.into()));
                continue;
            }
            let slot = w.size.len() as u32;
            w.size.push(c.size);
            w.mtime.push(c.mtime_ns);
            w.ctime.push(c.ident.ctime_ns);
            w.ino.push(c.ident.ino);
            w.names.extend_from_slice(name);
            w.name_end.push((w.names.len() as u64 - name_base) as u32);
            if c.kind != Kind::File {
                w.kinds.push((slot, c.kind));
            }
            if let Some(e) = &c.error {
                self.errors.push((slot, e.clone()));
            }
        }
        w.folders.push(Folder { path: PathBuf::new(), first_slot, name_base });
        self.pending.push(p);
    }

    /// The files in walk order: depth first over the folders, children in name order (the
    /// order of `walkdir`); the first entry that cannot be shipped in that order is the error.
    fn finish(self, inputs: &[PathBuf], root_names: &[PathBuf], specials: bool) -> Result<WalkedFiles, PlanError> {
        let Building { mut files, pending, errors } = self;
        let mut folders = std::mem::take(&mut files.folders);
        let by_id: HashMap<u32, usize> = pending.iter().enumerate().map(|(k, p)| (p.id, k)).collect();
        let roots = by_id[&crate::walk::ROOTS];
        files.roots = roots as u32;
        let kind_of = |slot: u32| match files.kinds.binary_search_by_key(&slot, |&(s, _)| s) {
            Ok(k) => files.kinds[k].1,
            Err(_) => Kind::File,
        };
        let error_of = |slot: u32| errors.binary_search_by_key(&slot, |e| e.0).ok().map(|k| &*errors[k].1);
        let mut order: Vec<u32> = Vec::with_capacity(files.size.len());
        let dirs_before = |p: &Pending, pos: u32| p.dirs.partition_point(|d| d.0 < pos);
        for (r, root) in inputs.iter().enumerate() {
            let top = &pending[roots];
            let d = dirs_before(top, r as u32);
            if top.dirs.get(d).is_some_and(|x| x.0 == r as u32) {
                let Some(&l) = by_id.get(&(r as u32)) else { continue };
                folders[l].path = root_names[r].clone();
                let mut stack: Vec<(usize, u32, usize)> = vec![(l, 0, 0)];
                while let Some((k, i, d)) = stack.pop() {
                    let p = &pending[k];
                    if i == 0 {
                        if let Some(e) = &p.error {
                            let source = std::io::Error::other(e.clone());
                            return Err(ImportError::Io { path: folders[k].path.clone(), source }.into());
                        }
                    }
                    if i >= p.count {
                        continue;
                    }
                    if p.dirs.get(d).is_some_and(|x| x.0 == i) {
                        stack.push((k, i + 1, d + 1));
                        if let Some(&sub) = by_id.get(&(p.first + i)) {
                            folders[sub].path = folders[k].path.join(OsStr::from_bytes(&p.dirs[d].1));
                            stack.push((sub, 0, 0));
                        }
                        continue;
                    }
                    // The files up to the next sub-folder.
                    let end = p.dirs.get(d).map_or(p.count, |x| x.0);
                    let folder = &folders[k];
                    for pos in i..end {
                        let slot = folder.first_slot + pos - d as u32;
                        match kind_of(slot) {
                            Kind::File | Kind::LinkToFile => order.push(slot),
                            Kind::LinkToFolder | Kind::Other if specials => order.push(slot),
                            kind => {
                                let start = if pos == d as u32 { 0 } else { files.name_end[slot as usize - 1] };
                                let base = folder.name_base as usize;
                                let name =
                                    &files.names[base + start as usize..base + files.name_end[slot as usize] as usize];
                                let path = folder.path.join(OsStr::from_bytes(name));
                                return Err(match kind {
                                    Kind::LinkToFolder => PlanError::SymlinkToFolder(path),
                                    _ => super::plan::other_error(path, error_of(slot)),
                                });
                            }
                        }
                    }
                    stack.push((k, end, d));
                }
                continue;
            }
            let slot = folders[roots].first_slot + r as u32 - d as u32;
            match kind_of(slot) {
                Kind::File | Kind::LinkToFile => order.push(slot),
                Kind::LinkToFolder | Kind::Other if specials => order.push(slot),
                Kind::LinkToFolder => return Err(PlanError::SymlinkToFolder(root.clone())),
                _ => return Err(super::plan::other_error(root.clone(), error_of(slot))),
            }
        }
        files.folders = folders;
        files.order = order;
        if overlapping(root_names) {
            // Overlapping inputs name some files twice: keep the first.
            let mut seen = std::collections::HashSet::new();
            let keep: Vec<bool> = (0..files.len()).map(|i| seen.insert(files.path(i))).collect();
            let mut k = keep.iter();
            files.order.retain(|_| *k.next().unwrap());
        }
        for v in [&mut files.size, &mut files.ino] {
            v.shrink_to_fit();
        }
        for v in [&mut files.mtime, &mut files.ctime] {
            v.shrink_to_fit();
        }
        files.name_end.shrink_to_fit();
        files.names.shrink_to_fit();
        files.order.shrink_to_fit();
        Ok(files)
    }
}

/// Whether one input's name lies inside another's (or equals it): only then can two files of
/// the walk have the same name.
fn overlapping(names: &[PathBuf]) -> bool {
    names.iter().enumerate().any(|(a, x)| names.iter().enumerate().any(|(b, y)| a != b && y.starts_with(x)))
}

/// Walks `inputs` (files or folders), named by `names` (their walk paths), keeping the files
/// compactly ([`WalkedFiles`]). Folders are read in parallel by [`crate::walk`] (files `stat`ed
/// relative to their folder); each listing is folded into the columns as it arrives. With
/// `specials`, symlinks to folders and entries that are not regular files are listed as files
/// (see [`WalkedFiles::kind`]) instead of being errors; without, the first in walk order is the
/// error. Overlapping inputs list a file once (its first name).
pub fn walk_tree(inputs: &[PathBuf], names: &[PathBuf], specials: bool) -> Result<WalkedFiles, PlanError> {
    use crate::walk::{walk, WalkOptions};
    for root in inputs {
        std::fs::metadata(root).map_err(|e| ImportError::io(root, e))?;
    }
    let building = std::sync::Mutex::new(Building::default());
    let stop = std::sync::atomic::AtomicBool::new(false);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    walk(inputs, &WalkOptions { threads, cost: &|_| 0, stop: &stop, outputs: false, readable: false }, &|l| {
        building.lock().unwrap().add(l, names)
    });
    building.into_inner().unwrap().finish(inputs, names, specials)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::{Child, ROOTS};
    use std::fs;

    /// A tree whose folders sort between files, with hidden files, a symlink to a file, an
    /// empty folder and a file named with bytes that are not UTF-8.
    fn tree(root: &Path) {
        for d in ["b/c", "e", "ba/x"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for (f, n) in [("a", 1), ("b/.y", 2), ("b/c/z", 3), ("b/x", 4), ("b0", 5), ("ba/x/q", 6), ("d", 7), (".h", 8)] {
            fs::write(root.join(f), vec![7u8; n]).unwrap();
        }
        fs::write(root.join(OsStr::from_bytes(b"b/n\xff")), b"nine").unwrap();
        std::os::unix::fs::symlink("a", root.join("l")).unwrap();
    }

    /// The walk lists every file as `walkdir` (the reference, sorted by name) does, in its order,
    /// each once (overlapping inputs and inputs that are files), with its metadata, kind and
    /// folder; carload outputs are refused as the path-based rule refuses them.
    #[test]
    fn the_walk_is_walkdirs() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("r");
        tree(&r);
        let inputs = vec![r.join("b"), r.clone(), r.join("d"), r.join("ba/x/q")];
        let names: Vec<PathBuf> = inputs.iter().map(|p| crate::walk::clean_path(p)).collect();
        let w = walk_tree(&inputs, &names, false).unwrap();
        let mut want: Vec<PathBuf> = Vec::new();
        for input in &inputs {
            for e in walkdir::WalkDir::new(input).sort_by_file_name() {
                let p = e.unwrap().into_path();
                if fs::metadata(&p).unwrap().is_file() && !want.contains(&p) {
                    want.push(p);
                }
            }
        }
        let got: Vec<PathBuf> = (0..w.len()).map(|i| w.path(i)).collect();
        assert_eq!(got, want);
        for (i, p) in want.iter().enumerate() {
            let m = fs::metadata(p).unwrap();
            assert_eq!(
                (w.size(i), w.mtime_ns(i), w.ident(i)),
                (m.len(), super::super::plan::mtime_ns(&m), Ident::of(&m))
            );
            assert_eq!(w.folder(i), p.parent().unwrap());
            let link = fs::symlink_metadata(p).unwrap().file_type().is_symlink();
            assert_eq!(w.kind(i), if link { Kind::LinkToFile } else { Kind::File });
            assert_eq!(w.name(i), super::super::file::path_to_name(p));
        }
        let path_rule = |w: &WalkedFiles| {
            super::super::plan::refuse_carload_outputs((0..w.len()).map(|i| w.path(i))).map_err(|e| e.to_string())
        };
        assert!(w.refuse_carload_outputs().is_ok() && path_rule(&w).is_ok());
        for f in ["b/c/b00001.car", "b/c/b00001.json", "ba/x/b00000.car", "ba/x/b00000.json"] {
            fs::write(r.join(f), b"x").unwrap();
        }
        let w = walk_tree(&inputs, &names, false).unwrap();
        let e = w.refuse_carload_outputs().map_err(|e| e.to_string());
        assert_eq!(e, path_rule(&w));
        assert!(e.unwrap_err().contains("b/c/b00001.car"));
    }

    /// The first entry in walk order that cannot be shipped is the error; with `specials` such
    /// entries are listed as files of their kind.
    #[test]
    fn the_first_unshippable_entry_in_walk_order_is_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("r");
        tree(&r);
        std::os::unix::fs::symlink(r.join("ba"), r.join("b/c/m")).unwrap();
        std::os::unix::fs::symlink("nowhere", r.join("d0")).unwrap();
        let names = vec![r.clone()];
        let e = walk_tree(std::slice::from_ref(&r), &names, false).unwrap_err();
        assert!(matches!(&e, PlanError::SymlinkToFolder(p) if *p == r.join("b/c/m")), "{e}");
        fs::remove_file(r.join("b/c/m")).unwrap();
        let e = walk_tree(std::slice::from_ref(&r), &names, false).unwrap_err();
        assert!(matches!(&e, PlanError::Import(ImportError::Missing(p)) if *p == r.join("d0")), "{e}");
        std::os::unix::fs::symlink(r.join("ba"), r.join("b/c/m")).unwrap();
        let w = walk_tree(std::slice::from_ref(&r), &names, true).unwrap();
        let kinds: Vec<(PathBuf, Kind)> =
            (0..w.len()).filter(|&i| w.kind(i) != Kind::File).map(|i| (w.path(i), w.kind(i))).collect();
        assert_eq!(
            kinds,
            [(r.join("b/c/m"), Kind::LinkToFolder), (r.join("d0"), Kind::Other), (r.join("l"), Kind::LinkToFile)]
        );
    }

    /// Bytes a file may cost `plan` beyond its fixed 64 MiB (issue #23 part 4).
    const BOUND: usize = 100;

    /// What `plan` holds per file while it packs, counted by the structures themselves: the walk
    /// (columns, names, folders, walk order), the packer's per-entry cost and sort key, and the
    /// packed batches. Names of 12 bytes, 100 files a folder, one batch.
    #[test]
    fn a_plan_holds_at_most_100_bytes_a_file() {
        let (folders, per) = (1000u32, 100u32);
        let mut b = Building::default();
        let child = |kind, size| Child {
            name_end: 0,
            kind,
            size,
            mtime_ns: 1,
            ident: Ident { ctime_ns: 2, ino: 3 },
            cost: 0,
            error: None,
        };
        let listing = |folder, first, names: Vec<String>, kind| {
            let mut l = Listing { folder, first, ..Listing::default() };
            for (i, n) in names.iter().enumerate() {
                l.names.extend_from_slice(n.as_bytes());
                l.children.push(Child { name_end: l.names.len() as u32, ..child(kind, 1000 + i as u64) });
            }
            l
        };
        let roots = vec![PathBuf::from("data")];
        b.add(listing(ROOTS, 0, vec!["data".into()], Kind::Folder), &roots);
        b.add(listing(0, 1, (0..folders).map(|d| format!("d{d:04}")).collect(), Kind::Folder), &roots);
        for d in 0..folders {
            let names = (0..per).map(|f| format!("f{:06}.json", d * per + f)).collect();
            b.add(listing(1 + d, 1 + folders + d * per, names, Kind::File), &roots);
        }
        let w = b.finish(&roots, &roots, false).unwrap();
        let n = w.len();
        assert_eq!(n, (folders * per) as usize);
        assert_eq!(w.path(n - 1), Path::new("data/d0999/f099999.json"));
        let profile = crate::profile::Profile::default();
        let packing = super::super::pack::pack_ids(
            Vec::new(),
            n,
            &|i| w.size(i),
            &[],
            &profile,
            32 << 30,
            super::super::plan::Pack::BestFit,
        )
        .unwrap();
        assert_eq!(packing.bins.len(), 1);
        let held = w.heap_bytes() + n * super::super::pack::PACK_BYTES_PER_ENTRY + packing.heap_bytes();
        assert!(held / n <= BOUND, "{} bytes a file", held / n);
        assert!(w.heap_bytes() / n <= 40 + 12 + 2, "the walk: {} bytes a file", w.heap_bytes() / n);
    }
}
