//! TLS for the usbredir listener (QEMU's `tls-creds-x509`): rustls with the
//! ring provider. Behind the default `tls` feature.

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// Largest TLS record we send: 4096 bytes of data plus the 5-byte header.
/// QEMU 7.2's chardev reads at most 4096 bytes per wake-up and is woken by
/// the socket only, so the rest of a larger record would sit decrypted in
/// GnuTLS until more bytes arrived: a 4 KiB READ hung until the guest's SCSI
/// timeout (seen with tests/guest/tls.sh before this limit).
const TLS_MAX_RECORD: usize = 4096 + 5;

/// Why the TLS server identity could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A PEM file could not be read or held no usable certificate or key.
    #[error("{path}: {problem}")]
    File {
        /// The certificate or key file.
        path: PathBuf,
        /// What was wrong with it.
        problem: String,
    },
    /// rustls refused the certificate chain with this key.
    #[error("certificate and key do not go together: {0}")]
    Config(#[from] rustls::Error),
}

/// A TLS acceptor (rustls, ring provider; TLS 1.2 and 1.3) presenting the
/// certificate chain in `cert` (PEM, server certificate first) with the
/// private key in `key` (PEM: PKCS#8, PKCS#1 or SEC1). No client
/// certificates are asked for. QEMU's `tls-creds-x509,endpoint=client`
/// checks the chain against its `ca-cert.pem` and the name against the
/// chardev's `host`, so the certificate needs that host as a SAN.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsSetupError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let problem = |path: &Path, problem: String| TlsSetupError::File { path: path.to_path_buf(), problem };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| problem(cert, format!("cannot read PEM certificates: {e}")))?;
    if chain.is_empty() {
        return Err(problem(cert, "no PEM certificate in the file".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| problem(key, format!("cannot read a PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    config.max_fragment_size = Some(TLS_MAX_RECORD);
    Ok(TlsAcceptor::from(Arc::new(config)))
}
