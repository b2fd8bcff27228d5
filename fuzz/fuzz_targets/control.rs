//! The control socket: request lines as `serve --control` reads them (JSON
//! parsing into `Request`), each handled by `Controlled::handle` against a
//! live device. Insert paths are mapped onto a fixed set of scratch files
//! (a disk image, ISOs with and without a partition table, an empty and a
//! tiny file, a directory, a missing path), so the fuzzer can reach every
//! open and refusal without touching anything else on the machine.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use vstick::control::{Controlled, MAX_REQUEST_LINE, Request, Response};
use vstick::serve::LunSpec;

const NAMES: [&str; 7] = ["disk.raw", "cd.iso", "hybrid.iso", "empty", "tiny", "dir", "missing"];

fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vstick-fuzz-control-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("dir")).expect("scratch dir");
        std::fs::write(dir.join("disk.raw"), vec![0u8; 64 * 1024]).expect("disk");
        // An ISO 9660 primary volume descriptor at sector 16, without and with an MBR.
        let mut iso = vec![0u8; 40 * 1024];
        iso[32768..32774].copy_from_slice(b"\x01CD001");
        std::fs::write(dir.join("cd.iso"), &iso).expect("iso");
        iso[510..512].copy_from_slice(&[0x55, 0xAA]);
        std::fs::write(dir.join("hybrid.iso"), &iso).expect("hybrid");
        std::fs::write(dir.join("empty"), b"").expect("empty");
        std::fs::write(dir.join("tiny"), [1u8; 100]).expect("tiny");
        dir
    })
}

/// The scratch file standing in for whatever path the request named.
fn confine(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("missing");
    let name = NAMES.iter().find(|n| **n == name).copied().unwrap_or("missing");
    scratch().join(name)
}

fn controlled() -> Controlled {
    let (target, _) = vstick_fuzz::target();
    let dev =
        vstick_usb::MassStorageDevice::new(target, vstick_usb::Identity::default_for("0123456789AB".into()));
    let dir = scratch();
    Controlled {
        device: Arc::new(Mutex::new(dev)),
        // Kinds as the fixture's LUNs: disk, CD, read-only disk, CD.
        luns: vec![
            LunSpec::Disk { path: dir.join("disk.raw"), read_only: false },
            LunSpec::Cdrom { path: dir.join("cd.iso") },
            LunSpec::Disk { path: dir.join("disk.raw"), read_only: true },
            LunSpec::Cdrom { path: dir.join("cd.iso") },
        ],
        block_size: 512,
    }
}

fuzz_target!(|data: &[u8]| {
    let controlled = controlled();
    for line in data.split(|&b| b == b'\n').take(64) {
        if line.len() > MAX_REQUEST_LINE {
            continue; // the socket closes such a connection before parsing
        }
        let Ok(req) = serde_json::from_slice::<Request>(line.trim_ascii()) else { continue };
        let req = match req {
            Request::Insert { lun, path, force } => Request::Insert { lun, path: confine(&path), force },
            other => other,
        };
        let resp = controlled.handle(req);
        if vstick_fuzz::tracing_on() {
            eprintln!("{resp:?}");
        }
        assert!(resp.ok != resp.error.is_some(), "ok and error disagree: {resp:?}");
        let text = serde_json::to_string(&resp).expect("a response always serializes");
        assert!(!text.contains('\n'), "a response must be one line");
        let back: Response = serde_json::from_str(&text).expect("a response parses back");
        assert_eq!(back, resp);
    }
});
