//! Safe output files: written under a temporary name beside the target and renamed into place
//! only on success, so a failed or interrupted run never leaves a partial file at the target.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Errors preparing an output path.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The target exists and overwriting was not allowed.
    #[error("{0}: already exists (use --force to overwrite)")]
    Exists(PathBuf),
    /// The folder to write into does not exist.
    #[error("{path}: output folder {folder} does not exist")]
    NoFolder {
        /// The target.
        path: PathBuf,
        /// Its folder.
        folder: PathBuf,
    },
    /// The target is a folder.
    #[error("{0}: is a folder, not a file path")]
    IsDir(PathBuf),
    /// The target is one of the inputs.
    #[error("{output}: output would overwrite the input {input}")]
    IsInput {
        /// The target.
        output: PathBuf,
        /// The input.
        input: PathBuf,
    },
    /// Another I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// A file being written under a temporary name beside its target.
pub struct AtomicFile {
    temp: tempfile::NamedTempFile,
    target: PathBuf,
    force: bool,
}

/// Creates a temporary output file: called with its path and the function that creates it, so
/// a caller can register the path for cleanup on a signal in the same critical section as the
/// creation (no moment when the file exists unregistered). [`create_only`] registers nothing.
pub type Registrar<'a> = &'a mut dyn FnMut(&Path, &mut dyn FnMut() -> io::Result<File>) -> io::Result<File>;

/// A [`Registrar`] that only creates the file.
pub fn create_only(_: &Path, create: &mut dyn FnMut() -> io::Result<File>) -> io::Result<File> {
    create()
}

impl AtomicFile {
    /// Checks `target` and creates a temporary file beside it.
    pub fn create(target: &Path, force: bool) -> Result<Self, OutputError> {
        Self::create_registered(target, force, &mut create_only)
    }

    /// [`AtomicFile::create`], the temporary created through `register`.
    pub fn create_registered(target: &Path, force: bool, register: Registrar<'_>) -> Result<Self, OutputError> {
        check_target(target, force)?;
        let folder = parent_of(target);
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .make_in(&folder, |path| {
                register(path, &mut || {
                    use std::os::unix::fs::OpenOptionsExt;
                    std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(path)
                })
            })
            .map_err(|source| OutputError::Io { path: target.to_path_buf(), source })?;
        Ok(AtomicFile { temp, target: target.to_path_buf(), force })
    }

    /// The open temporary file.
    pub fn file(&self) -> &File {
        self.temp.as_file()
    }

    /// Path of the temporary file (removed on drop unless committed).
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// The target path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes the file to disk and renames it to the target.
    pub fn commit(self) -> Result<(), OutputError> {
        self.commit_keeping(0)
    }

    /// [`AtomicFile::commit`], keeping the file it replaces: the previous version becomes
    /// `TARGET.1`, the one before it `TARGET.2`, … up to `TARGET.keep` (older ones are dropped;
    /// see [`backup_path`]). The new contents are on disk before anything is rotated, and the
    /// target is replaced by one rename last, so a failure at any step leaves the current file
    /// in place (a failed rotation is an error and the target is not replaced).
    pub fn commit_keeping(self, keep: usize) -> Result<(), OutputError> {
        let io_err = |source| OutputError::Io { path: self.target.clone(), source };
        use std::os::unix::fs::PermissionsExt;
        self.temp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(io_err)?;
        self.temp.as_file().sync_all().map_err(io_err)?;
        if self.force && keep > 0 {
            rotate_backups(&self.target, keep)?;
        }
        let target = self.target.clone();
        let res = if self.force { self.temp.persist(&target) } else { self.temp.persist_noclobber(&target) };
        res.map(|_| ()).map_err(|e| {
            if e.error.kind() == io::ErrorKind::AlreadyExists {
                OutputError::Exists(target.clone())
            } else {
                OutputError::Io { path: target.clone(), source: e.error }
            }
        })
    }
}

/// The `k`th previous version of `target` kept by [`AtomicFile::commit_keeping`]: `TARGET.k`
/// (`ship.jsonl.1` is the newest). The number comes after the whole name, so a kept shipment
/// never ends in `.jsonl`, `.car` or `.json` and is not taken for a current file.
pub fn backup_path(target: &Path, k: usize) -> PathBuf {
    let mut name = target.as_os_str().to_os_string();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

/// Keeps `target` (if it exists) as `TARGET.1`, shifting older versions up to `TARGET.keep`
/// (`TARGET.keep` is replaced). `target` itself is never moved: the newest backup is a hard
/// link to it (a copy, written beside it and renamed into place, where links are not
/// supported), so it stays readable at its name throughout.
pub fn rotate_backups(target: &Path, keep: usize) -> Result<(), OutputError> {
    if keep == 0 {
        return Ok(());
    }
    match std::fs::symlink_metadata(target) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Ok(()), // a link or something else: not kept (the save replaces only the name)
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(OutputError::Io { path: target.to_path_buf(), source }),
    }
    for k in (1..keep).rev() {
        let (from, to) = (backup_path(target, k), backup_path(target, k + 1));
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(OutputError::Io { path: to, source }),
        }
    }
    let newest = backup_path(target, 1);
    match std::fs::remove_file(&newest) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(OutputError::Io { path: newest, source }),
    }
    if std::fs::hard_link(target, &newest).is_ok() {
        return Ok(());
    }
    // No hard links here: a copy, complete before it takes the name.
    let io_err = |source| OutputError::Io { path: newest.clone(), source };
    let copy = tempfile::Builder::new()
        .prefix(&format!(".{}.", newest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()))
        .suffix(".partial")
        .tempfile_in(parent_of(target))
        .map_err(io_err)?;
    io::copy(&mut File::open(target).map_err(io_err)?, &mut copy.as_file()).map_err(io_err)?;
    copy.as_file().sync_all().map_err(io_err)?;
    copy.persist(&newest).map_err(|e| io_err(e.error))?;
    Ok(())
}

fn parent_of(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks that `target` can be written: its folder exists, it is not a folder, and it does not
/// exist unless `force`.
pub fn check_target(target: &Path, force: bool) -> Result<(), OutputError> {
    let folder = parent_of(target);
    if !folder.is_dir() {
        return Err(OutputError::NoFolder { path: target.to_path_buf(), folder });
    }
    match std::fs::metadata(target) {
        Ok(m) if m.is_dir() => Err(OutputError::IsDir(target.to_path_buf())),
        Ok(_) if !force => Err(OutputError::Exists(target.to_path_buf())),
        _ => Ok(()),
    }
}

/// Refuses an output that is the input itself or an existing file inside an input folder.
pub fn check_not_input(output: &Path, input: &Path) -> Result<(), OutputError> {
    let (Ok(out), Ok(inp)) = (std::fs::canonicalize(output), std::fs::canonicalize(input)) else {
        return Ok(());
    };
    if out == inp || (inp.is_dir() && out.starts_with(&inp)) {
        return Err(OutputError::IsInput { output: output.to_path_buf(), input: input.to_path_buf() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_and_drop() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.car");
        let f = AtomicFile::create(&target, false).unwrap();
        std::io::Write::write_all(&mut f.file(), b"abc").unwrap();
        let temp = f.temp_path().to_path_buf();
        assert!(!target.exists());
        f.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"abc");
        assert!(!temp.exists());
        assert!(matches!(AtomicFile::create(&target, false), Err(OutputError::Exists(_))));
        let g = AtomicFile::create(&dir.path().join("other.car"), false).unwrap();
        let temp = g.temp_path().to_path_buf();
        drop(g);
        assert!(!temp.exists());
        assert!(!dir.path().join("other.car").exists());
        assert!(matches!(
            AtomicFile::create(&dir.path().join("missing/x.car"), false),
            Err(OutputError::NoFolder { .. })
        ));
    }

    fn save(target: &Path, text: &str, keep: usize) -> Result<(), OutputError> {
        let f = AtomicFile::create(target, true)?;
        std::io::Write::write_all(&mut f.file(), text.as_bytes()).unwrap();
        f.commit_keeping(keep)
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn saving_keeps_the_previous_versions_numbered_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("s.jsonl");
        save(&target, "v1", 3).unwrap();
        assert!(!backup_path(&target, 1).exists(), "nothing to keep on the first save");
        for v in 2..=5 {
            save(&target, &format!("v{v}"), 3).unwrap();
        }
        assert_eq!(read(&target), "v5");
        assert_eq!(backup_path(&target, 1), dir.path().join("s.jsonl.1"));
        assert_eq!(read(&backup_path(&target, 1)), "v4");
        assert_eq!(read(&backup_path(&target, 2)), "v3");
        assert_eq!(read(&backup_path(&target, 3)), "v2");
        assert!(!backup_path(&target, 4).exists(), "only `keep` versions are kept");
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["s.jsonl", "s.jsonl.1", "s.jsonl.2", "s.jsonl.3"], "no temporaries left");
        // A backup is its own file: the next save does not change it.
        save(&target, "v6", 1).unwrap();
        assert_eq!(read(&backup_path(&target, 1)), "v5");
        assert_eq!(read(&target), "v6");
        // commit() keeps nothing.
        save(&target, "v7", 0).unwrap();
        assert_eq!(read(&backup_path(&target, 1)), "v5");
    }

    #[test]
    fn a_failed_rotation_keeps_the_current_file_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("s.jsonl");
        save(&target, "v1", 2).unwrap();
        save(&target, "v2", 2).unwrap();
        // TARGET.2 is a folder that is not empty: renaming TARGET.1 onto it fails (even for root).
        std::fs::create_dir_all(backup_path(&target, 2).join("x")).unwrap();
        let err = save(&target, "v3", 2).unwrap_err();
        assert!(err.to_string().contains("s.jsonl.2"), "{err}");
        assert_eq!(read(&target), "v2", "the current file is untouched");
        assert_eq!(read(&backup_path(&target, 1)), "v1");
        let partial = std::fs::read_dir(dir.path())
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".partial"));
        assert!(!partial, "the new version's temporary is removed");
    }
}
