//! Command-line definitions (clap derive). Names here are part of the
//! interface users script against: keep them stable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::author::{ImageCreateArgs, IsoCommand};

#[derive(Debug, Parser)]
#[command(name = "vstick", version, about = "A software USB stick: disk images as a USB mass-storage device")]
pub struct Cli {
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve images as one USB mass-storage device (LUNs in command-line order).
    Serve(Box<ServeArgs>),
    /// Talk to a running `vstick serve --control SOCKET`.
    Ctl(CtlArgs),
    /// Create or list ISO 9660 images.
    #[command(subcommand)]
    Iso(IsoCommand),
    /// Create stick images.
    #[command(subcommand)]
    Image(ImageCommand),
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Create a RAW stick image (optionally MBR + FAT32 with copied files).
    Create(ImageCreateArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("transport").multiple(false)))]
pub struct ServeArgs {
    /// Listen for QEMU's usb-redir chardev (`reconnect=1`) on ADDR:PORT (loopback if ADDR is
    /// omitted), or on the Unix socket unix:PATH (QEMU `path=PATH`).
    #[arg(long, value_name = "ADDR:PORT|unix:PATH", group = "transport")]
    pub usbredir: Option<String>,
    /// Connect to QEMU's usb-redir chardev listening with `server=on` at ADDR:PORT or unix:PATH.
    #[arg(long, value_name = "ADDR:PORT|unix:PATH", group = "transport")]
    pub usbredir_connect: Option<String>,
    /// Serve USB/IP on ADDR:PORT (port 3240 if omitted; loopback if ADDR is omitted).
    #[arg(long, value_name = "ADDR:PORT", group = "transport")]
    pub usbip: Option<String>,
    /// Plug the stick into this machine through Linux vhci-hcd (root): its disks and
    /// discs appear as /dev/sdX and /dev/srN. No VM, network or usbip tool needed.
    #[arg(long, group = "transport")]
    pub local: bool,
    /// Offer the device to a VM through its SPICE server's usbredir channel, as a SPICE
    /// client: spice://HOST:PORT or spice://HOST?port=P&tls-port=T (remote-viewer's forms).
    #[arg(long, value_name = "URI", group = "transport")]
    pub spice: Option<String>,
    /// Offer the device over SPICE as a virt-viewer connection file says (Proxmox VE, oVirt):
    /// host, ports, password, CA, HTTP CONNECT proxy.
    #[arg(long, value_name = "FILE", group = "transport")]
    pub spice_vv: Option<PathBuf>,
    /// The SPICE password (ticket), read from FILE (one line); never on the command line.
    #[arg(long, value_name = "FILE", requires = "spice", conflicts_with = "spice_vv")]
    pub spice_password_file: Option<PathBuf>,
    /// Trust this CA certificate (PEM; QEMU's x509-dir/ca-cert.pem) for the SPICE TLS port;
    /// the server's certificate must also name the host of --spice.
    #[arg(long, value_name = "FILE", requires = "spice", conflicts_with = "spice_vv")]
    pub spice_ca: Option<PathBuf>,
    /// Check the SPICE server certificate's subject ("O=...,CN=...") instead of its names.
    #[arg(long, value_name = "SUBJECT", requires = "spice_ca")]
    pub spice_host_subject: Option<String>,
    /// Use the VM's usbredir channel N (default: the first one no other client holds).
    #[arg(long, value_name = "N")]
    pub spice_channel: Option<u8>,
    /// Be a USB stick on this board's USB device port: a configfs gadget on the USB device
    /// controller UDC (default: the only one in /sys/class/udc). Root; see README.
    #[arg(long, value_name = "UDC", num_args = 0..=1, default_missing_value = "", group = "transport")]
    pub gadget: Option<String>,
    /// A writable disk LUN backed by a RAW image (repeatable).
    #[arg(long, value_name = "PATH")]
    pub disk: Vec<PathBuf>,
    /// A read-only disk LUN backed by a RAW image (repeatable).
    #[arg(long, value_name = "PATH")]
    pub disk_ro: Vec<PathBuf>,
    /// A CD/DVD-ROM LUN backed by an ISO image (repeatable; DVD profile above CD size).
    #[arg(long, value_name = "PATH")]
    pub cdrom: Vec<PathBuf>,
    /// Logical block size of disk LUNs (512 or 4096). Default: the profile's, else 512.
    // An Option, not a default of 512: an explicit 512 must override a profile's 4096.
    #[arg(long, value_name = "BYTES", value_parser = parse_block_size)]
    pub block_size: Option<u32>,
    /// Unix socket for `vstick ctl` (eject, insert, status).
    #[arg(long, value_name = "SOCKET")]
    pub control: Option<PathBuf>,
    /// Send writes to a temporary copy-on-write overlay; the images are opened
    /// read-only and never modified. The overlay is discarded on exit.
    #[arg(long)]
    pub snapshot: bool,
    /// Like --snapshot, and on exit write each writable disk's merged image
    /// (base + this session's writes) to PATH (PATH.lunN when there are several).
    #[arg(long, value_name = "PATH")]
    pub snapshot_keep: Option<PathBuf>,
    /// Read transports and LUNs from a TOML stick profile (see README).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// USB speed presented: `super` (USB 3, 1 MiB transfers; usbredir on qemu-xhci) or
    /// `high` (USB 2.0). Default: super over usbredir, high over USB/IP, with --local super
    /// if a SuperSpeed vhci port is free, else high; with --gadget the controller's
    /// (this caps it).
    #[arg(long, value_name = "SPEED")]
    pub usb_speed: Option<UsbSpeed>,
    /// Serve --usbredir over TLS with this certificate chain (PEM), for QEMU's
    /// `tls-creds-x509,endpoint=client` (see SECURITY.md).
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    #[command(flatten)]
    pub identity: IdentityArgs,
}

/// Who the device says it is. Taken as text and checked in `ServePlan::new`
/// (`crate::identity`), with the profile's values, so that a bad value is one
/// line naming the option whichever way it came.
#[derive(Debug, Default, Clone, Args)]
pub struct IdentityArgs {
    /// idVendor, hex (0x1d6b) or decimal. Default 0x1209 (pid.codes).
    #[arg(long, value_name = "N")]
    pub vendor_id: Option<String>,
    /// idProduct, hex (0x0104) or decimal. Default 0x0001 (pid.codes test PID).
    #[arg(long, value_name = "N")]
    pub product_id: Option<String>,
    /// The manufacturer string (iManufacturer). Default "vstick".
    #[arg(long, value_name = "TEXT")]
    pub manufacturer: Option<String>,
    /// The product string (iProduct). Default "vstick USB stick".
    #[arg(long, value_name = "TEXT")]
    pub product: Option<String>,
    /// The serial number string (iSerialNumber; BOT wants 12+ characters of 0-9, A-F).
    /// Default: 16 hex digits derived from the image paths, stable across restarts.
    #[arg(long, value_name = "TEXT")]
    pub serial: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsbSpeed {
    High,
    Super,
}

fn parse_block_size(s: &str) -> Result<u32, String> {
    let size = s.parse().map_err(|_| format!("{s:?} is not a number of bytes (use 512 or 4096)"))?;
    // The rule start-up, `ctl insert` and the device builder share.
    vstick_scsi::check_block_size(vstick_scsi::LunKind::Disk, size).map_err(|e| e.to_string())?;
    Ok(size)
}

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The control socket given to `vstick serve --control`.
    pub socket: PathBuf,
    #[command(subcommand)]
    pub request: CtlRequest,
}

#[derive(Debug, Subcommand)]
pub enum CtlRequest {
    /// Show every LUN: type, image, read-only, medium, lock, bytes moved.
    Status,
    /// Remove the medium from LUN (refused while the host locks it, unless --force).
    Eject {
        lun: u8,
        #[arg(long)]
        force: bool,
    },
    /// Insert PATH into LUN, swapping out any medium it holds.
    Insert {
        lun: u8,
        path: PathBuf,
        #[arg(long)]
        force: bool,
    },
}
