//! USB/IP: every decoder on raw bytes (total; what decodes re-encodes to
//! the same bytes), and a server session over the real device fed the same
//! bytes split in arbitrary places, with the device free or already taken
//! by another connection.
//!
//! Input: byte 0 & 7 = number of chunk-pattern bytes that follow, bit 3 =
//! the device is already imported elsewhere, then the client's byte stream
//! (seeds start with OP_REQ_DEVLIST or OP_REQ_IMPORT).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vstick_usbip::codec::{ClientMessage, Decoded, MAX_TRANSFER_LENGTH, OpReply, OpRequest, ServerMessage};
use vstick_transport::Connection;
use vstick_usbip::{ExportInfo, MAX_PARKED_URBS, MAX_PENDING_OUTPUT, Usbip};

fn check_codec(stream: &[u8]) {
    if let Ok(Decoded::Done { message: msg, consumed: used }) = OpRequest::decode(stream) {
        let mut again = Vec::new();
        msg.encode(&mut again);
        // The status field of a request is ignored, so compare the rest.
        assert_eq!(again.len(), used);
        assert_eq!(again.get(..4), stream.get(..4));
        assert_eq!(again.get(8..), stream.get(8..used));
    }
    if let Ok(Decoded::Done { message: msg, consumed: used }) = ClientMessage::decode(stream) {
        let mut again = Vec::new();
        msg.encode(&mut again);
        assert_eq!(again.len(), used, "{msg:?}");
        if let Ok(Decoded::Done { message: back, consumed: n }) = ClientMessage::decode(&again) {
            assert_eq!(n, used);
            assert_eq!(back, msg);
        } else {
            panic!("our encoding of {msg:?} does not decode");
        }
    }
    let _ = OpReply::decode(stream);
    let _ = ServerMessage::decode(stream, |seq| seq & 1 == 1);
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else { return };
    let (pattern, stream) = rest.split_at(usize::from(head & 7).min(rest.len()));
    check_codec(stream);

    let (mut dev, cd) = vstick_fuzz::device();
    let export = ExportInfo::new("1-1").expect("valid bus id");
    // `true` = another connection holds the device already.
    let session = Usbip::session(export, head & 8 != 0);
    // The transport core's driver, as every edge runs it.
    let mut conn = Connection::new(session, &mut dev);
    for chunk in vstick_fuzz::chunks(stream, pattern) {
        let result = conn.receive(chunk);
        assert!(conn.engine().held_in_requests() <= MAX_PARKED_URBS);
        while let Ok(Some(batch)) = conn.poll_transmit() {
            assert!(
                batch.len() <= MAX_PENDING_OUTPUT + MAX_TRANSFER_LENGTH as usize + 4096,
                "{} bytes queued",
                batch.len()
            );
            if vstick_fuzz::tracing_on() {
                eprintln!(
                    "received {} bytes: {result:?}; sent {} bytes: {:02x?}",
                    chunk.len(),
                    batch.len(),
                    &batch[..batch.len().min(64)]
                );
            }
        }
        if result.is_err() {
            assert!(conn.is_closing());
            break;
        }
        if conn.is_closing() {
            break;
        }
    }
    drop(conn);
    vstick_fuzz::assert_cd_intact(&cd);
});
