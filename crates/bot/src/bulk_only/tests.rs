//! The thirteen cases of BOT §6.7, wedge/reset recovery and a never-panic
//! property, against a scripted [`FakeTarget`] that enforces the
//! `begin → data* → end | abort` discipline of the SCSI layer.

use proptest::prelude::*;
use vstick_scsi::{DataStage, Status};

use super::BulkOnly;
use crate::{CBW_LEN, CSW_LEN, Cbw, CommandTarget, Csw, CswStatus, InResult, OutResult};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Begin { lun: u8, cdb: Vec<u8> },
    DataIn(usize),
    DataOut(Vec<u8>),
    End,
    Abort,
    Reset,
}

/// A target whose intent for the next command is scripted. It panics on any
/// call the SCSI layer's contract forbids, so a test (or the property) fails
/// if the transport misuses it.
struct FakeTarget {
    max_lun: u8,
    intent: DataStage,
    status: Status,
    calls: Vec<Call>,
    /// (intent, bytes moved, status) of the open command: the script is
    /// read at `begin`, as a real target's outcome belongs to its command.
    active: Option<(DataStage, u32, Status)>,
}

impl FakeTarget {
    fn new(intent: DataStage, status: Status) -> Self {
        Self { max_lun: 0, intent, status, calls: Vec::new(), active: None }
    }

    /// Byte `i` of every data-in stage.
    fn pattern(i: u32) -> u8 {
        (i % 251) as u8
    }

    fn written(&self) -> Vec<u8> {
        self.calls
            .iter()
            .filter_map(|c| if let Call::DataOut(d) = c { Some(d.clone()) } else { None })
            .flatten()
            .collect()
    }

    fn ended(&self) -> bool {
        self.calls.contains(&Call::End)
    }

    fn aborted(&self) -> bool {
        self.calls.contains(&Call::Abort)
    }

    fn data_calls(&self) -> usize {
        self.calls.iter().filter(|c| matches!(c, Call::DataIn(_) | Call::DataOut(_))).count()
    }
}

impl CommandTarget for FakeTarget {
    fn max_lun(&self) -> u8 {
        self.max_lun
    }
    fn begin(&mut self, lun: u8, cdb: &[u8]) -> DataStage {
        assert!(self.active.is_none(), "begin while a command is open");
        assert!((1..=16).contains(&cdb.len()));
        self.calls.push(Call::Begin { lun, cdb: cdb.to_vec() });
        self.active = Some((self.intent, 0, self.status));
        self.intent
    }
    fn data_in(&mut self, buf: &mut [u8]) {
        let (stage, moved, _) = self.active.as_mut().expect("data_in without a command");
        let DataStage::In(total) = *stage else { panic!("data_in on {stage:?}") };
        assert!(!buf.is_empty(), "empty data_in");
        let len = u32::try_from(buf.len()).unwrap();
        assert!(*moved + len <= total, "data_in past the intent");
        for (i, b) in buf.iter_mut().enumerate() {
            *b = Self::pattern(*moved + i as u32);
        }
        *moved += len;
        self.calls.push(Call::DataIn(buf.len()));
    }
    fn data_out(&mut self, data: &[u8]) {
        let (stage, moved, _) = self.active.as_mut().expect("data_out without a command");
        let DataStage::Out(total) = *stage else { panic!("data_out on {stage:?}") };
        assert!(!data.is_empty(), "empty data_out");
        let len = u32::try_from(data.len()).unwrap();
        assert!(*moved + len <= total, "data_out past the intent");
        *moved += len;
        self.calls.push(Call::DataOut(data.to_vec()));
    }
    fn end(&mut self) -> Status {
        let (_, _, status) = self.active.take().expect("end without a command");
        self.calls.push(Call::End);
        status
    }
    fn abort(&mut self) {
        assert!(self.active.take().is_some(), "abort without a command");
        self.calls.push(Call::Abort);
    }
    fn reset(&mut self) {
        self.active = None;
        self.calls.push(Call::Reset);
    }
}

const TEST_UNIT_READY: [u8; 6] = [0x00, 0, 0, 0, 0, 0];
const READ10: [u8; 10] = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const WRITE10: [u8; 10] = [0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0];

fn cbw(tag: u32, host_len: u32, direction_in: bool, cdb: &[u8]) -> [u8; CBW_LEN] {
    Cbw::new(tag, host_len, direction_in, 0, cdb).unwrap().to_bytes()
}

fn send_cbw(bot: &mut BulkOnly, t: &mut FakeTarget, tag: u32, host_len: u32, dir_in: bool, cdb: &[u8]) {
    assert_eq!(bot.bulk_out(t, &cbw(tag, host_len, dir_in, cdb)), OutResult::Accepted(CBW_LEN));
}

fn read_csw(bot: &mut BulkOnly, t: &mut FakeTarget) -> Csw {
    let mut buf = [0u8; CSW_LEN];
    assert_eq!(bot.bulk_in(t, &mut buf), InResult::Data(CSW_LEN));
    assert!(bot.is_idle());
    Csw::parse(&buf).unwrap()
}

fn expected_data(range: std::ops::Range<u32>) -> Vec<u8> {
    range.map(FakeTarget::pattern).collect()
}

// ---- the thirteen cases (§6.7) -------------------------------------------

#[test]
fn case_01_hn_eq_dn() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::None, Status::CheckCondition);
    send_cbw(&mut bot, &mut t, 1, 0, false, &TEST_UNIT_READY);
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 1, residue: 0, status: CswStatus::Failed });
    assert_eq!(t.calls, [Call::Begin { lun: 0, cdb: TEST_UNIT_READY.to_vec() }, Call::End]);
    assert!(!bot.is_halted(true) && !bot.is_halted(false));
}

#[test]
fn case_02_hn_lt_di() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::In(36), Status::Good);
    send_cbw(&mut bot, &mut t, 2, 0, true, &[0x12, 0, 0, 0, 36, 0]);
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 2, residue: 0, status: CswStatus::PhaseError });
    assert!(t.aborted() && !t.ended());
    assert_eq!(t.data_calls(), 0);
}

#[test]
fn case_03_hn_lt_do() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::Out(512), Status::Good);
    send_cbw(&mut bot, &mut t, 3, 0, false, &WRITE10);
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 3, residue: 0, status: CswStatus::PhaseError });
    assert!(t.aborted() && !t.ended());
    assert_eq!(t.data_calls(), 0);
}

#[test]
fn case_04_hi_gt_dn_pads_with_zeros_then_csw() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::None, Status::CheckCondition);
    send_cbw(&mut bot, &mut t, 4, 1024, true, &READ10);
    // H bytes of padding, in the host's 512-byte pieces: no stall, no short
    // packet (SeaBIOS survives neither), not the CSW in place of data.
    for _ in 0..2 {
        let mut buf = [0xEEu8; 512];
        assert_eq!(bot.bulk_in(&mut t, &mut buf), InResult::Data(512));
        assert_eq!(buf, [0u8; 512], "zero padding");
        assert!(!bot.is_halted(true));
    }
    assert_eq!(t.data_calls(), 0, "the target is never asked for data it has not got");
    // Residue H: none of the bytes were the device's (§6.7.2).
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 4, residue: 1024, status: CswStatus::Failed });
    assert!(t.ended());
}

#[test]
fn case_04_host_buffer_larger_than_h_gets_exactly_h() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::None, Status::Good);
    send_cbw(&mut bot, &mut t, 0x44, 18, true, &TEST_UNIT_READY);
    let mut buf = [0xEEu8; 512];
    assert_eq!(bot.bulk_in(&mut t, &mut buf), InResult::Data(18));
    assert_eq!(buf[..18], [0u8; 18]);
    assert_eq!(buf[18], 0xEE, "nothing written past H");
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 0x44, residue: 18, status: CswStatus::Passed });
}

#[test]
fn case_05_hi_gt_di_pads_the_transfer_to_h() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::In(36), Status::Good);
    send_cbw(&mut bot, &mut t, 5, 512, true, &[0x12, 0, 0, 0, 0xFF, 0]);
    let mut buf = [0xEEu8; 512];
    assert_eq!(bot.bulk_in(&mut t, &mut buf), InResult::Data(512), "the full H, not a short packet");
    assert_eq!(&buf[..36], expected_data(0..36).as_slice());
    assert_eq!(buf[36..], [0u8; 512 - 36], "zeros after the reply");
    assert!(!bot.is_halted(true));
    assert_eq!(t.calls[1], Call::DataIn(36), "only D bytes were asked of the target");
    // The residue leaves the pad bytes out.
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 5, residue: 512 - 36, status: CswStatus::Passed });
}

#[test]
fn case_05_device_data_and_padding_across_transfers() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::In(700), Status::Good);
    send_cbw(&mut bot, &mut t, 0x55, 1536, true, &READ10);
    let mut got = Vec::new();
    for _ in 0..3 {
        let mut buf = [0xEEu8; 512];
        assert_eq!(bot.bulk_in(&mut t, &mut buf), InResult::Data(512));
        got.extend_from_slice(&buf);
    }
    assert_eq!(&got[..700], expected_data(0..700).as_slice());
    assert!(got[700..].iter().all(|&b| b == 0), "zeros from byte D on");
    assert!(!bot.is_halted(true));
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 0x55, residue: 1536 - 700, status: CswStatus::Passed });
}

#[test]
fn case_06_hi_eq_di() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::In(1024), Status::Good);
    send_cbw(&mut bot, &mut t, 6, 1024, true, &READ10);
    let mut got = Vec::new();
    for _ in 0..2 {
        let mut buf = [0u8; 512];
        assert_eq!(bot.bulk_in(&mut t, &mut buf), InResult::Data(512));
        got.extend_from_slice(&buf);
    }
    assert_eq!(got, expected_data(0..1024));
    assert!(!bot.is_halted(true));
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 6, residue: 0, status: CswStatus::Passed });
}

#[test]
fn case_07_hi_lt_di_sends_h_bytes_then_phase_error() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::In(36), Status::Good);
    send_cbw(&mut bot, &mut t, 7, 16, true, &[0x12, 0, 0, 0, 36, 0]);
    let mut buf = [0u8; 512];
    assert_eq!(bot.bulk_in(&mut t, &mut buf), InResult::Data(16));
    assert_eq!(&buf[..16], expected_data(0..16).as_slice());
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 7, residue: 0, status: CswStatus::PhaseError });
    assert!(t.aborted() && !t.ended());
    assert_eq!(t.calls[1], Call::DataIn(16), "only H bytes were asked of the target");
}

#[test]
fn case_08_hi_ne_do() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::Out(512), Status::Good);
    send_cbw(&mut bot, &mut t, 8, 512, true, &WRITE10);
    assert!(t.aborted());
    let mut buf = [0u8; 512];
    assert_eq!(bot.bulk_in(&mut t, &mut buf), InResult::Stall);
    bot.clear_halt(true);
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 8, residue: 512, status: CswStatus::PhaseError });
    assert_eq!(t.data_calls(), 0);
}

#[test]
fn case_09_ho_gt_dn_discards() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::None, Status::Good);
    send_cbw(&mut bot, &mut t, 9, 512, false, &TEST_UNIT_READY);
    let mut early = [0u8; 13];
    assert_eq!(bot.bulk_in(&mut t, &mut early), InResult::Pending, "CSW IN posted during data-out");
    assert_eq!(bot.bulk_out(&mut t, &[0xAB; 512]), OutResult::Accepted(512));
    assert_eq!(t.data_calls(), 0);
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 9, residue: 512, status: CswStatus::Passed });
    assert!(t.ended());
}

#[test]
fn case_10_ho_ne_di() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::In(512), Status::Good);
    send_cbw(&mut bot, &mut t, 10, 512, false, &READ10);
    assert!(t.aborted());
    assert_eq!(bot.bulk_out(&mut t, &[0; 512]), OutResult::Stall);
    assert!(bot.is_halted(false));
    assert!(!bot.is_halted(true));
    bot.clear_halt(false);
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 10, residue: 512, status: CswStatus::PhaseError });
    assert_eq!(t.data_calls(), 0);
}

#[test]
fn case_11_ho_gt_do_takes_d_discards_rest() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::Out(512), Status::Good);
    send_cbw(&mut bot, &mut t, 11, 1024, false, &WRITE10);
    let data: Vec<u8> = (0..1024u32).map(|i| (i * 3) as u8).collect();
    assert_eq!(bot.bulk_out(&mut t, &data), OutResult::Accepted(1024));
    assert_eq!(t.written(), &data[..512]);
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 11, residue: 512, status: CswStatus::Passed });
}

#[test]
fn case_12_ho_eq_do_in_chunks() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::Out(1024), Status::Good);
    send_cbw(&mut bot, &mut t, 12, 1024, false, &WRITE10);
    let data: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
    for chunk in [&data[..300], &data[300..600], &data[600..]] {
        assert_eq!(bot.bulk_out(&mut t, chunk), OutResult::Accepted(chunk.len()));
    }
    assert_eq!(t.written(), data);
    assert_eq!(t.data_calls(), 3, "forwarded in the chunks received");
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 12, residue: 0, status: CswStatus::Passed });
}

#[test]
fn case_13_ho_lt_do_no_partial_write() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::Out(1024), Status::Good);
    send_cbw(&mut bot, &mut t, 13, 512, false, &WRITE10);
    assert_eq!(bot.bulk_out(&mut t, &[0x5A; 512]), OutResult::Accepted(512));
    assert_eq!(t.data_calls(), 0, "a partial write is never executed");
    assert!(t.aborted() && !t.ended());
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 13, residue: 512, status: CswStatus::PhaseError });
}

// ---- other transport behaviour --------------------------------------------

#[test]
fn in_before_cbw_is_pending() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::None, Status::Good);
    let mut buf = [0u8; 13];
    assert_eq!(bot.bulk_in(&mut t, &mut buf), InResult::Pending);
    assert!(t.calls.is_empty());
    send_cbw(&mut bot, &mut t, 0x77, 0, false, &TEST_UNIT_READY);
    assert_eq!(read_csw(&mut bot, &mut t).tag, 0x77);
}

#[test]
fn sg_style_read_in_many_chunks() {
    let mut bot = BulkOnly::new();
    let total = 65536u32;
    let mut t = FakeTarget::new(DataStage::In(total), Status::Good);
    send_cbw(&mut bot, &mut t, 0x100, total, true, &READ10);
    let mut got = Vec::new();
    // Uneven scatter-gather pieces, each a full transfer until the end.
    let sizes = [4096usize, 512, 16384, 1024, 31232, 12288];
    assert_eq!(sizes.iter().sum::<usize>(), total as usize);
    for size in sizes {
        let mut buf = vec![0u8; size];
        assert_eq!(bot.bulk_in(&mut t, &mut buf), InResult::Data(size));
        got.extend_from_slice(&buf);
    }
    assert_eq!(got, expected_data(0..total));
    assert_eq!(t.calls.iter().filter(|c| matches!(c, Call::DataIn(_))).count(), sizes.len(), "zero copy");
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 0x100, residue: 0, status: CswStatus::Passed });
}

#[test]
fn invalid_cbw_wedges_until_reset() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::None, Status::Good);
    let good = cbw(1, 0, false, &TEST_UNIT_READY);
    assert_eq!(bot.bulk_out(&mut t, &good[..30]), OutResult::Stall);
    assert!(bot.is_wedged() && bot.is_halted(true) && bot.is_halted(false));
    // CLEAR_FEATURE alone does not unwedge (§6.6.1).
    bot.clear_halt(true);
    bot.clear_halt(false);
    assert!(bot.is_halted(true) && bot.is_halted(false));
    assert_eq!(bot.bulk_out(&mut t, &good), OutResult::Stall);
    assert_eq!(bot.bulk_in(&mut t, &mut [0u8; 13]), InResult::Stall);
    assert!(t.calls.is_empty(), "nothing reached the target");
    // Reset Recovery: reset, then clear both halts (§5.3.4).
    bot.reset(&mut t);
    assert!(!bot.is_wedged());
    assert!(bot.is_halted(true) && bot.is_halted(false), "halts stay until cleared");
    assert_eq!(bot.bulk_out(&mut t, &good), OutResult::Stall);
    bot.clear_halt(true);
    bot.clear_halt(false);
    assert_eq!(bot.bulk_out(&mut t, &good), OutResult::Accepted(31));
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 1, residue: 0, status: CswStatus::Passed });
    assert!(!t.calls.contains(&Call::Reset), "a Bulk-Only reset is not a SCSI reset");
}

#[test]
fn each_kind_of_invalid_cbw_wedges() {
    let good = cbw(1, 0, false, &TEST_UNIT_READY);
    let mut bad_signature = good;
    bad_signature[0] = 0;
    let mut bad_cb_len = good;
    bad_cb_len[14] = 17;
    let mut reserved = good;
    reserved[12] = 0x01;
    let long = [good.as_slice(), &[0]].concat();
    for bad in [&good[..30], long.as_slice(), &bad_signature, &bad_cb_len, &reserved, &[]] {
        let mut bot = BulkOnly::new();
        let mut t = FakeTarget::new(DataStage::None, Status::Good);
        assert_eq!(bot.bulk_out(&mut t, bad), OutResult::Stall, "{bad:02x?}");
        assert!(bot.is_wedged());
    }
}

#[test]
fn lun_beyond_max_reaches_the_target() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::None, Status::CheckCondition);
    let raw = Cbw::new(3, 0, false, 15, &TEST_UNIT_READY).unwrap().to_bytes();
    assert_eq!(bot.bulk_out(&mut t, &raw), OutResult::Accepted(31));
    assert_eq!(t.calls[0], Call::Begin { lun: 15, cdb: TEST_UNIT_READY.to_vec() });
    assert_eq!(read_csw(&mut bot, &mut t).status, CswStatus::Failed);
    assert!(!bot.is_wedged());
}

#[test]
fn csw_into_a_short_buffer_continues_on_the_next_in() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::None, Status::Good);
    send_cbw(&mut bot, &mut t, 0xABCD, 0, false, &TEST_UNIT_READY);
    let mut first = [0u8; 8];
    assert_eq!(bot.bulk_in(&mut t, &mut first), InResult::Data(8));
    assert!(!bot.is_idle());
    let mut rest = [0u8; 64];
    assert_eq!(bot.bulk_in(&mut t, &mut rest), InResult::Data(5));
    let whole = [first.as_slice(), &rest[..5]].concat();
    assert_eq!(Csw::parse(&whole).unwrap(), Csw { tag: 0xABCD, residue: 0, status: CswStatus::Passed });
    assert!(bot.is_idle());
}

#[test]
fn csw_into_a_large_buffer_is_a_short_packet() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::None, Status::Good);
    send_cbw(&mut bot, &mut t, 5, 0, false, &TEST_UNIT_READY);
    let mut buf = [0u8; 512];
    assert_eq!(bot.bulk_in(&mut t, &mut buf), InResult::Data(13));
    assert_eq!(bot.bulk_in(&mut t, &mut buf), InResult::Pending, "nothing more until the next CBW");
}

#[test]
fn out_while_csw_pending_stalls() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::None, Status::Good);
    send_cbw(&mut bot, &mut t, 1, 0, false, &TEST_UNIT_READY);
    assert_eq!(bot.bulk_out(&mut t, &cbw(2, 0, false, &TEST_UNIT_READY)), OutResult::Stall);
    assert!(bot.is_halted(false));
    // The CSW of the first command is still there.
    assert_eq!(read_csw(&mut bot, &mut t).tag, 1);
}

#[test]
fn data_out_beyond_h_is_not_accepted() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::Out(100), Status::Good);
    send_cbw(&mut bot, &mut t, 1, 100, false, &WRITE10);
    assert_eq!(bot.bulk_out(&mut t, &[1; 60]), OutResult::Accepted(60));
    assert_eq!(bot.bulk_out(&mut t, &[2; 60]), OutResult::Accepted(40), "the transfer ends the stage");
    assert_eq!(t.written().len(), 100);
    assert_eq!(read_csw(&mut bot, &mut t).residue, 0);
}

#[test]
fn reset_during_data_in_aborts_the_command() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::In(4096), Status::Good);
    send_cbw(&mut bot, &mut t, 1, 4096, true, &READ10);
    assert_eq!(bot.bulk_in(&mut t, &mut [0u8; 512]), InResult::Data(512));
    bot.reset(&mut t);
    assert!(t.aborted() && !t.ended());
    assert!(bot.is_idle());
    assert_eq!(bot.bulk_in(&mut t, &mut [0u8; 512]), InResult::Pending);
    t.intent = DataStage::None;
    send_cbw(&mut bot, &mut t, 2, 0, false, &TEST_UNIT_READY);
    assert_eq!(read_csw(&mut bot, &mut t).tag, 2);
}

#[test]
fn reset_during_data_out_aborts_the_command() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::Out(4096), Status::Good);
    send_cbw(&mut bot, &mut t, 1, 4096, false, &WRITE10);
    assert_eq!(bot.bulk_out(&mut t, &[0u8; 512]), OutResult::Accepted(512));
    bot.reset(&mut t);
    assert_eq!(t.calls.last(), Some(&Call::Abort));
    // The next OUT is a CBW again, not data.
    t.intent = DataStage::None;
    send_cbw(&mut bot, &mut t, 2, 0, false, &TEST_UNIT_READY);
    assert_eq!(read_csw(&mut bot, &mut t).tag, 2);
}

#[test]
fn reset_with_csw_pending_does_not_abort() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::None, Status::Good);
    send_cbw(&mut bot, &mut t, 1, 0, false, &TEST_UNIT_READY);
    bot.reset(&mut t);
    assert!(!t.aborted(), "the command had already ended");
    assert!(bot.is_idle());
}

#[test]
fn set_halt_stalls_until_cleared() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::None, Status::Good);
    bot.set_halt(false);
    assert_eq!(bot.bulk_out(&mut t, &cbw(1, 0, false, &TEST_UNIT_READY)), OutResult::Stall);
    bot.clear_halt(false);
    send_cbw(&mut bot, &mut t, 1, 0, false, &TEST_UNIT_READY);
    bot.set_halt(true);
    assert_eq!(bot.bulk_in(&mut t, &mut [0u8; 13]), InResult::Stall);
    bot.clear_halt(true);
    assert_eq!(read_csw(&mut bot, &mut t).tag, 1);
}

#[test]
fn zero_length_intent_counts_as_no_data() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::In(0), Status::Good);
    send_cbw(&mut bot, &mut t, 1, 0, true, &READ10);
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 1, residue: 0, status: CswStatus::Passed });
}

// ---- property: arbitrary host behaviour never panics ----------------------

#[derive(Debug, Clone)]
enum Op {
    Out(Vec<u8>),
    Cbw { tag: u32, host_len: u32, dir_in: bool, lun: u8, cb_len: usize, intent: DataStage, good: bool },
    In(usize),
    ClearHalt(bool),
    SetHalt(bool),
    Reset,
}

fn intent() -> impl Strategy<Value = DataStage> {
    prop_oneof![
        Just(DataStage::None),
        (0u32..3000).prop_map(DataStage::In),
        (0u32..3000).prop_map(DataStage::Out),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..700).prop_map(Op::Out),
        4 => (any::<u32>(), 0u32..3000, any::<bool>(), 0u8..16, 1usize..=16, intent(), any::<bool>())
            .prop_map(|(tag, host_len, dir_in, lun, cb_len, intent, good)| Op::Cbw {
                tag, host_len, dir_in, lun, cb_len, intent, good
            }),
        4 => (0usize..1100).prop_map(Op::In),
        1 => any::<bool>().prop_map(Op::ClearHalt),
        1 => any::<bool>().prop_map(Op::SetHalt),
        1 => Just(Op::Reset),
    ]
}

proptest! {
    #[test]
    fn arbitrary_host_traffic_never_panics_and_recovers(ops in proptest::collection::vec(op(), 0..60)) {
        let mut bot = BulkOnly::new();
        let mut t = FakeTarget::new(DataStage::None, Status::Good);
        for op in ops {
            match op {
                Op::Out(bytes) => {
                    if let OutResult::Accepted(n) = bot.bulk_out(&mut t, &bytes) {
                        prop_assert!(n <= bytes.len());
                    }
                }
                Op::Cbw { tag, host_len, dir_in, lun, cb_len, intent, good } => {
                    t.intent = intent;
                    t.status = if good { Status::Good } else { Status::CheckCondition };
                    let raw = Cbw::new(tag, host_len, dir_in, lun, &[0x28; 16][..cb_len]).unwrap().to_bytes();
                    let _ = bot.bulk_out(&mut t, &raw);
                }
                Op::In(len) => {
                    let mut buf = vec![0u8; len];
                    if let InResult::Data(n) = bot.bulk_in(&mut t, &mut buf) {
                        prop_assert!(n <= len);
                    }
                }
                Op::ClearHalt(dir_in) => bot.clear_halt(dir_in),
                Op::SetHalt(dir_in) => bot.set_halt(dir_in),
                Op::Reset => bot.reset(&mut t),
            }
        }
        // Reset Recovery always brings the transport back.
        bot.reset(&mut t);
        prop_assert!(t.active.is_none(), "the open command was aborted");
        bot.clear_halt(true);
        bot.clear_halt(false);
        t.intent = DataStage::In(8);
        t.status = Status::Good;
        prop_assert_eq!(bot.bulk_out(&mut t, &cbw(0xC0FFEE, 8, true, &READ10)), OutResult::Accepted(31));
        let mut data = [0u8; 8];
        prop_assert_eq!(bot.bulk_in(&mut t, &mut data), InResult::Data(8));
        prop_assert_eq!(data.to_vec(), expected_data(0..8));
        let mut csw = [0u8; 13];
        prop_assert_eq!(bot.bulk_in(&mut t, &mut csw), InResult::Data(13));
        prop_assert_eq!(
            Csw::parse(&csw).unwrap(),
            Csw { tag: 0xC0FFEE, residue: 0, status: CswStatus::Passed }
        );
    }
}

proptest! {
    /// Cases 4, 5 and 6 for any H, D and host transfer sizes: exactly H bytes
    /// arrive (the device's D, then zeros), never a stall, and the residue is
    /// H - D (§6.7.2: pad bytes do not count).
    #[test]
    fn data_in_always_delivers_h_bytes(
        host_len in 1u32..5000,
        device_len in proptest::option::of(0u32..5000),
        pieces in proptest::collection::vec(1usize..1100, 1..40),
        good: bool,
    ) {
        let d = device_len.map(|d| d.min(host_len));
        let intent = d.map_or(DataStage::None, DataStage::In);
        let status = if good { Status::Good } else { Status::CheckCondition };
        let mut bot = BulkOnly::new();
        let mut t = FakeTarget::new(intent, status);
        send_cbw(&mut bot, &mut t, 9, host_len, true, &READ10);
        let mut got = Vec::new();
        let mut pieces = pieces.into_iter().cycle();
        while got.len() < host_len as usize {
            let mut buf = vec![0xEEu8; pieces.next().unwrap_or(512)];
            match bot.bulk_in(&mut t, &mut buf) {
                InResult::Data(n) => {
                    prop_assert!(n > 0 && n <= buf.len());
                    // A short transfer only ever ends the stage exactly at H.
                    prop_assert!(n == buf.len() || got.len() + n == host_len as usize);
                    got.extend_from_slice(&buf[..n]);
                }
                other => prop_assert!(false, "data-in answered {:?}", other),
            }
        }
        prop_assert_eq!(got.len(), host_len as usize);
        let d = d.unwrap_or(0);
        prop_assert_eq!(got[..d as usize].to_vec(), expected_data(0..d));
        prop_assert!(got[d as usize..].iter().all(|&b| b == 0));
        let expected = Csw { tag: 9, residue: host_len - d, status: if good { CswStatus::Passed } else { CswStatus::Failed } };
        prop_assert_eq!(read_csw(&mut bot, &mut t), expected);
    }
}

// ---- data-out handed over with its buffer ------------------------------------

#[test]
fn owned_data_out_is_accepted_at_once_and_reaches_the_target_on_run_deferred() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::Out(512), Status::Good);
    send_cbw(&mut bot, &mut t, 7, 512, false, &WRITE10);
    let data: Vec<u8> = (0..512u32).map(|i| (i * 3) as u8).collect();
    let mut frame = vec![0xEE; 16]; // a transport's header before the data
    frame.extend_from_slice(&data);
    let (result, returned) = bot.bulk_out_owned(&mut t, frame, 16..16 + 512);
    assert_eq!(result, OutResult::Accepted(512));
    assert!(returned.is_none() && bot.has_deferred());
    assert!(t.written().is_empty() && !t.ended(), "nothing reaches the target before run_deferred");
    let spare = bot.run_deferred(&mut t).expect("the buffer comes back");
    assert_eq!(spare.len(), 16 + 512);
    assert_eq!(t.written(), data);
    assert!(t.ended() && !bot.has_deferred());
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 7, residue: 0, status: CswStatus::Passed });
}

#[test]
fn owned_out_outside_a_data_stage_is_handled_at_once() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::None, Status::Good);
    let raw = cbw(1, 0, false, &TEST_UNIT_READY).to_vec();
    let (result, returned) = bot.bulk_out_owned(&mut t, raw, 0..CBW_LEN);
    assert_eq!(result, OutResult::Accepted(CBW_LEN));
    assert!(returned.is_some() && !bot.has_deferred());
    assert_eq!(read_csw(&mut bot, &mut t).status, CswStatus::Passed);
}

#[test]
fn kept_data_reaches_the_target_before_a_reset_aborts_the_command() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::Out(1024), Status::Good);
    send_cbw(&mut bot, &mut t, 2, 1024, false, &WRITE10);
    let (result, _) = bot.bulk_out_owned(&mut t, vec![9; 600], 0..600);
    assert_eq!(result, OutResult::Accepted(600));
    bot.reset(&mut t);
    assert_eq!(t.written(), vec![9; 600]);
    assert!(t.aborted() && !bot.has_deferred());
}

proptest! {
    /// Handing OUT data over with its buffer, delivered by `run_deferred` or
    /// by whatever call comes next, changes nothing the host or the target
    /// sees: same results, same target calls in the same order.
    #[test]
    fn owned_out_transfers_match_plain_ones(ops in proptest::collection::vec((op(), any::<bool>()), 0..60)) {
        let (mut plain, mut tp) = (BulkOnly::new(), FakeTarget::new(DataStage::None, Status::Good));
        let (mut owned, mut to) = (BulkOnly::new(), FakeTarget::new(DataStage::None, Status::Good));
        let lent = |bot: &mut BulkOnly, t: &mut FakeTarget, bytes: &[u8]| {
            let mut frame = vec![0xAB; 16];
            frame.extend_from_slice(bytes);
            bot.bulk_out_owned(t, frame, 16..16 + bytes.len()).0
        };
        for (op, run) in ops {
            match op {
                Op::Out(bytes) => {
                    prop_assert_eq!(plain.bulk_out(&mut tp, &bytes), lent(&mut owned, &mut to, &bytes));
                }
                Op::Cbw { tag, host_len, dir_in, lun, cb_len, intent, good } => {
                    let status = if good { Status::Good } else { Status::CheckCondition };
                    (tp.intent, tp.status, to.intent, to.status) = (intent, status, intent, status);
                    let raw = Cbw::new(tag, host_len, dir_in, lun, &[0x28; 16][..cb_len]).unwrap().to_bytes();
                    prop_assert_eq!(plain.bulk_out(&mut tp, &raw), lent(&mut owned, &mut to, &raw));
                }
                Op::In(len) => {
                    let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
                    prop_assert_eq!(plain.bulk_in(&mut tp, &mut a), owned.bulk_in(&mut to, &mut b));
                    prop_assert_eq!(a, b);
                }
                Op::ClearHalt(dir_in) => {
                    plain.clear_halt(dir_in);
                    owned.clear_halt(dir_in);
                }
                Op::SetHalt(dir_in) => {
                    plain.set_halt(dir_in);
                    owned.set_halt(dir_in);
                }
                Op::Reset => {
                    plain.reset(&mut tp);
                    owned.reset(&mut to);
                }
            }
            if run {
                owned.run_deferred(&mut to);
            }
        }
        owned.run_deferred(&mut to);
        prop_assert_eq!(&tp.calls, &to.calls);
    }
}

#[test]
fn out_wanted_is_a_cbw_then_the_rest_of_the_data_out_stage() {
    let mut bot = BulkOnly::new();
    let mut t = FakeTarget::new(DataStage::Out(1024), Status::Good);
    assert_eq!(bot.out_wanted(), CBW_LEN);
    send_cbw(&mut bot, &mut t, 21, 1024, false, &WRITE10);
    assert_eq!(bot.out_wanted(), 1024);
    assert_eq!(bot.bulk_out(&mut t, &[1; 300]), OutResult::Accepted(300));
    assert_eq!(bot.out_wanted(), 724);
    // Lent data counts at once, before the target has it.
    let (result, kept) = bot.bulk_out_owned(&mut t, vec![2; 724], 0..724);
    assert_eq!((result, kept.is_none()), (OutResult::Accepted(724), true));
    assert_eq!(bot.out_wanted(), 0, "the CSW comes first");
    assert_eq!(read_csw(&mut bot, &mut t), Csw { tag: 21, residue: 0, status: CswStatus::Passed });
    assert_eq!(bot.out_wanted(), CBW_LEN);
    // A data-in command: nothing on OUT until its data and CSW went out; halted: nothing.
    let mut t = FakeTarget::new(DataStage::In(512), Status::Good);
    send_cbw(&mut bot, &mut t, 22, 512, true, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    assert_eq!(bot.out_wanted(), 0);
    bot.set_halt(false);
    let mut buf = vec![0; 512];
    assert_eq!(bot.bulk_in(&mut t, &mut buf), InResult::Data(512));
    let _ = read_csw(&mut bot, &mut t);
    assert_eq!(bot.out_wanted(), 0, "halted");
    bot.clear_halt(false);
    assert_eq!(bot.out_wanted(), CBW_LEN);
}
