//! The target: per-LUN dispatch, unit attentions, and streaming of data stages.

use std::io;

use tracing::{debug, trace, warn};
use vstick_media::BlockBackend;

use crate::cdb::{self, Command, op};
use crate::lun::{Lun, Medium};
use crate::opcodes::{self, Lookup};
use crate::sense::Sense;
use crate::{DataStage, LunConfig, LunKind, LunStatus, MediaError, Status};
use crate::{compare_and_write, disk, events, get_configuration, inquiry, mode, optical, provisioning};

/// Scratch size for VERIFY with BYTCHK=1 (compared piecewise, never whole).
const COMPARE_CHUNK: usize = 64 * 1024;

/// What `begin` decided.
enum Outcome {
    Fail(Sense),
    Good,
    /// A small response, truncated to the allocation length.
    Data(Vec<u8>, u32),
    Read {
        offset: u64,
        len: u32,
    },
    Write {
        offset: u64,
        len: u32,
        fua: bool,
    },
    Compare {
        offset: u64,
        len: u32,
    },
    Discard(u32),
    /// A small parameter list to gather, then act on in `end`.
    Collect {
        len: u32,
        then: Pending,
    },
}

/// What a gathered parameter list is for.
#[derive(Debug, Clone, Copy)]
enum Pending {
    Unmap,
    WriteSame { lba: u64, blocks: u64, unmap: bool },
    CompareAndWrite { lba: u64, blocks: u8, fua: bool },
}

enum Stage {
    None,
    Buffer {
        data: Vec<u8>,
        pos: usize,
    },
    Read {
        offset: u64,
        remaining: u64,
    },
    Write {
        offset: u64,
        remaining: u64,
    },
    Compare {
        offset: u64,
        remaining: u64,
    },
    Discard {
        remaining: u64,
    },
    /// Bounded by the command: a 16-bit UNMAP list, one block, or 2 × 128 blocks.
    Collect {
        data: Vec<u8>,
        want: usize,
        then: Pending,
    },
}

/// The command between `begin` and `end`.
struct Active {
    /// `None` for a LUN that does not exist.
    lun: Option<usize>,
    stage: Stage,
    failure: Option<Sense>,
    /// FUA: make the data durable before reporting GOOD.
    flush: bool,
    /// The LUN's medium generation at `begin`; a change mid-transfer fails the command.
    generation: u64,
}

/// Why [`Target::try_new`] refused a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The configuration has no logical unit.
    #[error("no LUNs: a device needs at least one disk or CD/DVD drive")]
    NoLuns,
    /// More logical units than [`Target::MAX_LUNS`].
    #[error("{count} LUNs requested; a USB mass-storage device has at most {max}", max = Target::MAX_LUNS)]
    TooManyLuns {
        /// The number of LUNs configured.
        count: usize,
    },
    /// A LUN's medium does not fit its kind (see [`crate::check_medium`]).
    #[error("LUN {lun}: {source}")]
    Medium {
        /// Index of the LUN in the configuration.
        lun: usize,
        /// What is wrong with the medium.
        source: crate::MediumError,
    },
}

/// The SCSI target: up to 16 logical units behind one transport.
pub struct Target {
    luns: Vec<Lun>,
    active: Option<Active>,
}

impl Target {
    /// Maximum number of logical units (BOT's 4-bit LUN field).
    pub const MAX_LUNS: usize = 16;

    /// A target over `luns`, each medium checked against its LUN's kind with
    /// [`crate::check_medium`] (the rule `insert` applies too).
    pub fn try_new(luns: Vec<LunConfig>) -> Result<Self, TargetError> {
        if luns.is_empty() {
            return Err(TargetError::NoLuns);
        }
        if luns.len() > Self::MAX_LUNS {
            return Err(TargetError::TooManyLuns { count: luns.len() });
        }
        for (lun, config) in luns.iter().enumerate() {
            if let Some(medium) = &config.medium {
                crate::check_medium(config.kind, medium.as_ref())
                    .map_err(|source| TargetError::Medium { lun, source })?;
            }
        }
        Ok(Self { luns: luns.into_iter().map(Lun::new).collect(), active: None })
    }

    /// [`Self::try_new`] for configurations fixed in code (tests, examples).
    ///
    /// # Panics
    /// Where `try_new` returns an error; anything from user input goes through `try_new`.
    pub fn new(luns: Vec<LunConfig>) -> Self {
        Self::try_new(luns).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Number of logical units, fixed at construction (GET MAX LUN answers one less).
    pub fn lun_count(&self) -> usize {
        self.luns.len()
    }

    /// Starts a command for `lun`. An out-of-range `lun` yields CHECK CONDITION
    /// 05/25/00 (INQUIRY answers peripheral qualifier 3, type 0x1F).
    pub fn begin(&mut self, lun: u8, cdb: &[u8]) -> DataStage {
        if self.active.take().is_some() {
            warn!("command begun while another was active; the previous one is dropped");
        }
        let index = usize::from(lun);
        let count = self.luns.len();
        let mut scratch = [0u8; 16];
        let (outcome, generation) = match self.luns.get_mut(index) {
            Some(l) => {
                let cdb = without_scsi2_lun(l, lun, cdb, &mut scratch);
                (dispatch(l, count, cdb), l.generation)
            }
            None => (no_such_lun(cdb), 0),
        };
        let lun_index = (index < count).then_some(index);
        if let Outcome::Fail(sense) = &outcome {
            debug!(lun, opcode = ?cdb.first(), %sense, "command failed");
        }
        let (stage, failure, flush, intent) = match outcome {
            Outcome::Fail(sense) => (Stage::None, Some(sense), false, DataStage::None),
            Outcome::Good => (Stage::None, None, false, DataStage::None),
            Outcome::Data(mut data, alloc) => {
                data.truncate(usize::try_from(alloc).unwrap_or(usize::MAX));
                let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
                let intent = if len == 0 { DataStage::None } else { DataStage::In(len) };
                (Stage::Buffer { data, pos: 0 }, None, false, intent)
            }
            Outcome::Read { offset, len } => {
                (Stage::Read { offset, remaining: u64::from(len) }, None, false, DataStage::In(len))
            }
            Outcome::Write { offset, len, fua } => {
                (Stage::Write { offset, remaining: u64::from(len) }, None, fua, DataStage::Out(len))
            }
            Outcome::Compare { offset, len } => {
                (Stage::Compare { offset, remaining: u64::from(len) }, None, false, DataStage::Out(len))
            }
            Outcome::Discard(len) => {
                let intent = if len == 0 { DataStage::None } else { DataStage::Out(len) };
                (Stage::Discard { remaining: u64::from(len) }, None, false, intent)
            }
            Outcome::Collect { len, then } => {
                let want = len as usize;
                (
                    Stage::Collect { data: Vec::with_capacity(want), want, then },
                    None,
                    false,
                    DataStage::Out(len),
                )
            }
        };
        self.active = Some(Active { lun: lun_index, stage, failure, flush, generation });
        intent
    }

    /// Fills `buf` with the next `buf.len()` bytes of the data-in stage
    /// (never more than what remains of [`DataStage::In`]). A backend error
    /// zero-fills and makes the command end with CHECK CONDITION 03/11/00.
    pub fn data_in(&mut self, buf: &mut [u8]) {
        let Some(active) = self.active.as_mut() else {
            warn!("data-in without a command");
            buf.fill(0);
            return;
        };
        match &mut active.stage {
            Stage::Buffer { data, pos } => {
                let rest = data.get(*pos..).unwrap_or_default();
                let n = rest.len().min(buf.len());
                let (head, tail) = buf.split_at_mut(n);
                head.copy_from_slice(rest.get(..n).unwrap_or_default());
                tail.fill(0);
                *pos += n;
            }
            Stage::Read { offset, remaining } => {
                let n = usize::try_from(*remaining).unwrap_or(usize::MAX).min(buf.len());
                let (head, tail) = buf.split_at_mut(n);
                tail.fill(0);
                let lun = active.lun.and_then(|i| self.luns.get_mut(i));
                match (active.failure, lun) {
                    (None, Some(lun)) => match current_medium(lun, active.generation) {
                        Some(backend) => match backend.read_at(*offset, head) {
                            Ok(()) => lun.bytes_read += n as u64,
                            Err(e) => {
                                warn!(offset = *offset, len = n, error = %e, "read failed");
                                head.fill(0);
                                active.failure = Some(Sense::UNRECOVERED_READ_ERROR);
                            }
                        },
                        None => {
                            head.fill(0);
                            active.failure = Some(Sense::MEDIUM_NOT_PRESENT);
                        }
                    },
                    _ => head.fill(0),
                }
                *offset = offset.saturating_add(n as u64);
                *remaining -= n as u64;
            }
            _ => {
                warn!("data-in during a command without one");
                buf.fill(0);
            }
        }
    }

    /// Consumes the next bytes of the data-out stage (never more than what
    /// remains of [`DataStage::Out`]).
    pub fn data_out(&mut self, data: &[u8]) {
        let Some(active) = self.active.as_mut() else {
            warn!("data-out without a command");
            return;
        };
        let lun = active.lun.and_then(|i| self.luns.get_mut(i));
        match &mut active.stage {
            Stage::Write { offset, remaining } => {
                let n = usize::try_from(*remaining).unwrap_or(usize::MAX).min(data.len());
                let chunk = data.get(..n).unwrap_or_default();
                if let (None, Some(lun)) = (active.failure, lun) {
                    match current_medium(lun, active.generation) {
                        Some(backend) => match backend.write_at(*offset, chunk) {
                            Ok(()) => lun.bytes_written += n as u64,
                            Err(e) => {
                                warn!(offset = *offset, len = n, error = %e, "write failed");
                                active.failure = Some(Sense::WRITE_ERROR);
                            }
                        },
                        None => active.failure = Some(Sense::MEDIUM_NOT_PRESENT),
                    }
                }
                *offset = offset.saturating_add(n as u64);
                *remaining -= n as u64;
            }
            Stage::Compare { offset, remaining } => {
                let n = usize::try_from(*remaining).unwrap_or(usize::MAX).min(data.len());
                let chunk = data.get(..n).unwrap_or_default();
                if let (None, Some(lun)) = (active.failure, lun) {
                    active.failure = match current_medium(lun, active.generation) {
                        Some(backend) => compare(backend, *offset, chunk).err(),
                        None => Some(Sense::MEDIUM_NOT_PRESENT),
                    };
                    if active.failure.is_none() {
                        lun.bytes_read += n as u64;
                    }
                }
                *offset = offset.saturating_add(n as u64);
                *remaining -= n as u64;
            }
            Stage::Discard { remaining } => {
                *remaining = remaining.saturating_sub(data.len() as u64);
            }
            Stage::Collect { data: buf, want, .. } => {
                let n = want.saturating_sub(buf.len()).min(data.len());
                buf.extend_from_slice(data.get(..n).unwrap_or_default());
            }
            _ => warn!("data-out during a command without one"),
        }
    }

    /// Completes the current command (FUA writes are made durable here).
    /// If the transport moved fewer bytes than the intent, the command still
    /// ends; what was moved is what counts.
    pub fn end(&mut self) -> Status {
        let Some(active) = self.active.take() else {
            warn!("end without a command");
            return Status::Good;
        };
        let mut failure = active.failure;
        let lun = active.lun.and_then(|i| self.luns.get_mut(i));
        if let Some(lun) = lun {
            if let (None, Stage::Collect { data, then, .. }) = (failure, &active.stage) {
                failure = finish(lun, active.generation, *then, data);
            }
            if failure.is_none() && active.flush {
                failure = flush_medium(lun, active.generation);
            }
            lun.sense = failure;
        }
        match failure {
            Some(_) => Status::CheckCondition,
            None => Status::Good,
        }
    }

    /// Drops the current command without a status (transport phase error).
    pub fn abort(&mut self) {
        self.active = None;
    }

    /// Bus / Bulk-Only Mass Storage reset: aborts the current command and
    /// raises UNIT ATTENTION 06/29/00 on every LUN.
    pub fn reset(&mut self) {
        self.active = None;
        for lun in &mut self.luns {
            lun.unit_attentions.reset();
            lun.sense = None;
        }
    }

    /// Operator eject. Refused while the host holds the lock unless `force`.
    pub fn eject(&mut self, lun: u8, force: bool) -> Result<(), MediaError> {
        let count = self.luns.len();
        let l = self.luns.get_mut(usize::from(lun)).ok_or(MediaError::NoSuchLun { lun, count })?;
        l.operator_eject(lun, force)
    }

    /// Operator insert; swaps if a medium is present (eject, then insert).
    /// A swap is refused while the host holds the lock: see [`Self::insert_with_force`].
    pub fn insert(&mut self, lun: u8, medium: Box<dyn BlockBackend>) -> Result<(), MediaError> {
        self.insert_with_force(lun, medium, false)
    }

    /// [`Self::insert`]; with `force` a swap goes ahead although the host holds
    /// the lock, which is released (the host sees 06/3A/00 then 06/28/00).
    pub fn insert_with_force(
        &mut self,
        lun: u8,
        medium: Box<dyn BlockBackend>,
        force: bool,
    ) -> Result<(), MediaError> {
        let count = self.luns.len();
        let l = self.luns.get_mut(usize::from(lun)).ok_or(MediaError::NoSuchLun { lun, count })?;
        l.operator_insert(lun, medium, force)
    }

    /// The state of every LUN (medium, lock, traffic), in LUN order.
    pub fn status(&self) -> Vec<LunStatus> {
        self.luns.iter().enumerate().map(|(i, l)| l.status(i as u8)).collect()
    }

    /// Flushes every writable medium (before exit).
    pub fn flush(&mut self) -> io::Result<()> {
        let mut first_error = None;
        for lun in &self.luns {
            if let Some(m) = lun.medium.as_ref().filter(|m| !m.read_only)
                && let Err(e) = m.backend.flush()
            {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The backend of `lun` if the medium the command began with is still loaded.
fn current_medium(lun: &Lun, generation: u64) -> Option<&dyn BlockBackend> {
    if lun.generation != generation {
        return None;
    }
    lun.loaded().map(|m| m.backend.as_ref())
}

fn flush_medium(lun: &Lun, generation: u64) -> Option<Sense> {
    let backend = current_medium(lun, generation)?;
    match backend.flush() {
        Ok(()) => None,
        Err(e) => {
            warn!(error = %e, "flush failed");
            Some(Sense::WRITE_ERROR)
        }
    }
}

/// The medium the command began with, if it is still loaded.
fn current(lun: &Lun, generation: u64) -> Option<&Medium> {
    if lun.generation != generation {
        return None;
    }
    lun.loaded()
}

/// Acts on a gathered parameter list (UNMAP, WRITE SAME, COMPARE AND WRITE).
fn finish(lun: &mut Lun, generation: u64, then: Pending, data: &[u8]) -> Option<Sense> {
    let Some(m) = current(lun, generation) else { return Some(Sense::MEDIUM_NOT_PRESENT) };
    let result = match then {
        Pending::Unmap => provisioning::unmap(m, data).map(|_| 0),
        Pending::WriteSame { lba, blocks, unmap } => provisioning::write_same(m, lba, blocks, unmap, data),
        Pending::CompareAndWrite { lba, blocks, fua } => {
            compare_and_write::compare_and_write(m, lba, blocks, data).and_then(|n| {
                if fua {
                    m.backend.flush().map_err(|_| Sense::WRITE_ERROR)?;
                }
                Ok(n)
            })
        }
    };
    match result {
        Ok(written) => {
            lun.bytes_written += written;
            None
        }
        Err(sense) => Some(sense),
    }
}

/// VERIFY with BYTCHK=1: compares `data` with the medium at `offset`, piecewise.
fn compare(backend: &dyn BlockBackend, offset: u64, data: &[u8]) -> Result<(), Sense> {
    let mut scratch = vec![0u8; COMPARE_CHUNK.min(data.len())];
    let mut at = offset;
    for piece in data.chunks(COMPARE_CHUNK) {
        let buf = scratch.get_mut(..piece.len()).unwrap_or_default();
        backend.read_at(at, buf).map_err(|e| {
            warn!(offset = at, error = %e, "read for VERIFY failed");
            Sense::UNRECOVERED_READ_ERROR
        })?;
        if buf != piece {
            return Err(Sense::MISCOMPARE_DURING_VERIFY);
        }
        at = at.saturating_add(piece.len() as u64);
    }
    Ok(())
}

/// Commands addressed to a LUN that does not exist (SPC-4 §6.4.2, §6.39).
fn no_such_lun(cdb: &[u8]) -> Outcome {
    let decoded = match opcodes::lookup_cdb(cdb, LunKind::Disk) {
        Lookup::Found(info) => Some(cdb::decode(info, cdb)),
        _ => None,
    };
    match decoded {
        Some(Ok(Command::Inquiry { evpd: false, alloc, .. })) => {
            Outcome::Data(inquiry::standard(None), u32::from(alloc))
        }
        Some(Ok(Command::RequestSense { alloc })) => {
            Outcome::Data(Sense::LUN_NOT_SUPPORTED.fixed().to_vec(), u32::from(alloc))
        }
        _ => Outcome::Fail(Sense::LUN_NOT_SUPPORTED),
    }
}

/// The SCSI-2 LUN field (SCSI-2 §7.2.2: CDB byte 1 bits 7:5), which EDK2's
/// UsbMassStorageDxe still fills in every command it sends (`USB_BOOT_LUN`: TEST
/// UNIT READY, INQUIRY, REQUEST SENSE, MODE SENSE(6), READ CAPACITY(10),
/// READ/WRITE(10) and (16)). SPC-3 made those bits reserved and SBC-3 reused them
/// as RDPROTECT/WRPROTECT/VRPROTECT, which we refuse unless 0 (no protection
/// information), so UEFI could not read any LUN but 0 if they were taken as such.
///
/// The two are told apart per LUN, by what the host has shown: in a command whose
/// bits 7:5 are reserved today (its usage mask has none of them: TEST UNIT READY,
/// INQUIRY, REQUEST SENSE, MODE SENSE(6), READ CAPACITY(10), ...), bits equal to
/// the LUN the transport addressed (its low three bits, all the field holds) can
/// only be the old LUN field: they are cleared, and the LUN remembers that this
/// host speaks SCSI-2 addressing. From then on the same value is cleared in the
/// commands where the bits mean protection too. A host that never sent the old
/// field (Linux, Windows, macOS, libiscsi) keeps the modern meaning: READ(10) with
/// RDPROTECT=1 to LUN 1 is refused (05/24/00). EDK2 always sends INQUIRY or TEST
/// UNIT READY first, so it is recognised before its first READ.
fn without_scsi2_lun<'a>(l: &mut Lun, lun: u8, cdb: &'a [u8], scratch: &'a mut [u8; 16]) -> &'a [u8] {
    let scsi2_lun = lun & 0x07;
    let Some(&byte1) = cdb.get(1) else { return cdb };
    if scsi2_lun == 0 || byte1 >> 5 != scsi2_lun {
        return cdb;
    }
    let reserved = match opcodes::lookup_cdb(cdb, l.kind) {
        Lookup::Found(info) => info.usage.get(1).is_some_and(|u| u & 0xE0 == 0),
        _ => true,
    };
    if reserved {
        l.scsi2_lun = true;
    } else if !l.scsi2_lun {
        return cdb;
    }
    let Some(copy) = scratch.get_mut(..cdb.len()) else { return cdb };
    copy.copy_from_slice(cdb);
    if let Some(b) = copy.get_mut(1) {
        *b &= 0x1F;
    }
    trace!(lun, "SCSI-2 LUN field in CDB byte 1 cleared");
    copy
}

/// Unit attention, opcode, CDB and medium checks, in that order, then the command.
fn dispatch(lun: &mut Lun, count: usize, cdb: &[u8]) -> Outcome {
    let opcode = cdb.first().copied();
    if opcode != Some(op::REQUEST_SENSE) {
        // Sense describes the last command only (SPC-4 §5.12).
        lun.sense = None;
    }
    let looked_up = opcodes::lookup_cdb(cdb, lun.kind);
    let info = match looked_up {
        Lookup::Found(info) => Some(info),
        _ => None,
    };
    // SPC-4 §5.14 / MMC-6 §4.1.6.1: a pending unit attention fails every command
    // but INQUIRY, REPORT LUNS, REQUEST SENSE, GET CONFIGURATION and GESN.
    if !info.is_some_and(|i| i.ua_exempt)
        && let Some(ua) = lun.unit_attentions.pop()
    {
        return Outcome::Fail(ua);
    }
    let Some(info) = info else {
        return Outcome::Fail(match (opcode, looked_up) {
            (Some(_), Lookup::UnknownServiceAction) | (None, _) => Sense::INVALID_FIELD_IN_CDB,
            _ => Sense::INVALID_OPCODE,
        });
    };
    trace!(command = info.name, "begin");
    let Ok(command) = cdb::decode(info, cdb) else {
        return Outcome::Fail(Sense::INVALID_FIELD_IN_CDB);
    };
    if info.needs_medium && !lun.is_loaded() {
        return Outcome::Fail(Sense::MEDIUM_NOT_PRESENT);
    }
    execute(lun, count, command)
}

fn data(r: Result<Vec<u8>, Sense>, alloc: impl Into<u32>) -> Outcome {
    match r {
        Ok(v) => Outcome::Data(v, alloc.into()),
        Err(s) => Outcome::Fail(s),
    }
}

fn execute(lun: &mut Lun, count: usize, command: Command) -> Outcome {
    use Command as C;
    match command {
        C::TestUnitReady | C::SetCdSpeed => Outcome::Good,
        C::RequestSense { alloc } => {
            // The failed command's sense first, else a pending unit attention (cleared
            // by being reported), else NO SENSE. Always fixed format: hosts over BOT
            // never ask for descriptor format, and answering beats losing the sense.
            let sense = lun.sense.take().or_else(|| lun.unit_attentions.pop()).unwrap_or(Sense::NO_SENSE);
            Outcome::Data(sense.fixed().to_vec(), u32::from(alloc))
        }
        C::Inquiry { evpd: false, alloc, .. } => {
            Outcome::Data(inquiry::standard(Some(lun.kind)), u32::from(alloc))
        }
        C::Inquiry { evpd: true, page, alloc } => {
            data(inquiry::vpd(lun.kind, page, &lun.serial, lun.block_size()), alloc)
        }
        C::ReportOpcodes { rctd, options, opcode, service_action, alloc } => {
            data(opcodes::report_supported_opcodes(lun.kind, rctd, options, opcode, service_action), alloc)
        }
        C::ModeSelect { param_len } => Outcome::Discard(u32::from(param_len)),
        C::ModeSense { ten, dbd, llbaa, pc, page, subpage, alloc } => {
            let req = mode::ModeSenseRequest { ten, dbd, llbaa, pc, page, subpage };
            data(mode::mode_sense(lun, &req), alloc)
        }
        C::StartStopUnit { power_condition, loej, start } => {
            // SBC-3 §5.25: with a power condition, START and LOEJ are ignored.
            if power_condition != 0 || !loej {
                return Outcome::Good;
            }
            if start {
                lun.host_load();
                Outcome::Good
            } else {
                lun.host_eject().map_or_else(Outcome::Fail, |()| Outcome::Good)
            }
        }
        C::PreventAllow { prevent } => {
            lun.prevent = prevent;
            Outcome::Good
        }
        C::ReadFormatCapacities { alloc } => {
            Outcome::Data(disk::read_format_capacities(lun), u32::from(alloc))
        }
        C::ReportLuns { select, alloc } => {
            // SPC-4 §6.33: an allocation length under 16 is an error.
            if alloc < 16 {
                return Outcome::Fail(Sense::INVALID_FIELD_IN_CDB);
            }
            data(inquiry::report_luns(select, count), alloc)
        }
        C::GetConfiguration { rt, start, alloc } => {
            Outcome::Data(get_configuration::get_configuration(lun, rt, start), u32::from(alloc))
        }
        C::GetEventStatus { classes, alloc } => {
            Outcome::Data(events::get_event_status(lun, classes, alloc), u32::from(alloc))
        }
        C::MechanismStatus { alloc } => Outcome::Data(optical::mechanism_status(lun), u32::from(alloc)),
        C::GetPerformance => Outcome::Data(optical::performance_header(), u32::MAX),
        // Everything below needs the loaded medium (the table's needs_medium).
        other => match lun.loaded() {
            Some(m) => with_medium(m, lun.kind, other),
            None => Outcome::Fail(Sense::MEDIUM_NOT_PRESENT),
        },
    }
}

/// Byte offset and length of a block range, after the range check (SBC-3 §4.5).
fn block_range(m: &crate::lun::Medium, lba: u64, blocks: u32) -> Result<(u64, u32), Sense> {
    if !m.in_range(lba, u64::from(blocks)) {
        return Err(Sense::LBA_OUT_OF_RANGE);
    }
    let offset = m.offset(lba).ok_or(Sense::LBA_OUT_OF_RANGE)?;
    // A transfer must fit the transport's 32-bit length (BOT dCBWDataTransferLength).
    let len = u64::from(blocks)
        .checked_mul(u64::from(m.block_size))
        .and_then(|l| u32::try_from(l).ok())
        .ok_or(Sense::INVALID_FIELD_IN_CDB)?;
    Ok((offset, len))
}

fn with_medium(m: &Medium, kind: LunKind, command: Command) -> Outcome {
    use Command as C;
    match command {
        C::ReadCapacity10 => Outcome::Data(disk::read_capacity_10(m), 8),
        C::ReadCapacity16 { alloc } => Outcome::Data(disk::read_capacity_16(m, kind == LunKind::Disk), alloc),
        C::Unmap { .. } | C::WriteSame { .. } | C::CompareAndWrite { .. } if m.read_only => {
            Outcome::Fail(Sense::WRITE_PROTECTED)
        }
        C::Unmap { param_len: 0 } => Outcome::Good,
        C::Unmap { param_len } if param_len < 8 => Outcome::Fail(Sense::PARAMETER_LIST_LENGTH_ERROR),
        C::Unmap { param_len } => Outcome::Collect { len: u32::from(param_len), then: Pending::Unmap },
        C::WriteSame { lba, blocks, unmap, ndob } => match provisioning::write_same_range(m, lba, blocks) {
            Ok(blocks) if ndob => {
                let zeros = vec![0u8; m.block_size as usize];
                match provisioning::write_same(m, lba, blocks, unmap, &zeros) {
                    Ok(_) => Outcome::Good,
                    Err(s) => Outcome::Fail(s),
                }
            }
            Ok(blocks) => {
                Outcome::Collect { len: m.block_size, then: Pending::WriteSame { lba, blocks, unmap } }
            }
            Err(s) => Outcome::Fail(s),
        },
        C::CompareAndWrite { blocks, .. } if blocks > provisioning::MAX_COMPARE_AND_WRITE_BLOCKS => {
            Outcome::Fail(Sense::INVALID_FIELD_IN_CDB)
        }
        C::CompareAndWrite { lba, blocks, fua } => match block_range(m, lba, u32::from(blocks)) {
            Ok((_, 0)) => Outcome::Good,
            Ok((_, len)) => {
                Outcome::Collect { len: 2 * len, then: Pending::CompareAndWrite { lba, blocks, fua } }
            }
            Err(s) => Outcome::Fail(s),
        },
        C::Prefetch { lba, blocks } => {
            // NUMBER OF LOGICAL BLOCKS 0: through the last block (SBC-3 §5.10).
            if !m.in_range(lba, u64::from(blocks)) || lba >= m.blocks {
                return Outcome::Fail(Sense::LBA_OUT_OF_RANGE);
            }
            let blocks = if blocks == 0 { m.blocks - lba } else { u64::from(blocks) };
            let bs = u64::from(m.block_size);
            // Advice only: a backend that cannot take it still answers GOOD.
            if let Err(e) = m.backend.prefetch(lba * bs, blocks * bs) {
                debug!(error = %e, "PRE-FETCH advice refused");
            }
            Outcome::Good
        }
        C::GetLbaStatus { lba, alloc } => data(provisioning::get_lba_status(m, lba, alloc), alloc),
        C::ReadDefectData { twelve, request, alloc } => {
            Outcome::Data(provisioning::read_defect_data(twelve, request), alloc)
        }
        C::Read { lba, blocks, fua: _ } => match block_range(m, lba, blocks) {
            Ok((_, 0)) => Outcome::Good,
            Ok((offset, len)) => Outcome::Read { offset, len },
            Err(s) => Outcome::Fail(s),
        },
        C::Write { lba, blocks, fua } => {
            if m.read_only {
                return Outcome::Fail(Sense::WRITE_PROTECTED);
            }
            match block_range(m, lba, blocks) {
                Ok((_, 0)) => Outcome::Good,
                Ok((offset, len)) => Outcome::Write { offset, len, fua },
                Err(s) => Outcome::Fail(s),
            }
        }
        C::Verify { lba, blocks, bytchk } => match block_range(m, lba, blocks) {
            Ok((offset, len)) if bytchk && len > 0 => Outcome::Compare { offset, len },
            Ok(_) => Outcome::Good,
            Err(s) => Outcome::Fail(s),
        },
        C::SynchronizeCache { lba, blocks } => {
            // NUMBER OF BLOCKS 0 = through the last block (SBC-3 §5.22).
            if !m.in_range(lba, u64::from(blocks)) || lba > m.blocks {
                return Outcome::Fail(Sense::LBA_OUT_OF_RANGE);
            }
            if m.read_only {
                return Outcome::Good;
            }
            match m.backend.flush() {
                Ok(()) => Outcome::Good,
                Err(e) => {
                    warn!(error = %e, "SYNCHRONIZE CACHE failed");
                    Outcome::Fail(Sense::WRITE_ERROR)
                }
            }
        }
        C::ReadToc { msf, format, track, alloc } => data(optical::read_toc(m, msf, format, track), alloc),
        C::ReadDiscInformation { alloc } => Outcome::Data(optical::disc_information(), u32::from(alloc)),
        C::ReadTrackInformation { address_type, address, alloc } => {
            data(optical::track_information(m, address_type, address), alloc)
        }
        C::ReadDiscStructure { media_type, layer, format, alloc } => {
            data(optical::disc_structure(m, media_type, layer, format), alloc)
        }
        C::ReadCd { lba, blocks, sector_type, main, sub } => {
            if let Err(s) = optical::check_read_cd(sector_type, main, sub) {
                return Outcome::Fail(s);
            }
            // No field selected: nothing is transferred (MMC-6 §6.19.2.9).
            let blocks = if main == 0 { 0 } else { blocks };
            match block_range(m, lba, blocks) {
                Ok((_, 0)) => Outcome::Good,
                Ok((offset, len)) => Outcome::Read { offset, len },
                Err(s) => Outcome::Fail(s),
            }
        }
        // Commands handled in `execute`; unreachable, but must not panic.
        _ => Outcome::Fail(Sense::INVALID_OPCODE),
    }
}
