//! Writing inside an output folder without ever following a symbolic link: every folder is an
//! open descriptor, and every entry is created, opened or renamed relative to its folder's
//! descriptor by a single name (`mkdirat`, `openat` with `O_NOFOLLOW`, `symlinkat`,
//! `renameat2`), so neither a link in the DAG nor one already present (or put there meanwhile)
//! in the output folder can send a write elsewhere. Files are written under a temporary name
//! in their folder and renamed into place only when complete and checked.
//!
//! `rustix` (already in the tree through `tempfile`) gives safe wrappers of these calls;
//! `cap-std` would sandbox paths but follows links that stay inside the folder, and we want
//! no link followed at all.

use super::ExtractError;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Told of each temporary file: its path and whether it was just created (`true`) or is gone
/// (`false`), so a caller can remove pending ones on a signal.
pub type TempHook = Arc<dyn Fn(&Path, bool) + Send + Sync>;

/// An open folder of the output (see the module documentation).
#[derive(Clone)]
pub struct OutDir {
    fd: Arc<OwnedFd>,
    path: PathBuf,
    hook: Option<TempHook>,
}

/// What an existing folder means where a folder is to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Merge into it (folders of shipment paths, `--force`).
    Merge,
    /// Refuse: the entry exists.
    Refuse,
}

/// Free space of a file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes available to unprivileged users.
    pub bytes: u64,
    /// Inodes available, `None` when the file system does not count them (btrfs).
    pub inodes: Option<u64>,
}

fn io_at(path: PathBuf) -> impl FnOnce(Errno) -> ExtractError {
    move |e| ExtractError::Io { path, source: e.into() }
}

impl OutDir {
    /// Opens the folder `path` (a link in the path the user gave is followed, as any tool does).
    pub fn open(path: &Path) -> Result<OutDir, ExtractError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(io_at(path.to_path_buf()))?;
        Ok(OutDir { fd: Arc::new(fd), path: path.to_path_buf(), hook: None })
    }

    /// The same folder, telling `hook` of temporary files created below it.
    pub fn with_temp_hook(mut self, hook: TempHook) -> OutDir {
        self.hook = Some(hook);
        self
    }

    /// The folder's path (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Free space of the folder's file system.
    pub fn free_space(&self) -> Result<Space, ExtractError> {
        let s = rustix::fs::fstatvfs(&*self.fd).map_err(io_at(self.path.clone()))?;
        let bytes = s.f_bavail.saturating_mul(s.f_frsize);
        Ok(Space { bytes, inodes: (s.f_files > 0).then_some(s.f_favail) })
    }

    /// Opens the folder `name` in this one, creating it if missing; an existing folder is
    /// merged into or refused as `existing` says. A symbolic link or any other entry there is
    /// refused: never followed, never replaced.
    pub fn dir(&self, name: &OsStr, existing: Existing) -> Result<OutDir, ExtractError> {
        let path = self.path.join(name);
        let created = match rustix::fs::mkdirat(&*self.fd, name, Mode::from_raw_mode(0o777)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Err(io_at(path)(e)),
        };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(&*self.fd, name, flags, Mode::empty()) {
            Ok(_) if !created && existing == Existing::Refuse => Err(ExtractError::Exists(path)),
            Ok(fd) => Ok(OutDir { fd: Arc::new(fd), path, hook: self.hook.clone() }),
            Err(Errno::LOOP | Errno::NOTDIR) => Err(self.not_a_folder(name, path)),
            Err(e) => Err(io_at(path)(e)),
        }
    }

    /// The folders of `rel` (normal components only) below this one, created or merged.
    pub fn dirs(&self, rel: &Path) -> Result<OutDir, ExtractError> {
        let mut at = self.clone();
        for c in rel.components() {
            match c {
                std::path::Component::Normal(name) => at = at.dir(name, Existing::Merge)?,
                _ => return Err(ExtractError::UnsafeName(rel.display().to_string())),
            }
        }
        Ok(at)
    }

    fn not_a_folder(&self, name: &OsStr, path: PathBuf) -> ExtractError {
        match self.kind_of(name) {
            Some(FileType::Symlink) => ExtractError::Symlink(path),
            _ => ExtractError::NotAFolder(path),
        }
    }

    /// The type of the entry `name`, without following a link; `None` if there is none.
    fn kind_of(&self, name: &OsStr) -> Option<FileType> {
        let st = rustix::fs::statat(&*self.fd, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        Some(FileType::from_raw_mode(st.st_mode))
    }

    /// Checks that a file or symlink may be written at `name`: nothing there, or (with `force`)
    /// anything but a folder. Only an early, friendly check: the final rename decides.
    pub fn check_free(&self, name: &OsStr, force: bool) -> Result<(), ExtractError> {
        match self.kind_of(name) {
            None => Ok(()),
            Some(FileType::Directory) => Err(ExtractError::IsFolder(self.path.join(name))),
            Some(_) if force => Ok(()),
            Some(_) => Err(ExtractError::Exists(self.path.join(name))),
        }
    }

    /// Creates a new temporary file in this folder for the entry `name`.
    pub fn temp_file(&self, name: &OsStr) -> Result<PendingFile, ExtractError> {
        // `.{name}.{n}.partial`, the name shortened so the temporary stays a valid name.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let short = &name.as_bytes()[..name.len().min(100)];
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        for _ in 0..1000 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let mut temp = b".".to_vec();
            temp.extend_from_slice(short);
            temp.extend_from_slice(format!(".{n}.partial").as_bytes());
            let temp = OsString::from_vec(temp);
            match rustix::fs::openat(&*self.fd, &temp, flags, Mode::from_raw_mode(0o666)) {
                Ok(fd) => {
                    let file = File::from(fd);
                    let pending = PendingFile { dir: self.clone(), temp, name: name.to_os_string(), file, done: false };
                    if let Some(h) = &self.hook {
                        h(&pending.temp_path(), true);
                    }
                    return Ok(pending);
                }
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(io_at(self.path.join(&temp))(e)),
            }
        }
        Err(ExtractError::Io { path: self.path.join(name), source: std::io::ErrorKind::AlreadyExists.into() })
    }

    /// Creates the symbolic link `name` → `target`; with `force` an existing file or link is
    /// replaced (atomically, through a temporary link), never a folder.
    pub fn symlink(&self, name: &OsStr, target: &[u8], force: bool) -> Result<(), ExtractError> {
        let path = self.path.join(name);
        let target = OsStr::from_bytes(target);
        match rustix::fs::symlinkat(target, &*self.fd, name) {
            Ok(()) => return Ok(()),
            Err(Errno::EXIST) if force => {}
            Err(Errno::EXIST) => return Err(ExtractError::Exists(path)),
            Err(e) => return Err(io_at(path)(e)),
        }
        self.check_free(name, force)?;
        let pending = self.temp_file(name)?;
        let temp = pending.temp.clone();
        // The temporary file only reserved a name: the link takes its place.
        rustix::fs::unlinkat(&*self.fd, &temp, AtFlags::empty()).map_err(io_at(pending.temp_path()))?;
        rustix::fs::symlinkat(target, &*self.fd, &temp).map_err(io_at(pending.temp_path()))?;
        let renamed = rustix::fs::renameat(&*self.fd, &temp, &*self.fd, name);
        if renamed.is_err() {
            let _ = rustix::fs::unlinkat(&*self.fd, &temp, AtFlags::empty());
        }
        drop(pending);
        renamed.map_err(|e| rename_error(e, path))
    }
}

fn rename_error(e: Errno, path: PathBuf) -> ExtractError {
    match e {
        Errno::EXIST => ExtractError::Exists(path),
        Errno::ISDIR | Errno::NOTEMPTY => ExtractError::IsFolder(path),
        e => io_at(path)(e),
    }
}

/// A file being written under a temporary name in its folder; removed when dropped unless
/// [`PendingFile::commit`] renamed it into place.
pub struct PendingFile {
    dir: OutDir,
    temp: OsString,
    name: OsString,
    file: File,
    done: bool,
}

impl PendingFile {
    /// The open temporary file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Path of the temporary file.
    pub fn temp_path(&self) -> PathBuf {
        self.dir.path.join(&self.temp)
    }

    /// The final path.
    pub fn path(&self) -> PathBuf {
        self.dir.path.join(&self.name)
    }

    /// Renames the file to its name: only if nothing is there, or (with `force`) replacing a
    /// file or link there, never a folder. Checks first that the temporary name still holds
    /// this file.
    pub fn commit(mut self, force: bool) -> Result<(), ExtractError> {
        let fd = &*self.dir.fd;
        let ours = rustix::fs::fstat(&self.file).map_err(io_at(self.temp_path()))?;
        let there = rustix::fs::statat(fd, &self.temp, AtFlags::SYMLINK_NOFOLLOW).map_err(io_at(self.temp_path()))?;
        if (ours.st_dev, ours.st_ino) != (there.st_dev, there.st_ino) {
            let source = std::io::Error::other("the temporary file was replaced while being written");
            return Err(ExtractError::Io { path: self.temp_path(), source });
        }
        let path = self.path();
        let res = if force {
            rustix::fs::renameat(fd, &self.temp, fd, &self.name)
        } else {
            match rustix::fs::renameat_with(fd, &self.temp, fd, &self.name, RenameFlags::NOREPLACE) {
                // File systems without RENAME_NOREPLACE: a hard link never replaces either.
                Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                    rustix::fs::linkat(fd, &self.temp, fd, &self.name, AtFlags::empty())
                        .and_then(|()| rustix::fs::unlinkat(fd, &self.temp, AtFlags::empty()))
                }
                other => other,
            }
        };
        res.map_err(|e| rename_error(e, path))?;
        self.done = true;
        if let Some(h) = &self.dir.hook {
            h(&self.temp_path(), false);
        }
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = rustix::fs::unlinkat(&*self.dir.fd, &self.temp, AtFlags::empty());
            if let Some(h) = &self.dir.hook {
                h(&self.temp_path(), false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_never_followed_and_files_appear_only_when_committed() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::create_dir(t.path().join("out")).unwrap();
        std::os::unix::fs::symlink(&victim, t.path().join("out/l")).unwrap();
        let out = OutDir::open(&t.path().join("out")).unwrap();
        assert!(matches!(out.dir("l".as_ref(), Existing::Merge), Err(ExtractError::Symlink(_))));
        assert!(matches!(out.dirs("a/l/b".as_ref()).map(|_| ()), Ok(())), "a/l is a new folder");
        assert!(matches!(out.dirs("l/b".as_ref()), Err(ExtractError::Symlink(_))));
        let f = out.temp_file("f".as_ref()).unwrap();
        std::io::Write::write_all(&mut f.file(), b"abc").unwrap();
        assert!(!t.path().join("out/f").exists());
        f.commit(false).unwrap();
        assert_eq!(std::fs::read(t.path().join("out/f")).unwrap(), b"abc");
        let g = out.temp_file("f".as_ref()).unwrap();
        assert!(matches!(g.commit(false), Err(ExtractError::Exists(_))));
        let h = out.temp_file("l".as_ref()).unwrap();
        h.commit(true).unwrap();
        assert!(!t.path().join("out/l").is_symlink(), "the link is replaced, not written through");
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
        let names: Vec<_> = std::fs::read_dir(t.path().join("out")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(!names.iter().any(|n| n.to_string_lossy().contains("partial")), "{names:?}");
    }
}
