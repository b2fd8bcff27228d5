//! The whole device (USB → BOT → SCSI → memory image) driven the way a host
//! enumerates and uses it: descriptors, GET MAX LUN, READ(10)/WRITE(10)
//! through the bulk endpoints, resets.

use vstick_bot::{Cbw, Csw, CswStatus};
use vstick_media::MemoryImage;
use vstick_scsi::{LunConfig, LunKind, Target};
use vstick_usb::{ControlResult, EP_IN, EP_OUT, Identity, InResult, MassStorageDevice, OutResult, Setup};

const BLOCK: usize = 512;

fn device(luns: usize) -> MassStorageDevice {
    let configs = (0..luns)
        .map(|i| LunConfig {
            kind: LunKind::Disk,
            medium: Some(Box::new(MemoryImage::new(1024 * BLOCK, BLOCK as u32, false))),
            serial: format!("USBTEST{i:04}"),
        })
        .collect();
    MassStorageDevice::new(Target::new(configs), Identity::default_for(vstick_usb::serial_from_seed("test")))
}

fn control(dev: &mut MassStorageDevice, raw: [u8; 8]) -> ControlResult {
    dev.control(&Setup::from_bytes(raw), &[])
}

struct Host {
    dev: MassStorageDevice,
    tag: u32,
}

impl Host {
    fn run(&mut self, lun: u8, cdb: &[u8], out: Option<&[u8]>, in_len: u32) -> (Vec<u8>, Csw) {
        self.tag += 1;
        let (len, dir_in) = match out {
            Some(d) => (d.len() as u32, false),
            None => (in_len, in_len > 0),
        };
        let cbw = Cbw::new(self.tag, len, dir_in, lun, cdb).unwrap().to_bytes();
        assert_eq!(self.dev.bulk_out(EP_OUT, &cbw), OutResult::Accepted(31));
        let mut read = Vec::new();
        if let Some(data) = out {
            for piece in data.chunks(BLOCK) {
                assert_eq!(self.dev.bulk_out(EP_OUT, piece), OutResult::Accepted(piece.len()));
            }
        }
        while read.len() < in_len as usize {
            let mut buf = vec![0u8; BLOCK];
            match self.dev.bulk_in(EP_IN, &mut buf) {
                InResult::Data(n) => {
                    read.extend_from_slice(&buf[..n]);
                    if n < BLOCK {
                        break;
                    }
                }
                other => panic!("data-in: {other:?}"),
            }
        }
        let mut csw = [0u8; 13];
        assert_eq!(self.dev.bulk_in(EP_IN, &mut csw), InResult::Data(13));
        let csw = Csw::parse(&csw).unwrap();
        assert_eq!(csw.tag, self.tag);
        (read, csw)
    }
}

const TUR: [u8; 6] = [0; 6];
const REQUEST_SENSE: [u8; 6] = [0x03, 0, 0, 0, 18, 0];

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
    let mut host = Host { dev: device(2), tag: 0 };
    for lun in 0..2 {
        // Power-on unit attention, then ready.
        if host.run(lun, &TUR, None, 0).1.status == CswStatus::Failed {
            let (sense, _) = host.run(lun, &REQUEST_SENSE, None, 18);
            assert_eq!((sense[2] & 0x0F, sense[12], sense[13]), (0x06, 0x29, 0x00));
        }
        assert_eq!(host.run(lun, &TUR, None, 0).1.status, CswStatus::Passed);
    }
    let data: Vec<u8> = (0..8 * BLOCK).map(|i| (i % 249) as u8 ^ 0x5A).collect();
    // WRITE(10) LBA 7, 8 blocks, LUN 1.
    let (_, csw) = host.run(1, &[0x2A, 0, 0, 0, 0, 7, 0, 0, 8, 0], Some(&data), 0);
    assert_eq!(csw, Csw { tag: csw.tag, residue: 0, status: CswStatus::Passed });
    // READ(10) it back from LUN 1; LUN 0 is a different image.
    let (back, csw) = host.run(1, &[0x28, 0, 0, 0, 0, 7, 0, 0, 8, 0], None, data.len() as u32);
    assert_eq!((csw.status, csw.residue), (CswStatus::Passed, 0));
    assert_eq!(back, data);
    let (other, _) = host.run(0, &[0x28, 0, 0, 0, 0, 7, 0, 0, 1, 0], None, 512);
    assert_eq!(other, vec![0u8; 512]);
}

#[test]
fn port_reset_raises_unit_attention() {
    let mut host = Host { dev: device(1), tag: 0 };
    if host.run(0, &TUR, None, 0).1.status == CswStatus::Failed {
        host.run(0, &REQUEST_SENSE, None, 18);
    }
    assert_eq!(host.run(0, &TUR, None, 0).1.status, CswStatus::Passed);
    host.dev.reset();
    assert_eq!(host.run(0, &TUR, None, 0).1.status, CswStatus::Failed);
    let (sense, _) = host.run(0, &REQUEST_SENSE, None, 18);
    assert_eq!((sense[2] & 0x0F, sense[12], sense[13]), (0x06, 0x29, 0x00));
}

#[test]
fn bulk_only_reset_recovery_after_invalid_cbw() {
    let mut host = Host { dev: device(1), tag: 0 };
    assert_eq!(host.dev.bulk_out(EP_OUT, b"not a CBW"), OutResult::Stall);
    assert_eq!(host.dev.bulk_in(EP_IN, &mut [0u8; 13]), InResult::Stall);
    // Linux's Reset Recovery: class reset, then CLEAR_FEATURE(HALT) on IN and OUT.
    assert_eq!(control(&mut host.dev, [0x21, 0xFF, 0, 0, 0, 0, 0, 0]), ControlResult::Ack);
    assert_eq!(control(&mut host.dev, [0x02, 0x01, 0, 0, 0x81, 0, 0, 0]), ControlResult::Ack);
    assert_eq!(control(&mut host.dev, [0x02, 0x01, 0, 0, 0x02, 0, 0, 0]), ControlResult::Ack);
    let (inq, csw) = host.run(0, &[0x12, 0, 0, 0, 36, 0], None, 36);
    assert_eq!(csw.status, CswStatus::Passed);
    assert_eq!(inq.len(), 36);
}
