//! Sense data (SPC-4 §4.5.3, fixed format) and the per-LUN unit-attention queue.

use std::collections::VecDeque;

/// One KEY/ASC/ASCQ triple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sense {
    /// SENSE KEY: the class of the condition ([`key`]).
    pub key: u8,
    /// ADDITIONAL SENSE CODE: the condition within the key.
    pub asc: u8,
    /// ADDITIONAL SENSE CODE QUALIFIER: detail of the ASC.
    pub ascq: u8,
    /// The CDB byte an ILLEGAL REQUEST is about (SPC-4 §4.5.2.4.2, the
    /// sense-key specific field pointer), when it helps the host tell "this
    /// field" from "this command": libiscsi reads INVALID FIELD IN CDB without
    /// a pointer, on a command with service actions, as "not implemented".
    pub cdb_byte: Option<u8>,
}

/// Sense keys (SPC-4 table 48).
pub mod key {
    /// No condition to report.
    pub const NO_SENSE: u8 = 0x00;
    /// The logical unit cannot be accessed now (e.g. no medium).
    pub const NOT_READY: u8 = 0x02;
    /// The command failed on a flaw in the medium or its data (here: the backend's I/O error).
    pub const MEDIUM_ERROR: u8 = 0x03;
    /// The CDB or parameter data is invalid; nothing was done.
    pub const ILLEGAL_REQUEST: u8 = 0x05;
    /// The unit changed state (medium change, reset); the host must revalidate.
    pub const UNIT_ATTENTION: u8 = 0x06;
    /// A write to a write-protected medium.
    pub const DATA_PROTECT: u8 = 0x07;
    /// VERIFY (BYTCHK) found the medium's data differing from the host's.
    pub const MISCOMPARE: u8 = 0x0E;
}

impl Sense {
    /// The triple KEY/ASC/ASCQ.
    pub const fn new(key: u8, asc: u8, ascq: u8) -> Self {
        Self { key, asc, ascq, cdb_byte: None }
    }

    /// The same condition, pointing at CDB byte `byte` (SKSV, C/D = CDB).
    pub const fn at_cdb_byte(self, byte: u8) -> Self {
        Self { cdb_byte: Some(byte), ..self }
    }

    /// 00/00/00: no additional sense information.
    pub const NO_SENSE: Sense = Sense::new(key::NO_SENSE, 0x00, 0x00);
    /// 02/3A/00: TUR/READ/READ CAPACITY on an empty drive (not 02/04/xx, which
    /// makes hosts wait for the unit to become ready).
    pub const MEDIUM_NOT_PRESENT: Sense = Sense::new(key::NOT_READY, 0x3A, 0x00);
    /// 03/11/00 UNRECOVERED READ ERROR: the backend failed a read.
    pub const UNRECOVERED_READ_ERROR: Sense = Sense::new(key::MEDIUM_ERROR, 0x11, 0x00);
    /// 03/0C/00 WRITE ERROR: the backend failed a write or flush.
    pub const WRITE_ERROR: Sense = Sense::new(key::MEDIUM_ERROR, 0x0C, 0x00);
    /// 05/1A/00 PARAMETER LIST LENGTH ERROR: the parameter list length does not fit the data.
    pub const PARAMETER_LIST_LENGTH_ERROR: Sense = Sense::new(key::ILLEGAL_REQUEST, 0x1A, 0x00);
    /// 05/26/00 INVALID FIELD IN PARAMETER LIST: UNMAP naming more than the limits allow.
    pub const INVALID_FIELD_IN_PARAMETER_LIST: Sense = Sense::new(key::ILLEGAL_REQUEST, 0x26, 0x00);
    /// 05/20/00 INVALID COMMAND OPERATION CODE: an opcode this LUN does not implement.
    pub const INVALID_OPCODE: Sense = Sense::new(key::ILLEGAL_REQUEST, 0x20, 0x00);
    /// 05/21/00 LOGICAL BLOCK ADDRESS OUT OF RANGE: LBA + length beyond the medium.
    pub const LBA_OUT_OF_RANGE: Sense = Sense::new(key::ILLEGAL_REQUEST, 0x21, 0x00);
    /// 05/24/00 INVALID FIELD IN CDB: a CDB field has a value not supported.
    pub const INVALID_FIELD_IN_CDB: Sense = Sense::new(key::ILLEGAL_REQUEST, 0x24, 0x00);
    /// 05/25/00 LOGICAL UNIT NOT SUPPORTED: the CBW addressed a LUN that does not exist.
    pub const LUN_NOT_SUPPORTED: Sense = Sense::new(key::ILLEGAL_REQUEST, 0x25, 0x00);
    /// 05/30/02 CANNOT READ MEDIUM - INCOMPATIBLE FORMAT: DVD structures asked of CD media.
    pub const INCOMPATIBLE_FORMAT: Sense = Sense::new(key::ILLEGAL_REQUEST, 0x30, 0x02);
    /// 05/64/00 ILLEGAL MODE FOR THIS TRACK: READ CD asking for audio or mode 2 sectors.
    pub const ILLEGAL_MODE_FOR_TRACK: Sense = Sense::new(key::ILLEGAL_REQUEST, 0x64, 0x00);
    /// 05/39/00 SAVING PARAMETERS NOT SUPPORTED: MODE SENSE asked for saved values.
    pub const SAVING_NOT_SUPPORTED: Sense = Sense::new(key::ILLEGAL_REQUEST, 0x39, 0x00);
    /// 05/53/02 MEDIUM REMOVAL PREVENTED: eject while the host holds PREVENT MEDIUM REMOVAL.
    pub const MEDIUM_REMOVAL_PREVENTED: Sense = Sense::new(key::ILLEGAL_REQUEST, 0x53, 0x02);
    /// 06/28/00 NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED: a medium was loaded.
    pub const MEDIUM_CHANGED: Sense = Sense::new(key::UNIT_ATTENTION, 0x28, 0x00);
    /// 06/29/00 POWER ON, RESET, OR BUS DEVICE RESET OCCURRED.
    pub const POWER_ON_RESET: Sense = Sense::new(key::UNIT_ATTENTION, 0x29, 0x00);
    /// 06/3A/00: QEMU reports this first on a medium swap, then 06/28/00.
    pub const MEDIUM_REMOVED: Sense = Sense::new(key::UNIT_ATTENTION, 0x3A, 0x00);
    /// 07/27/00 WRITE PROTECTED: a write to a read-only medium.
    pub const WRITE_PROTECTED: Sense = Sense::new(key::DATA_PROTECT, 0x27, 0x00);
    /// 0E/1D/00 MISCOMPARE DURING VERIFY OPERATION.
    pub const MISCOMPARE_DURING_VERIFY: Sense = Sense::new(key::MISCOMPARE, 0x1D, 0x00);

    /// Length of fixed-format sense data with ADDITIONAL SENSE LENGTH 0x0A.
    pub const FIXED_LEN: usize = 18;

    /// Fixed-format sense data (SPC-4 §4.5.3, table 45).
    pub fn fixed(self) -> [u8; Self::FIXED_LEN] {
        let mut b = [0u8; Self::FIXED_LEN];
        b[0] = 0x70; // current error, fixed format, VALID=0 (no INFORMATION)
        b[2] = self.key & 0x0F;
        b[7] = 0x0A; // additional sense length: bytes 8..=17
        b[12] = self.asc;
        b[13] = self.ascq;
        if let Some(byte) = self.cdb_byte {
            b[15] = 0x80 | 0x40; // SKSV, C/D = 1: the field is in the CDB; BPV = 0
            b[17] = byte; // FIELD POINTER (bytes 16-17, big-endian)
        }
        b
    }

    /// Whether the key is UNIT ATTENTION.
    pub fn is_unit_attention(self) -> bool {
        self.key == key::UNIT_ATTENTION
    }
}

impl std::fmt::Display for Sense {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02X}/{:02X}/{:02X}", self.key, self.asc, self.ascq)
    }
}

/// Pending unit attention conditions of one LUN, oldest first.
///
/// Bounded and free of duplicates: a host that never asks for sense cannot
/// make it grow.
#[derive(Debug, Default, Clone)]
pub(crate) struct UnitAttentions {
    queue: VecDeque<Sense>,
}

impl UnitAttentions {
    const CAPACITY: usize = 4;

    pub fn push(&mut self, sense: Sense) {
        if self.queue.contains(&sense) {
            return;
        }
        if self.queue.len() >= Self::CAPACITY {
            self.queue.pop_front();
        }
        self.queue.push_back(sense);
    }

    pub fn pop(&mut self) -> Option<Sense> {
        self.queue.pop_front()
    }

    /// Reset: POWER ON, RESET OR BUS DEVICE RESET OCCURRED supersedes what was
    /// queued (SAM-5 §6.4), but a medium change the host has not seen yet stays
    /// behind it so the host still revalidates the medium.
    pub fn reset(&mut self) {
        let kept: Vec<Sense> = self
            .queue
            .iter()
            .copied()
            .filter(|s| *s == Sense::MEDIUM_REMOVED || *s == Sense::MEDIUM_CHANGED)
            .collect();
        self.queue.clear();
        self.queue.push_back(Sense::POWER_ON_RESET);
        self.queue.extend(kept);
    }

    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_pointer_names_the_cdb_byte() {
        let b = Sense::INVALID_FIELD_IN_CDB.at_cdb_byte(2).fixed();
        // SKSV | C/D (a CDB field), no bit pointer; FIELD POINTER 2.
        assert_eq!((b[2], b[12], b[13], b[15], b[16], b[17]), (0x05, 0x24, 0x00, 0xC0, 0, 2));
        assert_eq!(Sense::INVALID_FIELD_IN_CDB.fixed()[15..], [0, 0, 0]);
    }

    #[test]
    fn fixed_format_layout() {
        assert_eq!(
            Sense::LBA_OUT_OF_RANGE.fixed(),
            [
                0x70, // response code: current, fixed
                0x00, // obsolete
                0x05, // sense key ILLEGAL REQUEST
                0, 0, 0, 0,    // information
                0x0A, // additional sense length
                0, 0, 0, 0,    // command-specific information
                0x21, // ASC: LBA out of range
                0x00, // ASCQ
                0x00, // FRU
                0, 0, 0, // sense-key specific
            ]
        );
    }

    #[test]
    fn queue_is_bounded_and_deduplicated() {
        let mut q = UnitAttentions::default();
        q.push(Sense::MEDIUM_CHANGED);
        q.push(Sense::MEDIUM_CHANGED);
        assert_eq!(q.queued(), 1);
        for asc in 0..10 {
            q.push(Sense::new(6, asc, 0));
        }
        assert_eq!(q.queued(), UnitAttentions::CAPACITY);
    }

    #[test]
    fn reset_keeps_medium_change_behind_power_on() {
        let mut q = UnitAttentions::default();
        q.push(Sense::new(6, 0x2A, 0x09));
        q.push(Sense::MEDIUM_REMOVED);
        q.push(Sense::MEDIUM_CHANGED);
        q.reset();
        assert_eq!(q.pop(), Some(Sense::POWER_ON_RESET));
        assert_eq!(q.pop(), Some(Sense::MEDIUM_REMOVED));
        assert_eq!(q.pop(), Some(Sense::MEDIUM_CHANGED));
        assert_eq!(q.pop(), None);
    }
}
