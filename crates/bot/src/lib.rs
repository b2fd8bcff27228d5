//! USB Mass Storage Class Bulk-Only Transport 1.0, device side, sans-io.
//!
//! [`BulkOnly`] turns bulk OUT/IN transfers into SCSI commands on a
//! [`CommandTarget`] and back, enforcing the thirteen host/device cases of
//! BOT §6.7: stalls, residues and phase errors. It owns no sockets or files;
//! a USB transport calls it with each transfer's bytes.
//!
//! Choices where the specification leaves room or real hosts decide:
//! - **Early IN transfers** (before a CBW, or during a data-out stage) get
//!   [`InResult::Pending`]: the transport holds them like a NAK (§5.3).
//! - **Invalid CBW** (wrong length or signature, reserved bits set, CB length
//!   outside 1..=16): the OUT transfer and everything after it on both bulk
//!   endpoints stall until a Bulk-Only Mass Storage Reset; CLEAR_FEATURE
//!   alone does not lift it (§6.6.1). A LUN above GET MAX LUN is *not* invalid:
//!   the target answers it with 05/25/00.
//! - **Bulk-Only reset** aborts the command in flight only ([`CommandTarget::abort`]),
//!   no SCSI unit attention, as QEMU and the Linux gadget do; a USB port reset
//!   (in the USB layer) is what raises 06/29/00.
//! - **CSW into an IN buffer under 13 bytes** (no real host does this): the
//!   part that fits is sent and the rest follows on the next IN, so nothing
//!   is lost and nothing is invented.
//! - **Host expects more data-in than the device has** (cases 4 and 5): the
//!   device pads with zeros up to H and reports the residue without the pad
//!   bytes (§6.7.2 permits padding instead of a stall). SeaBIOS counts a short
//!   packet as a failed transfer and never clears a halt, so a stall or short
//!   packet would leave the device unusable until the OS resets it; QEMU's
//!   usb-storage pads too. The bulk-in pipe stalls only for case 8 (a
//!   direction mismatch, a phase error) and invalid CBWs.
//! - **Residue** is H minus the bytes the device processed (sent, or taken
//!   into the target); for phase errors the host ignores it.
//! - **OUT transfers while data-in or a CSW is pending** stall the OUT
//!   endpoint; the host recovers with a Reset Recovery.
//! - **Write-behind** ([`BulkOnly::bulk_out_owned`]): data-out bytes may be
//!   accepted before the target has them, as a real stick acknowledges
//!   packets into its buffer; the CSW waits for the target's outcome, and
//!   every later call delivers them first.

#![warn(missing_docs)]

mod bulk_only;
mod cbw;
mod csw;

pub use bulk_only::BulkOnly;
pub use cbw::{CBW_LEN, CBW_SIGNATURE, Cbw, CbwError, MAX_CB_LEN};
pub use csw::{CSW_LEN, CSW_SIGNATURE, Csw, CswError, CswStatus};

use vstick_scsi::{DataStage, Status};

/// The command set behind the transport (implemented by [`vstick_scsi::Target`]).
pub trait CommandTarget {
    /// Highest LUN number (GET MAX LUN).
    fn max_lun(&self) -> u8;
    /// Starts the command in `cdb` (the CBWCB) for `lun`; says which data stage it wants.
    fn begin(&mut self, lun: u8, cdb: &[u8]) -> DataStage;
    /// Fills `buf` with the next bytes of the data-in stage.
    fn data_in(&mut self, buf: &mut [u8]);
    /// Consumes the next bytes of the data-out stage.
    fn data_out(&mut self, data: &[u8]);
    /// Completes the command; its status becomes bCSWStatus.
    fn end(&mut self) -> Status;
    /// Drops the current command without a status (phase error).
    fn abort(&mut self);
    /// Bulk-Only Mass Storage Reset or bus reset: abort and report the reset to the host.
    fn reset(&mut self);
}

impl CommandTarget for vstick_scsi::Target {
    fn max_lun(&self) -> u8 {
        u8::try_from(self.lun_count().saturating_sub(1)).unwrap_or(15)
    }
    fn begin(&mut self, lun: u8, cdb: &[u8]) -> DataStage {
        vstick_scsi::Target::begin(self, lun, cdb)
    }
    fn data_in(&mut self, buf: &mut [u8]) {
        vstick_scsi::Target::data_in(self, buf)
    }
    fn data_out(&mut self, data: &[u8]) {
        vstick_scsi::Target::data_out(self, data)
    }
    fn end(&mut self) -> Status {
        vstick_scsi::Target::end(self)
    }
    fn abort(&mut self) {
        vstick_scsi::Target::abort(self)
    }
    fn reset(&mut self) {
        vstick_scsi::Target::reset(self)
    }
}

/// Result of a bulk OUT transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum OutResult {
    /// This many bytes were accepted (may be fewer than offered only when
    /// the transfer ends the data stage).
    Accepted(usize),
    /// The OUT endpoint is halted: answer STALL.
    Stall,
}

/// Result of a bulk IN transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum InResult {
    /// This many bytes at the start of the buffer are the reply (fewer than
    /// requested is a short packet that ends the host's transfer).
    Data(usize),
    /// The IN endpoint is halted: answer STALL.
    Stall,
    /// Nothing to send yet (no CBW received): hold the request (NAK) and
    /// retry after the next OUT transfer.
    Pending,
}
