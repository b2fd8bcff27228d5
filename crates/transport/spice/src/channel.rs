//! A linked SPICE channel as a sans-io state machine: [`Channel::receive`]
//! takes the server's bytes, answers the common messages itself (PING with
//! PONG, SET_ACK with ACK_SYNC and ACKs, NOTIFY logged, DISCONNECTING kept)
//! and hands every other message to the caller; the replies go into the
//! caller's output buffer.

use tracing::{debug, info};

use crate::codec::{self, DecodeError, HeaderKind, Message, msg, msgc};

/// NOTIFY texts kept (the latest; a server may send any number).
pub const MAX_NOTICES: usize = 16;

/// What [`Channel::receive_some`] does after a message it handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Decode the next message.
    Continue,
    /// Leave the rest of the input to the caller.
    Stop,
}

/// Why a channel's input is not acceptable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The bytes are not a valid message.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// A linked channel's message framing and common-message state.
#[derive(Debug)]
pub struct Channel {
    kind: HeaderKind,
    serial: u64,
    ack_window: u32,
    until_ack: u32,
    pending: Vec<u8>,
    disconnect_reason: Option<u32>,
    notices: Vec<String>,
}

impl Channel {
    /// A channel linked with headers of `kind`.
    pub fn new(kind: HeaderKind) -> Self {
        Self {
            kind,
            serial: 0,
            ack_window: 0,
            until_ack: 0,
            pending: Vec::new(),
            disconnect_reason: None,
            notices: Vec::new(),
        }
    }

    /// The header both sides use.
    pub fn header_kind(&self) -> HeaderKind {
        self.kind
    }

    /// The reason code of the server's DISCONNECTING, once it sent one.
    pub fn disconnect_reason(&self) -> Option<u32> {
        self.disconnect_reason
    }

    /// The latest NOTIFY texts (the server's messages for the user), at
    /// most [`MAX_NOTICES`].
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// Appends a client message's header (the body follows, `size` bytes).
    pub fn encode_header(&mut self, msg_type: u16, size: u32, out: &mut Vec<u8>) {
        self.serial += 1;
        codec::encode_header(self.kind, self.serial, msg_type, size, out);
    }

    /// Appends a whole client message.
    pub fn encode(&mut self, msg_type: u16, body: &[u8], out: &mut Vec<u8>) {
        self.serial += 1;
        codec::encode_message(self.kind, self.serial, msg_type, body, out);
    }

    /// Takes bytes from the server. Common messages are answered into `out`;
    /// every other whole message goes to `each`, in order. A partial message
    /// is kept for the next call (at most one, capped at
    /// [`codec::MAX_MESSAGE`]); whole messages are handled where they lie.
    pub fn receive<E: From<ChannelError>>(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        mut each: impl FnMut(Message<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.receive_some(input, out, |m| each(m).map(|()| Flow::Continue)).map(|_| ())
    }

    /// As [`Channel::receive`], but `each` may stop after a message
    /// ([`Flow::Stop`]): the bytes of `input` after it are then not taken.
    /// Returns how many bytes of `input` were taken (all of them unless
    /// stopped; a partial message at the end is kept and counts as taken).
    /// So a caller can act on each message before decoding the next, and
    /// hold no more than one message's worth of what they expand to.
    pub fn receive_some<E: From<ChannelError>>(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        mut each: impl FnMut(Message<'_>) -> Result<Flow, E>,
    ) -> Result<usize, E> {
        let total = input.len();
        // First finish the kept partial message, taking only its bytes.
        while !self.pending.is_empty() {
            let need = match codec::decode(self.kind, &self.pending).map_err(ChannelError::from)? {
                Some(_) => 0,
                None if self.pending.len() < self.kind.size() => self.kind.size() - self.pending.len(),
                None => {
                    let size = match self.kind {
                        HeaderKind::Mini => codec::u32_at(&self.pending, 2),
                        HeaderKind::Full => codec::u32_at(&self.pending, 10),
                    };
                    self.kind.size() + size as usize - self.pending.len()
                }
            };
            let take = need.min(input.len());
            self.pending.extend_from_slice(input.get(..take).unwrap_or_default());
            input = input.get(take..).unwrap_or_default();
            let pending = std::mem::take(&mut self.pending);
            match codec::decode(self.kind, &pending).map_err(ChannelError::from)? {
                Some((m, _)) => {
                    let flow = self.handle(m, out, &mut each)?;
                    self.pending = pending;
                    self.pending.clear();
                    if flow == Flow::Stop {
                        return Ok(total - input.len());
                    }
                }
                None => {
                    self.pending = pending;
                    if input.is_empty() {
                        return Ok(total);
                    }
                }
            }
        }
        while let Some((m, used)) = codec::decode(self.kind, input).map_err(ChannelError::from)? {
            let flow = self.handle(m, out, &mut each)?;
            input = input.get(used..).unwrap_or_default();
            if flow == Flow::Stop {
                return Ok(total - input.len());
            }
        }
        self.pending.extend_from_slice(input);
        Ok(total)
    }

    /// Bytes held for a partial message (its buffer's capacity).
    pub fn kept(&self) -> usize {
        self.pending.capacity()
    }

    fn handle<E: From<ChannelError>>(
        &mut self,
        m: Message<'_>,
        out: &mut Vec<u8>,
        each: &mut impl FnMut(Message<'_>) -> Result<Flow, E>,
    ) -> Result<Flow, E> {
        let mut flow = Flow::Continue;
        match m.msg_type {
            msg::PING => {
                let (id, ts) = codec::parse_ping(m.body).map_err(ChannelError::from)?;
                debug!(id, bytes = m.body.len(), "SPICE: PING answered");
                self.encode(msgc::PONG, &codec::pong_body(id, ts), out);
            }
            msg::SET_ACK => {
                let (generation, window) = codec::parse_set_ack(m.body).map_err(ChannelError::from)?;
                self.ack_window = window;
                self.until_ack = window;
                self.encode(msgc::ACK_SYNC, &generation.to_le_bytes(), out);
                return Ok(flow);
            }
            msg::NOTIFY => {
                let text = codec::parse_notify(m.body).map_err(ChannelError::from)?;
                info!("SPICE server: {text}");
                if self.notices.len() == MAX_NOTICES {
                    self.notices.remove(0);
                }
                self.notices.push(text);
            }
            msg::DISCONNECTING => {
                let reason = codec::parse_disconnecting(m.body).map_err(ChannelError::from)?;
                debug!(reason, "SPICE server: disconnecting");
                self.disconnect_reason = Some(reason);
            }
            _ => flow = each(m)?,
        }
        if self.ack_window > 0 {
            self.until_ack -= 1;
            if self.until_ack == 0 {
                self.until_ack = self.ack_window;
                self.encode(msgc::ACK, &[], out);
            }
        }
        Ok(flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::mini as message;

    /// Runs `input` through a fresh channel in pieces of `step` bytes.
    fn run(input: &[u8], step: usize) -> (Vec<(u16, Vec<u8>)>, Vec<u8>) {
        let mut ch = Channel::new(HeaderKind::Mini);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for piece in input.chunks(step) {
            ch.receive(piece, &mut out, |m: Message<'_>| {
                seen.push((m.msg_type, m.body.to_vec()));
                Ok::<_, ChannelError>(())
            })
            .unwrap();
        }
        (seen, out)
    }

    #[test]
    fn pings_are_answered_and_data_passes_whatever_the_pieces() {
        let mut input = message(msg::SPICEVMC_DATA, b"hello");
        input.extend(codec::ping(5, 77));
        input.extend(message(msg::SPICEVMC_DATA, &[7; 3000]));
        input.extend(message(msg::SPICEVMC_DATA, b""));
        let mut pong = Vec::new();
        codec::encode_header(HeaderKind::Mini, 0, msgc::PONG, 12, &mut pong);
        pong.extend_from_slice(&codec::pong_body(5, 77));
        for step in [1, 2, 5, 6, 7, 100, 4000, input.len()] {
            let (seen, out) = run(&input, step);
            assert_eq!(
                seen,
                vec![
                    (msg::SPICEVMC_DATA, b"hello".to_vec()),
                    (msg::SPICEVMC_DATA, vec![7; 3000]),
                    (msg::SPICEVMC_DATA, vec![])
                ],
                "step {step}"
            );
            assert_eq!(out, pong, "step {step}");
        }
    }

    #[test]
    fn set_ack_is_synced_and_acked_every_window() {
        let mut body = 42u32.to_le_bytes().to_vec();
        body.extend_from_slice(&2u32.to_le_bytes());
        let mut input = message(msg::SET_ACK, &body);
        for _ in 0..5 {
            input.extend(message(200, b"x"));
        }
        let (seen, out) = run(&input, 3);
        assert_eq!(seen.len(), 5);
        let mut expected = message(msgc::ACK_SYNC, &42u32.to_le_bytes());
        expected.extend(message(msgc::ACK, b""));
        expected.extend(message(msgc::ACK, b""));
        assert_eq!(out, expected);
    }

    #[test]
    fn notify_and_disconnecting_are_kept() {
        let mut notify = vec![0u8; 20];
        notify.extend_from_slice(&3u32.to_le_bytes());
        notify.extend_from_slice(b"hi\0");
        let mut input = message(msg::NOTIFY, &notify);
        let mut disc = 0u64.to_le_bytes().to_vec();
        disc.extend_from_slice(&9u32.to_le_bytes());
        input.extend(message(msg::DISCONNECTING, &disc));
        let mut ch = Channel::new(HeaderKind::Mini);
        ch.receive(&input, &mut Vec::new(), |_| Ok::<_, ChannelError>(())).unwrap();
        assert_eq!(ch.notices(), ["hi"]);
        assert_eq!(ch.disconnect_reason(), Some(9));
    }

    #[test]
    fn only_the_latest_notices_are_kept() {
        let notify = |i: usize| {
            let text = format!("notice {i}");
            let mut body = vec![0u8; 20];
            body.extend_from_slice(&(text.len() as u32).to_le_bytes());
            body.extend_from_slice(text.as_bytes());
            message(msg::NOTIFY, &body)
        };
        let mut ch = Channel::new(HeaderKind::Mini);
        for i in 0..10 * MAX_NOTICES {
            ch.receive(&notify(i), &mut Vec::new(), |_| Ok::<_, ChannelError>(())).unwrap();
        }
        assert_eq!(ch.notices().len(), MAX_NOTICES);
        assert_eq!(
            ch.notices().last().map(String::as_str),
            Some(&*format!("notice {}", 10 * MAX_NOTICES - 1))
        );
    }

    #[test]
    fn receive_some_stops_after_the_message_it_is_told_to() {
        let mut input = message(msg::SPICEVMC_DATA, b"one");
        input.extend(message(msg::SPICEVMC_DATA, b"two"));
        input.extend(message(msg::SPICEVMC_DATA, b"three"));
        let one = message(msg::SPICEVMC_DATA, b"one").len();
        for split in [0, 2, 7, one, input.len()] {
            let mut ch = Channel::new(HeaderKind::Mini);
            let mut seen = Vec::new();
            let (a, b) = input.split_at(split);
            let mut rest = Vec::new();
            for piece in [a, b] {
                let mut piece = piece.to_vec();
                piece.splice(0..0, std::mem::take(&mut rest));
                let used = ch
                    .receive_some(&piece, &mut Vec::new(), |m| {
                        seen.push(m.body.to_vec());
                        Ok::<_, ChannelError>(if m.body == b"one" { Flow::Stop } else { Flow::Continue })
                    })
                    .unwrap();
                rest = piece[used..].to_vec();
            }
            if !rest.is_empty() {
                ch.receive(&rest, &mut Vec::new(), |m| {
                    seen.push(m.body.to_vec());
                    Ok::<_, ChannelError>(())
                })
                .unwrap();
            }
            assert_eq!(seen, [&b"one"[..], b"two", b"three"], "split at {split}");
        }
    }

    #[test]
    fn an_oversized_header_is_an_error_even_split() {
        let mut v = Vec::new();
        codec::encode_header(HeaderKind::Mini, 0, msg::SPICEVMC_DATA, u32::MAX, &mut v);
        let mut ch = Channel::new(HeaderKind::Mini);
        let mut out = Vec::new();
        ch.receive(&v[..3], &mut out, |_| Ok::<_, ChannelError>(())).unwrap();
        assert!(ch.receive(&v[3..], &mut out, |_| Ok::<_, ChannelError>(())).is_err());
    }

    #[test]
    fn full_headers_carry_serials() {
        let mut ch = Channel::new(HeaderKind::Full);
        let mut out = Vec::new();
        ch.encode(msgc::SPICEVMC_DATA, b"a", &mut out);
        ch.encode(msgc::SPICEVMC_DATA, b"b", &mut out);
        assert_eq!(&out[..8], &1u64.to_le_bytes());
        assert_eq!(&out[19..27], &2u64.to_le_bytes());
    }
}
