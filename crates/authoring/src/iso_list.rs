//! `vstick iso ls`: what an ISO image holds, read through its most capable tree (Rock Ridge, then
//! Joliet, then the primary tree).

use std::fmt;
use std::path::Path;

use hadris_fs::sync::Volume;
use hadris_fs::{FileType, MountOptions, PathError, TreeEntry};
use hadris_iso::sync::IsoFs;
use hadris_iso::{IsoId, Namespace, Platform};
use hadris_storage::host::FileDevice;

use crate::error::{Error, Result};

/// An ISO image's label, size, trees, boot entries and files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoListing {
    /// The primary volume descriptor's volume identifier.
    pub label: String,
    /// Volume size in bytes, as the primary volume descriptor declares it.
    pub size: u64,
    /// Logical block size in bytes (2048 in practice).
    pub block_size: u32,
    /// The name tree the entries were read from ("Rock Ridge", "Joliet", ...).
    pub names_from: String,
    /// Every tree the image has, most capable first.
    pub trees: Vec<String>,
    /// The El Torito boot catalog's entries; empty when the image is not bootable.
    pub boot: Vec<BootImage>,
    /// Every entry below the root, depth first, children in name order.
    pub entries: Vec<Entry>,
}

/// One El Torito boot entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootImage {
    /// Platform the entry is for: "BIOS", "UEFI" or the catalog's other platform id.
    pub platform: String,
    /// Byte length of the image the entry loads.
    pub len: u64,
}

/// One file, directory or link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absolute path inside the image, `/`-separated (non-UTF-8 bytes shown as U+FFFD).
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
}

/// The type of an [`Entry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File {
        /// Length in bytes.
        len: u64,
    },
    /// A directory.
    Dir,
    /// A symbolic link (Rock Ridge SL).
    Symlink {
        /// The link's target path.
        target: String,
    },
    /// Any other file type (device, FIFO, socket).
    Other,
}

/// Reads the image at `path`. Only metadata is read, never file contents.
pub fn list(path: &Path) -> Result<IsoListing> {
    let device = FileDevice::open(path).map_err(|e| Error::io(path, "cannot open", e))?;
    let not_iso =
        |e: PathError| Error::backend(format!("{}: not a readable ISO 9660 image", path.display()), e);
    let mut iso = IsoFs::mount(device, MountOptions::new().read_only()).map_err(|e| not_iso(e.into()))?;

    let info = iso.info();
    let label = String::from_utf8_lossy(info.id(IsoId::Volume)).into_owned();
    let block_size = info.block_size();
    let size = u64::from(info.volume_space_size()) * u64::from(block_size);
    let names_from = namespace_name(iso.namespace()).to_owned();
    let trees = iso.namespaces().iter().map(|n| namespace_name(n).to_owned()).collect();

    let mut catalog = [0u8; 2048];
    let mut boot = Vec::new();
    let entries = match iso.boot_catalog(&mut catalog) {
        Ok(Some(catalog)) => catalog.entries().collect::<Vec<_>>(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(not_iso(e.into())),
    };
    for entry in &entries {
        let platform = match entry.platform() {
            Platform::X86 => "BIOS".to_owned(),
            Platform::Efi => "UEFI".to_owned(),
            other => format!("{other:?}"),
        };
        boot.push(BootImage { platform, len: iso.boot_image(entry).len() });
    }

    let volume = Volume::new(iso);
    let tree = hadris_fs::sync::read_tree(&volume, "/").map_err(not_iso)?;
    let mut entries = Vec::new();
    collect(tree.root(), "", &mut entries);
    Ok(IsoListing { label, size, block_size, names_from, trees, boot, entries })
}

fn collect(dir: TreeEntry<'_>, prefix: &str, out: &mut Vec<Entry>) {
    for (name, child) in dir.children() {
        let path = format!("{prefix}/{}", String::from_utf8_lossy(name.as_bytes()));
        let node = child.node();
        let kind = match node.file_type() {
            FileType::File => EntryKind::File { len: node.content().map_or(0, |c| c.len()) },
            FileType::Dir => EntryKind::Dir,
            FileType::Symlink => EntryKind::Symlink {
                target: String::from_utf8_lossy(node.target().unwrap_or_default()).into_owned(),
            },
            _ => EntryKind::Other,
        };
        let is_dir = kind == EntryKind::Dir;
        out.push(Entry { path: path.clone(), kind });
        if is_dir {
            collect(child, &path, out);
        }
    }
}

fn namespace_name(namespace: Namespace) -> &'static str {
    match namespace {
        Namespace::RockRidge => "Rock Ridge",
        Namespace::Joliet => "Joliet",
        Namespace::Enhanced => "ISO 9660:1999",
        Namespace::Primary => "ISO 9660",
        _ => "preferred",
    }
}

impl fmt::Display for IsoListing {
    /// `ls -l`-like: a header, then one line per entry (`d`, `-`, `l` or `?`, size, path).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "label: {}", self.label)?;
        writeln!(
            f,
            "size:  {} ({} blocks of {} bytes)",
            crate::size::format(self.size),
            self.size / u64::from(self.block_size.max(1)),
            self.block_size
        )?;
        writeln!(f, "trees: {} (names below from {})", self.trees.join(", "), self.names_from)?;
        if self.boot.is_empty() {
            writeln!(f, "boot:  none")?;
        }
        for image in &self.boot {
            writeln!(f, "boot:  {} image, {} bytes", image.platform, image.len)?;
        }
        for entry in &self.entries {
            match &entry.kind {
                EntryKind::File { len } => writeln!(f, "- {len:>14} {}", entry.path)?,
                EntryKind::Dir => writeln!(f, "d {:>14} {}/", "", entry.path)?,
                EntryKind::Symlink { target } => writeln!(f, "l {:>14} {} -> {target}", "", entry.path)?,
                EntryKind::Other => writeln!(f, "? {:>14} {}", "", entry.path)?,
            }
        }
        Ok(())
    }
}
