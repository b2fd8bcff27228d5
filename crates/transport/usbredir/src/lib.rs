//! usbredir transport, usb-host (device) side: vstick's USB device exported to
//! QEMU's `-device usb-redir` (the usb-guest) over TCP, or over any byte
//! stream (a SPICE usbredir channel carries the same bytes).
//!
//! - [`proto`]: wire vocabulary (packet types, status, caps, packet structs);
//! - [`codec`]: encoding and total, allocation-capped decoding;
//! - [`session`]: the sans-io protocol state machine over a [`RedirDevice`];
//! - [`net`]: tokio TCP edges, [`serve`] (QEMU connects) and [`connect`]
//!   (QEMU listens).

pub mod codec;
pub mod device;
pub mod net;
pub mod proto;
pub mod session;

pub use device::RedirDevice;
pub use net::{ConnectionError, connect, run_connection, serve};
pub use session::{MAX_BULK_LENGTH, OUR_CAPS, PeerHello, Session, SessionError, VERSION};
