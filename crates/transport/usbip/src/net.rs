//! The tokio edge: accepts TCP connections and moves bytes between each
//! socket and its [`Session`]. Every connection runs in its own task; one
//! connection may hold the device (import), any may list it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::export::ExportInfo;
use crate::session::{ImportGate, Phase, Session};
use vstick_usb::UsbDevice;

/// The IANA port for USB/IP.
pub const DEFAULT_PORT: u16 = 3240;

/// Socket read size; larger OUT URBs are assembled by the session.
const READ_CHUNK: usize = 64 * 1024;

/// A client must complete its request (OP_REQ_DEVLIST or OP_REQ_IMPORT)
/// within this time; `usbip list/attach` send theirs at once. An imported
/// device may then stay idle as long as the client likes.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once; more are closed on arrival. With
/// [`REQUEST_TIMEOUT`] a flood of silent connections holds the slots for
/// seconds, not forever, and its memory stays bounded (SECURITY.md).
pub const MAX_CONNECTIONS: usize = 64;

/// Serve `device` as `busid` on `listener` until `shutdown` completes, then
/// stop accepting and drop every connection (clients see the device vanish).
///
/// Errors only for an unusable `busid` (empty, 32 bytes or more, or holding a
/// NUL); a failing connection is logged and closed, the server goes on.
/// The device is locked for the duration of each batch of received bytes;
/// device I/O runs in `block_in_place` on a multi-threaded runtime so other
/// connections keep being served.
pub async fn serve<D, S>(
    listener: TcpListener,
    device: Arc<Mutex<D>>,
    busid: String,
    shutdown: S,
) -> io::Result<()>
where
    D: UsbDevice + Send + 'static,
    S: Future<Output = ()>,
{
    let export = ExportInfo::new(&busid).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let claimed = Arc::new(AtomicBool::new(false));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    info!(addr = ?listener.local_addr().ok(), %busid, "USB/IP server listening");
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) if connections.len() >= MAX_CONNECTIONS => {
                    warn!(%peer, "USB/IP: {MAX_CONNECTIONS} connections open already; closing this one");
                    drop(stream);
                }
                Ok((stream, peer)) => {
                    connections.spawn(connection(stream, peer, Arc::clone(&device), export.clone(), Arc::clone(&claimed)));
                }
                Err(e) => {
                    // EMFILE and friends are transient: wait instead of spinning.
                    warn!("USB/IP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = joined.as_ref() && e.is_panic() {
                    error!("USB/IP connection task panicked: {e}");
                }
            }
        }
    }
    connections.shutdown().await;
    info!("USB/IP server stopped");
    Ok(())
}

/// The connection's share of the exclusive-import flag, released when the
/// connection ends however it ends (drop runs on task abort and panic too).
struct SharedClaim {
    flag: Arc<AtomicBool>,
    held: bool,
}

impl ImportGate for SharedClaim {
    fn try_claim(&mut self) -> bool {
        if !self.held {
            self.held = self.flag.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok();
        }
        self.held
    }
}

impl Drop for SharedClaim {
    fn drop(&mut self) {
        if self.held {
            self.flag.store(false, Ordering::Release);
        }
    }
}

fn lock<D>(device: &Mutex<D>) -> MutexGuard<'_, D> {
    // A panic in another connection's task poisoned the lock; the device
    // state is still the best we have, and the next import resets it.
    device.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Run synchronous device work without stalling the runtime's other tasks
/// where the runtime allows it.
fn run_blocking<R>(f: impl FnOnce() -> R) -> R {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

async fn connection<D: UsbDevice + Send + 'static>(
    mut stream: TcpStream,
    peer: SocketAddr,
    device: Arc<Mutex<D>>,
    export: ExportInfo,
    claimed: Arc<AtomicBool>,
) {
    // Every URB is a small request/response; Nagle would delay them.
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, "TCP_NODELAY: {e}");
    }
    debug!(%peer, "USB/IP connection");
    let busid = export.busid.to_string_lossy();
    let mut gate = SharedClaim { flag: claimed, held: false };
    let mut session = Session::new(export);
    let mut buf = vec![0u8; READ_CHUNK];
    let request_deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
    let reason = loop {
        let read = stream.read(&mut buf);
        let read = if session.phase() == Phase::Management {
            match tokio::time::timeout_at(request_deadline, read).await {
                Ok(read) => read,
                Err(_) => break Some(format!("no complete request within {} s", REQUEST_TIMEOUT.as_secs())),
            }
        } else {
            read.await
        };
        let n = match read {
            Ok(0) => break None,
            Ok(n) => n,
            Err(e) => break Some(format!("read failed: {e}")),
        };
        let bytes = buf.get(..n).unwrap_or_default();
        let was = session.phase();
        let result = run_blocking(|| session.receive(bytes, &mut *lock(&device), &mut gate));
        if was == Phase::Management && session.phase() == Phase::Imported {
            info!(%peer, %busid, "USB/IP client imported the device");
        }
        // Output comes in bounded batches (session::MAX_PENDING_OUTPUT): send
        // one, then let the session continue.
        let mut result = result;
        let mut write_error = None;
        while !session.output().is_empty() {
            if let Err(e) = stream.write_all(session.output()).await {
                write_error = Some(format!("write failed: {e}"));
                break;
            }
            let sent = session.output().len();
            session.consume_output(sent);
            if result.is_err() || !session.wants_service() {
                break;
            }
            result = run_blocking(|| session.service(&mut *lock(&device), &mut gate));
        }
        if let Some(e) = write_error {
            break Some(e);
        }
        if let Err(e) = result {
            break Some(e.to_string());
        }
        if session.is_closing() {
            break None;
        }
    };
    match reason {
        Some(reason) => warn!(%peer, "closing USB/IP connection: {reason}"),
        None => debug!(%peer, "USB/IP connection closed"),
    }
    if gate.held {
        info!(%peer, %busid, pending = session.parked_urbs(), "USB/IP client released the device");
    }
    let _ = stream.shutdown().await;
}
