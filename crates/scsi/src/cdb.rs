//! Command descriptor blocks: total decoding into typed commands.
//!
//! The opcode table (`opcodes`) says which LUN kinds know a command, how long its
//! CDB is, whether it needs a medium and whether a pending unit attention lets it
//! through. Decoding never panics: the CDB is copied into a zero-padded 16-byte
//! array only after its length has been checked against the table.

pub use crate::opcodes::{OpInfo, op, sa};

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
    /// REPORT SUPPORTED OPERATION CODES (SPC-4 §6.35).
    ReportOpcodes {
        rctd: bool,
        options: u8,
        opcode: u8,
        service_action: u16,
        alloc: u32,
    },
    /// UNMAP (SBC-3 §5.28): the parameter list follows.
    Unmap {
        param_len: u16,
    },
    /// WRITE SAME(10/16) (SBC-3 §5.41/§5.42); `blocks` 0 = through the last block.
    WriteSame {
        lba: u64,
        blocks: u32,
        unmap: bool,
        /// NDOB: no data-out buffer, the pattern is zeros.
        ndob: bool,
    },
    /// PRE-FETCH(10/16) (SBC-3 §5.10/§5.11).
    Prefetch {
        lba: u64,
        blocks: u32,
    },
    /// COMPARE AND WRITE (SBC-3 §5.2): `blocks` to compare, then as many to write.
    CompareAndWrite {
        lba: u64,
        blocks: u8,
        fua: bool,
    },
    /// READ DEFECT DATA(10/12) (SBC-3 §5.18/§5.19): `request` is REQ_PLIST, REQ_GLIST
    /// and the DEFECT LIST FORMAT (bits 4:0).
    ReadDefectData {
        twelve: bool,
        request: u8,
        alloc: u32,
    },
    /// GET LBA STATUS (SBC-3 §5.7).
    GetLbaStatus {
        lba: u64,
        alloc: u32,
    },
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
    if cdb.len() < info.len() {
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
        op::SERVICE_ACTION_IN_16 => match info.service_action {
            Some(sa::READ_CAPACITY_16) => {
                invalid_if(b[14] & 0x01 == 0 && be64(&b, 2) != 0)?;
                Command::ReadCapacity16 { alloc: be32(&b, 10) }
            }
            Some(sa::GET_LBA_STATUS) => Command::GetLbaStatus { lba: be64(&b, 2), alloc: be32(&b, 10) },
            _ => return Err(CdbError::InvalidField),
        },
        op::MAINTENANCE_IN => Command::ReportOpcodes {
            rctd: b[2] & 0x80 != 0,
            options: b[2] & 0x07,
            opcode: b[3],
            service_action: be16(&b, 4),
            alloc: be32(&b, 6),
        },
        op::WRITE_AND_VERIFY_10 | op::WRITE_AND_VERIFY_12 | op::WRITE_AND_VERIFY_16 => {
            no_protection(&b)?;
            // BYTCHK 0: verify the medium, 1: compare with the data just written. Either
            // holds once the write succeeded (the backend reports its errors); 1xb is reserved.
            invalid_if(b[1] & 0x04 != 0)?;
            let (lba, blocks) = match info.opcode {
                op::WRITE_AND_VERIFY_10 => (u64::from(be32(&b, 2)), u32::from(be16(&b, 7))),
                op::WRITE_AND_VERIFY_12 => (u64::from(be32(&b, 2)), be32(&b, 6)),
                _ => (be64(&b, 2), be32(&b, 10)),
            };
            Command::Write { lba, blocks, fua: false }
        }
        op::PRE_FETCH_10 => Command::Prefetch { lba: u64::from(be32(&b, 2)), blocks: u32::from(be16(&b, 7)) },
        op::PRE_FETCH_16 => Command::Prefetch { lba: be64(&b, 2), blocks: be32(&b, 10) },
        op::WRITE_SAME_10 | op::WRITE_SAME_16 => {
            no_protection(&b)?;
            // ANCHOR (bit 4): anchored blocks are not supported (ANC_SUP=0 in VPD B2h);
            // LBDATA/PBDATA (bits 2:1) are obsolete.
            invalid_if(b[1] & 0x16 != 0)?;
            let ten = info.opcode == op::WRITE_SAME_10;
            // NDOB (bit 0) exists in WRITE SAME(16) only.
            invalid_if(ten && b[1] & 0x01 != 0)?;
            let (lba, blocks) = if ten {
                (u64::from(be32(&b, 2)), u32::from(be16(&b, 7)))
            } else {
                (be64(&b, 2), be32(&b, 10))
            };
            Command::WriteSame { lba, blocks, unmap: b[1] & 0x08 != 0, ndob: b[1] & 0x01 != 0 }
        }
        op::UNMAP => {
            // ANCHOR: not supported (ANC_SUP=0).
            invalid_if(b[1] & 0x01 != 0)?;
            Command::Unmap { param_len: be16(&b, 7) }
        }
        op::COMPARE_AND_WRITE => {
            no_protection(&b)?;
            Command::CompareAndWrite { lba: be64(&b, 2), blocks: b[13], fua: b[1] & 0x08 != 0 }
        }
        op::READ_DEFECT_DATA_10 => {
            Command::ReadDefectData { twelve: false, request: b[2] & 0x1F, alloc: u32::from(be16(&b, 7)) }
        }
        op::READ_DEFECT_DATA_12 => {
            Command::ReadDefectData { twelve: true, request: b[1] & 0x1F, alloc: be32(&b, 6) }
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
    use crate::LunKind;
    use crate::opcodes::{Lookup, OPCODES, lookup_cdb};

    fn dec(cdb: &[u8], kind: LunKind) -> Result<Command, CdbError> {
        let Lookup::Found(info) = lookup_cdb(cdb, kind) else { panic!("unknown command {cdb:02X?}") };
        decode(info, cdb)
    }

    /// A CDB of `r`'s length that decodes (zeros, plus what a few commands need).
    fn valid_cdb(r: &OpInfo) -> Vec<u8> {
        let mut cdb = vec![0u8; r.len()];
        cdb[0] = r.opcode;
        if let Some(sa) = r.service_action {
            cdb[1] = sa;
        }
        if r.opcode == op::GET_EVENT_STATUS_NOTIFICATION {
            cdb[1] = 0x01;
        }
        cdb
    }

    #[test]
    fn every_row_decodes_with_a_zeroed_cdb_of_its_length() {
        for r in OPCODES {
            let cdb = valid_cdb(r);
            assert!(decode(r, &cdb).is_ok(), "{}", r.name);
            assert_eq!(decode(r, &cdb[..r.len() - 1]), Err(CdbError::InvalidField), "{} short", r.name);
        }
    }

    /// The usage mask REPORT SUPPORTED OPERATION CODES reports cannot drift from the
    /// decoder: a bit outside the mask either changes nothing or is refused.
    #[test]
    fn the_decoder_reads_no_bit_outside_the_usage_mask() {
        for r in OPCODES {
            let base = valid_cdb(r);
            let want = decode(r, &base).unwrap();
            for byte in 1..r.len() {
                for bit in 0..8 {
                    let mask = 1u8 << bit;
                    if r.usage[byte] & mask != 0 {
                        continue;
                    }
                    let mut cdb = base.clone();
                    cdb[byte] ^= mask;
                    if let Ok(got) = decode(r, &cdb) {
                        assert_eq!(
                            got, want,
                            "{}: byte {byte} bit {bit} is read but not in the usage mask",
                            r.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn new_sbc_commands_decode() {
        let mut ws16 = [0u8; 16];
        ws16[0] = 0x93; // WRITE SAME(16)
        ws16[1] = 0x09; // UNMAP, NDOB
        ws16[2..10].copy_from_slice(&5u64.to_be_bytes());
        ws16[10..14].copy_from_slice(&7u32.to_be_bytes());
        assert_eq!(
            dec(&ws16, LunKind::Disk).unwrap(),
            Command::WriteSame { lba: 5, blocks: 7, unmap: true, ndob: true }
        );
        ws16[1] = 0x10; // ANCHOR
        assert_eq!(dec(&ws16, LunKind::Disk), Err(CdbError::InvalidField));
        ws16[1] = 0x02; // LBDATA (obsolete)
        assert_eq!(dec(&ws16, LunKind::Disk), Err(CdbError::InvalidField));
        // WRITE SAME(10) has no NDOB.
        assert_eq!(dec(&[0x41, 0x01, 0, 0, 0, 1, 0, 0, 1, 0], LunKind::Disk), Err(CdbError::InvalidField));
        assert_eq!(
            dec(&[0x41, 0x08, 0, 0, 0, 1, 0, 0, 2, 0], LunKind::Disk).unwrap(),
            Command::WriteSame { lba: 1, blocks: 2, unmap: true, ndob: false }
        );
        assert_eq!(
            dec(&[0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], LunKind::Disk).unwrap(),
            Command::Unmap { param_len: 24 }
        );
        assert_eq!(dec(&[0x42, 1, 0, 0, 0, 0, 0, 0, 24, 0], LunKind::Disk), Err(CdbError::InvalidField));
        assert_eq!(
            dec(&[0x2E, 0x02, 0, 0, 0, 3, 0, 0, 4, 0], LunKind::Disk).unwrap(),
            Command::Write { lba: 3, blocks: 4, fua: false },
            "WRITE AND VERIFY(10) with BYTCHK"
        );
        assert_eq!(dec(&[0x2E, 0x04, 0, 0, 0, 3, 0, 0, 4, 0], LunKind::Disk), Err(CdbError::InvalidField));
        assert_eq!(dec(&[0x2E, 0x20, 0, 0, 0, 3, 0, 0, 4, 0], LunKind::Disk), Err(CdbError::InvalidField));
        let mut caw = [0u8; 16];
        caw[0] = 0x89;
        caw[2..10].copy_from_slice(&9u64.to_be_bytes());
        caw[13] = 2;
        assert_eq!(
            dec(&caw, LunKind::Disk).unwrap(),
            Command::CompareAndWrite { lba: 9, blocks: 2, fua: false }
        );
        assert_eq!(
            dec(&[0x37, 0, 0x18, 0, 0, 0, 0, 0, 4, 0], LunKind::Disk).unwrap(),
            Command::ReadDefectData { twelve: false, request: 0x18, alloc: 4 }
        );
        let mut gls = [0u8; 16];
        gls[0] = 0x9E;
        gls[1] = 0x12;
        gls[2..10].copy_from_slice(&3u64.to_be_bytes());
        gls[10..14].copy_from_slice(&24u32.to_be_bytes());
        assert_eq!(dec(&gls, LunKind::Disk).unwrap(), Command::GetLbaStatus { lba: 3, alloc: 24 });
        assert_eq!(
            dec(&[0xA3, 0x0C, 0x82, 0x9E, 0, 0x12, 0, 0, 1, 0, 0, 0], LunKind::Disk).unwrap(),
            Command::ReportOpcodes { rctd: true, options: 2, opcode: 0x9E, service_action: 0x12, alloc: 256 }
        );
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
}
