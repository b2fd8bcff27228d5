//! `vstick serve --spice` / `--spice-vv`: the SPICE client's configuration
//! from the command line or a virt-viewer file (passwords read from files,
//! never from the command line).

use std::path::PathBuf;

use anyhow::{Context, bail};

/// `--spice` and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiceTarget {
    /// `--spice URI`, or `None` with `--spice-vv`.
    pub server: Option<vstick_spice::ServerAddr>,
    pub vv: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
    pub channel: Option<u8>,
    pub ca: Option<PathBuf>,
    pub host_subject: Option<String>,
}

impl SpiceTarget {
    /// The client configuration, the password read from its file (one line;
    /// a trailing newline is not part of it).
    pub(crate) fn config(&self) -> anyhow::Result<vstick_spice::SpiceConfig> {
        if let Some(path) = &self.vv {
            return self.config_from_vv(path);
        }
        let server = self.server.clone().context("no SPICE server given")?;
        let password = match &self.password_file {
            Some(path) => {
                let mut bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read --spice-password-file {}", path.display()))?;
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                if bytes.len() > vstick_spice::link::MAX_PASSWORD {
                    bytes.fill(0);
                    bail!(
                        "--spice-password-file {}: a SPICE password has at most {} bytes",
                        path.display(),
                        vstick_spice::link::MAX_PASSWORD
                    );
                }
                vstick_spice::Password::new(bytes)
            }
            None => vstick_spice::Password::default(),
        };
        let tls = match (&self.ca, &self.host_subject) {
            (Some(ca), None) => Some(vstick_spice::TlsSetup::from_ca_file(ca)?),
            (Some(ca), Some(subject)) => Some(
                vstick_spice::TlsSetup::from_ca_file(ca)?
                    .with_host_subject(subject)
                    .map_err(|e| anyhow::anyhow!("--spice-host-subject: {e}"))?,
            ),
            (None, _) => None,
        };
        Ok(vstick_spice::SpiceConfig { server, password, channel: self.channel, tls, proxy: None })
    }

    /// The client configuration from a virt-viewer file.
    fn config_from_vv(&self, path: &std::path::Path) -> anyhow::Result<vstick_spice::SpiceConfig> {
        use std::io::Read;
        let what = || format!("--spice-vv {}", path.display());
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(vstick_spice::vv::MAX_VV_LEN as u64 + 1).read_to_string(&mut text))
            .with_context(what)?;
        let vv = vstick_spice::vv::ViewerFile::parse(&text).with_context(what)?;
        text.clear();
        let tls = match &vv.ca {
            Some(pem) => {
                let setup = vstick_spice::TlsSetup::from_ca_pem(pem)
                    .map_err(|e| anyhow::anyhow!("{}: ca: {e}", what()))?;
                match &vv.host_subject {
                    Some(subject) => Some(
                        setup.with_host_subject(subject).map_err(|e| anyhow::anyhow!("{}: {e}", what()))?,
                    ),
                    None => Some(setup),
                }
            }
            None => None,
        };
        let proxy = match &vv.proxy {
            Some(p) => Some(vstick_spice::vv::proxy_authority(p).with_context(what)?),
            None => None,
        };
        let password = vstick_spice::Password::new(vv.password.clone().unwrap_or_default().into_bytes());
        let server = vstick_spice::ServerAddr { host: vv.host.clone(), port: vv.port, tls_port: vv.tls_port };
        Ok(vstick_spice::SpiceConfig { server, password, channel: self.channel, tls, proxy })
    }
}
