//! GET CONFIGURATION (MMC-6 §6.6): profiles and features of the CD/DVD-ROM drive.
//!
//! The current profile and the "current" bits of the medium-dependent features
//! follow the loaded medium: CD-ROM up to [`CD_MAX_BLOCKS`](crate::optical::CD_MAX_BLOCKS),
//! DVD-ROM above, none when empty.

use crate::lun::Lun;
use crate::optical::{PROFILE_CD_ROM, PROFILE_DVD_ROM, profile};

/// Feature codes (MMC-6 table 93).
mod feature {
    pub const PROFILE_LIST: u16 = 0x0000;
    pub const CORE: u16 = 0x0001;
    pub const MORPHING: u16 = 0x0002;
    pub const REMOVABLE_MEDIUM: u16 = 0x0003;
    pub const RANDOM_READABLE: u16 = 0x0010;
    pub const CD_READ: u16 = 0x001E;
    pub const DVD_READ: u16 = 0x001F;
    pub const POWER_MANAGEMENT: u16 = 0x0100;
    pub const TIMEOUT: u16 = 0x0105;
}

/// Physical interface standard in the Core feature (MMC-6 table 96): USB.
const INTERFACE_USB: u32 = 0x0000_0008;

struct Feature {
    code: u16,
    version: u8,
    persistent: bool,
    current: bool,
    data: Vec<u8>,
}

impl Feature {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.code.to_be_bytes());
        // version (5:2), persistent (1), current (0) — MMC-6 table 92
        out.push((self.version << 2) | (u8::from(self.persistent) << 1) | u8::from(self.current));
        out.push(self.data.len() as u8); // additional length
        out.extend_from_slice(&self.data);
    }
}

/// Every feature of the drive in ascending order, with current bits for `lun`'s medium.
fn features(lun: &Lun) -> Vec<Feature> {
    let current_profile = profile(lun);
    let cd = current_profile == PROFILE_CD_ROM;
    let dvd = current_profile == PROFILE_DVD_ROM;
    let loaded = lun.is_loaded();

    let mut profiles = Vec::with_capacity(8);
    // Highest profile first (MMC-6 §5.3.1): DVD-ROM, then CD-ROM.
    for (p, current) in [(PROFILE_DVD_ROM, dvd), (PROFILE_CD_ROM, cd)] {
        profiles.extend_from_slice(&p.to_be_bytes());
        profiles.push(u8::from(current)); // CurrentP
        profiles.push(0);
    }
    let mut core = INTERFACE_USB.to_be_bytes().to_vec();
    core.extend_from_slice(&[0x01, 0, 0, 0]); // DBE=1 (required since MMC-5), INQ2=0
    let blocking: u16 = if dvd { 16 } else { 1 };
    let mut random_readable = vstick_media::CD_BLOCK_SIZE.to_be_bytes().to_vec(); // logical block size
    random_readable.extend_from_slice(&blocking.to_be_bytes()); // blocking
    random_readable.extend_from_slice(&[0x01, 0]); // PP: read/write error recovery page present

    vec![
        Feature { code: feature::PROFILE_LIST, version: 0, persistent: true, current: true, data: profiles },
        Feature { code: feature::CORE, version: 2, persistent: true, current: true, data: core },
        // OCEvent=1: GET EVENT STATUS NOTIFICATION reports operational changes; Async=0 (polled only).
        Feature {
            code: feature::MORPHING,
            version: 1,
            persistent: true,
            current: true,
            data: vec![0x02, 0, 0, 0],
        },
        // Loading mechanism 001b tray (7:5), Eject (3), Pvnt Jmpr=1: no prevent
        // jumper (2), Lock (0). The lock state itself is in mode page 2Ah.
        Feature {
            code: feature::REMOVABLE_MEDIUM,
            version: 0,
            persistent: true,
            current: true,
            data: vec![0x2D, 0, 0, 0],
        },
        Feature {
            code: feature::RANDOM_READABLE,
            version: 0,
            persistent: false,
            current: loaded,
            data: random_readable,
        },
        // No CD-Text, no C2 pointers, no digital audio play.
        Feature {
            code: feature::CD_READ,
            version: 2,
            persistent: false,
            current: cd,
            data: vec![0, 0, 0, 0],
        },
        // MULTI110=0, DualR=0.
        Feature {
            code: feature::DVD_READ,
            version: 1,
            persistent: false,
            current: dvd,
            data: vec![0, 0, 0, 0],
        },
        Feature {
            code: feature::POWER_MANAGEMENT,
            version: 0,
            persistent: true,
            current: true,
            data: Vec::new(),
        },
        Feature {
            code: feature::TIMEOUT,
            version: 0,
            persistent: true,
            current: true,
            data: vec![0, 0, 0, 0],
        },
    ]
}

/// The GET CONFIGURATION response before truncation. `rt`: 0 all features from
/// `start`, 1 current ones from `start`, 2 exactly `start` (MMC-6 table 88).
pub fn get_configuration(lun: &Lun, rt: u8, start: u16) -> Vec<u8> {
    let mut body = Vec::new();
    for f in features(lun) {
        let wanted = match rt {
            0 => f.code >= start,
            1 => f.code >= start && f.current,
            _ => f.code == start,
        };
        if wanted {
            f.encode(&mut body);
        }
    }
    let mut b = Vec::with_capacity(8 + body.len());
    b.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes()); // data length (after this field)
    b.extend_from_slice(&[0, 0]); // reserved
    b.extend_from_slice(&profile(lun).to_be_bytes()); // current profile
    b.extend_from_slice(&body);
    b
}
