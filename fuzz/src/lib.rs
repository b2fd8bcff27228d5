//! Shared fixtures of the fuzz targets: a mass-storage device over memory
//! media, with the odd cases a host cannot tell apart from real hardware
//! (a disk that fills up, a read-only LUN, an empty drive).

use std::io;
use std::sync::Arc;

use vstick_media::{BlockBackend, MediaLocation, MemoryImage};
use vstick_scsi::{LunConfig, LunKind, Target};
use vstick_usb::{Identity, MassStorageDevice};

/// LUN 0's size; writes from [`FULL_AT`] on fail as if the host file system were full.
pub const DISK_BYTES: usize = 256 * 1024;
pub const FULL_AT: u64 = 192 * 1024;
/// LUN 1: a small CD (2048-byte sectors), read-only.
pub const CD_BLOCKS: usize = 48;

/// A disk whose host file system runs out of space at [`FULL_AT`] (ENOSPC).
pub struct FillsUp(pub MemoryImage);

impl BlockBackend for FillsUp {
    fn block_size(&self) -> u32 {
        self.0.block_size()
    }
    fn block_count(&self) -> u64 {
        self.0.block_count()
    }
    fn read_only(&self) -> bool {
        false
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if offset.saturating_add(data.len() as u64) > FULL_AT {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        self.0.write_at(offset, data)
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
    fn location(&self) -> MediaLocation {
        MediaLocation::Memory
    }
}

/// The fixed content of the CD, to check that nothing ever writes to it.
pub fn cd_content() -> Vec<u8> {
    (0..CD_BLOCKS * 2048).map(|i| (i % 251) as u8).collect()
}

/// LUN 0 writable disk that fills up, LUN 1 read-only CD, LUN 2 read-only
/// 4096-byte-block disk, LUN 3 empty CD drive. Returns the CD for checking.
pub fn target() -> (Target, Arc<MemoryImage>) {
    let cd = Arc::new(MemoryImage::from_bytes(cd_content(), 2048, true));
    let luns = vec![
        LunConfig {
            kind: LunKind::Disk,
            medium: Some(Box::new(FillsUp(MemoryImage::new(DISK_BYTES, 512, false)))),
            serial: "FUZZ00".into(),
        },
        LunConfig {
            kind: LunKind::Optical,
            medium: Some(Box::new(cd.clone())),
            serial: "FUZZ01".into(),
        },
        LunConfig {
            kind: LunKind::Disk,
            medium: Some(Box::new(MemoryImage::new(16 * 4096, 4096, true))),
            serial: "FUZZ02".into(),
        },
        LunConfig { kind: LunKind::Optical, medium: None, serial: "FUZZ03".into() },
    ];
    (Target::new(luns), cd)
}

pub fn device() -> (MassStorageDevice, Arc<MemoryImage>) {
    let (target, cd) = target();
    (MassStorageDevice::new(target, Identity::default_for("0123456789AB".into())), cd)
}

/// Checks the CD after a run: a read-only medium never changes.
pub fn assert_cd_intact(cd: &MemoryImage) {
    assert!(cd.contents() == cd_content(), "the read-only CD was modified");
}

/// `VSTICK_FUZZ_TRACE=1`: the targets describe what happens (to check that
/// seeds get deep, with `cargo fuzz run TARGET SEED -- -runs=1`).
pub fn tracing_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("VSTICK_FUZZ_TRACE").is_some())
}

/// Splits `data` into chunks whose sizes follow `pattern` (cycled), so a
/// target sees packets split and coalesced in many ways.
pub fn chunks<'a>(data: &'a [u8], pattern: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let size = match pattern.get(i % pattern.len().max(1)) {
            // 0 = everything left in one go (a large coalesced read).
            Some(0) | None => rest.len(),
            Some(&b) => usize::from(b) * 7 + 1,
        };
        let (head, tail) = rest.split_at(size.min(rest.len()));
        out.push(head);
        rest = tail;
        i += 1;
    }
    out
}
