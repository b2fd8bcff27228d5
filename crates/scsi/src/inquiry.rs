//! INQUIRY (SPC-4 §6.4): standard data, vital product data pages, and REPORT LUNS.

use crate::LunKind;
use crate::sense::Sense;

/// T10 vendor identification, 8 ASCII characters.
pub const VENDOR: &[u8; 8] = b"vstick  ";
/// Peripheral qualifier 3 + device type 0x1F: no logical unit at this LUN (SPC-4 §6.4.2).
pub const NO_LUN_PERIPHERAL: u8 = 0x7F;

const STANDARD_LEN: usize = 36;
/// SPC-3: what QEMU reports, and high enough for hosts to use READ CAPACITY(16).
const VERSION_SPC3: u8 = 0x05;

pub fn peripheral_type(kind: LunKind) -> u8 {
    match kind {
        LunKind::Disk => 0x00,    // direct-access block device (SBC)
        LunKind::Optical => 0x05, // CD/DVD device (MMC)
    }
}

fn product(kind: LunKind) -> &'static str {
    match kind {
        LunKind::Disk => "USB Disk",
        LunKind::Optical => "CD/DVD-ROM",
    }
}

/// `s` as exactly `N` bytes of printable ASCII, space padded.
fn ascii_field<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b' '; N];
    for (o, c) in out.iter_mut().zip(s.bytes()) {
        *o = if (0x20..0x7F).contains(&c) { c } else { b'_' };
    }
    out
}

/// Printable ASCII serial (SPC-4 §7.8.15: spaces when there is none), at most 64 bytes.
pub fn serial_bytes(serial: &str) -> Vec<u8> {
    let mut s: Vec<u8> =
        serial.bytes().take(64).map(|c| if (0x21..0x7F).contains(&c) { c } else { b'_' }).collect();
    if s.is_empty() {
        s = b"        ".to_vec();
    }
    s
}

/// Standard INQUIRY data, 36 bytes (SPC-4 table 142). `kind` is `None` for a LUN
/// that does not exist.
pub fn standard(kind: Option<LunKind>) -> Vec<u8> {
    let mut b = vec![0u8; STANDARD_LEN];
    b[0] = kind.map_or(NO_LUN_PERIPHERAL, peripheral_type);
    b[1] = 0x80; // RMB: removable medium (disks too: the operator can eject/insert)
    b[2] = VERSION_SPC3;
    b[3] = 0x02; // response data format 2
    b[4] = (STANDARD_LEN - 5) as u8; // additional length
    b[8..16].copy_from_slice(VENDOR);
    b[16..32].copy_from_slice(&ascii_field::<16>(product(kind.unwrap_or(LunKind::Disk))));
    b[32..36].copy_from_slice(&ascii_field::<4>(&revision()));
    b
}

/// PRODUCT REVISION LEVEL: "major.minor" of the crate version (4 characters at most).
fn revision() -> String {
    let mut parts = env!("CARGO_PKG_VERSION").split('.');
    let major = parts.next().unwrap_or("0");
    let minor = parts.next().unwrap_or("0");
    format!("{major}.{minor}")
}

/// VPD pages we serve, ascending (SPC-4 §7.8.14 requires the list sorted).
const VPD_PAGES: [u8; 3] = [0x00, 0x80, 0x83];

/// A VPD page, or 05/24/00 for a page we do not have.
pub fn vpd(kind: LunKind, page: u8, serial: &str) -> Result<Vec<u8>, Sense> {
    let body = match page {
        0x00 => VPD_PAGES.to_vec(),
        0x80 => serial_bytes(serial),
        0x83 => device_identification(serial),
        _ => return Err(Sense::INVALID_FIELD_IN_CDB),
    };
    let mut b = Vec::with_capacity(4 + body.len());
    b.push(peripheral_type(kind));
    b.push(page);
    b.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
    b.extend_from_slice(&body);
    Ok(b)
}

/// Device Identification page body: one T10 vendor ID designator,
/// vendor + serial (SPC-4 §7.8.6.4).
fn device_identification(serial: &str) -> Vec<u8> {
    let mut id = VENDOR.to_vec();
    id.extend_from_slice(&serial_bytes(serial));
    let mut d = vec![
        0x02,           // protocol identifier 0, code set 2 = ASCII
        0x01,           // PIV 0, association 0 = logical unit, designator type 1 = T10 vendor ID
        0x00,           // reserved
        id.len() as u8, // designator length (≤ 8 + 64)
    ];
    d.extend_from_slice(&id);
    d
}

/// REPORT LUNS parameter data (SPC-4 §6.33): every LUN, single-level peripheral addressing.
pub fn report_luns(select: u8, count: usize) -> Result<Vec<u8>, Sense> {
    let listed = match select {
        0x00 | 0x02 => count,
        0x01 => 0, // well-known LUNs only: we have none
        _ => return Err(Sense::INVALID_FIELD_IN_CDB),
    };
    let mut b = Vec::with_capacity(8 + 8 * listed);
    b.extend_from_slice(&((8 * listed) as u32).to_be_bytes()); // LUN list length
    b.extend_from_slice(&[0; 4]); // reserved
    for lun in 0..listed {
        let mut entry = [0u8; 8];
        entry[1] = lun as u8; // peripheral device addressing, bus 0
        b.extend_from_slice(&entry);
    }
    Ok(b)
}
