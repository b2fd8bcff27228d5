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

impl MemoryImage {
    pub fn new(len: usize, block_size: u32, read_only: bool) -> Self {
        Self::from_bytes(vec![0; len], block_size, read_only)
    }

    pub fn from_bytes(data: Vec<u8>, block_size: u32, read_only: bool) -> Self {
        Self { data: Mutex::new(data), block_size, read_only }
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
        len / u64::from(self.block_size)
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
