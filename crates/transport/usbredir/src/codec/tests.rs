//! Byte-exact vectors for every packet vstick sends or receives, written from
//! the packed layouts in `usbredirproto.h` (little-endian).

use super::*;
use crate::proto::{Caps, version_field};

/// The format QEMU 7.2+ and vstick settle on (caps 0xff-ish vs 0x72).
const QEMU: WireFormat = WireFormat {
    ids_64bit: true,
    connect_device_version: true,
    ep_info_max_packet_size: true,
    bulk_streams: false,
    bulk_length_32bit: true,
};

fn enc(fmt: WireFormat, id: u64, p: &Packet<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode(fmt, id, p, &mut out).expect("encodes");
    out
}

fn dec(fmt: WireFormat, bytes: &[u8]) -> Frame<'_> {
    let (frame, used) = decode(fmt, bytes).expect("valid").expect("complete");
    assert_eq!(used, bytes.len(), "decode must consume exactly one frame");
    frame
}

/// Encodes, compares with the expected bytes, decodes back, and checks that
/// every strict prefix asks for more bytes.
fn vector(fmt: WireFormat, id: u64, p: &Packet<'_>, expected: &[u8]) {
    let bytes = enc(fmt, id, p);
    assert_eq!(bytes, expected, "encoding of {p:?}");
    let frame = dec(fmt, expected);
    assert_eq!(frame.id, id);
    assert_eq!(&frame.packet, p);
    for cut in 0..expected.len() {
        assert_eq!(decode(fmt, &expected[..cut]), Ok(None), "prefix of {cut} bytes");
    }
}

#[test]
fn hello_with_caps_uses_the_12_byte_header() {
    let hello = Packet::Hello { version: version_field("vstick 0.1.0"), caps: vec![0x72] };
    let mut expected = vec![
        0x00, 0x00, 0x00, 0x00, // type: hello
        0x44, 0x00, 0x00, 0x00, // length: 64 + 4
        0x00, 0x00, 0x00, 0x00, // id: 0, always 32 bits in a hello
    ];
    expected.extend_from_slice(b"vstick 0.1.0"); // version ...
    expected.extend_from_slice(&[0; 52]); // ... NUL-padded to 64 bytes
    expected.extend_from_slice(&[0x72, 0x00, 0x00, 0x00]); // caps[0]
    assert_eq!(expected.len(), 80);
    vector(WireFormat::INITIAL, 0, &hello, &expected);
}

#[test]
fn hello_keeps_at_most_16_cap_words_and_ignores_a_partial_word() {
    let mut bytes = vec![
        0x00, 0x00, 0x00, 0x00, // type: hello
        0x00, 0x00, 0x00, 0x00, // length: patched below
        0x00, 0x00, 0x00, 0x00, // id
    ];
    bytes.extend_from_slice(&[b'q'; 64]); // unterminated version: still accepted
    for w in 0..20u32 {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    bytes.extend_from_slice(&[0xaa, 0xbb]); // half a word
    let len = u32::try_from(bytes.len() - 12).unwrap();
    bytes[4..8].copy_from_slice(&len.to_le_bytes());
    let Packet::Hello { caps, version } = dec(WireFormat::INITIAL, &bytes).packet else {
        panic!("not a hello")
    };
    assert_eq!(caps, (0..16).collect::<Vec<u32>>());
    assert_eq!(version, [b'q'; 64]);
}

#[test]
fn device_connect_with_and_without_device_version() {
    let dc = DeviceConnect {
        speed: Speed::HIGH,
        device_class: 0x00,
        device_subclass: 0x00,
        device_protocol: 0x00,
        vendor_id: 0x1d6b,
        product_id: 0x0104,
        device_version_bcd: 0x0100,
    };
    vector(
        QEMU,
        0,
        &Packet::DeviceConnect(dc),
        &[
            0x01, 0x00, 0x00, 0x00, // type: device_connect
            0x0a, 0x00, 0x00, 0x00, // length: 10
            0, 0, 0, 0, 0, 0, 0, 0,    // id: 0 (64 bits)
            0x02, // speed: high
            0x00, 0x00, 0x00, // class, subclass, protocol (per interface)
            0x6b, 0x1d, // idVendor
            0x04, 0x01, // idProduct
            0x00, 0x01, // bcdDevice 1.00
        ],
    );
    let old = WireFormat { connect_device_version: false, ..QEMU };
    vector(
        old,
        0,
        &Packet::DeviceConnect(DeviceConnect { device_version_bcd: 0, ..dc }),
        &[
            0x01, 0x00, 0x00, 0x00, // type: device_connect
            0x08, 0x00, 0x00, 0x00, // length: 8, no bcdDevice
            0, 0, 0, 0, 0, 0, 0, 0, // id
            0x02, 0x00, 0x00, 0x00, // speed, class, subclass, protocol
            0x6b, 0x1d, 0x04, 0x01, // idVendor, idProduct
        ],
    );
}

#[test]
fn interface_info_is_132_bytes() {
    let mut info = InterfaceInfo { interface_count: 1, ..InterfaceInfo::default() };
    info.interface[0] = 0; // bInterfaceNumber
    info.interface_class[0] = 0x08; // mass storage
    info.interface_subclass[0] = 0x06; // SCSI transparent
    info.interface_protocol[0] = 0x50; // Bulk-Only
    let mut expected = vec![
        0x04, 0x00, 0x00, 0x00, // type: interface_info
        0x84, 0x00, 0x00, 0x00, // length: 132
        0, 0, 0, 0, 0, 0, 0, 0, // id
        0x01, 0x00, 0x00, 0x00, // interface_count
    ];
    let mut arrays = [[0u8; 32]; 4];
    arrays[1][0] = 0x08;
    arrays[2][0] = 0x06;
    arrays[3][0] = 0x50;
    for a in arrays {
        expected.extend_from_slice(&a); // interface[], class[], subclass[], protocol[]
    }
    assert_eq!(expected.len(), 16 + 132);
    vector(QEMU, 0, &Packet::InterfaceInfo(Box::new(info)), &expected);
}

fn mass_storage_ep_info() -> EpInfo {
    let mut e = EpInfo::default();
    for (i, ty, mps) in [(0, EndpointType::CONTROL, 64), (16, EndpointType::CONTROL, 64)] {
        e.ep_type[i] = ty;
        e.max_packet_size[i] = mps;
    }
    e.ep_type[2] = EndpointType::BULK; // 0x02 OUT
    e.max_packet_size[2] = 512;
    e.ep_type[17] = EndpointType::BULK; // 0x81 IN
    e.max_packet_size[17] = 512;
    e
}

#[test]
fn ep_info_with_max_packet_size_is_160_bytes() {
    let mut expected = vec![
        0x05, 0x00, 0x00, 0x00, // type: ep_info
        0xa0, 0x00, 0x00, 0x00, // length: 160
        0, 0, 0, 0, 0, 0, 0, 0, // id
    ];
    let mut types = [0xffu8; 32]; // invalid ...
    types[0] = 0; // ep 0x00 control
    types[2] = 2; // ep 0x02 bulk
    types[16] = 0; // ep 0x80 control
    types[17] = 2; // ep 0x81 bulk
    expected.extend_from_slice(&types);
    expected.extend_from_slice(&[0; 32]); // interval[]
    expected.extend_from_slice(&[0; 32]); // interface[]
    for i in 0..32 {
        let mps: u16 = match i {
            0 | 16 => 64,
            2 | 17 => 512,
            _ => 0,
        };
        expected.extend_from_slice(&mps.to_le_bytes()); // max_packet_size[]
    }
    assert_eq!(expected.len(), 16 + 160);
    vector(QEMU, 0, &Packet::EpInfo(Box::new(mass_storage_ep_info())), &expected);

    // Without the cap the packet stops after interface[] (96 bytes).
    let plain = WireFormat { ep_info_max_packet_size: false, ..QEMU };
    let bytes = enc(plain, 0, &Packet::EpInfo(Box::new(mass_storage_ep_info())));
    assert_eq!(bytes.len(), 16 + 96);
    assert_eq!(bytes[4..8], [96, 0, 0, 0]);
}

#[test]
fn ep_info_with_streams_is_288_bytes() {
    let fmt = WireFormat { bulk_streams: true, ..QEMU };
    let mut e = mass_storage_ep_info();
    e.max_streams[17] = 0x0001_0000;
    let bytes = enc(fmt, 0, &Packet::EpInfo(Box::new(e)));
    assert_eq!(bytes.len(), 16 + 288);
    // max_streams[17] sits after 3*32 + 64 bytes, 4 bytes per entry.
    assert_eq!(bytes[16 + 160 + 17 * 4..16 + 160 + 18 * 4], [0x00, 0x00, 0x01, 0x00]);
    assert_eq!(dec(fmt, &bytes).packet, Packet::EpInfo(Box::new(e)));
}

#[test]
fn configuration_and_alt_setting_packets() {
    vector(
        QEMU,
        9,
        &Packet::SetConfiguration { configuration: 1 },
        &[
            0x06, 0x00, 0x00, 0x00, // type: set_configuration
            0x01, 0x00, 0x00, 0x00, // length: 1
            0x09, 0, 0, 0, 0, 0, 0, 0,    // id 9
            0x01, // configuration
        ],
    );
    vector(
        QEMU,
        9,
        &Packet::ConfigurationStatus { status: Status::STALL, configuration: 1 },
        &[
            0x08, 0x00, 0x00, 0x00, // type: configuration_status
            0x02, 0x00, 0x00, 0x00, // length: 2
            0x09, 0, 0, 0, 0, 0, 0, 0,    // id
            0x04, // status: stall
            0x01, // configuration
        ],
    );
    vector(
        QEMU,
        3,
        &Packet::SetAltSetting { interface: 0, alt: 1 },
        &[
            0x09, 0x00, 0x00, 0x00, // type: set_alt_setting
            0x02, 0x00, 0x00, 0x00, // length: 2
            0x03, 0, 0, 0, 0, 0, 0, 0, // id
            0x00, 0x01, // interface, alt
        ],
    );
    vector(
        QEMU,
        3,
        &Packet::GetAltSetting { interface: 0 },
        &[
            0x0a, 0x00, 0x00, 0x00, // type: get_alt_setting
            0x01, 0x00, 0x00, 0x00, // length: 1
            0x03, 0, 0, 0, 0, 0, 0, 0,    // id
            0x00, // interface
        ],
    );
    vector(
        QEMU,
        3,
        &Packet::AltSettingStatus { status: Status::SUCCESS, interface: 0, alt: 0 },
        &[
            0x0b, 0x00, 0x00, 0x00, // type: alt_setting_status
            0x03, 0x00, 0x00, 0x00, // length: 3
            0x03, 0, 0, 0, 0, 0, 0, 0, // id
            0x00, 0x00, 0x00, // status, interface, alt
        ],
    );
}

#[test]
fn ids_are_32_or_64_bits() {
    let get = Packet::GetConfiguration;
    vector(
        WireFormat { ids_64bit: false, ..QEMU },
        0x1234_5678,
        &get,
        &[
            0x07, 0x00, 0x00, 0x00, // type: get_configuration
            0x00, 0x00, 0x00, 0x00, // length: 0
            0x78, 0x56, 0x34, 0x12, // id, 32 bits
        ],
    );
    vector(
        QEMU,
        0x0102_0304_0506_0708,
        &get,
        &[
            0x07, 0x00, 0x00, 0x00, // type: get_configuration
            0x00, 0x00, 0x00, 0x00, // length: 0
            0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // id, 64 bits
        ],
    );
    let mut out = Vec::new();
    assert_eq!(encode(WireFormat::INITIAL, 1 << 32, &get, &mut out), Err(EncodeError::IdTooLarge(1 << 32)));
}

#[test]
fn control_packet_puts_request_before_requesttype() {
    let get_device_descriptor = ControlHeader {
        endpoint: 0x80,
        request: 0x06,
        requesttype: 0x80,
        status: Status::SUCCESS,
        value: 0x0100,
        index: 0x0000,
        length: 18,
    };
    vector(
        QEMU,
        5,
        &Packet::Control(get_device_descriptor, &[]),
        &[
            0x64, 0x00, 0x00, 0x00, // type: control_packet (100)
            0x0a, 0x00, 0x00, 0x00, // length: 10, no data in an IN request
            0x05, 0, 0, 0, 0, 0, 0, 0,    // id
            0x80, // endpoint: IN
            0x06, // request: GET_DESCRIPTOR
            0x80, // requesttype: device-to-host, standard, device
            0x00, // status
            0x00, 0x01, // value: device descriptor
            0x00, 0x00, // index
            0x12, 0x00, // length: 18
        ],
    );
    // The reply carries the descriptor and length = bytes sent.
    let reply = ControlHeader { length: 4, ..get_device_descriptor };
    vector(
        QEMU,
        5,
        &Packet::Control(reply, &[0x12, 0x01, 0x00, 0x02]),
        &[
            0x64, 0x00, 0x00, 0x00, // type
            0x0e, 0x00, 0x00, 0x00, // length: 10 + 4
            0x05, 0, 0, 0, 0, 0, 0, 0, // id
            0x80, 0x06, 0x80, 0x00, // endpoint, request, requesttype, status
            0x00, 0x01, 0x00, 0x00, // value, index
            0x04, 0x00, // length
            0x12, 0x01, 0x00, 0x02, // data
        ],
    );
}

#[test]
fn bulk_packet_with_length_high() {
    let in_request =
        BulkHeader { endpoint: 0x81, status: Status::SUCCESS, length: 0x0001_0200, stream_id: 0 };
    vector(
        QEMU,
        0x42,
        &Packet::Bulk(in_request, &[]),
        &[
            0x65, 0x00, 0x00, 0x00, // type: bulk_packet (101)
            0x0a, 0x00, 0x00, 0x00, // length: 10, no data in an IN request
            0x42, 0, 0, 0, 0, 0, 0, 0,    // id
            0x81, // endpoint: IN 1
            0x00, // status
            0x00, 0x02, // length low 16 bits: 0x0200
            0x00, 0x00, 0x00, 0x00, // stream_id
            0x01, 0x00, // length_high: 0x0001
        ],
    );
    // Without 32bits_bulk_length the header is 8 bytes and lengths are 16-bit.
    let narrow = WireFormat { bulk_length_32bit: false, ids_64bit: false, ..QEMU };
    let cbw = [0x55u8; 31];
    let mut expected = vec![
        0x65, 0x00, 0x00, 0x00, // type: bulk_packet
        0x27, 0x00, 0x00, 0x00, // length: 8 + 31
        0x07, 0x00, 0x00, 0x00, // id (32 bits)
        0x02, // endpoint: OUT 2
        0x00, // status
        0x1f, 0x00, // length: 31
        0x00, 0x00, 0x00, 0x00, // stream_id
    ];
    expected.extend_from_slice(&cbw);
    let out = BulkHeader { endpoint: 0x02, status: Status::SUCCESS, length: 31, stream_id: 0 };
    vector(narrow, 7, &Packet::Bulk(out, &cbw), &expected);
    let mut v = Vec::new();
    assert_eq!(
        encode(narrow, 7, &Packet::Bulk(in_request, &[]), &mut v),
        Err(EncodeError::BulkLengthTooLarge(0x10200))
    );
}

#[test]
fn bulk_prefix_written_in_place_matches_encode() {
    let hdr = BulkHeader { endpoint: 0x81, status: Status::SUCCESS, length: 13, stream_id: 0 };
    let csw = [0x55, 0x53, 0x42, 0x53, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    let whole = enc(QEMU, 77, &Packet::Bulk(hdr, &csw));
    let mut in_place = vec![0u8; bulk_prefix_len(QEMU)];
    in_place.extend_from_slice(&csw);
    write_bulk_prefix(QEMU, 77, &hdr, csw.len(), &mut in_place[..bulk_prefix_len(QEMU)]).unwrap();
    assert_eq!(in_place, whole);
    assert_eq!(bulk_prefix_len(QEMU), 26);
    let mut short = [0u8; 20];
    assert!(write_bulk_prefix(QEMU, 77, &hdr, 13, &mut short).is_err());
}

#[test]
fn stream_status_and_cancel_packets() {
    vector(
        QEMU,
        1,
        &Packet::StartInterruptReceiving { endpoint: 0x83 },
        &[
            0x0f, 0, 0, 0, // type 15
            0x01, 0, 0, 0, // length
            0x01, 0, 0, 0, 0, 0, 0, 0,    // id
            0x83, // endpoint
        ],
    );
    vector(
        QEMU,
        1,
        &Packet::InterruptReceivingStatus { status: Status::INVAL, endpoint: 0x83 },
        &[
            0x11, 0, 0, 0, // type 17
            0x02, 0, 0, 0, // length
            0x01, 0, 0, 0, 0, 0, 0, 0, // id
            0x02, 0x83, // status inval, endpoint
        ],
    );
    vector(
        QEMU,
        2,
        &Packet::AllocBulkStreams { endpoints: 0x0002_0004, no_streams: 16 },
        &[
            0x12, 0, 0, 0, // type 18
            0x08, 0, 0, 0, // length
            0x02, 0, 0, 0, 0, 0, 0, 0, // id
            0x04, 0x00, 0x02, 0x00, // endpoints bitmask
            0x10, 0x00, 0x00, 0x00, // no_streams
        ],
    );
    vector(
        QEMU,
        2,
        &Packet::BulkStreamsStatus { endpoints: 0x0002_0004, no_streams: 16, status: Status::INVAL },
        &[
            0x14, 0, 0, 0, // type 20
            0x09, 0, 0, 0, // length
            0x02, 0, 0, 0, 0, 0, 0, 0, // id
            0x04, 0x00, 0x02, 0x00, // endpoints
            0x10, 0x00, 0x00, 0x00, // no_streams
            0x02, // status
        ],
    );
    vector(
        QEMU,
        0x99,
        &Packet::CancelDataPacket,
        &[
            0x15, 0, 0, 0, // type 21
            0x00, 0, 0, 0, // length 0
            0x99, 0, 0, 0, 0, 0, 0, 0, // id of the packet to cancel
        ],
    );
    vector(
        QEMU,
        4,
        &Packet::StartBulkReceiving {
            stream_id: 0,
            bytes_per_transfer: 512,
            endpoint: 0x81,
            no_transfers: 4,
        },
        &[
            0x19, 0, 0, 0, // type 25
            0x0a, 0, 0, 0, // length
            0x04, 0, 0, 0, 0, 0, 0, 0, // id
            0, 0, 0, 0, // stream_id
            0x00, 0x02, 0x00, 0x00, // bytes_per_transfer
            0x81, 0x04, // endpoint, no_transfers
        ],
    );
    vector(
        QEMU,
        4,
        &Packet::BulkReceivingStatus { stream_id: 0, endpoint: 0x81, status: Status::INVAL },
        &[
            0x1b, 0, 0, 0, // type 27
            0x06, 0, 0, 0, // length
            0x04, 0, 0, 0, 0, 0, 0, 0, // id
            0, 0, 0, 0, // stream_id
            0x81, 0x02, // endpoint, status
        ],
    );
    vector(
        QEMU,
        0,
        &Packet::FilterFilter(b"-1,-1,-1,-1,1\0"),
        &[
            0x17, 0, 0, 0, // type 23
            0x0e, 0, 0, 0, // length 14
            0, 0, 0, 0, 0, 0, 0, 0, // id
            b'-', b'1', b',', b'-', b'1', b',', b'-', b'1', b',', b'-', b'1', b',', b'1', 0, // rules
        ],
    );
    vector(
        QEMU,
        6,
        &Packet::Interrupt(SmallDataHeader { endpoint: 0x03, status: Status::INVAL, length: 0 }, &[]),
        &[
            0x67, 0, 0, 0, // type 103
            0x04, 0, 0, 0, // length
            0x06, 0, 0, 0, 0, 0, 0, 0, // id
            0x03, 0x02, 0x00, 0x00, // endpoint, status, length
        ],
    );
}

fn header(ty: u32, length: u32) -> Vec<u8> {
    let mut v = ty.to_le_bytes().to_vec();
    v.extend_from_slice(&length.to_le_bytes());
    v.extend_from_slice(&0u64.to_le_bytes());
    v
}

#[test]
fn unknown_type_is_an_error_as_soon_as_the_header_is_in() {
    assert_eq!(decode(QEMU, &header(28, 0)), Err(DecodeError::UnknownType(28)));
    assert_eq!(decode(QEMU, &header(99, 0)), Err(DecodeError::UnknownType(99)));
    assert_eq!(decode(QEMU, &header(105, 0)), Err(DecodeError::UnknownType(105)));
}

#[test]
fn oversized_packets_are_refused_before_buffering() {
    // Only the 16 header bytes have arrived; the verdict needs no more.
    let too_long = header(101, MAX_PACKET_LEN + 1);
    let r = decode(QEMU, &too_long);
    assert!(matches!(r, Err(DecodeError::TooLong { length, .. }) if length == MAX_PACKET_LEN + 1), "{r:?}");
    assert_eq!(frame_len(QEMU, &header(101, MAX_PACKET_LEN)), Ok(Some(16 + MAX_PACKET_LEN as usize)));
    // A bulk length field over 128 MiB is refused even in a short packet.
    let mut b = header(101, 10);
    b.extend_from_slice(&[0x81, 0, 0x01, 0x00, 0, 0, 0, 0, 0x00, 0x08]); // 0x0800_0001 bytes
    assert!(matches!(decode(QEMU, &b), Err(DecodeError::TooLong { .. })));
}

#[test]
fn lengths_that_do_not_fit_the_type_are_errors() {
    // reset carries nothing.
    let mut b = header(3, 1);
    b.push(0);
    assert!(matches!(decode(QEMU, &b), Err(DecodeError::BadLength { allows_data: false, .. })));
    // set_configuration needs its 1-byte header.
    assert!(matches!(decode(QEMU, &header(6, 0)), Err(DecodeError::BadLength { .. })));
    // A control packet shorter than its 10-byte header.
    assert!(matches!(decode(QEMU, &header(100, 9)), Err(DecodeError::BadLength { allows_data: true, .. })));
}

#[test]
fn payload_checks() {
    let mut b = header(4, 132);
    b.extend_from_slice(&33u32.to_le_bytes()); // interface_count 33
    b.extend_from_slice(&[0; 128]);
    assert_eq!(decode(QEMU, &b), Err(DecodeError::TooManyInterfaces(33)));

    let mut b = header(23, 3);
    b.extend_from_slice(b"abc"); // no NUL
    assert_eq!(decode(QEMU, &b), Err(DecodeError::FilterNotTerminated));
    assert_eq!(decode(QEMU, &header(23, 0)), Err(DecodeError::FilterNotTerminated));

    let mut b = header(100, 12);
    b.extend_from_slice(&[0x00, 0x09, 0x00, 0x00, 1, 0, 0, 0, 3, 0]); // OUT, says 3 bytes
    b.extend_from_slice(&[1, 2]); // carries 2
    assert!(matches!(
        decode(QEMU, &b),
        Err(DecodeError::DataLengthMismatch { header_length: 3, data_len: 2, .. })
    ));
}

#[test]
fn caps_word_constant_matches_the_bits() {
    assert_eq!(
        (Caps::CONNECT_DEVICE_VERSION
            | Caps::EP_INFO_MAX_PACKET_SIZE
            | Caps::IDS_64BIT
            | Caps::BULK_LENGTH_32BIT)
            .0,
        0x72
    );
}

#[test]
fn every_truncated_type_header_is_an_error() {
    // `decode` checks lengths first; the type-header parser must not rely on it
    // and read zeros past the end.
    let formats = [QEMU, WireFormat { bulk_streams: true, ..QEMU }, WireFormat::INITIAL];
    for fmt in formats {
        for ty in (0..=30).chain(100..=110).map(PacketType) {
            let Some(len) = type_header_len(fmt, ty) else { continue };
            let zeros = vec![0u8; len];
            for cut in 0..len {
                let r = parse_packet(fmt, ty, Reader(&zeros[..cut]), &[]);
                assert!(r.is_err(), "{ty} type header cut to {cut} of {len} bytes: {r:?}");
            }
        }
    }
}
