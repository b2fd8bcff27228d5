//! [`Connection`]: an [`Engine`] with its device, driven by any loop.

use std::sync::{Arc, Mutex};

use vstick_usb::UsbDevice;

use crate::engine::{Engine, Protocol};
use crate::output::Output;

/// How a connection reaches its device: owned, borrowed, or shared behind a
/// mutex with a control socket. The device is locked only for the length of
/// one call, never across socket I/O.
pub trait DeviceAccess {
    /// The device.
    type Device: UsbDevice + ?Sized;
    /// Runs `f` with the device.
    fn with_device<R>(&mut self, f: impl FnOnce(&mut Self::Device) -> R) -> R;
}

impl<D: UsbDevice + ?Sized> DeviceAccess for &mut D {
    type Device = D;
    fn with_device<R>(&mut self, f: impl FnOnce(&mut D) -> R) -> R {
        f(self)
    }
}

impl<D: UsbDevice + ?Sized> DeviceAccess for &Mutex<D> {
    type Device = D;
    fn with_device<R>(&mut self, f: impl FnOnce(&mut D) -> R) -> R {
        // A panic elsewhere poisoned the lock; the device state is still the
        // best there is, and the next connection resets it.
        f(&mut self.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

impl<D: UsbDevice + ?Sized> DeviceAccess for Arc<Mutex<D>> {
    type Device = D;
    fn with_device<R>(&mut self, f: impl FnOnce(&mut D) -> R) -> R {
        f(&mut self.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

impl<T: vstick_bot::CommandTarget> DeviceAccess for vstick_usb::MassStorageDevice<T> {
    type Device = Self;
    fn with_device<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        f(self)
    }
}

/// One connection: a session and its device. Sans-io: the caller reads and
/// writes the bytes, from a tokio task ([`crate::drive`]) or a loop of its own:
///
/// 1. [`Connection::receive`] the bytes read from the peer (or read them
///    into [`Connection::receive_space`] and call [`Connection::receive_in_place`]);
/// 2. while [`Connection::poll_transmit`] gives a batch, write all of it
///    before asking for the next;
/// 3. close once [`Connection::is_closing`] (after step 2, also on an error
///    from step 1); else back to step 1.
///
/// The device's file I/O happens inside step 1 (commands, small writes) and
/// step 2 (reads for held IN requests, and the write-behind of a large
/// write: once the batch with its completion was written and nothing else
/// waits, `poll_transmit` has the device write the medium, then answers the
/// requests that waited for it), never elsewhere.
pub struct Connection<P: Protocol, A: DeviceAccess> {
    engine: Engine<P>,
    device: A,
    batch: Output,
    handed_out: bool,
}

impl<P: Protocol, A: DeviceAccess> Connection<P, A> {
    /// Starts a connection: the device is prepared for a new peer
    /// ([`Protocol::on_connect`]) and the session's greeting is queued.
    pub fn new(mut engine: Engine<P>, mut device: A) -> Self {
        device.with_device(|dev| engine.on_connect(dev));
        Self { engine, device, batch: Output::new(), handed_out: false }
    }

    /// The session.
    pub fn engine(&self) -> &Engine<P> {
        &self.engine
    }

    /// The device handle.
    pub fn device(&mut self) -> &mut A {
        &mut self.device
    }

    /// Step 1: bytes read from the peer.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), P::Error> {
        let engine = &mut self.engine;
        self.device.with_device(|dev| engine.receive(dev, bytes))
    }

    /// Step 1, zero-copy: room to read the rest of a partly received frame
    /// into (empty: read into a buffer of your own and use `receive`).
    pub fn receive_space(&mut self) -> &mut [u8] {
        self.engine.receive_space()
    }

    /// Step 1, zero-copy: `n` bytes were read into [`Connection::receive_space`].
    pub fn receive_in_place(&mut self, n: usize) -> Result<(), P::Error> {
        let engine = &mut self.engine;
        self.device.with_device(|dev| engine.receive_in_place(dev, n))
    }

    /// Step 2: the next batch to write, `None` when there is nothing more.
    /// Each call after the first assumes the previous batch was written: it
    /// answers the held IN requests that waited for room
    /// ([`crate::MAX_PENDING_OUTPUT`]) and, once nothing else is queued, runs
    /// the write a large bulk OUT left for after its completion
    /// ([`Engine::run_deferred`]).
    pub fn poll_transmit(&mut self) -> Result<Option<&[u8]>, P::Error> {
        if std::mem::take(&mut self.handed_out) {
            self.batch.clear();
            if self.engine.wants_service() {
                let engine = &mut self.engine;
                self.device.with_device(|dev| engine.service(dev))?;
            }
        }
        self.engine.swap_output(&mut self.batch);
        if self.batch.is_empty() && self.engine.has_lent_buffer() {
            // Everything before, the write's completion included, was written.
            let engine = &mut self.engine;
            self.device.with_device(|dev| engine.run_deferred(dev))?;
            self.engine.swap_output(&mut self.batch);
        }
        if self.batch.is_empty() {
            return Ok(None);
        }
        self.handed_out = true;
        Ok(Some(self.batch.as_slice()))
    }

    /// Whether the peer completed its opening (edges time out peers that do not).
    pub fn handshake_done(&self) -> bool {
        self.engine.handshake_done()
    }

    /// Step 4: close once the output is written.
    pub fn is_closing(&self) -> bool {
        self.engine.is_closing()
    }
}
