//! Writing an image under its final name only once it is complete.
//!
//! The image is written to a temporary file in the output's directory (so the final rename is
//! atomic on the same filesystem) and renamed into place on success. On error, or when the
//! operation is cancelled, the temporary file is removed by its guard, so a half-written image
//! never appears under the name the user asked for.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// A cancellation flag shared between a signal handler and the writer.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    /// Temporary files to delete if a second Ctrl-C forces the process out before the guard runs.
    pending: Arc<Mutex<Vec<PathBuf>>>,
}

impl Cancel {
    /// A flag not yet raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the running operation to stop at its next write.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Whether [`cancel`](Self::cancel) was called (or Ctrl-C caught).
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.is_cancelled() { Err(Error::Interrupted) } else { Ok(()) }
    }

    /// Installs a process-wide Ctrl-C (SIGINT/SIGTERM) handler: the first signal cancels the
    /// operation, which then unwinds and removes its temporary file; a second one removes the
    /// temporary files still registered and exits with status 130 at once.
    ///
    /// Call once per process, from the CLI; a library user may prefer to call [`Cancel::cancel`]
    /// from its own handler.
    pub fn on_ctrl_c(&self) -> Result<()> {
        let this = self.clone();
        ctrlc::set_handler(move || {
            if this.flag.swap(true, Ordering::SeqCst) {
                if let Ok(paths) = this.pending.lock() {
                    for path in paths.iter() {
                        let _ = std::fs::remove_file(path);
                    }
                }
                std::process::exit(130);
            }
        })
        .map_err(|e| Error::backend("installing the Ctrl-C handler", e))
    }

    fn register(&self, path: &Path) {
        if let Ok(mut paths) = self.pending.lock() {
            paths.push(path.to_path_buf());
        }
    }

    fn unregister(&self, path: &Path) {
        if let Ok(mut paths) = self.pending.lock() {
            paths.retain(|p| p != path);
        }
    }
}

/// A temporary file next to `target`, renamed to `target` by [`AtomicOutput::commit`].
#[derive(Debug)]
pub(crate) struct AtomicOutput {
    /// `None` only after `commit` took it.
    temp: Option<NamedTempFile>,
    target: PathBuf,
    force: bool,
    cancel: Cancel,
}

impl AtomicOutput {
    /// Checks the target and creates the temporary file. Fails without creating anything when the
    /// target exists (unless `force`) or its directory does not.
    pub(crate) fn create(target: &Path, force: bool, cancel: &Cancel) -> Result<Self> {
        check_target(target, force)?;
        let dir = parent_dir(target);
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, "cannot create a temporary file in the output directory", e))?;
        cancel.register(temp.path());
        Ok(Self { temp: Some(temp), target: target.to_path_buf(), force, cancel: cancel.clone() })
    }

    fn temp(&self) -> &NamedTempFile {
        // Invariant: `temp` is only taken by `commit`, which consumes `self`.
        self.temp.as_ref().unwrap_or_else(|| unreachable!("temporary file used after commit"))
    }

    pub(crate) fn file(&self) -> &File {
        self.temp().as_file()
    }

    pub(crate) fn temp_path(&self) -> &Path {
        self.temp().path()
    }

    /// A second handle on the temporary file, for writers that take ownership of a `File`.
    pub(crate) fn reopen(&self) -> Result<File> {
        self.file().try_clone().map_err(|e| Error::io(self.temp_path(), "cannot reopen", e))
    }

    /// Flushes the image to stable storage and renames it to the target.
    pub(crate) fn commit(mut self) -> Result<()> {
        self.cancel.check()?;
        self.file().sync_all().map_err(|e| Error::io(self.temp_path(), "cannot sync", e))?;
        let temp_path = self.temp_path().to_path_buf();
        let Some(temp) = self.temp.take() else { unreachable!("commit consumes the output") };
        let result =
            if self.force { temp.persist(&self.target) } else { temp.persist_noclobber(&self.target) };
        self.cancel.unregister(&temp_path);
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::OutputExists { path: self.target.clone() })
            }
            // `e.file` drops here and removes the temporary file.
            Err(e) => Err(Error::io(&self.target, "cannot rename the finished image into place", e.error)),
        }
    }
}

impl Drop for AtomicOutput {
    fn drop(&mut self) {
        // The NamedTempFile deletes itself; only the Ctrl-C registry needs cleaning up.
        if let Some(temp) = &self.temp {
            self.cancel.unregister(temp.path());
        }
    }
}

fn parent_dir(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The checks done before any work, so a bad output path fails fast.
pub(crate) fn check_target(target: &Path, force: bool) -> Result<()> {
    let dir = parent_dir(target);
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(Error::OutputDirMissing { dir }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::OutputDirMissing { dir }),
        Err(e) => return Err(Error::io(dir, "cannot access the output directory", e)),
    }
    match std::fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => {
            Err(Error::io(target, "is a directory", std::io::Error::from(std::io::ErrorKind::IsADirectory)))
        }
        Ok(_) if !force => Err(Error::OutputExists { path: target.to_path_buf() }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_renames_and_drop_removes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.img");
        let cancel = Cancel::new();

        let out = AtomicOutput::create(&target, false, &cancel).unwrap();
        out.file().write_all(b"abc").unwrap();
        assert!(!target.exists(), "nothing under the final name before commit");
        out.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"abc");

        let out = AtomicOutput::create(&target, true, &cancel).unwrap();
        out.file().write_all(b"half").unwrap();
        drop(out);
        assert_eq!(entries(dir.path()), vec!["out.img"], "temp file removed, old image kept");
        assert_eq!(std::fs::read(&target).unwrap(), b"abc");
        assert!(cancel.pending.lock().unwrap().is_empty());
    }

    #[test]
    fn refuses_existing_without_force_and_missing_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.iso");
        std::fs::write(&target, b"keep").unwrap();
        let err = AtomicOutput::create(&target, false, &Cancel::new()).unwrap_err();
        assert!(err.to_string().ends_with("x.iso: already exists (use --force to overwrite)"), "{err}");
        let err = AtomicOutput::create(&dir.path().join("no/such/x.iso"), true, &Cancel::new()).unwrap_err();
        assert!(err.to_string().contains("no/such: directory of the output does not exist"), "{err}");
        assert_eq!(entries(dir.path()), vec!["x.iso"]);
    }

    #[test]
    fn a_target_created_meanwhile_is_not_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("race.img");
        let out = AtomicOutput::create(&target, false, &Cancel::new()).unwrap();
        std::fs::write(&target, b"theirs").unwrap();
        assert!(matches!(out.commit(), Err(Error::OutputExists { .. })));
        assert_eq!(std::fs::read(&target).unwrap(), b"theirs");
        assert_eq!(entries(dir.path()), vec!["race.img"]);
    }

    #[test]
    fn cancelled_output_is_not_committed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("c.img");
        let cancel = Cancel::new();
        let out = AtomicOutput::create(&target, false, &cancel).unwrap();
        cancel.cancel();
        assert!(matches!(out.commit(), Err(Error::Interrupted)));
        assert!(entries(dir.path()).is_empty());
    }
}
