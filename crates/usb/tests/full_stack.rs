//! The whole device (USB → BOT → SCSI → memory image) driven the way a host
//! enumerates and uses it: descriptors, GET MAX LUN, READ(10)/WRITE(10)
//! through the bulk endpoints, resets.

use vstick_bot::{Csw, CswStatus};
use vstick_test_support::{BLOCK, BotHost, Data, TEST_UNIT_READY as TUR, TargetBuilder, read10, write10};
use vstick_usb::{ControlResult, EP_IN, EP_OUT, Identity, InResult, MassStorageDevice, OutResult, Setup};

/// `luns` 512 KiB memory disks.
fn device(luns: usize) -> MassStorageDevice {
    (0..luns)
        .fold(TargetBuilder::new(), |t, _| t.disk(1024))
        .identity(Identity::default_for(vstick_usb::serial_from_seed("test")))
        .device()
}

fn control(dev: &mut MassStorageDevice, raw: [u8; 8]) -> ControlResult {
    dev.control(&Setup::from_bytes(raw), &[])
}

/// A host for which any stall is a failure, in 512-byte transfers.
fn host(luns: usize) -> BotHost<MassStorageDevice> {
    BotHost::strict(device(luns))
}

fn read(len: u32) -> Data<'static> {
    Data::In { len, chunk: BLOCK }
}

fn write(data: &[u8]) -> Data<'_> {
    Data::Out { data, chunk: BLOCK }
}

#[test]
fn enumeration_descriptors() {
    let mut dev = device(1);
    // GET_DESCRIPTOR(DEVICE, 18)
    let ControlResult::Data(d) = control(&mut dev, [0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00]) else {
        panic!()
    };
    assert_eq!(d, dev.device_descriptor_bytes());
    // GET_DESCRIPTOR(CONFIGURATION, 255)
    let ControlResult::Data(c) = control(&mut dev, [0x80, 0x06, 0x00, 0x02, 0x00, 0x00, 0xFF, 0x00]) else {
        panic!()
    };
    assert_eq!(c.len(), 32);
    assert_eq!(&c[14..17], &[0x08, 0x06, 0x50], "mass storage, SCSI, Bulk-Only");
    // GET_DESCRIPTOR(STRING 3, en-US): the serial from the seed.
    let ControlResult::Data(s) = control(&mut dev, [0x80, 0x06, 0x03, 0x03, 0x09, 0x04, 0xFF, 0x00]) else {
        panic!()
    };
    let serial: String = char::decode_utf16(s[2..].chunks(2).map(|u| u16::from_le_bytes([u[0], u[1]])))
        .map(Result::unwrap)
        .collect();
    assert_eq!(serial, vstick_usb::serial_from_seed("test"));
}

#[test]
fn get_max_lun_counts_luns() {
    for (luns, max) in [(1, 0u8), (2, 1), (16, 15)] {
        let mut dev = device(luns);
        assert_eq!(
            control(&mut dev, [0xA1, 0xFE, 0, 0, 0, 0, 1, 0]),
            ControlResult::Data(vec![max]),
            "{luns} LUNs"
        );
    }
}

#[test]
fn read_write_through_the_bulk_endpoints() {
    let mut host = host(2);
    for lun in 0..2 {
        // Power-on unit attention, then ready.
        host.ready(lun);
    }
    let data: Vec<u8> = (0..8 * BLOCK).map(|i| (i % 249) as u8 ^ 0x5A).collect();
    // WRITE(10) LBA 7, 8 blocks, LUN 1.
    let (_, csw) = host.command(1, &write10(7, 8), write(&data));
    assert_eq!(csw, Csw { tag: csw.tag, residue: 0, status: CswStatus::Passed });
    // READ(10) it back from LUN 1; LUN 0 is a different image.
    let (back, csw) = host.command(1, &read10(7, 8), read(data.len() as u32));
    assert_eq!((csw.status, csw.residue), (CswStatus::Passed, 0));
    assert_eq!(back, data);
    let (other, _) = host.command(0, &read10(7, 1), read(512));
    assert_eq!(other, vec![0u8; 512]);
}

#[test]
fn port_reset_raises_unit_attention() {
    let mut host = host(1);
    host.ready(0);
    host.pipes.reset();
    assert_eq!(host.command(0, &TUR, Data::None).1.status, CswStatus::Failed);
    assert_eq!(host.sense(0), (0x06, 0x29, 0x00));
}

#[test]
fn bulk_only_reset_recovery_after_invalid_cbw() {
    let mut host = host(1);
    assert_eq!(host.pipes.bulk_out(EP_OUT, b"not a CBW"), OutResult::Stall);
    assert_eq!(host.pipes.bulk_in(EP_IN, &mut [0u8; 13]), InResult::Stall);
    // Linux's Reset Recovery: class reset, then CLEAR_FEATURE(HALT) on IN and OUT.
    assert_eq!(control(&mut host.pipes, [0x21, 0xFF, 0, 0, 0, 0, 0, 0]), ControlResult::Ack);
    assert_eq!(control(&mut host.pipes, [0x02, 0x01, 0, 0, 0x81, 0, 0, 0]), ControlResult::Ack);
    assert_eq!(control(&mut host.pipes, [0x02, 0x01, 0, 0, 0x02, 0, 0, 0]), ControlResult::Ack);
    let (inq, csw) = host.command(0, &[0x12, 0, 0, 0, 36, 0], read(36));
    assert_eq!(csw.status, CswStatus::Passed);
    assert_eq!(inq.len(), 36);
}
