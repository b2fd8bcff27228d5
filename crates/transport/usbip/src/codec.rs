//! USB/IP wire format, sans-io: every message of the management phase
//! (`op_common`, OP_REQ/REP_DEVLIST, OP_REQ/REP_IMPORT) and of the URB phase
//! (CMD_SUBMIT, RET_SUBMIT, CMD_UNLINK, RET_UNLINK).
//!
//! Layout and field meanings follow Linux `Documentation/usb/usbip_protocol.rst`
//! and `drivers/usb/usbip/usbip_common.h`; all integers are big-endian except
//! the 8 setup bytes, which are the raw USB setup packet (little-endian inside).
//!
//! Decoders are total: for any input they return a message with the number of
//! bytes it used, [`Decoded::NeedMore`], or a [`CodecError`]. Peer-controlled
//! lengths are checked against [`MAX_TRANSFER_LENGTH`] / [`MAX_DEVLIST_DEVICES`]
//! before anything is allocated or waited for.
//!
//! Isochronous transfers are not supported: vstick exports no isochronous
//! endpoint, and Linux sends iso packet descriptors only for isochronous pipes,
//! so a CMD_SUBMIT is always header + (OUT) data.

use std::fmt;

/// USB/IP protocol version 1.1.1 (usbip_protocol.rst "Protocol Version");
/// the Linux tools reject any other value.
pub const VERSION: u16 = 0x0111;
/// `op_common`: version, code, status.
pub const OP_COMMON_LEN: usize = 8;
/// `busid` field (SYSFS_BUS_ID_SIZE), NUL-terminated.
pub const BUSID_LEN: usize = 32;
/// `path` field (SYSFS_PATH_MAX), NUL-terminated.
pub const PATH_LEN: usize = 256;
/// `struct usbip_usb_device` on the wire.
pub const DEVICE_RECORD_LEN: usize = 312;
/// `struct usbip_usb_interface` on the wire (class, subclass, protocol, pad).
pub const INTERFACE_RECORD_LEN: usize = 4;
/// Every URB-phase header (`struct usbip_header`) is padded to 48 bytes.
pub const URB_HEADER_LEN: usize = 48;
/// OP_REQ_IMPORT: `op_common` + busid.
pub const IMPORT_REQUEST_LEN: usize = OP_COMMON_LEN + BUSID_LEN;

/// Largest `transfer_buffer_length` (and RET_SUBMIT `actual_length`) accepted,
/// 16 MiB. Linux usb-storage sends at most `max_sectors` × 512 bytes per URB
/// (120 KiB by default, 32 MiB only if an administrator raises the limit far
/// beyond any real stick); the cap bounds what one URB can make us buffer.
pub const MAX_TRANSFER_LENGTH: u32 = 16 << 20;

/// Largest device count accepted when decoding OP_REP_DEVLIST (clients only;
/// vstick exports one device).
pub const MAX_DEVLIST_DEVICES: u32 = 256;

/// Negative errno values carried in RET_SUBMIT / RET_UNLINK `status` (Linux
/// URB status codes, Documentation/driver-api/usb/error-codes.rst).
pub mod errno {
    /// Endpoint stalled.
    pub const EPIPE: i32 = -32;
    /// URB unlinked (RET_UNLINK of a request still pending).
    pub const ECONNRESET: i32 = -104;
    /// Babble: more data than the buffer holds.
    pub const EOVERFLOW: i32 = -75;
    /// Protocol error.
    pub const EPROTO: i32 = -71;
    /// Device gone.
    pub const ENODEV: i32 = -19;
}

/// Why bytes could not be decoded. Every variant closes the connection: the
/// stream cannot be re-synchronised after a framing error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// `op_common.version` is not [`VERSION`].
    #[error("unsupported USB/IP version {0:#06x} (expected 0x0111)")]
    UnsupportedVersion(u16),
    /// `op_common.code` is not a request (or reply) this side accepts.
    #[error("unknown operation code {0:?}")]
    UnknownOpCode(OpCode),
    /// `usbip_header_basic.command` is not a command this side accepts.
    #[error("unknown URB command {0:?}")]
    UnknownCommand(UrbCommand),
    /// CMD_SUBMIT `direction` is neither OUT (0) nor IN (1).
    #[error("invalid direction {0:?} in CMD_SUBMIT")]
    BadDirection(Direction),
    /// `transfer_buffer_length` or `actual_length` above [`MAX_TRANSFER_LENGTH`].
    #[error("transfer length {length} exceeds the {max}-byte cap")]
    TransferTooLong {
        /// The length on the wire.
        length: u32,
        /// The cap it exceeds.
        max: u32,
    },
    /// OP_REP_DEVLIST announces more than [`MAX_DEVLIST_DEVICES`] devices.
    #[error("device list of {0} entries exceeds the cap of {MAX_DEVLIST_DEVICES}")]
    TooManyDevices(u32),
    /// A string to encode does not fit its fixed field with a NUL, or holds a NUL.
    #[error("string of {len} bytes does not fit a {field}-byte NUL-terminated field")]
    StringTooLong {
        /// Length of the string in bytes.
        len: usize,
        /// Size of the field, terminator included.
        field: usize,
    },
}

/// Outcome of a successful decode step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    /// A whole message that used `consumed` bytes from the start of the input.
    Done {
        /// The decoded message.
        message: T,
        /// Bytes of input it took.
        consumed: usize,
    },
    /// The input is a valid prefix; call again with more bytes.
    NeedMore,
}

impl<T> Decoded<T> {
    /// Converts the message of a `Done`, keeping `consumed`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Decoded<U> {
        match self {
            Decoded::Done { message, consumed } => Decoded::Done { message: f(message), consumed },
            Decoded::NeedMore => Decoded::NeedMore,
        }
    }
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident($repr:ty) { $($(#[$cmeta:meta])* $konst:ident = $value:expr,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub $repr);

        impl $name {
            $($(#[$cmeta])* pub const $konst: Self = Self($value);)*

            /// The constant's name, `None` for a value with no name.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(Self::$konst => Some(stringify!($konst)),)*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
                }
            }
        }
    };
}

wire_enum! {
    /// `op_common.code` (usbip_common.h / usbip_network.h).
    OpCode(u16) {
        /// OP_REQ_DEVLIST: client asks for the list of exported devices.
        REQ_DEVLIST = 0x8005,
        /// OP_REP_DEVLIST: server's device list.
        REP_DEVLIST = 0x0005,
        /// OP_REQ_IMPORT: client asks to attach the device with a busid.
        REQ_IMPORT = 0x8003,
        /// OP_REP_IMPORT: server's answer to an import, with the device record on success.
        REP_IMPORT = 0x0003,
    }
}

wire_enum! {
    /// `op_common.status` (usbip_network.h ST_*).
    OpStatus(u32) {
        /// ST_OK: request completed.
        OK = 0,
        /// ST_NA: request failed (device not available).
        NA = 1,
        /// ST_DEV_BUSY: the device is already exported to another client.
        DEV_BUSY = 2,
        /// ST_DEV_ERR: the device is in an error state.
        DEV_ERR = 3,
        /// ST_NODEV: no device with that busid.
        NODEV = 4,
        /// ST_ERROR: unexpected error.
        ERROR = 5,
    }
}

wire_enum! {
    /// `enum usb_device_speed` as carried in the device record.
    WireSpeed(u32) {
        /// Speed not known.
        UNKNOWN = 0,
        /// Low speed (1.5 Mbit/s).
        LOW = 1,
        /// Full speed (12 Mbit/s).
        FULL = 2,
        /// High speed (480 Mbit/s).
        HIGH = 3,
        /// Wireless USB.
        WIRELESS = 4,
        /// SuperSpeed (5 Gbit/s).
        SUPER = 5,
        /// SuperSpeed Plus (10 Gbit/s and up).
        SUPER_PLUS = 6,
    }
}

wire_enum! {
    /// `usbip_header_basic.command`.
    UrbCommand(u32) {
        /// USBIP_CMD_SUBMIT: client submits a URB.
        CMD_SUBMIT = 1,
        /// USBIP_CMD_UNLINK: client cancels a submitted URB.
        CMD_UNLINK = 2,
        /// USBIP_RET_SUBMIT: server completes a URB.
        RET_SUBMIT = 3,
        /// USBIP_RET_UNLINK: server answers an unlink.
        RET_UNLINK = 4,
    }
}

wire_enum! {
    /// `usbip_header_basic.direction`.
    Direction(u32) {
        /// USBIP_DIR_OUT: host to device.
        OUT = 0,
        /// USBIP_DIR_IN: device to host.
        IN = 1,
    }
}

/// A fixed-size, NUL-terminated string field. The raw bytes are kept as
/// received (Windows clients leave garbage after the NUL); comparisons that
/// matter use [`FixedStr::as_bytes`], which stops at the first NUL.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedStr<const N: usize>([u8; N]);

/// The 32-byte busid field.
pub type BusId = FixedStr<BUSID_LEN>;
/// The 256-byte sysfs path field.
pub type SysfsPath = FixedStr<PATH_LEN>;

impl<const N: usize> FixedStr<N> {
    /// `s` zero-padded; it must leave room for the terminating NUL and hold none itself.
    pub fn new(s: &str) -> Result<Self, CodecError> {
        let bytes = s.as_bytes();
        if bytes.len() >= N || bytes.contains(&0) {
            return Err(CodecError::StringTooLong { len: bytes.len(), field: N });
        }
        let mut raw = [0u8; N];
        if let Some(head) = raw.get_mut(..bytes.len()) {
            head.copy_from_slice(bytes);
        }
        Ok(Self(raw))
    }

    /// The field exactly as it travels, bytes after the NUL included.
    pub const fn from_raw(raw: [u8; N]) -> Self {
        Self(raw)
    }

    /// All `N` bytes as received or to be sent.
    pub fn raw(&self) -> &[u8; N] {
        &self.0
    }

    /// The bytes before the first NUL (all of them if there is none).
    pub fn as_bytes(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(N);
        self.0.get(..end).unwrap_or(&[])
    }

    /// [`as_bytes`](Self::as_bytes) decoded as UTF-8, invalid sequences replaced.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }
}

impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        Self([0; N])
    }
}

impl<const N: usize> fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string_lossy(), f)
    }
}

// ---------------------------------------------------------------------------
// Total reader

/// The input ended inside a message.
struct Short;

enum Fail {
    Short,
    Bad(CodecError),
}

impl From<Short> for Fail {
    fn from(_: Short) -> Self {
        Fail::Short
    }
}

impl From<CodecError> for Fail {
    fn from(e: CodecError) -> Self {
        Fail::Bad(e)
    }
}

fn finish<T>(result: Result<(T, usize), Fail>) -> Result<Decoded<T>, CodecError> {
    match result {
        Ok((message, consumed)) => Ok(Decoded::Done { message, consumed }),
        Err(Fail::Short) => Ok(Decoded::NeedMore),
        Err(Fail::Bad(e)) => Err(e),
    }
}

struct Reader<'a> {
    rest: &'a [u8],
    consumed: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf, consumed: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(Short)?;
        self.rest = tail;
        self.consumed += n;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        self.take(N)?.try_into().map_err(|_| Short)
    }

    fn u8(&mut self) -> Result<u8, Short> {
        let [b] = self.array()?;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, Short> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Short> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, Short> {
        Ok(i32::from_be_bytes(self.array()?))
    }
}

// ---------------------------------------------------------------------------
// Management phase

/// The 8-byte header of every management message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpCommon {
    /// Protocol version, [`VERSION`].
    pub version: u16,
    /// Which request or reply this is.
    pub code: OpCode,
    /// Outcome in a reply; unused (0) in a request.
    pub status: OpStatus,
}

impl OpCommon {
    /// A header with the current [`VERSION`].
    pub fn new(code: OpCode, status: OpStatus) -> Self {
        Self { version: VERSION, code, status }
    }

    /// The 8 wire bytes, big-endian.
    pub fn to_bytes(&self) -> [u8; OP_COMMON_LEN] {
        let mut b = [0u8; OP_COMMON_LEN];
        let (version, rest) = b.split_at_mut(2);
        let (code, status) = rest.split_at_mut(2);
        version.copy_from_slice(&self.version.to_be_bytes());
        code.copy_from_slice(&self.code.0.to_be_bytes());
        status.copy_from_slice(&self.status.0.to_be_bytes());
        b
    }

    /// Reads the header and rejects any version other than [`VERSION`], as the
    /// Linux tools do (usbip_network.c `usbip_net_recv_op_common`).
    fn read(r: &mut Reader<'_>) -> Result<Self, Fail> {
        let version = r.u16()?;
        if version != VERSION {
            return Err(CodecError::UnsupportedVersion(version).into());
        }
        Ok(Self { version, code: OpCode(r.u16()?), status: OpStatus(r.u32()?) })
    }
}

/// A request from a client in the management phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpRequest {
    /// OP_REQ_DEVLIST: list the exported devices.
    Devlist,
    /// OP_REQ_IMPORT: attach the device with this busid.
    Import {
        /// Bus id of the device to import, as listed by OP_REP_DEVLIST.
        busid: BusId,
    },
}

impl OpRequest {
    /// Appends the request's wire bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            OpRequest::Devlist => {
                out.extend_from_slice(&OpCommon::new(OpCode::REQ_DEVLIST, OpStatus::OK).to_bytes())
            }
            OpRequest::Import { busid } => {
                out.extend_from_slice(&OpCommon::new(OpCode::REQ_IMPORT, OpStatus::OK).to_bytes());
                out.extend_from_slice(busid.raw());
            }
        }
    }

    /// Length of the request at the start of `buf` once its 8-byte header is
    /// in (`Ok(None)` before); the version and code are checked here.
    pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, CodecError> {
        let mut r = Reader::new(buf);
        let common = match OpCommon::read(&mut r) {
            Ok(common) => common,
            Err(Fail::Short) => return Ok(None),
            Err(Fail::Bad(e)) => return Err(e),
        };
        match common.code {
            OpCode::REQ_DEVLIST => Ok(Some(OP_COMMON_LEN)),
            OpCode::REQ_IMPORT => Ok(Some(IMPORT_REQUEST_LEN)),
            other => Err(CodecError::UnknownOpCode(other)),
        }
    }

    /// Decodes the request at the start of `buf`. The request status field
    /// is "unused, shall be set to 0" and is ignored.
    pub fn decode(buf: &[u8]) -> Result<Decoded<Self>, CodecError> {
        finish((|| {
            let mut r = Reader::new(buf);
            let common = OpCommon::read(&mut r)?;
            let request = match common.code {
                OpCode::REQ_DEVLIST => OpRequest::Devlist,
                OpCode::REQ_IMPORT => OpRequest::Import { busid: BusId::from_raw(r.array()?) },
                other => return Err(CodecError::UnknownOpCode(other).into()),
            };
            Ok((request, r.consumed))
        })())
    }
}

/// `struct usbip_usb_device`: one exported device (312 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRecord {
    /// sysfs path of the device on the server.
    pub path: SysfsPath,
    /// Bus id the client imports the device by (e.g. `1-1`).
    pub busid: BusId,
    /// USB bus number on the server.
    pub busnum: u32,
    /// Device address on that bus.
    pub devnum: u32,
    /// Bus speed.
    pub speed: WireSpeed,
    /// Device descriptor `idVendor`.
    pub vendor_id: u16,
    /// Device descriptor `idProduct`.
    pub product_id: u16,
    /// Device descriptor `bcdDevice`.
    pub bcd_device: u16,
    /// Device descriptor `bDeviceClass`.
    pub device_class: u8,
    /// Device descriptor `bDeviceSubClass`.
    pub device_subclass: u8,
    /// Device descriptor `bDeviceProtocol`.
    pub device_protocol: u8,
    /// The current bConfigurationValue.
    pub configuration_value: u8,
    /// Device descriptor `bNumConfigurations`.
    pub num_configurations: u8,
    /// `bNumInterfaces` of the active configuration; as many interface records
    /// follow in OP_REP_DEVLIST.
    pub num_interfaces: u8,
}

impl DeviceRecord {
    /// Appends the 312-byte record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.path.raw()); // @0x000 path[256]
        out.extend_from_slice(self.busid.raw()); // @0x100 busid[32]
        out.extend_from_slice(&self.busnum.to_be_bytes()); // @0x120
        out.extend_from_slice(&self.devnum.to_be_bytes()); // @0x124
        out.extend_from_slice(&self.speed.0.to_be_bytes()); // @0x128
        out.extend_from_slice(&self.vendor_id.to_be_bytes()); // @0x12C
        out.extend_from_slice(&self.product_id.to_be_bytes()); // @0x12E
        out.extend_from_slice(&self.bcd_device.to_be_bytes()); // @0x130
        out.extend_from_slice(&[
            self.device_class,        // @0x132
            self.device_subclass,     // @0x133
            self.device_protocol,     // @0x134
            self.configuration_value, // @0x135
            self.num_configurations,  // @0x136
            self.num_interfaces,      // @0x137
        ]);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, Short> {
        Ok(Self {
            path: SysfsPath::from_raw(r.array()?),
            busid: BusId::from_raw(r.array()?),
            busnum: r.u32()?,
            devnum: r.u32()?,
            speed: WireSpeed(r.u32()?),
            vendor_id: r.u16()?,
            product_id: r.u16()?,
            bcd_device: r.u16()?,
            device_class: r.u8()?,
            device_subclass: r.u8()?,
            device_protocol: r.u8()?,
            configuration_value: r.u8()?,
            num_configurations: r.u8()?,
            num_interfaces: r.u8()?,
        })
    }
}

/// `struct usbip_usb_interface`: one interface of a DEVLIST entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceRecord {
    /// `bInterfaceClass`.
    pub class: u8,
    /// `bInterfaceSubClass`.
    pub subclass: u8,
    /// `bInterfaceProtocol`.
    pub protocol: u8,
}

/// One OP_REP_DEVLIST entry: the record and `num_interfaces` interface records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedDevice {
    /// The device record.
    pub record: DeviceRecord,
    /// One record per interface of the active configuration.
    pub interfaces: Vec<InterfaceRecord>,
}

impl ExportedDevice {
    /// Appends the entry to `out`. `record.num_interfaces` is written as
    /// `interfaces.len()` so the two can never disagree on the wire.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut record = self.record;
        record.num_interfaces = u8::try_from(self.interfaces.len()).unwrap_or(u8::MAX);
        record.encode(out);
        for i in self.interfaces.iter().take(usize::from(record.num_interfaces)) {
            out.extend_from_slice(&[i.class, i.subclass, i.protocol, 0]);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, Short> {
        let record = DeviceRecord::read(r)?;
        // At most 255 entries: bounded by the u8 count.
        let mut interfaces = Vec::with_capacity(usize::from(record.num_interfaces));
        for _ in 0..record.num_interfaces {
            let [class, subclass, protocol, _pad] = r.array()?;
            interfaces.push(InterfaceRecord { class, subclass, protocol });
        }
        Ok(Self { record, interfaces })
    }
}

/// A server reply in the management phase.
#[expect(clippy::large_enum_variant, reason = "one reply per connection; boxing buys nothing")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpReply {
    /// OP_REP_DEVLIST; the device count and entries follow only when `status` is OK.
    Devlist {
        /// Outcome of the request.
        status: OpStatus,
        /// The exported devices.
        devices: Vec<ExportedDevice>,
    },
    /// OP_REP_IMPORT; the record follows only when `status` is OK
    /// (usbip_protocol.rst: "otherwise the reply ends with the status field").
    Import {
        /// Outcome of the request.
        status: OpStatus,
        /// The imported device's record; `None` unless `status` is OK.
        device: Option<DeviceRecord>,
    },
}

impl OpReply {
    /// Appends the reply's wire bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            OpReply::Devlist { status, devices } => {
                out.extend_from_slice(&OpCommon::new(OpCode::REP_DEVLIST, *status).to_bytes());
                if *status == OpStatus::OK {
                    let count = u32::try_from(devices.len()).unwrap_or(u32::MAX);
                    out.extend_from_slice(&count.to_be_bytes());
                    for d in devices {
                        d.encode(out);
                    }
                }
            }
            OpReply::Import { status, device } => {
                out.extend_from_slice(&OpCommon::new(OpCode::REP_IMPORT, *status).to_bytes());
                if let (OpStatus::OK, Some(record)) = (*status, device) {
                    record.encode(out);
                }
            }
        }
    }

    /// Decodes the reply at the start of `buf`. For clients and tests; the
    /// server never decodes replies.
    pub fn decode(buf: &[u8]) -> Result<Decoded<Self>, CodecError> {
        finish((|| {
            let mut r = Reader::new(buf);
            let common = OpCommon::read(&mut r)?;
            let reply = match common.code {
                OpCode::REP_DEVLIST => {
                    let mut devices = Vec::new();
                    if common.status == OpStatus::OK {
                        let count = r.u32()?;
                        if count > MAX_DEVLIST_DEVICES {
                            return Err(CodecError::TooManyDevices(count).into());
                        }
                        for _ in 0..count {
                            devices.push(ExportedDevice::read(&mut r)?);
                        }
                    }
                    OpReply::Devlist { status: common.status, devices }
                }
                OpCode::REP_IMPORT => {
                    let device =
                        if common.status == OpStatus::OK { Some(DeviceRecord::read(&mut r)?) } else { None };
                    OpReply::Import { status: common.status, device }
                }
                other => return Err(CodecError::UnknownOpCode(other).into()),
            };
            Ok((reply, r.consumed))
        })())
    }
}

// ---------------------------------------------------------------------------
// URB phase

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
