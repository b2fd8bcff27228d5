//! The endpoint driver (the gadget edge's core) against a model of a USB
//! device controller: a read completes when full or on a short packet, and
//! takes packets of whatever the host sends next, so a read that reaches
//! past a stage swallows the next CBW, as on a real UDC. The host is
//! test-support's Bulk-Only host.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use vstick_bot::{CSW_LEN, CswStatus, OutResult};
use vstick_test_support::{BLOCK, BotHost, BulkIn, BulkPipes, CountingDevice, Data, device, read10, write10};
use vstick_transport::{ENDPOINT_CHUNK, EndpointDriver, EndpointIo, OUT_READS};
use vstick_usb::{ControlResult, EP_IN, EP_OUT, MassStorageDevice, Setup, UsbDevice, request, request_type};

/// High-speed bulk max packet size.
const MPS: usize = 512;
/// Steps the driver gets to answer one host transfer.
const STEPS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    PostRead(usize),
    ReadDone(usize),
    Write(usize),
    Halt(u8),
    /// The device wrote a kept OUT to the medium.
    Deferred,
}

type Log = Rc<RefCell<Vec<Ev>>>;

/// The controller: posted reads, the host's OUT packets not yet taken, the
/// queued IN writes, halts.
#[derive(Default)]
struct Udc {
    log: Log,
    /// Packets the host sent that no read has taken (the UDC NAKs them).
    packets: VecDeque<Vec<u8>>,
    /// Posted reads: (length, bytes so far, complete).
    reads: VecDeque<(usize, Vec<u8>, bool)>,
    writes: VecDeque<Vec<u8>>,
    halted: [bool; 2],
}

impl Udc {
    /// Moves the host's packets into the posted reads, oldest first.
    fn transfer(&mut self) {
        for read in self.reads.iter_mut() {
            while !read.2 {
                let Some(packet) = self.packets.pop_front() else { return };
                let short = packet.len() < MPS;
                read.1.extend_from_slice(&packet);
                assert!(read.1.len() <= read.0, "a {}-byte read got {} bytes", read.0, read.1.len());
                read.2 = short || read.1.len() == read.0;
            }
        }
    }
}

impl EndpointIo for Udc {
    fn max_packet_size(&mut self) -> usize {
        MPS
    }
    fn post_read(&mut self, len: usize) -> io::Result<()> {
        let udc = self;
        assert!(udc.reads.len() < OUT_READS, "more than {OUT_READS} reads posted");
        assert!(len > 0 && len <= ENDPOINT_CHUNK, "read of {len}");
        udc.log.borrow_mut().push(Ev::PostRead(len));
        udc.reads.push_back((len, Vec::new(), false));
        udc.transfer();
        Ok(())
    }
    fn completed_read(&mut self, _timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        let udc = self;
        udc.transfer();
        if !udc.reads.front().is_some_and(|r| r.2) {
            return Ok(None);
        }
        let (_, data, _) = udc.reads.pop_front().unwrap();
        udc.log.borrow_mut().push(Ev::ReadDone(data.len()));
        Ok(Some(data))
    }
    fn write_room(&mut self, _timeout: Duration) -> io::Result<bool> {
        Ok(self.writes.len() < 8)
    }
    fn queue_write(&mut self, data: Vec<u8>) -> io::Result<()> {
        let udc = self;
        udc.log.borrow_mut().push(Ev::Write(data.len()));
        udc.writes.push_back(data);
        Ok(())
    }
    fn flush_writes(&mut self, _timeout: Duration) -> io::Result<bool> {
        Ok(self.writes.is_empty())
    }
    fn halt(&mut self, endpoint: u8) -> io::Result<()> {
        let udc = self;
        if endpoint == EP_IN {
            assert!(udc.writes.is_empty(), "a UDC refuses to halt IN with writes queued");
        }
        udc.halted[usize::from(endpoint != EP_IN)] = true;
        udc.log.borrow_mut().push(Ev::Halt(endpoint));
        Ok(())
    }
    fn cancel_reads(&mut self) {
        self.reads.clear();
    }
    fn cancel_writes(&mut self) {
        self.writes.clear();
    }
}

/// The host's bulk pipes through the controller model and the driver.
struct Pipes {
    udc: Udc,
    driver: EndpointDriver,
    dev: CountingDevice<MassStorageDevice>,
    log: Log,
}

impl Pipes {
    fn new() -> Self {
        let log = Log::default();
        let mut dev = device();
        assert!(dev.set_configuration(1));
        let udc = Udc { log: log.clone(), ..Udc::default() };
        let mut dev = CountingDevice::new(dev);
        let deferred = log.clone();
        dev.on_deferred = Some(Box::new(move || deferred.borrow_mut().push(Ev::Deferred)));
        Self { udc, driver: EndpointDriver::new(), dev, log }
    }

    fn step(&mut self) {
        self.driver.step(&mut self.udc, &mut &mut self.dev, Duration::ZERO).expect("driver step");
    }

    fn halts(&self) -> usize {
        self.log.borrow().iter().filter(|e| matches!(e, Ev::Halt(_))).count()
    }
}

impl BulkPipes for Pipes {
    /// One OUT transfer in packets (the last one short, or none); done once
    /// the reads took all of it and the driver handed it on.
    fn bulk_out(&mut self, data: &[u8]) -> OutResult {
        if self.udc.halted[1] {
            return OutResult::Stall;
        }
        self.udc.packets.extend(data.chunks(MPS).map(<[u8]>::to_vec));
        for _ in 0..STEPS {
            self.step();
            let udc = &self.udc;
            if udc.packets.is_empty() && !udc.reads.iter().any(|r| r.2) {
                return OutResult::Accepted(data.len());
            }
        }
        panic!("the controller NAKs the host's data for ever: {:?}", self.log.borrow());
    }

    /// One IN transfer of up to `len` bytes: the queued writes' packets
    /// until `len` bytes or a short packet.
    fn bulk_in(&mut self, len: usize) -> BulkIn {
        let mut got = Vec::new();
        for _ in 0..STEPS {
            if self.udc.halted[0] {
                return if got.is_empty() { BulkIn::Stall } else { BulkIn::Data(got) };
            }
            while let Some(mut write) = self.udc.writes.pop_front() {
                let room = len - got.len();
                if write.len() > room {
                    let rest = write.split_off(room);
                    self.udc.writes.push_front(rest);
                }
                let short = write.len() % MPS != 0;
                got.extend_from_slice(&write);
                if short || got.len() == len {
                    return BulkIn::Data(got);
                }
            }
            self.step();
        }
        BulkIn::Pending
    }

    fn clear_halt(&mut self, dir_in: bool) {
        self.udc.halted[usize::from(!dir_in)] = false;
    }
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed) % 251) as u8).collect()
}

#[test]
fn writes_and_reads_of_every_size_arrive_whole() {
    let mut host = BotHost::strict(Pipes::new());
    host.ready(0);
    // 1 MiB in one transfer (four 256 KiB reads), an odd multi-chunk size,
    // a small write below the lending size, and one block.
    for (lba, blocks, chunk) in
        [(0u32, 2048u16, 1 << 20), (0, 1027, 1 << 20), (100, 3, 65536), (2047, 1, 512)]
    {
        let data = pattern(usize::from(blocks) * BLOCK, lba as usize + usize::from(blocks));
        let (_, csw) = host.command(0, &write10(lba, blocks), Data::Out { data: &data, chunk });
        assert_eq!((csw.status, csw.residue), (CswStatus::Passed, 0), "write of {blocks} at {lba}");
        let (read, csw) =
            host.command(0, &read10(lba, blocks), Data::In { len: data.len() as u32, chunk: 1 << 20 });
        assert_eq!((csw.status, csw.residue), (CswStatus::Passed, 0), "read of {blocks} at {lba}");
        assert!(read == data, "{blocks} blocks at {lba} read back as written");
    }
    let log = host.pipes.log.borrow();
    // Never a read past what the device expects: a CBW read is one packet.
    assert!(log.iter().all(|e| !matches!(e, Ev::PostRead(n) if *n > ENDPOINT_CHUNK)));
    assert!(log.contains(&Ev::PostRead(MPS)), "CBWs read a packet at a time");
}

#[test]
fn the_next_read_is_posted_before_a_kept_write_reaches_the_medium() {
    let mut host = BotHost::strict(Pipes::new());
    host.ready(0);
    host.pipes.log.borrow_mut().clear();
    let data = pattern(1 << 20, 3);
    let (_, csw) = host.command(0, &write10(0, 2048), Data::Out { data: &data, chunk: 1 << 20 });
    assert_eq!(csw.status, CswStatus::Passed);
    let log = host.pipes.log.borrow().clone();
    let chunk = ENDPOINT_CHUNK;
    assert_eq!(log.iter().filter(|e| **e == Ev::ReadDone(chunk)).count(), 4, "{log:?}");
    assert_eq!(log.iter().filter(|e| **e == Ev::Deferred).count(), 4, "every chunk was lent: {log:?}");
    // Two reads in flight at the start of the stage.
    let first_done = log.iter().position(|e| *e == Ev::ReadDone(chunk)).unwrap();
    assert_eq!(log[..first_done].iter().filter(|e| **e == Ev::PostRead(chunk)).count(), OUT_READS, "{log:?}");
    // Each of the first two chunks' writes comes after the read of a later
    // chunk was posted (the last two chunks were posted already).
    let deferred: Vec<usize> =
        log.iter().enumerate().filter(|(_, e)| **e == Ev::Deferred).map(|(i, _)| i).collect();
    for &at in &deferred[..2] {
        let done = log[..at].iter().rposition(|e| matches!(e, Ev::ReadDone(_))).unwrap();
        assert!(
            log[done..at].contains(&Ev::PostRead(chunk)),
            "a read posted before the write at {at}: {log:?}"
        );
    }
    // The CSW goes out after the last write.
    let csw_at = log.iter().rposition(|e| *e == Ev::Write(CSW_LEN)).unwrap();
    assert!(csw_at > *deferred.last().unwrap(), "{log:?}");
}

#[test]
fn a_bot_stall_is_put_on_the_bus_once_then_the_csw_follows() {
    // Case 8 (Hi <> Do): the host expects data in, the command writes.
    let mut host = BotHost::new(Pipes::new());
    host.ready(0);
    let (read, csw) = host.command(0, &write10(0, 1), Data::In { len: 512, chunk: 512 });
    assert!(read.is_empty());
    assert_eq!(csw.status, CswStatus::PhaseError);
    assert_eq!(host.pipes.log.borrow().iter().filter(|e| **e == Ev::Halt(EP_IN)).count(), 1);
    assert_eq!(host.pipes.halts(), 1);
    host.ready(0);
}

#[test]
fn a_wedged_device_is_halted_once_and_recovers_after_a_bulk_only_reset() {
    let mut pipes = Pipes::new();
    // An invalid CBW (§6.6.1): both endpoints halt until a Reset Recovery.
    assert_eq!(pipes.bulk_out(&[0u8; 31]), OutResult::Accepted(31));
    for _ in 0..STEPS {
        pipes.step();
    }
    {
        let log = pipes.log.borrow();
        assert_eq!(log.iter().filter(|e| **e == Ev::Halt(EP_IN)).count(), 1, "{log:?}");
        assert_eq!(log.iter().filter(|e| **e == Ev::Halt(EP_OUT)).count(), 1, "{log:?}");
    }
    // The host clears the halts at the controller: the device is still
    // wedged, the driver does not halt again, and takes no CBW.
    pipes.clear_halt(true);
    pipes.clear_halt(false);
    for _ in 0..STEPS {
        pipes.step();
    }
    assert_eq!(pipes.halts(), 2);
    assert!(pipes.driver.posted_reads().next().is_none(), "no read while wedged");
    // Reset Recovery: Bulk-Only reset on ep0, then CLEAR_FEATURE at the controller.
    let reset = Setup {
        request_type: request_type::CLASS_INTERFACE_OUT,
        request: request::BULK_ONLY_RESET,
        value: 0,
        index: 0,
        length: 0,
    };
    assert_eq!(pipes.dev.control(&reset, &[]), ControlResult::Ack);
    let mut host = BotHost::strict(pipes);
    host.ready(0);
    assert_eq!(host.pipes.halts(), 2, "no halt after the reset");
}
