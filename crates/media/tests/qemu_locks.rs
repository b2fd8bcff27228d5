//! vstick and a real QEMU (qemu-nbd / qemu-io from qemu-utils) refuse each other's images.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vstick_media::{FileImage, OpenError, OpenOptions};

fn has_ofd_lock_at(path: &std::path::Path, byte: u64) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(path).unwrap().ino();
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    locks.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 8
            && f[1] == "OFDLCK"
            && f[5].rsplit(':').next().and_then(|i| i.parse::<u64>().ok()) == Some(ino)
            && f[6].parse::<u64>().is_ok_and(|s| s <= byte)
            && f[7].parse::<u64>().is_ok_and(|e| e >= byte)
    })
}

#[test]
fn qemu_holding_an_image_is_named_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.raw");
    std::fs::File::create(&img).unwrap().set_len(1 << 20).unwrap();
    let sock = dir.path().join("nbd.sock");
    let mut nbd = Command::new("qemu-nbd")
        .args(["-k", sock.to_str().unwrap(), "-f", "raw", img.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-nbd (package qemu-utils) must be installed: scripts/install-deps");
    let start = Instant::now();
    // qemu-nbd takes the write permission (byte 101) and shares writing.
    while !has_ofd_lock_at(&img, 101) {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = nbd.kill();
            panic!("qemu-nbd never locked the image");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = FileImage::open(&img, OpenOptions::disk(false)).unwrap_err();
    let _ = nbd.kill();
    let _ = nbd.wait();
    match &err {
        OpenError::Locked { holder, .. } => assert!(holder.contains("qemu-nbd"), "{err}"),
        other => panic!("expected Locked, got {other}"),
    }
}

#[test]
fn qemu_refuses_an_image_vstick_serves() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.raw");
    std::fs::File::create(&img).unwrap().set_len(1 << 20).unwrap();
    let qemu_io = |extra: &[&str]| {
        Command::new("qemu-io")
            .args(extra)
            .args(["-f", "raw", "-c", "read 0 512", img.to_str().unwrap()])
            .output()
            .expect("qemu-io (package qemu-utils) must be installed: scripts/install-deps")
    };
    let held = FileImage::open(&img, OpenOptions::disk(false)).unwrap();
    // (`qemu-io -r` would be let in: a read-only QEMU shares writing by default.)
    let out = qemu_io(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("lock"), "a QEMU writer was not refused: {stderr}");
    drop(held);
    assert!(qemu_io(&[]).status.success(), "QEMU can write once vstick let go");
    // A read-only vstick lets QEMU read but not write.
    let _ro = FileImage::open(&img, OpenOptions::disk(true)).unwrap();
    assert!(qemu_io(&["-r", "-U"]).status.success(), "read-only sharing with force-share");
    let out = qemu_io(&[]);
    assert!(!out.status.success(), "a QEMU writer must be refused while vstick reads");
}
