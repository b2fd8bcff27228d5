//! MMC CD/DVD LUN: byte-exact responses.

use super::*;
use crate::optical::CD_MAX_BLOCKS;
use crate::{DataStage, LunKind, Sense, Status};

/// A CD of 1000 blocks (lead-out at LBA 1000 = MSF 00:15:25).
fn cd() -> Host {
    Host::ready(vec![optical(1000)])
}

fn dvd() -> Host {
    Host::ready(vec![optical(CD_MAX_BLOCKS + 1)])
}

fn read_toc(msf: bool, format: u8, track: u8, alloc: u16, byte9: u8) -> [u8; 10] {
    let a = alloc.to_be_bytes();
    [0x43, if msf { 0x02 } else { 0 }, format, 0, 0, 0, track, a[0], a[1], byte9]
}

#[test]
fn inquiry_is_type_5_removable() {
    let mut h = cd();
    let d = h.cmd(0, &[0x12, 0, 0, 0, 36, 0]).good();
    assert_eq!(&d[..2], &[0x05, 0x80]);
    assert_eq!(&d[16..32], b"CD/DVD-ROM      ");
    assert_eq!(h.cmd(0, &[0x12, 1, 0x00, 0, 255, 0]).good()[0], 0x05);
}

#[test]
fn read_capacity_and_reads() {
    let mut h = cd();
    assert_eq!(
        h.cmd(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]).good(),
        vec![0, 0, 0x03, 0xE7, 0, 0, 0x08, 0x00] // last LBA 999, 2048
    );
    let d = h.cmd(0, &read10(16, 1)).good(); // El Torito / PVD area
    assert_eq!(d.len(), 2048);
    assert_eq!(d[0], pattern(16 * 2048));
    let d = h.cmd(0, &[0xA8, 0, 0, 0, 0x03, 0xE7, 0, 0, 0, 1, 0, 0]).good(); // READ(12), last block
    assert_eq!(d[2047], pattern(1000 * 2048 - 1));
    assert_eq!(h.cmd(0, &[0x08, 0, 0, 1, 1, 0]).good().len(), 2048); // READ(6)
    assert_eq!(h.cmd(0, &read16(999, 1)).good().len(), 2048);
    h.expect_check(0, &read10(1000, 1), Sense::LBA_OUT_OF_RANGE);
}

#[test]
fn writes_are_write_protected() {
    // 07/27/00 like QEMU scsi-cd and the Linux gadget in cdrom mode; Linux sr never
    // sends writes to a drive without write features (cdrom_open refuses with EROFS),
    // and Windows maps 07/27/00 to "media is write protected".
    let mut h = cd();
    let r = h.cmd_out(0, &write10(0, 1, false), &[0u8; 2048]);
    assert_eq!((r.stage, r.status), (DataStage::None, Status::CheckCondition));
    assert_eq!(h.sense(0), (0x07, 0x27, 0x00));
}

#[test]
fn read_toc_format_0_lba() {
    let mut h = cd();
    assert_eq!(
        h.cmd(0, &read_toc(false, 0, 0, 0x0324, 0)).good(),
        vec![
            0x00, 0x12, // TOC data length: 2 + 2 × 8
            1, 1, // first, last track
            0, 0x14, 1, 0, 0, 0, 0, 0, // track 1: ADR 1 / data, LBA 0
            0, 0x14, 0xAA, 0, 0, 0, 0x03, 0xE8, // lead-out at LBA 1000
        ]
    );
}

#[test]
fn read_toc_format_0_msf() {
    let mut h = cd();
    assert_eq!(
        h.cmd(0, &read_toc(true, 0, 1, 0x0324, 0)).good(),
        vec![
            0x00, 0x12, 1, 1, //
            0, 0x14, 1, 0, 0, 0, 2, 0, // track 1 at 00:02:00 (LBA 0 + 150)
            0, 0x14, 0xAA, 0, 0, 0, 15, 25, // lead-out 1150 frames = 00:15:25
        ]
    );
    // Starting at the lead-out.
    assert_eq!(
        h.cmd(0, &read_toc(false, 0, 0xAA, 0x0324, 0)).good(),
        vec![0x00, 0x0A, 1, 1, 0, 0x14, 0xAA, 0, 0, 0, 0x03, 0xE8]
    );
    h.expect_check(0, &read_toc(false, 0, 2, 0x0324, 0), Sense::INVALID_FIELD_IN_CDB);
    // Header only (allocation length 4), as Linux sr asks first.
    assert_eq!(h.cmd(0, &read_toc(false, 0, 0, 4, 0)).good(), vec![0x00, 0x12, 1, 1]);
}

#[test]
fn read_toc_format_1_session_info() {
    let mut h = cd();
    let want = vec![
        0x00, 0x0A, // data length
        1, 1, // first, last complete session
        0, 0x14, 1, 0, // ADR/control, first track in last session
        0, 0, 0, 0, // its LBA: 0
    ];
    assert_eq!(h.cmd(0, &read_toc(false, 1, 0, 12, 0)).good(), want);
    // Old style: byte 2 is 0, byte 9 = 0x40 (Linux sr's multisession query).
    assert_eq!(h.cmd(0, &read_toc(false, 0, 0, 12, 0x40)).good(), want);
    // MSF: 00:02:00.
    assert_eq!(&h.cmd(0, &read_toc(true, 1, 0, 12, 0)).good()[8..], &[0, 0, 2, 0]);
}

#[test]
fn read_toc_format_2_raw() {
    let mut h = cd();
    let want = vec![
        0x00, 0x2E, // data length 2 + 4 × 11
        1, 1, // first, last session
        1, 0x14, 0, 0xA0, 0, 0, 0, 0, 1, 0x00, 0, // A0: first track 1, disc type CD-ROM
        1, 0x14, 0, 0xA1, 0, 0, 0, 0, 1, 0, 0, // A1: last track 1
        1, 0x14, 0, 0xA2, 0, 0, 0, 0, 0, 15, 25, // A2: lead-out 00:15:25
        1, 0x14, 0, 0x01, 0, 0, 0, 0, 0, 2, 0, // track 1 at 00:02:00
    ];
    assert_eq!(h.cmd(0, &read_toc(true, 2, 1, 0xFFFF, 0)).good(), want);
    assert_eq!(h.cmd(0, &read_toc(false, 0, 0, 0xFFFF, 0x80)).good(), want, "old-style format 2");
    h.expect_check(0, &read_toc(false, 3, 0, 0xFFFF, 0), Sense::INVALID_FIELD_IN_CDB); // PMA
    h.expect_check(0, &read_toc(false, 4, 0, 0xFFFF, 0), Sense::INVALID_FIELD_IN_CDB); // ATIP
}

#[test]
fn msf_conversion() {
    use crate::optical::msf;
    assert_eq!(msf(0), [0, 2, 0]);
    assert_eq!(msf(1000), [0, 15, 25]);
    assert_eq!(msf(CD_MAX_BLOCKS - 151), [255, 59, 74]);
    assert_eq!(msf(u64::MAX), [255, 59, 74], "saturates");
}

#[test]
fn get_configuration_cd_full() {
    let mut h = cd();
    let d = h.cmd(0, &get_configuration(0, 0, 0xFFFF)).good();
    let want: Vec<u8> = [
        &[0, 0, 0, 0x54, 0, 0, 0x00, 0x08][..], // data length, current profile CD-ROM
        &[0x00, 0x00, 0x03, 8, 0x00, 0x10, 0, 0, 0x00, 0x08, 1, 0], // profile list: DVD-ROM, CD-ROM (current)
        &[0x00, 0x01, 0x0B, 8, 0, 0, 0, 8, 0x01, 0, 0, 0], // core v2: USB, DBE
        &[0x00, 0x02, 0x07, 4, 0x02, 0, 0, 0],  // morphing v1: OCEvent
        &[0x00, 0x03, 0x03, 4, 0x2D, 0, 0, 0],  // removable: tray, eject, no jumper, lock
        &[0x00, 0x10, 0x01, 8, 0, 0, 0x08, 0, 0, 1, 1, 0], // random readable: 2048, blocking 1, PP
        &[0x00, 0x1E, 0x09, 4, 0, 0, 0, 0],     // CD read v2, current
        &[0x00, 0x1F, 0x04, 4, 0, 0, 0, 0],     // DVD read v1, not current
        &[0x01, 0x00, 0x03, 0],                 // power management
        &[0x01, 0x05, 0x03, 4, 0, 0, 0, 0],     // timeout
    ]
    .concat();
    assert_eq!(d, want);
    assert_eq!(d.len(), 0x54 + 4);
}

#[test]
fn get_configuration_profiles_follow_medium() {
    let mut h =
        Host::ready(vec![optical(CD_MAX_BLOCKS), optical(CD_MAX_BLOCKS + 1), empty(LunKind::Optical)]);
    assert_eq!(current_profile(&mut h, 0), 0x0008, "exactly CD size is still a CD");
    assert_eq!(current_profile(&mut h, 1), 0x0010, "one block more is a DVD");
    assert_eq!(current_profile(&mut h, 2), 0x0000, "empty");
    // DVD: DVD read current, CD read not, blocking 16.
    let d = h.cmd(1, &get_configuration(0, 0x10, 0xFFFF)).good();
    assert_eq!(&d[8..20], &[0x00, 0x10, 0x01, 8, 0, 0, 0x08, 0, 0, 16, 1, 0]);
    assert_eq!(&d[20..24], &[0x00, 0x1E, 0x08, 4]);
    assert_eq!(&d[28..32], &[0x00, 0x1F, 0x05, 4]);
    // Empty: no profile current, random readable not current.
    let d = h.cmd(2, &get_configuration(0, 0, 0xFFFF)).good();
    assert_eq!(&d[12..20], &[0x00, 0x10, 0, 0, 0x00, 0x08, 0, 0]);
    assert_eq!(&d[48..51], &[0x00, 0x10, 0x00]);
}

#[test]
fn get_configuration_rt_and_start() {
    let mut h = cd();
    // RT=2: exactly one feature.
    assert_eq!(
        h.cmd(0, &get_configuration(2, 0x0003, 0xFFFF)).good(),
        vec![0, 0, 0, 12, 0, 0, 0, 8, 0x00, 0x03, 0x03, 4, 0x2D, 0, 0, 0]
    );
    // RT=2 for a feature we do not have: header only.
    assert_eq!(h.cmd(0, &get_configuration(2, 0x0020, 0xFFFF)).good(), vec![0, 0, 0, 4, 0, 0, 0, 8]);
    // RT=1: current features only (no DVD read on a CD).
    let d = h.cmd(0, &get_configuration(1, 0x0010, 0xFFFF)).good();
    let codes: Vec<u16> = {
        let mut v = Vec::new();
        let mut i = 8;
        while i + 4 <= d.len() {
            v.push(u16::from_be_bytes([d[i], d[i + 1]]));
            i += 4 + d[i + 3] as usize;
        }
        v
    };
    assert_eq!(codes, vec![0x0010, 0x001E, 0x0100, 0x0105]);
    h.expect_check(0, &get_configuration(3, 0, 0xFFFF), Sense::INVALID_FIELD_IN_CDB);
    // Truncated: the header still gives the full length.
    assert_eq!(h.cmd(0, &get_configuration(0, 0, 4)).good(), vec![0, 0, 0, 0x54]);
}

#[test]
fn gesn_media_class() {
    let mut h = cd();
    assert_eq!(
        h.cmd(0, &gesn(8)).good(),
        vec![
            0x00, 0x06, // event data length
            0x04, // NEA=0, class media
            0x10, // supported: media
            0x00, // no change
            0x02, // media present, tray closed
            0, 0,
        ]
    );
    // Media class not requested: NEA.
    assert_eq!(h.cmd(0, &[0x4A, 0x01, 0, 0, 0x02, 0, 0, 0, 8, 0]).good(), vec![0, 2, 0x80, 0x10]);
    // Not polled: unsupported.
    h.expect_check(0, &[0x4A, 0x00, 0, 0, 0x10, 0, 0, 0, 8, 0], Sense::INVALID_FIELD_IN_CDB);
}

#[test]
fn mode_sense_10_capabilities_page() {
    let mut h = cd();
    assert_eq!(
        h.cmd(0, &[0x5A, 0, 0x2A, 0, 0, 0, 0, 0, 128, 0]).good(),
        vec![
            0, 28, 0x00, 0x00, 0, 0, 0, 0, // header: length 30 - 2, no block descriptors on MMC
            0x2A, 0x14, // page code, length
            0x0B, // reads CD-R, CD-RW, DVD-ROM
            0x00, // writes nothing
            0x50, // mode 2 form 1, multi-session
            0x00, //
            0x2D, // lock, no jumper, eject, tray; not locked
            0x00, //
            0x21, 0x00, // max read speed 8448 kB/s (48x)
            0x01, 0x00, // 256 volume levels
            0x08, 0x00, // buffer 2048 KiB
            0x21, 0x00, // current read speed
            0, 0, 0, 0, 0, 0, // write speeds: none
        ]
    );
    assert_eq!(h.cmd(0, &prevent(true)).status, Status::Good);
    let d = h.cmd(0, &[0x5A, 0, 0x2A, 0, 0, 0, 0, 0, 128, 0]).good();
    assert_eq!(d[14], 0x2F, "lock state bit follows PREVENT");
}

#[test]
fn mode_sense_optical_pages() {
    let mut h = cd();
    let d = h.cmd(0, &[0x5A, 0, 0x3F, 0, 0, 0, 0, 0, 255, 0]).good();
    let mut codes = Vec::new();
    let mut i = 8;
    while i + 2 <= d.len() {
        codes.push(d[i]);
        i += 2 + d[i + 1] as usize;
    }
    assert_eq!(codes, vec![0x01, 0x0E, 0x1A, 0x1C, 0x2A]);
    assert_eq!(i, d.len());
    for page in [0x01u8, 0x0E, 0x1A, 0x1C] {
        let d = h.cmd(0, &[0x5A, 0x08, page, 0, 0, 0, 0, 0, 255, 0]).good();
        assert_eq!(d[8], page);
    }
    h.expect_check(0, &[0x5A, 0, 0x08, 0, 0, 0, 0, 0, 255, 0], Sense::INVALID_FIELD_IN_CDB);
    // MODE SENSE(6) works too, without block descriptors.
    let d = h.cmd(0, &[0x1A, 0, 0x2A, 0, 255, 0]).good();
    assert_eq!(&d[..6], &[25, 0, 0, 0, 0x2A, 0x14]);
}

#[test]
fn read_disc_information() {
    let mut h = cd();
    let d = h.cmd(0, &[0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0]).good();
    let mut want = vec![
        0, 32,   // disc information length
        0x0E, // last session complete, disc finalized
        1,    // first track
        1,    // sessions
        1,    // first track in last session
        1,    // last track in last session
        0x20, // URU
        0x00, // CD-ROM disc type
        0, 0, 0, // MSBs
        0, 0, 0, 0, // disc identification
        0xFF, 0xFF, 0xFF, 0xFF, // last session lead-in: n/a
        0xFF, 0xFF, 0xFF, 0xFF, // last possible lead-out: n/a
    ];
    want.resize(34, 0);
    assert_eq!(d, want);
    h.expect_check(0, &[0x51, 0x01, 0, 0, 0, 0, 0, 0, 34, 0], Sense::INVALID_FIELD_IN_CDB);
}

#[test]
fn read_track_information() {
    let mut h = cd();
    let by_track = [0x52, 0x01, 0, 0, 0, 1, 0, 0, 36, 0];
    let d = h.cmd(0, &by_track).good();
    let mut want = vec![
        0, 34, // data length
        1, 1, 0,    // track 1, session 1
        0x04, // data track, uninterrupted
        0x01, // data mode 1
        0x00, // no NWA/LRA
        0, 0, 0, 0, // track start 0
        0, 0, 0, 0, // next writable
        0, 0, 0, 0, // free blocks
        0, 0, 0, 0, // blocking factor (CD: none)
        0, 0, 0x03, 0xE8, // track size 1000
    ];
    want.resize(36, 0);
    assert_eq!(d, want);
    assert_eq!(h.cmd(0, &[0x52, 0x00, 0, 0, 0x03, 0xE7, 0, 0, 36, 0]).good(), want, "by LBA 999");
    assert_eq!(h.cmd(0, &[0x52, 0x02, 0, 0, 0, 1, 0, 0, 36, 0]).good(), want, "by session 1");
    h.expect_check(0, &[0x52, 0x00, 0, 0, 0x03, 0xE8, 0, 0, 36, 0], Sense::LBA_OUT_OF_RANGE);
    h.expect_check(0, &[0x52, 0x01, 0, 0, 0, 0xFF, 0, 0, 36, 0], Sense::INVALID_FIELD_IN_CDB);
    h.expect_check(0, &[0x52, 0x01, 0, 0, 0, 2, 0, 0, 36, 0], Sense::INVALID_FIELD_IN_CDB);
}

fn read_disc_structure(format: u8, alloc: u16) -> [u8; 12] {
    let a = alloc.to_be_bytes();
    [0xAD, 0, 0, 0, 0, 0, 0, format, a[0], a[1], 0, 0]
}

#[test]
fn read_disc_structure_dvd() {
    let mut h = dvd();
    let d = h.cmd(0, &read_disc_structure(0x00, 0xFFFF)).good();
    assert_eq!(d.len(), 2052);
    let end_psn = 0x30000 + CD_MAX_BLOCKS as u32; // blocks - 1 after PSN 0x30000
    let e = end_psn.to_be_bytes();
    assert_eq!(
        &d[..21],
        &[
            0x08, 0x02, 0, 0,    // data length 2050
            0x01, // DVD-ROM, part version 1
            0x0F, // 120 mm, rate unspecified
            0x01, // one layer, embossed
            0x00, // densities
            0x00, 0x03, 0x00, 0x00, // start PSN of data area
            e[0], e[1], e[2], e[3], // end PSN
            0, 0, 0, 0, // end PSN layer 0
            0, // no BCA
        ]
    );
    assert_eq!(
        h.cmd(0, &read_disc_structure(0xFF, 0xFFFF)).good(),
        vec![
            0, 14, 0, 0, // data length
            0x00, 0x40, 0x08, 0x04, // physical format, readable, 2052 bytes
            0x01, 0x40, 0x00, 0x08, // copyright
            0xFF, 0x40, 0x00, 0x10, // this list, 16 bytes
        ]
    );
    assert_eq!(h.cmd(0, &read_disc_structure(0x01, 8)).good(), vec![0, 6, 0, 0, 0, 0, 0, 0]);
    h.expect_check(0, &read_disc_structure(0x04, 0xFFFF), Sense::INVALID_FIELD_IN_CDB);
    let mut layer1 = read_disc_structure(0x00, 0xFFFF);
    layer1[6] = 1;
    h.expect_check(0, &layer1, Sense::INVALID_FIELD_IN_CDB);
    let mut bd = read_disc_structure(0x00, 0xFFFF);
    bd[1] = 1;
    h.expect_check(0, &bd, Sense::INVALID_FIELD_IN_CDB);
}

#[test]
fn read_disc_structure_cd_and_empty() {
    let mut h = cd();
    h.expect_check(0, &read_disc_structure(0x00, 0xFFFF), Sense::INCOMPATIBLE_FORMAT);
    assert_eq!(h.cmd(0, &read_disc_structure(0xFF, 0xFFFF)).good(), vec![0, 6, 0, 0, 0xFF, 0x40, 0, 8]);
    let mut e = Host::ready(vec![empty(LunKind::Optical)]);
    e.expect_check(0, &read_disc_structure(0x00, 0xFFFF), Sense::MEDIUM_NOT_PRESENT);
}

#[test]
fn mechanism_status_speed_performance_keys() {
    let mut h = cd();
    assert_eq!(h.cmd(0, &[0xBD, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0]).good(), vec![0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(h.cmd(0, &[0xBB, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0]).status, Status::Good);
    assert_eq!(h.cmd(0, &[0xAC, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]).good(), vec![0, 0, 0, 4, 0, 0, 0, 0]);
    h.expect_check(0, &[0xA4, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], Sense::INVALID_OPCODE); // REPORT KEY
    h.expect_check(0, &[0xA3, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], Sense::INVALID_OPCODE); // SEND KEY
    // After an eject the door bit is set.
    assert_eq!(h.cmd(0, &start_stop(true, false)).status, Status::Good);
    assert_eq!(h.cmd(0, &[0xBD, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0]).good()[1], 0x10);
}

#[test]
fn empty_drive() {
    let mut h = Host::ready(vec![empty(LunKind::Optical)]);
    h.expect_check(0, &TUR, Sense::MEDIUM_NOT_PRESENT);
    h.expect_check(0, &read10(0, 1), Sense::MEDIUM_NOT_PRESENT);
    h.expect_check(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], Sense::MEDIUM_NOT_PRESENT);
    h.expect_check(0, &read_toc(false, 0, 0, 12, 0), Sense::MEDIUM_NOT_PRESENT);
    h.expect_check(0, &[0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0], Sense::MEDIUM_NOT_PRESENT);
    assert_eq!(media_event(&mut h, 0), (0, 0x00), "no change, no media, tray closed");
    assert_eq!(current_profile(&mut h, 0), 0);
    // Mode page 2Ah answers without a medium (Linux reads it at probe).
    assert_eq!(h.cmd(0, &[0x5A, 0, 0x2A, 0, 0, 0, 0, 0, 128, 0]).good().len(), 30);
}

#[test]
fn verify_and_sync_cache_on_optical() {
    let mut h = cd();
    assert_eq!(h.cmd(0, &[0x2F, 0, 0, 0, 0, 0, 0, 0, 16, 0]).status, Status::Good);
    assert_eq!(h.cmd(0, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]).status, Status::Good);
}

fn read_cd(lba: u32, blocks: u32, sector_type: u8, main: u8, sub: u8) -> [u8; 12] {
    let l = lba.to_be_bytes();
    let n = blocks.to_be_bytes();
    [0xBE, sector_type << 2, l[0], l[1], l[2], l[3], n[1], n[2], n[3], main, sub, 0]
}

#[test]
fn read_cd_user_data_only() {
    let mut h = cd();
    let d = h.cmd(0, &read_cd(5, 2, 0, 0x10, 0)).good(); // any type, user data
    assert_eq!(d, (5 * 2048..7 * 2048).map(pattern).collect::<Vec<_>>());
    assert_eq!(h.cmd(0, &read_cd(5, 1, 2, 0x10, 0)).good().len(), 2048); // mode 1
    let r = h.cmd(0, &read_cd(5, 1, 0, 0x00, 0)); // nothing selected
    assert_eq!((r.stage, r.status), (DataStage::None, Status::Good));
    h.expect_check(0, &read_cd(5, 1, 1, 0x10, 0), Sense::ILLEGAL_MODE_FOR_TRACK); // CD-DA
    h.expect_check(0, &read_cd(5, 1, 0, 0xF8, 0), Sense::INVALID_FIELD_IN_CDB); // raw 2352
    h.expect_check(0, &read_cd(5, 1, 0, 0x10, 1), Sense::INVALID_FIELD_IN_CDB); // sub-channel
    h.expect_check(0, &read_cd(999, 2, 0, 0x10, 0), Sense::LBA_OUT_OF_RANGE);
    let mut d = Host::ready(vec![disk(8, 512, false)]);
    d.expect_check(0, &read_cd(0, 1, 0, 0x10, 0), Sense::INVALID_OPCODE);
}
