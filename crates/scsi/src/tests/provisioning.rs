//! Thin provisioning and the optional SBC-3 commands hosts use: VPD B0h-B2h, the
//! Control mode page, UNMAP, WRITE SAME, GET LBA STATUS, COMPARE AND WRITE, WRITE
//! AND VERIFY, PRE-FETCH, READ DEFECT DATA, REPORT SUPPORTED OPERATION CODES.

use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use vstick_media::{Extent, MemoryImage};

use super::*;
use crate::{DataStage, LunKind, Sense, Status};

/// An in-memory medium that tracks allocation per 512 bytes, as a sparse file does:
/// writes allocate, `discard` zeros and deallocates, `extent` reports it.
#[derive(Clone)]
struct Thin {
    image: Arc<MemoryImage>,
    allocated: Arc<Mutex<Vec<bool>>>,
    discards: Arc<Mutex<Vec<(u64, u64)>>>,
}

const UNIT: u64 = 512;

impl Thin {
    fn new(blocks: u64, block_size: u32) -> Self {
        let len = blocks * u64::from(block_size);
        Self {
            image: Arc::new(MemoryImage::new(len as usize, block_size, false)),
            allocated: Arc::new(Mutex::new(vec![false; (len / UNIT) as usize])),
            discards: Arc::default(),
        }
    }
    fn config(&self) -> LunConfig {
        LunConfig { kind: LunKind::Disk, medium: Some(Box::new(self.clone())), serial: "THIN0001".into() }
    }
    fn mark(&self, offset: u64, len: u64, on: bool) {
        let mut a = self.allocated.lock().unwrap();
        for u in offset / UNIT..(offset + len).div_ceil(UNIT) {
            a[u as usize] = on;
        }
    }
}

impl BlockBackend for Thin {
    fn block_size(&self) -> u32 {
        self.image.block_size()
    }
    fn block_count(&self) -> u64 {
        self.image.block_count()
    }
    fn read_only(&self) -> bool {
        false
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.image.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.image.write_at(offset, data)?;
        self.mark(offset, data.len() as u64, true);
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
    fn location(&self) -> MediaLocation {
        MediaLocation::Memory
    }
    fn discard(&self, offset: u64, len: u64) -> io::Result<()> {
        vstick_media::write_zeros(self.image.as_ref(), offset, len)?;
        self.mark(offset, len, false);
        self.discards.lock().unwrap().push((offset, len));
        Ok(())
    }
    fn extent(&self, offset: u64, end: u64) -> io::Result<Extent> {
        let a = self.allocated.lock().unwrap();
        let first = a[(offset / UNIT) as usize];
        let mut at = offset / UNIT;
        while at * UNIT < end && a[at as usize] == first {
            at += 1;
        }
        Ok(Extent { allocated: first, len: (at * UNIT).min(end) - offset })
    }
}

fn ro_disk() -> LunConfig {
    disk(64, 512, true)
}

fn unmap_cdb(param_len: u16) -> [u8; 10] {
    let n = param_len.to_be_bytes();
    [0x42, 0, 0, 0, 0, 0, 0, n[0], n[1], 0]
}

/// An UNMAP parameter list with these (lba, blocks) descriptors.
fn unmap_list(ranges: &[(u64, u32)]) -> Vec<u8> {
    let bd = (16 * ranges.len()) as u16;
    let mut p = Vec::new();
    p.extend_from_slice(&(bd + 6).to_be_bytes());
    p.extend_from_slice(&bd.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    for &(lba, n) in ranges {
        p.extend_from_slice(&lba.to_be_bytes());
        p.extend_from_slice(&n.to_be_bytes());
        p.extend_from_slice(&[0; 4]);
    }
    p
}

fn write_same10(lba: u32, blocks: u16, unmap: bool) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let n = blocks.to_be_bytes();
    [0x41, if unmap { 0x08 } else { 0 }, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0]
}

fn write_same16(lba: u64, blocks: u32, flags: u8) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x93;
    c[1] = flags;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

fn get_lba_status(lba: u64, alloc: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x9E;
    c[1] = 0x12;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&alloc.to_be_bytes());
    c
}

fn caw(lba: u64, blocks: u8) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x89;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[13] = blocks;
    c
}

/// (lba, blocks, provisioning status) of a GET LBA STATUS response.
fn statuses(d: &[u8]) -> Vec<(u64, u32, u8)> {
    let len = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize;
    assert_eq!(len, d.len() - 4, "parameter data length");
    d[8..]
        .chunks(16)
        .map(|c| {
            (
                u64::from_be_bytes(c[0..8].try_into().unwrap()),
                u32::from_be_bytes(c[8..12].try_into().unwrap()),
                c[12],
            )
        })
        .collect()
}

#[test]
fn block_limits_vpd_has_the_real_limits() {
    let mut h = Host::ready(vec![disk(64, 512, false), disk(16, 4096, false)]);
    let d = h.cmd(0, &[0x12, 1, 0xB0, 0, 255, 0]).good();
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[0x00, 0xB0, 0x00, 0x3C][..], // page length 60
        &[0x00, 128],                   // WSNZ 0, maximum COMPARE AND WRITE length 128
        &[0x00, 0x01],                  // optimal transfer length granularity
        &0x007F_FFFFu32.to_be_bytes(),  // maximum transfer length: 32-bit bytes / 512
        &[0; 4],                        // optimal transfer length: not reported
        &[0; 4],                        // maximum prefetch length: no limit
        &[0xFF; 4],                     // maximum UNMAP LBA count: no limit
        &4095u32.to_be_bytes(),         // maximum UNMAP block descriptor count
        &8u32.to_be_bytes(),            // optimal unmap granularity: 4 KiB
        &0x8000_0000u32.to_be_bytes(),  // UGAVALID, alignment 0
        &0x0010_0000u64.to_be_bytes(),  // maximum WRITE SAME length
        &[0; 20],                       // atomic writes: none
    ]
    .concat();
    assert_eq!(d, want);
    let d = h.cmd(1, &[0x12, 1, 0xB0, 0, 255, 0]).good();
    assert_eq!(&d[8..12], &0x000F_FFFFu32.to_be_bytes(), "4096-byte blocks");
    assert_eq!(&d[28..32], &1u32.to_be_bytes(), "granularity one block");
}

#[test]
fn block_device_characteristics_and_provisioning_vpd() {
    let mut h = Host::ready(vec![disk(64, 512, false), optical(10)]);
    let d = h.cmd(0, &[0x12, 1, 0xB1, 0, 255, 0]).good();
    assert_eq!(d.len(), 64);
    assert_eq!(&d[..6], &[0x00, 0xB1, 0x00, 0x3C, 0x00, 0x01], "non-rotating medium");
    let d = h.cmd(0, &[0x12, 1, 0xB2, 0, 255, 0]).good();
    assert_eq!(d, [0x00, 0xB2, 0x00, 0x04, 0x00, 0xE4, 0x02, 0x00], "LBPU LBPWS LBPWS10 LBPRZ, thin");
    // A CD drive has none of them.
    h.expect_check(1, &[0x12, 1, 0xB0, 0, 255, 0], Sense::INVALID_FIELD_IN_CDB);
    assert_eq!(h.cmd(1, &[0x12, 1, 0, 0, 255, 0]).good(), [0x05, 0, 0, 3, 0x00, 0x80, 0x83]);
}

#[test]
fn control_mode_page_current_and_changeable() {
    let mut h = Host::ready(vec![disk(64, 512, false)]);
    let control = [0x0A, 0x0A, 0x02, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0];
    let d = h.cmd(0, &[0x1A, 0x08, 0x0A, 0, 255, 0]).good();
    assert_eq!(d, [&[15, 0, 0x10, 0][..], &control].concat(), "MODE SENSE(6), DBD");
    let d = h.cmd(0, &[0x5A, 0x08, 0x0A, 0, 0, 0, 0, 0, 255, 0]).good();
    assert_eq!(&d[8..], &control, "MODE SENSE(10)");
    // Changeable values: nothing (SWP included, so libiscsi skips its SWP check).
    let d = h.cmd(0, &[0x1A, 0x08, 0x4A, 0, 255, 0]).good();
    assert_eq!(&d[4..], &[0x0A, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // MODE SELECT(6) with the page as read is accepted.
    let mut params = vec![0, 0, 0, 0];
    params.extend_from_slice(&control);
    let r = h.cmd_out(0, &[0x15, 0x10, 0, 0, params.len() as u8, 0], &params);
    assert_eq!((r.stage, r.status), (DataStage::Out(16), Status::Good));
}

#[test]
fn read_capacity_16_says_thin_on_disks_only() {
    let mut h = Host::ready(vec![disk(64, 512, false), optical(10)]);
    assert_eq!(h.cmd(0, &read_capacity16(32)).good()[14], 0xC0);
    assert_eq!(h.cmd(1, &read_capacity16(32)).good()[14], 0x00);
}

#[test]
fn unmap_discards_reads_zeros_and_get_lba_status_sees_it() {
    let thin = Thin::new(64, 512);
    let mut h = Host::ready(vec![thin.config()]);
    assert_eq!(h.cmd_out(0, &write10(0, 64, false), &[0xAA; 64 * 512]).status, Status::Good);
    assert_eq!(statuses(&h.cmd(0, &get_lba_status(0, 64)).good()), [(0, 64, 0)]);
    let list = unmap_list(&[(8, 8), (32, 4), (40, 0)]);
    let r = h.cmd_out(0, &unmap_cdb(list.len() as u16), &list);
    assert_eq!((r.stage, r.status), (DataStage::Out(8 + 3 * 16), Status::Good));
    assert_eq!(*thin.discards.lock().unwrap(), [(8 * 512, 8 * 512), (32 * 512, 4 * 512)]);
    let d = h.cmd(0, &read10(0, 64)).good();
    for (i, block) in d.chunks(512).enumerate() {
        let unmapped = (8..16).contains(&i) || (32..36).contains(&i);
        assert!(block.iter().all(|&b| b == if unmapped { 0 } else { 0xAA }), "block {i}");
    }
    assert_eq!(
        statuses(&h.cmd(0, &get_lba_status(0, 1024)).good()),
        [(0, 8, 0), (8, 8, 1), (16, 16, 0), (32, 4, 1), (36, 28, 0)]
    );
    // Allocation length for two descriptors: two, from the LBA asked.
    assert_eq!(statuses(&h.cmd(0, &get_lba_status(9, 8 + 32)).good()), [(9, 7, 1), (16, 16, 0)]);
    // Truncated to fewer than one whole descriptor: the header and what fits.
    assert_eq!(h.cmd(0, &get_lba_status(0, 12)).good().len(), 12);
    h.expect_check(0, &get_lba_status(64, 24), Sense::LBA_OUT_OF_RANGE);
    h.expect_check(0, &get_lba_status(u64::MAX, 24), Sense::LBA_OUT_OF_RANGE);
}

#[test]
fn unmap_hostile_parameter_lists() {
    let thin = Thin::new(64, 512);
    let mut h = Host::ready(vec![thin.config(), ro_disk(), optical(10)]);
    // Parameter list length 0: nothing to do, no data stage.
    let r = h.cmd(0, &unmap_cdb(0));
    assert_eq!((r.stage, r.status), (DataStage::None, Status::Good));
    // 1..7 bytes: too short for the header.
    h.expect_check(0, &unmap_cdb(7), Sense::PARAMETER_LIST_LENGTH_ERROR);
    let run = |h: &mut Host, list: &[u8]| {
        let r = h.cmd_out(0, &unmap_cdb(list.len() as u16), list);
        if r.status == Status::Good { None } else { Some(h.sense(0)) }
    };
    let s = |s: Sense| Some((s.key, s.asc, s.ascq));
    // Block descriptor data length longer than the parameter list.
    let mut long = unmap_list(&[(0, 1)]);
    long[2..4].copy_from_slice(&32u16.to_be_bytes());
    assert_eq!(run(&mut h, &long), s(Sense::PARAMETER_LIST_LENGTH_ERROR));
    // Not a multiple of 16.
    let mut odd = unmap_list(&[(0, 1)]);
    odd[2..4].copy_from_slice(&15u16.to_be_bytes());
    assert_eq!(run(&mut h, &odd), s(Sense::PARAMETER_LIST_LENGTH_ERROR));
    // UNMAP DATA LENGTH longer than the list.
    let mut data_len = unmap_list(&[(0, 1)]);
    data_len[0..2].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(run(&mut h, &data_len), s(Sense::PARAMETER_LIST_LENGTH_ERROR));
    // Past the end, and an LBA + count that overflows: LBA OUT OF RANGE, nothing unmapped.
    assert_eq!(run(&mut h, &unmap_list(&[(0, 1), (60, 5)])), s(Sense::LBA_OUT_OF_RANGE));
    assert_eq!(run(&mut h, &unmap_list(&[(u64::MAX, 2)])), s(Sense::LBA_OUT_OF_RANGE));
    assert_eq!(run(&mut h, &unmap_list(&[(65, 0)])), s(Sense::LBA_OUT_OF_RANGE));
    assert!(thin.discards.lock().unwrap().is_empty(), "checked before anything is unmapped");
    // 0 blocks at the capacity, and no descriptors at all, are GOOD (libiscsi Unmap.0blocks).
    assert_eq!(run(&mut h, &unmap_list(&[(64, 0)])), None);
    assert_eq!(run(&mut h, &unmap_list(&[])), None);
    assert!(thin.discards.lock().unwrap().is_empty());
    // A list ending exactly at the last block is fine.
    assert_eq!(run(&mut h, &unmap_list(&[(60, 4)])), None);
    // ANCHOR is not supported.
    h.expect_check(0, &[0x42, 0x01, 0, 0, 0, 0, 0, 0, 24, 0], Sense::INVALID_FIELD_IN_CDB);
    // Read-only: DATA PROTECT before any data; a CD drive has no UNMAP.
    h.expect_check(1, &unmap_cdb(24), Sense::WRITE_PROTECTED);
    h.expect_check(2, &unmap_cdb(24), Sense::INVALID_OPCODE);
}

#[test]
fn write_same_writes_the_pattern_or_unmaps() {
    let thin = Thin::new(64, 512);
    let mut h = Host::ready(vec![thin.config(), ro_disk()]);
    let pattern: Vec<u8> = (0..512).map(|i| i as u8).collect();
    let r = h.cmd_out(0, &write_same10(4, 20, false), &pattern);
    assert_eq!((r.stage, r.status), (DataStage::Out(512), Status::Good));
    let d = h.cmd(0, &read10(0, 64)).good();
    for (i, block) in d.chunks(512).enumerate() {
        if (4..24).contains(&i) {
            assert_eq!(block, &pattern[..], "block {i}");
        } else {
            assert!(block.iter().all(|&b| b == 0), "block {i}");
        }
    }
    // With UNMAP and a zero pattern: discarded.
    let r = h.cmd_out(0, &write_same10(8, 4, true), &[0; 512]);
    assert_eq!(r.status, Status::Good);
    assert_eq!(*thin.discards.lock().unwrap(), [(8 * 512, 4 * 512)]);
    assert!(h.cmd(0, &read10(8, 4)).good().iter().all(|&b| b == 0));
    // With UNMAP and any pattern the blocks are unmapped and read as zeros (LBPRZ).
    assert_eq!(h.cmd_out(0, &write_same16(12, 2, 0x08), &pattern).status, Status::Good);
    assert!(h.cmd(0, &read10(12, 2)).good().iter().all(|&b| b == 0));
    assert_eq!(thin.discards.lock().unwrap().len(), 2);
    // NDOB: no data-out, zeros; with UNMAP, discarded.
    let r = h.cmd(0, &write_same16(20, 2, 0x09));
    assert_eq!((r.stage, r.status), (DataStage::None, Status::Good));
    assert_eq!(thin.discards.lock().unwrap().len(), 3);
    assert!(h.cmd(0, &read10(20, 2)).good().iter().all(|&b| b == 0));
    // 0 blocks: through the last block (WSNZ=0).
    assert_eq!(h.cmd_out(0, &write_same16(60, 0, 0), &[0x77; 512]).status, Status::Good);
    assert_eq!(h.cmd(0, &read10(60, 4)).good(), vec![0x77; 4 * 512]);
}

#[test]
fn write_same_hostile_fields() {
    let mut h = Host::ready(vec![disk(64, 512, false), ro_disk(), disk((1 << 20) + 8, 512, false)]);
    h.expect_check(0, &write_same10(64, 1, false), Sense::LBA_OUT_OF_RANGE);
    h.expect_check(0, &write_same10(60, 5, false), Sense::LBA_OUT_OF_RANGE);
    h.expect_check(0, &write_same10(64, 0, false), Sense::LBA_OUT_OF_RANGE);
    h.expect_check(0, &write_same16(u64::MAX, 2, 0), Sense::LBA_OUT_OF_RANGE);
    h.expect_check(0, &write_same16(0, 1, 0x10), Sense::INVALID_FIELD_IN_CDB); // ANCHOR
    h.expect_check(0, &write_same16(0, 1, 0x04), Sense::INVALID_FIELD_IN_CDB); // PBDATA
    h.expect_check(0, &write_same16(0, 1, 0x20), Sense::INVALID_FIELD_IN_CDB); // WRPROTECT
    h.expect_check(1, &write_same10(0, 1, false), Sense::WRITE_PROTECTED);
    // Longer than MAXIMUM WRITE SAME LENGTH (also when 0 reaches that far).
    h.expect_check(2, &write_same16(0, (1 << 20) + 1, 0), Sense::INVALID_FIELD_IN_CDB);
    h.expect_check(2, &write_same16(0, 0, 0), Sense::INVALID_FIELD_IN_CDB);
    // The host sends less than a block: the pattern is incomplete, nothing is written.
    let r = h.cmd_out(0, &write_same10(0, 2, false), &[0x55; 100]);
    assert_eq!(r.status, Status::CheckCondition);
    assert_eq!(h.sense(0), (0x05, 0x1A, 0x00));
    assert!(h.cmd(0, &read10(0, 2)).good().iter().all(|&b| b == 0));
}

#[test]
fn compare_and_write_is_all_or_nothing() {
    let mut h = Host::ready(vec![disk(64, 512, false), ro_disk()]);
    let old = vec![0u8; 1024];
    let new = vec![0xC3u8; 1024];
    let r = h.cmd_out(0, &caw(4, 2), &[&old[..], &new[..]].concat());
    assert_eq!((r.stage, r.status), (DataStage::Out(2048), Status::Good));
    assert_eq!(h.cmd(0, &read10(4, 2)).good(), new);
    // The medium no longer holds `old`: MISCOMPARE, nothing written.
    let r = h.cmd_out(0, &caw(4, 2), &[&old[..], &[0x11; 1024][..]].concat());
    assert_eq!(r.status, Status::CheckCondition);
    assert_eq!(h.sense(0), (0x0E, 0x1D, 0x00));
    assert_eq!(h.cmd(0, &read10(4, 2)).good(), new);
    // 0 blocks: nothing; past the end; more than the limit; read-only.
    let r = h.cmd(0, &caw(4, 0));
    assert_eq!((r.stage, r.status), (DataStage::None, Status::Good));
    h.expect_check(0, &caw(63, 2), Sense::LBA_OUT_OF_RANGE);
    h.expect_check(0, &caw(0, 129), Sense::INVALID_FIELD_IN_CDB);
    h.expect_check(1, &caw(0, 1), Sense::WRITE_PROTECTED);
}

#[test]
fn write_and_verify_prefetch_and_read_defect_data() {
    let mut h = Host::ready(vec![disk(64, 512, false), ro_disk(), optical(10)]);
    // WRITE AND VERIFY(10/12/16), BYTCHK 0 and 1.
    let r = h.cmd_out(0, &[0x2E, 0x02, 0, 0, 0, 2, 0, 0, 1, 0], &[0x42; 512]);
    assert_eq!(r.status, Status::Good);
    let r = h.cmd_out(0, &[0xAE, 0x00, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0], &[0x43; 512]);
    assert_eq!(r.status, Status::Good);
    let mut wv16 = [0u8; 16];
    wv16[0] = 0x8E;
    wv16[9] = 4;
    wv16[13] = 1;
    assert_eq!(h.cmd_out(0, &wv16, &[0x44; 512]).status, Status::Good);
    let d = h.cmd(0, &read10(2, 3)).good();
    assert_eq!(d, [vec![0x42; 512], vec![0x43; 512], vec![0x44; 512]].concat());
    h.expect_check(0, &[0x2E, 0, 0, 0, 0, 64, 0, 0, 1, 0], Sense::LBA_OUT_OF_RANGE);
    h.expect_check(1, &[0x2E, 0, 0, 0, 0, 0, 0, 0, 1, 0], Sense::WRITE_PROTECTED);
    // PRE-FETCH(10/16): advice, GOOD; 0 blocks = to the end; range checked.
    assert_eq!(h.cmd(0, &[0x34, 0, 0, 0, 0, 0, 0, 0, 8, 0]).status, Status::Good);
    assert_eq!(h.cmd(0, &[0x34, 0x02, 0, 0, 0, 60, 0, 0, 0, 0]).status, Status::Good);
    let mut pf16 = [0u8; 16];
    pf16[0] = 0x90;
    pf16[9] = 63;
    pf16[13] = 1;
    assert_eq!(h.cmd(0, &pf16).status, Status::Good);
    pf16[13] = 2;
    h.expect_check(0, &pf16, Sense::LBA_OUT_OF_RANGE);
    h.expect_check(0, &[0x34, 0, 0, 0, 0, 64, 0, 0, 0, 0], Sense::LBA_OUT_OF_RANGE);
    // READ DEFECT DATA(10/12): an empty list in the format asked for.
    assert_eq!(h.cmd(0, &[0x37, 0, 0x1D, 0, 0, 0, 0, 0, 255, 0]).good(), [0, 0x1D, 0, 0]);
    assert_eq!(h.cmd(0, &[0xB7, 0x0C, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]).good(), [0, 0x0C, 0, 0, 0, 0, 0, 0]);
    assert_eq!(h.cmd(0, &[0x37, 0, 0x1D, 0, 0, 0, 0, 0, 2, 0]).good(), [0, 0x1D]);
    // None of these exist on a CD drive.
    h.expect_check(2, &[0x34, 0, 0, 0, 0, 0, 0, 0, 1, 0], Sense::INVALID_OPCODE);
    h.expect_check(2, &[0x37, 0, 0, 0, 0, 0, 0, 0, 4, 0], Sense::INVALID_OPCODE);
}

#[test]
fn report_supported_operation_codes_through_the_target() {
    let mut h = Host::ready(vec![disk(64, 512, false), optical(10)]);
    let d = h.cmd(0, &[0xA3, 0x0C, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]).good();
    let len = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize;
    assert_eq!(len, d.len() - 4);
    // Every reported command is one the target answers with something other than
    // INVALID OPERATION CODE / unknown service action, and the CDB lengths agree.
    for c in d[4..].chunks(8) {
        let (opcode, sa, servactv, cdb_len) = (c[0], c[3], c[5] & 1 != 0, u16::from_be_bytes([c[6], c[7]]));
        let mut cdb = vec![0u8; usize::from(cdb_len)];
        cdb[0] = opcode;
        if servactv {
            cdb[1] = sa;
        }
        if h.target.begin(0, &cdb) == DataStage::None {
            if h.target.end() == Status::CheckCondition {
                assert_ne!(h.sense(0), (0x05, 0x20, 0x00), "{opcode:02X}/{sa:02X} is reported but unknown");
            }
        } else {
            h.target.abort(); // a data stage: the command was taken
        }
        let one =
            h.cmd(0, &[0xA3, 0x0C, if servactv { 2 } else { 1 }, opcode, 0, sa, 0, 0, 1, 0, 0, 0]).good();
        assert_eq!((one[1] & 0x07, usize::from(u16::from_be_bytes([one[2], one[3]]))), (3, cdb.len()));
        assert_eq!(one[4], opcode);
    }
    // Allocation length 0x10: 4-byte header + one descriptor and a half, truncated.
    assert_eq!(h.cmd(0, &[0xA3, 0x0C, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]).good().len(), 16);
    // Reporting options 1 for an opcode with service actions: INVALID FIELD.
    h.expect_check(0, &[0xA3, 0x0C, 1, 0x9E, 0, 0, 0, 0, 1, 0, 0, 0], Sense::INVALID_FIELD_IN_CDB);
    h.expect_check(0, &[0xA3, 0x0C, 7, 0, 0, 0, 0, 0, 1, 0, 0, 0], Sense::INVALID_FIELD_IN_CDB);
    // Other MAINTENANCE IN service actions are not implemented; on a CD drive A3h is SEND KEY.
    h.expect_check(0, &[0xA3, 0x0A, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], Sense::INVALID_FIELD_IN_CDB);
    h.expect_check(1, &[0xA3, 0x0C, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], Sense::INVALID_OPCODE);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Any UNMAP parameter list: no panic, GOOD only if every descriptor is in range,
    /// and nothing outside the descriptors is ever discarded.
    #[test]
    fn unmap_of_any_parameter_list_is_safe(
        descriptors in prop::collection::vec((0u64..80, 0u32..20), 0..6),
        header_bd in prop::option::of(any::<u16>()),
        header_data in prop::option::of(any::<u16>()),
        cut in 0usize..8,
    ) {
        let thin = Thin::new(64, 512);
        let mut h = Host::ready(vec![thin.config()]);
        let mut list = unmap_list(&descriptors);
        if let Some(bd) = header_bd {
            list[2..4].copy_from_slice(&bd.to_be_bytes());
        }
        if let Some(dl) = header_data {
            list[0..2].copy_from_slice(&dl.to_be_bytes());
        }
        list.truncate(list.len().saturating_sub(cut));
        let r = h.cmd_out(0, &unmap_cdb(list.len() as u16), &list);
        let well_formed = header_bd.is_none() && header_data.is_none() && cut == 0;
        let in_range = descriptors.iter().all(|&(l, n)| l + u64::from(n) <= 64);
        if well_formed && in_range {
            prop_assert_eq!(r.status, Status::Good);
        }
        if r.status == Status::Good {
            let allowed: Vec<(u64, u64)> =
                descriptors.iter().map(|&(l, n)| (l * 512, u64::from(n) * 512)).collect();
            for &(off, len) in thin.discards.lock().unwrap().iter() {
                prop_assert!(allowed.iter().any(|&(a, n)| off >= a && off + len <= a + n));
            }
        } else {
            prop_assert!(thin.discards.lock().unwrap().is_empty());
            h.sense(0);
        }
        prop_assert_eq!(h.tur(0), Status::Good);
    }

    /// Any WRITE SAME(16) CDB on a small disk: no panic; GOOD only in range.
    #[test]
    fn write_same_of_any_range_is_checked(lba in any::<u64>(), blocks in any::<u32>(), flags in any::<u8>()) {
        let mut h = Host::ready(vec![disk(64, 512, false)]);
        let r = h.cmd_out(0, &write_same16(lba % 128, blocks % 128, flags), &[1; 512]);
        if r.status == Status::Good {
            let n = if blocks % 128 == 0 { 64u64.saturating_sub(lba % 128) } else { u64::from(blocks % 128) };
            prop_assert!((lba % 128) + n <= 64);
        }
    }
}
