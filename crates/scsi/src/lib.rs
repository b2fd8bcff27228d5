//! SCSI target emulation: SBC direct-access disks and MMC CD/DVD-ROM drives.
//!
//! Transport-agnostic and sans-io with respect to the host: the transport
//! (Bulk-Only Transport here) hands in CDBs and moves data in whatever chunk
//! sizes the host's transfers have; this crate touches only the block
//! backends of its logical units.
//!
//! A command's life:
//! 1. [`Target::begin`] decodes the CDB, runs anything that needs no data
//!    stage and returns the device's intent ([`DataStage`]);
//! 2. [`Target::data_in`] / [`Target::data_out`] move that many bytes, in chunks;
//! 3. [`Target::end`] returns the status; on CHECK CONDITION the sense data
//!    is kept for the next REQUEST SENSE.
//!
//! [`Target::abort`] drops a command whose data stage the transport refused
//! (phase error, reset).

use std::io;

use vstick_media::BlockBackend;

/// The device's intent for the data stage of the command just begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum DataStage {
    /// No data stage; call [`Target::end`] next.
    None,
    /// The device has this many bytes to send to the host.
    In(u32),
    /// The device expects this many bytes from the host.
    Out(u32),
}

/// SCSI status of a completed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Status {
    Good,
    /// Sense data is available through REQUEST SENSE.
    CheckCondition,
}

/// What a logical unit emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LunKind {
    /// SBC direct-access block device (peripheral type 0), removable.
    Disk,
    /// MMC CD/DVD-ROM drive (peripheral type 5); the profile follows the medium size.
    Optical,
}

/// One logical unit as configured at start-up.
pub struct LunConfig {
    pub kind: LunKind,
    /// `None` starts the drive empty.
    pub medium: Option<Box<dyn BlockBackend>>,
    /// Unit serial number (VPD page 0x80); also used for the device identifier (VPD 0x83).
    pub serial: String,
}

/// Why an operator's media request was refused. No state changes on error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MediaError {
    #[error("LUN {lun} does not exist (this device has {count} LUNs, numbered from 0)")]
    NoSuchLun { lun: u8, count: usize },
    #[error(
        "LUN {lun}: the host has locked the medium (PREVENT ALLOW MEDIUM REMOVAL); use --force to eject anyway"
    )]
    Locked { lun: u8 },
    #[error("LUN {lun}: no medium to eject")]
    Empty { lun: u8 },
    #[error("LUN {lun}: {reason}")]
    WrongMedium { lun: u8, reason: String },
}

/// A snapshot of one logical unit for status output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunStatus {
    pub lun: u8,
    pub kind: LunKind,
    /// `None` when the drive is empty.
    pub medium: Option<String>,
    pub read_only: bool,
    pub block_size: u32,
    pub blocks: u64,
    /// The host holds PREVENT MEDIUM REMOVAL.
    pub locked: bool,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

/// The SCSI target: up to 16 logical units behind one transport.
pub struct Target {
    // implementation-defined
}

impl Target {
    /// Maximum number of logical units (BOT's 4-bit LUN field).
    pub const MAX_LUNS: usize = 16;

    /// # Panics
    /// If `luns` is empty or has more than [`Target::MAX_LUNS`] entries
    /// (the caller validates user input before this).
    pub fn new(luns: Vec<LunConfig>) -> Self {
        let _ = luns;
        todo!()
    }

    pub fn lun_count(&self) -> usize {
        todo!()
    }

    /// Starts a command for `lun`. An out-of-range `lun` yields CHECK CONDITION
    /// 05/25/00 (INQUIRY answers peripheral qualifier 3, type 0x1F).
    pub fn begin(&mut self, lun: u8, cdb: &[u8]) -> DataStage {
        let _ = (lun, cdb);
        todo!()
    }

    /// Fills `buf` with the next `buf.len()` bytes of the data-in stage
    /// (never more than what remains of [`DataStage::In`]). A backend error
    /// zero-fills and makes the command end with CHECK CONDITION 03/11/00.
    pub fn data_in(&mut self, buf: &mut [u8]) {
        let _ = buf;
        todo!()
    }

    /// Consumes the next bytes of the data-out stage (never more than what
    /// remains of [`DataStage::Out`]).
    pub fn data_out(&mut self, data: &[u8]) {
        let _ = data;
        todo!()
    }

    /// Completes the current command (FUA writes are made durable here).
    /// If the transport moved fewer bytes than the intent, the command still
    /// ends; what was moved is what counts.
    pub fn end(&mut self) -> Status {
        todo!()
    }

    /// Drops the current command without a status (transport phase error).
    pub fn abort(&mut self) {
        todo!()
    }

    /// Bus / Bulk-Only Mass Storage reset: aborts the current command and
    /// raises UNIT ATTENTION 06/29/00 on every LUN.
    pub fn reset(&mut self) {
        todo!()
    }

    /// Operator eject. Refused while the host holds the lock unless `force`.
    pub fn eject(&mut self, lun: u8, force: bool) -> Result<(), MediaError> {
        let _ = (lun, force);
        todo!()
    }

    /// Operator insert; swaps if a medium is present (eject, then insert).
    pub fn insert(&mut self, lun: u8, medium: Box<dyn BlockBackend>) -> Result<(), MediaError> {
        let _ = (lun, medium);
        todo!()
    }

    pub fn status(&self) -> Vec<LunStatus> {
        todo!()
    }

    /// Flushes every writable medium (before exit).
    pub fn flush(&mut self) -> io::Result<()> {
        todo!()
    }
}
