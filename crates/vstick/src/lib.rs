//! vstick: disk images presented as a USB mass-storage device.
//!
//! The layers live in their own crates (see ARCHITECTURE.md); this crate is
//! the command line and the glue that builds a device from LUN specs and runs
//! a transport.

pub mod author;
pub mod cli;
pub mod control;
pub mod serve;
pub mod socket_file;

pub use vstick_bot as bot;
pub use vstick_media as media;
pub use vstick_scsi as scsi;
pub use vstick_usb as usb;
pub use vstick_usbip as usbip;
pub use vstick_usbredir as usbredir;
