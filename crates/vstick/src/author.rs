//! `vstick iso ...` and `vstick image create`: thin CLI wrappers over vstick-authoring.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use vstick_authoring::{self as authoring, BiosBoot, Cancel, IsoOptions, StickOptions};

#[derive(Debug, Subcommand)]
pub enum IsoCommand {
    /// Create an ISO 9660 image (Joliet + Rock Ridge) from a directory.
    Create {
        src_dir: PathBuf,
        #[arg(short, long, value_name = "OUT.iso")]
        output: PathBuf,
        /// Volume label, up to 32 ASCII characters (default: the directory's name).
        #[arg(long)]
        label: Option<String>,
        /// BIOS El Torito boot image (no emulation): a path inside SRC_DIR.
        #[arg(long, value_name = "IMG")]
        boot: Option<String>,
        /// 512-byte sectors the BIOS loads from the boot image (default: all of it).
        #[arg(long, value_name = "N", requires = "boot")]
        boot_load_size: Option<u16>,
        /// Patch a boot information table into the boot image (ISOLINUX needs it).
        #[arg(long, requires = "boot")]
        boot_info_table: bool,
        /// UEFI El Torito boot image: a FAT image inside SRC_DIR holding EFI/BOOT/BOOTX64.EFI.
        #[arg(long, value_name = "IMG")]
        efi_boot: Option<String>,
        /// Overwrite OUT if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Show an ISO image's label, size and file tree.
    Ls { image: PathBuf },
}

#[derive(Debug, Args)]
pub struct ImageCreateArgs {
    pub output: PathBuf,
    /// Image size: 512M, 2G, 2GiB, or bytes.
    #[arg(long)]
    pub size: String,
    /// Partition (MBR) and format; without it the image is zeroed and sparse.
    #[arg(long, value_name = "FS")]
    pub fs: Option<String>,
    #[arg(long)]
    pub label: Option<String>,
    /// Copy this directory's contents into the filesystem.
    #[arg(long, value_name = "DIR")]
    pub copy: Option<PathBuf>,
    /// Overwrite OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run_iso(cmd: IsoCommand) -> anyhow::Result<()> {
    match cmd {
        IsoCommand::Create {
            src_dir,
            output,
            label,
            boot,
            boot_load_size,
            boot_info_table,
            efi_boot,
            force,
        } => {
            let bar = authoring::Bar::new();
            let opts = IsoOptions {
                label,
                boot: boot.map(|image| BiosBoot {
                    image,
                    load_size: boot_load_size,
                    info_table: boot_info_table,
                }),
                efi_boot,
                force,
                progress: &bar,
                cancel: ctrl_c()?,
            };
            let report = authoring::iso::create(&src_dir, &output, &opts)?;
            warn(&report.warnings);
            println!(
                "{}: {} ISO 9660 image, label {:?}, {} files, {} directories, {} symlinks",
                output.display(),
                authoring::size::format(report.size),
                report.label,
                report.stats.files,
                report.stats.dirs,
                report.stats.symlinks
            );
            Ok(())
        }
        IsoCommand::Ls { image } => {
            let listing = authoring::list(&image)?;
            print!("{listing}");
            Ok(())
        }
    }
}

pub fn run_image_create(args: ImageCreateArgs) -> anyhow::Result<()> {
    let size = authoring::size::parse(&args.size)?;
    let fs = args.fs.as_deref().map(str::parse).transpose()?;
    let bar = authoring::Bar::new();
    let opts = StickOptions {
        size,
        fs,
        label: args.label,
        copy: args.copy,
        force: args.force,
        progress: &bar,
        cancel: ctrl_c()?,
    };
    let report = authoring::stick::create(&args.output, &opts)?;
    warn(&report.warnings);
    match (&report.partition, &report.copied) {
        (None, _) => {
            println!("{}: {} blank image (sparse)", args.output.display(), authoring::size::format(size))
        }
        (Some(p), copied) => {
            let label = p.label.as_deref().map(|l| format!(" label {l:?},")).unwrap_or_default();
            let copied = copied
                .map(|s| format!(", {} files and {} directories copied", s.files, s.dirs))
                .unwrap_or_default();
            println!(
                "{}: {} image, MBR partition 1 at {} KiB: FAT32,{label} {} clusters of {} bytes{copied}",
                args.output.display(),
                authoring::size::format(size),
                p.offset >> 10,
                p.clusters,
                p.cluster_size
            );
        }
    }
    Ok(())
}

/// Ctrl-C stops the write; the temporary output is removed and nothing is left under the name.
fn ctrl_c() -> anyhow::Result<Cancel> {
    let cancel = Cancel::new();
    cancel.on_ctrl_c()?;
    Ok(cancel)
}

fn warn(lines: &[String]) {
    for line in lines {
        eprintln!("vstick: warning: {line}");
    }
}
