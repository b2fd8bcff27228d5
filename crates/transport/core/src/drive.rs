//! [`drive`]: the one tokio loop that moves bytes between a stream and a
//! [`Connection`], for every edge.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::connection::{Connection, DeviceAccess};
use crate::engine::Protocol;

/// Socket read size; a larger frame is read in place into the session's buffer.
pub const READ_CHUNK: usize = 256 * 1024;

/// How a driven connection ended badly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriveError<E: std::error::Error + 'static> {
    /// Reading or writing the stream failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol.
    #[error("{0}")]
    Protocol(#[source] E),
    /// The peer did not complete its opening in time.
    #[error("no complete opening (hello or request) within {} s", .0.as_secs())]
    HandshakeTimeout(Duration),
}

/// Runs `conn` over `stream` until the peer closes it (`Ok`), the protocol
/// ends it (`Ok`, after the last output is written), or an error. A peer that
/// has not completed its opening within `handshake_timeout` is dropped.
///
/// Device work runs in `block_in_place` on a multi-threaded runtime, so other
/// tasks keep running; on a current-thread runtime it runs inline.
pub async fn drive<P, A, S>(
    stream: &mut S,
    conn: &mut Connection<P, A>,
    handshake_timeout: Duration,
) -> Result<(), DriveError<P::Error>>
where
    P: Protocol,
    P::Error: 'static,
    A: DeviceAccess,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = tokio::time::Instant::now() + handshake_timeout;
    let mut rbuf = vec![0u8; READ_CHUNK];
    send_batches(stream, conn).await?;
    loop {
        // The rest of a large frame (a write's data) is read straight into
        // the session's buffer: one copy less per write.
        let handshake_done = conn.handshake_done();
        let in_place = handshake_done && !conn.receive_space().is_empty();
        let read = async {
            if in_place { stream.read(conn.receive_space()).await } else { stream.read(&mut rbuf).await }
        };
        let n = if handshake_done {
            read.await?
        } else {
            tokio::time::timeout_at(deadline, read)
                .await
                .map_err(|_| DriveError::HandshakeTimeout(handshake_timeout))??
        };
        if n == 0 {
            return Ok(());
        }
        let result = run_blocking(|| {
            if in_place { conn.receive_in_place(n) } else { conn.receive(rbuf.get(..n).unwrap_or_default()) }
        });
        // Replies queued before an error still go out (USB/IP's last reply).
        // A large write's completion goes out before the medium is written
        // (inside poll_transmit), while the peer takes it in.
        send_batches(stream, conn).await?;
        result.map_err(DriveError::Protocol)?;
        if conn.is_closing() {
            return Ok(());
        }
    }
}

/// Writes output batch by batch (each bounded by `MAX_PENDING_OUTPUT` plus
/// one reply), letting the session answer held requests in between.
async fn send_batches<P, A, S>(
    stream: &mut S,
    conn: &mut Connection<P, A>,
) -> Result<(), DriveError<P::Error>>
where
    P: Protocol,
    P::Error: 'static,
    A: DeviceAccess,
    S: AsyncWrite + Unpin,
{
    loop {
        let batch = run_blocking(|| conn.poll_transmit()).map_err(DriveError::Protocol)?;
        let Some(batch) = batch else { return Ok(()) };
        stream.write_all(batch).await?;
        // A TLS stream holds written records until flushed.
        stream.flush().await?;
    }
}

/// Runs synchronous device work without stalling the runtime's other tasks
/// where the runtime allows it.
fn run_blocking<R>(f: impl FnOnce() -> R) -> R {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
