//! Operator and host media changes: eject, insert, swap, lock, events.

use super::*;
use crate::optical::CD_MAX_BLOCKS;
use crate::{LunKind, MediaError, Sense, Status};

#[test]
fn operator_eject_then_insert_on_optical() {
    let mut h = Host::ready(vec![optical(100)]);
    assert_eq!(media_event(&mut h, 0), (0, 0x02));
    h.target.eject(0, false).unwrap();
    h.expect_check(0, &TUR, Sense::MEDIUM_NOT_PRESENT);
    assert_eq!(media_event(&mut h, 0), (3, 0x01), "media removal, tray open, once");
    assert_eq!(media_event(&mut h, 0), (0, 0x01), "one-shot");
    assert_eq!(current_profile(&mut h, 0), 0);
    assert_eq!(h.target.status()[0].medium, None);
    assert_eq!(h.target.eject(0, false), Err(MediaError::Empty { lun: 0 }));

    // Insert a DVD: GESN says new media once, TUR reports 06/28/00 once.
    h.target.insert(0, Box::new(Sparse::new(CD_MAX_BLOCKS * 2, 2048))).unwrap();
    assert_eq!(media_event(&mut h, 0), (2, 0x02));
    assert_eq!(media_event(&mut h, 0), (0, 0x02));
    assert_eq!(current_profile(&mut h, 0), 0x0010, "exempt from the UA, follows the new medium");
    h.expect_check(0, &TUR, Sense::MEDIUM_CHANGED);
    assert_eq!(h.tur(0), Status::Good);
    let st = &h.target.status()[0];
    assert_eq!((st.blocks, st.block_size, st.read_only), (CD_MAX_BLOCKS * 2, 2048, true));
}

#[test]
fn swap_queues_removed_then_changed() {
    let mut h = Host::ready(vec![optical(100)]);
    h.target.insert(0, Box::new(Sparse::new(200, 2048))).unwrap();
    assert_eq!(h.clear_ua(0), vec![(6, 0x3A, 0), (6, 0x28, 0)]);
    assert_eq!(media_event(&mut h, 0), (2, 0x02));
    assert_eq!(h.cmd(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]).good(), vec![0, 0, 0, 199, 0, 0, 8, 0]);
    // Through TUR as Linux sees it: 3A/00, then 28/00, then GOOD.
    h.target.insert(0, Box::new(Sparse::new(300, 2048))).unwrap();
    h.expect_check(0, &TUR, Sense::MEDIUM_REMOVED);
    h.expect_check(0, &TUR, Sense::MEDIUM_CHANGED);
    assert_eq!(h.tur(0), Status::Good);
}

#[test]
fn insert_validates_the_medium() {
    let mut h = Host::ready(vec![empty(LunKind::Optical), empty(LunKind::Disk)]);
    let err = h.target.insert(0, Box::new(Sparse::new(100, 512))).unwrap_err();
    assert!(matches!(err, MediaError::WrongMedium { lun: 0, .. }), "{err}");
    let err = h.target.insert(1, Box::new(Sparse::new(0, 512))).unwrap_err();
    assert!(matches!(err, MediaError::WrongMedium { lun: 1, .. }), "{err}");
    let err = h.target.insert(1, Box::new(Sparse::new(10, 1000))).unwrap_err();
    assert!(matches!(err, MediaError::WrongMedium { lun: 1, .. }), "{err}");
    assert_eq!(
        h.target.insert(2, Box::new(Sparse::new(10, 512))),
        Err(MediaError::NoSuchLun { lun: 2, count: 2 })
    );
    assert_eq!(h.target.eject(7, true), Err(MediaError::NoSuchLun { lun: 7, count: 2 }));
    // Nothing changed.
    assert_eq!(h.clear_ua(0), vec![]);
    assert_eq!(media_event(&mut h, 0), (0, 0));
    // A disk takes any block size it can address, e.g. 4096.
    h.target.insert(1, Box::new(Sparse::new(10, 4096))).unwrap();
    assert_eq!(h.clear_ua(1), vec![(6, 0x28, 0)]);
    assert_eq!(h.cmd(1, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]).good(), vec![0, 0, 0, 9, 0, 0, 0x10, 0]);
}

#[test]
fn disk_eject_and_insert() {
    let mut h = Host::ready(vec![disk(8, 512, false)]);
    h.target.eject(0, false).unwrap();
    h.expect_check(0, &TUR, Sense::MEDIUM_NOT_PRESENT);
    h.expect_check(0, &read10(0, 1), Sense::MEDIUM_NOT_PRESENT);
    let d = h.cmd(0, &[0x23, 0, 0, 0, 0, 0, 0, 0, 12, 0]).good();
    assert_eq!(d[8], 0x03, "READ FORMAT CAPACITIES: no media");
    h.target.insert(0, Box::new(vstick_media::MemoryImage::new(4096, 512, true))).unwrap();
    h.expect_check(0, &TUR, Sense::MEDIUM_CHANGED);
    let d = h.cmd(0, &[0x1A, 0, 0x3F, 0, 4, 0]).good();
    assert_eq!(d[2] & 0x80, 0x80, "new medium is read-only");
    assert!(h.target.status()[0].read_only);
}

#[test]
fn prevent_blocks_operator_eject_unless_forced() {
    let mut h = Host::ready(vec![optical(100)]);
    assert_eq!(h.cmd(0, &prevent(true)).status, Status::Good);
    assert_eq!(h.target.eject(0, false), Err(MediaError::Locked { lun: 0 }));
    assert_eq!(h.tur(0), Status::Good, "still loaded");
    assert_eq!(media_event(&mut h, 0), (1, 0x02), "eject request reported to the host");
    assert_eq!(media_event(&mut h, 0), (0, 0x02));
    // A swap is an eject too.
    assert_eq!(h.target.insert(0, Box::new(Sparse::new(5, 2048))), Err(MediaError::SwapLocked { lun: 0 }));
    assert_eq!(h.clear_ua(0), vec![]);
    // Host ejects while locked: 05/53/02.
    h.expect_check(0, &start_stop(true, false), Sense::MEDIUM_REMOVAL_PREVENTED);
    // Forced: gone, lock released.
    h.target.eject(0, true).unwrap();
    assert!(!h.target.status()[0].locked);
    h.expect_check(0, &TUR, Sense::MEDIUM_NOT_PRESENT);
    assert_eq!(media_event(&mut h, 0), (3, 0x01));
}

#[test]
fn forced_swap_of_a_locked_medium_goes_ahead_and_is_seen() {
    let mut h = Host::ready(vec![optical(100)]);
    assert_eq!(h.cmd(0, &prevent(true)).status, Status::Good);
    h.target.insert_with_force(0, Box::new(Sparse::new(200, 2048)), true).unwrap();
    assert!(!h.target.status()[0].locked, "the lock left with the old medium");
    assert_eq!(h.clear_ua(0), vec![(6, 0x3A, 0), (6, 0x28, 0)]);
    assert_eq!(media_event(&mut h, 0), (2, 0x02));
    assert_eq!(h.target.status()[0].blocks, 200);
}

#[test]
fn host_eject_and_load_on_optical() {
    let mut h = Host::ready(vec![optical(100)]);
    assert_eq!(h.cmd(0, &start_stop(true, false)).status, Status::Good);
    h.expect_check(0, &TUR, Sense::MEDIUM_NOT_PRESENT);
    assert_eq!(media_event(&mut h, 0), (3, 0x01));
    assert_eq!(current_profile(&mut h, 0), 0);
    assert_eq!(h.target.status()[0].medium, None);
    assert_eq!(h.cmd(0, &start_stop(true, true)).status, Status::Good);
    assert_eq!(media_event(&mut h, 0), (2, 0x02));
    h.expect_check(0, &TUR, Sense::MEDIUM_CHANGED);
    assert_eq!(current_profile(&mut h, 0), 0x0008);
    // The operator may take out a disc the host ejected.
    assert_eq!(h.cmd(0, &start_stop(true, false)).status, Status::Good);
    h.target.eject(0, false).unwrap();
    assert_eq!(h.target.eject(0, false), Err(MediaError::Empty { lun: 0 }));
}

#[test]
fn load_after_operator_eject_is_ignored() {
    // macOS polls with LoEj=1 Start=1 (scsi.md "Hot-swap").
    let mut h = Host::ready(vec![optical(100)]);
    h.target.eject(0, false).unwrap();
    assert_eq!(media_event(&mut h, 0), (3, 0x01));
    assert_eq!(h.cmd(0, &start_stop(true, true)).status, Status::Good);
    h.expect_check(0, &TUR, Sense::MEDIUM_NOT_PRESENT);
    assert_eq!(media_event(&mut h, 0), (0, 0x01), "still open, nothing new");
}

#[test]
fn gesn_event_survives_a_header_only_poll() {
    let mut h = Host::ready(vec![optical(100)]);
    h.target.eject(0, false).unwrap();
    assert_eq!(h.cmd(0, &gesn(4)).good(), vec![0, 6, 4, 0x10]);
    assert_eq!(media_event(&mut h, 0), (3, 0x01));
}

#[test]
fn media_change_during_a_transfer_fails_it() {
    let s = Shared::new(8, 512);
    let mut h = Host::ready(vec![s.config()]);
    assert_eq!(h.target.begin(0, &read10(0, 2)), crate::DataStage::In(1024));
    let mut buf = [0u8; 512];
    h.target.data_in(&mut buf);
    h.target.eject(0, true).unwrap();
    h.target.insert(0, Box::new(Sparse::new(8, 512))).unwrap();
    let mut buf = [0xAAu8; 512];
    h.target.data_in(&mut buf);
    assert!(buf.iter().all(|&b| b == 0), "not read from the new medium");
    assert_eq!(h.target.end(), Status::CheckCondition);
    assert_eq!(h.sense(0), (0x02, 0x3A, 0x00));
}

#[test]
fn status_counts_bytes() {
    let s = Shared::new(8, 512);
    let mut h = Host::ready(vec![s.config(), optical(10)]);
    h.cmd(0, &read10(0, 2)).good();
    h.cmd_out(0, &write10(0, 1, false), &[0u8; 512]).good();
    h.cmd(1, &read10(0, 3)).good();
    let st = h.target.status();
    assert_eq!((st[0].bytes_read, st[0].bytes_written), (1024, 512));
    assert_eq!((st[1].bytes_read, st[1].bytes_written), (3 * 2048, 0));
    assert_eq!(st[0].medium.as_deref(), Some("(memory)"));
    assert_eq!(st[1].medium.as_deref(), Some("sparse.img"));
    assert_eq!((st[1].kind, st[1].block_size, st[1].blocks), (LunKind::Optical, 2048, 10));
}
