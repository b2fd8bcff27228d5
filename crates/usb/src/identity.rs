//! Who the device says it is: vendor/product IDs, version and strings.

/// pid.codes, the open-source USB vendor ID (<https://pid.codes>).
pub const PID_CODES_VENDOR_ID: u16 = 0x1209;
/// pid.codes "Test PID" 0x0001: free for private testing and development, not
/// for distributed products. vstick is a virtual device seen only by the
/// host it is attached to; a packager wanting a permanent ID can request a
/// PID from pid.codes and pass it in [`Identity`].
pub const PID_CODES_TEST_PRODUCT_ID: u16 = 0x0001;

/// Identity fields of the device descriptor and its strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// bcdDevice: device release number in BCD (0x0100 = 1.00).
    pub bcd_device: u16,
    /// iManufacturer string.
    pub manufacturer: String,
    /// iProduct string.
    pub product: String,
    /// iSerialNumber; hosts use it to recognise the stick across re-plugs.
    pub serial: String,
}

impl Identity {
    /// vstick's defaults: pid.codes test VID/PID, bcdDevice 1.00,
    /// "vstick" / "vstick USB stick", and the given serial (see
    /// [`serial_from_seed`] for a stable one).
    pub fn default_for(serial: String) -> Self {
        Self {
            vendor_id: PID_CODES_VENDOR_ID,
            product_id: PID_CODES_TEST_PRODUCT_ID,
            bcd_device: 0x0100,
            manufacturer: "vstick".to_owned(),
            product: "vstick USB stick".to_owned(),
            serial,
        }
    }
}

/// A stable serial number from a seed (for example the image paths): the
/// 64-bit FNV-1a hash as 16 uppercase hex digits.
///
/// BOT 1.0 §4.1.1 asks for at least 12 characters from 0-9/A-F. The same
/// seed gives the same serial in every version and on every platform (FNV is
/// fixed, unlike std's `DefaultHasher`), so hosts keep recognising the stick
/// (Windows keys drive letters and policies on it).
pub fn serial_from_seed(seed: &str) -> String {
    const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = seed.bytes().fold(FNV_OFFSET_BASIS, |h, b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME));
    format!("{hash:016X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_vectors() {
        // Published FNV-1a 64-bit test vectors.
        assert_eq!(serial_from_seed(""), "CBF29CE484222325");
        assert_eq!(serial_from_seed("a"), "AF63DC4C8601EC8C");
        assert_eq!(serial_from_seed("foobar"), "85944171F73967E8");
    }

    #[test]
    fn serial_is_stable_long_enough_and_hex() {
        let s = serial_from_seed("/var/lib/images/disk.img");
        assert_eq!(s, serial_from_seed("/var/lib/images/disk.img"));
        assert_ne!(s, serial_from_seed("/var/lib/images/disk2.img"));
        assert!(s.len() >= 12);
        assert!(s.chars().all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)));
    }

    #[test]
    fn default_identity() {
        let id = Identity::default_for("0123456789AB".into());
        assert_eq!((id.vendor_id, id.product_id, id.bcd_device), (0x1209, 0x0001, 0x0100));
        assert_eq!(id.manufacturer, "vstick");
        assert_eq!(id.product, "vstick USB stick");
        assert_eq!(id.serial, "0123456789AB");
    }
}
