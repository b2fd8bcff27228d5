//! SBC disk LUN: byte-exact responses and data streaming.

use super::*;
use crate::{DataStage, LunKind, Sense, Status};

#[test]
fn inquiry_standard_data() {
    let mut h = Host::ready(vec![disk(64, 512, false)]);
    let d = h.cmd(0, &[0x12, 0, 0, 0, 36, 0]).good();
    let mut want = vec![
        0x00, // peripheral qualifier 0, direct-access block device
        0x80, // RMB: removable
        0x05, // version: SPC-3
        0x02, // response data format 2
        69,   // additional length: 74 bytes with the version descriptors
        0, 0, 0, // flags
    ];
    want.extend_from_slice(b"vstick  "); // vendor
    want.extend_from_slice(b"USB Disk        "); // product
    want.extend_from_slice(b"0.1 "); // revision from the crate version
    assert_eq!(d, want);
    let d = h.cmd(0, &[0x12, 0, 0, 0, 255, 0]).good();
    assert_eq!(d.len(), 74);
    assert_eq!(
        &d[58..74],
        &[0x03, 0x00, 0x04, 0xC0, 0x17, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        "version descriptors SPC-3, SBC-3 (libiscsi's suite reads it), USB BOT"
    );
}

#[test]
fn inquiry_truncates_to_allocation_length() {
    let mut h = Host::ready(vec![disk(64, 512, false)]);
    let r = h.cmd(0, &[0x12, 0, 0, 0, 5, 0]);
    assert_eq!(r.stage, DataStage::In(5));
    assert_eq!(r.good(), vec![0x00, 0x80, 0x05, 0x02, 69]);
    let r = h.cmd(0, &[0x12, 0, 0, 0, 0, 0]);
    assert_eq!(r.stage, DataStage::None, "allocation length 0: no data");
    assert_eq!(r.status, Status::Good);
}

#[test]
fn inquiry_vpd_pages() {
    let mut h = Host::ready(vec![disk(64, 512, false)]);
    // Supported pages.
    assert_eq!(
        h.cmd(0, &[0x12, 1, 0x00, 0, 255, 0]).good(),
        vec![0x00, 0x00, 0x00, 0x06, 0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2]
    );
    // Unit serial number.
    let mut want = vec![0x00, 0x80, 0x00, 0x08];
    want.extend_from_slice(b"DISK0001");
    assert_eq!(h.cmd(0, &[0x12, 1, 0x80, 0, 255, 0]).good(), want);
    // Device identification: one T10 vendor ID designator.
    let mut want = vec![
        0x00, 0x83, 0x00, 20,   // header, page length 4 + 16
        0x02, // code set ASCII
        0x01, // association LU, type T10 vendor ID
        0x00, 16, // designator length
    ];
    want.extend_from_slice(b"vstick  DISK0001");
    assert_eq!(h.cmd(0, &[0x12, 1, 0x83, 0, 255, 0]).good(), want);
}

#[test]
fn inquiry_invalid_requests() {
    let mut h = Host::ready(vec![disk(64, 512, false)]);
    h.expect_check(0, &[0x12, 1, 0xB3, 0, 255, 0], Sense::INVALID_FIELD_IN_CDB); // unsupported VPD
    h.expect_check(0, &[0x12, 0, 0x80, 0, 255, 0], Sense::INVALID_FIELD_IN_CDB); // page without EVPD
}

#[test]
fn wrong_lun_inquiry_answers_qualifier_3() {
    let mut h = Host::ready(vec![disk(64, 512, false)]);
    let d = h.cmd(3, &[0x12, 0, 0, 0, 36, 0]).good();
    assert_eq!(d.len(), 36);
    assert_eq!(d[0], 0x7F, "qualifier 3, type 1Fh");
    // Anything else: 05/25/00, and REQUEST SENSE to that LUN says so.
    let r = h.cmd(3, &TUR);
    assert_eq!(r.status, Status::CheckCondition);
    assert_eq!(h.sense(3), (0x05, 0x25, 0x00));
    h.expect_check(1, &read10(0, 1), Sense::LUN_NOT_SUPPORTED);
    h.expect_check(15, &[], Sense::LUN_NOT_SUPPORTED);
}

#[test]
fn test_unit_ready_and_request_sense_no_sense() {
    let mut h = Host::ready(vec![disk(64, 512, false)]);
    assert_eq!(h.tur(0), Status::Good);
    let d = h.cmd(0, &[0x03, 0, 0, 0, 252, 0]).good();
    assert_eq!(d, Sense::NO_SENSE.fixed().to_vec());
    // Truncated REQUEST SENSE.
    assert_eq!(h.cmd(0, &[0x03, 0, 0, 0, 8, 0]).good(), vec![0x70, 0, 0, 0, 0, 0, 0, 0x0A]);
}

#[test]
fn unknown_opcode_and_short_cdb() {
    let mut h = Host::ready(vec![disk(64, 512, false)]);
    h.expect_check(0, &[0xFF, 0, 0, 0, 0, 0], Sense::INVALID_OPCODE);
    h.expect_check(0, &[0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0], Sense::INVALID_OPCODE); // READ TOC on a disk
    h.expect_check(0, &[0x28, 0, 0, 0], Sense::INVALID_FIELD_IN_CDB); // READ(10) cut short
    h.expect_check(0, &[], Sense::INVALID_FIELD_IN_CDB);
}

#[test]
fn request_sense_returns_then_clears() {
    let mut h = Host::ready(vec![disk(64, 512, false)]);
    assert_eq!(h.cmd(0, &read10(64, 1)).status, Status::CheckCondition);
    assert_eq!(h.sense(0), (0x05, 0x21, 0x00));
    assert_eq!(h.sense(0), (0, 0, 0), "cleared by being read");
    // A good command in between clears it too.
    assert_eq!(h.cmd(0, &read10(64, 1)).status, Status::CheckCondition);
    assert_eq!(h.tur(0), Status::Good);
    assert_eq!(h.sense(0), (0, 0, 0));
}

#[test]
fn read_capacity_10_and_16() {
    let mut h = Host::ready(vec![disk(64, 512, false)]);
    assert_eq!(
        h.cmd(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]).good(),
        vec![0, 0, 0, 63, 0, 0, 0x02, 0x00] // last LBA 63, block length 512
    );
    let d = h.cmd(0, &read_capacity16(32)).good();
    let mut want = vec![0u8; 32];
    want[7] = 63; // last LBA
    want[8..12].copy_from_slice(&512u32.to_be_bytes());
    want[14] = 0xC0; // LBPME, LBPRZ: thin provisioned, unmapped blocks read as zeros
    assert_eq!(d, want);
    // Allocation length respected.
    assert_eq!(h.cmd(0, &read_capacity16(12)).good(), want[..12].to_vec());
}

#[test]
fn read_capacity_4096_byte_blocks() {
    let mut h = Host::ready(vec![disk(16, 4096, false)]);
    assert_eq!(h.cmd(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]).good(), vec![0, 0, 0, 15, 0, 0, 0x10, 0x00]);
    let d = h.cmd(0, &read_capacity16(32)).good();
    assert_eq!(&d[..12], &[0, 0, 0, 0, 0, 0, 0, 15, 0, 0, 0x10, 0x00]);
}

#[test]
fn huge_medium_clamps_read_capacity_10_and_reads_with_read16() {
    let blocks = (3u64 << 40) / 512; // 3 TiB of 512-byte blocks
    let cfg = LunConfig {
        kind: LunKind::Disk,
        medium: Some(Box::new(Sparse::new(blocks, 512))),
        serial: "S".into(),
    };
    let mut h = Host::ready(vec![cfg]);
    assert_eq!(
        h.cmd(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]).good(),
        vec![0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0x02, 0x00] // clamped: use READ CAPACITY(16)
    );
    let d = h.cmd(0, &read_capacity16(32)).good();
    assert_eq!(u64::from_be_bytes(d[..8].try_into().unwrap()), blocks - 1);
    // A read beyond 2 TiB lands at the right byte offset.
    let lba = (1u64 << 32) + 5;
    let d = h.cmd(0, &read16(lba, 2)).good();
    assert_eq!(d.len(), 1024);
    for (i, b) in d.iter().enumerate() {
        assert_eq!(*b, pattern(lba * 512 + i as u64), "byte {i}");
    }
    h.expect_check(0, &read16(blocks - 1, 2), Sense::LBA_OUT_OF_RANGE);
    h.expect_check(0, &read16(u64::MAX, 2), Sense::LBA_OUT_OF_RANGE); // overflowing LBA+count
    // More than 4 GiB in one command does not fit a transport length.
    h.expect_check(0, &read16(0, u32::MAX), Sense::INVALID_FIELD_IN_CDB);
}

#[test]
fn read_streams_in_transport_chunks() {
    let s = Shared::new(64, 512);
    let mut h = Host::ready(vec![s.config()]);
    for chunk in [1, 13, 512, 4096, 100_000] {
        h.chunk = chunk;
        let d = h.cmd(0, &read10(3, 5)).good();
        let want: Vec<u8> = (3 * 512..8 * 512).map(pattern).collect();
        assert_eq!(d, want, "chunk {chunk}");
    }
    assert_eq!(h.target.status()[0].bytes_read, 5 * 5 * 512);
}

#[test]
fn read_variants_6_12_16() {
    let s = Shared::new(300, 512);
    let mut h = Host::ready(vec![s.config()]);
    let want = |lba: u64, n: u64| -> Vec<u8> { (lba * 512..(lba + n) * 512).map(pattern).collect() };
    assert_eq!(h.cmd(0, &[0x08, 0, 0, 7, 2, 0]).good(), want(7, 2)); // READ(6)
    assert_eq!(h.cmd(0, &[0x08, 0, 0, 0, 0, 0]).good(), want(0, 256)); // READ(6) 0 = 256 blocks
    assert_eq!(h.cmd(0, &[0xA8, 0, 0, 0, 0, 9, 0, 0, 0, 3, 0, 0]).good(), want(9, 3)); // READ(12)
    assert_eq!(h.cmd(0, &read16(299, 1)).good(), want(299, 1));
}

#[test]
fn zero_length_transfers_are_good_without_data() {
    let mut h = Host::ready(vec![disk(64, 512, false)]);
    for cdb in [read10(5, 0).to_vec(), write10(5, 0, false).to_vec(), read16(64, 0).to_vec()] {
        let r = h.cmd(0, &cdb);
        assert_eq!((r.stage, r.status), (DataStage::None, Status::Good), "{cdb:02X?}");
    }
}

#[test]
fn read_past_end_fails_without_data_stage() {
    let mut h = Host::ready(vec![disk(64, 512, false)]);
    h.expect_check(0, &read10(63, 2), Sense::LBA_OUT_OF_RANGE);
    h.expect_check(0, &read10(64, 1), Sense::LBA_OUT_OF_RANGE);
    assert_eq!(h.cmd(0, &read10(63, 1)).good().len(), 512);
}

#[test]
fn write_then_read_back() {
    let s = Shared::new(64, 512);
    let mut h = Host::ready(vec![s.config()]);
    h.chunk = 100; // chunks that do not align with blocks
    let data: Vec<u8> = (0..1024).map(|i| (i * 7) as u8).collect();
    let r = h.cmd_out(0, &write10(10, 2, false), &data);
    assert_eq!(r.stage, DataStage::Out(1024));
    assert_eq!(r.status, Status::Good);
    assert_eq!(&s.image.contents()[10 * 512..12 * 512], &data[..]);
    assert_eq!(h.cmd(0, &read10(10, 2)).good(), data);
    assert_eq!(h.target.status()[0].bytes_written, 1024);
    assert_eq!(s.flushes(), 0, "no FUA, no flush");
}

#[test]
fn write_variants_6_12_16() {
    let s = Shared::new(64, 512);
    let mut h = Host::ready(vec![s.config()]);
    let block = vec![0xA5u8; 512];
    assert_eq!(h.cmd_out(0, &[0x0A, 0, 0, 1, 1, 0], &block).status, Status::Good); // WRITE(6)
    assert_eq!(h.cmd_out(0, &[0xAA, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0], &block).status, Status::Good);
    let mut w16 = [0u8; 16];
    w16[0] = 0x8A;
    w16[9] = 3;
    w16[13] = 1;
    assert_eq!(h.cmd_out(0, &w16, &block).status, Status::Good);
    let c = s.image.contents();
    assert!(c[512..4 * 512].iter().all(|&b| b == 0xA5));
}

#[test]
fn fua_and_synchronize_cache_flush() {
    let s = Shared::new(64, 512);
    let mut h = Host::ready(vec![s.config()]);
    assert_eq!(h.cmd_out(0, &write10(0, 1, true), &[1u8; 512]).status, Status::Good);
    assert_eq!(s.flushes(), 1, "FUA write flushed before status");
    assert_eq!(h.cmd(0, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]).status, Status::Good); // SYNC CACHE(10)
    let mut sc16 = [0u8; 16];
    sc16[0] = 0x91;
    assert_eq!(h.cmd(0, &sc16).status, Status::Good);
    assert_eq!(s.flushes(), 3);
    h.expect_check(0, &[0x35, 0, 0, 0, 0, 65, 0, 0, 0, 0], Sense::LBA_OUT_OF_RANGE);
}

#[test]
fn write_to_read_only_medium() {
    let mut h = Host::ready(vec![disk(64, 512, true)]);
    let r = h.cmd_out(0, &write10(0, 1, false), &[0u8; 512]);
    assert_eq!((r.stage, r.status), (DataStage::None, Status::CheckCondition));
    assert_eq!(h.sense(0), (0x07, 0x27, 0x00));
}

#[test]
fn backend_errors_map_to_medium_errors() {
    let s = Shared::new(64, 512);
    let mut h = Host::ready(vec![s.config()]);
    s.set_fail(Failures { read: true, ..Default::default() });
    let r = h.cmd(0, &read10(0, 2));
    assert_eq!(r.stage, DataStage::In(1024), "the data stage still happens");
    assert!(r.data.iter().all(|&b| b == 0), "zero-filled");
    assert_eq!(r.status, Status::CheckCondition);
    assert_eq!(h.sense(0), (0x03, 0x11, 0x00));

    s.set_fail(Failures { write: true, ..Default::default() });
    let r = h.cmd_out(0, &write10(0, 2, false), &[0u8; 1024]);
    assert_eq!(r.status, Status::CheckCondition);
    assert_eq!(h.sense(0), (0x03, 0x0C, 0x00));

    s.set_fail(Failures { flush: true, ..Default::default() });
    let r = h.cmd_out(0, &write10(0, 1, true), &[0u8; 512]);
    assert_eq!(r.status, Status::CheckCondition, "FUA flush failure fails the write");
    assert_eq!(h.sense(0), (0x03, 0x0C, 0x00));
    h.expect_check(0, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], Sense::WRITE_ERROR);
    s.set_fail(Failures::default());
    assert_eq!(h.tur(0), Status::Good);
}

#[test]
fn verify_with_and_without_bytchk() {
    let s = Shared::new(64, 512);
    let mut h = Host::ready(vec![s.config()]);
    // BYTCHK=0: range check only.
    assert_eq!(h.cmd(0, &[0x2F, 0, 0, 0, 0, 0, 0, 0, 64, 0]).status, Status::Good);
    h.expect_check(0, &[0x2F, 0, 0, 0, 0, 1, 0, 0, 64, 0], Sense::LBA_OUT_OF_RANGE);
    // BYTCHK=1: compare with the data-out.
    let good: Vec<u8> = (2 * 512..4 * 512).map(pattern).collect();
    let v10 = [0x2F, 0x02, 0, 0, 0, 2, 0, 0, 2, 0];
    let r = h.cmd_out(0, &v10, &good);
    assert_eq!((r.stage, r.status), (DataStage::Out(1024), Status::Good));
    let mut bad = good.clone();
    bad[1000] ^= 1;
    assert_eq!(h.cmd_out(0, &v10, &bad).status, Status::CheckCondition);
    assert_eq!(h.sense(0), (0x0E, 0x1D, 0x00));
    // VERIFY(16).
    let mut v16 = [0u8; 16];
    v16[0] = 0x8F;
    v16[1] = 0x02;
    v16[9] = 2;
    v16[13] = 2;
    assert_eq!(h.cmd_out(0, &v16, &good).status, Status::Good);
}

#[test]
fn mode_sense_6_block_descriptor_and_wp() {
    let mut h = Host::ready(vec![disk(64, 512, false), disk(16, 4096, true)]);
    // Caching page, DBD=0.
    assert_eq!(
        h.cmd(0, &[0x1A, 0, 0x08, 0, 255, 0]).good(),
        vec![
            31,   // mode data length: 32 - 1
            0x00, // medium type
            0x10, // device-specific: DPOFUA, not write protected
            8,    // block descriptor length
            0, 0, 0, 64, // number of blocks
            0,  // reserved
            0, 0x02, 0x00, // block length 512
            0x08, 0x12, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // caching, WCE=1
        ]
    );
    // Read-only 4096-byte LUN: WP bit and block length 4096.
    let d = h.cmd(1, &[0x1A, 0, 0x08, 0, 12, 0]).good();
    assert_eq!(d, vec![31, 0x00, 0x90, 8, 0, 0, 0, 16, 0, 0, 0x10, 0x00]);
    // DBD=1: no descriptor.
    let d = h.cmd(1, &[0x1A, 0x08, 0x08, 0, 255, 0]).good();
    assert_eq!(&d[..4], &[23, 0x00, 0x90, 0]);
    assert_eq!(d[4], 0x08);
}

#[test]
fn mode_sense_6_all_pages_allocation_4_like_firmware() {
    let mut h = Host::ready(vec![disk(64, 512, true)]);
    let r = h.cmd(0, &[0x1A, 0, 0x3F, 0, 4, 0]);
    assert_eq!(r.stage, DataStage::In(4));
    let total = 4 + 8 + 12 + 20 + 12 + 12;
    assert_eq!(r.good(), vec![(total - 1) as u8, 0, 0x90, 8]);
    let d = h.cmd(0, &[0x1A, 0, 0x3F, 0, 255, 0]).good();
    assert_eq!(d.len(), total);
    // Pages in ascending order after the descriptor.
    assert_eq!((d[12], d[24], d[44], d[56]), (0x01, 0x08, 0x0A, 0x1C));
    // 0x3F/0xFF (all pages and subpages) is the same here.
    assert_eq!(h.cmd(0, &[0x1A, 0, 0x3F, 0xFF, 255, 0]).good(), d);
}

#[test]
fn mode_sense_10_and_long_lba_descriptor() {
    let mut h = Host::ready(vec![disk(64, 4096, false)]);
    assert_eq!(
        h.cmd(0, &[0x5A, 0, 0x1C, 0, 0, 0, 0, 0, 255, 0]).good(),
        vec![
            0, 26, // mode data length: 28 - 2
            0x00, 0x10, // medium type, device-specific (DPOFUA)
            0x00, 0x00, // LONGLBA=0, reserved
            0, 8, // block descriptor length
            0, 0, 0, 64, 0, 0, 0x10, 0x00, // short LBA descriptor: 64 blocks of 4096
            0x1C, 0x0A, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, // informational exceptions, DEXCPT
        ]
    );
    let d = h.cmd(0, &[0x5A, 0x10, 0x1C, 0, 0, 0, 0, 0, 255, 0]).good(); // LLBAA
    assert_eq!(&d[..8], &[0, 34, 0x00, 0x10, 0x01, 0x00, 0, 16]);
    assert_eq!(&d[8..24], &[0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0x10, 0x00]);
}

#[test]
fn mode_sense_block_count_saturates() {
    let blocks = 0x1_0000_0005u64;
    let cfg = LunConfig {
        kind: LunKind::Disk,
        medium: Some(Box::new(Sparse::new(blocks, 512))),
        serial: "S".into(),
    };
    let mut h = Host::ready(vec![cfg]);
    let d = h.cmd(0, &[0x1A, 0, 0x08, 0, 12, 0]).good();
    assert_eq!(&d[4..12], &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0x02, 0x00]);
}

#[test]
fn mode_sense_errors_and_changeable() {
    let mut h = Host::ready(vec![disk(64, 512, false)]);
    h.expect_check(0, &[0x1A, 0, 0xC8, 0, 255, 0], Sense::SAVING_NOT_SUPPORTED); // PC=3
    h.expect_check(0, &[0x1A, 0, 0x2A, 0, 255, 0], Sense::INVALID_FIELD_IN_CDB); // MMC page on a disk
    h.expect_check(0, &[0x1A, 0, 0x08, 0x01, 255, 0], Sense::INVALID_FIELD_IN_CDB); // subpage
    let d = h.cmd(0, &[0x1A, 0x08, 0x48, 0, 255, 0]).good(); // changeable caching page
    assert_eq!(&d[4..6], &[0x08, 0x12]);
    assert!(d[6..].iter().all(|&b| b == 0), "nothing changeable");
}

#[test]
fn mode_select_accepts_and_ignores_parameters() {
    let mut h = Host::ready(vec![disk(64, 512, false)]);
    let params = [0u8, 0, 0, 0, 0x08, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let r = h.cmd_out(0, &[0x15, 0x10, 0, 0, 24, 0], &params);
    assert_eq!((r.stage, r.status), (DataStage::Out(24), Status::Good));
    let r = h.cmd_out(0, &[0x55, 0x10, 0, 0, 0, 0, 0, 0, 24, 0], &[0u8; 24]);
    assert_eq!((r.stage, r.status), (DataStage::Out(24), Status::Good));
    let r = h.cmd(0, &[0x15, 0x10, 0, 0, 0, 0]);
    assert_eq!((r.stage, r.status), (DataStage::None, Status::Good));
}

#[test]
fn read_format_capacities() {
    let mut h = Host::ready(vec![disk(64, 512, false), empty(LunKind::Disk)]);
    assert_eq!(
        h.cmd(0, &[0x23, 0, 0, 0, 0, 0, 0, 0, 252, 0]).good(),
        vec![
            0, 0, 0, 8, // capacity list header: one descriptor
            0, 0, 0, 64,   // number of blocks
            0x02, // descriptor type: formatted media
            0, 0x02, 0x00, // block length 512
        ]
    );
    assert_eq!(
        h.cmd(1, &[0x23, 0, 0, 0, 0, 0, 0, 0, 252, 0]).good(),
        vec![0, 0, 0, 8, 0, 0, 0, 0, 0x03, 0, 0x02, 0x00] // type 3: no media
    );
}

#[test]
fn report_luns_lists_every_lun() {
    let mut h = Host::ready(vec![disk(8, 512, false), optical(100), empty(LunKind::Disk)]);
    let d = h.cmd(1, &[0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]).good();
    assert_eq!(
        d,
        vec![
            0, 0, 0, 24, 0, 0, 0, 0, // LUN list length 3 × 8, reserved
            0, 0, 0, 0, 0, 0, 0, 0, // LUN 0
            0, 1, 0, 0, 0, 0, 0, 0, // LUN 1
            0, 2, 0, 0, 0, 0, 0, 0, // LUN 2
        ]
    );
    h.expect_check(0, &[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], Sense::INVALID_FIELD_IN_CDB); // alloc < 16
    h.expect_check(0, &[0xA0, 0, 0x10, 0, 0, 0, 0, 0, 1, 0, 0, 0], Sense::INVALID_FIELD_IN_CDB);
}

#[test]
fn prevent_blocks_host_eject_and_start_stop_variants() {
    let mut h = Host::ready(vec![disk(64, 512, false)]);
    assert_eq!(h.cmd(0, &start_stop(false, true)).status, Status::Good); // plain start
    assert_eq!(h.cmd(0, &start_stop(false, false)).status, Status::Good); // plain stop
    assert_eq!(h.tur(0), Status::Good, "stop does not remove the medium");
    assert_eq!(h.cmd(0, &prevent(true)).status, Status::Good);
    assert!(h.target.status()[0].locked);
    h.expect_check(0, &start_stop(true, false), Sense::MEDIUM_REMOVAL_PREVENTED);
    assert_eq!(h.tur(0), Status::Good);
    assert_eq!(h.cmd(0, &prevent(false)).status, Status::Good);
    assert_eq!(h.cmd(0, &start_stop(true, false)).status, Status::Good);
    h.expect_check(0, &TUR, Sense::MEDIUM_NOT_PRESENT);
    // Load again: the same medium comes back, announced by 06/28/00.
    assert_eq!(h.cmd(0, &start_stop(true, true)).status, Status::Good);
    h.expect_check(0, &TUR, Sense::MEDIUM_CHANGED);
    assert_eq!(h.tur(0), Status::Good);
    // Power condition set: LoEj ignored.
    assert_eq!(h.cmd(0, &[0x1B, 0, 0, 0, 0x32, 0]).status, Status::Good);
    assert_eq!(h.tur(0), Status::Good);
}

#[test]
fn empty_disk() {
    let mut h = Host::ready(vec![empty(LunKind::Disk)]);
    h.expect_check(0, &TUR, Sense::MEDIUM_NOT_PRESENT);
    h.expect_check(0, &read10(0, 1), Sense::MEDIUM_NOT_PRESENT);
    h.expect_check(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], Sense::MEDIUM_NOT_PRESENT);
    h.expect_check(0, &read_capacity16(32), Sense::MEDIUM_NOT_PRESENT);
    // INQUIRY and MODE SENSE still answer.
    assert_eq!(h.cmd(0, &[0x12, 0, 0, 0, 36, 0]).good().len(), 36);
    let d = h.cmd(0, &[0x1A, 0, 0x3F, 0, 255, 0]).good();
    assert_eq!(&d[..12], &[67, 0, 0x10, 8, 0, 0, 0, 0, 0, 0, 0x02, 0x00]);
}

#[test]
fn abort_drops_the_command_and_keeps_the_target_usable() {
    let s = Shared::new(64, 512);
    let mut h = Host::ready(vec![s.config()]);
    assert_eq!(h.target.begin(0, &read10(0, 4)), DataStage::In(2048));
    let mut buf = [0u8; 512];
    h.target.data_in(&mut buf);
    h.target.abort();
    assert_eq!(h.tur(0), Status::Good);
    // A partial data stage still ends normally: what was moved counts.
    assert_eq!(h.target.begin(0, &write10(0, 4, false)), DataStage::Out(2048));
    h.target.data_out(&[0xEE; 512]);
    assert_eq!(h.target.end(), Status::Good);
    assert!(s.image.contents()[..512].iter().all(|&b| b == 0xEE));
    assert_eq!(s.image.contents()[512], pattern(512));
}

#[test]
fn oversized_chunks_are_clamped() {
    let s = Shared::new(64, 512);
    let mut h = Host::ready(vec![s.config()]);
    assert_eq!(h.target.begin(0, &read10(0, 1)), DataStage::In(512));
    let mut buf = vec![0xFFu8; 1024];
    h.target.data_in(&mut buf);
    assert_eq!(&buf[..512], &s.image.contents()[..512]);
    assert!(buf[512..].iter().all(|&b| b == 0), "beyond the intent: zeroes");
    assert_eq!(h.target.end(), Status::Good);
    assert_eq!(h.target.begin(0, &write10(63, 1, false)), DataStage::Out(512));
    h.target.data_out(&[0x11; 2048]); // more than asked: the rest is ignored
    assert_eq!(h.target.end(), Status::Good);
    assert_eq!(s.image.contents().len(), 64 * 512);
}

#[test]
fn target_is_send_and_flushes_writable_media() {
    fn assert_send<T: Send>() {}
    assert_send::<Target>();
    let s = Shared::new(8, 512);
    let mut h = Host::ready(vec![s.config(), disk(8, 512, true)]);
    h.target.flush().unwrap();
    assert_eq!(s.flushes(), 1);
    s.set_fail(Failures { flush: true, ..Default::default() });
    assert!(h.target.flush().is_err());
}
