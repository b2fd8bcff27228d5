//! Large-file ISO tests: streaming (memory independent of the file size) and a file larger
//! than 4 GiB (ISO 9660 level 3, several extents, ECMA-119 9.5.3 / 7.3.2 multi-extent).
//!
//! The > 4 GiB test writes a 4.5 GiB image and extracts it again, so it is opt-in:
//!     cargo test -p vstick-authoring --release --test iso_large -- --ignored

mod common;

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

use common::*;
use vstick_authoring::{self as authoring, EntryKind, IsoOptions};

const MIB: u64 = 1 << 20;

/// Peak resident memory of this process (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// A sparse file of `len` bytes with distinct markers at `marks`, returned for checking.
fn sparse_with_marks(path: &Path, len: u64, marks: &[u64]) {
    let mut f = File::create(path).unwrap();
    f.set_len(len).unwrap();
    for (i, &at) in marks.iter().enumerate() {
        f.seek(SeekFrom::Start(at)).unwrap();
        let mark = pattern(4096.min((len - at) as usize), 100 + i as u64);
        f.write_all(&mark).unwrap();
    }
}

#[test]
fn contents_are_streamed_not_held_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let len = 768 * MIB;
    sparse_with_marks(&src.join("big.bin"), len, &[0, len / 2, len - 4096]);
    let before = peak_rss();
    let iso = dir.path().join("stream.iso");
    authoring::iso::create(&src, &iso, &IsoOptions::default()).unwrap();
    let grew = peak_rss().saturating_sub(before);
    assert!(grew < 64 * MIB, "peak memory grew by {} MiB writing a {} MiB file", grew >> 20, len >> 20);
    if have("osirrox") {
        let cut = dir.path().join("cut");
        run(Command::new("osirrox")
            .arg("-indev")
            .arg(&iso)
            .args(["-extract_cut", "/big.bin", &(len - 8192).to_string(), "8192"])
            .arg(&cut));
        let tail = std::fs::read(&cut).unwrap();
        let mut want = vec![0u8; 4096];
        want.extend(pattern(4096, 102));
        assert_eq!(tail, want);
    }
}

#[test]
#[ignore = "writes 9 GiB; run with: cargo test -p vstick-authoring --release --test iso_large -- --ignored"]
fn file_larger_than_4gib_round_trips() {
    if !have("osirrox") || !have("xorriso") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let len = (4 << 30) + (512 * MIB) + 12345;
    let four = 4u64 << 30;
    sparse_with_marks(&src.join("huge file.bin"), len, &[0, four - 2048 - 1000, four - 10, len - 4096]);
    std::fs::write(src.join("after.txt"), b"a file placed after the big one\n").unwrap();

    let before = peak_rss();
    let iso = dir.path().join("huge.iso");
    let report =
        authoring::iso::create(&src, &iso, &IsoOptions { label: Some("HUGE".into()), ..Default::default() })
            .unwrap();
    assert!(peak_rss().saturating_sub(before) < 64 * MIB, "streaming");
    assert!(report.size > len);

    // More than one extent: a single ISO 9660 extent holds at most 4 GiB - 1 byte.
    let lba = run(Command::new("xorriso").arg("-indev").arg(&iso).args([
        "-find",
        "/huge file.bin",
        "-exec",
        "report_lba",
    ]));
    let extents = lba.lines().filter(|l| l.starts_with("File data lba:")).count();
    assert!(extents >= 2, "{lba}");

    // Rock Ridge name and size survive on the multi-extent file.
    let listing = authoring::list(&iso).unwrap();
    let huge = listing.entries.iter().find(|e| e.path == "/huge file.bin").unwrap();
    assert_eq!(huge.kind, EntryKind::File { len });

    let out = dir.path().join("out");
    run(Command::new("osirrox")
        .args(["-osirrox", "on:sparse=1m", "-indev"])
        .arg(&iso)
        .arg("-extract")
        .arg("/")
        .arg(&out));
    assert_same_tree(&src, &out, &Compare { modes: true, extra_ok: &[], without_symlinks: false });
}
