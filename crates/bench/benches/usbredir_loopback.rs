//! Host-only micro-benchmark of the usbredir data path, no guest:
//!
//!   cargo bench -p vstick-bench --bench usbredir_loopback [-- --seconds S] [--memory] [--qemu-reads]
//!       [--connect HOST:PORT --server-pid PID]
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
//! the limit. `--qemu-reads` makes the client receive as QEMU's socket
//! chardev does (poll, then at most 4 KiB per recv), which is what caps
//! usbredir reads in a real guest. `--connect` measures a running
//! `vstick serve --usbredir HOST:PORT` (any build) instead of the in-process
//! stack; with `--server-pid` the table adds that process's CPU time per
//! command (utime + stime from /proc/PID/stat around each of its slices). Numbers on a shared 2-core machine move by 10-20 % between
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
/// QEMU's `CHR_READ_BUF_LEN`: its socket chardev reads this much per main loop iteration.
const QEMU_CHR_READ_BUF_LEN: usize = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
}

struct Sample {
    commands: u64,
    elapsed: Duration,
    /// Server CPU clock ticks spent in the slices (with `--server-pid`).
    cpu_ticks: u64,
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
    Sample { commands, elapsed: start.elapsed(), cpu_ticks: 0 }
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

/// Rounds per point: vstick and the limit take turns in short slices, so a
/// change in the machine's load hits both alike.
const ROUNDS: u32 = 5;

type Results = Vec<(Op, usize, Sample)>;

/// Measures every (op, size) on both clients, interleaved.
fn measure(
    vstick: &mut RedirClient,
    raw: &mut RedirClient,
    budget: Duration,
    server_pid: Option<u32>,
) -> (Results, Results) {
    let slice = budget / ROUNDS;
    let (mut v_out, mut r_out) = (Vec::new(), Vec::new());
    for op in [Op::Read, Op::Write] {
        for size in SIZES {
            let mut v = Sample { commands: 0, elapsed: Duration::ZERO, cpu_ticks: 0 };
            let mut r = Sample { commands: 0, elapsed: Duration::ZERO, cpu_ticks: 0 };
            for round in 0..ROUNDS {
                let step = |client: &mut RedirClient, acc: &mut Sample, pid: Option<u32>| {
                    let before = pid.and_then(cpu_ticks);
                    let s = drive(client, op, size, slice);
                    let after = pid.and_then(cpu_ticks);
                    acc.commands += s.commands;
                    acc.elapsed += s.elapsed;
                    acc.cpu_ticks += after.zip(before).map_or(0, |(a, b)| a.saturating_sub(b));
                };
                if round % 2 == 0 {
                    step(vstick, &mut v, server_pid);
                    step(raw, &mut r, None);
                } else {
                    step(raw, &mut r, None);
                    step(vstick, &mut v, server_pid);
                }
            }
            v_out.push((op, size, v));
            r_out.push((op, size, r));
        }
    }
    (v_out, r_out)
}

/// utime + stime of process `pid` in clock ticks (/proc/PID/stat fields 14, 15).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" closing the command name start at field 3.
    let rest = stat.rsplit_once(") ")?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (USER_HZ), 100 on every Linux architecture vstick runs on.
const TICKS_PER_SECOND: f64 = 100.0;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut seconds = 2.0f64;
    let mut memory = false;
    let mut qemu_reads = false;
    let mut connect: Option<std::net::SocketAddr> = None;
    let mut server_pid: Option<u32> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(seconds),
            "--memory" => memory = true,
            "--qemu-reads" => qemu_reads = true,
            "--connect" => connect = args.next().and_then(|s| s.parse().ok()),
            "--server-pid" => server_pid = args.next().and_then(|s| s.parse().ok()),
            // cargo bench passes --bench; anything else is ignored too.
            _ => {}
        }
    }
    let budget = Duration::from_secs_f64(seconds);

    // vstick: the library stack `vstick serve --usbredir` runs, on its own
    // runtime, unless --connect names a running server.
    let dir = std::env::temp_dir().join(format!("vstick-bench-{}", std::process::id()));
    let in_process = if connect.is_none() { Some(InProcess::start(memory, &dir)) } else { None };
    let addr = connect.or(in_process.as_ref().map(|p| p.addr)).expect("a server address");

    // The limit: the same frames over a loopback socket, answered by a copy.
    let raw_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let raw_addr = raw_listener.local_addr().expect("addr");
    let raw_thread = std::thread::spawn(move || raw_server::serve_one(&raw_listener, MAX_TRANSFER));

    let mut vstick = RedirClient::connect(addr, MAX_TRANSFER).expect("connect to vstick");
    let mut raw = RedirClient::connect_raw(raw_addr, MAX_TRANSFER).expect("connect to raw");
    let chunk = qemu_reads.then_some(QEMU_CHR_READ_BUF_LEN);
    vstick.set_read_chunk(chunk);
    raw.set_read_chunk(chunk);
    let (vstick_results, raw_results) = measure(&mut vstick, &mut raw, budget, server_pid);

    drop(vstick);
    drop(raw);
    if let Some(server) = in_process {
        server.stop();
    }
    let _ = std::fs::remove_dir_all(&dir);
    // The raw server returns when its client closes.
    raw_thread.join().expect("raw server thread").expect("raw server");

    println!(
        "usbredir loopback, BOT commands one at a time (CBW, data, CSW), {} image, client receives {}, {:.1} s per point and server, in {ROUNDS} alternating slices",
        match (connect, memory) {
            (Some(_), _) => "external server's",
            (None, true) => "memory",
            (None, false) => "file (page cache)",
        },
        if qemu_reads { "like QEMU's chardev (poll + 4 KiB recv)" } else { "whole frames" },
        budget.as_secs_f64()
    );
    println!();
    let cpu_columns = server_pid.is_some();
    println!(
        "| command | size | vstick MB/s | vstick us/cmd | loopback limit MB/s | limit us/cmd | vstick / limit |{}",
        if cpu_columns { " vstick CPU us/cmd | vstick CPU s/GB |" } else { "" }
    );
    println!("|---|---:|---:|---:|---:|---:|---:|{}", if cpu_columns { "---:|---:|" } else { "" });
    for ((op, size, v), (_, _, r)) in vstick_results.iter().zip(raw_results.iter()) {
        let name = if *op == Op::Read { "READ(10)" } else { "WRITE(10)" };
        let cpu = if cpu_columns {
            let secs = v.cpu_ticks as f64 / TICKS_PER_SECOND;
            let gb = v.commands as f64 * *size as f64 / 1e9;
            format!(" {:.1} | {:.2} |", secs * 1e6 / v.commands as f64, secs / gb)
        } else {
            String::new()
        };
        println!(
            "| {name} | {} KiB | {:.0} | {:.1} | {:.0} | {:.1} | {:.2} |{cpu}",
            size >> 10,
            v.mb_per_s(*size),
            v.us_per_command(),
            r.mb_per_s(*size),
            r.us_per_command(),
            v.mb_per_s(*size) / r.mb_per_s(*size)
        );
    }
}

/// The vstick usbredir stack served from this process.
struct InProcess {
    addr: std::net::SocketAddr,
    runtime: tokio::runtime::Runtime,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl InProcess {
    fn start(memory: bool, dir: &std::path::Path) -> Self {
        std::fs::create_dir_all(dir).expect("temp dir");
        let device = Arc::new(Mutex::new(vstick_device(memory, dir)));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = runtime.spawn(vstick_usbredir::serve(listener, device, async {
            let _ = stop_rx.await;
        }));
        Self { addr, runtime, stop, server }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.runtime.block_on(self.server);
    }
}
