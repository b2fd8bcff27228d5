//! The usb-host side of one usbredir connection, sans-io: [`Redir`] is the
//! usbredir wire format as a [`Protocol`] of the transport core, and
//! [`Session`] the core's [`Engine`] over it.
//!
//! Bytes from the usb-guest (QEMU's `usb-redir`) go into
//! [`Engine::receive`] together with the device; bytes to send come out of
//! [`Engine::swap_output`] / [`Engine::take_output`]. No sockets, no clock.
//!
//! Data packets complete in FIFO order per endpoint. Bulk OUT and control
//! transfers complete while their packet is handled; a bulk IN request the
//! device cannot answer yet stays held (a NAK, the protocol has no timeout)
//! and the engine answers it as soon as the device has data.

use tracing::{debug, info, warn};
use vstick_bot::OutResult;
use vstick_transport::{Context, Engine, Frame, HeldRequest, LentOut, Output, Protocol};
use vstick_usb::UsbDevice;

use crate::codec::{self, DecodeError, EncodeError};
use crate::proto::{
    BulkHeader, Caps, EndpointType, EpInfo, Packet, PacketType, SmallDataHeader, Speed, Status, WireFormat,
    ep_index, version_field, version_text,
};

mod configuration;

/// The version string of our hello.
pub const VERSION: &str = concat!("vstick ", env!("CARGO_PKG_VERSION"));

/// Capabilities we advertise: connect_device_version, ep_info_max_packet_size,
/// 64bits_ids and 32bits_bulk_length (0x72), the set QEMU's xHCI needs.
/// bulk_streams, bulk_receiving and filter are not implemented, so not
/// advertised; device_disconnect_ack neither, since we never send a
/// device_disconnect on a live connection (closing it detaches the device).
pub const OUR_CAPS: Caps = Caps(
    Caps::CONNECT_DEVICE_VERSION.0
        | Caps::EP_INFO_MAX_PACKET_SIZE.0
        | Caps::IDS_64BIT.0
        | Caps::BULK_LENGTH_32BIT.0,
);

/// Largest bulk transfer (OUT data or IN request) we serve: 64 MiB. Larger
/// requests are answered with status `inval` instead of allocating for them.
/// Guests move at most a few MiB per transfer (Linux usb-storage: 120 KiB by
/// default, up to max_sectors), so this only stops abuse. The codec itself
/// rejects packets over [`codec::MAX_PACKET_LEN`] outright.
pub const MAX_BULK_LENGTH: u32 = 64 * 1024 * 1024;

/// QEMU turns control IN replies over 4096 bytes into a STALL (its
/// `data_buf`), so longer replies are cut to this length.
pub const MAX_CONTROL_IN: usize = 4096;

/// One usbredir connection: the transport core's engine over [`Redir`].
pub type Session = Engine<Redir>;

/// Why a session stopped. Every variant closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The bytes are not usbredir.
    #[error("malformed usbredir input: {0}")]
    Decode(#[from] DecodeError),
    /// The first packet was not a hello.
    #[error("the usb-guest must send hello first, but sent {0}")]
    HelloExpected(PacketType),
    /// A packet only the usb-host may send.
    #[error("{0} only travels from the usb-host to the usb-guest, the usb-guest must not send it")]
    WrongDirection(PacketType),
    /// Data on the wrong side of a transfer.
    #[error("{packet_type} on endpoint {endpoint:#04x}: {problem}")]
    DataDirection {
        /// The packet.
        packet_type: PacketType,
        /// Its endpoint.
        endpoint: u8,
        /// What is wrong.
        problem: String,
    },
    /// A bug: a reply could not be encoded.
    #[error("internal error encoding a reply: {0}")]
    Encode(#[from] EncodeError),
    /// Input after an earlier error.
    #[error("session already closed after an earlier error: {0}")]
    Closed(String),
}

/// What the peer said in its hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHello {
    /// Its version string.
    pub version: String,
    /// Its capabilities.
    pub caps: Caps,
}

/// What a held bulk IN request's reply must repeat: its packet id and stream.
#[derive(Debug, Clone, Copy)]
pub struct RedirTag {
    id: u64,
    stream_id: u32,
}

type PendingIn = HeldRequest<RedirTag>;
type Cx<'a> = Context<'a, RedirTag>;

/// The usbredir wire format, usb-host side: hello, device description, and
/// the translation of control and bulk packets to the device.
#[derive(Debug)]
pub struct Redir {
    fmt: WireFormat,
    peer: Option<PeerHello>,
    /// Endpoint types as last announced in ep_info, to vet data packets.
    ep_info: EpInfo,
}

impl Default for Redir {
    fn default() -> Self {
        Self::new()
    }
}

impl Redir {
    /// The protocol before the peer's hello.
    pub fn new() -> Self {
        Self { fmt: WireFormat::INITIAL, peer: None, ep_info: EpInfo::default() }
    }

    /// A new [`Session`] with our hello queued. Nothing else is sent until
    /// the peer's hello arrives (the id width depends on it).
    pub fn session() -> Session {
        Engine::new(Self::new())
    }

    /// The peer's hello, once received.
    pub fn peer(&self) -> Option<&PeerHello> {
        self.peer.as_ref()
    }

    /// The negotiated wire format (initial format before the peer's hello).
    pub fn wire_format(&self) -> WireFormat {
        self.fmt
    }

    fn send(&self, out: &mut Output, id: u64, packet: &Packet<'_>) -> Result<(), SessionError> {
        out.push_with(|v| codec::encode(self.fmt, id, packet, v))?;
        Ok(())
    }

    fn handle_packet<D: UsbDevice + ?Sized>(
        &mut self,
        cx: &mut Cx<'_>,
        dev: &mut D,
        frame: codec::Frame<'_>,
    ) -> Result<(), SessionError> {
        let codec::Frame { id, packet } = frame;
        if self.peer.is_none() {
            // Protocol §hello: "mandatory that this packet is the first packet".
            let Packet::Hello { version, caps } = packet else {
                return Err(SessionError::HelloExpected(packet.packet_type()));
            };
            let peer =
                PeerHello { version: version_text(&version), caps: Caps(caps.first().copied().unwrap_or(0)) };
            self.fmt = WireFormat::negotiate(OUR_CAPS, peer.caps);
            info!(peer = %peer.version, caps = ?peer.caps, format = ?self.fmt, "usbredir hello received");
            self.peer = Some(peer);
            return self.connect_device(cx, dev);
        }
        match packet {
            Packet::Hello { .. } => warn!("usbredir: second hello from the usb-guest ignored"),
            Packet::Reset => {
                debug!("usbredir: device reset");
                dev.reset();
                self.cancel_queued(cx, |_| true)?;
            }
            Packet::SetConfiguration { configuration } => {
                self.set_configuration(cx, dev, id, configuration)?
            }
            Packet::GetConfiguration => {
                let configuration = dev.configuration();
                self.send(
                    cx.out,
                    id,
                    &Packet::ConfigurationStatus { status: Status::SUCCESS, configuration },
                )?;
            }
            Packet::SetAltSetting { interface, alt } => self.set_alt_setting(cx, dev, id, interface, alt)?,
            Packet::GetAltSetting { interface } => {
                // Unknown interface: inval, as usbredirhost answers.
                let (status, alt) = match dev.alt_setting(interface) {
                    Some(alt) => (Status::SUCCESS, alt),
                    None => (Status::INVAL, 0xff),
                };
                self.send(cx.out, id, &Packet::AltSettingStatus { status, interface, alt })?;
            }
            // No iso, interrupt, stream or buffered-bulk support: the request
            // is valid but this device has nothing to serve it.
            Packet::StartIsoStream { endpoint, .. } | Packet::StopIsoStream { endpoint } => {
                self.send(cx.out, id, &Packet::IsoStreamStatus { status: Status::INVAL, endpoint })?;
            }
            Packet::StartInterruptReceiving { endpoint } | Packet::StopInterruptReceiving { endpoint } => {
                self.send(cx.out, id, &Packet::InterruptReceivingStatus { status: Status::INVAL, endpoint })?;
            }
            Packet::AllocBulkStreams { endpoints, no_streams } => {
                self.send(
                    cx.out,
                    id,
                    &Packet::BulkStreamsStatus { endpoints, no_streams, status: Status::INVAL },
                )?;
            }
            Packet::FreeBulkStreams { endpoints } => {
                self.send(
                    cx.out,
                    id,
                    &Packet::BulkStreamsStatus { endpoints, no_streams: 0, status: Status::INVAL },
                )?;
            }
            Packet::StartBulkReceiving { stream_id, endpoint, .. }
            | Packet::StopBulkReceiving { stream_id, endpoint } => {
                self.send(
                    cx.out,
                    id,
                    &Packet::BulkReceivingStatus { stream_id, endpoint, status: Status::INVAL },
                )?;
            }
            Packet::CancelDataPacket => self.cancel(cx, id)?,
            Packet::FilterReject => warn!("usbredir: the usb-guest's device filter rejected this device"),
            Packet::FilterFilter(rules) => {
                debug!(rules = %String::from_utf8_lossy(rules), "usbredir: usb-guest filter ignored");
            }
            // We never send device_disconnect, so there is nothing to acknowledge.
            Packet::DeviceDisconnectAck => debug!("usbredir: unsolicited device_disconnect_ack ignored"),
            Packet::Control(hdr, data) => self.control(cx, dev, id, hdr, data)?,
            Packet::Bulk(hdr, data) => self.bulk(cx, dev, id, hdr, data)?,
            Packet::Iso(hdr, data) => {
                if hdr.endpoint & 0x80 != 0 {
                    return Err(SessionError::WrongDirection(PacketType::ISO_PACKET));
                }
                // usbredirhost answers iso data for a non-iso endpoint with a stream status.
                debug!(
                    endpoint = hdr.endpoint,
                    len = data.len(),
                    "usbredir: iso packet for a non-iso endpoint"
                );
                self.send(
                    cx.out,
                    id,
                    &Packet::IsoStreamStatus { status: Status::INVAL, endpoint: hdr.endpoint },
                )?;
            }
            Packet::Interrupt(hdr, _) => {
                // Interrupt IN data flows only host→guest (protocol §interrupt_packet).
                if hdr.endpoint & 0x80 != 0 {
                    return Err(SessionError::WrongDirection(PacketType::INTERRUPT_PACKET));
                }
                let reply = SmallDataHeader { endpoint: hdr.endpoint, status: Status::INVAL, length: 0 };
                self.send(cx.out, id, &Packet::Interrupt(reply, &[]))?;
            }
            Packet::DeviceConnect(_)
            | Packet::DeviceDisconnect
            | Packet::InterfaceInfo(_)
            | Packet::EpInfo(_)
            | Packet::ConfigurationStatus { .. }
            | Packet::AltSettingStatus { .. }
            | Packet::IsoStreamStatus { .. }
            | Packet::InterruptReceivingStatus { .. }
            | Packet::BulkStreamsStatus { .. }
            | Packet::BulkReceivingStatus { .. }
            | Packet::BufferedBulk(..) => return Err(SessionError::WrongDirection(packet.packet_type())),
        }
        Ok(())
    }

    fn bulk<D: UsbDevice + ?Sized>(
        &mut self,
        cx: &mut Cx<'_>,
        dev: &mut D,
        id: u64,
        hdr: BulkHeader,
        data: &[u8],
    ) -> Result<(), SessionError> {
        let is_in = hdr.endpoint & 0x80 != 0;
        if !self.bulk_admitted(cx, id, hdr, data.len())? {
            return Ok(());
        }
        if is_in {
            let request = PendingIn {
                endpoint: hdr.endpoint,
                length: hdr.length,
                tag: RedirTag { id, stream_id: hdr.stream_id },
            };
            if cx.held.push(request).is_err() {
                warn!(endpoint = hdr.endpoint, "usbredir: too many bulk IN requests held");
                let refusal = BulkHeader { status: Status::INVAL, length: 0, ..hdr };
                return self.send(cx.out, id, &Packet::Bulk(refusal, &[]));
            }
            return Ok(());
        }
        let result = dev.bulk_out(hdr.endpoint, data);
        self.send(cx.out, id, &Packet::Bulk(out_reply(hdr, result, data.len()), &[]))
    }

    /// Checks of a bulk packet carrying `data_len` bytes: a malformed one
    /// ends the session, one the device cannot serve is refused (`Ok(false)`,
    /// the refusal queued).
    fn bulk_admitted(
        &mut self,
        cx: &mut Cx<'_>,
        id: u64,
        hdr: BulkHeader,
        data_len: usize,
    ) -> Result<bool, SessionError> {
        let is_in = hdr.endpoint & 0x80 != 0;
        if is_in && data_len != 0 {
            return Err(direction_error(PacketType::BULK_PACKET, hdr.endpoint, "IN request carries data"));
        }
        if !is_in && usize::try_from(hdr.length).ok() != Some(data_len) {
            return Err(direction_error(
                PacketType::BULK_PACKET,
                hdr.endpoint,
                format!("OUT request announces {} bytes but carries {data_len}", hdr.length),
            ));
        }
        let reject = |status: Status| Packet::Bulk(BulkHeader { status, length: 0, ..hdr }, &[]);
        // Bits 4..6 of an endpoint address are reserved (USB 2.0 §9.6.6);
        // ep_index ignores them, so refuse them here.
        if hdr.endpoint & 0x70 != 0
            || self.ep_info.ep_type.get(ep_index(hdr.endpoint)) != Some(&EndpointType::BULK)
        {
            warn!(endpoint = hdr.endpoint, "usbredir: bulk packet for a non-bulk endpoint");
            self.send(cx.out, id, &reject(Status::INVAL))?;
            return Ok(false);
        }
        if hdr.stream_id != 0 {
            warn!(
                endpoint = hdr.endpoint,
                stream = hdr.stream_id,
                "usbredir: bulk stream requested, none allocated"
            );
            self.send(cx.out, id, &reject(Status::INVAL))?;
            return Ok(false);
        }
        if hdr.length > MAX_BULK_LENGTH {
            warn!(
                endpoint = hdr.endpoint,
                len = hdr.length,
                max = MAX_BULK_LENGTH,
                "usbredir: bulk transfer too long"
            );
            self.send(cx.out, id, &reject(Status::INVAL))?;
            return Ok(false);
        }
        Ok(true)
    }

    /// A large bulk OUT frame in its own buffer: checked like any bulk
    /// packet, then offered to the device with the buffer (write-behind).
    fn bulk_out_lent<D: UsbDevice + ?Sized>(
        &mut self,
        cx: &mut Cx<'_>,
        dev: &mut D,
        id: u64,
        hdr: BulkHeader,
        lent: LentOut,
    ) -> Result<(), SessionError> {
        let len = lent.data_range().len();
        if !self.bulk_admitted(cx, id, hdr, len)? {
            cx.recycle(lent);
            return Ok(());
        }
        let result = cx.bulk_out_lent(dev, hdr.endpoint, lent);
        self.send(cx.out, id, &Packet::Bulk(out_reply(hdr, result, len), &[]))
    }

    /// cancel_data_packet: a held request is answered `cancelled` exactly
    /// once; a request already answered is left alone (protocol
    /// §cancel_data_packet: the guest gets one reply per id either way).
    fn cancel(&mut self, cx: &mut Cx<'_>, id: u64) -> Result<(), SessionError> {
        match cx.held.remove_first(|p| p.tag.id == id) {
            Some(p) => {
                debug!(id, endpoint = p.endpoint, "usbredir: bulk IN request cancelled");
                self.send_cancelled(cx, p)
            }
            None => {
                debug!(id, "usbredir: cancel for a packet already completed");
                Ok(())
            }
        }
    }

    /// Answers every held request matching `which` with status `cancelled`.
    fn cancel_queued(
        &mut self,
        cx: &mut Cx<'_>,
        which: impl Fn(&PendingIn) -> bool,
    ) -> Result<(), SessionError> {
        for p in cx.held.remove_all(which) {
            self.send_cancelled(cx, p)?;
        }
        Ok(())
    }

    fn send_cancelled(&mut self, cx: &mut Cx<'_>, p: PendingIn) -> Result<(), SessionError> {
        let hdr = BulkHeader {
            endpoint: p.endpoint,
            status: Status::CANCELLED,
            length: 0,
            stream_id: p.tag.stream_id,
        };
        self.send(cx.out, p.tag.id, &Packet::Bulk(hdr, &[]))
    }
}

impl Protocol for Redir {
    type Tag = RedirTag;
    type Error = SessionError;

    fn greeting(&mut self, out: &mut Output) -> Result<(), SessionError> {
        let hello = Packet::Hello { version: version_field(VERSION), caps: vec![OUR_CAPS.0] };
        self.send(out, 0, &hello)
    }

    fn on_connect<D: UsbDevice + ?Sized>(&mut self, dev: &mut D) {
        // A new usb-guest sees the device as freshly plugged in.
        dev.reset();
    }

    fn header_len(&self) -> usize {
        self.fmt.header_len()
    }

    fn frame_len(&self, buf: &[u8]) -> Result<Option<usize>, SessionError> {
        Ok(codec::frame_len(self.fmt, buf)?)
    }

    fn out_data_start(&self, frame: &[u8]) -> Option<usize> {
        self.peer.as_ref()?;
        match codec::decode(self.fmt, frame) {
            // The data ends the frame.
            Ok(Some((codec::Frame { packet: Packet::Bulk(hdr, data), .. }, _)))
                if hdr.endpoint & 0x80 == 0 =>
            {
                Some(frame.len() - data.len())
            }
            _ => None,
        }
    }

    fn handle<D: UsbDevice + ?Sized>(
        &mut self,
        cx: &mut Cx<'_>,
        dev: &mut D,
        frame: Frame<'_>,
    ) -> Result<(), SessionError> {
        match frame {
            Frame::Borrowed(bytes) => match codec::decode(self.fmt, bytes)? {
                Some((frame, _)) => self.handle_packet(cx, dev, frame),
                // frame_len said the frame is complete, so decode has it all.
                None => Ok(()),
            },
            Frame::Lent(lent) => {
                let (id, hdr) = match codec::decode(self.fmt, lent.frame())? {
                    Some((codec::Frame { id, packet: Packet::Bulk(hdr, _) }, _)) => (id, hdr),
                    _ => return Ok(()),
                };
                self.bulk_out_lent(cx, dev, id, hdr, lent)
            }
        }
    }

    fn in_reply_prefix(&self) -> usize {
        codec::bulk_prefix_len(self.fmt)
    }

    fn write_in_reply_header(&self, p: &PendingIn, len: usize, dst: &mut [u8]) -> Result<(), SessionError> {
        let hdr = BulkHeader {
            endpoint: p.endpoint,
            status: Status::SUCCESS,
            length: u32::try_from(len).unwrap_or(p.length),
            stream_id: p.tag.stream_id,
        };
        codec::write_bulk_prefix(self.fmt, p.tag.id, &hdr, len, dst)?;
        Ok(())
    }

    fn stall_in_reply(&self, p: &PendingIn, out: &mut Output) -> Result<(), SessionError> {
        let hdr =
            BulkHeader { endpoint: p.endpoint, status: Status::STALL, length: 0, stream_id: p.tag.stream_id };
        self.send(out, p.tag.id, &Packet::Bulk(hdr, &[]))
    }

    fn handshake_done(&self) -> bool {
        self.peer.is_some()
    }

    fn closed_error(reason: String) -> SessionError {
        SessionError::Closed(reason)
    }
}

fn set_ep(eps: &mut EpInfo, i: usize, ty: EndpointType, interval: u8, interface: u8, mps: u16) {
    if let Some(t) = eps.ep_type.get_mut(i) {
        *t = ty;
    }
    if let Some(v) = eps.interval.get_mut(i) {
        *v = interval;
    }
    if let Some(v) = eps.interface.get_mut(i) {
        *v = interface;
    }
    if let Some(v) = eps.max_packet_size.get_mut(i) {
        *v = mps;
    }
}

fn wire_speed(speed: vstick_usb::Speed) -> Speed {
    match speed {
        vstick_usb::Speed::Full => Speed::FULL,
        vstick_usb::Speed::High => Speed::HIGH,
        vstick_usb::Speed::Super => Speed::SUPER,
    }
}

/// The completion of a bulk OUT of `len` bytes.
fn out_reply(hdr: BulkHeader, result: OutResult, len: usize) -> BulkHeader {
    match result {
        OutResult::Accepted(n) => {
            let n = u32::try_from(n.min(len)).unwrap_or(hdr.length);
            BulkHeader { status: Status::SUCCESS, length: n, ..hdr }
        }
        OutResult::Stall => BulkHeader { status: Status::STALL, length: 0, ..hdr },
    }
}

fn direction_error(packet_type: PacketType, endpoint: u8, problem: impl Into<String>) -> SessionError {
    SessionError::DataDirection { packet_type, endpoint, problem: problem.into() }
}
