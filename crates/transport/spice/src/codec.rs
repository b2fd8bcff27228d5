//! SPICE data messages after the link: the mini and full headers and the few
//! message bodies a usbredir client needs (little-endian, packed).
//!
//! [`decode`] takes whatever bytes have arrived and answers "a message and
//! how many bytes it used", "need more", or an error; it never panics and the
//! peer's message size is capped ([`MAX_MESSAGE`]) as soon as the header is in.

/// Largest server message accepted. spice-server reads the VM's chardev in
/// 64 KiB chunks and its main-channel messages are small; anything larger is
/// a broken or hostile peer.
pub const MAX_MESSAGE: u32 = 4 * 1024 * 1024;

/// Largest usbredir payload we put into one client `SPICEVMC_DATA` message
/// (the size of spice-server's own chardev reads).
pub const MAX_DATA_CHUNK: usize = 64 * 1024;

/// Largest uncompressed size a `SPICEVMC_COMPRESSED_DATA` may announce (the
/// server compresses at most one 64 KiB chardev read per message).
pub const MAX_DECOMPRESSED: u32 = 1024 * 1024;

/// Longest NOTIFY text kept (spice-server's are a line).
pub const MAX_NOTICE_TEXT: usize = 1024;

/// Server message types (`spice/enums.h`, `SPICE_MSG_*`).
pub mod msg {
    /// Common: the server wants an ACK every `window` messages.
    pub const SET_ACK: u16 = 3;
    /// Common: answer with a PONG.
    pub const PING: u16 = 4;
    /// Common: the server is closing the channel.
    pub const DISCONNECTING: u16 = 6;
    /// Common: a message for the user.
    pub const NOTIFY: u16 = 7;
    /// Main: the session id and more.
    pub const MAIN_INIT: u16 = 103;
    /// Main: the channels the VM has.
    pub const MAIN_CHANNELS_LIST: u16 = 104;
    /// spicevmc: a chunk of the device's byte stream.
    pub const SPICEVMC_DATA: u16 = 101;
    /// spicevmc: a compressed chunk.
    pub const SPICEVMC_COMPRESSED_DATA: u16 = 102;
}

/// Client message types (`SPICE_MSGC_*`).
pub mod msgc {
    /// Common: answers SET_ACK.
    pub const ACK_SYNC: u16 = 1;
    /// Common: one per ACK window.
    pub const ACK: u16 = 2;
    /// Common: answers PING.
    pub const PONG: u16 = 3;
    /// Main: asks for the channel list.
    pub const MAIN_ATTACH_CHANNELS: u16 = 104;
    /// spicevmc: a chunk of our byte stream.
    pub const SPICEVMC_DATA: u16 = 101;
}

/// Channel types (`SPICE_CHANNEL_*`).
pub mod channel {
    /// The main channel, linked first.
    pub const MAIN: u8 = 1;
    /// A usbredir (spicevmc) channel.
    pub const USBREDIR: u8 = 9;
}

/// Which data header both sides use after the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    /// `{u16 type; u32 size}`: both sides have the MINI_HEADER capability.
    Mini,
    /// `{u64 serial; u16 type; u32 size; u32 sub_list}`.
    Full,
}

impl HeaderKind {
    /// The header's length in bytes.
    pub fn size(self) -> usize {
        match self {
            HeaderKind::Mini => 6,
            HeaderKind::Full => 18,
        }
    }
}

/// Why bytes from the server are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The header announces more than [`MAX_MESSAGE`] bytes.
    #[error("SPICE message type {msg_type} of {size} bytes exceeds the {MAX_MESSAGE}-byte limit")]
    TooLong {
        /// The message type.
        msg_type: u16,
        /// The size the server announced.
        size: u32,
    },
    /// A message body is shorter than its fixed part or inconsistent.
    #[error("malformed SPICE message type {0}")]
    Malformed(u16),
    /// Compressed data in a format other than LZ4 (held here).
    #[error("SPICE compressed data of unknown type {0}")]
    UnknownCompression(u8),
    /// Compressed data announcing more than [`MAX_DECOMPRESSED`] bytes, or
    /// whose LZ4 block does not decompress to the announced size.
    #[error("bad LZ4 data from the SPICE server ({0})")]
    BadLz4(String),
}

/// One received message: its type and body (borrowed from the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// The message type (`msg::*`).
    pub msg_type: u16,
    /// The body.
    pub body: &'a [u8],
}

/// The message at the start of `input`, with the bytes it used, or `None`
/// while it is incomplete.
pub fn decode(kind: HeaderKind, input: &[u8]) -> Result<Option<(Message<'_>, usize)>, DecodeError> {
    let Some(header) = input.get(..kind.size()) else { return Ok(None) };
    let (msg_type, size) = match kind {
        HeaderKind::Mini => (u16_at(header, 0), u32_at(header, 2)),
        HeaderKind::Full => (u16_at(header, 8), u32_at(header, 10)),
    };
    if size > MAX_MESSAGE {
        return Err(DecodeError::TooLong { msg_type, size });
    }
    let end = kind.size() + size as usize;
    match input.get(kind.size()..end) {
        Some(body) => Ok(Some((Message { msg_type, body }, end))),
        None => Ok(None),
    }
}

/// Appends the header of a `size`-byte client message; `serial` is used by
/// the full header only (it counts from 1 per channel).
pub fn encode_header(kind: HeaderKind, serial: u64, msg_type: u16, size: u32, out: &mut Vec<u8>) {
    if kind == HeaderKind::Full {
        out.extend_from_slice(&serial.to_le_bytes());
    }
    out.extend_from_slice(&msg_type.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    if kind == HeaderKind::Full {
        out.extend_from_slice(&0u32.to_le_bytes()); // sub_list
    }
}

/// Appends a whole message: its header, then `body`.
pub fn encode_message(kind: HeaderKind, serial: u64, msg_type: u16, body: &[u8], out: &mut Vec<u8>) {
    encode_header(kind, serial, msg_type, body.len() as u32, out);
    out.extend_from_slice(body);
}

/// `SPICE_MSG_PING`: `{u32 id; u64 timestamp}` (net-test pings carry extra
/// bytes after it, which the PONG does not echo).
pub fn parse_ping(body: &[u8]) -> Result<(u32, u64), DecodeError> {
    match (body.get(..4), body.get(4..12)) {
        (Some(id), Some(ts)) => Ok((u32_at(id, 0), u64_at(ts, 0))),
        _ => Err(DecodeError::Malformed(msg::PING)),
    }
}

/// The body of `SPICE_MSGC_PONG` for a ping.
pub fn pong_body(id: u32, timestamp: u64) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&id.to_le_bytes());
    b[4..].copy_from_slice(&timestamp.to_le_bytes());
    b
}

/// `SPICE_MSG_SET_ACK`: `{u32 generation; u32 window}`.
pub fn parse_set_ack(body: &[u8]) -> Result<(u32, u32), DecodeError> {
    match body.get(..8) {
        Some(b) => Ok((u32_at(b, 0), u32_at(b, 4))),
        None => Err(DecodeError::Malformed(msg::SET_ACK)),
    }
}

/// `SPICE_MSG_MAIN_INIT`: the session id, its first field.
pub fn parse_main_init(body: &[u8]) -> Result<u32, DecodeError> {
    match body.get(..4) {
        Some(b) if body.len() >= 32 => Ok(u32_at(b, 0)),
        _ => Err(DecodeError::Malformed(msg::MAIN_INIT)),
    }
}

/// `SPICE_MSG_MAIN_CHANNELS_LIST`: `{u32 count; {u8 type; u8 id}[count]}`,
/// as `(type, id)` pairs. The count is checked against the body, so it
/// cannot make us allocate more than the message holds.
pub fn parse_channels_list(body: &[u8]) -> Result<Vec<(u8, u8)>, DecodeError> {
    let bad = DecodeError::Malformed(msg::MAIN_CHANNELS_LIST);
    let count = body.get(..4).map(|b| u32_at(b, 0)).ok_or(bad.clone())? as usize;
    let entries = body.get(4..).ok_or(bad.clone())?;
    if entries.len() / 2 < count {
        return Err(bad);
    }
    Ok(entries.chunks_exact(2).take(count).map(|c| (c[0], c[1])).collect())
}

/// `SPICE_MSG_NOTIFY`: `{u64 time; u32 severity; u32 visibility; u32 what;
/// u32 message_len; u8 message[]}`, the message text (lossy UTF-8, without
/// its NUL), cut at [`MAX_NOTICE_TEXT`] bytes.
pub fn parse_notify(body: &[u8]) -> Result<String, DecodeError> {
    let len = body.get(20..24).map(|b| u32_at(b, 0)).ok_or(DecodeError::Malformed(msg::NOTIFY))?;
    let text = body.get(24..).unwrap_or_default();
    let text = text.get(..(len as usize).min(MAX_NOTICE_TEXT)).unwrap_or(text);
    let text = text.split(|&b| b == 0).next().unwrap_or_default();
    Ok(String::from_utf8_lossy(text).into_owned())
}

/// `SPICE_MSG_DISCONNECTING`: `{u64 time; u32 reason}`, the reason (a link
/// error code).
pub fn parse_disconnecting(body: &[u8]) -> Result<u32, DecodeError> {
    body.get(8..12).map(|b| u32_at(b, 0)).ok_or(DecodeError::Malformed(msg::DISCONNECTING))
}

/// `SPICE_MSG_SPICEVMC_COMPRESSED_DATA`: `{u8 type; u32 uncompressed_size;
/// u8 data[]}`, decompressed and appended to `out`.
pub fn decompress_into(body: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let (Some(&kind), Some(size)) = (body.first(), body.get(1..5)) else {
        return Err(DecodeError::Malformed(msg::SPICEVMC_COMPRESSED_DATA));
    };
    const LZ4: u8 = 1;
    if kind != LZ4 {
        return Err(DecodeError::UnknownCompression(kind));
    }
    let size = u32_at(size, 0);
    if size > MAX_DECOMPRESSED {
        return Err(DecodeError::BadLz4(format!("{size} bytes announced, at most {MAX_DECOMPRESSED}")));
    }
    let start = out.len();
    out.resize(start + size as usize, 0);
    let data = body.get(5..).unwrap_or_default();
    match lz4_flex::block::decompress_into(data, out.get_mut(start..).unwrap_or_default()) {
        Ok(n) if n == size as usize => Ok(()),
        Ok(n) => {
            out.truncate(start);
            Err(DecodeError::BadLz4(format!("{n} bytes decompressed, {size} announced")))
        }
        Err(e) => {
            out.truncate(start);
            Err(DecodeError::BadLz4(e.to_string()))
        }
    }
}

/// A whole message with a mini header (tests).
#[cfg(test)]
pub(crate) fn mini(msg_type: u16, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_message(HeaderKind::Mini, 0, msg_type, body, &mut v);
    v
}

/// A whole PING with a mini header (tests).
#[cfg(test)]
pub(crate) fn ping(id: u32, timestamp: u64) -> Vec<u8> {
    mini(msg::PING, &pong_body(id, timestamp))
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(b.get(at..at + 2).unwrap_or(&[0; 2]));
    u16::from_le_bytes(a)
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b.get(at..at + 4).unwrap_or(&[0; 4]));
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b.get(at..at + 8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_every_truncation_is_incomplete() {
        for kind in [HeaderKind::Mini, HeaderKind::Full] {
            let mut v = Vec::new();
            encode_header(kind, 7, msg::PING, 3, &mut v);
            assert_eq!(v.len(), kind.size());
            v.extend_from_slice(b"abc");
            let (m, used) = decode(kind, &v).unwrap().unwrap();
            assert_eq!((m.msg_type, m.body, used), (msg::PING, &b"abc"[..], v.len()));
            for cut in 0..v.len() {
                assert_eq!(decode(kind, &v[..cut]).unwrap(), None, "{kind:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn an_oversized_message_is_refused_from_its_header() {
        let mut v = Vec::new();
        encode_header(HeaderKind::Mini, 0, msg::SPICEVMC_DATA, MAX_MESSAGE + 1, &mut v);
        assert!(matches!(decode(HeaderKind::Mini, &v), Err(DecodeError::TooLong { .. })));
    }

    #[test]
    fn ping_pong_and_short_bodies() {
        let mut body = 9u32.to_le_bytes().to_vec();
        body.extend_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        body.extend_from_slice(&[0xaa; 100]); // net-test payload
        assert_eq!(parse_ping(&body).unwrap(), (9, 0x1122_3344_5566_7788));
        assert_eq!(&pong_body(9, 0x1122_3344_5566_7788)[..], &body[..12]);
        for cut in 0..12 {
            assert!(parse_ping(&body[..cut]).is_err());
        }
    }

    #[test]
    fn channel_list_count_is_checked_against_the_body() {
        let mut body = 3u32.to_le_bytes().to_vec();
        body.extend_from_slice(&[1, 0, 9, 0, 9, 1]);
        assert_eq!(parse_channels_list(&body).unwrap(), vec![(1, 0), (9, 0), (9, 1)]);
        body[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_channels_list(&body).is_err());
    }

    #[test]
    fn lz4_data_decompresses_and_bad_data_is_an_error() {
        let plain: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
        let mut body = vec![1u8];
        body.extend_from_slice(&(plain.len() as u32).to_le_bytes());
        body.extend_from_slice(&lz4_flex::block::compress(&plain));
        let mut out = b"x".to_vec();
        decompress_into(&body, &mut out).unwrap();
        assert_eq!(&out[1..], &plain[..]);
        // Wrong size announced, wrong type, truncated block, huge size.
        let mut wrong = body.clone();
        wrong[1..5].copy_from_slice(&4999u32.to_le_bytes());
        assert!(decompress_into(&wrong, &mut out).is_err());
        let mut other = body.clone();
        other[0] = 2;
        assert_eq!(decompress_into(&other, &mut out), Err(DecodeError::UnknownCompression(2)));
        assert!(decompress_into(&body[..body.len() - 3], &mut out).is_err());
        let mut huge = body.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decompress_into(&huge, &mut out).is_err());
        assert_eq!(out.len(), 1 + plain.len(), "failed attempts leave the output as it was");
    }

    #[test]
    fn notify_text_is_cut_at_its_length_and_nul() {
        let mut body = vec![0u8; 20];
        body.extend_from_slice(&6u32.to_le_bytes());
        body.extend_from_slice(b"hello\0garbage");
        assert_eq!(parse_notify(&body).unwrap(), "hello");
        assert!(parse_notify(&body[..10]).is_err());
        let mut long = body[..20].to_vec();
        long.extend_from_slice(&u32::MAX.to_le_bytes());
        long.extend_from_slice(&[b'a'; 3 * MAX_NOTICE_TEXT]);
        assert_eq!(parse_notify(&long).unwrap().len(), MAX_NOTICE_TEXT);
        let m = mini(msg::NOTIFY, &body);
        assert_eq!(decode(HeaderKind::Mini, &m).unwrap().unwrap().0.body, &body[..]);
    }

    proptest::proptest! {
        #[test]
        fn decoders_are_total(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = decode(HeaderKind::Mini, &bytes);
            let _ = decode(HeaderKind::Full, &bytes);
            let _ = parse_ping(&bytes);
            let _ = parse_set_ack(&bytes);
            let _ = parse_main_init(&bytes);
            let _ = parse_channels_list(&bytes);
            let _ = parse_notify(&bytes);
            let _ = parse_disconnecting(&bytes);
            let _ = decompress_into(&bytes, &mut Vec::new());
        }
    }
}
