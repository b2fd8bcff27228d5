//! Test doubles: a scripted mass-storage-like device and `HostSim`, an
//! in-process usb-guest playing QEMU's side of the protocol.
#![allow(dead_code)]

use std::collections::VecDeque;

use vstick_bot::{InResult, OutResult};
use vstick_usb::{
    ControlResult, DeviceSummary, EndpointInfo, InterfaceInfo as UsbInterface, Setup, Speed as UsbSpeed,
    TransferType,
};
use vstick_usbredir::codec::{self, Frame};
use vstick_usbredir::proto::{
    BulkHeader, Caps, ControlHeader, Packet, SmallDataHeader, Status, WireFormat, version_field,
};
use vstick_usbredir::{Redir, Session, SessionError, UsbDevice};

/// QEMU 7.2+'s capability word as the usb-guest advertises it.
pub const QEMU_CAPS: Caps = Caps(0xff);

/// A device with one bulk-only interface (0x81 IN, 0x02 OUT) whose IN data
/// is scripted: `queue_in` adds a reply the next IN transfers will read.
#[derive(Debug, Default)]
pub struct FakeDevice {
    pub config: u8,
    pub resets: usize,
    pub outs: Vec<Vec<u8>>,
    pub in_data: VecDeque<Vec<u8>>,
    pub in_halted: bool,
    pub out_halted: bool,
    /// Replies scripted to appear when an OUT transfer arrives.
    pub on_out: VecDeque<Vec<u8>>,
    pub controls: Vec<(Setup, Vec<u8>)>,
    /// Size of the fake "huge" string descriptor (index 0x0309).
    pub big_descriptor: usize,
}

pub const DEVICE_DESCRIPTOR: [u8; 18] = [
    0x12, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x40, 0x6b, 0x1d, 0x04, 0x01, 0x00, 0x01, 0x01, 0x02, 0x03,
    0x01,
];

impl FakeDevice {
    pub fn new() -> Self {
        FakeDevice { config: 1, big_descriptor: 5000, ..Default::default() }
    }
    pub fn queue_in(&mut self, data: &[u8]) {
        self.in_data.push_back(data.to_vec());
    }
}

impl UsbDevice for FakeDevice {
    fn speed(&self) -> UsbSpeed {
        UsbSpeed::High
    }
    fn summary(&self) -> DeviceSummary {
        DeviceSummary {
            bcd_usb: 0x0200,
            class: 0,
            subclass: 0,
            protocol: 0,
            vendor_id: 0x1d6b,
            product_id: 0x0104,
            bcd_device: 0x0100,
            num_configurations: 1,
        }
    }
    fn configuration(&self) -> u8 {
        self.config
    }
    fn set_configuration(&mut self, value: u8) -> bool {
        if value <= 1 {
            self.config = value;
            true
        } else {
            false
        }
    }
    fn alt_setting(&self, interface: u8) -> Option<u8> {
        (self.config == 1 && interface == 0).then_some(0)
    }
    fn set_alt_setting(&mut self, interface: u8, alt: u8) -> bool {
        self.config == 1 && interface == 0 && alt == 0
    }
    fn interfaces(&self) -> Vec<UsbInterface> {
        if self.config == 0 {
            return vec![];
        }
        vec![UsbInterface { number: 0, class: 0x08, subclass: 0x06, protocol: 0x50 }]
    }
    fn endpoints(&self) -> Vec<EndpointInfo> {
        if self.config == 0 {
            return vec![];
        }
        let ep = |address| EndpointInfo {
            address,
            transfer_type: TransferType::Bulk,
            max_packet_size: 512,
            interval: 0,
            interface: 0,
        };
        vec![ep(0x81), ep(0x02)]
    }
    fn control(&mut self, setup: &Setup, data: &[u8]) -> ControlResult {
        self.controls.push((*setup, data.to_vec()));
        let want = usize::from(setup.length);
        match (setup.request_type, setup.request, setup.value) {
            (0x80, 0x06, 0x0100) => ControlResult::Data(DEVICE_DESCRIPTOR[..want.min(18)].to_vec()),
            (0x80, 0x06, 0x0309) => ControlResult::Data(vec![0x33; self.big_descriptor.min(want)]),
            (0xa1, 0xfe, 0) => ControlResult::Data(vec![0]),
            (0x02, 0x01, 0) => {
                // CLEAR_FEATURE(ENDPOINT_HALT)
                if setup.index & 0x80 != 0 {
                    self.in_halted = false;
                } else {
                    self.out_halted = false;
                }
                ControlResult::Ack
            }
            (0x21, 0xff, 0) => ControlResult::Ack,
            (0x00, 0x09, v) => {
                if self.set_configuration(u8::try_from(v).unwrap_or(0xff)) {
                    ControlResult::Ack
                } else {
                    ControlResult::Stall
                }
            }
            (0x40, 0x10, _) => ControlResult::Ack, // vendor OUT with data
            _ => ControlResult::Stall,
        }
    }
    fn bulk_out(&mut self, endpoint: u8, data: &[u8]) -> OutResult {
        assert_eq!(endpoint, 0x02, "OUT only to 0x02");
        if self.out_halted {
            return OutResult::Stall;
        }
        self.outs.push(data.to_vec());
        if let Some(reply) = self.on_out.pop_front() {
            self.in_data.push_back(reply);
        }
        OutResult::Accepted(data.len())
    }
    fn bulk_in(&mut self, endpoint: u8, buf: &mut [u8]) -> InResult {
        assert_eq!(endpoint, 0x81, "IN only from 0x81");
        if self.in_halted {
            return InResult::Stall;
        }
        let Some(front) = self.in_data.front_mut() else { return InResult::Pending };
        let n = front.len().min(buf.len());
        buf[..n].copy_from_slice(&front[..n]);
        front.drain(..n);
        if front.is_empty() {
            self.in_data.pop_front();
        }
        InResult::Data(n)
    }
    fn reset(&mut self) {
        self.resets += 1;
        self.in_data.clear();
        self.in_halted = false;
        self.out_halted = false;
    }
}

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
