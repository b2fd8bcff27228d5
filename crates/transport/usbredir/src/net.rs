//! tokio TCP edges: accept usb-guests ([`serve`]) or dial one ([`connect`],
//! for QEMU's `server=on` chardev). Each connection is a fresh [`Session`]
//! over a freshly reset device; only bytes move here.

use std::fmt::Display;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tracing::{debug, info, warn};

use crate::device::RedirDevice;
use crate::session::{Session, SessionError};

/// Socket read size; larger bulk OUT packets are stitched by the session.
const READ_CHUNK: usize = 256 * 1024;

/// Pause between attempts to reach a usb-guest that listens (QEMU itself
/// retries once a second with `reconnect=1`).
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// How a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Protocol(#[from] SessionError),
    #[error("the device lock is poisoned (a previous user panicked)")]
    Poisoned,
}

/// Serves the device to usb-guests connecting to `listener` (QEMU
/// `-chardev socket,host=..,port=..,reconnect=1`), one at a time: while one
/// is attached, others are refused with a warning (QEMU retries every second).
/// After a disconnect the next guest gets a fresh session and a reset device.
/// Returns when `shutdown` completes.
pub async fn serve<D>(
    listener: TcpListener,
    device: Arc<Mutex<D>>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    D: RedirDevice + ?Sized,
{
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends pass; do not spin on them.
                    warn!("usbredir: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        info!(%peer, "usbredir: usb-guest connected");
        let conn = run_connection(stream, &device);
        let mut conn = std::pin::pin!(conn);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                result = &mut conn => {
                    log_end(&peer.to_string(), result);
                    break;
                }
                accepted = listener.accept() => match accepted {
                    Ok((other, other_peer)) => {
                        warn!(peer = %other_peer, busy_with = %peer,
                            "usbredir: refusing a second usb-guest while the device is attached elsewhere");
                        drop(other);
                    }
                    Err(e) => warn!("usbredir: accept failed: {e}"),
                },
            }
        }
    }
}

/// Connects to a usb-guest listening at `addr` (QEMU
/// `-chardev socket,host=..,port=..,server=on,wait=off`), retrying every
/// second until it answers, and again after each disconnect. Returns when
/// `shutdown` completes.
pub async fn connect<A, D>(
    addr: A,
    device: Arc<Mutex<D>>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    A: ToSocketAddrs + Clone + Display,
    D: RedirDevice + ?Sized,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let mut warned = false;
    loop {
        let attempt = tokio::select! {
            () = &mut shutdown => return Ok(()),
            attempt = TcpStream::connect(addr.clone()) => attempt,
        };
        match attempt {
            Ok(stream) => {
                warned = false;
                info!(%addr, "usbredir: connected to usb-guest");
                let conn = run_connection(stream, &device);
                tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    result = conn => log_end(&addr.to_string(), result),
                }
            }
            Err(e) if !warned => {
                warn!(%addr, "usbredir: cannot reach the usb-guest ({e}); retrying every second");
                warned = true;
            }
            Err(e) => debug!(%addr, "usbredir: still unreachable: {e}"),
        }
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(RECONNECT_DELAY) => {}
        }
    }
}

fn log_end(peer: &str, result: Result<(), ConnectionError>) {
    match result {
        Ok(()) => info!(%peer, "usbredir: usb-guest disconnected"),
        Err(e) => warn!(%peer, "usbredir: connection closed: {e}"),
    }
}

/// Drives one connection until the peer closes it or breaks the protocol.
/// The device lock is held only while the session handles received bytes
/// (that is where the device does its file I/O), never across socket I/O.
pub async fn run_connection<D>(mut stream: TcpStream, device: &Mutex<D>) -> Result<(), ConnectionError>
where
    D: RedirDevice + ?Sized,
{
    // Small replies (CSW, control) must not wait for Nagle.
    stream.set_nodelay(true)?;
    let mut session = Session::new();
    {
        let mut dev = device.lock().map_err(|_| ConnectionError::Poisoned)?;
        // A new usb-guest sees the device as freshly plugged in.
        dev.reset();
    }
    let mut wbuf = session.take_output();
    stream.write_all(&wbuf).await?;
    let mut rbuf = vec![0u8; READ_CHUNK];
    loop {
        let n = stream.read(&mut rbuf).await?;
        if n == 0 {
            return Ok(());
        }
        {
            let mut dev = device.lock().map_err(|_| ConnectionError::Poisoned)?;
            session.receive(&mut *dev, rbuf.get(..n).unwrap_or_default())?;
        }
        wbuf.clear();
        session.swap_output(&mut wbuf);
        if !wbuf.is_empty() {
            stream.write_all(&wbuf).await?;
        }
    }
}
