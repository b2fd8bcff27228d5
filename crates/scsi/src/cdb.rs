//! Command descriptor blocks: one opcode table and total decoding into typed commands.
//!
//! The table says which LUN kinds know an opcode, how long its CDB is, whether
//! it needs a medium and whether a pending unit attention lets it through.
//! Decoding never panics: the CDB is copied into a zero-padded 16-byte array
//! only after its length has been checked against the table.

use crate::LunKind;

/// Operation codes (SPC-4, SBC-3, MMC-6).
pub mod op {
    pub const TEST_UNIT_READY: u8 = 0x00;
    pub const REQUEST_SENSE: u8 = 0x03;
    pub const READ_6: u8 = 0x08;
    pub const WRITE_6: u8 = 0x0A;
    pub const INQUIRY: u8 = 0x12;
    pub const MODE_SELECT_6: u8 = 0x15;
    pub const MODE_SENSE_6: u8 = 0x1A;
    pub const START_STOP_UNIT: u8 = 0x1B;
    pub const PREVENT_ALLOW_MEDIUM_REMOVAL: u8 = 0x1E;
    pub const READ_FORMAT_CAPACITIES: u8 = 0x23;
    pub const READ_CAPACITY_10: u8 = 0x25;
    pub const READ_10: u8 = 0x28;
    pub const WRITE_10: u8 = 0x2A;
    pub const VERIFY_10: u8 = 0x2F;
    pub const SYNCHRONIZE_CACHE_10: u8 = 0x35;
    pub const READ_TOC_PMA_ATIP: u8 = 0x43;
    pub const GET_CONFIGURATION: u8 = 0x46;
    pub const GET_EVENT_STATUS_NOTIFICATION: u8 = 0x4A;
    pub const READ_DISC_INFORMATION: u8 = 0x51;
    pub const READ_TRACK_INFORMATION: u8 = 0x52;
    pub const MODE_SELECT_10: u8 = 0x55;
    pub const MODE_SENSE_10: u8 = 0x5A;
    pub const READ_16: u8 = 0x88;
    pub const WRITE_16: u8 = 0x8A;
    pub const VERIFY_16: u8 = 0x8F;
    pub const SYNCHRONIZE_CACHE_16: u8 = 0x91;
    pub const SERVICE_ACTION_IN_16: u8 = 0x9E;
    pub const REPORT_LUNS: u8 = 0xA0;
    /// CSS key exchange: deliberately not in [`OPCODES`](super::OPCODES) (05/20/00).
    #[allow(dead_code, reason = "named so tests can show it is refused")]
    pub const SEND_KEY: u8 = 0xA3;
    #[allow(dead_code, reason = "named so tests can show it is refused")]
    pub const REPORT_KEY: u8 = 0xA4;
    pub const READ_12: u8 = 0xA8;
    pub const WRITE_12: u8 = 0xAA;
    pub const GET_PERFORMANCE: u8 = 0xAC;
    pub const READ_DISC_STRUCTURE: u8 = 0xAD;
    pub const VERIFY_12: u8 = 0xAF;
    pub const SET_CD_SPEED: u8 = 0xBB;
    pub const READ_CD: u8 = 0xBE;
    pub const MECHANISM_STATUS: u8 = 0xBD;
}

/// SERVICE ACTION IN(16) service action for READ CAPACITY(16) (SBC-3 §5.16).
const SA_READ_CAPACITY_16: u8 = 0x10;

/// Which kinds of logical unit implement an opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    All,
    /// MMC only (READ TOC, GET CONFIGURATION, ...): a disk answers 05/20/00.
    Optical,
}

/// One row of the opcode table.
#[derive(Debug)]
pub struct OpInfo {
    pub opcode: u8,
    pub name: &'static str,
    /// Bytes the CDB must have; longer CDBs (BOT pads to 12 or 16) are fine.
    pub len: usize,
    pub applies: Applies,
    /// Fails with 02/3A/00 when no medium is loaded.
    pub needs_medium: bool,
    /// Neither fails nor clears a pending unit attention (SPC-4 §5.14, MMC-6 §4.1.6.1).
    pub ua_exempt: bool,
}

const fn row(
    opcode: u8,
    name: &'static str,
    len: usize,
    applies: Applies,
    needs_medium: bool,
    ua_exempt: bool,
) -> OpInfo {
    OpInfo { opcode, name, len, applies, needs_medium, ua_exempt }
}

use Applies::{All, Optical};

/// Every opcode this target implements. REPORT KEY / SEND KEY (CSS) are
/// deliberately absent: 05/20/00 is what hosts expect from a drive without CSS.
pub const OPCODES: &[OpInfo] = &[
    row(op::TEST_UNIT_READY, "TEST UNIT READY", 6, All, true, false),
    row(op::REQUEST_SENSE, "REQUEST SENSE", 6, All, false, true),
    row(op::READ_6, "READ(6)", 6, All, true, false),
    row(op::WRITE_6, "WRITE(6)", 6, All, true, false),
    row(op::INQUIRY, "INQUIRY", 6, All, false, true),
    row(op::MODE_SELECT_6, "MODE SELECT(6)", 6, All, false, false),
    row(op::MODE_SENSE_6, "MODE SENSE(6)", 6, All, false, false),
    row(op::START_STOP_UNIT, "START STOP UNIT", 6, All, false, false),
    row(op::PREVENT_ALLOW_MEDIUM_REMOVAL, "PREVENT ALLOW MEDIUM REMOVAL", 6, All, false, false),
    row(op::READ_FORMAT_CAPACITIES, "READ FORMAT CAPACITIES", 10, All, false, false),
    row(op::READ_CAPACITY_10, "READ CAPACITY(10)", 10, All, true, false),
    row(op::READ_10, "READ(10)", 10, All, true, false),
    row(op::WRITE_10, "WRITE(10)", 10, All, true, false),
    row(op::VERIFY_10, "VERIFY(10)", 10, All, true, false),
    row(op::SYNCHRONIZE_CACHE_10, "SYNCHRONIZE CACHE(10)", 10, All, true, false),
    row(op::READ_TOC_PMA_ATIP, "READ TOC/PMA/ATIP", 10, Optical, true, false),
    row(op::GET_CONFIGURATION, "GET CONFIGURATION", 10, Optical, false, true),
    row(op::GET_EVENT_STATUS_NOTIFICATION, "GET EVENT STATUS NOTIFICATION", 10, Optical, false, true),
    row(op::READ_DISC_INFORMATION, "READ DISC INFORMATION", 10, Optical, true, false),
    row(op::READ_TRACK_INFORMATION, "READ TRACK INFORMATION", 10, Optical, true, false),
    row(op::MODE_SELECT_10, "MODE SELECT(10)", 10, All, false, false),
    row(op::MODE_SENSE_10, "MODE SENSE(10)", 10, All, false, false),
    row(op::READ_16, "READ(16)", 16, All, true, false),
    row(op::WRITE_16, "WRITE(16)", 16, All, true, false),
    row(op::VERIFY_16, "VERIFY(16)", 16, All, true, false),
    row(op::SYNCHRONIZE_CACHE_16, "SYNCHRONIZE CACHE(16)", 16, All, true, false),
    row(op::SERVICE_ACTION_IN_16, "SERVICE ACTION IN(16)", 16, All, true, false),
    row(op::REPORT_LUNS, "REPORT LUNS", 12, All, false, true),
    row(op::READ_12, "READ(12)", 12, All, true, false),
    row(op::WRITE_12, "WRITE(12)", 12, All, true, false),
    row(op::GET_PERFORMANCE, "GET PERFORMANCE", 12, Optical, false, false),
    row(op::READ_DISC_STRUCTURE, "READ DISC STRUCTURE", 12, Optical, true, false),
    row(op::VERIFY_12, "VERIFY(12)", 12, All, true, false),
    row(op::SET_CD_SPEED, "SET CD SPEED", 12, Optical, false, false),
    row(op::MECHANISM_STATUS, "MECHANISM STATUS", 12, Optical, false, false),
    row(op::READ_CD, "READ CD", 12, Optical, true, false),
];

/// The table row for `opcode` on a LUN of `kind`, if that LUN implements it.
pub fn lookup(opcode: u8, kind: LunKind) -> Option<&'static OpInfo> {
    OPCODES.iter().find(|r| {
        r.opcode == opcode && (r.applies == All || (r.applies == Optical && kind == LunKind::Optical))
    })
}

/// MODE SENSE page control (SPC-4 §6.11, table 97).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageControl {
    Current,
    Changeable,
    Default,
    Saved,
}

/// A decoded CDB. Block counts are already expanded (READ(6) 0 = 256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    TestUnitReady,
    RequestSense {
        alloc: u16,
    },
    Inquiry {
        evpd: bool,
        page: u8,
        alloc: u16,
    },
    ModeSelect {
        param_len: u16,
    },
    ModeSense {
        ten: bool,
        dbd: bool,
        llbaa: bool,
        pc: PageControl,
        page: u8,
        subpage: u8,
        alloc: u16,
    },
    StartStopUnit {
        power_condition: u8,
        loej: bool,
        start: bool,
    },
    PreventAllow {
        prevent: bool,
    },
    ReadFormatCapacities {
        alloc: u16,
    },
    ReadCapacity10,
    ReadCapacity16 {
        alloc: u32,
    },
    Read {
        lba: u64,
        blocks: u32,
        fua: bool,
    },
    Write {
        lba: u64,
        blocks: u32,
        fua: bool,
    },
    Verify {
        lba: u64,
        blocks: u32,
        bytchk: bool,
    },
    SynchronizeCache {
        lba: u64,
        blocks: u32,
    },
    ReportLuns {
        select: u8,
        alloc: u32,
    },
    ReadToc {
        msf: bool,
        format: u8,
        track: u8,
        alloc: u16,
    },
    GetConfiguration {
        rt: u8,
        start: u16,
        alloc: u16,
    },
    GetEventStatus {
        classes: u8,
        alloc: u16,
    },
    ReadDiscInformation {
        alloc: u16,
    },
    ReadTrackInformation {
        address_type: u8,
        address: u32,
        alloc: u16,
    },
    ReadDiscStructure {
        media_type: u8,
        layer: u8,
        format: u8,
        alloc: u16,
    },
    MechanismStatus {
        alloc: u16,
    },
    SetCdSpeed,
    GetPerformance,
    /// READ CD (MMC-6 §6.19): `main` is byte 9 (sync/header/user data/EDC/C2 selection),
    /// `sub` the sub-channel selection.
    ReadCd {
        lba: u64,
        blocks: u32,
        sector_type: u8,
        main: u8,
        sub: u8,
    },
}

/// Why a CDB was refused; both map to ILLEGAL REQUEST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CdbError {
    /// 05/24/00: too short for its opcode, a reserved value, or an unsupported option.
    #[error("invalid field in CDB")]
    InvalidField,
}

fn be16(b: &[u8; 16], at: usize) -> u16 {
    let mut v = [0u8; 2];
    v.copy_from_slice(b.get(at..at + 2).unwrap_or(&[0; 2]));
    u16::from_be_bytes(v)
}

fn be32(b: &[u8; 16], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(b.get(at..at + 4).unwrap_or(&[0; 4]));
    u32::from_be_bytes(v)
}

fn be64(b: &[u8; 16], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(b.get(at..at + 8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(v)
}

fn invalid_if(cond: bool) -> Result<(), CdbError> {
    if cond { Err(CdbError::InvalidField) } else { Ok(()) }
}

/// RDPROTECT/WRPROTECT/VRPROTECT (byte 1 bits 7:5): we are not formatted with
/// protection information, so anything but 0 is refused (SBC-3 §5.8 table 39).
fn no_protection(b: &[u8; 16]) -> Result<(), CdbError> {
    invalid_if(b[1] >> 5 != 0)
}

/// VERIFY BYTCHK (SBC-3 §5.33): 0 = medium check only, 1 = compare with data-out.
/// 11b (compare one block against all) is not implemented.
fn bytchk(b: &[u8; 16]) -> Result<bool, CdbError> {
    match (b[1] >> 1) & 0x03 {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(CdbError::InvalidField),
    }
}

fn page_control(byte: u8) -> PageControl {
    match byte >> 6 {
        0 => PageControl::Current,
        1 => PageControl::Changeable,
        2 => PageControl::Default,
        _ => PageControl::Saved,
    }
}

/// Decodes `cdb` for the table row `info` (whose opcode is `cdb[0]`).
pub fn decode(info: &OpInfo, cdb: &[u8]) -> Result<Command, CdbError> {
    if cdb.len() < info.len {
        return Err(CdbError::InvalidField);
    }
    let mut b = [0u8; 16];
    let n = cdb.len().min(16);
    b[..n].copy_from_slice(&cdb[..n]);

    let cmd = match info.opcode {
        op::TEST_UNIT_READY => Command::TestUnitReady,
        op::REQUEST_SENSE => Command::RequestSense { alloc: u16::from(b[4]) },
        op::INQUIRY => {
            let evpd = b[1] & 0x01 != 0;
            // CMDDT (obsolete) and a page code without EVPD are invalid (SPC-4 §6.4.1).
            invalid_if(b[1] & 0x02 != 0 || (!evpd && b[2] != 0))?;
            Command::Inquiry { evpd, page: b[2], alloc: be16(&b, 3) }
        }
        op::MODE_SELECT_6 => Command::ModeSelect { param_len: u16::from(b[4]) },
        op::MODE_SELECT_10 => Command::ModeSelect { param_len: be16(&b, 7) },
        op::MODE_SENSE_6 => Command::ModeSense {
            ten: false,
            dbd: b[1] & 0x08 != 0,
            llbaa: false,
            pc: page_control(b[2]),
            page: b[2] & 0x3F,
            subpage: b[3],
            alloc: u16::from(b[4]),
        },
        op::MODE_SENSE_10 => Command::ModeSense {
            ten: true,
            dbd: b[1] & 0x08 != 0,
            llbaa: b[1] & 0x10 != 0,
            pc: page_control(b[2]),
            page: b[2] & 0x3F,
            subpage: b[3],
            alloc: be16(&b, 7),
        },
        op::START_STOP_UNIT => Command::StartStopUnit {
            power_condition: b[4] >> 4,
            loej: b[4] & 0x02 != 0,
            start: b[4] & 0x01 != 0,
        },
        // Bit 1 (medium changer) is ignored: we have no changer.
        op::PREVENT_ALLOW_MEDIUM_REMOVAL => Command::PreventAllow { prevent: b[4] & 0x01 != 0 },
        op::READ_FORMAT_CAPACITIES => Command::ReadFormatCapacities { alloc: be16(&b, 7) },
        op::READ_CAPACITY_10 => {
            // LBA must be 0 unless PMI is set (SBC-3 §5.15).
            invalid_if(b[8] & 0x01 == 0 && be32(&b, 2) != 0)?;
            Command::ReadCapacity10
        }
        op::SERVICE_ACTION_IN_16 => {
            invalid_if(b[1] & 0x1F != SA_READ_CAPACITY_16)?;
            invalid_if(b[14] & 0x01 == 0 && be64(&b, 2) != 0)?;
            Command::ReadCapacity16 { alloc: be32(&b, 10) }
        }
        op::READ_6 | op::WRITE_6 => {
            let lba = (u64::from(b[1] & 0x1F) << 16) | (u64::from(b[2]) << 8) | u64::from(b[3]);
            // SBC-3 §5.7: TRANSFER LENGTH 0 means 256 blocks for the 6-byte CDBs.
            let blocks = if b[4] == 0 { 256 } else { u32::from(b[4]) };
            if info.opcode == op::READ_6 {
                Command::Read { lba, blocks, fua: false }
            } else {
                Command::Write { lba, blocks, fua: false }
            }
        }
        op::READ_10 | op::WRITE_10 => {
            no_protection(&b)?;
            let (lba, blocks, fua) = (u64::from(be32(&b, 2)), u32::from(be16(&b, 7)), b[1] & 0x08 != 0);
            if info.opcode == op::READ_10 {
                Command::Read { lba, blocks, fua }
            } else {
                Command::Write { lba, blocks, fua }
            }
        }
        op::READ_12 | op::WRITE_12 => {
            no_protection(&b)?;
            let (lba, blocks, fua) = (u64::from(be32(&b, 2)), be32(&b, 6), b[1] & 0x08 != 0);
            if info.opcode == op::READ_12 {
                Command::Read { lba, blocks, fua }
            } else {
                Command::Write { lba, blocks, fua }
            }
        }
        op::READ_16 | op::WRITE_16 => {
            no_protection(&b)?;
            let (lba, blocks, fua) = (be64(&b, 2), be32(&b, 10), b[1] & 0x08 != 0);
            if info.opcode == op::READ_16 {
                Command::Read { lba, blocks, fua }
            } else {
                Command::Write { lba, blocks, fua }
            }
        }
        op::VERIFY_10 => {
            no_protection(&b)?;
            Command::Verify {
                lba: u64::from(be32(&b, 2)),
                blocks: u32::from(be16(&b, 7)),
                bytchk: bytchk(&b)?,
            }
        }
        op::VERIFY_12 => {
            no_protection(&b)?;
            Command::Verify { lba: u64::from(be32(&b, 2)), blocks: be32(&b, 6), bytchk: bytchk(&b)? }
        }
        op::VERIFY_16 => {
            no_protection(&b)?;
            Command::Verify { lba: be64(&b, 2), blocks: be32(&b, 10), bytchk: bytchk(&b)? }
        }
        op::SYNCHRONIZE_CACHE_10 => {
            Command::SynchronizeCache { lba: u64::from(be32(&b, 2)), blocks: u32::from(be16(&b, 7)) }
        }
        op::SYNCHRONIZE_CACHE_16 => Command::SynchronizeCache { lba: be64(&b, 2), blocks: be32(&b, 10) },
        op::REPORT_LUNS => Command::ReportLuns { select: b[2], alloc: be32(&b, 6) },
        op::READ_TOC_PMA_ATIP => {
            // MMC-6 §6.32: when FORMAT (byte 2) is 0 the SFF-8020 style format in
            // byte 9 bits 7:6 applies (Linux sr sends 0x40 there for session info).
            let mut format = b[2] & 0x0F;
            if format == 0 {
                format = b[9] >> 6;
                invalid_if(format == 3)?;
            }
            Command::ReadToc { msf: b[1] & 0x02 != 0, format, track: b[6], alloc: be16(&b, 7) }
        }
        op::GET_CONFIGURATION => {
            let rt = b[1] & 0x03;
            invalid_if(rt == 3)?;
            Command::GetConfiguration { rt, start: be16(&b, 2), alloc: be16(&b, 7) }
        }
        op::GET_EVENT_STATUS_NOTIFICATION => {
            // Only polled operation (MMC-6 §6.6): asynchronous notification is not supported.
            invalid_if(b[1] & 0x01 == 0)?;
            Command::GetEventStatus { classes: b[4], alloc: be16(&b, 7) }
        }
        op::READ_DISC_INFORMATION => {
            // Data type 000b = standard disc information; track resources etc. unsupported.
            invalid_if(b[1] & 0x07 != 0)?;
            Command::ReadDiscInformation { alloc: be16(&b, 7) }
        }
        op::READ_TRACK_INFORMATION => Command::ReadTrackInformation {
            address_type: b[1] & 0x03,
            address: be32(&b, 2),
            alloc: be16(&b, 7),
        },
        op::READ_DISC_STRUCTURE => Command::ReadDiscStructure {
            media_type: b[1] & 0x0F,
            layer: b[6],
            format: b[7],
            alloc: be16(&b, 8),
        },
        op::MECHANISM_STATUS => Command::MechanismStatus { alloc: be16(&b, 8) },
        op::SET_CD_SPEED => Command::SetCdSpeed,
        op::GET_PERFORMANCE => Command::GetPerformance,
        op::READ_CD => Command::ReadCd {
            lba: u64::from(be32(&b, 2)),
            blocks: (u32::from(b[6]) << 16) | (u32::from(b[7]) << 8) | u32::from(b[8]),
            sector_type: (b[1] >> 2) & 0x07,
            main: b[9],
            sub: b[10] & 0x07,
        },
        // The table and this match list the same opcodes; a row without an arm is a bug
        // that must still not panic on peer input.
        _ => return Err(CdbError::InvalidField),
    };
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(cdb: &[u8], kind: LunKind) -> Result<Command, CdbError> {
        let info = lookup(cdb[0], kind).expect("known opcode");
        decode(info, cdb)
    }

    #[test]
    fn table_has_unique_opcodes_and_lengths_follow_groups() {
        for (i, r) in OPCODES.iter().enumerate() {
            assert!(OPCODES[i + 1..].iter().all(|o| o.opcode != r.opcode), "{} twice", r.name);
            // SPC-4 §4.2.5.1: group code (bits 7:5) fixes the CDB length.
            let group_len = match r.opcode >> 5 {
                0 => 6,
                1 | 2 => 10,
                4 => 16,
                5 => 12,
                _ => 0,
            };
            assert_eq!(r.len, group_len, "{}", r.name);
        }
    }

    #[test]
    fn every_row_decodes_with_a_zeroed_cdb_of_its_length() {
        for r in OPCODES {
            let mut cdb = vec![0u8; r.len];
            cdb[0] = r.opcode;
            match r.opcode {
                op::SERVICE_ACTION_IN_16 => cdb[1] = 0x10,
                op::GET_EVENT_STATUS_NOTIFICATION => cdb[1] = 0x01,
                _ => {}
            }
            assert!(decode(r, &cdb).is_ok(), "{}", r.name);
            assert_eq!(decode(r, &cdb[..r.len - 1]), Err(CdbError::InvalidField), "{} short", r.name);
        }
    }

    #[test]
    fn mmc_opcodes_are_unknown_to_a_disk() {
        assert!(lookup(op::READ_TOC_PMA_ATIP, LunKind::Disk).is_none());
        assert!(lookup(op::READ_TOC_PMA_ATIP, LunKind::Optical).is_some());
        assert!(lookup(op::REPORT_KEY, LunKind::Optical).is_none());
        assert!(lookup(op::SEND_KEY, LunKind::Optical).is_none());
    }

    #[test]
    fn read6_zero_means_256_and_lba_is_21_bits() {
        let c = dec(&[0x08, 0xFF, 0x12, 0x34, 0x00, 0x00], LunKind::Disk).unwrap();
        assert_eq!(c, Command::Read { lba: 0x1F_1234, blocks: 256, fua: false });
    }

    #[test]
    fn read10_fields() {
        let c = dec(
            &[
                0x28, // READ(10)
                0x08, // FUA
                0x01, 0x02, 0x03, 0x04, // LBA
                0x00, // group
                0x00, 0x10, // transfer length 16
                0x00, // control
                0x00, 0x00, // BOT padding to 12 bytes is accepted
            ],
            LunKind::Disk,
        )
        .unwrap();
        assert_eq!(c, Command::Read { lba: 0x0102_0304, blocks: 16, fua: true });
    }

    #[test]
    fn read16_fields_and_rdprotect() {
        let mut cdb = [0u8; 16];
        cdb[0] = 0x88; // READ(16)
        cdb[2..10].copy_from_slice(&0x1_0000_0005u64.to_be_bytes()); // LBA
        cdb[10..14].copy_from_slice(&7u32.to_be_bytes()); // transfer length
        assert_eq!(
            dec(&cdb, LunKind::Disk).unwrap(),
            Command::Read { lba: 0x1_0000_0005, blocks: 7, fua: false }
        );
        cdb[1] = 0x20; // RDPROTECT=1
        assert_eq!(dec(&cdb, LunKind::Disk), Err(CdbError::InvalidField));
    }

    #[test]
    fn inquiry_page_without_evpd_is_invalid() {
        assert_eq!(dec(&[0x12, 0x00, 0x80, 0x00, 0xFF, 0x00], LunKind::Disk), Err(CdbError::InvalidField));
        assert_eq!(
            dec(&[0x12, 0x01, 0x80, 0x01, 0x00, 0x00], LunKind::Disk).unwrap(),
            Command::Inquiry { evpd: true, page: 0x80, alloc: 0x100 }
        );
    }

    #[test]
    fn read_toc_old_style_format() {
        // Linux sr: format 0 in byte 2, 0x40 in byte 9 → session info (format 1).
        let c = dec(&[0x43, 0x00, 0x00, 0, 0, 0, 0x00, 0x00, 0x0C, 0x40], LunKind::Optical).unwrap();
        assert_eq!(c, Command::ReadToc { msf: false, format: 1, track: 0, alloc: 12 });
        // Byte 2 wins when non-zero.
        let c = dec(&[0x43, 0x02, 0x02, 0, 0, 0, 0x01, 0x03, 0x00, 0x40], LunKind::Optical).unwrap();
        assert_eq!(c, Command::ReadToc { msf: true, format: 2, track: 1, alloc: 0x300 });
        assert_eq!(
            dec(&[0x43, 0x00, 0x00, 0, 0, 0, 0, 0, 0x0C, 0xC0], LunKind::Optical),
            Err(CdbError::InvalidField)
        );
    }

    #[test]
    fn gesn_requires_polled() {
        assert_eq!(
            dec(&[0x4A, 0x00, 0, 0, 0x10, 0, 0, 0, 8, 0], LunKind::Optical),
            Err(CdbError::InvalidField)
        );
        assert_eq!(
            dec(&[0x4A, 0x01, 0, 0, 0x10, 0, 0, 0, 8, 0], LunKind::Optical).unwrap(),
            Command::GetEventStatus { classes: 0x10, alloc: 8 }
        );
    }

    #[test]
    fn verify_bytchk() {
        assert_eq!(
            dec(&[0x2F, 0x02, 0, 0, 0, 1, 0, 0, 2, 0], LunKind::Disk).unwrap(),
            Command::Verify { lba: 1, blocks: 2, bytchk: true }
        );
        assert_eq!(dec(&[0x2F, 0x06, 0, 0, 0, 1, 0, 0, 2, 0], LunKind::Disk), Err(CdbError::InvalidField));
    }

    #[test]
    fn read_capacity_lba_without_pmi_is_invalid() {
        assert_eq!(dec(&[0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0], LunKind::Disk), Err(CdbError::InvalidField));
        assert_eq!(dec(&[0x25, 0, 0, 0, 0, 1, 0, 0, 1, 0], LunKind::Disk), Ok(Command::ReadCapacity10));
    }

    #[test]
    fn service_action_in_other_than_read_capacity_is_invalid() {
        let mut cdb = [0u8; 16];
        cdb[0] = 0x9E;
        cdb[1] = 0x12; // GET LBA STATUS
        assert_eq!(dec(&cdb, LunKind::Disk), Err(CdbError::InvalidField));
    }
}
