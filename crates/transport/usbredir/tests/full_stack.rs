//! The session over the real device stack — `MassStorageDevice` → BOT →
//! SCSI `Target` → `MemoryImage` — driven the way QEMU's usb-redir drives
//! it for a Linux guest's usb-storage driver.

mod support;

use support::{HostSim, QEMU_CAPS, bulk, control};
use vstick_bot::{CSW_LEN, Cbw, Csw, CswStatus};
use vstick_test_support::{BotHost, DISK_BLOCKS as BLOCKS, Data, TEST_UNIT_READY, device, read10, write10};
use vstick_usb::{MassStorageDevice, PID_CODES_TEST_PRODUCT_ID, PID_CODES_VENDOR_ID};
use vstick_usbredir::proto::{EndpointType, Packet, Speed, Status};

/// A Linux guest's usb-storage behind QEMU: BOT commands as usbredir packets.
type Host = BotHost<HostSim<MassStorageDevice>>;

/// Connects and checks the device's announcement.
fn attach() -> Host {
    let mut h = HostSim::new(device(), QEMU_CAPS);
    let announce = h.handshake();
    let Packet::DeviceConnect(dc) = announce[2].packet else { panic!("device_connect last: {announce:?}") };
    assert_eq!(dc.speed, Speed::HIGH);
    assert_eq!((dc.vendor_id, dc.product_id), (PID_CODES_VENDOR_ID, PID_CODES_TEST_PRODUCT_ID));
    let Packet::InterfaceInfo(ifs) = &announce[0].packet else { panic!() };
    assert_eq!(
        (ifs.interface_count, ifs.interface_class[0], ifs.interface_subclass[0], ifs.interface_protocol[0]),
        (1, 8, 6, 0x50)
    );
    let Packet::EpInfo(eps) = &announce[1].packet else { panic!() };
    assert_eq!((eps.ep_type[17], eps.max_packet_size[17]), (EndpointType::BULK, 512), "0x81");
    assert_eq!((eps.ep_type[2], eps.max_packet_size[2]), (EndpointType::BULK, 512), "0x02");
    BotHost::new(h)
}

/// Data out split the way QEMU splits large transfers.
fn write(data: &[u8]) -> Data<'_> {
    Data::Out { data, chunk: 4096 }
}

#[test]
fn enumeration_requests() {
    let mut host = attach();
    let h = &mut host.pipes;
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
    let mut host = attach();

    let (inquiry, csw) = host.command(0, &[0x12, 0, 0, 0, 36, 0], Data::read(36));
    assert_eq!(csw.status, CswStatus::Passed);
    assert_eq!(csw.residue, 0);
    assert_eq!(inquiry.len(), 36);
    assert_eq!(inquiry[0] & 0x1f, 0x00, "direct-access block device");
    assert_eq!(inquiry[1] & 0x80, 0x80, "removable");

    host.ready(0);

    let (capacity, csw) = host.command(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], Data::read(8));
    assert_eq!(csw.status, CswStatus::Passed);
    assert_eq!(u32::from_be_bytes(capacity[0..4].try_into().unwrap()), BLOCKS as u32 - 1);
    assert_eq!(u32::from_be_bytes(capacity[4..8].try_into().unwrap()), 512);

    let pattern: Vec<u8> = (0..4 * 512u32).map(|i| (i * 13 + 7) as u8).collect();
    let (_, csw) = host.command(0, &write10(5, 4), write(&pattern));
    assert_eq!(csw.status, CswStatus::Passed);
    assert_eq!(csw.residue, 0);

    let (read, csw) = host.command_pipelined(0, &read10(5, 4), 2048);
    assert_eq!(csw.status, CswStatus::Passed);
    assert_eq!(read, pattern);

    // Untouched blocks read as zeros.
    let (zeros, _) = host.command(0, &read10(100, 1), Data::read(512));
    assert_eq!(zeros, vec![0; 512]);
}

#[test]
fn transfers_over_64_kib_use_length_high() {
    let mut host = attach();
    host.ready(0);
    let blocks = 256u16; // 128 KiB: needs 32bits_bulk_length
    let pattern: Vec<u8> = (0..usize::from(blocks) * 512).map(|i| (i % 241) as u8).collect();
    assert_eq!(host.command(0, &write10(1000, blocks), write(&pattern)).1.status, CswStatus::Passed);
    let (read, csw) = host.command_pipelined(0, &read10(1000, blocks), 128 * 1024);
    assert_eq!(csw.status, CswStatus::Passed);
    assert_eq!(read.len(), pattern.len());
    assert!(read == pattern);
}

#[test]
fn reading_past_the_end_fails_with_check_condition() {
    let mut host = attach();
    host.ready(0);
    let (data, csw) = host.command(0, &read10(BLOCKS as u32, 1), Data::read(512));
    assert_eq!(csw.status, CswStatus::Failed);
    // BOT pads a failed data-in stage to H with zeros (no stall; see vstick-bot).
    assert_eq!(data, vec![0; 512]);
    assert_eq!(csw.residue, 512);
    // The same again with the IN requests pipelined ahead of the CBW.
    let (_, csw) = host.command_pipelined(0, &read10(BLOCKS as u32, 1), 512);
    assert_eq!(csw.status, CswStatus::Failed);
    assert_eq!(host.sense(0), (0x05, 0x21, 0x00), "ILLEGAL REQUEST, LBA out of range");
}

#[test]
fn usb_reset_raises_unit_attention_and_keeps_serving() {
    let mut host = attach();
    host.ready(0);
    host.pipes.send(&Packet::Reset);
    assert!(host.pipes.recv().is_empty(), "reset has no reply");
    let (_, csw) = host.command(0, &TEST_UNIT_READY, Data::None);
    assert_eq!(csw.status, CswStatus::Failed, "UNIT ATTENTION after reset");
    assert_eq!(host.sense(0), (0x06, 0x29, 0x00));
    host.ready(0);
}

/// A write's data frame, fed in two pieces so that it is stashed and
/// completed in the session's own buffer (as the TCP edge does).
fn lend_write_data(host: &mut Host, data: &[u8]) {
    use vstick_usbredir::proto::BulkHeader;
    let hdr = BulkHeader { endpoint: 0x02, status: Status::SUCCESS, length: data.len() as u32, stream_id: 0 };
    let id = host.pipes.next_id();
    let bytes = host.pipes.encode(id, &Packet::Bulk(hdr, data));
    host.pipes.session.receive(&mut host.pipes.dev, &bytes[..100]).unwrap();
    host.pipes.session.receive(&mut host.pipes.dev, &bytes[100..]).unwrap();
    let r = host.pipes.recv();
    assert_eq!(
        (r[0].id, bulk(&r[0]).0.status, bulk(&r[0]).0.length as usize),
        (id, Status::SUCCESS, data.len())
    );
}

#[test]
fn a_large_write_reaches_the_medium_after_its_completion_is_sent_and_before_anything_else() {
    let mut host = attach();
    host.ready(0);
    let pattern: Vec<u8> = (0..128 * 512u32).map(|i| (i * 7 + 3) as u8).collect();

    // The edge's order: completion sent, then run_deferred, then the CSW.
    host.tag += 1;
    let cbw = Cbw::new(host.tag, 65536, false, 0, &write10(10, 128)).unwrap().to_bytes();
    host.pipes.bulk_out(0x02, &cbw);
    assert_eq!(bulk(&host.pipes.recv()[0]).0.status, Status::SUCCESS);
    lend_write_data(&mut host, &pattern);
    assert!(host.pipes.session.has_lent_buffer(), "the frame buffer went to the device");
    assert!(host.pipes.dev.has_deferred(), "the medium is written after the completion");
    let buf = host.pipes.dev.run_deferred();
    assert!(buf.as_ref().is_some_and(|b| b.len() >= pattern.len()), "the buffer comes back for reuse");
    host.pipes.session.reclaim(buf);
    assert!(!host.pipes.session.has_lent_buffer() && !host.pipes.dev.has_deferred());
    host.pipes.bulk_in(0x81, CSW_LEN as u32);
    let csw = Csw::parse(bulk(&host.pipes.recv()[0]).1).unwrap();
    assert_eq!((csw.tag, csw.status, csw.residue), (host.tag, CswStatus::Passed, 0));
    assert_eq!(host.command(0, &read10(10, 128), Data::read(65536)).0, pattern);

    // An edge that asks for the CSW first still gets the write's outcome:
    // the device writes before it answers anything.
    let pattern2: Vec<u8> = pattern.iter().map(|b| b ^ 0x5a).collect();
    host.tag += 1;
    let cbw = Cbw::new(host.tag, 65536, false, 0, &write10(10, 128)).unwrap().to_bytes();
    host.pipes.bulk_out(0x02, &cbw);
    host.pipes.recv();
    lend_write_data(&mut host, &pattern2);
    assert!(host.pipes.dev.has_deferred());
    host.pipes.bulk_in(0x81, CSW_LEN as u32);
    let csw = Csw::parse(bulk(&host.pipes.recv()[0]).1).unwrap();
    assert_eq!((csw.tag, csw.status), (host.tag, CswStatus::Passed));
    assert!(!host.pipes.dev.has_deferred());
    assert_eq!(host.command(0, &read10(10, 128), Data::read(65536)).0, pattern2);

    // Whoever reaches the medium another way (the control socket's eject,
    // the flush at exit) goes through target_mut, which writes first.
    let write = write10(200, 128);
    host.tag += 1;
    let cbw = Cbw::new(host.tag, 65536, false, 0, &write).unwrap().to_bytes();
    host.pipes.bulk_out(0x02, &cbw);
    host.pipes.recv();
    lend_write_data(&mut host, &pattern);
    let _ = host.pipes.dev.target_mut();
    assert!(!host.pipes.dev.has_deferred());
    host.pipes.session.reclaim(host.pipes.dev.run_deferred());
    host.pipes.bulk_in(0x81, CSW_LEN as u32);
    assert_eq!(Csw::parse(bulk(&host.pipes.recv()[0]).1).unwrap().status, CswStatus::Passed);
    assert_eq!(host.command(0, &read10(200, 128), Data::read(65536)).0, pattern);
}
