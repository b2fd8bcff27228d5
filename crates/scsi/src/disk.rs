//! Capacity reporting (SBC-3 §5.15/§5.16, MMC-6 §6.23/§6.24).

use crate::lun::{Lun, Medium};

/// READ CAPACITY(10) data: last LBA (0xFFFFFFFF when it does not fit, telling
/// the host to use READ CAPACITY(16)) and block length.
pub fn read_capacity_10(m: &Medium) -> Vec<u8> {
    let last = m.blocks.saturating_sub(1);
    let last = u32::try_from(last).unwrap_or(u32::MAX);
    let mut b = Vec::with_capacity(8);
    b.extend_from_slice(&last.to_be_bytes());
    b.extend_from_slice(&m.block_size.to_be_bytes());
    b
}

/// READ CAPACITY(16) parameter data, 32 bytes (SBC-3 table 66): no protection,
/// one logical block per physical block; a disk (`thin`) is thin provisioned with
/// LBPME and LBPRZ (unmapped blocks read as zeros; see `provisioning`).
pub fn read_capacity_16(m: &Medium, thin: bool) -> Vec<u8> {
    let mut b = vec![0u8; 32];
    b[0..8].copy_from_slice(&m.blocks.saturating_sub(1).to_be_bytes());
    b[8..12].copy_from_slice(&m.block_size.to_be_bytes());
    if thin {
        b[14] = 0xC0; // LBPME, LBPRZ
    }
    b
}

/// Descriptor types of READ FORMAT CAPACITIES (MMC-6 §6.24.3.2, table 474).
const FORMATTED_MEDIA: u8 = 0x02;
const NO_MEDIA: u8 = 0x03;

/// READ FORMAT CAPACITIES: capacity list header + current/maximum capacity
/// descriptor (Windows asks it of every USB disk).
pub fn read_format_capacities(lun: &Lun) -> Vec<u8> {
    let (blocks, kind) = match lun.loaded() {
        Some(m) => (u32::try_from(m.blocks).unwrap_or(u32::MAX), FORMATTED_MEDIA),
        // No medium: report the maximum capacity as unknown (0) with type 3.
        None => (0, NO_MEDIA),
    };
    let mut b = Vec::with_capacity(12);
    b.extend_from_slice(&[0, 0, 0, 8]); // reserved ×3, capacity list length: one descriptor
    b.extend_from_slice(&blocks.to_be_bytes()); // number of blocks
    b.push(kind); // descriptor type
    b.extend_from_slice(&lun.block_size().to_be_bytes()[1..4]); // block length (3 bytes)
    b
}
