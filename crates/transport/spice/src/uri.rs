//! Where a SPICE server is: remote-viewer's URI forms.
//!
//! - `spice://HOST:PORT` (plain port);
//! - `spice://HOST?port=P&tls-port=T` (either or both);
//! - `spice+tls://HOST:PORT` (a TLS port);
//! - `HOST:PORT` without a scheme; IPv6 hosts in brackets (`spice://[::1]:5900`).

/// A SPICE server's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    /// Host name or address (without brackets).
    pub host: String,
    /// The plain port, if any.
    pub port: Option<u16>,
    /// The TLS port, if any.
    pub tls_port: Option<u16>,
}

/// Why a SPICE address does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad SPICE address '{uri}': {why} (expected spice://HOST:PORT or spice://HOST?port=P&tls-port=T)")]
pub struct UriError {
    uri: String,
    why: String,
}

impl ServerAddr {
    /// Parses a remote-viewer style address.
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        let bad = |why: &str| UriError { uri: uri.to_string(), why: why.to_string() };
        let (tls_scheme, rest) = if let Some(r) = uri.strip_prefix("spice+tls://") {
            (true, r)
        } else if let Some(r) = uri.strip_prefix("spice://") {
            (false, r)
        } else if uri.contains("://") {
            return Err(bad("the scheme must be spice:// or spice+tls://"));
        } else {
            (false, uri)
        };
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let authority = authority.trim_end_matches('/');
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, tail) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            match tail {
                "" => (h, None),
                t => (h, Some(t.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?)),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let number =
            |p: &str| p.parse::<u16>().ok().filter(|&n| n != 0).ok_or_else(|| bad("bad port number"));
        let mut addr = Self { host: host.to_string(), port: None, tls_port: None };
        if let Some(p) = port {
            let p = number(p)?;
            if tls_scheme { addr.tls_port = Some(p) } else { addr.port = Some(p) }
        }
        for pair in query.unwrap_or_default().split('&').filter(|s| !s.is_empty()) {
            match pair.split_once('=') {
                Some(("port", p)) => addr.port = Some(number(p)?),
                Some(("tls-port", p)) => addr.tls_port = Some(number(p)?),
                // remote-viewer's other query keys (password=) are not taken
                // from a command line: a password there would be visible.
                Some(("password", _)) => {
                    return Err(bad("put the password in a file (--spice-password-file)"));
                }
                _ => return Err(bad(&format!("unknown parameter '{pair}'"))),
            }
        }
        if addr.port.is_none() && addr.tls_port.is_none() {
            return Err(bad("no port"));
        }
        Ok(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(host: &str, port: Option<u16>, tls_port: Option<u16>) -> ServerAddr {
        ServerAddr { host: host.into(), port, tls_port }
    }

    #[test]
    fn remote_viewer_forms() {
        assert_eq!(ServerAddr::parse("spice://127.0.0.1:5900").unwrap(), addr("127.0.0.1", Some(5900), None));
        assert_eq!(ServerAddr::parse("spice://h?port=1&tls-port=2").unwrap(), addr("h", Some(1), Some(2)));
        assert_eq!(ServerAddr::parse("spice://h/?tls-port=2").unwrap(), addr("h", None, Some(2)));
        assert_eq!(ServerAddr::parse("spice+tls://h:5901").unwrap(), addr("h", None, Some(5901)));
        assert_eq!(ServerAddr::parse("spice://[::1]:5900").unwrap(), addr("::1", Some(5900), None));
        assert_eq!(ServerAddr::parse("localhost:7").unwrap(), addr("localhost", Some(7), None));
    }

    #[test]
    fn bad_forms_say_why() {
        for (uri, why) in [
            ("spice://h", "no port"),
            ("spice://:5900", "no host"),
            ("spice://h:0", "bad port"),
            ("spice://h:99999", "bad port"),
            ("vnc://h:1", "scheme"),
            ("spice://h?port=1&password=x", "password-file"),
            ("spice://h?port=1&foo=2", "unknown parameter"),
            ("spice://[::1:5900", "unclosed"),
        ] {
            let e = ServerAddr::parse(uri).unwrap_err().to_string();
            assert!(e.contains(why), "{uri}: {e}");
        }
    }
}
