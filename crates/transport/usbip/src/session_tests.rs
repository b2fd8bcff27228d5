//! The session driven by an in-process fake client over [`FakeDevice`].

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use crate::codec::*;
use crate::export::ExportInfo;
use crate::session::{MAX_PARKED_URBS, Phase, Session, SessionError, Usbip};
use vstick_test_support::{DEVICE_DESCRIPTOR, FakeDevice};
use vstick_usb::UsbDevice;

/// One decoded server message, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Submit { seqnum: u32, status: i32, actual_length: u32, number_of_packets: i32, data: Vec<u8> },
    Unlink { seqnum: u32, status: i32 },
}

/// A client that speaks the wire format to a [`Session`] over a [`FakeDevice`].
pub struct Client<D: UsbDevice = FakeDevice> {
    pub session: Session,
    pub dev: D,
    next_seqnum: u32,
    pub is_in: HashMap<u32, bool>,
    inbox: Vec<u8>,
}

pub fn export() -> ExportInfo {
    ExportInfo::new("1-1").unwrap()
}

impl Client {
    pub fn new() -> Self {
        Self::with(FakeDevice::with_loopback())
    }

    pub fn imported() -> Self {
        Self::imported_with(FakeDevice::with_loopback())
    }
}

impl<D: UsbDevice> Client<D> {
    pub fn with(dev: D) -> Self {
        Self {
            session: Usbip::session(export(), false),
            dev,
            next_seqnum: 1,
            is_in: HashMap::new(),
            inbox: Vec::new(),
        }
    }

    pub fn imported_with(dev: D) -> Self {
        let mut c = Self::with(dev);
        let reply = c.op(&OpRequest::Import { busid: BusId::new("1-1").unwrap() });
        assert!(matches!(reply, OpReply::Import { status: OpStatus::OK, device: Some(_) }));
        assert_eq!(c.session.protocol().phase(), Phase::Imported);
        c
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        let result = self.session.receive(&mut self.dev, bytes);
        self.inbox.extend(self.session.take_output());
        result
    }

    /// A management request and its whole reply.
    pub fn op(&mut self, request: &OpRequest) -> OpReply {
        let mut bytes = Vec::new();
        request.encode(&mut bytes);
        self.send(&bytes).unwrap();
        let (reply, used) = match OpReply::decode(&self.inbox).unwrap() {
            Decoded::Done { message, consumed } => (message, consumed),
            Decoded::NeedMore => panic!("incomplete reply {:?}", self.inbox),
        };
        assert_eq!(used, self.inbox.len(), "nothing after the reply");
        self.inbox.clear();
        reply
    }

    pub fn submit(&mut self, direction: Direction, ep: u32, length: u32, setup: [u8; 8], data: &[u8]) -> u32 {
        let seqnum = self.next_seqnum;
        self.next_seqnum += 1;
        self.is_in.insert(seqnum, direction == Direction::IN);
        let cmd = CmdSubmit {
            basic: UrbBasic { seqnum, devid: 0x0001_0002, direction, ep },
            transfer_flags: 0,
            transfer_buffer_length: length,
            start_frame: 0,
            number_of_packets: 0,
            interval: 0,
            setup,
        };
        let mut bytes = Vec::new();
        cmd.encode(data, &mut bytes);
        self.send(&bytes).unwrap();
        seqnum
    }

    pub fn bulk_in(&mut self, length: u32) -> u32 {
        self.submit(Direction::IN, 1, length, [0; 8], &[])
    }

    pub fn bulk_out(&mut self, data: &[u8]) -> u32 {
        self.submit(Direction::OUT, 2, data.len() as u32, [0; 8], data)
    }

    pub fn control_in(&mut self, setup: [u8; 8], length: u32) -> u32 {
        self.submit(Direction::IN, 0, length, setup, &[])
    }

    pub fn control_out(&mut self, setup: [u8; 8], data: &[u8]) -> u32 {
        self.submit(Direction::OUT, 0, data.len() as u32, setup, data)
    }

    pub fn unlink(&mut self, target: u32) -> u32 {
        let seqnum = self.next_seqnum;
        self.next_seqnum += 1;
        let cmd = CmdUnlink {
            basic: UrbBasic { seqnum, devid: 0x0001_0002, direction: Direction::OUT, ep: 0 },
            unlink_seqnum: target,
        };
        self.send(&cmd.to_bytes()).unwrap();
        seqnum
    }

    /// Every whole server message received so far.
    pub fn replies(&mut self) -> Vec<Reply> {
        let mut out = Vec::new();
        let mut used = 0;
        let is_in = self.is_in.clone();
        loop {
            match ServerMessage::decode(&self.inbox[used..], |s| is_in.get(&s).copied().unwrap_or(false))
                .unwrap()
            {
                Decoded::NeedMore => break,
                Decoded::Done { message, consumed } => {
                    used += consumed;
                    out.push(match message {
                        ServerMessage::Submit { ret, data } => {
                            assert_eq!(
                                (ret.basic.devid, ret.basic.direction, ret.basic.ep),
                                (0, Direction::OUT, 0)
                            );
                            Reply::Submit {
                                seqnum: ret.basic.seqnum,
                                status: ret.status,
                                actual_length: ret.actual_length,
                                number_of_packets: ret.number_of_packets,
                                data: data.to_vec(),
                            }
                        }
                        ServerMessage::Unlink(ret) => {
                            Reply::Unlink { seqnum: ret.basic.seqnum, status: ret.status }
                        }
                    });
                }
            }
        }
        assert_eq!(used, self.inbox.len(), "output ends on a message boundary");
        self.inbox.clear();
        out
    }
}

pub fn ok(seqnum: u32, data: &[u8]) -> Reply {
    Reply::Submit {
        seqnum,
        status: 0,
        actual_length: data.len() as u32,
        number_of_packets: 0,
        data: data.to_vec(),
    }
}

pub fn out_ok(seqnum: u32, consumed: u32) -> Reply {
    Reply::Submit { seqnum, status: 0, actual_length: consumed, number_of_packets: 0, data: vec![] }
}

pub fn failed(seqnum: u32, status: i32) -> Reply {
    Reply::Submit { seqnum, status, actual_length: 0, number_of_packets: 0, data: vec![] }
}

pub const GET_DEVICE_DESCRIPTOR: [u8; 8] = [0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00];

// ---------------------------------------------------------------------------
// Management phase

#[test]
fn devlist_reports_the_device_and_closes() {
    let mut c = Client::new();
    let reply = c.op(&OpRequest::Devlist);
    let OpReply::Devlist { status: OpStatus::OK, devices } = reply else { panic!("{reply:?}") };
    assert_eq!(devices.len(), 1);
    let d = &devices[0];
    assert_eq!(d.record.path.as_bytes(), b"/sys/devices/vstick/usb1/1-1");
    assert_eq!(d.record.busid.as_bytes(), b"1-1");
    assert_eq!((d.record.busnum, d.record.devnum, d.record.speed), (1, 2, WireSpeed::HIGH));
    assert_eq!((d.record.vendor_id, d.record.product_id, d.record.bcd_device), (0x1234, 0x5678, 0x0100));
    assert_eq!(
        (d.record.configuration_value, d.record.num_configurations, d.record.num_interfaces),
        (1, 1, 1)
    );
    assert_eq!(d.interfaces, vec![InterfaceRecord { class: 0x08, subclass: 0x06, protocol: 0x50 }]);
    assert!(c.session.is_closing());
    // Anything after the reply is ignored.
    c.send(&[0xFF; 100]).unwrap();
    assert!(c.session.output().is_empty());
    assert!(!*c.session.protocol().gate(), "listing does not claim the device");
    assert_eq!(c.dev.resets, 0);
}

#[test]
fn devlist_reports_the_current_configuration() {
    let mut c = Client::new();
    c.dev.configuration = 0;
    let OpReply::Devlist { devices, .. } = c.op(&OpRequest::Devlist) else { panic!() };
    assert_eq!((devices[0].record.configuration_value, devices[0].record.num_interfaces), (0, 0));
    assert!(devices[0].interfaces.is_empty());
}

#[test]
fn import_claims_and_resets_the_device() {
    let mut c = Client::new();
    let reply = c.op(&OpRequest::Import { busid: BusId::new("1-1").unwrap() });
    let OpReply::Import { status: OpStatus::OK, device: Some(record) } = reply else { panic!("{reply:?}") };
    assert_eq!(record, export().record(&c.dev));
    assert!(*c.session.protocol().gate());
    assert_eq!(c.dev.resets, 1);
    assert_eq!(c.session.protocol().phase(), Phase::Imported);
}

#[test]
fn an_imported_session_resets_on_connect_and_takes_urbs_at_once() {
    // vhci-hcd (`vstick serve --local`) sends URBs from the first byte: no import request.
    let mut dev = FakeDevice::with_loopback();
    let mut conn = vstick_transport::Connection::new(Usbip::imported_session(export()), &mut dev);
    assert_eq!(conn.engine().protocol().phase(), Phase::Imported);
    assert!(conn.handshake_done(), "no opening to wait for");
    conn.receive(&get_descriptor_urb()).unwrap();
    let out = conn.poll_transmit().unwrap().expect("a reply").to_vec();
    let Ok(Decoded::Done { message: ServerMessage::Submit { ret, data }, .. }) =
        ServerMessage::decode(&out, |_| true)
    else {
        panic!("not a RET_SUBMIT: {out:?}")
    };
    assert_eq!((ret.basic.seqnum, ret.status), (1, 0));
    assert_eq!(data, &DEVICE_DESCRIPTOR[..]);
    drop(conn);
    assert_eq!(dev.resets, 1, "the connection's start resets the device, as an import does");

    // A management-phase session leaves the device alone until it is imported.
    let mut dev = FakeDevice::with_loopback();
    let conn = vstick_transport::Connection::new(Usbip::session(export(), false), &mut dev);
    assert_eq!(conn.engine().protocol().phase(), Phase::Management);
    drop(conn);
    assert_eq!(dev.resets, 0);
}

#[test]
fn import_compares_busid_up_to_nul() {
    let mut raw = [0x5Au8; 32];
    raw[..4].copy_from_slice(b"1-1\0");
    let mut c = Client::new();
    let reply = c.op(&OpRequest::Import { busid: BusId::from_raw(raw) });
    assert!(matches!(reply, OpReply::Import { status: OpStatus::OK, .. }));
}

#[test]
fn import_of_unknown_busid_is_nodev() {
    for busid in ["1-2", "1-11", "", "2-1"] {
        let mut c = Client::new();
        let reply = c.op(&OpRequest::Import { busid: BusId::new(busid).unwrap() });
        assert_eq!(reply, OpReply::Import { status: OpStatus::NODEV, device: None }, "{busid:?}");
        assert!(c.session.is_closing());
        assert!(!*c.session.protocol().gate());
        assert_eq!(c.dev.resets, 0);
    }
}

#[test]
fn import_of_a_taken_device_is_busy() {
    let mut c = Client::new();
    c.session = Usbip::session(export(), true);
    let reply = c.op(&OpRequest::Import { busid: BusId::new("1-1").unwrap() });
    assert_eq!(reply, OpReply::Import { status: OpStatus::DEV_BUSY, device: None });
    assert!(c.session.is_closing());
    assert_eq!(c.dev.resets, 0, "the holder's device is untouched");
}

#[test]
fn bad_management_input_closes() {
    for (bytes, expected) in [
        (vec![0x01, 0x00, 0x80, 0x05, 0, 0, 0, 0], CodecError::UnsupportedVersion(0x0100)),
        (vec![0x01, 0x11, 0x12, 0x34, 0, 0, 0, 0], CodecError::UnknownOpCode(OpCode(0x1234))),
        // A URB before any import.
        (get_descriptor_urb(), CodecError::UnsupportedVersion(0)),
    ] {
        let mut c = Client::new();
        assert_eq!(c.send(&bytes), Err(SessionError::Codec(expected)));
        assert!(c.session.is_closing());
        assert!(c.session.output().is_empty());
        assert!(matches!(c.send(&bytes), Err(SessionError::Closed(_))), "a failed session stays failed");
    }
}

#[test]
fn truncated_requests_wait_for_more() {
    let mut c = Client::new();
    let mut bytes = Vec::new();
    OpRequest::Import { busid: BusId::new("1-1").unwrap() }.encode(&mut bytes);
    for b in &bytes[..bytes.len() - 1] {
        c.send(&[*b]).unwrap();
        assert_eq!(c.session.protocol().phase(), Phase::Management);
        assert!(c.session.output().is_empty());
    }
    c.send(&bytes[bytes.len() - 1..]).unwrap();
    assert_eq!(c.session.protocol().phase(), Phase::Imported);
}

fn get_descriptor_urb() -> Vec<u8> {
    let cmd = CmdSubmit {
        basic: UrbBasic { seqnum: 1, devid: 0x0001_0002, direction: Direction::IN, ep: 0 },
        transfer_flags: 0,
        transfer_buffer_length: 18,
        start_frame: 0,
        number_of_packets: 0,
        interval: 0,
        setup: GET_DEVICE_DESCRIPTOR,
    };
    cmd.to_bytes().to_vec()
}

// ---------------------------------------------------------------------------
// Control transfers

#[test]
fn get_descriptor_on_ep0() {
    let mut c = Client::imported();
    let s = c.control_in(GET_DEVICE_DESCRIPTOR, 18);
    assert_eq!(c.replies(), vec![ok(s, &DEVICE_DESCRIPTOR)]);
    // Linux asks for 64 bytes first; the reply is the 18 the device has.
    let s = c.control_in([0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x40, 0x00], 64);
    assert_eq!(c.replies(), vec![ok(s, &DEVICE_DESCRIPTOR)]);
    // The reply never exceeds transfer_buffer_length.
    let s = c.control_in([0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x40, 0x00], 8);
    assert_eq!(c.replies(), vec![ok(s, &DEVICE_DESCRIPTOR[..8])]);
}

#[test]
fn get_descriptor_arrives_byte_by_byte() {
    let mut c = Client::imported();
    c.is_in.insert(1, true);
    for b in get_descriptor_urb() {
        c.send(&[b]).unwrap();
    }
    assert_eq!(c.replies(), vec![ok(1, &DEVICE_DESCRIPTOR)]);
}

#[test]
fn set_configuration_goes_to_the_device() {
    let mut c = Client::imported();
    let s = c.control_out([0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], &[]);
    assert_eq!(c.replies(), vec![out_ok(s, 0)]);
    assert_eq!(c.dev.configuration, 0);
    // Unconfigured: the bulk endpoints are gone.
    let s = c.bulk_out(b"abc");
    assert_eq!(c.replies(), vec![failed(s, errno::EPIPE)]);
    let s = c.control_out([0x00, 0x09, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00], &[]);
    assert_eq!(c.replies(), vec![out_ok(s, 0)]);
    let s = c.bulk_out(b"abc");
    assert_eq!(c.replies(), vec![out_ok(s, 3)]);
    // A configuration that does not exist stalls.
    let s = c.control_out([0x00, 0x09, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00], &[]);
    assert_eq!(c.replies(), vec![failed(s, errno::EPIPE)]);
}

#[test]
fn control_out_reports_consumed_bytes_without_data() {
    let mut c = Client::imported();
    let s = c.control_out([0x21, 0x42, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00], b"xyz");
    assert_eq!(c.replies(), vec![out_ok(s, 3)]);
    assert_eq!(c.dev.controls.last().unwrap().1, b"xyz");
}

#[test]
fn unsupported_control_request_stalls() {
    let mut c = Client::imported();
    let s = c.control_in([0xC0, 0x77, 0, 0, 0, 0, 4, 0], 4);
    assert_eq!(c.replies(), vec![failed(s, errno::EPIPE)]);
    // The session goes on.
    let s = c.control_in(GET_DEVICE_DESCRIPTOR, 18);
    assert_eq!(c.replies(), vec![ok(s, &DEVICE_DESCRIPTOR)]);
}

// ---------------------------------------------------------------------------
// Bulk transfers

#[test]
fn in_urbs_park_until_data_and_complete_fifo() {
    let mut c = Client::imported();
    let a = c.bulk_in(4);
    let b = c.bulk_in(4);
    let d = c.bulk_in(8);
    assert_eq!(c.replies(), vec![], "no data yet: nothing answered");
    assert_eq!(c.session.held_in_requests(), 3);
    let o = c.bulk_out(b"aaaabbbbcc");
    assert_eq!(c.replies(), vec![out_ok(o, 10), ok(a, b"aaaa"), ok(b, b"bbbb"), ok(d, b"cc")]);
    assert_eq!(c.session.held_in_requests(), 0);
}

#[test]
fn in_urb_with_data_completes_at_once() {
    let mut c = Client::imported();
    let o = c.bulk_out(b"hello");
    let i = c.bulk_in(512);
    assert_eq!(c.replies(), vec![out_ok(o, 5), ok(i, b"hello")]);
}

#[test]
fn parked_urbs_drain_partially() {
    let mut c = Client::imported();
    let a = c.bulk_in(4);
    let b = c.bulk_in(4);
    let o1 = c.bulk_out(b"1234");
    assert_eq!(c.replies(), vec![out_ok(o1, 4), ok(a, b"1234")]);
    let o2 = c.bulk_out(b"56");
    assert_eq!(c.replies(), vec![out_ok(o2, 2), ok(b, b"56")]);
}

#[test]
fn stalls_are_epipe_and_clear_feature_recovers() {
    let mut c = Client::imported();
    c.dev.in_halted = true;
    c.dev.out_halted = true;
    let i = c.bulk_in(13);
    assert_eq!(c.replies(), vec![failed(i, errno::EPIPE)]);
    let o = c.bulk_out(b"x");
    assert_eq!(c.replies(), vec![failed(o, errno::EPIPE)]);
    // CLEAR_FEATURE(ENDPOINT_HALT) on 0x02 then 0x81, as usb-storage does.
    let s1 = c.control_out([0x02, 0x01, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00], &[]);
    let s2 = c.control_out([0x02, 0x01, 0x00, 0x00, 0x81, 0x00, 0x00, 0x00], &[]);
    assert_eq!(c.replies(), vec![out_ok(s1, 0), out_ok(s2, 0)]);
    let o = c.bulk_out(b"x");
    let i = c.bulk_in(13);
    assert_eq!(c.replies(), vec![out_ok(o, 1), ok(i, b"x")]);
}

#[test]
fn parked_urb_completes_when_control_clears_halt() {
    let mut c = Client::imported();
    let i = c.bulk_in(4);
    let o = c.bulk_out(b"data");
    assert_eq!(c.replies(), vec![out_ok(o, 4), ok(i, b"data")]);
    // Data waiting, endpoint halted: the IN stalls; after the clear, the next IN gets the data.
    c.dev.in_halted = true;
    let o = c.bulk_out(b"more");
    let i1 = c.bulk_in(4);
    let s = c.control_out([0x02, 0x01, 0x00, 0x00, 0x81, 0x00, 0x00, 0x00], &[]);
    let i2 = c.bulk_in(4);
    assert_eq!(c.replies(), vec![out_ok(o, 4), failed(i1, errno::EPIPE), out_ok(s, 0), ok(i2, b"more")]);
}

#[test]
fn urbs_for_missing_endpoints_get_epipe() {
    let mut c = Client::imported();
    let s1 = c.submit(Direction::IN, 5, 64, [0; 8], &[]); // no endpoint 5
    let s2 = c.submit(Direction::OUT, 1, 3, [0; 8], b"abc"); // 1 is IN only
    let s3 = c.submit(Direction::IN, 2, 64, [0; 8], &[]); // 2 is OUT only
    let s4 = c.submit(Direction::IN, 0x81, 64, [0; 8], &[]); // direction bit in ep: not a number
    let s5 = c.submit(Direction::OUT, u32::MAX, 0, [0; 8], &[]);
    assert_eq!(
        c.replies(),
        vec![
            failed(s1, errno::EPIPE),
            failed(s2, errno::EPIPE),
            failed(s3, errno::EPIPE),
            failed(s4, errno::EPIPE),
            failed(s5, errno::EPIPE)
        ]
    );
    assert_eq!(c.session.held_in_requests(), 0);
    assert!(c.dev.outs.is_empty(), "nothing reached the device");
}

#[test]
fn number_of_packets_minus_one_is_echoed() {
    let mut c = Client::imported();
    c.is_in.insert(77, false);
    let cmd = CmdSubmit {
        basic: UrbBasic { seqnum: 77, devid: 0x0001_0002, direction: Direction::OUT, ep: 2 },
        transfer_flags: 0,
        transfer_buffer_length: 2,
        start_frame: 0,
        number_of_packets: -1,
        interval: 0,
        setup: [0; 8],
    };
    let mut bytes = Vec::new();
    cmd.encode(b"hi", &mut bytes);
    c.send(&bytes).unwrap();
    assert_eq!(
        c.replies(),
        vec![Reply::Submit { seqnum: 77, status: 0, actual_length: 2, number_of_packets: -1, data: vec![] }]
    );
}

// ---------------------------------------------------------------------------
// Unlink

#[test]
fn unlink_of_parked_urb_cancels_it_for_good() {
    let mut c = Client::imported();
    let a = c.bulk_in(4);
    let b = c.bulk_in(4);
    let u = c.unlink(a);
    assert_eq!(c.replies(), vec![Reply::Unlink { seqnum: u, status: errno::ECONNRESET }]);
    assert_eq!(c.session.held_in_requests(), 1);
    // Data now goes to b; a never gets a RET_SUBMIT.
    let o = c.bulk_out(b"wxyz1234");
    assert_eq!(c.replies(), vec![out_ok(o, 8), ok(b, b"wxyz")]);
    let u2 = c.unlink(a);
    assert_eq!(c.replies(), vec![Reply::Unlink { seqnum: u2, status: 0 }]);
}

#[test]
fn unlink_of_completed_or_unknown_urb_is_zero() {
    let mut c = Client::imported();
    let s = c.control_in(GET_DEVICE_DESCRIPTOR, 18);
    let u1 = c.unlink(s);
    let u2 = c.unlink(123_456);
    assert_eq!(
        c.replies(),
        vec![
            ok(s, &DEVICE_DESCRIPTOR),
            Reply::Unlink { seqnum: u1, status: 0 },
            Reply::Unlink { seqnum: u2, status: 0 }
        ]
    );
}

#[test]
fn unlink_of_middle_urb_keeps_order() {
    let mut c = Client::imported();
    let a = c.bulk_in(2);
    let b = c.bulk_in(2);
    let d = c.bulk_in(2);
    let u = c.unlink(b);
    let o = c.bulk_out(b"aadd");
    assert_eq!(
        c.replies(),
        vec![
            Reply::Unlink { seqnum: u, status: errno::ECONNRESET },
            out_ok(o, 4),
            ok(a, b"aa"),
            ok(d, b"dd")
        ]
    );
}

// ---------------------------------------------------------------------------
// Bad URB-phase input

#[test]
fn absurd_transfer_length_closes_without_allocating() {
    let mut c = Client::imported();
    let mut h = get_descriptor_urb();
    h[0x0F] = 0; // OUT: data would follow
    h[0x10..0x14].copy_from_slice(&2u32.to_be_bytes());
    h[0x18..0x1C].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        c.send(&h),
        Err(SessionError::Codec(CodecError::TransferTooLong { length: u32::MAX, max: MAX_TRANSFER_LENGTH }))
    );
    assert!(c.session.is_closing());
}

#[test]
fn unknown_command_closes_but_earlier_replies_survive() {
    let mut c = Client::imported();
    c.is_in.insert(1, true);
    let mut bytes = get_descriptor_urb();
    bytes.extend_from_slice(&[0, 0, 0, 9]);
    bytes.extend_from_slice(&[0; 44]);
    assert_eq!(c.send(&bytes), Err(SessionError::Codec(CodecError::UnknownCommand(UrbCommand(9)))));
    assert_eq!(c.replies(), vec![ok(1, &DEVICE_DESCRIPTOR)]);
}

#[test]
fn too_many_parked_urbs_close() {
    let mut c = Client::imported();
    for _ in 0..MAX_PARKED_URBS {
        c.bulk_in(1);
    }
    let cmd = CmdSubmit {
        basic: UrbBasic { seqnum: 999_999, devid: 0, direction: Direction::IN, ep: 1 },
        transfer_flags: 0,
        transfer_buffer_length: 1,
        start_frame: 0,
        number_of_packets: 0,
        interval: 0,
        setup: [0; 8],
    };
    assert_eq!(c.send(&cmd.to_bytes()), Err(SessionError::TooManyPendingUrbs));
}

// ---------------------------------------------------------------------------
// Properties

#[derive(Debug, Clone)]
enum Op {
    In(u32),
    Out(Vec<u8>),
    Control,
    /// Unlink the n-th submitted URB (modulo the count), or an unknown one.
    Unlink(usize),
    Halt,
    ClearHalt,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u32..40).prop_map(Op::In),
        4 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Out),
        1 => Just(Op::Control),
        2 => any::<usize>().prop_map(Op::Unlink),
        1 => Just(Op::Halt),
        1 => Just(Op::ClearHalt),
    ]
}

proptest! {
    #[test]
    fn management_phase_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), split in 0usize..400) {
        let mut c = Client::new();
        let (a, b) = bytes.split_at(split.min(bytes.len()));
        let _ = c.send(a);
        let _ = c.send(b);
    }

    #[test]
    fn urb_phase_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), split in 0usize..600) {
        let mut c = Client::imported();
        let (a, b) = bytes.split_at(split.min(bytes.len()));
        let _ = c.send(a);
        let _ = c.send(b);
    }

    /// Plausible headers (known commands, small lengths) reach deeper paths.
    #[test]
    fn urb_headers_never_panic(urbs in proptest::collection::vec((1u32..=2, any::<[u32; 4]>(), 0u32..64, any::<[u8; 8]>()), 1..20)) {
        let mut c = Client::imported();
        for (command, [seqnum, direction, ep, other], length, setup) in urbs {
            let mut h = [0u8; 48];
            h[0..4].copy_from_slice(&command.to_be_bytes());
            h[4..8].copy_from_slice(&seqnum.to_be_bytes());
            h[12..16].copy_from_slice(&(direction % 3).to_be_bytes());
            h[16..20].copy_from_slice(&(ep % 18).to_be_bytes());
            h[20..24].copy_from_slice(&other.to_be_bytes());
            h[24..28].copy_from_slice(&length.to_be_bytes());
            h[40..48].copy_from_slice(&setup);
            let mut bytes = h.to_vec();
            bytes.resize(48 + length as usize, 0xAB);
            if c.send(&bytes).is_err() {
                break;
            }
        }
        let _ = c.session.take_output();
    }

    /// Whatever the client does: every URB gets at most one answer, an
    /// unlinked URB (-ECONNRESET) never a RET_SUBMIT, and IN data arrives
    /// in exactly the order it was written.
    #[test]
    fn urb_answers_are_consistent(ops in proptest::collection::vec(op(), 1..60)) {
        let mut c = Client::imported();
        let mut submitted = Vec::new();
        let mut unlinks = HashMap::new();
        let mut written = Vec::new();
        let mut replies = Vec::new();
        for op in ops {
            match op {
                Op::In(n) => submitted.push(c.bulk_in(n)),
                Op::Out(data) => {
                    written.extend_from_slice(&data);
                    submitted.push(c.bulk_out(&data));
                }
                Op::Control => submitted.push(c.control_in(GET_DEVICE_DESCRIPTOR, 18)),
                Op::Unlink(i) => {
                    let target = if submitted.is_empty() { 0 } else { submitted[i % submitted.len()] };
                    unlinks.insert(c.unlink(target), target);
                }
                Op::Halt => c.dev.in_halted = true,
                Op::ClearHalt => submitted.push(c.control_out([0x02, 0x01, 0, 0, 0x81, 0, 0, 0], &[])),
            }
            replies.extend(c.replies());
        }
        let mut answered = HashSet::new();
        let mut cancelled = HashSet::new();
        let mut read = Vec::new();
        for r in &replies {
            match r {
                Reply::Submit { seqnum, status, data, actual_length, .. } => {
                    prop_assert!(answered.insert(*seqnum), "second answer for {}", seqnum);
                    prop_assert!(!cancelled.contains(seqnum), "RET_SUBMIT after unlink for {}", seqnum);
                    if *status != 0 {
                        prop_assert_eq!(*actual_length, 0);
                    }
                    if c.is_in[seqnum] && *status == 0 && data != &DEVICE_DESCRIPTOR[..] {
                        read.extend_from_slice(data);
                    }
                }
                Reply::Unlink { seqnum, status } => {
                    let target = unlinks[seqnum];
                    if *status == errno::ECONNRESET {
                        prop_assert!(!answered.contains(&target), "unlinked {} after its RET_SUBMIT", target);
                        prop_assert!(cancelled.insert(target));
                    } else {
                        prop_assert_eq!(*status, 0);
                    }
                }
            }
        }
        // Every URB is answered, cancelled, or still parked.
        let unanswered = submitted.iter().filter(|s| !answered.contains(*s) && !cancelled.contains(*s)).count();
        prop_assert_eq!(unanswered, c.session.held_in_requests());
        prop_assert!(written.starts_with(&read), "IN data out of order");
    }
}
