//! The tokio edge: accepts TCP connections and moves bytes between each
//! socket and its [`Session`](crate::Session). Every connection runs in its own task; one
//! connection may hold the device (import), any may list it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, error, info, info_span, warn};
use vstick_transport::Connection;

use crate::export::ExportInfo;
use crate::session::{ImportGate, Usbip};
use vstick_usb::UsbDevice;

/// The IANA port for USB/IP.
pub const DEFAULT_PORT: u16 = 3240;

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
    let gate = SharedClaim { flag: claimed, held: false };
    let mut conn = Connection::new(Usbip::session(export, gate), device);
    let result = vstick_transport::drive(&mut stream, &mut conn, REQUEST_TIMEOUT)
        .instrument(info_span!("usbip", %peer))
        .await;
    match result {
        Ok(()) => debug!(%peer, "USB/IP connection closed"),
        Err(e) => warn!(%peer, "closing USB/IP connection: {e}"),
    }
    if conn.engine().protocol().gate().held {
        let pending = conn.engine().held_in_requests();
        info!(%peer, %busid, pending, "USB/IP client released the device");
    }
    let _ = stream.shutdown().await;
}
