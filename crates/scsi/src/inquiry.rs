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

/// Version descriptors of a disk (SPC-4 table 145): SPC-3, SBC-3 (libiscsi's
/// suite and other hosts read "SBC-3" from here), USB Mass Storage BOT 1.0.
const DISK_VERSIONS: [u16; 3] = [0x0300, 0x04C0, 0x1730];
/// Standard data with the version descriptors (bytes 58..74).
const DISK_STANDARD_LEN: usize = 74;

/// Standard INQUIRY data (SPC-4 table 142): 36 bytes, 74 with the version
/// descriptors for a disk. `kind` is `None` for a LUN that does not exist.
pub fn standard(kind: Option<LunKind>) -> Vec<u8> {
    let len = if kind == Some(LunKind::Disk) { DISK_STANDARD_LEN } else { STANDARD_LEN };
    let mut b = vec![0u8; len];
    b[0] = kind.map_or(NO_LUN_PERIPHERAL, peripheral_type);
    b[1] = 0x80; // RMB: removable medium (disks too: the operator can eject/insert)
    b[2] = VERSION_SPC3;
    b[3] = 0x02; // response data format 2
    b[4] = (len - 5) as u8; // additional length
    b[8..16].copy_from_slice(VENDOR);
    b[16..32].copy_from_slice(&ascii_field::<16>(product(kind.unwrap_or(LunKind::Disk))));
    b[32..36].copy_from_slice(&ascii_field::<4>(&revision()));
    if len == DISK_STANDARD_LEN {
        for (i, v) in DISK_VERSIONS.iter().enumerate() {
            b[58 + 2 * i..60 + 2 * i].copy_from_slice(&v.to_be_bytes());
        }
    }
    b
}

/// PRODUCT REVISION LEVEL: "major.minor" of the crate version (4 characters at most).
fn revision() -> String {
    let mut parts = env!("CARGO_PKG_VERSION").split('.');
    let major = parts.next().unwrap_or("0");
    let minor = parts.next().unwrap_or("0");
    format!("{major}.{minor}")
}

/// VPD pages each kind serves, ascending (SPC-4 §7.8.14 requires the list sorted).
fn vpd_pages(kind: LunKind) -> &'static [u8] {
    match kind {
        // Block Limits, Block Device Characteristics, Logical Block Provisioning (SBC-3 §6.5).
        LunKind::Disk => &[0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2],
        LunKind::Optical => &[0x00, 0x80, 0x83],
    }
}

/// A VPD page, or 05/24/00 for a page we do not have. `block_size` is the
/// medium's (Block Limits counts in blocks).
pub fn vpd(kind: LunKind, page: u8, serial: &str, block_size: u32) -> Result<Vec<u8>, Sense> {
    if !vpd_pages(kind).contains(&page) {
        return Err(Sense::INVALID_FIELD_IN_CDB);
    }
    let body = match page {
        0x00 => vpd_pages(kind).to_vec(),
        0x80 => serial_bytes(serial),
        0x83 => device_identification(serial),
        0xB0 => crate::provisioning::block_limits(block_size),
        0xB1 => crate::provisioning::block_device_characteristics(),
        0xB2 => crate::provisioning::logical_block_provisioning(),
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
