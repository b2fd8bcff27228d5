//! The Bulk-Only Transport state machine (BOT 1.0 §5, §6): CBW → optional
//! data stage → CSW, with the thirteen host/device cases of §6.7.
//!
//! H is the host's expectation (dCBWDataTransferLength and direction), D the
//! device's intent ([`DataStage`] from `begin`). The case numbers in comments
//! are those of §6.7 / Figure 6.1.

use tracing::{debug, warn};
use vstick_scsi::DataStage;

use crate::cbw::Cbw;
use crate::csw::{CSW_LEN, Csw, CswStatus};
use crate::{CommandTarget, InResult, OutResult};

/// Bulk-Only Transport state for one interface.
#[derive(Debug, Default)]
pub struct BulkOnly {
    phase: Phase,
    /// Data-out bytes accepted by [`BulkOnly::bulk_out_owned`] and not yet
    /// given to the target; delivered before anything else happens.
    deferred: Option<DeferredOut>,
    /// The buffer of the last delivered deferred transfer, for reuse.
    spare: Option<Vec<u8>>,
    halted_in: bool,
    halted_out: bool,
    /// §6.6.1: after an invalid CBW both pipes stay stalled until a
    /// Bulk-Only Mass Storage Reset; CLEAR_FEATURE alone does not help.
    wedged: bool,
}

#[derive(Debug, Default)]
enum Phase {
    /// Waiting for a CBW.
    #[default]
    Idle,
    DataIn(DataIn),
    DataOut(DataOut),
    /// The CSW is ready; the next IN transfer(s) carry it.
    Status(PendingCsw),
}

/// A data-in stage. It always moves exactly H bytes: the device's data,
/// then zero padding up to H when the device has less (cases 4 and 5).
#[derive(Debug)]
struct DataIn {
    tag: u32,
    host_len: u32,
    /// Bytes the host still expects (H minus what was sent, padding included).
    host_remaining: u32,
    /// The device's data in this stage: min(D, H).
    device_len: u32,
    /// Bytes of it still to send (never more than `host_remaining`).
    device_remaining: u32,
    /// Case 7 (Hi < Di): only the first H bytes go out, then a phase error.
    phase_error: bool,
}

#[derive(Debug)]
struct DataOut {
    tag: u32,
    host_len: u32,
    /// Bytes the host still sends.
    host_remaining: u32,
    /// Bytes the target still takes; the rest is discarded (cases 9, 11, 13).
    device_remaining: u32,
    /// Bytes forwarded to the target so far.
    taken: u32,
    /// `None`: the command is open, `end()` gives the status once the host's
    /// data is in. `Some`: already ended or aborted (case 13).
    decided: Option<CswStatus>,
}

#[derive(Debug)]
struct DeferredOut {
    buf: Vec<u8>,
    /// The bytes for the target (empty when the stage discards them).
    forward: std::ops::Range<usize>,
    /// The host's last byte of the stage is in: the CSW follows delivery.
    ends_stage: bool,
}

#[derive(Debug)]
struct PendingCsw {
    bytes: [u8; CSW_LEN],
    sent: usize,
}

impl PendingCsw {
    fn new(tag: u32, residue: u32, status: CswStatus) -> Self {
        Self { bytes: Csw { tag, residue, status }.to_bytes(), sent: 0 }
    }
}

/// The device's intent with empty data stages folded into `None`: a target
/// announcing `In(0)`/`Out(0)` has nothing to move.
enum Intent {
    None,
    In(u32),
    Out(u32),
}

impl From<DataStage> for Intent {
    fn from(stage: DataStage) -> Self {
        match stage {
            DataStage::None | DataStage::In(0) | DataStage::Out(0) => Intent::None,
            DataStage::In(n) => Intent::In(n),
            DataStage::Out(n) => Intent::Out(n),
        }
    }
}

/// `usize` to `u32`, saturating; only ever compared with or subtracted from
/// `u32` counts after a `min`.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl BulkOnly {
    /// Idle, waiting for a CBW.
    pub fn new() -> Self {
        Self::default()
    }

    /// A bulk OUT transfer (a CBW or data-out bytes).
    pub fn bulk_out(&mut self, target: &mut impl CommandTarget, data: &[u8]) -> OutResult {
        self.deliver_deferred(target);
        if self.halted_out {
            return OutResult::Stall;
        }
        match &mut self.phase {
            Phase::Idle => self.receive_cbw(target, data),
            Phase::DataOut(stage) => {
                let (accepted, done) = stage.receive(target, data);
                if done {
                    self.finish_data_out(target);
                }
                OutResult::Accepted(accepted)
            }
            Phase::DataIn(_) | Phase::Status(_) => {
                // The host sends while the device has data or a CSW to send:
                // not a CBW it may send now (§5.3). Stall; the host's recovery
                // is a Reset Recovery.
                warn!(len = data.len(), "bulk OUT while the device expects an IN transfer; stalling");
                self.halted_out = true;
                OutResult::Stall
            }
        }
    }

    /// A bulk OUT transfer of `buf[range]` whose target work may wait: during
    /// a data-out stage the transfer is accepted at once and `buf` is kept
    /// until [`BulkOnly::run_deferred`], so a transport can send the USB-level
    /// completion before the target writes (a real stick acknowledges packets
    /// into its buffer too; the CSW still reports the write's outcome). Any
    /// other call on this `BulkOnly` delivers kept bytes first, so the order
    /// of effects is that of [`BulkOnly::bulk_out`]. Returns `buf` unless kept.
    pub fn bulk_out_owned(
        &mut self,
        target: &mut impl CommandTarget,
        buf: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> (OutResult, Option<Vec<u8>>) {
        self.deliver_deferred(target);
        let len = buf.get(range.clone()).map_or(0, <[u8]>::len);
        match &mut self.phase {
            Phase::DataOut(stage) if !self.halted_out && len > 0 => {
                let (accepted, forward, ends_stage) = stage.take(len);
                let start = range.start;
                self.deferred = Some(DeferredOut { buf, forward: start..start + forward, ends_stage });
                (OutResult::Accepted(accepted), None)
            }
            _ => {
                let result = self.bulk_out(target, buf.get(range).unwrap_or_default());
                (result, Some(buf))
            }
        }
    }

    /// Gives kept data-out bytes to the target (ending the stage if they were
    /// its last) and returns a buffer the caller may reuse.
    pub fn run_deferred(&mut self, target: &mut impl CommandTarget) -> Option<Vec<u8>> {
        self.deliver_deferred(target);
        self.spare.take()
    }

    /// Delivers kept data-out bytes (keeping their buffer for [`BulkOnly::run_deferred`]);
    /// every other entry point starts here.
    pub fn deliver_deferred(&mut self, target: &mut impl CommandTarget) {
        if let Some(DeferredOut { buf, forward, ends_stage }) = self.deferred.take() {
            if let Some(chunk) = buf.get(forward).filter(|c| !c.is_empty()) {
                target.data_out(chunk);
            }
            if ends_stage {
                self.finish_data_out(target);
            }
            self.spare = Some(buf);
        }
    }

    /// Whether a [`BulkOnly::bulk_out_owned`] transfer waits for [`BulkOnly::run_deferred`].
    pub fn has_deferred(&self) -> bool {
        self.deferred.is_some()
    }

    /// How many bytes a [`BulkOnly::bulk_in`] would return now given room
    /// for all of them: the rest of the data-in stage (padding included) or
    /// of the CSW; 0 when that call would answer `Pending` or `Stall`. A
    /// transport sizes its reply buffer by this instead of by the host's
    /// request, so a held 64 MiB request costs nothing while the device has
    /// nothing to send.
    pub fn in_available(&mut self, target: &mut impl CommandTarget) -> usize {
        self.deliver_deferred(target);
        if self.halted_in {
            return 0;
        }
        match &self.phase {
            Phase::Idle | Phase::DataOut(_) => 0,
            Phase::DataIn(stage) => stage.host_remaining as usize,
            Phase::Status(csw) => CSW_LEN.saturating_sub(csw.sent),
        }
    }

    /// How many bytes the device takes on the bulk OUT pipe now: a CBW's
    /// [`crate::CBW_LEN`] when idle, the rest of the host's data-out stage, else 0
    /// (an IN transfer comes first, or the pipe is halted). An edge whose reads
    /// complete only on a short packet or a full buffer (a USB gadget's OUT
    /// requests) sizes them by this, so a read never runs past the stage into
    /// the next CBW the host cannot send before it has the CSW. Data lent to
    /// [`BulkOnly::bulk_out_owned`] counts as taken already.
    pub fn out_wanted(&self) -> usize {
        if self.halted_out {
            return 0;
        }
        match &self.phase {
            Phase::Idle => crate::CBW_LEN,
            Phase::DataOut(stage) => stage.host_remaining as usize,
            Phase::DataIn(_) | Phase::Status(_) => 0,
        }
    }

    /// A bulk IN transfer of up to `buf.len()` bytes (data-in or the CSW).
    pub fn bulk_in(&mut self, target: &mut impl CommandTarget, buf: &mut [u8]) -> InResult {
        self.deliver_deferred(target);
        if self.halted_in {
            return InResult::Stall;
        }
        match &mut self.phase {
            // §5.3: the host may post the IN for the CSW (or data) early; the
            // device NAKs until it has something.
            Phase::Idle | Phase::DataOut(_) => InResult::Pending,
            Phase::DataIn(stage) => {
                // Cases 4 and 5 (H > D): the device's D bytes, then zeros up to
                // H, never a short packet or a stall (§6.7.2 allows padding; the
                // residue excludes the pad bytes). SeaBIOS treats a short packet
                // as a failed transfer and never clears a halt, so either one
                // would wedge the device for the rest of the firmware's life,
                // e.g. after El Torito's READ of LBA 17 fails on a tiny image.
                // QEMU's usb-storage pads the same way.
                let n = to_u32(buf.len()).min(stage.host_remaining);
                let real = n.min(stage.device_remaining);
                // real <= n <= buf.len(), so both slices exist.
                let (data, rest) = buf.split_at_mut(real as usize);
                if !data.is_empty() {
                    target.data_in(data);
                }
                rest.iter_mut().take((n - real) as usize).for_each(|b| *b = 0);
                stage.device_remaining -= real;
                stage.host_remaining -= n;
                if stage.host_remaining == 0 {
                    self.finish_data_in(target);
                }
                InResult::Data(n as usize)
            }
            Phase::Status(csw) => {
                // Real hosts read the CSW with a 13-byte (or larger) buffer. A
                // smaller one gets what fits and the rest on the next IN,
                // so no CSW byte is ever lost.
                let rest = csw.bytes.get(csw.sent..).unwrap_or_default();
                let n = rest.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                    dst.copy_from_slice(src);
                }
                csw.sent += n;
                if csw.sent >= CSW_LEN {
                    self.phase = Phase::Idle;
                }
                InResult::Data(n)
            }
        }
    }

    /// CLEAR_FEATURE(ENDPOINT_HALT) on the IN (`true`) or OUT endpoint. A
    /// device wedged by an invalid CBW stays halted until [`BulkOnly::reset`].
    pub fn clear_halt(&mut self, in_endpoint: bool) {
        if self.wedged {
            // §6.6.1: stalled "until a Reset Recovery"; the Linux gadget
            // calls this "wedging" the endpoint.
            debug!(in_endpoint, "CLEAR_FEATURE(ENDPOINT_HALT) ignored: wedged until Bulk-Only reset");
            return;
        }
        if in_endpoint {
            self.halted_in = false;
        } else {
            self.halted_out = false;
        }
    }

    /// SET_FEATURE(ENDPOINT_HALT) from the host, or a stall the device decides.
    pub fn set_halt(&mut self, in_endpoint: bool) {
        if in_endpoint {
            self.halted_in = true;
        } else {
            self.halted_out = true;
        }
    }

    /// Whether the endpoint is currently halted (GET_STATUS).
    pub fn is_halted(&self, in_endpoint: bool) -> bool {
        if in_endpoint { self.halted_in } else { self.halted_out }
    }

    /// Whether an invalid CBW has wedged the transport (cleared by [`BulkOnly::reset`]).
    pub fn is_wedged(&self) -> bool {
        self.wedged
    }

    /// Whether the transport waits for a CBW (no command or CSW outstanding).
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle)
    }

    /// Bulk-Only Mass Storage Reset (class request 0xFF): abort the current
    /// command, ready for the next CBW. Halts stay until cleared.
    ///
    /// Only the command in flight is aborted ([`CommandTarget::abort`]), not
    /// a SCSI bus reset: §3.1 resets the *interface*, and QEMU's usb-storage
    /// and the Linux gadget (f_mass_storage) raise no UNIT ATTENTION for it.
    /// Linux hosts send this reset from their SCSI error handler and then
    /// clear both halts (usb_stor_Bulk_reset); a unit attention would fail
    /// the retried command once more for nothing.
    pub fn reset(&mut self, target: &mut impl CommandTarget) {
        self.deliver_deferred(target);
        let open = match &self.phase {
            Phase::DataIn(_) => true,
            Phase::DataOut(stage) => stage.decided.is_none(),
            Phase::Idle | Phase::Status(_) => false,
        };
        if open {
            debug!("Bulk-Only reset aborts the command in flight");
            target.abort();
        }
        self.phase = Phase::Idle;
        self.wedged = false;
    }

    /// A bulk OUT transfer while idle: must be a CBW (§6.2).
    fn receive_cbw(&mut self, target: &mut impl CommandTarget, data: &[u8]) -> OutResult {
        match Cbw::parse(data) {
            Ok(cbw) => {
                self.start(target, &cbw);
                OutResult::Accepted(data.len())
            }
            Err(error) => {
                // §6.6.1: stall both pipes until a Reset Recovery. The transfer
                // itself is stalled too, as QEMU does.
                warn!(%error, "invalid CBW: stalling both bulk endpoints until a Bulk-Only reset");
                self.wedged = true;
                self.halted_in = true;
                self.halted_out = true;
                OutResult::Stall
            }
        }
    }

    /// Begins the command and sorts it into one of the thirteen cases (§6.7).
    fn start(&mut self, target: &mut impl CommandTarget, cbw: &Cbw) {
        let tag = cbw.tag;
        let host_len = cbw.data_transfer_length;
        let intent = Intent::from(target.begin(cbw.lun, cbw.cb()));
        debug!(
            tag,
            lun = cbw.lun,
            opcode = cbw.cb().first().copied().unwrap_or_default(),
            host_len,
            host_in = cbw.direction_in,
            "CBW"
        );
        let status = |csw: PendingCsw| Phase::Status(csw);
        self.phase = match (host_len, cbw.direction_in, intent) {
            // Case 1 (Hn = Dn). The direction bit is ignored when H is 0 (§5.1).
            (0, _, Intent::None) => status(PendingCsw::new(tag, 0, target.end().into())),
            // Cases 2 (Hn < Di) and 3 (Hn < Do).
            (0, _, Intent::In(_) | Intent::Out(_)) => {
                warn!(tag, "host expects no data but the device has a data stage: phase error");
                target.abort();
                status(PendingCsw::new(tag, 0, CswStatus::PhaseError))
            }
            // Case 4 (Hi > Dn): H zero bytes, then the CSW with residue H
            // (§6.7.2 lets the device pad instead of stalling; see bulk_in).
            (_, true, Intent::None) => Phase::DataIn(DataIn {
                tag,
                host_len,
                host_remaining: host_len,
                device_len: 0,
                device_remaining: 0,
                phase_error: false,
            }),
            // Cases 5 (Hi > Di), 6 (Hi = Di), 7 (Hi < Di).
            (_, true, Intent::In(d)) => Phase::DataIn(DataIn {
                tag,
                host_len,
                host_remaining: host_len,
                device_len: d.min(host_len),
                device_remaining: d.min(host_len),
                phase_error: d > host_len,
            }),
            // Case 8 (Hi <> Do).
            (_, true, Intent::Out(_)) => {
                warn!(tag, "host expects data-in but the device wants data-out: phase error");
                target.abort();
                self.halted_in = true;
                status(PendingCsw::new(tag, host_len, CswStatus::PhaseError))
            }
            // Case 9 (Ho > Dn): take the host's bytes and drop them.
            (_, false, Intent::None) => Phase::DataOut(DataOut {
                tag,
                host_len,
                host_remaining: host_len,
                device_remaining: 0,
                taken: 0,
                decided: None,
            }),
            // Case 10 (Ho <> Di).
            (_, false, Intent::In(_)) => {
                warn!(tag, "host sends data-out but the device wants data-in: phase error");
                target.abort();
                self.halted_out = true;
                status(PendingCsw::new(tag, host_len, CswStatus::PhaseError))
            }
            // Cases 11 (Ho > Do) and 12 (Ho = Do).
            (_, false, Intent::Out(d)) if d <= host_len => Phase::DataOut(DataOut {
                tag,
                host_len,
                host_remaining: host_len,
                device_remaining: d,
                taken: 0,
                decided: None,
            }),
            // Case 13 (Ho < Do): the host's bytes are taken and dropped, never
            // a partial write; then a phase error.
            (_, false, Intent::Out(_)) => {
                warn!(tag, "host sends less data than the command needs: phase error");
                target.abort();
                Phase::DataOut(DataOut {
                    tag,
                    host_len,
                    host_remaining: host_len,
                    device_remaining: 0,
                    taken: 0,
                    decided: Some(CswStatus::PhaseError),
                })
            }
        };
    }

    fn finish_data_in(&mut self, target: &mut impl CommandTarget) {
        if let Phase::DataIn(stage) = &self.phase {
            let status = if stage.phase_error {
                target.abort();
                CswStatus::PhaseError
            } else {
                target.end().into()
            };
            // Residue: H minus the device's data sent, pad bytes excluded
            // (§6.7: "the difference between the amount of data expected ...
            // and the actual amount ... processed"). The stage ends once H
            // bytes went out, so all of the device's min(D, H) did.
            let residue = stage.host_len - stage.device_len;
            debug!(tag = stage.tag, host_len = stage.host_len, residue, ?status, "data-in done");
            self.phase = Phase::Status(PendingCsw::new(stage.tag, residue, status));
        }
    }

    fn finish_data_out(&mut self, target: &mut impl CommandTarget) {
        if let Phase::DataOut(stage) = &self.phase {
            let status = stage.decided.unwrap_or_else(|| target.end().into());
            // What the target did not take was discarded: it counts as residue.
            let residue = stage.host_len - stage.taken;
            debug!(tag = stage.tag, host_len = stage.host_len, residue, ?status, "data-out done");
            self.phase = Phase::Status(PendingCsw::new(stage.tag, residue, status));
        }
    }
}

impl DataOut {
    /// Takes the next OUT transfer; returns the bytes accepted and whether
    /// the host's H bytes are now all in.
    fn receive(&mut self, target: &mut impl CommandTarget, data: &[u8]) -> (usize, bool) {
        let (accepted, forward, done) = self.take(data.len());
        if let Some(chunk) = data.get(..forward).filter(|c| !c.is_empty()) {
            target.data_out(chunk);
        }
        (accepted, done)
    }

    /// The bookkeeping of [`DataOut::receive`] for `len` offered bytes: how
    /// many the host's stage accepts, how many of those go to the target,
    /// and whether the stage is now complete.
    fn take(&mut self, len: usize) -> (usize, usize, bool) {
        let accepted = len.min(self.host_remaining as usize);
        let forward = accepted.min(self.device_remaining as usize);
        self.host_remaining -= to_u32(accepted);
        self.device_remaining -= to_u32(forward);
        self.taken += to_u32(forward);
        (accepted, forward, self.host_remaining == 0)
    }
}

#[cfg(test)]
mod tests;
