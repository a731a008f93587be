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
        let io_err = |source| OutputError::Io { path: self.target.clone(), source };
        use std::os::unix::fs::PermissionsExt;
        self.temp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(io_err)?;
        self.temp.as_file().sync_all().map_err(io_err)?;
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
}
