//! MODE SENSE(6/10) (SPC-4 §6.11/§6.12) and the mode pages of disk and CD/DVD LUNs.
//!
//! Nothing is changeable: MODE SELECT data is accepted and ignored, and the
//! changeable-values form of every page is all zeroes.

use crate::LunKind;
use crate::cdb::PageControl;
use crate::lun::Lun;
use crate::sense::Sense;

/// All pages (SPC-4 §6.11 table 98).
const ALL_PAGES: u8 = 0x3F;
/// Subpage 0xFF with page 0x3F: all pages and subpages.
const ALL_SUBPAGES: u8 = 0xFF;

/// CD speed unit, kB/s (MMC: 1x = 176.4 kB/s, reported as 176).
const CD_1X_KBPS: u16 = 176;
/// Speed reported in the capabilities page: 48x CD.
const MAX_READ_SPEED: u16 = 48 * CD_1X_KBPS;

/// Read-Write Error Recovery page (SBC-3 §6.4.7, MMC-6 §7.3): default recovery.
fn rw_error_recovery() -> Vec<u8> {
    vec![0x01, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
}

/// Caching page (SBC-3 §6.4.5): WCE=1 because SYNCHRONIZE CACHE and FUA reach
/// fdatasync, so hosts flush when they need durability.
fn caching() -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x08;
    p[1] = 0x12; // page length
    p[2] = 0x04; // WCE=1, RCD=0
    p
}

/// Control page (SPC-4 §7.5.7): TST 0, GLTSD (no saved log parameters),
/// QUEUE ALGORITHM MODIFIER 0, QERR 0, fixed-format sense (D_SENSE 0), SWP 0,
/// busy timeout unlimited. Nothing in it is changeable.
fn control() -> Vec<u8> {
    vec![0x0A, 0x0A, 0x02, 0x00, 0x00, 0x00, 0, 0, 0xFF, 0xFF, 0, 0]
}

/// Informational Exceptions Control page (SPC-4 §7.5.8): DEXCPT=1, nothing to report.
fn informational_exceptions() -> Vec<u8> {
    vec![0x1C, 0x0A, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0]
}

/// CD Audio Control page (MMC-3 §6.3.7): immediate, ports 0/1 on channels 0/1 at full volume.
fn cd_audio_control() -> Vec<u8> {
    vec![0x0E, 0x0E, 0x04, 0, 0, 0, 0, 0, 0x01, 0xFF, 0x02, 0xFF, 0, 0, 0, 0]
}

/// Power Condition page (SPC-4 §7.5.13): no timers.
fn power_condition() -> Vec<u8> {
    vec![0x1A, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
}

/// MM Capabilities and Mechanical Status page (MMC-3 §6.3.11, page length 0x14
/// as QEMU). Without it Linux sr calls the drive "scsi-1" and disables eject,
/// lock and DVD support.
fn capabilities(locked: bool) -> Vec<u8> {
    let mut p = vec![0u8; 22];
    p[0] = 0x2A;
    p[1] = 0x14; // page length
    p[2] = 0x0B; // reads CD-R (bit0), CD-RW (bit1), DVD-ROM (bit3)
    p[3] = 0x00; // writes nothing
    p[4] = 0x50; // mode 2 form 1 (bit4), multi-session (bit6)
    p[5] = 0x00; // no CD-DA commands
    // Lock (bit0), lock state (bit1), no prevent jumper (bit2), eject (bit3),
    // loading mechanism 001b = tray (bits 7:5).
    p[6] = 0x2D | if locked { 0x02 } else { 0 };
    p[7] = 0x00;
    p[8..10].copy_from_slice(&MAX_READ_SPEED.to_be_bytes()); // maximum read speed (obsolete)
    p[10..12].copy_from_slice(&256u16.to_be_bytes()); // number of volume levels
    p[12..14].copy_from_slice(&2048u16.to_be_bytes()); // buffer size, KiB
    p[14..16].copy_from_slice(&MAX_READ_SPEED.to_be_bytes()); // current read speed (obsolete)
    p
}

/// Page codes of a LUN kind, ascending (the order 0x3F returns them in).
fn pages(kind: LunKind) -> &'static [u8] {
    match kind {
        LunKind::Disk => &[0x01, 0x08, 0x0A, 0x1C],
        LunKind::Optical => &[0x01, 0x0E, 0x1A, 0x1C, 0x2A],
    }
}

fn page(lun: &Lun, code: u8) -> Vec<u8> {
    match code {
        0x01 => rw_error_recovery(),
        0x08 => caching(),
        0x0A => control(),
        0x0E => cd_audio_control(),
        0x1A => power_condition(),
        0x1C => informational_exceptions(),
        0x2A => capabilities(lun.prevent),
        _ => Vec::new(),
    }
}

/// Changeable values: same code and length, every bit zero (nothing can change).
fn unchangeable(mut p: Vec<u8>) -> Vec<u8> {
    for b in p.iter_mut().skip(2) {
        *b = 0;
    }
    p
}

pub struct ModeSenseRequest {
    pub ten: bool,
    pub dbd: bool,
    pub llbaa: bool,
    pub pc: PageControl,
    pub page: u8,
    pub subpage: u8,
}

/// The whole MODE SENSE response before truncation to the allocation length.
pub fn mode_sense(lun: &Lun, req: &ModeSenseRequest) -> Result<Vec<u8>, Sense> {
    if req.pc == PageControl::Saved {
        return Err(Sense::SAVING_NOT_SUPPORTED);
    }
    let codes: Vec<u8> = match (req.page, req.subpage) {
        (ALL_PAGES, 0x00 | ALL_SUBPAGES) => pages(lun.kind).to_vec(),
        (p, 0x00) if pages(lun.kind).contains(&p) => vec![p],
        _ => return Err(Sense::INVALID_FIELD_IN_CDB),
    };
    let mut body = Vec::new();
    for code in codes {
        let p = page(lun, code);
        body.extend(if req.pc == PageControl::Changeable { unchangeable(p) } else { p });
    }

    // Block descriptors are SBC only; MMC drives return none (MMC-6 §7.2.3).
    let descriptor =
        if lun.kind == LunKind::Disk && !req.dbd { block_descriptor(lun, req) } else { Vec::new() };
    let long_lba = descriptor.len() == 16;

    let (medium_type, mut device_specific) = (0x00, 0x00);
    if lun.kind == LunKind::Disk {
        // SBC-3 §6.4.1 table 162: WP (bit 7), DPOFUA (bit 4): we honour FUA.
        device_specific = 0x10;
        if lun.loaded().is_some_and(|m| m.read_only) {
            device_specific |= 0x80;
        }
    }

    let mut out;
    if req.ten {
        let total = 8 + descriptor.len() + body.len();
        out = Vec::with_capacity(total);
        out.extend_from_slice(&((total - 2) as u16).to_be_bytes()); // mode data length
        out.push(medium_type);
        out.push(device_specific);
        out.push(u8::from(long_lba)); // LONGLBA
        out.push(0); // reserved
        out.extend_from_slice(&(descriptor.len() as u16).to_be_bytes()); // block descriptor length
    } else {
        let total = 4 + descriptor.len() + body.len();
        out = Vec::with_capacity(total);
        out.push((total - 1) as u8); // mode data length
        out.push(medium_type);
        out.push(device_specific);
        out.push(descriptor.len() as u8); // block descriptor length
    }
    out.extend_from_slice(&descriptor);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Short (8-byte) or, for MODE SENSE(10) with LLBAA, long (16-byte) LBA block
/// descriptor (SBC-3 §6.4.2). The short form's NUMBER OF LOGICAL BLOCKS is
/// 4 bytes and saturates at 0xFFFFFFFF (SBC-3 §6.4.2.2).
fn block_descriptor(lun: &Lun, req: &ModeSenseRequest) -> Vec<u8> {
    let blocks = lun.loaded().map_or(0, |m| m.blocks);
    let block_size = lun.block_size();
    if req.ten && req.llbaa {
        let mut d = vec![0u8; 16];
        d[0..8].copy_from_slice(&blocks.to_be_bytes());
        d[12..16].copy_from_slice(&block_size.to_be_bytes());
        d
    } else {
        let mut d = vec![0u8; 8];
        d[0..4].copy_from_slice(&u32::try_from(blocks).unwrap_or(u32::MAX).to_be_bytes());
        d[5..8].copy_from_slice(&block_size.to_be_bytes()[1..4]);
        d
    }
}
