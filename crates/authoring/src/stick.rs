//! `vstick image create`: a RAW disk image, either blank (sparse zeros) or with an MBR and one
//! FAT32 partition at 1 MiB, optionally filled from a directory — what a USB stick's
//! mass-production tool writes.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use hadris_fat::{FatKind, FatOptions, VolumeLabel};
use hadris_fs::{ErrorKind, Tree, WarningKind};
use hadris_storage::Partition;
use hadris_storage::host::FileDevice;
use mbrman::{CHS, MBR, MBRPartitionEntry};

use crate::error::{Error, Result};
use crate::fat_layout::{self, Needs, SECTOR};
use crate::output::{AtomicOutput, Cancel, check_target};
use crate::progress::{NoProgress, Progress, Tracked};
use crate::source::{self, Stats};

/// The partition starts 1 MiB into the disk, as fdisk, Windows and stick vendors align it.
pub const PARTITION_OFFSET: u64 = 1 << 20;

/// MBR partition type 0x0C: FAT32 with LBA addressing.
const FAT32_LBA: u8 = 0x0c;

/// MBR entries count sectors in 32 bits, so a partition ends before 2 TiB; images stop at 2 TiB
/// (the partition then has 2 TiB - 1 MiB, which fits).
pub const MAX_SIZE: u64 = 2 << 40;

/// The filesystems `--fs` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filesystem {
    /// FAT32 in one MBR partition (`fat32` or `vfat`).
    Fat32,
}

impl FromStr for Filesystem {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fat32" | "vfat" => Ok(Filesystem::Fat32),
            _ => Err(Error::UnsupportedFs { fs: s.to_owned() }),
        }
    }
}

/// What to build.
pub struct StickOptions<'a> {
    /// Image size in bytes, a multiple of 512 (see `size::parse`).
    pub size: u64,
    /// `None`: an unpartitioned image of zeros (sparse on disk).
    pub fs: Option<Filesystem>,
    /// FAT volume label: up to 11 ASCII characters, stored uppercase.
    pub label: Option<String>,
    /// Directory whose contents are copied into the filesystem.
    pub copy: Option<PathBuf>,
    /// Replace an existing output.
    pub force: bool,
    /// Told how far the image write is.
    pub progress: &'a dyn Progress,
    /// Stops the operation when raised; nothing is left behind.
    pub cancel: Cancel,
}

impl Default for StickOptions<'_> {
    fn default() -> Self {
        Self {
            size: 0,
            fs: None,
            label: None,
            copy: None,
            force: false,
            progress: &NoProgress,
            cancel: Cancel::new(),
        }
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub struct StickReport {
    /// Image size in bytes.
    pub size: u64,
    /// The FAT32 partition; `None` for an unformatted image.
    pub partition: Option<PartitionReport>,
    /// Counts of the copied tree, when `copy` was given.
    pub copied: Option<Stats>,
    /// Things stored differently than the source has them (one line each, summarised).
    pub warnings: Vec<String>,
}

/// The FAT32 partition that was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReport {
    /// Byte offset of the partition on the disk.
    pub offset: u64,
    /// Partition length in bytes.
    pub len: u64,
    /// Bytes per cluster.
    pub cluster_size: u32,
    /// Number of data clusters.
    pub clusters: u32,
    /// The volume label written, if one was given.
    pub label: Option<String>,
}

/// Creates the image at `out`. Nothing appears under `out` unless it was completely written.
pub fn create(out: &Path, opts: &StickOptions<'_>) -> Result<StickReport> {
    if opts.size == 0 || !opts.size.is_multiple_of(SECTOR) {
        return Err(Error::InvalidSize {
            text: opts.size.to_string(),
            reason: "must be a non-zero multiple of 512".into(),
        });
    }
    let Some(fs) = opts.fs else {
        if opts.label.is_some() {
            return Err(Error::NeedsFs { option: "--label" });
        }
        if opts.copy.is_some() {
            return Err(Error::NeedsFs { option: "--copy" });
        }
        return blank(out, opts);
    };
    match fs {
        Filesystem::Fat32 => fat32(out, opts),
    }
}

/// An image of zeros: only its length is set, so it takes no space until written.
fn blank(out: &Path, opts: &StickOptions<'_>) -> Result<StickReport> {
    let output = AtomicOutput::create(out, opts.force, &opts.cancel)?;
    output
        .file()
        .set_len(opts.size)
        .map_err(|e| Error::io(output.temp_path(), "cannot set the image size", e))?;
    output.commit()?;
    Ok(StickReport { size: opts.size, partition: None, copied: None, warnings: Vec::new() })
}

/// Checks a FAT label the way the boot sector and label entry store it (FAT spec: BS_VolLab,
/// 11 bytes, short-name characters).
pub fn check_label(label: &str) -> Result<VolumeLabel> {
    VolumeLabel::new(label).map_err(|kind| Error::InvalidLabel {
        label: label.to_owned(),
        reason: match kind {
            ErrorKind::NameTooLong => "longer than 11 characters (FAT volume label)",
            _ => "FAT labels are ASCII without control characters, a leading space or any of \"*+,./:;<=>?[\\]|",
        },
    })
}

fn fat32(out: &Path, opts: &StickOptions<'_>) -> Result<StickReport> {
    let label = opts.label.as_deref().map(check_label).transpose()?;
    check_target(out, opts.force)?;
    if opts.size > MAX_SIZE {
        return Err(Error::TooLarge { size: opts.size, maximum: MAX_SIZE });
    }

    let (tree, stats, needs) = match &opts.copy {
        Some(dir) => {
            let source = source::read(dir, out)?;
            let needs = Needs::of_tree(&source.tree, dir)?;
            (source::for_fat(&source.tree, &source::system_local)?, Some(source.stats), needs)
        }
        None => (Tree::new(), None, Needs::empty()),
    };
    let volume = opts.size.saturating_sub(PARTITION_OFFSET);
    let layout = fat_layout::plan(volume)
        .filter(|l| u64::from(l.clusters()) >= needs.clusters(u64::from(l.cluster_size())))
        .ok_or_else(|| too_small(opts, &needs, stats.as_ref()))?;
    opts.cancel.check()?;

    let output = AtomicOutput::create(out, opts.force, &opts.cancel)?;
    output
        .file()
        .set_len(opts.size)
        .map_err(|e| Error::io(output.temp_path(), "cannot set the image size", e))?;
    write_mbr(&output, opts.size)?;

    let device = FileDevice::new(output.reopen()?)
        .map_err(|e| Error::io(output.temp_path(), "cannot use the temporary file", e))?;
    let partition = Partition::new(device, PARTITION_OFFSET, volume);
    let now = crate::iso::build_time();
    let now =
        hadris_fs::DateTime::new(source::system_local(now.unix_seconds()), now.nanoseconds()).unwrap_or(now);
    let mut options = FatOptions::new().with_kind(FatKind::Fat32).with_time(now);
    if let Some(label) = label {
        options = options.with_label(label);
    }
    opts.progress.start(stats.map_or(0, |s| s.bytes), "writing FAT32");
    let written =
        hadris_fat::sync::write(Tracked::new(partition, opts.progress, &opts.cancel), &tree, &options);
    opts.progress.finish();
    opts.cancel.check()?;
    let report = written.map_err(|e| match (e.kind(), e.path()) {
        (ErrorKind::NoSpace, _) => too_small(opts, &needs, stats.as_ref()),
        (_, Some(path)) => Error::Unrepresentable {
            path: String::from_utf8_lossy(path).into_owned(),
            reason: format!("cannot be stored in FAT32: {}", e.context()),
        },
        _ => Error::backend(format!("writing {}", out.display()), e),
    })?;
    output.commit()?;

    Ok(StickReport {
        size: opts.size,
        partition: Some(PartitionReport {
            offset: PARTITION_OFFSET,
            len: volume,
            cluster_size: layout.cluster_size(),
            clusters: layout.clusters(),
            label: label.map(|l| l.as_str().to_owned()),
        }),
        copied: stats,
        warnings: summarise(report.warnings()),
    })
}

/// The "too small" error with the real minimum: the partition offset plus the smallest FAT32
/// volume that holds the tree, rounded up to whole MiB.
fn too_small(opts: &StickOptions<'_>, needs: &Needs, stats: Option<&Stats>) -> Error {
    let what = match (&opts.copy, stats) {
        (Some(dir), Some(s)) => format!(
            "FAT32 with the contents of {} ({} files, {})",
            dir.display(),
            s.files,
            crate::size::format(s.bytes)
        ),
        _ => "FAT32 (at least 65525 clusters)".to_owned(),
    };
    match fat_layout::min_volume(needs, MAX_SIZE - PARTITION_OFFSET) {
        Some(volume) => {
            let minimum = (PARTITION_OFFSET + volume).div_ceil(1 << 20) << 20;
            Error::TooSmall { size: opts.size, minimum, what }
        }
        None => Error::ContentTooLarge { what, maximum: MAX_SIZE },
    }
}

/// One primary partition, type 0x0C, from 1 MiB to the end of the disk.
fn write_mbr(output: &AtomicOutput, size: u64) -> Result<()> {
    let mut file = output.reopen()?;
    let start = (PARTITION_OFFSET / SECTOR) as u32;
    let sectors = u32::try_from((size - PARTITION_OFFSET) / SECTOR).unwrap_or(u32::MAX);
    let mbr_error = |e: mbrman::Error| {
        Error::backend(format!("writing the partition table of {}", output.temp_path().display()), e)
    };
    let mut mbr = MBR::new_from(&mut file, SECTOR as u32, disk_signature(size)).map_err(mbr_error)?;
    mbr[1] = MBRPartitionEntry {
        boot: mbrman::BOOT_INACTIVE,
        first_chs: chs(start),
        sys: FAT32_LBA,
        last_chs: chs(start + (sectors - 1)),
        starting_lba: start,
        sectors,
    };
    mbr.write_into(&mut file).map_err(mbr_error)
}

/// The CHS address of `lba` in the 255-head, 63-sector geometry fdisk assumes; addresses past
/// cylinder 1023 get the conventional maximum 1023/254/63.
fn chs(lba: u32) -> CHS {
    const HEADS: u32 = 255;
    const SECTORS: u32 = 63;
    let cylinder = lba / (HEADS * SECTORS);
    if cylinder > 1023 {
        return CHS::new(1023, 254, 63);
    }
    let rest = lba % (HEADS * SECTORS);
    CHS::new(cylinder as u16, (rest / SECTORS) as u8, (rest % SECTORS + 1) as u8)
}

/// A disk signature that differs between images (Windows refuses to mount two disks with the
/// same signature at once).
fn disk_signature(size: u64) -> [u8; 4] {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mixed =
        (now.as_nanos() as u64 ^ size ^ u64::from(std::process::id())).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((mixed >> 32) as u32).to_le_bytes()
}

/// FAT drops owners and modes by design; only skipped nodes are worth telling.
fn summarise(warnings: &[hadris_fs::Warning]) -> Vec<String> {
    let mut skipped = Vec::new();
    let mut lines = Vec::new();
    for w in warnings {
        let path = w.path().map(|p| String::from_utf8_lossy(p).into_owned());
        match (w.kind(), path) {
            (WarningKind::Dropped(_), _) => {}
            (WarningKind::Skipped, Some(path)) => skipped.push(path),
            (_, Some(path)) => lines.push(format!("{path}: {}", w.message())),
            (_, None) => lines.push(format!("{} ({} entries)", w.message(), w.count())),
        }
    }
    if !skipped.is_empty() {
        let first = skipped.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        let more = if skipped.len() > 3 { format!(" and {} more", skipped.len() - 3) } else { String::new() };
        let count = if skipped.len() == 1 {
            "1 symlink or special file".to_owned()
        } else {
            format!("{} symlinks or special files", skipped.len())
        };
        lines.insert(0, format!("{count} not copied (FAT cannot store them): {first}{more}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chs_matches_fdisk() {
        // fdisk's entry for a partition at 2048: head 32, sector 33, cylinder 0.
        assert_eq!(chs(2048), CHS::new(0, 32, 33));
        assert_eq!(chs(0), CHS::new(0, 0, 1));
        assert_eq!(chs(16065), CHS::new(1, 0, 1));
        assert_eq!(chs(u32::MAX), CHS::new(1023, 254, 63));
    }

    #[test]
    fn fs_names() {
        assert_eq!("fat32".parse::<Filesystem>().unwrap(), Filesystem::Fat32);
        assert_eq!("FAT32".parse::<Filesystem>().unwrap(), Filesystem::Fat32);
        assert_eq!(
            "ntfs".parse::<Filesystem>().unwrap_err().to_string(),
            "unsupported filesystem \"ntfs\" (supported: fat32)"
        );
    }

    #[test]
    fn labels() {
        assert_eq!(check_label("public").unwrap().as_str(), "PUBLIC");
        assert!(check_label("TWELVE_CHARS").unwrap_err().to_string().contains("longer than 11"));
        assert!(check_label("a/b").unwrap_err().to_string().contains("FAT labels are ASCII"));
    }
}
