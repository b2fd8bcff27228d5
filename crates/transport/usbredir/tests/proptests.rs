//! Property tests: every packet round-trips, every truncation asks for more,
//! and arbitrary bytes never panic the session or make it buffer past the cap.

mod support;

use proptest::prelude::*;
use support::{FakeDevice, HostSim, QEMU_CAPS};
use vstick_usbredir::codec::{self, MAX_PACKET_LEN};
use vstick_usbredir::proto::{
    BufferedBulkHeader, BulkHeader, ControlHeader, DeviceConnect, EndpointType, EpInfo, InterfaceInfo,
    Packet, SmallDataHeader, Speed, Status, WireFormat,
};
use vstick_usbredir::{Redir, SessionError};

/// What vstick (0x72) and QEMU (0xff) negotiate.
const QEMU_FORMAT: WireFormat = WireFormat {
    ids_64bit: true,
    connect_device_version: true,
    ep_info_max_packet_size: true,
    bulk_streams: false,
    bulk_length_32bit: true,
};

fn wire_format() -> impl Strategy<Value = WireFormat> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(a, b, c, d, e)| {
        WireFormat {
            ids_64bit: a,
            connect_device_version: b,
            ep_info_max_packet_size: c || d,
            bulk_streams: d,
            bulk_length_32bit: e,
        }
    })
}

fn leak(v: Vec<u8>) -> &'static [u8] {
    Box::leak(v.into_boxed_slice())
}

fn status() -> impl Strategy<Value = Status> {
    any::<u8>().prop_map(Status)
}

fn bytes32() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

/// Payload of a data packet: none (an IN request or OUT reply, any length)
/// or exactly `length` bytes.
fn with_data(max: u32) -> impl Strategy<Value = (u32, &'static [u8])> {
    prop_oneof![
        (0..=max).prop_map(|len| (len, leak(Vec::new()))),
        proptest::collection::vec(any::<u8>(), 1..300).prop_map(|d| (d.len() as u32, leak(d))),
    ]
}

/// Any packet encodable under `fmt` whose optional fields are absent when
/// `fmt` lacks them (so it decodes back identically).
fn packet(fmt: WireFormat) -> BoxedStrategy<Packet<'static>> {
    let bulk_max = if fmt.bulk_length_32bit { codec::MAX_BULK_TRANSFER } else { 0xffff };
    prop_oneof![
        (any::<[u8; 64]>(), proptest::collection::vec(any::<u32>(), 0..=16))
            .prop_map(|(version, caps)| Packet::Hello { version, caps }),
        (any::<u8>(), any::<[u8; 3]>(), any::<[u16; 3]>()).prop_map(move |(s, c, v)| Packet::DeviceConnect(
            DeviceConnect {
                speed: Speed(s),
                device_class: c[0],
                device_subclass: c[1],
                device_protocol: c[2],
                vendor_id: v[0],
                product_id: v[1],
                device_version_bcd: if fmt.connect_device_version { v[2] } else { 0 },
            }
        )),
        Just(Packet::DeviceDisconnect),
        Just(Packet::Reset),
        (0..=32u32, bytes32(), bytes32(), bytes32(), bytes32()).prop_map(|(n, a, b, c, d)| {
            Packet::InterfaceInfo(Box::new(InterfaceInfo {
                interface_count: n,
                interface: a,
                interface_class: b,
                interface_subclass: c,
                interface_protocol: d,
            }))
        }),
        (bytes32(), bytes32(), bytes32(), any::<[u16; 32]>(), any::<[u32; 32]>()).prop_map(
            move |(t, i, f, m, s)| {
                Packet::EpInfo(Box::new(EpInfo {
                    ep_type: t.map(EndpointType),
                    interval: i,
                    interface: f,
                    max_packet_size: if fmt.ep_info_has_max_packet_size() { m } else { [0; 32] },
                    max_streams: if fmt.bulk_streams { s } else { [0; 32] },
                }))
            }
        ),
        any::<u8>().prop_map(|configuration| Packet::SetConfiguration { configuration }),
        Just(Packet::GetConfiguration),
        (status(), any::<u8>())
            .prop_map(|(status, configuration)| Packet::ConfigurationStatus { status, configuration }),
        any::<[u8; 2]>().prop_map(|[interface, alt]| Packet::SetAltSetting { interface, alt }),
        any::<u8>().prop_map(|interface| Packet::GetAltSetting { interface }),
        (status(), any::<[u8; 2]>()).prop_map(|(status, [interface, alt])| Packet::AltSettingStatus {
            status,
            interface,
            alt
        }),
        any::<[u8; 3]>().prop_map(|[endpoint, pkts_per_urb, no_urbs]| Packet::StartIsoStream {
            endpoint,
            pkts_per_urb,
            no_urbs
        }),
        any::<u8>().prop_map(|endpoint| Packet::StopIsoStream { endpoint }),
        (status(), any::<u8>()).prop_map(|(status, endpoint)| Packet::IsoStreamStatus { status, endpoint }),
        any::<u8>().prop_map(|endpoint| Packet::StartInterruptReceiving { endpoint }),
        any::<u8>().prop_map(|endpoint| Packet::StopInterruptReceiving { endpoint }),
        (status(), any::<u8>())
            .prop_map(|(status, endpoint)| Packet::InterruptReceivingStatus { status, endpoint }),
        any::<[u32; 2]>()
            .prop_map(|[endpoints, no_streams]| Packet::AllocBulkStreams { endpoints, no_streams }),
        any::<u32>().prop_map(|endpoints| Packet::FreeBulkStreams { endpoints }),
        (any::<[u32; 2]>(), status()).prop_map(|([endpoints, no_streams], status)| {
            Packet::BulkStreamsStatus { endpoints, no_streams, status }
        }),
        Just(Packet::CancelDataPacket),
        Just(Packet::FilterReject),
        proptest::collection::vec(1u8.., 0..40).prop_map(|mut s| {
            s.push(0);
            Packet::FilterFilter(leak(s))
        }),
        Just(Packet::DeviceDisconnectAck),
        (any::<[u32; 2]>(), any::<[u8; 2]>()).prop_map(
            |([stream_id, bytes_per_transfer], [endpoint, no_transfers])| {
                Packet::StartBulkReceiving { stream_id, bytes_per_transfer, endpoint, no_transfers }
            }
        ),
        (any::<u32>(), any::<u8>())
            .prop_map(|(stream_id, endpoint)| Packet::StopBulkReceiving { stream_id, endpoint }),
        (any::<u32>(), any::<u8>(), status()).prop_map(|(stream_id, endpoint, status)| {
            Packet::BulkReceivingStatus { stream_id, endpoint, status }
        }),
        (any::<[u8; 3]>(), status(), any::<[u16; 2]>(), with_data(0xffff)).prop_map(
            |([endpoint, request, requesttype], status, [value, index], (length, data))| Packet::Control(
                ControlHeader { endpoint, request, requesttype, status, value, index, length: length as u16 },
                data,
            )
        ),
        (any::<u8>(), status(), any::<u32>(), with_data(bulk_max)).prop_map(
            |(endpoint, status, stream_id, (length, data))| {
                Packet::Bulk(BulkHeader { endpoint, status, length, stream_id }, data)
            }
        ),
        (any::<u8>(), status(), with_data(0xffff)).prop_map(
            |(endpoint, status, (length, data))| Packet::Iso(
                SmallDataHeader { endpoint, status, length: length as u16 },
                data
            )
        ),
        (any::<u8>(), status(), with_data(0xffff)).prop_map(|(endpoint, status, (length, data))| {
            Packet::Interrupt(SmallDataHeader { endpoint, status, length: length as u16 }, data)
        }),
        (any::<u32>(), any::<u8>(), status(), with_data(codec::MAX_BULK_TRANSFER)).prop_map(
            |(stream_id, endpoint, status, (length, data))| Packet::BufferedBulk(
                BufferedBulkHeader { stream_id, length, endpoint, status },
                data
            )
        ),
    ]
    .boxed()
}

fn format_and_packet() -> impl Strategy<Value = (WireFormat, u64, Packet<'static>)> {
    wire_format().prop_flat_map(|fmt| {
        let id = if fmt.ids_64bit { any::<u64>().boxed() } else { any::<u32>().prop_map(u64::from).boxed() };
        (Just(fmt), id, packet(fmt))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_decode_round_trips((fmt, id, p) in format_and_packet()) {
        let mut bytes = Vec::new();
        codec::encode(fmt, id, &p, &mut bytes).unwrap();
        let (frame, used) = codec::decode(fmt, &bytes).unwrap().unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(frame.id, id);
        prop_assert_eq!(&frame.packet, &p);
        // A second packet behind it is left alone.
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        let (_, used2) = codec::decode(fmt, &two).unwrap().unwrap();
        prop_assert_eq!(used2, bytes.len());
    }

    #[test]
    fn every_truncation_needs_more((fmt, id, p) in format_and_packet()) {
        let mut bytes = Vec::new();
        codec::encode(fmt, id, &p, &mut bytes).unwrap();
        for cut in 0..bytes.len() {
            prop_assert_eq!(codec::decode(fmt, &bytes[..cut]), Ok(None), "cut at {}", cut);
        }
    }

    #[test]
    fn decode_of_arbitrary_bytes_is_total(fmt in wire_format(), bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(Some((_, used))) = codec::decode(fmt, &bytes) {
            prop_assert!(used <= bytes.len());
        }
    }

    #[test]
    fn session_survives_arbitrary_input(
        hello_first in any::<bool>(),
        junk in proptest::collection::vec(any::<u8>(), 0..2000),
        chunk in 1usize..300,
    ) {
        let mut h = HostSim::new(FakeDevice::new(), QEMU_CAPS);
        if hello_first {
            h.handshake();
        }
        let mut failed = false;
        for piece in junk.chunks(chunk) {
            match h.feed(piece) {
                Ok(()) => prop_assert!(!failed, "no success after a failure"),
                Err(SessionError::Closed(_)) => prop_assert!(failed),
                Err(_) => {
                    prop_assert!(!failed);
                    failed = true;
                }
            }
            prop_assert!(h.session.buffered_input_len() <= 16 + MAX_PACKET_LEN as usize);
            prop_assert!(h.session.buffered_input_len() <= junk.len());
            // Whatever the session sends must itself be valid usbredir.
            let _ = h.recv();
        }
    }

    /// Structurally valid frames with random fields (any type, either
    /// direction, any endpoint) may close the session but never panic it.
    #[test]
    fn session_survives_random_frames(
        packets in proptest::collection::vec(packet(QEMU_FORMAT), 1..30),
        chunk in 1usize..400,
    ) {
        let mut h = HostSim::new(FakeDevice::new(), QEMU_CAPS);
        h.handshake();
        prop_assert_eq!(h.fmt, QEMU_FORMAT);
        let mut stream = Vec::new();
        for (i, p) in packets.into_iter().enumerate() {
            // Keep held IN requests small so the run stays fast.
            let p = match p {
                Packet::Bulk(hdr, d) if d.is_empty() => Packet::Bulk(BulkHeader { length: hdr.length % (1 << 20), ..hdr }, d),
                other => other,
            };
            stream.extend(h.encode(i as u64, &p));
        }
        let mut failed = false;
        for piece in stream.chunks(chunk) {
            if h.feed(piece).is_err() {
                failed = true;
            }
            let _ = h.recv();
        }
        if failed {
            prop_assert!(matches!(h.feed(&[]), Err(SessionError::Closed(_))));
        }
    }

    /// Well-formed guest packets in random order and random chunking never
    /// make the session fail (everything valid gets a reply or is held).
    #[test]
    fn valid_guest_traffic_never_fails(
        picks in proptest::collection::vec((0u8..10, 0u32..2000), 1..40),
        chunk in 1usize..500,
    ) {
        let mut h = HostSim::new(FakeDevice::new(), QEMU_CAPS);
        h.handshake();
        let mut stream = Vec::new();
        let mut id = 100u64;
        for (kind, n) in picks {
            id += 1;
            let data = vec![0x5a; n as usize];
            let p = match kind {
                0 => Packet::Bulk(BulkHeader { endpoint: 0x81, status: Status::SUCCESS, length: n, stream_id: 0 }, &[]),
                1 => Packet::Bulk(BulkHeader { endpoint: 0x02, status: Status::SUCCESS, length: n, stream_id: 0 }, &data),
                2 => Packet::CancelDataPacket,
                3 => Packet::Reset,
                4 => Packet::GetConfiguration,
                5 => Packet::SetConfiguration { configuration: (n % 3) as u8 },
                6 => Packet::Control(ControlHeader { endpoint: 0x80, request: 6, requesttype: 0x80, status: Status::SUCCESS, value: 0x100, index: 0, length: n as u16 }, &[]),
                7 => Packet::GetAltSetting { interface: (n % 2) as u8 },
                8 => Packet::StartInterruptReceiving { endpoint: 0x83 },
                _ => Packet::SetAltSetting { interface: 0, alt: (n % 2) as u8 },
            };
            let cancel_target = id - 1 - u64::from(n % 3);
            stream.extend(h.encode(if kind == 2 { cancel_target } else { id }, &p));
            if kind == 1 {
                h.dev.on_out.push_back(vec![1; (n % 700) as usize]);
            }
        }
        for piece in stream.chunks(chunk) {
            prop_assert!(h.feed(piece).is_ok());
        }
        let _ = h.recv();
    }
}

#[test]
fn a_fresh_session_never_buffers_a_refused_header() {
    let mut s = Redir::session();
    let mut dev = FakeDevice::new();
    // A hello header announcing more than the cap: refused at 12 bytes.
    let mut bytes = 0u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(&(MAX_PACKET_LEN + 1).to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    assert!(s.receive(&mut dev, &bytes).is_err());
    assert_eq!(s.buffered_input_len(), 0);
}
