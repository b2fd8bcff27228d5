//! The SPICE link: how a client opens a channel (`spice/protocol.h`,
//! spice-server `reds.cpp`). A sans-io state machine: [`Link::new`] queues
//! the link message, [`Link::receive`] takes the server's bytes and queues
//! the auth mechanism and the encrypted ticket, until the server's result.
//!
//! ```text
//! client: "REDQ" 2 2 size, SpiceLinkMess {connection_id, type, id, caps}
//! server: "REDQ" 2 2 size, SpiceLinkReply {error, RSA-1024 key, caps}
//! client: u32 auth mechanism (1 = SPICE ticket), 128-byte RSA-OAEP(password\0)
//! server: u32 result (0 = linked)
//! ```

use rsa::pkcs8::DecodePublicKey;

use crate::codec::{HeaderKind, u32_at};

/// "REDQ" as the little-endian u32 of the link header.
const MAGIC: &[u8; 4] = b"REDQ";
/// Protocol version 2.2.
const MAJOR: u32 = 2;
const MINOR: u32 = 2;
/// Link header: magic, major, minor, size.
const HEADER_LEN: usize = 16;
/// spice-server refuses link messages over 4 KiB; a reply over that is broken.
const MAX_REPLY: u32 = 4096;
/// Fixed part of `SpiceLinkReply`: error, 162-byte key, three u32.
const REPLY_FIXED: usize = 4 + PUB_KEY_LEN + 12;
const PUB_KEY_LEN: usize = 162;
/// `SPICE_MAX_PASSWORD_LENGTH`.
pub const MAX_PASSWORD: usize = 60;
/// Capability words kept of each kind.
const MAX_CAP_WORDS: usize = 4;

/// Common capability bits (`SPICE_COMMON_CAP_*`).
pub mod common_cap {
    /// The client says which auth mechanism it uses.
    pub const AUTH_SELECTION: u32 = 0;
    /// The SPICE ticket (RSA-encrypted password).
    pub const AUTH_SPICE: u32 = 1;
    /// SASL.
    pub const AUTH_SASL: u32 = 2;
    /// The 6-byte data header.
    pub const MINI_HEADER: u32 = 3;
}

/// usbredir (spicevmc) channel capability: LZ4-compressed data.
pub const SPICEVMC_CAP_LZ4: u32 = 0;

/// The common capabilities we send: auth selection, SPICE ticket, mini header.
pub const OUR_COMMON_CAPS: u32 =
    1 << common_cap::AUTH_SELECTION | 1 << common_cap::AUTH_SPICE | 1 << common_cap::MINI_HEADER;

/// A link error code from the server (`SpiceLinkErr`), named in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkErrorCode(pub u32);

impl LinkErrorCode {
    /// Generic error.
    pub const ERROR: Self = Self(1);
    /// The server wants this channel on its TLS port.
    pub const NEED_SECURED: Self = Self(5);
    /// The server wants this channel on its plain port.
    pub const NEED_UNSECURED: Self = Self(6);
    /// The ticket was refused: a wrong or expired password.
    pub const PERMISSION_DENIED: Self = Self(7);
    /// The session id is unknown (the main channel went away).
    pub const BAD_CONNECTION_ID: Self = Self(8);
    /// The VM has no such channel, or it is held.
    pub const CHANNEL_NOT_AVAILABLE: Self = Self(9);
}

impl std::fmt::Display for LinkErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            1 => "error",
            2 => "invalid magic",
            3 => "invalid data",
            4 => "version mismatch",
            5 => "need secured (TLS) connection",
            6 => "need unsecured connection",
            7 => "permission denied",
            8 => "bad connection id",
            9 => "channel not available",
            _ => return write!(f, "link error {}", self.0),
        };
        write!(f, "{name} ({})", self.0)
    }
}

/// Why a link failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The peer's first bytes are not a SPICE link reply (a TLS port answers
    /// a plain link with a TLS alert, or closes).
    #[error("the server did not answer as a SPICE server (first bytes {0}): is this its TLS port?")]
    NotSpice(String),
    /// The server speaks another major version.
    #[error("the SPICE server speaks protocol {0}.{1}, not 2.x")]
    Version(u32, u32),
    /// A reply that is too long or shorter than its fixed part.
    #[error("malformed SPICE link reply ({0})")]
    Malformed(&'static str),
    /// The server refused the link (in its reply or as the final result).
    #[error("the SPICE server refused the link: {0}")]
    Refused(LinkErrorCode),
    /// The server offers only SASL, which vstick does not speak.
    #[error("the SPICE server accepts only SASL authentication, which vstick does not support")]
    SaslOnly,
    /// The server's public key does not parse, or encryption failed.
    #[error("cannot encrypt the SPICE ticket: {0}")]
    Crypto(String),
    /// The password is longer than SPICE allows.
    #[error("the SPICE password is longer than {MAX_PASSWORD} bytes")]
    PasswordTooLong,
}

/// What to link.
#[derive(Debug, Clone)]
pub struct LinkRequest {
    /// 0 for the main channel, else the session id from MAIN_INIT.
    pub connection_id: u32,
    /// `codec::channel::*`.
    pub channel_type: u8,
    /// The channel's id among those of its type.
    pub channel_id: u8,
    /// Channel capability bits to advertise (one word).
    pub channel_caps: u32,
}

/// A linked channel: the header both sides use and the server's caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    /// Mini headers when both sides have MINI_HEADER.
    pub header: HeaderKind,
    /// The server's common capability words (at most 4 kept).
    pub common_caps: Vec<u32>,
    /// The server's channel capability words (at most 4 kept).
    pub channel_caps: Vec<u32>,
}

impl Linked {
    /// Whether the server has channel capability `bit`.
    pub fn has_channel_cap(&self, bit: u32) -> bool {
        has_cap(&self.channel_caps, bit)
    }
}

fn has_cap(words: &[u32], bit: u32) -> bool {
    words.get((bit / 32) as usize).is_some_and(|w| w & (1 << (bit % 32)) != 0)
}

enum State {
    ReplyHeader,
    Reply(usize),
    Result(Linked),
    Done(Linked),
    Failed,
}

/// The client side of one link.
pub struct Link {
    state: State,
    buf: Vec<u8>,
    out: Vec<u8>,
    password: Vec<u8>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.password.fill(0);
    }
}

impl Link {
    /// Starts a link for `request` with `password` ("" when the server has
    /// ticketing off: it decrypts the ticket anyway). The link message is queued.
    pub fn new(request: &LinkRequest, password: &[u8]) -> Result<Self, LinkError> {
        if password.len() > MAX_PASSWORD {
            return Err(LinkError::PasswordTooLong);
        }
        let mut out = Vec::with_capacity(64);
        let body_len = 18 + 8;
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&MAJOR.to_le_bytes());
        out.extend_from_slice(&MINOR.to_le_bytes());
        out.extend_from_slice(&(body_len as u32).to_le_bytes());
        out.extend_from_slice(&request.connection_id.to_le_bytes());
        out.push(request.channel_type);
        out.push(request.channel_id);
        out.extend_from_slice(&1u32.to_le_bytes()); // num_common_caps
        out.extend_from_slice(&1u32.to_le_bytes()); // num_channel_caps
        out.extend_from_slice(&18u32.to_le_bytes()); // caps_offset
        out.extend_from_slice(&OUR_COMMON_CAPS.to_le_bytes());
        out.extend_from_slice(&request.channel_caps.to_le_bytes());
        Ok(Self { state: State::ReplyHeader, buf: Vec::new(), out, password: password.to_vec() })
    }

    /// Bytes to send now (empty when nothing waits).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The linked channel, once the server accepted it.
    pub fn linked(&self) -> Option<&Linked> {
        match &self.state {
            State::Done(l) => Some(l),
            _ => None,
        }
    }

    /// Takes the server's bytes; returns how many were part of the link (the
    /// rest, after the result, are the channel's first messages).
    pub fn receive(&mut self, input: &[u8]) -> Result<usize, LinkError> {
        let mut used = 0;
        loop {
            let need = match &self.state {
                State::ReplyHeader => HEADER_LEN,
                State::Reply(size) => *size,
                State::Result(_) => 4,
                State::Done(_) | State::Failed => return Ok(used),
            };
            let take = need.saturating_sub(self.buf.len()).min(input.len() - used);
            self.buf.extend_from_slice(input.get(used..used + take).unwrap_or_default());
            used += take;
            if self.buf.len() < need {
                // A plain link to a TLS port gets a TLS alert: say so early.
                if matches!(self.state, State::ReplyHeader)
                    && !MAGIC.starts_with(self.buf.get(..4).unwrap_or(&self.buf))
                {
                    return self.fail(LinkError::NotSpice(hex(&self.buf)));
                }
                return Ok(used);
            }
            let frame = std::mem::take(&mut self.buf);
            let next = match std::mem::replace(&mut self.state, State::Failed) {
                State::ReplyHeader => self.on_header(&frame),
                State::Reply(_) => self.on_reply(&frame),
                State::Result(linked) => match u32_at(&frame, 0) {
                    0 => Ok(State::Done(linked)),
                    e => Err(LinkError::Refused(LinkErrorCode(e))),
                },
                s => Ok(s),
            };
            match next {
                Ok(s) => self.state = s,
                Err(e) => return self.fail(e),
            }
        }
    }

    /// Whether no byte of the reply has arrived yet.
    pub fn nothing_received(&self) -> bool {
        matches!(self.state, State::ReplyHeader) && self.buf.is_empty()
    }

    /// The error for a server that closed the connection before the link
    /// was complete.
    pub fn closed(&self) -> LinkError {
        match &self.state {
            State::ReplyHeader if self.buf.is_empty() => LinkError::NotSpice(hex(&[])),
            State::Result(_) => LinkError::Refused(LinkErrorCode::ERROR),
            _ => LinkError::Malformed("the connection closed inside the reply"),
        }
    }

    fn fail(&mut self, e: LinkError) -> Result<usize, LinkError> {
        self.state = State::Failed;
        Err(e)
    }

    fn on_header(&mut self, h: &[u8]) -> Result<State, LinkError> {
        if h.get(..4) != Some(&MAGIC[..]) {
            return Err(LinkError::NotSpice(hex(h)));
        }
        let (major, minor, size) = (u32_at(h, 4), u32_at(h, 8), u32_at(h, 12));
        if major != MAJOR {
            return Err(LinkError::Version(major, minor));
        }
        if size > MAX_REPLY {
            return Err(LinkError::Malformed("over 4096 bytes"));
        }
        if (size as usize) < 4 {
            return Err(LinkError::Malformed("no error field"));
        }
        Ok(State::Reply(size as usize))
    }

    fn on_reply(&mut self, r: &[u8]) -> Result<State, LinkError> {
        let error = u32_at(r, 0);
        if error != 0 {
            return Err(LinkError::Refused(LinkErrorCode(error)));
        }
        if r.len() < REPLY_FIXED {
            return Err(LinkError::Malformed("shorter than SpiceLinkReply"));
        }
        let key = r.get(4..4 + PUB_KEY_LEN).unwrap_or_default();
        let n_common = u32_at(r, 166) as usize;
        let n_channel = u32_at(r, 170) as usize;
        let offset = u32_at(r, 174) as usize;
        let caps = r.get(offset..).ok_or(LinkError::Malformed("caps offset past the end"))?;
        if caps.len() / 4 < n_common.saturating_add(n_channel) {
            return Err(LinkError::Malformed("caps past the end"));
        }
        let word = |i: usize| u32_at(caps, i * 4);
        let common_caps: Vec<u32> = (0..n_common.min(MAX_CAP_WORDS)).map(word).collect();
        let channel_caps: Vec<u32> = (n_common..n_common + n_channel.min(MAX_CAP_WORDS)).map(word).collect();
        let header =
            if has_cap(&common_caps, common_cap::MINI_HEADER) { HeaderKind::Mini } else { HeaderKind::Full };
        if has_cap(&common_caps, common_cap::AUTH_SELECTION) {
            if !has_cap(&common_caps, common_cap::AUTH_SPICE) && has_cap(&common_caps, common_cap::AUTH_SASL)
            {
                return Err(LinkError::SaslOnly);
            }
            self.out.extend_from_slice(&(common_cap::AUTH_SPICE).to_le_bytes());
        }
        self.out.extend_from_slice(&encrypt_ticket(key, &self.password)?);
        Ok(State::Result(Linked { header, common_caps, channel_caps }))
    }
}

/// RSA-OAEP (SHA-1, MGF1-SHA-1) of `password` with its NUL under the
/// server's DER SubjectPublicKeyInfo `key` (what spice-gtk sends).
pub fn encrypt_ticket(key: &[u8], password: &[u8]) -> Result<Vec<u8>, LinkError> {
    let key = rsa::PublicKey::from_public_key_der(key).map_err(|e| LinkError::Crypto(e.to_string()))?;
    let mut plain = Vec::with_capacity(password.len() + 1);
    plain.extend_from_slice(password);
    plain.push(0);
    let sealed = key.oaep_encrypt::<sha1::Sha1>(&plain).map_err(|e| LinkError::Crypto(e.to_string()));
    plain.fill(0);
    sealed
}

fn hex(b: &[u8]) -> String {
    if b.is_empty() {
        return "none: the connection closed".into();
    }
    b.iter().take(8).map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
