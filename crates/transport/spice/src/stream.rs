//! [`VmcStream`]: a linked usbredir (spicevmc) channel seen as the plain
//! byte stream inside it, so the usbredir session runs over it with the
//! transport core's one loop ([`vstick_usbredir::run_connection`]).
//!
//! Reading unwraps `SPICEVMC_DATA` (and LZ4 `COMPRESSED_DATA`) messages and
//! answers PINGs; writing wraps the bytes in `SPICEVMC_DATA` messages of at
//! most [`MAX_DATA_CHUNK`] bytes, the header written together with the
//! caller's bytes (vectored, no copy). Control replies (PONG, ACK) go out
//! between data messages, never inside one. The decoding and its memory
//! bound are [`Vmc`]'s: the socket is read again only once what was read
//! is decoded and taken, and not while 64 KiB of replies wait to be sent.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::debug;

use crate::channel::Channel;
use crate::codec::MAX_DATA_CHUNK;
use crate::vmc::Vmc;

/// A usbredir channel as a byte stream. Writes assume `write_all` use: after
/// a partial write the caller offers the rest of the same bytes.
pub struct VmcStream<S> {
    inner: S,
    vmc: Vmc,
    hdr: Vec<u8>,
    hdr_pos: usize,
    owed: usize,
    eof: bool,
    /// The tasks of a read and a write waiting on the inner stream: both
    /// write to it (the reader sends control replies), and a stream keeps
    /// one waker per direction, so a write that went through wakes both
    /// (the reader and a writer may be two tasks, after `tokio::io::split`).
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> VmcStream<S> {
    /// Wraps a linked channel; `first` are bytes that arrived with the link
    /// result (the channel's first messages).
    pub fn new(inner: S, channel: Channel, first: &[u8]) -> io::Result<Self> {
        let vmc = Vmc::new(channel, first).map_err(invalid)?;
        Ok(Self {
            inner,
            vmc,
            hdr: Vec::new(),
            hdr_pos: 0,
            owed: 0,
            eof: false,
            read_waker: None,
            write_waker: None,
        })
    }

    /// Reads until some usbredir bytes are buffered (`true`) or the server
    /// closes the channel (`false`): a held channel is closed right after an
    /// accepted link.
    pub async fn wait_for_data(&mut self) -> io::Result<bool> {
        std::future::poll_fn(|cx| {
            while self.vmc.data().is_empty() {
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
        self.vmc.disconnect_reason()
    }

    /// One step towards usbredir bytes: decode what was received, else one
    /// socket read (once the control backlog allows it).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.vmc.has_undecoded() {
            return Poll::Ready(self.vmc.decode().map_err(invalid));
        }
        // Pending control replies go out between data messages.
        if self.owed == 0
            && let Poll::Ready(Err(e)) = self.poll_ctl(cx, true)
        {
            return Poll::Ready(Err(e));
        }
        if !self.vmc.wants_input() {
            // Woken by the next write that goes through (ours or the writer's).
            self.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut rb = ReadBuf::new(self.vmc.read_space());
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
        let n = rb.filled().len();
        if n == 0 {
            self.eof = true;
            return Poll::Ready(Ok(()));
        }
        self.vmc.received(n).map_err(invalid)?;
        if self.owed == 0 {
            let _ = self.poll_ctl(cx, true)?;
        }
        Poll::Ready(Ok(()))
    }

    /// Writes pending control replies (for the reader's task, or the writer's).
    fn poll_ctl(&mut self, cx: &mut Context<'_>, reader: bool) -> Poll<io::Result<()>> {
        while !self.vmc.control().is_empty() {
            let n = match Pin::new(&mut self.inner).poll_write(cx, self.vmc.control()) {
                Poll::Ready(r) => r?,
                Poll::Pending => return self.parked(cx, reader),
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.vmc.control_sent(n);
            self.wrote();
        }
        Poll::Ready(Ok(()))
    }

    /// A write to the inner stream is pending: keeps the task's waker.
    fn parked<T>(&mut self, cx: &Context<'_>, reader: bool) -> Poll<T> {
        let slot = if reader { &mut self.read_waker } else { &mut self.write_waker };
        *slot = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Bytes went out: the other task may wait on readiness this one took.
    fn wrote(&mut self) {
        for waker in [self.read_waker.take(), self.write_waker.take()].into_iter().flatten() {
            waker.wake();
        }
    }
}

fn invalid(e: crate::channel::ChannelError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

#[cfg(test)]
impl<S> VmcStream<S> {
    /// Bytes held for the server's input beyond the read buffer.
    fn held(&self) -> usize {
        self.vmc.held()
    }
}

impl<S> Drop for VmcStream<S> {
    fn drop(&mut self) {
        let [plain, lz4] = self.vmc.data_messages();
        debug!(plain, lz4, "SPICE usbredir channel closed: data messages received");
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for VmcStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.vmc.data().is_empty() {
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            ready!(this.poll_fill(cx))?;
        }
        let avail = this.vmc.data();
        let n = avail.len().min(buf.remaining());
        buf.put_slice(avail.get(..n).unwrap_or_default());
        this.vmc.consume(n);
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
                ready!(this.poll_ctl(cx, false))?;
                let n = buf.len().min(MAX_DATA_CHUNK);
                this.hdr.clear();
                this.vmc.encode_data_header(n as u32, &mut this.hdr);
                this.hdr_pos = 0;
                this.owed = n;
            }
            let body = buf.get(..this.owed.min(buf.len())).unwrap_or_default();
            let hdr = this.hdr.get(this.hdr_pos..).unwrap_or_default();
            let inner = Pin::new(&mut this.inner);
            let written = if hdr.is_empty() {
                inner.poll_write(cx, body)
            } else {
                inner.poll_write_vectored(cx, &[IoSlice::new(hdr), IoSlice::new(body)])
            };
            let n = match written {
                Poll::Ready(r) => r?,
                Poll::Pending => return this.parked(cx, false),
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let of_hdr = n.min(hdr.len());
            this.wrote();
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
            ready!(this.poll_ctl(cx, false))?;
        }
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.parked(cx, false),
            done => done,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.owed == 0 {
            ready!(this.poll_ctl(cx, false))?;
        }
        match Pin::new(&mut this.inner).poll_shutdown(cx) {
            Poll::Pending => this.parked(cx, false),
            done => done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, HeaderKind, mini as message, msg, msgc};
    use crate::vmc::READ_CHUNK;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn data_is_unwrapped_and_wrapped_and_pings_answered() {
        let (ours, mut server) = tokio::io::duplex(1 << 20);
        let first = message(msg::SPICEVMC_DATA, b"first ");
        let mut s = VmcStream::new(ours, Channel::new(HeaderKind::Mini), &first).unwrap();
        let plain: Vec<u8> = (0..3000u32).map(|i| (i % 13) as u8).collect();
        let mut lz = vec![1u8];
        lz.extend_from_slice(&(plain.len() as u32).to_le_bytes());
        lz.extend_from_slice(&lz4_flex::block::compress(&plain));
        let mut wire = codec::ping(1, 2);
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

    /// One COMPRESSED_DATA message whose LZ4 block expands to
    /// [`MAX_DECOMPRESSED`] zeros (about 4 KiB on the wire).
    fn lz4_bomb() -> Vec<u8> {
        let plain = vec![0u8; codec::MAX_DECOMPRESSED as usize];
        let mut body = vec![1u8];
        body.extend_from_slice(&codec::MAX_DECOMPRESSED.to_le_bytes());
        body.extend_from_slice(&lz4_flex::block::compress(&plain));
        message(msg::SPICEVMC_COMPRESSED_DATA, &body)
    }

    #[tokio::test]
    async fn one_read_of_lz4_bombs_holds_a_bounded_amount() {
        let bomb = lz4_bomb();
        let count = READ_CHUNK / bomb.len();
        let wire = bomb.repeat(count);
        let (ours, mut server) = tokio::io::duplex(2 * READ_CHUNK);
        server.write_all(&wire).await.unwrap();
        drop(server.shutdown().await);
        let mut s = VmcStream::new(ours, Channel::new(HeaderKind::Mini), &[]).unwrap();
        // One byte read: one socket read of the whole 256 KiB.
        let mut byte = [1u8];
        s.read_exact(&mut byte).await.unwrap();
        let first = s.held();
        println!("{} wire bytes of {count} LZ4 messages: {first} bytes held after one read", wire.len());
        let mut total = 1;
        let mut peak = first;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            assert!(buf[..n].iter().all(|&b| b == 0));
            total += n;
            peak = peak.max(s.held());
        }
        assert_eq!(total, count * codec::MAX_DECOMPRESSED as usize, "everything still arrives");
        assert!(first <= 2 << 20 && peak <= 2 << 20, "{first} bytes held after one read, {peak} at the peak");
    }

    /// `count` PINGs, then a DATA message with "x".
    fn pings_then_x(count: u32) -> Vec<u8> {
        let mut wire: Vec<u8> = (0..count).flat_map(|id| codec::ping(id, 7)).collect();
        wire.extend(message(msg::SPICEVMC_DATA, b"x"));
        wire
    }

    #[tokio::test]
    async fn a_server_that_never_reads_cannot_make_us_queue_pongs_without_bound() {
        const PINGS: u32 = 1 << 18; // 4.5 MiB of PINGs, 18 bytes each
        let (ours, server) = tokio::io::duplex(64 * 1024);
        let (mut from_server, mut to_server) = tokio::io::split(server);
        let mut s = VmcStream::new(ours, Channel::new(HeaderKind::Mini), &[]).unwrap();
        let wire = pings_then_x(PINGS);
        let writer = tokio::spawn(async move { to_server.write_all(&wire).await });
        // The server reads none of our PONGs: we stop reading its input.
        let mut byte = [0u8];
        let stuck =
            tokio::time::timeout(std::time::Duration::from_millis(300), s.read_exact(&mut byte)).await;
        let held = s.held();
        println!("{PINGS} PINGs sent, none of the PONGs read: {held} bytes held");
        assert!(stuck.is_err() && held <= 1 << 20, "{held} bytes held ({stuck:?})");
        // Once the server reads, everything moves: every PING is answered.
        let reader = tokio::spawn(async move {
            let mut pongs = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            while pongs.len() < PINGS as usize * 18 {
                let n = from_server.read(&mut buf).await.unwrap();
                assert!(n > 0);
                pongs.extend_from_slice(&buf[..n]);
            }
            pongs.len()
        });
        s.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"x");
        writer.await.unwrap().unwrap();
        s.flush().await.unwrap();
        assert_eq!(reader.await.unwrap(), PINGS as usize * 18);
    }

    #[tokio::test]
    async fn a_read_waiting_on_the_backlog_resumes_after_a_data_message_written_alongside() {
        // The server sends PINGs past the backlog cap and reads nothing yet,
        // while our writer is inside a data message: the reader waits for
        // the writer, then sends the PONGs and reads on.
        let (ours, server) = tokio::io::duplex(16 * 1024);
        let (mut from_server, mut to_server) = tokio::io::split(server);
        let s = VmcStream::new(ours, Channel::new(HeaderKind::Mini), &[]).unwrap();
        let (mut reader, mut writer) = tokio::io::split(s);
        let wire = pings_then_x(20_000);
        let feed = tokio::spawn(async move { to_server.write_all(&wire).await });
        let write = tokio::spawn(async move {
            writer.write_all(&vec![5u8; 200 * 1024]).await.unwrap();
            writer.flush().await.unwrap();
        });
        let read = tokio::spawn(async move {
            let mut byte = [0u8];
            reader.read_exact(&mut byte).await.unwrap();
            byte
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let drain = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while from_server.read(&mut buf).await.unwrap() > 0 {}
        });
        let done = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            feed.await.unwrap().unwrap();
            write.await.unwrap();
            read.await.unwrap()
        })
        .await;
        assert_eq!(done.expect("no deadlock"), *b"x");
        drain.abort();
    }

    #[tokio::test]
    async fn a_channel_closed_after_the_link_has_no_data() {
        let (ours, server) = tokio::io::duplex(1024);
        drop(server);
        let mut s = VmcStream::new(ours, Channel::new(HeaderKind::Mini), &[]).unwrap();
        assert!(!s.wait_for_data().await.unwrap());
    }
}
