//! vstick: disk images presented as a USB mass-storage device.
//!
//! The layers live in their own crates (see ARCHITECTURE.md); this crate is
//! the command line and the glue that builds a device from LUN specs and runs
//! a transport.

// The command line's internals: public for the binary, its tests and the fuzz
// targets, not a library API (an embedder uses vstick-usbredir or the layer
// crates re-exported below).
#[doc(hidden)]
pub mod author;
#[doc(hidden)]
pub mod cli;
#[doc(hidden)]
pub mod control;
#[doc(hidden)]
pub mod gadget;
#[doc(hidden)]
pub mod identity;
#[doc(hidden)]
pub mod local;
#[doc(hidden)]
pub mod serve;
#[doc(hidden)]
pub mod socket_file;
#[doc(hidden)]
pub mod spice;

pub use vstick_bot as bot;
pub use vstick_media as media;
pub use vstick_scsi as scsi;
pub use vstick_transport as transport;
pub use vstick_usb as usb;
pub use vstick_usbip as usbip;
pub use vstick_usbredir as usbredir;
