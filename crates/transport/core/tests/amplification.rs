//! A held bulk IN request costs nothing per later packet, over both wire
//! formats: the reply buffer is sized by what the device has
//! (`UsbDevice::in_available`), not filled to the request's length on every
//! retry. And a large frame's header reserves no more than [`RECEIVE_ROOM`]
//! until its data arrives. Counts bytes, not time.

mod common;

use vstick_test_support::{CountingDevice, device};
use vstick_transport::RECEIVE_ROOM;
use vstick_usbip::codec::{CmdUnlink, Direction, UrbBasic};
use vstick_usbredir::proto::Packet;

const PACKETS: usize = 1000;

#[test]
fn a_held_64_mib_usbredir_request_costs_nothing_per_small_packet() {
    let mut dev = CountingDevice::new(device());
    let (mut session, fmt) = common::redir::connected(&mut dev);
    // A 64 MiB bulk IN with no command: the device has nothing to send.
    session.receive(&mut dev, &common::redir::bulk(fmt, 1, 0x81, 64 << 20, &[])).unwrap();
    assert_eq!(session.held_in_requests(), 1);
    let before = (dev.in_room, session.output_initialised());

    // A flood of 16-byte packets, each of which retries the held request.
    let ping = common::redir::frame(fmt, 2, &Packet::GetConfiguration);
    assert_eq!(ping.len(), 16);
    for _ in 0..PACKETS {
        session.receive(&mut dev, &ping).unwrap();
        let _ = session.take_output();
    }
    let room = dev.in_room - before.0;
    let zeroed = session.output_initialised().saturating_sub(before.1);
    println!("per 16-byte packet: {} bytes of reply room, {} bytes zeroed", room / PACKETS, zeroed / PACKETS);
    assert_eq!(room, 0, "reply room handed to the device for {PACKETS} packets");
    assert!(zeroed < 64 * 1024, "{zeroed} bytes of output zeroed for {PACKETS} packets");
    assert_eq!(session.held_in_requests(), 1, "the request is still held");
}

#[test]
fn a_held_16_mib_usbip_urb_costs_nothing_per_small_message() {
    let mut dev = CountingDevice::new(device());
    let mut session = common::usbip::imported(&mut dev);
    // A 16 MiB IN URB with no command: the device has nothing to send.
    session.receive(&mut dev, &common::usbip::submit(1, Direction::IN, 1, 16 << 20, &[])).unwrap();
    assert_eq!(session.held_in_requests(), 1);
    let before = (dev.in_room, session.output_initialised());

    // A flood of 48-byte messages (unlinks of URBs long gone).
    let basic = UrbBasic { seqnum: 2, devid: 0, direction: Direction::OUT, ep: 0 };
    let unlink = CmdUnlink { basic, unlink_seqnum: 99 }.to_bytes();
    for _ in 0..PACKETS {
        session.receive(&mut dev, &unlink).unwrap();
        let _ = session.take_output();
    }
    let room = dev.in_room - before.0;
    let zeroed = session.output_initialised().saturating_sub(before.1);
    println!(
        "per 48-byte message: {} bytes of reply room, {} bytes zeroed",
        room / PACKETS,
        zeroed / PACKETS
    );
    assert_eq!(room, 0, "reply room handed to the device for {PACKETS} messages");
    assert!(zeroed < 64 * 1024, "{zeroed} bytes of output zeroed for {PACKETS} messages");
    assert_eq!(session.held_in_requests(), 1, "the URB is still held");
}

#[test]
fn a_64_mib_frame_header_reserves_room_only_as_its_data_arrives() {
    let mut dev = device();
    let (mut session, fmt) = common::redir::connected(&mut dev);
    let data = vec![0x5a; 64 << 20];
    let frame = common::redir::bulk(fmt, 1, 0x02, data.len() as u32, &data);
    session.receive(&mut dev, &frame[..64]).unwrap();
    let room = session.receive_space().len();
    println!("room after a 64 MiB bulk header: {room} bytes");
    assert!(room <= RECEIVE_ROOM, "{room} bytes of room for 64 bytes received");
    // The rest, read in place as the edge does: the room follows the data.
    let mut at = 64;
    while at < frame.len() {
        let room = session.receive_space();
        assert!(!room.is_empty() && room.len() <= RECEIVE_ROOM);
        let n = room.len().min(frame.len() - at);
        room[..n].copy_from_slice(&frame[at..at + n]);
        session.receive_in_place(&mut dev, n).unwrap();
        at += n;
    }
    assert_eq!(session.buffered_input_len(), 0, "the frame was handled whole");
}
