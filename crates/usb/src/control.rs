//! Control transfers on endpoint 0: the standard requests of USB 2.0 §9.4
//! and the two class requests of MSC BOT 1.0 §3.

use tracing::debug;
use vstick_bot::CommandTarget;

use crate::descriptors::{
    self, DESCRIPTOR_BOS, DESCRIPTOR_CONFIGURATION, DESCRIPTOR_DEVICE, DESCRIPTOR_DEVICE_QUALIFIER,
    DESCRIPTOR_OTHER_SPEED_CONFIGURATION, DESCRIPTOR_STRING, INTERFACE_NUMBER, STRING_LANGUAGES,
    STRING_MANUFACTURER, STRING_PRODUCT, STRING_SERIAL,
};
use crate::mass_storage_device::BulkEndpoint;
use crate::{ControlResult, MassStorageDevice, Setup, Speed};

/// bmRequestType values (direction | type | recipient, USB 2.0 Table 9-2).
pub mod request_type {
    /// Standard request to the device, device to host.
    pub const DEVICE_IN: u8 = 0x80;
    /// Standard request to an interface, device to host.
    pub const INTERFACE_IN: u8 = 0x81;
    /// Standard request to an endpoint, device to host.
    pub const ENDPOINT_IN: u8 = 0x82;
    /// Standard request to the device, host to device.
    pub const DEVICE_OUT: u8 = 0x00;
    /// Standard request to an interface, host to device.
    pub const INTERFACE_OUT: u8 = 0x01;
    /// Standard request to an endpoint, host to device.
    pub const ENDPOINT_OUT: u8 = 0x02;
    /// Class request to an interface, device to host.
    pub const CLASS_INTERFACE_IN: u8 = 0xA1;
    /// Class request to an interface, host to device.
    pub const CLASS_INTERFACE_OUT: u8 = 0x21;
}

/// bRequest codes (USB 2.0 Table 9-4, BOT §3.1/§3.2).
pub mod request {
    /// Status of the device, an interface or an endpoint (halt bit).
    pub const GET_STATUS: u8 = 0;
    /// Clears a feature, e.g. ENDPOINT_HALT to un-stall an endpoint.
    pub const CLEAR_FEATURE: u8 = 1;
    /// Sets a feature, e.g. ENDPOINT_HALT or DEVICE_REMOTE_WAKEUP.
    pub const SET_FEATURE: u8 = 3;
    /// Assigns the device address (1..=127, 0 = default address).
    pub const SET_ADDRESS: u8 = 5;
    /// Reads a descriptor; `wValue` = type << 8 | index.
    pub const GET_DESCRIPTOR: u8 = 6;
    /// Writes a descriptor (optional in USB 2.0).
    pub const SET_DESCRIPTOR: u8 = 7;
    /// Reads the current `bConfigurationValue`.
    pub const GET_CONFIGURATION: u8 = 8;
    /// Selects a configuration (0 returns to the Address state).
    pub const SET_CONFIGURATION: u8 = 9;
    /// Reads an interface's alternate setting.
    pub const GET_INTERFACE: u8 = 10;
    /// Selects an interface's alternate setting.
    pub const SET_INTERFACE: u8 = 11;
    /// Isochronous frame sync (not used by bulk-only devices).
    pub const SYNCH_FRAME: u8 = 12;
    /// Bulk-Only Mass Storage Reset (BOT §3.1).
    pub const BULK_ONLY_RESET: u8 = 0xFF;
    /// Get Max LUN (BOT §3.2).
    pub const GET_MAX_LUN: u8 = 0xFE;
    /// SuperSpeed only (USB 3.2 Table 9-5): system exit latencies for U1/U2.
    pub const SET_SEL: u8 = 48;
    /// SuperSpeed only: the isochronous delay (no isochronous endpoints here).
    pub const SET_ISOCH_DELAY: u8 = 49;
}

/// Feature selector ENDPOINT_HALT (USB 2.0 Table 9-6).
const FEATURE_ENDPOINT_HALT: u16 = 0;
/// Feature selectors of SuperSpeed devices (USB 3.2 Table 9-7).
const FEATURE_FUNCTION_SUSPEND: u16 = 0;
const FEATURE_U1_ENABLE: u16 = 48;
const FEATURE_U2_ENABLE: u16 = 49;
/// SET_SEL carries six bytes: U1SEL, U1PEL, U2SEL (u16), U2PEL (u16).
const SET_SEL_LENGTH: u16 = 6;

impl<T: CommandTarget> MassStorageDevice<T> {
    /// A control transfer on endpoint 0: standard requests (GET_DESCRIPTOR,
    /// GET/SET_CONFIGURATION, GET/SET_INTERFACE, GET_STATUS, CLEAR/SET_FEATURE)
    /// and the class requests GET MAX LUN and Bulk-Only Mass Storage Reset.
    /// `data` is the OUT data stage (empty for IN requests).
    pub fn control(&mut self, setup: &Setup, data: &[u8]) -> ControlResult {
        let _ = data; // no request this device accepts has an OUT data stage
        // Requests (halts, resets, configuration) act after the writes before them.
        self.bot.deliver_deferred(&mut self.target);
        let result = self.dispatch(setup);
        if result == ControlResult::Stall {
            debug!(?setup, "control request stalled");
        }
        match result {
            // §9.3.5: never return more than wLength.
            ControlResult::Data(mut bytes) => {
                bytes.truncate(usize::from(setup.length));
                ControlResult::Data(bytes)
            }
            other => other,
        }
    }

    fn dispatch(&mut self, setup: &Setup) -> ControlResult {
        use request::*;
        use request_type::*;
        match (setup.request_type, setup.request) {
            (DEVICE_IN, GET_DESCRIPTOR) => self.get_descriptor(setup),
            (DEVICE_IN, GET_STATUS) => {
                // Bit 0 self-powered (no: bus-powered), bit 1 remote wakeup
                // (off); at SuperSpeed bits 2 and 3 are U1/U2 enable (USB 3.2
                // Figure 9-4).
                let u1 = u8::from(self.u1_enabled) << 2;
                let u2 = u8::from(self.u2_enabled) << 3;
                ControlResult::Data(vec![u1 | u2, 0])
            }
            (INTERFACE_IN, GET_STATUS) if self.interface_exists(setup.index) => {
                ControlResult::Data(vec![0, 0])
            }
            (ENDPOINT_IN, GET_STATUS) => match self.endpoint(setup.index) {
                Some(Endpoint::Zero) => ControlResult::Data(vec![0, 0]),
                Some(Endpoint::Bulk(ep)) => {
                    ControlResult::Data(vec![u8::from(self.bot.is_halted(ep.is_in())), 0])
                }
                None => ControlResult::Stall,
            },
            (DEVICE_IN, GET_CONFIGURATION) => ControlResult::Data(vec![self.configuration()]),
            (DEVICE_OUT, SET_CONFIGURATION) => match u8::try_from(setup.value) {
                Ok(value) if self.set_configuration(value) => ControlResult::Ack,
                _ => ControlResult::Stall,
            },
            (INTERFACE_IN, GET_INTERFACE) => {
                match u8::try_from(setup.index).ok().and_then(|i| self.alt_setting(i)) {
                    Some(alt) => ControlResult::Data(vec![alt]),
                    None => ControlResult::Stall,
                }
            }
            (INTERFACE_OUT, SET_INTERFACE) => match (u8::try_from(setup.index), u8::try_from(setup.value)) {
                (Ok(interface), Ok(alt)) if self.set_alt_setting(interface, alt) => ControlResult::Ack,
                _ => ControlResult::Stall,
            },
            (ENDPOINT_OUT, CLEAR_FEATURE) if setup.value == FEATURE_ENDPOINT_HALT => {
                match self.endpoint(setup.index) {
                    // Endpoint 0's stall ends with the next SETUP anyway (§8.5.3.4).
                    Some(Endpoint::Zero) => ControlResult::Ack,
                    Some(Endpoint::Bulk(ep)) => {
                        self.bot.clear_halt(ep.is_in());
                        ControlResult::Ack
                    }
                    None => ControlResult::Stall,
                }
            }
            (ENDPOINT_OUT, SET_FEATURE) if setup.value == FEATURE_ENDPOINT_HALT => {
                match self.endpoint(setup.index) {
                    Some(Endpoint::Zero) => ControlResult::Ack,
                    Some(Endpoint::Bulk(ep)) => {
                        self.bot.set_halt(ep.is_in());
                        ControlResult::Ack
                    }
                    None => ControlResult::Stall,
                }
            }
            (DEVICE_OUT, SET_FEATURE | CLEAR_FEATURE) if self.is_super_speed() => {
                let on = setup.request == SET_FEATURE;
                match setup.value {
                    FEATURE_U1_ENABLE => self.u1_enabled = on,
                    FEATURE_U2_ENABLE => self.u2_enabled = on,
                    // LTM_ENABLE needs the LTM capability we do not declare.
                    _ => return ControlResult::Stall,
                }
                ControlResult::Ack
            }
            // FUNCTION_SUSPEND (wIndex: options << 8 | interface): nothing to
            // suspend on a virtual link, so accept it (USB 3.2 §9.4.9).
            (INTERFACE_OUT, SET_FEATURE | CLEAR_FEATURE)
                if self.is_super_speed()
                    && setup.value == FEATURE_FUNCTION_SUSPEND
                    && self.interface_exists(setup.index & 0xFF) =>
            {
                ControlResult::Ack
            }
            (DEVICE_OUT, SET_SEL) if self.is_super_speed() && setup.length == SET_SEL_LENGTH => {
                ControlResult::Ack
            }
            (DEVICE_OUT, SET_ISOCH_DELAY) if self.is_super_speed() && setup.length == 0 => ControlResult::Ack,
            // The transport owns the bus address; accept it.
            (DEVICE_OUT, SET_ADDRESS) if setup.value <= 127 => ControlResult::Ack,
            (CLASS_INTERFACE_IN, GET_MAX_LUN) => self.get_max_lun(setup),
            (CLASS_INTERFACE_OUT, BULK_ONLY_RESET) => self.bulk_only_reset(setup),
            // DEVICE_REMOTE_WAKEUP and TEST_MODE (not offered), interface
            // features (none exist), SET_DESCRIPTOR, SYNCH_FRAME (no
            // isochronous endpoints), vendor requests: Request Error (§9.2.7).
            _ => ControlResult::Stall,
        }
    }

    /// GET_DESCRIPTOR (§9.4.3): wValue = type << 8 | index, wIndex = LANGID for strings.
    fn get_descriptor(&self, setup: &Setup) -> ControlResult {
        let [index, descriptor_type] = setup.value.to_le_bytes();
        let super_speed = self.is_super_speed();
        let bytes = match (descriptor_type, index) {
            (DESCRIPTOR_DEVICE, _) => self.device_descriptor_bytes().to_vec(),
            (DESCRIPTOR_CONFIGURATION, 0) => self.configuration_descriptor_bytes(),
            // USB 3.2 §9.4.3: a device at SuperSpeed answers these two with a
            // Request Error; at USB 2.0 speeds they describe the other speed.
            (DESCRIPTOR_DEVICE_QUALIFIER, _) if !super_speed => descriptors::device_qualifier().to_vec(),
            (DESCRIPTOR_OTHER_SPEED_CONFIGURATION, 0) if !super_speed => {
                descriptors::other_speed_configuration_descriptor(self.speed()).to_vec()
            }
            // bcdUSB 3.00 promises a BOS; bcdUSB 2.00 devices have none.
            (DESCRIPTOR_BOS, 0) if super_speed => descriptors::bos_descriptor().to_vec(),
            (DESCRIPTOR_STRING, STRING_LANGUAGES) => descriptors::languages_descriptor().to_vec(),
            (DESCRIPTOR_STRING, index) => {
                // Any LANGID gets the one set of strings (hosts ask 0x0409).
                let text = match index {
                    STRING_MANUFACTURER => &self.identity.manufacturer,
                    STRING_PRODUCT => &self.identity.product,
                    STRING_SERIAL => &self.identity.serial,
                    _ => return ControlResult::Stall,
                };
                if text.is_empty() {
                    // The device descriptor names index 0 for it.
                    return ControlResult::Stall;
                }
                descriptors::string_descriptor(text)
            }
            // Interface power, OTG, debug, ...: not offered.
            _ => return ControlResult::Stall,
        };
        ControlResult::Data(bytes)
    }

    /// GET MAX LUN (BOT §3.2): bmRequestType A1h, wValue 0, wIndex =
    /// interface, wLength 1; answers the highest LUN number.
    fn get_max_lun(&self, setup: &Setup) -> ControlResult {
        if setup.value != 0 || !self.interface_exists(setup.index) || setup.length != 1 {
            return ControlResult::Stall;
        }
        ControlResult::Data(vec![self.target.max_lun()])
    }

    /// Bulk-Only Mass Storage Reset (BOT §3.1): bmRequestType 21h, wValue 0,
    /// wIndex = interface, wLength 0. Halts stay; the host clears them next.
    fn bulk_only_reset(&mut self, setup: &Setup) -> ControlResult {
        if setup.value != 0 || !self.interface_exists(setup.index) || setup.length != 0 {
            return ControlResult::Stall;
        }
        debug!("Bulk-Only Mass Storage Reset");
        self.bot.reset(&mut self.target);
        ControlResult::Ack
    }

    fn is_super_speed(&self) -> bool {
        self.speed() == Speed::Super
    }

    fn interface_exists(&self, index: u16) -> bool {
        self.is_configured() && index == u16::from(INTERFACE_NUMBER)
    }

    /// The endpoint named by wIndex of an endpoint-recipient request (§9.3.4).
    fn endpoint(&self, index: u16) -> Option<Endpoint> {
        let address = u8::try_from(index).ok()?;
        if address & 0x7F == 0 {
            return Some(Endpoint::Zero);
        }
        // §9.4.5: in the Address state only endpoint 0 may be addressed.
        BulkEndpoint::from_address(address).filter(|_| self.is_configured()).map(Endpoint::Bulk)
    }
}

enum Endpoint {
    Zero,
    Bulk(BulkEndpoint),
}
