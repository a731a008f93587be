//! A batch's sources, exactly as planned: every name is resolved beneath the shipment's base
//! folder (never outside it, whatever symlinks say), and every file must still be the one
//! planned — same size, modification time, and, for shipments that record it (version 2), same
//! status-change time and inode.
//!
//! The pre-build check ([`check_sources`]) opens each file beneath the base with `openat2`
//! (`RESOLVE_BENEATH`: `..` and symlinks may not leave the base; the kernel checks it while it
//! resolves, so no race can move a component), compares it with its record, and notes the file
//! it found (device, inode, times). The importer then opens each file again when it reads it and
//! refuses one that is not that file or was written since ([`crate::importer::input::Expected`]),
//! and checks after reading that it was not written meanwhile. What this does and does not detect
//! is stated in ARCHITECTURE.md (the trust model).

use super::build::BuildError;
use super::file::{name_to_path, Batch, Ident};
use crate::batch::BatchFile;
use crate::importer::input::Expected;
use crate::importer::Entry;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The base folder of a shipment, opened: names resolve beneath it.
#[derive(Debug)]
pub struct BaseDir {
    path: PathBuf,
    dir: File,
}

impl BaseDir {
    /// Opens the folder `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir =
            std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC).open(path)?;
        Ok(BaseDir { path: path.to_path_buf(), dir })
    }

    /// The folder's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file `rel` (a relative path) for reading beneath the base: `..` components and
    /// symlinks may be followed only as long as they stay inside it. A FIFO does not block the
    /// open (it is refused later as not a regular file).
    pub fn open_beneath(&self, rel: &Path) -> io::Result<File> {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::io::{AsRawFd, FromRawFd};
        if rel.is_absolute() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "absolute path"));
        }
        let c = std::ffi::CString::new(rel.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in the path"))?;
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY) as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: a valid directory fd, a NUL-terminated path and an `open_how` of the size given.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel returned a new file descriptor that nothing else owns.
            return Ok(unsafe { File::from_raw_fd(fd as i32) });
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EXDEV) => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("resolves outside the base folder {}", self.path.display()),
            )),
            // No openat2 (kernel before 5.6, or a seccomp filter): resolve, check, open, and
            // check the opened file is the one resolved.
            Some(libc::ENOSYS) | Some(libc::EPERM) => self.open_resolved(rel),
            _ => Err(e),
        }
    }

    /// [`BaseDir::open_beneath`] without `openat2`.
    fn open_resolved(&self, rel: &Path) -> io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        let base = self.path.canonicalize()?;
        let real = base.join(rel).canonicalize()?;
        if !real.starts_with(&base) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("resolves outside the base folder {}", self.path.display()),
            ));
        }
        let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW).open(&real)?;
        Ok(f)
    }
}

/// The files of a shipment batch as [`crate::batch::BatchFiles`]: each [`BatchFile`] is made
/// when the builder asks for it, so a batch of millions of files is held once, as its records
/// (plus 40 bytes per file: the file the pre-build check found).
#[derive(Debug, Clone)]
pub struct SourceFiles<'a> {
    batch: &'a Batch,
    base: PathBuf,
    found: Vec<Expected>,
}

impl crate::batch::BatchFiles for SourceFiles<'_> {
    fn count(&self) -> usize {
        self.batch.files.len()
    }

    fn file(&self, i: usize) -> std::borrow::Cow<'_, BatchFile> {
        let f = &self.batch.files[i];
        let path = self.base.join(name_to_path(&f.name));
        let expect = Some(self.found[i]);
        let entry = match f.part {
            None => Entry::File { path, size: f.size, expect },
            Some(p) => Entry::FileRange { path, offset: p.offset, len: p.len, expect },
        };
        std::borrow::Cow::Owned(BatchFile { name: f.name.clone(), entry })
    }

    fn size(&self, i: usize) -> u64 {
        self.batch.files[i].len()
    }
}

/// Checks every source of `batch`, resolved beneath `base`, is the file planned (size, mtime,
/// and status-change time and inode when recorded), and returns the batch files to build, each
/// bound to the file found.
pub fn check_sources<'a>(batch: &'a Batch, base: &Path) -> Result<SourceFiles<'a>, BuildError> {
    let dir = BaseDir::open(base).map_err(|source| BuildError::Source { path: base.to_path_buf(), source })?;
    let mut found = Vec::with_capacity(batch.files.len());
    for f in &batch.files {
        let rel = name_to_path(&f.name);
        let path = base.join(&rel);
        let changed = |detail: String| BuildError::Changed { path: path.clone(), detail };
        if rel.is_absolute() {
            return Err(BuildError::Unsafe {
                path: path.clone(),
                reason: "an absolute name (a version 1 shipment planned from absolute paths): re-plan it".into(),
            });
        }
        let file = dir.open_beneath(&rel).map_err(|source| match source.kind() {
            io::ErrorKind::PermissionDenied if source.raw_os_error().is_none() => {
                BuildError::Unsafe { path: path.clone(), reason: source.to_string() }
            }
            _ => BuildError::Source { path: path.clone(), source },
        })?;
        let meta = file.metadata().map_err(|source| BuildError::Source { path: path.clone(), source })?;
        if !meta.is_file() {
            return Err(changed("no longer a regular file".into()));
        }
        if meta.len() != f.size {
            return Err(changed(format!("size {} bytes, planned {}", meta.len(), f.size)));
        }
        let mtime = super::plan::mtime_ns(&meta);
        if mtime != f.mtime_ns {
            return Err(changed(format!(
                "modification time {}, planned {}",
                crate::human::utc_ns(mtime),
                crate::human::utc_ns(f.mtime_ns)
            )));
        }
        if let Some(planned) = f.ident {
            let now = Ident::of(&meta);
            if now.ino != planned.ino {
                return Err(changed(format!("inode {}, planned {} (replaced by another file)", now.ino, planned.ino)));
            }
            if now.ctime_ns != planned.ctime_ns {
                return Err(changed(format!(
                    "status-change time {}, planned {} (written, or its mtime set back)",
                    crate::human::utc_ns(now.ctime_ns),
                    crate::human::utc_ns(planned.ctime_ns)
                )));
            }
        }
        found.push(Expected::of(&meta));
    }
    Ok(SourceFiles { batch, base: base.to_path_buf(), found })
}

/// Whether `batch`'s sources (beneath `base`) changed since it was planned: `None` when each is
/// the file planned ([`check_sources`]), else the first difference. For a built batch this is
/// a note, not a verdict: its CAR is what ships.
pub fn changed_since(batch: &Batch, base: &Path) -> Option<String> {
    // A note on a built batch: the cause only, no advice to re-plan (its CAR is what ships).
    check_sources(batch, base).err().map(|e| match e {
        BuildError::Changed { path, detail } => format!("{}: changed since planning ({detail})", path.display()),
        e => e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shipment::file::{FileRef, Ident};

    fn batch_of(dir: &Path, names: &[&str]) -> Batch {
        let files = names
            .iter()
            .map(|n| {
                let m = std::fs::metadata(dir.join(n)).unwrap();
                FileRef {
                    name: n.to_string(),
                    size: m.len(),
                    mtime_ns: crate::shipment::plan::mtime_ns(&m),
                    ident: Some(Ident::of(&m)),
                    part: None,
                }
            })
            .collect();
        Batch { id: "b0".into(), car_size_bound: 1 << 20, piece_size: 1 << 21, files, result: None }
    }

    /// A file rewritten at the same size, its mtime put back, after the pre-build check and
    /// before it is read, is not built from its new bytes: the read refuses it.
    #[test]
    fn a_rewrite_between_the_check_and_the_read_fails_the_build() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("small"), b"0123456789").unwrap();
        std::fs::write(dir.path().join("large"), vec![7u8; 3 << 20]).unwrap();
        for victim in ["small", "large"] {
            let b = batch_of(dir.path(), &["small", "large"]);
            let files = check_sources(&b, dir.path()).unwrap();
            let p = dir.path().join(victim);
            let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
            let mut data = std::fs::read(&p).unwrap();
            data[1] ^= 1;
            std::fs::write(&p, &data).unwrap();
            std::fs::File::options().write(true).open(&p).unwrap().set_modified(mtime).unwrap();
            let profile = crate::profile::Profile::default();
            let err = crate::batch::build(
                &files,
                &profile,
                dir.path(),
                &mut std::io::sink(),
                true,
                &mut crate::event::Ignore,
            )
            .unwrap_err();
            assert!(
                matches!(&err, crate::batch::BatchError::Import(crate::importer::ImportError::NotAsPlanned { .. })),
                "{victim}: {err}"
            );
        }
    }

    /// Names resolve beneath the base only: `..`, an absolute symlink, a symlinked folder
    /// leading out are refused by the kernel's resolution; a symlink inside the base is followed.
    #[test]
    fn open_beneath_stays_inside_the_base() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        std::fs::create_dir_all(base.join("d")).unwrap();
        std::fs::write(dir.path().join("outside"), b"x").unwrap();
        std::fs::write(base.join("d/in"), b"y").unwrap();
        std::os::unix::fs::symlink("../../outside", base.join("d/up")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), base.join("d/abs")).unwrap();
        std::os::unix::fs::symlink(dir.path(), base.join("d/dirlink")).unwrap();
        std::os::unix::fs::symlink("in", base.join("d/inner")).unwrap();
        let b = BaseDir::open(&base).unwrap();
        for bad in ["../outside", "d/up", "d/abs", "d/dirlink/outside"] {
            let e = b.open_beneath(Path::new(bad)).unwrap_err();
            assert!(e.to_string().contains("outside the base folder"), "{bad}: {e}");
        }
        assert!(b.open_beneath(Path::new("/etc/passwd")).is_err());
        assert!(b.open_beneath(Path::new("d/inner")).is_ok());
        assert!(b.open_beneath(Path::new("d/in")).is_ok());
    }
}
