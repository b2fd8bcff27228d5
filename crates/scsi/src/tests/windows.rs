//! Command sequences Windows sends, replayed from public sources (no Windows runs
//! here). Each test names where its sequence comes from.

use super::*;
use crate::{LunKind, Sense, Status};

/// Arrival of a flash drive, Windows XP: GET MAX LUN (the transport's), then per LUN
/// INQUIRY (36 bytes), READ FORMAT CAPACITIES, READ CAPACITY(10) and READ(10) of
/// sector 0. Source: Jan Axelson, "USB Mass Storage", chapter 11, figure 11-2
/// ("Commands used by a Windows host after enumerating a flash drive", an Ellisys
/// capture).
#[test]
fn windows_xp_arrival_of_a_flash_drive() {
    let mut h = Host::new(vec![disk(2048, 512, false)]);
    let inq = h.cmd(0, &[0x12, 0, 0, 0, 0x24, 0]).good();
    assert_eq!((inq.len(), inq[0], inq[1]), (36, 0x00, 0x80), "disk, removable");
    // The power-on unit attention is reported to the first command that is not exempt;
    // Windows answers it with REQUEST SENSE and repeats the command.
    let r = h.cmd(0, &[0x23, 0, 0, 0, 0, 0, 0, 0, 0xFC, 0]);
    if r.status == Status::CheckCondition {
        assert_eq!(h.sense(0), (0x06, 0x29, 0x00));
    }
    let fc = h.cmd(0, &[0x23, 0, 0, 0, 0, 0, 0, 0, 0xFC, 0]).good();
    assert_eq!(fc, [0, 0, 0, 8, 0, 0, 0x08, 0x00, 0x02, 0, 0x02, 0x00], "2048 formatted 512-byte blocks");
    let cap = h.cmd(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]).good();
    assert_eq!(cap, [0, 0, 0x07, 0xFF, 0, 0, 0x02, 0x00]);
    assert_eq!(h.cmd(0, &read10(0, 1)).good().len(), 512);
}

/// Windows 10 (Creators Update) and 11 send SYNCHRONIZE CACHE(10) to a USB disk (about
/// 30 s after arrival on Windows 11) and poll it with TEST UNIT READY; a device that
/// answers SYNCHRONIZE CACHE with an error or a stall is reset in a loop. Sources:
/// micropython/micropython#3126 (logs of Windows 10 Creators), and
/// STMicroelectronics/stm32-mw-usb-device#41 (Windows 11, SYNCHRONIZE CACHE after 30 s,
/// CLEAR_FEATURE/reset loop when it fails).
#[test]
fn windows_10_and_11_idle_synchronize_cache_and_polling() {
    let shared = Shared::new(64, 512);
    let mut h = Host::ready(vec![shared.config()]);
    assert_eq!(h.cmd_out(0, &write10(1, 1, false), &[0x5A; 512]).status, Status::Good);
    for _ in 0..3 {
        assert_eq!(h.tur(0), Status::Good);
    }
    // SYNCHRONIZE CACHE(10), whole medium (LBA 0, 0 blocks), as Windows sends it.
    let r = h.cmd(0, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(r.status, Status::Good);
    assert_eq!(shared.flushes(), 1, "the write reached stable storage");
    assert_eq!(h.tur(0), Status::Good);
}

/// A removable disk with no medium: Windows keeps polling TEST UNIT READY (about once
/// a second) and shows "insert a disk" while it fails with NOT READY, MEDIUM NOT
/// PRESENT. Source: ChibiOS/ChibiOS-Contrib#131 (a Windows USB analyser capture of
/// that polling; before the fix the device answered GOOD and Windows never noticed).
#[test]
fn windows_polls_an_empty_removable_disk() {
    let mut h = Host::ready(vec![empty(LunKind::Disk)]);
    for _ in 0..3 {
        h.expect_check(0, &TUR, Sense::MEDIUM_NOT_PRESENT);
    }
    let d = h.cmd(0, &[0x23, 0, 0, 0, 0, 0, 0, 0, 0xFC, 0]).good();
    assert_eq!(d[8], 0x03, "READ FORMAT CAPACITIES: no media present");
}

/// Explorer's "Eject" on a CD drive: START STOP UNIT with LoEj=1, Start=0, sent as a
/// 12-byte ATAPI-padded CDB `1b 00 00 00 02 00 00 00 00 00 00 00`. Source:
/// joncampbell123/dosbox-x#1037 (the CDB logged from Windows 95 and 98 SE).
#[test]
fn windows_explorer_ejects_a_cd() {
    let mut h = Host::ready(vec![optical(100)]);
    assert_eq!(h.tur(0), Status::Good);
    let r = h.cmd(0, &[0x1B, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(r.status, Status::Good);
    h.expect_check(0, &TUR, Sense::MEDIUM_NOT_PRESENT);
    // Closing the tray again (LoEj=1, Start=1) brings the disc back with a media change.
    assert_eq!(h.cmd(0, &[0x1B, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0]).status, Status::Good);
    h.expect_check(0, &TUR, Sense::MEDIUM_CHANGED);
    assert_eq!(h.tur(0), Status::Good);
}

/// A disc swapped while Windows has the drive open: the next command fails with CHECK
/// CONDITION, REQUEST SENSE tells why (UNIT ATTENTION, medium may have changed), and
/// Windows reads the new disc. Source: danifunker/usbode-circle#40 (Windows 11 and XP
/// after a CD switch; the maintainers describe this exchange).
#[test]
fn windows_sees_a_swapped_cd_through_unit_attention() {
    let mut h = Host::ready(vec![optical(100)]);
    assert_eq!(h.tur(0), Status::Good);
    h.target.insert(0, Box::new(Sparse::new(200, 2048))).unwrap();
    let r = h.cmd(0, &TUR);
    assert_eq!(r.status, Status::CheckCondition);
    assert_eq!(h.sense(0), (0x06, 0x3A, 0x00), "QEMU's order: removed first");
    let r = h.cmd(0, &TUR);
    assert_eq!(r.status, Status::CheckCondition);
    assert_eq!(h.sense(0), (0x06, 0x28, 0x00));
    assert_eq!(h.tur(0), Status::Good);
    let cap = h.cmd(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]).good();
    assert_eq!(cap, [0, 0, 0, 199, 0, 0, 0x08, 0x00], "the new disc's capacity");
}
