//! [`DeviceBuilder`]: a [`MassStorageDevice`] from media, with errors instead of panics.

use vstick_media::{BlockBackend, ReadOnly};
use vstick_scsi::{LunConfig, LunKind, Target, TargetError};

use crate::{Identity, MassStorageDevice, Speed, serial_from_seed};

/// Why [`DeviceBuilder::build`] refused. The message is one line saying what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No LUNs, more than 16, or a medium its LUN cannot take (the block-size
    /// rule of start-up and `ctl insert`, [`vstick_scsi::check_medium`]).
    #[error(transparent)]
    Target(#[from] TargetError),
}

/// Builds a [`MassStorageDevice`]: LUNs in the order added, then speed and identity.
///
/// ```
/// use vstick_media::MemoryImage;
/// use vstick_usb::{DeviceBuilder, Speed};
///
/// let device = DeviceBuilder::new()
///     .disk(MemoryImage::new(1 << 20, 512, false))
///     .cdrom(MemoryImage::new(64 * 2048, 2048, true))
///     .speed(Speed::Super)
///     .build()?;
/// assert_eq!(device.target().lun_count(), 2);
/// assert_eq!(device.speed(), Speed::Super);
///
/// // A CD/DVD drive takes 2048-byte blocks only: an error, not a panic.
/// let refused = DeviceBuilder::new().cdrom(MemoryImage::new(4096, 512, true)).build();
/// assert!(refused.is_err());
/// # Ok::<(), vstick_usb::BuildError>(())
/// ```
#[must_use]
pub struct DeviceBuilder {
    luns: Vec<(LunKind, Option<Box<dyn BlockBackend>>)>,
    speed: Speed,
    identity: Option<Identity>,
}

impl Default for DeviceBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl DeviceBuilder {
    /// No LUNs yet, high speed, the default identity.
    pub fn new() -> Self {
        Self { luns: Vec::new(), speed: Speed::High, identity: None }
    }

    /// A disk LUN, writable unless the backend is read-only.
    pub fn disk(self, medium: impl BlockBackend + 'static) -> Self {
        self.lun(LunKind::Disk, Some(Box::new(medium)))
    }

    /// A read-only disk LUN, whatever the backend allows.
    pub fn disk_ro(self, medium: impl BlockBackend + 'static) -> Self {
        self.lun(LunKind::Disk, Some(Box::new(ReadOnly(medium))))
    }

    /// A CD/DVD-ROM LUN (2048-byte blocks; always read-only).
    pub fn cdrom(self, medium: impl BlockBackend + 'static) -> Self {
        self.lun(LunKind::Optical, Some(Box::new(medium)))
    }

    /// A LUN of any kind; `None` starts the drive empty.
    pub fn lun(mut self, kind: LunKind, medium: Option<Box<dyn BlockBackend>>) -> Self {
        self.luns.push((kind, medium));
        self
    }

    /// The speed presented (see [`MassStorageDevice::with_speed`]); default high.
    pub fn speed(mut self, speed: Speed) -> Self {
        self.speed = speed;
        self
    }

    /// Vendor/product and strings; default [`Identity::default_for`] a serial
    /// made from where the media live, stable across runs.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Checks every LUN with the rule start-up and `ctl insert` use and builds the device.
    pub fn build(self) -> Result<MassStorageDevice, BuildError> {
        let identity = self.identity.unwrap_or_else(|| {
            let seed: Vec<String> = self
                .luns
                .iter()
                .map(|(_, m)| m.as_ref().map(|m| m.location().to_string()).unwrap_or_default())
                .collect();
            Identity::default_for(serial_from_seed(&seed.join("\n")))
        });
        let configs = self
            .luns
            .into_iter()
            .enumerate()
            .map(|(i, (kind, medium))| LunConfig { kind, medium, serial: lun_serial(&identity.serial, i) })
            .collect();
        let target = Target::try_new(configs)?;
        Ok(MassStorageDevice::new(target, identity).with_speed(self.speed))
    }
}

/// The unit serial of LUN `index` (VPD 80h): the device's serial and the LUN in
/// two hex digits. The page carries at most 64 bytes of it (SCSI's
/// `serial_bytes`), so a longer device serial (a USB string may have 126
/// characters) is cut to 62 bytes first: the LUN digits stay and the LUNs'
/// serials stay distinct.
fn lun_serial(device_serial: &str, index: usize) -> String {
    const PREFIX_BYTES: usize = 64 - 2;
    let mut end = device_serial.len().min(PREFIX_BYTES);
    while !device_serial.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{index:02X}", device_serial.get(..end).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use vstick_media::MemoryImage;

    use super::*;

    #[test]
    fn errors_instead_of_panics() {
        let e = DeviceBuilder::new().build().err().unwrap();
        assert!(matches!(e, BuildError::Target(TargetError::NoLuns)), "{e}");
        let mut many = DeviceBuilder::new();
        for _ in 0..17 {
            many = many.lun(LunKind::Disk, None);
        }
        assert!(matches!(many.build(), Err(BuildError::Target(TargetError::TooManyLuns { count: 17 }))));
        let e = DeviceBuilder::new()
            .disk(MemoryImage::new(8192, 512, false))
            .disk(MemoryImage::new(8192, 2048, false))
            .build()
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "LUN 1: a disk needs 512- or 4096-byte blocks, not 2048");
    }

    #[test]
    fn luns_in_order_read_only_identity_and_serials() {
        let id = Identity::default_for("0123456789AB".into());
        let device = DeviceBuilder::new()
            .disk_ro(MemoryImage::new(8192, 512, false))
            .lun(LunKind::Optical, None)
            .identity(id.clone())
            .build()
            .unwrap();
        let status = device.target().status();
        assert_eq!((status[0].kind, status[0].read_only), (LunKind::Disk, true));
        assert_eq!((status[1].kind, status[1].medium.as_deref()), (LunKind::Optical, None));
        assert_eq!(device.identity(), &id);
        assert_eq!(device.speed(), Speed::High);
    }

    #[test]
    fn lun_serials_keep_their_lun_digits_under_a_long_device_serial() {
        assert_eq!(lun_serial("0123456789AB", 0), "0123456789AB00");
        assert_eq!(lun_serial("0123456789AB", 15), "0123456789AB0F");
        let long = "S".repeat(126);
        assert_eq!(lun_serial(&long, 1), format!("{}01", "S".repeat(62)));
        // Cut at a character boundary, never inside one.
        let wide = "é".repeat(40); // 80 bytes
        assert_eq!(lun_serial(&wide, 2), format!("{}02", "é".repeat(31)));
    }
}
