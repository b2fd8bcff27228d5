//! tokio socket edges: accept usb-guests on TCP or a Unix socket ([`serve`],
//! or [`serve_tls`] for QEMU's `tls-creds`) or dial one ([`connect`],
//! [`connect_unix`], for QEMU's `server=on` chardev). Each connection is a
//! fresh [`Session`](crate::Session) over a freshly reset device; only bytes move here.

use std::fmt::Display;
use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[cfg(feature = "tls")]
pub use crate::tls::{TlsAcceptor, TlsSetupError, tls_acceptor};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs, UnixListener, UnixStream};
use tracing::{debug, info, warn};

use vstick_transport::{Connection, DriveError};

use crate::session::{Redir, SessionError};
use vstick_usb::UsbDevice;

/// Pause between attempts to reach a usb-guest that listens (QEMU itself
/// retries once a second with `reconnect=1`).
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// A usb-guest must complete the TLS handshake and send its hello within
/// this time (QEMU does both at once), so a connection that says nothing
/// cannot hold the one-guest-at-a-time device.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// What accepts TLS on a listener (nothing without the `tls` feature).
#[cfg(feature = "tls")]
type Acceptor = TlsAcceptor;
#[cfg(not(feature = "tls"))]
type Acceptor = std::convert::Infallible;

/// How a connection ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// Reading or writing the socket failed.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
    /// The usbredir session ended in error (usually: the usb-guest broke the protocol).
    #[error("{0}")]
    Protocol(#[from] SessionError),
    /// The TLS handshake with the usb-guest failed.
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
    /// The usb-guest sent no hello (or finished no TLS handshake) within [`HELLO_TIMEOUT`].
    #[error("no hello within {} s", HELLO_TIMEOUT.as_secs())]
    HelloTimeout,
}

/// A listening socket usb-guests connect to: TCP (`host=..,port=..` in QEMU's
/// chardev) or a Unix socket (`path=..`).
pub trait Listener {
    /// The connected stream type.
    type Stream: AsyncRead + AsyncWrite + Unpin;
    /// The next connection, set up for usbredir, and a name for its peer in logs.
    fn accept_guest(&self) -> impl Future<Output = io::Result<(Self::Stream, String)>>;
}

impl Listener for TcpListener {
    type Stream = TcpStream;
    async fn accept_guest(&self) -> io::Result<(TcpStream, String)> {
        let (stream, peer) = self.accept().await?;
        // Small replies (CSW, control) must not wait for Nagle.
        stream.set_nodelay(true)?;
        Ok((stream, peer.to_string()))
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    async fn accept_guest(&self) -> io::Result<(UnixStream, String)> {
        let (stream, _) = self.accept().await?;
        // Unix peers are unnamed; the socket's own path says which server this is.
        let name = match self.local_addr().ok().and_then(|a| a.as_pathname().map(Path::to_path_buf)) {
            Some(path) => format!("unix:{}", path.display()),
            None => "unix socket".into(),
        };
        Ok((stream, name))
    }
}

/// Serves the device to usb-guests connecting to `listener` (QEMU
/// `-chardev socket,host=..,port=..,reconnect=1`, or `path=..` for a
/// [`UnixListener`]), one at a time: while one
/// is attached, others are refused with a warning (QEMU retries every second).
/// After a disconnect the next guest gets a fresh session and a reset device.
/// Returns when `shutdown` completes.
pub async fn serve<L, D>(
    listener: L,
    device: Arc<Mutex<D>>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    L: Listener,
    D: UsbDevice + ?Sized,
{
    serve_with(listener, device, None, shutdown).await
}

#[cfg(feature = "tls")]
/// [`serve`] over TLS: each usb-guest must complete a TLS handshake with
/// `acceptor` (QEMU `-object tls-creds-x509,...,endpoint=client` and
/// `-chardev socket,...,tls-creds=ID`) before any usbredir byte moves.
pub async fn serve_tls<L, D>(
    listener: L,
    device: Arc<Mutex<D>>,
    acceptor: TlsAcceptor,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    L: Listener,
    D: UsbDevice + ?Sized,
{
    serve_with(listener, device, Some(acceptor), shutdown).await
}

async fn serve_with<L, D>(
    listener: L,
    device: Arc<Mutex<D>>,
    tls: Option<Acceptor>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    L: Listener,
    D: UsbDevice + ?Sized,
{
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept_guest() => match accepted {
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
        let conn = accept_connection(stream, tls.as_ref(), &device);
        let mut conn = std::pin::pin!(conn);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                result = &mut conn => {
                    log_end(&peer, result);
                    break;
                }
                accepted = listener.accept_guest() => match accepted {
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
    D: UsbDevice + ?Sized,
{
    let dial = || async {
        let stream = TcpStream::connect(addr.clone()).await?;
        // Small replies (CSW, control) must not wait for Nagle.
        stream.set_nodelay(true)?;
        Ok(stream)
    };
    connect_with(&addr.to_string(), dial, &device, shutdown).await
}

/// [`connect`] to a usb-guest listening on the Unix socket `path` (QEMU
/// `-chardev socket,path=..,server=on,wait=off`).
pub async fn connect_unix<D>(
    path: &Path,
    device: Arc<Mutex<D>>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    D: UsbDevice + ?Sized,
{
    let name = format!("unix:{}", path.display());
    connect_with(&name, || UnixStream::connect(path), &device, shutdown).await
}

async fn connect_with<S, F, D>(
    name: &str,
    dial: impl Fn() -> F,
    device: &Mutex<D>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Future<Output = io::Result<S>>,
    D: UsbDevice + ?Sized,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let mut warned = false;
    loop {
        let attempt = tokio::select! {
            () = &mut shutdown => return Ok(()),
            attempt = dial() => attempt,
        };
        match attempt {
            Ok(stream) => {
                warned = false;
                info!(peer = %name, "usbredir: connected to usb-guest");
                tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    result = run_connection(stream, device) => log_end(name, result),
                }
            }
            Err(e) if !warned => {
                warn!(peer = %name, "usbredir: cannot reach the usb-guest ({e}); retrying every second");
                warned = true;
            }
            Err(e) => debug!(peer = %name, "usbredir: still unreachable: {e}"),
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

/// One accepted connection: TLS handshake if configured, then the session.
async fn accept_connection<S, D>(
    stream: S,
    tls: Option<&Acceptor>,
    device: &Mutex<D>,
) -> Result<(), ConnectionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    D: UsbDevice + ?Sized,
{
    match tls {
        None => run_connection(stream, device).await,
        #[cfg(not(feature = "tls"))]
        Some(never) => match *never {},
        #[cfg(feature = "tls")]
        Some(acceptor) => {
            let tls_stream = tokio::time::timeout(HELLO_TIMEOUT, acceptor.accept(stream))
                .await
                .map_err(|_| ConnectionError::HelloTimeout)?
                .map_err(ConnectionError::Tls)?;
            debug!("usbredir: TLS handshake done");
            run_connection(tls_stream, device).await
        }
    }
}

/// Drives one connection until the peer closes it or breaks the protocol,
/// with the transport core's loop ([`vstick_transport::drive`]). The device
/// lock is held only while the session handles received bytes or answers
/// held requests (that is where the device does its file I/O), never across
/// socket I/O. A peer that has not sent its hello within [`HELLO_TIMEOUT`]
/// is dropped.
pub async fn run_connection<S, D>(mut stream: S, device: &Mutex<D>) -> Result<(), ConnectionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    D: UsbDevice + ?Sized,
{
    let mut conn = Connection::new(Redir::session(), device);
    match vstick_transport::drive(&mut stream, &mut conn, HELLO_TIMEOUT).await {
        Ok(()) => Ok(()),
        Err(DriveError::Io(e)) => Err(ConnectionError::Io(e)),
        Err(DriveError::Protocol(e)) => Err(ConnectionError::Protocol(e)),
        Err(_) => Err(ConnectionError::HelloTimeout),
    }
}

#[cfg(test)]
mod tests {
    //! TLS and timeout behaviour of the edge over real loopback sockets. The
    //! certificates below are test-only (EC P-256, valid until 2125): a CA
    //! and a server certificate for `localhost` / `127.0.0.1` signed by it.

    use super::*;
    use std::path::PathBuf;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::oneshot;
    use tokio_rustls::rustls;
    use vstick_test_support::shared_device as device;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBozCCAUmgAwIBAgIUXCdLGpmvUno4WwzU+LmrCZ+yFNgwCgYIKoZIzj0EAwIw\nHjEcMBoGA1UEAwwTdnN0aWNrIHVuaXQtdGVzdCBDQTAgFw0yNjExMjExMTMzMDFa\nGA8yMTI2MTAyODExMzMwMVowHjEcMBoGA1UEAwwTdnN0aWNrIHVuaXQtdGVzdCBD\nQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCB+kV1DgnXuhIOJ6J1sedP2i+LC\nsx9D//YglCKK7uGqS73MGerEa5uwlcuw/DI03qTM/UwZ4GsIHORCvhjqmMmjYzBh\nMB0GA1UdDgQWBBRPNXC9nrzZ/WOtI3WyHRzi/XIddjAfBgNVHSMEGDAWgBRPNXC9\nnrzZ/WOtI3WyHRzi/XIddjAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIC\nBDAKBggqhkjOPQQDAgNIADBFAiEA8trYVQGhGZ12wMjatTB1xgBEEwy2xf5vX9MR\nWDqjpigCICDa3C6/dsdCphg7yjE0G/OyupNaGjDlbQvQgLJmNaMg\n-----END CERTIFICATE-----\n";
    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIByjCCAW+gAwIBAgIUeH7R2/MEp3ciVeLJy3ZjeQKiyKQwCgYIKoZIzj0EAwIw\nHjEcMBoGA1UEAwwTdnN0aWNrIHVuaXQtdGVzdCBDQTAgFw0yNjExMjExMTMzMDFa\nGA8yMTI2MTAyODExMzMwMVowFDESMBAGA1UEAwwJbG9jYWxob3N0MFkwEwYHKoZI\nzj0CAQYIKoZIzj0DAQcDQgAE+oHLQzSU2pivMsQLfGeuwYwUiyj8/pttqr/C0Xlf\ncOx2kBV2ENF/4BRSrZgNtDn7t8qAZ+ItIQIpLjg2MBv+B6OBkjCBjzAaBgNVHREE\nEzARgglsb2NhbGhvc3SHBH8AAAEwEwYDVR0lBAwwCgYIKwYBBQUHAwEwDAYDVR0T\nAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwHQYDVR0OBBYEFKlcZM0Rck9cCSeLJpKU\n0tNfeRDSMB8GA1UdIwQYMBaAFE81cL2evNn9Y60jdbIdHOL9ch12MAoGCCqGSM49\nBAMCA0kAMEYCIQD1WWxLGjsuKiAe8dP9IvdbZ/AkpzqYn46UgKR1lFKWFQIhANt9\nP6iedRHpJFLkL9DgVx94lfx7BpmhugBO4kPTVIqB\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOKSk5H/vGBfsFyDe\n4d5HSniLkhlrS5LEeoDiluSpo5WhRANCAAT6gctDNJTamK8yxAt8Z67BjBSLKPz+\nm22qv8LReV9w7HaQFXYQ0X/gFFKtmA20Ofu3yoBn4i0hAikuODYwG/4H\n-----END PRIVATE KEY-----\n";

    /// Writes `text` to a scratch file named after the test and this process.
    fn scratch(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("vstick-net-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn setup_error(cert: &Path, key: &Path) -> String {
        match tls_acceptor(cert, key) {
            Ok(_) => panic!("{} / {} loaded", cert.display(), key.display()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn tls_setup_errors_name_the_file() {
        let missing = std::env::temp_dir().join("vstick-net-no-such-file.pem");
        let key = scratch("errors-key.pem", KEY);
        let err = setup_error(&missing, &key);
        assert!(err.contains("vstick-net-no-such-file.pem"), "{err}");
        let not_pem = scratch("errors-plain.txt", "hello\n");
        let err = setup_error(&not_pem, &key);
        assert!(err.contains("errors-plain.txt") && err.contains("no PEM certificate"), "{err}");
        let cert = scratch("errors-cert.pem", CERT);
        let err = setup_error(&cert, &cert);
        assert!(err.contains("errors-cert.pem") && err.contains("private key"), "{err}");
        assert!(tls_acceptor(&cert, &key).is_ok(), "a matching certificate and key load");
    }

    #[tokio::test]
    async fn a_tls_client_gets_the_hello_in_small_records() {
        let acceptor = tls_acceptor(&scratch("rt-cert.pem", CERT), &scratch("rt-key.pem", KEY)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve_tls(listener, device(), acceptor, async {
            let _ = stopped.await;
        }));

        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(CA.as_bytes()).unwrap()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await.expect("handshake with the test CA");
        // Our hello: type 0, length 68 (64-byte version + one capability word).
        let mut hello = [0u8; 80];
        tls.read_exact(&mut hello).await.unwrap();
        assert_eq!(&hello[..8], &[0, 0, 0, 0, 68, 0, 0, 0]);
        assert!(hello[12..].starts_with(b"vstick "));
        drop(tls);
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_plain_client_on_a_tls_port_gets_no_usbredir() {
        let acceptor =
            tls_acceptor(&scratch("plain-cert.pem", CERT), &scratch("plain-key.pem", KEY)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve_tls(listener, device(), acceptor, async {
            let _ = stopped.await;
        }));
        let mut s = TcpStream::connect(addr).await.unwrap();
        // A usbredir hello instead of a ClientHello: the handshake fails, the socket closes.
        let mut hello = vec![0u8, 0, 0, 0, 68, 0, 0, 0, 0, 0, 0, 0];
        hello.resize(80, 0);
        s.write_all(&hello).await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await.expect("closed");
        assert!(!buf.starts_with(&[0, 0, 0, 0, 68]), "a usbredir hello went out in plain text");
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }

    /// Reads our 80-byte hello (type 0, length 68) from a usb-guest's side.
    async fn expect_hello(stream: &mut (impl AsyncRead + Unpin)) {
        let mut hello = [0u8; 80];
        stream.read_exact(&mut hello).await.unwrap();
        assert_eq!(&hello[..8], &[0, 0, 0, 0, 68, 0, 0, 0]);
        assert!(hello[12..].starts_with(b"vstick "));
    }

    #[tokio::test]
    async fn usb_guests_reach_a_unix_socket_server_one_at_a_time() {
        let path = std::env::temp_dir().join(format!("vstick-net-{}-serve.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, device(), async {
            let _ = stopped.await;
        }));
        let mut first = UnixStream::connect(&path).await.unwrap();
        expect_hello(&mut first).await;
        // A second guest while the first is attached is closed without a hello.
        let mut second = UnixStream::connect(&path).await.unwrap();
        let mut buf = Vec::new();
        second.read_to_end(&mut buf).await.unwrap();
        assert!(buf.is_empty(), "the second guest got {} bytes", buf.len());
        // Once the first leaves, the next one is served.
        drop(first);
        // (The server may still be closing the first session: then it refuses, retry.)
        let mut attempts = 0;
        loop {
            let mut third = UnixStream::connect(&path).await.unwrap();
            let mut hello = [0u8; 80];
            if third.read_exact(&mut hello).await.is_ok() {
                assert_eq!(&hello[..8], &[0, 0, 0, 0, 68, 0, 0, 0]);
                break;
            }
            attempts += 1;
            assert!(attempts < 100, "the server never took a new guest");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop.send(());
        server.await.unwrap().unwrap();
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn connect_unix_dials_a_listening_usb_guest() {
        let path = std::env::temp_dir().join(format!("vstick-net-{}-dial.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let guest = UnixListener::bind(&path).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let dial_path = path.clone();
        let client = tokio::spawn(async move {
            connect_unix(&dial_path, device(), async {
                let _ = stopped.await;
            })
            .await
        });
        let (mut stream, _) = guest.accept().await.unwrap();
        expect_hello(&mut stream).await;
        let _ = stop.send(());
        client.await.unwrap().unwrap();
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_dropped_after_the_hello_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, device(), async {
            let _ = stopped.await;
        }));
        let mut s = TcpStream::connect(addr).await.unwrap();
        let started = tokio::time::Instant::now();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        // Our hello came, then nothing until the timeout closed the connection.
        assert_eq!(buf.len(), 80);
        assert!(started.elapsed() >= HELLO_TIMEOUT, "closed after {:?}", started.elapsed());
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
