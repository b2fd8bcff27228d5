//! Embedding: a SPICE client that owns its connection (as the seed-002 client
//! or any viewer would) and offers a RAM-backed USB stick on one usbredir
//! channel. The program links the channels itself with the sans-io
//! [`Link`] and [`Channel`], keeps the main channel in its own loop, and
//! hands vstick only the linked usbredir channel ([`VmcStream`], driven by
//! `vstick_usbredir::run_connection`). (`vstick serve --spice` is the whole
//! thing ready-made: [`vstick_spice::connect`].)
//!
//!     qemu-system-x86_64 ... -spice port=5900,addr=127.0.0.1,disable-ticketing=on \
//!         -device qemu-xhci,id=xhci -chardev spicevmc,name=usbredir,id=ur0 \
//!         -device usb-redir,chardev=ur0,bus=xhci.0
//!     cargo run -p vstick-spice --example spice_embed -- 127.0.0.1:5900 [CHANNEL_ID]
//!
//! Ticketing off (no password) and plain TCP, to keep it short.

use std::sync::Mutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vstick_spice::VmcStream;
use vstick_spice::channel::{Channel, ChannelError};
use vstick_spice::codec::{self, channel, msg, msgc};
use vstick_spice::link::{Link, LinkRequest, SPICEVMC_CAP_LZ4};
use vstick_usbredir::DeviceBuilder;
use vstick_usbredir::media::MemoryImage;

type Error = Box<dyn std::error::Error>;

/// Connects to `addr` and links one channel; returns the socket, the channel
/// state and the bytes that came after the link result.
async fn link(addr: &str, request: LinkRequest) -> Result<(TcpStream, Channel, Vec<u8>), Error> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut link = Link::new(&request, b"")?;
    let mut buf = vec![0u8; 8192];
    loop {
        stream.write_all(&link.take_output()).await?;
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(link.closed().into());
        }
        let used = link.receive(&buf[..n])?;
        if let Some(linked) = link.linked() {
            return Ok((stream, Channel::new(linked.header), buf[used..n].to_vec()));
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().ok_or("usage: spice_embed HOST:PORT [CHANNEL_ID]")?;
    let wanted: u8 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(0);

    // The main channel: session id, then the channel list.
    let main_request =
        LinkRequest { connection_id: 0, channel_type: channel::MAIN, channel_id: 0, channel_caps: 0 };
    let (mut main, mut main_channel, mut input) = link(&addr, main_request).await?;
    let (mut session, mut usbredir_ids) = (None, None);
    let mut buf = vec![0u8; 64 * 1024];
    let mut asked = false;
    loop {
        let mut out = Vec::new();
        main_channel.receive(&input, &mut out, |m| -> Result<(), ChannelError> {
            match m.msg_type {
                msg::MAIN_INIT => session = Some(codec::parse_main_init(m.body)?),
                msg::MAIN_CHANNELS_LIST => {
                    let list = codec::parse_channels_list(m.body)?;
                    usbredir_ids = Some(
                        list.into_iter()
                            .filter(|c| c.0 == channel::USBREDIR)
                            .map(|c| c.1)
                            .collect::<Vec<_>>(),
                    );
                }
                _ => {}
            }
            Ok(())
        })?;
        if session.is_some() && !asked {
            // Ask for the list once the init is in (answers to PINGs go out too).
            main_channel.encode(msgc::MAIN_ATTACH_CHANNELS, &[], &mut out);
            asked = true;
        }
        main.write_all(&out).await?;
        if usbredir_ids.is_some() {
            break;
        }
        let n = main.read(&mut buf).await?;
        if n == 0 {
            return Err("the server closed the main channel".into());
        }
        input = buf[..n].to_vec();
    }
    let session = session.ok_or("no MAIN_INIT")?;
    let ids = usbredir_ids.unwrap_or_default();
    if !ids.contains(&wanted) {
        return Err(format!("no usbredir channel {wanted} (the VM has {ids:?})").into());
    }

    // The usbredir channel, handed to vstick.
    let request = LinkRequest {
        connection_id: session,
        channel_type: channel::USBREDIR,
        channel_id: wanted,
        channel_caps: 1 << SPICEVMC_CAP_LZ4,
    };
    let (socket, vmc_channel, first) = link(&addr, request).await?;
    let stream = VmcStream::new(socket, vmc_channel, &first)?;
    let device = Mutex::new(DeviceBuilder::new().disk(MemoryImage::new(64 << 20, 512, false)).build()?);
    eprintln!("spice_embed: a 64 MiB RAM stick on usbredir channel {wanted}");

    // The program's own main-channel loop (PINGs answered) beside vstick's.
    let main_loop = async {
        loop {
            let n = main.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, Error>(());
            }
            let mut out = Vec::new();
            main_channel.receive(&buf[..n], &mut out, |_| Ok::<_, ChannelError>(()))?;
            main.write_all(&out).await?;
        }
    };
    tokio::select! {
        r = vstick_usbredir::run_connection(stream, &device) => r?,
        r = main_loop => r?,
    }
    eprintln!("spice_embed: the session ended");
    Ok(())
}
