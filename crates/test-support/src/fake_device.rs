//! [`FakeDevice`]: a stand-in USB device for transport tests.

use std::collections::VecDeque;

use vstick_bot::{InResult, OutResult};
use vstick_usb::{
    ControlResult, DeviceSummary, EndpointInfo, InterfaceInfo, Setup, Speed, TransferType, UsbDevice,
};

/// The fake's idVendor.
pub const VENDOR_ID: u16 = 0x1234;
/// The fake's idProduct.
pub const PRODUCT_ID: u16 = 0x5678;

/// The fake's device descriptor (GET_DESCRIPTOR(DEVICE)).
pub const DEVICE_DESCRIPTOR: [u8; 18] = [
    18, 0x01, // bLength, DEVICE
    0x00, 0x02, // bcdUSB 2.00
    0x00, 0x00, 0x00, // class/subclass/protocol per interface
    64,   // bMaxPacketSize0
    0x34, 0x12, 0x78, 0x56, // idVendor 0x1234, idProduct 0x5678
    0x00, 0x01, // bcdDevice 1.00
    1, 2, 3, // iManufacturer, iProduct, iSerialNumber
    1, // bNumConfigurations
];

/// String descriptor index 9 of type 3 answers with `big_descriptor` bytes.
const BIG_DESCRIPTOR: u16 = 0x0309;

/// A high-speed device with one configuration and one mass-storage-like
/// interface, bulk IN 0x81 and OUT 0x02. What the IN endpoint returns is
/// scripted: replies queued with [`FakeDevice::queue_in`] or [`FakeDevice::on_out`]
/// (each read up to its end, a short packet), then, with
/// [`FakeDevice::with_loopback`], the bytes written to the OUT endpoint as one
/// stream. Every public field is there for tests to set or read.
#[derive(Debug, Default)]
pub struct FakeDevice {
    /// The active configuration (0 or 1).
    pub configuration: u8,
    /// Port resets seen.
    pub resets: usize,
    pub in_halted: bool,
    pub out_halted: bool,
    /// Every control request seen, with its OUT data.
    pub controls: Vec<(Setup, Vec<u8>)>,
    /// Every bulk OUT transfer accepted.
    pub outs: Vec<Vec<u8>>,
    /// IN replies waiting to be read, in order.
    pub in_data: VecDeque<Vec<u8>>,
    /// Replies that appear, one each, when an OUT transfer is accepted.
    pub on_out: VecDeque<Vec<u8>>,
    /// Whether OUT bytes come back on IN ([`FakeDevice::loopback`]).
    pub echo: bool,
    /// OUT bytes not read back yet (with `echo`).
    pub loopback: VecDeque<u8>,
    /// Size of the huge string descriptor (type 3, index 9).
    pub big_descriptor: usize,
}

impl FakeDevice {
    /// Configured, no IN data until a test scripts some.
    pub fn new() -> Self {
        Self { configuration: 1, big_descriptor: 5000, ..Self::default() }
    }

    /// Configured, and bytes written to the OUT endpoint come back on the IN
    /// endpoint, which makes "IN data appears only after an OUT" easy to drive.
    pub fn with_loopback() -> Self {
        Self { echo: true, ..Self::new() }
    }

    /// Adds a reply the next IN transfers will read.
    pub fn queue_in(&mut self, data: &[u8]) {
        self.in_data.push_back(data.to_vec());
    }

    fn halt(&mut self, endpoint: u16, halted: bool) -> bool {
        match endpoint {
            0x81 => self.in_halted = halted,
            0x02 => self.out_halted = halted,
            _ => return false,
        }
        true
    }
}

impl UsbDevice for FakeDevice {
    fn speed(&self) -> Speed {
        Speed::High
    }

    fn summary(&self) -> DeviceSummary {
        DeviceSummary {
            bcd_usb: 0x0200,
            class: 0,
            subclass: 0,
            protocol: 0,
            vendor_id: VENDOR_ID,
            product_id: PRODUCT_ID,
            bcd_device: 0x0100,
            num_configurations: 1,
        }
    }

    fn configuration(&self) -> u8 {
        self.configuration
    }

    fn set_configuration(&mut self, value: u8) -> bool {
        let known = value <= 1;
        if known {
            self.configuration = value;
        }
        known
    }

    fn alt_setting(&self, interface: u8) -> Option<u8> {
        (self.configuration == 1 && interface == 0).then_some(0)
    }

    fn set_alt_setting(&mut self, interface: u8, alt: u8) -> bool {
        self.configuration == 1 && interface == 0 && alt == 0
    }

    fn interfaces(&self) -> Vec<InterfaceInfo> {
        if self.configuration == 0 {
            return Vec::new();
        }
        vec![InterfaceInfo { number: 0, class: 0x08, subclass: 0x06, protocol: 0x50 }]
    }

    fn endpoints(&self) -> Vec<EndpointInfo> {
        if self.configuration == 0 {
            return Vec::new();
        }
        [0x81, 0x02]
            .into_iter()
            .map(|address| EndpointInfo {
                address,
                transfer_type: TransferType::Bulk,
                max_packet_size: 512,
                interval: 0,
                interface: 0,
            })
            .collect()
    }

    fn control(&mut self, setup: &Setup, data: &[u8]) -> ControlResult {
        self.controls.push((*setup, data.to_vec()));
        let want = usize::from(setup.length);
        match (setup.request_type, setup.request, setup.value) {
            // GET_DESCRIPTOR(DEVICE), and a string longer than any reply may be.
            (0x80, 0x06, 0x0100) => ControlResult::Data(DEVICE_DESCRIPTOR[..want.min(18)].to_vec()),
            (0x80, 0x06, BIG_DESCRIPTOR) => ControlResult::Data(vec![0x33; self.big_descriptor.min(want)]),
            // SET_CONFIGURATION
            (0x00, 0x09, value) => match u8::try_from(value) {
                Ok(value) if self.set_configuration(value) => ControlResult::Ack,
                _ => ControlResult::Stall,
            },
            // CLEAR_FEATURE(ENDPOINT_HALT)
            (0x02, 0x01, 0) if self.halt(setup.index, false) => ControlResult::Ack,
            // GET MAX LUN, Bulk-Only Mass Storage Reset.
            (0xa1, 0xfe, 0) => ControlResult::Data(vec![0]),
            (0x21, 0xff, 0) => ControlResult::Ack,
            // A class and a vendor OUT request with a data stage, for the OUT path.
            (0x21, 0x42, _) | (0x40, 0x10, _) => ControlResult::Ack,
            _ => ControlResult::Stall,
        }
    }

    fn bulk_out(&mut self, endpoint: u8, data: &[u8]) -> OutResult {
        assert_eq!(endpoint, 0x02, "OUT only to 0x02");
        if self.out_halted {
            return OutResult::Stall;
        }
        self.outs.push(data.to_vec());
        if self.echo {
            self.loopback.extend(data);
        }
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
        if let Some(front) = self.in_data.front_mut() {
            let n = front.len().min(buf.len());
            buf[..n].copy_from_slice(&front[..n]);
            front.drain(..n);
            if front.is_empty() {
                self.in_data.pop_front();
            }
            return InResult::Data(n);
        }
        if self.loopback.is_empty() {
            return InResult::Pending;
        }
        let n = buf.len().min(self.loopback.len());
        for (slot, byte) in buf.iter_mut().zip(self.loopback.drain(..n)) {
            *slot = byte;
        }
        InResult::Data(n)
    }

    fn reset(&mut self) {
        self.resets += 1;
        self.in_data.clear();
        self.loopback.clear();
        self.in_halted = false;
        self.out_halted = false;
    }
}
