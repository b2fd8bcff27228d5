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
