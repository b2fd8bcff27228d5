//! Progress reporting and cancellation, hooked in where the image bytes leave the writer.
//!
//! The image libraries take a block device and write to it; wrapping that device is the one
//! place that sees every byte without the libraries knowing about progress bars or signals.

use std::sync::Mutex;
use std::time::Duration;

use hadris_io::{Error as IoError, ErrorKind, ErrorType};
use hadris_storage::sync::BlockDevice;
use hadris_storage::{BlockIndex, BlockSize};

use crate::output::Cancel;

/// Receives how far an image write is. Implementations must be cheap: `advance` is called for
/// every block write (64 KiB or less).
pub trait Progress: Send + Sync {
    /// The write begins; about `total` bytes will be written.
    fn start(&self, total: u64, what: &str);
    /// `bytes` more were written.
    fn advance(&self, bytes: u64);
    /// The write ended (successfully or not).
    fn finish(&self);
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _total: u64, _what: &str) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// Writes smaller than this are not worth a bar: they finish before it would draw.
const BAR_THRESHOLD: u64 = 64 << 20;

/// A terminal progress bar on stderr (hidden when stderr is not a terminal, and for images
/// smaller than 64 MiB).
#[derive(Debug, Default)]
pub struct Bar {
    bar: Mutex<Option<indicatif::ProgressBar>>,
}

impl Bar {
    /// Nothing drawn yet; [`Progress::start`] draws the bar when the conditions above hold.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Progress for Bar {
    fn start(&self, total: u64, what: &str) {
        if total < BAR_THRESHOLD {
            return;
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr_with_hz(4),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(250));
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    fn advance(&self, bytes: u64) {
        if let Ok(slot) = self.bar.lock()
            && let Some(bar) = slot.as_ref()
        {
            // Metadata writes can take the count past the estimate; grow rather than overflow.
            if bar.position() + bytes > bar.length().unwrap_or(0) {
                bar.set_length(bar.position() + bytes);
            }
            bar.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }
}

/// A block device that counts written bytes into a [`Progress`] and fails writes once the
/// operation is cancelled.
///
/// `flush` is not forwarded: the image lives in a temporary file that is synced once before it
/// is renamed into place, so syncing after every file the FAT writer copies would only cost time.
pub(crate) struct Tracked<'a, D> {
    inner: D,
    progress: &'a dyn Progress,
    cancel: &'a Cancel,
}

impl<'a, D> Tracked<'a, D> {
    pub(crate) fn new(inner: D, progress: &'a dyn Progress, cancel: &'a Cancel) -> Self {
        Self { inner, progress, cancel }
    }
}

impl<D: ErrorType> ErrorType for Tracked<'_, D> {
    type Error = D::Error;
}

impl<D: BlockDevice> BlockDevice for Tracked<'_, D> {
    fn block_size(&self) -> BlockSize {
        self.inner.block_size()
    }

    fn physical_block_size(&self) -> BlockSize {
        self.inner.physical_block_size()
    }

    fn block_count(&self) -> u64 {
        self.inner.block_count()
    }

    fn max_block_count(&self) -> u64 {
        self.inner.max_block_count()
    }

    fn disk_offset(&self) -> u64 {
        self.inner.disk_offset()
    }

    fn writable(&self) -> bool {
        self.inner.writable()
    }

    fn read_blocks(&mut self, first: BlockIndex, buf: &mut [u8]) -> Result<(), IoError<D::Error>> {
        self.inner.read_blocks(first, buf)
    }

    fn write_blocks(&mut self, first: BlockIndex, buf: &[u8]) -> Result<(), IoError<D::Error>> {
        if self.cancel.is_cancelled() {
            return Err(IoError::new(ErrorKind::Io, "interrupted"));
        }
        self.inner.write_blocks(first, buf)?;
        self.progress.advance(buf.len() as u64);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError<D::Error>> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Default)]
    struct Count(AtomicU64);

    impl Progress for Count {
        fn start(&self, _total: u64, _what: &str) {}
        fn advance(&self, bytes: u64) {
            self.0.fetch_add(bytes, Ordering::SeqCst);
        }
        fn finish(&self) {}
    }

    #[test]
    fn counts_writes_and_stops_when_cancelled() {
        let count = Count::default();
        let cancel = Cancel::new();
        let mut dev = Tracked::new(vec![0u8; 4096], &count, &cancel);
        dev.write_blocks(BlockIndex::new(0), &[1u8; 1024]).unwrap();
        dev.write_blocks(BlockIndex::new(4), &[2u8; 512]).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1536);
        cancel.cancel();
        assert!(dev.write_blocks(BlockIndex::new(0), &[3u8; 512]).is_err());
        assert_eq!(count.0.load(Ordering::SeqCst), 1536, "a refused write is not counted");
        let mut back = [0u8; 512];
        dev.read_blocks(BlockIndex::new(4), &mut back).unwrap();
        assert_eq!(back, [2u8; 512]);
    }
}
