//! GET EVENT STATUS NOTIFICATION, polled, media class only (MMC-6 §6.7).
//!
//! Linux sr polls this and TEST UNIT READY side by side and stops trusting
//! events that TUR keeps contradicting, so each event here goes with the TUR
//! change it describes (02/3A/00 after removal, 06/28/00 after insertion).

use crate::lun::Lun;

/// Notification class request bit / class code for media events (MMC-6 table 150).
const MEDIA_CLASS_BIT: u8 = 1 << 4;
const MEDIA_CLASS: u8 = 4;
/// Supported event classes: media only.
const SUPPORTED_CLASSES: u8 = MEDIA_CLASS_BIT;
/// NEA: no requested class is supported.
const NEA: u8 = 0x80;
/// Length of a media-class response: header + one event descriptor.
pub const MEDIA_RESPONSE_LEN: u16 = 8;

/// Builds the response; a pending event is consumed only when the host's
/// allocation length lets it see the whole descriptor (events are one-shot).
pub fn get_event_status(lun: &mut Lun, classes: u8, alloc: u16) -> Vec<u8> {
    if classes & MEDIA_CLASS_BIT == 0 {
        // Header only: event data length 2, NEA=1, class 0.
        return vec![0x00, 0x02, NEA, SUPPORTED_CLASSES];
    }
    let code = if alloc >= MEDIA_RESPONSE_LEN { lun.event.take() } else { lun.event };
    let media_present = if lun.is_loaded() { 0x02 } else { 0 };
    let door_open = if lun.tray_open { 0x01 } else { 0 };
    vec![
        0x00,
        0x06,        // event data length: the rest of the header + 4-byte descriptor
        MEDIA_CLASS, // NEA=0, notification class 100b (media)
        SUPPORTED_CLASSES,
        code.map_or(0, |e| e as u8), // media event code (3:0); 0 = no change
        media_present | door_open,   // media status
        0,                           // start slot
        0,                           // end slot
    ]
}
