//! The transport core every vstick edge shares.
//!
//! An edge (usbredir, USB/IP, and SPICE and vhci-hcd, which carry those two)
//! is a translation of its wire format onto this core: it implements
//! [`Protocol`] (how frames are delimited, what each one means, how a bulk IN
//! reply is framed) and the core does the rest, once for all of them:
//!
//! - input assembly, with the rest of a large frame read in place
//!   ([`Engine::receive_space`]);
//! - held bulk IN requests, FIFO per endpoint ([`HeldIn`], at most
//!   [`MAX_HELD_IN`]), answered in place in the output, the reply sized by
//!   what the device has ([`vstick_usb::UsbDevice::in_available`]) instead of
//!   zero-filled to the peer's request;
//! - output in bounded batches ([`MAX_PENDING_OUTPUT`]);
//! - write-behind: a large bulk OUT's buffer is lent to the device, the
//!   completion is sent, then [`Engine::run_deferred`] writes the medium;
//! - [`Connection`], the sans-io driver (an engine with its device), and
//!   [`drive`] (feature `tokio`, on by default), the loop every tokio edge runs;
//! - [`EndpointDriver`], the same decisions for an edge that moves endpoint
//!   transfers instead of frames (a USB device controller through Linux
//!   FunctionFS, [`EndpointIo`]): OUT reads sized by what the device expects,
//!   IN writes by what it has, write-behind, halts put on the bus.
#![warn(missing_docs)]

mod connection;
#[cfg(feature = "tokio")]
mod drive;
mod endpoints;
mod engine;
mod held_in;
mod output;

pub use connection::{Connection, DeviceAccess};
#[cfg(feature = "tokio")]
pub use drive::{DriveError, READ_CHUNK, drive};
pub use endpoints::{DRAIN, ENDPOINT_CHUNK, EndpointDriver, EndpointIo, OUT_READS, POLL};
pub use engine::{Context, Engine, Frame, LEND_FROM, LentOut, Protocol, RECEIVE_ROOM};
pub use held_in::{HeldIn, HeldRequest, MAX_HELD_IN, QueueFull};
pub use output::{KEEP_BUFFER, MAX_PENDING_OUTPUT, Output};
