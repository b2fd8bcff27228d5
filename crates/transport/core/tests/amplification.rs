//! A held bulk IN request costs nothing per later packet, over both wire
//! formats: the reply buffer is sized by what the device has
//! (`UsbDevice::in_available`), not filled to the request's length on every
//! retry. Counts bytes, not time.

use vstick_media::MemoryImage;
use vstick_scsi::{LunConfig, LunKind, Target};
use vstick_usb::{Identity, InResult, MassStorageDevice, UsbDevice};
use vstick_usbip::codec::{BusId, CmdSubmit, CmdUnlink, Direction, OpRequest, UrbBasic};
use vstick_usbip::{ExportInfo, Usbip};
use vstick_usbredir::codec;
use vstick_usbredir::proto::{BulkHeader, Packet, Status, WireFormat, version_field};
use vstick_usbredir::{OUR_CAPS, Redir};

mod counting {
    //! A device that counts the reply room it is handed.
    use super::*;
    use std::ops::Range;
    use vstick_usb::{ControlResult, DeviceSummary, EndpointInfo, InterfaceInfo, OutResult, Setup, Speed};

    pub struct Counting {
        pub dev: MassStorageDevice,
        pub in_room: usize,
    }

    impl UsbDevice for Counting {
        fn speed(&self) -> Speed {
            self.dev.speed()
        }
        fn summary(&self) -> DeviceSummary {
            self.dev.summary()
        }
        fn configuration(&self) -> u8 {
            self.dev.configuration()
        }
        fn set_configuration(&mut self, value: u8) -> bool {
            self.dev.set_configuration(value)
        }
        fn alt_setting(&self, interface: u8) -> Option<u8> {
            self.dev.alt_setting(interface)
        }
        fn set_alt_setting(&mut self, interface: u8, alt: u8) -> bool {
            self.dev.set_alt_setting(interface, alt)
        }
        fn interfaces(&self) -> Vec<InterfaceInfo> {
            self.dev.interfaces()
        }
        fn endpoints(&self) -> Vec<EndpointInfo> {
            self.dev.endpoints()
        }
        fn control(&mut self, setup: &Setup, data: &[u8]) -> ControlResult {
            self.dev.control(setup, data)
        }
        fn bulk_out(&mut self, endpoint: u8, data: &[u8]) -> OutResult {
            self.dev.bulk_out(endpoint, data)
        }
        fn bulk_out_owned(
            &mut self,
            endpoint: u8,
            buf: Vec<u8>,
            range: Range<usize>,
        ) -> (OutResult, Option<Vec<u8>>) {
            self.dev.bulk_out_owned(endpoint, buf, range)
        }
        fn run_deferred(&mut self) -> Option<Vec<u8>> {
            self.dev.run_deferred()
        }
        fn bulk_in(&mut self, endpoint: u8, buf: &mut [u8]) -> InResult {
            self.in_room += buf.len();
            self.dev.bulk_in(endpoint, buf)
        }
        fn in_available(&mut self, endpoint: u8) -> usize {
            self.dev.in_available(endpoint)
        }
        fn reset(&mut self) {
            self.dev.reset()
        }
    }
}

fn device() -> counting::Counting {
    let lun = LunConfig {
        kind: LunKind::Disk,
        medium: Some(Box::new(MemoryImage::new(1 << 20, 512, false))),
        serial: "AMP".into(),
    };
    let dev = MassStorageDevice::new(Target::new(vec![lun]), Identity::default_for("0123456789AB".into()));
    counting::Counting { dev, in_room: 0 }
}

fn frame(fmt: WireFormat, id: u64, packet: &Packet<'_>) -> Vec<u8> {
    let mut bytes = Vec::new();
    codec::encode(fmt, id, packet, &mut bytes).unwrap();
    bytes
}

#[test]
fn a_held_64_mib_in_request_costs_nothing_per_small_packet() {
    let mut dev = device();
    let mut session = Redir::session();
    let hello = Packet::Hello { version: version_field("amplifier"), caps: vec![OUR_CAPS.0] };
    session.receive(&mut dev, &frame(WireFormat::INITIAL, 0, &hello)).unwrap();
    let fmt = session.protocol().wire_format();
    let _ = session.take_output();

    // A 64 MiB bulk IN with no command: the device has nothing to send.
    let held = BulkHeader { endpoint: 0x81, status: Status::SUCCESS, length: 64 << 20, stream_id: 0 };
    session.receive(&mut dev, &frame(fmt, 1, &Packet::Bulk(held, &[]))).unwrap();
    assert_eq!(session.held_in_requests(), 1);
    let before = (dev.in_room, session.output_initialised());

    // A flood of 16-byte packets, each of which retries the held request.
    let ping = frame(fmt, 2, &Packet::GetConfiguration);
    assert_eq!(ping.len(), 16);
    const PACKETS: usize = 1000;
    for _ in 0..PACKETS {
        session.receive(&mut dev, &ping).unwrap();
        let _ = session.take_output();
    }
    let room = dev.in_room - before.0;
    let zeroed = session.output_initialised().saturating_sub(before.1);
    println!("per 16-byte packet: {} bytes of reply room, {} bytes zeroed", room / PACKETS, zeroed / PACKETS);
    assert_eq!(room, 0, "reply room handed to the device for {PACKETS} packets");
    assert!(zeroed < 64 * 1024, "{zeroed} bytes of output zeroed for {PACKETS} packets");
    assert_eq!(session.held_in_requests(), 1, "the request is still held");
}

#[test]
fn a_held_16_mib_in_urb_costs_nothing_per_small_message() {
    let mut dev = device();
    let mut session = Usbip::session(ExportInfo::new("1-1").unwrap(), false);
    let mut import = Vec::new();
    OpRequest::Import { busid: BusId::new("1-1").unwrap() }.encode(&mut import);
    session.receive(&mut dev, &import).unwrap();
    let _ = session.take_output();

    // A 16 MiB IN URB with no command: the device has nothing to send.
    let held = CmdSubmit {
        basic: UrbBasic { seqnum: 1, devid: 0, direction: Direction::IN, ep: 1 },
        transfer_flags: 0,
        transfer_buffer_length: 16 << 20,
        start_frame: 0,
        number_of_packets: 0,
        interval: 0,
        setup: [0; 8],
    };
    session.receive(&mut dev, &held.to_bytes()).unwrap();
    assert_eq!(session.held_in_requests(), 1);
    let before = (dev.in_room, session.output_initialised());

    // A flood of 48-byte messages (unlinks of URBs long gone).
    let unlink = CmdUnlink {
        basic: UrbBasic { seqnum: 2, devid: 0, direction: Direction::OUT, ep: 0 },
        unlink_seqnum: 99,
    };
    const MESSAGES: usize = 1000;
    for _ in 0..MESSAGES {
        session.receive(&mut dev, &unlink.to_bytes()).unwrap();
        let _ = session.take_output();
    }
    let room = dev.in_room - before.0;
    let zeroed = session.output_initialised().saturating_sub(before.1);
    println!(
        "per 48-byte message: {} bytes of reply room, {} bytes zeroed",
        room / MESSAGES,
        zeroed / MESSAGES
    );
    assert_eq!(room, 0, "reply room handed to the device for {MESSAGES} messages");
    assert!(zeroed < 64 * 1024, "{zeroed} bytes of output zeroed for {MESSAGES} messages");
    assert_eq!(session.held_in_requests(), 1, "the URB is still held");
}
