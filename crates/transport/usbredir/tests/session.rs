//! Session scenarios against `HostSim` (QEMU's side) and a scripted device.

mod support;

use support::*;
use vstick_usbredir::proto::{
    BulkHeader, Caps, EndpointType, Packet, PacketType, SmallDataHeader, Speed, Status, WireFormat,
};
use vstick_usbredir::{OUR_CAPS, SessionError, VERSION};

fn connected() -> HostSim<FakeDevice> {
    let mut h = HostSim::new(FakeDevice::new(), QEMU_CAPS);
    h.handshake();
    h
}

#[test]
fn only_hello_until_the_peer_hello_then_device_description() {
    let mut raw = HostSim::new(FakeDevice::new(), QEMU_CAPS);
    let first = raw.session.take_output();
    assert_eq!(first.len(), 80, "12-byte header + 64-byte version + one caps word");
    assert_eq!(&first[..12], &[0, 0, 0, 0, 68, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&first[76..80], &[0x72, 0, 0, 0], "caps 0x72");
    // Nothing else, however long we wait, until the peer's hello.
    raw.session.service(&mut raw.dev).unwrap();
    assert!(raw.session.output().is_empty());

    let mut sim = HostSim::new(FakeDevice::new(), QEMU_CAPS);
    let announce = sim.handshake();
    let (version, caps) = sim.device_hello.clone().unwrap();
    assert_eq!(version, VERSION);
    assert!(version.starts_with("vstick "));
    assert_eq!(caps, OUR_CAPS);
    assert_eq!(caps, Caps(0x72));
    assert_eq!(sim.fmt.header_len(), 16, "both sides have 64bits_ids");
    assert_eq!(sim.session.protocol().wire_format(), sim.fmt);

    let types: Vec<_> = announce.iter().map(|f| f.packet.packet_type()).collect();
    assert_eq!(types, [PacketType::INTERFACE_INFO, PacketType::EP_INFO, PacketType::DEVICE_CONNECT]);
    let Packet::InterfaceInfo(ifs) = &announce[0].packet else { unreachable!() };
    assert_eq!(ifs.interface_count, 1);
    assert_eq!(
        (ifs.interface[0], ifs.interface_class[0], ifs.interface_subclass[0], ifs.interface_protocol[0]),
        (0, 8, 6, 0x50)
    );
    let Packet::EpInfo(eps) = &announce[1].packet else { unreachable!() };
    for i in 0..32 {
        let expected = match i {
            0 | 16 => EndpointType::CONTROL,
            2 | 17 => EndpointType::BULK,
            _ => EndpointType::INVALID,
        };
        assert_eq!(eps.ep_type[i], expected, "ep index {i}");
    }
    assert_eq!((eps.max_packet_size[0], eps.max_packet_size[2], eps.max_packet_size[17]), (64, 512, 512));
    let Packet::DeviceConnect(dc) = announce[2].packet else { unreachable!() };
    assert_eq!(dc.speed, Speed::HIGH);
    assert_eq!((dc.vendor_id, dc.product_id, dc.device_version_bcd), (0x1234, 0x5678, 0x0100));
    assert!(announce.iter().all(|f| f.id == 0), "unsolicited packets carry id 0");
}

#[test]
fn old_peer_gets_narrow_headers() {
    // A peer with no optional caps: 32-bit ids, 8-byte device_connect, 96-byte ep_info.
    let mut h = HostSim::new(FakeDevice::new(), Caps(0));
    let announce = h.handshake();
    assert_eq!(h.fmt, WireFormat::INITIAL);
    assert_eq!(announce.len(), 3);
    let Packet::DeviceConnect(dc) = announce[2].packet else { unreachable!() };
    assert_eq!(dc.device_version_bcd, 0, "not on the wire");
    // 16-bit bulk lengths: an IN of 13 bytes answered with an 8-byte bulk header.
    h.dev.queue_in(&[7; 13]);
    let id = h.bulk_in(0x81, 13);
    let raw = h.session.take_output();
    assert_eq!(raw.len(), 12 + 8 + 13);
    assert_eq!(raw[8..12], u32::try_from(id).unwrap().to_le_bytes());
}

#[test]
fn anything_but_hello_first_is_a_protocol_error() {
    let mut h = HostSim::new(FakeDevice::new(), QEMU_CAPS);
    let _ = h.recv();
    let bytes = h.encode(1, &Packet::Reset);
    let err = h.feed(&bytes).unwrap_err();
    assert_eq!(err, SessionError::HelloExpected(PacketType::RESET));
    assert!(err.to_string().contains("hello first"), "{err}");
    // The session stays closed.
    assert!(matches!(h.feed(&[]), Err(SessionError::Closed(_))));
    assert_eq!(h.dev.resets, 0);
}

#[test]
fn get_descriptor_and_short_reads() {
    let mut h = connected();
    let id = h.control_in(0x80, 0x06, 0x0100, 0, 18);
    let r = h.recv();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].id, id);
    let (hdr, data) = control(&r[0]);
    assert_eq!(hdr.status, Status::SUCCESS);
    assert_eq!(usize::from(hdr.length), data.len());
    assert_eq!(data, DEVICE_DESCRIPTOR);
    // Fields other than status/length are echoed.
    assert_eq!((hdr.endpoint, hdr.request, hdr.requesttype, hdr.value), (0x80, 0x06, 0x80, 0x0100));

    h.control_in(0x80, 0x06, 0x0100, 0, 8);
    let r = h.recv();
    assert_eq!(control(&r[0]).1, &DEVICE_DESCRIPTOR[..8]);
    let (setup, _) = h.dev.controls.last().unwrap().clone();
    assert_eq!((setup.request_type, setup.request, setup.value, setup.length), (0x80, 0x06, 0x0100, 8));
}

#[test]
fn control_in_replies_are_capped_at_4096_bytes() {
    let mut h = connected();
    h.control_in(0x80, 0x06, 0x0309, 0, 0xffff);
    let r = h.recv();
    let (hdr, data) = control(&r[0]);
    assert_eq!(hdr.status, Status::SUCCESS);
    assert_eq!((hdr.length, data.len()), (4096, 4096));
}

#[test]
fn control_out_and_stall() {
    let mut h = connected();
    let id = h.control_out(0x40, 0x10, 0, 0, &[1, 2, 3]);
    let r = h.recv();
    let (hdr, data) = control(&r[0]);
    assert_eq!(r[0].id, id);
    assert_eq!(
        (hdr.status, hdr.length, data.len()),
        (Status::SUCCESS, 3, 0),
        "OUT reply: length written, no data"
    );
    assert_eq!(h.dev.controls.last().unwrap().1, [1, 2, 3]);

    h.control_in(0x80, 0x06, 0x0f00, 0, 5); // BOS: the fake has none
    let (hdr, data) = control(&h.recv()[0]);
    assert_eq!((hdr.status, hdr.length, data.len()), (Status::STALL, 0, 0));

    // GET MAX LUN, a class request.
    h.control_in(0xa1, 0xfe, 0, 0, 1);
    assert_eq!(control(&h.recv()[0]).1, [0]);
}

#[test]
fn control_on_a_non_control_endpoint_or_mismatched_direction_is_inval() {
    let mut h = connected();
    let hdr = vstick_usbredir::proto::ControlHeader {
        endpoint: 0x90,
        request: 6,
        requesttype: 0x80,
        status: Status::SUCCESS,
        value: 0x100,
        index: 0,
        length: 18,
    };
    h.send(&Packet::Control(hdr, &[]));
    assert_eq!(control(&h.recv()[0]).0.status, Status::INVAL);
    // Endpoint says IN, requesttype says OUT.
    h.send(&Packet::Control(
        vstick_usbredir::proto::ControlHeader { endpoint: 0x80, requesttype: 0x00, ..hdr },
        &[],
    ));
    assert_eq!(control(&h.recv()[0]).0.status, Status::INVAL);
    assert!(h.dev.controls.is_empty(), "the device never saw them");
}

#[test]
fn bulk_out_cbw_then_data_in_and_csw() {
    let mut h = connected();
    let cbw = cbw(0x1234, 512, true, 0, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    let data: Vec<u8> = (0..512u32).map(|i| i as u8).collect();
    h.dev.on_out.push_back(data.clone());
    let out_id = h.bulk_out(0x02, &cbw);
    let r = h.recv();
    assert_eq!(r.len(), 1);
    let (hdr, payload) = bulk(&r[0]);
    assert_eq!(r[0].id, out_id);
    assert_eq!((hdr.endpoint, hdr.status, hdr.length, payload.len()), (0x02, Status::SUCCESS, 31, 0));
    assert_eq!(h.dev.outs, vec![cbw]);

    let in_id = h.bulk_in(0x81, 512);
    let r = h.recv();
    let (hdr, payload) = bulk(&r[0]);
    assert_eq!(r[0].id, in_id);
    assert_eq!((hdr.endpoint, hdr.status, hdr.length), (0x81, Status::SUCCESS, 512));
    assert_eq!(payload, data);

    let csw = [0x55, 0x53, 0x42, 0x53, 0x34, 0x12, 0, 0, 0, 0, 0, 0, 0];
    h.dev.queue_in(&csw);
    let csw_id = h.bulk_in(0x81, 13);
    let r = h.recv();
    assert_eq!(r[0].id, csw_id);
    assert_eq!(bulk(&r[0]).1, csw);
}

#[test]
fn pipelined_in_requests_complete_in_fifo_order() {
    let mut h = connected();
    // QEMU queues several INs before the device has anything: all held.
    let ids: Vec<u64> = (0..3).map(|_| h.bulk_in(0x81, 4)).collect();
    assert!(h.recv().is_empty(), "held requests are NAKed, not answered");
    assert_eq!(h.session.held_in_requests(), 3);

    // The OUT makes 10 bytes available: 4 + 4 + 2 (short packet).
    h.dev.on_out.push_back((1..=10).collect());
    let out_id = h.bulk_out(0x02, &[0; 31]);
    let r = h.recv();
    let got: Vec<(u64, Vec<u8>)> = r.iter().map(|f| (f.id, bulk(f).1.to_vec())).collect();
    assert_eq!(
        got,
        vec![(out_id, vec![]), (ids[0], vec![1, 2, 3, 4]), (ids[1], vec![5, 6, 7, 8]), (ids[2], vec![9, 10]),]
    );
    assert_eq!(bulk(&r[3]).0.length, 2, "short packet length = bytes sent");
    assert_eq!(h.session.held_in_requests(), 0);
}

#[test]
fn cancel_is_answered_exactly_once() {
    let mut h = connected();
    let a = h.bulk_in(0x81, 64);
    let b = h.bulk_in(0x81, 64);
    h.send_with_id(b, &Packet::CancelDataPacket).unwrap();
    let r = h.recv();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].id, b);
    let (hdr, data) = bulk(&r[0]);
    assert_eq!((hdr.endpoint, hdr.status, hdr.length, data.len()), (0x81, Status::CANCELLED, 0, 0));
    // A second cancel for the same id: nothing.
    h.send_with_id(b, &Packet::CancelDataPacket).unwrap();
    assert!(h.recv().is_empty());
    // `a` is still held and completes normally.
    h.dev.queue_in(&[9; 3]);
    h.send(&Packet::GetConfiguration);
    let r = h.recv();
    assert_eq!(r.len(), 2);
    assert_eq!(r[1].id, a);
    assert_eq!(bulk(&r[1]).1, [9, 9, 9]);
}

#[test]
fn cancel_of_a_completed_packet_is_ignored() {
    let mut h = connected();
    h.dev.queue_in(&[1; 8]);
    let id = h.bulk_in(0x81, 8);
    assert_eq!(h.recv().len(), 1);
    h.send_with_id(id, &Packet::CancelDataPacket).unwrap();
    assert!(h.recv().is_empty());
    let out = h.bulk_out(0x02, &[0; 4]);
    h.recv();
    h.send_with_id(out, &Packet::CancelDataPacket).unwrap();
    assert!(h.recv().is_empty());
}

#[test]
fn set_configuration_resends_descriptions_before_the_status() {
    let mut h = connected();
    let id = h.send(&Packet::SetConfiguration { configuration: 0 });
    let r = h.recv();
    let types: Vec<_> = r.iter().map(|f| f.packet.packet_type()).collect();
    assert_eq!(types, [PacketType::INTERFACE_INFO, PacketType::EP_INFO, PacketType::CONFIGURATION_STATUS]);
    let Packet::InterfaceInfo(ifs) = &r[0].packet else { unreachable!() };
    assert_eq!(ifs.interface_count, 0, "unconfigured: no interfaces");
    let Packet::EpInfo(eps) = &r[1].packet else { unreachable!() };
    assert_eq!(eps.ep_type[17], EndpointType::INVALID);
    assert_eq!(r[2].id, id);
    assert_eq!(r[2].packet, Packet::ConfigurationStatus { status: Status::SUCCESS, configuration: 0 });

    // Bulk to an endpoint that no longer exists: inval.
    h.bulk_in(0x81, 13);
    assert_eq!(bulk(&h.recv()[0]).0.status, Status::INVAL);

    h.send(&Packet::SetConfiguration { configuration: 1 });
    assert_eq!(h.recv().len(), 3);
    // Invalid value: STALL, current configuration, no new descriptions.
    h.send(&Packet::SetConfiguration { configuration: 7 });
    let r = h.recv();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].packet, Packet::ConfigurationStatus { status: Status::STALL, configuration: 1 });
    // Same configuration again: just the status.
    h.send(&Packet::SetConfiguration { configuration: 1 });
    let r = h.recv();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].packet, Packet::ConfigurationStatus { status: Status::SUCCESS, configuration: 1 });
    h.send(&Packet::GetConfiguration);
    assert_eq!(h.recv()[0].packet, Packet::ConfigurationStatus { status: Status::SUCCESS, configuration: 1 });
}

#[test]
fn set_configuration_cancels_held_requests_once() {
    let mut h = connected();
    let held = h.bulk_in(0x81, 13);
    h.send(&Packet::SetConfiguration { configuration: 0 });
    let r = h.recv();
    assert_eq!(r[0].id, held);
    assert_eq!(bulk(&r[0]).0.status, Status::CANCELLED);
    h.send_with_id(held, &Packet::CancelDataPacket).unwrap();
    assert!(h.recv().is_empty());
}

#[test]
fn alt_settings() {
    let mut h = connected();
    let id = h.send(&Packet::GetAltSetting { interface: 0 });
    let r = h.recv();
    assert_eq!(r[0].id, id);
    assert_eq!(r[0].packet, Packet::AltSettingStatus { status: Status::SUCCESS, interface: 0, alt: 0 });
    h.send(&Packet::GetAltSetting { interface: 3 });
    assert_eq!(
        h.recv()[0].packet,
        Packet::AltSettingStatus { status: Status::INVAL, interface: 3, alt: 0xff }
    );
    h.send(&Packet::SetAltSetting { interface: 0, alt: 0 });
    let types: Vec<_> = h.recv().iter().map(|f| f.packet.packet_type()).collect();
    assert_eq!(types, [PacketType::INTERFACE_INFO, PacketType::EP_INFO, PacketType::ALT_SETTING_STATUS]);
    h.send(&Packet::SetAltSetting { interface: 0, alt: 1 });
    assert_eq!(h.recv()[0].packet, Packet::AltSettingStatus { status: Status::STALL, interface: 0, alt: 0 });
}

#[test]
fn reset_resets_the_device_and_ends_held_requests() {
    let mut h = connected();
    let held = h.bulk_in(0x81, 13);
    h.send(&Packet::Reset);
    assert_eq!(h.dev.resets, 1);
    let r = h.recv();
    assert_eq!(r.len(), 1, "no reply to reset itself, one per held request");
    assert_eq!(r[0].id, held);
    assert_eq!(bulk(&r[0]).0.status, Status::CANCELLED);
    h.send(&Packet::Reset);
    assert!(h.recv().is_empty());
}

#[test]
fn unsupported_requests_get_status_replies() {
    let mut h = connected();
    let cases: Vec<(Packet<'static>, Packet<'static>)> = vec![
        (
            Packet::StartInterruptReceiving { endpoint: 0x83 },
            Packet::InterruptReceivingStatus { status: Status::INVAL, endpoint: 0x83 },
        ),
        (
            Packet::StopInterruptReceiving { endpoint: 0x83 },
            Packet::InterruptReceivingStatus { status: Status::INVAL, endpoint: 0x83 },
        ),
        (
            Packet::StartIsoStream { endpoint: 0x84, pkts_per_urb: 8, no_urbs: 4 },
            Packet::IsoStreamStatus { status: Status::INVAL, endpoint: 0x84 },
        ),
        (
            Packet::StopIsoStream { endpoint: 0x84 },
            Packet::IsoStreamStatus { status: Status::INVAL, endpoint: 0x84 },
        ),
        (
            Packet::AllocBulkStreams { endpoints: 1 << 17, no_streams: 4 },
            Packet::BulkStreamsStatus { endpoints: 1 << 17, no_streams: 4, status: Status::INVAL },
        ),
        (
            Packet::FreeBulkStreams { endpoints: 1 << 17 },
            Packet::BulkStreamsStatus { endpoints: 1 << 17, no_streams: 0, status: Status::INVAL },
        ),
        (
            Packet::StartBulkReceiving {
                stream_id: 0,
                bytes_per_transfer: 512,
                endpoint: 0x81,
                no_transfers: 2,
            },
            Packet::BulkReceivingStatus { stream_id: 0, endpoint: 0x81, status: Status::INVAL },
        ),
        (
            Packet::StopBulkReceiving { stream_id: 0, endpoint: 0x81 },
            Packet::BulkReceivingStatus { stream_id: 0, endpoint: 0x81, status: Status::INVAL },
        ),
        (
            Packet::Interrupt(
                SmallDataHeader { endpoint: 0x03, status: Status::SUCCESS, length: 2 },
                &[1, 2],
            ),
            Packet::Interrupt(SmallDataHeader { endpoint: 0x03, status: Status::INVAL, length: 0 }, &[]),
        ),
        (
            Packet::Iso(SmallDataHeader { endpoint: 0x04, status: Status::SUCCESS, length: 1 }, &[1]),
            Packet::IsoStreamStatus { status: Status::INVAL, endpoint: 0x04 },
        ),
    ];
    for (request, expected) in cases {
        let id = h.send(&request);
        let r = h.recv();
        assert_eq!(r.len(), 1, "{request:?}");
        assert_eq!(r[0].id, id);
        assert_eq!(r[0].packet, expected, "reply to {request:?}");
    }
    // Accepted and ignored: no reply.
    h.send(&Packet::FilterFilter(b"0x08,-1,-1,-1,1\0"));
    h.send(&Packet::FilterReject);
    h.send(&Packet::DeviceDisconnectAck);
    assert!(h.recv().is_empty());
}

#[test]
fn bulk_requests_we_refuse() {
    let mut h = connected();
    // Stream id without streams.
    h.send(&Packet::Bulk(
        BulkHeader { endpoint: 0x81, status: Status::SUCCESS, length: 8, stream_id: 3 },
        &[],
    ));
    let (hdr, _) = bulk(&h.recv()[0]);
    assert_eq!((hdr.status, hdr.stream_id, hdr.length), (Status::INVAL, 3, 0));
    // Endpoint not in ep_info, or with reserved address bits (0x91 aliases 0x81's slot).
    for ep in [0x85, 0x91, 0xf1, 0x92] {
        h.bulk_in(ep, 8);
        assert_eq!(bulk(&h.recv()[0]).0.status, Status::INVAL, "endpoint {ep:#x}");
    }
    // Over the transfer limit: refused without allocating 100 MiB.
    h.bulk_in(0x81, 100 << 20);
    assert_eq!(bulk(&h.recv()[0]).0.status, Status::INVAL);
    assert_eq!(h.session.held_in_requests(), 0);
}

#[test]
fn stalls_pass_through() {
    let mut h = connected();
    h.dev.out_halted = true;
    h.bulk_out(0x02, &[0; 31]);
    let (hdr, _) = bulk(&h.recv()[0]);
    assert_eq!((hdr.status, hdr.length), (Status::STALL, 0));
    h.dev.in_halted = true;
    h.bulk_in(0x81, 13);
    assert_eq!(bulk(&h.recv()[0]).0.status, Status::STALL);
    // Still halted: every IN stalls until CLEAR_FEATURE(ENDPOINT_HALT).
    let held = h.bulk_in(0x81, 13);
    assert_eq!(bulk(&h.recv()[0]).0.status, Status::STALL, "halted endpoint stalls every IN");
    let clear = h.control_out(0x02, 0x01, 0, 0x81, &[]);
    assert!(!h.dev.in_halted);
    let r = h.recv();
    assert_eq!((r[0].id, control(&r[0]).0.status), (clear, Status::SUCCESS));
    h.dev.queue_in(&[1; 13]);
    let id = h.bulk_in(0x81, 13);
    let r = h.recv();
    assert_ne!(id, held);
    assert_eq!(r[0].id, id);
    assert_eq!(bulk(&r[0]).0.status, Status::SUCCESS);
}

#[test]
fn data_in_the_wrong_direction_closes_the_session() {
    let mut h = connected();
    // An IN request that carries data.
    let bytes = h.encode(
        5,
        &Packet::Bulk(
            BulkHeader { endpoint: 0x81, status: Status::SUCCESS, length: 2, stream_id: 0 },
            &[1, 2],
        ),
    );
    let err = h.feed(&bytes).unwrap_err();
    assert!(matches!(err, SessionError::DataDirection { endpoint: 0x81, .. }), "{err}");

    // An OUT request announcing data it does not carry.
    let mut h = connected();
    let bytes = h.encode(
        5,
        &Packet::Bulk(BulkHeader { endpoint: 0x02, status: Status::SUCCESS, length: 31, stream_id: 0 }, &[]),
    );
    assert!(matches!(h.feed(&bytes), Err(SessionError::DataDirection { .. })));
    assert!(h.dev.outs.is_empty());
}

#[test]
fn host_to_guest_packets_from_the_guest_are_errors() {
    for p in [
        Packet::DeviceDisconnect,
        Packet::ConfigurationStatus { status: Status::SUCCESS, configuration: 1 },
        Packet::InterruptReceivingStatus { status: Status::SUCCESS, endpoint: 0x81 },
    ] {
        let mut h = connected();
        let bytes = h.encode(0, &p);
        let err = h.feed(&bytes).unwrap_err();
        assert_eq!(err, SessionError::WrongDirection(p.packet_type()));
        assert!(err.to_string().contains("usb-guest must not send it"));
    }
}

#[test]
fn unknown_packet_type_closes_with_a_clear_reason() {
    let mut h = connected();
    let mut bytes = 42u32.to_le_bytes().to_vec(); // type 42
    bytes.extend_from_slice(&0u32.to_le_bytes()); // length
    bytes.extend_from_slice(&0u64.to_le_bytes()); // id
    let err = h.feed(&bytes).unwrap_err();
    assert_eq!(err.to_string(), "malformed usbredir input: unknown usbredir packet type 42");
}

#[test]
fn oversized_header_is_refused_without_buffering_the_body() {
    let mut h = connected();
    let mut bytes = 101u32.to_le_bytes().to_vec(); // bulk_packet
    bytes.extend_from_slice(&(200u32 << 20).to_le_bytes()); // 200 MiB
    bytes.extend_from_slice(&0u64.to_le_bytes());
    // Header split across two calls: the verdict comes as soon as it is whole.
    assert!(h.feed(&bytes[..7]).is_ok());
    assert!(matches!(h.feed(&bytes[7..]), Err(SessionError::Decode(_))));
    assert_eq!(h.session.buffered_input_len(), 0);
}

#[test]
fn byte_by_byte_delivery_matches_one_shot() {
    fn conversation(h: &mut HostSim<FakeDevice>) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend(h.encode(
            1,
            &Packet::Control(
                vstick_usbredir::proto::ControlHeader {
                    endpoint: 0x80,
                    request: 6,
                    requesttype: 0x80,
                    status: Status::SUCCESS,
                    value: 0x100,
                    index: 0,
                    length: 18,
                },
                &[],
            ),
        ));
        bytes.extend(h.encode(
            2,
            &Packet::Bulk(
                BulkHeader { endpoint: 0x81, status: Status::SUCCESS, length: 300, stream_id: 0 },
                &[],
            ),
        ));
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        bytes.extend(h.encode(
            3,
            &Packet::Bulk(
                BulkHeader { endpoint: 0x02, status: Status::SUCCESS, length: 70_000, stream_id: 0 },
                &big,
            ),
        ));
        bytes.extend(h.encode(4, &Packet::CancelDataPacket));
        bytes.extend(h.encode(5, &Packet::GetConfiguration));
        bytes
    }
    let mut one = connected();
    one.dev.on_out.push_back(vec![0xab; 200]);
    let convo = conversation(&mut one);
    one.feed(&convo).unwrap();
    let expected = one.session.take_output();

    let mut split = connected();
    split.dev.on_out.push_back(vec![0xab; 200]);
    for b in &convo {
        split.feed(std::slice::from_ref(b)).unwrap();
        assert!(split.session.buffered_input_len() <= 16 + 70_010);
    }
    assert_eq!(split.session.take_output(), expected);
    assert_eq!(split.dev.outs, one.dev.outs);
    assert_eq!(split.dev.outs[0].len(), 70_000);
    // The IN of 300 got the 200 bytes (short) before the cancel arrived.
    let r = {
        let mut h = connected();
        h.dev.on_out.push_back(vec![0xab; 200]);
        let c = conversation(&mut h);
        h.feed(&c).unwrap();
        h.recv()
    };
    let ids: Vec<u64> = r.iter().map(|f| f.id).collect();
    assert_eq!(ids, [1, 3, 2, 5]);
    assert_eq!(bulk(&r[2]).1.len(), 200);
}

#[test]
fn large_in_transfer_uses_length_high() {
    let mut h = connected();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
    h.dev.queue_in(&data);
    h.bulk_in(0x81, 200_000);
    let r = h.recv();
    let (hdr, payload) = bulk(&r[0]);
    assert_eq!(hdr.length, 200_000);
    assert_eq!(payload, data);
}

#[test]
fn swap_output_reuses_buffers() {
    let mut h = connected();
    h.send(&Packet::GetConfiguration);
    let mut buf = vstick_transport::Output::new();
    h.session.swap_output(&mut buf);
    assert_eq!(buf.len(), 16 + 2);
    assert!(h.session.output().is_empty());
    h.send(&Packet::GetConfiguration);
    let mut nonempty = vstick_transport::Output::new();
    nonempty.extend_from_slice(&[1]);
    h.session.swap_output(&mut nonempty);
    assert_eq!(nonempty.len(), 1 + 18, "appends when the buffer is not empty");
}

#[test]
fn set_configuration_as_a_control_transfer_also_refreshes_descriptions() {
    let mut h = connected();
    let held = h.bulk_in(0x81, 13);
    let id = h.control_out(0x00, 0x09, 0, 0, &[]);
    let r = h.recv();
    let types: Vec<_> = r.iter().map(|f| f.packet.packet_type()).collect();
    assert_eq!(
        types,
        [
            PacketType::BULK_PACKET,
            PacketType::INTERFACE_INFO,
            PacketType::EP_INFO,
            PacketType::CONTROL_PACKET
        ]
    );
    assert_eq!((r[0].id, bulk(&r[0]).0.status), (held, Status::CANCELLED));
    let Packet::InterfaceInfo(ifs) = &r[1].packet else { unreachable!() };
    assert_eq!(ifs.interface_count, 0);
    assert_eq!((r[3].id, control(&r[3]).0.status), (id, Status::SUCCESS));
    assert_eq!(h.dev.configuration, 0);
}
