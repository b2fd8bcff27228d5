//! Image locking, so two writers never share an image.
//!
//! Two schemes at once: `flock` (whole file; what vstick instances check) and
//! QEMU's OFD byte-range locks, so a QEMU with the same image open and vstick
//! refuse each other. QEMU's scheme (block/file-posix.c, read for the facts):
//! a read lock on byte 100+i for each permission bit i it holds, and on byte
//! 200+i for each permission it does NOT share with others; before taking a
//! permission it tests byte 200+i, and before refusing to share one, 100+i.

use std::fs::{File, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;

const PERM_BASE: i64 = 100;
const SHARED_BASE: i64 = 200;
/// BLK_PERM_CONSISTENT_READ
const PERM_READ: u32 = 0;
/// BLK_PERM_WRITE
const PERM_WRITE: u32 = 1;

/// Someone else holds a conflicting lock.
#[derive(Debug)]
pub struct Conflict;

fn flock_range(kind: libc::c_short, start: i64) -> libc::flock {
    libc::flock {
        l_type: kind,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: start,
        l_len: 1,
        l_pid: 0,
    }
}

/// Whether another open file description holds a lock on byte `start`.
fn byte_taken(file: &File, start: i64) -> io::Result<bool> {
    let mut probe = flock_range(libc::F_WRLCK as libc::c_short, start);
    fcntl(file, FcntlArg::F_OFD_GETLK(&mut probe)).map_err(io::Error::from)?;
    Ok(probe.l_type != libc::F_UNLCK as libc::c_short)
}

fn read_lock_byte(file: &File, start: i64) -> io::Result<()> {
    fcntl(file, FcntlArg::F_OFD_SETLK(&flock_range(libc::F_RDLCK as libc::c_short, start)))
        .map(drop)
        .map_err(io::Error::from)
}

/// Locks an open image: shared for readers, exclusive for a writer.
/// Readers refuse to share writing, as QEMU does by default, so a reader
/// and a writer also conflict.
pub fn lock(file: &File, read_only: bool) -> io::Result<Result<(), Conflict>> {
    let taken = if read_only { file.try_lock_shared() } else { file.try_lock() };
    match taken {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(Err(Conflict)),
        Err(TryLockError::Error(e)) => return Err(e),
    }
    let mut wanted = vec![PERM_READ];
    if !read_only {
        wanted.push(PERM_WRITE);
    }
    let not_shared = [PERM_WRITE];
    // A file system without OFD locks (some network file systems) still has flock.
    let check = || -> io::Result<bool> {
        for &p in &wanted {
            if byte_taken(file, SHARED_BASE + i64::from(p))? {
                return Ok(true);
            }
        }
        for &p in &not_shared {
            if byte_taken(file, PERM_BASE + i64::from(p))? {
                return Ok(true);
            }
        }
        Ok(false)
    };
    match check() {
        Ok(true) => return Ok(Err(Conflict)),
        Ok(false) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::ENOLCK) => {
            return Ok(Ok(()));
        }
        Err(e) => return Err(e),
    }
    for &p in &wanted {
        read_lock_byte(file, PERM_BASE + i64::from(p))?;
    }
    for &p in &not_shared {
        read_lock_byte(file, SHARED_BASE + i64::from(p))?;
    }
    Ok(Ok(()))
}

/// Processes that have `path` open, as "name (pid N)", for error messages.
/// Best effort: processes of other users may be invisible.
pub fn holders(path: &Path) -> Vec<String> {
    let Ok(meta) = std::fs::metadata(path) else { return Vec::new() };
    let (dev, ino) = (meta.dev(), meta.ino());
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return found };
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        let open = fds
            .flatten()
            .any(|fd| std::fs::metadata(fd.path()).is_ok_and(|m| m.dev() == dev && m.ino() == ino));
        if open {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            found.push(format!("{} (pid {pid})", comm.trim()));
        }
    }
    found
}
