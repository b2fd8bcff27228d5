//! Command Status Wrapper (BOT 1.0 §5.2): the 13-byte bulk IN transfer that
//! ends every command.

/// Exact length of a CSW (§5.2).
pub const CSW_LEN: usize = 13;
/// dCSWSignature, "USBS" little-endian.
pub const CSW_SIGNATURE: u32 = 0x5342_5355;

/// bCSWStatus (§5.2, Table 5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CswStatus {
    /// 00h Command Passed ("good status").
    Passed,
    /// 01h Command Failed: the host issues REQUEST SENSE.
    Failed,
    /// 02h Phase Error: the host does a Reset Recovery.
    PhaseError,
}

impl CswStatus {
    /// The bCSWStatus byte.
    pub fn code(self) -> u8 {
        match self {
            CswStatus::Passed => 0x00,
            CswStatus::Failed => 0x01,
            CswStatus::PhaseError => 0x02,
        }
    }

    /// The status of a bCSWStatus byte; `None` for the reserved values 03h..FFh.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0x00 => Some(CswStatus::Passed),
            0x01 => Some(CswStatus::Failed),
            0x02 => Some(CswStatus::PhaseError),
            _ => None,
        }
    }
}

impl From<vstick_scsi::Status> for CswStatus {
    fn from(status: vstick_scsi::Status) -> Self {
        match status {
            vstick_scsi::Status::Good => CswStatus::Passed,
            vstick_scsi::Status::CheckCondition => CswStatus::Failed,
        }
    }
}

/// Why 13 bytes are not a CSW (host side, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CswError {
    /// §5.2: a CSW is exactly 13 bytes.
    #[error("CSW is {0} bytes, expected exactly 13")]
    WrongLength(usize),
    /// §5.2: dCSWSignature must be 0x53425355.
    #[error("CSW signature {0:#010x}, expected 0x53425355")]
    BadSignature(u32),
    /// §5.2: bCSWStatus 03h..FFh are reserved.
    #[error("CSW status {0:#04x} is reserved")]
    BadStatus(u8),
}

/// A Command Status Wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Csw {
    /// dCSWTag: the dCBWTag of the command.
    pub tag: u32,
    /// dCSWDataResidue: H minus the data the device processed (§6.7).
    pub residue: u32,
    /// bCSWStatus.
    pub status: CswStatus,
}

impl Csw {
    /// The 13 wire bytes.
    pub fn to_bytes(&self) -> [u8; CSW_LEN] {
        let [s0, s1, s2, s3] = CSW_SIGNATURE.to_le_bytes();
        let [t0, t1, t2, t3] = self.tag.to_le_bytes();
        let [r0, r1, r2, r3] = self.residue.to_le_bytes();
        [s0, s1, s2, s3, t0, t1, t2, t3, r0, r1, r2, r3, self.status.code()]
    }

    /// Parses a CSW as the host receives it.
    pub fn parse(bytes: &[u8]) -> Result<Self, CswError> {
        let raw: &[u8; CSW_LEN] = bytes.try_into().map_err(|_| CswError::WrongLength(bytes.len()))?;
        let [s0, s1, s2, s3, t0, t1, t2, t3, r0, r1, r2, r3, status] = *raw;
        let signature = u32::from_le_bytes([s0, s1, s2, s3]);
        if signature != CSW_SIGNATURE {
            return Err(CswError::BadSignature(signature));
        }
        Ok(Self {
            tag: u32::from_le_bytes([t0, t1, t2, t3]),
            residue: u32::from_le_bytes([r0, r1, r2, r3]),
            status: CswStatus::from_code(status).ok_or(CswError::BadStatus(status))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_byte_exact_csw() {
        let csw = Csw { tag: 0xdead_beef, residue: 0x0102_0304, status: CswStatus::Failed };
        assert_eq!(
            csw.to_bytes(),
            [
                0x55, 0x53, 0x42, 0x53, // dCSWSignature "USBS"
                0xef, 0xbe, 0xad, 0xde, // dCSWTag echoed
                0x04, 0x03, 0x02, 0x01, // dCSWDataResidue 0x01020304
                0x01, // bCSWStatus: command failed
            ]
        );
        let passed = Csw { tag: 1, residue: 0, status: CswStatus::Passed }.to_bytes();
        assert_eq!(passed, [0x55, 0x53, 0x42, 0x53, 1, 0, 0, 0, 0, 0, 0, 0, 0x00]);
        let phase = Csw { tag: 2, residue: 512, status: CswStatus::PhaseError }.to_bytes();
        assert_eq!(phase, [0x55, 0x53, 0x42, 0x53, 2, 0, 0, 0, 0x00, 0x02, 0, 0, 0x02]);
    }

    #[test]
    fn parse_round_trip_and_errors() {
        let csw = Csw { tag: 7, residue: 9, status: CswStatus::PhaseError };
        assert_eq!(Csw::parse(&csw.to_bytes()), Ok(csw));
        let bytes = csw.to_bytes();
        for n in 0..CSW_LEN {
            assert_eq!(Csw::parse(&bytes[..n]), Err(CswError::WrongLength(n)));
        }
        let mut bad = bytes;
        bad[12] = 3;
        assert_eq!(Csw::parse(&bad), Err(CswError::BadStatus(3)));
        bad[0] = 0;
        assert_eq!(Csw::parse(&bad), Err(CswError::BadSignature(0x5342_5300)));
    }

    #[test]
    fn scsi_status_maps_to_csw_status() {
        assert_eq!(CswStatus::from(vstick_scsi::Status::Good), CswStatus::Passed);
        assert_eq!(CswStatus::from(vstick_scsi::Status::CheckCondition), CswStatus::Failed);
    }
}
