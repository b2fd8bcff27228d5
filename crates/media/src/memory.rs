use std::io;
use std::sync::Mutex;

use crate::{BlockBackend, MediaLocation};

/// RAM-backed medium for tests and fuzzing.
#[derive(Debug)]
pub struct MemoryImage {
    data: Mutex<Vec<u8>>,
    block_size: u32,
    read_only: bool,
}

/// A block size that is not a power of two (0 included): every offset is
/// `lba * block_size`, and a zero size would divide by zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("block size {0} is not a power of two (use 512, 2048 or 4096)")]
pub struct InvalidBlockSize(pub u32);

impl MemoryImage {
    /// For tests and fixed sizes; a size from user input goes through [`Self::try_new`].
    /// An invalid block size is not checked here: the image then holds no block.
    pub fn new(len: usize, block_size: u32, read_only: bool) -> Self {
        Self::from_bytes(vec![0; len], block_size, read_only)
    }

    /// See [`Self::new`]; [`Self::try_from_bytes`] checks the block size.
    pub fn from_bytes(data: Vec<u8>, block_size: u32, read_only: bool) -> Self {
        Self { data: Mutex::new(data), block_size, read_only }
    }

    /// `len` zero bytes; refuses a block size that is not a power of two.
    pub fn try_new(len: usize, block_size: u32, read_only: bool) -> Result<Self, InvalidBlockSize> {
        Self::try_from_bytes(vec![0; len], block_size, read_only)
    }

    /// `data` as the medium; refuses a block size that is not a power of two.
    pub fn try_from_bytes(data: Vec<u8>, block_size: u32, read_only: bool) -> Result<Self, InvalidBlockSize> {
        if !block_size.is_power_of_two() {
            return Err(InvalidBlockSize(block_size));
        }
        Ok(Self::from_bytes(data, block_size, read_only))
    }

    /// A copy of the current contents.
    pub fn contents(&self) -> Vec<u8> {
        self.data.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn range(len: usize, offset: u64, n: usize) -> io::Result<std::ops::Range<usize>> {
    let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    let end = start.checked_add(n).filter(|&e| e <= len).ok_or(io::ErrorKind::UnexpectedEof)?;
    Ok(start..end)
}

impl BlockBackend for MemoryImage {
    fn block_size(&self) -> u32 {
        self.block_size
    }
    fn block_count(&self) -> u64 {
        let len = self.data.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
        // `new` does not check the block size: a zero one holds no block.
        len.checked_div(u64::from(self.block_size)).unwrap_or(0)
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        let r = range(data.len(), offset, buf.len())?;
        buf.copy_from_slice(&data[r]);
        Ok(())
    }
    fn write_at(&self, offset: u64, src: &[u8]) -> io::Result<()> {
        let mut data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        let r = range(data.len(), offset, src.len())?;
        data[r].copy_from_slice(src);
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
    fn location(&self) -> MediaLocation {
        MediaLocation::Memory
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_block_size_is_refused_and_never_divides() {
        assert!(MemoryImage::try_new(4096, 0, false).is_err());
        assert!(MemoryImage::try_from_bytes(vec![0; 4096], 0, false).is_err());
        assert_eq!(MemoryImage::try_new(4096, 512, false).unwrap().block_count(), 8);
        // `new` is for tests; even there a zero block size holds no block rather than panicking.
        assert_eq!(MemoryImage::new(4096, 0, false).block_count(), 0);
    }
}
