//! In-guest I/O driver of `bench/guest-bench.sh`: O_DIRECT sequential reads
//! and writes and 4 KiB random reads on a block device, timed, one result
//! line on stdout:
//!
//! ```text
//! vstick-guest-io seq-read  DEV [--bs 1M] [--bytes 64M] [--seconds 10] [--offset 0]
//! vstick-guest-io seq-write DEV [--bs 1M] [--bytes 64M] [--seconds 10] [--offset 0]
//! vstick-guest-io rand-read DEV [--bs 4K] [--count 2000] [--seconds 10] [--span 64M] [--seed 1]
//! -> bytes=67108864 ops=64 secs=1.234567
//! ```
//!
//! Whichever of the byte/op budget and the time budget runs out first ends
//! the run; sequential runs wrap around at the end of the device (TCG guests are slow and their speed varies). O_DIRECT keeps the
//! guest's page cache out of the measurement, so every byte crosses the USB
//! device under test. The guest runs the host's build of this tool with the
//! libraries ldd names (bench/guest-bench.sh copies them in).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// O_DIRECT needs buffers (and offsets, lengths) aligned to the logical
/// block size; a page covers every block size a USB disk reports.
const ALIGN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    SeqRead,
    SeqWrite,
    RandRead,
}

#[derive(Debug)]
struct Args {
    op: Op,
    device: String,
    block: usize,
    bytes: u64,
    count: u64,
    seconds: f64,
    offset: u64,
    span: u64,
    seed: u64,
}

fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let n: u64 = digits.parse().map_err(|_| format!("bad size {text:?}"))?;
    let mul: u64 = match unit {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        _ => return Err(format!("bad size unit in {text:?}")),
    };
    n.checked_mul(mul).ok_or_else(|| format!("size {text:?} overflows"))
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let op = match argv.next().as_deref() {
        Some("seq-read") => Op::SeqRead,
        Some("seq-write") => Op::SeqWrite,
        Some("rand-read") => Op::RandRead,
        other => return Err(format!("unknown operation {other:?} (seq-read, seq-write, rand-read)")),
    };
    let device = argv.next().ok_or("missing device")?;
    let mut args = Args {
        op,
        device,
        block: if op == Op::RandRead { 4096 } else { 1 << 20 },
        bytes: 64 << 20,
        count: 2000,
        seconds: 10.0,
        offset: 0,
        span: 64 << 20,
        seed: 1,
    };
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bs" => {
                args.block = usize::try_from(parse_size(&value)?).map_err(|_| "block size too large")?
            }
            "--bytes" => args.bytes = parse_size(&value)?,
            "--count" => args.count = value.parse().map_err(|_| format!("bad count {value:?}"))?,
            "--seconds" => args.seconds = value.parse().map_err(|_| format!("bad seconds {value:?}"))?,
            "--offset" => args.offset = parse_size(&value)?,
            "--span" => args.span = parse_size(&value)?,
            "--seed" => args.seed = value.parse().map_err(|_| format!("bad seed {value:?}"))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if args.block == 0 || !args.block.is_multiple_of(ALIGN) {
        return Err(format!("--bs must be a non-zero multiple of {ALIGN}"));
    }
    Ok(args)
}

/// A zeroed, `ALIGN`-aligned window of `len` bytes inside an over-allocated Vec.
struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    fn new(len: usize) -> Self {
        let storage = vec![0u8; len + ALIGN];
        let start = storage.as_ptr().align_offset(ALIGN).min(ALIGN);
        Self { storage, start, len }
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
    fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }
}

/// xorshift64*: reproducible offsets without a dependency.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

struct Outcome {
    bytes: u64,
    ops: u64,
    elapsed: Duration,
}

fn run(args: &Args) -> io::Result<Outcome> {
    let file: File = OpenOptions::new()
        .read(true)
        .write(args.op == Op::SeqWrite)
        .custom_flags(libc::O_DIRECT)
        .open(&args.device)?;
    let device_len = file.metadata()?.len().max(block_device_len(&file)?);
    let block = args.block as u64;
    let mut buf = AlignedBuf::new(args.block);
    if args.op == Op::SeqWrite {
        // Non-zero content, so no layer can shortcut zero pages.
        let mut state = args.seed | 1;
        for chunk in buf.as_mut_slice().chunks_mut(8) {
            let word = next_random(&mut state).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
    let budget = Duration::from_secs_f64(args.seconds);
    let (mut bytes, mut ops) = (0u64, 0u64);
    let mut state = args.seed | 1;
    let span_blocks = (args.span.min(device_len) / block).max(1);
    let seq_window = (device_len.saturating_sub(args.offset) / block).max(1) * block;
    let start = Instant::now();
    loop {
        let done = match args.op {
            Op::SeqRead | Op::SeqWrite => bytes + block > args.bytes,
            Op::RandRead => ops >= args.count,
        };
        if done || start.elapsed() >= budget {
            break;
        }
        let offset = match args.op {
            // Wraps to --offset at the end of the device, so a time-bound run
            // on a small disk keeps going.
            Op::SeqRead | Op::SeqWrite => args.offset + bytes % seq_window,
            Op::RandRead => (next_random(&mut state) % span_blocks) * block,
        };
        if offset + block > device_len {
            return Err(io::Error::other(format!("device of {device_len} bytes too small")));
        }
        match args.op {
            Op::SeqWrite => file.write_all_at(buf.as_slice(), offset)?,
            Op::SeqRead | Op::RandRead => file.read_exact_at(buf.as_mut_slice(), offset)?,
        }
        bytes += block;
        ops += 1;
    }
    Ok(Outcome { bytes, ops, elapsed: start.elapsed() })
}

/// A block device's size: its metadata says 0, seeking to the end tells.
fn block_device_len(file: &File) -> io::Result<u64> {
    use std::io::Seek;
    let mut f = file;
    let len = f.seek(io::SeekFrom::End(0))?;
    f.seek(io::SeekFrom::Start(0))?;
    Ok(len)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vstick-guest-io: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(o) => {
            println!("bytes={} ops={} secs={:.6}", o.bytes, o.ops, o.elapsed.as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vstick-guest-io: {}: {e}", args.device);
            ExitCode::FAILURE
        }
    }
}
