//! The `vstick` command.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use vstick::author;
use vstick::cli::{Cli, Command, ImageCommand};

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Serve(args) => {
            // LUN numbers follow command-line order across --disk/--disk-ro/--cdrom.
            let serve_matches = matches.subcommand_matches("serve").expect("serve subcommand");
            vstick::serve::LunSpec::from_matches(&args, serve_matches)
                .and_then(|luns| vstick::serve::run(*args, luns))
        }
        Command::Ctl(args) => vstick::control::run_ctl(args),
        Command::Iso(cmd) => author::run_iso(cmd),
        Command::Image(ImageCommand::Create(args)) => author::run_image_create(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the outermost context and its causes.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let cause = cause.to_string();
                if !msg.contains(&cause) {
                    msg.push_str(": ");
                    msg.push_str(&cause);
                }
            }
            eprintln!("vstick: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
