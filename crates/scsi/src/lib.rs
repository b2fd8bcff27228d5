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
//!
//! READ/WRITE data is streamed straight between the transport's buffers and the
//! backend (`offset = lba * block_size + bytes already moved`); nothing the
//! size of a transfer is ever allocated. Small responses (INQUIRY, MODE SENSE,
//! READ TOC, ...) are built whole and truncated to the allocation length.
//!
//! Modules, one concern each:
//! - `opcodes`: the one opcode table (dispatch and REPORT SUPPORTED OPERATION CODES);
//! - `cdb`: total CDB decoding into typed commands;
//! - `sense`: fixed-format sense data and the per-LUN unit-attention queue;
//! - `target`: dispatch (unit attention → opcode → CDB → medium checks) and data stages;
//! - `lun`: medium, tray, lock and media-change state of one logical unit;
//! - `geometry`: which block sizes and media each kind of LUN accepts;
//! - `inquiry`, `mode`, `disk`: SPC/SBC responses;
//! - `provisioning`: thin provisioning (UNMAP, WRITE SAME, GET LBA STATUS) and VPD B0h-B2h;
//! - `compare_and_write`: COMPARE AND WRITE;
//! - `optical`, `get_configuration`, `events`: MMC responses (TOC, profiles/features, GESN).

#![warn(missing_docs)]

mod cdb;
mod compare_and_write;
mod disk;
mod events;
mod geometry;
mod get_configuration;
mod inquiry;
mod lun;
mod mode;
mod opcodes;
mod optical;
mod provisioning;
pub mod sense;
mod target;

#[cfg(test)]
mod tests;

pub use geometry::{DISK_BLOCK_SIZES, MediumError, check_block_size, check_medium};
pub use sense::Sense;
pub use target::{Target, TargetError};
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
    /// GOOD: the command completed.
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
    /// Disk or CD/DVD drive.
    pub kind: LunKind,
    /// `None` starts the drive empty.
    pub medium: Option<Box<dyn BlockBackend>>,
    /// Unit serial number (VPD page 0x80); also used for the device identifier (VPD 0x83).
    pub serial: String,
}

/// Why an operator's media request was refused. No state changes on error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaError {
    /// The LUN number is beyond the configured LUNs.
    #[error("LUN {lun} does not exist (this device has {count} LUNs, numbered from 0)")]
    NoSuchLun {
        /// The LUN asked for.
        lun: u8,
        /// How many LUNs the device has.
        count: usize,
    },
    /// The host holds PREVENT MEDIUM REMOVAL and the request was not forced.
    #[error(
        "LUN {lun}: the host has locked the medium (PREVENT ALLOW MEDIUM REMOVAL); use --force to eject anyway"
    )]
    Locked {
        /// The LUN.
        lun: u8,
    },
    /// A swap (without force) of a medium the host has locked.
    #[error(
        "LUN {lun}: the host has locked the medium (PREVENT ALLOW MEDIUM REMOVAL); use --force to swap anyway"
    )]
    SwapLocked {
        /// The LUN.
        lun: u8,
    },
    /// Eject of a drive that has no medium.
    #[error("LUN {lun}: no medium to eject")]
    Empty {
        /// The LUN.
        lun: u8,
    },
    /// The new medium does not suit the LUN (block size, or no whole block).
    #[error("LUN {lun}: {reason}")]
    WrongMedium {
        /// The LUN.
        lun: u8,
        /// What does not fit.
        reason: String,
    },
}

/// A snapshot of one logical unit for status output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunStatus {
    /// The LUN number.
    pub lun: u8,
    /// Disk or CD/DVD drive.
    pub kind: LunKind,
    /// `None` when the drive is empty (or the host has opened the tray).
    pub medium: Option<String>,
    /// The medium is write-protected (writes fail with DATA PROTECT).
    pub read_only: bool,
    /// Logical block size in bytes, as READ CAPACITY reports it.
    pub block_size: u32,
    /// Number of logical blocks; 0 when empty.
    pub blocks: u64,
    /// The host holds PREVENT MEDIUM REMOVAL.
    pub locked: bool,
    /// Bytes the host has read from this LUN since start-up.
    pub bytes_read: u64,
    /// Bytes the host has written to this LUN since start-up.
    pub bytes_written: u64,
}
