//! COMPARE AND WRITE (SBC-3 §5.2).
//!
//! Atomic with respect to every other command because the target runs one command
//! at a time: nothing reaches the medium between the compare and the write.

use tracing::warn;

use crate::lun::Medium;
use crate::sense::Sense;

/// `data` is the verify instance (`blocks` blocks) then the write instance: the
/// write happens only if the medium holds the verify instance. Returns the bytes
/// written.
pub fn compare_and_write(m: &Medium, lba: u64, blocks: u8, data: &[u8]) -> Result<u64, Sense> {
    let len = usize::from(blocks) * m.block_size as usize;
    if data.len() != 2 * len {
        return Err(Sense::PARAMETER_LIST_LENGTH_ERROR);
    }
    let (verify, write) = data.split_at(len);
    let offset = lba * u64::from(m.block_size);
    let mut current = vec![0u8; len];
    m.backend.read_at(offset, &mut current).map_err(|e| {
        warn!(lba, error = %e, "read for COMPARE AND WRITE failed");
        Sense::UNRECOVERED_READ_ERROR
    })?;
    if current != verify {
        return Err(Sense::MISCOMPARE_DURING_VERIFY);
    }
    m.backend.write_at(offset, write).map_err(|e| {
        warn!(lba, error = %e, "COMPARE AND WRITE failed");
        Sense::WRITE_ERROR
    })?;
    Ok(len as u64)
}
