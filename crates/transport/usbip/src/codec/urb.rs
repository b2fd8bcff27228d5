//! The URB phase: CMD_SUBMIT / CMD_UNLINK from the client, RET_SUBMIT /
//! RET_UNLINK from the server.

use super::*;

/// `usbip_header_basic`, the first 20 bytes of every URB-phase header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrbBasic {
    /// Request number chosen by the client; a reply carries its request's.
    pub seqnum: u32,
    /// `(busnum << 16) | devnum` from a client; 0 from a server.
    pub devid: u32,
    /// Used by the client only; 0 from a server.
    pub direction: Direction,
    /// Endpoint number without the direction bit; 0 from a server and in UNLINK.
    pub ep: u32,
}

impl UrbBasic {
    /// The basic header a server puts on its replies (usbip_protocol.rst:
    /// devid, direction and ep "shall be set to 0").
    pub fn reply(seqnum: u32) -> Self {
        Self { seqnum, devid: 0, direction: Direction::OUT, ep: 0 }
    }

    fn write(&self, command: UrbCommand, h: &mut [u8; URB_HEADER_LEN]) {
        put_u32(h, 0x00, command.0);
        put_u32(h, 0x04, self.seqnum);
        put_u32(h, 0x08, self.devid);
        put_u32(h, 0x0C, self.direction.0);
        put_u32(h, 0x10, self.ep);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, Short> {
        Ok(Self { seqnum: r.u32()?, devid: r.u32()?, direction: Direction(r.u32()?), ep: r.u32()? })
    }
}

fn put_u32(h: &mut [u8; URB_HEADER_LEN], at: usize, value: u32) {
    if let Some(field) = h.get_mut(at..at + 4) {
        field.copy_from_slice(&value.to_be_bytes());
    }
}

fn check_length(length: u32) -> Result<(), CodecError> {
    if length > MAX_TRANSFER_LENGTH {
        return Err(CodecError::TransferTooLong { length, max: MAX_TRANSFER_LENGTH });
    }
    Ok(())
}

/// USBIP_CMD_SUBMIT header; OUT data (`transfer_buffer_length` bytes) follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmdSubmit {
    /// Command, seqnum, devid, direction and endpoint.
    pub basic: UrbBasic,
    /// Linux URB `transfer_flags` (URB_SHORT_NOT_OK, URB_ZERO_PACKET, ...).
    pub transfer_flags: u32,
    /// Bytes of data to send (OUT) or room for data to receive (IN).
    pub transfer_buffer_length: u32,
    /// Isochronous start frame; 0 otherwise.
    pub start_frame: i32,
    /// 0 (Linux vhci) or -1 (usbip_protocol.rst) for non-isochronous URBs.
    pub number_of_packets: i32,
    /// Polling interval for interrupt and isochronous URBs.
    pub interval: i32,
    /// Raw USB setup packet for control transfers, zeros otherwise.
    pub setup: [u8; 8],
}

impl CmdSubmit {
    /// The 48-byte header.
    pub fn to_bytes(&self) -> [u8; URB_HEADER_LEN] {
        let mut h = [0u8; URB_HEADER_LEN];
        self.basic.write(UrbCommand::CMD_SUBMIT, &mut h);
        put_u32(&mut h, 0x14, self.transfer_flags);
        put_u32(&mut h, 0x18, self.transfer_buffer_length);
        put_u32(&mut h, 0x1C, self.start_frame as u32);
        put_u32(&mut h, 0x20, self.number_of_packets as u32);
        put_u32(&mut h, 0x24, self.interval as u32);
        if let Some(setup) = h.get_mut(0x28..0x30) {
            setup.copy_from_slice(&self.setup);
        }
        h
    }

    /// Header then `data`, which must be `transfer_buffer_length` bytes for
    /// an OUT URB and empty for IN.
    pub fn encode(&self, data: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
        out.extend_from_slice(data);
    }
}

/// USBIP_CMD_UNLINK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmdUnlink {
    /// Command and the unlink request's own seqnum.
    pub basic: UrbBasic,
    /// The seqnum of the CMD_SUBMIT to cancel.
    pub unlink_seqnum: u32,
}

impl CmdUnlink {
    /// The 48-byte header.
    pub fn to_bytes(&self) -> [u8; URB_HEADER_LEN] {
        let mut h = [0u8; URB_HEADER_LEN];
        self.basic.write(UrbCommand::CMD_UNLINK, &mut h);
        put_u32(&mut h, 0x14, self.unlink_seqnum);
        h
    }
}

/// USBIP_RET_SUBMIT header; IN data (`actual_length` bytes) follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetSubmit {
    /// Command and the seqnum of the CMD_SUBMIT answered.
    pub basic: UrbBasic,
    /// 0 or a negative errno ([`errno`]).
    pub status: i32,
    /// Bytes actually transferred.
    pub actual_length: u32,
    /// Isochronous start frame; 0 otherwise.
    pub start_frame: i32,
    /// Isochronous packet count; 0 (or -1) otherwise.
    pub number_of_packets: i32,
    /// Isochronous packets that failed; 0 otherwise.
    pub error_count: i32,
}

impl RetSubmit {
    /// The 48-byte header.
    pub fn to_bytes(&self) -> [u8; URB_HEADER_LEN] {
        let mut h = [0u8; URB_HEADER_LEN];
        self.basic.write(UrbCommand::RET_SUBMIT, &mut h);
        put_u32(&mut h, 0x14, self.status as u32);
        put_u32(&mut h, 0x18, self.actual_length);
        put_u32(&mut h, 0x1C, self.start_frame as u32);
        put_u32(&mut h, 0x20, self.number_of_packets as u32);
        put_u32(&mut h, 0x24, self.error_count as u32);
        // 0x28..0x30: padding, zero.
        h
    }

    /// Header then `data`, which must be `actual_length` bytes for an IN URB and empty for OUT.
    pub fn encode(&self, data: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
        out.extend_from_slice(data);
    }
}

/// USBIP_RET_UNLINK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetUnlink {
    /// Command and the seqnum of the CMD_UNLINK answered.
    pub basic: UrbBasic,
    /// -ECONNRESET if the URB was cancelled, 0 if it had already completed.
    pub status: i32,
}

impl RetUnlink {
    /// The 48-byte header.
    pub fn to_bytes(&self) -> [u8; URB_HEADER_LEN] {
        let mut h = [0u8; URB_HEADER_LEN];
        self.basic.write(UrbCommand::RET_UNLINK, &mut h);
        put_u32(&mut h, 0x14, self.status as u32);
        h
    }
}

/// A URB-phase message from the client; OUT data borrows the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage<'a> {
    /// CMD_SUBMIT.
    Submit {
        /// The header.
        cmd: CmdSubmit,
        /// OUT data; empty for IN.
        data: &'a [u8],
    },
    /// CMD_UNLINK.
    Unlink(CmdUnlink),
}

impl ClientMessage<'_> {
    /// Appends the message's wire bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ClientMessage::Submit { cmd, data } => cmd.encode(data, out),
            ClientMessage::Unlink(cmd) => out.extend_from_slice(&cmd.to_bytes()),
        }
    }

    /// Length of the message at the start of `buf` once its 48-byte header
    /// is in (`Ok(None)` before): the header plus a CMD_SUBMIT's OUT data,
    /// capped at [`MAX_TRANSFER_LENGTH`] before any of it is buffered.
    pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, CodecError> {
        let Some(header) = buf.get(..URB_HEADER_LEN) else {
            return Ok(None);
        };
        let field =
            |at: usize| header.get(at..at + 4).and_then(|b| b.try_into().ok()).map_or(0, u32::from_be_bytes);
        match UrbCommand(field(0x00)) {
            UrbCommand::CMD_SUBMIT => {
                let length = field(0x18);
                check_length(length)?;
                match Direction(field(0x0C)) {
                    Direction::OUT => {
                        Ok(Some(URB_HEADER_LEN + usize::try_from(length).unwrap_or(usize::MAX)))
                    }
                    Direction::IN => Ok(Some(URB_HEADER_LEN)),
                    other => Err(CodecError::BadDirection(other)),
                }
            }
            UrbCommand::CMD_UNLINK => Ok(Some(URB_HEADER_LEN)),
            other => Err(CodecError::UnknownCommand(other)),
        }
    }

    /// Decodes the message at the start of `buf`. The length cap is enforced
    /// as soon as the 48-byte header is complete, before waiting for (or
    /// buffering) any OUT data.
    pub fn decode(buf: &[u8]) -> Result<Decoded<ClientMessage<'_>>, CodecError> {
        finish((|| {
            let mut r = Reader::new(buf);
            let header: [u8; URB_HEADER_LEN] = r.array()?;
            let mut h = Reader::new(&header);
            let command = UrbCommand(h.u32()?);
            let basic = UrbBasic::read(&mut h)?;
            let message = match command {
                UrbCommand::CMD_SUBMIT => {
                    let cmd = CmdSubmit {
                        basic,
                        transfer_flags: h.u32()?,
                        transfer_buffer_length: h.u32()?,
                        start_frame: h.i32()?,
                        number_of_packets: h.i32()?,
                        interval: h.i32()?,
                        setup: h.array()?,
                    };
                    check_length(cmd.transfer_buffer_length)?;
                    let data_len = match basic.direction {
                        Direction::OUT => cmd.transfer_buffer_length,
                        Direction::IN => 0,
                        other => return Err(CodecError::BadDirection(other).into()),
                    };
                    let data = r.take(usize::try_from(data_len).unwrap_or(usize::MAX))?;
                    ClientMessage::Submit { cmd, data }
                }
                UrbCommand::CMD_UNLINK => ClientMessage::Unlink(CmdUnlink { basic, unlink_seqnum: h.u32()? }),
                other => return Err(CodecError::UnknownCommand(other).into()),
            };
            Ok((message, r.consumed))
        })())
    }
}

/// A URB-phase message from the server; IN data borrows the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage<'a> {
    /// RET_SUBMIT.
    Submit {
        /// The header.
        ret: RetSubmit,
        /// IN data; empty for OUT.
        data: &'a [u8],
    },
    /// RET_UNLINK.
    Unlink(RetUnlink),
}

impl ServerMessage<'_> {
    /// Appends the message's wire bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ServerMessage::Submit { ret, data } => ret.encode(data, out),
            ServerMessage::Unlink(ret) => out.extend_from_slice(&ret.to_bytes()),
        }
    }

    /// Decodes the message at the start of `buf`; for clients and tests. A
    /// RET_SUBMIT does not say its own direction (the server sends 0), so
    /// `is_in(seqnum)` tells whether the request was IN, i.e. whether
    /// `actual_length` bytes of data follow.
    pub fn decode(buf: &[u8], is_in: impl Fn(u32) -> bool) -> Result<Decoded<ServerMessage<'_>>, CodecError> {
        finish((|| {
            let mut r = Reader::new(buf);
            let header: [u8; URB_HEADER_LEN] = r.array()?;
            let mut h = Reader::new(&header);
            let command = UrbCommand(h.u32()?);
            let basic = UrbBasic::read(&mut h)?;
            let message = match command {
                UrbCommand::RET_SUBMIT => {
                    let ret = RetSubmit {
                        basic,
                        status: h.i32()?,
                        actual_length: h.u32()?,
                        start_frame: h.i32()?,
                        number_of_packets: h.i32()?,
                        error_count: h.i32()?,
                    };
                    check_length(ret.actual_length)?;
                    let data_len = if is_in(basic.seqnum) { ret.actual_length } else { 0 };
                    let data = r.take(usize::try_from(data_len).unwrap_or(usize::MAX))?;
                    ServerMessage::Submit { ret, data }
                }
                UrbCommand::RET_UNLINK => ServerMessage::Unlink(RetUnlink { basic, status: h.i32()? }),
                other => return Err(CodecError::UnknownCommand(other).into()),
            };
            Ok((message, r.consumed))
        })())
    }
}
