//! The management phase: OP_REQ_DEVLIST / OP_REQ_IMPORT and their replies.

use super::*;

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
