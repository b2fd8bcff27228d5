//! [`Output`]: the bytes a session queues for its peer, filled in place.

/// Output waiting to be sent is bounded: held IN requests are answered only
/// while less than this is queued. A few bytes of requests could otherwise
/// turn into gigabytes of replies in one call (many 64 MiB IN requests, then
/// a CBW whose data stage is 4 GiB of padding). A batch is thus at most this
/// plus one reply and the small replies to one received chunk; the edge sends
/// it and asks for the next ([`crate::Connection::poll_transmit`]).
pub const MAX_PENDING_OUTPUT: usize = 8 * 1024 * 1024;

/// A buffer grown past this by one large batch is released afterwards.
pub const KEEP_BUFFER: usize = 16 * 1024 * 1024;

/// An output buffer whose bytes past the queued ones stay initialised, so a
/// reply can be written straight into it (IN data read from the medium)
/// without zeroing its room first. Only growth past the high-water mark is
/// zeroed, once; `clear` keeps the room.
#[derive(Debug, Default)]
pub struct Output {
    /// `buf[..len]` is queued; `buf[len..]` is initialised spare room.
    buf: Vec<u8>,
    len: usize,
    /// Small packets are encoded here, then copied in (encoders append to a
    /// `Vec`, which would drop the spare room).
    scratch: Vec<u8>,
}

impl Output {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The queued bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Number of queued bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether held IN requests must wait for this output to be sent.
    pub fn is_full(&self) -> bool {
        self.len >= MAX_PENDING_OUTPUT
    }

    /// Forgets the queued bytes (they were sent), keeping the room unless a
    /// large batch grew it past [`KEEP_BUFFER`].
    pub fn clear(&mut self) {
        self.len = 0;
        if self.buf.len() > KEEP_BUFFER {
            self.buf = Vec::new();
        }
    }

    /// Forgets the first `n` queued bytes (a partial send).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Moves the queued bytes out as a `Vec` (tests, simple callers).
    pub fn take(&mut self) -> Vec<u8> {
        let bytes = self.as_slice().to_vec();
        self.len = 0;
        bytes
    }

    /// Exchanges contents with `other` (both keep their spare room: the
    /// edge's buffer and the session's alternate).
    pub fn swap(&mut self, other: &mut Output) {
        std::mem::swap(&mut self.buf, &mut other.buf);
        std::mem::swap(&mut self.len, &mut other.len);
    }

    /// Appends `bytes`.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.room(bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    /// Appends what `encode` appends to an (empty) `Vec`: for encoders that
    /// write small packets into a `Vec`.
    pub fn push_with<E>(&mut self, encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<(), E> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let result = encode(&mut scratch);
        if result.is_ok() {
            self.extend_from_slice(&scratch);
        }
        self.scratch = scratch;
        result
    }

    /// `n` bytes of room after the queued bytes, not yet queued: write into
    /// it, then [`Output::commit`] what was written. Zeroes only growth past
    /// the buffer's high-water mark. `None` only if `n` overflows `usize`.
    pub fn room(&mut self, n: usize) -> Option<&mut [u8]> {
        let end = self.len.checked_add(n)?;
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        self.buf.get_mut(self.len..end)
    }

    /// Queues `n` bytes written into [`Output::room`] (cut to the room there is).
    pub fn commit(&mut self, n: usize) {
        self.len = (self.len + n).min(self.buf.len());
    }

    /// Bytes of room initialised so far (for tests that count what was zeroed).
    pub fn initialised(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_zeroed_once_and_kept_across_clear_and_swap() {
        let mut out = Output::new();
        out.extend_from_slice(b"hdr");
        let room = out.room(8).unwrap();
        room[..2].copy_from_slice(b"ab");
        out.commit(2);
        assert_eq!(out.as_slice(), b"hdrab");
        assert_eq!(out.initialised(), 11);
        out.clear();
        assert!(out.is_empty());
        // The room is still there: no new zeroing for a reply of the same size.
        out.room(11).unwrap();
        assert_eq!(out.initialised(), 11);
        let mut edge = Output::new();
        out.extend_from_slice(b"xyz");
        out.swap(&mut edge);
        assert_eq!(edge.as_slice(), b"xyz");
        assert!(out.is_empty());
        edge.consume(1);
        assert_eq!(edge.as_slice(), b"yz");
        assert_eq!(edge.take(), b"yz".to_vec());
        assert!(edge.is_empty());
    }

    #[test]
    fn push_with_appends_only_on_success() {
        let mut out = Output::new();
        out.push_with(|v| {
            v.extend_from_slice(b"ok");
            Ok::<(), ()>(())
        })
        .unwrap();
        let _ = out.push_with(|v| {
            v.extend_from_slice(b"no");
            Err(())
        });
        assert_eq!(out.as_slice(), b"ok");
    }

    #[test]
    fn a_huge_batch_is_released_on_clear() {
        let mut out = Output::new();
        out.room(KEEP_BUFFER + 1).unwrap();
        out.commit(KEEP_BUFFER + 1);
        out.clear();
        assert_eq!(out.initialised(), 0);
    }
}
