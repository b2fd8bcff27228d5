//! A minimal USB/IP server for one RAW disk image, for trying the transport
//! on its own (the real command is `vstick serve --usbip`).
//!
//!     cargo run -p vstick-usbip --example usbip_serve -- 127.0.0.1:3240 disk.raw
//!     usbip list -r 127.0.0.1 && usbip attach -r 127.0.0.1 -b 1-1
//!
//! SIGINT/SIGTERM stop the server and flush the image.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use vstick_media::{FileImage, OpenOptions};
use vstick_usb::DeviceBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(image)) = (args.next(), args.next().map(PathBuf::from)) else {
        eprintln!("usage: usbip_serve ADDR:PORT DISK.raw");
        std::process::exit(2);
    };
    let disk = FileImage::open(&image, OpenOptions::disk(false))?;
    let device = Arc::new(Mutex::new(DeviceBuilder::new().disk(disk).build()?));
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("usbip_serve: {} on {}, bus id 1-1", image.display(), listener.local_addr()?);
    let mut term = signal(SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    vstick_usbip::serve(listener, Arc::clone(&device), "1-1".to_owned(), shutdown).await?;
    device.lock().unwrap_or_else(|e| e.into_inner()).target_mut().flush()?;
    eprintln!("usbip_serve: flushed, exiting");
    Ok(())
}
