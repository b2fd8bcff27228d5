//! Which media a logical unit accepts: one rule for start-up, the device
//! builder and `ctl insert`, so no path lets through what another refuses.

use vstick_media::{BlockBackend, CD_BLOCK_SIZE};

use crate::LunKind;

/// Block sizes a disk LUN takes: what Linux, Windows and macOS all mount.
pub const DISK_BLOCK_SIZES: [u32; 2] = [512, 4096];

/// Why a medium does not fit a kind of logical unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediumError {
    /// A CD/DVD medium whose block size (held here) is not 2048 bytes.
    #[error("a CD/DVD drive needs {CD_BLOCK_SIZE}-byte blocks, this medium has {0}-byte blocks")]
    OpticalBlockSize(u32),
    /// A disk medium whose block size (held here) is not in [`DISK_BLOCK_SIZES`].
    #[error("a disk needs 512- or 4096-byte blocks, not {0}")]
    DiskBlockSize(u32),
    /// The medium is smaller than one block, so it has no capacity to report.
    #[error("the medium holds no whole block")]
    NoBlocks,
}

/// The block sizes a LUN of `kind` takes (MMC: 2048; SBC disks: [`DISK_BLOCK_SIZES`]).
pub fn check_block_size(kind: LunKind, block_size: u32) -> Result<(), MediumError> {
    match kind {
        LunKind::Optical if block_size != CD_BLOCK_SIZE => Err(MediumError::OpticalBlockSize(block_size)),
        LunKind::Disk if !DISK_BLOCK_SIZES.contains(&block_size) => {
            Err(MediumError::DiskBlockSize(block_size))
        }
        LunKind::Optical | LunKind::Disk => Ok(()),
    }
}

/// [`check_block_size`], and at least one whole block.
pub fn check_medium(kind: LunKind, medium: &dyn BlockBackend) -> Result<(), MediumError> {
    check_block_size(kind, medium.block_size())?;
    if medium.block_count() == 0 {
        return Err(MediumError::NoBlocks);
    }
    Ok(())
}
