//! virt-viewer connection files (`.vv`), as Proxmox VE and oVirt hand out:
//! an INI file whose `[virt-viewer]` section names the server (`host`,
//! `port`, `tls-port`), the ticket (`password`), the TLS trust (`ca`, with
//! `\n` for newlines, and `host-subject`) and an HTTP CONNECT `proxy`.
//! Sans-io: [`ViewerFile::parse`] takes the text.

/// Largest `.vv` file read (they are a few KiB: the CA is the bulk).
pub const MAX_VV_LEN: usize = 256 * 1024;

/// What a `.vv` file says about a SPICE connection.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ViewerFile {
    /// `host`: a name, an address, or a proxy ticket (Proxmox's `pvespiceproxy:...`).
    pub host: String,
    /// `port`.
    pub port: Option<u16>,
    /// `tls-port`.
    pub tls_port: Option<u16>,
    /// `password`.
    pub password: Option<String>,
    /// `ca`: PEM text.
    pub ca: Option<String>,
    /// `host-subject`: the certificate subject to expect instead of the host name.
    pub host_subject: Option<String>,
    /// `proxy`: `http://HOST:PORT` of an HTTP CONNECT proxy.
    pub proxy: Option<String>,
}

impl std::fmt::Debug for ViewerFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerFile")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls_port", &self.tls_port)
            .field("password", &self.password.as_ref().map(|_| ".."))
            .field("host_subject", &self.host_subject)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

/// Why a `.vv` file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct VvError(String);

impl ViewerFile {
    /// Parses the text of a `.vv` file.
    pub fn parse(text: &str) -> Result<Self, VvError> {
        if text.len() > MAX_VV_LEN {
            return Err(VvError(format!("larger than {MAX_VV_LEN} bytes: not a virt-viewer file")));
        }
        let mut in_section = false;
        let mut seen_section = false;
        let mut kind = None;
        let mut vv = ViewerFile::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                in_section = name.trim() == "virt-viewer";
                seen_section |= in_section;
                continue;
            }
            if !in_section {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(VvError(format!("line {}: not KEY=VALUE", n + 1)));
            };
            let value = value.trim();
            let port = |v: &str| {
                v.parse::<u16>()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| VvError(format!("line {}: bad port {v:?}", n + 1)))
            };
            match key.trim() {
                "type" => kind = Some(value.to_string()),
                "host" => vv.host = value.to_string(),
                "port" if value != "-1" => vv.port = Some(port(value)?),
                "tls-port" if value != "-1" => vv.tls_port = Some(port(value)?),
                "password" => vv.password = Some(value.to_string()),
                "ca" => vv.ca = Some(value.replace("\\n", "\n")),
                "host-subject" => vv.host_subject = Some(value.to_string()),
                "proxy" => vv.proxy = Some(value.to_string()),
                _ => {}
            }
        }
        if !seen_section {
            return Err(VvError("no [virt-viewer] section: not a virt-viewer file".into()));
        }
        match kind.as_deref() {
            Some("spice") => {}
            Some(other) => {
                return Err(VvError(format!(
                    "type={other}: only SPICE (type=spice) connections carry usbredir"
                )));
            }
            None => return Err(VvError("no type=spice".into())),
        }
        if vv.host.is_empty() {
            return Err(VvError("no host".into()));
        }
        if vv.port.is_none() && vv.tls_port.is_none() {
            return Err(VvError("neither port nor tls-port".into()));
        }
        Ok(vv)
    }
}

/// `http://HOST:PORT` (or `HOST:PORT`) of a proxy, as `HOST:PORT`.
pub fn proxy_authority(proxy: &str) -> Result<String, VvError> {
    let rest = proxy.strip_prefix("http://").unwrap_or(proxy).trim_end_matches('/');
    if rest.contains("://") || rest.contains('@') {
        return Err(VvError(format!(
            "proxy {proxy:?}: only http://HOST:PORT proxies without credentials are supported"
        )));
    }
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => Ok(rest.to_string()),
        _ if !rest.is_empty() && !rest.contains(':') => Ok(format!("{rest}:3128")),
        _ => Err(VvError(format!("proxy {proxy:?}: expected http://HOST:PORT"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROXMOX: &str = "[virt-viewer]\nsecure-attention=Ctrl+Alt+Ins\ndelete-this-file=1\n\
        proxy=http://192.0.2.10:3128\ntype=spice\ntls-port=61000\n\
        host=pvespiceproxy:6571bdba:100:pve::d0b7f4\npassword=ticket-xyz\n\
        host-subject=OU=PVE Cluster Node,O=Proxmox Virtual Environment,CN=pve.example.com\n\
        ca=-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\ntitle=VM 100\n";

    #[test]
    fn a_proxmox_file() {
        let vv = ViewerFile::parse(PROXMOX).unwrap();
        assert_eq!(vv.host, "pvespiceproxy:6571bdba:100:pve::d0b7f4");
        assert_eq!((vv.port, vv.tls_port), (None, Some(61000)));
        assert_eq!(vv.password.as_deref(), Some("ticket-xyz"));
        assert_eq!(vv.ca.as_deref(), Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"));
        assert_eq!(
            vv.host_subject.as_deref(),
            Some("OU=PVE Cluster Node,O=Proxmox Virtual Environment,CN=pve.example.com")
        );
        assert_eq!(proxy_authority(vv.proxy.as_deref().unwrap()).unwrap(), "192.0.2.10:3128");
        assert!(!format!("{vv:?}").contains("ticket-xyz"), "Debug hides the password");
    }

    #[test]
    fn bad_files_say_why() {
        for (text, why) in [
            ("host=h\nport=1\n", "no [virt-viewer]"),
            ("[virt-viewer]\ntype=vnc\nhost=h\nport=1\n", "only SPICE"),
            ("[virt-viewer]\ntype=spice\nport=1\n", "no host"),
            ("[virt-viewer]\ntype=spice\nhost=h\n", "neither port"),
            ("[virt-viewer]\ntype=spice\nhost=h\nport=70000\n", "bad port"),
            ("[virt-viewer]\ntype=spice\nhost=h\njunk\n", "not KEY=VALUE"),
        ] {
            let e = ViewerFile::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
        assert!(proxy_authority("socks5://h:1").is_err());
        assert!(proxy_authority("http://user:pw@h:1").is_err());
        assert_eq!(proxy_authority("http://h").unwrap(), "h:3128");
    }
}
