//! `iso::create` checked by an independent reader (xorriso/osirrox), and `iso::list`.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use vstick_authoring::{self as authoring, BiosBoot, Cancel, EntryKind, Error, IsoOptions, Progress};

fn create(src: &Path, out: &Path, label: &str) -> authoring::IsoReport {
    let opts = IsoOptions { label: Some(label.into()), ..Default::default() };
    authoring::iso::create(src, out, &opts).unwrap()
}

#[test]
fn tricky_tree_round_trips_through_osirrox() {
    if !have("osirrox") || !have("xorriso") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    tricky_tree(&src, &TreeSpec { symlink: true, big: true, non_bmp: true });
    let iso = dir.path().join("out.iso");
    let report = create(&src, &iso, "VSTICK_TEST");
    assert_eq!(report.stats.files, MANY_FILES as u64 + 10);
    assert_eq!(report.size, std::fs::metadata(&iso).unwrap().len());
    assert!(report.warnings.iter().any(|w| w.contains("cut to 64 characters")), "{:?}", report.warnings);
    assert!(report.warnings.iter().any(|w| w.contains("moved to /.rr_moved")), "{:?}", report.warnings);

    // Rock Ridge: names, modes, the symlink, the empty directory and every byte. `.rr_moved`
    // (relocation of the 10-level path, ECMA-119 allows 8) is the documented extra.
    let out = dir.path().join("extracted");
    run(Command::new("osirrox").arg("-indev").arg(&iso).arg("-extract").arg("/").arg(&out));
    assert_same_tree(&src, &out, &Compare { modes: true, extra_ok: &[".rr_moved"], without_symlinks: false });

    let pvd = run(Command::new("xorriso").arg("-indev").arg(&iso).arg("-pvd_info"));
    assert!(
        pvd.lines().any(|l| l.starts_with("Volume Id") && l.trim_end().ends_with(": VSTICK_TEST")),
        "{pvd}"
    );

    // Joliet, as Windows reads it: names cut at 64 UCS-2 characters, the rest intact.
    let joliet =
        run(Command::new("xorriso").args(["-read_fs", "norock", "-indev"]).arg(&iso).args(["-find", "/"]));
    let long = long_name();
    assert!(joliet.contains(&format!("'/{}'", &long[..64])), "{joliet}");
    assert!(!joliet.contains(&long));
    assert!(joliet.contains(&format!("'/{UNICODE_DIR}/{UNICODE_FILE}'")), "{joliet}");
    assert!(joliet.contains(&format!("'/{}/bottom.txt'", deep_dir().display())), "{joliet}");

    // `iso ls` lists the same tree as the source.
    let listing = authoring::list(&iso).unwrap();
    assert_eq!(listing.label, "VSTICK_TEST");
    assert_eq!(listing.size, report.size);
    assert_eq!(listing.names_from, "Rock Ridge");
    let listed: Vec<(String, Kind)> = listing
        .entries
        .iter()
        .map(|e| {
            let kind = match &e.kind {
                EntryKind::File { len } => Kind::File { len: *len },
                EntryKind::Dir => Kind::Dir,
                EntryKind::Symlink { target } => Kind::Symlink { target: target.clone() },
                EntryKind::Other => panic!("unexpected special file {}", e.path),
            };
            (e.path.trim_start_matches('/').to_owned(), kind)
        })
        .collect();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    let want: Vec<(String, Kind)> = snapshot(&src).into_iter().map(|(p, (k, _))| (p, k)).collect();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(listed_sorted, want_sorted);
    let text = listing.to_string();
    assert!(text.starts_with("label: VSTICK_TEST\n"), "{text}");
    assert!(text.contains(&format!("l                /link -> {UNICODE_DIR}/{UNICODE_FILE}\n")), "{text}");
    assert!(text.contains(&format!("- {BIG_LEN:>14} /big.bin\n")), "{text}");
    assert!(text.contains("d                /empty/\n"), "{text}");
}

#[test]
fn el_torito_bios_and_uefi_entries() {
    if !have("xorriso") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("boot")).unwrap();
    std::fs::write(src.join("boot/bios.img"), pattern(2048 * 3, 1)).unwrap();
    std::fs::write(src.join("boot/efi.img"), pattern(1440 * 1024, 2)).unwrap();
    let iso = dir.path().join("boot.iso");
    let opts = IsoOptions {
        label: Some("BOOTME".into()),
        boot: Some(BiosBoot { image: "boot/bios.img".into(), load_size: Some(4), info_table: false }),
        efi_boot: Some("boot/efi.img".into()),
        ..Default::default()
    };
    authoring::iso::create(&src, &iso, &opts).unwrap();
    let report = run(Command::new("xorriso").arg("-indev").arg(&iso).args(["-report_el_torito", "plain"]));
    let entries: Vec<&str> = report.lines().filter(|l| l.starts_with("El Torito boot img :")).collect();
    assert_eq!(entries.len(), 2, "{report}");
    assert!(entries[0].contains("BIOS") && entries[0].contains(" 4 "), "{report}");
    assert!(entries[1].contains("UEFI"), "{report}");
    let listing = authoring::list(&iso).unwrap();
    let platforms: Vec<&str> = listing.boot.iter().map(|b| b.platform.as_str()).collect();
    assert_eq!(platforms, ["BIOS", "UEFI"]);
    assert_eq!(listing.boot[1].len, 1440 * 1024);
    // Without the info table the boot image is stored unchanged.
    let out = dir.path().join("x");
    run(Command::new("osirrox").arg("-indev").arg(&iso).arg("-extract").arg("/boot").arg(&out));
    assert_same_bytes(&src.join("boot/bios.img"), &out.join("bios.img"));
}

#[test]
fn boot_image_must_be_a_file_of_the_source() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::create_dir(dir.path().join("src/sub")).unwrap();
    for (image, needle) in [
        ("nope.img", "boot image /nope.img: not found in the source directory"),
        ("sub", "is not a regular file"),
    ] {
        let opts = IsoOptions {
            boot: Some(BiosBoot { image: image.into(), load_size: None, info_table: false }),
            ..Default::default()
        };
        let err =
            authoring::iso::create(&dir.path().join("src"), &dir.path().join("b.iso"), &opts).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
    assert_eq!(names(dir.path()), ["src"]);
}

#[test]
fn bad_paths_fail_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    let iso = dir.path().join("a.iso");
    let opts = IsoOptions::default();

    let err = authoring::iso::create(&dir.path().join("missing"), &iso, &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: source directory not found", dir.path().join("missing").display())
    );

    let err = authoring::iso::create(&src, &dir.path().join("no/dir/a.iso"), &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: directory of the output does not exist", dir.path().join("no/dir").display())
    );

    std::fs::write(&iso, b"old").unwrap();
    let err = authoring::iso::create(&src, &iso, &opts).unwrap_err();
    assert!(matches!(err, Error::OutputExists { .. }), "{err}");
    assert_eq!(std::fs::read(&iso).unwrap(), b"old");

    let opts = IsoOptions { force: true, label: Some("X".repeat(33)), ..Default::default() };
    let err = authoring::iso::create(&src, &iso, &opts).unwrap_err();
    assert!(err.to_string().contains("longer than 32"), "{err}");
    assert_eq!(std::fs::read(&iso).unwrap(), b"old");

    let opts = IsoOptions { force: true, ..Default::default() };
    authoring::iso::create(&src, &iso, &opts).unwrap();
    assert_eq!(authoring::list(&iso).unwrap().label, "SRC", "default label: the directory name");
    assert_eq!(names(dir.path()), ["a.iso", "src"]);

    let err = authoring::list(&src.join("f")).unwrap_err();
    assert!(err.to_string().contains("not a readable ISO 9660 image"), "{err}");
}

/// Cancels the operation as soon as the first bytes are written, as Ctrl-C does.
struct CancelOnFirstWrite {
    cancel: Cancel,
    started: AtomicBool,
}

impl Progress for CancelOnFirstWrite {
    fn start(&self, _total: u64, _what: &str) {
        self.started.store(true, Ordering::SeqCst);
    }
    fn advance(&self, _bytes: u64) {
        self.cancel.cancel();
    }
    fn finish(&self) {}
}

#[test]
fn cancelling_mid_write_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("data"), pattern(8 << 20, 3)).unwrap();
    let iso = dir.path().join("c.iso");
    let cancel = Cancel::new();
    let progress = CancelOnFirstWrite { cancel: cancel.clone(), started: AtomicBool::new(false) };
    let opts = IsoOptions { progress: &progress, cancel, ..Default::default() };
    let err = authoring::iso::create(&src, &iso, &opts).unwrap_err();
    assert!(matches!(err, Error::Interrupted), "{err}");
    assert!(progress.started.load(Ordering::SeqCst));
    assert_eq!(names(dir.path()), ["src"], "no image and no temporary file");
}

#[test]
fn non_utf8_names_keep_their_bytes_in_rock_ridge() {
    use std::os::unix::ffi::OsStrExt;
    if !have("osirrox") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"latin1-caf\xe9.txt");
    std::fs::write(src.join(name), b"bytes").unwrap();
    let iso = dir.path().join("n.iso");
    let report = create(&src, &iso, "N");
    assert!(
        report.warnings.iter().any(|w| w.contains("not valid UTF-8") && w.contains("latin1-caf")),
        "{:?}",
        report.warnings
    );
    let out = dir.path().join("x");
    run(Command::new("osirrox").arg("-indev").arg(&iso).arg("-extract").arg("/").arg(&out));
    assert_eq!(std::fs::read(out.join(name)).unwrap(), b"bytes");
}
