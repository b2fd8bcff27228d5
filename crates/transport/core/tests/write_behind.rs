//! Write-behind over USB/IP: a large bulk OUT URB, read in place as the edge
//! does, is completed before the medium is written; the write reaches the
//! medium in `run_deferred`, and the CSW still reports it.

mod common;

use common::usbip::{cmd, imported, replies, submit};
use vstick_bot::{Cbw, Csw, CswStatus};
use vstick_test_support::{device, read10, write10};
use vstick_usbip::Session;
use vstick_usbip::codec::Direction;

/// The single RET_SUBMIT in the session's output: (seqnum, status, actual, data).
fn one_reply(session: &mut Session, is_in: bool) -> (u32, i32, u32, Vec<u8>) {
    let mut all = replies(&session.take_output(), |_| is_in);
    assert_eq!(all.len(), 1, "one reply");
    all.remove(0)
}

#[test]
fn a_large_usbip_write_completes_before_the_medium_is_written() {
    let mut dev = device();
    let mut session = imported(&mut dev);
    // The import reset the device: clear the unit attention first.
    let tur = Cbw::new(1, 0, false, 0, &[0; 6]).unwrap();
    session.receive(&mut dev, &submit(1, Direction::OUT, 2, 31, &tur.to_bytes())).unwrap();
    session.receive(&mut dev, &submit(2, Direction::IN, 1, 13, &[])).unwrap();
    let _ = session.take_output();
    session.run_deferred(&mut dev).unwrap();

    // WRITE(10) of 128 blocks: the CBW, then 64 KiB of data in one URB.
    let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 253) as u8).collect();
    let cbw = Cbw::new(7, data.len() as u32, false, 0, &write10(8, 128)).unwrap();
    session.receive(&mut dev, &submit(3, Direction::OUT, 2, 31, &cbw.to_bytes())).unwrap();
    assert_eq!(one_reply(&mut session, false).1, 0);

    // The header and a little data arrive, then the rest is read in place.
    let mut urb = cmd(4, Direction::OUT, 2, data.len() as u32).to_bytes().to_vec();
    urb.extend_from_slice(&data[..1000]);
    session.receive(&mut dev, &urb).unwrap();
    let room = session.receive_space();
    assert_eq!(room.len(), data.len() - 1000, "the rest of the URB is read in place");
    room.copy_from_slice(&data[1000..]);
    session.receive_in_place(&mut dev, data.len() - 1000).unwrap();

    // Completed, kept, not yet written.
    assert_eq!(one_reply(&mut session, false), (4, 0, data.len() as u32, Vec::new()));
    assert!(session.has_lent_buffer(), "the URB's buffer went to the device");
    assert!(dev.has_deferred(), "the medium is written after the completion is sent");
    session.run_deferred(&mut dev).unwrap();
    assert!(!session.has_lent_buffer() && !dev.has_deferred());

    // The CSW reports the write; the data reads back.
    session.receive(&mut dev, &submit(5, Direction::IN, 1, 13, &[])).unwrap();
    let (_, status, _, csw) = one_reply(&mut session, true);
    assert_eq!(status, 0);
    let csw = Csw::parse(&csw).unwrap();
    assert_eq!((csw.tag, csw.residue, csw.status), (7, 0, CswStatus::Passed));
    let cbw = Cbw::new(8, data.len() as u32, true, 0, &read10(8, 128)).unwrap();
    session.receive(&mut dev, &submit(6, Direction::OUT, 2, 31, &cbw.to_bytes())).unwrap();
    let _ = session.take_output();
    session.receive(&mut dev, &submit(9, Direction::IN, 1, data.len() as u32, &[])).unwrap();
    let (_, status, actual, read) = one_reply(&mut session, true);
    assert_eq!((status, actual as usize), (0, data.len()));
    assert!(read == data, "the written data reads back");
}

/// The CSW's IN request is already held (QEMU and vhci pipeline it) when a
/// large write's last data frame arrives: the write must still wait until the
/// batch with the data's completion was written, and the held request is
/// answered after the write, in the same `poll_transmit` round.
#[test]
fn a_held_csw_request_does_not_pull_the_write_ahead_of_its_completion() {
    use vstick_usbredir::codec;
    use vstick_usbredir::proto::{Packet, Status};

    let mut dev = device();
    let (session, fmt) = common::redir::connected(&mut dev);
    let mut conn = vstick_transport::Connection::new(session, &mut dev);
    let exchange = |conn: &mut vstick_usbredir::Connection<&mut _>, bytes: &[u8]| {
        conn.receive(bytes).unwrap();
        while conn.poll_transmit().unwrap().is_some() {}
    };
    // The reset's unit attention first.
    let tur = Cbw::new(1, 0, false, 0, &[0; 6]).unwrap();
    exchange(&mut conn, &common::redir::bulk(fmt, 1, 0x02, 31, &tur.to_bytes()));
    exchange(&mut conn, &common::redir::bulk(fmt, 2, 0x81, 13, &[]));

    let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let cbw = Cbw::new(9, data.len() as u32, false, 0, &write10(16, 128)).unwrap();
    exchange(&mut conn, &common::redir::bulk(fmt, 3, 0x02, 31, &cbw.to_bytes()));
    // The CSW's request, held before the data arrives.
    conn.receive(&common::redir::bulk(fmt, 4, 0x81, 13, &[])).unwrap();
    assert!(conn.poll_transmit().unwrap().is_none(), "nothing to say yet");
    // The data frame in two pieces, the second read in place, as the edge does.
    let frame = common::redir::bulk(fmt, 5, 0x02, data.len() as u32, &data);
    conn.receive(&frame[..100]).unwrap();
    let room = conn.receive_space();
    room.copy_from_slice(&frame[100..]);
    conn.receive_in_place(frame.len() - 100).unwrap();
    assert!(conn.device().has_deferred(), "written before its completion went out");

    // First batch: the data's completion only.
    let batch = conn.poll_transmit().unwrap().expect("the completion").to_vec();
    let (reply, used) = codec::decode(fmt, &batch).unwrap().unwrap();
    assert_eq!((reply.id, used), (5, batch.len()), "the completion, and nothing else");
    assert!(conn.device().has_deferred(), "the write waits for the batch to be written");
    // Next: the write happens, then the held request gets the CSW.
    let batch = conn.poll_transmit().unwrap().expect("the CSW").to_vec();
    assert!(!conn.device().has_deferred());
    let (reply, _) = codec::decode(fmt, &batch).unwrap().unwrap();
    let Packet::Bulk(hdr, csw) = reply.packet else { panic!("not a bulk reply: {:?}", reply.packet) };
    assert_eq!((reply.id, hdr.status), (4, Status::SUCCESS));
    let csw = Csw::parse(csw).unwrap();
    assert_eq!((csw.tag, csw.status), (9, CswStatus::Passed));
    assert!(conn.poll_transmit().unwrap().is_none());
}
