//! What boot firmware sends, byte for byte: EDK2's UsbMassStorageDxe puts the
//! SCSI-2 LUN field in CDB byte 1 (bits 7:5) of every command, on every LUN.

use super::*;

/// EDK2's `USB_BOOT_LUN (Lun)`: the LUN shifted into byte 1 bits 7:5.
fn edk2_lun(lun: u8) -> u8 {
    lun << 5
}

/// UsbBootGetParams starts every LUN with INQUIRY (allocation 36), the LUN field set.
fn edk2_inquiry(h: &mut Host, lun: u8) {
    let l = (u16::from(lun) << 5) as u8;
    assert_eq!(h.cmd(lun, &[0x12, l, 0, 0, 36, 0]).good().len(), 36);
}

/// The commands UsbBootGetParams / UsbBootDetectMedia / UsbBootReadBlocks send
/// to a disk on `lun`, in order, each with the LUN field set.
fn edk2_disk_sequence(h: &mut Host, lun: u8, blocks: u32) {
    let l = edk2_lun(lun);
    // INQUIRY, allocation 36 (USB_BOOT_INQUIRY_DATA).
    let inq = h.cmd(lun, &[0x12, l, 0, 0, 36, 0]).good();
    assert_eq!((inq.len(), inq[0] & 0x1F), (36, 0x00), "direct-access device");
    // TEST UNIT READY.
    assert_eq!(h.cmd(lun, &[0x00, l, 0, 0, 0, 0]).status, Status::Good);
    // MODE SENSE(6), page 0x3F, allocation 4 (just the header): WP in byte 2 bit 7.
    let header = h.cmd(lun, &[0x1A, l, 0x3F, 0, 4, 0]).good();
    assert_eq!(header.len(), 4);
    assert_eq!(header[2] & 0x80, 0x80, "read-only medium reports WP");
    // READ CAPACITY(10): last LBA and block length.
    let cap = h.cmd(lun, &[0x25, l, 0, 0, 0, 0, 0, 0, 0, 0]).good();
    assert_eq!(cap, [(blocks - 1).to_be_bytes(), 512u32.to_be_bytes()].concat());
    // READ(10) of LBA 0, one block.
    let d = h.cmd(lun, &[0x28, l, 0, 0, 0, 0, 0, 0, 1, 0]).good();
    assert_eq!(d.len(), 512);
    // REQUEST SENSE, allocation 18, after nothing failed: NO SENSE.
    let s = h.cmd(lun, &[0x03, l, 0, 0, 18, 0]).good();
    assert_eq!((s[2] & 0x0F, s[12], s[13]), (0, 0, 0));
}

#[test]
fn edk2_commands_with_the_scsi2_lun_field_work_on_every_lun() {
    let mut h = Host::ready(vec![disk(64, 512, true), disk(64, 512, true), disk(64, 512, true)]);
    for lun in 0..3 {
        edk2_disk_sequence(&mut h, lun, 64);
    }
}

#[test]
fn edk2_read16_and_el_torito_reads_on_a_cdrom_lun() {
    let mut h = Host::ready(vec![disk(64, 512, false), optical(40)]);
    let l = edk2_lun(1);
    edk2_inquiry(&mut h, 1);
    // El Torito: the boot record volume descriptor at LBA 17, READ(10) of one 2048-byte block.
    let d = h.cmd(1, &[0x28, l, 0, 0, 0, 17, 0, 0, 1, 0]).good();
    assert_eq!(d.len(), 2048);
    assert_eq!(d[0], pattern(17 * 2048));
    // UsbBootReadWriteBlocks16 masks the field the same way.
    let mut cdb = read16(17, 1);
    cdb[1] = l & 0xE0;
    assert_eq!(h.cmd(1, &cdb).good(), d);
}

#[test]
fn edk2_lun_field_on_lun_9_is_its_low_three_bits() {
    let luns = (0..10).map(|_| disk(8, 512, false)).collect();
    let mut h = Host::ready(luns);
    // (9 << 5) truncated to a byte, as EDK2's UINT8 cast does: 0x20.
    let l = (9u16 << 5) as u8;
    assert_eq!(l, 0x20);
    edk2_inquiry(&mut h, 9);
    assert_eq!(h.cmd(9, &[0x28, l, 0, 0, 0, 0, 0, 0, 1, 0]).good().len(), 512);
}

#[test]
fn protection_fields_other_than_the_lun_are_still_refused() {
    let mut h = Host::ready(vec![disk(64, 512, false), disk(64, 512, false), disk(64, 512, false)]);
    // LUN 0 has no SCSI-2 field to strip: RDPROTECT 1 stays invalid.
    h.expect_check(0, &[0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0], Sense::INVALID_FIELD_IN_CDB);
    // On LUN 1 a field naming LUN 2 is not the LUN field.
    h.expect_check(1, &[0x28, 0x40, 0, 0, 0, 0, 0, 0, 1, 0], Sense::INVALID_FIELD_IN_CDB);
    // WRPROTECT the same.
    h.expect_check(2, &[0x2A, 0x20, 0, 0, 0, 0, 0, 0, 1, 0], Sense::INVALID_FIELD_IN_CDB);
    // The other bits of byte 1 keep their meaning: FUA (bit 3) with the LUN field.
    edk2_inquiry(&mut h, 2);
    let r = h.cmd_out(2, &[0x2A, 0x40 | 0x08, 0, 0, 0, 1, 0, 0, 1, 0], &[0xAB; 512]);
    assert_eq!(r.status, Status::Good);
    assert_eq!(h.cmd(2, &read10(1, 1)).good(), vec![0xAB; 512]);
}

/// Issue 16: READ(10) with RDPROTECT=1 to LUN 1 must be refused from a host that
/// never used SCSI-2 addressing (Linux, libiscsi), and accepted as the LUN field
/// once the host has shown it uses it (EDK2's INQUIRY or TEST UNIT READY).
#[test]
fn rdprotect_equal_to_the_lun_is_refused_until_the_host_shows_scsi2_addressing() {
    let mut h = Host::ready(vec![disk(64, 512, false), disk(64, 512, false)]);
    h.expect_check(1, &[0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0], Sense::INVALID_FIELD_IN_CDB);
    let mut r16 = read16(0, 1);
    r16[1] = 0x20;
    h.expect_check(1, &r16, Sense::INVALID_FIELD_IN_CDB);
    // TEST UNIT READY's byte 1 bits 7:5 can only be the old LUN field.
    assert_eq!(h.cmd(1, &[0x00, 0x20, 0, 0, 0, 0]).status, Status::Good);
    assert_eq!(h.cmd(1, &[0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0]).good().len(), 512);
    assert_eq!(h.cmd(1, &r16).good().len(), 512);
    // Learned per LUN: LUN 0 never takes the bits as a LUN (there is none to name).
    h.expect_check(0, &[0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0], Sense::INVALID_FIELD_IN_CDB);
}
