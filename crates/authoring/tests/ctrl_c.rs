//! A real SIGINT during a write: the handler `Cancel::on_ctrl_c` installs stops the write, and
//! neither the image nor its temporary file remains. Alone in its binary: the handler is
//! process-wide.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use vstick_authoring::{self as authoring, Cancel, Error, IsoOptions, Progress, StickOptions};

/// Sends SIGINT to this process at the first written block, then gives the handler time to run.
#[derive(Default)]
struct InterruptOnce {
    sent: AtomicBool,
}

impl Progress for InterruptOnce {
    fn start(&self, _total: u64, _what: &str) {}
    fn advance(&self, _bytes: u64) {
        if !self.sent.swap(true, Ordering::SeqCst) {
            run(Command::new("kill").args(["-INT", &std::process::id().to_string()]));
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    fn finish(&self) {}
}

#[test]
fn sigint_removes_the_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("data"), pattern(32 << 20, 9)).unwrap();
    let cancel = Cancel::new();
    cancel.on_ctrl_c().unwrap();

    let progress = InterruptOnce::default();
    let opts = IsoOptions { progress: &progress, cancel: cancel.clone(), ..Default::default() };
    let err = authoring::iso::create(&src, &dir.path().join("a.iso"), &opts).unwrap_err();
    assert!(matches!(err, Error::Interrupted), "{err}");
    assert_eq!(err.to_string(), "interrupted; no output written");
    assert!(progress.sent.load(Ordering::SeqCst));
    assert_eq!(names(dir.path()), ["src"]);

    // The same token stays cancelled: a stick write with it stops before writing anything.
    let opts = StickOptions {
        size: 64 << 20,
        fs: Some(authoring::Filesystem::Fat32),
        copy: Some(src.clone()),
        cancel,
        ..Default::default()
    };
    assert!(matches!(authoring::stick::create(&dir.path().join("s.raw"), &opts), Err(Error::Interrupted)));
    assert_eq!(names(dir.path()), ["src"]);
}
