//! Shared helpers for the authoring integration tests: a tricky source tree, tree comparison and
//! running the independent checkers (xorriso/osirrox, mtools, fsck.vfat).

#![allow(dead_code)] // each test binary uses a subset

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const UNICODE_DIR: &str = "Ünïcödé dir";
pub const UNICODE_FILE: &str = "日本語ファイル.txt";
/// Outside the Basic Multilingual Plane: UTF-16 needs a surrogate pair.
pub const EMOJI_FILE: &str = "emoji 😀 ελληνικά.txt";
pub const MANY_FILES: usize = 1500;
pub const BIG_LEN: usize = 40 * 1000 * 1000 + 123;

/// A 120-character file name.
pub fn long_name() -> String {
    let name = format!("{}.txt", "long-name-".repeat(12));
    let name = name[name.len() - 120..].to_owned();
    assert_eq!(name.chars().count(), 120);
    name
}

/// The 10-level path of the deep directory.
pub fn deep_dir() -> PathBuf {
    (1..=10).map(|i| format!("level{i:02}")).collect()
}

/// Deterministic pseudo-random bytes (xorshift64*), so failures are reproducible.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Options for the tricky tree.
pub struct TreeSpec {
    pub symlink: bool,
    pub big: bool,
    /// A name outside the Basic Multilingual Plane (mtools shows such FAT names as `__`).
    pub non_bmp: bool,
}

/// Builds the tree the acceptance criteria name: Unicode names, a 120-character name, a 10-level
/// directory, 1,500 files, a tens-of-MB file, a symlink, an empty directory, modes, a hard link.
pub fn tricky_tree(root: &Path, spec: &TreeSpec) {
    fs::create_dir_all(root.join(UNICODE_DIR)).unwrap();
    fs::write(root.join(UNICODE_DIR).join(UNICODE_FILE), "こんにちは\n").unwrap();
    if spec.non_bmp {
        fs::write(root.join(EMOJI_FILE), pattern(777, 7)).unwrap();
    } else {
        fs::write(root.join("ελληνικά.txt"), pattern(777, 7)).unwrap();
    }
    fs::write(root.join(long_name()), b"long\n").unwrap();
    let deep = root.join(deep_dir());
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("bottom.txt"), b"at the bottom\n").unwrap();
    fs::write(root.join("level01").join("level02").join("mid.txt"), b"mid\n").unwrap();
    let many = root.join("many");
    fs::create_dir(&many).unwrap();
    for i in 0..MANY_FILES {
        fs::write(many.join(format!("file{i:04}.dat")), pattern(i % 700, i as u64)).unwrap();
    }
    fs::create_dir(root.join("empty")).unwrap();
    fs::write(root.join("zero-length"), b"").unwrap();
    let script = root.join("run.sh");
    fs::write(&script, b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let private = root.join("private.txt");
    fs::write(&private, b"secret-ish\n").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o640)).unwrap();
    // A second name for the same file: FAT has no hard links, so it gets a copy.
    fs::hard_link(&private, root.join("hard link.txt")).unwrap();
    if spec.big {
        fs::write(root.join("big.bin"), pattern(BIG_LEN, 42)).unwrap();
    }
    if spec.symlink {
        std::os::unix::fs::symlink(format!("{UNICODE_DIR}/{UNICODE_FILE}"), root.join("link")).unwrap();
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Dir,
    File { len: u64 },
    Symlink { target: String },
}

/// Every entry below `root` (relative paths), not following symlinks.
pub fn snapshot(root: &Path) -> BTreeMap<String, (Kind, u32)> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let kind = if meta.file_type().is_symlink() {
                Kind::Symlink { target: fs::read_link(&path).unwrap().to_string_lossy().into_owned() }
            } else if meta.is_dir() {
                pending.push(path.clone());
                Kind::Dir
            } else {
                Kind::File { len: meta.len() }
            };
            out.insert(rel, (kind, meta.permissions().mode() & 0o7777));
        }
    }
    out
}

/// How strictly two trees must match.
pub struct Compare<'a> {
    /// Compare permission bits of files and directories.
    pub modes: bool,
    /// Relative paths only the copy may have (e.g. `.rr_moved`).
    pub extra_ok: &'a [&'a str],
    /// Drop symlinks from the source side (FAT cannot store them).
    pub without_symlinks: bool,
}

/// Asserts the copy holds exactly the source's entries, with identical bytes.
pub fn assert_same_tree(src: &Path, copy: &Path, how: &Compare<'_>) {
    let mut want = snapshot(src);
    if how.without_symlinks {
        want.retain(|_, (k, _)| !matches!(k, Kind::Symlink { .. }));
    }
    let mut got = snapshot(copy);
    for extra in how.extra_ok {
        got.remove(*extra);
    }
    let want_keys: Vec<_> = want.keys().collect();
    let got_keys: Vec<_> = got.keys().collect();
    if want_keys != got_keys {
        let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).take(10).collect();
        let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).take(10).collect();
        panic!("trees differ: missing {missing:?}, extra {extra:?}");
    }
    for (path, (kind, mode)) in &want {
        let (got_kind, got_mode) = &got[path];
        assert_eq!(kind, got_kind, "{path}");
        if how.modes && !matches!(kind, Kind::Symlink { .. }) {
            assert_eq!(mode, got_mode, "mode of {path}: {mode:o} vs {got_mode:o}");
        }
        if let Kind::File { .. } = kind {
            assert_same_bytes(&src.join(path), &copy.join(path));
        }
    }
}

pub fn assert_same_bytes(a: &Path, b: &Path) {
    let (mut fa, mut fb) = (fs::File::open(a).unwrap(), fs::File::open(b).unwrap());
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        assert_eq!(na, nb, "{} and {} differ in length near byte {offset}", a.display(), b.display());
        if ba[..na] != bb[..nb] {
            let at = ba.iter().zip(&bb).position(|(x, y)| x != y).unwrap_or(0);
            panic!("{} and {} differ at byte {}", a.display(), b.display(), offset + at as u64);
        }
        if na == 0 {
            return;
        }
        offset += na as u64;
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// Whether `tool` is on PATH; prints why a test is skipped when it is not. The test command
/// installs every tool these tests use, so in CI nothing is skipped.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED: {tool} is not installed (scripts/install-deps installs it)");
    }
    found
}

/// Runs a command, asserting success; returns stdout. mtools get a UTF-8 locale so long names
/// come out as UTF-8.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.env("LC_ALL", "C.UTF-8").output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file name in `dir` (no recursion), sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}
