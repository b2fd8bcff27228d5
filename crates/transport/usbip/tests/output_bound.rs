//! A client cannot make the session queue unbounded output: parked IN URBs
//! are completed in batches of about `MAX_PENDING_OUTPUT`, and `service`
//! continues once the edge has sent a batch.
//!
//! Regression test for a memory blow-up found in the security review: a few
//! hundred bytes (parked 16 MiB IN URBs and one INQUIRY CBW whose
//! dCBWDataTransferLength is 4 GiB - 1, padded with zeros by BOT) queued
//! gigabytes of RET_SUBMIT data in a single `receive`.

use vstick_test_support::device;
use vstick_usbip::MAX_PENDING_OUTPUT;
use vstick_usbip::codec::{
    BusId, ClientMessage, CmdSubmit, Decoded, Direction, OpRequest, ServerMessage, URB_HEADER_LEN, UrbBasic,
};
use vstick_usbip::{ExportInfo, Usbip};

fn submit(seqnum: u32, direction: Direction, ep: u32, length: u32, data: &[u8], out: &mut Vec<u8>) {
    let cmd = CmdSubmit {
        basic: UrbBasic { seqnum, devid: (1 << 16) | 2, direction, ep },
        transfer_flags: 0,
        transfer_buffer_length: length,
        start_frame: 0,
        number_of_packets: 0,
        interval: 0,
        setup: [0; 8],
    };
    ClientMessage::Submit { cmd, data }.encode(out);
}

/// INQUIRY (exempt from the power-on unit attention) with a huge data-in length.
fn inquiry_cbw(host_len: u32) -> Vec<u8> {
    let mut cbw = b"USBC".to_vec();
    cbw.extend_from_slice(&7u32.to_le_bytes());
    cbw.extend_from_slice(&host_len.to_le_bytes());
    cbw.extend_from_slice(&[0x80, 0, 6, 0x12, 0, 0, 0, 36, 0]);
    cbw.resize(31, 0);
    cbw
}

/// (IN replies, their data bytes) in a run of server messages.
fn replies(mut out: &[u8]) -> (usize, usize) {
    let (mut n, mut bytes) = (0, 0);
    while !out.is_empty() {
        // Sequence numbers 100.. are the IN URBs.
        match ServerMessage::decode(out, |seq| seq >= 100).unwrap() {
            Decoded::Done { message, consumed } => {
                if let ServerMessage::Submit { ret, data } = message
                    && ret.basic.seqnum >= 100
                {
                    n += 1;
                    bytes += data.len();
                }
                out = &out[consumed..];
            }
            Decoded::NeedMore => panic!("a partial message in the output"),
        }
    }
    (n, bytes)
}

#[test]
fn parked_in_urbs_are_completed_in_bounded_batches() {
    let mut dev = device();
    let mut session = Usbip::session(ExportInfo::new("1-1").unwrap(), false);
    let mut input = Vec::new();
    OpRequest::Import { busid: BusId::new("1-1").unwrap() }.encode(&mut input);
    session.receive(&mut dev, &input).unwrap();
    let _ = session.take_output();

    // Six 16 MiB IN URBs, then a CBW announcing 80 MiB of data-in: five
    // full completions of padding and the CSW.
    const URB: u32 = 16 << 20;
    let mut input = Vec::new();
    for seq in 100..106 {
        submit(seq, Direction::IN, 1, URB, &[], &mut input);
    }
    submit(1, Direction::OUT, 2, 31, &inquiry_cbw(5 * URB), &mut input);
    assert!(input.len() < 1024);
    session.receive(&mut dev, &input).unwrap();

    let limit = MAX_PENDING_OUTPUT + URB as usize + 2 * URB_HEADER_LEN;
    let (mut count, mut bytes, mut batches) = (0, 0, 0);
    loop {
        let out = session.take_output();
        assert!(out.len() <= limit, "{} bytes queued at once (limit {limit})", out.len());
        if out.is_empty() {
            break;
        }
        let (n, b) = replies(&out);
        count += n;
        bytes += b;
        batches += 1;
        assert!(session.wants_service() || session.held_in_requests() == 0);
        session.service(&mut dev).unwrap();
    }
    assert!(batches > 1, "the completions must come in several batches");
    assert_eq!(count, 6, "every parked URB completes");
    assert_eq!(bytes, 5 * URB as usize + 13, "80 MiB of data and the 13-byte CSW");
    assert_eq!(session.held_in_requests(), 0);
}
