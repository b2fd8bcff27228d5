//! `vstick iso ...` and `vstick image create`: thin CLI wrappers over vstick-authoring.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum IsoCommand {
    /// Create an ISO 9660 image (Joliet + Rock Ridge) from a directory.
    Create {
        src_dir: PathBuf,
        #[arg(short, long, value_name = "OUT.iso")]
        output: PathBuf,
        #[arg(long)]
        label: Option<String>,
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
    let _ = cmd;
    anyhow::bail!("not implemented yet")
}

pub fn run_image_create(args: ImageCreateArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
