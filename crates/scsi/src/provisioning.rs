//! Thin provisioning and the SBC-3 pages that describe the disk's limits: Block
//! Limits (VPD B0h), Block Device Characteristics (B1h), Logical Block Provisioning
//! (B2h); UNMAP, WRITE SAME and GET LBA STATUS.
//!
//! Every disk is thin provisioned with LBPRZ=1: an unmapped block reads as zeros.
//! UNMAP and WRITE SAME with UNMAP (and a zero pattern) call
//! [`BlockBackend::discard`](vstick_media::BlockBackend::discard): a RAW image gets
//! a hole (`fallocate(PUNCH_HOLE)`), a snapshot overlay too, other backends zeros.
//! GET LBA STATUS reports the holes the backend sees (`SEEK_HOLE`).

use tracing::warn;

use crate::lun::Medium;
use crate::sense::Sense;

/// The largest transfer in blocks: BOT's dCBWDataTransferLength is 32 bits.
pub fn max_transfer_blocks(block_size: u32) -> u32 {
    u32::MAX / block_size.max(1)
}

/// MAXIMUM UNMAP LBA COUNT: no limit. Punching a hole costs the same for any length,
/// and Linux, which skips the VPD pages of a USB disk, sends UNMAPs of up to 0x7FFFFF
/// blocks once discard is enabled: a lower limit would fail them.
pub const MAX_UNMAP_BLOCKS: u32 = u32::MAX;
/// MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT: as many as a 16-bit parameter list holds.
pub const MAX_UNMAP_DESCRIPTORS: u32 = (u16::MAX as u32 - 8) / 16;
/// MAXIMUM WRITE SAME LENGTH in blocks.
pub const MAX_WRITE_SAME_BLOCKS: u32 = 1 << 20;
/// MAXIMUM COMPARE AND WRITE LENGTH in blocks: its data-out (2 × this) is buffered.
pub const MAX_COMPARE_AND_WRITE_BLOCKS: u8 = 128;
/// File systems allocate in 4 KiB: a smaller hole only zeros the blocks.
const UNMAP_GRANULARITY_BYTES: u32 = 4096;

/// Block Limits VPD page body (SBC-3 §6.5.3), page length 0x3C. No atomic writes
/// (WRITE ATOMIC is not implemented: its fields are 0).
pub fn block_limits(block_size: u32) -> Vec<u8> {
    let mut p = vec![0u8; 0x3C];
    // Offsets below are the page's own minus the 4-byte header.
    p[0] = 0; // WSNZ=0: WRITE SAME with 0 blocks means "through the last block"
    p[1] = MAX_COMPARE_AND_WRITE_BLOCKS;
    p[2..4].copy_from_slice(&1u16.to_be_bytes()); // optimal transfer length granularity
    p[4..8].copy_from_slice(&max_transfer_blocks(block_size).to_be_bytes());
    // Optimal transfer length and maximum prefetch length: 0, not reported / no limit.
    p[16..20].copy_from_slice(&MAX_UNMAP_BLOCKS.to_be_bytes());
    p[20..24].copy_from_slice(&MAX_UNMAP_DESCRIPTORS.to_be_bytes());
    let granularity = (UNMAP_GRANULARITY_BYTES / block_size.max(1)).max(1);
    p[24..28].copy_from_slice(&granularity.to_be_bytes()); // optimal unmap granularity
    p[28..32].copy_from_slice(&0x8000_0000u32.to_be_bytes()); // UGAVALID, alignment 0
    p[32..40].copy_from_slice(&u64::from(MAX_WRITE_SAME_BLOCKS).to_be_bytes());
    p
}

/// Block Device Characteristics VPD page body (SBC-3 §6.5.2): non-rotating medium.
pub fn block_device_characteristics() -> Vec<u8> {
    let mut p = vec![0u8; 0x3C];
    p[0..2].copy_from_slice(&1u16.to_be_bytes()); // MEDIUM ROTATION RATE 1: non-rotating
    p
}

/// Logical Block Provisioning VPD page body (SBC-3 §6.5.4).
pub fn logical_block_provisioning() -> Vec<u8> {
    vec![
        0x00, // threshold exponent: no thresholds
        0xE4, // LBPU (UNMAP), LBPWS (WRITE SAME(16)), LBPWS10, LBPRZ; no ANC_SUP, no DP
        0x02, // provisioning type 010b: thin provisioned
        0x00,
    ]
}

fn be16(b: &[u8], at: usize) -> usize {
    b.get(at..at + 2).map_or(0, |v| usize::from(u16::from_be_bytes([v[0], v[1]])))
}

/// UNMAP (SBC-3 §5.28) with its parameter list: every descriptor is checked before
/// any block is unmapped. Length errors follow QEMU: a list shorter than its own
/// lengths say, or descriptors that are not whole, is 05/1A/00.
pub fn unmap(m: &Medium, params: &[u8]) -> Result<u64, Sense> {
    if params.len() < 8 || params.len() < be16(params, 0) + 2 || params.len() < be16(params, 2) + 8 {
        return Err(Sense::PARAMETER_LIST_LENGTH_ERROR);
    }
    let descriptors_len = be16(params, 2);
    if !descriptors_len.is_multiple_of(16) {
        return Err(Sense::PARAMETER_LIST_LENGTH_ERROR);
    }
    let list = params.get(8..8 + descriptors_len).unwrap_or_default();
    if list.len() / 16 > MAX_UNMAP_DESCRIPTORS as usize {
        return Err(Sense::INVALID_FIELD_IN_PARAMETER_LIST);
    }
    let mut ranges = Vec::with_capacity(list.len() / 16);
    let mut total = 0u64;
    for d in list.chunks_exact(16) {
        let mut lba = [0u8; 8];
        lba.copy_from_slice(&d[0..8]);
        let lba = u64::from_be_bytes(lba);
        let blocks = u64::from(u32::from_be_bytes([d[8], d[9], d[10], d[11]]));
        if !m.in_range(lba, blocks) {
            return Err(Sense::LBA_OUT_OF_RANGE);
        }
        total += blocks;
        ranges.push((lba, blocks));
    }
    if total > u64::from(MAX_UNMAP_BLOCKS) {
        return Err(Sense::INVALID_FIELD_IN_PARAMETER_LIST);
    }
    for (lba, blocks) in ranges.into_iter().filter(|&(_, n)| n > 0) {
        discard(m, lba, blocks)?;
    }
    Ok(total * u64::from(m.block_size))
}

fn discard(m: &Medium, lba: u64, blocks: u64) -> Result<(), Sense> {
    let bs = u64::from(m.block_size);
    m.backend.discard(lba * bs, blocks * bs).map_err(|e| {
        warn!(lba, blocks, error = %e, "discard failed");
        Sense::WRITE_ERROR
    })
}

/// The blocks a WRITE SAME covers, after its checks (SBC-3 §5.41): 0 means through
/// the last block; more than MAXIMUM WRITE SAME LENGTH is 05/24/00.
pub fn write_same_range(m: &Medium, lba: u64, blocks: u32) -> Result<u64, Sense> {
    if lba >= m.blocks {
        return Err(Sense::LBA_OUT_OF_RANGE);
    }
    let blocks = if blocks == 0 { m.blocks - lba } else { u64::from(blocks) };
    if !m.in_range(lba, blocks) {
        return Err(Sense::LBA_OUT_OF_RANGE);
    }
    if blocks > u64::from(MAX_WRITE_SAME_BLOCKS) {
        return Err(Sense::INVALID_FIELD_IN_CDB);
    }
    Ok(blocks)
}

/// Writes `pattern` (one block) to `blocks` blocks from `lba`, from one bounded
/// buffer. With `unmap` the blocks are discarded instead, whatever the pattern
/// (SBC-3 §5.42: the device server unmaps; with LBPRZ they then read as zeros, which
/// libiscsi's WriteSame*.Unmap* checks with a pattern of 0xFF; QEMU does the same).
/// Returns the bytes written.
pub fn write_same(m: &Medium, lba: u64, blocks: u64, unmap: bool, pattern: &[u8]) -> Result<u64, Sense> {
    let bs = u64::from(m.block_size);
    if pattern.len() as u64 != bs {
        return Err(Sense::PARAMETER_LIST_LENGTH_ERROR);
    }
    if unmap {
        discard(m, lba, blocks)?;
        return Ok(0);
    }
    const CHUNK: u64 = 64 * 1024;
    let per_chunk = (CHUNK / bs).max(1);
    let mut buf = Vec::with_capacity((per_chunk * bs) as usize);
    for _ in 0..per_chunk.min(blocks) {
        buf.extend_from_slice(pattern);
    }
    let mut done = 0u64;
    while done < blocks {
        let n = (blocks - done).min(per_chunk);
        let piece = buf.get(..(n * bs) as usize).unwrap_or_default();
        m.backend.write_at((lba + done) * bs, piece).map_err(|e| {
            warn!(lba = lba + done, error = %e, "WRITE SAME failed");
            Sense::WRITE_ERROR
        })?;
        done += n;
    }
    Ok(blocks * bs)
}

/// Provisioning status of an LBA status descriptor (SBC-3 table 40).
const MAPPED: u8 = 0;
const DEALLOCATED: u8 = 1;
/// Descriptors one GET LBA STATUS returns at most (the host asks again from the end).
const MAX_STATUS_DESCRIPTORS: usize = 64;

/// GET LBA STATUS parameter data (SBC-3 §5.7): extents of mapped and deallocated
/// blocks from `lba`, as many as fit `alloc` (at least one).
pub fn get_lba_status(m: &Medium, lba: u64, alloc: u32) -> Result<Vec<u8>, Sense> {
    if lba >= m.blocks {
        return Err(Sense::LBA_OUT_OF_RANGE);
    }
    let bs = u64::from(m.block_size);
    let end = m.blocks * bs;
    let room = (alloc.saturating_sub(8) / 16) as usize;
    let wanted = room.clamp(1, MAX_STATUS_DESCRIPTORS);
    let mut descriptors: Vec<(u64, u64, u8)> = Vec::new();
    let mut at = lba;
    while at < m.blocks && descriptors.len() < wanted {
        let extent = m.backend.extent(at * bs, end).map_err(|e| {
            warn!(lba = at, error = %e, "allocation status unknown");
            Sense::UNRECOVERED_READ_ERROR
        })?;
        // A block is deallocated only if all of it is a hole.
        let (status, mut blocks) = if extent.allocated {
            (MAPPED, extent.len.div_ceil(bs))
        } else {
            match extent.len / bs {
                0 => (MAPPED, 1),
                n => (DEALLOCATED, n),
            }
        };
        blocks = blocks.clamp(1, m.blocks - at);
        match descriptors.last_mut() {
            Some(last) if last.2 == status && last.0 + last.1 == at => last.1 += blocks,
            _ => descriptors.push((at, blocks, status)),
        }
        at += blocks;
    }
    let mut out = Vec::with_capacity(8 + 16 * descriptors.len());
    out.extend_from_slice(&((4 + 16 * descriptors.len()) as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    for (start, blocks, status) in descriptors {
        out.extend_from_slice(&start.to_be_bytes());
        out.extend_from_slice(&u32::try_from(blocks).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&[status, 0, 0, 0]);
    }
    Ok(out)
}

/// READ DEFECT DATA(10/12) (SBC-3 §5.18/§5.19): an image has no defects, so an
/// empty list in the format asked for.
pub fn read_defect_data(twelve: bool, request: u8) -> Vec<u8> {
    if twelve { vec![0, request & 0x1F, 0, 0, 0, 0, 0, 0] } else { vec![0, request & 0x1F, 0, 0] }
}
