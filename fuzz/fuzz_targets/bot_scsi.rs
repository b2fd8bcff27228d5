//! Bulk-Only Transport + SCSI dispatch on memory media, through the USB
//! device model: CBWs (well-formed with arbitrary fields, or raw bytes),
//! data stages of any size, control requests (GET MAX LUN, Bulk-Only reset,
//! CLEAR_FEATURE), port resets and operator media changes in any order.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use vstick_bot::{CBW_SIGNATURE, InResult, OutResult};
use vstick_media::MemoryImage;
use vstick_usb::{ControlResult, EP_IN, EP_OUT, Setup};

#[derive(Debug, Arbitrary)]
enum Op {
    /// A well-formed CBW around an arbitrary CDB.
    Cbw {
        tag: u32,
        length: u32,
        flags: u8,
        lun: u8,
        cb_len: u8,
        cb: [u8; 16],
    },
    /// A CBW with fields the fuzzer picks freely (signature, length, reserved bits).
    RawOut(Vec<u8>),
    /// Data-out bytes of a given length (pattern-filled).
    DataOut {
        len: u16,
        fill: u8,
    },
    /// A bulk IN transfer of `len` bytes.
    In {
        len: u16,
    },
    /// A large bulk IN (up to 1 MiB).
    BigIn {
        kib: u8,
    },
    Control {
        setup: [u8; 8],
        data: Vec<u8>,
    },
    BulkOnlyReset,
    ClearHalt {
        in_ep: bool,
    },
    PortReset,
    Eject {
        lun: u8,
        force: bool,
    },
    Insert {
        lun: u8,
        blocks: u8,
        block_4k: bool,
    },
}

fuzz_target!(|ops: Vec<Op>| {
    let (mut dev, cd) = vstick_fuzz::device();
    let mut buf = Vec::new();
    for op in ops.into_iter().take(256) {
        match op {
            Op::Cbw { tag, length, flags, lun, cb_len, cb } => {
                let mut cbw = Vec::with_capacity(31);
                cbw.extend_from_slice(&CBW_SIGNATURE.to_le_bytes());
                cbw.extend_from_slice(&tag.to_le_bytes());
                cbw.extend_from_slice(&length.to_le_bytes());
                cbw.push(flags & 0x80);
                cbw.push(lun & 0x0f);
                cbw.push((cb_len % 16) + 1);
                cbw.extend_from_slice(&cb);
                out(&mut dev, &cbw);
            }
            Op::RawOut(bytes) => out(&mut dev, &bytes),
            Op::DataOut { len, fill } => out(&mut dev, &vec![fill; usize::from(len)]),
            Op::In { len } => bulk_in(&mut dev, &mut buf, usize::from(len)),
            Op::BigIn { kib } => bulk_in(&mut dev, &mut buf, usize::from(kib) * 4096),
            Op::Control { setup, data } => {
                let setup = Setup::from_bytes(setup);
                let data = if setup.is_in() { &[][..] } else { &data[..] };
                if let ControlResult::Data(reply) = dev.control(&setup, data) {
                    // USB 2.0 §9.3.5: never more than wLength.
                    assert!(reply.len() <= usize::from(setup.length));
                }
            }
            Op::BulkOnlyReset => {
                let setup = Setup { request_type: 0x21, request: 0xFF, value: 0, index: 0, length: 0 };
                let _ = dev.control(&setup, &[]);
            }
            Op::ClearHalt { in_ep } => {
                let ep = if in_ep { EP_IN } else { EP_OUT };
                let setup =
                    Setup { request_type: 0x02, request: 1, value: 0, index: u16::from(ep), length: 0 };
                let _ = dev.control(&setup, &[]);
            }
            Op::PortReset => dev.reset(),
            Op::Eject { lun, force } => {
                let _ = dev.target_mut().eject(lun % 5, force);
            }
            Op::Insert { lun, blocks, block_4k } => {
                let bs: u32 = if block_4k { 4096 } else { 2048 };
                let len = (usize::from(blocks) + 1) * bs as usize;
                let medium = Box::new(MemoryImage::new(len, bs, true));
                let _ = dev.target_mut().insert(lun % 5, medium);
            }
        }
    }
    vstick_fuzz::assert_cd_intact(&cd);
});

fn out(dev: &mut vstick_usb::MassStorageDevice, data: &[u8]) {
    if let OutResult::Accepted(n) = dev.bulk_out(EP_OUT, data) {
        assert!(n <= data.len(), "accepted more than offered");
    }
}

fn bulk_in(dev: &mut vstick_usb::MassStorageDevice, buf: &mut Vec<u8>, len: usize) {
    buf.clear();
    buf.resize(len, 0xA5);
    if let InResult::Data(n) = dev.bulk_in(EP_IN, buf) {
        assert!(n <= len, "sent more than the IN transfer holds");
    }
}
