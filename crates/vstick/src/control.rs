//! The control socket (`serve --control`) and its client (`vstick ctl`).

use crate::cli::CtlArgs;

pub fn run_ctl(args: CtlArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
