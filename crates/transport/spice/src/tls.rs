//! TLS for SPICE TLS ports: rustls with the ring provider, the server's
//! certificate checked against a CA file and the host name (or IP address)
//! vstick dialled, as remote-viewer does without `host-subject`.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// How to check a SPICE server's certificate.
#[derive(Clone)]
pub struct TlsSetup {
    connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsSetup(..)")
    }
}

/// Why the CA file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--spice-ca {path}: {problem}")]
pub struct TlsSetupError {
    path: PathBuf,
    problem: String,
}

impl TlsSetup {
    /// Trusts the CA certificates in the PEM file `ca` (QEMU's
    /// `x509-dir/ca-cert.pem`, a `.vv` file's `ca`).
    pub fn from_ca_file(ca: &Path) -> Result<Self, TlsSetupError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let bad = |problem: String| TlsSetupError { path: ca.to_path_buf(), problem };
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|c| c.collect::<Result<Vec<_>, _>>())
            .map_err(|e| bad(format!("cannot read PEM certificates: {e}")))?;
        Self::from_ca_certs(certs).map_err(bad)
    }

    /// Trusts the CA certificates in `pem` (the text of a PEM file).
    pub fn from_ca_pem(pem: &str) -> Result<Self, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cannot read PEM certificates: {e}"))?;
        Self::from_ca_certs(certs)
    }

    fn from_ca_certs(certs: Vec<rustls::pki_types::CertificateDer<'static>>) -> Result<Self, String> {
        if certs.is_empty() {
            return Err("no PEM certificate in it".into());
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs {
            roots.add(cert).map_err(|e| format!("not a usable CA certificate: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { connector: tokio_rustls::TlsConnector::from(Arc::new(config)) })
    }

    /// The TLS handshake over `tcp`, checking the certificate for `host`.
    pub async fn connect(&self, host: &str, tcp: TcpStream) -> io::Result<Stream> {
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
        Ok(Stream::Tls(Box::new(self.connector.connect(name, tcp).await?)))
    }
}

/// A SPICE channel's socket: plain TCP or TLS over it.
pub enum Stream {
    /// A plain port.
    Plain(TcpStream),
    /// A TLS port.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
