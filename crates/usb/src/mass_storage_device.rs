//! [`MassStorageDevice`]: configuration state, bulk endpoint routing and resets.

use tracing::debug;
use vstick_bot::{BulkOnly, CommandTarget, InResult, OutResult};
use vstick_scsi::Target;

use crate::descriptors::{
    self, CLASS_MASS_STORAGE, CONFIGURATION_VALUE, INTERFACE_NUMBER, PROTOCOL_BULK_ONLY,
    SUBCLASS_SCSI_TRANSPARENT,
};
use crate::{DeviceSummary, EP_IN, EP_OUT, EndpointInfo, Identity, InterfaceInfo, Speed, TransferType};

/// The bulk endpoint a transfer addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BulkEndpoint {
    In,
    Out,
}

impl BulkEndpoint {
    /// From a full endpoint address (wIndex of an endpoint request: 0x81, 0x02).
    pub(crate) fn from_address(address: u8) -> Option<Self> {
        match address {
            EP_IN => Some(BulkEndpoint::In),
            EP_OUT => Some(BulkEndpoint::Out),
            _ => None,
        }
    }

    pub(crate) fn is_in(self) -> bool {
        self == BulkEndpoint::In
    }
}

/// The whole USB device: descriptors, configuration state, BOT and the SCSI target.
///
/// Generic over the command set so that the USB layer can be tested with a
/// scripted target; everything outside tests uses the default, [`Target`].
pub struct MassStorageDevice<T = Target> {
    pub(crate) target: T,
    pub(crate) bot: BulkOnly,
    pub(crate) identity: Identity,
    speed: Speed,
    /// bConfigurationValue; 0 = unconfigured (address state).
    configuration: u8,
    alt_setting: u8,
    /// U1_ENABLE / U2_ENABLE as set by the host (SuperSpeed only; USB 3.2
    /// §9.4.1), reported back by GET_STATUS. Link states are not modelled.
    pub(crate) u1_enabled: bool,
    pub(crate) u2_enabled: bool,
}

impl<T: CommandTarget> MassStorageDevice<T> {
    /// A high-speed device, already configured (see [`Self::configuration`]).
    pub fn new(target: T, identity: Identity) -> Self {
        Self {
            target,
            bot: BulkOnly::new(),
            identity,
            speed: Speed::High,
            configuration: CONFIGURATION_VALUE,
            alt_setting: 0,
            u1_enabled: false,
            u2_enabled: false,
        }
    }

    /// Presents the device at another speed: [`Speed::Full`] (64-byte bulk
    /// packets), [`Speed::High`] (the default, bcdUSB 2.00) or
    /// [`Speed::Super`] (bcdUSB 3.00 with BOS and endpoint companions,
    /// 1024-byte bulk packets). The speed is the transport's choice: it must
    /// match the port the transport reports (usbredir on a QEMU xHCI can
    /// attach SuperSpeed; USB/IP clients expect bcdUSB 2.00).
    pub fn with_speed(mut self, speed: Speed) -> Self {
        self.speed = speed;
        self
    }

    /// The bus speed the device presents.
    pub fn speed(&self) -> Speed {
        self.speed
    }

    /// IDs and strings of the device descriptor.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The device descriptor fields transports copy into their own headers.
    pub fn summary(&self) -> DeviceSummary {
        DeviceSummary {
            bcd_usb: match self.speed {
                Speed::Super => descriptors::BCD_USB_SUPER,
                Speed::Full | Speed::High => descriptors::BCD_USB,
            },
            class: 0,
            subclass: 0,
            protocol: 0,
            vendor_id: self.identity.vendor_id,
            product_id: self.identity.product_id,
            bcd_device: self.identity.bcd_device,
            num_configurations: 1,
        }
    }

    /// The 18-byte device descriptor at the current speed.
    pub fn device_descriptor_bytes(&self) -> [u8; 18] {
        match self.speed {
            Speed::Super => descriptors::super_speed_device_descriptor(&self.identity),
            Speed::Full | Speed::High => descriptors::device_descriptor(&self.identity),
        }
    }

    /// The configuration descriptor with its interface and endpoint
    /// descriptors (wTotalLength bytes) at the current speed.
    pub fn configuration_descriptor_bytes(&self) -> Vec<u8> {
        match self.speed {
            Speed::Super => descriptors::super_speed_configuration_descriptor().to_vec(),
            Speed::Full | Speed::High => descriptors::configuration_descriptor(self.speed).to_vec(),
        }
    }

    /// Current bConfigurationValue (starts at 1: transports present the
    /// device already configured, as a host-side claimed device is).
    pub fn configuration(&self) -> u8 {
        self.configuration
    }

    /// SET_CONFIGURATION; `false` for a value the device does not have.
    ///
    /// USB 2.0 §9.4.5/§9.1.1.5: (re)configuring resets the endpoints of the
    /// configuration, halts included, so the transport also starts over
    /// (the command in flight is aborted, a wedge is lifted).
    pub fn set_configuration(&mut self, value: u8) -> bool {
        if value != 0 && value != CONFIGURATION_VALUE {
            debug!(value, "SET_CONFIGURATION to a value the device does not have");
            return false;
        }
        self.reset_interface();
        self.configuration = value;
        self.alt_setting = 0;
        true
    }

    /// Current alternate setting of `interface`, `None` if no such interface.
    pub fn alt_setting(&self, interface: u8) -> Option<u8> {
        (self.is_configured() && interface == INTERFACE_NUMBER).then_some(self.alt_setting)
    }

    /// SET_INTERFACE; only alternate setting 0 exists.
    ///
    /// §9.4.10: selecting a setting clears the halts of its endpoints.
    pub fn set_alt_setting(&mut self, interface: u8, alt: u8) -> bool {
        if !self.is_configured() || interface != INTERFACE_NUMBER || alt != 0 {
            return false;
        }
        self.reset_interface();
        self.alt_setting = 0;
        true
    }

    /// Interfaces of the active configuration (empty when unconfigured).
    pub fn interfaces(&self) -> Vec<InterfaceInfo> {
        if !self.is_configured() {
            return Vec::new();
        }
        vec![InterfaceInfo {
            number: INTERFACE_NUMBER,
            class: CLASS_MASS_STORAGE,
            subclass: SUBCLASS_SCSI_TRANSPARENT,
            protocol: PROTOCOL_BULK_ONLY,
        }]
    }

    /// Endpoints of the active configuration, without endpoint 0.
    pub fn endpoints(&self) -> Vec<EndpointInfo> {
        if !self.is_configured() {
            return Vec::new();
        }
        let max_packet_size = descriptors::bulk_max_packet_size(self.speed);
        [EP_IN, EP_OUT]
            .into_iter()
            .map(|address| EndpointInfo {
                address,
                transfer_type: TransferType::Bulk,
                max_packet_size,
                interval: 0,
                interface: INTERFACE_NUMBER,
            })
            .collect()
    }

    /// Whether the bulk endpoint at `address` (0x81 or 0x02) is halted;
    /// `None` for an endpoint the active configuration does not have.
    pub fn endpoint_halted(&self, address: u8) -> Option<bool> {
        let endpoint = BulkEndpoint::from_address(address).filter(|_| self.is_configured())?;
        Some(self.bot.is_halted(endpoint.is_in()))
    }

    /// A bulk OUT transfer to `endpoint`: 0x02 (USB/IP gives the number
    /// without the direction bit, which for OUT is the same value). Any
    /// other endpoint, or an unconfigured device, answers STALL.
    pub fn bulk_out(&mut self, endpoint: u8, data: &[u8]) -> OutResult {
        if !self.is_configured() || endpoint != EP_OUT {
            debug!(endpoint, "bulk OUT to an endpoint the device does not have");
            return OutResult::Stall;
        }
        self.bot.bulk_out(&mut self.target, data)
    }

    /// [`MassStorageDevice::bulk_out`] of `buf[range]`, where the device may
    /// keep `buf` and write it to the medium in [`MassStorageDevice::run_deferred`]
    /// (see [`vstick_bot::BulkOnly::bulk_out_owned`]). Returns `buf` unless kept.
    pub fn bulk_out_owned(
        &mut self,
        endpoint: u8,
        buf: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> (OutResult, Option<Vec<u8>>) {
        if !self.is_configured() || endpoint != EP_OUT {
            debug!(endpoint, "bulk OUT to an endpoint the device does not have");
            return (OutResult::Stall, Some(buf));
        }
        self.bot.bulk_out_owned(&mut self.target, buf, range)
    }

    /// Whether a [`MassStorageDevice::bulk_out_owned`] transfer still waits
    /// to reach the medium.
    pub fn has_deferred(&self) -> bool {
        self.bot.has_deferred()
    }

    /// Does the work a [`MassStorageDevice::bulk_out_owned`] kept for later
    /// and returns its buffer for reuse.
    pub fn run_deferred(&mut self) -> Option<Vec<u8>> {
        self.bot.run_deferred(&mut self.target)
    }

    /// A bulk IN transfer from `endpoint` of up to `buf.len()` bytes:
    /// 0x81, or 1 (USB/IP's number without the direction bit). Any other
    /// endpoint, or an unconfigured device, answers STALL.
    pub fn bulk_in(&mut self, endpoint: u8, buf: &mut [u8]) -> InResult {
        if !self.is_configured() || (endpoint != EP_IN && endpoint != EP_IN & 0x0F) {
            debug!(endpoint, "bulk IN from an endpoint the device does not have");
            return InResult::Stall;
        }
        self.bot.bulk_in(&mut self.target, buf)
    }

    /// The bytes a [`MassStorageDevice::bulk_in`] from `endpoint` would
    /// return now (see [`vstick_bot::BulkOnly::in_available`]); 0 when it
    /// would answer `Pending` or `Stall`.
    pub fn in_available(&mut self, endpoint: u8) -> usize {
        if !self.is_configured() || (endpoint != EP_IN && endpoint != EP_IN & 0x0F) {
            return 0;
        }
        self.bot.in_available(&mut self.target)
    }

    /// The bytes a bulk OUT to 0x02 is expected to carry now (see
    /// [`vstick_bot::BulkOnly::out_wanted`]); 0 when unconfigured or halted.
    pub fn out_wanted(&self) -> usize {
        if !self.is_configured() {
            return 0;
        }
        self.bot.out_wanted()
    }

    /// Clears a halt the transport has handed to the bus (a USB gadget's
    /// controller keeps the halt and answers the host's CLEAR_FEATURE itself):
    /// the device goes on to its next transfer, which the controller holds
    /// until the host has cleared the halt. A wedged transport (§6.6.1)
    /// stays halted until a Bulk-Only reset.
    pub fn clear_halt(&mut self, address: u8) {
        if let Some(endpoint) = BulkEndpoint::from_address(address) {
            self.bot.clear_halt(endpoint.is_in());
        }
    }

    /// USB bus reset (port reset): halts cleared, BOT and SCSI reset
    /// (UNIT ATTENTION 06/29/00), configuration kept for the transport.
    pub fn reset(&mut self) {
        debug!("USB port reset");
        self.reset_interface();
        self.alt_setting = 0;
        // USB 3.2 §9.4.1: a reset clears the U1/U2 enables.
        self.u1_enabled = false;
        self.u2_enabled = false;
        self.target.reset();
    }

    /// The command target (SCSI LUNs) behind the Bulk-Only Transport.
    pub fn target(&self) -> &T {
        &self.target
    }

    /// The target, after any deferred write reached it: whoever changes or
    /// flushes media (the control socket, shutdown) sees the writes in order.
    pub fn target_mut(&mut self) -> &mut T {
        self.bot.deliver_deferred(&mut self.target);
        &mut self.target
    }

    pub(crate) fn is_configured(&self) -> bool {
        self.configuration != 0
    }

    /// Transport back to "ready for a CBW" with both pipes running.
    fn reset_interface(&mut self) {
        self.bot.reset(&mut self.target);
        self.bot.clear_halt(true);
        self.bot.clear_halt(false);
    }
}
