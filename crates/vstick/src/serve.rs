//! `vstick serve`: open the images, build one USB device, run a transport.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::ArgMatches;

use vstick_media::{BlockBackend, FileImage, OpenOptions};
use vstick_scsi::{LunConfig, LunKind, Target};

use crate::cli::ServeArgs;

/// What one LUN is made of, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LunSpec {
    Disk { path: PathBuf, read_only: bool },
    Cdrom { path: PathBuf },
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
        let luns: Vec<LunSpec> = indexed.into_iter().map(|(_, l)| l).collect();
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
        Ok(luns)
    }

    pub fn path(&self) -> &PathBuf {
        match self {
            LunSpec::Disk { path, .. } | LunSpec::Cdrom { path } => path,
        }
    }

    pub fn open(&self, block_size: u32) -> anyhow::Result<Box<dyn BlockBackend>> {
        let image = match self {
            LunSpec::Disk { path, read_only } => {
                FileImage::open(path, OpenOptions::disk(*read_only).block_size(block_size))?
            }
            LunSpec::Cdrom { path } => FileImage::open(path, OpenOptions::optical())?,
        };
        Ok(Box::new(image))
    }

    pub fn kind(&self) -> LunKind {
        match self {
            LunSpec::Disk { .. } => LunKind::Disk,
            LunSpec::Cdrom { .. } => LunKind::Optical,
        }
    }
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
    if let Some((host, port)) = s.rsplit_once(':') {
        if let Ok(port) = port.parse::<u16>() {
            use std::net::ToSocketAddrs;
            if let Some(sa) = (host, port).to_socket_addrs().ok().and_then(|mut a| a.next()) {
                return Ok(sa);
            }
        }
    }
    bail!("{s:?} is not an address: use ADDR:PORT, e.g. 127.0.0.1:4000")
}

/// A stable device serial: the same images give the same stick across restarts.
fn device_serial(luns: &[LunSpec]) -> String {
    let seed: Vec<String> = luns
        .iter()
        .map(|l| std::fs::canonicalize(l.path()).unwrap_or_else(|_| l.path().clone()).display().to_string())
        .collect();
    // FNV-1a: tiny, stable across Rust versions (unlike DefaultHasher).
    let hash = seed
        .join("\n")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    format!("{hash:016X}")
}

/// Opens every image (all or nothing) and builds the SCSI target.
pub fn build_target(luns: &[LunSpec], block_size: u32) -> anyhow::Result<Target> {
    let serial = device_serial(luns);
    let mut configs = Vec::with_capacity(luns.len());
    for (i, spec) in luns.iter().enumerate() {
        let medium = spec.open(block_size).with_context(|| format!("LUN {i}"))?;
        tracing::info!(
            "LUN {i}: {} {} ({} blocks of {} bytes{})",
            match spec.kind() {
                LunKind::Disk => "disk",
                LunKind::Optical => "cdrom",
            },
            spec.path().display(),
            medium.block_count(),
            medium.block_size(),
            if medium.read_only() { ", read-only" } else { "" }
        );
        configs.push(LunConfig {
            kind: spec.kind(),
            medium: Some(medium),
            serial: format!("{serial}{i:02X}"),
        });
    }
    Ok(Target::new(configs))
}

pub fn run(args: ServeArgs, luns: Vec<LunSpec>) -> anyhow::Result<()> {
    let _target = build_target(&luns, args.block_size)?;
    bail!("serving is not wired yet")
}
