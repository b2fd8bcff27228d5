//! A blocking usbredir usb-guest (QEMU's side of the protocol), just enough to
//! drive Bulk-Only Transport commands the way Linux usb-storage does: CBW,
//! data, CSW, each waiting for the previous one to complete.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use vstick_bot::Cbw;
use vstick_usbredir::codec;
use vstick_usbredir::proto::{BulkHeader, Caps, Packet, Status, WireFormat, version_field};

/// The capabilities QEMU 7.2's usb-redir needs on an xHCI port (and the
/// 64-bit ids that every current peer has).
pub const GUEST_CAPS: Caps = Caps(
    Caps::CONNECT_DEVICE_VERSION.0
        | Caps::EP_INFO_MAX_PACKET_SIZE.0
        | Caps::IDS_64BIT.0
        | Caps::BULK_LENGTH_32BIT.0,
);
/// The wire format against a peer with [`GUEST_CAPS`] or more.
pub const FORMAT: WireFormat = WireFormat {
    ids_64bit: true,
    connect_device_version: true,
    ep_info_max_packet_size: true,
    bulk_streams: false,
    bulk_length_32bit: true,
};

/// Bulk OUT and IN endpoints of the device (vstick's addresses).
pub const EP_OUT: u8 = 0x02;
pub const EP_IN: u8 = 0x81;
/// Logical block size of the disk the commands address.
pub const BLOCK: u32 = 512;

/// One usb-guest connection.
pub struct RedirClient {
    stream: TcpStream,
    fmt: WireFormat,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    next_id: u64,
    tag: u32,
    /// `Some(n)`: receive like QEMU's chardev does, at most `n` bytes per
    /// recv, each after a poll (QEMU's socket chardev reads 4 KiB per main
    /// loop iteration, `CHR_READ_BUF_LEN`).
    read_chunk: Option<usize>,
}

impl RedirClient {
    /// Connects and exchanges hellos; returns once the device is attached
    /// (device_connect received).
    pub fn connect(addr: SocketAddr, max_transfer: usize) -> io::Result<Self> {
        let mut c = Self::connect_raw(addr, max_transfer)?;
        c.fmt = WireFormat::INITIAL;
        let hello = Packet::Hello { version: version_field("vstick-bench"), caps: vec![GUEST_CAPS.0] };
        c.send(0, &hello)?;
        loop {
            let len = c.read_frame()?;
            let frame = codec::decode(c.fmt, c.rbuf.get(..len).unwrap_or_default())
                .map_err(io::Error::other)?
                .ok_or_else(|| io::Error::other("short frame"))?
                .0;
            match frame.packet {
                Packet::Hello { caps, .. } => {
                    c.fmt = WireFormat::negotiate(GUEST_CAPS, Caps(caps.first().copied().unwrap_or(0)));
                }
                Packet::DeviceConnect(_) => {
                    // A fresh device reports a power-on/reset unit attention
                    // to its first command (SPC-4 §5.14); take it with TEST
                    // UNIT READY and REQUEST SENSE, as Linux does.
                    let _ = c.command(&[0x00; 6], None, 0);
                    c.command(&[0x03, 0, 0, 0, 18, 0], None, 18)?;
                    return Ok(c);
                }
                _ => {}
            }
        }
    }

    /// Connects without a handshake, already in [`FORMAT`] (for the raw
    /// loopback server, which has none).
    pub fn connect_raw(addr: SocketAddr, max_transfer: usize) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let frame_max = max_transfer + 64;
        Ok(Self {
            stream,
            fmt: FORMAT,
            rbuf: vec![0; frame_max],
            wbuf: Vec::with_capacity(frame_max),
            next_id: 1,
            tag: 0,
            read_chunk: None,
        })
    }

    /// Receives at most `chunk` bytes per poll + recv from now on (`None`:
    /// whole frames with blocking reads).
    pub fn set_read_chunk(&mut self, chunk: Option<usize>) {
        self.read_chunk = chunk;
    }

    fn read_into(&mut self, from: usize, to: usize) -> io::Result<()> {
        let Some(chunk) = self.read_chunk else {
            let buf = self.rbuf.get_mut(from..to).ok_or_else(|| io::Error::other("rbuf"))?;
            return self.stream.read_exact(buf);
        };
        let mut at = from;
        while at < to {
            let mut fds = [PollFd::new(self.stream.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::NONE).map_err(io::Error::from)?;
            let end = to.min(at + chunk);
            let buf = self.rbuf.get_mut(at..end).ok_or_else(|| io::Error::other("rbuf"))?;
            match self.stream.read(buf)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => at += n,
            }
        }
        Ok(())
    }

    fn send(&mut self, id: u64, packet: &Packet<'_>) -> io::Result<()> {
        self.wbuf.clear();
        codec::encode(self.fmt, id, packet, &mut self.wbuf).map_err(io::Error::other)?;
        self.stream.write_all(&self.wbuf)
    }

    /// Reads one whole frame into `rbuf`; returns its length.
    fn read_frame(&mut self) -> io::Result<usize> {
        let header_len = self.fmt.header_len();
        self.read_into(0, header_len)?;
        let h = self.rbuf.get(4..8).ok_or_else(|| io::Error::other("rbuf"))?;
        let length = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let total = header_len + length;
        if total > self.rbuf.len() {
            self.rbuf.resize(total, 0);
        }
        self.read_into(header_len, total)?;
        Ok(total)
    }

    /// One bulk transfer; returns the completed length (OUT: bytes taken,
    /// IN: bytes received, left at the start of the receive buffer's data).
    fn bulk(&mut self, endpoint: u8, out: &[u8], in_len: u32) -> io::Result<u32> {
        let id = self.next_id;
        self.next_id += 1;
        let length = if endpoint & 0x80 != 0 { in_len } else { out.len() as u32 };
        let hdr = BulkHeader { endpoint, status: Status::SUCCESS, length, stream_id: 0 };
        self.send(id, &Packet::Bulk(hdr, out))?;
        let len = self.read_frame()?;
        let (frame, _) = codec::decode(self.fmt, self.rbuf.get(..len).unwrap_or_default())
            .map_err(io::Error::other)?
            .ok_or_else(|| io::Error::other("short frame"))?;
        match frame.packet {
            Packet::Bulk(reply, _) if frame.id == id && reply.status == Status::SUCCESS => Ok(reply.length),
            other => Err(io::Error::other(format!("unexpected reply to bulk {id}: {other:?}"))),
        }
    }

    /// One SCSI command through BOT: CBW, optional data stage, CSW. `out`
    /// is the data-out stage; `in_len` the data-in length (0 for none).
    pub fn command(&mut self, cdb: &[u8], out: Option<&[u8]>, in_len: u32) -> io::Result<()> {
        self.tag = self.tag.wrapping_add(1);
        let (len, dir_in) = match out {
            Some(d) => (d.len() as u32, false),
            None => (in_len, true),
        };
        let cbw =
            Cbw::new(self.tag, len, dir_in, 0, cdb).ok_or_else(|| io::Error::other("bad CDB"))?.to_bytes();
        self.bulk(EP_OUT, &cbw, 0)?;
        if let Some(data) = out {
            self.bulk(EP_OUT, data, 0)?;
        } else if in_len > 0 {
            let got = self.bulk(EP_IN, &[], in_len)?;
            if got != in_len {
                return Err(io::Error::other(format!("short data-in: {got} of {in_len}")));
            }
        }
        let csw_len = self.bulk(EP_IN, &[], 13)?;
        let csw = self.rbuf.get(self.fmt.header_len() + 10..).unwrap_or_default();
        if csw_len != 13 || csw.get(12) != Some(&0) {
            return Err(io::Error::other("command failed (CSW status not Passed)"));
        }
        Ok(())
    }

    /// READ(10) of `bytes` at logical block `lba`.
    pub fn read10(&mut self, lba: u32, bytes: u32) -> io::Result<()> {
        self.command(&rw10(0x28, lba, bytes), None, bytes)
    }

    /// WRITE(10) of `data` at logical block `lba`.
    pub fn write10(&mut self, lba: u32, data: &[u8]) -> io::Result<()> {
        self.command(&rw10(0x2A, lba, data.len() as u32), Some(data), 0)
    }
}

/// A READ(10)/WRITE(10) CDB (SBC-4 §5.16, §5.41).
fn rw10(opcode: u8, lba: u32, bytes: u32) -> [u8; 10] {
    let [l0, l1, l2, l3] = lba.to_be_bytes();
    let [b0, b1] = u16::try_from(bytes / BLOCK).unwrap_or(u16::MAX).to_be_bytes();
    [opcode, 0, l0, l1, l2, l3, 0, b0, b1, 0]
}
