//! One USB/IP connection, sans-io: [`Usbip`] is the USB/IP wire format as a
//! [`Protocol`] of the transport core, and [`Session`] the core's [`Engine`]
//! over it (held IN URBs, bounded output, write-behind live there).
//!
//! Bytes from the client go in through [`Engine::receive`]; replies collect
//! in [`Engine::output`] for the edge to write. The connection starts in the
//! management phase (one OP_REQ_DEVLIST or OP_REQ_IMPORT, as Linux `usbipd`
//! serves them) and, after a successful import, carries URBs until the peer
//! leaves. A connection handed straight to Linux vhci-hcd through its sysfs
//! `attach` file (`vstick serve --local`) has no management phase: it starts
//! imported ([`Usbip::imported`]).
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

use tracing::{debug, info, trace, warn};
use vstick_bot::OutResult;
use vstick_transport::{Context, Engine, Frame, HeldRequest, LentOut, MAX_HELD_IN, Output, Protocol};
use vstick_usb::{ControlResult, Setup, TransferType, UsbDevice};

use crate::codec::{
    ClientMessage, CmdSubmit, CmdUnlink, CodecError, Decoded, Direction, OP_COMMON_LEN, OpReply, OpRequest,
    OpStatus, RetSubmit, RetUnlink, URB_HEADER_LEN, UrbBasic, errno,
};
use crate::export::ExportInfo;

/// Most IN URBs one connection may have queued (the transport core's bound).
/// Linux usb-storage keeps one or a few in flight; thousands mean a broken
/// or hostile client, and each queued URB costs memory.
pub const MAX_PARKED_URBS: usize = MAX_HELD_IN;

/// One USB/IP connection: the transport core's engine over [`Usbip`].
pub type Session<G = bool> = Engine<Usbip<G>>;

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
#[non_exhaustive]
pub enum SessionError {
    /// The bytes are not USB/IP.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// More IN URBs than [`MAX_PARKED_URBS`] wait.
    #[error("client queued more than {MAX_PARKED_URBS} IN URBs")]
    TooManyPendingUrbs,
    /// Input after an earlier error.
    #[error("session already closed after an earlier error: {0}")]
    Closed(String),
}

/// Where the conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for OP_REQ_DEVLIST or OP_REQ_IMPORT.
    Management,
    /// Imported: the connection carries URBs.
    Imported,
    /// Done: flush the output and close; further input is ignored.
    Closing,
}

/// What a parked IN URB's RET_SUBMIT must repeat.
#[derive(Debug, Clone, Copy)]
pub struct UrbTag {
    seqnum: u32,
    number_of_packets: i32,
}

/// An IN URB waiting for device data (its length capped by the codec).
type ParkedIn = HeldRequest<UrbTag>;
type Cx<'a> = Context<'a, UrbTag>;

/// The USB/IP wire format, server side: the management phase (device list,
/// import), then URBs translated to the device. `G` decides whether this
/// connection may import the device.
#[derive(Debug)]
pub struct Usbip<G = bool> {
    export: ExportInfo,
    phase: Phase,
    gate: G,
}

impl<G: ImportGate> Usbip<G> {
    /// The protocol of a new connection exporting `export`, imports
    /// arbitrated by `gate`.
    pub fn new(export: ExportInfo, gate: G) -> Self {
        Self { export, phase: Phase::Management, gate }
    }

    /// A new [`Session`].
    pub fn session(export: ExportInfo, gate: G) -> Session<G> {
        Engine::new(Self::new(export, gate))
    }

    /// Where the conversation is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The import gate (the edge reads whether it holds the device).
    pub fn gate(&self) -> &G {
        &self.gate
    }

    fn management<D: UsbDevice + ?Sized>(&mut self, out: &mut Output, request: OpRequest, dev: &mut D) {
        let mut reply = Vec::new();
        match request {
            OpRequest::Devlist => {
                debug!("OP_REQ_DEVLIST");
                let devlist =
                    OpReply::Devlist { status: OpStatus::OK, devices: vec![self.export.exported(dev)] };
                devlist.encode(&mut reply);
                // usbip_protocol.rst: "Finally the TCP/IP connection is closed."
                self.phase = Phase::Closing;
            }
            OpRequest::Import { busid } => {
                // Only the bytes up to the NUL count: Windows clients leave garbage after it.
                let status = if busid.as_bytes() != self.export.busid.as_bytes() {
                    OpStatus::NODEV
                } else if !self.gate.try_claim() {
                    OpStatus::DEV_BUSY
                } else {
                    OpStatus::OK
                };
                debug!(busid = %busid.to_string_lossy(), ?status, "OP_REQ_IMPORT");
                if status == OpStatus::OK {
                    dev.reset();
                    let record = self.export.record(dev);
                    OpReply::Import { status, device: Some(record) }.encode(&mut reply);
                    info!(busid = %self.export.busid.to_string_lossy(), "USB/IP client imported the device");
                    self.phase = Phase::Imported;
                } else {
                    OpReply::Import { status, device: None }.encode(&mut reply);
                    self.phase = Phase::Closing;
                }
            }
        }
        out.extend_from_slice(&reply);
    }

    fn submit<D: UsbDevice + ?Sized>(
        &mut self,
        cx: &mut Cx<'_>,
        cmd: &CmdSubmit,
        data: &[u8],
        dev: &mut D,
    ) -> Result<(), SessionError> {
        let basic = cmd.basic;
        trace!(seqnum = basic.seqnum, ep = basic.ep, dir = ?basic.direction, len = cmd.transfer_buffer_length, "CMD_SUBMIT");
        if basic.ep == 0 {
            control(cx.out, cmd, data, dev);
            return Ok(());
        }
        let Some(address) = bulk_endpoint(cmd, dev) else {
            warn!(ep = basic.ep, dir = ?basic.direction, "URB for an endpoint the device does not have: -EPIPE");
            reply(cx.out, cmd, errno::EPIPE, 0);
            return Ok(());
        };
        if basic.direction == Direction::IN {
            let urb = ParkedIn {
                endpoint: address,
                length: cmd.transfer_buffer_length,
                tag: UrbTag { seqnum: basic.seqnum, number_of_packets: reply_packets(cmd.number_of_packets) },
            };
            cx.held.push(urb).map_err(|_| SessionError::TooManyPendingUrbs)?;
        } else {
            out_completed(cx.out, cmd, dev.bulk_out(address, data), data.len());
        }
        Ok(())
    }

    /// A large bulk OUT URB in its own buffer, lent to the device (write-behind).
    fn submit_lent<D: UsbDevice + ?Sized>(&mut self, cx: &mut Cx<'_>, lent: LentOut, dev: &mut D) {
        let cmd = match ClientMessage::decode(lent.frame()) {
            Ok(Decoded::Done { message: ClientMessage::Submit { cmd, .. }, .. }) => cmd,
            _ => return cx.recycle(lent),
        };
        let Some(address) = bulk_endpoint(&cmd, dev) else {
            warn!(ep = cmd.basic.ep, "URB for an endpoint the device does not have: -EPIPE");
            reply(cx.out, &cmd, errno::EPIPE, 0);
            return cx.recycle(lent);
        };
        let len = lent.data_range().len();
        let result = cx.bulk_out_lent(dev, address, lent);
        out_completed(cx.out, &cmd, result, len);
    }

    fn unlink(&mut self, cx: &mut Cx<'_>, cmd: &CmdUnlink) {
        let status = match cx.held.remove_first(|u| u.tag.seqnum == cmd.unlink_seqnum) {
            Some(_) => errno::ECONNRESET,
            None => 0,
        };
        debug!(seqnum = cmd.basic.seqnum, unlink = cmd.unlink_seqnum, status, "CMD_UNLINK");
        let ret = RetUnlink { basic: UrbBasic::reply(cmd.basic.seqnum), status };
        cx.out.extend_from_slice(&ret.to_bytes());
    }
}

impl Usbip<bool> {
    /// The protocol of a connection that carries URBs from its first byte:
    /// the peer is Linux vhci-hcd given the socket through sysfs `attach`,
    /// which skips OP_REQ_IMPORT. The device is reset when the connection
    /// starts ([`Protocol::on_connect`]), as an import resets it.
    pub fn imported(export: ExportInfo) -> Self {
        Self { export, phase: Phase::Imported, gate: true }
    }

    /// A new [`Session`] in the imported phase ([`Usbip::imported`]).
    pub fn imported_session(export: ExportInfo) -> Session<bool> {
        Engine::new(Self::imported(export))
    }
}

impl<G: ImportGate> Protocol for Usbip<G> {
    type Tag = UrbTag;
    type Error = SessionError;

    /// A connection that starts imported resets the device now, as a
    /// successful OP_REQ_IMPORT would (a re-plug).
    fn on_connect<D: UsbDevice + ?Sized>(&mut self, dev: &mut D) {
        if self.phase == Phase::Imported {
            info!(busid = %self.export.busid.to_string_lossy(), "USB/IP session starts imported");
            dev.reset();
        }
    }

    fn header_len(&self) -> usize {
        match self.phase {
            Phase::Management => OP_COMMON_LEN,
            Phase::Imported | Phase::Closing => URB_HEADER_LEN,
        }
    }

    fn frame_len(&self, buf: &[u8]) -> Result<Option<usize>, SessionError> {
        Ok(match self.phase {
            Phase::Management => OpRequest::frame_len(buf)?,
            Phase::Imported | Phase::Closing => ClientMessage::frame_len(buf)?,
        })
    }

    fn out_data_start(&self, frame: &[u8]) -> Option<usize> {
        // A CMD_SUBMIT OUT (command 1, direction 0) to a non-control endpoint.
        let word = |at: usize| frame.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
        let bulk_out = self.phase == Phase::Imported
            && word(0x00) == Some(1)
            && word(0x0C) == Some(Direction::OUT.0)
            && word(0x10).is_some_and(|ep| ep != 0);
        bulk_out.then_some(URB_HEADER_LEN)
    }

    fn handle<D: UsbDevice + ?Sized>(
        &mut self,
        cx: &mut Cx<'_>,
        dev: &mut D,
        frame: Frame<'_>,
    ) -> Result<(), SessionError> {
        let bytes = match frame {
            Frame::Lent(lent) => {
                self.submit_lent(cx, lent, dev);
                return Ok(());
            }
            Frame::Borrowed(bytes) => bytes,
        };
        match self.phase {
            Phase::Closing => {}
            Phase::Management => {
                if let Decoded::Done { message, .. } = OpRequest::decode(bytes)? {
                    self.management(cx.out, message, dev);
                }
            }
            Phase::Imported => match ClientMessage::decode(bytes)? {
                Decoded::Done { message: ClientMessage::Submit { cmd, data }, .. } => {
                    self.submit(cx, &cmd, data, dev)?
                }
                Decoded::Done { message: ClientMessage::Unlink(cmd), .. } => self.unlink(cx, &cmd),
                Decoded::NeedMore => {}
            },
        }
        Ok(())
    }

    fn in_reply_prefix(&self) -> usize {
        URB_HEADER_LEN
    }

    fn write_in_reply_header(&self, urb: &ParkedIn, len: usize, dst: &mut [u8]) -> Result<(), SessionError> {
        trace!(seqnum = urb.tag.seqnum, actual = len, "RET_SUBMIT IN");
        let header = ret_submit(urb.tag.seqnum, 0, len, urb.tag.number_of_packets).to_bytes();
        if let Some(slot) = dst.get_mut(..URB_HEADER_LEN) {
            slot.copy_from_slice(&header);
        }
        Ok(())
    }

    fn stall_in_reply(&self, urb: &ParkedIn, out: &mut Output) -> Result<(), SessionError> {
        trace!(seqnum = urb.tag.seqnum, "RET_SUBMIT IN: -EPIPE");
        out.extend_from_slice(
            &ret_submit(urb.tag.seqnum, errno::EPIPE, 0, urb.tag.number_of_packets).to_bytes(),
        );
        Ok(())
    }

    fn handshake_done(&self) -> bool {
        self.phase != Phase::Management
    }

    fn is_closing(&self) -> bool {
        self.phase == Phase::Closing
    }

    fn closed_error(reason: String) -> SessionError {
        SessionError::Closed(reason)
    }
}

/// Endpoint 0. SET_CONFIGURATION, SET_INTERFACE and CLEAR_FEATURE(halt)
/// arrive here as ordinary requests and are the device's business.
fn control<D: UsbDevice + ?Sized>(out: &mut Output, cmd: &CmdSubmit, data: &[u8], dev: &mut D) {
    let setup = Setup::from_bytes(cmd.setup);
    if cmd.basic.direction == Direction::IN {
        match dev.control(&setup, &[]) {
            ControlResult::Data(bytes) => {
                let limit = usize::try_from(cmd.transfer_buffer_length).unwrap_or(usize::MAX);
                let bytes = bytes.get(..limit).unwrap_or(&bytes);
                let ret = ret_submit(cmd.basic.seqnum, 0, bytes.len(), reply_packets(cmd.number_of_packets));
                out.extend_from_slice(&ret.to_bytes());
                out.extend_from_slice(bytes);
            }
            ControlResult::Ack => reply(out, cmd, 0, 0),
            ControlResult::Stall => reply(out, cmd, errno::EPIPE, 0),
        }
    } else {
        // An OUT reply never carries data; actual_length is what was consumed.
        match dev.control(&setup, data) {
            ControlResult::Ack | ControlResult::Data(_) => reply(out, cmd, 0, data.len()),
            ControlResult::Stall => reply(out, cmd, errno::EPIPE, 0),
        }
    }
}

/// The RET_SUBMIT of a bulk OUT of `len` bytes.
fn out_completed(out: &mut Output, cmd: &CmdSubmit, result: OutResult, len: usize) {
    match result {
        OutResult::Accepted(n) => reply(out, cmd, 0, n.min(len)),
        OutResult::Stall => reply(out, cmd, errno::EPIPE, 0),
    }
}

/// RET_SUBMIT without data.
fn reply(out: &mut Output, cmd: &CmdSubmit, status: i32, actual_length: usize) {
    let ret = ret_submit(cmd.basic.seqnum, status, actual_length, reply_packets(cmd.number_of_packets));
    out.extend_from_slice(&ret.to_bytes());
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
