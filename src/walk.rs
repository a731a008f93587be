//! A parallel metadata walk that reports one [`Listing`] per folder, for callers that build
//! their own tree (the terminal workstation's browser).
//!
//! Folders are read by a pool of threads; each folder's entries are sorted by name bytes (the
//! walk order of [`crate::shipment::plan::walk_inputs`]) and numbered with a contiguous range of
//! IDs reserved atomically, so a listing can be placed without any lookup: child `i` of a listing
//! has ID `first + i`, and a sub-folder's own listing names it by that ID. A folder's listing is
//! always handed over before the listings of its sub-folders. Only regular files are `stat`ed
//! (sub-folders are known from the directory entry's type), and symlinks are resolved as the
//! planner resolves them: a symlink to a file counts as that file.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Condvar, Mutex};

/// Lexically cleans a path as Go's `filepath.Clean` does for the common cases (drops `.`
/// components and trailing slashes): how the walk names its roots.
pub fn clean_path(p: &Path) -> PathBuf {
    let cleaned: PathBuf = p.components().filter(|c| !matches!(c, Component::CurDir)).collect();
    if cleaned.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        cleaned
    }
}

/// The parent ID of the listing of the roots.
pub const ROOTS: u32 = u32::MAX;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A regular file.
    File,
    /// A folder (its own listing follows).
    Folder,
    /// A symlink to a regular file (size and time are the target's, as `plan` takes them).
    LinkToFile,
    /// A symlink to a folder (not followed; shipments do not take them).
    LinkToFolder,
    /// A FIFO, socket or device, or a symlink to one, or a broken symlink (see the error).
    Other,
}

impl Kind {
    /// Whether the entry is shipped as a file.
    pub fn is_file(self) -> bool {
        matches!(self, Kind::File | Kind::LinkToFile)
    }
}

/// One entry of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// End of its name in [`Listing::names`] (the start is the previous child's end).
    pub name_end: u32,
    /// What it is.
    pub kind: Kind,
    /// Size in bytes (files).
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (files).
    pub mtime_ns: i64,
    /// Status-change time and inode (files): with size and mtime, what identifies the contents
    /// a plan records.
    pub ident: crate::shipment::file::Ident,
    /// Predicted CAR bytes of a file, from the walk's cost function.
    pub cost: u64,
    /// Why it cannot be shipped or read, if so.
    pub error: Option<Box<str>>,
}

/// The entries of one folder (or the roots), sorted by name bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// ID of the folder, or [`ROOTS`].
    pub folder: u32,
    /// ID of the first child.
    pub first: u32,
    /// The names, back to back.
    pub names: Vec<u8>,
    /// The children.
    pub children: Vec<Child>,
    /// Why the folder could not be read, if so (then it has no children).
    pub error: Option<String>,
}

impl Listing {
    /// Name of child `i`.
    pub fn name(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.children[i - 1].name_end as usize };
        &self.names[start..self.children[i].name_end as usize]
    }
}

/// How the walk runs.
pub struct WalkOptions<'a> {
    /// Threads reading folders.
    pub threads: usize,
    /// Predicted CAR bytes of a file of the given size.
    pub cost: &'a (dyn Fn(u64) -> u64 + Sync),
    /// Set to stop early (folders not yet read are skipped).
    pub stop: &'a AtomicBool,
    /// Mark carload's own outputs ([`crate::shipment::outputs`]) as [`Kind::Other`] with the
    /// reason (the workstation's scan; `plan` refuses them itself).
    pub outputs: bool,
    /// Mark files this process may not read (`faccessat` `R_OK`, effective IDs) as
    /// [`Kind::Other`] with the reason (one more system call per file).
    pub readable: bool,
}

struct Queue {
    jobs: Vec<(PathBuf, u32)>,
    active: usize,
}

/// Walks `roots` (given as paths; the roots' listing names them as given, cleaned) and hands
/// every listing to `out`, from the walking threads. Returns when every folder was read or
/// `stop` was set.
pub fn walk(roots: &[PathBuf], o: &WalkOptions<'_>, out: &(dyn Fn(Listing) + Sync)) {
    let next = AtomicU32::new(roots.len() as u32);
    let mut top = Listing { folder: ROOTS, first: 0, ..Listing::default() };
    let mut jobs = Vec::new();
    for (i, root) in roots.iter().enumerate() {
        let name = clean_path(root);
        top.names.extend_from_slice(name.as_os_str().as_bytes());
        let mut child = describe(fs::metadata(root), o.cost);
        if o.readable && child.kind.is_file() {
            unreadable(root, &mut child);
        }
        child.name_end = top.names.len() as u32;
        if child.kind == Kind::Folder {
            jobs.push((root.clone(), i as u32));
        }
        top.children.push(child);
    }
    out(top);
    jobs.reverse();
    let queue = Mutex::new(Queue { jobs, active: 0 });
    let wake = Condvar::new();
    std::thread::scope(|s| {
        for _ in 0..o.threads.max(1) {
            s.spawn(|| worker(&queue, &wake, &next, o, out));
        }
    });
}

fn worker(queue: &Mutex<Queue>, wake: &Condvar, next: &AtomicU32, o: &WalkOptions<'_>, out: &(dyn Fn(Listing) + Sync)) {
    loop {
        let (path, id) = {
            let mut q = queue.lock().unwrap();
            loop {
                if o.stop.load(Ordering::Relaxed) {
                    q.jobs.clear();
                }
                if let Some(job) = q.jobs.pop() {
                    q.active += 1;
                    break job;
                }
                if q.active == 0 {
                    wake.notify_all();
                    return;
                }
                q = wake.wait(q).unwrap();
            }
        };
        let (listing, subfolders) = read_folder(&path, id, next, o);
        out(listing);
        let mut q = queue.lock().unwrap();
        q.active -= 1;
        let pushed = !subfolders.is_empty();
        q.jobs.extend(subfolders.into_iter().rev());
        if pushed || q.active == 0 {
            wake.notify_all();
        }
    }
}

/// Reads one folder: its listing and the sub-folders to read next.
fn read_folder(path: &Path, id: u32, next: &AtomicU32, o: &WalkOptions<'_>) -> (Listing, Vec<(PathBuf, u32)>) {
    let cost = o.cost;
    let mut listing = Listing { folder: id, ..Listing::default() };
    let rd = match fs::read_dir(path) {
        Ok(rd) => rd,
        Err(e) => {
            listing.error = Some(e.to_string());
            listing.first = next.load(Ordering::Relaxed);
            return (listing, Vec::new());
        }
    };
    let mut found: Vec<(std::ffi::OsString, Child)> = Vec::new();
    for item in rd {
        let item = match item {
            Ok(i) => i,
            Err(e) => {
                listing.error = Some(format!("listing stopped early: {e}"));
                break;
            }
        };
        let name = item.file_name();
        let child = match item.file_type() {
            Ok(t) if t.is_dir() => Child { kind: Kind::Folder, ..blank() },
            Ok(t) if t.is_symlink() => {
                let mut c = describe_link(&item.path(), cost);
                if o.readable && c.kind.is_file() {
                    unreadable(&item.path(), &mut c);
                }
                c
            }
            Ok(_) => {
                let meta = item.metadata();
                // A file whose mode lets every class read it is taken as readable (only an ACL
                // could say otherwise, and a build would then name it): the access check, a
                // system call per file, is kept for the others (the scan of 1,000,000 files
                // took 1.5× as long with it on every file).
                let check = o.readable && meta.as_ref().is_ok_and(|m| m.is_file() && m.mode() & 0o444 != 0o444);
                let mut c = describe(meta, cost);
                if check {
                    unreadable(&item.path(), &mut c);
                }
                c
            }
            Err(e) => Child { kind: Kind::Other, error: Some(e.to_string().into()), ..blank() },
        };
        found.push((name, child));
    }
    found.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    if o.outputs {
        let files: Vec<usize> = (0..found.len()).filter(|&i| found[i].1.kind.is_file()).collect();
        let names: Vec<&[u8]> = files.iter().map(|&i| found[i].0.as_bytes()).collect();
        let reasons = crate::shipment::outputs::carload_outputs(&names);
        for (i, reason) in files.into_iter().zip(reasons) {
            if let Some(r) = reason {
                let c = &mut found[i].1;
                c.kind = Kind::Other;
                c.error = Some(format!("{r}: carload's own output, never shipped").into());
            }
        }
    }
    let first = next.fetch_add(found.len() as u32, Ordering::Relaxed);
    listing.first = first;
    let mut subfolders = Vec::new();
    listing.children.reserve_exact(found.len());
    for (i, (name, mut child)) in found.into_iter().enumerate() {
        listing.names.extend_from_slice(name.as_bytes());
        child.name_end = listing.names.len() as u32;
        if child.kind == Kind::Folder {
            subfolders.push((path.join(&name), first + i as u32));
        }
        listing.children.push(child);
    }
    (listing, subfolders)
}

/// What a file that is neither a regular file nor a folder is: `FIFO`, `socket` or `device`.
pub fn special_kind(t: &fs::FileType) -> &'static str {
    if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else {
        "device"
    }
}

fn blank() -> Child {
    Child {
        name_end: 0,
        kind: Kind::Other,
        size: 0,
        mtime_ns: 0,
        ident: crate::shipment::file::Ident { ctime_ns: 0, ino: 0 },
        cost: 0,
        error: None,
    }
}

fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec())
}

/// Describes an entry from its metadata (followed for roots and symlinks).
fn describe(meta: io::Result<fs::Metadata>, cost: &(dyn Fn(u64) -> u64 + Sync)) -> Child {
    match meta {
        Ok(m) if m.is_file() => Child {
            kind: Kind::File,
            size: m.len(),
            mtime_ns: mtime_ns(&m),
            ident: crate::shipment::file::Ident::of(&m),
            cost: cost(m.len()),
            ..blank()
        },
        Ok(m) if m.is_dir() => Child { kind: Kind::Folder, ..blank() },
        Ok(m) => {
            let what = special_kind(&m.file_type());
            Child { kind: Kind::Other, error: Some(format!("{what}: not a regular file").into()), ..blank() }
        }
        Err(e) => Child { kind: Kind::Other, error: Some(e.to_string().into()), ..blank() },
    }
}

/// Marks `child` (a file at `path`) as not shippable when this process may not read it.
fn unreadable(path: &Path, child: &mut Child) {
    if let Err(e) = may_read(path) {
        child.kind = Kind::Other;
        child.error = Some(unreadable_reason(&e).into());
    }
}

/// Whether this process (its effective IDs and capabilities) may read `path`.
fn may_read(path: &Path) -> io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: `c` is a valid NUL-terminated path; faccessat only reads it.
    let r = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::R_OK, libc::AT_EACCESS) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Why a file may not be read, in words.
pub fn unreadable_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => "unreadable: no read permission".into(),
        _ => format!("unreadable: {e}"),
    }
}

fn describe_link(path: &Path, cost: &(dyn Fn(u64) -> u64 + Sync)) -> Child {
    let target = fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Child { kind: Kind::LinkToFile, ..describe(Ok(m), cost) },
        Ok(m) if m.is_dir() => Child {
            kind: Kind::LinkToFolder,
            error: Some(format!("symlink to folder {target} (not followed; plan refuses it)").into()),
            ..blank()
        },
        Ok(m) => describe(Ok(m), cost),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Child { kind: Kind::Other, error: Some(format!("broken symlink to {target}").into()), ..blank() }
        }
        Err(e) => Child { kind: Kind::Other, error: Some(format!("symlink to {target}: {e}").into()), ..blank() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn listings_cover_the_tree_with_contiguous_ids() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("r");
        for d in ["a", "a/b", "c"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for (f, n) in [("a/x", 3), ("a/b/y", 5), ("z", 7), ("c/.h", 1)] {
            fs::write(root.join(f), vec![0u8; n]).unwrap();
        }
        std::os::unix::fs::symlink("z", root.join("l")).unwrap();
        std::os::unix::fs::symlink("a", root.join("m")).unwrap();
        std::os::unix::fs::symlink("nowhere", root.join("n")).unwrap();
        let got = Mutex::new(Vec::new());
        let stop = AtomicBool::new(false);
        let o = WalkOptions { threads: 3, cost: &|s| s * 2, stop: &stop, outputs: false, readable: false };
        walk(std::slice::from_ref(&root), &o, &|l| got.lock().unwrap().push(l));
        let got = got.into_inner().unwrap();
        assert_eq!(got[0].folder, ROOTS);
        let mut names: HashMap<u32, (u32, String, Child)> = HashMap::new();
        for l in &got {
            for (i, c) in l.children.iter().enumerate() {
                let prev =
                    names.insert(l.first + i as u32, (l.folder, String::from_utf8_lossy(l.name(i)).into(), c.clone()));
                assert!(prev.is_none(), "ID given twice");
            }
        }
        assert_eq!(names.len(), 1 + 6 + 2 + 1 + 1);
        let path = |mut id: u32| {
            let mut parts = Vec::new();
            loop {
                let (parent, name, _) = &names[&id];
                parts.push(name.clone());
                if *parent == ROOTS {
                    break;
                }
                id = *parent;
            }
            parts.reverse();
            parts.join("/")
        };
        let mut files: Vec<(String, u64, u64, Kind)> = names
            .iter()
            .filter(|(_, (_, _, c))| c.kind.is_file())
            .map(|(id, (_, _, c))| (path(*id), c.size, c.cost, c.kind))
            .collect();
        files.sort();
        let r = root.display().to_string();
        assert_eq!(
            files,
            vec![
                (format!("{r}/a/b/y"), 5, 10, Kind::File),
                (format!("{r}/a/x"), 3, 6, Kind::File),
                (format!("{r}/c/.h"), 1, 2, Kind::File),
                (format!("{r}/l"), 7, 14, Kind::LinkToFile),
                (format!("{r}/z"), 7, 14, Kind::File),
            ]
        );
        let kinds: HashMap<String, Kind> = names.keys().map(|id| (path(*id), names[id].2.kind)).collect();
        assert_eq!(kinds[&format!("{r}/m")], Kind::LinkToFolder);
        assert_eq!(kinds[&format!("{r}/n")], Kind::Other);
        // Each folder's listing comes after the listing that names it, sorted by name.
        let mut seen = std::collections::HashSet::from([ROOTS]);
        for l in &got {
            assert!(seen.contains(&l.folder));
            for i in 0..l.children.len() {
                seen.insert(l.first + i as u32);
            }
            let ns: Vec<&[u8]> = (0..l.children.len()).map(|i| l.name(i)).collect();
            assert!(ns.windows(2).all(|w| w[0] < w[1]));
        }
    }

    include!("testing/caps.rs");

    /// Files and folders this process may not read are reported with the reason; others are
    /// not. Run on a thread without the permission bypass (see [`without_permission_bypass`]),
    /// so this proves the check as any user meets it, root included.
    #[test]
    fn unreadable_files_and_folders_are_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("r");
        fs::create_dir_all(root.join("locked")).unwrap();
        fs::write(root.join("secret"), b"x").unwrap();
        fs::write(root.join("open"), b"y").unwrap();
        fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
        let stop = AtomicBool::new(false);
        let run = |readable: bool| {
            let got = Mutex::new(Vec::new());
            let o = WalkOptions { threads: 1, cost: &|s| s, stop: &stop, outputs: false, readable };
            without_permission_bypass(|| walk(std::slice::from_ref(&root), &o, &|l| got.lock().unwrap().push(l)));
            got.into_inner().unwrap()
        };
        let got = run(true);
        let top = got.iter().find(|l| l.folder == 0).unwrap();
        let kid = |name: &str| (0..top.children.len()).find(|&i| top.name(i) == name.as_bytes()).unwrap();
        let secret = &top.children[kid("secret")];
        assert_eq!(secret.kind, Kind::Other);
        assert_eq!(secret.error.as_deref(), Some("unreadable: no read permission"));
        assert_eq!(top.children[kid("open")].kind, Kind::File);
        let locked = got.iter().find(|l| l.folder == top.first + kid("locked") as u32).unwrap();
        assert!(locked.error.as_deref().unwrap().contains("denied"), "{:?}", locked.error);
        // Without the check (plan's walk), the file is listed as a file.
        let got = run(false);
        let top = got.iter().find(|l| l.folder == 0).unwrap();
        assert_eq!(top.children[kid("secret")].kind, Kind::File);
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn reasons_name_the_cause() {
        assert_eq!(unreadable_reason(&io::Error::from_raw_os_error(libc::EACCES)), "unreadable: no read permission");
        assert!(unreadable_reason(&io::Error::from_raw_os_error(libc::EIO)).contains("Input/output error"));
    }

    /// With `outputs`, carload's own outputs are listed as not shippable, with the reason.
    #[test]
    fn carload_outputs_are_marked_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("r");
        fs::create_dir_all(&root).unwrap();
        for f in ["b00000.car", "b00000.car.manifest", "b00000.json", "data.bin"] {
            fs::write(root.join(f), b"x").unwrap();
        }
        let stop = AtomicBool::new(false);
        for outputs in [false, true] {
            let got = Mutex::new(Vec::new());
            let o = WalkOptions { threads: 1, cost: &|s| s, stop: &stop, outputs, readable: false };
            walk(std::slice::from_ref(&root), &o, &|l| got.lock().unwrap().push(l));
            let got = got.into_inner().unwrap();
            let l = got.iter().find(|l| l.folder == 0).unwrap();
            let kinds: Vec<Kind> = l.children.iter().map(|c| c.kind).collect();
            if outputs {
                assert_eq!(kinds, [Kind::Other, Kind::Other, Kind::Other, Kind::File]);
                assert_eq!(
                    l.children[0].error.as_deref(),
                    Some("the CAR of batch b00000: carload's own output, never shipped")
                );
            } else {
                assert!(kinds.iter().all(|&k| k == Kind::File));
            }
        }
    }
}
