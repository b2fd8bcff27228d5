//! usbredir wire vocabulary: packet types, status codes, speeds, endpoint
//! types, capability bits and the packet structures (usbredir protocol 0.7,
//! `usbredirproto.h`). Values the peer controls are newtypes over the wire
//! integer so unknown values still decode and print in hex.

use std::fmt;

/// Defines a newtype over a wire integer with named constants whose `Debug`
/// prints the name when known and the hex value otherwise.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident($ty:ty) { $($(#[$cm:meta])* $c:ident = $v:expr => $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub $ty);

        impl $name {
            $($(#[$cm])* pub const $c: Self = Self($v);)*

            /// The protocol's name for this value, `None` if unknown.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($v => Some($s),)*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    };
}

wire_enum! {
    /// `usb_redir_header.type`.
    PacketType(u32) {
        /// Both sides, first packet: version string and capability words.
        HELLO = 0 => "hello",
        /// usb-host → guest: a device is attached, with its speed and ids.
        DEVICE_CONNECT = 1 => "device_connect",
        /// usb-host → guest: the device is gone.
        DEVICE_DISCONNECT = 2 => "device_disconnect",
        /// Guest → usb-host: reset the device.
        RESET = 3 => "reset",
        /// usb-host → guest: the active configuration's interfaces.
        INTERFACE_INFO = 4 => "interface_info",
        /// usb-host → guest: type, interval and interface of every endpoint.
        EP_INFO = 5 => "ep_info",
        /// Guest → usb-host: SET_CONFIGURATION; answered by `CONFIGURATION_STATUS`.
        SET_CONFIGURATION = 6 => "set_configuration",
        /// Guest → usb-host: ask the active configuration; answered by `CONFIGURATION_STATUS`.
        GET_CONFIGURATION = 7 => "get_configuration",
        /// usb-host → guest: outcome of a set/get configuration.
        CONFIGURATION_STATUS = 8 => "configuration_status",
        /// Guest → usb-host: SET_INTERFACE; answered by `ALT_SETTING_STATUS`.
        SET_ALT_SETTING = 9 => "set_alt_setting",
        /// Guest → usb-host: ask an interface's alternate setting.
        GET_ALT_SETTING = 10 => "get_alt_setting",
        /// usb-host → guest: outcome of a set/get alt setting.
        ALT_SETTING_STATUS = 11 => "alt_setting_status",
        /// Guest → usb-host: start streaming an isochronous endpoint.
        START_ISO_STREAM = 12 => "start_iso_stream",
        /// Guest → usb-host: stop an isochronous stream.
        STOP_ISO_STREAM = 13 => "stop_iso_stream",
        /// usb-host → guest: state of an isochronous stream.
        ISO_STREAM_STATUS = 14 => "iso_stream_status",
        /// Guest → usb-host: start polling an interrupt IN endpoint.
        START_INTERRUPT_RECEIVING = 15 => "start_interrupt_receiving",
        /// Guest → usb-host: stop polling an interrupt IN endpoint.
        STOP_INTERRUPT_RECEIVING = 16 => "stop_interrupt_receiving",
        /// usb-host → guest: state of interrupt receiving on an endpoint.
        INTERRUPT_RECEIVING_STATUS = 17 => "interrupt_receiving_status",
        /// Guest → usb-host: allocate USB 3 bulk streams.
        ALLOC_BULK_STREAMS = 18 => "alloc_bulk_streams",
        /// Guest → usb-host: free USB 3 bulk streams.
        FREE_BULK_STREAMS = 19 => "free_bulk_streams",
        /// usb-host → guest: outcome of a bulk streams alloc/free.
        BULK_STREAMS_STATUS = 20 => "bulk_streams_status",
        /// Guest → usb-host: cancel the pending data packet with the header's id.
        CANCEL_DATA_PACKET = 21 => "cancel_data_packet",
        /// Guest → usb-host: the guest's filter rejected the device (`filter` cap).
        FILTER_REJECT = 22 => "filter_reject",
        /// Either side: the sender's usbredirfilter rules (`filter` cap).
        FILTER_FILTER = 23 => "filter_filter",
        /// Guest → usb-host: acknowledges `DEVICE_DISCONNECT` (`device_disconnect_ack` cap).
        DEVICE_DISCONNECT_ACK = 24 => "device_disconnect_ack",
        /// Guest → usb-host: start buffered bulk input on an endpoint (`bulk_receiving` cap).
        START_BULK_RECEIVING = 25 => "start_bulk_receiving",
        /// Guest → usb-host: stop buffered bulk input.
        STOP_BULK_RECEIVING = 26 => "stop_bulk_receiving",
        /// usb-host → guest: state of buffered bulk input on an endpoint.
        BULK_RECEIVING_STATUS = 27 => "bulk_receiving_status",
        /// Data packet: a control transfer (setup fields, then data).
        CONTROL_PACKET = 100 => "control_packet",
        /// Data packet: a bulk transfer.
        BULK_PACKET = 101 => "bulk_packet",
        /// Data packet: an isochronous transfer.
        ISO_PACKET = 102 => "iso_packet",
        /// Data packet: an interrupt transfer.
        INTERRUPT_PACKET = 103 => "interrupt_packet",
        /// Data packet: bulk input received while bulk receiving is on.
        BUFFERED_BULK_PACKET = 104 => "buffered_bulk_packet",
    }
}

wire_enum! {
    /// Transfer / request status. Unknown values are errors (protocol §status).
    Status(u8) {
        /// The request or transfer completed.
        SUCCESS = 0 => "success",
        /// The transfer was cancelled.
        CANCELLED = 1 => "cancelled",
        /// Invalid packet type, length, endpoint, etc.
        INVAL = 2 => "inval",
        /// I/O error.
        IOERROR = 3 => "ioerror",
        /// The endpoint stalled.
        STALL = 4 => "stall",
        /// The request timed out.
        TIMEOUT = 5 => "timeout",
        /// The device sent more data than requested (babble).
        BABBLE = 6 => "babble",
    }
}

wire_enum! {
    /// `usb_redir_device_connect_header.speed`.
    Speed(u8) {
        /// Low speed (1.5 Mbit/s).
        LOW = 0 => "low",
        /// Full speed (12 Mbit/s).
        FULL = 1 => "full",
        /// High speed (480 Mbit/s).
        HIGH = 2 => "high",
        /// SuperSpeed (5 Gbit/s).
        SUPER = 3 => "super",
        /// Speed not known.
        UNKNOWN = 255 => "unknown",
    }
}

wire_enum! {
    /// `usb_redir_ep_info_header.type[]`; the first four match USB's bmAttributes.
    EndpointType(u8) {
        /// Control endpoint.
        CONTROL = 0 => "control",
        /// Isochronous endpoint.
        ISO = 1 => "iso",
        /// Bulk endpoint.
        BULK = 2 => "bulk",
        /// Interrupt endpoint.
        INTERRUPT = 3 => "interrupt",
        /// No such endpoint.
        INVALID = 255 => "invalid",
    }
}

/// The first capability word of a hello (bit numbers from `usbredirproto.h`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Caps(pub u32);

impl Caps {
    /// `bulk_streams`: USB 3 bulk streams are supported.
    pub const BULK_STREAMS: Caps = Caps(1 << 0);
    /// `connect_device_version`: device_connect carries `device_version_bcd`.
    pub const CONNECT_DEVICE_VERSION: Caps = Caps(1 << 1);
    /// `filter`: filter_reject and filter_filter packets are supported.
    pub const FILTER: Caps = Caps(1 << 2);
    /// `device_disconnect_ack`: the device_disconnect_ack packet is supported.
    pub const DEVICE_DISCONNECT_ACK: Caps = Caps(1 << 3);
    /// `ep_info_max_packet_size`: ep_info carries `max_packet_size`.
    pub const EP_INFO_MAX_PACKET_SIZE: Caps = Caps(1 << 4);
    /// `64bits_ids`: the packet header id is 64 bits wide.
    pub const IDS_64BIT: Caps = Caps(1 << 5);
    /// `32bits_bulk_length`: bulk packets carry `length_high`.
    pub const BULK_LENGTH_32BIT: Caps = Caps(1 << 6);
    /// `bulk_receiving`: buffered bulk input (start/stop_bulk_receiving) is supported.
    pub const BULK_RECEIVING: Caps = Caps(1 << 7);

    const NAMES: [&'static str; 8] = [
        "bulk_streams",
        "connect_device_version",
        "filter",
        "device_disconnect_ack",
        "ep_info_max_packet_size",
        "64bits_ids",
        "32bits_bulk_length",
        "bulk_receiving",
    ];

    /// Whether every bit of `other` is set here.
    pub fn contains(self, other: Caps) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Caps {
    type Output = Caps;
    fn bitor(self, rhs: Caps) -> Caps {
        Caps(self.0 | rhs.0)
    }
}

impl std::ops::BitAnd for Caps {
    type Output = Caps;
    fn bitand(self, rhs: Caps) -> Caps {
        Caps(self.0 & rhs.0)
    }
}

impl fmt::Debug for Caps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}[", self.0)?;
        let mut first = true;
        for bit in 0..32u32 {
            if self.0 & (1 << bit) == 0 {
                continue;
            }
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            match usize::try_from(bit).ok().and_then(|b| Self::NAMES.get(b)) {
                Some(n) => f.write_str(n)?,
                None => write!(f, "bit{bit}")?,
            }
        }
        f.write_str("]")
    }
}

/// Which optional fields are on the wire: fixed by both hellos (a field is
/// present only when BOTH sides advertise its capability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WireFormat {
    /// 16-byte header with a `u64` id instead of the 12-byte one.
    pub ids_64bit: bool,
    /// `device_connect.device_version_bcd` (10 bytes instead of 8).
    pub connect_device_version: bool,
    /// `ep_info.max_packet_size[32]` (160 bytes instead of 96).
    pub ep_info_max_packet_size: bool,
    /// `ep_info.max_streams[32]` (288 bytes); the spec requires max_packet_size with it.
    pub bulk_streams: bool,
    /// `bulk_packet.length_high` (10 bytes instead of 8).
    pub bulk_length_32bit: bool,
}

impl WireFormat {
    /// The format before hellos are exchanged: every optional field absent,
    /// 32-bit ids (hello always travels with a 12-byte header).
    pub const INITIAL: WireFormat = WireFormat {
        ids_64bit: false,
        connect_device_version: false,
        ep_info_max_packet_size: false,
        bulk_streams: false,
        bulk_length_32bit: false,
    };

    /// The format once both capability words are known.
    pub fn negotiate(ours: Caps, peer: Caps) -> WireFormat {
        let both = ours & peer;
        let ep_mps = both.contains(Caps::EP_INFO_MAX_PACKET_SIZE);
        WireFormat {
            ids_64bit: both.contains(Caps::IDS_64BIT),
            connect_device_version: both.contains(Caps::CONNECT_DEVICE_VERSION),
            ep_info_max_packet_size: ep_mps,
            bulk_streams: ep_mps && both.contains(Caps::BULK_STREAMS),
            bulk_length_32bit: both.contains(Caps::BULK_LENGTH_32BIT),
        }
    }

    /// Whether ep_info carries `max_packet_size` (always with `bulk_streams`,
    /// whose array follows it).
    pub fn ep_info_has_max_packet_size(self) -> bool {
        self.ep_info_max_packet_size || self.bulk_streams
    }

    /// `usb_redir_header` size: type, length and a 32- or 64-bit id.
    pub fn header_len(self) -> usize {
        if self.ids_64bit { 16 } else { 12 }
    }
}

/// `usb_redir_device_connect_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceConnect {
    /// Bus speed the device runs at.
    pub speed: Speed,
    /// Device descriptor `bDeviceClass`.
    pub device_class: u8,
    /// Device descriptor `bDeviceSubClass`.
    pub device_subclass: u8,
    /// Device descriptor `bDeviceProtocol`.
    pub device_protocol: u8,
    /// Device descriptor `idVendor`.
    pub vendor_id: u16,
    /// Device descriptor `idProduct`.
    pub product_id: u16,
    /// Device descriptor `bcdDevice`.
    ///
    /// On the wire only with `connect_device_version`; decodes as 0 otherwise.
    pub device_version_bcd: u16,
}

/// `usb_redir_interface_info_header` (132 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InterfaceInfo {
    /// Number of interfaces in the active configuration. At most 32; larger
    /// counts are a decode error (as in the C parser).
    pub interface_count: u32,
    /// `bInterfaceNumber` of each interface.
    pub interface: [u8; 32],
    /// `bInterfaceClass` of each interface.
    pub interface_class: [u8; 32],
    /// `bInterfaceSubClass` of each interface.
    pub interface_subclass: [u8; 32],
    /// `bInterfaceProtocol` of each interface.
    pub interface_protocol: [u8; 32],
}

/// `usb_redir_ep_info_header`, indexed by [`ep_index`]: 0–15 OUT, 16–31 IN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpInfo {
    /// Transfer type; `INVALID` where the endpoint does not exist.
    pub ep_type: [EndpointType; 32],
    /// Endpoint descriptor `bInterval`.
    pub interval: [u8; 32],
    /// `bInterfaceNumber` the endpoint belongs to.
    pub interface: [u8; 32],
    /// Maximum packet size.
    ///
    /// In bytes (not wMaxPacketSize encoding); only with `ep_info_max_packet_size`.
    pub max_packet_size: [u16; 32],
    /// Maximum number of bulk streams. Only with `bulk_streams`.
    pub max_streams: [u32; 32],
}

impl Default for EpInfo {
    fn default() -> Self {
        Self {
            ep_type: [EndpointType::INVALID; 32],
            interval: [0; 32],
            interface: [0; 32],
            max_packet_size: [0; 32],
            max_streams: [0; 32],
        }
    }
}

/// Index of an endpoint address in the ep_info arrays (protocol §ep_info:
/// "first 0-15 out, then 0-15 in").
pub fn ep_index(address: u8) -> usize {
    usize::from(((address & 0x80) >> 3) | (address & 0x0f))
}

/// `usb_redir_control_packet_header`. Note `request` precedes `requesttype`
/// on the wire, unlike a USB setup packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ControlHeader {
    /// Endpoint address (0x00 or 0x80 for the default pipe); bit 7 is the direction.
    pub endpoint: u8,
    /// Setup `bRequest`.
    pub request: u8,
    /// Setup `bmRequestType`.
    pub requesttype: u8,
    /// Outcome; meaningful in the usb-host's reply only.
    pub status: Status,
    /// Setup `wValue`.
    pub value: u16,
    /// Setup `wIndex`.
    pub index: u16,
    /// Setup `wLength` in a request; bytes actually transferred in the reply.
    pub length: u16,
}

impl Default for Status {
    fn default() -> Self {
        Status::SUCCESS
    }
}

/// `usb_redir_bulk_packet_header` with the length already joined from
/// `length` and `length_high`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BulkHeader {
    /// Endpoint address; bit 7 set for IN.
    pub endpoint: u8,
    /// Outcome; meaningful in the usb-host's reply only.
    pub status: Status,
    /// Bytes requested (IN request, OUT data) or transferred (reply).
    ///
    /// Full 32-bit length; without `32bits_bulk_length` only the low 16 bits travel.
    pub length: u32,
    /// USB 3 bulk stream id; 0 without streams.
    pub stream_id: u32,
}

/// `usb_redir_iso_packet_header` and `usb_redir_interrupt_packet_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SmallDataHeader {
    /// Endpoint address; bit 7 set for IN.
    pub endpoint: u8,
    /// Outcome of the transfer.
    pub status: Status,
    /// Data length in bytes.
    pub length: u16,
}

/// `usb_redir_buffered_bulk_packet_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BufferedBulkHeader {
    /// USB 3 bulk stream id; 0 without streams.
    pub stream_id: u32,
    /// Data length in bytes.
    pub length: u32,
    /// Bulk IN endpoint address.
    pub endpoint: u8,
    /// Outcome of the transfer.
    pub status: Status,
}

/// One usbredir packet. Payload bytes borrow from the decode buffer so a
/// bulk OUT is never copied before it reaches the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// `hello`: first packet from each side.
    Hello {
        /// NUL-padded free-form version string.
        version: [u8; 64],
        /// Capability words; [`Caps`] is the first.
        caps: Vec<u32>,
    },
    /// `device_connect`: a device is attached.
    DeviceConnect(DeviceConnect),
    /// `device_disconnect`: the device is gone.
    DeviceDisconnect,
    /// `reset`: the guest resets the device.
    Reset,
    /// `interface_info`: the active configuration's interfaces.
    InterfaceInfo(Box<InterfaceInfo>),
    /// `ep_info`: the endpoints.
    EpInfo(Box<EpInfo>),
    /// `set_configuration`: select a configuration.
    SetConfiguration {
        /// `bConfigurationValue`.
        configuration: u8,
    },
    /// `get_configuration`: ask the active configuration.
    GetConfiguration,
    /// `configuration_status`: reply to set/get configuration.
    ConfigurationStatus {
        /// Outcome of the request.
        status: Status,
        /// `bConfigurationValue`.
        configuration: u8,
    },
    /// `set_alt_setting`: select an interface's alternate setting.
    SetAltSetting {
        /// `bInterfaceNumber`.
        interface: u8,
        /// `bAlternateSetting`.
        alt: u8,
    },
    /// `get_alt_setting`: ask an interface's alternate setting.
    GetAltSetting {
        /// `bInterfaceNumber`.
        interface: u8,
    },
    /// `alt_setting_status`: reply to set/get alt setting.
    AltSettingStatus {
        /// Outcome of the request.
        status: Status,
        /// `bInterfaceNumber`.
        interface: u8,
        /// `bAlternateSetting`.
        alt: u8,
    },
    /// `start_iso_stream`: start an isochronous stream.
    StartIsoStream {
        /// Endpoint address; bit 7 set for IN.
        endpoint: u8,
        /// Isochronous packets per transfer.
        pkts_per_urb: u8,
        /// Number of transfers kept in flight.
        no_urbs: u8,
    },
    /// `stop_iso_stream`: stop an isochronous stream.
    StopIsoStream {
        /// Endpoint address; bit 7 set for IN.
        endpoint: u8,
    },
    /// `iso_stream_status`: state of an isochronous stream.
    IsoStreamStatus {
        /// Outcome of the request.
        status: Status,
        /// Endpoint address; bit 7 set for IN.
        endpoint: u8,
    },
    /// `start_interrupt_receiving`: start polling an interrupt IN endpoint.
    StartInterruptReceiving {
        /// Endpoint address; bit 7 set for IN.
        endpoint: u8,
    },
    /// `stop_interrupt_receiving`: stop polling an interrupt IN endpoint.
    StopInterruptReceiving {
        /// Endpoint address; bit 7 set for IN.
        endpoint: u8,
    },
    /// `interrupt_receiving_status`: state of interrupt receiving.
    InterruptReceivingStatus {
        /// Outcome of the request.
        status: Status,
        /// Endpoint address; bit 7 set for IN.
        endpoint: u8,
    },
    /// `alloc_bulk_streams`: allocate USB 3 bulk streams.
    AllocBulkStreams {
        /// Bit mask of endpoints, bit n for [`ep_index`] n.
        endpoints: u32,
        /// Number of streams.
        no_streams: u32,
    },
    /// `free_bulk_streams`: free USB 3 bulk streams.
    FreeBulkStreams {
        /// Bit mask of endpoints, bit n for [`ep_index`] n.
        endpoints: u32,
    },
    /// `bulk_streams_status`: reply to alloc/free bulk streams.
    BulkStreamsStatus {
        /// Bit mask of endpoints, bit n for [`ep_index`] n.
        endpoints: u32,
        /// Number of streams.
        no_streams: u32,
        /// Outcome of the request.
        status: Status,
    },
    /// The header id names the packet to cancel.
    CancelDataPacket,
    /// `filter_reject`: the guest's filter rejected the device.
    FilterReject,
    /// NUL-terminated usbredirfilter rule string.
    FilterFilter(&'a [u8]),
    /// `device_disconnect_ack`: the guest acknowledges a disconnect.
    DeviceDisconnectAck,
    /// `start_bulk_receiving`: start buffered bulk input.
    StartBulkReceiving {
        /// USB 3 bulk stream id; 0 without streams.
        stream_id: u32,
        /// Bytes per buffered transfer.
        bytes_per_transfer: u32,
        /// Endpoint address; bit 7 set for IN.
        endpoint: u8,
        /// Number of transfers kept in flight.
        no_transfers: u8,
    },
    /// `stop_bulk_receiving`: stop buffered bulk input.
    StopBulkReceiving {
        /// USB 3 bulk stream id; 0 without streams.
        stream_id: u32,
        /// Endpoint address; bit 7 set for IN.
        endpoint: u8,
    },
    /// `bulk_receiving_status`: state of buffered bulk input.
    BulkReceivingStatus {
        /// USB 3 bulk stream id; 0 without streams.
        stream_id: u32,
        /// Endpoint address; bit 7 set for IN.
        endpoint: u8,
        /// Outcome of the request.
        status: Status,
    },
    /// `control_packet`: header and data (OUT data, or IN data in a reply).
    Control(ControlHeader, &'a [u8]),
    /// `bulk_packet`: header and data (OUT data, or IN data in a reply).
    Bulk(BulkHeader, &'a [u8]),
    /// `iso_packet`: header and data.
    Iso(SmallDataHeader, &'a [u8]),
    /// `interrupt_packet`: header and data.
    Interrupt(SmallDataHeader, &'a [u8]),
    /// `buffered_bulk_packet`: header and received bulk IN data.
    BufferedBulk(BufferedBulkHeader, &'a [u8]),
}

impl Packet<'_> {
    /// The header `type` this packet travels with.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Hello { .. } => PacketType::HELLO,
            Packet::DeviceConnect(_) => PacketType::DEVICE_CONNECT,
            Packet::DeviceDisconnect => PacketType::DEVICE_DISCONNECT,
            Packet::Reset => PacketType::RESET,
            Packet::InterfaceInfo(_) => PacketType::INTERFACE_INFO,
            Packet::EpInfo(_) => PacketType::EP_INFO,
            Packet::SetConfiguration { .. } => PacketType::SET_CONFIGURATION,
            Packet::GetConfiguration => PacketType::GET_CONFIGURATION,
            Packet::ConfigurationStatus { .. } => PacketType::CONFIGURATION_STATUS,
            Packet::SetAltSetting { .. } => PacketType::SET_ALT_SETTING,
            Packet::GetAltSetting { .. } => PacketType::GET_ALT_SETTING,
            Packet::AltSettingStatus { .. } => PacketType::ALT_SETTING_STATUS,
            Packet::StartIsoStream { .. } => PacketType::START_ISO_STREAM,
            Packet::StopIsoStream { .. } => PacketType::STOP_ISO_STREAM,
            Packet::IsoStreamStatus { .. } => PacketType::ISO_STREAM_STATUS,
            Packet::StartInterruptReceiving { .. } => PacketType::START_INTERRUPT_RECEIVING,
            Packet::StopInterruptReceiving { .. } => PacketType::STOP_INTERRUPT_RECEIVING,
            Packet::InterruptReceivingStatus { .. } => PacketType::INTERRUPT_RECEIVING_STATUS,
            Packet::AllocBulkStreams { .. } => PacketType::ALLOC_BULK_STREAMS,
            Packet::FreeBulkStreams { .. } => PacketType::FREE_BULK_STREAMS,
            Packet::BulkStreamsStatus { .. } => PacketType::BULK_STREAMS_STATUS,
            Packet::CancelDataPacket => PacketType::CANCEL_DATA_PACKET,
            Packet::FilterReject => PacketType::FILTER_REJECT,
            Packet::FilterFilter(_) => PacketType::FILTER_FILTER,
            Packet::DeviceDisconnectAck => PacketType::DEVICE_DISCONNECT_ACK,
            Packet::StartBulkReceiving { .. } => PacketType::START_BULK_RECEIVING,
            Packet::StopBulkReceiving { .. } => PacketType::STOP_BULK_RECEIVING,
            Packet::BulkReceivingStatus { .. } => PacketType::BULK_RECEIVING_STATUS,
            Packet::Control(..) => PacketType::CONTROL_PACKET,
            Packet::Bulk(..) => PacketType::BULK_PACKET,
            Packet::Iso(..) => PacketType::ISO_PACKET,
            Packet::Interrupt(..) => PacketType::INTERRUPT_PACKET,
            Packet::BufferedBulk(..) => PacketType::BUFFERED_BULK_PACKET,
        }
    }
}

/// A version string as the NUL-padded 64-byte hello field (truncated to 63
/// bytes so a terminator always remains, as the C parser's snprintf does).
pub fn version_field(version: &str) -> [u8; 64] {
    let mut field = [0u8; 64];
    let bytes = version.as_bytes();
    let n = bytes.len().min(63);
    if let (Some(dst), Some(src)) = (field.get_mut(..n), bytes.get(..n)) {
        dst.copy_from_slice(src);
    }
    field
}

/// The hello version field up to its first NUL, lossily decoded for logs.
pub fn version_text(field: &[u8; 64]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(field.get(..end).unwrap_or_default()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ep_index_maps_out_then_in() {
        assert_eq!(ep_index(0x00), 0);
        assert_eq!(ep_index(0x02), 2);
        assert_eq!(ep_index(0x80), 16);
        assert_eq!(ep_index(0x81), 17);
        assert_eq!(ep_index(0x8f), 31);
        // Reserved bits 4..6 are ignored, never index out of range.
        assert_eq!(ep_index(0x7f), 15);
    }

    #[test]
    fn wire_enums_print_names_or_hex() {
        assert_eq!(format!("{:?}", Status::STALL), "stall");
        assert_eq!(format!("{:?}", Status(9)), "Status(0x9)");
        assert_eq!(format!("{}", PacketType(77)), "PacketType(0x4d)");
        assert_eq!(
            format!("{:?}", Caps(0x72)),
            "0x72[connect_device_version ep_info_max_packet_size 64bits_ids 32bits_bulk_length]"
        );
    }

    #[test]
    fn negotiation_needs_both_sides() {
        let ours = Caps(0x72);
        let qemu = Caps(0xff);
        let f = WireFormat::negotiate(ours, qemu);
        assert!(f.ids_64bit && f.connect_device_version && f.ep_info_max_packet_size && f.bulk_length_32bit);
        assert!(!f.bulk_streams, "we do not advertise bulk_streams");
        assert_eq!(f.header_len(), 16);
        let old_peer = WireFormat::negotiate(ours, Caps::CONNECT_DEVICE_VERSION);
        assert_eq!(old_peer.header_len(), 12);
        assert!(!old_peer.bulk_length_32bit);
    }

    #[test]
    fn version_field_keeps_a_terminator() {
        let long = "x".repeat(100);
        let f = version_field(&long);
        assert_eq!(f[63], 0);
        assert_eq!(version_text(&f).len(), 63);
        assert_eq!(version_text(&version_field("vstick 0.1.0")), "vstick 0.1.0");
    }
}
