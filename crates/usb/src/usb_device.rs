//! What a transport needs from the USB device it exports.
//!
//! [`UsbDevice`] is the part of [`MassStorageDevice`] that the usbredir and
//! USB/IP sessions drive, so each session is tested against a small fake and
//! both share one device model.

use std::ops::Range;

use vstick_bot::{CommandTarget, InResult, OutResult};

use crate::{ControlResult, DeviceSummary, EndpointInfo, InterfaceInfo, MassStorageDevice, Setup, Speed};

/// The device side of a transport session (see [`MassStorageDevice`] for the
/// meaning of each call).
pub trait UsbDevice {
    /// The bus speed the device presents.
    fn speed(&self) -> Speed;
    /// The device descriptor fields transports copy into their own headers.
    fn summary(&self) -> DeviceSummary;
    /// Current bConfigurationValue (0: unconfigured).
    fn configuration(&self) -> u8;
    /// SET_CONFIGURATION; `false` for a value the device does not have.
    fn set_configuration(&mut self, value: u8) -> bool;
    /// Current alternate setting of `interface`, `None` if no such interface.
    fn alt_setting(&self, interface: u8) -> Option<u8>;
    /// SET_INTERFACE; `false` for an interface or setting the device does not have.
    fn set_alt_setting(&mut self, interface: u8, alt: u8) -> bool;
    /// Interfaces of the active configuration (empty when unconfigured).
    fn interfaces(&self) -> Vec<InterfaceInfo>;
    /// Endpoints of the active configuration, without endpoint 0.
    fn endpoints(&self) -> Vec<EndpointInfo>;
    /// A control transfer on endpoint 0: the setup packet and any OUT data stage.
    fn control(&mut self, setup: &Setup, data: &[u8]) -> ControlResult;
    /// A bulk OUT transfer of `data` to `endpoint`.
    fn bulk_out(&mut self, endpoint: u8, data: &[u8]) -> OutResult;
    /// A bulk OUT of `buf[range]` whose work the device may finish later, in
    /// [`UsbDevice::run_deferred`], once the transport has sent the
    /// completion; the device then keeps `buf`. Returns `buf` unless kept.
    fn bulk_out_owned(
        &mut self,
        endpoint: u8,
        buf: Vec<u8>,
        range: Range<usize>,
    ) -> (OutResult, Option<Vec<u8>>) {
        let result = self.bulk_out(endpoint, buf.get(range).unwrap_or_default());
        (result, Some(buf))
    }
    /// Finishes work kept by [`UsbDevice::bulk_out_owned`]; returns its buffer.
    fn run_deferred(&mut self) -> Option<Vec<u8>> {
        None
    }
    /// A bulk IN transfer from `endpoint` of up to `buf.len()` bytes.
    fn bulk_in(&mut self, endpoint: u8, buf: &mut [u8]) -> InResult;
    /// An upper bound on what [`UsbDevice::bulk_in`] from `endpoint` would
    /// return now; 0 when it would answer `Pending` or `Stall`. Transports
    /// size reply buffers by it (default: no bound known).
    fn in_available(&mut self, endpoint: u8) -> usize {
        let _ = endpoint;
        usize::MAX
    }
    /// The bytes a bulk OUT to `endpoint` is expected to carry now: a CBW,
    /// or the rest of a data-out stage; 0 when none is expected (unconfigured,
    /// halted, or the device has something to send first). A transport whose
    /// reads complete only when full or on a short packet (a USB device
    /// controller) must never read past it. Default: no bound known.
    fn out_wanted(&mut self, endpoint: u8) -> usize {
        let _ = endpoint;
        usize::MAX
    }
    /// Whether the device halted `endpoint` (0x81 or 0x02). A transport whose
    /// controller keeps halts on the bus mirrors it there, then calls
    /// [`UsbDevice::clear_halt`].
    fn halted(&self, endpoint: u8) -> bool {
        let _ = endpoint;
        false
    }
    /// The device's halt of `endpoint` is now the bus's (see
    /// [`UsbDevice::halted`]); a transport wedged until a Bulk-Only reset stays halted.
    fn clear_halt(&mut self, endpoint: u8) {
        let _ = endpoint;
    }
    /// USB bus reset (port reset).
    fn reset(&mut self);
}

impl<T: CommandTarget> UsbDevice for MassStorageDevice<T> {
    fn speed(&self) -> Speed {
        MassStorageDevice::speed(self)
    }
    fn summary(&self) -> DeviceSummary {
        MassStorageDevice::summary(self)
    }
    fn configuration(&self) -> u8 {
        MassStorageDevice::configuration(self)
    }
    fn set_configuration(&mut self, value: u8) -> bool {
        MassStorageDevice::set_configuration(self, value)
    }
    fn alt_setting(&self, interface: u8) -> Option<u8> {
        MassStorageDevice::alt_setting(self, interface)
    }
    fn set_alt_setting(&mut self, interface: u8, alt: u8) -> bool {
        MassStorageDevice::set_alt_setting(self, interface, alt)
    }
    fn interfaces(&self) -> Vec<InterfaceInfo> {
        MassStorageDevice::interfaces(self)
    }
    fn endpoints(&self) -> Vec<EndpointInfo> {
        MassStorageDevice::endpoints(self)
    }
    fn control(&mut self, setup: &Setup, data: &[u8]) -> ControlResult {
        MassStorageDevice::control(self, setup, data)
    }
    fn bulk_out(&mut self, endpoint: u8, data: &[u8]) -> OutResult {
        MassStorageDevice::bulk_out(self, endpoint, data)
    }
    fn bulk_out_owned(
        &mut self,
        endpoint: u8,
        buf: Vec<u8>,
        range: Range<usize>,
    ) -> (OutResult, Option<Vec<u8>>) {
        MassStorageDevice::bulk_out_owned(self, endpoint, buf, range)
    }
    fn run_deferred(&mut self) -> Option<Vec<u8>> {
        MassStorageDevice::run_deferred(self)
    }
    fn bulk_in(&mut self, endpoint: u8, buf: &mut [u8]) -> InResult {
        MassStorageDevice::bulk_in(self, endpoint, buf)
    }
    fn in_available(&mut self, endpoint: u8) -> usize {
        MassStorageDevice::in_available(self, endpoint)
    }
    fn out_wanted(&mut self, endpoint: u8) -> usize {
        if endpoint == crate::EP_OUT { MassStorageDevice::out_wanted(self) } else { 0 }
    }
    fn halted(&self, endpoint: u8) -> bool {
        MassStorageDevice::endpoint_halted(self, endpoint) == Some(true)
    }
    fn clear_halt(&mut self, endpoint: u8) {
        MassStorageDevice::clear_halt(self, endpoint)
    }
    fn reset(&mut self) {
        MassStorageDevice::reset(self)
    }
}

impl<T: UsbDevice + ?Sized> UsbDevice for &mut T {
    fn speed(&self) -> Speed {
        (**self).speed()
    }
    fn summary(&self) -> DeviceSummary {
        (**self).summary()
    }
    fn configuration(&self) -> u8 {
        (**self).configuration()
    }
    fn set_configuration(&mut self, value: u8) -> bool {
        (**self).set_configuration(value)
    }
    fn alt_setting(&self, interface: u8) -> Option<u8> {
        (**self).alt_setting(interface)
    }
    fn set_alt_setting(&mut self, interface: u8, alt: u8) -> bool {
        (**self).set_alt_setting(interface, alt)
    }
    fn interfaces(&self) -> Vec<InterfaceInfo> {
        (**self).interfaces()
    }
    fn endpoints(&self) -> Vec<EndpointInfo> {
        (**self).endpoints()
    }
    fn control(&mut self, setup: &Setup, data: &[u8]) -> ControlResult {
        (**self).control(setup, data)
    }
    fn bulk_out(&mut self, endpoint: u8, data: &[u8]) -> OutResult {
        (**self).bulk_out(endpoint, data)
    }
    fn bulk_out_owned(
        &mut self,
        endpoint: u8,
        buf: Vec<u8>,
        range: Range<usize>,
    ) -> (OutResult, Option<Vec<u8>>) {
        (**self).bulk_out_owned(endpoint, buf, range)
    }
    fn run_deferred(&mut self) -> Option<Vec<u8>> {
        (**self).run_deferred()
    }
    fn bulk_in(&mut self, endpoint: u8, buf: &mut [u8]) -> InResult {
        (**self).bulk_in(endpoint, buf)
    }
    fn in_available(&mut self, endpoint: u8) -> usize {
        (**self).in_available(endpoint)
    }
    fn out_wanted(&mut self, endpoint: u8) -> usize {
        (**self).out_wanted(endpoint)
    }
    fn halted(&self, endpoint: u8) -> bool {
        (**self).halted(endpoint)
    }
    fn clear_halt(&mut self, endpoint: u8) {
        (**self).clear_halt(endpoint)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
}
