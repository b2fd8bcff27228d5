//! A usb-guest cannot make the session queue unbounded output: held bulk IN
//! requests are answered in batches of about `MAX_PENDING_OUTPUT`, and
//! `service` delivers the rest once the edge has sent a batch.
//!
//! Regression test for a memory blow-up found in the security review:
//! ~600 bytes of input (twenty 64 MiB IN requests and one INQUIRY CBW whose
//! dCBWDataTransferLength is 4 GiB - 1, padded with zeros by BOT) produced
//! 1.28 GiB of output in a single `receive`.

use vstick_test_support::device;
use vstick_usbredir::MAX_PENDING_OUTPUT;
use vstick_usbredir::codec;
use vstick_usbredir::proto::{BulkHeader, Packet, Status, WireFormat, version_field};
use vstick_usbredir::{OUR_CAPS, Redir};

fn bulk(fmt: WireFormat, id: u64, endpoint: u8, length: u32, data: &[u8], out: &mut Vec<u8>) {
    let hdr = BulkHeader { endpoint, status: Status::SUCCESS, length, stream_id: 0 };
    codec::encode(fmt, id, &Packet::Bulk(hdr, data), out).unwrap();
}

/// INQUIRY (exempt from the power-on unit attention) with a huge data-in length.
fn inquiry_cbw(host_len: u32) -> Vec<u8> {
    let mut cbw = b"USBC".to_vec();
    cbw.extend_from_slice(&7u32.to_le_bytes()); // tag
    cbw.extend_from_slice(&host_len.to_le_bytes()); // dCBWDataTransferLength
    cbw.extend_from_slice(&[0x80, 0, 6]); // data-in, LUN 0, 6-byte CDB
    cbw.extend_from_slice(&[0x12, 0, 0, 0, 36, 0]); // INQUIRY, 36 bytes
    cbw.resize(31, 0);
    cbw
}

/// Sums the data of the bulk replies in `out`; returns (replies, data bytes).
fn replies(fmt: WireFormat, mut out: &[u8]) -> (usize, usize) {
    let (mut n, mut bytes) = (0, 0);
    while !out.is_empty() {
        let (frame, used) = codec::decode(fmt, out).unwrap().expect("whole packets only");
        if let Packet::Bulk(hdr, data) = frame.packet
            && hdr.endpoint == 0x81
        {
            n += 1;
            bytes += data.len();
        }
        out = &out[used..];
    }
    (n, bytes)
}

#[test]
fn held_in_requests_are_answered_in_bounded_batches() {
    let mut dev = device();
    let mut session = Redir::session();
    let _ = session.take_output();
    let mut input = Vec::new();
    let hello = Packet::Hello { version: version_field("hostile"), caps: vec![OUR_CAPS.0] };
    codec::encode(WireFormat::INITIAL, 0, &hello, &mut input).unwrap();
    session.receive(&mut dev, &input).unwrap();
    let fmt = session.protocol().wire_format();
    let _ = session.take_output();

    // Six 16 MiB IN requests, then a CBW announcing 80 MiB of data-in:
    // five full replies of padding and the CSW.
    const REQUEST: u32 = 16 << 20;
    let mut input = Vec::new();
    for id in 0..6 {
        bulk(fmt, 100 + id, 0x81, REQUEST, &[], &mut input);
    }
    bulk(fmt, 1, 0x02, 31, &inquiry_cbw(5 * REQUEST), &mut input);
    assert!(input.len() < 1024);
    session.receive(&mut dev, &input).unwrap();

    let limit = MAX_PENDING_OUTPUT + REQUEST as usize + 64;
    let (mut count, mut bytes) = (0, 0);
    let mut batches = 0;
    loop {
        let out = session.take_output();
        assert!(out.len() <= limit, "{} bytes queued at once (limit {limit})", out.len());
        if out.is_empty() {
            break;
        }
        let (n, b) = replies(fmt, &out);
        count += n;
        bytes += b;
        batches += 1;
        session.service(&mut dev).unwrap();
    }
    assert!(batches > 1, "the replies must come in several batches");
    assert_eq!(count, 6, "every held request is answered");
    assert_eq!(bytes, 5 * REQUEST as usize + 13, "80 MiB of data and the 13-byte CSW");
    assert_eq!(session.held_in_requests(), 0);
}
