use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::fcntl::{FallocateFlags, fallocate};

use crate::{BlockBackend, Extent, MediaLocation};

/// Copy-on-write granularity. 64 KiB keeps the bitmap at 2 MiB per TiB of image
/// while a 4 KiB guest write copies at most 60 KiB from the base.
const CLUSTER: u64 = 64 * 1024;

/// A writable view of a read-only base: writes land in a sparse overlay file,
/// reads take each cluster from the overlay once written, else from the base.
/// The base is never modified.
///
/// Sync (its base too), so the server can keep a handle to persist it at shutdown.
pub struct SnapshotImage {
    base: Box<dyn BlockBackend + Sync>,
    overlay: File,
    /// One bit per cluster: set once the cluster lives in the overlay.
    written: Mutex<Vec<u64>>,
    len: u64,
    /// Where [`Self::persist_kept`] writes the merged image; taken once written or tried.
    keep: Mutex<Option<PathBuf>>,
}

/// The merged image of a kept snapshot could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write the merged snapshot of {base}: {source}; this session's writes to it are lost")]
pub struct KeepError {
    /// Where the merged image was to be written.
    pub path: PathBuf,
    /// The read-only medium the snapshot's writes were layered over.
    pub base: MediaLocation,
    /// The error from creating or writing the merged image.
    pub source: io::Error,
}

impl std::fmt::Debug for SnapshotImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotImage").field("base", &self.base.location()).finish_non_exhaustive()
    }
}

impl SnapshotImage {
    /// `overlay` must be an empty, writable file (normally an unlinked temporary file).
    pub fn new(base: Box<dyn BlockBackend + Sync>, overlay: File) -> io::Result<Self> {
        let len = base.block_count() * u64::from(base.block_size());
        overlay.set_len(len)?;
        let clusters = len.div_ceil(CLUSTER);
        let words = usize::try_from(clusters.div_ceil(64)).map_err(|_| io::ErrorKind::OutOfMemory)?;
        Ok(Self { base, overlay, written: Mutex::new(vec![0; words]), len, keep: Mutex::new(None) })
    }

    /// An overlay in an unlinked temporary file beside `near` (same filesystem,
    /// so a big image's writes do not land in a RAM-backed /tmp), else in the
    /// system temporary directory.
    pub fn with_temp_overlay(base: Box<dyn BlockBackend + Sync>, near: &Path) -> io::Result<Self> {
        let dir = near.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let overlay = tempfile_in(dir).or_else(|_| tempfile_in(&std::env::temp_dir()))?;
        Self::new(base, overlay)
    }

    fn is_written(map: &[u64], cluster: u64) -> bool {
        map.get((cluster / 64) as usize).is_some_and(|w| w & (1 << (cluster % 64)) != 0)
    }

    fn mark(map: &mut [u64], cluster: u64) {
        if let Some(w) = map.get_mut((cluster / 64) as usize) {
            *w |= 1 << (cluster % 64);
        }
    }

    fn check_range(&self, offset: u64, n: usize) -> io::Result<()> {
        match offset.checked_add(n as u64) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }

    /// Keep this session's writes: [`Self::persist_kept`] writes the merged image to `path`.
    pub fn keep_as(self, path: PathBuf) -> Self {
        *self.keep.lock().unwrap_or_else(|e| e.into_inner()) = Some(path);
        self
    }

    /// Writes the merged image to the path given to [`Self::keep_as`], once; the
    /// caller reports the error (at shutdown, a failed exit). `Ok(None)`: nothing to keep.
    pub fn persist_kept(&self) -> Result<Option<PathBuf>, KeepError> {
        let Some(path) = self.keep.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(None);
        };
        match self.persist_to(&path) {
            Ok(()) => Ok(Some(path)),
            Err(source) => Err(KeepError { path, base: self.base.location(), source }),
        }
    }

    /// Writes the merged image (base + this session's writes) to a new file at `path`,
    /// leaving holes where the base reads as zeros.
    /// Never overwrites; a file it created and could not finish is removed.
    pub fn persist_to(&self, path: &Path) -> io::Result<()> {
        let out = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
        let written = self.write_merged(&out);
        if written.is_err() {
            // A half-written image must not pass for the kept one.
            let _ = std::fs::remove_file(path);
        }
        written
    }

    fn write_merged(&self, out: &File) -> io::Result<()> {
        out.set_len(self.len)?;
        let mut buf = vec![0u8; CLUSTER as usize];
        let mut offset = 0;
        while offset < self.len {
            let n = (self.len - offset).min(CLUSTER) as usize;
            self.read_at(offset, &mut buf[..n])?;
            if buf[..n].iter().any(|&b| b != 0) {
                out.write_all_at(&buf[..n], offset)?;
            }
            offset += n as u64;
        }
        out.sync_all()
    }
}

fn tempfile_in(dir: &Path) -> io::Result<File> {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let path = dir.join(format!(".vstick-snapshot-{}-{nanos}", std::process::id()));
    let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
    // Unlinked at once: the overlay disappears with the process, whatever way it ends.
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// Fallback only: shutdown calls [`SnapshotImage::persist_kept`] and reports its
/// error. If that never ran (a panic unwound past it), writing the merged image
/// now is still better than losing it, and never overwrites anything.
impl Drop for SnapshotImage {
    fn drop(&mut self) {
        match self.persist_kept() {
            Ok(Some(path)) => {
                tracing::warn!(
                    "snapshot of {} kept as {} on the way out",
                    self.base.location(),
                    path.display()
                )
            }
            Ok(None) => {}
            Err(e) => tracing::error!("{e}"),
        }
    }
}

impl BlockBackend for SnapshotImage {
    fn block_size(&self) -> u32 {
        self.base.block_size()
    }
    fn block_count(&self) -> u64 {
        self.base.block_count()
    }
    fn read_only(&self) -> bool {
        false
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.check_range(offset, buf.len())?;
        let map = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let cluster = pos / CLUSTER;
            let n = ((cluster + 1) * CLUSTER - pos).min((buf.len() - done) as u64) as usize;
            let chunk = &mut buf[done..done + n];
            if Self::is_written(&map, cluster) {
                self.overlay.read_exact_at(chunk, pos)?;
            } else {
                self.base.read_at(pos, chunk)?;
            }
            done += n;
        }
        Ok(())
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check_range(offset, data.len())?;
        let mut map = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let cluster = pos / CLUSTER;
            let start = cluster * CLUSTER;
            let n = ((start + CLUSTER) - pos).min((data.len() - done) as u64) as usize;
            let chunk = &data[done..done + n];
            let whole = pos == start && (n as u64 == CLUSTER || pos + n as u64 == self.len);
            if !Self::is_written(&map, cluster) && !whole {
                // First partial write to this cluster: copy it up from the base.
                let cl_len = (self.len - start).min(CLUSTER) as usize;
                let mut cl = vec![0u8; cl_len];
                self.base.read_at(start, &mut cl)?;
                let at = (pos - start) as usize;
                cl[at..at + n].copy_from_slice(chunk);
                self.overlay.write_all_at(&cl, start)?;
            } else {
                self.overlay.write_all_at(chunk, pos)?;
            }
            Self::mark(&mut map, cluster);
            done += n;
        }
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        // The overlay is discarded on exit; nothing to make durable.
        Ok(())
    }
    fn location(&self) -> MediaLocation {
        self.base.location()
    }
    /// Whole clusters become holes in the overlay and are marked as living there, so
    /// they read as zeros without touching the base; partial clusters get zeros written.
    fn discard(&self, offset: u64, len: u64) -> io::Result<()> {
        let end = offset.checked_add(len).filter(|&e| e <= self.len).ok_or(io::ErrorKind::UnexpectedEof)?;
        let first_whole = offset.div_ceil(CLUSTER) * CLUSTER;
        let last_whole = if end == self.len { end } else { end / CLUSTER * CLUSTER };
        if first_whole >= last_whole {
            return crate::write_zeros(self, offset, len);
        }
        crate::write_zeros(self, offset, first_whole - offset)?;
        {
            let mut map = self.written.lock().unwrap_or_else(|e| e.into_inner());
            let (Ok(at), Ok(n)) = (i64::try_from(first_whole), i64::try_from(last_whole - first_whole))
            else {
                return Err(io::ErrorKind::InvalidInput.into());
            };
            let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
            if fallocate(&self.overlay, flags, at, n).is_err() {
                drop(map);
                return crate::write_zeros(self, offset, len);
            }
            for cluster in first_whole / CLUSTER..last_whole.div_ceil(CLUSTER) {
                Self::mark(&mut map, cluster);
            }
        }
        crate::write_zeros(self, last_whole, end - last_whole)
    }
    /// A cluster in the overlay is allocated where the overlay file has data; one
    /// still in the base is as the base says. Looks at most 4096 clusters ahead.
    fn extent(&self, offset: u64, end: u64) -> io::Result<Extent> {
        let end = end.min(self.len);
        let state = |pos: u64| -> io::Result<Extent> {
            let cluster_end = (pos / CLUSTER + 1) * CLUSTER;
            let stop = cluster_end.min(end);
            let written =
                Self::is_written(&self.written.lock().unwrap_or_else(|e| e.into_inner()), pos / CLUSTER);
            if written { overlay_extent(&self.overlay, pos, stop) } else { self.base.extent(pos, stop) }
        };
        let first = state(offset)?;
        let mut len = first.len;
        for _ in 0..4096 {
            let pos = offset.saturating_add(len);
            if pos >= end {
                break;
            }
            let next = state(pos)?;
            if next.allocated != first.allocated {
                break;
            }
            len += next.len;
        }
        Ok(Extent { allocated: first.allocated, len })
    }
}

/// Allocation of the overlay file between `offset` and `end` (SEEK_DATA / SEEK_HOLE).
fn overlay_extent(overlay: &File, offset: u64, end: u64) -> io::Result<Extent> {
    use nix::unistd::{Whence, lseek};
    let all = Extent { allocated: true, len: end.saturating_sub(offset).max(1) };
    let Ok(off) = i64::try_from(offset) else { return Ok(all) };
    let clamp = |to: i64| (to as u64).min(end).saturating_sub(offset).max(1);
    match lseek(overlay, off, Whence::SeekData) {
        Ok(data) if data == off => match lseek(overlay, off, Whence::SeekHole) {
            Ok(hole) => Ok(Extent { allocated: true, len: clamp(hole) }),
            Err(_) => Ok(all),
        },
        Ok(data) => Ok(Extent { allocated: false, len: clamp(data) }),
        Err(nix::errno::Errno::ENXIO) => Ok(Extent { allocated: false, len: all.len }),
        Err(_) => Ok(all),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryImage;
    use std::sync::Arc;

    struct Shared(Arc<MemoryImage>);
    impl BlockBackend for Shared {
        fn block_size(&self) -> u32 {
            self.0.block_size()
        }
        fn block_count(&self) -> u64 {
            self.0.block_count()
        }
        fn read_only(&self) -> bool {
            true
        }
        fn read_at(&self, o: u64, b: &mut [u8]) -> io::Result<()> {
            self.0.read_at(o, b)
        }
        fn write_at(&self, _: u64, _: &[u8]) -> io::Result<()> {
            panic!("the base must never be written")
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
        fn location(&self) -> MediaLocation {
            MediaLocation::Memory
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn writes_go_to_the_overlay_and_read_back_merged() {
        let len = 3 * CLUSTER as usize + 4096; // a partial last cluster too
        let base = Arc::new(MemoryImage::from_bytes(pattern(len), 512, true));
        let snap = SnapshotImage::new(Box::new(Shared(base.clone())), tempfile::tempfile().unwrap()).unwrap();
        let mut expect = pattern(len);
        for (off, n) in [
            (512usize, 1024usize),
            (CLUSTER as usize - 512, 2048),
            (2 * CLUSTER as usize, CLUSTER as usize),
            (len - 512, 512),
        ] {
            let data = vec![0xA5u8; n];
            snap.write_at(off as u64, &data).unwrap();
            expect[off..off + n].copy_from_slice(&data);
        }
        let mut got = vec![0u8; len];
        snap.read_at(0, &mut got).unwrap();
        assert_eq!(got, expect);
        assert_eq!(base.contents(), pattern(len), "base unchanged");
        assert!(snap.read_at(len as u64 - 511, &mut [0u8; 512]).is_err());

        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept.raw");
        snap.persist_to(&kept).unwrap();
        assert_eq!(std::fs::read(&kept).unwrap(), expect);
        assert!(snap.persist_to(&kept).is_err(), "never overwrites");
    }

    #[test]
    fn discard_reads_zeros_leaves_the_base_and_shows_as_holes() {
        let len = 4 * CLUSTER as usize;
        let base = Arc::new(MemoryImage::from_bytes(vec![0x5A; len], 512, true));
        let snap = SnapshotImage::new(Box::new(Shared(base.clone())), tempfile::tempfile().unwrap()).unwrap();
        // From the middle of cluster 0 to the middle of cluster 3: two whole clusters punched.
        let (off, n) = (CLUSTER / 2, 3 * CLUSTER);
        snap.discard(off, n).unwrap();
        let mut got = vec![0u8; len];
        snap.read_at(0, &mut got).unwrap();
        let mut expect = vec![0x5Au8; len];
        expect[off as usize..(off + n) as usize].fill(0);
        assert_eq!(got, expect);
        assert_eq!(base.contents(), vec![0x5A; len], "base unchanged");
        let hole = snap.extent(CLUSTER, len as u64).unwrap();
        assert_eq!(hole, Extent { allocated: false, len: 2 * CLUSTER });
        assert!(snap.extent(0, len as u64).unwrap().allocated);
        assert!(snap.discard(len as u64 - 512, 1024).is_err(), "past the end");
    }

    #[test]
    fn persist_kept_reports_its_error_once() {
        let base = MemoryImage::from_bytes(pattern(4096), 512, true);
        let dir = tempfile::tempdir().unwrap();
        let taken = dir.path().join("taken.raw");
        std::fs::write(&taken, b"mine").unwrap();
        let snap =
            SnapshotImage::new(Box::new(base), tempfile::tempfile().unwrap()).unwrap().keep_as(taken.clone());
        let e = snap.persist_kept().unwrap_err();
        assert!(e.to_string().starts_with(&format!("{}: cannot write", taken.display())), "{e}");
        assert!(snap.persist_kept().unwrap().is_none(), "tried once; drop does not retry");
        drop(snap);
        assert_eq!(std::fs::read(&taken).unwrap(), b"mine");
    }
}
