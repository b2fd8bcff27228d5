//! TLS for SPICE TLS ports: rustls with the ring provider, the server's
//! certificate checked against a CA file and the host name (or IP address)
//! vstick dialled, or, with a `host-subject` (a `.vv` file's), against that
//! subject instead of the name, as remote-viewer does.

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
    roots: Arc<rustls::RootCertStore>,
    host_subject: bool,
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
        let roots = Arc::new(roots);
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        Ok(Self { connector: tokio_rustls::TlsConnector::from(Arc::new(config)), roots, host_subject: false })
    }

    /// Checks the certificate's subject against `subject` (`"OU=PVE Cluster
    /// Node,O=Proxmox Virtual Environment,CN=pve"`, RFC 4514-like, in the
    /// certificate's order) instead of its names: the chain must still lead
    /// to the CA.
    pub fn with_host_subject(self, subject: &str) -> Result<Self, String> {
        let expected = parse_subject(subject)?;
        let inner =
            rustls::client::WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider())
                .build()
                .map_err(|e| e.to_string())?;
        let verifier = Arc::new(SubjectVerifier { inner, expected });
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            roots: self.roots,
            host_subject: true,
        })
    }

    /// The TLS handshake over `tcp`, checking the certificate for `host`.
    pub async fn connect(&self, host: &str, tcp: TcpStream) -> io::Result<Stream> {
        let name = match rustls::pki_types::ServerName::try_from(host.to_string()) {
            Ok(name) => name,
            // A Proxmox proxy ticket is no host name; the subject is checked instead.
            Err(_) if self.host_subject => rustls::pki_types::ServerName::try_from("spice-server")
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?,
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{host} is no host name to check the certificate against ({e})"),
                ));
            }
        };
        Ok(Stream::Tls(Box::new(self.connector.connect(name, tcp).await?)))
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `KEY=VALUE,KEY=VALUE` (a `\,` is a comma inside a value) as pairs, keys
/// upper-cased.
pub fn parse_subject(subject: &str) -> Result<Vec<(String, String)>, String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = subject.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ',' => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    parts
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((short_key(k.trim()), v.trim().to_string())),
            _ => Err(format!("host-subject {subject:?}: {p:?} is not KEY=VALUE")),
        })
        .collect()
}

/// The short upper-case name of a subject attribute (`countryName` → `C`).
fn short_key(key: &str) -> String {
    let short = match key.to_ascii_lowercase().as_str() {
        "countryname" => "C",
        "stateorprovincename" => "ST",
        "localityname" => "L",
        "organizationname" => "O",
        "organizationalunitname" => "OU",
        "commonname" => "CN",
        "emailaddress" => "EMAILADDRESS",
        _ => return key.to_ascii_uppercase(),
    };
    short.to_string()
}

/// The subject of a DER certificate as (short name, value) pairs, in order.
fn certificate_subject(der: &[u8]) -> Option<Vec<(String, String)>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let registry = x509_parser::objects::oid_registry();
    let mut pairs = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        for attr in rdn.iter() {
            let key = x509_parser::objects::oid2sn(attr.attr_type(), registry)
                .map(str::to_string)
                .unwrap_or_else(|_| attr.attr_type().to_id_string());
            pairs.push((short_key(&key), attr.as_str().ok()?.to_string()));
        }
    }
    Some(pairs)
}

/// The chain checked by webpki; the name replaced by the subject.
#[derive(Debug)]
struct SubjectVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    expected: Vec<(String, String)>,
}

impl rustls::client::danger::ServerCertVerifier for SubjectVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError;
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(_)
            | Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => {}
            Err(e) => return Err(e),
        }
        match certificate_subject(end_entity.as_ref()) {
            Some(subject) if subject == self.expected => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            Some(subject) => {
                let shown: Vec<String> = subject.iter().map(|(k, v)| format!("{k}={v}")).collect();
                Err(rustls::Error::General(format!(
                    "the certificate's subject {} is not the host-subject",
                    shown.join(",")
                )))
            }
            None => Err(rustls::Error::InvalidCertificate(CertificateError::BadEncoding)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_subjects_parse_with_escaped_commas() {
        let p = parse_subject("OU=PVE Cluster Node, O=Proxmox Virtual Environment,cn=pve\\,1").unwrap();
        let want = [("OU", "PVE Cluster Node"), ("O", "Proxmox Virtual Environment"), ("CN", "pve,1")];
        assert_eq!(p, want.map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(parse_subject("commonName=x").unwrap(), [("CN".to_string(), "x".to_string())]);
        assert!(parse_subject("CN=a,junk").is_err());
        assert!(parse_subject("=x").is_err());
    }
}
