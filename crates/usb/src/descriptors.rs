//! Descriptors of the vstick device (USB 2.0 §9.6, USB 3.2 §9.6, MSC BOT 1.0 §4).
//!
//! One configuration with one interface (class 08 mass storage, subclass 06
//! SCSI transparent command set, protocol 50 Bulk-Only) and two bulk
//! endpoints. High speed uses 512-byte bulk packets, full speed 64 (USB 2.0
//! §5.8.3); the other speed's view is in the device qualifier and the
//! OTHER_SPEED_CONFIGURATION descriptor (§9.6.2, §9.6.4).
//!
//! SuperSpeed (USB 3.2 §9.6) differs: bcdUSB 3.00, a 512-byte control pipe
//! (bMaxPacketSize0 is the exponent 9), a BOS descriptor, 1024-byte bulk
//! packets each followed by a SuperSpeed endpoint companion, and no device
//! qualifier / other-speed configuration. Linux's usb-storage lets a
//! SuperSpeed device take 1 MiB per command instead of 120 KiB, which is
//! why a transport that can present it (usbredir on xHCI) should.

use crate::{EP_IN, EP_OUT, Identity, Speed};

// bDescriptorType values (USB 2.0 Table 9-5, USB 3.2 Table 9-6).

/// bDescriptorType: device descriptor (USB 2.0 §9.6.1).
pub const DESCRIPTOR_DEVICE: u8 = 1;
/// bDescriptorType: configuration descriptor, returned with its interfaces and endpoints.
pub const DESCRIPTOR_CONFIGURATION: u8 = 2;
/// bDescriptorType: string descriptor (index 0: the LANGID list).
pub const DESCRIPTOR_STRING: u8 = 3;
/// bDescriptorType: interface descriptor.
pub const DESCRIPTOR_INTERFACE: u8 = 4;
/// bDescriptorType: endpoint descriptor.
pub const DESCRIPTOR_ENDPOINT: u8 = 5;
/// bDescriptorType: device qualifier, the device at the other USB 2.0 speed (§9.6.2).
pub const DESCRIPTOR_DEVICE_QUALIFIER: u8 = 6;
/// bDescriptorType: the configuration as it would be at the other USB 2.0 speed (§9.6.4).
pub const DESCRIPTOR_OTHER_SPEED_CONFIGURATION: u8 = 7;
/// bDescriptorType: Binary Device Object Store, required at SuperSpeed (USB 3.2 §9.6.2).
pub const DESCRIPTOR_BOS: u8 = 15;
/// bDescriptorType: a device capability inside the BOS (USB 3.2 Table 9-6).
pub const DESCRIPTOR_DEVICE_CAPABILITY: u8 = 16;
/// bDescriptorType: SuperSpeed endpoint companion, after each endpoint at SuperSpeed (USB 3.2 §9.6.7).
pub const DESCRIPTOR_SUPERSPEED_ENDPOINT_COMPANION: u8 = 48;

/// bcdUSB 2.00. Windows USB/IP clients want exactly this; 2.01+ would make
/// Windows ask for a BOS descriptor.
pub const BCD_USB: u16 = 0x0200;
/// bcdUSB of the SuperSpeed presentation: 3.00 (USB 3.2 §9.6.1 allows
/// 0x0300 and up; a BOS descriptor is then mandatory).
pub const BCD_USB_SUPER: u16 = 0x0300;
/// bMaxPacketSize0 (64 is the only value allowed at high speed, §5.5.3).
pub const MAX_PACKET_SIZE_0: u8 = 64;
/// bMaxPacketSize0 at SuperSpeed: an exponent, 2^9 = 512 bytes (USB 3.2 §9.6.1).
pub const MAX_PACKET_SIZE_0_SUPER_EXPONENT: u8 = 9;
/// bMaxBurst of the bulk endpoints at SuperSpeed: 15 means bursts of 16
/// packets (USB 3.2 Table 9-27), the most a bulk endpoint may declare.
pub const BULK_MAX_BURST: u8 = 15;
/// bInterfaceClass: mass storage.
pub const CLASS_MASS_STORAGE: u8 = 0x08;
/// bInterfaceSubClass: SCSI transparent command set (MSC overview, Table 1).
pub const SUBCLASS_SCSI_TRANSPARENT: u8 = 0x06;
/// bInterfaceProtocol: Bulk-Only Transport (MSC overview, Table 2).
pub const PROTOCOL_BULK_ONLY: u8 = 0x50;
/// bConfigurationValue of the only configuration.
pub const CONFIGURATION_VALUE: u8 = 1;
/// bInterfaceNumber of the mass-storage interface.
pub const INTERFACE_NUMBER: u8 = 0;

/// bmAttributes: bit 7 reserved (set), bus-powered, no remote wakeup.
///
/// Bus-powered like every real USB stick, and GET_STATUS reports the same.
pub const CONFIG_ATTRIBUTES: u8 = 0x80;
/// bMaxPower in 2 mA units: 50 = 100 mA, one unit load. A virtual device
/// draws nothing, and one unit load is granted on every port: a Linux host
/// refuses a configuration above the port's budget ("insufficient available
/// bus power"), and a bus-powered hub's ports offer only 100 mA, so asking
/// 500 mA could leave the stick unconfigured behind such a hub.
pub const MAX_POWER_2MA: u8 = 50;
/// bMaxPower at SuperSpeed counts 8 mA units (USB 3.2 §9.6.3): 12 = 96 mA,
/// still under one SuperSpeed unit load (150 mA), for the same reason.
pub const MAX_POWER_8MA_SUPER: u8 = 12;

/// String descriptor index 0: the list of supported LANGIDs.
pub const STRING_LANGUAGES: u8 = 0;
/// String descriptor index of iManufacturer.
pub const STRING_MANUFACTURER: u8 = 1;
/// String descriptor index of iProduct.
pub const STRING_PRODUCT: u8 = 2;
/// String descriptor index of iSerialNumber.
pub const STRING_SERIAL: u8 = 3;
/// LANGID US English, the one language offered.
pub const LANGID_EN_US: u16 = 0x0409;

/// wTotalLength of the configuration: configuration + interface + 2 endpoints.
pub const CONFIGURATION_TOTAL_LENGTH: usize = 9 + 9 + 7 + 7;
/// wTotalLength at SuperSpeed: each endpoint is followed by its 6-byte companion.
pub const SUPER_SPEED_CONFIGURATION_TOTAL_LENGTH: usize = 9 + 9 + (7 + 6) * 2;
/// wTotalLength of the BOS: header + USB 2.0 extension + SuperSpeed capability.
pub const BOS_TOTAL_LENGTH: usize = 5 + 7 + 10;

/// Max packet size of the bulk endpoints at `speed` (USB 2.0 §5.8.3, USB
/// 3.2 §9.6.6: SuperSpeed bulk endpoints take exactly 1024).
pub fn bulk_max_packet_size(speed: Speed) -> u16 {
    match speed {
        Speed::Full => 64,
        Speed::High => 512,
        Speed::Super => 1024,
    }
}

/// The speed a high-speed-capable device would run at on the other kind of port.
fn other_speed(speed: Speed) -> Speed {
    match speed {
        Speed::Full => Speed::High,
        Speed::High | Speed::Super => Speed::Full,
    }
}

/// String index for `s`, or 0 ("no string") when it is empty.
fn string_index(s: &str, index: u8) -> u8 {
    if s.is_empty() { 0 } else { index }
}

/// The 18-byte device descriptor (USB 2.0 Table 9-8). Class is per interface.
pub fn device_descriptor(identity: &Identity) -> [u8; 18] {
    let [bcd_usb_lo, bcd_usb_hi] = BCD_USB.to_le_bytes();
    let [vid_lo, vid_hi] = identity.vendor_id.to_le_bytes();
    let [pid_lo, pid_hi] = identity.product_id.to_le_bytes();
    let [dev_lo, dev_hi] = identity.bcd_device.to_le_bytes();
    [
        18,
        DESCRIPTOR_DEVICE,
        bcd_usb_lo,
        bcd_usb_hi,
        0, // bDeviceClass: per interface
        0, // bDeviceSubClass
        0, // bDeviceProtocol
        MAX_PACKET_SIZE_0,
        vid_lo,
        vid_hi,
        pid_lo,
        pid_hi,
        dev_lo,
        dev_hi,
        string_index(&identity.manufacturer, STRING_MANUFACTURER),
        string_index(&identity.product, STRING_PRODUCT),
        string_index(&identity.serial, STRING_SERIAL),
        1, // bNumConfigurations
    ]
}

/// The 18-byte device descriptor at SuperSpeed (USB 3.2 Table 9-11): bcdUSB
/// 3.00 and the control pipe's size as an exponent; the rest as at USB 2.0.
pub fn super_speed_device_descriptor(identity: &Identity) -> [u8; 18] {
    let mut d = device_descriptor(identity);
    let [bcd_usb_lo, bcd_usb_hi] = BCD_USB_SUPER.to_le_bytes();
    d[2] = bcd_usb_lo;
    d[3] = bcd_usb_hi;
    d[7] = MAX_PACKET_SIZE_0_SUPER_EXPONENT;
    d
}

/// The BOS descriptor set (USB 3.2 §9.6.2), required with bcdUSB 3.00: a
/// USB 2.0 Extension (LPM supported, which §9.6.2.1 demands of SuperSpeed
/// devices for their high-speed mode) and the SuperSpeed USB Device
/// Capability (Table 9-14). Exit latencies are the usual small values; no
/// host enables U1/U2 on a virtual link, and the requests that would are
/// accepted anyway.
pub fn bos_descriptor() -> [u8; BOS_TOTAL_LENGTH] {
    let [total_lo, total_hi] = (BOS_TOTAL_LENGTH as u16).to_le_bytes();
    [
        // BOS header (Table 9-12)
        5,
        DESCRIPTOR_BOS,
        total_lo,
        total_hi,
        2, // bNumDeviceCaps
        // USB 2.0 Extension (Table 9-15)
        7,
        DESCRIPTOR_DEVICE_CAPABILITY,
        0x02, // bDevCapabilityType: USB 2.0 EXTENSION
        0x02, // bmAttributes bit 1: LPM
        0,
        0,
        0,
        // SuperSpeed USB Device Capability (Table 9-16)
        10,
        DESCRIPTOR_DEVICE_CAPABILITY,
        0x03, // bDevCapabilityType: SUPERSPEED_USB
        0x00, // bmAttributes: no LTM
        0x0E, // wSpeedsSupported: full, high and SuperSpeed
        0x00,
        0x01, // bFunctionalitySupport: fully functional from full speed up
        0x0A, // bU1DevExitLat: under 10 us
        0x20, // wU2DevExitLat: 32 us
        0x00,
    ]
}

/// The configuration at SuperSpeed (USB 3.2 §9.6.3, §9.6.6, §9.6.7): 1024-byte
/// bulk endpoints, each followed by its endpoint companion.
pub fn super_speed_configuration_descriptor() -> [u8; SUPER_SPEED_CONFIGURATION_TOTAL_LENGTH] {
    let usb2 = configuration_bytes(DESCRIPTOR_CONFIGURATION, Speed::Super);
    let [total_lo, total_hi] = (SUPER_SPEED_CONFIGURATION_TOTAL_LENGTH as u16).to_le_bytes();
    let companion = [
        6,
        DESCRIPTOR_SUPERSPEED_ENDPOINT_COMPANION,
        BULK_MAX_BURST,
        0, // bmAttributes: no streams (BOT has none)
        0, // wBytesPerInterval: periodic endpoints only
        0,
    ];
    let mut out = [0u8; SUPER_SPEED_CONFIGURATION_TOTAL_LENGTH];
    let (config_and_interface, endpoints) = usb2.split_at(18);
    let (ep_in, ep_out) = endpoints.split_at(7);
    let parts: [&[u8]; 5] = [config_and_interface, ep_in, &companion, ep_out, &companion];
    let mut at = 0;
    for part in parts {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    out[2] = total_lo;
    out[3] = total_hi;
    out[8] = MAX_POWER_8MA_SUPER;
    out
}

/// The 10-byte device qualifier (USB 2.0 Table 9-9): what changes at the other speed.
pub fn device_qualifier() -> [u8; 10] {
    let [bcd_usb_lo, bcd_usb_hi] = BCD_USB.to_le_bytes();
    [10, DESCRIPTOR_DEVICE_QUALIFIER, bcd_usb_lo, bcd_usb_hi, 0, 0, 0, MAX_PACKET_SIZE_0, 1, 0]
}

/// The configuration with its interface and endpoints, as at `speed`.
pub fn configuration_descriptor(speed: Speed) -> [u8; CONFIGURATION_TOTAL_LENGTH] {
    configuration_bytes(DESCRIPTOR_CONFIGURATION, speed)
}

/// OTHER_SPEED_CONFIGURATION (§9.6.4): the configuration as it would be at
/// the other speed, with bDescriptorType 7.
pub fn other_speed_configuration_descriptor(speed: Speed) -> [u8; CONFIGURATION_TOTAL_LENGTH] {
    configuration_bytes(DESCRIPTOR_OTHER_SPEED_CONFIGURATION, other_speed(speed))
}

fn configuration_bytes(descriptor_type: u8, speed: Speed) -> [u8; CONFIGURATION_TOTAL_LENGTH] {
    let [total_lo, total_hi] = (CONFIGURATION_TOTAL_LENGTH as u16).to_le_bytes();
    let [mps_lo, mps_hi] = bulk_max_packet_size(speed).to_le_bytes();
    [
        // Configuration (Table 9-10)
        9,
        descriptor_type,
        total_lo,
        total_hi,
        1, // bNumInterfaces
        CONFIGURATION_VALUE,
        0, // iConfiguration
        CONFIG_ATTRIBUTES,
        MAX_POWER_2MA,
        // Interface (Table 9-12)
        9,
        DESCRIPTOR_INTERFACE,
        INTERFACE_NUMBER,
        0, // bAlternateSetting
        2, // bNumEndpoints
        CLASS_MASS_STORAGE,
        SUBCLASS_SCSI_TRANSPARENT,
        PROTOCOL_BULK_ONLY,
        0, // iInterface
        // Bulk IN endpoint (Table 9-13)
        7,
        DESCRIPTOR_ENDPOINT,
        EP_IN,
        0x02, // bmAttributes: bulk
        mps_lo,
        mps_hi,
        0, // bInterval: ignored for bulk IN
        // Bulk OUT endpoint
        7,
        DESCRIPTOR_ENDPOINT,
        EP_OUT,
        0x02,
        mps_lo,
        mps_hi,
        0, // bInterval: high-speed bulk OUT NAK rate, 0 = never NAKs
    ]
}

/// String descriptor 0: the supported LANGIDs (USB 2.0 Table 9-15).
pub fn languages_descriptor() -> [u8; 4] {
    let [lo, hi] = LANGID_EN_US.to_le_bytes();
    [4, DESCRIPTOR_STRING, lo, hi]
}

/// A UNICODE string descriptor (Table 9-16): UTF-16LE, no terminator. bLength
/// is one byte, so text beyond 126 code units is cut, never inside a
/// surrogate pair.
pub fn string_descriptor(text: &str) -> Vec<u8> {
    const MAX_UNITS: usize = (255 - 2) / 2;
    let mut units: Vec<u16> = Vec::with_capacity(text.len().min(MAX_UNITS));
    let mut buf = [0u16; 2];
    for c in text.chars() {
        let encoded = c.encode_utf16(&mut buf);
        if units.len() + encoded.len() > MAX_UNITS {
            break;
        }
        units.extend_from_slice(encoded);
    }
    let mut out = Vec::with_capacity(2 + 2 * units.len());
    // At most 2 + 2 * 126 = 254 bytes.
    out.push(u8::try_from(2 + 2 * units.len()).unwrap_or(u8::MAX));
    out.push(DESCRIPTOR_STRING);
    for unit in units {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            vendor_id: 0x1209,
            product_id: 0x0001,
            bcd_device: 0x0123,
            manufacturer: "vstick".into(),
            product: "vstick USB stick".into(),
            serial: "0123456789ABCDEF".into(),
        }
    }

    #[test]
    fn device_descriptor_bytes() {
        assert_eq!(
            device_descriptor(&identity()),
            [
                0x12, // bLength 18
                0x01, // bDescriptorType DEVICE
                0x00, 0x02, // bcdUSB 2.00
                0x00, // bDeviceClass: per interface
                0x00, // bDeviceSubClass
                0x00, // bDeviceProtocol
                0x40, // bMaxPacketSize0 64
                0x09, 0x12, // idVendor 0x1209 (pid.codes)
                0x01, 0x00, // idProduct 0x0001 (test PID)
                0x23, 0x01, // bcdDevice 1.23
                0x01, // iManufacturer
                0x02, // iProduct
                0x03, // iSerialNumber
                0x01, // bNumConfigurations
            ]
        );
    }

    #[test]
    fn empty_strings_have_no_index() {
        let mut id = identity();
        id.manufacturer.clear();
        id.serial.clear();
        let d = device_descriptor(&id);
        assert_eq!(&d[14..17], &[0, 2, 0]);
    }

    #[test]
    fn high_speed_configuration_bytes() {
        assert_eq!(
            configuration_descriptor(Speed::High),
            [
                // configuration
                0x09, // bLength
                0x02, // bDescriptorType CONFIGURATION
                0x20, 0x00, // wTotalLength 32
                0x01, // bNumInterfaces
                0x01, // bConfigurationValue
                0x00, // iConfiguration
                0x80, // bmAttributes: bus-powered
                0x32, // bMaxPower 100 mA
                // interface 0
                0x09, // bLength
                0x04, // bDescriptorType INTERFACE
                0x00, // bInterfaceNumber
                0x00, // bAlternateSetting
                0x02, // bNumEndpoints
                0x08, // bInterfaceClass mass storage
                0x06, // bInterfaceSubClass SCSI transparent
                0x50, // bInterfaceProtocol Bulk-Only
                0x00, // iInterface
                // endpoint 0x81
                0x07, // bLength
                0x05, // bDescriptorType ENDPOINT
                0x81, // bEndpointAddress IN 1
                0x02, // bmAttributes bulk
                0x00, 0x02, // wMaxPacketSize 512
                0x00, // bInterval
                // endpoint 0x02
                0x07, // bLength
                0x05, // bDescriptorType ENDPOINT
                0x02, // bEndpointAddress OUT 2
                0x02, // bmAttributes bulk
                0x00, 0x02, // wMaxPacketSize 512
                0x00, // bInterval
            ]
        );
    }

    #[test]
    fn other_speed_configuration_is_full_speed_with_type_7() {
        let other = other_speed_configuration_descriptor(Speed::High);
        let mut expected = configuration_descriptor(Speed::High);
        expected[1] = 0x07; // bDescriptorType OTHER_SPEED_CONFIGURATION
        expected[22..24].copy_from_slice(&[0x40, 0x00]); // IN wMaxPacketSize 64
        expected[29..31].copy_from_slice(&[0x40, 0x00]); // OUT wMaxPacketSize 64
        assert_eq!(other, expected);
        assert_eq!(configuration_descriptor(Speed::Full), {
            let mut e = expected;
            e[1] = 0x02;
            e
        });
        assert_eq!(&other_speed_configuration_descriptor(Speed::Full)[22..24], &[0x00, 0x02]);
    }

    #[test]
    fn device_qualifier_bytes() {
        assert_eq!(
            device_qualifier(),
            [
                0x0A, // bLength 10
                0x06, // bDescriptorType DEVICE_QUALIFIER
                0x00, 0x02, // bcdUSB 2.00
                0x00, 0x00, 0x00, // class / subclass / protocol: per interface
                0x40, // bMaxPacketSize0 for the other speed
                0x01, // bNumConfigurations
                0x00, // bReserved
            ]
        );
    }

    #[test]
    fn super_speed_device_descriptor_bytes() {
        let d = super_speed_device_descriptor(&identity());
        assert_eq!(
            &d[..8],
            &[
                0x12, // bLength 18
                0x01, // bDescriptorType DEVICE
                0x00, 0x03, // bcdUSB 3.00
                0x00, 0x00, 0x00, // class / subclass / protocol: per interface
                0x09, // bMaxPacketSize0: 2^9 = 512
            ]
        );
        assert_eq!(&d[8..], &device_descriptor(&identity())[8..], "identity fields as at USB 2.0");
    }

    #[test]
    fn bos_bytes() {
        assert_eq!(
            bos_descriptor(),
            [
                0x05, // bLength
                0x0F, // bDescriptorType BOS
                0x16, 0x00, // wTotalLength 22
                0x02, // bNumDeviceCaps
                // USB 2.0 Extension
                0x07, // bLength
                0x10, // bDescriptorType DEVICE CAPABILITY
                0x02, // bDevCapabilityType USB 2.0 EXTENSION
                0x02, 0x00, 0x00, 0x00, // bmAttributes: LPM
                // SuperSpeed USB Device Capability
                0x0A, // bLength
                0x10, // bDescriptorType DEVICE CAPABILITY
                0x03, // bDevCapabilityType SUPERSPEED_USB
                0x00, // bmAttributes: no LTM
                0x0E, 0x00, // wSpeedsSupported: full | high | super
                0x01, // bFunctionalitySupport: full speed
                0x0A, // bU1DevExitLat
                0x20, 0x00, // wU2DevExitLat
            ]
        );
    }

    #[test]
    fn super_speed_configuration_bytes() {
        assert_eq!(
            super_speed_configuration_descriptor(),
            [
                // configuration
                0x09, // bLength
                0x02, // bDescriptorType CONFIGURATION
                0x2C, 0x00, // wTotalLength 44
                0x01, // bNumInterfaces
                0x01, // bConfigurationValue
                0x00, // iConfiguration
                0x80, // bmAttributes: bus-powered
                0x0C, // bMaxPower 12 x 8 mA = 96 mA
                // interface 0
                0x09, 0x04, 0x00, 0x00, 0x02, 0x08, 0x06, 0x50, 0x00,
                // endpoint 0x81
                0x07, // bLength
                0x05, // bDescriptorType ENDPOINT
                0x81, // bEndpointAddress IN 1
                0x02, // bmAttributes bulk
                0x00, 0x04, // wMaxPacketSize 1024
                0x00, // bInterval
                // its companion
                0x06, // bLength
                0x30, // bDescriptorType SUPERSPEED_USB_ENDPOINT_COMPANION
                0x0F, // bMaxBurst: 16 packets
                0x00, // bmAttributes: no streams
                0x00, 0x00, // wBytesPerInterval
                // endpoint 0x02 (OUT 2, bulk, 1024), then its companion
                0x07, 0x05, 0x02, 0x02, 0x00, 0x04, 0x00, //
                0x06, 0x30, 0x0F, 0x00, 0x00, 0x00,
            ]
        );
    }

    #[test]
    fn string_descriptors() {
        assert_eq!(languages_descriptor(), [0x04, 0x03, 0x09, 0x04]);
        assert_eq!(string_descriptor("vs"), [0x06, 0x03, b'v', 0, b's', 0]);
        assert_eq!(string_descriptor(""), [0x02, 0x03]);
        // é is one UTF-16 unit, 😀 (U+1F600) a surrogate pair.
        assert_eq!(string_descriptor("é😀"), [0x08, 0x03, 0xE9, 0x00, 0x3D, 0xD8, 0x00, 0xDE]);
    }

    #[test]
    fn long_strings_are_cut_to_fit_blength() {
        let d = string_descriptor(&"x".repeat(300));
        assert_eq!(d.len(), 254);
        assert_eq!(d[0], 254);
        // 125 units then a pair that does not fit: cut before it.
        let text = format!("{}😀", "x".repeat(125));
        let d = string_descriptor(&text);
        assert_eq!(d.len(), 2 + 2 * 125);
        assert_eq!(usize::from(d[0]), d.len());
    }
}
