//! What one hand-over between two threads costs on this machine: a ping-pong
//! of small messages over a TCP loopback connection and over a Unix socket
//! pair, and the raw receive cost of a QEMU-style reader (poll, then at most
//! 4 KiB per `recv`) of 1 MiB writes. Every usbredir command crosses at least
//! six such hand-overs (CBW, data, CSW; each way), which is what bounds
//! 4 KiB random reads through a socket (BENCHMARKS.md).
//!
//! ```text
//! vstick-wakeup [ROUNDS]                  # threads wherever the scheduler puts them
//! taskset -c 0 vstick-wakeup [ROUNDS]     # both threads on one CPU
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Round trips of `size`-byte messages between this thread and an echo thread.
fn ping_pong<S: Read + Write + Send + 'static>(mut near: S, mut far: S, size: usize, rounds: u32) -> f64 {
    let echo = std::thread::spawn(move || {
        let mut buf = vec![0u8; size];
        for _ in 0..rounds {
            if far.read_exact(&mut buf).is_err() || far.write_all(&buf).is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; size];
    let start = Instant::now();
    for _ in 0..rounds {
        near.write_all(&buf).expect("send");
        near.read_exact(&mut buf).expect("receive");
    }
    let per_round = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    let _ = echo.join();
    per_round
}

/// µs per MiB for a reader that polls and then takes at most 4 KiB per call
/// (QEMU 7.2's chardev) while a writer sends 1 MiB writes.
fn chunked_reader<S: Read + Write + AsFd + Send + 'static>(mut reader: S, mut writer: S, mib: usize) -> f64 {
    let feed = std::thread::spawn(move || {
        let block = vec![0u8; 1 << 20];
        for _ in 0..mib {
            if writer.write_all(&block).is_err() {
                return;
            }
        }
    });
    let mut buf = [0u8; 4096];
    let mut left = mib << 20;
    let start = Instant::now();
    while left > 0 {
        let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::NONE).expect("poll");
        let n = reader.read(&mut buf).expect("read");
        assert!(n > 0, "writer went away");
        left = left.saturating_sub(n);
    }
    let per_mib = start.elapsed().as_secs_f64() * 1e6 / mib as f64;
    let _ = feed.join();
    per_mib
}

fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let near = TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
    let (far, _) = listener.accept().expect("accept");
    for s in [&near, &far] {
        s.set_nodelay(true).expect("TCP_NODELAY");
    }
    (near, far)
}

fn main() {
    let rounds: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    println!("| socket | 64 B round trip | 4 KiB round trip | 1 MiB received in 4 KiB reads |");
    println!("|---|---:|---:|---:|");
    let (a, b) = tcp_pair();
    let tcp_small = ping_pong(a, b, 64, rounds);
    let (a, b) = tcp_pair();
    let tcp_page = ping_pong(a, b, 4096, rounds);
    let (a, b) = tcp_pair();
    let tcp_stream = chunked_reader(a, b, 256);
    println!("| TCP loopback | {tcp_small:.1} us | {tcp_page:.1} us | {tcp_stream:.0} us |");
    let (a, b) = UnixStream::pair().expect("socketpair");
    let unix_small = ping_pong(a, b, 64, rounds);
    let (a, b) = UnixStream::pair().expect("socketpair");
    let unix_page = ping_pong(a, b, 4096, rounds);
    let (a, b) = UnixStream::pair().expect("socketpair");
    let unix_stream = chunked_reader(a, b, 256);
    println!("| Unix stream | {unix_small:.1} us | {unix_page:.1} us | {unix_stream:.0} us |");
}
