//! The session over the real device stack — `MassStorageDevice` → BOT →
//! SCSI `Target` → `MemoryImage` — driven the way QEMU's usb-redir drives
//! it for a Linux guest's usb-storage driver.

mod support;

use support::{HostSim, QEMU_CAPS, bulk, control};
use vstick_bot::{CSW_LEN, Cbw, Csw, CswStatus};
use vstick_media::MemoryImage;
use vstick_scsi::{LunConfig, LunKind, Target};
use vstick_usb::{Identity, MassStorageDevice, PID_CODES_TEST_PRODUCT_ID, PID_CODES_VENDOR_ID};
use vstick_usbredir::proto::{EndpointType, Packet, Speed, Status};

const BLOCKS: usize = 2048;

fn device() -> MassStorageDevice {
    let target = Target::new(vec![LunConfig {
        kind: LunKind::Disk,
        medium: Some(Box::new(MemoryImage::new(BLOCKS * 512, 512, false))),
        serial: "REDIRTEST".to_owned(),
    }]);
    MassStorageDevice::new(target, Identity::default_for("0123456789ABCDEF".to_owned()))
}

struct Host {
    h: HostSim<MassStorageDevice>,
    tag: u32,
}

/// The outcome of one SCSI command through BOT.
struct Done {
    data: Vec<u8>,
    csw: Csw,
}

impl Host {
    fn attach() -> Self {
        let mut h = HostSim::new(device(), QEMU_CAPS);
        let announce = h.handshake();
        let Packet::DeviceConnect(dc) = announce[2].packet else {
            panic!("device_connect last: {announce:?}")
        };
        assert_eq!(dc.speed, Speed::HIGH);
        assert_eq!((dc.vendor_id, dc.product_id), (PID_CODES_VENDOR_ID, PID_CODES_TEST_PRODUCT_ID));
        let Packet::InterfaceInfo(ifs) = &announce[0].packet else { panic!() };
        assert_eq!(
            (
                ifs.interface_count,
                ifs.interface_class[0],
                ifs.interface_subclass[0],
                ifs.interface_protocol[0]
            ),
            (1, 8, 6, 0x50)
        );
        let Packet::EpInfo(eps) = &announce[1].packet else { panic!() };
        assert_eq!((eps.ep_type[17], eps.max_packet_size[17]), (EndpointType::BULK, 512), "0x81");
        assert_eq!((eps.ep_type[2], eps.max_packet_size[2]), (EndpointType::BULK, 512), "0x02");
        Host { h, tag: 0 }
    }

    /// CBW, then the data stage, then the CSW, one packet each (the IN
    /// requests are sent before the CBW when `pipelined`, as QEMU may).
    fn command(&mut self, cdb: &[u8], data_in: u32, data_out: &[u8], pipelined: bool) -> Done {
        self.tag += 1;
        let len = if data_out.is_empty() { data_in } else { u32::try_from(data_out.len()).unwrap() };
        let cbw = Cbw::new(self.tag, len, data_out.is_empty(), 0, cdb).expect("valid CBW").to_bytes();
        let mut in_ids = Vec::new();
        if pipelined {
            if data_in > 0 {
                in_ids.push(self.h.bulk_in(0x81, data_in));
            }
            in_ids.push(self.h.bulk_in(0x81, u32::try_from(CSW_LEN).unwrap()));
            assert!(self.h.recv().is_empty(), "nothing to send before the CBW");
        }
        let cbw_id = self.h.bulk_out(0x02, &cbw);
        let mut replies = self.h.recv();
        let first = replies.remove(0);
        assert_eq!(first.id, cbw_id);
        assert_eq!(bulk(&first).0.status, Status::SUCCESS, "CBW accepted");
        if !data_out.is_empty() {
            // Split the data stage the way QEMU splits large transfers.
            for chunk in data_out.chunks(4096) {
                self.h.bulk_out(0x02, chunk);
                let r = self.h.recv();
                assert_eq!(bulk(&r[0]).0.length as usize, chunk.len());
            }
        }
        if !pipelined {
            if data_in > 0 {
                in_ids.push(self.h.bulk_in(0x81, data_in));
            }
            in_ids.push(self.h.bulk_in(0x81, u32::try_from(CSW_LEN).unwrap()));
            replies.extend(self.h.recv());
        }
        let got: Vec<u64> = replies.iter().map(|f| f.id).collect();
        assert_eq!(got, in_ids, "IN requests complete in FIFO order");
        let mut csw_reply = replies.pop().unwrap();
        let mut data = Vec::new();
        if let Some(data_reply) = replies.first() {
            let (hdr, bytes) = bulk(data_reply);
            if hdr.status == Status::STALL {
                // BOT §6.7.2: the host clears the halt, then reads the CSW
                // (the request queued behind the stalled one stalled too).
                assert_eq!(bulk(&csw_reply).0.status, Status::STALL);
                self.clear_in_halt();
                self.h.bulk_in(0x81, u32::try_from(CSW_LEN).unwrap());
                csw_reply = self.h.recv().pop().unwrap();
            } else {
                data = bytes.to_vec();
            }
        }
        let (hdr, csw_bytes) = bulk(&csw_reply);
        assert_eq!(hdr.status, Status::SUCCESS, "CSW delivered");
        let csw = Csw::parse(csw_bytes).expect("valid CSW");
        assert_eq!(csw.tag, self.tag);
        Done { data, csw }
    }

    fn clear_in_halt(&mut self) {
        // CLEAR_FEATURE(ENDPOINT_HALT) on 0x81.
        self.h.control_out(0x02, 0x01, 0, 0x81, &[]);
        assert_eq!(control(&self.h.recv()[0]).0.status, Status::SUCCESS);
    }

    /// Clears the power-on / reset unit attention the way a driver does.
    fn settle(&mut self) {
        for _ in 0..3 {
            let tur = self.command(&[0x00, 0, 0, 0, 0, 0], 0, &[], false);
            if tur.csw.status == CswStatus::Passed {
                return;
            }
            let _sense = self.command(&[0x03, 0, 0, 0, 18, 0], 18, &[], false);
        }
        panic!("unit never became ready");
    }
}

fn read10(lba: u32, blocks: u16) -> [u8; 10] {
    let [l0, l1, l2, l3] = lba.to_be_bytes();
    let [b0, b1] = blocks.to_be_bytes();
    [0x28, 0, l0, l1, l2, l3, 0, b0, b1, 0]
}

fn write10(lba: u32, blocks: u16) -> [u8; 10] {
    let mut c = read10(lba, blocks);
    c[0] = 0x2a;
    c
}

#[test]
fn enumeration_requests() {
    let mut host = Host::attach();
    let h = &mut host.h;
    h.control_in(0x80, 0x06, 0x0100, 0, 18);
    let r = h.recv();
    let (hdr, desc) = control(&r[0]);
    assert_eq!((hdr.status, hdr.length), (Status::SUCCESS, 18));
    assert_eq!(desc[0..2], [18, 1], "device descriptor");
    assert_eq!(desc[7], 64, "bMaxPacketSize0 matches ep_info");
    assert_eq!(u16::from_le_bytes([desc[8], desc[9]]), PID_CODES_VENDOR_ID);

    h.control_in(0x80, 0x06, 0x0200, 0, 0xff);
    let r = h.recv();
    let (_, config) = control(&r[0]);
    let total = u16::from_le_bytes([config[2], config[3]]);
    assert_eq!(usize::from(total), config.len(), "whole configuration in one reply");

    // GET MAX LUN: one LUN → 0.
    h.control_in(0xa1, 0xfe, 0, 0, 1);
    assert_eq!(control(&h.recv()[0]).1, [0]);

    // QEMU's own configuration packets agree with the device.
    h.send(&Packet::GetConfiguration);
    assert_eq!(h.recv()[0].packet, Packet::ConfigurationStatus { status: Status::SUCCESS, configuration: 1 });
    h.send(&Packet::SetConfiguration { configuration: 1 });
    assert_eq!(
        h.recv().last().unwrap().packet,
        Packet::ConfigurationStatus { status: Status::SUCCESS, configuration: 1 }
    );
}

#[test]
fn inquiry_write_and_read_back() {
    let mut host = Host::attach();

    let inquiry = host.command(&[0x12, 0, 0, 0, 36, 0], 36, &[], false);
    assert_eq!(inquiry.csw.status, CswStatus::Passed);
    assert_eq!(inquiry.csw.residue, 0);
    assert_eq!(inquiry.data.len(), 36);
    assert_eq!(inquiry.data[0] & 0x1f, 0x00, "direct-access block device");
    assert_eq!(inquiry.data[1] & 0x80, 0x80, "removable");

    host.settle();

    let capacity = host.command(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8, &[], false);
    assert_eq!(capacity.csw.status, CswStatus::Passed);
    assert_eq!(u32::from_be_bytes(capacity.data[0..4].try_into().unwrap()), BLOCKS as u32 - 1);
    assert_eq!(u32::from_be_bytes(capacity.data[4..8].try_into().unwrap()), 512);

    let pattern: Vec<u8> = (0..4 * 512u32).map(|i| (i * 13 + 7) as u8).collect();
    let write = host.command(&write10(5, 4), 0, &pattern, false);
    assert_eq!(write.csw.status, CswStatus::Passed);
    assert_eq!(write.csw.residue, 0);

    let read = host.command(&read10(5, 4), 2048, &[], true);
    assert_eq!(read.csw.status, CswStatus::Passed);
    assert_eq!(read.data, pattern);

    // Untouched blocks read as zeros.
    let zeros = host.command(&read10(100, 1), 512, &[], false);
    assert_eq!(zeros.data, vec![0; 512]);
}

#[test]
fn transfers_over_64_kib_use_length_high() {
    let mut host = Host::attach();
    host.settle();
    let blocks = 256u16; // 128 KiB: needs 32bits_bulk_length
    let pattern: Vec<u8> = (0..usize::from(blocks) * 512).map(|i| (i % 241) as u8).collect();
    assert_eq!(host.command(&write10(1000, blocks), 0, &pattern, false).csw.status, CswStatus::Passed);
    let read = host.command(&read10(1000, blocks), 128 * 1024, &[], true);
    assert_eq!(read.csw.status, CswStatus::Passed);
    assert_eq!(read.data.len(), pattern.len());
    assert!(read.data == pattern);
}

#[test]
fn reading_past_the_end_fails_with_check_condition() {
    let mut host = Host::attach();
    host.settle();
    let r = host.command(&read10(BLOCKS as u32, 1), 512, &[], false);
    assert_eq!(r.csw.status, CswStatus::Failed);
    // BOT pads a failed data-in stage to H with zeros (no stall; see vstick-bot).
    assert_eq!(r.data, vec![0; 512]);
    assert_eq!(r.csw.residue, 512);
    // The same again with the IN requests pipelined ahead of the CBW.
    let r = host.command(&read10(BLOCKS as u32, 1), 512, &[], true);
    assert_eq!(r.csw.status, CswStatus::Failed);
    let sense = host.command(&[0x03, 0, 0, 0, 18, 0], 18, &[], false);
    assert_eq!(sense.data[2] & 0x0f, 0x05, "ILLEGAL REQUEST");
    assert_eq!(sense.data[12], 0x21, "LBA out of range");
}

#[test]
fn usb_reset_raises_unit_attention_and_keeps_serving() {
    let mut host = Host::attach();
    host.settle();
    host.h.send(&Packet::Reset);
    assert!(host.h.recv().is_empty(), "reset has no reply");
    let tur = host.command(&[0x00, 0, 0, 0, 0, 0], 0, &[], false);
    assert_eq!(tur.csw.status, CswStatus::Failed, "UNIT ATTENTION after reset");
    let sense = host.command(&[0x03, 0, 0, 0, 18, 0], 18, &[], false);
    assert_eq!((sense.data[2] & 0x0f, sense.data[12]), (0x06, 0x29));
    host.settle();
}

/// A write's data frame, fed in two pieces so that it is stashed and
/// completed in the session's own buffer (as the TCP edge does).
fn lend_write_data(host: &mut Host, data: &[u8]) {
    use vstick_usbredir::proto::BulkHeader;
    let hdr = BulkHeader { endpoint: 0x02, status: Status::SUCCESS, length: data.len() as u32, stream_id: 0 };
    let id = host.h.next_id();
    let bytes = host.h.encode(id, &Packet::Bulk(hdr, data));
    host.h.session.receive(&mut host.h.dev, &bytes[..100]).unwrap();
    host.h.session.receive(&mut host.h.dev, &bytes[100..]).unwrap();
    let r = host.h.recv();
    assert_eq!(
        (r[0].id, bulk(&r[0]).0.status, bulk(&r[0]).0.length as usize),
        (id, Status::SUCCESS, data.len())
    );
}

#[test]
fn a_large_write_reaches_the_medium_after_its_completion_is_sent_and_before_anything_else() {
    let mut host = Host::attach();
    host.settle();
    let pattern: Vec<u8> = (0..128 * 512u32).map(|i| (i * 7 + 3) as u8).collect();

    // The edge's order: completion sent, then run_deferred, then the CSW.
    host.tag += 1;
    let cbw = Cbw::new(host.tag, 65536, false, 0, &write10(10, 128)).unwrap().to_bytes();
    host.h.bulk_out(0x02, &cbw);
    assert_eq!(bulk(&host.h.recv()[0]).0.status, Status::SUCCESS);
    lend_write_data(&mut host, &pattern);
    assert!(host.h.session.has_lent_buffer(), "the frame buffer went to the device");
    assert!(host.h.dev.has_deferred(), "the medium is written after the completion");
    let buf = host.h.dev.run_deferred();
    assert!(buf.as_ref().is_some_and(|b| b.len() >= pattern.len()), "the buffer comes back for reuse");
    host.h.session.reclaim(buf);
    assert!(!host.h.session.has_lent_buffer() && !host.h.dev.has_deferred());
    host.h.bulk_in(0x81, CSW_LEN as u32);
    let csw = Csw::parse(bulk(&host.h.recv()[0]).1).unwrap();
    assert_eq!((csw.tag, csw.status, csw.residue), (host.tag, CswStatus::Passed, 0));
    assert_eq!(host.command(&read10(10, 128), 65536, &[], false).data, pattern);

    // An edge that asks for the CSW first still gets the write's outcome:
    // the device writes before it answers anything.
    let pattern2: Vec<u8> = pattern.iter().map(|b| b ^ 0x5a).collect();
    host.tag += 1;
    let cbw = Cbw::new(host.tag, 65536, false, 0, &write10(10, 128)).unwrap().to_bytes();
    host.h.bulk_out(0x02, &cbw);
    host.h.recv();
    lend_write_data(&mut host, &pattern2);
    assert!(host.h.dev.has_deferred());
    host.h.bulk_in(0x81, CSW_LEN as u32);
    let csw = Csw::parse(bulk(&host.h.recv()[0]).1).unwrap();
    assert_eq!((csw.tag, csw.status), (host.tag, CswStatus::Passed));
    assert!(!host.h.dev.has_deferred());
    assert_eq!(host.command(&read10(10, 128), 65536, &[], false).data, pattern2);

    // Whoever reaches the medium another way (the control socket's eject,
    // the flush at exit) goes through target_mut, which writes first.
    let write = write10(200, 128);
    host.tag += 1;
    let cbw = Cbw::new(host.tag, 65536, false, 0, &write).unwrap().to_bytes();
    host.h.bulk_out(0x02, &cbw);
    host.h.recv();
    lend_write_data(&mut host, &pattern);
    let _ = host.h.dev.target_mut();
    assert!(!host.h.dev.has_deferred());
    host.h.session.reclaim(host.h.dev.run_deferred());
    host.h.bulk_in(0x81, CSW_LEN as u32);
    assert_eq!(Csw::parse(bulk(&host.h.recv()[0]).1).unwrap().status, CswStatus::Passed);
    assert_eq!(host.command(&read10(200, 128), 65536, &[], false).data, pattern);
}
