//! [`Engine`]: one connection's transport state over a [`Protocol`], the
//! wire format that a usbredir or USB/IP session translates.

use std::ops::Range;

use vstick_usb::{InResult, OutResult, UsbDevice};

use crate::held_in::{HeldIn, HeldRequest};
use crate::output::{KEEP_BUFFER, Output};

/// Bulk OUT data from this size on is lent to the device with its frame
/// buffer, so the medium is written after the completion is sent (the
/// write's file I/O overlaps the peer's next steps). Smaller transfers (CBWs,
/// short writes) are handled in place.
pub const LEND_FROM: usize = 16 * 1024;

/// How far [`Engine::receive_space`] reaches past the bytes received: the
/// room for a large frame grows with what arrives, so a header announcing
/// 128 MiB costs at most this much until the data comes.
pub const RECEIVE_ROOM: usize = 1024 * 1024;

/// A wire format: how frames are delimited and what each one means. The
/// [`Engine`] does the rest (input assembly, held IN requests, output
/// bounds, write-behind), identically for every edge.
pub trait Protocol {
    /// The protocol's id of a held bulk IN request ([`HeldRequest::tag`]).
    type Tag: Copy;
    /// Why the connection must end.
    type Error: std::error::Error;

    /// Queues what this side says first (usbredir's hello; nothing for USB/IP).
    fn greeting(&mut self, out: &mut Output) -> Result<(), Self::Error> {
        let _ = out;
        Ok(())
    }

    /// The device as a new peer sees it (usbredir resets it, as a re-plug would).
    fn on_connect<D: UsbDevice + ?Sized>(&mut self, dev: &mut D) {
        let _ = dev;
    }

    /// Bytes [`Protocol::frame_len`] needs to tell a frame's length.
    fn header_len(&self) -> usize;

    /// Total length of the frame at the start of `buf`, once its header is
    /// in (`Ok(None)` before); an error for a header no valid frame has.
    /// Lengths are capped here, before anything is buffered for them.
    fn frame_len(&self, buf: &[u8]) -> Result<Option<usize>, Self::Error>;

    /// Where the data of a bulk OUT starts in the complete `frame`, if it is
    /// one whose buffer may be lent to the device ([`Frame::Lent`]); the data
    /// runs to the end of the frame.
    fn out_data_start(&self, frame: &[u8]) -> Option<usize>;

    /// Handles one complete frame: replies go to `cx.out`, bulk IN requests
    /// to `cx.held` (the engine answers them).
    fn handle<D: UsbDevice + ?Sized>(
        &mut self,
        cx: &mut Context<'_, Self::Tag>,
        dev: &mut D,
        frame: Frame<'_>,
    ) -> Result<(), Self::Error>;

    /// Header bytes in front of the data of a bulk IN reply.
    fn in_reply_prefix(&self) -> usize;

    /// Writes the header of a reply to `request` carrying `len` data bytes
    /// into `dst` ([`Protocol::in_reply_prefix`] bytes).
    fn write_in_reply_header(
        &self,
        request: &HeldRequest<Self::Tag>,
        len: usize,
        dst: &mut [u8],
    ) -> Result<(), Self::Error>;

    /// Queues the reply to a held request whose endpoint stalled.
    fn stall_in_reply(&self, request: &HeldRequest<Self::Tag>, out: &mut Output) -> Result<(), Self::Error>;

    /// Whether the peer completed its opening (usbredir hello, USB/IP import
    /// request); until then the edge gives it a deadline.
    fn handshake_done(&self) -> bool;

    /// Whether this side ended the conversation: send the output, then close.
    fn is_closing(&self) -> bool {
        false
    }

    /// The error for input after the session failed with `reason`.
    fn closed_error(reason: String) -> Self::Error;
}

/// A complete frame as the engine hands it to [`Protocol::handle`].
#[derive(Debug)]
pub enum Frame<'a> {
    /// The frame's bytes.
    Borrowed(&'a [u8]),
    /// A large bulk OUT whose buffer the device may keep ([`Context::bulk_out_lent`]).
    Lent(LentOut),
}

/// A received frame in its own buffer, data at [`LentOut::data_range`].
#[derive(Debug)]
pub struct LentOut {
    buf: Vec<u8>,
    data: Range<usize>,
}

impl LentOut {
    /// The whole frame (header and data).
    pub fn frame(&self) -> &[u8] {
        self.buf.get(..self.data.end).unwrap_or_default()
    }

    /// Where the bulk OUT data lies in [`LentOut::frame`].
    pub fn data_range(&self) -> Range<usize> {
        self.data.clone()
    }
}

/// What a [`Protocol`] may touch while it handles a frame.
pub struct Context<'a, T> {
    /// Output queued for the peer.
    pub out: &'a mut Output,
    /// Held bulk IN requests.
    pub held: &'a mut HeldIn<T>,
    lend: &'a mut Lend,
}

impl<T> Context<'_, T> {
    /// Offers the lent frame's data to the device as a bulk OUT to
    /// `endpoint`. The device may keep the buffer and write the medium in
    /// [`Engine::run_deferred`], after the edge sent the completion.
    pub fn bulk_out_lent<D: UsbDevice + ?Sized>(
        &mut self,
        dev: &mut D,
        endpoint: u8,
        data: LentOut,
    ) -> OutResult {
        let (result, returned) = dev.bulk_out_owned(endpoint, data.buf, data.data);
        match returned {
            Some(buf) => self.lend.returned = Some(buf),
            None => self.lend.lent = true,
        }
        result
    }

    /// Gives back a lent frame that was refused without reaching the device.
    pub fn recycle(&mut self, data: LentOut) {
        self.lend.returned = Some(data.buf);
    }
}

/// The write-behind cycle: a buffer lent to the device, and the buffers that
/// come back for the next frames.
#[derive(Debug, Default)]
struct Lend {
    /// The device kept a frame buffer: [`Engine::run_deferred`] is due.
    lent: bool,
    /// A buffer the device gave back, the next input buffer after a lend.
    spare: Vec<u8>,
    /// The buffer of a frame the device did not keep.
    returned: Option<Vec<u8>>,
}

/// One connection's transport state: input assembly, held bulk IN requests
/// answered in place, bounded output and write-behind, over the wire format
/// `P`. Sans-io: bytes in, bytes out; the only I/O is the device's (reads in
/// `receive`/`service`, deferred writes in `run_deferred`).
///
/// Call order, per chunk of received bytes: [`Engine::receive`] (or
/// [`Engine::receive_space`] + [`Engine::receive_in_place`]); then send the
/// output ([`Engine::swap_output`]) and, while [`Engine::wants_service`], call
/// [`Engine::service`] and send again; once all is sent,
/// [`Engine::run_deferred`] if [`Engine::has_lent_buffer`], and send what it
/// queued. [`crate::Connection::poll_transmit`] does exactly this.
pub struct Engine<P: Protocol> {
    proto: P,
    /// A frame split across receives: `inbuf[..in_len]`, never more than one
    /// frame. Bytes past `in_len` are initialised spare room kept from
    /// earlier frames, so [`Engine::receive_space`] lends it without zeroing.
    inbuf: Vec<u8>,
    in_len: usize,
    out: Output,
    held: HeldIn<P::Tag>,
    lend: Lend,
    failed: Option<String>,
}

impl<P: Protocol> Engine<P> {
    /// A session speaking `proto`, its greeting queued. An encoding error of
    /// the greeting is kept and returned by the first call.
    pub fn new(mut proto: P) -> Self {
        let mut out = Output::new();
        let failed = proto.greeting(&mut out).err().map(|e| e.to_string());
        Self {
            proto,
            inbuf: Vec::new(),
            in_len: 0,
            out,
            held: HeldIn::default(),
            lend: Lend::default(),
            failed,
        }
    }

    /// The wire format's own state (peer hello, import phase, ...).
    pub fn protocol(&self) -> &P {
        &self.proto
    }

    /// See [`Protocol::on_connect`].
    pub fn on_connect<D: UsbDevice + ?Sized>(&mut self, dev: &mut D) {
        self.proto.on_connect(dev);
    }

    /// Feeds bytes from the peer, split or coalesced in any way. On error the
    /// connection must end once the output is sent; the session stays failed.
    pub fn receive<D: UsbDevice + ?Sized>(&mut self, dev: &mut D, bytes: &[u8]) -> Result<(), P::Error> {
        self.check_open()?;
        let result = self.receive_frames(dev, bytes);
        self.fail_on_error(result)
    }

    /// Room for more of the frame being received, once its header is in (at
    /// most [`RECEIVE_ROOM`] bytes): an edge may read the peer's next bytes
    /// straight into it and report them with [`Engine::receive_in_place`]
    /// (one copy less per bulk OUT). Empty when no frame is partly received,
    /// its length is not known yet, or the session has failed; then use
    /// [`Engine::receive`].
    pub fn receive_space(&mut self) -> &mut [u8] {
        let want = match self.stashed_frame_len() {
            Some(want) if self.failed.is_none() => want,
            _ => return &mut [],
        };
        let end = want.min(self.in_len.saturating_add(RECEIVE_ROOM));
        if self.inbuf.len() < end {
            // Zeroes only the growth, once: the room is kept for later frames.
            self.inbuf.resize(end, 0);
        }
        self.inbuf.get_mut(self.in_len..end).unwrap_or_default()
    }

    /// Handles `n` bytes the edge wrote at the start of
    /// [`Engine::receive_space`] (more than that room is cut to it).
    pub fn receive_in_place<D: UsbDevice + ?Sized>(&mut self, dev: &mut D, n: usize) -> Result<(), P::Error> {
        self.check_open()?;
        let Some(want) = self.stashed_frame_len() else {
            return Ok(());
        };
        self.in_len = (self.in_len + n).min(want).min(self.inbuf.len());
        let result = if self.in_len == want { self.complete_stashed(dev) } else { Ok(()) };
        self.fail_on_error(result)
    }

    /// Answers held bulk IN requests after the output was sent (they wait
    /// while [`crate::MAX_PENDING_OUTPUT`] is queued).
    pub fn service<D: UsbDevice + ?Sized>(&mut self, dev: &mut D) -> Result<(), P::Error> {
        self.check_open()?;
        let result = self.drain(dev);
        self.fail_on_error(result)
    }

    /// Whether [`Engine::service`] may have work once the output is sent.
    pub fn wants_service(&self) -> bool {
        self.failed.is_none() && !self.held.is_empty()
    }

    /// Bulk IN requests held waiting for the device.
    pub fn held_in_requests(&self) -> usize {
        self.held.len()
    }

    /// Bytes of a partial frame held until the rest arrives (at most one frame).
    pub fn buffered_input_len(&self) -> usize {
        self.in_len
    }

    /// The queued output.
    pub fn output(&self) -> &[u8] {
        self.out.as_slice()
    }

    /// Bytes of output room initialised so far (what filling replies in
    /// place has zeroed; tests count it).
    pub fn output_initialised(&self) -> usize {
        self.out.initialised()
    }

    /// Everything queued for sending, as a `Vec`.
    pub fn take_output(&mut self) -> Vec<u8> {
        self.out.take()
    }

    /// Exchanges the queued output with `buf` (which should be empty: both
    /// keep their room for the next batches).
    pub fn swap_output(&mut self, buf: &mut Output) {
        if buf.is_empty() {
            self.out.swap(buf);
        } else {
            buf.extend_from_slice(self.out.as_slice());
            self.out.clear();
        }
    }

    /// Whether the device kept a frame buffer whose write waits for
    /// [`Engine::run_deferred`].
    pub fn has_lent_buffer(&self) -> bool {
        self.lend.lent
    }

    /// Once the output is sent: the write a lent bulk OUT left for later
    /// reaches the medium, its buffer comes back for the next frames, and
    /// held IN requests are answered (the CSW that waited for the write).
    pub fn run_deferred<D: UsbDevice + ?Sized>(&mut self, dev: &mut D) -> Result<(), P::Error> {
        if !self.lend.lent {
            return Ok(());
        }
        let buf = dev.run_deferred();
        self.reclaim(buf);
        self.service(dev)
    }

    /// Takes back a buffer [`UsbDevice::run_deferred`] returned, for reuse.
    pub fn reclaim(&mut self, buf: Option<Vec<u8>>) {
        self.lend.lent = false;
        if let Some(buf) = buf
            && buf.len() <= KEEP_BUFFER
            && buf.len() > self.lend.spare.len()
        {
            self.lend.spare = buf;
        }
    }

    /// Whether the peer completed its opening ([`Protocol::handshake_done`]).
    pub fn handshake_done(&self) -> bool {
        self.proto.handshake_done()
    }

    /// Whether the connection should close once the output is sent: the
    /// protocol ended it, or the session failed.
    pub fn is_closing(&self) -> bool {
        self.failed.is_some() || self.proto.is_closing()
    }

    fn check_open(&self) -> Result<(), P::Error> {
        match &self.failed {
            Some(reason) => Err(P::closed_error(reason.clone())),
            None => Ok(()),
        }
    }

    fn fail_on_error(&mut self, result: Result<(), P::Error>) -> Result<(), P::Error> {
        if let Err(e) = &result {
            self.failed = Some(e.to_string());
            self.inbuf = Vec::new();
            self.in_len = 0;
        }
        result
    }

    /// Total length of the partly received frame, when its header is in.
    fn stashed_frame_len(&self) -> Option<usize> {
        if self.in_len == 0 {
            return None;
        }
        let held = self.inbuf.get(..self.in_len)?;
        self.proto.frame_len(held).ok().flatten()
    }

    fn receive_frames<D: UsbDevice + ?Sized>(&mut self, dev: &mut D, bytes: &[u8]) -> Result<(), P::Error> {
        let mut rest = bytes;
        loop {
            if self.proto.is_closing() {
                return Ok(());
            }
            if self.in_len == 0 {
                if rest.is_empty() {
                    return Ok(());
                }
                match self.proto.frame_len(rest)? {
                    Some(n) if n <= rest.len() => {
                        let (frame, tail) = rest.split_at(n);
                        self.dispatch(dev, Frame::Borrowed(frame))?;
                        rest = tail;
                    }
                    // Less than one frame (its length, if known, was capped).
                    _ => {
                        self.stash(rest);
                        return Ok(());
                    }
                }
            } else {
                // Top up the partial frame with just what it lacks.
                let held = self.inbuf.get(..self.in_len).unwrap_or_default();
                let want = self.proto.frame_len(held)?.unwrap_or(self.proto.header_len());
                let missing = want.saturating_sub(self.in_len);
                let (head, tail) = rest.split_at(missing.min(rest.len()));
                self.stash(head);
                rest = tail;
                if self.in_len < want {
                    return Ok(());
                }
                // Only the header may have been completed: then loop to learn the length.
                self.complete_stashed(dev)?;
            }
        }
    }

    /// Appends `bytes` to the partial frame, reusing spare room.
    fn stash(&mut self, bytes: &[u8]) {
        let end = self.in_len + bytes.len();
        if self.inbuf.len() < end {
            self.inbuf.resize(end, 0);
        }
        if let Some(dst) = self.inbuf.get_mut(self.in_len..end) {
            dst.copy_from_slice(bytes);
        }
        self.in_len = end;
    }

    /// Handles the frame in `inbuf[..in_len]` if it is complete, lending its
    /// buffer when it is a large bulk OUT.
    fn complete_stashed<D: UsbDevice + ?Sized>(&mut self, dev: &mut D) -> Result<(), P::Error> {
        let len = self.in_len;
        let frame = self.inbuf.get(..len).unwrap_or_default();
        match self.proto.frame_len(frame)? {
            Some(want) if want == len => {}
            // Only the header is complete (or the caller over-filled: cut at the frame).
            _ => return Ok(()),
        }
        let lend_at =
            self.proto.out_data_start(frame).filter(|&start| len.saturating_sub(start) >= LEND_FROM);
        self.in_len = 0;
        let buf = std::mem::take(&mut self.inbuf);
        let result = match lend_at {
            Some(start) => {
                let result = self.dispatch(dev, Frame::Lent(LentOut { buf, data: start..len }));
                self.inbuf = match self.lend.returned.take() {
                    Some(buf) => buf,
                    None => std::mem::take(&mut self.lend.spare),
                };
                result
            }
            None => {
                let result = self.dispatch(dev, Frame::Borrowed(buf.get(..len).unwrap_or_default()));
                self.inbuf = buf;
                result
            }
        };
        if self.inbuf.len() > KEEP_BUFFER {
            self.inbuf = Vec::new();
        }
        result
    }

    fn dispatch<D: UsbDevice + ?Sized>(&mut self, dev: &mut D, frame: Frame<'_>) -> Result<(), P::Error> {
        let lends = matches!(frame, Frame::Lent(_));
        let mut cx = Context { out: &mut self.out, held: &mut self.held, lend: &mut self.lend };
        self.proto.handle(&mut cx, dev, frame)?;
        // The device kept this write for later: asking it for IN data now
        // would make it write before the write's completion is sent. The
        // held requests are answered once it is (`run_deferred`, or the next
        // frame).
        if lends && self.lend.lent {
            return Ok(());
        }
        self.drain(dev)
    }

    /// Answers held bulk IN requests, FIFO per endpoint, while the device has
    /// data (or a STALL) for the head of a queue and the output has room.
    /// The reply is read straight into the output, sized by what the device
    /// has ([`UsbDevice::in_available`]), not by what the peer asked for.
    fn drain<D: UsbDevice + ?Sized>(&mut self, dev: &mut D) -> Result<(), P::Error> {
        let prefix = self.proto.in_reply_prefix();
        for index in 0..16 {
            while let Some(request) = self.held.front(index) {
                if self.out.is_full() {
                    return Ok(());
                }
                let endpoint = request.endpoint;
                let room_len = request.max_len().min(dev.in_available(endpoint));
                let Some((header, data)) = self
                    .out
                    .room(prefix.saturating_add(room_len))
                    .and_then(|room| room.split_at_mut_checked(prefix))
                else {
                    return Ok(());
                };
                match dev.bulk_in(endpoint, data) {
                    InResult::Pending => break,
                    InResult::Data(n) => {
                        let n = n.min(room_len);
                        self.proto.write_in_reply_header(&request, n, header)?;
                        self.out.commit(prefix + n);
                    }
                    InResult::Stall => self.proto.stall_in_reply(&request, &mut self.out)?,
                }
                self.held.pop(index);
            }
        }
        Ok(())
    }
}
