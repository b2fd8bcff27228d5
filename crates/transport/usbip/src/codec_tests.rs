//! Byte-exact vectors for every USB/IP message, error cases, and property
//! tests (round trips; arbitrary bytes never panic).

use proptest::prelude::*;

use crate::codec::*;

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn zeros(n: usize) -> Vec<u8> {
    vec![0; n]
}

fn done<T>(d: Decoded<T>) -> (T, usize) {
    match d {
        Decoded::Done { message, consumed } => (message, consumed),
        Decoded::NeedMore => panic!("expected a whole message"),
    }
}

/// Every strict prefix of `bytes` must ask for more, never error or succeed.
fn assert_prefixes_need_more<F>(bytes: &[u8], decode: F)
where
    F: for<'a> Fn(&'a [u8]) -> Result<Decoded<()>, CodecError>,
{
    for len in 0..bytes.len() {
        let r = decode(&bytes[..len]);
        assert!(matches!(r, Ok(Decoded::NeedMore)), "prefix of {len} bytes: {r:?}");
    }
}

fn sample_record() -> DeviceRecord {
    DeviceRecord {
        path: SysfsPath::new("/sys/devices/vstick/usb1/1-1").unwrap(),
        busid: BusId::new("1-1").unwrap(),
        busnum: 1,
        devnum: 2,
        speed: WireSpeed::HIGH,
        vendor_id: 0x1234,
        product_id: 0x5678,
        bcd_device: 0x0100,
        device_class: 0,
        device_subclass: 0,
        device_protocol: 0,
        configuration_value: 1,
        num_configurations: 1,
        num_interfaces: 1,
    }
}

/// The 312-byte record of `sample_record`, field by field.
fn sample_record_bytes() -> Vec<u8> {
    let path = b"/sys/devices/vstick/usb1/1-1";
    cat(&[
        path,
        &zeros(256 - path.len()), // @0x000 path[256], NUL-padded
        b"1-1",
        &zeros(29),          // @0x100 busid[32]
        &[0, 0, 0, 1],       // @0x120 busnum 1
        &[0, 0, 0, 2],       // @0x124 devnum 2
        &[0, 0, 0, 3],       // @0x128 speed HIGH
        &[0x12, 0x34],       // @0x12C idVendor
        &[0x56, 0x78],       // @0x12E idProduct
        &[0x01, 0x00],       // @0x130 bcdDevice
        &[0x00, 0x00, 0x00], // @0x132 class/subclass/protocol
        &[0x01],             // @0x135 bConfigurationValue
        &[0x01],             // @0x136 bNumConfigurations
        &[0x01],             // @0x137 bNumInterfaces
    ])
}

#[test]
fn sample_record_layout() {
    let mut out = Vec::new();
    sample_record().encode(&mut out);
    assert_eq!(out.len(), DEVICE_RECORD_LEN);
    assert_eq!(out, sample_record_bytes());
    assert_eq!(&out[0x100..0x103], b"1-1");
    assert_eq!(out[0x12B], 3);
}

#[test]
fn op_req_devlist_vector() {
    let bytes = [
        0x01, 0x11, // version 1.1.1
        0x80, 0x05, // OP_REQ_DEVLIST
        0x00, 0x00, 0x00, 0x00, // status (unused)
    ];
    let mut out = Vec::new();
    OpRequest::Devlist.encode(&mut out);
    assert_eq!(out, bytes);
    assert_eq!(done(OpRequest::decode(&bytes).unwrap()), (OpRequest::Devlist, 8));
    assert_prefixes_need_more(&bytes, |b| OpRequest::decode(b).map(|d| d.map(drop)));
}

#[test]
fn op_req_import_vector() {
    let bytes = cat(&[
        &[0x01, 0x11],             // version
        &[0x80, 0x03],             // OP_REQ_IMPORT
        &[0x00, 0x00, 0x00, 0x00], // status (unused)
        b"1-1",
        &zeros(29), // busid[32]
    ]);
    let request = OpRequest::Import { busid: BusId::new("1-1").unwrap() };
    let mut out = Vec::new();
    request.encode(&mut out);
    assert_eq!(out, bytes);
    assert_eq!(done(OpRequest::decode(&bytes).unwrap()), (request, IMPORT_REQUEST_LEN));
    assert_prefixes_need_more(&bytes, |b| OpRequest::decode(b).map(|d| d.map(drop)));
}

#[test]
fn busid_compares_up_to_nul() {
    let mut raw = [0xAAu8; 32];
    raw[..4].copy_from_slice(b"1-1\0");
    let bytes = cat(&[&[0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0], &raw]);
    let (request, _) = done(OpRequest::decode(&bytes).unwrap());
    let OpRequest::Import { busid } = request else { panic!() };
    assert_eq!(busid.as_bytes(), b"1-1");
    assert_eq!(busid.raw(), &raw, "raw bytes kept as received");
    // No NUL at all: all 32 bytes are the name.
    assert_eq!(BusId::from_raw([b'x'; 32]).as_bytes(), &[b'x'; 32]);
}

#[test]
fn fixed_str_rejects_what_does_not_fit() {
    assert!(BusId::new(&"a".repeat(31)).is_ok());
    assert_eq!(BusId::new(&"a".repeat(32)), Err(CodecError::StringTooLong { len: 32, field: 32 }));
    assert!(BusId::new("a\0b").is_err());
}

#[test]
fn op_rep_devlist_vector() {
    let bytes = cat(&[
        &[0x01, 0x11],             // version
        &[0x00, 0x05],             // OP_REP_DEVLIST
        &[0x00, 0x00, 0x00, 0x00], // status OK
        &[0x00, 0x00, 0x00, 0x01], // one device
        &sample_record_bytes(),    // its record
        &[0x08, 0x06, 0x50, 0x00], // interface 0: mass storage, SCSI, BOT, pad
    ]);
    let reply = OpReply::Devlist {
        status: OpStatus::OK,
        devices: vec![ExportedDevice {
            record: sample_record(),
            interfaces: vec![InterfaceRecord { class: 0x08, subclass: 0x06, protocol: 0x50 }],
        }],
    };
    let mut out = Vec::new();
    reply.encode(&mut out);
    assert_eq!(out.len(), 8 + 4 + 312 + 4);
    assert_eq!(out, bytes);
    assert_eq!(done(OpReply::decode(&bytes).unwrap()), (reply, bytes.len()));
    assert_prefixes_need_more(&bytes, |b| OpReply::decode(b).map(|d| d.map(drop)));
}

#[test]
fn op_rep_devlist_empty_and_error() {
    let empty = [0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0, /* ndev */ 0, 0, 0, 0];
    assert_eq!(
        done(OpReply::decode(&empty).unwrap()),
        (OpReply::Devlist { status: OpStatus::OK, devices: vec![] }, 12)
    );
    // A failed devlist ends after op_common.
    let failed = [0x01, 0x11, 0x00, 0x05, 0, 0, 0, 5 /* ERROR */];
    assert_eq!(
        done(OpReply::decode(&failed).unwrap()),
        (OpReply::Devlist { status: OpStatus::ERROR, devices: vec![] }, 8)
    );
}

#[test]
fn op_rep_devlist_device_count_is_capped() {
    let bytes = [0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
    assert_eq!(OpReply::decode(&bytes), Err(CodecError::TooManyDevices(u32::MAX)));
}

#[test]
fn op_rep_import_ok_vector() {
    let bytes = cat(&[
        &[0x01, 0x11],             // version
        &[0x00, 0x03],             // OP_REP_IMPORT
        &[0x00, 0x00, 0x00, 0x00], // status OK
        &sample_record_bytes(),    // record, no interface records
    ]);
    let reply = OpReply::Import { status: OpStatus::OK, device: Some(sample_record()) };
    let mut out = Vec::new();
    reply.encode(&mut out);
    assert_eq!(out, bytes);
    assert_eq!(done(OpReply::decode(&bytes).unwrap()), (reply, 320));
    assert_prefixes_need_more(&bytes, |b| OpReply::decode(b).map(|d| d.map(drop)));
}

#[test]
fn op_rep_import_errors_vector() {
    for (status, code) in [(OpStatus::NODEV, 4u8), (OpStatus::DEV_BUSY, 2), (OpStatus::ERROR, 5)] {
        let bytes = [
            0x01, 0x11, // version
            0x00, 0x03, // OP_REP_IMPORT
            0x00, 0x00, 0x00, code, // status; nothing follows
        ];
        let reply = OpReply::Import { status, device: None };
        let mut out = Vec::new();
        reply.encode(&mut out);
        assert_eq!(out, bytes);
        assert_eq!(done(OpReply::decode(&bytes).unwrap()), (reply, 8));
    }
}

#[test]
fn management_rejects_wrong_version_and_unknown_codes() {
    let old = [0x01, 0x06, 0x80, 0x05, 0, 0, 0, 0];
    assert_eq!(OpRequest::decode(&old), Err(CodecError::UnsupportedVersion(0x0106)));
    let devinfo = [0x01, 0x11, 0x80, 0x02, 0, 0, 0, 0]; // OP_REQ_DEVINFO: not served by Linux either
    assert_eq!(OpRequest::decode(&devinfo), Err(CodecError::UnknownOpCode(OpCode(0x8002))));
    // A reply code is not a request.
    let reply = [0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0];
    assert_eq!(OpRequest::decode(&reply), Err(CodecError::UnknownOpCode(OpCode::REP_DEVLIST)));
    assert_eq!(format!("{:?}", OpCode(0x8002)), "OpCode(0x8002)");
    assert_eq!(format!("{:?}", OpStatus::DEV_BUSY), "DEV_BUSY");
}

/// The example: GET_DESCRIPTOR(DEVICE), 18 bytes, on endpoint 0.
fn get_descriptor_bytes() -> Vec<u8> {
    cat(&[
        &[0x00, 0x00, 0x00, 0x01],                         // command CMD_SUBMIT
        &[0x00, 0x00, 0x00, 0x05],                         // seqnum 5
        &[0x00, 0x01, 0x00, 0x02],                         // devid: busnum 1, devnum 2
        &[0x00, 0x00, 0x00, 0x01],                         // direction IN
        &[0x00, 0x00, 0x00, 0x00],                         // ep 0
        &[0x00, 0x00, 0x02, 0x00],                         // transfer_flags URB_DIR_IN
        &[0x00, 0x00, 0x00, 0x12],                         // transfer_buffer_length 18
        &[0x00, 0x00, 0x00, 0x00],                         // start_frame
        &[0x00, 0x00, 0x00, 0x00],                         // number_of_packets
        &[0x00, 0x00, 0x00, 0x00],                         // interval
        &[0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00], // setup: GET_DESCRIPTOR device, wLength 18
    ])
}

fn get_descriptor_cmd() -> CmdSubmit {
    CmdSubmit {
        basic: UrbBasic { seqnum: 5, devid: 0x0001_0002, direction: Direction::IN, ep: 0 },
        transfer_flags: 0x200,
        transfer_buffer_length: 18,
        start_frame: 0,
        number_of_packets: 0,
        interval: 0,
        setup: [0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00],
    }
}

#[test]
fn cmd_submit_get_descriptor_vector() {
    let bytes = get_descriptor_bytes();
    assert_eq!(bytes.len(), URB_HEADER_LEN);
    let message = ClientMessage::Submit { cmd: get_descriptor_cmd(), data: &[] };
    let mut out = Vec::new();
    message.encode(&mut out);
    assert_eq!(out, bytes);
    assert_eq!(done(ClientMessage::decode(&bytes).unwrap()), (message, 48));
    assert_prefixes_need_more(&bytes, |b| ClientMessage::decode(b).map(|d| d.map(drop)));
    let setup = vstick_usb::Setup::from_bytes(get_descriptor_cmd().setup);
    assert_eq!((setup.request_type, setup.request, setup.value, setup.length), (0x80, 6, 0x0100, 18));
}

#[test]
fn cmd_submit_bulk_out_vector() {
    let bytes = cat(&[
        &[0x00, 0x00, 0x00, 0x01], // CMD_SUBMIT
        &[0x00, 0x00, 0x00, 0x09], // seqnum 9
        &[0x00, 0x01, 0x00, 0x02], // devid
        &[0x00, 0x00, 0x00, 0x00], // direction OUT
        &[0x00, 0x00, 0x00, 0x02], // ep 2
        &[0x00, 0x00, 0x00, 0x00], // transfer_flags
        &[0x00, 0x00, 0x00, 0x04], // transfer_buffer_length 4
        &[0x00, 0x00, 0x00, 0x00], // start_frame
        &[0xFF, 0xFF, 0xFF, 0xFF], // number_of_packets -1 (not ISO, as documented)
        &[0x00, 0x00, 0x00, 0x00], // interval
        &[0; 8],                   // setup unused
        b"USBC",                   // OUT data
    ]);
    let cmd = CmdSubmit {
        basic: UrbBasic { seqnum: 9, devid: 0x0001_0002, direction: Direction::OUT, ep: 2 },
        transfer_flags: 0,
        transfer_buffer_length: 4,
        start_frame: 0,
        number_of_packets: -1,
        interval: 0,
        setup: [0; 8],
    };
    let message = ClientMessage::Submit { cmd, data: b"USBC" };
    let mut out = Vec::new();
    message.encode(&mut out);
    assert_eq!(out, bytes);
    // Trailing bytes belong to the next message.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[1, 2, 3]);
    assert_eq!(done(ClientMessage::decode(&longer).unwrap()), (message, 52));
    assert_prefixes_need_more(&bytes, |b| ClientMessage::decode(b).map(|d| d.map(drop)));
}

#[test]
fn cmd_unlink_vector() {
    let bytes = cat(&[
        &[0x00, 0x00, 0x00, 0x02], // CMD_UNLINK
        &[0x00, 0x00, 0x00, 0x0B], // seqnum 11
        &[0x00, 0x01, 0x00, 0x02], // devid
        &[0x00, 0x00, 0x00, 0x00], // direction
        &[0x00, 0x00, 0x00, 0x00], // ep 0 for UNLINK
        &[0x00, 0x00, 0x00, 0x0A], // unlink_seqnum 10
        &zeros(24),                // padding
    ]);
    let cmd = CmdUnlink {
        basic: UrbBasic { seqnum: 11, devid: 0x0001_0002, direction: Direction::OUT, ep: 0 },
        unlink_seqnum: 10,
    };
    assert_eq!(cmd.to_bytes().to_vec(), bytes);
    assert_eq!(done(ClientMessage::decode(&bytes).unwrap()), (ClientMessage::Unlink(cmd), 48));
    assert_prefixes_need_more(&bytes, |b| ClientMessage::decode(b).map(|d| d.map(drop)));
}

#[test]
fn ret_submit_in_vector() {
    let descriptor = [18, 1, 0, 2, 0, 0, 0, 64, 0x34, 0x12, 0x78, 0x56, 0, 1, 1, 2, 3, 1];
    let bytes = cat(&[
        &[0x00, 0x00, 0x00, 0x03], // RET_SUBMIT
        &[0x00, 0x00, 0x00, 0x05], // seqnum 5
        &[0x00, 0x00, 0x00, 0x00], // devid 0 from the server
        &[0x00, 0x00, 0x00, 0x00], // direction 0 from the server
        &[0x00, 0x00, 0x00, 0x00], // ep 0 from the server
        &[0x00, 0x00, 0x00, 0x00], // status 0
        &[0x00, 0x00, 0x00, 0x12], // actual_length 18
        &[0x00, 0x00, 0x00, 0x00], // start_frame
        &[0x00, 0x00, 0x00, 0x00], // number_of_packets
        &[0x00, 0x00, 0x00, 0x00], // error_count
        &zeros(8),                 // padding
        &descriptor,               // IN data
    ]);
    let ret = RetSubmit {
        basic: UrbBasic::reply(5),
        status: 0,
        actual_length: 18,
        start_frame: 0,
        number_of_packets: 0,
        error_count: 0,
    };
    let message = ServerMessage::Submit { ret, data: &descriptor };
    let mut out = Vec::new();
    message.encode(&mut out);
    assert_eq!(out, bytes);
    assert_eq!(done(ServerMessage::decode(&bytes, |_| true).unwrap()), (message, 66));
    assert_prefixes_need_more(&bytes, |b| ServerMessage::decode(b, |_| true).map(|d| d.map(drop)));
}

#[test]
fn ret_submit_stall_and_out_vectors() {
    let stall = cat(&[
        &[0x00, 0x00, 0x00, 0x03], // RET_SUBMIT
        &[0x00, 0x00, 0x00, 0x07], // seqnum 7
        &zeros(12),                // devid, direction, ep
        &[0xFF, 0xFF, 0xFF, 0xE0], // status -32 (EPIPE)
        &[0x00, 0x00, 0x00, 0x00], // actual_length 0
        &zeros(20),                // start_frame, number_of_packets, error_count, padding
    ]);
    let ret = RetSubmit {
        basic: UrbBasic::reply(7),
        status: errno::EPIPE,
        actual_length: 0,
        start_frame: 0,
        number_of_packets: 0,
        error_count: 0,
    };
    assert_eq!(ret.to_bytes().to_vec(), stall);
    // An OUT reply: actual_length counts consumed bytes, no data follows.
    let out_reply = cat(&[
        &[0x00, 0x00, 0x00, 0x03], // RET_SUBMIT
        &[0x00, 0x00, 0x00, 0x09], // seqnum 9
        &zeros(12),                // devid, direction, ep
        &[0x00, 0x00, 0x00, 0x00], // status 0
        &[0x00, 0x00, 0x00, 0x1F], // actual_length 31 (a CBW)
        &zeros(20),
    ]);
    let (message, used) = done(ServerMessage::decode(&out_reply, |_| false).unwrap());
    assert_eq!(used, 48);
    assert_eq!(
        message,
        ServerMessage::Submit {
            ret: RetSubmit {
                basic: UrbBasic::reply(9),
                status: 0,
                actual_length: 31,
                start_frame: 0,
                number_of_packets: 0,
                error_count: 0
            },
            data: &[],
        }
    );
}

#[test]
fn ret_unlink_vector() {
    let bytes = cat(&[
        &[0x00, 0x00, 0x00, 0x04], // RET_UNLINK
        &[0x00, 0x00, 0x00, 0x0B], // seqnum 11 (the CMD_UNLINK's own)
        &zeros(12),                // devid, direction, ep
        &[0xFF, 0xFF, 0xFF, 0x98], // status -104 (ECONNRESET)
        &zeros(24),                // padding
    ]);
    let ret = RetUnlink { basic: UrbBasic::reply(11), status: errno::ECONNRESET };
    assert_eq!(ret.to_bytes().to_vec(), bytes);
    assert_eq!(done(ServerMessage::decode(&bytes, |_| true).unwrap()), (ServerMessage::Unlink(ret), 48));
}

#[test]
fn urb_errors() {
    // Unknown command (USBIP_RESET_DEV is not a wire message).
    let mut h = get_descriptor_bytes();
    h[..4].copy_from_slice(&[0, 0, 0xFF, 0xFF]);
    assert_eq!(ClientMessage::decode(&h), Err(CodecError::UnknownCommand(UrbCommand(0xFFFF))));
    // A reply sent to the server.
    h[..4].copy_from_slice(&[0, 0, 0, 3]);
    assert_eq!(ClientMessage::decode(&h), Err(CodecError::UnknownCommand(UrbCommand::RET_SUBMIT)));
    // A direction that is neither IN nor OUT cannot be framed.
    let mut h = get_descriptor_bytes();
    h[0x0C..0x10].copy_from_slice(&[0, 0, 0, 2]);
    assert_eq!(ClientMessage::decode(&h), Err(CodecError::BadDirection(Direction(2))));
    // Absurd lengths fail on the header alone, for OUT (data would follow) and IN.
    for direction in [0u8, 1] {
        let mut h = get_descriptor_bytes();
        h[0x0F] = direction;
        h[0x18..0x1C].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xF0]);
        assert_eq!(
            ClientMessage::decode(&h),
            Err(CodecError::TransferTooLong { length: 0xFFFF_FFF0, max: MAX_TRANSFER_LENGTH })
        );
    }
    // The cap itself is allowed: the decoder waits for the data.
    let mut h = get_descriptor_bytes();
    h[0x0F] = 0;
    h[0x18..0x1C].copy_from_slice(&MAX_TRANSFER_LENGTH.to_be_bytes());
    assert_eq!(ClientMessage::decode(&h), Ok(Decoded::NeedMore));
    // Server side: the client rejects absurd actual_length too.
    let mut r = RetSubmit {
        basic: UrbBasic::reply(1),
        status: 0,
        actual_length: u32::MAX,
        start_frame: 0,
        number_of_packets: 0,
        error_count: 0,
    }
    .to_bytes();
    assert!(ServerMessage::decode(&r, |_| true).is_err());
    r[..4].copy_from_slice(&[0, 0, 0, 1]);
    assert_eq!(ServerMessage::decode(&r, |_| true), Err(CodecError::UnknownCommand(UrbCommand::CMD_SUBMIT)));
}

// ---------------------------------------------------------------------------
// Property tests

fn fixed<const N: usize>() -> impl Strategy<Value = FixedStr<N>> {
    proptest::collection::vec(any::<u8>(), N).prop_map(|v| FixedStr::from_raw(v.try_into().unwrap()))
}

fn record() -> impl Strategy<Value = DeviceRecord> {
    (fixed::<256>(), fixed::<32>(), any::<[u32; 3]>(), any::<[u16; 3]>(), any::<[u8; 6]>()).prop_map(
        |(path, busid, [busnum, devnum, speed], [vendor_id, product_id, bcd_device], b)| DeviceRecord {
            path,
            busid,
            busnum,
            devnum,
            speed: WireSpeed(speed),
            vendor_id,
            product_id,
            bcd_device,
            device_class: b[0],
            device_subclass: b[1],
            device_protocol: b[2],
            configuration_value: b[3],
            num_configurations: b[4],
            num_interfaces: b[5],
        },
    )
}

fn exported() -> impl Strategy<Value = ExportedDevice> {
    (record(), proptest::collection::vec(any::<[u8; 3]>(), 0..8)).prop_map(|(mut record, ifs)| {
        record.num_interfaces = ifs.len() as u8;
        ExportedDevice {
            record,
            interfaces: ifs
                .into_iter()
                .map(|[class, subclass, protocol]| InterfaceRecord { class, subclass, protocol })
                .collect(),
        }
    })
}

fn op_status() -> impl Strategy<Value = OpStatus> {
    prop_oneof![Just(OpStatus::OK), any::<u32>().prop_map(OpStatus)]
}

fn op_reply() -> impl Strategy<Value = OpReply> {
    prop_oneof![
        (op_status(), proptest::collection::vec(exported(), 0..4)).prop_map(|(status, devices)| {
            OpReply::Devlist { devices: if status == OpStatus::OK { devices } else { vec![] }, status }
        }),
        (op_status(), record()).prop_map(|(status, record)| OpReply::Import {
            device: (status == OpStatus::OK).then_some(record),
            status,
        }),
    ]
}

fn basic() -> impl Strategy<Value = UrbBasic> {
    any::<[u32; 4]>().prop_map(|[seqnum, devid, direction, ep]| UrbBasic {
        seqnum,
        devid,
        direction: Direction(direction),
        ep,
    })
}

/// A CMD_SUBMIT and its OUT data, consistent with each other.
fn submit() -> impl Strategy<Value = (CmdSubmit, Vec<u8>)> {
    (
        basic(),
        any::<bool>(),
        any::<u32>(),
        0u32..=MAX_TRANSFER_LENGTH,
        any::<[i32; 3]>(),
        any::<[u8; 8]>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(
            |(
                mut basic,
                is_in,
                transfer_flags,
                in_len,
                [start_frame, number_of_packets, interval],
                setup,
                data,
            )| {
                basic.direction = if is_in { Direction::IN } else { Direction::OUT };
                let transfer_buffer_length = if is_in { in_len } else { data.len() as u32 };
                let cmd = CmdSubmit {
                    basic,
                    transfer_flags,
                    transfer_buffer_length,
                    start_frame,
                    number_of_packets,
                    interval,
                    setup,
                };
                (cmd, if is_in { vec![] } else { data })
            },
        )
}

proptest! {
    #[test]
    fn op_request_round_trips(busid in fixed::<32>(), import in any::<bool>()) {
        let request = if import { OpRequest::Import { busid } } else { OpRequest::Devlist };
        let mut bytes = Vec::new();
        request.encode(&mut bytes);
        prop_assert_eq!(done(OpRequest::decode(&bytes).unwrap()), (request, bytes.len()));
    }

    #[test]
    fn op_reply_round_trips(reply in op_reply()) {
        let mut bytes = Vec::new();
        reply.encode(&mut bytes);
        prop_assert_eq!(done(OpReply::decode(&bytes).unwrap()), (reply, bytes.len()));
        for len in 0..bytes.len() {
            prop_assert_eq!(OpReply::decode(&bytes[..len]), Ok(Decoded::NeedMore));
        }
    }

    #[test]
    fn client_message_round_trips((cmd, data) in submit(), unlink in (basic(), any::<u32>()), pick_unlink in any::<bool>()) {
        let message = if pick_unlink {
            ClientMessage::Unlink(CmdUnlink { basic: unlink.0, unlink_seqnum: unlink.1 })
        } else {
            ClientMessage::Submit { cmd, data: &data }
        };
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        prop_assert_eq!(done(ClientMessage::decode(&bytes).unwrap()), (message, bytes.len()));
        prop_assert_eq!(ClientMessage::decode(&bytes[..bytes.len() - 1]), Ok(Decoded::NeedMore));
    }

    #[test]
    fn server_message_round_trips(b in basic(), fields in any::<[i32; 4]>(), data in proptest::collection::vec(any::<u8>(), 0..300), is_in in any::<bool>(), pick_unlink in any::<bool>()) {
        let [status, start_frame, number_of_packets, error_count] = fields;
        let data = if is_in { data } else { vec![] };
        let message = if pick_unlink {
            ServerMessage::Unlink(RetUnlink { basic: b, status })
        } else {
            let ret = RetSubmit { basic: b, status, actual_length: data.len() as u32, start_frame, number_of_packets, error_count };
            ServerMessage::Submit { ret, data: &data }
        };
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        prop_assert_eq!(done(ServerMessage::decode(&bytes, |_| is_in).unwrap()), (message, bytes.len()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700), is_in in any::<bool>()) {
        for decoded in [
            OpRequest::decode(&bytes).map(|d| d.map(|_| ())),
            OpReply::decode(&bytes).map(|d| d.map(|_| ())),
            ClientMessage::decode(&bytes).map(|d| d.map(|_| ())),
            ServerMessage::decode(&bytes, |_| is_in).map(|d| d.map(|_| ())),
        ] {
            if let Ok(Decoded::Done { consumed, .. }) = decoded {
                prop_assert!(consumed <= bytes.len() && consumed >= OP_COMMON_LEN);
            }
        }
    }

    /// Valid-looking headers with random fields: the interesting paths.
    #[test]
    fn arbitrary_headers_never_panic(command in 0u32..6, rest in proptest::collection::vec(any::<u8>(), 44..120), version_ok in any::<bool>()) {
        let mut urb = command.to_be_bytes().to_vec();
        urb.extend_from_slice(&rest);
        let _ = ClientMessage::decode(&urb);
        let _ = ServerMessage::decode(&urb, |s| s % 2 == 0);
        let mut op = if version_ok { vec![0x01, 0x11] } else { vec![] };
        op.extend_from_slice(&rest);
        let _ = OpRequest::decode(&op);
        let _ = OpReply::decode(&op);
    }
}
