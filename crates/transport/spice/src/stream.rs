//! [`VmcStream`]: a linked usbredir (spicevmc) channel seen as the plain
//! byte stream inside it, so the usbredir session runs over it with the
//! transport core's one loop ([`vstick_usbredir::run_connection`]).
//!
//! Reading unwraps `SPICEVMC_DATA` (and LZ4 `COMPRESSED_DATA`) messages and
//! answers PINGs; writing wraps the bytes in `SPICEVMC_DATA` messages of at
//! most [`MAX_DATA_CHUNK`] bytes, the header written together with the
//! caller's bytes (vectored, no copy). Control replies (PONG, ACK) go out
//! between data messages, never inside one.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::debug;

use crate::channel::{Channel, ChannelError};
use crate::codec::{self, MAX_DATA_CHUNK, msg, msgc};

/// Socket read size.
const READ_CHUNK: usize = 256 * 1024;

/// A usbredir channel as a byte stream. Writes assume `write_all` use: after
/// a partial write the caller offers the rest of the same bytes.
pub struct VmcStream<S> {
    inner: S,
    channel: Channel,
    rbuf: Box<[u8]>,
    data: Vec<u8>,
    data_pos: usize,
    ctl: Vec<u8>,
    ctl_pos: usize,
    hdr: Vec<u8>,
    hdr_pos: usize,
    owed: usize,
    eof: bool,
    /// DATA and COMPRESSED_DATA messages received (logged at the end).
    received: [u64; 2],
}

impl<S: AsyncRead + AsyncWrite + Unpin> VmcStream<S> {
    /// Wraps a linked channel; `first` are bytes that arrived with the link
    /// result (the channel's first messages).
    pub fn new(inner: S, channel: Channel, first: &[u8]) -> io::Result<Self> {
        let mut s = Self {
            inner,
            channel,
            rbuf: vec![0; READ_CHUNK].into_boxed_slice(),
            data: Vec::new(),
            data_pos: 0,
            ctl: Vec::new(),
            ctl_pos: 0,
            hdr: Vec::new(),
            hdr_pos: 0,
            owed: 0,
            eof: false,
            received: [0; 2],
        };
        s.take_in(first.len(), Some(first))?;
        Ok(s)
    }

    /// Reads until some usbredir bytes are buffered (`true`) or the server
    /// closes the channel (`false`): a held channel is closed right after an
    /// accepted link.
    pub async fn wait_for_data(&mut self) -> io::Result<bool> {
        std::future::poll_fn(|cx| {
            while self.data_pos == self.data.len() {
                if self.eof {
                    return Poll::Ready(Ok(false));
                }
                ready!(self.poll_fill(cx))?;
            }
            Poll::Ready(Ok(true))
        })
        .await
    }

    /// The reason code of the server's DISCONNECTING, if it sent one.
    pub fn disconnect_reason(&self) -> Option<u32> {
        self.channel.disconnect_reason()
    }

    /// Runs `n` received bytes (in `rbuf`, or `from`) through the channel.
    fn take_in(&mut self, n: usize, from: Option<&[u8]>) -> io::Result<()> {
        if self.data_pos == self.data.len() {
            self.data.clear();
            self.data_pos = 0;
        }
        let input = match from {
            Some(bytes) => bytes,
            None => self.rbuf.get(..n).unwrap_or_default(),
        };
        let data = &mut self.data;
        let received = &mut self.received;
        self.channel
            .receive(input, &mut self.ctl, |m| -> Result<(), ChannelError> {
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
                Ok(())
            })
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// One socket read into the channel.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Pending control replies go out between data messages.
        if self.owed == 0
            && let Poll::Ready(Err(e)) = self.poll_ctl(cx)
        {
            return Poll::Ready(Err(e));
        }
        let mut rb = ReadBuf::new(&mut self.rbuf);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
        let n = rb.filled().len();
        if n == 0 {
            self.eof = true;
            return Poll::Ready(Ok(()));
        }
        self.take_in(n, None)?;
        if self.owed == 0 {
            let _ = self.poll_ctl(cx)?;
        }
        Poll::Ready(Ok(()))
    }

    /// Writes pending control replies.
    fn poll_ctl(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.ctl_pos < self.ctl.len() {
            let n = ready!(
                Pin::new(&mut self.inner).poll_write(cx, self.ctl.get(self.ctl_pos..).unwrap_or_default())
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.ctl_pos += n;
        }
        self.ctl.clear();
        self.ctl_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S> Drop for VmcStream<S> {
    fn drop(&mut self) {
        let [plain, lz4] = self.received;
        debug!(plain, lz4, "SPICE usbredir channel closed: data messages received");
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for VmcStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.data_pos == this.data.len() {
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            ready!(this.poll_fill(cx))?;
        }
        let avail = this.data.get(this.data_pos..).unwrap_or_default();
        let n = avail.len().min(buf.remaining());
        buf.put_slice(avail.get(..n).unwrap_or_default());
        this.data_pos += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for VmcStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            if this.owed == 0 {
                ready!(this.poll_ctl(cx))?;
                let n = buf.len().min(MAX_DATA_CHUNK);
                this.hdr.clear();
                this.channel.encode_header(msgc::SPICEVMC_DATA, n as u32, &mut this.hdr);
                this.hdr_pos = 0;
                this.owed = n;
            }
            let body = buf.get(..this.owed.min(buf.len())).unwrap_or_default();
            let hdr = this.hdr.get(this.hdr_pos..).unwrap_or_default();
            let inner = Pin::new(&mut this.inner);
            let n = if hdr.is_empty() {
                ready!(inner.poll_write(cx, body))?
            } else {
                ready!(inner.poll_write_vectored(cx, &[IoSlice::new(hdr), IoSlice::new(body)]))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let of_hdr = n.min(hdr.len());
            this.hdr_pos += of_hdr;
            let of_body = n - of_hdr;
            this.owed -= of_body;
            if of_body > 0 {
                return Poll::Ready(Ok(of_body));
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.owed == 0 {
            ready!(this.poll_ctl(cx))?;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.owed == 0 {
            ready!(this.poll_ctl(cx))?;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::mini as message;
    use crate::codec::HeaderKind;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn data_is_unwrapped_and_wrapped_and_pings_answered() {
        let (ours, mut server) = tokio::io::duplex(1 << 20);
        let first = message(msg::SPICEVMC_DATA, b"first ");
        let mut s = VmcStream::new(ours, Channel::new(HeaderKind::Mini), &first).unwrap();
        let mut ping = 1u32.to_le_bytes().to_vec();
        ping.extend_from_slice(&2u64.to_le_bytes());
        let plain: Vec<u8> = (0..3000u32).map(|i| (i % 13) as u8).collect();
        let mut lz = vec![1u8];
        lz.extend_from_slice(&(plain.len() as u32).to_le_bytes());
        lz.extend_from_slice(&lz4_flex::block::compress(&plain));
        let mut wire = message(msg::PING, &ping);
        wire.extend(message(msg::SPICEVMC_DATA, b"second"));
        wire.extend(message(msg::SPICEVMC_COMPRESSED_DATA, &lz));
        server.write_all(&wire).await.unwrap();
        drop(server.shutdown().await);
        let mut got = vec![0u8; 12 + plain.len()];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..12], b"first second");
        assert_eq!(&got[12..], &plain[..]);

        // 150 KiB written: three DATA messages (64 + 64 + 22 KiB), after the PONG.
        let out: Vec<u8> = (0..150 * 1024u32).map(|i| i as u8).collect();
        s.write_all(&out).await.unwrap();
        s.flush().await.unwrap();
        let mut expected = message(msgc::PONG, &codec::pong_body(1, 2));
        for chunk in out.chunks(MAX_DATA_CHUNK) {
            expected.extend(message(msgc::SPICEVMC_DATA, chunk));
        }
        drop(s);
        let mut seen = Vec::new();
        server.read_to_end(&mut seen).await.unwrap();
        assert!(seen == expected, "the wire differs ({} bytes, {} expected)", seen.len(), expected.len());
    }

    #[tokio::test]
    async fn a_channel_closed_after_the_link_has_no_data() {
        let (ours, server) = tokio::io::duplex(1024);
        drop(server);
        let mut s = VmcStream::new(ours, Channel::new(HeaderKind::Mini), &[]).unwrap();
        assert!(!s.wait_for_data().await.unwrap());
    }
}
