//! Block backends: what a SCSI logical unit reads and writes.
//!
//! Everything here is byte-addressed underneath but always accessed in whole
//! logical blocks by the SCSI layer (`offset = lba * block_size`).

#![warn(missing_docs)]

mod file;
mod lock;
mod memory;
mod read_only;
mod snapshot;

pub use file::{FileImage, OpenOptions};
pub use memory::{InvalidBlockSize, MemoryImage};
pub use read_only::ReadOnly;
pub use snapshot::{KeepError, SnapshotImage};

use std::io;
use std::path::PathBuf;

/// Sector size of CD/DVD media (ISO 9660 logical block).
pub const CD_BLOCK_SIZE: u32 = 2048;

/// LBA-addressed storage behind one logical unit.
///
/// Implementations must be cheap to call from the protocol core: reads come
/// straight from the page cache, and `flush` is the only call that waits for
/// stable storage.
pub trait BlockBackend: Send {
    /// Logical block size in bytes (512, 2048 or 4096).
    fn block_size(&self) -> u32;
    /// Number of whole logical blocks; any tail shorter than a block is unreachable.
    fn block_count(&self) -> u64;
    /// Writes are refused by the SCSI layer (07/27/00) before reaching `write_at`.
    fn read_only(&self) -> bool;
    /// Fills `buf` completely from byte `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes all of `data` at byte `offset`.
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Makes every completed write durable (fdatasync for files).
    fn flush(&self) -> io::Result<()>;
    /// Where the data lives, for status output and logs.
    fn location(&self) -> MediaLocation;

    /// Makes `len` bytes from `offset` read as zeros and, where the backend can,
    /// gives their storage back (thin provisioning: UNMAP, WRITE SAME with UNMAP).
    /// The default writes zeros in bounded pieces; [`FileImage`] punches a hole.
    fn discard(&self, offset: u64, len: u64) -> io::Result<()> {
        write_zeros(self, offset, len)
    }

    /// Whether the bytes from `offset` have storage allocated, and how far (in bytes,
    /// at least 1, at most to `end`) that state extends; GET LBA STATUS reports it.
    /// The default says everything is allocated.
    fn extent(&self, offset: u64, end: u64) -> io::Result<Extent> {
        Ok(Extent { allocated: true, len: end.saturating_sub(offset).max(1) })
    }

    /// Advice that `len` bytes from `offset` will be read soon (PRE-FETCH); the
    /// default does nothing.
    fn prefetch(&self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
}

/// An allocation state and how many bytes it covers ([`BlockBackend::extent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Storage is allocated (reads may return data); `false`: a hole that reads as zeros.
    pub allocated: bool,
    /// Bytes from the asked offset that share this state.
    pub len: u64,
}

/// Size of the zero buffer [`write_zeros`] writes from.
const ZERO_CHUNK: u64 = 64 * 1024;

/// Writes `len` zero bytes at `offset` from one 64 KiB buffer (never a buffer of `len`).
pub fn write_zeros<B: BlockBackend + ?Sized>(backend: &B, offset: u64, len: u64) -> io::Result<()> {
    let zeros = vec![0u8; ZERO_CHUNK.min(len) as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(ZERO_CHUNK) as usize;
        backend.write_at(offset + done, zeros.get(..n).unwrap_or_default())?;
        done += n as u64;
    }
    Ok(())
}

/// A medium the caller keeps a handle to (a test harness or an embedder that
/// inspects the image while it is served).
impl<T: BlockBackend + Sync + ?Sized> BlockBackend for std::sync::Arc<T> {
    fn block_size(&self) -> u32 {
        (**self).block_size()
    }
    fn block_count(&self) -> u64 {
        (**self).block_count()
    }
    fn read_only(&self) -> bool {
        (**self).read_only()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        (**self).write_at(offset, data)
    }
    fn flush(&self) -> io::Result<()> {
        (**self).flush()
    }
    fn location(&self) -> MediaLocation {
        (**self).location()
    }
    fn discard(&self, offset: u64, len: u64) -> io::Result<()> {
        (**self).discard(offset, len)
    }
    fn extent(&self, offset: u64, end: u64) -> io::Result<Extent> {
        (**self).extent(offset, end)
    }
    fn prefetch(&self, offset: u64, len: u64) -> io::Result<()> {
        (**self).prefetch(offset, len)
    }
}

/// Where a backend's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaLocation {
    /// An image file or block device at this path.
    File(PathBuf),
    /// Bytes held in memory ([`MemoryImage`]).
    Memory,
}

impl std::fmt::Display for MediaLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MediaLocation::File(p) => write!(f, "{}", p.display()),
            MediaLocation::Memory => f.write_str("(memory)"),
        }
    }
}

/// Why an image could not be opened. Every message names the path and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The path does not exist.
    #[error("{path}: no such file (check the path)")]
    NotFound {
        /// The image path.
        path: PathBuf,
    },
    /// The file cannot be opened with the access asked for.
    #[error("{path}: permission denied{hint}")]
    PermissionDenied {
        /// The image path.
        path: PathBuf,
        /// Suggestion appended to the message (empty when opening read-only).
        hint: &'static str,
    },
    /// The path is a directory.
    #[error("{path}: is a directory, not an image file (use `vstick iso create` to make an ISO from it)")]
    IsDirectory {
        /// The image path.
        path: PathBuf,
    },
    /// The path is neither a regular file nor a block device (FIFO, socket, character device).
    #[error("{path}: is not a regular file or block device")]
    NotAFile {
        /// The image path.
        path: PathBuf,
    },
    /// The image has length 0.
    #[error("{path}: the image is empty (0 bytes); create one with `vstick image create`")]
    Empty {
        /// The image path.
        path: PathBuf,
    },
    /// The block size is not a power of two (0 included).
    #[error("{path}: block size {block_size} is not a power of two (use 512, 2048 or 4096)")]
    BadBlockSize {
        /// The image path.
        path: PathBuf,
        /// The block size asked for.
        block_size: u32,
    },
    /// The image is shorter than one logical block.
    #[error("{path}: smaller than one {block_size}-byte block ({len} bytes)")]
    TooSmall {
        /// The image path.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
        /// The logical block size asked for.
        block_size: u32,
    },
    /// Another process holds a conflicting lock on the image.
    #[error(
        "{path}: image is in use by {holder}, which locks it; stop it first (readers can share with --disk-ro)"
    )]
    Locked {
        /// The image path.
        path: PathBuf,
        /// The processes that have it open, as "name (pid N)", or "another process".
        holder: String,
    },
    /// Any other I/O error while opening, locking or sizing the image.
    #[error("{path}: {source}")]
    Io {
        /// The image path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}
