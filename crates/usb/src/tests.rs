//! The device model against a scripted command target: descriptors through
//! GET_DESCRIPTOR, standard and class requests, bulk routing and resets.

use vstick_bot::{Cbw, CommandTarget, Csw, CswStatus};
use vstick_scsi::{DataStage, Status};

use crate::{
    ControlResult, EP_IN, EP_OUT, EndpointInfo, Identity, InResult, InterfaceInfo, MassStorageDevice,
    OutResult, Setup, Speed, TransferType,
};

#[derive(Default)]
struct FakeTarget {
    max_lun: u8,
    intent: Option<DataStage>,
    begun: usize,
    ended: usize,
    aborted: usize,
    resets: usize,
}

impl CommandTarget for FakeTarget {
    fn max_lun(&self) -> u8 {
        self.max_lun
    }
    fn begin(&mut self, _lun: u8, _cdb: &[u8]) -> DataStage {
        self.begun += 1;
        self.intent.unwrap_or(DataStage::None)
    }
    fn data_in(&mut self, buf: &mut [u8]) {
        buf.fill(0xA5);
    }
    fn data_out(&mut self, _data: &[u8]) {}
    fn end(&mut self) -> Status {
        self.ended += 1;
        Status::Good
    }
    fn abort(&mut self) {
        self.aborted += 1;
    }
    fn reset(&mut self) {
        self.resets += 1;
    }
}

fn identity() -> Identity {
    Identity::default_for("00112233445566AA".into())
}

fn device() -> MassStorageDevice<FakeTarget> {
    MassStorageDevice::new(FakeTarget::default(), identity())
}

fn setup(request_type: u8, request: u8, value: u16, index: u16, length: u16) -> Setup {
    Setup { request_type, request, value, index, length }
}

fn get_descriptor(
    dev: &mut MassStorageDevice<FakeTarget>,
    kind: u8,
    index: u8,
    length: u16,
) -> ControlResult {
    dev.control(&setup(0x80, 6, u16::from_le_bytes([index, kind]), 0x0409, length), &[])
}

fn data(result: ControlResult) -> Vec<u8> {
    match result {
        ControlResult::Data(d) => d,
        other => panic!("expected data, got {other:?}"),
    }
}

fn cbw(tag: u32, host_len: u32, dir_in: bool) -> [u8; 31] {
    Cbw::new(tag, host_len, dir_in, 0, &[0x00, 0, 0, 0, 0, 0]).unwrap().to_bytes()
}

fn read_csw(dev: &mut MassStorageDevice<FakeTarget>) -> Csw {
    let mut buf = [0u8; 13];
    assert_eq!(dev.bulk_in(EP_IN, &mut buf), InResult::Data(13));
    Csw::parse(&buf).unwrap()
}

#[test]
fn setup_packet_round_trip() {
    let raw = [0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00]; // GET_DESCRIPTOR device, 18 bytes
    let s = Setup::from_bytes(raw);
    assert_eq!(s, setup(0x80, 6, 0x0100, 0, 18));
    assert!(s.is_in());
    assert_eq!(s.to_bytes(), raw);
}

#[test]
fn get_device_descriptor_truncated_to_wlength() {
    let mut dev = device();
    let full = data(get_descriptor(&mut dev, 1, 0, 64));
    assert_eq!(full, dev.device_descriptor_bytes());
    assert_eq!(full.len(), 18);
    // Linux first asks for 8 bytes to learn bMaxPacketSize0.
    assert_eq!(data(get_descriptor(&mut dev, 1, 0, 8)), &full[..8]);
    assert_eq!(full[8..12], [0x09, 0x12, 0x01, 0x00], "VID 0x1209, PID 0x0001");
}

#[test]
fn get_configuration_descriptor_header_then_total() {
    let mut dev = device();
    let header = data(get_descriptor(&mut dev, 2, 0, 9));
    assert_eq!(header.len(), 9);
    let total = u16::from_le_bytes([header[2], header[3]]);
    assert_eq!(total, 32);
    let full = data(get_descriptor(&mut dev, 2, 0, 0xFF));
    assert_eq!(full.len(), 32);
    assert_eq!(full, dev.configuration_descriptor_bytes());
    assert_eq!(get_descriptor(&mut dev, 2, 1, 0xFF), ControlResult::Stall, "only configuration index 0");
}

#[test]
fn qualifier_and_other_speed_configuration() {
    let mut dev = device();
    assert_eq!(data(get_descriptor(&mut dev, 6, 0, 10)), [10, 6, 0x00, 0x02, 0, 0, 0, 64, 1, 0]);
    let other = data(get_descriptor(&mut dev, 7, 0, 0xFF));
    assert_eq!(other.len(), 32);
    assert_eq!(other[1], 7);
    assert_eq!(&other[22..24], &[64, 0], "full-speed bulk packets");
}

#[test]
fn string_descriptors_via_control() {
    let mut dev = device();
    assert_eq!(data(get_descriptor(&mut dev, 3, 0, 255)), [4, 3, 0x09, 0x04]);
    let utf16 = |s: &str| -> Vec<u8> {
        let mut v = vec![(2 + 2 * s.len()) as u8, 3];
        s.encode_utf16().for_each(|u| v.extend_from_slice(&u.to_le_bytes()));
        v
    };
    assert_eq!(data(get_descriptor(&mut dev, 3, 1, 255)), utf16("vstick"));
    assert_eq!(data(get_descriptor(&mut dev, 3, 2, 255)), utf16("vstick USB stick"));
    assert_eq!(data(get_descriptor(&mut dev, 3, 3, 255)), utf16("00112233445566AA"));
    // Windows reads the length byte first.
    assert_eq!(data(get_descriptor(&mut dev, 3, 3, 2)), [34, 3]);
    assert_eq!(get_descriptor(&mut dev, 3, 4, 255), ControlResult::Stall);
    // Microsoft OS string descriptor probe.
    assert_eq!(get_descriptor(&mut dev, 3, 0xEE, 255), ControlResult::Stall);
}

#[test]
fn empty_serial_has_no_string() {
    let mut id = identity();
    id.serial.clear();
    let mut dev = MassStorageDevice::new(FakeTarget::default(), id);
    assert_eq!(dev.device_descriptor_bytes()[16], 0);
    assert_eq!(get_descriptor(&mut dev, 3, 3, 255), ControlResult::Stall);
}

#[test]
fn unknown_descriptors_stall() {
    let mut dev = device();
    for kind in [0u8, 4, 5, 8, 0x0F, 0x21, 0x22, 0xFF] {
        assert_eq!(get_descriptor(&mut dev, kind, 0, 255), ControlResult::Stall, "type {kind:#x}");
    }
    // HID report descriptor request to the interface.
    assert_eq!(dev.control(&setup(0x81, 6, 0x2200, 0, 255), &[]), ControlResult::Stall);
}

#[test]
fn get_max_lun() {
    for max_lun in [0u8, 3, 15] {
        let mut dev = MassStorageDevice::new(FakeTarget { max_lun, ..Default::default() }, identity());
        assert_eq!(dev.control(&setup(0xA1, 0xFE, 0, 0, 1), &[]), ControlResult::Data(vec![max_lun]));
    }
    let mut dev = device();
    // wValue, wIndex (interface) and wLength are checked.
    assert_eq!(dev.control(&setup(0xA1, 0xFE, 1, 0, 1), &[]), ControlResult::Stall);
    assert_eq!(dev.control(&setup(0xA1, 0xFE, 0, 1, 1), &[]), ControlResult::Stall);
    assert_eq!(dev.control(&setup(0xA1, 0xFE, 0, 0, 2), &[]), ControlResult::Stall);
    assert_eq!(dev.control(&setup(0xA1, 0xFE, 0, 0, 0), &[]), ControlResult::Stall);
    // Wrong direction.
    assert_eq!(dev.control(&setup(0x21, 0xFE, 0, 0, 1), &[]), ControlResult::Stall);
}

#[test]
fn bulk_only_reset_aborts_and_keeps_halts() {
    let mut dev = device();
    dev.target_mut().intent = Some(DataStage::In(4096));
    assert_eq!(dev.bulk_out(EP_OUT, &cbw(1, 4096, true)), OutResult::Accepted(31));
    assert_eq!(dev.bulk_in(EP_IN, &mut [0u8; 512]), InResult::Data(512));
    assert_eq!(dev.bulk_out(EP_OUT, &[0u8; 31]), OutResult::Stall);
    // The stray OUT halted the OUT pipe; the reset aborts the READ.
    assert_eq!(dev.control(&setup(0x21, 0xFF, 0, 0, 0), &[]), ControlResult::Ack);
    assert_eq!(dev.target().aborted, 1);
    assert_eq!(dev.target().resets, 0, "not a SCSI reset");
    assert_eq!(dev.endpoint_halted(EP_OUT), Some(true), "halts stay until CLEAR_FEATURE");
    assert_eq!(dev.control(&setup(0x02, 1, 0, u16::from(EP_OUT), 0), &[]), ControlResult::Ack);
    dev.target_mut().intent = None;
    assert_eq!(dev.bulk_out(EP_OUT, &cbw(2, 0, false)), OutResult::Accepted(31));
    assert_eq!(read_csw(&mut dev), Csw { tag: 2, residue: 0, status: CswStatus::Passed });
    // Wrong fields stall.
    assert_eq!(dev.control(&setup(0x21, 0xFF, 1, 0, 0), &[]), ControlResult::Stall);
    assert_eq!(dev.control(&setup(0x21, 0xFF, 0, 2, 0), &[]), ControlResult::Stall);
    assert_eq!(dev.control(&setup(0x21, 0xFF, 0, 0, 1), &[0]), ControlResult::Stall);
}

#[test]
fn clear_feature_after_a_stall() {
    // Case 8: the host expects 512 bytes in, the command wants data out.
    let target = FakeTarget { intent: Some(DataStage::Out(512)), ..FakeTarget::default() };
    let mut dev = MassStorageDevice::new(target, identity());
    assert_eq!(dev.bulk_out(EP_OUT, &cbw(7, 512, true)), OutResult::Accepted(31));
    assert_eq!(dev.bulk_in(EP_IN, &mut [0u8; 512]), InResult::Stall);
    let status = setup(0x82, 0, 0, u16::from(EP_IN), 2);
    assert_eq!(dev.control(&status, &[]), ControlResult::Data(vec![1, 0]), "halt bit set");
    assert_eq!(dev.control(&setup(0x02, 1, 0, u16::from(EP_IN), 0), &[]), ControlResult::Ack);
    assert_eq!(dev.control(&status, &[]), ControlResult::Data(vec![0, 0]));
    assert_eq!(read_csw(&mut dev), Csw { tag: 7, residue: 512, status: CswStatus::PhaseError });
}

#[test]
fn set_feature_halt_and_endpoint_status() {
    let mut dev = device();
    assert_eq!(dev.control(&setup(0x02, 3, 0, u16::from(EP_OUT), 0), &[]), ControlResult::Ack);
    assert_eq!(dev.control(&setup(0x82, 0, 0, 0x02, 2), &[]), ControlResult::Data(vec![1, 0]));
    assert_eq!(dev.bulk_out(EP_OUT, &cbw(1, 0, false)), OutResult::Stall);
    assert_eq!(dev.control(&setup(0x02, 1, 0, 0x02, 0), &[]), ControlResult::Ack);
    assert_eq!(dev.bulk_out(EP_OUT, &cbw(1, 0, false)), OutResult::Accepted(31));
    // Endpoint 0 in either direction is fine; unknown endpoints stall.
    assert_eq!(dev.control(&setup(0x82, 0, 0, 0x80, 2), &[]), ControlResult::Data(vec![0, 0]));
    assert_eq!(dev.control(&setup(0x82, 0, 0, 0x03, 2), &[]), ControlResult::Stall);
    assert_eq!(dev.control(&setup(0x82, 0, 0, 0x01, 2), &[]), ControlResult::Stall, "0x01 is OUT 1");
    assert_eq!(dev.control(&setup(0x02, 1, 0, 0x85, 0), &[]), ControlResult::Stall);
    // Feature selectors other than ENDPOINT_HALT.
    assert_eq!(dev.control(&setup(0x02, 1, 1, 0x81, 0), &[]), ControlResult::Stall);
}

#[test]
fn device_and_interface_status() {
    let mut dev = device();
    assert_eq!(dev.control(&setup(0x80, 0, 0, 0, 2), &[]), ControlResult::Data(vec![0, 0]), "bus-powered");
    assert_eq!(dev.control(&setup(0x81, 0, 0, 0, 2), &[]), ControlResult::Data(vec![0, 0]));
    assert_eq!(dev.control(&setup(0x81, 0, 0, 1, 2), &[]), ControlResult::Stall);
}

#[test]
fn configuration_requests() {
    let mut dev = device();
    assert_eq!(dev.configuration(), 1, "starts configured");
    assert_eq!(dev.control(&setup(0x80, 8, 0, 0, 1), &[]), ControlResult::Data(vec![1]));
    assert_eq!(dev.control(&setup(0x00, 9, 2, 0, 0), &[]), ControlResult::Stall);
    assert_eq!(dev.control(&setup(0x00, 9, 0x0101, 0, 0), &[]), ControlResult::Stall);
    assert_eq!(dev.configuration(), 1);

    assert_eq!(dev.control(&setup(0x00, 9, 0, 0, 0), &[]), ControlResult::Ack);
    assert_eq!(dev.configuration(), 0);
    assert!(dev.interfaces().is_empty() && dev.endpoints().is_empty());
    assert_eq!(dev.control(&setup(0x80, 8, 0, 0, 1), &[]), ControlResult::Data(vec![0]));
    assert_eq!(dev.bulk_out(EP_OUT, &cbw(1, 0, false)), OutResult::Stall, "no endpoints unconfigured");
    assert_eq!(dev.bulk_in(EP_IN, &mut [0u8; 13]), InResult::Stall);
    assert_eq!(dev.control(&setup(0xA1, 0xFE, 0, 0, 1), &[]), ControlResult::Stall, "no interface");
    assert_eq!(dev.control(&setup(0x81, 10, 0, 0, 1), &[]), ControlResult::Stall);

    assert_eq!(dev.control(&setup(0x00, 9, 1, 0, 0), &[]), ControlResult::Ack);
    assert_eq!(dev.configuration(), 1);
    assert_eq!(dev.bulk_out(EP_OUT, &cbw(1, 0, false)), OutResult::Accepted(31));
}

#[test]
fn set_configuration_clears_halts_and_wedge() {
    let mut dev = device();
    assert_eq!(dev.bulk_out(EP_OUT, &[0u8; 30]), OutResult::Stall, "invalid CBW wedges");
    assert_eq!(dev.endpoint_halted(EP_IN), Some(true));
    assert!(dev.set_configuration(1));
    assert_eq!(dev.endpoint_halted(EP_IN), Some(false));
    assert_eq!(dev.endpoint_halted(EP_OUT), Some(false));
    assert_eq!(dev.bulk_out(EP_OUT, &cbw(3, 0, false)), OutResult::Accepted(31));
    assert_eq!(read_csw(&mut dev).tag, 3);
}

#[test]
fn interface_requests() {
    let mut dev = device();
    assert_eq!(dev.control(&setup(0x81, 10, 0, 0, 1), &[]), ControlResult::Data(vec![0]));
    assert_eq!(dev.control(&setup(0x81, 10, 0, 1, 1), &[]), ControlResult::Stall);
    assert_eq!(dev.control(&setup(0x01, 11, 0, 0, 0), &[]), ControlResult::Ack);
    assert_eq!(dev.control(&setup(0x01, 11, 1, 0, 0), &[]), ControlResult::Stall, "only alt 0");
    assert_eq!(dev.control(&setup(0x01, 11, 0, 1, 0), &[]), ControlResult::Stall, "only interface 0");
    assert_eq!(dev.alt_setting(0), Some(0));
    assert_eq!(dev.alt_setting(1), None);
}

#[test]
fn unknown_requests_stall() {
    let mut dev = device();
    let cases = [
        setup(0x00, 3, 1, 0, 0),       // SET_FEATURE DEVICE_REMOTE_WAKEUP: not offered
        setup(0x00, 1, 1, 0, 0),       // CLEAR_FEATURE DEVICE_REMOTE_WAKEUP
        setup(0x00, 3, 2, 0x0100, 0),  // SET_FEATURE TEST_MODE
        setup(0x01, 3, 0, 0, 0),       // SET_FEATURE on the interface: no interface features
        setup(0x00, 7, 0x0100, 0, 18), // SET_DESCRIPTOR
        setup(0x82, 12, 0, 0x81, 2),   // SYNCH_FRAME
        setup(0xC0, 0x01, 0, 0, 4),    // vendor request
        setup(0x40, 0x01, 0, 0, 0),    // vendor OUT
        setup(0xA1, 0x00, 0, 0, 1),    // unknown class request
        setup(0x21, 0x20, 0, 0, 0),    // unknown class OUT (e.g. CDC)
        setup(0x00, 5, 200, 0, 0),     // SET_ADDRESS above 127
    ];
    for s in cases {
        assert_eq!(dev.control(&s, &[]), ControlResult::Stall, "{s:?}");
    }
    assert_eq!(dev.control(&setup(0x00, 5, 5, 0, 0), &[]), ControlResult::Ack, "SET_ADDRESS");
}

#[test]
fn bulk_endpoint_routing() {
    let mut dev = device();
    assert_eq!(dev.bulk_out(0x82, &cbw(1, 0, false)), OutResult::Stall);
    assert_eq!(dev.bulk_out(0x01, &cbw(1, 0, false)), OutResult::Stall);
    assert_eq!(dev.bulk_in(0x02, &mut [0u8; 13]), InResult::Stall);
    assert_eq!(dev.bulk_in(0x03, &mut [0u8; 13]), InResult::Stall);
    assert_eq!(dev.bulk_out(2, &cbw(1, 0, false)), OutResult::Accepted(31));
    // USB/IP names the IN endpoint by number only.
    let mut buf = [0u8; 13];
    assert_eq!(dev.bulk_in(1, &mut buf), InResult::Data(13));
    assert_eq!(Csw::parse(&buf).unwrap().tag, 1);
    assert_eq!(dev.bulk_in(EP_IN, &mut buf), InResult::Pending);
}

#[test]
fn port_reset_clears_halts_and_resets_scsi() {
    let mut dev = device();
    dev.target_mut().intent = Some(DataStage::In(4096));
    assert_eq!(dev.bulk_out(EP_OUT, &cbw(1, 4096, true)), OutResult::Accepted(31));
    assert_eq!(dev.control(&setup(0x02, 3, 0, u16::from(EP_IN), 0), &[]), ControlResult::Ack);
    assert_eq!(dev.control(&setup(0x02, 3, 0, u16::from(EP_OUT), 0), &[]), ControlResult::Ack);
    dev.reset();
    assert_eq!(dev.target().aborted, 1, "the READ in flight is aborted");
    assert_eq!(dev.target().resets, 1, "SCSI reset: unit attention");
    assert_eq!(dev.endpoint_halted(EP_IN), Some(false));
    assert_eq!(dev.endpoint_halted(EP_OUT), Some(false));
    assert_eq!(dev.configuration(), 1, "configuration kept for the transport");
    dev.target_mut().intent = None;
    assert_eq!(dev.bulk_out(EP_OUT, &cbw(9, 0, false)), OutResult::Accepted(31));
    assert_eq!(read_csw(&mut dev).tag, 9);
}

#[test]
fn interfaces_and_endpoints_follow_speed() {
    let dev = device();
    assert_eq!(dev.speed(), Speed::High);
    assert_eq!(dev.interfaces(), [InterfaceInfo { number: 0, class: 8, subclass: 6, protocol: 0x50 }]);
    let bulk = |address, max_packet_size| EndpointInfo {
        address,
        transfer_type: TransferType::Bulk,
        max_packet_size,
        interval: 0,
        interface: 0,
    };
    assert_eq!(dev.endpoints(), [bulk(0x81, 512), bulk(0x02, 512)]);
    let full = device().with_speed(Speed::Full);
    assert_eq!(full.endpoints(), [bulk(0x81, 64), bulk(0x02, 64)]);
    assert_eq!(&full.configuration_descriptor_bytes()[22..24], &[64, 0]);
    let sup = device().with_speed(Speed::Super);
    assert_eq!(sup.speed(), Speed::Super);
    assert_eq!(sup.endpoints(), [bulk(0x81, 1024), bulk(0x02, 1024)]);
}

#[test]
fn super_speed_descriptors_via_control() {
    let mut dev = device().with_speed(Speed::Super);
    let d = data(get_descriptor(&mut dev, 1, 0, 18));
    assert_eq!(&d[2..4], &[0x00, 0x03], "bcdUSB 3.00");
    assert_eq!(d[7], 9, "bMaxPacketSize0 exponent");
    assert_eq!(dev.summary().bcd_usb, 0x0300);
    // Linux reads the BOS header first, then wTotalLength.
    let header = data(get_descriptor(&mut dev, 15, 0, 5));
    assert_eq!(header, [5, 15, 22, 0, 2]);
    assert_eq!(data(get_descriptor(&mut dev, 15, 0, 0xFF)).len(), 22);
    let config = data(get_descriptor(&mut dev, 2, 0, 0xFF));
    assert_eq!(config.len(), 44);
    assert_eq!(config, dev.configuration_descriptor_bytes());
    assert_eq!(get_descriptor(&mut dev, 6, 0, 10), ControlResult::Stall, "no qualifier at SuperSpeed");
    assert_eq!(get_descriptor(&mut dev, 7, 0, 0xFF), ControlResult::Stall, "no other-speed config");
    // At high speed (bcdUSB 2.00) there is no BOS.
    assert_eq!(get_descriptor(&mut device(), 15, 0, 5), ControlResult::Stall);
}

#[test]
fn super_speed_requests() {
    let mut dev = device().with_speed(Speed::Super);
    let status = setup(0x80, 0, 0, 0, 2);
    assert_eq!(dev.control(&status, &[]), ControlResult::Data(vec![0, 0]));
    // SET_FEATURE(U1_ENABLE), SET_FEATURE(U2_ENABLE): GET_STATUS bits 2 and 3.
    assert_eq!(dev.control(&setup(0x00, 3, 48, 0, 0), &[]), ControlResult::Ack);
    assert_eq!(dev.control(&status, &[]), ControlResult::Data(vec![0x04, 0]));
    assert_eq!(dev.control(&setup(0x00, 3, 49, 0, 0), &[]), ControlResult::Ack);
    assert_eq!(dev.control(&status, &[]), ControlResult::Data(vec![0x0C, 0]));
    assert_eq!(dev.control(&setup(0x00, 1, 48, 0, 0), &[]), ControlResult::Ack, "CLEAR_FEATURE(U1)");
    assert_eq!(dev.control(&status, &[]), ControlResult::Data(vec![0x08, 0]));
    dev.reset();
    assert_eq!(dev.control(&status, &[]), ControlResult::Data(vec![0, 0]), "reset clears U1/U2");
    assert_eq!(dev.control(&setup(0x00, 3, 50, 0, 0), &[]), ControlResult::Stall, "no LTM");
    // SET_SEL with its 6 bytes, SET_ISOCH_DELAY, FUNCTION_SUSPEND on interface 0.
    assert_eq!(dev.control(&setup(0x00, 48, 0, 0, 6), &[1, 2, 3, 0, 4, 0]), ControlResult::Ack);
    assert_eq!(dev.control(&setup(0x00, 48, 0, 0, 5), &[0; 5]), ControlResult::Stall, "SET_SEL is 6 bytes");
    assert_eq!(dev.control(&setup(0x00, 49, 40, 0, 0), &[]), ControlResult::Ack);
    assert_eq!(dev.control(&setup(0x01, 3, 0, 0x0100, 0), &[]), ControlResult::Ack);
    assert_eq!(dev.control(&setup(0x01, 3, 0, 0x0101, 0), &[]), ControlResult::Stall, "no interface 1");

    // None of these exist at high speed.
    let mut high = device();
    assert_eq!(high.control(&setup(0x00, 3, 48, 0, 0), &[]), ControlResult::Stall);
    assert_eq!(high.control(&setup(0x00, 48, 0, 0, 6), &[0; 6]), ControlResult::Stall);
    assert_eq!(high.control(&setup(0x00, 49, 40, 0, 0), &[]), ControlResult::Stall);
    assert_eq!(high.control(&setup(0x01, 3, 0, 0x0100, 0), &[]), ControlResult::Stall);
}

#[test]
fn summary_matches_descriptor() {
    let dev = device();
    let s = dev.summary();
    let d = dev.device_descriptor_bytes();
    assert_eq!(s.bcd_usb, u16::from_le_bytes([d[2], d[3]]));
    assert_eq!((s.class, s.subclass, s.protocol), (d[4], d[5], d[6]));
    assert_eq!(s.vendor_id, u16::from_le_bytes([d[8], d[9]]));
    assert_eq!(s.product_id, u16::from_le_bytes([d[10], d[11]]));
    assert_eq!(s.bcd_device, u16::from_le_bytes([d[12], d[13]]));
    assert_eq!(s.num_configurations, d[17]);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Control([u8; 8], Vec<u8>),
        Out(u8, Vec<u8>),
        In(u8, usize),
        Reset,
    }

    fn op() -> impl Strategy<Value = Op> {
        let endpoint = prop_oneof![Just(EP_IN), Just(EP_OUT), Just(1u8), any::<u8>()];
        // Bias the setup packets towards requests the device knows.
        let setup = (
            prop_oneof![
                Just(0x00u8),
                Just(0x01),
                Just(0x02),
                Just(0x80),
                Just(0x81),
                Just(0x82),
                Just(0x21),
                Just(0xA1),
                any::<u8>()
            ],
            prop_oneof![0u8..13, Just(0xFE), Just(0xFF), any::<u8>()],
            any::<[u8; 6]>(),
        )
            .prop_map(|(t, r, rest)| {
                let [a, b, c, d, e, f] = rest;
                [t, r, a, b, c, d, e, f]
            });
        prop_oneof![
            3 => (setup, proptest::collection::vec(any::<u8>(), 0..16)).prop_map(|(s, d)| Op::Control(s, d)),
            3 => (endpoint.clone(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(e, d)| Op::Out(e, d)),
            1 => (endpoint.clone(), any::<u16>()).prop_map(|(e, n)| {
                let cbw = Cbw::new(u32::from(n), u32::from(n % 600), n % 2 == 0, 0, &[0x00; 6]).unwrap();
                Op::Out(e, cbw.to_bytes().to_vec())
            }),
            3 => (endpoint, 0usize..600).prop_map(|(e, n)| Op::In(e, n)),
            1 => Just(Op::Reset),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_requests_never_panic(ops in proptest::collection::vec(op(), 0..40)) {
            let mut dev = device();
            for op in ops {
                match op {
                    Op::Control(raw, data) => {
                        let s = Setup::from_bytes(raw);
                        if let ControlResult::Data(d) = dev.control(&s, &data) {
                            prop_assert!(d.len() <= usize::from(s.length), "truncated to wLength");
                        }
                    }
                    Op::Out(ep, data) => {
                        if let OutResult::Accepted(n) = dev.bulk_out(ep, &data) {
                            prop_assert!(n <= data.len());
                        }
                    }
                    Op::In(ep, len) => {
                        let mut buf = vec![0u8; len];
                        if let InResult::Data(n) = dev.bulk_in(ep, &mut buf) {
                            prop_assert!(n <= len);
                        }
                    }
                    Op::Reset => dev.reset(),
                }
            }
            // SET_CONFIGURATION(1) always brings back a working device.
            prop_assert_eq!(dev.control(&setup(0x00, 9, 1, 0, 0), &[]), ControlResult::Ack);
            prop_assert_eq!(dev.bulk_out(EP_OUT, &cbw(0xFEED, 0, false)), OutResult::Accepted(31));
            prop_assert_eq!(read_csw(&mut dev).tag, 0xFEED);
        }
    }
}
