//! The session over the real device stack: `MassStorageDevice` → BOT →
//! SCSI `Target` → `MemoryImage`, driven as the Linux vhci client drives it.

use vstick_bot::{Cbw, Csw, CswStatus, OutResult};
use vstick_test_support::{BotHost, BulkIn, BulkPipes, DISK_BLOCKS as BLOCKS, Data, TEST_UNIT_READY, device};
use vstick_usb::{MassStorageDevice, UsbDevice};

use crate::codec::{Direction, OpReply, OpRequest, WireSpeed, errno};
use crate::session_tests::{Client, GET_DEVICE_DESCRIPTOR, Reply, failed, ok, out_ok};

/// Data of a successful IN reply.
fn data_of(reply: &Reply, seqnum: u32) -> Vec<u8> {
    match reply {
        Reply::Submit { seqnum: s, status: 0, data, .. } if *s == seqnum => data.clone(),
        other => panic!("expected data for {seqnum}, got {other:?}"),
    }
}

/// The bulk pipes as the Linux vhci client reaches them: one URB per
/// transfer, each answered before the next.
impl<D: UsbDevice> BulkPipes for Client<D> {
    fn bulk_out(&mut self, data: &[u8]) -> OutResult {
        let s = Client::bulk_out(self, data);
        let replies = self.replies();
        assert_eq!(replies.len(), 1, "{replies:?}");
        match replies[0] {
            Reply::Submit { status: 0, actual_length, .. } => {
                assert_eq!(replies[0], out_ok(s, actual_length));
                OutResult::Accepted(actual_length as usize)
            }
            _ => {
                assert_eq!(replies[0], failed(s, errno::EPIPE));
                OutResult::Stall
            }
        }
    }

    fn bulk_in(&mut self, len: usize) -> BulkIn {
        let s = Client::bulk_in(self, u32::try_from(len).unwrap());
        let replies = self.replies();
        assert_eq!(replies.len(), 1, "{replies:?}");
        if replies[0] == failed(s, errno::EPIPE) {
            return BulkIn::Stall;
        }
        BulkIn::Data(data_of(&replies[0], s))
    }

    fn clear_halt(&mut self, dir_in: bool) {
        let endpoint = if dir_in { 0x81 } else { 0x02 };
        let s = self.control_out([0x02, 0x01, 0, 0, endpoint, 0, 0, 0], &[]);
        assert_eq!(self.replies(), vec![out_ok(s, 0)]);
    }
}

/// usb-storage over USB/IP, for which any stall is a failure.
type Host = BotHost<Client<MassStorageDevice>>;

fn attach() -> Host {
    BotHost::strict(Client::imported_with(device()))
}

#[test]
fn import_reports_a_high_speed_configured_device() {
    let mut c = Client::with(device());
    let OpReply::Devlist { devices, .. } = c.op(&OpRequest::Devlist) else { panic!() };
    let d = &devices[0];
    assert_eq!(d.record.speed, WireSpeed::HIGH);
    assert_eq!(
        (d.record.configuration_value, d.record.num_configurations, d.record.num_interfaces),
        (1, 1, 1)
    );
    assert_eq!(
        (d.interfaces[0].class, d.interfaces[0].subclass, d.interfaces[0].protocol),
        (0x08, 0x06, 0x50)
    );
    let h = attach();
    assert!(*h.pipes.session.protocol().gate());
}

#[test]
fn enumeration_as_linux_does_it() {
    let mut h = attach();
    let c = &mut h.pipes;
    // Device descriptor: bcdUSB exactly 2.00, one configuration.
    let s = c.control_in(GET_DEVICE_DESCRIPTOR, 18);
    let dd = data_of(&c.replies()[0], s);
    assert_eq!(dd.len(), 18);
    assert_eq!(&dd[2..4], &[0x00, 0x02], "bcdUSB 0x0200");
    assert_eq!(dd[17], 1, "bNumConfigurations");
    // Configuration descriptor, header then whole.
    let s = c.control_in([0x80, 0x06, 0x00, 0x02, 0x00, 0x00, 0x09, 0x00], 9);
    let head = data_of(&c.replies()[0], s);
    let total = u16::from_le_bytes([head[2], head[3]]);
    let s =
        c.control_in([0x80, 0x06, 0x00, 0x02, 0x00, 0x00, total as u8, (total >> 8) as u8], u32::from(total));
    let config = data_of(&c.replies()[0], s);
    assert_eq!(config.len(), usize::from(total));
    // Both bulk endpoints have 512-byte packets at high speed.
    let mut i = 9;
    let mut found = Vec::new();
    while i + 1 < config.len() {
        let len = usize::from(config[i]);
        if config[i + 1] == 0x05 {
            found.push((config[i + 2], u16::from_le_bytes([config[i + 4], config[i + 5]])));
        }
        i += len.max(1);
    }
    found.sort();
    assert_eq!(found, vec![(0x02, 512), (0x81, 512)]);
    // SET_CONFIGURATION(1), then GET MAX LUN (class request on ep 0).
    let s = c.control_out([0x00, 0x09, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00], &[]);
    assert_eq!(c.replies(), vec![out_ok(s, 0)]);
    let s = c.control_in([0xA1, 0xFE, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00], 1);
    assert_eq!(c.replies(), vec![ok(s, &[0])]);
}

#[test]
fn write_then_read_back_through_bot_and_scsi() {
    let mut h = attach();
    // INQUIRY: direct-access, removable.
    let (inquiry, csw) = h.command(0, &[0x12, 0, 0, 0, 36, 0], Data::read(36));
    assert_eq!(csw.status, CswStatus::Passed);
    assert_eq!((inquiry[0] & 0x1F, inquiry[1] & 0x80), (0x00, 0x80));
    // The import reset the device: the first TEST UNIT READY reports the unit attention.
    let (_, csw) = h.command(0, &TEST_UNIT_READY, Data::None);
    assert_eq!(csw.status, CswStatus::Failed);
    let (sense, _) = h.command(0, &[0x03, 0, 0, 0, 18, 0], Data::read(18));
    assert_eq!((sense[2] & 0x0F, sense[12], sense[13]), (0x06, 0x29, 0x00));
    let (_, csw) = h.command(0, &TEST_UNIT_READY, Data::None);
    assert_eq!(csw.status, CswStatus::Passed);
    // READ CAPACITY(10).
    let (cap, _) = h.command(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], Data::read(8));
    assert_eq!(u32::from_be_bytes(cap[0..4].try_into().unwrap()), BLOCKS as u32 - 1);
    assert_eq!(u32::from_be_bytes(cap[4..8].try_into().unwrap()), 512);
    // WRITE(10) 4 blocks at LBA 100, then READ(10) them back.
    let pattern: Vec<u8> = (0..2048u32).map(|i| (i * 7 + 3) as u8).collect();
    let (_, csw) = h.command(0, &[0x2A, 0, 0, 0, 0, 100, 0, 0, 4, 0], Data::write(&pattern));
    assert_eq!((csw.status, csw.residue), (CswStatus::Passed, 0));
    let (back, csw) = h.command(0, &[0x28, 0, 0, 0, 0, 100, 0, 0, 4, 0], Data::read(2048));
    assert_eq!((csw.status, csw.residue), (CswStatus::Passed, 0));
    assert_eq!(back, pattern);
}

#[test]
fn in_urbs_posted_before_the_cbw_complete_in_order() {
    let mut h = attach();
    let c = &mut h.pipes;
    // Data and CSW URBs queued first (as a client pipelining would), then the CBW.
    let data = c.bulk_in(36);
    let status = c.bulk_in(13);
    assert_eq!(c.replies(), vec![]);
    let cbw = Cbw::new(9, 36, true, 0, &[0x12, 0, 0, 0, 36, 0]).unwrap().to_bytes();
    let o = c.bulk_out(&cbw);
    let replies = c.replies();
    assert_eq!(replies.len(), 3);
    assert_eq!(replies[0], out_ok(o, 31));
    assert_eq!(data_of(&replies[1], data).len(), 36);
    let csw = Csw::parse(&data_of(&replies[2], status)).unwrap();
    assert_eq!((csw.tag, csw.status), (9, CswStatus::Passed));
}

#[test]
fn reads_split_over_several_urbs() {
    let mut h = attach();
    // Consume the unit attention of the import's reset.
    let _ = h.command(0, &TEST_UNIT_READY, Data::None);
    let pattern: Vec<u8> = (0..4096u32).map(|i| (i / 3) as u8).collect();
    let (_, csw) = h.command(0, &[0x2A, 0, 0, 0, 0, 8, 0, 0, 8, 0], Data::write(&pattern));
    assert_eq!(csw.status, CswStatus::Passed);
    let c = &mut h.pipes;
    let cbw = Cbw::new(100, 4096, true, 0, &[0x28, 0, 0, 0, 0, 8, 0, 0, 8, 0]).unwrap().to_bytes();
    let o = c.bulk_out(&cbw);
    let parts: Vec<u32> = (0..4).map(|_| c.bulk_in(1024)).collect();
    let status = c.bulk_in(13);
    let replies = c.replies();
    assert_eq!(replies[0], out_ok(o, 31));
    let mut read = Vec::new();
    for (reply, s) in replies[1..5].iter().zip(&parts) {
        read.extend(data_of(reply, *s));
    }
    assert_eq!(read, pattern);
    let csw = Csw::parse(&data_of(&replies[5], status)).unwrap();
    assert_eq!((csw.tag, csw.status, csw.residue), (100, CswStatus::Passed, 0));
}

#[test]
fn unlink_of_a_waiting_csw_then_bot_reset_recovers() {
    let mut h = attach();
    // An IN URB waits (no command yet); the host gives up on it.
    let waiting = h.pipes.bulk_in(13);
    let u = h.pipes.unlink(waiting);
    assert_eq!(h.pipes.replies(), vec![Reply::Unlink { seqnum: u, status: errno::ECONNRESET }]);
    // Bulk-Only Mass Storage Reset, then CLEAR_FEATURE(HALT) on both pipes.
    let s1 = h.pipes.control_out([0x21, 0xFF, 0, 0, 0, 0, 0, 0], &[]);
    let s2 = h.pipes.control_out([0x02, 0x01, 0, 0, 0x81, 0, 0, 0], &[]);
    let s3 = h.pipes.control_out([0x02, 0x01, 0, 0, 0x02, 0, 0, 0], &[]);
    assert_eq!(h.pipes.replies(), vec![out_ok(s1, 0), out_ok(s2, 0), out_ok(s3, 0)]);
    let (_, csw) = h.command(0, &[0x12, 0, 0, 0, 36, 0], Data::read(36));
    assert_eq!(csw.status, CswStatus::Passed);
}

#[test]
fn invalid_cbw_stalls_both_pipes_as_epipe_until_reset_recovery() {
    let mut h = attach();
    // BOT §6.6.1: an invalid CBW stalls both pipes until a reset recovery.
    let o = h.pipes.bulk_out(b"not a CBW at all, 31 bytes long");
    let i = h.pipes.bulk_in(13);
    assert_eq!(h.pipes.replies(), vec![failed(o, errno::EPIPE), failed(i, errno::EPIPE)]);
    let o = h.pipes.submit(Direction::OUT, 2, 31, [0; 8], &[0u8; 31]);
    assert_eq!(h.pipes.replies(), vec![failed(o, errno::EPIPE)]);
    let s1 = h.pipes.control_out([0x21, 0xFF, 0, 0, 0, 0, 0, 0], &[]);
    let s2 = h.pipes.control_out([0x02, 0x01, 0, 0, 0x81, 0, 0, 0], &[]);
    let s3 = h.pipes.control_out([0x02, 0x01, 0, 0, 0x02, 0, 0, 0], &[]);
    assert_eq!(h.pipes.replies(), vec![out_ok(s1, 0), out_ok(s2, 0), out_ok(s3, 0)]);
    let (_, csw) = h.command(0, &[0x12, 0, 0, 0, 36, 0], Data::read(36));
    assert_eq!(csw.status, CswStatus::Passed);
}
