//! One logical unit: its medium, tray, lock, pending unit attentions and media events.
//!
//! The state machine that media changes follow, whoever causes them:
//!
//! | state                     | `medium` | `tray_open` | host sees        |
//! |---------------------------|----------|-------------|------------------|
//! | loaded                    | Some     | false       | medium present   |
//! | ejected by the host       | Some     | true        | no medium (tray open; LoEj+Start reloads it) |
//! | ejected by the operator   | None     | true        | no medium (tray open) |
//! | started empty             | None     | false       | no medium        |

use vstick_media::{BlockBackend, CD_BLOCK_SIZE};

use crate::sense::{Sense, UnitAttentions};
use crate::{LunConfig, LunKind, LunStatus, MediaError};

/// A medium in the drive, with its geometry fixed at insertion.
pub struct Medium {
    pub backend: Box<dyn BlockBackend>,
    pub block_size: u32,
    pub blocks: u64,
    pub read_only: bool,
}

impl Medium {
    fn new(backend: Box<dyn BlockBackend>, kind: LunKind) -> Self {
        let block_size = backend.block_size();
        let blocks = backend.block_count();
        // An optical disc is never writable through this target (CD/DVD-ROM profiles).
        let read_only = backend.read_only() || kind == LunKind::Optical;
        Self { backend, block_size, blocks, read_only }
    }

    /// Byte offset of `lba`, or `None` on overflow.
    pub fn offset(&self, lba: u64) -> Option<u64> {
        lba.checked_mul(u64::from(self.block_size))
    }

    /// Whether `lba .. lba + blocks` lies on the medium (SBC-3 §4.5: LBA + length ≤ capacity).
    pub fn in_range(&self, lba: u64, blocks: u64) -> bool {
        lba.checked_add(blocks).is_some_and(|end| end <= self.blocks)
    }
}

/// MMC media event class codes (MMC-6 §6.6.3.4, table 153), one-shot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    EjectRequest = 1,
    NewMedia = 2,
    MediaRemoval = 3,
}

pub struct Lun {
    pub kind: LunKind,
    pub serial: String,
    pub medium: Option<Medium>,
    pub tray_open: bool,
    /// The host holds PREVENT MEDIUM REMOVAL.
    pub prevent: bool,
    pub unit_attentions: UnitAttentions,
    /// Sense of the last failed command, for the next REQUEST SENSE.
    pub sense: Option<Sense>,
    pub event: Option<MediaEvent>,
    /// Bumped on every media change so a transfer in flight notices it.
    pub generation: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// The host has sent the SCSI-2 LUN field in CDB byte 1 (EDK2); see
    /// `target::without_scsi2_lun`.
    pub scsi2_lun: bool,
}

impl Lun {
    pub fn new(config: LunConfig) -> Self {
        // Target::try_new has checked the medium against the kind (crate::check_medium).
        let kind = config.kind;
        let mut unit_attentions = UnitAttentions::default();
        // Every LUN powers on with 06/29/00 (SAM-5 §6.4).
        unit_attentions.push(Sense::POWER_ON_RESET);
        Self {
            kind,
            serial: config.serial,
            medium: config.medium.map(|b| Medium::new(b, kind)),
            tray_open: false,
            prevent: false,
            unit_attentions,
            sense: None,
            event: None,
            generation: 0,
            bytes_read: 0,
            bytes_written: 0,
            scsi2_lun: false,
        }
    }

    /// The medium the host can access (loaded, tray closed).
    pub fn loaded(&self) -> Option<&Medium> {
        if self.tray_open { None } else { self.medium.as_ref() }
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded().is_some()
    }

    /// Block size to report when there is no medium.
    pub fn default_block_size(&self) -> u32 {
        match self.kind {
            LunKind::Disk => 512,
            LunKind::Optical => CD_BLOCK_SIZE,
        }
    }

    pub fn block_size(&self) -> u32 {
        self.loaded().map_or_else(|| self.default_block_size(), |m| m.block_size)
    }

    /// START STOP UNIT with LoEj=1, Start=0 (SBC-3 §5.25, MMC-6 §6.41).
    pub fn host_eject(&mut self) -> Result<(), Sense> {
        if self.prevent {
            return Err(Sense::MEDIUM_REMOVAL_PREVENTED);
        }
        if self.is_loaded() {
            self.event = Some(MediaEvent::MediaRemoval);
            self.generation += 1;
        }
        self.tray_open = true;
        Ok(())
    }

    /// START STOP UNIT with LoEj=1, Start=1: closes the tray over the medium the
    /// host ejected. After an operator eject the tray holds nothing and the
    /// request is ignored (macOS polls with it; scsi.md "Hot-swap").
    pub fn host_load(&mut self) {
        if self.tray_open && self.medium.is_some() {
            self.tray_open = false;
            self.unit_attentions.push(Sense::MEDIUM_CHANGED);
            self.event = Some(MediaEvent::NewMedia);
            self.generation += 1;
        }
    }

    pub fn operator_eject(&mut self, lun: u8, force: bool) -> Result<(), MediaError> {
        if self.medium.is_none() {
            return Err(MediaError::Empty { lun });
        }
        let was_loaded = self.is_loaded();
        if was_loaded && self.prevent && !force {
            // Tell the host someone pressed the eject button (MMC-6 table 153);
            // Linux turns this into DISK_EVENT_EJECT_REQUEST.
            if self.event.is_none() {
                self.event = Some(MediaEvent::EjectRequest);
            }
            return Err(MediaError::Locked { lun });
        }
        if force {
            // The host's lock was on the medium that is now gone; it locks again on remount.
            self.prevent = false;
        }
        self.medium = None;
        self.tray_open = true;
        if was_loaded {
            self.event = Some(MediaEvent::MediaRemoval);
        }
        self.generation += 1;
        Ok(())
    }

    /// Insert, or swap if a medium is loaded; a swap the host's lock refuses goes
    /// ahead with `force` (the lock was on the medium that leaves, as for eject).
    pub fn operator_insert(
        &mut self,
        lun: u8,
        backend: Box<dyn BlockBackend>,
        force: bool,
    ) -> Result<(), MediaError> {
        crate::check_medium(self.kind, backend.as_ref())
            .map_err(|e| MediaError::WrongMedium { lun, reason: e.to_string() })?;
        let was_loaded = self.is_loaded();
        if was_loaded && self.prevent && !force {
            // A swap ejects first; the host's lock refuses that like `eject` without force.
            if self.event.is_none() {
                self.event = Some(MediaEvent::EjectRequest);
            }
            return Err(MediaError::SwapLocked { lun });
        }
        if force {
            self.prevent = false;
        }
        if was_loaded {
            // QEMU's order on a change: 06/3A/00 (removed), then 06/28/00 (changed).
            self.unit_attentions.push(Sense::MEDIUM_REMOVED);
        }
        self.unit_attentions.push(Sense::MEDIUM_CHANGED);
        self.medium = Some(Medium::new(backend, self.kind));
        self.tray_open = false;
        self.event = Some(MediaEvent::NewMedia);
        self.generation += 1;
        Ok(())
    }

    pub fn status(&self, lun: u8) -> LunStatus {
        let loaded = self.loaded();
        LunStatus {
            lun,
            kind: self.kind,
            medium: loaded.map(|m| m.backend.location().to_string()),
            read_only: loaded.is_some_and(|m| m.read_only),
            block_size: self.block_size(),
            blocks: loaded.map_or(0, |m| m.blocks),
            locked: self.prevent,
            bytes_read: self.bytes_read,
            bytes_written: self.bytes_written,
        }
    }
}
