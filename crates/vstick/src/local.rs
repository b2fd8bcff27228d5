//! `vstick serve --local`: the stick plugged into this machine through Linux
//! vhci-hcd, USB/IP's virtual host controller, with no usbip tool, VM or network.
//!
//! vhci-hcd takes a connected stream socket through its sysfs `attach` file
//! (`"PORT SOCKFD DEVID SPEED"`, drivers/usb/usbip/vhci_sysfs.c) and from then
//! on sends USB/IP URBs on it; the usbip tool's OP_REQ_IMPORT exchange happens
//! before that and is skipped here, so the session starts imported
//! ([`Usbip::imported_session`]). The socket is one end of an AF_UNIX
//! socketpair: `attach_store` only asks `sockfd_lookup` for a socket and
//! checks `socket->type == SOCK_STREAM`, never the address family.
//!
//! The sysfs parsing (`status` files, which port to take, which block devices
//! belong to the attached device) is plain functions over text and paths, so
//! the unit tests run it on fixtures; the writes to `attach` and `detach` are
//! the only calls that need the real kernel (tests/guest/local.sh).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use vstick_transport::Connection;
use vstick_usb::{MassStorageDevice, Speed};
use vstick_usbip::{ExportInfo, Usbip};

use crate::serve::LunSpec;

/// vhci-hcd's first controller; `attach`, `detach` and every `status*` file live here.
pub const VHCI_DIR: &str = "/sys/devices/platform/vhci_hcd.0";
/// `sta` of a free port (`VDEV_ST_NULL`, drivers/usb/usbip/usbip_common.h).
const VDEV_ST_NULL: u32 = 4;
/// How long the block devices may take to appear (usb-storage waits `delay_use`, 1 s,
/// before scanning, then sd/sr probe every LUN).
const APPEAR_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the kernel may take to close the socket after `detach`.
const DETACH_TIMEOUT: Duration = Duration::from_secs(10);

/// Which root hub a vhci port hangs off: every controller has as many
/// high-speed as SuperSpeed ports, and a device must sit on the hub of its speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hub {
    High,
    Super,
}

/// One line of a vhci `status` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    pub hub: Hub,
    /// The number `attach` and `detach` take (unique across controllers).
    pub port: u32,
    /// `VDEV_ST_*`: 4 free, 5 attached but not yet enumerated, 6 in use.
    pub sta: u32,
    /// The USB device's name (`3-1`) once enumerated, `0-0` before.
    pub busid: String,
}

impl PortStatus {
    pub fn is_free(&self) -> bool {
        self.sta == VDEV_ST_NULL
    }
}

/// Parses a `status` file: `hub port sta spd dev sockfd local_busid` per line
/// after a header (Linux 4.13+; older kernels had no `hub` column and only
/// high-speed ports).
pub fn parse_status(text: &str) -> Vec<PortStatus> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (hub, rest) = match fields.first() {
                Some(&"hs") => (Hub::High, fields.get(1..)?),
                Some(&"ss") => (Hub::Super, fields.get(1..)?),
                _ => (Hub::High, &fields[..]),
            };
            let port = rest.first()?.parse().ok()?;
            let sta = rest.get(1)?.parse().ok()?;
            let busid = rest.last()?.to_string();
            Some(PortStatus { hub, port, sta, busid })
        })
        .collect()
}

/// The free port for a device of `speed` (`None`: SuperSpeed if a SuperSpeed
/// port is free, else high speed), and the speed the device must then have.
pub fn pick_port(ports: &[PortStatus], speed: Option<Speed>) -> anyhow::Result<(u32, Speed)> {
    let free = |hub: Hub| ports.iter().find(|p| p.hub == hub && p.is_free()).map(|p| p.port);
    let chosen = match speed {
        Some(Speed::Super) => free(Hub::Super).map(|p| (p, Speed::Super)),
        Some(Speed::High | Speed::Full) => free(Hub::High).map(|p| (p, Speed::High)),
        None => {
            free(Hub::Super).map(|p| (p, Speed::Super)).or_else(|| free(Hub::High).map(|p| (p, Speed::High)))
        }
    };
    if let Some(chosen) = chosen {
        return Ok(chosen);
    }
    let count = |hub: Hub| ports.iter().filter(|p| p.hub == hub).count();
    let which = match speed {
        Some(Speed::Super) => format!("SuperSpeed vhci-hcd port ({} exist", count(Hub::Super)),
        Some(_) => format!("high-speed vhci-hcd port ({} exist", count(Hub::High)),
        None => format!(
            "vhci-hcd port ({} high-speed and {} SuperSpeed exist",
            count(Hub::High),
            count(Hub::Super)
        ),
    };
    bail!(
        "no free {which}, all in use): detach a device (`usbip port`, then `usbip detach -p N`) \
         or reload vhci-hcd with more controllers (`modprobe -r vhci-hcd; modprobe vhci-hcd nr_hcs=2`)"
    )
}

/// The kernel's `enum usb_device_speed` value `attach` takes.
fn kernel_speed(speed: Speed) -> u32 {
    match speed {
        Speed::Full => 2,
        Speed::High => 3,
        Speed::Super => 5,
    }
}

/// vhci-hcd's sysfs directory with its `attach` file open for writing: opened
/// before any image, so a missing module or missing privileges are reported alone.
#[derive(Debug)]
pub struct Vhci {
    dir: PathBuf,
    attach: File,
}

impl Vhci {
    /// The vhci-hcd of this machine, loading the module if it is not loaded.
    pub fn open() -> anyhow::Result<Self> {
        let dir = PathBuf::from(VHCI_DIR);
        if !dir.is_dir() {
            load_module(&dir)?;
        }
        Self::at(dir)
    }

    /// The vhci-hcd sysfs directory `dir` (tests give a fixture).
    pub fn at(dir: PathBuf) -> anyhow::Result<Self> {
        let path = dir.join("attach");
        let attach = std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| {
            // EACCES or EPERM: the file is root's (mode 0200).
            if e.kind() == io::ErrorKind::PermissionDenied {
                anyhow::anyhow!(
                    "cannot write {}: permission denied; plugging a device into this machine needs root \
                     (run vstick serve --local with sudo)",
                    path.display()
                )
            } else {
                anyhow::anyhow!("cannot open {}: {e}", path.display())
            }
        })?;
        Ok(Self { dir, attach })
    }

    /// Every port of every vhci controller (`status`, `status.1`, ...).
    pub fn ports(&self) -> anyhow::Result<Vec<PortStatus>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .with_context(|| format!("cannot list {}", self.dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("status")))
            .collect();
        files.sort();
        let mut ports = Vec::new();
        for file in files {
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            ports.extend(parse_status(&text));
        }
        Ok(ports)
    }

    /// The port's line, once the kernel has enumerated the device on it.
    fn busid(&self, port: u32) -> Option<String> {
        let ports = self.ports().ok()?;
        ports.into_iter().find(|p| p.port == port && p.busid != "0-0" && !p.is_free()).map(|p| p.busid)
    }

    /// Hands `socket` to the kernel on a free port for a device of `speed`
    /// (chosen by [`pick_port`] before the device was built). Another process
    /// may take that port first: the kernel then refuses it and the next free
    /// port of the same hub is tried.
    pub fn attach(
        &mut self,
        first: u32,
        speed: Speed,
        socket: &impl AsRawFd,
        devid: u32,
    ) -> anyhow::Result<u32> {
        let mut port = first;
        for _ in 0..16 {
            let line = format!("{port} {} {devid} {}", socket.as_raw_fd(), kernel_speed(speed));
            tracing::debug!(attach = %line, "writing vhci-hcd attach");
            match self.attach.write_all(line.as_bytes()) {
                Ok(()) => return Ok(port),
                Err(e) => {
                    // "port already used" is EINVAL too: look again before giving up.
                    let ports = self.ports()?;
                    if ports.iter().any(|p| p.port == port && p.is_free()) {
                        bail!("vhci-hcd refused the device on port {port}: {e} (see dmesg)");
                    }
                    tracing::debug!("vhci port {port} was taken meanwhile; trying another");
                    port = pick_port(&ports, Some(speed))?.0;
                }
            }
        }
        bail!("vhci-hcd ports keep being taken by other processes; try again")
    }

    /// Unplugs the device on `port`; the kernel then closes its end of the socket.
    pub fn detach(&self, port: u32) -> io::Result<()> {
        std::fs::write(self.dir.join("detach"), port.to_string())
    }
}

/// `modprobe vhci-hcd`; one line saying what to do when that does not give `dir`.
fn load_module(dir: &Path) -> anyhow::Result<()> {
    tracing::debug!("vhci-hcd is not loaded; running modprobe vhci-hcd");
    let loaded = std::process::Command::new("modprobe")
        .arg("vhci-hcd")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if loaded && dir.is_dir() {
        return Ok(());
    }
    bail!(
        "the vhci-hcd kernel module is not loaded and `modprobe vhci-hcd` failed: load it as root \
         (`modprobe vhci-hcd`) or install the package that has it (Debian: linux-image-amd64; \
         Fedora: kernel-modules-extra)"
    )
}

/// The block devices (`sr0`, `sdb`) of the USB device `busid` with their LUNs,
/// found through `<block_dir>/*/device` → `.../<busid>/<busid>:1.0/hostH/targetH:0:0/H:0:0:LUN`.
pub fn block_devices(block_dir: &Path, busid: &str) -> Vec<(u64, String)> {
    let marker = format!("/{busid}/{busid}:");
    let mut found: Vec<(u64, String)> = std::fs::read_dir(block_dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let device = std::fs::canonicalize(entry.path().join("device")).ok()?;
            let text = device.to_str()?;
            if !text.contains(&marker) {
                return None;
            }
            let lun = device.file_name()?.to_str()?.rsplit(':').next()?.parse().ok()?;
            Some((lun, entry.file_name().to_str()?.to_string()))
        })
        .collect();
    found.sort();
    found
}

/// Serves `device` to this machine's kernel on vhci `port` until a signal
/// (`shutdown`: detach, exit 0) or until the kernel drops it (an error).
pub async fn serve(
    mut vhci: Vhci,
    port: u32,
    speed: Speed,
    device: Arc<Mutex<MassStorageDevice>>,
    luns: &[LunSpec],
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (ours, kernels) = std::os::unix::net::UnixStream::pair().context("cannot create a socket pair")?;
    ours.set_nonblocking(true)?;
    let mut stream = tokio::net::UnixStream::from_std(ours)?;
    // The connection exists before the kernel's first URB: the device is reset now.
    let export = ExportInfo::new(crate::serve::USBIP_BUSID).map_err(anyhow::Error::msg)?;
    let mut conn = Connection::new(Usbip::imported_session(export.clone()), device);
    // Any devid unique on this port: the kernel only puts it on its URBs.
    let devid = ((port + 1) << 16) | export.devnum;
    let port = vhci.attach(port, speed, &kernels, devid)?;
    // The kernel holds its own reference to the socket now.
    drop(kernels);
    let hub = if speed == Speed::Super { "SuperSpeed" } else { "high-speed" };
    crate::serve::announce(format_args!(
        "vstick: plugged into this machine on vhci-hcd port {port} ({hub}); Ctrl-C or SIGTERM unplugs it"
    ));
    let vhci = Arc::new(vhci);
    let report =
        crate::serve::AbortOnDrop(tokio::spawn(report_block_devices(vhci.clone(), port, luns.to_vec())));
    let drive = vstick_transport::drive(&mut stream, &mut conn, Duration::from_secs(3600));
    tokio::pin!(drive);
    tokio::select! {
        ended = &mut drive => {
            drop(report);
            let why = match ended {
                Ok(()) => "it closed the connection".to_string(),
                Err(e) => e.to_string(),
            };
            bail!("the kernel dropped the device on vhci-hcd port {port} ({why}); see dmesg")
        }
        () = shutdown => {}
    }
    drop(report);
    if let Err(e) = vhci.detach(port) {
        // Already gone (someone ran `usbip detach`): nothing left to unplug.
        tracing::warn!("detaching vhci-hcd port {port}: {e}");
    }
    // Done when the kernel has closed the socket and freed the port, so that
    // the port can be taken again as soon as vstick has exited.
    let deadline = tokio::time::Instant::now() + DETACH_TIMEOUT;
    let closed = tokio::time::timeout_at(deadline, &mut drive).await.is_ok();
    while closed && tokio::time::Instant::now() < deadline {
        if vhci.ports().is_ok_and(|ports| ports.iter().any(|p| p.port == port && p.is_free())) {
            tracing::info!("unplugged from vhci-hcd port {port}");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::warn!("vhci-hcd port {port} still in use {} s after detach", DETACH_TIMEOUT.as_secs());
    Ok(())
}

/// Prints the block devices of the attached device once every LUN has one
/// (or what is there after [`APPEAR_TIMEOUT`]).
async fn report_block_devices(vhci: Arc<Vhci>, port: u32, luns: Vec<LunSpec>) {
    let deadline = tokio::time::Instant::now() + APPEAR_TIMEOUT;
    let mut found = Vec::new();
    let mut busid = None;
    while tokio::time::Instant::now() < deadline {
        if busid.is_none() {
            busid = vhci.busid(port);
        }
        if let Some(b) = &busid {
            found = block_devices(Path::new("/sys/block"), b);
            if found.len() >= luns.len() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let usb = busid.as_deref().unwrap_or("not enumerated");
    if found.len() < luns.len() {
        tracing::warn!(
            "{} of {} LUNs have a block device after {} s (USB device {usb}); see dmesg",
            found.len(),
            luns.len(),
            APPEAR_TIMEOUT.as_secs()
        );
    }
    crate::serve::announce(format_args!("vstick: USB device {usb}"));
    for (lun, name) in found {
        let what = usize::try_from(lun).ok().and_then(|i| luns.get(i)).map_or(String::new(), |spec| {
            let kind = match spec {
                LunSpec::Cdrom { .. } => "cdrom",
                LunSpec::Disk { read_only: true, .. } => "disk-ro",
                LunSpec::Disk { .. } | LunSpec::SnapshotDisk { .. } => "disk",
            };
            format!(" ({kind} {})", spec.path().display())
        });
        crate::serve::announce(format_args!("vstick: LUN {lun}: /dev/{name}{what}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux 6.1, one controller, with a high-speed device on port 0 and one
    /// being enumerated on SuperSpeed port 8.
    const STATUS: &str = "\
hub port sta spd dev      sockfd local_busid
hs  0000 006 003 00010002 000003 3-1
hs  0001 004 000 00000000 000000 0-0
ss  0008 005 005 00020002 000004 0-0
ss  0009 004 000 00000000 000000 0-0
";

    #[test]
    fn status_lines_parse() {
        let ports = parse_status(STATUS);
        assert_eq!(ports.len(), 4);
        assert_eq!(ports[0], PortStatus { hub: Hub::High, port: 0, sta: 6, busid: "3-1".into() });
        assert_eq!(ports[3], PortStatus { hub: Hub::Super, port: 9, sta: 4, busid: "0-0".into() });
        // Kernels before 4.13: no hub column, high speed only.
        let old = "port sta spd dev      socket           local_busid\n0000 004 000 00000000 0000000000000000 0-0\n";
        assert_eq!(
            parse_status(old),
            vec![PortStatus { hub: Hub::High, port: 0, sta: 4, busid: "0-0".into() }]
        );
    }

    #[test]
    fn a_port_of_the_devices_speed_is_picked_superspeed_first() {
        let ports = parse_status(STATUS);
        assert_eq!(pick_port(&ports, None).unwrap(), (9, Speed::Super));
        assert_eq!(pick_port(&ports, Some(Speed::High)).unwrap(), (1, Speed::High));
        assert_eq!(pick_port(&ports, Some(Speed::Super)).unwrap(), (9, Speed::Super));
        // SuperSpeed ports all taken: a default device falls back to high speed.
        let busy: Vec<PortStatus> = ports
            .iter()
            .cloned()
            .map(|p| if p.hub == Hub::Super { PortStatus { sta: 6, ..p } } else { p })
            .collect();
        assert_eq!(pick_port(&busy, None).unwrap(), (1, Speed::High));
        let err = pick_port(&busy, Some(Speed::Super)).unwrap_err().to_string();
        assert!(err.starts_with("no free SuperSpeed vhci-hcd port (2 exist, all in use)"), "{err}");
        let full: Vec<PortStatus> = ports.into_iter().map(|p| PortStatus { sta: 6, ..p }).collect();
        let err = pick_port(&full, None).unwrap_err().to_string();
        assert!(err.starts_with("no free vhci-hcd port (2 high-speed and 2 SuperSpeed exist"), "{err}");
        assert!(err.contains("usbip detach -p N"), "{err}");
    }

    #[test]
    fn block_devices_are_those_below_the_usb_device_with_their_luns() {
        let root = tempfile::tempdir().unwrap();
        let devices = root.path().join("devices");
        let block = root.path().join("block");
        std::fs::create_dir_all(&block).unwrap();
        let scsi = |name: &str, path: &str| {
            let dir = devices.join(path);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::create_dir_all(block.join(name)).unwrap();
            std::os::unix::fs::symlink(&dir, block.join(name).join("device")).unwrap();
        };
        let vhci = "platform/vhci_hcd.0/usb3";
        scsi("sr0", &format!("{vhci}/3-1/3-1:1.0/host2/target2:0:0/2:0:0:1"));
        scsi("sdb", &format!("{vhci}/3-1/3-1:1.0/host2/target2:0:0/2:0:0:0"));
        // Another stick on the next port, and a disk that is not USB at all.
        scsi("sdc", &format!("{vhci}/3-2/3-2:1.0/host3/target3:0:0/3:0:0:0"));
        scsi("sda", "pci0000:00/0000:00:01.1/ata1/host0/target0:0:0/0:0:0:0");
        std::fs::create_dir_all(block.join("loop0")).unwrap();
        assert_eq!(block_devices(&block, "3-1"), vec![(0, "sdb".to_string()), (1, "sr0".to_string())]);
        assert_eq!(block_devices(&block, "3-2"), vec![(0, "sdc".to_string())]);
        assert!(block_devices(&block, "3-3").is_empty());
    }

    #[test]
    fn attach_needs_write_access_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = Vhci::at(dir.path().to_path_buf()).unwrap_err().to_string();
        assert!(err.starts_with("cannot open"), "{err}");
        std::fs::write(dir.path().join("attach"), "").unwrap();
        let mut vhci = Vhci::at(dir.path().to_path_buf()).unwrap();
        std::fs::write(dir.path().join("status"), STATUS).unwrap();
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(vhci.attach(9, Speed::Super, &a, 0x1_0002).unwrap(), 9);
        let line = std::fs::read_to_string(dir.path().join("attach")).unwrap();
        assert_eq!(line, format!("9 {} 65538 5", a.as_raw_fd()));
    }
}
