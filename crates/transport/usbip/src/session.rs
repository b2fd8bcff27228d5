//! One USB/IP connection as a sans-io state machine.
//!
//! Bytes from the client go in through [`Session::receive`]; replies collect in
//! [`Session::output`] for the edge to write. The connection starts in the
//! management phase (one OP_REQ_DEVLIST or OP_REQ_IMPORT, as Linux `usbipd`
//! serves them) and, after a successful import, carries URBs until the peer
//! leaves.
//!
//! URB rules (usbip_protocol.rst, Linux `stub_rx.c` / `vhci_rx.c` behaviour):
//! - Control transfers on endpoint 0 and bulk OUT transfers complete at once.
//! - Bulk IN URBs queue FIFO per endpoint and complete, in order, as soon as
//!   the device has data (or stalls); the queue is retried after every
//!   message, because any OUT or control transfer can make data appear.
//! - CMD_UNLINK of a queued URB removes it and answers -ECONNRESET; that URB
//!   never gets a RET_SUBMIT. Unlinking anything else answers 0: its
//!   RET_SUBMIT has already been sent.
//! - A stall is status -EPIPE; a URB for an endpoint the active configuration
//!   does not have gets -EPIPE too, which the Linux client's USB core treats
//!   like any stall instead of tearing the connection down.

use std::collections::VecDeque;

use tracing::{debug, trace, warn};
use vstick_bot::{InResult, OutResult};
use vstick_usb::{ControlResult, Setup, TransferType};

use crate::codec::{
    ClientMessage, CmdSubmit, CmdUnlink, CodecError, Decoded, Direction, OpReply, OpRequest, OpStatus,
    RetSubmit, RetUnlink, URB_HEADER_LEN, UrbBasic, errno,
};
use crate::export::ExportInfo;
use vstick_usb::UsbDevice;

/// Most IN URBs one connection may have queued. Linux usb-storage keeps one
/// or a few in flight; thousands mean a broken or hostile client, and each
/// queued URB costs memory.
pub const MAX_PARKED_URBS: usize = 4096;

/// Parked IN URBs are completed, and further buffered messages handled, only
/// while less than this much output waits to be sent. Otherwise a few
/// hundred bytes (many 16 MiB IN URBs, then a CBW whose data stage is 4 GiB
/// of padding) queue gigabytes in one call. The output is thus at most this
/// plus one URB's data; the edge sends it and calls [`Session::service`].
pub const MAX_PENDING_OUTPUT: usize = 8 * 1024 * 1024;

/// Arbitrates the exclusive import of the one exported device between
/// connections (the edge implements it over a shared flag).
pub trait ImportGate {
    /// Take the device for this connection; `false` if another one holds it.
    fn try_claim(&mut self) -> bool;
}

/// A single flag owned by the caller: `false` = free, `true` = taken.
impl ImportGate for bool {
    fn try_claim(&mut self) -> bool {
        !std::mem::replace(self, true)
    }
}

/// Why a session gave up on its connection. The edge logs it and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("client queued more than {MAX_PARKED_URBS} IN URBs")]
    TooManyPendingUrbs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for OP_REQ_DEVLIST or OP_REQ_IMPORT.
    Management,
    /// Imported: the connection carries URBs.
    Imported,
    /// Done: flush [`Session::output`] and close; further input is ignored.
    Closing,
}

/// An IN URB waiting for device data.
#[derive(Debug, Clone, Copy)]
struct ParkedIn {
    seqnum: u32,
    length: u32,
    number_of_packets: i32,
}

pub struct Session {
    export: ExportInfo,
    phase: Phase,
    /// Received bytes not yet forming a whole message.
    input: Vec<u8>,
    output: Vec<u8>,
    /// IN queues by endpoint address (one entry per IN endpoint used).
    parked: Vec<(u8, VecDeque<ParkedIn>)>,
    parked_count: usize,
}

impl Session {
    pub fn new(export: ExportInfo) -> Self {
        Self {
            export,
            phase: Phase::Management,
            input: Vec::new(),
            output: Vec::new(),
            parked: Vec::new(),
            parked_count: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The edge should write [`Session::output`] and then close.
    pub fn is_closing(&self) -> bool {
        self.phase == Phase::Closing
    }

    /// Bytes to send to the client.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// Forget the first `n` bytes of [`Session::output`] (they were sent).
    pub fn consume_output(&mut self, n: usize) {
        let n = n.min(self.output.len());
        self.output.drain(..n);
    }

    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// IN URBs currently waiting for data.
    pub fn parked_urbs(&self) -> usize {
        self.parked_count
    }

    /// Whether [`Session::service`] may have work: URBs still parked or
    /// messages still buffered after a call stopped at [`MAX_PENDING_OUTPUT`].
    pub fn wants_service(&self) -> bool {
        self.phase == Phase::Imported && (self.parked_count > 0 || !self.input.is_empty())
    }

    /// Continues where the last call stopped once its output was sent:
    /// completes parked IN URBs and handles buffered messages.
    pub fn service<D: UsbDevice + ?Sized>(
        &mut self,
        dev: &mut D,
        gate: &mut dyn ImportGate,
    ) -> Result<(), SessionError> {
        if self.phase == Phase::Imported {
            self.drain(dev);
        }
        self.receive(&[], dev, gate)
    }

    /// Feed bytes from the client. On `Err` the session is [`Phase::Closing`]:
    /// send what [`Session::output`] holds, log the error and close.
    pub fn receive<D: UsbDevice + ?Sized>(
        &mut self,
        bytes: &[u8],
        dev: &mut D,
        gate: &mut dyn ImportGate,
    ) -> Result<(), SessionError> {
        if self.phase == Phase::Closing {
            return Ok(());
        }
        self.input.extend_from_slice(bytes);
        let mut input = std::mem::take(&mut self.input);
        let mut used = 0;
        let result = self.process(&input, &mut used, dev, gate);
        match result {
            Ok(()) if self.phase != Phase::Closing => {
                input.drain(..used.min(input.len()));
                self.input = input;
            }
            _ => self.phase = Phase::Closing,
        }
        result
    }

    fn process<D: UsbDevice + ?Sized>(
        &mut self,
        input: &[u8],
        used: &mut usize,
        dev: &mut D,
        gate: &mut dyn ImportGate,
    ) -> Result<(), SessionError> {
        loop {
            let rest = input.get(*used..).unwrap_or_default();
            match self.phase {
                Phase::Closing => return Ok(()),
                Phase::Management => match OpRequest::decode(rest)? {
                    Decoded::NeedMore => return Ok(()),
                    Decoded::Done { message, consumed } => {
                        *used += consumed;
                        self.management(message, dev, gate);
                    }
                },
                Phase::Imported if self.output.len() >= MAX_PENDING_OUTPUT => return Ok(()),
                Phase::Imported => match ClientMessage::decode(rest)? {
                    Decoded::NeedMore => return Ok(()),
                    Decoded::Done { message, consumed } => {
                        *used += consumed;
                        match message {
                            ClientMessage::Submit { cmd, data } => self.submit(&cmd, data, dev)?,
                            ClientMessage::Unlink(cmd) => self.unlink(&cmd),
                        }
                        self.drain(dev);
                    }
                },
            }
        }
    }

    fn management<D: UsbDevice + ?Sized>(
        &mut self,
        request: OpRequest,
        dev: &mut D,
        gate: &mut dyn ImportGate,
    ) {
        match request {
            OpRequest::Devlist => {
                debug!("OP_REQ_DEVLIST");
                let reply =
                    OpReply::Devlist { status: OpStatus::OK, devices: vec![self.export.exported(dev)] };
                reply.encode(&mut self.output);
                // usbip_protocol.rst: "Finally the TCP/IP connection is closed."
                self.phase = Phase::Closing;
            }
            OpRequest::Import { busid } => {
                // Only the bytes up to the NUL count: Windows clients leave garbage after it.
                let status = if busid.as_bytes() != self.export.busid.as_bytes() {
                    OpStatus::NODEV
                } else if !gate.try_claim() {
                    OpStatus::DEV_BUSY
                } else {
                    OpStatus::OK
                };
                debug!(busid = %busid.to_string_lossy(), ?status, "OP_REQ_IMPORT");
                if status == OpStatus::OK {
                    dev.reset();
                    let record = self.export.record(dev);
                    OpReply::Import { status, device: Some(record) }.encode(&mut self.output);
                    self.phase = Phase::Imported;
                } else {
                    OpReply::Import { status, device: None }.encode(&mut self.output);
                    self.phase = Phase::Closing;
                }
            }
        }
    }

    fn submit<D: UsbDevice + ?Sized>(
        &mut self,
        cmd: &CmdSubmit,
        data: &[u8],
        dev: &mut D,
    ) -> Result<(), SessionError> {
        let basic = cmd.basic;
        trace!(seqnum = basic.seqnum, ep = basic.ep, dir = ?basic.direction, len = cmd.transfer_buffer_length, "CMD_SUBMIT");
        if basic.ep == 0 {
            self.control(cmd, data, dev);
            return Ok(());
        }
        let Some(address) = bulk_endpoint(cmd, dev) else {
            warn!(ep = basic.ep, dir = ?basic.direction, "URB for an endpoint the device does not have: -EPIPE");
            self.reply(cmd, errno::EPIPE, 0);
            return Ok(());
        };
        if basic.direction == Direction::IN {
            if self.parked_count >= MAX_PARKED_URBS {
                return Err(SessionError::TooManyPendingUrbs);
            }
            let urb = ParkedIn {
                seqnum: basic.seqnum,
                length: cmd.transfer_buffer_length,
                number_of_packets: reply_packets(cmd.number_of_packets),
            };
            match self.parked.iter_mut().find(|(a, _)| *a == address) {
                Some((_, queue)) => queue.push_back(urb),
                None => self.parked.push((address, VecDeque::from([urb]))),
            }
            self.parked_count += 1;
        } else {
            match dev.bulk_out(address, data) {
                OutResult::Accepted(n) => self.reply(cmd, 0, n.min(data.len())),
                OutResult::Stall => self.reply(cmd, errno::EPIPE, 0),
            }
        }
        Ok(())
    }

    /// Endpoint 0. SET_CONFIGURATION, SET_INTERFACE and CLEAR_FEATURE(halt)
    /// arrive here as ordinary requests and are the device's business.
    fn control<D: UsbDevice + ?Sized>(&mut self, cmd: &CmdSubmit, data: &[u8], dev: &mut D) {
        let setup = Setup::from_bytes(cmd.setup);
        if cmd.basic.direction == Direction::IN {
            match dev.control(&setup, &[]) {
                ControlResult::Data(reply) => {
                    let limit = usize::try_from(cmd.transfer_buffer_length).unwrap_or(usize::MAX);
                    let reply = reply.get(..limit).unwrap_or(&reply);
                    let ret =
                        ret_submit(cmd.basic.seqnum, 0, reply.len(), reply_packets(cmd.number_of_packets));
                    ret.encode(reply, &mut self.output);
                }
                ControlResult::Ack => self.reply(cmd, 0, 0),
                ControlResult::Stall => self.reply(cmd, errno::EPIPE, 0),
            }
        } else {
            // An OUT reply never carries data; actual_length is what was consumed.
            match dev.control(&setup, data) {
                ControlResult::Ack | ControlResult::Data(_) => self.reply(cmd, 0, data.len()),
                ControlResult::Stall => self.reply(cmd, errno::EPIPE, 0),
            }
        }
    }

    fn unlink(&mut self, cmd: &CmdUnlink) {
        let mut status = 0;
        for (_, queue) in &mut self.parked {
            if let Some(i) = queue.iter().position(|u| u.seqnum == cmd.unlink_seqnum) {
                queue.remove(i);
                self.parked_count -= 1;
                status = errno::ECONNRESET;
                break;
            }
        }
        debug!(seqnum = cmd.basic.seqnum, unlink = cmd.unlink_seqnum, status, "CMD_UNLINK");
        let ret = RetUnlink { basic: UrbBasic::reply(cmd.basic.seqnum), status };
        self.output.extend_from_slice(&ret.to_bytes());
    }

    /// Complete queued IN URBs, oldest first per endpoint, while the device
    /// has data or stalls.
    fn drain<D: UsbDevice + ?Sized>(&mut self, dev: &mut D) {
        for (address, queue) in &mut self.parked {
            while let Some(urb) = queue.front() {
                if self.output.len() >= MAX_PENDING_OUTPUT
                    || !complete_in(&mut self.output, dev, *address, urb)
                {
                    break;
                }
                queue.pop_front();
                self.parked_count -= 1;
            }
        }
    }

    /// RET_SUBMIT without data.
    fn reply(&mut self, cmd: &CmdSubmit, status: i32, actual_length: usize) {
        let ret = ret_submit(cmd.basic.seqnum, status, actual_length, reply_packets(cmd.number_of_packets));
        self.output.extend_from_slice(&ret.to_bytes());
    }
}

fn ret_submit(seqnum: u32, status: i32, actual_length: usize, number_of_packets: i32) -> RetSubmit {
    RetSubmit {
        basic: UrbBasic::reply(seqnum),
        status,
        actual_length: u32::try_from(actual_length).unwrap_or(u32::MAX),
        start_frame: 0,
        number_of_packets,
        error_count: 0,
    }
}

/// Non-isochronous replies carry number_of_packets 0 (what Linux vhci sends
/// and expects), or -1 when the client used the documented "not ISO" value.
fn reply_packets(requested: i32) -> i32 {
    if requested == -1 { -1 } else { 0 }
}

/// The bulk endpoint address a non-control URB targets, if the active
/// configuration has it.
fn bulk_endpoint<D: UsbDevice + ?Sized>(cmd: &CmdSubmit, dev: &D) -> Option<u8> {
    let number = u8::try_from(cmd.basic.ep).ok().filter(|&n| n <= 15)?;
    let address = if cmd.basic.direction == Direction::IN { number | 0x80 } else { number };
    dev.endpoints()
        .iter()
        .any(|e| e.address == address && e.transfer_type == TransferType::Bulk)
        .then_some(address)
}

/// Try one queued IN URB: the device writes straight into the outgoing
/// buffer after a reserved header. `false` (and nothing written) if the
/// device has no data yet.
fn complete_in<D: UsbDevice + ?Sized>(out: &mut Vec<u8>, dev: &mut D, address: u8, urb: &ParkedIn) -> bool {
    let start = out.len();
    // The length was capped by the codec (MAX_TRANSFER_LENGTH).
    let length = usize::try_from(urb.length).unwrap_or(0);
    out.resize(start + URB_HEADER_LEN + length, 0);
    let data = out.get_mut(start + URB_HEADER_LEN..).unwrap_or_default();
    let (status, actual) = match dev.bulk_in(address, data) {
        InResult::Data(n) => (0, n.min(length)),
        InResult::Stall => (errno::EPIPE, 0),
        InResult::Pending => {
            out.truncate(start);
            return false;
        }
    };
    trace!(seqnum = urb.seqnum, status, actual, "RET_SUBMIT IN");
    out.truncate(start + URB_HEADER_LEN + actual);
    let header = ret_submit(urb.seqnum, status, actual, urb.number_of_packets).to_bytes();
    if let Some(slot) = out.get_mut(start..start + URB_HEADER_LEN) {
        slot.copy_from_slice(&header);
    }
    true
}
