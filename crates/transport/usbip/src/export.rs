//! What a USB/IP session needs from the device it exports, and what the
//! server tells clients about it.
//!
//! The session drives any [`vstick_usb::UsbDevice`]. There is no device logic
//! here: control requests (including SET_CONFIGURATION, SET_INTERFACE and
//! CLEAR_FEATURE(ENDPOINT_HALT), which the Linux vhci client forwards as
//! ordinary control transfers) go to the device unchanged.

use vstick_usb::{Speed, UsbDevice};

use crate::codec::{BusId, DeviceRecord, ExportedDevice, InterfaceRecord, SysfsPath, WireSpeed};

/// Where the exported device appears to sit: the busid clients import and the
/// values Linux `usbipd` would take from sysfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportInfo {
    /// The bus id clients list and import (e.g. `1-1`).
    pub busid: BusId,
    /// The sysfs path shown in the device record.
    pub path: SysfsPath,
    /// USB bus number shown in the device record.
    pub busnum: u32,
    /// Device address on that bus shown in the device record.
    pub devnum: u32,
}

/// A busid that cannot be exported: empty, 32 bytes or longer, or holding a NUL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid USB/IP busid {0:?}: it must be 1 to 31 bytes without NUL, like \"1-1\"")]
pub struct InvalidBusId(pub String);

/// Default busid: the first port of bus 1.
pub const DEFAULT_BUSID: &str = "1-1";
/// Device number reported in the record (1 is the root hub on Linux).
pub const DEFAULT_DEVNUM: u32 = 2;

impl ExportInfo {
    /// `busid` like "1-1"; busnum is its leading number (1 when there is
    /// none), the path `/sys/devices/vstick/usb<busnum>/<busid>`.
    pub fn new(busid: &str) -> Result<Self, InvalidBusId> {
        let invalid = || InvalidBusId(busid.to_owned());
        if busid.is_empty() {
            return Err(invalid());
        }
        let busnum =
            busid.split('-').next().and_then(|n| n.parse::<u32>().ok()).filter(|&n| n > 0).unwrap_or(1);
        Ok(Self {
            busid: BusId::new(busid).map_err(|_| invalid())?,
            path: SysfsPath::new(&format!("/sys/devices/vstick/usb{busnum}/{busid}"))
                .map_err(|_| invalid())?,
            busnum,
            devnum: DEFAULT_DEVNUM,
        })
    }

    /// `(busnum << 16) | devnum`, the devid a Linux client puts on its URBs.
    pub fn devid(&self) -> u32 {
        (self.busnum << 16) | (self.devnum & 0xFFFF)
    }

    /// The record for OP_REP_DEVLIST / OP_REP_IMPORT, from the device's current state.
    pub fn record<D: UsbDevice + ?Sized>(&self, dev: &D) -> DeviceRecord {
        let summary = dev.summary();
        let interfaces = dev.interfaces();
        DeviceRecord {
            path: self.path,
            busid: self.busid,
            busnum: self.busnum,
            devnum: self.devnum,
            speed: wire_speed(dev.speed()),
            vendor_id: summary.vendor_id,
            product_id: summary.product_id,
            bcd_device: summary.bcd_device,
            device_class: summary.class,
            device_subclass: summary.subclass,
            device_protocol: summary.protocol,
            configuration_value: dev.configuration(),
            num_configurations: summary.num_configurations,
            num_interfaces: u8::try_from(interfaces.len()).unwrap_or(u8::MAX),
        }
    }

    /// The OP_REP_DEVLIST entry: record plus one interface record per interface.
    pub fn exported<D: UsbDevice + ?Sized>(&self, dev: &D) -> ExportedDevice {
        ExportedDevice {
            record: self.record(dev),
            interfaces: dev
                .interfaces()
                .iter()
                .map(|i| InterfaceRecord { class: i.class, subclass: i.subclass, protocol: i.protocol })
                .collect(),
        }
    }
}

/// The USB/IP `speed` value for a device speed.
pub fn wire_speed(speed: Speed) -> WireSpeed {
    match speed {
        Speed::Full => WireSpeed::FULL,
        Speed::High => WireSpeed::HIGH,
        Speed::Super => WireSpeed::SUPER,
    }
}
