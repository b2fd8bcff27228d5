//! Devices over memory media, as the full-stack tests use them.

use std::sync::{Arc, Mutex};

use vstick_media::MemoryImage;
use vstick_scsi::{LunConfig, LunKind, Target};
use vstick_usb::{Identity, MassStorageDevice};

/// Block size of the fixtures' disks.
pub const BLOCK: usize = 512;
/// Blocks of the fixtures' disks: 1 MiB.
pub const DISK_BLOCKS: usize = 2048;
/// The fixtures' USB serial number.
pub const SERIAL: &str = "0123456789ABCDEF";

/// One writable 1 MiB memory disk ([`DISK_BLOCKS`] × [`BLOCK`]).
pub fn disk_target() -> Target {
    TargetBuilder::new().disk(DISK_BLOCKS).build()
}

/// [`disk_target`] behind the USB device model.
pub fn device() -> MassStorageDevice {
    TargetBuilder::new().disk(DISK_BLOCKS).device()
}

/// [`device`], shared as the tokio edges take it.
pub fn shared_device() -> Arc<Mutex<MassStorageDevice>> {
    Arc::new(Mutex::new(device()))
}

/// A [`Target`] (or a device) LUN by LUN; LUN `i`'s SCSI serial is `TEST000i`.
#[derive(Default)]
pub struct TargetBuilder {
    luns: Vec<LunConfig>,
    identity: Option<Identity>,
}

impl TargetBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a writable memory disk of `blocks` × [`BLOCK`] bytes.
    pub fn disk(self, blocks: usize) -> Self {
        self.medium(LunKind::Disk, MemoryImage::new(blocks * BLOCK, BLOCK as u32, false))
    }

    /// Adds a CD drive with `image` (2048-byte blocks) in it.
    pub fn cd(self, image: MemoryImage) -> Self {
        self.medium(LunKind::Optical, image)
    }

    /// Adds a LUN of `kind` over `medium`.
    pub fn medium(self, kind: LunKind, medium: MemoryImage) -> Self {
        let serial = self.next_serial();
        self.lun(LunConfig { kind, medium: Some(Box::new(medium)), serial })
    }

    /// Adds a CD drive with no disc.
    pub fn empty_cd(self) -> Self {
        let serial = self.next_serial();
        self.lun(LunConfig { kind: LunKind::Optical, medium: None, serial })
    }

    /// Adds a LUN as given.
    pub fn lun(mut self, config: LunConfig) -> Self {
        self.luns.push(config);
        self
    }

    /// The USB identity of [`TargetBuilder::device`] (default: serial [`SERIAL`]).
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    pub fn build(self) -> Target {
        Target::new(self.luns)
    }

    /// The target behind the USB device model.
    pub fn device(mut self) -> MassStorageDevice {
        let identity = self.identity.take().unwrap_or_else(|| Identity::default_for(SERIAL.to_owned()));
        MassStorageDevice::new(self.build(), identity)
    }

    fn next_serial(&self) -> String {
        format!("TEST{:04}", self.luns.len())
    }
}
