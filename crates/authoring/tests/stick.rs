//! `stick::create` checked by independent tools: mtools (minfo, mlabel, mdir, mcopy), fsck.vfat,
//! and the MBR bytes themselves.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::*;
use vstick_authoring::{self as authoring, Error, Filesystem, StickOptions};

const MIB: u64 = 1 << 20;

fn fat32(size: u64, label: Option<&str>, copy: Option<&Path>) -> StickOptions<'static> {
    StickOptions {
        size,
        fs: Some(Filesystem::Fat32),
        label: label.map(str::to_owned),
        copy: copy.map(Path::to_path_buf),
        ..Default::default()
    }
}

/// `fsck.vfat -n` on the partition, copied out with dd (fsck.fat needs a file of its own).
fn fsck_partition(image: &Path, dir: &Path) -> String {
    let part = dir.join("partition.img");
    run(Command::new("dd")
        .arg(format!("if={}", image.display()))
        .arg(format!("of={}", part.display()))
        .args(["bs=1M", "skip=1", "status=none", "conv=sparse"]));
    let out = run(Command::new("fsck.vfat").arg("-n").arg(&part));
    std::fs::remove_file(&part).unwrap();
    out
}

/// The first MBR partition entry (MBR: 446 + 16 * 0): type byte, start LBA, sector count.
fn mbr_entry(image: &Path) -> (u8, u32, u32, [u8; 2]) {
    let bytes = std::fs::read(image).map(|b| b[..512].to_vec()).unwrap();
    let entry = &bytes[446..462];
    (
        entry[4],                                              // partition type
        u32::from_le_bytes(entry[8..12].try_into().unwrap()),  // first LBA
        u32::from_le_bytes(entry[12..16].try_into().unwrap()), // sectors
        [bytes[510], bytes[511]],                              // boot signature
    )
}

#[test]
fn tricky_tree_round_trips_through_mtools() {
    if !have("mcopy") || !have("fsck.vfat") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    // mtools turns UTF-16 surrogate pairs into `__`, so the non-BMP name is checked separately
    // (`non_bmp_names_are_stored_as_surrogate_pairs`) and by the Linux guest test.
    tricky_tree(&src, &TreeSpec { symlink: true, big: true, non_bmp: false });
    let image = dir.path().join("stick.raw");
    let report = authoring::stick::create(&image, &fat32(256 * MIB, Some("Public"), Some(&src))).unwrap();
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 256 * MIB);
    let part = report.partition.unwrap();
    assert_eq!((part.offset, part.len, part.label.as_deref()), (MIB, 255 * MIB, Some("PUBLIC")));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("1 symlink or special file not copied") && w.contains("link"))
    );

    assert_eq!(mbr_entry(&image), (0x0c, 2048, (255 * MIB / 512) as u32, [0x55, 0xaa]));

    let target = format!("{}@@1M", image.display());
    let label = run(Command::new("mlabel").args(["-s", "-i", &target, "::"]));
    assert_eq!(label.trim(), "Volume label is PUBLIC");
    let minfo = run(Command::new("minfo").args(["-i", &target, "::"]));
    assert!(minfo.contains("hidden sectors: 2048"), "{minfo}");
    assert!(minfo.contains("sectors per fat: 0"), "FAT32 keeps its FAT size in the extended BPB: {minfo}");
    let mdir = run(Command::new("mdir").args(["-i", &target, "::"]));
    assert!(mdir.contains(" Volume in drive : is PUBLIC"), "{mdir}");
    assert!(mdir.contains(&long_name()), "{mdir}");
    assert!(mdir.contains(UNICODE_DIR), "{mdir}");

    let fsck = fsck_partition(&image, dir.path());
    assert!(!fsck.contains("differ") && !fsck.contains("Fix") && !fsck.contains("broken"), "{fsck}");

    let out = dir.path().join("copied");
    std::fs::create_dir(&out).unwrap();
    run(Command::new("mcopy").args(["-s", "-n", "-i", &target]).arg("::/").arg(&out));
    assert_same_tree(&src, &out, &Compare { modes: false, extra_ok: &[], without_symlinks: true });
}

#[test]
fn label_entry_and_empty_fat32_at_the_minimum_size() {
    if !have("mlabel") || !have("fsck.vfat") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("min.raw");
    let err = authoring::stick::create(&image, &fat32(33 * MIB, Some("TINY"), None)).unwrap_err();
    let text = err.to_string();
    let Error::TooSmall { minimum, .. } = err else { panic!("{text}") };
    assert_eq!(text, "size 33 MiB is too small for FAT32 (at least 65525 clusters): the minimum is 34 MiB");
    assert_eq!(names(dir.path()), Vec::<String>::new());

    let report = authoring::stick::create(&image, &fat32(minimum, Some("TINY"), None)).unwrap();
    assert!(report.partition.unwrap().clusters >= 65525);
    let fsck = fsck_partition(&image, dir.path());
    assert!(fsck.contains(" 1 files, 1/"), "only the label entry and the root cluster: {fsck}");
    let target = format!("{}@@1M", image.display());
    // mlabel -s reads the label from the root directory's volume-label entry first.
    assert_eq!(run(Command::new("mlabel").args(["-s", "-i", &target, "::"])).trim(), "Volume label is TINY");
    // The boot sector copy (BS_VolLab, offset 71 of the FAT32 boot sector) says the same.
    let bytes = std::fs::read(&image).unwrap();
    assert_eq!(&bytes[MIB as usize + 71..MIB as usize + 82], b"TINY       ");
}

#[test]
fn content_too_large_for_the_size_names_the_minimum_that_works() {
    if !have("fsck.vfat") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.bin"), pattern(50 << 20, 5)).unwrap();
    for i in 0..300 {
        std::fs::write(src.join(format!("small {i}.txt")), pattern(3000, i)).unwrap();
    }
    let image = dir.path().join("s.raw");
    let err = authoring::stick::create(&image, &fat32(40 * MIB, None, Some(&src))).unwrap_err();
    let text = err.to_string();
    let Error::TooSmall { minimum, .. } = err else { panic!("{text}") };
    assert!(
        text.starts_with(&format!(
            "size 40 MiB is too small for FAT32 with the contents of {}",
            src.display()
        )),
        "{text}"
    );
    assert!(text.contains("301 files"), "{text}");
    assert!(names(dir.path()) == ["src"]);
    authoring::stick::create(&image, &fat32(minimum - MIB, None, Some(&src))).unwrap_err();
    authoring::stick::create(&image, &fat32(minimum, None, Some(&src))).unwrap();
    fsck_partition(&image, dir.path());
}

#[test]
fn blank_image_is_sparse_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("blank.raw");
    let opts = StickOptions { size: 4 << 30, ..Default::default() };
    let report = authoring::stick::create(&image, &opts).unwrap();
    assert!(report.partition.is_none());
    let meta = std::fs::metadata(&image).unwrap();
    assert_eq!(meta.len(), 4 << 30);
    assert!(meta.blocks() * 512 < MIB, "sparse: {} blocks allocated", meta.blocks());
    let mut file = std::fs::File::open(&image).unwrap();
    let mut buf = vec![0xffu8; MIB as usize];
    std::io::Read::read_exact(&mut file, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0), "no partition table, no filesystem: zeros");

    let opts = StickOptions { size: MIB, label: Some("X".into()), ..Default::default() };
    let err = authoring::stick::create(&dir.path().join("l.raw"), &opts).unwrap_err();
    assert_eq!(err.to_string(), "--label needs --fs (an unformatted image has no filesystem to hold it)");
}

/// Fills a source directory with one problem.
type MakeSource = dyn Fn(&Path);

#[test]
fn names_and_files_fat_cannot_hold_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("x.raw");
    let cases: [(&str, &MakeSource, &str); 4] = [
        ("colon", &|s| std::fs::write(s.join("a:b.txt"), b"x").unwrap(), "a:b.txt: name contains ':'"),
        (
            "case",
            &|s| {
                std::fs::write(s.join("Readme.TXT"), b"x").unwrap();
                std::fs::write(s.join("README.txt"), b"y").unwrap();
            },
            "only in letter case",
        ),
        ("dot", &|s| std::fs::write(s.join("trailing."), b"x").unwrap(), "trailing.: name ends with a dot"),
        (
            "huge",
            &|s| {
                let f = std::fs::File::create(s.join("huge.bin")).unwrap();
                f.set_len(4 << 30).unwrap();
            },
            "huge.bin: is 4294967296 bytes; FAT32 files are at most 4 GiB minus one byte",
        ),
    ];
    for (name, make, needle) in cases {
        let src = dir.path().join(name);
        std::fs::create_dir(&src).unwrap();
        make(&src);
        let err = authoring::stick::create(&image, &fat32(64 * MIB, None, Some(&src))).unwrap_err();
        assert!(err.to_string().contains(needle), "{name}: {err}");
        assert!(!image.exists());
    }
}

#[test]
fn bad_paths_and_existing_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let image = dir.path().join("x.raw");
    let err = authoring::stick::create(&image, &fat32(64 * MIB, None, Some(&missing))).unwrap_err();
    assert_eq!(err.to_string(), format!("{}: source directory not found", missing.display()));
    let err =
        authoring::stick::create(&dir.path().join("no/x.raw"), &fat32(64 * MIB, None, None)).unwrap_err();
    assert!(err.to_string().ends_with("no: directory of the output does not exist"), "{err}");
    std::fs::write(&image, b"keep").unwrap();
    let err = authoring::stick::create(&image, &fat32(64 * MIB, None, None)).unwrap_err();
    assert!(matches!(err, Error::OutputExists { .. }));
    assert_eq!(std::fs::read(&image).unwrap(), b"keep");
    let mut opts = fat32(64 * MIB, None, None);
    opts.force = true;
    authoring::stick::create(&image, &opts).unwrap();
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 64 * MIB);
    assert_eq!(names(dir.path()), ["x.raw"]);
}

#[test]
fn non_bmp_names_are_stored_as_surrogate_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join(EMOJI_FILE), b"x").unwrap();
    let image = dir.path().join("e.raw");
    authoring::stick::create(&image, &fat32(40 * MIB, None, Some(&src))).unwrap();
    let bytes = std::fs::read(&image).unwrap();
    // U+1F600 in UTF-16LE is D83D DE00; with the spaces around it, units 5-8 of the name all
    // lie in the second name field (LDIR_Name2, units 5-10) of the first long-name entry.
    let needle: Vec<u8> = " \u{1F600} ".encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert!(bytes.windows(needle.len()).any(|w| w == needle), "LFN with the surrogate pair not found");
}
