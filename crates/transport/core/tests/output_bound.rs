//! A peer cannot make a session queue unbounded output: held bulk IN
//! requests are answered in batches of about `MAX_PENDING_OUTPUT`, and
//! `service` delivers the rest once the edge has sent a batch. The bound is
//! the core's, so it holds for both wire formats.
//!
//! Regression test for a memory blow-up found in the security review: a few
//! hundred bytes of input (large IN requests and one INQUIRY CBW whose
//! dCBWDataTransferLength is huge, padded with zeros by BOT) produced
//! gigabytes of output in a single `receive`.

mod common;

use common::{inquiry_cbw, send_all_batches};
use vstick_test_support::device;
use vstick_transport::MAX_PENDING_OUTPUT;
use vstick_usbip::codec::{Direction, URB_HEADER_LEN};

/// Six 16 MiB IN requests, then a CBW announcing 80 MiB of data-in: five
/// full replies of padding and the CSW.
const REQUEST: u32 = 16 << 20;

#[test]
fn usbredir_held_in_requests_are_answered_in_bounded_batches() {
    let mut dev = device();
    let (mut session, fmt) = common::redir::connected(&mut dev);
    let mut input = Vec::new();
    for id in 0..6 {
        input.extend(common::redir::bulk(fmt, 100 + id, 0x81, REQUEST, &[]));
    }
    input.extend(common::redir::bulk(fmt, 1, 0x02, 31, &inquiry_cbw(5 * REQUEST)));
    assert!(input.len() < 1024);
    session.receive(&mut dev, &input).unwrap();

    let limit = MAX_PENDING_OUTPUT + REQUEST as usize + 64;
    let (count, bytes, batches) =
        send_all_batches(&mut session, &mut dev, limit, |out| common::redir::replies(fmt, out));
    assert!(batches > 1, "the replies must come in several batches");
    assert_eq!(count, 6, "every held request is answered");
    assert_eq!(bytes, 5 * REQUEST as usize + 13, "80 MiB of data and the 13-byte CSW");
    assert_eq!(session.held_in_requests(), 0);
}

#[test]
fn usbip_parked_in_urbs_are_completed_in_bounded_batches() {
    let mut dev = device();
    let mut session = common::usbip::imported(&mut dev);
    let mut input = Vec::new();
    for seq in 100..106 {
        input.extend(common::usbip::submit(seq, Direction::IN, 1, REQUEST, &[]));
    }
    input.extend(common::usbip::submit(1, Direction::OUT, 2, 31, &inquiry_cbw(5 * REQUEST)));
    assert!(input.len() < 1024);
    session.receive(&mut dev, &input).unwrap();

    let limit = MAX_PENDING_OUTPUT + REQUEST as usize + 2 * URB_HEADER_LEN;
    // Sequence numbers 100.. are the IN URBs.
    let (count, bytes, batches) = send_all_batches(&mut session, &mut dev, limit, |out| {
        let ins: Vec<_> =
            common::usbip::replies(out, |seq| seq >= 100).into_iter().filter(|r| r.0 >= 100).collect();
        (ins.len(), ins.iter().map(|r| r.3.len()).sum())
    });
    assert!(batches > 1, "the completions must come in several batches");
    assert_eq!(count, 6, "every parked URB completes");
    assert_eq!(bytes, 5 * REQUEST as usize + 13, "80 MiB of data and the 13-byte CSW");
    assert_eq!(session.held_in_requests(), 0);
}
