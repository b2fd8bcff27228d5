//! usbredir: the codec on raw bytes under every wire format (total decode;
//! what decodes re-encodes to bytes that decode to the same encoding), and
//! a session over the real device fed the same bytes split in arbitrary
//! places. Everything the session sends must itself be well-formed usbredir.
//!
//! Input: byte 0 & 7 = number of chunk-pattern bytes that follow, then the
//! byte stream a usb-guest would send (seeds start with a hello).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vstick_usbredir::codec::{self, MAX_PACKET_LEN};
use vstick_usbredir::proto::WireFormat;
use vstick_usbredir::{MAX_BULK_LENGTH, MAX_PENDING_OUTPUT};

fn format(bits: u8) -> WireFormat {
    WireFormat {
        ids_64bit: bits & 1 != 0,
        connect_device_version: bits & 2 != 0,
        ep_info_max_packet_size: bits & 4 != 0 || bits & 8 != 0,
        bulk_streams: bits & 8 != 0,
        bulk_length_32bit: bits & 16 != 0,
    }
}

fn check_codec(stream: &[u8]) {
    for bits in 0..32u8 {
        let fmt = format(bits);
        let Ok(Some((frame, used))) = codec::decode(fmt, stream) else { continue };
        assert!(used <= stream.len());
        let mut first = Vec::new();
        if codec::encode(fmt, frame.id, &frame.packet, &mut first).is_err() {
            continue;
        }
        let (again, n) = match codec::decode(fmt, &first) {
            Ok(Some(decoded)) => decoded,
            other => panic!("our own encoding of {:?} does not decode: {other:?}", frame.packet),
        };
        assert_eq!(n, first.len(), "re-decoding used a different length");
        let mut second = Vec::new();
        codec::encode(fmt, again.id, &again.packet, &mut second).expect("re-encode");
        assert_eq!(first, second, "encoding is not stable");
    }
}

/// Every byte we send parses as whole usbredir packets.
fn check_output(fmt: WireFormat, out: &[u8]) {
    let mut rest = out;
    while !rest.is_empty() {
        match codec::decode(fmt, rest) {
            Ok(Some((frame, used))) if used > 0 => {
                if vstick_fuzz::tracing_on() {
                    eprintln!("sent {:?}", frame.packet);
                }
                rest = &rest[used..];
            }
            other => panic!("the session sent bytes that are not a whole packet: {other:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else { return };
    let (pattern, stream) = rest.split_at(usize::from(head & 7).min(rest.len()));
    check_codec(stream);

    let (mut dev, cd) = vstick_fuzz::device();
    // The transport core's driver, as every edge runs it: receive, send the
    // batches, then the deferred write.
    let mut conn = vstick_usbredir::connection(&mut dev);
    while let Ok(Some(batch)) = conn.poll_transmit() {
        check_output(WireFormat::INITIAL, batch);
    }
    for chunk in vstick_fuzz::chunks(stream, pattern) {
        let result = conn.receive(chunk);
        assert!(conn.engine().buffered_input_len() <= MAX_PACKET_LEN as usize + 16);
        let fmt = conn.engine().protocol().wire_format();
        // One batch: at most MAX_PENDING_OUTPUT + one bulk reply, plus the small
        // replies to the other packets of this (at most 4 KiB) input.
        while let Ok(Some(batch)) = conn.poll_transmit() {
            assert!(
                batch.len() <= MAX_PENDING_OUTPUT + MAX_BULK_LENGTH as usize + (1 << 20),
                "{} bytes queued",
                batch.len()
            );
            check_output(fmt, batch);
        }
        if vstick_fuzz::tracing_on() {
            eprintln!("received {} bytes: {result:?}", chunk.len());
        }
        if result.is_err() {
            // A failed session stays failed.
            assert!(conn.receive(b"").is_err());
            break;
        }
    }
    drop(conn);
    vstick_fuzz::assert_cd_intact(&cd);
});
