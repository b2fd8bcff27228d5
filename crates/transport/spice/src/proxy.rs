//! HTTP CONNECT (RFC 9110 §9.3.6) through a proxy such as Proxmox VE's
//! `spiceproxy` or tinyproxy: the request, and a total parser of the reply
//! head (capped at [`MAX_REPLY_HEAD`]).

/// Largest reply head accepted before the tunnel opens.
pub const MAX_REPLY_HEAD: usize = 8192;

/// The CONNECT request for `target` (`HOST:PORT`).
pub fn connect_request(target: &str) -> Vec<u8> {
    format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes()
}

/// What the reply head in `input` says so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectReply {
    /// The head is not complete yet.
    Incomplete,
    /// A 2xx status: the tunnel is open after `head_len` bytes.
    Open {
        /// Bytes of the head (anything after is the server's).
        head_len: usize,
    },
    /// The proxy refused: its status line.
    Refused(String),
}

/// Parses the proxy's reply head.
pub fn parse_reply(input: &[u8]) -> Result<ConnectReply, String> {
    let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") else {
        if input.len() > MAX_REPLY_HEAD {
            return Err(format!("the proxy's reply head is over {MAX_REPLY_HEAD} bytes"));
        }
        return Ok(ConnectReply::Incomplete);
    };
    let head = input.get(..end).unwrap_or_default();
    let status_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line).into_owned();
    let mut parts = status_line.split_whitespace();
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(format!("not an HTTP reply: {status_line:?}"));
    };
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(format!("not an HTTP reply: {status_line:?}"));
    }
    if code.starts_with('2') {
        Ok(ConnectReply::Open { head_len: end + 4 })
    } else {
        Ok(ConnectReply::Refused(status_line))
    }
}

/// A CONNECT reply as it arrives, read by read.
#[derive(Debug, Default)]
pub struct ReplyReader {
    head: Vec<u8>,
}

impl ReplyReader {
    /// Takes the proxy's next bytes: `Ok(true)` once the tunnel to `target`
    /// is open, `Ok(false)` while the head is incomplete, else why not (the
    /// proxy refused, did not answer as HTTP, or sent bytes after its head:
    /// a SPICE server speaks only after our link message).
    pub fn receive(&mut self, bytes: &[u8], target: &str) -> Result<bool, String> {
        self.head.extend_from_slice(bytes);
        match parse_reply(&self.head)? {
            ConnectReply::Incomplete => Ok(false),
            ConnectReply::Open { head_len } if head_len == self.head.len() => Ok(true),
            ConnectReply::Open { .. } => Err("sent data before the link".into()),
            ConnectReply::Refused(status) => Err(format!("refused the tunnel to {target}: {status}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(connect_request("h:1"), b"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n");
        let ok = b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\nREDQ";
        for cut in 0..ok.len() - 4 {
            assert_eq!(parse_reply(&ok[..cut]).unwrap(), ConnectReply::Incomplete, "cut {cut}");
        }
        assert_eq!(parse_reply(ok).unwrap(), ConnectReply::Open { head_len: ok.len() - 4 });
        assert_eq!(
            parse_reply(b"HTTP/1.1 403 Access violation\r\n\r\n").unwrap(),
            ConnectReply::Refused("HTTP/1.1 403 Access violation".into())
        );
        assert!(parse_reply(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_reply(&vec![b'a'; MAX_REPLY_HEAD + 1]).is_err());
    }

    #[test]
    fn the_reader_opens_on_the_whole_head_only() {
        let ok = b"HTTP/1.1 200 OK\r\n\r\n";
        for split in 0..ok.len() {
            let mut r = ReplyReader::default();
            assert_eq!(r.receive(&ok[..split], "h:1"), Ok(false));
            assert_eq!(r.receive(&ok[split..], "h:1"), Ok(true), "split at {split}");
        }
        let mut r = ReplyReader::default();
        assert!(r.receive(b"HTTP/1.1 200 OK\r\n\r\nREDQ", "h:1").is_err());
        let mut r = ReplyReader::default();
        assert_eq!(
            r.receive(b"HTTP/1.1 407 Auth\r\n\r\n", "h:1"),
            Err("refused the tunnel to h:1: HTTP/1.1 407 Auth".into())
        );
        let mut r = ReplyReader::default();
        let refused = (0..10).map(|_| r.receive(&[b'x'; 1024], "h:1")).find(Result::is_err);
        assert!(refused.is_some(), "a head over {MAX_REPLY_HEAD} bytes is refused");
    }

    proptest::proptest! {
        #[test]
        fn total(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = parse_reply(&bytes);
        }
    }
}
