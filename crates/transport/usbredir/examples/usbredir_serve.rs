//! A minimal usbredir server for a RAW disk and an optional ISO, for trying
//! the transport on its own (the real command is `vstick serve --usbredir`).
//!
//!     cargo run -p vstick-usbredir --example usbredir_serve -- 127.0.0.1:4000 disk.raw [cd.iso]
//!     qemu-system-x86_64 ... -device qemu-xhci,id=xhci \
//!         -chardev socket,id=r0,host=127.0.0.1,port=4000,reconnect=1 \
//!         -device usb-redir,chardev=r0,bus=xhci.0
//!
//! With `--connect` first, it dials a QEMU that listens instead
//! (`-chardev socket,id=r0,host=127.0.0.1,port=4000,server=on,wait=off`).
//!
//! `RUST_LOG`-style filtering is not wired; set VSTICK_DEBUG=1 for debug logs.
//! SIGINT/SIGTERM stop the server and flush the image.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use vstick_media::{FileImage, OpenOptions};
use vstick_usb::DeviceBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let level =
        if std::env::var_os("VSTICK_DEBUG").is_some() { tracing::Level::DEBUG } else { tracing::Level::INFO };
    tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).init();
    let mut args = std::env::args().skip(1).peekable();
    let dial = args.next_if(|a| a == "--connect").is_some();
    let (Some(addr), Some(disk)) = (args.next(), args.next().map(PathBuf::from)) else {
        eprintln!("usage: usbredir_serve [--connect] ADDR:PORT DISK.raw [CD.iso]");
        std::process::exit(2);
    };
    let mut builder = DeviceBuilder::new().disk(FileImage::open(&disk, OpenOptions::disk(false))?);
    if let Some(iso) = args.next().map(PathBuf::from) {
        builder = builder.cdrom(FileImage::open(&iso, OpenOptions::optical())?);
    }
    let device = Arc::new(Mutex::new(builder.build()?));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    if dial {
        eprintln!("usbredir_serve: {} to {addr}", disk.display());
        vstick_usbredir::connect(addr.as_str(), Arc::clone(&device), shutdown).await?;
    } else {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("usbredir_serve: {} on {}", disk.display(), listener.local_addr()?);
        vstick_usbredir::serve(listener, Arc::clone(&device), shutdown).await?;
    }
    device.lock().unwrap_or_else(|e| e.into_inner()).target_mut().flush()?;
    eprintln!("usbredir_serve: flushed, exiting");
    Ok(())
}
