//! BOT over the real SCSI target and an in-memory disk: what a host driver
//! (Linux usb-storage, Windows usbstor) does, one transfer at a time.

use vstick_bot::{Cbw, Csw, CswStatus, InResult};
use vstick_scsi::Target;
use vstick_test_support::{
    BLOCK, BotHost, BotPipes, DISK_BLOCKS as BLOCKS, Data, TEST_UNIT_READY as TUR, disk_target, read10,
    write10,
};

/// A host driving BOT and a 1 MiB memory disk directly.
type Host = BotHost<BotPipes<Target>>;

fn host() -> Host {
    BotHost::new(BotPipes::new(disk_target()))
}

#[test]
fn inquiry_and_read_capacity() {
    let mut host = host();
    let (inq, csw) = host.command(0, &[0x12, 0, 0, 0, 36, 0], Data::In { len: 36, chunk: 512 });
    assert_eq!(csw, Csw { tag: 1, residue: 0, status: CswStatus::Passed });
    assert_eq!(inq.len(), 36);
    assert_eq!(inq[0] & 0x1F, 0x00, "direct-access block device");
    assert_eq!(inq[1] & 0x80, 0x80, "removable");
    host.ready(0);
    let (cap, csw) = host.command(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], Data::In { len: 8, chunk: 512 });
    assert_eq!(csw.status, CswStatus::Passed);
    assert_eq!(cap, [0, 0, 0x07, 0xFF, 0, 0, 0x02, 0x00], "last LBA 2047, 512-byte blocks");
}

#[test]
fn write_then_read_back_in_sg_chunks() {
    let mut host = host();
    host.ready(0);
    let data: Vec<u8> = (0..64 * BLOCK).map(|i| (i * 31 % 253) as u8).collect();
    let (_, csw) = host.command(0, &write10(100, 64), Data::Out { data: &data, chunk: 4096 + 512 });
    assert_eq!(csw, Csw { tag: csw.tag, residue: 0, status: CswStatus::Passed });
    let (back, csw) = host.command(0, &read10(100, 64), Data::In { len: data.len() as u32, chunk: 16384 });
    assert_eq!(csw.status, CswStatus::Passed);
    assert_eq!(csw.residue, 0);
    assert_eq!(back, data);
    // The neighbours are untouched.
    let (before, _) = host.command(0, &read10(99, 1), Data::In { len: 512, chunk: 512 });
    assert_eq!(before, vec![0u8; 512]);
}

#[test]
fn inquiry_allocation_longer_than_response_is_case_5() {
    let mut host = host();
    // Windows asks INQUIRY with a 255-byte allocation; the standard data is shorter.
    let (inq, csw) = host.command(0, &[0x12, 0, 0, 0, 0xFF, 0], Data::In { len: 255, chunk: 512 });
    // The transfer is padded to the allocation; the residue tells the real length
    // (byte 4 is the additional length, SPC-4 6.6.2).
    assert_eq!(inq.len(), 255);
    let real = usize::from(inq[4]) + 5;
    assert!((36..255).contains(&real));
    assert!(inq[real..].iter().all(|&b| b == 0), "zero padding");
    assert_eq!(csw.status, CswStatus::Passed);
    assert_eq!(csw.residue, 255 - real as u32);
}

#[test]
fn short_host_buffer_is_phase_error_then_reset_recovery() {
    let mut host = host();
    host.ready(0);
    // Case 7: the host expects 512 bytes of a 2-block READ.
    let (got, csw) = host.command(0, &read10(0, 2), Data::In { len: 512, chunk: 512 });
    assert_eq!(got.len(), 512);
    assert_eq!(csw.status, CswStatus::PhaseError);
    // Linux: Bulk-Only reset, clear both halts, carry on.
    host.pipes.reset();
    host.pipes.bot.clear_halt(true);
    host.pipes.bot.clear_halt(false);
    assert_eq!(host.command(0, &TUR, Data::None).1.status, CswStatus::Passed, "no unit attention");
    let (got, csw) = host.command(0, &read10(0, 2), Data::In { len: 1024, chunk: 512 });
    assert_eq!((got.len(), csw.status), (1024, CswStatus::Passed));
}

#[test]
fn no_data_command_with_data_in_expected_is_padded() {
    let mut host = host();
    host.ready(0);
    // Case 4: TEST UNIT READY while the host expects 512 bytes in.
    let (got, csw) = host.command(0, &TUR, Data::In { len: 512, chunk: 512 });
    assert_eq!(got, vec![0u8; 512], "zero padding, no stall");
    assert_eq!(csw.residue, 512, "pad bytes are residue");
    assert_eq!(csw.status, CswStatus::Passed);
}

/// What SeaBIOS does when an image is too small for El Torito: READ(10) of
/// LBA 17 fails, and the firmware (which never clears a halt and counts a
/// short packet as an error) goes on with the next LUN on the same device.
#[test]
fn failed_read_keeps_the_device_usable_without_halt_recovery() {
    let mut host = host();
    host.ready(0);
    let past_end = u32::try_from(BLOCKS).unwrap() + 16;
    let (got, csw) = host.command(0, &read10(past_end, 4), Data::In { len: 2048, chunk: 2048 });
    assert_eq!(got, vec![0u8; 2048], "the whole data stage, padded");
    assert_eq!((csw.status, csw.residue), (CswStatus::Failed, 2048));
    assert!(!host.pipes.bot.is_halted(true) && !host.pipes.bot.is_halted(false));
    assert_eq!(host.sense(0), (0x05, 0x21, 0x00));
    // The next command works with no CLEAR_FEATURE in between.
    let (got, csw) = host.command(0, &read10(0, 1), Data::In { len: 512, chunk: 512 });
    assert_eq!((got.len(), csw.status, csw.residue), (512, CswStatus::Passed, 0));
}

#[test]
fn missing_lun_fails_with_lun_not_supported() {
    let mut host = host();
    let (inq, csw) = host.command(3, &[0x12, 0, 0, 0, 36, 0], Data::In { len: 36, chunk: 512 });
    assert_eq!(csw.status, CswStatus::Passed);
    assert_eq!(inq[0], 0x7F, "peripheral qualifier 3, type 1F");
    assert_eq!(host.command(3, &TUR, Data::None).1.status, CswStatus::Failed);
    assert_eq!(host.sense(3), (0x05, 0x25, 0x00));
    assert!(!host.pipes.bot.is_wedged());
}

#[test]
fn write_past_the_end_fails_and_data_is_discarded() {
    let mut host = host();
    host.ready(0);
    let data = vec![0xEE; 1024];
    let (_, csw) = host.command(0, &write10(BLOCKS as u32 - 1, 2), Data::Out { data: &data, chunk: 512 });
    assert_eq!(csw.status, CswStatus::Failed);
    assert_eq!(csw.residue, 1024, "nothing written");
    assert_eq!(host.sense(0), (0x05, 0x21, 0x00));
    let (last, _) = host.command(0, &read10(BLOCKS as u32 - 1, 1), Data::In { len: 512, chunk: 512 });
    assert_eq!(last, vec![0u8; 512]);
}

#[test]
fn short_write_is_phase_error_and_writes_nothing() {
    let mut host = host();
    host.ready(0);
    // Case 13: WRITE(10) of 2 blocks, host sends only one.
    let data = vec![0x77; 512];
    let (_, csw) = host.command(0, &write10(5, 2), Data::Out { data: &data, chunk: 512 });
    assert_eq!(csw.status, CswStatus::PhaseError);
    host.pipes.reset();
    let (block, _) = host.command(0, &read10(5, 1), Data::In { len: 512, chunk: 512 });
    assert_eq!(block, vec![0u8; 512], "no partial write");
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Cbw { lun: u8, cdb: Vec<u8>, len: u32, dir_in: bool },
        Out(usize),
        In(usize),
        Clear(bool),
        Reset,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Opcodes the disk knows (and a few it does not), with random fields.
        let opcode = prop_oneof![
            Just(0x00u8),
            Just(0x03),
            Just(0x12),
            Just(0x1A),
            Just(0x1B),
            Just(0x1E),
            Just(0x23),
            Just(0x25),
            Just(0x28),
            Just(0x2A),
            Just(0x2F),
            Just(0x35),
            Just(0x5A),
            Just(0x88),
            Just(0x8A),
            Just(0x9E),
            Just(0xA0),
            any::<u8>(),
        ];
        let cdb = (opcode, proptest::collection::vec(any::<u8>(), 5..16)).prop_map(|(op, mut rest)| {
            // Keep transfer lengths small so the stages stay short.
            if let Some(b) = rest.get_mut(6) {
                *b = 0;
            }
            rest.insert(0, op);
            rest
        });
        prop_oneof![
            3 => (0u8..3, cdb, 0u32..5000, any::<bool>())
                .prop_map(|(lun, cdb, len, dir_in)| Op::Cbw { lun, cdb, len, dir_in }),
            3 => (0usize..3000).prop_map(Op::Out),
            4 => (0usize..3000).prop_map(Op::In),
            1 => any::<bool>().prop_map(Op::Clear),
            1 => Just(Op::Reset),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn arbitrary_commands_on_a_real_target(ops in proptest::collection::vec(op(), 0..40)) {
            let mut host = host();
            for op in ops {
                match op {
                    Op::Cbw { lun, cdb, len, dir_in } => {
                        let cbw = Cbw::new(7, len, dir_in, lun, &cdb).unwrap().to_bytes();
                        let _ = host.pipes.bot.bulk_out(&mut host.pipes.target, &cbw);
                    }
                    Op::Out(n) => {
                        let _ = host.pipes.bot.bulk_out(&mut host.pipes.target, &vec![0xA5; n]);
                    }
                    Op::In(n) => {
                        let mut buf = vec![0u8; n];
                        if let InResult::Data(got) = host.pipes.bot.bulk_in(&mut host.pipes.target, &mut buf) {
                            prop_assert!(got <= n);
                        }
                    }
                    Op::Clear(dir_in) => host.pipes.bot.clear_halt(dir_in),
                    Op::Reset => host.pipes.reset(),
                }
            }
            host.pipes.reset();
            host.pipes.bot.clear_halt(true);
            host.pipes.bot.clear_halt(false);
            host.tag = 1000;
            let (inq, csw) = host.command(0, &[0x12, 0, 0, 0, 36, 0], Data::In { len: 36, chunk: 512 });
            prop_assert_eq!(csw.status, CswStatus::Passed);
            prop_assert_eq!(inq.len(), 36);
        }
    }
}
