//! [`HeldIn`]: bulk IN requests the device cannot answer yet, FIFO per endpoint.

use std::collections::VecDeque;

/// Most bulk IN requests held per connection; the protocol refuses more
/// (usbredir answers `inval`, USB/IP closes the connection). QEMU and Linux
/// keep a few in flight; thousands mean a broken or hostile peer.
pub const MAX_HELD_IN: usize = 4096;

/// A held bulk IN request: what the core needs to answer it, and the
/// protocol's own `tag` (its id) to frame the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldRequest<T> {
    /// The endpoint address it reads from (0x81; USB/IP may give 0x01).
    pub endpoint: u8,
    /// The most data the peer accepts in the reply (capped by the protocol).
    pub length: u32,
    /// The protocol's id of the request.
    pub tag: T,
}

impl<T> HeldRequest<T> {
    /// [`HeldRequest::length`] as a `usize`.
    pub fn max_len(&self) -> usize {
        usize::try_from(self.length).unwrap_or(0)
    }
}

/// The queue is at [`MAX_HELD_IN`]; the request was not held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// Held bulk IN requests, one FIFO per endpoint number (a NAK: neither
/// protocol has a timeout, the request waits until the device has data or
/// the peer cancels it).
#[derive(Debug)]
pub struct HeldIn<T> {
    queues: [VecDeque<HeldRequest<T>>; 16],
    count: usize,
}

impl<T> Default for HeldIn<T> {
    fn default() -> Self {
        Self { queues: Default::default(), count: 0 }
    }
}

impl<T: Copy> HeldIn<T> {
    /// Holds `request` behind earlier ones of its endpoint.
    pub fn push(&mut self, request: HeldRequest<T>) -> Result<(), QueueFull> {
        if self.count >= MAX_HELD_IN {
            return Err(QueueFull);
        }
        // `& 0x0f` keeps the index below the array's 16 entries.
        if let Some(queue) = self.queues.get_mut(usize::from(request.endpoint & 0x0f)) {
            queue.push_back(request);
            self.count += 1;
        }
        Ok(())
    }

    /// Requests held, all endpoints.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Removes and returns the first held request matching `which` (a cancel
    /// or unlink by id).
    pub fn remove_first(&mut self, which: impl Fn(&HeldRequest<T>) -> bool) -> Option<HeldRequest<T>> {
        for queue in &mut self.queues {
            if let Some(pos) = queue.iter().position(&which) {
                let found = queue.remove(pos);
                if found.is_some() {
                    self.count -= 1;
                }
                return found;
            }
        }
        None
    }

    /// Removes every held request matching `which`, oldest first per endpoint
    /// (a reset or reconfiguration ends them).
    pub fn remove_all(&mut self, which: impl Fn(&HeldRequest<T>) -> bool) -> Vec<HeldRequest<T>> {
        let mut gone = Vec::new();
        for queue in &mut self.queues {
            let (out, kept): (VecDeque<_>, VecDeque<_>) = std::mem::take(queue).into_iter().partition(&which);
            *queue = kept;
            gone.extend(out);
        }
        self.count -= gone.len();
        gone
    }

    /// The oldest request of endpoint queue `index` (0..16).
    pub(crate) fn front(&self, index: usize) -> Option<HeldRequest<T>> {
        self.queues.get(index).and_then(VecDeque::front).copied()
    }

    pub(crate) fn pop(&mut self, index: usize) {
        if let Some(queue) = self.queues.get_mut(index)
            && queue.pop_front().is_some()
        {
            self.count -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(endpoint: u8, id: u32) -> HeldRequest<u32> {
        HeldRequest { endpoint, length: 512, tag: id }
    }

    #[test]
    fn fifo_per_endpoint_with_a_bound_and_removal() {
        let mut held = HeldIn::default();
        held.push(req(0x81, 1)).unwrap();
        held.push(req(0x82, 2)).unwrap();
        held.push(req(0x81, 3)).unwrap();
        assert_eq!(held.len(), 3);
        assert_eq!(held.front(1), Some(req(0x81, 1)));
        assert_eq!(held.remove_first(|r| r.tag == 3), Some(req(0x81, 3)));
        assert_eq!(held.remove_all(|r| r.endpoint == 0x81), vec![req(0x81, 1)]);
        assert_eq!(held.len(), 1);
        held.pop(2);
        assert!(held.is_empty());
        for i in 0..MAX_HELD_IN {
            held.push(req(0x81, i as u32)).unwrap();
        }
        assert_eq!(held.push(req(0x81, 0)), Err(QueueFull));
    }
}
