//! In-process host simulation for the target's tests.

mod construction;
mod disk;
mod firmware;
mod media_change;
mod optical;
mod props;
mod provisioning;
mod unit_attention;
mod windows;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use vstick_media::{BlockBackend, MediaLocation, MemoryImage};

use crate::{DataStage, LunConfig, LunKind, Sense, Status, Target};

/// What one command did, seen from the host.
#[derive(Debug)]
pub struct Reply {
    pub stage: DataStage,
    pub data: Vec<u8>,
    pub status: Status,
}

impl Reply {
    #[track_caller]
    pub fn good(self) -> Vec<u8> {
        assert_eq!(self.status, Status::Good, "expected GOOD, got {self:?}");
        self.data
    }
}

pub struct Host {
    pub target: Target,
    /// Size of each data_in / data_out call, like a transport's packets.
    pub chunk: usize,
}

impl Host {
    pub fn new(luns: Vec<LunConfig>) -> Self {
        Self { target: Target::new(luns), chunk: 512 }
    }

    /// A target whose LUNs have had their power-on unit attention cleared.
    pub fn ready(luns: Vec<LunConfig>) -> Self {
        let mut h = Self::new(luns);
        for lun in 0..h.target.lun_count() as u8 {
            h.clear_ua(lun);
        }
        h
    }

    /// Runs a command with no data-out; reads every byte of a data-in stage.
    pub fn cmd(&mut self, lun: u8, cdb: &[u8]) -> Reply {
        let stage = self.target.begin(lun, cdb);
        let mut data = Vec::new();
        if let DataStage::In(n) = stage {
            let mut left = n as usize;
            while left > 0 {
                let mut buf = vec![0u8; self.chunk.min(left)];
                self.target.data_in(&mut buf);
                data.extend_from_slice(&buf);
                left -= buf.len();
            }
        }
        assert!(!matches!(stage, DataStage::Out(_)), "unexpected data-out stage for {cdb:02X?}");
        let status = self.target.end();
        Reply { stage, data, status }
    }

    /// Runs a command that takes `out` as its data-out stage (as much as the target wants).
    pub fn cmd_out(&mut self, lun: u8, cdb: &[u8], out: &[u8]) -> Reply {
        let stage = self.target.begin(lun, cdb);
        if let DataStage::Out(n) = stage {
            let n = (n as usize).min(out.len());
            for piece in out[..n].chunks(self.chunk) {
                self.target.data_out(piece);
            }
        }
        let status = self.target.end();
        Reply { stage, data: Vec::new(), status }
    }

    /// REQUEST SENSE: (key, asc, ascq).
    pub fn sense(&mut self, lun: u8) -> (u8, u8, u8) {
        let d = self.cmd(lun, &[0x03, 0, 0, 0, 18, 0]).good();
        assert_eq!(d.len(), 18);
        assert_eq!(d[0], 0x70, "fixed format, current");
        assert_eq!(d[7], 0x0A, "additional length");
        (d[2], d[12], d[13])
    }

    /// Asserts CHECK CONDITION with no data stage, then that REQUEST SENSE reports `want`.
    #[track_caller]
    pub fn expect_check(&mut self, lun: u8, cdb: &[u8], want: Sense) {
        let r = self.cmd(lun, cdb);
        assert_eq!(r.status, Status::CheckCondition, "{cdb:02X?}: {r:?}");
        assert_eq!(r.stage, DataStage::None, "{cdb:02X?}: no data stage on failure");
        assert_eq!(self.sense(lun), (want.key, want.asc, want.ascq), "{cdb:02X?}");
    }

    /// Reads pending unit attentions until REQUEST SENSE says NO SENSE.
    pub fn clear_ua(&mut self, lun: u8) -> Vec<(u8, u8, u8)> {
        let mut seen = Vec::new();
        loop {
            let s = self.sense(lun);
            if s == (0, 0, 0) {
                return seen;
            }
            seen.push(s);
            assert!(seen.len() < 10, "unit attentions never end");
        }
    }

    pub fn tur(&mut self, lun: u8) -> Status {
        self.cmd(lun, &TUR).status
    }
}

pub const TUR: [u8; 6] = [0x00, 0, 0, 0, 0, 0];

pub fn disk(blocks: u64, block_size: u32, read_only: bool) -> LunConfig {
    let image = MemoryImage::new((blocks * u64::from(block_size)) as usize, block_size, read_only);
    LunConfig { kind: LunKind::Disk, medium: Some(Box::new(image)), serial: "DISK0001".into() }
}

pub fn optical(blocks: u64) -> LunConfig {
    LunConfig {
        kind: LunKind::Optical,
        medium: Some(Box::new(Sparse::new(blocks, 2048))),
        serial: "CD000001".into(),
    }
}

pub fn empty(kind: LunKind) -> LunConfig {
    LunConfig { kind, medium: None, serial: "EMPTY001".into() }
}

/// The byte a [`Sparse`] medium holds at `offset`.
pub fn pattern(offset: u64) -> u8 {
    (offset % 251) as u8 ^ (offset >> 33) as u8
}

/// A medium of any size without storage: reads return [`pattern`], writes are
/// counted and dropped.
pub struct Sparse {
    blocks: u64,
    block_size: u32,
    pub written: Arc<AtomicUsize>,
}

impl Sparse {
    pub fn new(blocks: u64, block_size: u32) -> Self {
        Self { blocks, block_size, written: Arc::default() }
    }
}

impl BlockBackend for Sparse {
    fn block_size(&self) -> u32 {
        self.block_size
    }
    fn block_count(&self) -> u64 {
        self.blocks
    }
    fn read_only(&self) -> bool {
        false
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = pattern(offset + i as u64);
        }
        Ok(())
    }
    fn write_at(&self, _offset: u64, data: &[u8]) -> io::Result<()> {
        self.written.fetch_add(data.len(), Ordering::Relaxed);
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
    fn location(&self) -> MediaLocation {
        MediaLocation::File("sparse.img".into())
    }
}

/// A shared in-memory medium that counts flushes and can be made to fail.
#[derive(Clone)]
pub struct Shared {
    pub image: Arc<MemoryImage>,
    pub flushes: Arc<AtomicUsize>,
    pub fail: Arc<Mutex<Failures>>,
}

#[derive(Default, Clone, Copy)]
pub struct Failures {
    pub read: bool,
    pub write: bool,
    pub flush: bool,
}

impl Shared {
    pub fn new(blocks: u64, block_size: u32) -> Self {
        let data: Vec<u8> = (0..blocks * u64::from(block_size)).map(pattern).collect();
        Self {
            image: Arc::new(MemoryImage::from_bytes(data, block_size, false)),
            flushes: Arc::default(),
            fail: Arc::default(),
        }
    }

    pub fn config(&self) -> LunConfig {
        LunConfig { kind: LunKind::Disk, medium: Some(Box::new(self.clone())), serial: "SHARED01".into() }
    }

    pub fn flushes(&self) -> usize {
        self.flushes.load(Ordering::Relaxed)
    }

    pub fn set_fail(&self, f: Failures) {
        *self.fail.lock().unwrap() = f;
    }
}

impl BlockBackend for Shared {
    fn block_size(&self) -> u32 {
        self.image.block_size()
    }
    fn block_count(&self) -> u64 {
        self.image.block_count()
    }
    fn read_only(&self) -> bool {
        false
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if self.fail.lock().unwrap().read {
            return Err(io::Error::other("injected read error"));
        }
        self.image.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.fail.lock().unwrap().write {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        self.image.write_at(offset, data)
    }
    fn flush(&self) -> io::Result<()> {
        if self.fail.lock().unwrap().flush {
            return Err(io::Error::other("injected flush error"));
        }
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn location(&self) -> MediaLocation {
        MediaLocation::Memory
    }
}

/// CDB builders.
pub fn read10(lba: u32, blocks: u16) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let n = blocks.to_be_bytes();
    [0x28, 0, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0]
}

pub fn write10(lba: u32, blocks: u16, fua: bool) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let n = blocks.to_be_bytes();
    [0x2A, if fua { 0x08 } else { 0 }, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0]
}

pub fn read16(lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x88;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

pub fn read_capacity16(alloc: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x9E;
    c[1] = 0x10;
    c[10..14].copy_from_slice(&alloc.to_be_bytes());
    c
}

pub fn gesn(alloc: u16) -> [u8; 10] {
    let a = alloc.to_be_bytes();
    [0x4A, 0x01, 0, 0, 0x10, 0, 0, a[0], a[1], 0]
}

pub fn get_configuration(rt: u8, start: u16, alloc: u16) -> [u8; 10] {
    let s = start.to_be_bytes();
    let a = alloc.to_be_bytes();
    [0x46, rt, s[0], s[1], 0, 0, 0, a[0], a[1], 0]
}

pub fn start_stop(loej: bool, start: bool) -> [u8; 6] {
    [0x1B, 0, 0, 0, (u8::from(loej) << 1) | u8::from(start), 0]
}

pub fn prevent(on: bool) -> [u8; 6] {
    [0x1E, 0, 0, 0, u8::from(on), 0]
}

/// (event code, media status) from an 8-byte GESN response.
pub fn media_event(h: &mut Host, lun: u8) -> (u8, u8) {
    let d = h.cmd(lun, &gesn(8)).good();
    assert_eq!(d.len(), 8);
    assert_eq!(&d[..4], &[0, 6, 4, 0x10], "media class header");
    (d[4], d[5])
}

/// Current profile from GET CONFIGURATION.
pub fn current_profile(h: &mut Host, lun: u8) -> u16 {
    let d = h.cmd(lun, &get_configuration(0, 0, 8)).good();
    u16::from_be_bytes([d[6], d[7]])
}
