use std::io;

use crate::{BlockBackend, MediaLocation};

/// Serves `B` read-only whatever it allows (a `--disk-ro` made of any backend):
/// the SCSI layer refuses writes with 07/27/00, and `write_at` refuses them too.
#[derive(Debug)]
pub struct ReadOnly<B>(pub B);

impl<B: BlockBackend> BlockBackend for ReadOnly<B> {
    fn block_size(&self) -> u32 {
        self.0.block_size()
    }
    fn block_count(&self) -> u64 {
        self.0.block_count()
    }
    fn read_only(&self) -> bool {
        true
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_at(offset, buf)
    }
    fn write_at(&self, _offset: u64, _data: &[u8]) -> io::Result<()> {
        Err(io::ErrorKind::PermissionDenied.into())
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
    fn location(&self) -> MediaLocation {
        self.0.location()
    }
    fn discard(&self, _offset: u64, _len: u64) -> io::Result<()> {
        Err(io::ErrorKind::PermissionDenied.into())
    }
    fn extent(&self, offset: u64, end: u64) -> io::Result<crate::Extent> {
        self.0.extent(offset, end)
    }
    fn prefetch(&self, offset: u64, len: u64) -> io::Result<()> {
        self.0.prefetch(offset, len)
    }
}
