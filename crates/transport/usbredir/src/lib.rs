//! usbredir transport, usb-host (device) side: vstick's USB device exported to
//! QEMU's `-device usb-redir` (the usb-guest) over TCP, or over any byte
//! stream (a SPICE usbredir channel carries the same bytes).
//!
//! - [`proto`]: wire vocabulary (packet types, status, caps, packet structs);
//! - [`codec`]: encoding and total, allocation-capped decoding;
//! - [`session`]: the sans-io protocol state machine over a [`UsbDevice`];
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
//! [`session::MAX_QUEUED_IN`] bulk IN requests are held per endpoint; control
//! IN replies are cut to [`session::MAX_CONTROL_IN`] (4096) bytes.

pub mod codec;
pub mod net;
pub mod proto;
pub mod session;

pub use net::{ConnectionError, connect, run_connection, serve};
pub use session::{MAX_BULK_LENGTH, OUR_CAPS, PeerHello, Session, SessionError, VERSION};
pub use vstick_usb::UsbDevice;
