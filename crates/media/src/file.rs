use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{FallocateFlags, PosixFadviseAdvice, fallocate, posix_fadvise};
use nix::unistd::{Whence, lseek};

use crate::{BlockBackend, CD_BLOCK_SIZE, Extent, MediaLocation, OpenError};

/// How to open an image file.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// Open without write access and take a shared lock; the medium is
    /// reported write-protected.
    pub read_only: bool,
    /// Logical block size in bytes, a power of two; bytes past the last
    /// whole block are unreachable.
    pub block_size: u32,
    /// Look for an ISO 9660 / UDF descriptor at sector 16 and warn if there is none.
    pub expect_optical: bool,
}

impl OpenOptions {
    /// A disk image with 512-byte blocks.
    pub fn disk(read_only: bool) -> Self {
        Self { read_only, block_size: 512, expect_optical: false }
    }
    /// A read-only CD/DVD image with 2048-byte blocks, checked for a volume descriptor.
    pub fn optical() -> Self {
        Self { read_only: true, block_size: CD_BLOCK_SIZE, expect_optical: true }
    }
    /// These options with another block size.
    pub fn block_size(mut self, block_size: u32) -> Self {
        self.block_size = block_size;
        self
    }
}

/// A RAW or ISO image in a file (or block device), accessed with pread/pwrite.
///
/// The file is locked for as long as this value lives: exclusively when
/// writable, shared when read-only, so two writers (or a writer and readers)
/// never share an image.
#[derive(Debug)]
pub struct FileImage {
    file: File,
    path: PathBuf,
    block_size: u32,
    block_count: u64,
    read_only: bool,
}

impl FileImage {
    /// Opens and locks the image at `path`; refuses a block size that is not
    /// a power of two, a directory, a special file other than a block device,
    /// an image locked by another process and one smaller than a block.
    pub fn open(path: &Path, opts: OpenOptions) -> Result<Self, OpenError> {
        let path_buf = path.to_path_buf();
        if !opts.block_size.is_power_of_two() {
            return Err(OpenError::BadBlockSize { path: path_buf, block_size: opts.block_size });
        }
        let io_err = |source: io::Error| match source.kind() {
            io::ErrorKind::NotFound => OpenError::NotFound { path: path_buf.clone() },
            io::ErrorKind::PermissionDenied => OpenError::PermissionDenied {
                path: path_buf.clone(),
                hint: if opts.read_only {
                    ""
                } else {
                    " (serve it read-only with --disk-ro, or fix its permissions)"
                },
            },
            _ => OpenError::Io { path: path_buf.clone(), source },
        };
        let meta = std::fs::metadata(path).map_err(io_err)?;
        let ftype = meta.file_type();
        if ftype.is_dir() {
            return Err(OpenError::IsDirectory { path: path_buf });
        }
        if !ftype.is_file() && !ftype.is_block_device() {
            return Err(OpenError::NotAFile { path: path_buf });
        }
        let mut file =
            std::fs::OpenOptions::new().read(true).write(!opts.read_only).open(path).map_err(io_err)?;
        if crate::lock::lock(&file, opts.read_only).map_err(io_err)?.is_err() {
            let holders = crate::lock::holders(path);
            let holder = if holders.is_empty() { "another process".to_string() } else { holders.join(", ") };
            return Err(OpenError::Locked { path: path_buf, holder });
        }
        let len = file.seek(SeekFrom::End(0)).map_err(io_err)?;
        if len == 0 {
            return Err(OpenError::Empty { path: path_buf });
        }
        let block_size = opts.block_size;
        let block_count = len / u64::from(block_size);
        if block_count == 0 {
            return Err(OpenError::TooSmall { path: path_buf, len, block_size });
        }
        let tail = len % u64::from(block_size);
        if tail != 0 {
            tracing::warn!(
                "{}: size {len} is not a multiple of {block_size}; the last {tail} bytes are unreachable",
                path.display()
            );
        }
        let image = Self { file, path: path_buf, block_size, block_count, read_only: opts.read_only };
        if opts.expect_optical && !image.has_volume_descriptor() {
            tracing::warn!(
                "{}: no ISO 9660 or UDF volume descriptor at sector 16; serving it as a raw data disc",
                path.display()
            );
        }
        Ok(image)
    }

    /// The path the image was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// ISO 9660 ("CD001") or UDF volume recognition ("BEA01", "NSR02/03") at byte 32768.
    fn has_volume_descriptor(&self) -> bool {
        let mut vd = [0u8; 6];
        if self.file.read_exact_at(&mut vd, 16 * 2048).is_err() {
            return false;
        }
        matches!(&vd[1..6], b"CD001" | b"BEA01" | b"NSR02" | b"NSR03")
    }
}

impl BlockBackend for FileImage {
    fn block_size(&self) -> u32 {
        self.block_size
    }
    fn block_count(&self) -> u64 {
        self.block_count
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.read_only {
            return Err(io::ErrorKind::PermissionDenied.into());
        }
        self.file.write_all_at(data, offset)
    }
    fn flush(&self) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.file.sync_data()
    }
    fn location(&self) -> MediaLocation {
        MediaLocation::File(self.path.clone())
    }
    /// `fallocate(PUNCH_HOLE | KEEP_SIZE)`: the range reads as zeros and its blocks go
    /// back to the file system. Where that is not supported (a block device, a file
    /// system without holes) zeros are written instead.
    fn discard(&self, offset: u64, len: u64) -> io::Result<()> {
        if self.read_only {
            return Err(io::ErrorKind::PermissionDenied.into());
        }
        let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        if n == 0 {
            return Ok(());
        }
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        match fallocate(&self.file, flags, off, n) {
            Ok(()) => Ok(()),
            Err(nix::errno::Errno::EOPNOTSUPP | nix::errno::Errno::ENODEV) => {
                crate::write_zeros(self, offset, len)
            }
            Err(e) => Err(e.into()),
        }
    }
    /// `lseek(SEEK_DATA)` / `lseek(SEEK_HOLE)`: a hole is unallocated. A block
    /// device, or a file system without that support, reports all allocated.
    fn extent(&self, offset: u64, end: u64) -> io::Result<Extent> {
        let all = Extent { allocated: true, len: end.saturating_sub(offset).max(1) };
        let Ok(off) = i64::try_from(offset) else { return Ok(all) };
        let clamp = |to: i64| (to as u64).min(end).saturating_sub(offset).max(1);
        match lseek(&self.file, off, Whence::SeekData) {
            // Data at `offset`: allocated up to the next hole.
            Ok(data) if data == off => match lseek(&self.file, off, Whence::SeekHole) {
                Ok(hole) => Ok(Extent { allocated: true, len: clamp(hole) }),
                Err(_) => Ok(all),
            },
            Ok(data) => Ok(Extent { allocated: false, len: clamp(data) }),
            // ENXIO: no data from `offset` to the end of the file.
            Err(nix::errno::Errno::ENXIO) => Ok(Extent { allocated: false, len: all.len }),
            Err(_) => Ok(all),
        }
    }
    /// `posix_fadvise(WILLNEED)`: the kernel starts reading ahead.
    fn prefetch(&self, offset: u64, len: u64) -> io::Result<()> {
        let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else { return Ok(()) };
        posix_fadvise(&self.file, off, n, PosixFadviseAdvice::POSIX_FADV_WILLNEED).map_err(io::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(len: usize) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(len as u64).unwrap();
        f
    }

    #[test]
    fn reads_back_what_was_written() {
        let f = image(1 << 20);
        let img = FileImage::open(f.path(), OpenOptions::disk(false)).unwrap();
        assert_eq!(img.block_count(), 2048);
        img.write_at(4096, b"hello").unwrap();
        img.flush().unwrap();
        let mut buf = [0u8; 5];
        img.read_at(4096, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
    }

    #[test]
    fn second_writer_is_refused_readers_share() {
        let f = image(4096);
        let _w = FileImage::open(f.path(), OpenOptions::disk(false)).unwrap();
        let err = FileImage::open(f.path(), OpenOptions::disk(false)).unwrap_err();
        assert!(matches!(err, OpenError::Locked { .. }), "{err}");
        drop(_w);
        let _r1 = FileImage::open(f.path(), OpenOptions::disk(true)).unwrap();
        let _r2 = FileImage::open(f.path(), OpenOptions::disk(true)).unwrap();
        let err = FileImage::open(f.path(), OpenOptions::disk(false)).unwrap_err();
        assert!(matches!(err, OpenError::Locked { .. }), "{err}");
    }

    #[test]
    fn bad_paths_have_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = FileImage::open(dir.path(), OpenOptions::disk(true)).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let e = FileImage::open(&dir.path().join("nope"), OpenOptions::disk(true)).unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
        let empty = image(0);
        let e = FileImage::open(empty.path(), OpenOptions::disk(true)).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let tiny = image(100);
        let e = FileImage::open(tiny.path(), OpenOptions::optical()).unwrap_err();
        assert!(matches!(e, OpenError::TooSmall { .. }), "{e}");
    }

    #[test]
    fn zero_block_size_is_an_error_not_a_division() {
        let f = image(4096);
        let e = FileImage::open(f.path(), OpenOptions::disk(false).block_size(0)).unwrap_err();
        assert!(matches!(e, OpenError::BadBlockSize { block_size: 0, .. }), "{e}");
        assert!(e.to_string().contains("block size 0"), "{e}");
    }

    #[test]
    fn discard_punches_a_hole_and_extent_sees_it() {
        let f = image(1 << 20);
        let img = FileImage::open(f.path(), OpenOptions::disk(false)).unwrap();
        img.write_at(0, &vec![0xAB; 1 << 20]).unwrap();
        img.flush().unwrap();
        let allocated = |f: &tempfile::NamedTempFile| {
            use std::os::unix::fs::MetadataExt;
            f.as_file().metadata().unwrap().blocks() * 512
        };
        let before = allocated(&f);
        assert!(before >= 1 << 20, "{before}");
        assert_eq!(img.extent(0, 1 << 20).unwrap(), Extent { allocated: true, len: 1 << 20 });
        img.discard(256 * 1024, 512 * 1024).unwrap();
        let after = allocated(&f);
        assert!(after <= before - 512 * 1024, "{before} -> {after}");
        let mut buf = vec![1u8; 1 << 20];
        img.read_at(0, &mut buf).unwrap();
        assert!(buf[..256 * 1024].iter().all(|&b| b == 0xAB));
        assert!(buf[256 * 1024..768 * 1024].iter().all(|&b| b == 0));
        assert!(buf[768 * 1024..].iter().all(|&b| b == 0xAB));
        assert_eq!(img.extent(0, 1 << 20).unwrap(), Extent { allocated: true, len: 256 * 1024 });
        assert_eq!(img.extent(256 * 1024, 1 << 20).unwrap(), Extent { allocated: false, len: 512 * 1024 });
        assert_eq!(img.extent(300 * 1024, 400 * 1024).unwrap(), Extent { allocated: false, len: 100 * 1024 });
        img.prefetch(0, 4096).unwrap();
        let ro = FileImage::open(f.path(), OpenOptions::disk(true));
        assert!(ro.is_err(), "still locked by the writer");
    }

    #[test]
    fn unaligned_tail_is_not_counted() {
        let f = image(512 * 3 + 100);
        let img = FileImage::open(f.path(), OpenOptions::disk(true)).unwrap();
        assert_eq!(img.block_count(), 3);
        assert!(img.write_at(0, b"x").is_err());
    }
}
