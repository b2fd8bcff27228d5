//! `Session::receive_space` / `receive_in_place`: a transport reading the
//! rest of a large frame straight into the session's buffer gets exactly
//! what `receive` gives for the same bytes.

mod support;

use proptest::prelude::*;
use support::*;
use vstick_usbredir::proto::{BulkHeader, Packet, Status};

fn connected() -> HostSim<FakeDevice> {
    let mut h = HostSim::new(FakeDevice::new(), QEMU_CAPS);
    h.handshake();
    h
}

/// A CBW-sized OUT, an IN request, a 70 000-byte OUT (a write's data), a
/// second large OUT and a GET_CONFIGURATION, as one byte stream.
fn conversation(h: &HostSim<FakeDevice>) -> Vec<u8> {
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let big2: Vec<u8> = (0..40_000u32).map(|i| (i % 13) as u8).collect();
    let mut bytes = h.encode(1, &out(31, &[0x55; 31]));
    bytes.extend(h.encode(
        2,
        &Packet::Bulk(BulkHeader { endpoint: 0x81, status: Status::SUCCESS, length: 300, stream_id: 0 }, &[]),
    ));
    bytes.extend(h.encode(3, &out(70_000, &big)));
    bytes.extend(h.encode(4, &out(40_000, &big2)));
    bytes.extend(h.encode(5, &Packet::GetConfiguration));
    bytes
}

/// Feeds `bytes` in pieces of the given sizes the way a transport using
/// `receive_space` does: into the session's room when it offers one,
/// through `receive` otherwise. Returns the session's output.
fn feed_in_place(h: &mut HostSim<FakeDevice>, bytes: &[u8], pieces: &[usize]) -> Vec<u8> {
    let mut rest = bytes;
    let mut sizes = pieces.iter().copied().cycle();
    while !rest.is_empty() {
        let want = sizes.next().unwrap_or(1).max(1).min(rest.len());
        let room = h.session.receive_space();
        if room.is_empty() {
            let (now, later) = rest.split_at(want);
            h.session.receive(&mut h.dev, now).unwrap();
            rest = later;
        } else {
            let n = want.min(room.len());
            room[..n].copy_from_slice(&rest[..n]);
            h.session.receive_in_place(&mut h.dev, n).unwrap();
            rest = &rest[n..];
        }
    }
    h.session.take_output()
}

fn out(len: u32, data: &[u8]) -> Packet<'_> {
    Packet::Bulk(BulkHeader { endpoint: 0x02, status: Status::SUCCESS, length: len, stream_id: 0 }, data)
}

fn one_shot() -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut h = connected();
    h.dev.on_out.push_back(vec![0xab; 200]);
    let convo = conversation(&h);
    h.feed(&convo).unwrap();
    (h.session.take_output(), h.dev.outs.clone())
}

#[test]
fn in_place_reads_give_what_receive_gives() {
    let (expected, expected_outs) = one_shot();
    for pieces in [&[1usize][..], &[7, 4096, 3], &[20, 65_536], &[100_000], &[16, 1, 30_000, 5]] {
        let mut h = connected();
        h.dev.on_out.push_back(vec![0xab; 200]);
        let convo = conversation(&h);
        assert_eq!(feed_in_place(&mut h, &convo, pieces), expected, "pieces {pieces:?}");
        assert_eq!(h.dev.outs, expected_outs);
        assert_eq!(h.session.buffered_input_len(), 0);
    }
    assert_eq!(expected_outs.iter().map(Vec::len).collect::<Vec<_>>(), [31, 70_000, 40_000]);
}

#[test]
fn room_is_exactly_the_rest_of_the_frame() {
    let mut h = connected();
    let convo = conversation(&h);
    // Nothing held: no room.
    assert!(h.session.receive_space().is_empty());
    // Half a header: the length is unknown, still no room.
    h.session.receive(&mut h.dev, &convo[..8]).unwrap();
    assert!(h.session.receive_space().is_empty());
    assert_eq!(h.session.buffered_input_len(), 8);
    // The whole first frame (16 + 10 + 31 bytes) is 57 bytes long.
    h.session.receive(&mut h.dev, &convo[8..20]).unwrap();
    assert_eq!(h.session.receive_space().len(), 57 - 20);
    // Filling it completes the frame; the OUT is answered.
    let room = h.session.receive_space();
    room.copy_from_slice(&convo[20..57]);
    h.session.receive_in_place(&mut h.dev, 57 - 20).unwrap();
    assert_eq!(h.session.buffered_input_len(), 0);
    assert!(h.session.receive_space().is_empty());
    let r = h.recv();
    assert_eq!((r[0].id, bulk(&r[0]).0.length), (1, 31));
}

#[test]
fn a_failed_session_offers_no_room_and_refuses_bytes() {
    let mut h = connected();
    // A header announcing an unknown packet type fails the session.
    let mut bad = 9999u32.to_le_bytes().to_vec();
    bad.extend_from_slice(&[0; 12]);
    assert!(h.session.receive(&mut h.dev, &bad).is_err());
    assert!(h.session.receive_space().is_empty());
    assert!(h.session.receive_in_place(&mut h.dev, 0).is_err());
}

#[test]
fn overlong_report_is_cut_to_the_room() {
    let mut h = connected();
    let convo = conversation(&h);
    h.session.receive(&mut h.dev, &convo[..20]).unwrap();
    let room = h.session.receive_space();
    room.copy_from_slice(&convo[20..57]);
    // The caller claims more than it was lent: only the room counts.
    h.session.receive_in_place(&mut h.dev, 1_000).unwrap();
    assert_eq!(h.session.buffered_input_len(), 0);
    h.session.receive(&mut h.dev, &convo[57..]).unwrap();
    assert_eq!(h.dev.outs.len(), 3);
}

proptest! {
    #[test]
    fn any_split_matches_receive(pieces in prop::collection::vec(1usize..80_000, 1..12)) {
        let (expected, expected_outs) = one_shot();
        let mut h = connected();
        h.dev.on_out.push_back(vec![0xab; 200]);
        let convo = conversation(&h);
        prop_assert_eq!(feed_in_place(&mut h, &convo, &pieces), expected);
        prop_assert_eq!(&h.dev.outs, &expected_outs);
    }
}
