//! Unit attention rules (SPC-4 §5.14, MMC-6 §4.1.6.1) and reset.

use super::*;
use crate::{LunKind, Sense, Status};

#[test]
fn power_on_unit_attention_fails_tur_once() {
    let mut h = Host::new(vec![disk(8, 512, false)]);
    h.expect_check(0, &TUR, Sense::POWER_ON_RESET);
    assert_eq!(h.tur(0), Status::Good);
}

#[test]
fn request_sense_returns_pending_unit_attention() {
    let mut h = Host::new(vec![disk(8, 512, false), optical(100)]);
    assert_eq!(h.sense(1), (0x06, 0x29, 0x00));
    assert_eq!(h.sense(1), (0, 0, 0));
    assert_eq!(h.tur(1), Status::Good);
    // LUN 0 still has its own.
    h.expect_check(0, &TUR, Sense::POWER_ON_RESET);
}

#[test]
fn exempt_commands_neither_fail_nor_clear() {
    let mut h = Host::new(vec![optical(100)]);
    assert_eq!(h.cmd(0, &[0x12, 0, 0, 0, 36, 0]).status, Status::Good); // INQUIRY
    assert_eq!(h.cmd(0, &[0x12, 1, 0x80, 0, 255, 0]).status, Status::Good); // INQUIRY VPD
    assert_eq!(h.cmd(0, &[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0]).status, Status::Good); // REPORT LUNS
    assert_eq!(h.cmd(0, &get_configuration(0, 0, 8)).status, Status::Good);
    assert_eq!(h.cmd(0, &gesn(8)).status, Status::Good);
    // Still pending.
    h.expect_check(0, &TUR, Sense::POWER_ON_RESET);
}

#[test]
fn unit_attention_precedes_other_errors_and_is_consumed() {
    let mut h = Host::new(vec![disk(8, 512, false)]);
    h.expect_check(0, &[0xFF, 0, 0, 0, 0, 0], Sense::POWER_ON_RESET);
    h.expect_check(0, &[0xFF, 0, 0, 0, 0, 0], Sense::INVALID_OPCODE);
    let mut h = Host::new(vec![empty(LunKind::Disk)]);
    h.expect_check(0, &read10(0, 1), Sense::POWER_ON_RESET);
    h.expect_check(0, &read10(0, 1), Sense::MEDIUM_NOT_PRESENT);
}

#[test]
fn gesn_and_get_configuration_are_unknown_to_disks_but_keep_the_ua() {
    let mut h = Host::new(vec![disk(8, 512, false)]);
    // Unknown to a disk: the UA is reported first (it is not exempt there).
    h.expect_check(0, &gesn(8), Sense::POWER_ON_RESET);
    h.expect_check(0, &gesn(8), Sense::INVALID_OPCODE);
}

#[test]
fn reset_raises_power_on_on_every_lun_and_aborts() {
    let s = Shared::new(8, 512);
    let mut h = Host::ready(vec![s.config(), optical(100), empty(LunKind::Disk)]);
    assert_eq!(h.target.begin(0, &read10(0, 2)), crate::DataStage::In(1024));
    h.target.reset();
    for lun in 0..3 {
        h.expect_check(lun, &TUR, Sense::POWER_ON_RESET);
    }
    assert_eq!(h.tur(0), Status::Good);
    // End after reset: no command, nothing happens.
    assert_eq!(h.target.end(), Status::Good);
}

#[test]
fn reset_keeps_a_pending_medium_change_behind_power_on() {
    let mut h = Host::ready(vec![empty(LunKind::Optical)]);
    h.target.insert(0, Box::new(Sparse::new(100, 2048))).unwrap();
    h.target.reset();
    assert_eq!(h.clear_ua(0), vec![(6, 0x29, 0), (6, 0x28, 0)]);
}

#[test]
fn failed_command_sense_wins_over_pending_ua_in_request_sense() {
    let mut h = Host::ready(vec![disk(8, 512, false)]);
    assert_eq!(h.cmd(0, &read10(8, 1)).status, Status::CheckCondition);
    h.target.reset(); // clears the failed command's sense, raises 29/00
    assert_eq!(h.sense(0), (6, 0x29, 0));
    assert_eq!(h.cmd(0, &read10(8, 1)).status, Status::CheckCondition);
    assert_eq!(h.sense(0), (5, 0x21, 0));
}
