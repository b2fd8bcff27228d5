//! Both wire formats' peers, just enough to drive the engine from tests.
#![allow(dead_code)] // each test file uses its share

use vstick_transport::{Engine, Protocol};
use vstick_usb::UsbDevice;

/// A CBW for INQUIRY (exempt from the power-on unit attention) announcing
/// `host_len` bytes of data-in: BOT pads the 36 bytes with zeros up to it.
pub fn inquiry_cbw(host_len: u32) -> Vec<u8> {
    vstick_bot::Cbw::new(7, host_len, true, 0, &[0x12, 0, 0, 0, 36, 0]).unwrap().to_bytes().to_vec()
}

/// Takes batches as an edge sends them, calling `service` after each, until
/// none is left; each batch is checked against `limit` and counted by
/// `replies` as (IN replies, their data bytes). Returns the sums and the
/// number of batches.
pub fn send_all_batches<P: Protocol, D: UsbDevice>(
    session: &mut Engine<P>,
    dev: &mut D,
    limit: usize,
    replies: impl Fn(&[u8]) -> (usize, usize),
) -> (usize, usize, usize)
where
    P::Error: std::fmt::Debug,
{
    let (mut count, mut bytes, mut batches) = (0, 0, 0);
    loop {
        let out = session.take_output();
        assert!(out.len() <= limit, "{} bytes queued at once (limit {limit})", out.len());
        if out.is_empty() {
            return (count, bytes, batches);
        }
        let (n, b) = replies(&out);
        count += n;
        bytes += b;
        batches += 1;
        assert!(session.wants_service() || session.held_in_requests() == 0);
        session.service(dev).unwrap();
    }
}

pub mod redir {
    use super::*;
    use vstick_usbredir::codec;
    use vstick_usbredir::proto::{BulkHeader, Packet, Status, WireFormat, version_field};
    use vstick_usbredir::{OUR_CAPS, Redir, Session};

    /// A session past the hello exchange, and its wire format.
    pub fn connected(dev: &mut impl UsbDevice) -> (Session, WireFormat) {
        let mut session = Redir::session();
        let hello = Packet::Hello { version: version_field("test guest"), caps: vec![OUR_CAPS.0] };
        session.receive(dev, &frame(WireFormat::INITIAL, 0, &hello)).unwrap();
        let fmt = session.protocol().wire_format();
        let _ = session.take_output();
        (session, fmt)
    }

    pub fn frame(fmt: WireFormat, id: u64, packet: &Packet<'_>) -> Vec<u8> {
        let mut bytes = Vec::new();
        codec::encode(fmt, id, packet, &mut bytes).unwrap();
        bytes
    }

    /// A bulk packet (an IN request when `data` is empty and `endpoint` is 0x81).
    pub fn bulk(fmt: WireFormat, id: u64, endpoint: u8, length: u32, data: &[u8]) -> Vec<u8> {
        let hdr = BulkHeader { endpoint, status: Status::SUCCESS, length, stream_id: 0 };
        frame(fmt, id, &Packet::Bulk(hdr, data))
    }

    /// (bulk IN replies, their data bytes) in `out`.
    pub fn replies(fmt: WireFormat, mut out: &[u8]) -> (usize, usize) {
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
}

pub mod usbip {
    use super::*;
    use vstick_usbip::codec::{
        BusId, ClientMessage, CmdSubmit, Decoded, Direction, OpRequest, ServerMessage, UrbBasic,
    };
    use vstick_usbip::{ExportInfo, Session, Usbip};

    /// A session that imported the device.
    pub fn imported(dev: &mut impl UsbDevice) -> Session {
        let mut session = Usbip::session(ExportInfo::new("1-1").unwrap(), false);
        let mut import = Vec::new();
        OpRequest::Import { busid: BusId::new("1-1").unwrap() }.encode(&mut import);
        session.receive(dev, &import).unwrap();
        let _ = session.take_output();
        session
    }

    pub fn cmd(seqnum: u32, direction: Direction, ep: u32, length: u32) -> CmdSubmit {
        CmdSubmit {
            basic: UrbBasic { seqnum, devid: 0, direction, ep },
            transfer_flags: 0,
            transfer_buffer_length: length,
            start_frame: 0,
            number_of_packets: 0,
            interval: 0,
            setup: [0; 8],
        }
    }

    /// A CMD_SUBMIT: IN of `length` bytes, or OUT carrying `data`.
    pub fn submit(seqnum: u32, direction: Direction, ep: u32, length: u32, data: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        ClientMessage::Submit { cmd: cmd(seqnum, direction, ep, length), data }.encode(&mut bytes);
        bytes
    }

    /// The RET_SUBMITs in `out` as (seqnum, status, actual, data); `is_in`
    /// tells which sequence numbers were IN URBs (their data follows).
    pub fn replies(mut out: &[u8], is_in: impl Fn(u32) -> bool) -> Vec<(u32, i32, u32, Vec<u8>)> {
        let mut all = Vec::new();
        while !out.is_empty() {
            match ServerMessage::decode(out, &is_in).unwrap() {
                Decoded::Done { message, consumed } => {
                    if let ServerMessage::Submit { ret, data } = message {
                        all.push((ret.basic.seqnum, ret.status, ret.actual_length, data.to_vec()));
                    }
                    out = &out[consumed..];
                }
                Decoded::NeedMore => panic!("a partial message in the output"),
            }
        }
        all
    }
}
