//! A small stand-in device for session and server tests: one configuration,
//! one mass-storage-like interface, bulk IN 0x81 / OUT 0x02. Bytes written to
//! the OUT endpoint come back on the IN endpoint (a loopback), which makes
//! "IN data appears only after an OUT" easy to drive.

use std::collections::VecDeque;

use vstick_bot::{InResult, OutResult};
use vstick_usb::{ControlResult, DeviceSummary, EndpointInfo, InterfaceInfo, Setup, Speed, TransferType};

use vstick_usb::UsbDevice;

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

#[derive(Debug, Default)]
pub struct FakeDevice {
    pub configuration: u8,
    pub in_halted: bool,
    pub out_halted: bool,
    pub loopback: VecDeque<u8>,
    pub resets: usize,
    /// Every control request seen, with its OUT data.
    pub controls: Vec<(Setup, Vec<u8>)>,
}

impl FakeDevice {
    pub fn new() -> Self {
        Self { configuration: 1, ..Self::default() }
    }
}

impl UsbDevice for FakeDevice {
    fn summary(&self) -> DeviceSummary {
        DeviceSummary {
            bcd_usb: 0x0200,
            class: 0,
            subclass: 0,
            protocol: 0,
            vendor_id: 0x1234,
            product_id: 0x5678,
            bcd_device: 0x0100,
            num_configurations: 1,
        }
    }

    fn speed(&self) -> Speed {
        Speed::High
    }

    fn configuration(&self) -> u8 {
        self.configuration
    }

    // USB/IP carries these as control transfers (see `control`); the session
    // never calls the dedicated methods, which the usbredir session uses.
    fn set_configuration(&mut self, value: u8) -> bool {
        let known = value <= 1;
        if known {
            self.configuration = value;
        }
        known
    }

    fn alt_setting(&self, interface: u8) -> Option<u8> {
        (interface == 0).then_some(0)
    }

    fn set_alt_setting(&mut self, interface: u8, alt: u8) -> bool {
        interface == 0 && alt == 0
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
        match (setup.request_type, setup.request) {
            // GET_DESCRIPTOR(DEVICE)
            (0x80, 0x06) if setup.value == 0x0100 => {
                let n = usize::from(setup.length).min(DEVICE_DESCRIPTOR.len());
                ControlResult::Data(DEVICE_DESCRIPTOR[..n].to_vec())
            }
            // SET_CONFIGURATION
            (0x00, 0x09) if setup.value <= 1 => {
                self.configuration = setup.value as u8;
                ControlResult::Ack
            }
            // CLEAR_FEATURE(ENDPOINT_HALT)
            (0x02, 0x01) if setup.value == 0 => {
                match setup.index {
                    0x81 => self.in_halted = false,
                    0x02 => self.out_halted = false,
                    _ => return ControlResult::Stall,
                }
                ControlResult::Ack
            }
            // A class OUT request with a data stage, for the OUT path.
            (0x21, 0x42) => ControlResult::Ack,
            _ => ControlResult::Stall,
        }
    }

    fn bulk_out(&mut self, endpoint: u8, data: &[u8]) -> OutResult {
        assert_eq!(endpoint, 0x02);
        if self.out_halted {
            return OutResult::Stall;
        }
        self.loopback.extend(data);
        OutResult::Accepted(data.len())
    }

    fn bulk_in(&mut self, endpoint: u8, buf: &mut [u8]) -> InResult {
        assert_eq!(endpoint, 0x81);
        if self.in_halted {
            return InResult::Stall;
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
        self.loopback.clear();
        self.in_halted = false;
        self.out_halted = false;
    }
}
