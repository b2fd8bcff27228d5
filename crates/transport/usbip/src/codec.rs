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

mod management;
mod urb;

pub use management::{DeviceRecord, ExportedDevice, InterfaceRecord, OpCommon, OpReply, OpRequest};
pub use urb::{ClientMessage, CmdSubmit, CmdUnlink, RetSubmit, RetUnlink, ServerMessage, UrbBasic};
