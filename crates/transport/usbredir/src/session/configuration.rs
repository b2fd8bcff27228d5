//! The device's description and configuration: the packets after the hello,
//! (re)configuration and control transfers on the default pipe.

use tracing::warn;
use vstick_usb::{ControlResult, Setup, TransferType, UsbDevice};

use super::{Cx, MAX_CONTROL_IN, Redir, SessionError, direction_error, set_ep, wire_speed};
use crate::proto::{
    ControlHeader, DeviceConnect, EndpointType, EpInfo, InterfaceInfo, Packet, PacketType, Status, ep_index,
};

impl Redir {
    /// After the peer's hello: describe the device, then attach it.
    pub(super) fn connect_device<D: UsbDevice + ?Sized>(
        &mut self,
        cx: &mut Cx<'_>,
        dev: &mut D,
    ) -> Result<(), SessionError> {
        self.send_interface_and_ep_info(cx, dev)?;
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
        self.send(cx.out, 0, &Packet::DeviceConnect(connect))
    }

    /// interface_info then ep_info, the order usbredirhost uses; QEMU rejects
    /// a device whose interface_info never arrived.
    pub(super) fn send_interface_and_ep_info<D: UsbDevice + ?Sized>(
        &mut self,
        cx: &mut Cx<'_>,
        dev: &mut D,
    ) -> Result<(), SessionError> {
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
        self.send(cx.out, 0, &Packet::InterfaceInfo(Box::new(ifs)))?;
        self.send(cx.out, 0, &Packet::EpInfo(Box::new(eps)))?;
        self.ep_info = eps;
        Ok(())
    }

    pub(super) fn set_configuration<D: UsbDevice + ?Sized>(
        &mut self,
        cx: &mut Cx<'_>,
        dev: &mut D,
        id: u64,
        configuration: u8,
    ) -> Result<(), SessionError> {
        // Setting the active configuration again changes nothing (usbredirhost
        // answers it without touching the device).
        if configuration == dev.configuration() {
            return self.send(
                cx.out,
                id,
                &Packet::ConfigurationStatus { status: Status::SUCCESS, configuration },
            );
        }
        let status = if dev.set_configuration(configuration) {
            // The endpoints are gone or reset: held requests end here, once.
            self.cancel_queued(cx, |_| true)?;
            // Protocol §configuration_status: new info before the status.
            self.send_interface_and_ep_info(cx, dev)?;
            Status::SUCCESS
        } else {
            // A real device STALLs an invalid SET_CONFIGURATION; QEMU passes
            // STALL through to the guest (inval would become an I/O error).
            Status::STALL
        };
        let configuration = dev.configuration();
        self.send(cx.out, id, &Packet::ConfigurationStatus { status, configuration })
    }

    pub(super) fn set_alt_setting<D: UsbDevice + ?Sized>(
        &mut self,
        cx: &mut Cx<'_>,
        dev: &mut D,
        id: u64,
        interface: u8,
        alt: u8,
    ) -> Result<(), SessionError> {
        if dev.alt_setting(interface).is_none() {
            return self.send(
                cx.out,
                id,
                &Packet::AltSettingStatus { status: Status::INVAL, interface, alt: 0xff },
            );
        }
        let status = if dev.set_alt_setting(interface, alt) {
            let ep_interface = self.ep_info.interface;
            let ep_type = self.ep_info.ep_type;
            // Only this interface's endpoints are reset by SET_INTERFACE.
            self.cancel_queued(cx, |p| {
                let i = ep_index(p.endpoint);
                ep_interface.get(i) == Some(&interface) && ep_type.get(i) != Some(&EndpointType::CONTROL)
            })?;
            self.send_interface_and_ep_info(cx, dev)?;
            Status::SUCCESS
        } else {
            Status::STALL
        };
        let alt = dev.alt_setting(interface).unwrap_or(0xff);
        self.send(cx.out, id, &Packet::AltSettingStatus { status, interface, alt })
    }

    pub(super) fn control<D: UsbDevice + ?Sized>(
        &mut self,
        cx: &mut Cx<'_>,
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
            return self.send(cx.out, id, &Packet::Control(reply, &[]));
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
                self.send(cx.out, id, &Packet::Control(reply, payload))
            }
            ControlResult::Data(_) | ControlResult::Ack => {
                if reconfigured && !dir_in {
                    self.cancel_queued(cx, |_| true)?;
                    self.send_interface_and_ep_info(cx, dev)?;
                }
                reply.status = Status::SUCCESS;
                reply.length = if dir_in { 0 } else { hdr.length };
                self.send(cx.out, id, &Packet::Control(reply, &[]))
            }
            ControlResult::Stall => {
                reply.status = Status::STALL;
                self.send(cx.out, id, &Packet::Control(reply, &[]))
            }
        }
    }
}
