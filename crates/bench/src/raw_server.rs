//! The physical limit of the loopback path: a "device" that answers the same
//! usbredir frames with the same byte counts and does nothing else (no
//! parsing beyond the length fields, no BOT, no SCSI, no file I/O; IN data
//! comes from one preallocated buffer). What vstick adds on top of this is
//! its own cost.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

use crate::redir_client::FORMAT;

const BULK_PACKET: u32 = 101;

/// Serves one connection on `listener` until the peer closes it.
pub fn serve_one(listener: &TcpListener, max_transfer: usize) -> io::Result<()> {
    let (stream, _) = listener.accept()?;
    stream.set_nodelay(true)?;
    serve(stream, max_transfer)
}

fn serve(mut stream: TcpStream, max_transfer: usize) -> io::Result<()> {
    let header_len = FORMAT.header_len();
    let prefix = header_len + 10;
    let mut rbuf = vec![0u8; max_transfer + prefix];
    // The reply buffer: a bulk prefix patched per reply, then the IN data.
    let mut reply = vec![0x5Au8; max_transfer + prefix];
    loop {
        let header = &mut rbuf[..header_len];
        match stream.read_exact(header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let ty = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let length = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let id: [u8; 8] = header[8..16].try_into().unwrap_or_default();
        if ty != BULK_PACKET || length < 10 || length > rbuf.len() - header_len {
            return Err(io::Error::other(format!("raw server: unexpected packet type {ty} length {length}")));
        }
        stream.read_exact(&mut rbuf[header_len..header_len + length])?;
        let th = &rbuf[header_len..header_len + 10];
        let endpoint = th[0];
        let requested =
            u16::from_le_bytes([th[2], th[3]]) as usize | (u16::from_le_bytes([th[8], th[9]]) as usize) << 16;
        // IN: `requested` bytes of data; OUT: the length taken, no data.
        let data_len = if endpoint & 0x80 != 0 { requested.min(max_transfer) } else { 0 };
        let done = if endpoint & 0x80 != 0 { data_len } else { length - 10 };
        let out = &mut reply[..prefix];
        out[0..4].copy_from_slice(&BULK_PACKET.to_le_bytes());
        out[4..8].copy_from_slice(&((10 + data_len) as u32).to_le_bytes());
        out[8..16].copy_from_slice(&id);
        out[16] = endpoint;
        out[17] = 0; // success
        out[18..20].copy_from_slice(&(done as u16).to_le_bytes());
        out[20..24].copy_from_slice(&0u32.to_le_bytes());
        out[24..26].copy_from_slice(&((done >> 16) as u16).to_le_bytes());
        // A CSW must say "passed": byte 12 of the 13 is already 0x5A, so
        // write a proper one for 13-byte requests.
        if data_len == 13 {
            reply[prefix..prefix + 13].copy_from_slice(&[b'U', b'S', b'B', b'S', 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        } else if data_len > 0 {
            reply[prefix] = 0x5A;
        }
        stream.write_all(&reply[..prefix + data_len])?;
    }
}
