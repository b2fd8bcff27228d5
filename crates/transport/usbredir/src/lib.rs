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
//!
//! # Embedding
//!
//! A program that already owns a byte channel to a usb-guest (a SPICE
//! client's usbredir channel, a pipe to QEMU) depends on this crate alone:
//! it builds the device ([`DeviceBuilder`], media from [`media`]) and drives
//! a [`Connection`], the transport core's sans-io driver. The call order, and
//! where file I/O happens, are those of [`vstick_transport::Connection`]:
//! the device reads and writes its media inside `receive` (commands and
//! small writes) and `poll_transmit` (data for held IN requests, and large
//! writes once their completion was written), and nowhere else.
//!
//! Over a tokio stream (feature `tokio`, default), [`run_connection`] is the
//! whole loop; here the usb-guest is the other end of an in-memory duplex:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Mutex;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use vstick_usbredir::media::MemoryImage;
//! use vstick_usbredir::proto::{Packet, PacketType, WireFormat, version_field};
//! use vstick_usbredir::{DeviceBuilder, OUR_CAPS, codec, run_connection};
//!
//! let device = Mutex::new(DeviceBuilder::new().disk(MemoryImage::new(1 << 20, 512, false)).build()?);
//! let (stick_end, mut guest) = tokio::io::duplex(64 * 1024);
//! let guest_side = async {
//!     // The usb-host's hello comes first; answer with ours.
//!     let mut hello = [0u8; 80];
//!     guest.read_exact(&mut hello).await?;
//!     let mut ours = Vec::new();
//!     let packet = Packet::Hello { version: version_field("example guest"), caps: vec![OUR_CAPS.0] };
//!     codec::encode(WireFormat::INITIAL, 0, &packet, &mut ours)?;
//!     guest.write_all(&ours).await?;
//!     // interface_info, ep_info, then device_connect: the stick is plugged in.
//!     let fmt = WireFormat::negotiate(OUR_CAPS, OUR_CAPS);
//!     let mut seen = Vec::new();
//!     let mut buf = Vec::new();
//!     while !seen.contains(&PacketType::DEVICE_CONNECT) {
//!         let mut chunk = [0u8; 4096];
//!         let n = guest.read(&mut chunk).await?;
//!         buf.extend_from_slice(&chunk[..n]);
//!         while let Some((frame, used)) = codec::decode(fmt, &buf)? {
//!             seen.push(frame.packet.packet_type());
//!             buf.drain(..used);
//!         }
//!     }
//!     drop(guest); // unplug
//!     Ok::<_, Box<dyn std::error::Error>>(seen)
//! };
//! let (served, seen) = tokio::join!(run_connection(stick_end, &device), guest_side);
//! served?;
//! assert_eq!(seen?, [PacketType::INTERFACE_INFO, PacketType::EP_INFO, PacketType::DEVICE_CONNECT]);
//! # Ok(())
//! # }
//! ```
//!
//! Without tokio (`default-features = false`), the loop is the embedder's,
//! e.g. in a glib callback: feed what arrived, then write the batches it
//! gives, each in full before asking for the next. Here over a blocking
//! socket pair:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::os::unix::net::UnixStream;
//! use vstick_usbredir::media::MemoryImage;
//! use vstick_usbredir::{DeviceBuilder, connection};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut device = DeviceBuilder::new().cdrom(MemoryImage::new(64 * 2048, 2048, true)).build()?;
//! let (mut channel, mut guest) = UnixStream::pair()?;
//! // The usb-guest: reads our hello, then hangs up.
//! let guest = std::thread::spawn(move || {
//!     let mut hello = [0u8; 80];
//!     guest.read_exact(&mut hello).map(|()| hello[12..19].to_vec())
//! });
//!
//! let mut conn = connection(&mut device);
//! let mut buf = vec![0u8; 64 * 1024];
//! loop {
//!     // Everything queued goes out, in bounded batches (a large write's data
//!     // reaches the medium once the batch with its completion was written).
//!     while let Some(batch) = conn.poll_transmit()? {
//!         channel.write_all(batch)?;
//!     }
//!     if conn.is_closing() {
//!         break;
//!     }
//!     let n = channel.read(&mut buf)?;
//!     if n == 0 {
//!         break; // the usb-guest went away: the stick is unplugged
//!     }
//!     conn.receive(&buf[..n])?;
//! }
//! assert_eq!(guest.join().unwrap()?, b"vstick ");
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod codec;
#[cfg(feature = "tokio")]
pub mod net;
pub mod proto;
pub mod session;
#[cfg(feature = "tls")]
mod tls;

#[cfg(feature = "tokio")]
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
/// Block backends for the device: image files, memory.
pub use vstick_media as media;
pub use vstick_usb::{BuildError, DeviceBuilder, Identity, MassStorageDevice, Speed, UsbDevice};
