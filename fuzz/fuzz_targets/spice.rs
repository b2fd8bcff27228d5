//! SPICE client: every parser a SPICE server's (or an HTTP proxy's) bytes
//! reach, fed as the client reads them, split anywhere:
//!
//! - the link reply (`link::Link`), then the main channel's messages
//!   (`channel::Channel`: PING, SET_ACK, NOTIFY, DISCONNECTING answered or
//!   kept; MAIN_INIT and CHANNELS_LIST parsed as `net.rs` does);
//! - a linked usbredir channel's input (`vmc::Vmc`: DATA and LZ4
//!   COMPRESSED_DATA, mini or full headers), the usbredir session taking the
//!   decoded bytes, and the server our replies, at any pace; what comes out
//!   must be what the same bytes decoded in one go give, within the memory
//!   bound;
//! - the HTTP CONNECT reply (`proxy::ReplyReader`);
//! - and every body decoder, `.vv` and URI parser on the raw bytes.
//!
//! Input: byte 0: bits 0-2 = number of chunk-pattern bytes that follow,
//! bits 3-4 = what the rest is (0 link + main channel, 1 usbredir channel
//! with mini headers, 2 CONNECT reply, 3 usbredir channel with full headers),
//! then the server's byte stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vstick_spice::channel::{Channel, ChannelError, MAX_NOTICES};
use vstick_spice::codec::{self, HeaderKind, MAX_DECOMPRESSED, MAX_MESSAGE, msg, msgc};
use vstick_spice::link::{Link, LinkRequest};
use vstick_spice::proxy::{self, ConnectReply, ReplyReader};
use vstick_spice::vmc::{DATA_BATCH, MAX_CONTROL_BACKLOG, READ_CHUNK, Vmc};

/// The most a kept partial message may hold (its buffer grows by doubling).
const MAX_KEPT: usize = 2 * (MAX_MESSAGE as usize + 18);

fn check_decoders(stream: &[u8]) {
    for kind in [HeaderKind::Mini, HeaderKind::Full] {
        if let Ok(Some((m, used))) = codec::decode(kind, stream) {
            assert_eq!(used, kind.size() + m.body.len());
            assert!(used <= stream.len());
        }
    }
    let _ = codec::parse_ping(stream);
    let _ = codec::parse_set_ack(stream);
    let _ = codec::parse_main_init(stream);
    if let Ok(list) = codec::parse_channels_list(stream) {
        assert!(list.len() <= stream.len() / 2);
    }
    if let Ok(text) = codec::parse_notify(stream) {
        assert!(text.len() <= 3 * codec::MAX_NOTICE_TEXT, "lossy UTF-8 at most triples");
    }
    let _ = codec::parse_disconnecting(stream);
    let mut out = b"kept".to_vec();
    match codec::decompress_into(stream, &mut out) {
        Ok(()) => assert!(out.len() <= 4 + MAX_DECOMPRESSED as usize),
        Err(_) => assert_eq!(out, b"kept", "a failed decompression leaves the output as it was"),
    }
    if let Ok(ConnectReply::Open { head_len }) = proxy::parse_reply(stream) {
        assert!(head_len <= stream.len());
    }
    let text = String::from_utf8_lossy(stream);
    let _ = vstick_spice::vv::ViewerFile::parse(&text);
    let _ = vstick_spice::uri::ServerAddr::parse(&text);
}

/// Everything we send back is whole client messages of the kinds a channel answers with.
fn check_replies(kind: HeaderKind, mut out: &[u8]) {
    while !out.is_empty() {
        match codec::decode(kind, out) {
            Ok(Some((m, used))) => {
                assert!(
                    matches!(m.msg_type, msgc::PONG | msgc::ACK_SYNC | msgc::ACK),
                    "reply type {}",
                    m.msg_type
                );
                out = &out[used..];
            }
            other => panic!("a reply that is not a whole message: {other:?}"),
        }
    }
}

fn trace(what: impl std::fmt::Debug) {
    if vstick_fuzz::tracing_on() {
        eprintln!("{what:?}");
    }
}

/// The link as `net::link_on` runs it, then the main channel as
/// `net::main_until` and `net::main_loop` read it.
fn link_and_main(stream: &[u8], pattern: &[u8]) {
    let req =
        LinkRequest { connection_id: 0, channel_type: codec::channel::MAIN, channel_id: 0, channel_caps: 0 };
    let mut link = Link::new(&req, b"secret").expect("a short password");
    assert!(!link.take_output().is_empty(), "the link message");
    let chunks = vstick_fuzz::chunks(stream, pattern);
    let mut chunks = chunks.into_iter();
    let mut linked = None;
    for chunk in &mut chunks {
        match link.receive(chunk) {
            Ok(used) => {
                assert!(used <= chunk.len());
                let _ = link.take_output();
                if let Some(l) = link.linked() {
                    assert!(l.common_caps.len() <= 4 && l.channel_caps.len() <= 4);
                    linked = Some((l.header, &chunk[used..]));
                    break;
                }
            }
            Err(e) => {
                trace(e);
                // A failed link stays failed and takes nothing more.
                assert_eq!(link.receive(b"REDQ"), Ok(0));
                return;
            }
        }
    }
    let Some((kind, first)) = linked else {
        trace(link.closed());
        return;
    };
    let mut channel = Channel::new(kind);
    let mut session_id = None;
    let mut channels = None;
    for input in std::iter::once(first).chain(chunks) {
        let mut out = Vec::new();
        let result = channel.receive(input, &mut out, |m| -> Result<(), ChannelError> {
            match m.msg_type {
                msg::MAIN_INIT if session_id.is_none() => session_id = Some(codec::parse_main_init(m.body)),
                msg::MAIN_CHANNELS_LIST if channels.is_none() => {
                    channels = Some(codec::parse_channels_list(m.body));
                }
                _ => {}
            }
            Ok(())
        });
        check_replies(kind, &out);
        assert!(channel.kept() <= MAX_KEPT, "{} bytes kept", channel.kept());
        assert!(channel.notices().len() <= MAX_NOTICES);
        if let Err(e) = result {
            trace(e);
            return;
        }
    }
    trace((session_id, channels, channel.disconnect_reason()));
}

/// A linked usbredir channel's input through `Vmc`, read by the session at
/// the pattern's pace; compared with the same bytes decoded in one go.
fn usbredir_channel(kind: HeaderKind, stream: &[u8], pattern: &[u8]) {
    // Reference: one Channel over the whole stream.
    let mut reference = Channel::new(kind);
    let (mut want_data, mut want_ctl) = (Vec::new(), Vec::new());
    let want_ok = reference
        .receive(stream, &mut want_ctl, |m| -> Result<(), ChannelError> {
            match m.msg_type {
                msg::SPICEVMC_DATA => want_data.extend_from_slice(m.body),
                msg::SPICEVMC_COMPRESSED_DATA => codec::decompress_into(m.body, &mut want_data)?,
                _ => {}
            }
            Ok(())
        })
        .is_ok();

    let (mut data, mut ctl) = (Vec::new(), Vec::new());
    let mut vmc = Vmc::new(Channel::new(kind), &[]).expect("no input yet");
    let mut takes = pattern.iter().cycle().map(|&b| usize::from(b) * 521 + 1);
    let mut ok = true;
    'reads: for chunk in vstick_fuzz::chunks(stream, pattern) {
        for read in chunk.chunks(READ_CHUNK) {
            // The session takes what is decoded, at its own pace; then the
            // replies go out and the socket is read again.
            loop {
                if vmc.data().is_empty() {
                    if !vmc.has_undecoded() {
                        break;
                    }
                    if let Err(e) = vmc.decode() {
                        trace(e);
                        ok = false;
                        break 'reads;
                    }
                    assert!(!vmc.data().is_empty() || !vmc.has_undecoded(), "decode made no progress");
                }
                assert!(
                    vmc.data().len() < DATA_BATCH + MAX_MESSAGE as usize,
                    "{} bytes decoded",
                    vmc.data().len()
                );
                let n = takes.next().unwrap_or(usize::MAX).min(vmc.data().len());
                data.extend_from_slice(&vmc.data()[..n]);
                vmc.consume(n);
            }
            assert!(vmc.control().len() <= MAX_CONTROL_BACKLOG + 2 * READ_CHUNK);
            // The replies go out at the pattern's pace too (a server that
            // reads slowly), until the socket may be read again.
            loop {
                let n = takes.next().unwrap_or(usize::MAX).min(vmc.control().len());
                ctl.extend_from_slice(&vmc.control()[..n]);
                vmc.control_sent(n);
                if vmc.wants_input() {
                    break;
                }
            }
            assert!(
                vmc.held() <= 2 * (DATA_BATCH + MAX_MESSAGE as usize) + 4 * READ_CHUNK + MAX_KEPT,
                "{} bytes held",
                vmc.held()
            );
            vmc.read_space()[..read.len()].copy_from_slice(read);
            if let Err(e) = vmc.received(read.len()) {
                trace(e);
                ok = false;
                break 'reads;
            }
        }
    }
    // The rest of the last read.
    while ok && (vmc.has_undecoded() || !vmc.data().is_empty()) {
        data.extend_from_slice(vmc.data());
        vmc.consume(vmc.data().len());
        ok = vmc.decode().is_ok();
    }
    // What was decoded before an error (the stream drops it with the connection).
    data.extend_from_slice(vmc.data());
    ctl.extend_from_slice(vmc.control());
    trace((ok, data.len(), ctl.len(), vmc.data_messages()));
    assert_eq!(ok, want_ok, "split decoding failed differently");
    assert!(
        data == want_data,
        "split decoding gave other data ({} bytes, {} in one go)",
        data.len(),
        want_data.len()
    );
    assert!(ctl == want_ctl, "split decoding gave other replies");
    check_replies(kind, &ctl);
}

/// The CONNECT reply as `net::dial` reads it.
fn connect_reply(stream: &[u8], pattern: &[u8]) {
    let mut reader = ReplyReader::default();
    let mut seen = 0;
    for chunk in vstick_fuzz::chunks(stream, pattern) {
        seen += chunk.len();
        match reader.receive(chunk, "host:5900") {
            Ok(false) => {}
            Ok(true) => {
                assert_eq!(proxy::parse_reply(&stream[..seen]), Ok(ConnectReply::Open { head_len: seen }));
                return;
            }
            Err(e) => {
                trace(e);
                return;
            }
        }
        assert!(seen <= proxy::MAX_REPLY_HEAD, "an incomplete head over the cap");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else { return };
    let (pattern, stream) = rest.split_at(usize::from(head & 7).min(rest.len()));
    check_decoders(stream);
    match (head >> 3) & 3 {
        0 => link_and_main(stream, pattern),
        1 => usbredir_channel(HeaderKind::Mini, stream, pattern),
        2 => connect_reply(stream, pattern),
        _ => usbredir_channel(HeaderKind::Full, stream, pattern),
    }
});
