//! USB/IP export of the vstick device (see ARCHITECTURE.md).
//!
//! A Linux (`usbip attach`) or Windows (usbip-win2) client lists the device
//! with OP_REQ_DEVLIST, imports it with OP_REQ_IMPORT, then drives it with
//! CMD_SUBMIT / CMD_UNLINK, exactly as if it were a stick in a remote host.
//!
//! - [`codec`]: the wire format, total decoders, byte-exact encoders.
//! - [`session`]: the USB/IP wire format as a protocol of the transport
//!   core ([`Usbip`]) and [`Session`], the core's sans-io engine over it,
//!   driving a [`UsbDevice`] (the shared `vstick_usb::MassStorageDevice`).
//! - [`net`]: the tokio TCP server, [`serve`].
//!
//! Limits on what a peer can make the server hold (each enforced before
//! allocating): one URB's `transfer_buffer_length` ≤
//! [`codec::MAX_TRANSFER_LENGTH`] (16 MiB), at most [`MAX_PARKED_URBS`]
//! (4096) IN URBs waiting per connection; beyond either the connection is
//! closed with a logged reason. Isochronous transfers are not supported
//! (the device has no isochronous endpoint).

#![warn(missing_docs)]

pub mod codec;
pub mod export;
#[cfg(feature = "tokio")]
pub mod net;
pub mod session;

pub use export::{DEFAULT_BUSID, ExportInfo, InvalidBusId};
#[cfg(feature = "tokio")]
pub use net::{DEFAULT_PORT, serve};
pub use session::{ImportGate, MAX_PARKED_URBS, Phase, Session, SessionError, Usbip};
pub use vstick_transport::MAX_PENDING_OUTPUT;
pub use vstick_usb::UsbDevice;

#[cfg(test)]
mod codec_tests;
#[cfg(test)]
mod full_stack_tests;
#[cfg(all(test, feature = "tokio"))]
mod net_tests;
#[cfg(test)]
mod session_tests;
