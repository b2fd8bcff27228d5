//! `vstick serve`: open the images, build one USB device, run a transport.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use clap::ArgMatches;

use tokio::net::TcpListener;
use vstick_media::{BlockBackend, FileImage, OpenOptions, SnapshotImage};
use vstick_scsi::{LunKind, Target};
use vstick_usb::{DeviceBuilder, MassStorageDevice, Speed};

use crate::cli::{ServeArgs, UsbSpeed};
use crate::identity::{IdValue, IdentitySpec, ProfileIdentity};
use crate::socket_file::SocketFile;
pub use crate::spice::SpiceTarget;

/// What one LUN is made of, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LunSpec {
    Disk {
        path: PathBuf,
        read_only: bool,
    },
    Cdrom {
        path: PathBuf,
    },
    /// A writable disk behind a temporary copy-on-write overlay, its image
    /// opened read-only: what a disk LUN of a `--snapshot` server takes on
    /// `ctl insert` (the overlay is discarded on exit, never kept).
    SnapshotDisk {
        path: PathBuf,
    },
}

impl LunSpec {
    /// Orders `--disk`, `--disk-ro` and `--cdrom` by their position on the command line.
    pub fn from_matches(args: &ServeArgs, m: &ArgMatches) -> anyhow::Result<Vec<LunSpec>> {
        let mut indexed: Vec<(usize, LunSpec)> = Vec::new();
        let mut collect = |id: &str, paths: &[PathBuf], make: &dyn Fn(PathBuf) -> LunSpec| {
            let indices: Vec<usize> = m.indices_of(id).map(|i| i.collect()).unwrap_or_default();
            for (i, p) in indices.into_iter().zip(paths) {
                indexed.push((i, make(p.clone())));
            }
        };
        collect("disk", &args.disk, &|path| LunSpec::Disk { path, read_only: false });
        collect("disk_ro", &args.disk_ro, &|path| LunSpec::Disk { path, read_only: true });
        collect("cdrom", &args.cdrom, &|path| LunSpec::Cdrom { path });
        indexed.sort_by_key(|(i, _)| *i);
        Ok(indexed.into_iter().map(|(_, l)| l).collect())
    }

    pub fn path(&self) -> &PathBuf {
        match self {
            LunSpec::Disk { path, .. } | LunSpec::Cdrom { path } | LunSpec::SnapshotDisk { path } => path,
        }
    }

    pub fn open(&self, block_size: u32) -> anyhow::Result<Box<dyn BlockBackend>> {
        self.open_with(block_size, None, &mut Vec::new())
    }

    /// Opens the image; a writable disk under `snapshot` gets a copy-on-write
    /// overlay and its base is opened read-only. A snapshot to keep is also
    /// added to `kept`, whose merged images shutdown writes ([`keep_snapshots`]).
    pub fn open_with(
        &self,
        block_size: u32,
        snapshot: Option<&Snapshot>,
        kept: &mut Vec<Arc<SnapshotImage>>,
    ) -> anyhow::Result<Box<dyn BlockBackend>> {
        Ok(match self {
            LunSpec::Disk { path, read_only: false } if snapshot.is_some() => {
                let snap = open_snapshot(path, block_size)?;
                match snapshot.and_then(|s| s.keep.clone()) {
                    Some(keep) => {
                        let snap = Arc::new(snap.keep_as(keep));
                        kept.push(snap.clone());
                        Box::new(snap)
                    }
                    None => Box::new(snap),
                }
            }
            LunSpec::Disk { path, read_only } => {
                Box::new(FileImage::open(path, OpenOptions::disk(*read_only).block_size(block_size))?)
            }
            LunSpec::Cdrom { path } => Box::new(FileImage::open(path, OpenOptions::optical())?),
            LunSpec::SnapshotDisk { path } => Box::new(open_snapshot(path, block_size)?),
        })
    }

    /// What this LUN takes on `ctl insert` under `snapshot`: a writable disk gets an
    /// overlay, as at start-up, so the guest never writes into an inserted image.
    pub fn for_inserts(&self, snapshot: bool) -> LunSpec {
        match self {
            LunSpec::Disk { path, read_only: false } if snapshot => {
                LunSpec::SnapshotDisk { path: path.clone() }
            }
            other => other.clone(),
        }
    }

    pub fn kind(&self) -> LunKind {
        match self {
            LunSpec::Disk { .. } | LunSpec::SnapshotDisk { .. } => LunKind::Disk,
            LunSpec::Cdrom { .. } => LunKind::Optical,
        }
    }
}

/// The image opened read-only beneath a copy-on-write overlay beside it.
fn open_snapshot(path: &std::path::Path, block_size: u32) -> anyhow::Result<SnapshotImage> {
    let base = FileImage::open(path, OpenOptions::disk(true).block_size(block_size))?;
    SnapshotImage::with_temp_overlay(Box::new(base), path)
        .with_context(|| format!("{}: cannot create the snapshot overlay", path.display()))
}

/// Parses `ADDR:PORT`, `:PORT`, `PORT` or `ADDR` (then `default_port`); the address defaults to loopback.
pub fn parse_addr(s: &str, default_port: Option<u16>) -> anyhow::Result<SocketAddr> {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(port) = s.trim_start_matches(':').parse::<u16>() {
        return Ok(SocketAddr::new(loopback, port));
    }
    if let (Ok(ip), Some(port)) = (s.trim_matches(['[', ']']).parse::<IpAddr>(), default_port) {
        return Ok(SocketAddr::new(ip, port));
    }
    use std::net::ToSocketAddrs;
    if let Some((host, port)) = s.rsplit_once(':')
        && let Ok(port) = port.parse::<u16>()
        && let Some(sa) = (host, port).to_socket_addrs().ok().and_then(|mut a| a.next())
    {
        return Ok(sa);
    }
    bail!("{s:?} is not an address: use ADDR:PORT, e.g. 127.0.0.1:4000")
}

/// A stable device serial: the same images give the same stick across restarts.
fn device_serial(luns: &[LunSpec]) -> String {
    let seed: Vec<String> = luns
        .iter()
        .map(|l| std::fs::canonicalize(l.path()).unwrap_or_else(|_| l.path().clone()).display().to_string())
        .collect();
    vstick_usb::serial_from_seed(&seed.join("\n"))
}

/// Copy-on-write mode for writable disks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Where to write the merged image on exit.
    pub keep: Option<PathBuf>,
}

/// Opens every image (all or nothing) and builds the device with
/// [`DeviceBuilder`], which checks each medium against its LUN's kind.
pub fn build_device(
    luns: &[LunSpec],
    block_size: u32,
    snapshot: Option<&Snapshot>,
    speed: Speed,
    identity: &IdentitySpec,
) -> anyhow::Result<(MassStorageDevice, Vec<Arc<SnapshotImage>>)> {
    let writable = luns.iter().filter(|l| matches!(l, LunSpec::Disk { read_only: false, .. })).count();
    let mut media = Vec::with_capacity(luns.len());
    let mut kept = Vec::new();
    for (i, spec) in luns.iter().enumerate() {
        // Several kept snapshots cannot share one path.
        let snap = snapshot.map(|s| Snapshot {
            keep: s.keep.as_ref().map(|k| {
                if writable > 1 { PathBuf::from(format!("{}.lun{i}", k.display())) } else { k.clone() }
            }),
        });
        if let Some(keep) = snap.as_ref().and_then(|s| s.keep.as_ref()).filter(|k| k.exists()) {
            // Found now rather than at exit, when the session's writes could only be lost.
            bail!(
                "{}: already exists; --snapshot-keep writes a new file and never overwrites (remove it or choose another path)",
                keep.display()
            );
        }
        media.push(spec.open_with(block_size, snap.as_ref(), &mut kept).with_context(|| format!("LUN {i}"))?);
    }
    // Logged only once every image opened: a failure prints nothing but its one line.
    for (i, (spec, m)) in luns.iter().zip(&media).enumerate() {
        tracing::info!(
            "LUN {i}: {} {} ({} blocks of {} bytes{})",
            match spec.kind() {
                LunKind::Disk => "disk",
                LunKind::Optical => "cdrom",
            },
            spec.path().display(),
            m.block_count(),
            m.block_size(),
            if m.read_only() { ", read-only" } else { "" }
        );
    }
    let builder =
        luns.iter().zip(media).fold(DeviceBuilder::new(), |b, (spec, m)| b.lun(spec.kind(), Some(m)));
    let identity = identity.identity(|| device_serial(luns));
    Ok((builder.identity(identity).speed(speed).build()?, kept))
}

/// Writes the merged image of every kept snapshot (all are tried), at shutdown:
/// a failure is the exit's error, not a log line after a successful exit.
pub fn keep_snapshots(kept: &[Arc<SnapshotImage>]) -> anyhow::Result<()> {
    let mut first_error = None;
    for snap in kept {
        match snap.persist_kept() {
            Ok(Some(path)) => tracing::info!("snapshot kept as {}", path.display()),
            Ok(None) => {}
            Err(e) => {
                tracing::error!("{e}");
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), |e| Err(e.into()))
}

/// Where the device is exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Listen for QEMU's usb-redir chardev.
    UsbredirListen(RedirSocket),
    /// Connect to QEMU's usb-redir chardev in server mode.
    UsbredirConnect(RedirSocket),
    /// USB/IP server.
    Usbip(SocketAddr),
    /// This machine's own kernel, through vhci-hcd (`--local`).
    Local,
    /// A USB device controller through a configfs gadget (`--gadget [UDC]`;
    /// `None`: the only UDC there is).
    Gadget(Option<String>),
    /// A SPICE client offering the device over the VM's usbredir channel.
    Spice(SpiceTarget),
}

/// A usbredir socket: TCP (`ADDR:PORT`) or a Unix socket (`unix:PATH`), which
/// a local QEMU reaches with `path=` and only users the file's permissions
/// allow can open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirSocket {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl RedirSocket {
    /// Parses `unix:PATH` or anything [`parse_addr`] takes.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        match s.strip_prefix("unix:") {
            Some("") => bail!("{s:?}: give the socket's path after unix:, e.g. unix:/run/vstick.sock"),
            Some(path) => Ok(Self::Unix(PathBuf::from(path))),
            None => Ok(Self::Tcp(parse_addr(s, None)?)),
        }
    }

    /// The address part of QEMU's `-chardev socket,...` option.
    fn chardev_address(&self) -> String {
        match self {
            Self::Tcp(a) => format!("host={},port={}", a.ip(), a.port()),
            Self::Unix(path) => format!("path={}", path.display()),
        }
    }
}

impl std::fmt::Display for RedirSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "{a}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// The USB/IP bus id of the one device vstick exports.
pub const USBIP_BUSID: &str = "1-1";
const USBIP_PORT: u16 = 3240;

/// Everything `serve` needs, from the command line and an optional TOML profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServePlan {
    pub transport: Transport,
    pub luns: Vec<LunSpec>,
    pub block_size: u32,
    pub control: Option<PathBuf>,
    pub snapshot: Option<Snapshot>,
    /// Certificate chain and key for usbredir over TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `None`: the transport's default.
    pub speed: Option<Speed>,
    /// VID/PID and strings given on the command line or in the profile.
    pub identity: IdentitySpec,
}

/// A stick profile (`--config stick.toml`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    usbredir: Option<String>,
    usbredir_connect: Option<String>,
    usbip: Option<String>,
    #[serde(default)]
    local: bool,
    /// A UDC name, or "auto" for the only one.
    gadget: Option<String>,
    control: Option<PathBuf>,
    block_size: Option<u32>,
    #[serde(default)]
    snapshot: bool,
    snapshot_keep: Option<PathBuf>,
    usb_speed: Option<UsbSpeed>,
    // The identity, named like the options (`crate::identity`).
    vendor_id: Option<IdValue>,
    product_id: Option<IdValue>,
    manufacturer: Option<String>,
    product: Option<String>,
    serial: Option<String>,
    #[serde(default)]
    lun: Vec<ProfileLun>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileLun {
    #[serde(rename = "type")]
    kind: String,
    path: PathBuf,
}

impl ServePlan {
    /// Command-line values win over the profile; profile LUNs come first.
    pub fn new(args: &ServeArgs, cli_luns: Vec<LunSpec>) -> anyhow::Result<Self> {
        let profile = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
                let profile: Profile = toml::from_str(&text)
                    .with_context(|| format!("{}: invalid stick profile", path.display()))?;
                // Relative image paths in a profile are relative to the profile itself.
                let base = path.parent().map(PathBuf::from).unwrap_or_default();
                let resolve = |p: &PathBuf| if p.is_absolute() { p.clone() } else { base.join(p) };
                let mut luns = Vec::new();
                for l in &profile.lun {
                    luns.push(match l.kind.as_str() {
                        "disk" => LunSpec::Disk { path: resolve(&l.path), read_only: false },
                        "disk-ro" => LunSpec::Disk { path: resolve(&l.path), read_only: true },
                        "cdrom" => LunSpec::Cdrom { path: resolve(&l.path) },
                        other => bail!(
                            "{}: unknown LUN type {other:?} (use disk, disk-ro or cdrom)",
                            path.display()
                        ),
                    });
                }
                Some((profile, luns))
            }
            None => None,
        };
        let (profile, mut luns) = profile.unwrap_or_default();
        luns.extend(cli_luns);
        if luns.is_empty() {
            bail!("nothing to serve: give at least one --disk, --disk-ro or --cdrom");
        }
        if luns.len() > Target::MAX_LUNS {
            bail!(
                "{} LUNs requested; a USB mass-storage device has at most {}",
                luns.len(),
                Target::MAX_LUNS
            );
        }
        let pick = |cli: &Option<String>, prof: &Option<String>| cli.clone().or_else(|| prof.clone());
        let cli_has_transport = args.usbredir.is_some()
            || args.usbredir_connect.is_some()
            || args.usbip.is_some()
            || args.local
            || args.spice.is_some()
            || args.spice_vv.is_some()
            || args.gadget.is_some();
        let (redir, connect, usbip, local, gadget) = if cli_has_transport {
            (
                args.usbredir.clone(),
                args.usbredir_connect.clone(),
                args.usbip.clone(),
                args.local,
                args.gadget.clone(),
            )
        } else {
            (
                pick(&None, &profile.usbredir),
                pick(&None, &profile.usbredir_connect),
                pick(&None, &profile.usbip),
                profile.local,
                profile.gadget.clone(),
            )
        };
        let transport = match (redir, connect, usbip) {
            _ if (args.spice.is_some() || args.spice_vv.is_some()) && (local || gadget.is_some()) => {
                bail!("--spice is one transport, --local or --gadget another; keep one")
            }
            _ if args.spice.is_some() || args.spice_vv.is_some() => Transport::Spice(SpiceTarget {
                server: args.spice.as_deref().map(vstick_spice::ServerAddr::parse).transpose()?,
                vv: args.spice_vv.clone(),
                password_file: args.spice_password_file.clone(),
                channel: args.spice_channel,
                ca: args.spice_ca.clone(),
                host_subject: args.spice_host_subject.clone(),
            }),
            _ if local && gadget.is_some() => bail!("the profile names more than one transport; keep one"),
            (None, None, None) if local => Transport::Local,
            (None, None, None) if gadget.is_some() => {
                let udc = gadget.filter(|g| !g.is_empty() && g != "auto");
                Transport::Gadget(udc)
            }
            _ if local || gadget.is_some() => bail!("the profile names more than one transport; keep one"),
            (Some(a), None, None) => Transport::UsbredirListen(RedirSocket::parse(&a)?),
            (None, Some(a), None) => Transport::UsbredirConnect(RedirSocket::parse(&a)?),
            (None, None, Some(a)) if a.starts_with("unix:") => {
                bail!("USB/IP clients connect over TCP only; give --usbip ADDR:PORT")
            }
            (None, None, Some(a)) => Transport::Usbip(parse_addr(&a, Some(USBIP_PORT))?),
            (None, None, None) => {
                bail!(
                    "no transport: give --usbredir, --usbredir-connect, --usbip, --local, --gadget or --spice"
                )
            }
            _ => bail!("the profile names more than one transport; keep one"),
        };
        if args.spice_channel.is_some() && !matches!(transport, Transport::Spice(_)) {
            bail!("--spice-channel goes with --spice or --spice-vv");
        }
        let block_size = args.block_size.or(profile.block_size).unwrap_or(512);
        // The rule `ctl insert` and the device builder apply too.
        vstick_scsi::check_block_size(LunKind::Disk, block_size)
            .map_err(|e| anyhow::anyhow!("block size: {e}"))?;
        let keep = args.snapshot_keep.clone().or(profile.snapshot_keep);
        let snapshot = (args.snapshot || profile.snapshot || keep.is_some()).then_some(Snapshot { keep });
        let identity = IdentitySpec::resolve(
            &args.identity,
            &ProfileIdentity {
                vendor_id: profile.vendor_id,
                product_id: profile.product_id,
                manufacturer: profile.manufacturer,
                product: profile.product,
                serial: profile.serial,
            },
            args.config.as_ref().map(|p| p.display().to_string()).as_deref(),
            matches!(transport, Transport::Gadget(_)),
        )?;
        let tls = args.tls_cert.clone().zip(args.tls_key.clone());
        if tls.is_some() && !matches!(transport, Transport::UsbredirListen(RedirSocket::Tcp(_))) {
            bail!(
                "--tls-cert/--tls-key secure --usbredir ADDR:PORT only (QEMU connects to vstick over TLS; \
                 a unix: socket is guarded by its file permissions instead)"
            );
        }
        Ok(Self {
            transport,
            luns,
            block_size,
            control: args.control.clone().or(profile.control),
            snapshot,
            tls,
            speed: args.usb_speed.or(profile.usb_speed).map(|s| match s {
                UsbSpeed::High => Speed::High,
                UsbSpeed::Super => Speed::Super,
            }),
            identity,
        })
    }
}

/// The lines a user pastes to attach the device.
pub fn attach_instructions(transport: &Transport) -> String {
    match transport {
        Transport::UsbredirListen(a) => format!(
            "attach with QEMU:\n  -device qemu-xhci,id=xhci \\\n  -chardev socket,id=vstick0,{},reconnect=1 \\\n  \
             -device usb-redir,chardev=vstick0,bus=xhci.0\n(QEMU 9.2+: reconnect-ms=1000 instead of reconnect=1)",
            a.chardev_address()
        ),
        Transport::UsbredirConnect(a) => format!(
            "connecting to QEMU at {a}; start QEMU with:\n  -device qemu-xhci,id=xhci \\\n  \
             -chardev socket,id=vstick0,{},server=on,wait=off \\\n  -device usb-redir,chardev=vstick0,bus=xhci.0",
            a.chardev_address()
        ),
        Transport::Spice(t) => format!(
            "offering the device to the VM behind SPICE server {} over its usbredir channel {}",
            match (&t.server, &t.vv) {
                (Some(server), _) => server.host.clone(),
                (None, Some(vv)) => format!("of {}", vv.display()),
                (None, None) => String::new(),
            },
            t.channel.map_or("(the first free one)".to_string(), |c| c.to_string())
        ),
        Transport::Usbip(a) => format!(
            "attach with USB/IP:\n  modprobe vhci-hcd\n  usbip list -r {host}\n  usbip attach -r {host} -b {USBIP_BUSID}",
            host = a.ip()
        ),
        Transport::Local => "plugged into this machine through vhci-hcd".to_string(),
        Transport::Gadget(_) => "a USB gadget on this board's device port".to_string(),
    }
}

fn warn_if_exposed(transport: &Transport) {
    let addr = match transport {
        Transport::UsbredirListen(RedirSocket::Tcp(a)) | Transport::Usbip(a) => a,
        Transport::UsbredirListen(RedirSocket::Unix(_))
        | Transport::UsbredirConnect(_)
        | Transport::Local
        | Transport::Spice(_)
        | Transport::Gadget(_) => return,
    };
    if !addr.ip().is_loopback() {
        tracing::warn!(
            "listening on {addr}, beyond this machine: usbredir and USB/IP have no authentication, \
             so anyone who reaches this port can read and write the served images"
        );
    }
}

/// Resolves when SIGINT or SIGTERM arrives. The handlers are installed on the
/// call, not on the first poll: a signal right after the start-up line must
/// still flush and keep snapshots rather than kill the process.
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let signals = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
    async move {
        let (Ok(mut int), Ok(mut term)) = signals else {
            // Without signal handlers the default action (exit) still applies.
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT: flushing and exiting"),
            _ = term.recv() => tracing::info!("SIGTERM: flushing and exiting"),
        }
    }
}

pub fn run(args: ServeArgs, cli_luns: Vec<LunSpec>) -> anyhow::Result<()> {
    let plan = ServePlan::new(&args, cli_luns)?;
    if let Some(warning) = plan.identity.serial_warning() {
        tracing::warn!("{warning}");
    }
    let usbredir = matches!(
        plan.transport,
        Transport::UsbredirListen(_) | Transport::UsbredirConnect(_) | Transport::Spice(_)
    );
    // usbredir serves one client at a time: a single thread moves its bytes with the least
    // overhead (BENCHMARKS.md). USB/IP's edge uses block_in_place, which needs workers.
    let mut builder = if usbredir {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    };
    let runtime = builder.enable_all().build().context("cannot start the async runtime")?;
    // Claim the sockets before opening images: a clash is reported alone, and a
    // socket that belongs to another server is never removed by this one.
    let (endpoint, control) = {
        let _enter = runtime.enter();
        let endpoint = Endpoint::claim(&plan)?;
        let control = match &plan.control {
            Some(path) => Some((crate::control::bind(path)?, SocketFile(path.clone()))),
            None => None,
        };
        (endpoint, control)
    };
    let speed = match &endpoint {
        Endpoint::Local { speed, .. } => *speed,
        _ => plan.speed.unwrap_or(if usbredir { Speed::Super } else { Speed::High }),
    };
    let (device, kept) =
        build_device(&plan.luns, plan.block_size, plan.snapshot.as_ref(), speed, &plan.identity)?;
    let device = Arc::new(Mutex::new(device));
    let result = runtime.block_on(serve_plan(&plan, device.clone(), endpoint, control));
    // Flush whatever the transport ended with: a signal, an error, or a closed peer.
    let flushed = device.lock().unwrap_or_else(|e| e.into_inner()).target_mut().flush();
    // Kept snapshots live here until now, even one ejected while serving.
    let kept = keep_snapshots(&kept);
    result?;
    flushed.context("flushing images on exit")?;
    kept?;
    tracing::info!("images flushed; bye");
    Ok(())
}

/// The transport's socket and TLS identity, claimed before any image is opened: a
/// clash is reported alone, and no image is locked by a server that cannot serve.
enum Endpoint {
    RedirTcp(TcpListener, Option<vstick_usbredir::net::TlsAcceptor>),
    RedirUnix(tokio::net::UnixListener, SocketFile),
    Usbip(TcpListener),
    /// `--usbredir-connect`: nothing to claim, vstick dials out.
    Dial(RedirSocket),
    /// `--gadget`: configfs checked, the UDC found free, stale vstick gadgets removed.
    Gadget(crate::gadget::GadgetPlace),
    /// `--local`: vhci-hcd's attach file open, a free port of the device's speed found.
    Local {
        vhci: crate::local::Vhci,
        port: u32,
        speed: Speed,
    },
    /// `--spice`: vstick dials out; the password file is read at start.
    Spice(vstick_spice::SpiceConfig),
}

impl Endpoint {
    /// Needs a tokio runtime context.
    fn claim(plan: &ServePlan) -> anyhow::Result<Self> {
        let bind_tcp = |addr: SocketAddr| -> anyhow::Result<TcpListener> {
            let listener =
                std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
            listener.set_nonblocking(true)?;
            Ok(TcpListener::from_std(listener)?)
        };
        Ok(match &plan.transport {
            Transport::UsbredirListen(RedirSocket::Tcp(addr)) => {
                let tls = match &plan.tls {
                    Some((cert, key)) => Some(vstick_usbredir::net::tls_acceptor(cert, key)?),
                    None => None,
                };
                Self::RedirTcp(bind_tcp(*addr)?, tls)
            }
            Transport::UsbredirListen(RedirSocket::Unix(path)) => Self::RedirUnix(
                crate::socket_file::bind(path, "usbredir socket", "--usbredir unix:")?,
                SocketFile(path.clone()),
            ),
            Transport::Usbip(addr) => Self::Usbip(bind_tcp(*addr)?),
            Transport::UsbredirConnect(place) => Self::Dial(place.clone()),
            Transport::Local => {
                let vhci = crate::local::Vhci::open()?;
                let (port, speed) = crate::local::pick_port(&vhci.ports()?, plan.speed)?;
                Self::Local { vhci, port, speed }
            }
            Transport::Spice(target) => Self::Spice(target.config()?),
            Transport::Gadget(udc) => {
                Self::Gadget(crate::gadget::GadgetPlace::claim(udc.as_deref(), plan.speed)?)
            }
        })
    }
}

async fn serve_plan(
    plan: &ServePlan,
    device: Arc<Mutex<MassStorageDevice>>,
    endpoint: Endpoint,
    control: Option<(tokio::net::UnixListener, SocketFile)>,
) -> anyhow::Result<()> {
    let _control = match control {
        Some((listener, file)) => {
            let controlled = Arc::new(crate::control::Controlled {
                device: device.clone(),
                luns: plan.luns.iter().map(|l| l.for_inserts(plan.snapshot.is_some())).collect(),
                block_size: plan.block_size,
            });
            tracing::info!("control socket: {}", file.0.display());
            Some((file, AbortOnDrop(tokio::spawn(crate::control::serve(listener, controlled)))))
        }
        None => None,
    };
    warn_if_exposed(&plan.transport);
    let shutdown = shutdown_signal();
    match endpoint {
        Endpoint::RedirUnix(listener, file) => {
            // `file` lives to the end of this arm: the socket goes when serving ends.
            announce(format_args!(
                "vstick: usbredir server on unix:{}; {}",
                file.0.display(),
                attach_instructions(&plan.transport)
            ));
            vstick_usbredir::net::serve(listener, device, shutdown).await?
        }
        Endpoint::RedirTcp(listener, tls) => {
            let local = listener.local_addr()?;
            announce(format_args!(
                "vstick: usbredir server on {local}{}; {}",
                if tls.is_some() { " (TLS: add tls-creds=ID to the chardev, see SECURITY.md)" } else { "" },
                attach_instructions(&Transport::UsbredirListen(RedirSocket::Tcp(local)))
            ));
            match tls {
                Some(acceptor) => {
                    vstick_usbredir::net::serve_tls(listener, device, acceptor, shutdown).await?
                }
                None => vstick_usbredir::net::serve(listener, device, shutdown).await?,
            }
        }
        Endpoint::Dial(place) => {
            announce(format_args!("vstick: {}", attach_instructions(&plan.transport)));
            match place {
                RedirSocket::Tcp(addr) => vstick_usbredir::net::connect(addr, device, shutdown).await?,
                RedirSocket::Unix(path) => {
                    vstick_usbredir::net::connect_unix(&path, device, shutdown).await?
                }
            }
        }
        Endpoint::Spice(config) => {
            announce(format_args!("vstick: {}", attach_instructions(&plan.transport)));
            vstick_spice::connect(&config, &device, shutdown).await?
        }
        Endpoint::Usbip(listener) => {
            let local = listener.local_addr()?;
            announce(format_args!(
                "vstick: USB/IP server on {local}, bus id {USBIP_BUSID}; {}",
                attach_instructions(&Transport::Usbip(local))
            ));
            vstick_usbip::net::serve(listener, device, USBIP_BUSID.to_string(), shutdown).await?;
        }
        Endpoint::Local { vhci, port, speed } => {
            crate::local::serve(vhci, port, speed, device, &plan.luns, shutdown).await?
        }
        Endpoint::Gadget(place) => crate::gadget::serve(place, device, shutdown).await?,
    }
    Ok(())
}

/// Start-up lines for the user (stdout). A closed stdout (`| head -1`, a detached
/// service) must not take the server down, so write errors are ignored.
pub(crate) fn announce(msg: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{msg}");
    let _ = out.flush();
}

pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests;
