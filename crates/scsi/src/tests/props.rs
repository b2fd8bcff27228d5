//! Property tests: arbitrary CDBs never panic; media state stays consistent.

use proptest::prelude::*;

use super::*;
use crate::opcodes::OPCODES;
use crate::optical::CD_MAX_BLOCKS;
use crate::{DataStage, LunKind, MediaError, Status};

/// Every kind of LUN: rw disk, ro 4096-byte disk, CD, DVD, empty disk, empty drive.
fn all_kinds() -> Host {
    let ro4k = LunConfig {
        kind: LunKind::Disk,
        medium: Some(Box::new(vstick_media::MemoryImage::new(16 * 4096, 4096, true))),
        serial: "RO4K".into(),
    };
    Host::new(vec![
        disk(64, 512, false),
        ro4k,
        optical(100),
        optical(CD_MAX_BLOCKS + 10),
        empty(LunKind::Disk),
        empty(LunKind::Optical),
    ])
}

/// A CDB: mostly a known opcode followed by random bytes, sometimes anything.
fn cdb_strategy() -> impl Strategy<Value = Vec<u8>> {
    let known = prop::sample::select(OPCODES.iter().map(|r| r.opcode).collect::<Vec<_>>());
    // Small values reach the valid paths (LBA in range, real page codes) more often.
    let interesting =
        prop::sample::select(vec![0x00u8, 0x01, 0x02, 0x08, 0x10, 0x1C, 0x2A, 0x3F, 0x40, 0x80, 0x83, 0xAA]);
    let byte = prop_oneof![Just(0u8), 0u8..4, interesting, any::<u8>()];
    prop_oneof![
        (known, prop::collection::vec(byte, 0..=15)).prop_map(|(op, rest)| {
            let mut c = vec![op];
            c.extend(rest);
            c
        }),
        prop::collection::vec(any::<u8>(), 0..=16),
    ]
}

/// Upper bound on the bytes a property test moves for one command.
const MAX_MOVED: u32 = 1 << 20;

fn run_any(h: &mut Host, lun: u8, cdb: &[u8], chunk: usize) -> Status {
    match h.target.begin(lun, cdb) {
        DataStage::None => {}
        DataStage::In(n) => {
            if n > MAX_MOVED {
                h.target.abort();
                return Status::Good;
            }
            let mut left = n as usize;
            while left > 0 {
                let mut buf = vec![0u8; chunk.min(left)];
                h.target.data_in(&mut buf);
                left -= buf.len();
            }
        }
        DataStage::Out(n) => {
            if n > MAX_MOVED {
                h.target.abort();
                return Status::Good;
            }
            let mut left = n as usize;
            while left > 0 {
                let buf = vec![0x5Au8; chunk.min(left)];
                h.target.data_out(&buf);
                left -= buf.len();
            }
        }
    }
    h.target.end()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_cdbs_never_panic_and_leave_the_target_usable(
        lun in 0u8..8,
        cdbs in prop::collection::vec(cdb_strategy(), 1..6),
        chunk in prop::sample::select(vec![1usize, 31, 512, 4096]),
    ) {
        let mut h = all_kinds();
        for cdb in &cdbs {
            let _ = run_any(&mut h, lun, cdb, chunk);
        }
        // TUR and REQUEST SENSE still work and agree.
        let tur = h.cmd(lun, &TUR);
        prop_assert_eq!(tur.stage, DataStage::None);
        let rs = h.cmd(lun, &[0x03, 0, 0, 0, 18, 0]);
        prop_assert_eq!(rs.status, Status::Good);
        prop_assert_eq!(rs.data.len(), 18);
        let key = rs.data[2];
        if usize::from(lun) >= h.target.lun_count() {
            prop_assert_eq!((key, rs.data[12]), (0x05, 0x25));
        } else if tur.status == Status::Good {
            prop_assert_eq!(key, 0x00);
        } else {
            // Not ready (no medium) or a unit attention.
            prop_assert!(key == 0x02 || key == 0x06, "sense key {key:#x}");
        }
        // And after draining unit attentions, TUR agrees with the status snapshot.
        if let Some(st) = h.target.status().get(usize::from(lun)) {
            let loaded = st.medium.is_some();
            h.clear_ua(lun);
            let good = loop {
                match h.tur(lun) {
                    Status::Good => break true,
                    Status::CheckCondition => {
                        let s = h.sense(lun);
                        if s.0 != 0x06 { break false; }
                    }
                }
            };
            prop_assert_eq!(good, loaded);
        }
    }
}

#[derive(Debug, Clone)]
enum MediaOp {
    Eject { force: bool },
    Insert { dvd: bool },
    HostEject,
    HostLoad,
    Prevent(bool),
    Tur,
    Gesn,
    GetConfiguration,
    Reset,
}

fn media_op() -> impl Strategy<Value = MediaOp> {
    prop_oneof![
        any::<bool>().prop_map(|force| MediaOp::Eject { force }),
        any::<bool>().prop_map(|dvd| MediaOp::Insert { dvd }),
        Just(MediaOp::HostEject),
        Just(MediaOp::HostLoad),
        any::<bool>().prop_map(MediaOp::Prevent),
        Just(MediaOp::Tur),
        Just(MediaOp::Gesn),
        Just(MediaOp::GetConfiguration),
        Just(MediaOp::Reset),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn media_changes_keep_tur_gesn_and_profile_consistent(
        start_empty in any::<bool>(),
        ops in prop::collection::vec(media_op(), 1..25),
    ) {
        let cfg = if start_empty { empty(LunKind::Optical) } else { optical(100) };
        let mut h = Host::new(vec![cfg]);
        // Model: the blocks of the medium the host can access.
        let mut expected_profile = if start_empty { 0 } else { 0x0008 };
        let mut last_event = 0u8;
        for op in ops {
            match op {
                MediaOp::Eject { force } => {
                    let was_present = h.target.status()[0].medium.is_some();
                    let locked = h.target.status()[0].locked;
                    let r = h.target.eject(0, force);
                    if r.is_ok() && was_present {
                        expected_profile = 0;
                    }
                    if was_present && locked && !force {
                        prop_assert_eq!(r, Err(MediaError::Locked { lun: 0 }));
                    }
                }
                MediaOp::Insert { dvd } => {
                    let blocks = if dvd { CD_MAX_BLOCKS + 1 } else { 100 };
                    let present = h.target.status()[0].medium.is_some();
                    let locked = h.target.status()[0].locked;
                    let r = h.target.insert(0, Box::new(Sparse::new(blocks, 2048)));
                    prop_assert_eq!(r.is_ok(), !(present && locked));
                    if r.is_ok() {
                        expected_profile = if dvd { 0x0010 } else { 0x0008 };
                    }
                }
                MediaOp::HostEject => {
                    let r = h.cmd(0, &start_stop(true, false));
                    if r.status == Status::Good {
                        expected_profile = 0;
                    }
                }
                MediaOp::HostLoad => {
                    let _ = h.cmd(0, &start_stop(true, true));
                    // A disc left in the open tray comes back.
                    if expected_profile == 0 && h.target.status()[0].medium.is_some() {
                        let blocks = h.target.status()[0].blocks;
                        expected_profile = if blocks > CD_MAX_BLOCKS { 0x0010 } else { 0x0008 };
                    }
                }
                MediaOp::Prevent(on) => {
                    let _ = h.cmd(0, &prevent(on));
                }
                MediaOp::Tur => {
                    let _ = h.cmd(0, &TUR);
                }
                MediaOp::Gesn => {
                    let d = h.cmd(0, &gesn(8)).good();
                    last_event = d[4];
                    // One-shot: asking again reports no change.
                    let again = h.cmd(0, &gesn(8)).good();
                    prop_assert_eq!(again[4], 0);
                }
                MediaOp::GetConfiguration => {
                    let _ = h.cmd(0, &get_configuration(0, 0, 8)).good();
                }
                MediaOp::Reset => h.target.reset(),
            }

            // The three views of the drive agree with each other and with the model.
            let profile = current_profile(&mut h, 0);
            prop_assert_eq!(profile, expected_profile);
            let d = h.cmd(0, &gesn(8)).good();
            let (event, status) = (d[4], d[5]);
            let present = status & 0x02 != 0;
            prop_assert_eq!(present, profile != 0);
            // An event describes the state it leaves behind.
            match event {
                2 => prop_assert!(present),
                3 => prop_assert!(!present),
                _ => {}
            }
            let _ = last_event;
            let ready = loop {
                match h.tur(0) {
                    Status::Good => break true,
                    Status::CheckCondition => {
                        let s = h.sense(0);
                        if s.0 != 0x06 {
                            prop_assert_eq!(s, (0x02, 0x3A, 0x00));
                            break false;
                        }
                    }
                }
            };
            prop_assert_eq!(ready, present);
        }
    }
}
