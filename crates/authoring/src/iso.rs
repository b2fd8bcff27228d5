//! `vstick iso create`: a directory to an ISO 9660 image with Joliet and Rock Ridge.
//!
//! The layout is hadris-iso's; this module chooses the options (level 3 so files of 4 GiB and
//! more take several extents, Joliet for Windows, Rock Ridge for Unix names, modes and symlinks)
//! and keeps its API out of the rest of vstick.

use std::path::Path;

use hadris_fs::{Clock, DateTime, SystemClock, WarningKind};
use hadris_iso::{BootEntry, BootInfo, ElTorito, IsoId, IsoLevel, Relocation};
use hadris_storage::BlockSize;
use hadris_storage::host::FileDevice;

use crate::error::{Error, Result};
use crate::output::{AtomicOutput, Cancel, check_target};
use crate::progress::{NoProgress, Progress, Tracked};
use crate::source::{self, Stats};

/// ECMA-119 8.4.11: the volume identifier field holds 32 bytes.
pub const MAX_LABEL: usize = 32;

/// Joliet names hold at most 64 UCS-2 characters (Joliet specification, 3.3); longer names are
/// cut there, while Rock Ridge keeps them whole.
pub const JOLIET_NAME_LIMIT: usize = 64;

/// ECMA-119 6.1.2: the logical sector is 2048 bytes; writing in sectors saves splitting.
const ISO_BLOCK: BlockSize = match BlockSize::new(2048) {
    Some(size) => size,
    None => panic!("2048 is a valid block size"),
};

/// What to build and how.
pub struct IsoOptions<'a> {
    /// Volume label; default: the source directory's name in ISO d-characters.
    pub label: Option<String>,
    /// A BIOS El Torito boot entry (no emulation).
    pub boot: Option<BiosBoot>,
    /// A UEFI El Torito boot entry: path inside the source of a FAT image holding
    /// `EFI/BOOT/BOOTX64.EFI`.
    pub efi_boot: Option<String>,
    /// Replace an existing output.
    pub force: bool,
    /// Told how far the image write is.
    pub progress: &'a dyn Progress,
    /// Stops the operation when raised; nothing is left behind.
    pub cancel: Cancel,
}

impl Default for IsoOptions<'_> {
    fn default() -> Self {
        Self {
            label: None,
            boot: None,
            efi_boot: None,
            force: false,
            progress: &NoProgress,
            cancel: Cancel::new(),
        }
    }
}

/// A BIOS boot image, as `mkisofs -b PATH -no-emul-boot [-boot-load-size N] [-boot-info-table]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiosBoot {
    /// Path of the boot image inside the source directory.
    pub image: String,
    /// 512-byte sectors the firmware loads; default: the whole image.
    pub load_size: Option<u16>,
    /// Patch the 56-byte boot information table into the image (ISOLINUX needs it).
    pub info_table: bool,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct IsoReport {
    /// The volume identifier written.
    pub label: String,
    /// Image size in bytes.
    pub size: u64,
    /// Counts of the source tree written.
    pub stats: Stats,
    /// Things stored differently than the source has them (one line each, summarised).
    pub warnings: Vec<String>,
}

/// Builds `out` from the directory `src`.
///
/// Nothing appears under `out` unless the whole image was written; an existing `out` is only
/// replaced with `force`.
pub fn create(src: &Path, out: &Path, opts: &IsoOptions<'_>) -> Result<IsoReport> {
    let label = match &opts.label {
        Some(label) => check_label(label)?,
        None => default_label(src),
    };
    check_target(out, opts.force)?;
    let source = source::read(src, out)?;
    opts.cancel.check()?;

    let mut options = hadris_iso::IsoOptions::new()
        .with_id(IsoId::Volume, &label)
        .with_id(IsoId::Application, concat!("VSTICK ", env!("CARGO_PKG_VERSION")))
        .with_level(IsoLevel::L3)
        .with_joliet()
        .with_rock_ridge()
        // ECMA-119 6.8.2.1 allows 8 directory levels; deeper ones move to a relocation
        // directory (RRIP 4.1.5). Named `.rr_moved`, as `genisoimage -hide-rr-moved` does, so
        // readers that show it (Linux, osirrox) list it as a hidden directory.
        .with_relocation(Relocation::DotRrMoved)
        .with_time(build_time());
    if let Some(el_torito) = el_torito(&source.tree, opts)? {
        options = options.with_el_torito(el_torito);
    }
    let plan = hadris_iso::plan(&source.tree, &options).map_err(|e| plan_error(e, opts))?;

    let output = AtomicOutput::create(out, opts.force, &opts.cancel)?;
    let file = output.reopen()?;
    let device = FileDevice::with_block_size(file, ISO_BLOCK)
        .map_err(|e| Error::io(output.temp_path(), "cannot use the temporary file", e))?;
    opts.progress.start(plan.size(), "writing ISO");
    let written =
        hadris_iso::sync::write(Tracked::new(device, opts.progress, &opts.cancel), &source.tree, &options);
    opts.progress.finish();
    opts.cancel.check()?;
    let report = written.map_err(|e| Error::backend(format!("writing {}", out.display()), e))?;
    output.commit()?;

    Ok(IsoReport { label, size: report.size(), stats: source.stats, warnings: summarise(report.warnings()) })
}

/// Checks a user-given label: ASCII, printable, at most 32 bytes.
pub fn check_label(label: &str) -> Result<String> {
    let bad = |reason| Err(Error::InvalidLabel { label: label.to_owned(), reason });
    if label.is_empty() {
        return bad("empty");
    }
    if label.len() > MAX_LABEL {
        return bad("longer than 32 characters (ISO 9660 volume identifier)");
    }
    if !label.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return bad("only printable ASCII characters fit the ISO 9660 volume identifier");
    }
    Ok(label.to_owned())
}

/// The source directory's name in d-characters (ECMA-119 7.4.1: A-Z, 0-9, `_`), as a label.
pub fn default_label(src: &Path) -> String {
    let name =
        std::fs::canonicalize(src).ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let label: String = name
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
        .take(MAX_LABEL)
        .collect();
    if label.trim_matches('_').is_empty() { "CDROM".to_owned() } else { label }
}

/// `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
pub(crate) fn build_time() -> DateTime {
    match hadris_fs::host::source_date_epoch() {
        Ok(Some(time)) => time,
        _ => SystemClock.now(),
    }
}

fn el_torito(tree: &hadris_fs::Tree, opts: &IsoOptions<'_>) -> Result<Option<ElTorito>> {
    let mut el_torito = ElTorito::new();
    let mut any = false;
    if let Some(boot) = &opts.boot {
        let path = boot_path(tree, &boot.image)?;
        let mut entry = BootEntry::bios(&path);
        if let Some(sectors) = boot.load_size {
            if sectors == 0 {
                return Err(Error::Boot { path, reason: "the load size must be at least one sector".into() });
            }
            entry = entry.with_load_size(sectors);
        }
        if boot.info_table {
            entry = entry.with_boot_info(BootInfo::Table);
        }
        el_torito = el_torito.with_entry(entry);
        any = true;
    }
    if let Some(image) = &opts.efi_boot {
        el_torito = el_torito.with_entry(BootEntry::uefi(&boot_path(tree, image)?));
        any = true;
    }
    Ok(any.then_some(el_torito))
}

/// Normalises a boot image path and checks it names a non-empty file of the source.
fn boot_path(tree: &hadris_fs::Tree, image: &str) -> Result<String> {
    let path = format!("/{}", image.trim_start_matches("./").trim_start_matches('/'));
    match tree.get(path.as_bytes()) {
        Some(node) if node.content().is_some_and(|c| !c.is_empty()) => Ok(path),
        Some(node) if node.content().is_some() => Err(Error::Boot { path, reason: "is empty".into() }),
        Some(_) => Err(Error::Boot { path, reason: "is not a regular file".into() }),
        None => Err(Error::Boot {
            path,
            reason: "not found in the source directory (give a path relative to it)".into(),
        }),
    }
}

fn plan_error(err: hadris_fs::PathError, opts: &IsoOptions<'_>) -> Error {
    let detail = err.detail().and_then(hadris_iso::Detail::from_code);
    if detail == Some(hadris_iso::Detail::BootImage) {
        let path =
            opts.boot.as_ref().map(|b| b.image.clone()).or_else(|| opts.efi_boot.clone()).unwrap_or_default();
        return Error::Boot { path, reason: err.to_string() };
    }
    match err.path() {
        Some(path) => Error::Unrepresentable {
            path: String::from_utf8_lossy(path).into_owned(),
            reason: format!("cannot be stored in ISO 9660: {}", err.context()),
        },
        None => Error::backend("planning the ISO image", err),
    }
}

/// Turns per-node warnings into a few lines. Primary-tree renames (level 2 d-character names)
/// are expected for nearly every file and not reported: readers use the Rock Ridge or Joliet
/// names. Joliet changes (64-character cut, characters Joliet forbids) are grouped by kind.
fn summarise(warnings: &[hadris_fs::Warning]) -> Vec<String> {
    let mut joliet: Vec<(&'static str, Vec<String>)> = Vec::new();
    let mut relocated = 0u64;
    let mut lines = Vec::new();
    for w in warnings {
        let path = w.path().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
        let is_joliet = w.message().to_ascii_lowercase().contains("joliet");
        match w.kind() {
            WarningKind::Relocated => relocated += w.count(),
            WarningKind::Renamed | WarningKind::Truncated | WarningKind::Deduplicated if is_joliet => {
                // hadris-iso says "joliet names are unicode" for names that are not UTF-8.
                let message = if w.message().contains("unicode") {
                    "the name is not valid UTF-8, so its Joliet name has U+FFFD for the bad bytes"
                } else {
                    w.message()
                };
                match joliet.iter_mut().find(|(m, _)| *m == message) {
                    Some((_, paths)) => paths.push(path),
                    None => joliet.push((message, vec![path])),
                }
            }
            WarningKind::Renamed | WarningKind::Truncated | WarningKind::Deduplicated => {}
            _ if path.is_empty() => lines.push(format!("{} ({} entries)", w.message(), w.count())),
            _ => lines.push(format!("{path}: {}", w.message())),
        }
    }
    if relocated > 0 {
        lines.push(format!(
            "{} nested deeper than 8 levels moved to /.rr_moved in the ISO 9660 tree (Rock Ridge readers show {} in place; an empty /.rr_moved remains visible)",
            if relocated == 1 { "1 directory".to_owned() } else { format!("{relocated} directories") },
            if relocated == 1 { "it" } else { "them" },
        ));
    }
    for (message, paths) in joliet {
        let first = paths.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        let more = if paths.len() > 3 { format!(" and {} more", paths.len() - 3) } else { String::new() };
        lines.push(format!(
            "{} {}: {message} (what Windows shows; Rock Ridge, which Linux and macOS read, keeps the name): {first}{more}",
            paths.len(),
            if paths.len() == 1 { "name" } else { "names" },
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked() {
        assert_eq!(check_label("MY_DISC").unwrap(), "MY_DISC");
        assert_eq!(check_label(&"A".repeat(32)).unwrap().len(), 32);
        for (bad, needle) in
            [("", "empty"), (&*"A".repeat(33), "longer than 32"), ("Ümlaut", "printable ASCII")]
        {
            let err = check_label(bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad:?}: {err}");
        }
    }

    #[test]
    fn default_label_uses_d_characters() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("my files-2024");
        std::fs::create_dir(&src).unwrap();
        assert_eq!(default_label(&src), "MY_FILES_2024");
        let odd = dir.path().join("---");
        std::fs::create_dir(&odd).unwrap();
        assert_eq!(default_label(&odd), "CDROM");
    }
}
