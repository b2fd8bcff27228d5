//! Host-only micro-benchmark of the usbredir data path, no guest:
//!
//!   cargo bench -p vstick-bench --bench usbredir_loopback [-- --seconds S] [-- --memory]
//!
//! A loopback usb-guest client ([`RedirClient`]) sends READ(10) and WRITE(10)
//! commands of 4 KiB … 1 MiB the way Linux usb-storage does (CBW, data, CSW,
//! one after the other) to
//! - vstick: `vstick_usbredir::serve` over a SuperSpeed `MassStorageDevice`,
//!   a SCSI target and a 64 MiB image file (page cache, as `vstick serve`);
//!   `--memory` uses a `MemoryImage` instead;
//! - the limit: [`raw_server`], which answers the same frames with the same
//!   byte counts and does nothing else.
//!
//! Prints MB/s and microseconds per command for both, and vstick's share of
//! the limit. Numbers on a shared 2-core machine move by 10-20 % between
//! runs; compare columns of one run.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vstick_bench::raw_server;
use vstick_bench::redir_client::{BLOCK, RedirClient};
use vstick_media::{BlockBackend, FileImage, MemoryImage, OpenOptions};
use vstick_scsi::{LunConfig, LunKind, Target};
use vstick_usb::{Identity, MassStorageDevice, Speed};

const IMAGE_BYTES: usize = 64 << 20;
const SIZES: [usize; 5] = [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20];
const MAX_TRANSFER: usize = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
}

struct Sample {
    commands: u64,
    elapsed: Duration,
}

impl Sample {
    fn mb_per_s(&self, size: usize) -> f64 {
        self.commands as f64 * size as f64 / self.elapsed.as_secs_f64() / 1e6
    }
    fn us_per_command(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e6 / self.commands as f64
    }
}

/// Runs `op` commands of `size` bytes for about `budget`, walking the image.
fn drive(client: &mut RedirClient, op: Op, size: usize, budget: Duration) -> Sample {
    let data = vec![0xA5u8; size];
    let blocks_per_cmd = (size / BLOCK as usize) as u32;
    let image_blocks = (IMAGE_BYTES / BLOCK as usize) as u32;
    let mut lba = 0u32;
    let mut commands = 0u64;
    // Warm-up: a few commands outside the timing.
    for _ in 0..4 {
        issue(client, op, 0, size, &data);
    }
    let start = Instant::now();
    while start.elapsed() < budget || commands < 16 {
        issue(client, op, lba, size, &data);
        commands += 1;
        lba = (lba + blocks_per_cmd) % (image_blocks - blocks_per_cmd);
    }
    Sample { commands, elapsed: start.elapsed() }
}

fn issue(client: &mut RedirClient, op: Op, lba: u32, size: usize, data: &[u8]) {
    let result = match op {
        Op::Read => client.read10(lba, size as u32),
        Op::Write => client.write10(lba, data),
    };
    if let Err(e) = result {
        panic!("command failed: {e}");
    }
}

fn vstick_device(memory: bool, dir: &std::path::Path) -> MassStorageDevice {
    let medium: Box<dyn BlockBackend> = if memory {
        Box::new(MemoryImage::new(IMAGE_BYTES, BLOCK, false))
    } else {
        let path = dir.join("bench.raw");
        std::fs::write(&path, vec![0x11u8; IMAGE_BYTES]).expect("create the image");
        Box::new(FileImage::open(&path, OpenOptions::disk(false)).expect("open the image"))
    };
    let lun = LunConfig { kind: LunKind::Disk, medium: Some(medium), serial: "BENCH0001".into() };
    MassStorageDevice::new(Target::new(vec![lun]), Identity::default_for("BENCH0001".into()))
        .with_speed(Speed::Super)
}

/// Measures every (op, size) against a fresh connection from `connect`.
fn measure(mut client: RedirClient, budget: Duration) -> Vec<(Op, usize, Sample)> {
    let mut out = Vec::new();
    for op in [Op::Read, Op::Write] {
        for size in SIZES {
            out.push((op, size, drive(&mut client, op, size, budget)));
        }
    }
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut seconds = 1.0f64;
    let mut memory = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(seconds),
            "--memory" => memory = true,
            // cargo bench passes --bench; anything else is ignored too.
            _ => {}
        }
    }
    let budget = Duration::from_secs_f64(seconds / 2.0);

    // vstick: the library stack `vstick serve --usbredir` runs, on its own runtime.
    let dir = std::env::temp_dir().join(format!("vstick-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let device = Arc::new(Mutex::new(vstick_device(memory, &dir)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(vstick_usbredir::serve(listener, device, async {
        let _ = stop_rx.await;
    }));
    let vstick = measure(RedirClient::connect(addr, MAX_TRANSFER).expect("connect to vstick"), budget);
    let _ = stop_tx.send(());
    let _ = runtime.block_on(server);
    drop(runtime);
    let _ = std::fs::remove_dir_all(&dir);

    // The limit: the same frames over a loopback socket, answered by a copy.
    let raw_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let raw_addr = raw_listener.local_addr().expect("addr");
    let raw_thread = std::thread::spawn(move || raw_server::serve_one(&raw_listener, MAX_TRANSFER));
    let raw = measure(RedirClient::connect_raw(raw_addr, MAX_TRANSFER).expect("connect to raw"), budget);
    // Dropping the client (inside measure) closed the socket; the server returns.
    raw_thread.join().expect("raw server thread").expect("raw server");

    println!(
        "usbredir loopback, BOT commands one at a time (CBW, data, CSW), {} image, {:.1} s per point",
        if memory { "memory" } else { "file (page cache)" },
        budget.as_secs_f64()
    );
    println!();
    println!(
        "| command | size | vstick MB/s | vstick us/cmd | loopback limit MB/s | limit us/cmd | vstick / limit |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for ((op, size, v), (_, _, r)) in vstick.iter().zip(raw.iter()) {
        let name = if *op == Op::Read { "READ(10)" } else { "WRITE(10)" };
        println!(
            "| {name} | {} KiB | {:.0} | {:.1} | {:.0} | {:.1} | {:.2} |",
            size >> 10,
            v.mb_per_s(*size),
            v.us_per_command(),
            r.mb_per_s(*size),
            r.us_per_command(),
            v.mb_per_s(*size) / r.mb_per_s(*size)
        );
    }
}
