//! `vstick serve --gadget [UDC]`: the stick on a USB device controller (UDC),
//! a Linux board's device port (Raspberry Pi's dwc2, dwc3, musb, chipidea) or
//! `dummy_hcd` for tests, through a configfs gadget with one FunctionFS function.
//!
//! The `usb-gadget` crate writes the configfs entries, mounts FunctionFS and
//! writes its descriptors (full, high and SuperSpeed, interface 08/06/50, bulk
//! IN and OUT with SuperSpeed companions), and drives the endpoint files with
//! Linux AIO: vstick keeps `#![forbid(unsafe_code)]` and no ioctl of its own.
//!
//! Two threads drive the one device model:
//! - **ep0**: FunctionFS events. Class requests (GET MAX LUN, Bulk-Only Mass
//!   Storage Reset) go to [`MassStorageDevice::control`]; ENABLE/DISABLE
//!   (configuration, bus reset, unplug) reset the device as a re-plug would.
//! - **data**: the transport core's [`EndpointDriver`] over the bulk endpoint
//!   files (`FunctionFsEndpoints`, this edge's whole translation): OUT reads
//!   sized by what the device expects, IN writes by what it has, several in
//!   flight, write-behind, and BOT's halts put on the bus. The UDC answers the
//!   host's CLEAR_FEATURE(ENDPOINT_HALT) itself, as for Linux's f_mass_storage.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use usb_gadget::function::custom::{
    Custom, Endpoint, EndpointDirection, EndpointReceiver, EndpointSender, Event, Interface,
};
use usb_gadget::{Class, Config, Gadget, Id, RegGadget, Strings, Udc};
use vstick_transport::{EndpointDriver, EndpointIo, OUT_READS, POLL};
use vstick_usb::descriptors::{
    BULK_MAX_BURST, CLASS_MASS_STORAGE, PROTOCOL_BULK_ONLY, SUBCLASS_SCSI_TRANSPARENT, bulk_max_packet_size,
};
use vstick_usb::{ControlResult, EP_IN, MassStorageDevice, Setup, Speed};

/// Where the kernel lists USB device controllers.
pub const UDC_CLASS_DIR: &str = "/sys/class/udc";
/// configfs' mount point and its gadget directory (libcomposite).
pub const CONFIGFS_DIR: &str = "/sys/kernel/config";
/// The prefix of every gadget vstick creates: `vstick-<pid>`. Stale entries
/// with this prefix whose process is gone are removed at start; no other
/// gadget is ever touched.
pub const GADGET_PREFIX: &str = "vstick-";
/// Bulk IN writes in flight.
const IN_QUEUE: u32 = 8;

/// The UDCs in `dir` (sorted).
pub fn list_udcs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// The UDC to bind: `wanted`, or the only one there is; one line saying what
/// to do otherwise.
pub fn pick_udc(available: &[String], wanted: Option<&str>) -> anyhow::Result<String> {
    match (wanted, available) {
        (_, []) => bail!(
            "no USB device controller in {UDC_CLASS_DIR}: vstick serve --gadget needs a USB device \
             (OTG) port and its driver (Raspberry Pi: dtoverlay=dwc2 in config.txt, then modprobe dwc2), \
             or `modprobe dummy_hcd` to try it on this machine"
        ),
        (Some(name), _) if available.iter().any(|a| a == name) => Ok(name.to_string()),
        (Some(name), _) => {
            bail!("no USB device controller {name:?} in {UDC_CLASS_DIR} (there is: {})", available.join(", "))
        }
        (None, [only]) => Ok(only.clone()),
        (None, several) => bail!(
            "several USB device controllers ({}): name one, e.g. vstick serve --gadget {}",
            several.join(", "),
            several[0]
        ),
    }
}

/// The pid in a gadget name `vstick-<pid>`, `None` for any other gadget.
pub fn gadget_pid(name: &str) -> Option<u32> {
    name.strip_prefix(GADGET_PREFIX)?.parse().ok()
}

/// Whether process `pid` is a live vstick (`/proc/<pid>/comm`).
fn vstick_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "vstick")
}

/// configfs, the UDC and the gadget name, checked and claimed before any image is
/// opened, so each problem is reported alone.
pub struct GadgetPlace {
    udc: Udc,
    name: String,
    /// `--usb-speed`: the highest speed the gadget offers (`None`: the controller's).
    max_speed: Option<Speed>,
}

impl std::fmt::Debug for GadgetPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GadgetPlace").field("udc", &self.udc.name()).field("name", &self.name).finish()
    }
}

impl GadgetPlace {
    /// Finds the UDC (`wanted` or the only one), checks configfs and that this
    /// process may create gadgets, and removes stale `vstick-<pid>` gadgets of
    /// vstick processes that no longer run.
    pub fn claim(wanted: Option<&str>, max_speed: Option<Speed>) -> anyhow::Result<Self> {
        let udc_name = pick_udc(&list_udcs(Path::new(UDC_CLASS_DIR)), wanted)?;
        let gadgets = gadget_dir()?;
        remove_stale(&gadgets);
        // The UDC must be free: another gadget bound to it (g_mass_storage, a
        // running vstick, PiKVM's otg service) is named, never unbound.
        for entry in std::fs::read_dir(&gadgets).into_iter().flatten().flatten() {
            let bound = std::fs::read_to_string(entry.path().join("UDC")).unwrap_or_default();
            if bound.trim() == udc_name {
                bail!(
                    "USB device controller {udc_name} is in use by the gadget {} (configfs {}); \
                     stop what runs it, or unbind it with `echo > {}/UDC`",
                    entry.file_name().to_string_lossy(),
                    entry.path().display(),
                    entry.path().display()
                );
            }
        }
        let name = format!("{GADGET_PREFIX}{}", std::process::id());
        // Root (or CAP_SYS_ADMIN over configfs) is needed: try it now.
        let probe = gadgets.join(&name);
        match std::fs::create_dir(&probe) {
            Ok(()) => {
                let _ = std::fs::remove_dir(&probe);
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => bail!(
                "cannot create a USB gadget in {}: permission denied; vstick serve --gadget needs root \
                 (run it with sudo)",
                gadgets.display()
            ),
            Err(e) => bail!("cannot create a USB gadget in {}: {e}", gadgets.display()),
        }
        let udc = usb_gadget::udcs()
            .context("cannot list USB device controllers")?
            .into_iter()
            .find(|u| u.name().to_str() == Some(udc_name.as_str()))
            .with_context(|| format!("USB device controller {udc_name} disappeared"))?;
        Ok(Self { udc, name, max_speed })
    }

    /// The UDC's name (`dummy_udc.0`, `fe980000.usb`).
    pub fn udc_name(&self) -> String {
        self.udc.name().to_string_lossy().into_owned()
    }
}

/// `/sys/kernel/config/usb_gadget`, loading libcomposite if needed; one line
/// saying what is missing.
fn gadget_dir() -> anyhow::Result<PathBuf> {
    let configfs = Path::new(CONFIGFS_DIR);
    let gadgets = configfs.join("usb_gadget");
    if gadgets.is_dir() {
        return Ok(gadgets);
    }
    let mounted = std::fs::read_to_string("/proc/mounts")
        .is_ok_and(|m| m.lines().any(|l| l.split_whitespace().nth(2) == Some("configfs")));
    if !mounted {
        bail!(
            "configfs is not mounted at {CONFIGFS_DIR}: mount it with `mount -t configfs none {CONFIGFS_DIR}`"
        );
    }
    let _ = std::process::Command::new("modprobe")
        .arg("libcomposite")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if gadgets.is_dir() {
        return Ok(gadgets);
    }
    bail!(
        "{} does not exist: load the USB gadget modules as root (`modprobe libcomposite usb_f_fs`)",
        gadgets.display()
    )
}

/// Removes the `vstick-<pid>` gadgets whose vstick process is gone (a crash,
/// SIGKILL). Failures are logged: a stale gadget on another UDC does no harm.
fn remove_stale(gadgets: &Path) {
    let Ok(registered) = usb_gadget::registered() else { return };
    for gadget in registered {
        let name = gadget.name().to_string_lossy().into_owned();
        match gadget_pid(&name) {
            Some(pid) if !vstick_alive(pid) => {
                tracing::info!("removing the stale gadget {name} of a vstick that no longer runs");
                if let Err(e) = gadget.remove() {
                    tracing::warn!("cannot remove the stale gadget {}: {e}", gadgets.join(&name).display());
                }
            }
            _ => {}
        }
    }
}

/// Setup packet of usb-gadget's control request, in vstick's type.
fn setup_of(req: &usb_gadget::function::custom::CtrlReq) -> Setup {
    Setup {
        request_type: req.request_type,
        request: req.request,
        value: req.value,
        index: req.index,
        length: req.length,
    }
}

/// Locks the device; a thread that panicked holding it leaves it usable.
fn lock(device: &Mutex<MassStorageDevice>) -> std::sync::MutexGuard<'_, MassStorageDevice> {
    device.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds, registers and binds the gadget, serves until `shutdown`, then
/// flushes the images, unbinds and removes the configfs entries.
pub async fn serve(
    place: GadgetPlace,
    device: Arc<Mutex<MassStorageDevice>>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let identity = lock(&device).identity().clone();
    let (tx, in_dir) = EndpointDirection::device_to_host();
    let (rx, out_dir) = EndpointDirection::host_to_device();
    let mut ep_in = Endpoint::bulk(in_dir.with_queue_len(IN_QUEUE));
    let mut ep_out = Endpoint::bulk(out_dir.with_queue_len(OUT_READS as u32));
    for ep in [&mut ep_in, &mut ep_out] {
        ep.max_packet_size_hs = bulk_max_packet_size(Speed::High);
        ep.max_packet_size_ss = bulk_max_packet_size(Speed::Super);
        ep.max_burst_ss = BULK_MAX_BURST;
    }
    // IN first: FunctionFS numbers endpoints in order, giving 0x81 and 0x02.
    let (custom, handle) = Custom::builder()
        .with_interface(
            Interface::new(
                Class::new(CLASS_MASS_STORAGE, SUBCLASS_SCSI_TRANSPARENT, PROTOCOL_BULK_ONLY),
                "vstick mass storage",
            )
            .with_endpoint(ep_in)
            .with_endpoint(ep_out),
        )
        .build();
    let mut gadget = Gadget::new(
        Class::INTERFACE_SPECIFIC,
        Id::new(identity.vendor_id, identity.product_id),
        Strings::new(&identity.manufacturer, &identity.product, &identity.serial),
    )
    .with_config(Config::new("vstick").with_function(handle));
    gadget.name = Some(place.name.clone());
    gadget.device_release = identity.bcd_device;
    gadget.max_speed = place.max_speed.map(|speed| match speed {
        Speed::Full => usb_gadget::Speed::FullSpeed,
        Speed::High => usb_gadget::Speed::HighSpeed,
        Speed::Super => usb_gadget::Speed::SuperSpeed,
    });
    let reg: RegGadget = gadget.bind(&place.udc).map_err(|e| {
        if e.raw_os_error() == Some(16) {
            anyhow::anyhow!(
                "USB device controller {} is busy (EBUSY): another gadget is bound to it",
                place.udc_name()
            )
        } else {
            anyhow::anyhow!("cannot create the USB gadget on {}: {e}", place.udc_name())
        }
    })?;
    crate::serve::announce(format_args!(
        "vstick: USB gadget {} on {}; Ctrl-C or SIGTERM unplugs it",
        place.name,
        place.udc_name()
    ));

    let stop = Arc::new(AtomicBool::new(false));
    let ep0 = {
        let (device, stop) = (device.clone(), stop.clone());
        std::thread::Builder::new()
            .name("gadget-ep0".into())
            .spawn(move || ep0_loop(custom, &device, &stop))?
    };
    let data = {
        let (device, stop) = (device.clone(), stop.clone());
        std::thread::Builder::new().name("gadget-data".into()).spawn(move || {
            let (mut endpoints, mut device) = (FunctionFsEndpoints { tx, rx }, device);
            EndpointDriver::new().run(&mut endpoints, &mut device, &stop);
            io::Result::Ok(())
        })?
    };
    shutdown.await;
    stop.store(true, Ordering::SeqCst);
    let joined = tokio::task::spawn_blocking(move || {
        let ep0 = ep0.join();
        let data = data.join();
        (ep0, data)
    })
    .await;
    // Flush before the host loses the device: a real stick writes its cache first.
    let flushed = lock(&device).target_mut().flush();
    let removed = reg.remove();
    let ep0_result = match joined {
        Ok((Ok(r0), Ok(r1))) => r0.and(r1),
        _ => Err(io::Error::other("a gadget thread panicked")),
    };
    flushed.context("flushing images")?;
    removed.with_context(|| format!("removing the USB gadget {}", place.name))?;
    if let Err(e) = ep0_result {
        tracing::warn!("gadget I/O at exit: {e}");
    }
    tracing::info!("USB gadget {} unbound and removed", place.name);
    Ok(())
}

/// Endpoint 0: class requests and the function's state changes.
fn ep0_loop(mut custom: Custom, device: &Mutex<MassStorageDevice>, stop: &AtomicBool) -> io::Result<()> {
    while !stop.load(Ordering::SeqCst) {
        let event = match custom.event_timeout(POLL) {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!("FunctionFS ep0: {e}");
                std::thread::sleep(POLL);
                continue;
            }
        };
        match event {
            Event::SetupDeviceToHost(req) => {
                let setup = setup_of(req.ctrl_req());
                let result = lock(device).control(&setup, &[]);
                tracing::debug!(?setup, ?result, "control IN");
                let sent = match result {
                    ControlResult::Data(data) => req.send(&data).map(drop),
                    ControlResult::Ack => req.send(&[]).map(drop),
                    ControlResult::Stall => req.halt(),
                };
                if let Err(e) = sent {
                    tracing::debug!("control IN reply: {e}");
                }
            }
            Event::SetupHostToDevice(req) => {
                let setup = setup_of(req.ctrl_req());
                // No class request has an OUT data stage: answer before reading
                // the (empty) status stage, so a refusal can still stall.
                let result =
                    if setup.length == 0 { lock(device).control(&setup, &[]) } else { ControlResult::Stall };
                tracing::debug!(?setup, ?result, "control OUT");
                let done = match result {
                    ControlResult::Stall => req.halt(),
                    _ => req.recv_all().map(drop),
                };
                if let Err(e) = done {
                    tracing::debug!("control OUT status: {e}");
                }
            }
            // A new configuration, a bus reset or an unplug: the host starts over.
            Event::Enable | Event::Disable => {
                tracing::debug!(?event, "function state");
                lock(device).reset();
            }
            other => tracing::debug!(?other, "FunctionFS event"),
        }
    }
    Ok(())
}

/// The FunctionFS bulk endpoint files as the transport core's
/// [`EndpointIo`]: usb-gadget's Linux AIO queues, buffers handed over without
/// a copy (`BytesMut`/`Bytes` from and to `Vec`).
struct FunctionFsEndpoints {
    tx: EndpointSender,
    rx: EndpointReceiver,
}

/// Whether `e` is FunctionFS' answer to a halt request (EBADMSG: the
/// wrong-direction I/O that halts an endpoint "fails" by design).
fn is_halt_done(e: &io::Error) -> bool {
    e.raw_os_error() == Some(74)
}

/// A wait that ran out is `false`; other errors pass.
fn in_time(result: io::Result<()>) -> io::Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(false),
        Err(e) => Err(e),
    }
}

impl EndpointIo for FunctionFsEndpoints {
    fn max_packet_size(&mut self) -> usize {
        self.rx.max_packet_size().unwrap_or(512)
    }
    fn post_read(&mut self, len: usize) -> io::Result<()> {
        // The read's length is the buffer's capacity.
        self.rx.try_recv(BytesMut::with_capacity(len))
    }
    fn completed_read(&mut self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        Ok(self.rx.fetch_timeout(timeout)?.map(Vec::from))
    }
    fn write_room(&mut self, timeout: Duration) -> io::Result<bool> {
        in_time(self.tx.ready_timeout(timeout))
    }
    fn queue_write(&mut self, data: Vec<u8>) -> io::Result<()> {
        self.tx.try_send(Bytes::from(data))
    }
    fn flush_writes(&mut self, timeout: Duration) -> io::Result<bool> {
        in_time(self.tx.flush_timeout(timeout))
    }
    fn halt(&mut self, endpoint: u8) -> io::Result<()> {
        let halted = if endpoint == EP_IN { self.tx.control()?.halt() } else { self.rx.control()?.halt() };
        match halted {
            Err(e) if !is_halt_done(&e) => Err(e),
            _ => Ok(()),
        }
    }
    fn cancel_reads(&mut self) {
        let _ = self.rx.cancel();
    }
    fn cancel_writes(&mut self) {
        let _ = self.tx.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_only_udc_or_the_named_one() {
        assert_eq!(pick_udc(&names(&["dummy_udc.0"]), None).unwrap(), "dummy_udc.0");
        let two = names(&["dummy_udc.0", "dummy_udc.1"]);
        assert_eq!(pick_udc(&two, Some("dummy_udc.1")).unwrap(), "dummy_udc.1");
        let err = pick_udc(&two, None).unwrap_err().to_string();
        assert_eq!(
            err,
            "several USB device controllers (dummy_udc.0, dummy_udc.1): name one, e.g. vstick serve --gadget dummy_udc.0"
        );
        let err = pick_udc(&two, Some("fe980000.usb")).unwrap_err().to_string();
        assert!(err.starts_with("no USB device controller \"fe980000.usb\""), "{err}");
        let err = pick_udc(&[], None).unwrap_err().to_string();
        assert!(err.starts_with("no USB device controller in /sys/class/udc"), "{err}");
    }

    #[test]
    fn only_vstick_gadgets_have_a_pid() {
        assert_eq!(gadget_pid("vstick-1234"), Some(1234));
        assert_eq!(gadget_pid("vstick-"), None);
        assert_eq!(gadget_pid("vstick-abc"), None);
        assert_eq!(gadget_pid("g1"), None);
        assert_eq!(gadget_pid("usb-gadget0"), None);
        assert_eq!(gadget_pid("pikvm"), None);
    }

    #[test]
    fn udcs_are_listed_sorted() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list_udcs(&dir.path().join("missing")).is_empty());
        std::fs::create_dir(dir.path().join("dummy_udc.1")).unwrap();
        std::fs::create_dir(dir.path().join("dummy_udc.0")).unwrap();
        assert_eq!(list_udcs(dir.path()), names(&["dummy_udc.0", "dummy_udc.1"]));
    }

    #[test]
    fn chunks_end_on_packet_boundaries() {
        for speed in [Speed::Full, Speed::High, Speed::Super] {
            let mps = usize::from(bulk_max_packet_size(speed));
            assert_eq!(vstick_transport::ENDPOINT_CHUNK % mps, 0);
        }
    }
}
