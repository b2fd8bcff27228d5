//! Encoding and total decoding of usbredir packets (little-endian, packed).
//!
//! [`decode`] takes whatever bytes have arrived and answers "a packet and how
//! many bytes it used", "need more", or an error; it never panics and never
//! allocates from a peer-controlled length (payloads borrow from the input,
//! and the packet length is capped before anyone buffers it).

use crate::proto::{
    BufferedBulkHeader, BulkHeader, ControlHeader, DeviceConnect, EndpointType, EpInfo, InterfaceInfo,
    Packet, PacketType, SmallDataHeader, Speed, Status, WireFormat,
};

/// Largest bulk transfer the C parser accepts (`MAX_BULK_TRANSFER_SIZE`).
pub const MAX_BULK_TRANSFER: u32 = 128 * 1024 * 1024;

/// Largest `usb_redir_header.length` accepted: 128 MiB of data plus 1 KiB for
/// type headers, the C parser's `MAX_PACKET_SIZE`. Checked as soon as the
/// header has arrived, before anything is buffered for the payload.
pub const MAX_PACKET_LEN: u32 = MAX_BULK_TRANSFER + 1024;

/// Capability words kept from a hello; later words are skipped (the C parser
/// keeps one), so a huge hello cannot make us allocate.
pub const MAX_CAP_WORDS: usize = 16;

/// A decoded packet and its header id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The header id: the peer's tag for a request, echoed in its reply
    /// (32 bits on the wire unless `64bits_ids` was negotiated).
    pub id: u64,
    /// The type header and data, by packet type.
    pub packet: Packet<'a>,
}

/// Why bytes from the peer are not a valid usbredir packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The header's packet type is not one this parser knows (held here).
    #[error("unknown usbredir packet type {0}")]
    UnknownType(u32),
    /// A length field is over its limit: the header length over
    /// [`MAX_PACKET_LEN`], or a bulk or buffered bulk data length over
    /// [`MAX_BULK_TRANSFER`].
    #[error("{packet_type} packet of {length} bytes exceeds the {max}-byte limit")]
    TooLong {
        /// The header's packet type.
        packet_type: PacketType,
        /// The length the peer announced.
        length: u32,
        /// The limit it exceeds.
        max: u32,
    },
    /// The header length is shorter than the type header, or longer for a
    /// type that carries no data after it.
    #[error("{packet_type} packet length {length} is invalid (type header is {type_header} bytes{})",
        if *allows_data { ", plus data" } else { ", no data allowed" })]
    BadLength {
        /// The header's packet type.
        packet_type: PacketType,
        /// The header's length field: bytes after the header.
        length: u32,
        /// Size of this type's type header under the negotiated capabilities.
        type_header: usize,
        /// Whether this type may carry data after its type header.
        allows_data: bool,
    },
    /// An interface_info packet whose `interface_count` (held here) exceeds
    /// the 32 entries of its arrays.
    #[error("interface_info announces {0} interfaces (at most 32)")]
    TooManyInterfaces(u32),
    /// A data packet carries data whose size differs from the length in its
    /// type header (data may be absent, e.g. in a request for IN data).
    #[error("{packet_type} header says {header_length} bytes but carries {data_len} bytes of data")]
    DataLengthMismatch {
        /// The header's packet type.
        packet_type: PacketType,
        /// The data length the type header announces.
        header_length: u32,
        /// Bytes of data actually following the type header.
        data_len: usize,
    },
    /// A filter_filter packet's rule string is empty or does not end in a NUL.
    #[error("filter_filter data is not a NUL-terminated string")]
    FilterNotTerminated,
    /// The type header is shorter than its fields need.
    #[error("{packet_type} type header ends early: {missing} bytes short")]
    Truncated {
        /// The header's packet type.
        packet_type: PacketType,
        /// How many more bytes the fields needed.
        missing: usize,
    },
}

/// Why a packet could not be encoded (a bug in the caller, not the peer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The id (held here) needs more than 32 bits, but `64bits_ids` was not
    /// negotiated.
    #[error("id {0:#x} does not fit the negotiated 32-bit header id")]
    IdTooLarge(u64),
    /// A bulk_packet length (held here) over 0xFFFF, but `32bits_bulk_length`
    /// was not negotiated.
    #[error("bulk length {0} needs 32bits_bulk_length, which was not negotiated")]
    BulkLengthTooLarge(u32),
    /// Type header and data of a packet of this type exceed the header's
    /// 32-bit length field.
    #[error("{0} packet does not fit a u32 length")]
    PacketTooLarge(PacketType),
    /// An interface_info `interface_count` (held here) over 32, the size of
    /// its arrays.
    #[error("interface_info count {0} exceeds 32")]
    TooManyInterfaces(u32),
    /// The destination given to [`write_bulk_prefix`] is not exactly
    /// [`bulk_prefix_len`] bytes.
    #[error("destination slice too small for the {0} prefix")]
    PrefixSlice(PacketType),
}

/// Size of the type-specific header of `ty` under `fmt`, `None` for unknown
/// types (usbredirparser `get_type_header_len`).
pub fn type_header_len(fmt: WireFormat, ty: PacketType) -> Option<usize> {
    Some(match ty {
        PacketType::HELLO => 64,
        PacketType::DEVICE_CONNECT => {
            if fmt.connect_device_version {
                10
            } else {
                8
            }
        }
        PacketType::INTERFACE_INFO => 132,
        PacketType::EP_INFO => {
            if fmt.bulk_streams {
                288
            } else if fmt.ep_info_max_packet_size {
                160
            } else {
                96
            }
        }
        PacketType::DEVICE_DISCONNECT
        | PacketType::RESET
        | PacketType::GET_CONFIGURATION
        | PacketType::CANCEL_DATA_PACKET
        | PacketType::FILTER_REJECT
        | PacketType::FILTER_FILTER
        | PacketType::DEVICE_DISCONNECT_ACK => 0,
        PacketType::SET_CONFIGURATION
        | PacketType::GET_ALT_SETTING
        | PacketType::STOP_ISO_STREAM
        | PacketType::START_INTERRUPT_RECEIVING
        | PacketType::STOP_INTERRUPT_RECEIVING => 1,
        PacketType::CONFIGURATION_STATUS
        | PacketType::SET_ALT_SETTING
        | PacketType::ISO_STREAM_STATUS
        | PacketType::INTERRUPT_RECEIVING_STATUS => 2,
        PacketType::ALT_SETTING_STATUS | PacketType::START_ISO_STREAM => 3,
        PacketType::FREE_BULK_STREAMS | PacketType::ISO_PACKET | PacketType::INTERRUPT_PACKET => 4,
        PacketType::STOP_BULK_RECEIVING => 5,
        PacketType::BULK_RECEIVING_STATUS => 6,
        PacketType::ALLOC_BULK_STREAMS => 8,
        PacketType::BULK_STREAMS_STATUS => 9,
        PacketType::START_BULK_RECEIVING | PacketType::CONTROL_PACKET | PacketType::BUFFERED_BULK_PACKET => {
            10
        }
        PacketType::BULK_PACKET => {
            if fmt.bulk_length_32bit {
                10
            } else {
                8
            }
        }
        _ => return None,
    })
}

/// Types that may carry bytes after their type header (usbredirparser
/// `expect_extra_data`).
fn allows_data(ty: PacketType) -> bool {
    matches!(
        ty,
        PacketType::HELLO
            | PacketType::FILTER_FILTER
            | PacketType::CONTROL_PACKET
            | PacketType::BULK_PACKET
            | PacketType::ISO_PACKET
            | PacketType::INTERRUPT_PACKET
            | PacketType::BUFFERED_BULK_PACKET
    )
}

/// Total size of the frame at the start of `buf` (header included) once its
/// header has arrived, after checking type and length: `Ok(None)` = need more.
pub fn frame_len(fmt: WireFormat, buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    let Some(head) = buf.get(..fmt.header_len()) else {
        return Ok(None);
    };
    let mut r = Reader(head);
    let (Ok(ty), Ok(length)) = (r.u32().map(PacketType), r.u32()) else {
        return Ok(None);
    };
    let Some(type_header) = type_header_len(fmt, ty) else {
        return Err(DecodeError::UnknownType(ty.0));
    };
    if length > MAX_PACKET_LEN {
        return Err(DecodeError::TooLong { packet_type: ty, length, max: MAX_PACKET_LEN });
    }
    let len = usize::try_from(length).map_err(|_| DecodeError::TooLong {
        packet_type: ty,
        length,
        max: MAX_PACKET_LEN,
    })?;
    if len < type_header || (len > type_header && !allows_data(ty)) {
        return Err(DecodeError::BadLength {
            packet_type: ty,
            length,
            type_header,
            allows_data: allows_data(ty),
        });
    }
    Ok(Some(fmt.header_len() + len))
}

/// Decodes the packet at the start of `buf`: `Ok(Some((frame, consumed)))`,
/// `Ok(None)` when more bytes are needed, or the reason the bytes are invalid.
pub fn decode(fmt: WireFormat, buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, DecodeError> {
    let Some(total) = frame_len(fmt, buf)? else {
        return Ok(None);
    };
    let Some(frame) = buf.get(..total) else {
        return Ok(None);
    };
    let mut r = Reader(frame);
    // frame_len saw the whole header; a short read here can only mean "need more".
    let (Ok(ty), Ok(_length)) = (r.u32().map(PacketType), r.u32()) else {
        return Ok(None);
    };
    let Ok(id) = (if fmt.ids_64bit { r.u64() } else { r.u32().map(u64::from) }) else {
        return Ok(None);
    };
    // frame_len checked the type and that the type header fits.
    let th_len = type_header_len(fmt, ty).unwrap_or(0);
    let (th, data) = r.0.split_at_checked(th_len).unwrap_or((&[], &[]));
    let packet = parse_packet(fmt, ty, Reader(th), data)?;
    Ok(Some((Frame { id, packet }, total)))
}

fn parse_packet<'a>(
    fmt: WireFormat,
    ty: PacketType,
    h: Reader<'_>,
    data: &'a [u8],
) -> Result<Packet<'a>, DecodeError> {
    parse_fields(fmt, ty, h, data).map_err(|fault| match fault {
        Fault::Invalid(e) => e,
        Fault::Short(Short(missing)) => DecodeError::Truncated { packet_type: ty, missing },
    })
}

/// Why [`parse_fields`] stopped: the caller names the packet type of a short read.
enum Fault {
    Invalid(DecodeError),
    Short(Short),
}

impl From<DecodeError> for Fault {
    fn from(e: DecodeError) -> Self {
        Fault::Invalid(e)
    }
}

impl From<Short> for Fault {
    fn from(s: Short) -> Self {
        Fault::Short(s)
    }
}

fn parse_fields<'a>(
    fmt: WireFormat,
    ty: PacketType,
    mut h: Reader<'_>,
    data: &'a [u8],
) -> Result<Packet<'a>, Fault> {
    let data_len_check = |header_length: u32| -> Result<(), DecodeError> {
        // Data travels one way only; when present it must be exactly `length`
        // (usbredirparser verify_type_header). Which way is the session's call.
        if !data.is_empty() && usize::try_from(header_length).ok() != Some(data.len()) {
            return Err(DecodeError::DataLengthMismatch {
                packet_type: ty,
                header_length,
                data_len: data.len(),
            });
        }
        Ok(())
    };
    Ok(match ty {
        PacketType::HELLO => {
            let version = h.array::<64>()?;
            let caps =
                data.chunks_exact(4).take(MAX_CAP_WORDS).filter_map(|w| Reader(w).u32().ok()).collect();
            Packet::Hello { version, caps }
        }
        PacketType::DEVICE_CONNECT => Packet::DeviceConnect(DeviceConnect {
            speed: Speed(h.u8()?),
            device_class: h.u8()?,
            device_subclass: h.u8()?,
            device_protocol: h.u8()?,
            vendor_id: h.u16()?,
            product_id: h.u16()?,
            device_version_bcd: if fmt.connect_device_version { h.u16()? } else { 0 },
        }),
        PacketType::DEVICE_DISCONNECT => Packet::DeviceDisconnect,
        PacketType::RESET => Packet::Reset,
        PacketType::INTERFACE_INFO => {
            let interface_count = h.u32()?;
            if interface_count > 32 {
                return Err(DecodeError::TooManyInterfaces(interface_count).into());
            }
            Packet::InterfaceInfo(Box::new(InterfaceInfo {
                interface_count,
                interface: h.array()?,
                interface_class: h.array()?,
                interface_subclass: h.array()?,
                interface_protocol: h.array()?,
            }))
        }
        PacketType::EP_INFO => {
            let mut info = EpInfo { ep_type: h.array::<32>()?.map(EndpointType), ..EpInfo::default() };
            info.interval = h.array()?;
            info.interface = h.array()?;
            if fmt.ep_info_has_max_packet_size() {
                for m in &mut info.max_packet_size {
                    *m = h.u16()?;
                }
            }
            if fmt.bulk_streams {
                for m in &mut info.max_streams {
                    *m = h.u32()?;
                }
            }
            Packet::EpInfo(Box::new(info))
        }
        PacketType::SET_CONFIGURATION => Packet::SetConfiguration { configuration: h.u8()? },
        PacketType::GET_CONFIGURATION => Packet::GetConfiguration,
        PacketType::CONFIGURATION_STATUS => {
            Packet::ConfigurationStatus { status: Status(h.u8()?), configuration: h.u8()? }
        }
        PacketType::SET_ALT_SETTING => Packet::SetAltSetting { interface: h.u8()?, alt: h.u8()? },
        PacketType::GET_ALT_SETTING => Packet::GetAltSetting { interface: h.u8()? },
        PacketType::ALT_SETTING_STATUS => {
            Packet::AltSettingStatus { status: Status(h.u8()?), interface: h.u8()?, alt: h.u8()? }
        }
        PacketType::START_ISO_STREAM => {
            Packet::StartIsoStream { endpoint: h.u8()?, pkts_per_urb: h.u8()?, no_urbs: h.u8()? }
        }
        PacketType::STOP_ISO_STREAM => Packet::StopIsoStream { endpoint: h.u8()? },
        PacketType::ISO_STREAM_STATUS => {
            Packet::IsoStreamStatus { status: Status(h.u8()?), endpoint: h.u8()? }
        }
        PacketType::START_INTERRUPT_RECEIVING => Packet::StartInterruptReceiving { endpoint: h.u8()? },
        PacketType::STOP_INTERRUPT_RECEIVING => Packet::StopInterruptReceiving { endpoint: h.u8()? },
        PacketType::INTERRUPT_RECEIVING_STATUS => {
            Packet::InterruptReceivingStatus { status: Status(h.u8()?), endpoint: h.u8()? }
        }
        PacketType::ALLOC_BULK_STREAMS => {
            Packet::AllocBulkStreams { endpoints: h.u32()?, no_streams: h.u32()? }
        }
        PacketType::FREE_BULK_STREAMS => Packet::FreeBulkStreams { endpoints: h.u32()? },
        PacketType::BULK_STREAMS_STATUS => {
            Packet::BulkStreamsStatus { endpoints: h.u32()?, no_streams: h.u32()?, status: Status(h.u8()?) }
        }
        PacketType::CANCEL_DATA_PACKET => Packet::CancelDataPacket,
        PacketType::FILTER_REJECT => Packet::FilterReject,
        PacketType::FILTER_FILTER => {
            // The C parser refuses an empty or unterminated rule string.
            if data.last() != Some(&0) {
                return Err(DecodeError::FilterNotTerminated.into());
            }
            Packet::FilterFilter(data)
        }
        PacketType::DEVICE_DISCONNECT_ACK => Packet::DeviceDisconnectAck,
        PacketType::START_BULK_RECEIVING => Packet::StartBulkReceiving {
            stream_id: h.u32()?,
            bytes_per_transfer: h.u32()?,
            endpoint: h.u8()?,
            no_transfers: h.u8()?,
        },
        PacketType::STOP_BULK_RECEIVING => {
            Packet::StopBulkReceiving { stream_id: h.u32()?, endpoint: h.u8()? }
        }
        PacketType::BULK_RECEIVING_STATUS => {
            Packet::BulkReceivingStatus { stream_id: h.u32()?, endpoint: h.u8()?, status: Status(h.u8()?) }
        }
        PacketType::CONTROL_PACKET => {
            let hdr = ControlHeader {
                endpoint: h.u8()?,
                request: h.u8()?,
                requesttype: h.u8()?,
                status: Status(h.u8()?),
                value: h.u16()?,
                index: h.u16()?,
                length: h.u16()?,
            };
            data_len_check(u32::from(hdr.length))?;
            Packet::Control(hdr, data)
        }
        PacketType::BULK_PACKET => {
            let endpoint = h.u8()?;
            let status = Status(h.u8()?);
            let low = h.u16()?;
            let stream_id = h.u32()?;
            let high = if fmt.bulk_length_32bit { h.u16()? } else { 0 };
            let length = (u32::from(high) << 16) | u32::from(low);
            if length > MAX_BULK_TRANSFER {
                return Err(DecodeError::TooLong { packet_type: ty, length, max: MAX_BULK_TRANSFER }.into());
            }
            data_len_check(length)?;
            Packet::Bulk(BulkHeader { endpoint, status, length, stream_id }, data)
        }
        PacketType::ISO_PACKET | PacketType::INTERRUPT_PACKET => {
            let hdr = SmallDataHeader { endpoint: h.u8()?, status: Status(h.u8()?), length: h.u16()? };
            data_len_check(u32::from(hdr.length))?;
            if ty == PacketType::ISO_PACKET { Packet::Iso(hdr, data) } else { Packet::Interrupt(hdr, data) }
        }
        PacketType::BUFFERED_BULK_PACKET => {
            let hdr = BufferedBulkHeader {
                stream_id: h.u32()?,
                length: h.u32()?,
                endpoint: h.u8()?,
                status: Status(h.u8()?),
            };
            if hdr.length > MAX_BULK_TRANSFER {
                return Err(DecodeError::TooLong {
                    packet_type: ty,
                    length: hdr.length,
                    max: MAX_BULK_TRANSFER,
                }
                .into());
            }
            data_len_check(hdr.length)?;
            Packet::BufferedBulk(hdr, data)
        }
        other => return Err(DecodeError::UnknownType(other.0).into()),
    })
}

/// Little-endian reader over a slice: reading past the end is an error (the
/// callers check lengths first, but a reader that made up zeros would hide a
/// wrong check).
struct Reader<'a>(&'a [u8]);

/// A [`Reader`] ran out of input: how many more bytes the read needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Short(usize);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(Short(N.saturating_sub(self.0.len())))?;
        self.0 = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, Short> {
        self.array().map(u8::from_le_bytes)
    }
    fn u16(&mut self) -> Result<u16, Short> {
        self.array().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Result<u32, Short> {
        self.array().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, Short> {
        self.array().map(u64::from_le_bytes)
    }
}

/// Appends one encoded packet to `out`.
pub fn encode(fmt: WireFormat, id: u64, packet: &Packet<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let ty = packet.packet_type();
    let th_len = type_header_len(fmt, ty).unwrap_or(0);
    let data: &[u8] = match packet {
        Packet::FilterFilter(d)
        | Packet::Control(_, d)
        | Packet::Bulk(_, d)
        | Packet::Iso(_, d)
        | Packet::Interrupt(_, d)
        | Packet::BufferedBulk(_, d) => d,
        _ => &[],
    };
    let caps_len = match packet {
        Packet::Hello { caps, .. } => caps.len() * 4,
        _ => 0,
    };
    let length =
        u32::try_from(th_len + data.len() + caps_len).map_err(|_| EncodeError::PacketTooLarge(ty))?;
    out.reserve(fmt.header_len() + th_len + data.len() + caps_len);
    put_header(fmt, ty, length, id, out)?;
    put_type_header(fmt, packet, out)?;
    if let Packet::Hello { caps, .. } = packet {
        for c in caps {
            out.put(&c.to_le_bytes());
        }
    }
    out.put(data);
    Ok(())
}

/// Bytes before the data of a bulk_packet under `fmt` (header + type header).
pub fn bulk_prefix_len(fmt: WireFormat) -> usize {
    fmt.header_len() + type_header_len(fmt, PacketType::BULK_PACKET).unwrap_or(0)
}

/// Writes the header and bulk type header of a bulk_packet carrying
/// `data_len` bytes into `dst` (exactly [`bulk_prefix_len`] bytes), so an IN
/// reply can be filled in place and its prefix patched afterwards.
pub fn write_bulk_prefix(
    fmt: WireFormat,
    id: u64,
    hdr: &BulkHeader,
    data_len: usize,
    dst: &mut [u8],
) -> Result<(), EncodeError> {
    let ty = PacketType::BULK_PACKET;
    let th_len = type_header_len(fmt, ty).unwrap_or(0);
    let length = u32::try_from(th_len + data_len).map_err(|_| EncodeError::PacketTooLarge(ty))?;
    let mut sink = SliceSink { buf: dst, pos: 0, overflow: false };
    put_header(fmt, ty, length, id, &mut sink)?;
    put_type_header(fmt, &Packet::Bulk(*hdr, &[]), &mut sink)?;
    if sink.overflow || sink.pos != sink.buf.len() {
        return Err(EncodeError::PrefixSlice(ty));
    }
    Ok(())
}

trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

struct SliceSink<'a> {
    buf: &'a mut [u8],
    pos: usize,
    overflow: bool,
}

impl Sink for SliceSink<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        match self.buf.get_mut(self.pos..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.pos = end;
            }
            None => self.overflow = true,
        }
    }
}

fn put_header(
    fmt: WireFormat,
    ty: PacketType,
    length: u32,
    id: u64,
    out: &mut impl Sink,
) -> Result<(), EncodeError> {
    out.put(&ty.0.to_le_bytes());
    out.put(&length.to_le_bytes());
    if fmt.ids_64bit {
        out.put(&id.to_le_bytes());
    } else {
        let id32 = u32::try_from(id).map_err(|_| EncodeError::IdTooLarge(id))?;
        out.put(&id32.to_le_bytes());
    }
    Ok(())
}

fn put_type_header(fmt: WireFormat, packet: &Packet<'_>, out: &mut impl Sink) -> Result<(), EncodeError> {
    match packet {
        Packet::Hello { version, .. } => out.put(version),
        Packet::DeviceConnect(d) => {
            out.put(&[d.speed.0, d.device_class, d.device_subclass, d.device_protocol]);
            out.put(&d.vendor_id.to_le_bytes());
            out.put(&d.product_id.to_le_bytes());
            if fmt.connect_device_version {
                out.put(&d.device_version_bcd.to_le_bytes());
            }
        }
        Packet::DeviceDisconnect
        | Packet::Reset
        | Packet::GetConfiguration
        | Packet::CancelDataPacket
        | Packet::FilterReject
        | Packet::FilterFilter(_)
        | Packet::DeviceDisconnectAck => {}
        Packet::InterfaceInfo(i) => {
            if i.interface_count > 32 {
                return Err(EncodeError::TooManyInterfaces(i.interface_count));
            }
            out.put(&i.interface_count.to_le_bytes());
            out.put(&i.interface);
            out.put(&i.interface_class);
            out.put(&i.interface_subclass);
            out.put(&i.interface_protocol);
        }
        Packet::EpInfo(e) => {
            out.put(&e.ep_type.map(|t| t.0));
            out.put(&e.interval);
            out.put(&e.interface);
            if fmt.ep_info_has_max_packet_size() {
                for m in e.max_packet_size {
                    out.put(&m.to_le_bytes());
                }
            }
            if fmt.bulk_streams {
                for s in e.max_streams {
                    out.put(&s.to_le_bytes());
                }
            }
        }
        Packet::SetConfiguration { configuration } => out.put(&[*configuration]),
        Packet::ConfigurationStatus { status, configuration } => out.put(&[status.0, *configuration]),
        Packet::SetAltSetting { interface, alt } => out.put(&[*interface, *alt]),
        Packet::GetAltSetting { interface } => out.put(&[*interface]),
        Packet::AltSettingStatus { status, interface, alt } => out.put(&[status.0, *interface, *alt]),
        Packet::StartIsoStream { endpoint, pkts_per_urb, no_urbs } => {
            out.put(&[*endpoint, *pkts_per_urb, *no_urbs])
        }
        Packet::StopIsoStream { endpoint }
        | Packet::StartInterruptReceiving { endpoint }
        | Packet::StopInterruptReceiving { endpoint } => out.put(&[*endpoint]),
        Packet::IsoStreamStatus { status, endpoint }
        | Packet::InterruptReceivingStatus { status, endpoint } => out.put(&[status.0, *endpoint]),
        Packet::AllocBulkStreams { endpoints, no_streams } => {
            out.put(&endpoints.to_le_bytes());
            out.put(&no_streams.to_le_bytes());
        }
        Packet::FreeBulkStreams { endpoints } => out.put(&endpoints.to_le_bytes()),
        Packet::BulkStreamsStatus { endpoints, no_streams, status } => {
            out.put(&endpoints.to_le_bytes());
            out.put(&no_streams.to_le_bytes());
            out.put(&[status.0]);
        }
        Packet::StartBulkReceiving { stream_id, bytes_per_transfer, endpoint, no_transfers } => {
            out.put(&stream_id.to_le_bytes());
            out.put(&bytes_per_transfer.to_le_bytes());
            out.put(&[*endpoint, *no_transfers]);
        }
        Packet::StopBulkReceiving { stream_id, endpoint } => {
            out.put(&stream_id.to_le_bytes());
            out.put(&[*endpoint]);
        }
        Packet::BulkReceivingStatus { stream_id, endpoint, status } => {
            out.put(&stream_id.to_le_bytes());
            out.put(&[*endpoint, status.0]);
        }
        Packet::Control(c, _) => {
            out.put(&[c.endpoint, c.request, c.requesttype, c.status.0]);
            out.put(&c.value.to_le_bytes());
            out.put(&c.index.to_le_bytes());
            out.put(&c.length.to_le_bytes());
        }
        Packet::Bulk(b, _) => {
            if !fmt.bulk_length_32bit && b.length > 0xffff {
                return Err(EncodeError::BulkLengthTooLarge(b.length));
            }
            let [l0, l1, h0, h1] = b.length.to_le_bytes();
            out.put(&[b.endpoint, b.status.0, l0, l1]);
            out.put(&b.stream_id.to_le_bytes());
            if fmt.bulk_length_32bit {
                out.put(&[h0, h1]);
            }
        }
        Packet::Iso(s, _) | Packet::Interrupt(s, _) => {
            out.put(&[s.endpoint, s.status.0]);
            out.put(&s.length.to_le_bytes());
        }
        Packet::BufferedBulk(b, _) => {
            out.put(&b.stream_id.to_le_bytes());
            out.put(&b.length.to_le_bytes());
            out.put(&[b.endpoint, b.status.0]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
