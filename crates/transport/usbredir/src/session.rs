//! The usb-host side of one usbredir connection, sans-io.
//!
//! Bytes from the usb-guest (QEMU's `usb-redir`) go into [`Session::receive`]
//! together with the device; bytes to send come out of
//! [`Session::take_output`] / [`Session::swap_output`]. No sockets, no clock.
//!
//! Data packets complete in FIFO order per endpoint. Bulk OUT and control
//! transfers complete while their packet is handled; a bulk IN request the
//! device cannot answer yet ([`InResult::Pending`]) stays queued (a NAK, the
//! protocol has no timeout) and is retried after every later event.

use std::collections::VecDeque;

use tracing::{debug, info, warn};
use vstick_bot::{InResult, OutResult};
use vstick_usb::{ControlResult, Setup, TransferType};

use crate::codec::{self, DecodeError, EncodeError, Frame};
use crate::proto::{
    BulkHeader, Caps, ControlHeader, DeviceConnect, EndpointType, EpInfo, InterfaceInfo, Packet, PacketType,
    SmallDataHeader, Speed, Status, WireFormat, ep_index, version_field, version_text,
};
use vstick_usb::UsbDevice;

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

/// Most bulk IN requests held (NAKed) per endpoint; more are answered `inval`.
/// QEMU pipelines far fewer (one xHCI transfer ring's worth).
pub const MAX_QUEUED_IN: usize = 4096;

/// QEMU turns control IN replies over 4096 bytes into a STALL (its
/// `data_buf`), so longer replies are cut to this length.
pub const MAX_CONTROL_IN: usize = 4096;

/// Held bulk IN requests are answered only while less than this much output
/// is waiting to be sent. A few bytes of requests can otherwise turn into
/// gigabytes of queued replies in one call (many 64 MiB IN requests, then a
/// CBW whose data stage is 4 GiB of padding). The output is thus at most
/// this plus one reply ([`MAX_BULK_LENGTH`]); the edge sends it and calls
/// [`Session::service`] for the rest.
pub const MAX_PENDING_OUTPUT: usize = 8 * 1024 * 1024;

/// Why a session stopped. Every variant closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("malformed usbredir input: {0}")]
    Decode(#[from] DecodeError),
    #[error("the usb-guest must send hello first, but sent {0}")]
    HelloExpected(PacketType),
    #[error("{0} only travels from the usb-host to the usb-guest, the usb-guest must not send it")]
    WrongDirection(PacketType),
    #[error("{packet_type} on endpoint {endpoint:#04x}: {problem}")]
    DataDirection { packet_type: PacketType, endpoint: u8, problem: String },
    #[error("internal error encoding a reply: {0}")]
    Encode(#[from] EncodeError),
    #[error("session already closed after an earlier error: {0}")]
    Closed(String),
}

/// What the peer said in its hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHello {
    pub version: String,
    pub caps: Caps,
}

#[derive(Debug, Clone, Copy)]
struct PendingIn {
    id: u64,
    endpoint: u8,
    stream_id: u32,
    length: u32,
}

/// One usbredir connection, from our hello to the close.
pub struct Session {
    fmt: WireFormat,
    peer: Option<PeerHello>,
    /// A packet split across `receive` calls: `inbuf[..in_len]`, never more
    /// than one frame. The bytes past `in_len` are spare room kept from
    /// earlier frames (initialised, so [`Session::receive_space`] can lend
    /// them without zeroing a megabyte per bulk OUT).
    inbuf: Vec<u8>,
    in_len: usize,
    out: Vec<u8>,
    /// Endpoint types as last announced in ep_info, to vet data packets.
    ep_info: EpInfo,
    /// Held bulk IN requests, indexed by endpoint number.
    in_queues: [VecDeque<PendingIn>; 16],
    failed: Option<String>,
    /// A frame buffer the device kept ([`UsbDevice::bulk_out_owned`]): the
    /// edge must call [`UsbDevice::run_deferred`] once the reply is sent.
    lent: bool,
    /// A buffer the device gave back, the next `inbuf` after a lend.
    spare: Vec<u8>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

/// Buffers grown past this by one large transfer are released afterwards.
const KEEP_BUFFER: usize = 4 * 1024 * 1024;

/// Bulk OUT data from this size on is lent to the device with its frame
/// buffer, so the medium is written after the completion is sent (the
/// write's file I/O overlaps the guest's next steps). Smaller transfers
/// (CBWs, short writes) are handled in place.
const LEND_FROM: usize = 16 * 1024;

impl Session {
    /// A fresh session with our hello queued for sending. Nothing else is sent
    /// until the peer's hello arrives (the id width depends on it).
    pub fn new() -> Self {
        let mut s = Session {
            fmt: WireFormat::INITIAL,
            peer: None,
            inbuf: Vec::new(),
            in_len: 0,
            out: Vec::new(),
            ep_info: EpInfo::default(),
            in_queues: Default::default(),
            failed: None,
            lent: false,
            spare: Vec::new(),
        };
        let hello = Packet::Hello { version: version_field(VERSION), caps: vec![OUR_CAPS.0] };
        // A hello always encodes (32-bit id 0, fixed size).
        let _ = codec::encode(s.fmt, 0, &hello, &mut s.out);
        s
    }

    /// The peer's hello, once received.
    pub fn peer(&self) -> Option<&PeerHello> {
        self.peer.as_ref()
    }

    /// The negotiated wire format (initial format before the peer's hello).
    pub fn wire_format(&self) -> WireFormat {
        self.fmt
    }

    /// Bulk IN requests currently held waiting for the device.
    pub fn queued_in_requests(&self) -> usize {
        self.in_queues.iter().map(VecDeque::len).sum()
    }

    /// Bytes of a partial packet held until the rest arrives (at most one
    /// frame, itself capped by [`codec::MAX_PACKET_LEN`]).
    pub fn buffered_input_len(&self) -> usize {
        self.in_len
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Everything queued for sending, leaving the session's buffer empty.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Swaps the queued output into `buf` (which should be empty; its
    /// capacity is reused for the next output). Appends if it is not.
    pub fn swap_output(&mut self, buf: &mut Vec<u8>) {
        if buf.is_empty() {
            std::mem::swap(&mut self.out, buf);
            if self.out.capacity() > KEEP_BUFFER {
                self.out = Vec::new();
            }
        } else {
            buf.append(&mut self.out);
        }
    }

    /// Feeds bytes from the peer. Packets may be split or coalesced in any
    /// way. On error the connection must be closed; the session stays failed.
    pub fn receive<D: UsbDevice + ?Sized>(&mut self, dev: &mut D, bytes: &[u8]) -> Result<(), SessionError> {
        if let Some(reason) = &self.failed {
            return Err(SessionError::Closed(reason.clone()));
        }
        let result = self.receive_frames(dev, bytes);
        self.fail_on_error(result)
    }

    /// Room for the rest of the frame being received, once its header has
    /// arrived: a transport may read the peer's next bytes straight into it
    /// and report them with [`Session::receive_in_place`] instead of reading
    /// into a buffer of its own and copying through [`Session::receive`].
    /// This saves one copy of every large bulk OUT (the data of a write).
    /// Empty when no frame is partly received, its header is incomplete, or
    /// the session has failed; then use `receive`.
    pub fn receive_space(&mut self) -> &mut [u8] {
        let want = match self.stashed_frame_len() {
            Some(want) if self.failed.is_none() => want,
            _ => return &mut [],
        };
        if self.inbuf.len() < want {
            // Zeroes only the growth, once: the room is kept for later frames.
            self.inbuf.resize(want, 0);
        }
        self.inbuf.get_mut(self.in_len..want).unwrap_or_default()
    }

    /// Handles `n` bytes the transport wrote at the start of
    /// [`Session::receive_space`] (`n` beyond that room is a caller bug and
    /// is cut to it).
    pub fn receive_in_place<D: UsbDevice + ?Sized>(
        &mut self,
        dev: &mut D,
        n: usize,
    ) -> Result<(), SessionError> {
        if let Some(reason) = &self.failed {
            return Err(SessionError::Closed(reason.clone()));
        }
        let Some(want) = self.stashed_frame_len() else {
            return Ok(());
        };
        self.in_len = (self.in_len + n).min(want).min(self.inbuf.len());
        let result = if self.in_len == want { self.complete_stashed(dev).map(|_| ()) } else { Ok(()) };
        self.fail_on_error(result)
    }

    /// Total length of the partly received frame, when its header is in.
    fn stashed_frame_len(&self) -> Option<usize> {
        if self.in_len == 0 {
            return None;
        }
        let held = self.inbuf.get(..self.in_len)?;
        codec::frame_len(self.fmt, held).ok().flatten()
    }

    fn fail_on_error(&mut self, result: Result<(), SessionError>) -> Result<(), SessionError> {
        if let Err(e) = &result {
            self.failed = Some(e.to_string());
            self.inbuf = Vec::new();
            self.in_len = 0;
        }
        result
    }

    /// Decodes and handles the complete frame in `inbuf[..in_len]`;
    /// `Ok(false)` when only its header was completed (the length is then
    /// known and more bytes are needed).
    fn complete_stashed<D: UsbDevice + ?Sized>(&mut self, dev: &mut D) -> Result<bool, SessionError> {
        let buf = std::mem::take(&mut self.inbuf);
        let mut lend = None;
        let result = match codec::decode(self.fmt, buf.get(..self.in_len).unwrap_or_default()) {
            Ok(None) => Ok(false),
            Ok(Some((Frame { id, packet: Packet::Bulk(hdr, data) }, _)))
                if self.peer.is_some() && hdr.endpoint & 0x80 == 0 && data.len() >= LEND_FROM =>
            {
                // The data ends the frame.
                lend = Some((id, hdr, self.in_len - data.len()..self.in_len));
                Ok(true)
            }
            Ok(Some((frame, _))) => self.handle(dev, frame).map(|()| true),
            Err(e) => Err(e.into()),
        };
        self.inbuf = match lend {
            Some((id, hdr, range)) => self.bulk_out_lent(dev, id, hdr, buf, range)?,
            None => buf,
        };
        if let Ok(true) = result {
            self.in_len = 0;
            if self.inbuf.len() > KEEP_BUFFER {
                self.inbuf = Vec::new();
            }
        }
        result
    }

    /// Appends `bytes` to the stashed partial frame, reusing spare room.
    fn stash(&mut self, bytes: &[u8]) {
        let end = self.in_len + bytes.len();
        if self.inbuf.len() < end {
            self.inbuf.resize(end, 0);
        }
        if let Some(dst) = self.inbuf.get_mut(self.in_len..end) {
            dst.copy_from_slice(bytes);
        }
        self.in_len = end;
    }

    /// Retries held bulk IN requests, for when the device's state changed by
    /// other means than this connection.
    pub fn service<D: UsbDevice + ?Sized>(&mut self, dev: &mut D) -> Result<(), SessionError> {
        if let Some(reason) = &self.failed {
            return Err(SessionError::Closed(reason.clone()));
        }
        self.drain_in(dev)
    }

    fn receive_frames<D: UsbDevice + ?Sized>(
        &mut self,
        dev: &mut D,
        bytes: &[u8],
    ) -> Result<(), SessionError> {
        let mut rest = bytes;
        loop {
            if self.in_len == 0 {
                if rest.is_empty() {
                    return Ok(());
                }
                match codec::decode(self.fmt, rest)? {
                    Some((frame, used)) => {
                        self.handle(dev, frame)?;
                        rest = rest.get(used..).unwrap_or_default();
                    }
                    None => {
                        // Less than one frame (its header, if complete, was
                        // checked against the length cap by decode).
                        self.stash(rest);
                        return Ok(());
                    }
                }
            } else {
                // Top up the stashed partial frame with just what it lacks.
                let held = self.inbuf.get(..self.in_len).unwrap_or_default();
                let want = codec::frame_len(self.fmt, held)?.unwrap_or(self.fmt.header_len());
                let missing = want.saturating_sub(self.in_len);
                let (head, tail) = rest.split_at(missing.min(rest.len()));
                self.stash(head);
                rest = tail;
                if self.in_len < want {
                    return Ok(());
                }
                // Ok(false): only the header was completed; loop to learn the length.
                self.complete_stashed(dev)?;
            }
        }
    }

    fn send(&mut self, id: u64, packet: &Packet<'_>) -> Result<(), SessionError> {
        codec::encode(self.fmt, id, packet, &mut self.out)?;
        Ok(())
    }

    fn handle<D: UsbDevice + ?Sized>(&mut self, dev: &mut D, frame: Frame<'_>) -> Result<(), SessionError> {
        let Frame { id, packet } = frame;
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
            return self.connect_device(dev);
        }
        match packet {
            Packet::Hello { .. } => warn!("usbredir: second hello from the usb-guest ignored"),
            Packet::Reset => {
                debug!("usbredir: device reset");
                dev.reset();
                self.cancel_queued(|_| true)?;
            }
            Packet::SetConfiguration { configuration } => self.set_configuration(dev, id, configuration)?,
            Packet::GetConfiguration => {
                let configuration = dev.configuration();
                self.send(id, &Packet::ConfigurationStatus { status: Status::SUCCESS, configuration })?;
            }
            Packet::SetAltSetting { interface, alt } => self.set_alt_setting(dev, id, interface, alt)?,
            Packet::GetAltSetting { interface } => {
                // Unknown interface: inval, as usbredirhost answers.
                let (status, alt) = match dev.alt_setting(interface) {
                    Some(alt) => (Status::SUCCESS, alt),
                    None => (Status::INVAL, 0xff),
                };
                self.send(id, &Packet::AltSettingStatus { status, interface, alt })?;
            }
            // No iso, interrupt, stream or buffered-bulk support: the request
            // is valid but this device has nothing to serve it.
            Packet::StartIsoStream { endpoint, .. } | Packet::StopIsoStream { endpoint } => {
                self.send(id, &Packet::IsoStreamStatus { status: Status::INVAL, endpoint })?;
            }
            Packet::StartInterruptReceiving { endpoint } | Packet::StopInterruptReceiving { endpoint } => {
                self.send(id, &Packet::InterruptReceivingStatus { status: Status::INVAL, endpoint })?;
            }
            Packet::AllocBulkStreams { endpoints, no_streams } => {
                self.send(id, &Packet::BulkStreamsStatus { endpoints, no_streams, status: Status::INVAL })?;
            }
            Packet::FreeBulkStreams { endpoints } => {
                self.send(
                    id,
                    &Packet::BulkStreamsStatus { endpoints, no_streams: 0, status: Status::INVAL },
                )?;
            }
            Packet::StartBulkReceiving { stream_id, endpoint, .. }
            | Packet::StopBulkReceiving { stream_id, endpoint } => {
                self.send(id, &Packet::BulkReceivingStatus { stream_id, endpoint, status: Status::INVAL })?;
            }
            Packet::CancelDataPacket => self.cancel(id)?,
            Packet::FilterReject => warn!("usbredir: the usb-guest's device filter rejected this device"),
            Packet::FilterFilter(rules) => {
                debug!(rules = %String::from_utf8_lossy(rules), "usbredir: usb-guest filter ignored");
            }
            // We never send device_disconnect, so there is nothing to acknowledge.
            Packet::DeviceDisconnectAck => debug!("usbredir: unsolicited device_disconnect_ack ignored"),
            Packet::Control(hdr, data) => self.control(dev, id, hdr, data)?,
            Packet::Bulk(hdr, data) => self.bulk(dev, id, hdr, data)?,
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
                self.send(id, &Packet::IsoStreamStatus { status: Status::INVAL, endpoint: hdr.endpoint })?;
            }
            Packet::Interrupt(hdr, _) => {
                // Interrupt IN data flows only host→guest (protocol §interrupt_packet).
                if hdr.endpoint & 0x80 != 0 {
                    return Err(SessionError::WrongDirection(PacketType::INTERRUPT_PACKET));
                }
                let reply = SmallDataHeader { endpoint: hdr.endpoint, status: Status::INVAL, length: 0 };
                self.send(id, &Packet::Interrupt(reply, &[]))?;
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
        self.drain_in(dev)
    }

    /// After the peer's hello: describe the device, then attach it.
    fn connect_device<D: UsbDevice + ?Sized>(&mut self, dev: &mut D) -> Result<(), SessionError> {
        self.send_interface_and_ep_info(dev)?;
        let s = dev.summary();
        let connect = DeviceConnect {
            speed: wire_speed(dev.speed()),
            device_class: s.class,
            device_subclass: s.subclass,
            device_protocol: s.protocol,
            vendor_id: s.vendor_id,
            product_id: s.product_id,
            device_version_bcd: s.bcd_device,
        };
        self.send(0, &Packet::DeviceConnect(connect))
    }

    /// interface_info then ep_info, the order usbredirhost uses; QEMU rejects
    /// a device whose interface_info never arrived.
    fn send_interface_and_ep_info<D: UsbDevice + ?Sized>(&mut self, dev: &mut D) -> Result<(), SessionError> {
        let mut ifs = InterfaceInfo::default();
        let mut count = 0u32;
        let slots = ifs
            .interface
            .iter_mut()
            .zip(ifs.interface_class.iter_mut())
            .zip(ifs.interface_subclass.iter_mut())
            .zip(ifs.interface_protocol.iter_mut());
        for ((((n, c), sc), p), i) in slots.zip(dev.interfaces()) {
            (*n, *c, *sc, *p) = (i.number, i.class, i.subclass, i.protocol);
            count += 1;
        }
        ifs.interface_count = count;

        let mut eps = EpInfo::default();
        // Endpoint 0 both ways is the control pipe (usbredirhost marks index
        // 0 and 16); its max packet size follows bMaxPacketSize0.
        let ep0_mps = if dev.speed() == vstick_usb::Speed::Super { 512 } else { 64 };
        for i in [0, 16] {
            set_ep(&mut eps, i, EndpointType::CONTROL, 0, 0, ep0_mps);
        }
        for ep in dev.endpoints() {
            let ty = match ep.transfer_type {
                TransferType::Control => EndpointType::CONTROL,
                TransferType::Isochronous => EndpointType::ISO,
                TransferType::Bulk => EndpointType::BULK,
                TransferType::Interrupt => EndpointType::INTERRUPT,
            };
            set_ep(&mut eps, ep_index(ep.address), ty, ep.interval, ep.interface, ep.max_packet_size);
        }
        self.send(0, &Packet::InterfaceInfo(Box::new(ifs)))?;
        self.send(0, &Packet::EpInfo(Box::new(eps)))?;
        self.ep_info = eps;
        Ok(())
    }

    fn set_configuration<D: UsbDevice + ?Sized>(
        &mut self,
        dev: &mut D,
        id: u64,
        configuration: u8,
    ) -> Result<(), SessionError> {
        // Setting the active configuration again changes nothing (usbredirhost
        // answers it without touching the device).
        if configuration == dev.configuration() {
            return self.send(id, &Packet::ConfigurationStatus { status: Status::SUCCESS, configuration });
        }
        let status = if dev.set_configuration(configuration) {
            // The endpoints are gone or reset: held requests end here, once.
            self.cancel_queued(|_| true)?;
            // Protocol §configuration_status: new info before the status.
            self.send_interface_and_ep_info(dev)?;
            Status::SUCCESS
        } else {
            // A real device STALLs an invalid SET_CONFIGURATION; QEMU passes
            // STALL through to the guest (inval would become an I/O error).
            Status::STALL
        };
        let configuration = dev.configuration();
        self.send(id, &Packet::ConfigurationStatus { status, configuration })
    }

    fn set_alt_setting<D: UsbDevice + ?Sized>(
        &mut self,
        dev: &mut D,
        id: u64,
        interface: u8,
        alt: u8,
    ) -> Result<(), SessionError> {
        if dev.alt_setting(interface).is_none() {
            return self.send(id, &Packet::AltSettingStatus { status: Status::INVAL, interface, alt: 0xff });
        }
        let status = if dev.set_alt_setting(interface, alt) {
            let ep_interface = self.ep_info.interface;
            let ep_type = self.ep_info.ep_type;
            // Only this interface's endpoints are reset by SET_INTERFACE.
            self.cancel_queued(|p| {
                let i = ep_index(p.endpoint);
                ep_interface.get(i) == Some(&interface) && ep_type.get(i) != Some(&EndpointType::CONTROL)
            })?;
            self.send_interface_and_ep_info(dev)?;
            Status::SUCCESS
        } else {
            Status::STALL
        };
        let alt = dev.alt_setting(interface).unwrap_or(0xff);
        self.send(id, &Packet::AltSettingStatus { status, interface, alt })
    }

    fn control<D: UsbDevice + ?Sized>(
        &mut self,
        dev: &mut D,
        id: u64,
        hdr: ControlHeader,
        data: &[u8],
    ) -> Result<(), SessionError> {
        let dir_in = hdr.endpoint & 0x80 != 0;
        // Data travels one way only (protocol §control_packet).
        if dir_in && !data.is_empty() {
            return Err(direction_error(PacketType::CONTROL_PACKET, hdr.endpoint, "IN request carries data"));
        }
        if !dir_in && data.len() != usize::from(hdr.length) {
            return Err(direction_error(
                PacketType::CONTROL_PACKET,
                hdr.endpoint,
                format!("OUT request announces {} bytes but carries {}", hdr.length, data.len()),
            ));
        }
        let mut reply = hdr;
        reply.length = 0;
        // Only the default pipe: `control` has no endpoint parameter, and
        // QEMU sends endpoint = requesttype & 0x80.
        if hdr.endpoint & 0x7f != 0 || (hdr.requesttype & 0x80 != 0) != dir_in {
            warn!(endpoint = hdr.endpoint, requesttype = hdr.requesttype, "usbredir: invalid control packet");
            reply.status = Status::INVAL;
            return self.send(id, &Packet::Control(reply, &[]));
        }
        let setup = Setup {
            request_type: hdr.requesttype,
            request: hdr.request,
            value: hdr.value,
            index: hdr.index,
            length: hdr.length,
        };
        let result = dev.control(&setup, data);
        // A standard SET_CONFIGURATION / SET_INTERFACE sent as a plain control
        // transfer changes the endpoints just as the dedicated packets do.
        let reconfigured = matches!((hdr.requesttype, hdr.request), (0x00, 0x09) | (0x01, 0x0b));
        match result {
            ControlResult::Data(bytes) if dir_in => {
                let n = bytes.len().min(usize::from(hdr.length)).min(MAX_CONTROL_IN);
                if n < bytes.len() {
                    warn!(len = bytes.len(), sent = n, "usbredir: control IN reply cut");
                }
                reply.status = Status::SUCCESS;
                reply.length = u16::try_from(n).unwrap_or(u16::MAX);
                let payload = bytes.get(..n).unwrap_or_default();
                self.send(id, &Packet::Control(reply, payload))
            }
            ControlResult::Data(_) | ControlResult::Ack => {
                if reconfigured && !dir_in {
                    self.cancel_queued(|_| true)?;
                    self.send_interface_and_ep_info(dev)?;
                }
                reply.status = Status::SUCCESS;
                reply.length = if dir_in { 0 } else { hdr.length };
                self.send(id, &Packet::Control(reply, &[]))
            }
            ControlResult::Stall => {
                reply.status = Status::STALL;
                self.send(id, &Packet::Control(reply, &[]))
            }
        }
    }

    fn bulk<D: UsbDevice + ?Sized>(
        &mut self,
        dev: &mut D,
        id: u64,
        hdr: BulkHeader,
        data: &[u8],
    ) -> Result<(), SessionError> {
        let is_in = hdr.endpoint & 0x80 != 0;
        if !self.bulk_admitted(id, hdr, data.len())? {
            return Ok(());
        }
        if is_in {
            let queue = self.in_queue(hdr.endpoint);
            if queue.len() >= MAX_QUEUED_IN {
                warn!(endpoint = hdr.endpoint, "usbredir: too many bulk IN requests held");
                let refusal = BulkHeader { status: Status::INVAL, length: 0, ..hdr };
                return self.send(id, &Packet::Bulk(refusal, &[]));
            }
            queue.push_back(PendingIn {
                id,
                endpoint: hdr.endpoint,
                stream_id: hdr.stream_id,
                length: hdr.length,
            });
            return Ok(());
        }
        let result = dev.bulk_out(hdr.endpoint, data);
        self.send(id, &Packet::Bulk(out_reply(hdr, result, data.len()), &[]))
    }

    /// Checks of a bulk packet carrying `data_len` bytes: a malformed one
    /// ends the session, one the device cannot serve is refused (`Ok(false)`,
    /// the refusal queued).
    fn bulk_admitted(&mut self, id: u64, hdr: BulkHeader, data_len: usize) -> Result<bool, SessionError> {
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
            self.send(id, &reject(Status::INVAL))?;
            return Ok(false);
        }
        if hdr.stream_id != 0 {
            warn!(
                endpoint = hdr.endpoint,
                stream = hdr.stream_id,
                "usbredir: bulk stream requested, none allocated"
            );
            self.send(id, &reject(Status::INVAL))?;
            return Ok(false);
        }
        if hdr.length > MAX_BULK_LENGTH {
            warn!(
                endpoint = hdr.endpoint,
                len = hdr.length,
                max = MAX_BULK_LENGTH,
                "usbredir: bulk transfer too long"
            );
            self.send(id, &reject(Status::INVAL))?;
            return Ok(false);
        }
        Ok(true)
    }

    /// A large bulk OUT frame in `buf` with its data at `range`: checked like
    /// any bulk packet, then offered to the device with the buffer. Returns
    /// the buffer to receive the next frames into.
    fn bulk_out_lent<D: UsbDevice + ?Sized>(
        &mut self,
        dev: &mut D,
        id: u64,
        hdr: BulkHeader,
        buf: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<u8>, SessionError> {
        let len = range.len();
        if !self.bulk_admitted(id, hdr, len)? {
            return Ok(buf);
        }
        let (result, returned) = dev.bulk_out_owned(hdr.endpoint, buf, range);
        self.send(id, &Packet::Bulk(out_reply(hdr, result, len), &[]))?;
        Ok(match returned {
            Some(buf) => buf,
            None => {
                self.lent = true;
                std::mem::take(&mut self.spare)
            }
        })
    }

    /// Whether the device kept a frame buffer whose work waits for
    /// [`UsbDevice::run_deferred`]: the edge calls it after sending the
    /// output and hands the buffer back with [`Session::reclaim`].
    pub fn has_lent_buffer(&self) -> bool {
        self.lent
    }

    /// Takes back a buffer [`UsbDevice::run_deferred`] returned, for reuse.
    pub fn reclaim(&mut self, buf: Option<Vec<u8>>) {
        self.lent = false;
        if let Some(buf) = buf
            && buf.len() <= KEEP_BUFFER
            && buf.len() > self.spare.len()
        {
            self.spare = buf;
        }
    }

    fn in_queue(&mut self, endpoint: u8) -> &mut VecDeque<PendingIn> {
        // `& 0x0f` keeps the index below the array's 16 entries.
        &mut self.in_queues[usize::from(endpoint & 0x0f)]
    }

    /// Answers held bulk IN requests in FIFO order per endpoint for as long
    /// as the device has data (or a STALL) for the head of each queue. IN
    /// data is read straight into the output buffer behind a reserved prefix.
    fn drain_in<D: UsbDevice + ?Sized>(&mut self, dev: &mut D) -> Result<(), SessionError> {
        let prefix = codec::bulk_prefix_len(self.fmt);
        for q in 0..self.in_queues.len() {
            while let Some(p) = self.in_queues.get(q).and_then(VecDeque::front).copied() {
                if self.out.len() >= MAX_PENDING_OUTPUT {
                    return Ok(());
                }
                let start = self.out.len();
                let req = usize::try_from(p.length).unwrap_or(0);
                self.out.resize(start + prefix + req, 0);
                let result = match self.out.get_mut(start + prefix..) {
                    Some(buf) => dev.bulk_in(p.endpoint, buf),
                    None => InResult::Pending,
                };
                match result {
                    InResult::Pending => {
                        self.out.truncate(start);
                        break;
                    }
                    InResult::Data(n) => {
                        let n = n.min(req);
                        self.out.truncate(start + prefix + n);
                        let hdr = BulkHeader {
                            endpoint: p.endpoint,
                            status: Status::SUCCESS,
                            length: u32::try_from(n).unwrap_or(p.length),
                            stream_id: p.stream_id,
                        };
                        let dst = self.out.get_mut(start..start + prefix).unwrap_or_default();
                        codec::write_bulk_prefix(self.fmt, p.id, &hdr, n, dst)?;
                    }
                    InResult::Stall => {
                        self.out.truncate(start);
                        let hdr = BulkHeader {
                            endpoint: p.endpoint,
                            status: Status::STALL,
                            length: 0,
                            stream_id: p.stream_id,
                        };
                        self.send(p.id, &Packet::Bulk(hdr, &[]))?;
                    }
                }
                if let Some(queue) = self.in_queues.get_mut(q) {
                    queue.pop_front();
                }
            }
        }
        Ok(())
    }

    /// cancel_data_packet: a held request is answered `cancelled` exactly
    /// once; a request already answered is left alone (protocol
    /// §cancel_data_packet: the guest gets one reply per id either way).
    fn cancel(&mut self, id: u64) -> Result<(), SessionError> {
        for q in 0..self.in_queues.len() {
            let Some(queue) = self.in_queues.get_mut(q) else { continue };
            if let Some(pos) = queue.iter().position(|p| p.id == id)
                && let Some(p) = queue.remove(pos)
            {
                debug!(id, endpoint = p.endpoint, "usbredir: bulk IN request cancelled");
                return self.send_cancelled(p);
            }
        }
        debug!(id, "usbredir: cancel for a packet already completed");
        Ok(())
    }

    /// Answers every held request matching `which` with status `cancelled`.
    fn cancel_queued(&mut self, which: impl Fn(&PendingIn) -> bool) -> Result<(), SessionError> {
        for q in 0..self.in_queues.len() {
            let Some(queue) = self.in_queues.get_mut(q) else { continue };
            let (gone, kept): (VecDeque<_>, VecDeque<_>) =
                std::mem::take(queue).into_iter().partition(&which);
            *queue = kept;
            for p in gone {
                self.send_cancelled(p)?;
            }
        }
        Ok(())
    }

    fn send_cancelled(&mut self, p: PendingIn) -> Result<(), SessionError> {
        let hdr =
            BulkHeader { endpoint: p.endpoint, status: Status::CANCELLED, length: 0, stream_id: p.stream_id };
        self.send(p.id, &Packet::Bulk(hdr, &[]))
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
