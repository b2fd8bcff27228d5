//! Image authoring: ISO 9660 (Joliet, Rock Ridge) and FAT32 stick images.
//!
//! The formats are written by the hadris crates; this crate picks their options, checks the
//! input first (unreadable files, names a format cannot hold, sizes too small), writes through a
//! temporary file renamed into place, and reports progress. Nothing outside this crate sees the
//! hadris API, so it can be swapped without touching the CLI.
//!
//! - [`iso::create`] / [`iso_list::list`]: `vstick iso create` / `vstick iso ls`
//! - [`stick::create`]: `vstick image create`
//! - [`size::parse`]: `512M`, `2G`, `2GiB`
//!
//! Known limits, by format:
//! - ISO: Joliet names are cut at 64 UCS-2 characters and non-BMP characters become `_` there
//!   (Windows sees that; Rock Ridge keeps every name). Directories deeper than 8 levels move
//!   to `/.rr_moved` in the ISO 9660 tree; Rock Ridge readers show them in place, and Linux
//!   and osirrox also show the empty `.rr_moved`. FIFOs and sockets are left out
//!   with a warning. Joliet volume labels keep the first 16 characters of the label.
//! - FAT32: symlinks and special files are skipped with a warning; hard links become copies;
//!   names FAT cannot hold (`"*/:<>?\|`, control characters, trailing dot or space, names
//!   that differ only in case, non-UTF-8) and files of 4 GiB or more are refused before
//!   anything is written. Owners and modes are not stored (FAT has none). The data region is
//!   not aligned to the cluster size.

#![warn(missing_docs)]

mod error;
pub mod fat_layout;
pub mod iso;
pub mod iso_list;
mod output;
pub mod progress;
pub mod size;
mod source;
pub mod stick;

pub use error::{Error, Problem, Result};
pub use iso::{BiosBoot, IsoOptions, IsoReport};
pub use iso_list::{BootImage, Entry, EntryKind, IsoListing, list};
pub use output::Cancel;
pub use progress::{Bar, NoProgress, Progress};
pub use source::Stats;
pub use stick::{Filesystem, PartitionReport, StickOptions, StickReport};
