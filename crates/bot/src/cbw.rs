//! Command Block Wrapper (BOT 1.0 §5.1): the 31-byte bulk OUT transfer that
//! starts every command.

/// Exact length of a CBW transfer (BOT §5.1: "31 bytes").
pub const CBW_LEN: usize = 31;
/// dCBWSignature, "USBC" little-endian.
pub const CBW_SIGNATURE: u32 = 0x4342_5355;
/// Largest command block the CBWCB field can carry.
pub const MAX_CB_LEN: usize = 16;

/// bmCBWFlags bit 7: data-in (device to host).
const FLAG_DIRECTION_IN: u8 = 0x80;

/// Why a bulk OUT transfer is not a valid and meaningful CBW (BOT §6.2).
/// Any of these wedges the device until a Bulk-Only Mass Storage Reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CbwError {
    /// §6.2.1: a valid CBW is exactly 31 bytes.
    #[error("CBW transfer is {0} bytes, expected exactly 31")]
    WrongLength(usize),
    /// §6.2.1: dCBWSignature must be 0x43425355.
    #[error("CBW signature {0:#010x}, expected 0x43425355")]
    BadSignature(u32),
    /// §6.2.2: reserved bits of bmCBWFlags (6:0), bCBWLUN (7:4) or
    /// bCBWCBLength (7:5) are set.
    #[error("CBW reserved bits set (flags {flags:#04x}, LUN byte {lun:#04x}, CB length byte {cb_len:#04x})")]
    ReservedBits {
        /// bmCBWFlags.
        flags: u8,
        /// The bCBWLUN byte.
        lun: u8,
        /// The bCBWCBLength byte.
        cb_len: u8,
    },
    /// §5.1: bCBWCBLength is 1..=16.
    #[error("CBW command block length {0}, expected 1..=16")]
    CbLength(u8),
}

/// A parsed, valid and meaningful CBW.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cbw {
    /// dCBWTag, echoed in the CSW.
    pub tag: u32,
    /// dCBWDataTransferLength: the host's expectation H.
    pub data_transfer_length: u32,
    /// bmCBWFlags bit 7; meaningless when `data_transfer_length` is 0 (§5.1).
    pub direction_in: bool,
    /// bCBWLUN (0..=15). A LUN above GET MAX LUN is still a meaningful CBW:
    /// the SCSI target answers it with 05/25/00.
    pub lun: u8,
    cb: [u8; MAX_CB_LEN],
    cb_len: u8,
}

impl Cbw {
    /// Builds a CBW (host side, tests). `None` if `lun > 15` or `cb` is not 1..=16 bytes.
    pub fn new(tag: u32, data_transfer_length: u32, direction_in: bool, lun: u8, cb: &[u8]) -> Option<Self> {
        if lun > 0x0F || cb.is_empty() || cb.len() > MAX_CB_LEN {
            return None;
        }
        let mut block = [0u8; MAX_CB_LEN];
        block.get_mut(..cb.len())?.copy_from_slice(cb);
        Some(Self { tag, data_transfer_length, direction_in, lun, cb: block, cb_len: cb.len() as u8 })
    }

    /// Parses one bulk OUT transfer as a CBW (§6.2.1 valid, §6.2.2 meaningful).
    pub fn parse(bytes: &[u8]) -> Result<Self, CbwError> {
        let raw: &[u8; CBW_LEN] = bytes.try_into().map_err(|_| CbwError::WrongLength(bytes.len()))?;
        let [s0, s1, s2, s3, t0, t1, t2, t3, l0, l1, l2, l3, flags, lun, cb_len, cb @ ..] = *raw;
        let signature = u32::from_le_bytes([s0, s1, s2, s3]);
        if signature != CBW_SIGNATURE {
            return Err(CbwError::BadSignature(signature));
        }
        if flags & !FLAG_DIRECTION_IN != 0 || lun & 0xF0 != 0 || cb_len & 0xE0 != 0 {
            return Err(CbwError::ReservedBits { flags, lun, cb_len });
        }
        if cb_len == 0 || usize::from(cb_len) > MAX_CB_LEN {
            return Err(CbwError::CbLength(cb_len));
        }
        Ok(Self {
            tag: u32::from_le_bytes([t0, t1, t2, t3]),
            data_transfer_length: u32::from_le_bytes([l0, l1, l2, l3]),
            direction_in: flags & FLAG_DIRECTION_IN != 0,
            lun,
            cb,
            cb_len,
        })
    }

    /// The command block (CDB), bCBWCBLength bytes.
    pub fn cb(&self) -> &[u8] {
        self.cb.get(..usize::from(self.cb_len)).unwrap_or(&self.cb)
    }

    /// The 31 wire bytes.
    pub fn to_bytes(&self) -> [u8; CBW_LEN] {
        let flags = if self.direction_in { FLAG_DIRECTION_IN } else { 0 };
        let fields = CBW_SIGNATURE
            .to_le_bytes()
            .into_iter()
            .chain(self.tag.to_le_bytes())
            .chain(self.data_transfer_length.to_le_bytes())
            .chain([flags, self.lun, self.cb_len])
            .chain(self.cb);
        let mut out = [0u8; CBW_LEN];
        for (dst, src) in out.iter_mut().zip(fields) {
            *dst = src;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// READ(10) of 8 blocks at LBA 0x12345678, LUN 2, tag 0xdeadbeef, 4096 bytes in.
    const READ10_CBW: [u8; 31] = [
        0x55, 0x53, 0x42, 0x43, // dCBWSignature "USBC"
        0xef, 0xbe, 0xad, 0xde, // dCBWTag 0xdeadbeef
        0x00, 0x10, 0x00, 0x00, // dCBWDataTransferLength 4096
        0x80, // bmCBWFlags: data-in
        0x02, // bCBWLUN 2
        0x0a, // bCBWCBLength 10
        0x28, 0x00, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x08, 0x00, // READ(10) LBA 0x12345678, 8 blocks
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // CBWCB padding to 16 bytes
    ];

    #[test]
    fn parses_a_valid_cbw() {
        let cbw = Cbw::parse(&READ10_CBW).unwrap();
        assert_eq!(cbw.tag, 0xdead_beef);
        assert_eq!(cbw.data_transfer_length, 4096);
        assert!(cbw.direction_in);
        assert_eq!(cbw.lun, 2);
        assert_eq!(cbw.cb(), &[0x28, 0x00, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x08, 0x00]);
    }

    #[test]
    fn round_trips_through_new_and_to_bytes() {
        let cbw =
            Cbw::new(0xdead_beef, 4096, true, 2, &[0x28, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 8, 0]).unwrap();
        assert_eq!(cbw.to_bytes(), READ10_CBW);
        assert_eq!(Cbw::parse(&cbw.to_bytes()), Ok(cbw));
    }

    #[test]
    fn out_direction_and_zero_length() {
        let mut raw = READ10_CBW;
        raw[12] = 0x00; // bmCBWFlags: data-out
        raw[8..12].copy_from_slice(&0u32.to_le_bytes());
        let cbw = Cbw::parse(&raw).unwrap();
        assert!(!cbw.direction_in);
        assert_eq!(cbw.data_transfer_length, 0);
    }

    #[test]
    fn wrong_signature_is_invalid() {
        let mut raw = READ10_CBW;
        raw[3] = 0x44; // "USBD"
        assert_eq!(Cbw::parse(&raw), Err(CbwError::BadSignature(0x4442_5355)));
        // The CSW signature in a CBW is invalid too.
        raw[0..4].copy_from_slice(&0x5342_5355u32.to_le_bytes());
        assert_eq!(Cbw::parse(&raw), Err(CbwError::BadSignature(0x5342_5355)));
    }

    #[test]
    fn wrong_lengths_are_invalid() {
        assert_eq!(Cbw::parse(&READ10_CBW[..30]), Err(CbwError::WrongLength(30)));
        let mut long = READ10_CBW.to_vec();
        long.push(0);
        assert_eq!(Cbw::parse(&long), Err(CbwError::WrongLength(32)));
        assert_eq!(Cbw::parse(&[]), Err(CbwError::WrongLength(0)));
        // Every truncation of a valid CBW is an error.
        for n in 0..CBW_LEN {
            assert_eq!(Cbw::parse(&READ10_CBW[..n]), Err(CbwError::WrongLength(n)));
        }
    }

    #[test]
    fn command_block_length_must_be_1_to_16() {
        let mut raw = READ10_CBW;
        raw[14] = 0;
        assert_eq!(Cbw::parse(&raw), Err(CbwError::CbLength(0)));
        raw[14] = 17;
        assert_eq!(Cbw::parse(&raw), Err(CbwError::CbLength(17)));
        raw[14] = 16;
        assert_eq!(Cbw::parse(&raw).unwrap().cb().len(), 16);
        raw[14] = 1;
        assert_eq!(Cbw::parse(&raw).unwrap().cb(), &[0x28]);
        // Bits 7:5 are reserved, so 0x20 is not read as a length of 0.
        raw[14] = 0x21;
        assert!(matches!(Cbw::parse(&raw), Err(CbwError::ReservedBits { .. })));
    }

    #[test]
    fn lun_field() {
        let mut raw = READ10_CBW;
        raw[13] = 15; // highest 4-bit LUN: meaningful even above GET MAX LUN
        assert_eq!(Cbw::parse(&raw).unwrap().lun, 15);
        raw[13] = 0x10; // bits 7:4 reserved
        assert_eq!(Cbw::parse(&raw), Err(CbwError::ReservedBits { flags: 0x80, lun: 0x10, cb_len: 10 }));
    }

    #[test]
    fn reserved_flag_bits_are_not_meaningful() {
        let mut raw = READ10_CBW;
        raw[12] = 0x81;
        assert!(matches!(Cbw::parse(&raw), Err(CbwError::ReservedBits { flags: 0x81, .. })));
        raw[12] = 0x40;
        assert!(matches!(Cbw::parse(&raw), Err(CbwError::ReservedBits { flags: 0x40, .. })));
    }

    #[test]
    fn new_rejects_out_of_range_fields() {
        assert!(Cbw::new(1, 0, false, 16, &[0]).is_none());
        assert!(Cbw::new(1, 0, false, 0, &[]).is_none());
        assert!(Cbw::new(1, 0, false, 0, &[0; 17]).is_none());
        assert!(Cbw::new(1, 0, false, 15, &[0; 16]).is_some());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Cbw::parse(&bytes);
        }

        #[test]
        fn round_trips(
            tag in any::<u32>(),
            len in any::<u32>(),
            dir_in in any::<bool>(),
            lun in 0u8..16,
            cb in proptest::collection::vec(any::<u8>(), 1..=16),
        ) {
            let cbw = Cbw::new(tag, len, dir_in, lun, &cb).unwrap();
            let parsed = Cbw::parse(&cbw.to_bytes()).unwrap();
            prop_assert_eq!(parsed, cbw);
            prop_assert_eq!(parsed.cb(), cb.as_slice());
        }
    }
}
