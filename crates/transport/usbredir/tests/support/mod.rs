//! Test doubles: a scripted mass-storage-like device and `HostSim`, an
//! in-process usb-guest playing QEMU's side of the protocol.
#![allow(dead_code)]

use std::collections::VecDeque;

use vstick_bot::OutResult;
// Not every test file uses all of them.
#[allow(unused_imports)]
pub use vstick_test_support::{BulkIn, BulkPipes, DEVICE_DESCRIPTOR, FakeDevice};
use vstick_usbredir::codec::{self, Frame};
use vstick_usbredir::proto::{
    BulkHeader, Caps, ControlHeader, Packet, SmallDataHeader, Status, WireFormat, version_field,
};
use vstick_usbredir::{Redir, Session, SessionError, UsbDevice};

/// QEMU 7.2+'s capability word as the usb-guest advertises it.
pub const QEMU_CAPS: Caps = Caps(0xff);

/// A reply from the session, its payload leaked to `'static` for easy
/// matching in tests.
pub type Reply = Frame<'static>;

/// The usb-guest side: encodes what QEMU would send, feeds the session, and
/// decodes what comes back.
pub struct HostSim<D: UsbDevice> {
    pub session: Session,
    pub dev: D,
    pub caps: Caps,
    /// Format for what we send and receive (switches on the session's hello).
    pub fmt: WireFormat,
    pub device_hello: Option<(String, Caps)>,
    next_id: u64,
    pending: Vec<u8>,
    /// IN requests sent ahead ([`BulkPipes::post_in`]), and the replies
    /// that came before they were asked for.
    posted: VecDeque<u64>,
    arrived: VecDeque<Reply>,
}

impl<D: UsbDevice> HostSim<D> {
    pub fn new(dev: D, caps: Caps) -> Self {
        HostSim {
            session: Redir::session(),
            dev,
            caps,
            fmt: WireFormat::INITIAL,
            device_hello: None,
            next_id: 1,
            pending: Vec::new(),
            posted: VecDeque::new(),
            arrived: VecDeque::new(),
        }
    }

    /// Exchanges hellos and returns the device's announcement
    /// (interface_info, ep_info, device_connect).
    pub fn handshake(&mut self) -> Vec<Reply> {
        let hello = self.recv();
        assert_eq!(hello.len(), 1, "the session must send only its hello before ours: {hello:?}");
        assert!(matches!(hello[0].packet, Packet::Hello { .. }));
        let our_hello =
            Packet::Hello { version: version_field("qemu usb-redir guest 9.2.0"), caps: vec![self.caps.0] };
        self.send_with_id(0, &our_hello).expect("hello accepted");
        self.recv()
    }

    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Encodes `p` with a fresh id and feeds it to the session.
    pub fn send(&mut self, p: &Packet<'_>) -> u64 {
        let id = self.next_id();
        self.send_with_id(id, p).expect("session accepts the packet");
        id
    }

    pub fn send_with_id(&mut self, id: u64, p: &Packet<'_>) -> Result<(), SessionError> {
        let bytes = self.encode(id, p);
        self.feed(&bytes)
    }

    pub fn encode(&self, id: u64, p: &Packet<'_>) -> Vec<u8> {
        let mut bytes = Vec::new();
        // A hello always travels with the 12-byte header (it is queued before
        // the peer's caps are known).
        let fmt = if matches!(p, Packet::Hello { .. }) { WireFormat::INITIAL } else { self.fmt };
        codec::encode(fmt, id, p, &mut bytes).expect("host packet encodes");
        bytes
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        self.session.receive(&mut self.dev, bytes)
    }

    /// Everything the session sent since the last call, decoded.
    pub fn recv(&mut self) -> Vec<Reply> {
        self.pending.extend(self.session.take_output());
        let bytes: &'static [u8] = Box::leak(std::mem::take(&mut self.pending).into_boxed_slice());
        let mut rest = bytes;
        let mut frames = Vec::new();
        while let Some((frame, used)) = codec::decode(self.fmt, rest).expect("session output decodes") {
            if let Packet::Hello { version, caps } = &frame.packet {
                let peer = Caps(caps[0]);
                self.device_hello = Some((vstick_usbredir::proto::version_text(version), peer));
                // Our own caps are known from the start; the width changes
                // as soon as the peer's hello is in (usbredirparser).
                self.fmt = WireFormat::negotiate(self.caps, peer);
            }
            frames.push(frame);
            rest = &rest[used..];
        }
        self.pending = rest.to_vec();
        frames
    }

    pub fn control_in(&mut self, requesttype: u8, request: u8, value: u16, index: u16, length: u16) -> u64 {
        let hdr = ControlHeader {
            endpoint: 0x80,
            request,
            requesttype,
            status: Status::SUCCESS,
            value,
            index,
            length,
        };
        self.send(&Packet::Control(hdr, &[]))
    }

    pub fn control_out(&mut self, requesttype: u8, request: u8, value: u16, index: u16, data: &[u8]) -> u64 {
        let length = u16::try_from(data.len()).unwrap();
        let hdr = ControlHeader {
            endpoint: 0x00,
            request,
            requesttype,
            status: Status::SUCCESS,
            value,
            index,
            length,
        };
        self.send(&Packet::Control(hdr, data))
    }

    pub fn bulk_out(&mut self, endpoint: u8, data: &[u8]) -> u64 {
        let length = u32::try_from(data.len()).unwrap();
        self.send(&Packet::Bulk(BulkHeader { endpoint, status: Status::SUCCESS, length, stream_id: 0 }, data))
    }

    pub fn bulk_in(&mut self, endpoint: u8, length: u32) -> u64 {
        self.send(&Packet::Bulk(BulkHeader { endpoint, status: Status::SUCCESS, length, stream_id: 0 }, &[]))
    }
}

/// The bulk pipes as QEMU's usb-redir reaches them: one packet per transfer,
/// each answered before the next unless IN requests were posted ahead.
impl<D: UsbDevice> BulkPipes for HostSim<D> {
    fn bulk_out(&mut self, data: &[u8]) -> OutResult {
        let id = self.bulk_out(0x02, data);
        let mut replies = VecDeque::from(self.recv());
        let reply = replies.pop_front().expect("bulk OUT answered");
        assert_eq!(reply.id, id);
        // Posted IN requests complete now, behind the OUT that fed them.
        self.arrived.extend(replies);
        let (hdr, _) = bulk(&reply);
        match hdr.status {
            Status::SUCCESS => OutResult::Accepted(hdr.length as usize),
            Status::STALL => OutResult::Stall,
            other => panic!("bulk OUT: {other:?}"),
        }
    }

    fn bulk_in(&mut self, len: usize) -> BulkIn {
        let reply = match self.posted.pop_front() {
            Some(id) => {
                if self.arrived.is_empty() {
                    let more = self.recv();
                    self.arrived.extend(more);
                }
                let reply = self.arrived.pop_front().expect("posted IN request answered");
                assert_eq!(reply.id, id, "IN requests complete in FIFO order");
                reply
            }
            None => {
                let id = self.bulk_in(0x81, u32::try_from(len).unwrap());
                let r = self.recv();
                assert_eq!(r.len(), 1, "one reply: {r:?}");
                assert_eq!(r[0].id, id);
                r.into_iter().next().unwrap()
            }
        };
        let (hdr, data) = bulk(&reply);
        match hdr.status {
            Status::SUCCESS => BulkIn::Data(data.to_vec()),
            Status::STALL => BulkIn::Stall,
            other => panic!("bulk IN: {other:?}"),
        }
    }

    fn clear_halt(&mut self, dir_in: bool) {
        if dir_in {
            // BOT §6.7.2: the requests queued behind the stalled one stalled too.
            while let Some(id) = self.posted.pop_front() {
                let reply = self.arrived.pop_front().expect("posted IN request answered");
                assert_eq!((reply.id, bulk(&reply).0.status), (id, Status::STALL));
            }
        }
        // CLEAR_FEATURE(ENDPOINT_HALT).
        self.control_out(0x02, 0x01, 0, if dir_in { 0x81 } else { 0x02 }, &[]);
        assert_eq!(control(&self.recv()[0]).0.status, Status::SUCCESS);
    }

    fn post_in(&mut self, lens: &[usize]) {
        for &len in lens {
            let id = self.bulk_in(0x81, u32::try_from(len).unwrap());
            self.posted.push_back(id);
        }
        assert!(self.recv().is_empty(), "nothing to send before the CBW");
    }
}

/// A CBW (BOT §5.1) for `cdb`, tag `tag`, expecting `len` bytes in `dir_in`.
pub fn cbw(tag: u32, len: u32, dir_in: bool, lun: u8, cdb: &[u8]) -> Vec<u8> {
    let mut v = b"USBC".to_vec();
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&len.to_le_bytes());
    v.push(if dir_in { 0x80 } else { 0x00 });
    v.push(lun);
    v.push(u8::try_from(cdb.len()).unwrap());
    let mut padded = [0u8; 16];
    padded[..cdb.len()].copy_from_slice(cdb);
    v.extend_from_slice(&padded);
    v
}

/// Unpacks a reply expected to be a bulk_packet.
pub fn bulk(reply: &Reply) -> (BulkHeader, &'static [u8]) {
    match reply.packet {
        Packet::Bulk(h, d) => (h, d),
        ref other => panic!("expected bulk_packet, got {other:?}"),
    }
}

/// Unpacks a reply expected to be a control_packet.
pub fn control(reply: &Reply) -> (ControlHeader, &'static [u8]) {
    match reply.packet {
        Packet::Control(h, d) => (h, d),
        ref other => panic!("expected control_packet, got {other:?}"),
    }
}

pub fn interrupt(reply: &Reply) -> SmallDataHeader {
    match reply.packet {
        Packet::Interrupt(h, _) => h,
        ref other => panic!("expected interrupt_packet, got {other:?}"),
    }
}
