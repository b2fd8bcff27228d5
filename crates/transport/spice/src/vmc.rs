//! A linked usbredir (spicevmc) channel without I/O: the server's bytes in,
//! the usbredir byte stream inside them out, with memory bounded whatever the
//! server sends. [`crate::VmcStream`] moves the bytes; the fuzz target drives
//! this directly.
//!
//! The bound: an LZ4 block expands up to ~255 times, so a 256 KiB read of
//! `COMPRESSED_DATA` messages would be 64 MiB decompressed at once. Here the
//! received bytes stay raw, and messages are decoded one after another only
//! until [`DATA_BATCH`] usbredir bytes wait to be read; the rest is decoded
//! after the reader took those, and the socket is read again only when all
//! of it is decoded and read. So at most `DATA_BATCH` plus one message's
//! output ([`codec::MAX_DECOMPRESSED`], or a [`codec::MAX_MESSAGE`] DATA
//! body) is held, however the input is made. Control replies (PONG, ACK)
//! queue up only while the caller sends them: past
//! [`MAX_CONTROL_BACKLOG`] unsent, no more input is read.

use tracing::debug;

use crate::channel::{Channel, ChannelError, Flow};
use crate::codec::{self, msg, msgc};

/// Socket read size.
pub const READ_CHUNK: usize = 256 * 1024;

/// Decoding stops after the message that makes this many usbredir bytes
/// wait to be read.
pub const DATA_BATCH: usize = 256 * 1024;

/// Unsent control replies beyond which [`Vmc::wants_input`] is false: a
/// server that does not read cannot make us queue its PONGs without bound.
pub const MAX_CONTROL_BACKLOG: usize = 64 * 1024;

/// A usbredir channel's framing and buffers.
#[derive(Debug)]
pub struct Vmc {
    channel: Channel,
    /// Received bytes; `raw_pos..raw_len` are not decoded yet.
    raw: Vec<u8>,
    raw_pos: usize,
    raw_len: usize,
    /// Decoded usbredir bytes, not read yet.
    data: ByteQueue,
    /// Control replies, not sent yet.
    ctl: ByteQueue,
    /// DATA and COMPRESSED_DATA messages decoded.
    received: [u64; 2],
}

impl Vmc {
    /// A linked channel; `first` are bytes that arrived with the link
    /// result (decoded as if just read).
    pub fn new(channel: Channel, first: &[u8]) -> Result<Self, ChannelError> {
        let mut raw = vec![0; READ_CHUNK.max(first.len())];
        raw.get_mut(..first.len()).unwrap_or_default().copy_from_slice(first);
        let mut vmc = Self {
            channel,
            raw,
            raw_pos: 0,
            raw_len: first.len(),
            data: ByteQueue::default(),
            ctl: ByteQueue::default(),
            received: [0; 2],
        };
        vmc.decode()?;
        Ok(vmc)
    }

    /// Whether the next step is a socket read: everything received is
    /// decoded and read, and the control backlog is under its cap.
    pub fn wants_input(&self) -> bool {
        !self.has_undecoded() && self.data().is_empty() && self.control().len() < MAX_CONTROL_BACKLOG
    }

    /// Whether received bytes wait to be decoded ([`Vmc::decode`]).
    pub fn has_undecoded(&self) -> bool {
        self.raw_pos < self.raw_len
    }

    /// Where the next read goes ([`READ_CHUNK`] bytes); call only when
    /// [`Vmc::wants_input`], then [`Vmc::received`].
    pub fn read_space(&mut self) -> &mut [u8] {
        self.raw.get_mut(..READ_CHUNK).unwrap_or_default()
    }

    /// `n` bytes were read into [`Vmc::read_space`]: decodes them (as far
    /// as [`Vmc::decode`] goes).
    pub fn received(&mut self, n: usize) -> Result<(), ChannelError> {
        self.raw_pos = 0;
        self.raw_len = n.min(READ_CHUNK);
        self.decode()
    }

    /// Decodes received messages until [`DATA_BATCH`] usbredir bytes wait
    /// or every received byte is decoded (a partial message kept).
    pub fn decode(&mut self) -> Result<(), ChannelError> {
        self.data.compact();
        self.ctl.compact();
        let Self { channel, raw, raw_pos, raw_len, data, ctl, received } = self;
        let (data, ctl) = (&mut data.bytes, &mut ctl.bytes);
        let input = raw.get(*raw_pos..*raw_len).unwrap_or_default();
        let used = channel.receive_some(input, ctl, |m| -> Result<Flow, ChannelError> {
            match m.msg_type {
                msg::SPICEVMC_DATA => {
                    received[0] += 1;
                    data.extend_from_slice(m.body);
                }
                msg::SPICEVMC_COMPRESSED_DATA => {
                    received[1] += 1;
                    codec::decompress_into(m.body, data)?;
                }
                other => debug!(msg_type = other, "SPICE usbredir channel: message ignored"),
            }
            Ok(if data.len() >= DATA_BATCH { Flow::Stop } else { Flow::Continue })
        })?;
        *raw_pos += used;
        Ok(())
    }

    /// Decoded usbredir bytes not read yet.
    pub fn data(&self) -> &[u8] {
        self.data.unread()
    }

    /// `n` bytes of [`Vmc::data`] were read.
    pub fn consume(&mut self, n: usize) {
        self.data.take(n);
    }

    /// Control replies not sent yet.
    pub fn control(&self) -> &[u8] {
        self.ctl.unread()
    }

    /// `n` bytes of [`Vmc::control`] were sent.
    pub fn control_sent(&mut self, n: usize) {
        self.ctl.take(n);
    }

    /// Appends the header of a `size`-byte client DATA message.
    pub fn encode_data_header(&mut self, size: u32, out: &mut Vec<u8>) {
        self.channel.encode_header(msgc::SPICEVMC_DATA, size, out);
    }

    /// The reason code of the server's DISCONNECTING, if it sent one.
    pub fn disconnect_reason(&self) -> Option<u32> {
        self.channel.disconnect_reason()
    }

    /// DATA and COMPRESSED_DATA messages decoded so far.
    pub fn data_messages(&self) -> [u64; 2] {
        self.received
    }

    /// Bytes held beyond the fixed read buffer: decoded data, control
    /// replies and a kept partial message (buffer capacities).
    pub fn held(&self) -> usize {
        self.data.bytes.capacity() + self.ctl.bytes.capacity() + self.channel.kept()
    }
}

/// A buffer whose bytes from `pos` on are still to be taken; emptied (its
/// capacity kept) once all are.
#[derive(Debug, Default)]
struct ByteQueue {
    bytes: Vec<u8>,
    pos: usize,
}

impl ByteQueue {
    fn unread(&self) -> &[u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    fn take(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.bytes.len());
        if self.pos == self.bytes.len() {
            self.bytes.clear();
            self.pos = 0;
        }
    }

    /// Drops the bytes taken, so new ones append after the unread.
    fn compact(&mut self) {
        self.bytes.drain(..self.pos);
        self.pos = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{HeaderKind, MAX_DECOMPRESSED, mini as message};

    fn lz4(plain: &[u8]) -> Vec<u8> {
        let mut body = vec![1u8];
        body.extend_from_slice(&(plain.len() as u32).to_le_bytes());
        body.extend_from_slice(&lz4_flex::block::compress(plain));
        message(msg::SPICEVMC_COMPRESSED_DATA, &body)
    }

    /// Everything `wire` carries, fed `step` bytes per read, read `take`
    /// bytes at a time; the most held at any point.
    fn run(wire: &[u8], step: usize, take: usize) -> (Vec<u8>, usize) {
        let mut vmc = Vmc::new(Channel::new(HeaderKind::Mini), &[]).unwrap();
        let (mut got, mut peak) = (Vec::new(), 0);
        let mut rest = wire;
        loop {
            while !vmc.data().is_empty() || vmc.has_undecoded() {
                if vmc.data().is_empty() {
                    vmc.decode().unwrap();
                }
                let n = take.min(vmc.data().len());
                got.extend_from_slice(&vmc.data()[..n]);
                vmc.consume(n);
                peak = peak.max(vmc.held());
            }
            vmc.control_sent(vmc.control().len());
            assert!(vmc.wants_input());
            if rest.is_empty() {
                return (got, peak);
            }
            let n = step.min(rest.len()).min(READ_CHUNK);
            vmc.read_space()[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            vmc.received(n).unwrap();
            peak = peak.max(vmc.held());
        }
    }

    #[test]
    fn data_and_lz4_pass_whatever_the_reads() {
        let plain: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = message(msg::SPICEVMC_DATA, b"hello ");
        wire.extend(lz4(&plain));
        wire.extend(message(msg::SPICEVMC_DATA, &plain[..1000]));
        let mut expected = b"hello ".to_vec();
        expected.extend_from_slice(&plain);
        expected.extend_from_slice(&plain[..1000]);
        for (step, take) in [(1, 1), (7, 4096), (4096, 3), (READ_CHUNK, 1 << 20)] {
            assert!(run(&wire, step, take).0 == expected, "step {step}, take {take}");
        }
    }

    #[test]
    fn a_read_of_lz4_bombs_is_decoded_one_batch_at_a_time() {
        let bomb = lz4(&vec![0; MAX_DECOMPRESSED as usize]);
        let wire = bomb.repeat(READ_CHUNK / bomb.len());
        let (got, peak) = run(&wire, READ_CHUNK, 64 * 1024);
        assert_eq!(got.len(), wire.len() / bomb.len() * MAX_DECOMPRESSED as usize);
        assert!(peak <= DATA_BATCH + 2 * MAX_DECOMPRESSED as usize, "{peak} bytes held");
    }

    #[test]
    fn no_input_is_wanted_while_control_replies_wait() {
        let wire = codec::ping(1, 2).repeat(MAX_CONTROL_BACKLOG / 18 + 1);
        let mut vmc = Vmc::new(Channel::new(HeaderKind::Mini), &wire).unwrap();
        assert!(vmc.data().is_empty() && !vmc.has_undecoded());
        assert!(!vmc.wants_input());
        vmc.control_sent(vmc.control().len() - 10);
        assert!(vmc.wants_input());
    }

    #[test]
    fn replies_sent_a_little_at_a_time_do_not_pile_up() {
        // The server reads our PONGs slowly: some always wait unsent.
        let pings = codec::ping(1, 2).repeat(1000);
        let mut vmc = Vmc::new(Channel::new(HeaderKind::Mini), &[]).unwrap();
        for _ in 0..200 {
            assert!(vmc.wants_input());
            vmc.read_space()[..pings.len()].copy_from_slice(&pings);
            vmc.received(pings.len()).unwrap();
            vmc.control_sent(vmc.control().len() - 7);
        }
        assert!(vmc.held() < 4 * pings.len(), "{} bytes held", vmc.held());
    }
}
