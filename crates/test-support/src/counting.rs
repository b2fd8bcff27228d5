//! [`CountingDevice`]: a device that counts the reply room it is handed and
//! reports when it writes a kept OUT to the medium.

use std::ops::Range;

use vstick_usb::{
    ControlResult, DeviceSummary, EndpointInfo, InResult, InterfaceInfo, OutResult, Setup, Speed, UsbDevice,
};

/// Wraps a device and adds up the buffer lengths its `bulk_in` is given: the
/// room a transport filled or allocated for replies (the amplification
/// tests); and calls [`CountingDevice::on_deferred`] each time `run_deferred`
/// writes a kept OUT (the order tests of write-behind).
pub struct CountingDevice<D> {
    /// The device.
    pub dev: D,
    /// Bytes of `bulk_in` buffers handed to the device so far.
    pub in_room: usize,
    /// Called after each `run_deferred` that did a kept write.
    pub on_deferred: Option<Box<dyn FnMut()>>,
}

impl<D> CountingDevice<D> {
    /// Counting starts at 0.
    pub fn new(dev: D) -> Self {
        Self { dev, in_room: 0, on_deferred: None }
    }
}

impl<D: UsbDevice> UsbDevice for CountingDevice<D> {
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
        let back = self.dev.run_deferred();
        if let (Some(_), Some(report)) = (&back, &mut self.on_deferred) {
            report();
        }
        back
    }
    fn bulk_in(&mut self, endpoint: u8, buf: &mut [u8]) -> InResult {
        self.in_room += buf.len();
        self.dev.bulk_in(endpoint, buf)
    }
    fn in_available(&mut self, endpoint: u8) -> usize {
        self.dev.in_available(endpoint)
    }
    fn out_wanted(&mut self, endpoint: u8) -> usize {
        self.dev.out_wanted(endpoint)
    }
    fn halted(&self, endpoint: u8) -> bool {
        self.dev.halted(endpoint)
    }
    fn clear_halt(&mut self, endpoint: u8) {
        self.dev.clear_halt(endpoint)
    }
    fn reset(&mut self) {
        self.dev.reset()
    }
}
