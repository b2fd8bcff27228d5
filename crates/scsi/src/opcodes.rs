//! The one opcode table: which LUN kinds implement a command, its CDB length and
//! usage mask, whether it needs a medium or passes a unit attention. The dispatcher
//! looks commands up here and REPORT SUPPORTED OPERATION CODES (SPC-4 §6.35) is
//! generated from it, so what is reported is what is implemented.

use crate::LunKind;
use crate::sense::Sense;

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
    pub const WRITE_AND_VERIFY_10: u8 = 0x2E;
    pub const VERIFY_10: u8 = 0x2F;
    pub const PRE_FETCH_10: u8 = 0x34;
    pub const SYNCHRONIZE_CACHE_10: u8 = 0x35;
    pub const READ_DEFECT_DATA_10: u8 = 0x37;
    pub const WRITE_SAME_10: u8 = 0x41;
    pub const UNMAP: u8 = 0x42;
    pub const READ_TOC_PMA_ATIP: u8 = 0x43;
    pub const GET_CONFIGURATION: u8 = 0x46;
    pub const GET_EVENT_STATUS_NOTIFICATION: u8 = 0x4A;
    pub const READ_DISC_INFORMATION: u8 = 0x51;
    pub const READ_TRACK_INFORMATION: u8 = 0x52;
    pub const MODE_SELECT_10: u8 = 0x55;
    pub const MODE_SENSE_10: u8 = 0x5A;
    pub const READ_16: u8 = 0x88;
    pub const COMPARE_AND_WRITE: u8 = 0x89;
    pub const WRITE_16: u8 = 0x8A;
    pub const WRITE_AND_VERIFY_16: u8 = 0x8E;
    pub const VERIFY_16: u8 = 0x8F;
    pub const PRE_FETCH_16: u8 = 0x90;
    pub const SYNCHRONIZE_CACHE_16: u8 = 0x91;
    pub const WRITE_SAME_16: u8 = 0x93;
    pub const SERVICE_ACTION_IN_16: u8 = 0x9E;
    pub const REPORT_LUNS: u8 = 0xA0;
    /// MAINTENANCE IN on a disk (SPC-4); SEND KEY on an MMC drive, where it is
    /// deliberately absent from [`OPCODES`](super::OPCODES) (05/20/00: no CSS).
    pub const MAINTENANCE_IN: u8 = 0xA3;
    #[allow(dead_code, reason = "named so tests can show it is refused")]
    pub const SEND_KEY: u8 = 0xA3;
    #[allow(dead_code, reason = "named so tests can show it is refused")]
    pub const REPORT_KEY: u8 = 0xA4;
    pub const READ_12: u8 = 0xA8;
    pub const WRITE_12: u8 = 0xAA;
    pub const GET_PERFORMANCE: u8 = 0xAC;
    pub const READ_DISC_STRUCTURE: u8 = 0xAD;
    pub const WRITE_AND_VERIFY_12: u8 = 0xAE;
    pub const VERIFY_12: u8 = 0xAF;
    pub const READ_DEFECT_DATA_12: u8 = 0xB7;
    pub const SET_CD_SPEED: u8 = 0xBB;
    pub const READ_CD: u8 = 0xBE;
    pub const MECHANISM_STATUS: u8 = 0xBD;
}

/// Service actions (SBC-3 §5.16, §5.8; SPC-4 §6.35).
pub mod sa {
    /// SERVICE ACTION IN(16): READ CAPACITY(16).
    pub const READ_CAPACITY_16: u8 = 0x10;
    /// SERVICE ACTION IN(16): GET LBA STATUS.
    pub const GET_LBA_STATUS: u8 = 0x12;
    /// MAINTENANCE IN: REPORT SUPPORTED OPERATION CODES.
    pub const REPORT_SUPPORTED_OPCODES: u8 = 0x0C;
}

/// Which kinds of logical unit implement an opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    All,
    /// SBC only (UNMAP, WRITE SAME, ...): a CD/DVD drive answers 05/20/00.
    Disk,
    /// MMC only (READ TOC, GET CONFIGURATION, ...): a disk answers 05/20/00.
    Optical,
}

/// One row of the opcode table.
#[derive(Debug)]
pub struct OpInfo {
    pub opcode: u8,
    /// The service action in CDB byte 1 bits 4:0, for opcodes that have them.
    pub service_action: Option<u8>,
    pub name: &'static str,
    /// CDB usage data (SPC-4 §6.35.3): byte 0 is the opcode, then the bits the
    /// device accepts in each byte: those the decoder reads, and DPO (byte 1 bit 4
    /// of the READ/WRITE/VERIFY family), a cache hint accepted and ignored, as
    /// DPOFUA in MODE SENSE promises. Its length is the CDB length; longer CDBs
    /// (BOT pads to 12 or 16) are fine.
    pub usage: &'static [u8],
    pub applies: Applies,
    /// Fails with 02/3A/00 when no medium is loaded.
    pub needs_medium: bool,
    /// Neither fails nor clears a pending unit attention (SPC-4 §5.14, MMC-6 §4.1.6.1).
    pub ua_exempt: bool,
}

impl OpInfo {
    /// Bytes the CDB must have.
    pub fn len(&self) -> usize {
        self.usage.len()
    }

    fn applies_to(&self, kind: LunKind) -> bool {
        match self.applies {
            Applies::All => true,
            Applies::Disk => kind == LunKind::Disk,
            Applies::Optical => kind == LunKind::Optical,
        }
    }
}

/// Flags of a row: needs a medium, passes a unit attention.
#[derive(Clone, Copy)]
struct F(bool, bool);
const MEDIUM: F = F(true, false);
const NONE: F = F(false, false);
const UA_EXEMPT: F = F(false, true);

const fn row(opcode: u8, name: &'static str, usage: &'static [u8], applies: Applies, f: F) -> OpInfo {
    OpInfo { opcode, service_action: None, name, usage, applies, needs_medium: f.0, ua_exempt: f.1 }
}

const fn sa_row(opcode: u8, sa: u8, name: &'static str, usage: &'static [u8], f: F) -> OpInfo {
    OpInfo {
        opcode,
        service_action: Some(sa),
        name,
        usage,
        applies: Applies::Disk,
        needs_medium: f.0,
        ua_exempt: f.1,
    }
}

use Applies::{All, Disk, Optical};

const X: u8 = 0xFF;

/// Every command this target implements. REPORT KEY / SEND KEY (CSS) are
/// deliberately absent: 05/20/00 is what hosts expect from a drive without CSS.
#[rustfmt::skip]
pub const OPCODES: &[OpInfo] = &[
    row(op::TEST_UNIT_READY, "TEST UNIT READY", &[op::TEST_UNIT_READY, 0, 0, 0, 0, 0], All, MEDIUM),
    row(op::REQUEST_SENSE, "REQUEST SENSE", &[op::REQUEST_SENSE, 0, 0, 0, X, 0], All, UA_EXEMPT),
    row(op::READ_6, "READ(6)", &[op::READ_6, 0x1F, X, X, X, 0], All, MEDIUM),
    row(op::WRITE_6, "WRITE(6)", &[op::WRITE_6, 0x1F, X, X, X, 0], All, MEDIUM),
    row(op::INQUIRY, "INQUIRY", &[op::INQUIRY, 0x01, X, X, X, 0], All, UA_EXEMPT),
    row(op::MODE_SELECT_6, "MODE SELECT(6)", &[op::MODE_SELECT_6, 0, 0, 0, X, 0], All, NONE),
    row(op::MODE_SENSE_6, "MODE SENSE(6)", &[op::MODE_SENSE_6, 0x08, X, X, X, 0], All, NONE),
    row(op::START_STOP_UNIT, "START STOP UNIT", &[op::START_STOP_UNIT, 0, 0, 0, 0xF3, 0], All, NONE),
    row(op::PREVENT_ALLOW_MEDIUM_REMOVAL, "PREVENT ALLOW MEDIUM REMOVAL",
        &[op::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0x01, 0], All, NONE),
    row(op::READ_FORMAT_CAPACITIES, "READ FORMAT CAPACITIES",
        &[op::READ_FORMAT_CAPACITIES, 0, 0, 0, 0, 0, 0, X, X, 0], All, NONE),
    row(op::READ_CAPACITY_10, "READ CAPACITY(10)", &[op::READ_CAPACITY_10, 0, X, X, X, X, 0, 0, 0x01, 0], All, MEDIUM),
    row(op::READ_10, "READ(10)", &[op::READ_10, 0xF8, X, X, X, X, 0, X, X, 0], All, MEDIUM),
    row(op::WRITE_10, "WRITE(10)", &[op::WRITE_10, 0xF8, X, X, X, X, 0, X, X, 0], All, MEDIUM),
    row(op::WRITE_AND_VERIFY_10, "WRITE AND VERIFY(10)",
        &[op::WRITE_AND_VERIFY_10, 0xF6, X, X, X, X, 0, X, X, 0], Disk, MEDIUM),
    row(op::VERIFY_10, "VERIFY(10)", &[op::VERIFY_10, 0xF6, X, X, X, X, 0, X, X, 0], All, MEDIUM),
    row(op::PRE_FETCH_10, "PRE-FETCH(10)", &[op::PRE_FETCH_10, 0, X, X, X, X, 0, X, X, 0], Disk, MEDIUM),
    row(op::SYNCHRONIZE_CACHE_10, "SYNCHRONIZE CACHE(10)",
        &[op::SYNCHRONIZE_CACHE_10, 0, X, X, X, X, 0, X, X, 0], All, MEDIUM),
    row(op::READ_DEFECT_DATA_10, "READ DEFECT DATA(10)",
        &[op::READ_DEFECT_DATA_10, 0, 0x1F, 0, 0, 0, 0, X, X, 0], Disk, MEDIUM),
    row(op::WRITE_SAME_10, "WRITE SAME(10)", &[op::WRITE_SAME_10, 0xFE, X, X, X, X, 0, X, X, 0], Disk, MEDIUM),
    row(op::UNMAP, "UNMAP", &[op::UNMAP, 0x01, 0, 0, 0, 0, 0, X, X, 0], Disk, MEDIUM),
    row(op::READ_TOC_PMA_ATIP, "READ TOC/PMA/ATIP",
        &[op::READ_TOC_PMA_ATIP, 0x02, 0x0F, 0, 0, 0, X, X, X, 0xC0], Optical, MEDIUM),
    row(op::GET_CONFIGURATION, "GET CONFIGURATION",
        &[op::GET_CONFIGURATION, 0x03, X, X, 0, 0, 0, X, X, 0], Optical, UA_EXEMPT),
    row(op::GET_EVENT_STATUS_NOTIFICATION, "GET EVENT STATUS NOTIFICATION",
        &[op::GET_EVENT_STATUS_NOTIFICATION, 0x01, 0, 0, X, 0, 0, X, X, 0], Optical, UA_EXEMPT),
    row(op::READ_DISC_INFORMATION, "READ DISC INFORMATION",
        &[op::READ_DISC_INFORMATION, 0x07, 0, 0, 0, 0, 0, X, X, 0], Optical, MEDIUM),
    row(op::READ_TRACK_INFORMATION, "READ TRACK INFORMATION",
        &[op::READ_TRACK_INFORMATION, 0x03, X, X, X, X, 0, X, X, 0], Optical, MEDIUM),
    row(op::MODE_SELECT_10, "MODE SELECT(10)", &[op::MODE_SELECT_10, 0, 0, 0, 0, 0, 0, X, X, 0], All, NONE),
    row(op::MODE_SENSE_10, "MODE SENSE(10)", &[op::MODE_SENSE_10, 0x18, X, X, 0, 0, 0, X, X, 0], All, NONE),
    row(op::READ_16, "READ(16)", &[op::READ_16, 0xF8, X, X, X, X, X, X, X, X, X, X, X, X, 0, 0], All, MEDIUM),
    row(op::COMPARE_AND_WRITE, "COMPARE AND WRITE",
        &[op::COMPARE_AND_WRITE, 0xF8, X, X, X, X, X, X, X, X, 0, 0, 0, X, 0, 0], Disk, MEDIUM),
    row(op::WRITE_16, "WRITE(16)", &[op::WRITE_16, 0xF8, X, X, X, X, X, X, X, X, X, X, X, X, 0, 0], All, MEDIUM),
    row(op::WRITE_AND_VERIFY_16, "WRITE AND VERIFY(16)",
        &[op::WRITE_AND_VERIFY_16, 0xF6, X, X, X, X, X, X, X, X, X, X, X, X, 0, 0], Disk, MEDIUM),
    row(op::VERIFY_16, "VERIFY(16)", &[op::VERIFY_16, 0xF6, X, X, X, X, X, X, X, X, X, X, X, X, 0, 0], All, MEDIUM),
    row(op::PRE_FETCH_16, "PRE-FETCH(16)",
        &[op::PRE_FETCH_16, 0, X, X, X, X, X, X, X, X, X, X, X, X, 0, 0], Disk, MEDIUM),
    row(op::SYNCHRONIZE_CACHE_16, "SYNCHRONIZE CACHE(16)",
        &[op::SYNCHRONIZE_CACHE_16, 0, X, X, X, X, X, X, X, X, X, X, X, X, 0, 0], All, MEDIUM),
    row(op::WRITE_SAME_16, "WRITE SAME(16)",
        &[op::WRITE_SAME_16, 0xFF, X, X, X, X, X, X, X, X, X, X, X, X, 0, 0], Disk, MEDIUM),
    // MMC drives answer READ CAPACITY(16) too (Linux sr asks when READ CAPACITY(10) saturates).
    OpInfo { applies: All, ..sa_row(op::SERVICE_ACTION_IN_16, sa::READ_CAPACITY_16, "READ CAPACITY(16)",
        &[op::SERVICE_ACTION_IN_16, 0x1F, X, X, X, X, X, X, X, X, X, X, X, X, 0x01, 0], MEDIUM) },
    sa_row(op::SERVICE_ACTION_IN_16, sa::GET_LBA_STATUS, "GET LBA STATUS",
        &[op::SERVICE_ACTION_IN_16, 0x1F, X, X, X, X, X, X, X, X, X, X, X, X, 0, 0], MEDIUM),
    row(op::REPORT_LUNS, "REPORT LUNS", &[op::REPORT_LUNS, 0, X, 0, 0, 0, X, X, X, X, 0, 0], All, UA_EXEMPT),
    sa_row(op::MAINTENANCE_IN, sa::REPORT_SUPPORTED_OPCODES, "REPORT SUPPORTED OPERATION CODES",
        &[op::MAINTENANCE_IN, 0x1F, 0x87, X, X, X, X, X, X, X, 0, 0], NONE),
    row(op::READ_12, "READ(12)", &[op::READ_12, 0xF8, X, X, X, X, X, X, X, X, 0, 0], All, MEDIUM),
    row(op::WRITE_12, "WRITE(12)", &[op::WRITE_12, 0xF8, X, X, X, X, X, X, X, X, 0, 0], All, MEDIUM),
    row(op::GET_PERFORMANCE, "GET PERFORMANCE", &[op::GET_PERFORMANCE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], Optical, NONE),
    row(op::READ_DISC_STRUCTURE, "READ DISC STRUCTURE",
        &[op::READ_DISC_STRUCTURE, 0x0F, 0, 0, 0, 0, X, X, X, X, 0, 0], Optical, MEDIUM),
    row(op::WRITE_AND_VERIFY_12, "WRITE AND VERIFY(12)",
        &[op::WRITE_AND_VERIFY_12, 0xF6, X, X, X, X, X, X, X, X, 0, 0], Disk, MEDIUM),
    row(op::VERIFY_12, "VERIFY(12)", &[op::VERIFY_12, 0xF6, X, X, X, X, X, X, X, X, 0, 0], All, MEDIUM),
    row(op::READ_DEFECT_DATA_12, "READ DEFECT DATA(12)",
        &[op::READ_DEFECT_DATA_12, 0x1F, 0, 0, 0, 0, X, X, X, X, 0, 0], Disk, MEDIUM),
    row(op::SET_CD_SPEED, "SET CD SPEED", &[op::SET_CD_SPEED, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], Optical, NONE),
    row(op::MECHANISM_STATUS, "MECHANISM STATUS",
        &[op::MECHANISM_STATUS, 0, 0, 0, 0, 0, 0, 0, X, X, 0, 0], Optical, NONE),
    row(op::READ_CD, "READ CD", &[op::READ_CD, 0x1C, X, X, X, X, X, X, X, X, 0x07, 0], Optical, MEDIUM),
];

/// What the table says about a CDB on a LUN of some kind.
#[derive(Debug, Clone, Copy)]
pub enum Lookup {
    Found(&'static OpInfo),
    /// The opcode is implemented but not this service action (05/24/00).
    UnknownServiceAction,
    /// 05/20/00.
    UnknownOpcode,
}

/// The rows of `opcode` a LUN of `kind` implements.
fn rows(opcode: u8, kind: LunKind) -> impl Iterator<Item = &'static OpInfo> {
    OPCODES.iter().filter(move |r| r.opcode == opcode && r.applies_to(kind))
}

/// The table row for the command in `cdb` (never empty: the caller checks).
pub fn lookup(opcode: u8, service_action: Option<u8>, kind: LunKind) -> Lookup {
    let mut found = false;
    for r in rows(opcode, kind) {
        found = true;
        match r.service_action {
            None => return Lookup::Found(r),
            Some(sa) if Some(sa) == service_action => return Lookup::Found(r),
            Some(_) => {}
        }
    }
    if found { Lookup::UnknownServiceAction } else { Lookup::UnknownOpcode }
}

/// [`lookup`] for a whole CDB (the service action is byte 1 bits 4:0).
pub fn lookup_cdb(cdb: &[u8], kind: LunKind) -> Lookup {
    match cdb.first() {
        Some(&opcode) => lookup(opcode, cdb.get(1).map(|b| b & 0x1F), kind),
        None => Lookup::UnknownOpcode,
    }
}

/// The command timeouts descriptor (SPC-4 §6.35.4): 10 bytes follow the length.
/// Nominal 0 (not specified); recommended 30 s, what Linux gives a disk command.
fn timeouts_descriptor() -> [u8; 12] {
    let mut d = [0u8; 12];
    d[0..2].copy_from_slice(&0x000Au16.to_be_bytes());
    d[8..12].copy_from_slice(&30u32.to_be_bytes());
    d
}

/// REPORT SUPPORTED OPERATION CODES parameter data (SPC-4 §6.35).
///
/// `options` is the REPORTING OPTIONS field: 0 all commands, 1 one opcode without
/// service actions, 2 one opcode + service action, 3 one opcode with or without.
pub fn report_supported_opcodes(
    kind: LunKind,
    rctd: bool,
    options: u8,
    opcode: u8,
    service_action: u16,
) -> Result<Vec<u8>, Sense> {
    if options == 0 {
        let mut body = Vec::new();
        for r in OPCODES.iter().filter(|r| r.applies_to(kind)) {
            body.push(r.opcode);
            body.push(0);
            body.extend_from_slice(&u16::from(r.service_action.unwrap_or(0)).to_be_bytes());
            body.push(0);
            // CTDP (bit 1): a timeouts descriptor follows; SERVACTV (bit 0).
            body.push(u8::from(rctd) << 1 | u8::from(r.service_action.is_some()));
            body.extend_from_slice(&(r.len() as u16).to_be_bytes());
            if rctd {
                body.extend_from_slice(&timeouts_descriptor());
            }
        }
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend(body);
        return Ok(out);
    }
    let has_sa = rows(opcode, kind).any(|r| r.service_action.is_some());
    // The REPORTING OPTIONS field (byte 2) is what is wrong, not the command:
    // said with a field pointer, so a host does not take it for "not implemented".
    let bad_options = Sense::INVALID_FIELD_IN_CDB.at_cdb_byte(2);
    let row = match options {
        // One opcode that has no service actions.
        1 if has_sa => return Err(bad_options),
        1 => rows(opcode, kind).next(),
        // One opcode and service action.
        2 if !has_sa && rows(opcode, kind).next().is_some() => return Err(bad_options),
        2 => rows(opcode, kind).find(|r| r.service_action.map(u16::from) == Some(service_action)),
        3 if has_sa => rows(opcode, kind).find(|r| r.service_action.map(u16::from) == Some(service_action)),
        3 => rows(opcode, kind).next(),
        _ => return Err(bad_options),
    };
    let mut out = vec![0u8; 4];
    match row {
        Some(r) => {
            out[1] = u8::from(rctd) << 7 | 0x03; // CTDP, SUPPORT 011b: as the standard says
            out[2..4].copy_from_slice(&(r.len() as u16).to_be_bytes());
            out.extend_from_slice(r.usage);
            if let (Some(sa), Some(byte1)) = (r.service_action, out.get_mut(5)) {
                // The service action's own bits are reported as its value (SPC-4 §6.35.3).
                *byte1 = (*byte1 & !0x1F) | sa;
            }
            if rctd {
                out.extend_from_slice(&timeouts_descriptor());
            }
        }
        None => out[1] = 0x01, // SUPPORT 001b: not supported
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's command list, made from the table.
    fn commands_markdown() -> String {
        let mut out = String::from("| opcode | command | disk | CD/DVD |\n|---|---|---|---|\n");
        let mut rows: Vec<&OpInfo> = OPCODES.iter().collect();
        rows.sort_by_key(|r| (r.opcode, r.service_action));
        for r in rows {
            let code = match r.service_action {
                Some(sa) => format!("{:02X}h/{sa:02X}h", r.opcode),
                None => format!("{:02X}h", r.opcode),
            };
            let mark = |k| if r.applies_to(k) { "✓" } else { "" };
            out +=
                &format!("| {code} | {} | {} | {} |\n", r.name, mark(LunKind::Disk), mark(LunKind::Optical));
        }
        out
    }

    /// README.md lists exactly the commands of the table (regenerate with
    /// `VSTICK_WRITE_README=1 cargo test -p vstick-scsi readme`).
    #[test]
    fn readme_lists_the_commands_of_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let (start, end) = ("<!-- scsi-commands:start -->\n", "<!-- scsi-commands:end -->");
        let a = readme.find(start).expect("README has the start marker") + start.len();
        let b = readme.find(end).expect("README has the end marker");
        let want = commands_markdown();
        if std::env::var_os("VSTICK_WRITE_README").is_some() {
            std::fs::write(path, format!("{}{want}{}", &readme[..a], &readme[b..])).unwrap();
            return;
        }
        assert_eq!(&readme[a..b], want, "README's SCSI command list differs from the opcode table");
    }

    #[test]
    fn table_rows_are_unique_and_lengths_follow_groups() {
        for (i, r) in OPCODES.iter().enumerate() {
            assert!(
                OPCODES[i + 1..].iter().all(|o| (o.opcode, o.service_action) != (r.opcode, r.service_action)),
                "{} twice",
                r.name
            );
            // SPC-4 §4.2.5.1: group code (bits 7:5) fixes the CDB length.
            let group_len = match r.opcode >> 5 {
                0 => 6,
                1 | 2 => 10,
                4 => 16,
                5 => 12,
                _ => 0,
            };
            assert_eq!(r.len(), group_len, "{}", r.name);
            assert_eq!(r.usage[0], r.opcode, "{}: usage byte 0 is the opcode", r.name);
        }
    }

    /// MODE SENSE reports DPOFUA, so every command with a DPO bit must list it as
    /// supported (libiscsi's Verify*/WriteVerify*.Dpo read it from here).
    #[test]
    fn dpo_is_in_the_usage_data_of_every_command_that_has_it() {
        let with_dpo = [0x28, 0x2A, 0x2E, 0x2F, 0x88, 0x89, 0x8A, 0x8E, 0x8F, 0xA8, 0xAA, 0xAE, 0xAF];
        for opcode in with_dpo {
            let d = report_supported_opcodes(LunKind::Disk, false, 1, opcode, 0).unwrap();
            assert_eq!(d[5] & 0x10, 0x10, "{opcode:02X}: DPO in the usage data");
        }
    }

    #[test]
    fn report_all_lists_every_disk_row_once() {
        let d = report_supported_opcodes(LunKind::Disk, false, 0, 0, 0).unwrap();
        let len = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize;
        assert_eq!(len, d.len() - 4);
        let descriptors: Vec<&[u8]> = d[4..].chunks(8).collect();
        let disk_rows = OPCODES.iter().filter(|r| r.applies_to(LunKind::Disk)).count();
        assert_eq!(descriptors.len(), disk_rows);
        assert!(descriptors.iter().any(|c| c[0] == op::UNMAP && c[5] == 0 && c[6..8] == [0, 10]));
        assert!(
            descriptors.iter().any(|c| c[0] == 0x9E && c[2..4] == [0, 0x12] && c[5] == 0x01),
            "GET LBA STATUS with SERVACTV"
        );
        assert!(descriptors.iter().all(|c| c[0] != op::READ_TOC_PMA_ATIP), "no MMC commands on a disk");
        // With RCTD every descriptor carries CTDP and a 12-byte timeouts descriptor.
        let t = report_supported_opcodes(LunKind::Disk, true, 0, 0, 0).unwrap();
        assert_eq!(t.len(), 4 + disk_rows * 20);
        assert!(t[4..].chunks(20).all(|c| c[5] & 0x02 != 0 && c[8..10] == [0, 0x0A]));
    }

    #[test]
    fn report_one_command() {
        // READ(10): options 1 works, 2 is refused (no service actions).
        let d = report_supported_opcodes(LunKind::Disk, false, 1, op::READ_10, 0).unwrap();
        assert_eq!(
            d,
            [0, 0x03, 0, 10, op::READ_10, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0xFF, 0xFF, 0],
            "support 011b, CDB size 10, usage"
        );
        // The field pointer names the REPORTING OPTIONS byte: libiscsi reads
        // INVALID FIELD without one, on MAINTENANCE IN, as "not implemented".
        assert_eq!(
            report_supported_opcodes(LunKind::Disk, false, 2, op::READ_10, 0),
            Err(Sense::INVALID_FIELD_IN_CDB.at_cdb_byte(2))
        );
        // GET LBA STATUS: options 2 works, 1 is refused.
        let d = report_supported_opcodes(LunKind::Disk, true, 2, 0x9E, 0x12).unwrap();
        assert_eq!(&d[..6], &[0, 0x83, 0, 16, 0x9E, 0x12]);
        assert_eq!(d.len(), 4 + 16 + 12);
        assert_eq!(
            report_supported_opcodes(LunKind::Disk, false, 1, 0x9E, 0),
            Err(Sense::INVALID_FIELD_IN_CDB.at_cdb_byte(2))
        );
        // Not implemented: SUPPORT 001b, no usage data.
        assert_eq!(report_supported_opcodes(LunKind::Disk, false, 1, 0xC0, 0).unwrap(), [0, 0x01, 0, 0]);
        assert_eq!(report_supported_opcodes(LunKind::Disk, false, 2, 0x9E, 0x13).unwrap(), [0, 0x01, 0, 0]);
        assert_eq!(
            report_supported_opcodes(LunKind::Disk, false, 4, 0, 0),
            Err(Sense::INVALID_FIELD_IN_CDB.at_cdb_byte(2))
        );
        // A CD drive has no UNMAP.
        assert_eq!(
            report_supported_opcodes(LunKind::Optical, false, 1, op::UNMAP, 0).unwrap(),
            [0, 0x01, 0, 0]
        );
    }

    #[test]
    fn lookup_tells_unknown_service_actions_from_unknown_opcodes() {
        assert!(
            matches!(lookup_cdb(&[0x9E, 0x10], LunKind::Disk), Lookup::Found(r) if r.name == "READ CAPACITY(16)")
        );
        assert!(
            matches!(lookup_cdb(&[0x9E, 0x12], LunKind::Disk), Lookup::Found(r) if r.name == "GET LBA STATUS")
        );
        assert!(matches!(lookup_cdb(&[0x9E, 0x13], LunKind::Disk), Lookup::UnknownServiceAction));
        assert!(matches!(lookup_cdb(&[0x9E, 0x10], LunKind::Optical), Lookup::Found(_)));
        assert!(matches!(lookup_cdb(&[0x9E, 0x12], LunKind::Optical), Lookup::UnknownServiceAction));
        assert!(matches!(lookup_cdb(&[op::SEND_KEY, 0x0C], LunKind::Optical), Lookup::UnknownOpcode));
        assert!(matches!(lookup_cdb(&[op::REPORT_KEY], LunKind::Optical), Lookup::UnknownOpcode));
        assert!(matches!(lookup_cdb(&[op::UNMAP], LunKind::Optical), Lookup::UnknownOpcode));
        assert!(matches!(lookup_cdb(&[op::READ_TOC_PMA_ATIP], LunKind::Disk), Lookup::UnknownOpcode));
        assert!(matches!(lookup_cdb(&[], LunKind::Disk), Lookup::UnknownOpcode));
    }
}
