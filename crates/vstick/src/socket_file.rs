//! Unix socket files vstick listens on (`--control`, `--usbredir unix:PATH`).
//! A socket a live server answers on is never taken over, a stale one left by
//! a killed server is replaced, and the file is removed when vstick exits.

use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tokio::net::UnixListener;

/// Binds `path` for `purpose` ("control socket", "usbredir socket"); `option`
/// names the flag to change in the error message. Needs a tokio runtime context.
pub fn bind(path: &Path, purpose: &str, option: &str) -> anyhow::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!("{}: exists and is not a socket; choose another {option} path", path.display());
        }
        if UnixStream::connect(path).is_ok() {
            bail!("{}: another vstick is already listening on this {purpose}", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("{}: removing stale socket", path.display()))?;
    }
    UnixListener::bind(path).with_context(|| format!("{}: cannot bind {purpose}", path.display()))
}

/// Removes the socket file when dropped.
pub struct SocketFile(pub PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
