//! MMC read-only disc commands: READ TOC/PMA/ATIP, READ DISC INFORMATION,
//! READ TRACK INFORMATION, READ DISC STRUCTURE, MECHANISM STATUS, GET PERFORMANCE.
//!
//! The disc is always one finalized session holding one data track that starts
//! at LBA 0 and spans the whole image.

use crate::lun::{Lun, Medium};
use crate::sense::Sense;

/// Largest medium presented as a CD: what MSF addressing can reach
/// (256 minutes × 60 s × 75 frames). Anything larger is a DVD-ROM, as QEMU does;
/// the Linux gadget's truncation at CD size breaks Windows installer ISOs.
pub const CD_MAX_BLOCKS: u64 = 256 * 60 * 75;

/// MMC profiles (MMC-6 table 89).
pub const PROFILE_NONE: u16 = 0x0000;
pub const PROFILE_CD_ROM: u16 = 0x0008;
pub const PROFILE_DVD_ROM: u16 = 0x0010;

pub fn is_dvd(m: &Medium) -> bool {
    m.blocks > CD_MAX_BLOCKS
}

pub fn profile(lun: &Lun) -> u16 {
    match lun.loaded() {
        None => PROFILE_NONE,
        Some(m) if is_dvd(m) => PROFILE_DVD_ROM,
        Some(_) => PROFILE_CD_ROM,
    }
}

/// ADR 1 (Q sub-channel position), CONTROL 4 (data track, copy prohibited).
const ADR_CONTROL_DATA: u8 = 0x14;
const LEAD_OUT: u8 = 0xAA;
/// The 2-second pregap before LBA 0 (MMC-6 §4.2.3.4: MSF = LBA + 150).
const PREGAP_FRAMES: u64 = 150;

/// M, S, F of `lba` (MMC-6 §6.32.3.2.1); saturates at 255:59:74 for DVD-sized media.
pub fn msf(lba: u64) -> [u8; 3] {
    let frames = lba.saturating_add(PREGAP_FRAMES);
    let minutes = frames / (60 * 75);
    if minutes > 0xFF {
        return [0xFF, 59, 74];
    }
    [minutes as u8, ((frames / 75) % 60) as u8, (frames % 75) as u8]
}

/// A 4-byte TOC address: LBA, or 0 + M/S/F with the MSF bit.
fn address(lba: u64, use_msf: bool) -> [u8; 4] {
    if use_msf {
        let [m, s, f] = msf(lba);
        [0, m, s, f]
    } else {
        u32::try_from(lba).unwrap_or(u32::MAX).to_be_bytes()
    }
}

/// READ TOC/PMA/ATIP response before truncation (MMC-6 §6.32).
pub fn read_toc(m: &Medium, use_msf: bool, format: u8, track: u8) -> Result<Vec<u8>, Sense> {
    match format {
        0 => Ok(toc_formatted(m, use_msf, track)?),
        1 => Ok(toc_session_info(use_msf)),
        2 => toc_raw(m, track),
        // PMA, ATIP, CD-TEXT: not on pressed media.
        _ => Err(Sense::INVALID_FIELD_IN_CDB),
    }
}

/// Format 0000b: track descriptors from `track` on, then the lead-out.
fn toc_formatted(m: &Medium, use_msf: bool, track: u8) -> Result<Vec<u8>, Sense> {
    let mut entries: Vec<(u8, u64)> = Vec::with_capacity(2);
    match track {
        0 | 1 => entries.push((1, 0)),
        LEAD_OUT => {}
        // Starting track beyond the last track (MMC-6 §6.32.2.5).
        _ => return Err(Sense::INVALID_FIELD_IN_CDB),
    }
    entries.push((LEAD_OUT, m.blocks));
    let mut b = Vec::with_capacity(4 + 8 * entries.len());
    b.extend_from_slice(&((2 + 8 * entries.len()) as u16).to_be_bytes()); // TOC data length
    b.push(1); // first track number
    b.push(1); // last track number
    for (number, lba) in entries {
        b.extend_from_slice(&[0, ADR_CONTROL_DATA, number, 0]);
        b.extend_from_slice(&address(lba, use_msf));
    }
    Ok(b)
}

/// Format 0001b: multi-session information; Windows needs it.
fn toc_session_info(use_msf: bool) -> Vec<u8> {
    let mut b = vec![
        0x00,
        0x0A, // TOC data length
        1,    // first complete session
        1,    // last complete session
        0,    // reserved
        ADR_CONTROL_DATA,
        1, // first track number in the last complete session
        0, // reserved
    ];
    b.extend_from_slice(&address(0, use_msf)); // its start address
    b
}

/// Format 0010b: raw TOC (Q sub-channel of the lead-in); macOS needs it.
/// Addresses are always MSF here.
fn toc_raw(m: &Medium, session: u8) -> Result<Vec<u8>, Sense> {
    if session > 1 {
        return Err(Sense::INVALID_FIELD_IN_CDB);
    }
    let [lm, ls, lf] = msf(m.blocks);
    let [tm, ts, tf] = msf(0);
    // session, ADR/CONTROL, TNO, POINT, MIN, SEC, FRAME, ZERO, PMIN, PSEC, PFRAME
    let descriptors: [[u8; 11]; 4] = [
        [1, ADR_CONTROL_DATA, 0, 0xA0, 0, 0, 0, 0, 1, 0x00, 0], // first track 1, disc type CD-ROM
        [1, ADR_CONTROL_DATA, 0, 0xA1, 0, 0, 0, 0, 1, 0, 0],    // last track 1
        [1, ADR_CONTROL_DATA, 0, 0xA2, 0, 0, 0, 0, lm, ls, lf], // lead-out start
        [1, ADR_CONTROL_DATA, 0, 0x01, 0, 0, 0, 0, tm, ts, tf], // track 1 start
    ];
    let mut b = Vec::with_capacity(4 + 11 * descriptors.len());
    b.extend_from_slice(&((2 + 11 * descriptors.len()) as u16).to_be_bytes()); // TOC data length
    b.push(1); // first complete session
    b.push(1); // last complete session
    for d in &descriptors {
        b.extend_from_slice(d);
    }
    Ok(b)
}

/// Expected sector types of READ CD (MMC-6 table 347): any, or CD-DA, or mode 1.
const SECTOR_ANY: u8 = 0;
const SECTOR_CDDA: u8 = 1;
const SECTOR_MODE1: u8 = 2;
/// READ CD byte 9: user data only.
const MAIN_USER_DATA: u8 = 0x10;

/// READ CD over an ISO image: only the 2048-byte user data of mode 1 sectors
/// exists, so only that selection (or none) can be served.
pub fn check_read_cd(sector_type: u8, main: u8, sub: u8) -> Result<(), Sense> {
    match sector_type {
        SECTOR_ANY | SECTOR_MODE1 => {}
        // Our one track is data: audio and mode 2 sectors do not exist on it.
        SECTOR_CDDA | 3..=5 => return Err(Sense::ILLEGAL_MODE_FOR_TRACK),
        _ => return Err(Sense::INVALID_FIELD_IN_CDB),
    }
    if (main != 0 && main != MAIN_USER_DATA) || sub != 0 {
        // Sync, headers, EDC/ECC, C2 or sub-channel data: we have no raw sectors.
        return Err(Sense::INVALID_FIELD_IN_CDB);
    }
    Ok(())
}

/// Standard disc information, 34 bytes (MMC-6 §6.22.3.1, table 404).
pub fn disc_information() -> Vec<u8> {
    let mut b = vec![0u8; 34];
    b[0..2].copy_from_slice(&32u16.to_be_bytes()); // disc information length
    b[2] = 0x0E; // not erasable, last session complete (11b), disc finalized (10b)
    b[3] = 1; // number of first track on disc
    b[4] = 1; // number of sessions (LSB)
    b[5] = 1; // first track number in last session (LSB)
    b[6] = 1; // last track number in last session (LSB)
    b[7] = 0x20; // URU: unrestricted use; DID_V/DBC_V 0
    b[8] = 0x00; // disc type: CD-DA or CD-ROM
    // 16..20 last session lead-in start, 20..24 last possible lead-out start:
    // FFFFFFFFh on a finalized disc.
    b[16..24].fill(0xFF);
    b
}

/// READ TRACK INFORMATION (MMC-6 §6.28) for the single track: 36 bytes.
pub fn track_information(m: &Medium, address_type: u8, address: u32) -> Result<Vec<u8>, Sense> {
    match address_type {
        // LBA: the track containing it.
        0 if u64::from(address) < m.blocks => {}
        0 => return Err(Sense::LBA_OUT_OF_RANGE),
        // Track number 1 or session number 1; lead-in (0), the invisible track
        // (FFh) and anything else do not exist on a finalized one-track disc.
        1 | 2 if address == 1 => {}
        _ => return Err(Sense::INVALID_FIELD_IN_CDB),
    }
    let mut b = vec![0u8; 36];
    b[0..2].copy_from_slice(&34u16.to_be_bytes()); // data length
    b[2] = 1; // track number (LSB)
    b[3] = 1; // session number (LSB)
    b[5] = 0x04; // track mode: data, recorded uninterrupted
    b[6] = 0x01; // data mode 1; RT/blank/packet/FP 0
    b[7] = 0x00; // LRA_V=0, NWA_V=0: nothing writable
    // 8..12 track start address 0; 12..16 next writable 0; 16..20 free blocks 0
    if is_dvd(m) {
        b[20..24].copy_from_slice(&16u32.to_be_bytes()); // blocking factor: 16-sector ECC block
    }
    b[24..28].copy_from_slice(&u32::try_from(m.blocks).unwrap_or(u32::MAX).to_be_bytes()); // track size
    Ok(b)
}

/// READ DISC STRUCTURE format codes served on DVD media (MMC-6 §6.22.2).
const DS_PHYSICAL: u8 = 0x00;
const DS_COPYRIGHT: u8 = 0x01;
const DS_LIST: u8 = 0xFF;
/// Physical sector number of LBA 0 on a DVD (ECMA-267 §16.3).
const DVD_FIRST_PSN: u32 = 0x03_0000;

/// READ DISC STRUCTURE for media type 0 (DVD/HD DVD).
pub fn disc_structure(m: &Medium, media_type: u8, layer: u8, format: u8) -> Result<Vec<u8>, Sense> {
    if media_type != 0 {
        return Err(Sense::INVALID_FIELD_IN_CDB); // BD structures: not a BD drive
    }
    let dvd = is_dvd(m);
    let body = match format {
        DS_LIST => {
            let mut l = Vec::new();
            if dvd {
                // format, SDS=0/RDS=1, structure length
                l.extend_from_slice(&[DS_PHYSICAL, 0x40, 0x08, 0x04]);
                l.extend_from_slice(&[DS_COPYRIGHT, 0x40, 0x00, 0x08]);
            }
            l.extend_from_slice(&[DS_LIST, 0x40, 0x00, 0x00]);
            let len = (l.len() + 4) as u16;
            if let Some(last) = l.rchunks_exact_mut(4).next() {
                last[2..4].copy_from_slice(&len.to_be_bytes());
            }
            l
        }
        // DVD structures asked of a CD (MMC-6 §6.22.2.1: "not DVD media").
        _ if !dvd && format < 0xC0 => return Err(Sense::INCOMPATIBLE_FORMAT),
        DS_PHYSICAL if layer == 0 => physical_format(m),
        DS_COPYRIGHT if layer == 0 => vec![0x00, 0x00, 0x00, 0x00], // no CSS, all regions
        _ => return Err(Sense::INVALID_FIELD_IN_CDB),
    };
    let mut b = Vec::with_capacity(4 + body.len());
    b.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes()); // data length
    b.extend_from_slice(&[0, 0]); // reserved
    b.extend_from_slice(&body);
    Ok(b)
}

/// Physical format information (ECMA-267 §16.3, 2048 bytes): single-layer
/// DVD-ROM, 120 mm, embossed, data area = the image.
fn physical_format(m: &Medium) -> Vec<u8> {
    let mut p = vec![0u8; 2048];
    p[0] = 0x01; // book type 0 (DVD-ROM), part version 1
    p[1] = 0x0F; // disc size 0 (120 mm), maximum rate not specified
    p[2] = 0x01; // one layer, parallel track path, layer type: embossed
    p[3] = 0x00; // linear density 0.267 µm/bit, track density 0.74 µm/track
    p[4..8].copy_from_slice(&DVD_FIRST_PSN.to_be_bytes()); // starting PSN of the data area
    let last = u64::from(DVD_FIRST_PSN) + m.blocks.saturating_sub(1);
    let last = u32::try_from(last).unwrap_or(u32::MAX).min(0x00FF_FFFF);
    p[8..12].copy_from_slice(&last.to_be_bytes()); // end PSN of the data area
    // 12..16 end PSN in layer 0: 0 (single layer); 16: no BCA
    p
}

/// MECHANISM STATUS header, 8 bytes, no slot tables (MMC-6 §6.9).
pub fn mechanism_status(lun: &Lun) -> Vec<u8> {
    let door_open = if lun.tray_open { 0x10 } else { 0 };
    vec![
        0x00,      // no fault, changer ready, current slot 0
        door_open, // mechanism idle, door open bit
        0, 0, 0, // current LBA (obsolete)
        0, // number of slots available
        0, 0, // slot table length
    ]
}

/// GET PERFORMANCE with no descriptors: the 8-byte header only (MMC-6 §6.8).
pub fn performance_header() -> Vec<u8> {
    vec![0, 0, 0, 4, 0, 0, 0, 0] // performance data length 4: the rest of the header
}
