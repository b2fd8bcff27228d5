//! [`EndpointDriver`]: the core for an edge that moves endpoint transfers
//! instead of frames. On a USB device controller (Linux FunctionFS) the
//! kernel does the packets: the edge posts reads on the bulk OUT endpoint
//! and queues writes on the bulk IN endpoint ([`EndpointIo`]), and this
//! driver decides what to post, what to queue and when the medium is written,
//! with the same device calls the framed edges' [`crate::Engine`] makes:
//!
//! - OUT reads sized by [`UsbDevice::out_wanted`]: a controller completes a
//!   read only when it is full or on a short packet, so a read must never
//!   reach past the data-out stage into the next CBW; up to [`OUT_READS`]
//!   reads in flight during a large stage;
//! - IN writes sized by [`UsbDevice::in_available`], at most
//!   [`ENDPOINT_CHUNK`] each, taken from the device only once the IN queue
//!   has room (the controller's queue is the output bound);
//! - write-behind: an OUT read of [`LEND_FROM`] bytes or more is lent to the
//!   device, the next read is posted, then the medium is written;
//! - halts: the controller keeps an endpoint's halt and answers the host's
//!   CLEAR_FEATURE itself, so a halt the device decides is put on the bus
//!   once (an IN halt after the queued writes have gone out) and then cleared
//!   in the device, whose next transfer waits in the controller.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vstick_bot::CBW_LEN;
use vstick_usb::{EP_IN, EP_OUT, InResult, OutResult, UsbDevice};

use crate::connection::DeviceAccess;
use crate::engine::LEND_FROM;

/// The largest bulk IN write and OUT read: a multiple of every bulk max
/// packet size (64, 512, 1024), so only a stage's last transfer is short.
pub const ENDPOINT_CHUNK: usize = 256 * 1024;
/// Bulk OUT reads in flight during a data-out stage: the controller fills
/// one while the device takes the other.
pub const OUT_READS: usize = 2;
/// How long [`EndpointDriver::run`] waits for the host before it looks at
/// its stop flag again.
pub const POLL: Duration = Duration::from_millis(100);
/// How long queued IN writes may wait for the host when the driver stops.
pub const DRAIN: Duration = Duration::from_secs(2);
/// The first pause of an idle driver (nothing to read, send or wait for:
/// unconfigured, or wedged until a Bulk-Only reset); it doubles up to `wait`.
const IDLE_FIRST: Duration = Duration::from_millis(1);

/// The bulk endpoints of a USB device controller, as an edge reaches them
/// (FunctionFS endpoint files with asynchronous I/O).
pub trait EndpointIo {
    /// The bulk max packet size at the speed the host connected with.
    fn max_packet_size(&mut self) -> usize;
    /// Posts a read of `len` bytes on the bulk OUT endpoint. It completes
    /// when full or on a short packet; reads complete in posting order.
    fn post_read(&mut self, len: usize) -> io::Result<()>;
    /// The oldest posted read once it has completed, waiting at most
    /// `timeout` (`None`: not yet).
    fn completed_read(&mut self, timeout: Duration) -> io::Result<Option<Vec<u8>>>;
    /// Whether the IN queue has room for one more write, waiting at most
    /// `timeout` for it.
    fn write_room(&mut self, timeout: Duration) -> io::Result<bool>;
    /// Queues a bulk IN write (called only after [`EndpointIo::write_room`]).
    fn queue_write(&mut self, data: Vec<u8>) -> io::Result<()>;
    /// Waits at most `timeout` for the queued writes to complete; whether
    /// all have.
    fn flush_writes(&mut self, timeout: Duration) -> io::Result<bool>;
    /// Halts `endpoint` (0x81 or 0x02) on the bus.
    fn halt(&mut self, endpoint: u8) -> io::Result<()>;
    /// Drops the posted reads.
    fn cancel_reads(&mut self);
    /// Drops the queued writes.
    fn cancel_writes(&mut self);
}

/// What is in flight on the bulk endpoints of one device.
#[derive(Debug, Default)]
pub struct EndpointDriver {
    /// Lengths of the posted OUT reads, oldest first.
    reads: VecDeque<usize>,
    /// IN writes were queued and are not known to have completed.
    writes_queued: bool,
    /// Halts put on the bus and still set in the device: [IN, OUT].
    bus_halted: [bool; 2],
    /// The device kept the last OUT read's buffer: its write is due.
    lent: bool,
    /// The next pause when idle.
    idle: Option<Duration>,
}

impl EndpointDriver {
    /// Nothing in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// The posted OUT reads' lengths, oldest first.
    pub fn posted_reads(&self) -> impl Iterator<Item = usize> + '_ {
        self.reads.iter().copied()
    }

    /// Serves the endpoints until `stop` is set: [`EndpointDriver::step`]
    /// with [`POLL`]. An I/O error (the host reset the bus or went away:
    /// the controller cancels what was queued) drops what was in flight and
    /// goes on, as a re-plug. On stop, queued writes get [`DRAIN`] to go
    /// out and a kept write reaches the medium.
    pub fn run<E: EndpointIo, A: DeviceAccess>(mut self, io: &mut E, device: &mut A, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            if let Err(e) = self.step(io, device, POLL) {
                tracing::debug!("bulk endpoint I/O: {e}");
                self.abandon(io);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if self.writes_queued {
            let _ = io.flush_writes(DRAIN);
        }
        io.cancel_reads();
        self.finish_write(device);
    }

    /// Drops what is in flight (after an error, or a bus reset seen on ep0).
    pub fn abandon<E: EndpointIo>(&mut self, io: &mut E) {
        io.cancel_reads();
        io.cancel_writes();
        self.reads.clear();
        self.writes_queued = false;
    }

    /// One round: post the OUT reads the device wants, write a kept OUT to
    /// the medium, mirror halts, queue an IN write; else wait at most
    /// `wait` for a read to complete (or the queued writes, or just idle).
    pub fn step<E: EndpointIo, A: DeviceAccess>(
        &mut self,
        io: &mut E,
        device: &mut A,
        wait: Duration,
    ) -> io::Result<()> {
        let mut progress = self.post_reads(io, device)?;
        // The next read is posted: now the kept write reaches the medium.
        progress |= self.finish_write(device);
        if self.mirror_halts(io, device, wait)? {
            self.idle = None;
            return Ok(());
        }
        let available = device.with_device(|d| d.in_available(EP_IN));
        if available > 0 {
            self.idle = None;
            if io.write_room(wait)? {
                self.send(io, device, available)?;
            }
            return Ok(());
        }
        if !self.reads.is_empty() {
            self.idle = None;
            if let Some(data) = io.completed_read(wait)? {
                self.reads.pop_front();
                self.deliver(device, data);
            }
            return Ok(());
        }
        if self.writes_queued {
            self.idle = None;
            if io.flush_writes(wait)? {
                self.writes_queued = false;
            }
            return Ok(());
        }
        if !progress {
            let pause = self.idle.unwrap_or(IDLE_FIRST).min(wait);
            std::thread::sleep(pause);
            self.idle = Some((pause * 2).min(wait));
        }
        Ok(())
    }

    /// Posts reads up to what the device expects (never past it), at most
    /// [`OUT_READS`]; a CBW gets one packet-sized read of its own.
    fn post_reads<E: EndpointIo, A: DeviceAccess>(&mut self, io: &mut E, device: &mut A) -> io::Result<bool> {
        let mut posted_any = false;
        while self.reads.len() < OUT_READS {
            let wanted = device.with_device(|d| d.out_wanted(EP_OUT));
            if wanted == 0 {
                break;
            }
            if wanted <= CBW_LEN {
                // A CBW (or a stage's last few bytes) is one short packet.
                if self.reads.is_empty() {
                    let len = io.max_packet_size();
                    io.post_read(len)?;
                    self.reads.push_back(len);
                    posted_any = true;
                }
                break;
            }
            let posted: usize = self.reads.iter().sum();
            let rest = wanted.saturating_sub(posted);
            if rest == 0 {
                break;
            }
            let len = rest.min(ENDPOINT_CHUNK);
            io.post_read(len)?;
            self.reads.push_back(len);
            posted_any = true;
        }
        Ok(posted_any)
    }

    /// Runs the device's kept write, if any; whether there was one.
    fn finish_write<A: DeviceAccess>(&mut self, device: &mut A) -> bool {
        if !std::mem::take(&mut self.lent) {
            return false;
        }
        // The buffer comes back for nothing: the controller fills its own.
        let _ = device.with_device(|d| d.run_deferred());
        true
    }

    /// Hands a completed OUT read to the device: a large one is lent (its
    /// write is finished by the next step), a small one borrowed. A stall is
    /// mirrored by the next step.
    fn deliver<A: DeviceAccess>(&mut self, device: &mut A, data: Vec<u8>) {
        let result = if data.len() >= LEND_FROM {
            let len = data.len();
            let (result, back) = device.with_device(|d| d.bulk_out_owned(EP_OUT, data, 0..len));
            self.lent = back.is_none();
            result
        } else {
            device.with_device(|d| d.bulk_out(EP_OUT, &data))
        };
        if result == OutResult::Stall {
            tracing::debug!("bulk OUT stalled by the device");
        }
    }

    /// Takes up to [`ENDPOINT_CHUNK`] bytes of IN data from the device and
    /// queues them.
    fn send<E: EndpointIo, A: DeviceAccess>(
        &mut self,
        io: &mut E,
        device: &mut A,
        available: usize,
    ) -> io::Result<()> {
        let mut buf = vec![0; available.min(ENDPOINT_CHUNK)];
        match device.with_device(|d| d.bulk_in(EP_IN, &mut buf)) {
            InResult::Data(n) => {
                buf.truncate(n);
                io.queue_write(buf)?;
                self.writes_queued = true;
            }
            // The device halted IN: the next step mirrors it.
            InResult::Stall | InResult::Pending => {}
        }
        Ok(())
    }

    /// Puts each halt the device set on the bus, once, and clears it in the
    /// device (a wedged device keeps it until a Bulk-Only reset, and is not
    /// halted again meanwhile). Whether the step should start over.
    fn mirror_halts<E: EndpointIo, A: DeviceAccess>(
        &mut self,
        io: &mut E,
        device: &mut A,
        wait: Duration,
    ) -> io::Result<bool> {
        let mut acted = false;
        for (slot, endpoint) in [EP_IN, EP_OUT].into_iter().enumerate() {
            if !device.with_device(|d| d.halted(endpoint)) {
                self.bus_halted[slot] = false;
                continue;
            }
            if !self.bus_halted[slot] {
                if endpoint == EP_IN && self.writes_queued {
                    // A controller refuses to halt an IN endpoint with queued
                    // requests: the host reads them first.
                    if !io.flush_writes(wait)? {
                        return Ok(true);
                    }
                    self.writes_queued = false;
                }
                if endpoint == EP_OUT && !self.reads.is_empty() {
                    io.cancel_reads();
                    self.reads.clear();
                }
                io.halt(endpoint)?;
                tracing::debug!(endpoint, "bulk endpoint halted on the bus");
                self.bus_halted[slot] = true;
                acted = true;
            }
            device.with_device(|d| d.clear_halt(endpoint));
        }
        Ok(acted)
    }
}
