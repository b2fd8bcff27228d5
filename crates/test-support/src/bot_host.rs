//! [`BotHost`]: a Bulk-Only host driver, one command at a time, as Linux
//! usb-storage or Windows usbstor issue them.

use vstick_bot::{BulkOnly, CBW_LEN, CSW_LEN, Cbw, CommandTarget, Csw, CswStatus, InResult, OutResult};
use vstick_usb::{ControlResult, EP_IN, EP_OUT, MassStorageDevice, Setup};

/// TEST UNIT READY.
pub const TEST_UNIT_READY: [u8; 6] = [0x00, 0, 0, 0, 0, 0];
const REQUEST_SENSE: [u8; 6] = [0x03, 0, 0, 0, 18, 0];

/// READ(10) of `blocks` blocks at `lba`.
pub fn read10(lba: u32, blocks: u16) -> [u8; 10] {
    let [a, b, c, d] = lba.to_be_bytes();
    let [e, f] = blocks.to_be_bytes();
    [0x28, 0, a, b, c, d, 0, e, f, 0]
}

/// WRITE(10) of `blocks` blocks at `lba`.
pub fn write10(lba: u32, blocks: u16) -> [u8; 10] {
    let mut cdb = read10(lba, blocks);
    cdb[0] = 0x2A;
    cdb
}

/// One bulk IN transfer's outcome, as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkIn {
    Data(Vec<u8>),
    Stall,
    /// No answer (yet).
    Pending,
}

impl BulkIn {
    /// The outcome of a transfer into `buf`.
    fn from_transfer(mut buf: Vec<u8>, result: InResult) -> Self {
        match result {
            InResult::Data(n) => {
                assert!(n <= buf.len(), "{n} bytes into a buffer of {}", buf.len());
                buf.truncate(n);
                BulkIn::Data(buf)
            }
            InResult::Stall => BulkIn::Stall,
            InResult::Pending => BulkIn::Pending,
        }
    }
}

/// The bulk pipes of a mass-storage device, however the host reaches them.
pub trait BulkPipes {
    /// One bulk OUT transfer.
    fn bulk_out(&mut self, data: &[u8]) -> OutResult;
    /// One bulk IN transfer of at most `len` bytes.
    fn bulk_in(&mut self, len: usize) -> BulkIn;
    /// CLEAR_FEATURE(ENDPOINT_HALT) on the IN (`dir_in`) or OUT pipe.
    fn clear_halt(&mut self, dir_in: bool);
    /// Queues IN requests of these lengths ahead of the next bulk OUT, as a
    /// pipelining host does; the next `bulk_in` calls take their answers, in
    /// order. Only a transport with request queues can.
    fn post_in(&mut self, lens: &[usize]) {
        let _ = lens;
        unimplemented!("these pipes cannot queue IN requests");
    }
}

/// The BOT state machine and its command target, driven directly.
pub struct BotPipes<T: CommandTarget> {
    pub bot: BulkOnly,
    pub target: T,
}

impl<T: CommandTarget> BotPipes<T> {
    pub fn new(target: T) -> Self {
        Self { bot: BulkOnly::new(), target }
    }

    /// Bulk-Only Mass Storage Reset.
    pub fn reset(&mut self) {
        self.bot.reset(&mut self.target);
    }
}

impl<T: CommandTarget> BulkPipes for BotPipes<T> {
    fn bulk_out(&mut self, data: &[u8]) -> OutResult {
        self.bot.bulk_out(&mut self.target, data)
    }

    fn bulk_in(&mut self, len: usize) -> BulkIn {
        let mut buf = vec![0u8; len];
        let result = self.bot.bulk_in(&mut self.target, &mut buf);
        BulkIn::from_transfer(buf, result)
    }

    fn clear_halt(&mut self, dir_in: bool) {
        self.bot.clear_halt(dir_in);
    }
}

/// The whole USB device, through its endpoints and control requests.
impl<T: CommandTarget> BulkPipes for MassStorageDevice<T> {
    fn bulk_out(&mut self, data: &[u8]) -> OutResult {
        MassStorageDevice::bulk_out(self, EP_OUT, data)
    }

    fn bulk_in(&mut self, len: usize) -> BulkIn {
        let mut buf = vec![0u8; len];
        let result = MassStorageDevice::bulk_in(self, EP_IN, &mut buf);
        BulkIn::from_transfer(buf, result)
    }

    fn clear_halt(&mut self, dir_in: bool) {
        let endpoint = if dir_in { EP_IN } else { EP_OUT };
        let setup = Setup { request_type: 0x02, request: 0x01, value: 0, index: endpoint.into(), length: 0 };
        assert_eq!(self.control(&setup, &[]), ControlResult::Ack, "CLEAR_FEATURE(ENDPOINT_HALT)");
    }
}

/// A command's data stage, as the host expects it (BOT's H and direction).
#[derive(Debug, Clone, Copy)]
pub enum Data<'a> {
    None,
    /// Read `len` bytes in IN transfers of `chunk` bytes (a short one ends the stage).
    In {
        len: u32,
        chunk: usize,
    },
    /// Write `data` in OUT transfers of `chunk` bytes.
    Out {
        data: &'a [u8],
        chunk: usize,
    },
}

impl<'a> Data<'a> {
    /// Read `len` bytes in one IN transfer.
    pub fn read(len: u32) -> Self {
        Data::In { len, chunk: len as usize }
    }

    /// Write `data` in one OUT transfer.
    pub fn write(data: &'a [u8]) -> Self {
        Data::Out { data, chunk: data.len() }
    }
}

/// A host that runs one BOT command at a time over `pipes`: CBW, data stage,
/// CSW, and checks that each step is accepted and the CSW echoes the tag.
pub struct BotHost<P> {
    pub pipes: P,
    /// The last CBW's tag.
    pub tag: u32,
    /// A stalled data stage is cleared (CLEAR_FEATURE) before the CSW is
    /// read, as Linux does (BOT §6.7.2); when false, a stall fails the test.
    pub clear_stalls: bool,
}

impl<P: BulkPipes> BotHost<P> {
    pub fn new(pipes: P) -> Self {
        Self { pipes, tag: 0, clear_stalls: true }
    }

    /// A host for which any stall is a failure.
    pub fn strict(pipes: P) -> Self {
        Self { clear_stalls: false, ..Self::new(pipes) }
    }

    /// CBW, data stage, CSW; returns the data read and the CSW.
    pub fn command(&mut self, lun: u8, cdb: &[u8], data: Data<'_>) -> (Vec<u8>, Csw) {
        self.run(lun, cdb, data, false)
    }

    /// A data-in command whose IN requests (the data's, in one transfer, and
    /// the CSW's) are queued before the CBW, as QEMU may.
    pub fn command_pipelined(&mut self, lun: u8, cdb: &[u8], len: u32) -> (Vec<u8>, Csw) {
        self.run(lun, cdb, Data::read(len), true)
    }

    fn run(&mut self, lun: u8, cdb: &[u8], data: Data<'_>, pipelined: bool) -> (Vec<u8>, Csw) {
        self.tag += 1;
        let (len, dir_in) = match data {
            Data::None => (0, false),
            Data::In { len, .. } => (len, true),
            Data::Out { data, .. } => (u32::try_from(data.len()).unwrap(), false),
        };
        let cbw = Cbw::new(self.tag, len, dir_in, lun, cdb).expect("valid CBW").to_bytes();
        if pipelined {
            let mut lens = vec![CSW_LEN];
            if len > 0 {
                lens.insert(0, len as usize);
            }
            self.pipes.post_in(&lens);
        }
        assert_eq!(self.pipes.bulk_out(&cbw), OutResult::Accepted(CBW_LEN), "CBW accepted");
        let mut read = Vec::new();
        match data {
            Data::None => {}
            Data::In { len, chunk } => {
                while read.len() < len as usize {
                    let want = chunk.min(len as usize - read.len());
                    match self.pipes.bulk_in(want) {
                        BulkIn::Data(got) => {
                            assert!(got.len() <= want, "{} bytes for {want}", got.len());
                            read.extend_from_slice(&got);
                            if got.len() < want {
                                break; // short packet
                            }
                        }
                        BulkIn::Stall => {
                            assert!(self.clear_stalls, "data-in stalled");
                            self.pipes.clear_halt(true);
                            break;
                        }
                        BulkIn::Pending => panic!("data-in pending"),
                    }
                }
            }
            Data::Out { data, chunk } => {
                for piece in data.chunks(chunk.max(1)) {
                    match self.pipes.bulk_out(piece) {
                        OutResult::Accepted(n) => assert_eq!(n, piece.len(), "data-out accepted"),
                        OutResult::Stall => {
                            assert!(self.clear_stalls, "data-out stalled");
                            self.pipes.clear_halt(false);
                            break;
                        }
                    }
                }
            }
        }
        let csw = match self.pipes.bulk_in(CSW_LEN) {
            BulkIn::Data(csw) => csw,
            other => panic!("CSW: {other:?}"),
        };
        assert_eq!(csw.len(), CSW_LEN);
        let csw = Csw::parse(&csw).expect("valid CSW");
        assert_eq!(csw.tag, self.tag, "tag echoed");
        (read, csw)
    }

    /// REQUEST SENSE: (sense key, ASC, ASCQ).
    pub fn sense(&mut self, lun: u8) -> (u8, u8, u8) {
        let (s, csw) = self.command(lun, &REQUEST_SENSE, Data::In { len: 18, chunk: 512 });
        assert_eq!(csw.status, CswStatus::Passed);
        (s[2] & 0x0F, s[12], s[13])
    }

    /// Clears the power-on (or reset) unit attention the way a driver does,
    /// and checks that the unit is then ready.
    pub fn ready(&mut self, lun: u8) {
        let (_, csw) = self.command(lun, &TEST_UNIT_READY, Data::None);
        if csw.status == CswStatus::Failed {
            assert_eq!(self.sense(lun), (0x06, 0x29, 0x00), "unit attention: power on or reset");
        }
        assert_eq!(self.command(lun, &TEST_UNIT_READY, Data::None).1.status, CswStatus::Passed);
    }
}
