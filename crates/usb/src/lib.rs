//! The USB device vstick presents: one mass-storage interface (class 08,
//! subclass 06 SCSI transparent, protocol 50 Bulk-Only) with a bulk IN and a
//! bulk OUT endpoint, its descriptors and control requests.
//!
//! Transport-neutral and sans-io: usbredir and USB/IP both drive a
//! [`MassStorageDevice`] with setup packets and bulk transfers.

#![warn(missing_docs)]

mod builder;
mod control;
pub mod descriptors;
mod identity;
mod mass_storage_device;
mod usb_device;

pub use builder::{BuildError, DeviceBuilder};
pub use control::{request, request_type};
pub use identity::{Identity, PID_CODES_TEST_PRODUCT_ID, PID_CODES_VENDOR_ID, serial_from_seed};
pub use mass_storage_device::MassStorageDevice;
pub use usb_device::UsbDevice;
pub use vstick_bot::{InResult, OutResult};

/// Bulk IN endpoint address.
pub const EP_IN: u8 = 0x81;
/// Bulk OUT endpoint address.
pub const EP_OUT: u8 = 0x02;

/// A USB setup packet (USB 2.0 §9.3), fields in host order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// `bmRequestType`: direction (bit 7), type (bits 6..5), recipient (bits 4..0).
    pub request_type: u8,
    /// `bRequest`: the request code.
    pub request: u8,
    /// `wValue`: request-specific (e.g. descriptor type and index).
    pub value: u16,
    /// `wIndex`: request-specific (e.g. interface or endpoint number).
    pub index: u16,
    /// `wLength`: bytes in the data stage (at most, for IN).
    pub length: u16,
}

impl Setup {
    /// From the 8 raw bytes on the wire (little-endian fields).
    pub fn from_bytes(b: [u8; 8]) -> Self {
        Self {
            request_type: b[0],
            request: b[1],
            value: u16::from_le_bytes([b[2], b[3]]),
            index: u16::from_le_bytes([b[4], b[5]]),
            length: u16::from_le_bytes([b[6], b[7]]),
        }
    }

    /// The 8 raw bytes on the wire (little-endian fields).
    pub fn to_bytes(&self) -> [u8; 8] {
        let [v0, v1] = self.value.to_le_bytes();
        let [i0, i1] = self.index.to_le_bytes();
        let [l0, l1] = self.length.to_le_bytes();
        [self.request_type, self.request, v0, v1, i0, i1, l0, l1]
    }

    /// Device-to-host (IN) data stage.
    pub fn is_in(&self) -> bool {
        self.request_type & 0x80 != 0
    }
}

/// Outcome of a control transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum ControlResult {
    /// IN data, already truncated to `wLength`.
    Data(Vec<u8>),
    /// Request accepted (no data stage, or OUT data consumed).
    Ack,
    /// Request error: the transport answers STALL.
    Stall,
}

/// Bus speed the device presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speed {
    /// Full speed, 12 Mbit/s (USB 1.1; 64-byte bulk packets).
    Full,
    /// High speed, 480 Mbit/s (USB 2.0; 512-byte bulk packets).
    High,
    /// SuperSpeed, 5 Gbit/s (USB 3.0; 1024-byte bulk packets).
    Super,
}

/// Endpoint transfer type (bmAttributes bits 1..0 of an endpoint descriptor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    /// Control (endpoint 0).
    Control,
    /// Isochronous.
    Isochronous,
    /// Bulk.
    Bulk,
    /// Interrupt.
    Interrupt,
}

/// An endpoint of the active configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointInfo {
    /// Address with the direction bit (0x81 = IN 1).
    pub address: u8,
    /// Transfer type.
    pub transfer_type: TransferType,
    /// `wMaxPacketSize` in bytes.
    pub max_packet_size: u16,
    /// `bInterval`.
    pub interval: u8,
    /// `bInterfaceNumber` of the interface the endpoint belongs to.
    pub interface: u8,
}

/// An interface of the active configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// `bInterfaceNumber`.
    pub number: u8,
    /// `bInterfaceClass` (0x08 mass storage).
    pub class: u8,
    /// `bInterfaceSubClass` (0x06 SCSI transparent command set).
    pub subclass: u8,
    /// `bInterfaceProtocol` (0x50 Bulk-Only Transport).
    pub protocol: u8,
}

/// The fields of the device descriptor a transport reports in its own headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSummary {
    /// `bcdUSB`: the USB release the device claims (0x0200, 0x0300).
    pub bcd_usb: u16,
    /// `bDeviceClass` (0: defined per interface).
    pub class: u8,
    /// `bDeviceSubClass`.
    pub subclass: u8,
    /// `bDeviceProtocol`.
    pub protocol: u8,
    /// `idVendor`.
    pub vendor_id: u16,
    /// `idProduct`.
    pub product_id: u16,
    /// `bcdDevice`: device release number.
    pub bcd_device: u16,
    /// `bNumConfigurations`.
    pub num_configurations: u8,
}

#[cfg(test)]
mod tests;
