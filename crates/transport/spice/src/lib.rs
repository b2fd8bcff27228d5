//! vstick's SPICE edge: vstick as a SPICE client that offers its device to a
//! VM over one of the VM's usbredir channels (`-chardev spicevmc,name=usbredir`,
//! libvirt's `<redirdev type='spicevmc'>`, Proxmox VE's `usbN: spice`).
//!
//! SPICE is only a wrapping here: the usbredir stream inside the channel's
//! `SPICEVMC_DATA` messages is the one QEMU's usb-redir speaks on a socket,
//! and vstick's existing usbredir session ([`vstick_usbredir::connection`])
//! speaks it unchanged.
//!
//! - [`link`]: the link handshake (REDQ 2.2, auth selection, RSA-OAEP ticket);
//! - [`codec`]: mini/full headers and the few messages a usbredir client needs;
//! - [`channel`]: a linked channel as a sans-io state machine (PING, SET_ACK,
//!   NOTIFY, DISCONNECTING, data in and out);
//! - [`vmc`]: a linked usbredir channel's input unwrapped into the usbredir
//!   byte stream, with bounded memory (LZ4 decoded one batch at a time);
//! - [`uri`]: remote-viewer's address forms; [`vv`]: virt-viewer files;
//!   [`proxy`]: HTTP CONNECT;
//! - `stream` and `net` (feature `tokio`): a usbredir channel as a byte
//!   stream; connect, pick a usbredir channel, run the
//!   usbredir session through it, reconnect.
#![warn(missing_docs)]

pub mod channel;
pub mod codec;
pub mod link;
#[cfg(feature = "tokio")]
pub mod net;
pub mod proxy;
#[cfg(feature = "tokio")]
pub mod stream;
#[cfg(feature = "tokio")]
pub mod tls;
pub mod uri;
pub mod vmc;
pub mod vv;

#[cfg(feature = "tokio")]
pub use net::{Password, SpiceConfig, SpiceError, connect};
#[cfg(feature = "tokio")]
pub use stream::VmcStream;
#[cfg(feature = "tokio")]
pub use tls::TlsSetup;
pub use uri::ServerAddr;
