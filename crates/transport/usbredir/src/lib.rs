//! usbredir transport, usb-host (device) side: vstick's USB device exported to
//! QEMU's `-device usb-redir` (the usb-guest) over TCP, or over any byte
//! stream (a SPICE usbredir channel carries the same bytes).
//!
//! - [`proto`]: wire vocabulary (packet types, status, caps, packet structs);
//! - [`codec`]: encoding and total, allocation-capped decoding;
//! - [`session`]: the usbredir wire format as a protocol of the transport
//!   core ([`Redir`]), and [`Session`], the core's sans-io engine over it;
//! - [`net`]: tokio TCP edges, [`serve`] (QEMU connects) and [`connect`]
//!   (QEMU listens).
//!
//! We advertise [`OUR_CAPS`] = 0x72 (connect_device_version,
//! ep_info_max_packet_size, 64bits_ids, 32bits_bulk_length), what QEMU's xHCI
//! port requires; bulk streams, bulk receiving, filters and
//! device_disconnect_ack are not implemented and not advertised.
//!
//! Limits on what a peer can make us hold: a packet over
//! [`codec::MAX_PACKET_LEN`] (128 MiB + 1 KiB, the C parser's limit) is a
//! protocol error as soon as its header arrives; bulk transfers over
//! [`MAX_BULK_LENGTH`] (64 MiB) are answered `inval`; at most
//! [`vstick_transport::MAX_HELD_IN`] bulk IN requests are held; control
//! IN replies are cut to [`session::MAX_CONTROL_IN`] (4096) bytes.

#![warn(missing_docs)]

pub mod codec;
pub mod net;
pub mod proto;
pub mod session;

pub use net::{ConnectionError, connect, run_connection, serve};
pub use session::{MAX_BULK_LENGTH, OUR_CAPS, PeerHello, Redir, Session, SessionError, VERSION};
pub use vstick_transport::MAX_PENDING_OUTPUT;

/// A usbredir connection to drive from any loop: the session and its device
/// (see [`vstick_transport::Connection`] for the call order).
pub type Connection<A> = vstick_transport::Connection<Redir, A>;

/// A [`Connection`] over `device`: the device is reset (a new usb-guest sees
/// a freshly plugged stick) and our hello is queued.
pub fn connection<A: vstick_transport::DeviceAccess>(device: A) -> Connection<A> {
    vstick_transport::Connection::new(Redir::session(), device)
}
pub use vstick_usb::UsbDevice;
