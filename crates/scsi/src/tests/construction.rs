//! `Target::try_new` refuses what start-up and `insert` refuse, without panicking.

use super::*;
use crate::{MediumError, TargetError, check_block_size};

#[test]
fn bad_configurations_are_errors_not_panics() {
    assert_eq!(Target::try_new(vec![]).err(), Some(TargetError::NoLuns));
    let many = (0..17).map(|_| empty(LunKind::Disk)).collect();
    assert_eq!(Target::try_new(many).err(), Some(TargetError::TooManyLuns { count: 17 }));
    let cd_with_disk_blocks = LunConfig {
        kind: LunKind::Optical,
        medium: Some(Box::new(Sparse::new(10, 512))),
        serial: "X".into(),
    };
    assert_eq!(
        Target::try_new(vec![disk(8, 512, false), cd_with_disk_blocks]).err(),
        Some(TargetError::Medium { lun: 1, source: MediumError::OpticalBlockSize(512) })
    );
    let odd =
        LunConfig { kind: LunKind::Disk, medium: Some(Box::new(Sparse::new(10, 1000))), serial: "X".into() };
    let e = Target::try_new(vec![odd]).err().unwrap();
    assert_eq!(e.to_string(), "LUN 0: a disk needs 512- or 4096-byte blocks, not 1000");
    let none =
        LunConfig { kind: LunKind::Disk, medium: Some(Box::new(Sparse::new(0, 512))), serial: "X".into() };
    assert_eq!(
        Target::try_new(vec![none]).err(),
        Some(TargetError::Medium { lun: 0, source: MediumError::NoBlocks })
    );
    let ok = Target::try_new(vec![disk(8, 4096, false), optical(10), empty(LunKind::Optical)]).unwrap();
    assert_eq!(ok.lun_count(), 3);
}

#[test]
fn one_block_size_rule() {
    assert!(check_block_size(LunKind::Disk, 512).is_ok());
    assert!(check_block_size(LunKind::Disk, 4096).is_ok());
    assert!(check_block_size(LunKind::Disk, 0).is_err());
    assert!(check_block_size(LunKind::Disk, 2048).is_err());
    assert!(check_block_size(LunKind::Optical, 2048).is_ok());
    assert!(check_block_size(LunKind::Optical, 512).is_err());
}
