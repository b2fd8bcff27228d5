//! tokio side: connect to a SPICE server as a client, link the main channel,
//! pick a usbredir channel, and run vstick's usbredir session through it
//! ([`vstick_usbredir::run_connection`] over a [`VmcStream`]); [`connect`]
//! does that again, with backoff, whenever the connection is lost.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};
use vstick_usb::UsbDevice;

use crate::channel::{Channel, ChannelError};
use crate::codec::{self, channel, msg, msgc};
use crate::link::{Link, LinkError, LinkErrorCode, LinkRequest, SPICEVMC_CAP_LZ4};
use crate::stream::VmcStream;
use crate::tls::{Stream, TlsSetup};
use crate::uri::ServerAddr;

/// How long the server may take to answer a link, or the main channel to
/// send its init and channel list.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a linked usbredir channel may stay silent before we take it as
/// free anyway (QEMU's usb-redir sends its hello as soon as it is linked).
const FIRST_DATA_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection backoff: first and longest pause.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// After the server closed a session: the pause before asking whether it is
/// still there (a quitting QEMU closes its channels before its listener).
const PROBE_DELAY: Duration = Duration::from_millis(300);

/// A password kept out of logs and `Debug`, wiped on drop.
#[derive(Clone, Default)]
pub struct Password(Vec<u8>);

impl Password {
    /// A password from its bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        self.0.fill(0);
    }
}

/// What to connect to.
#[derive(Debug, Clone)]
pub struct SpiceConfig {
    /// The server.
    pub server: ServerAddr,
    /// The ticket password (empty: ticketing off).
    pub password: Password,
    /// The usbredir channel id to use; `None`: the first one not held.
    pub channel: Option<u8>,
    /// Trust for the TLS port (`--spice-ca`); without it only the plain port is used.
    pub tls: Option<TlsSetup>,
    /// An HTTP CONNECT proxy (`HOST:PORT`) every channel goes through.
    pub proxy: Option<String>,
}

/// Why a SPICE connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpiceError {
    /// The TCP connection could not be made.
    #[error("cannot reach the SPICE server {addr}: {source}")]
    Connect {
        /// host:port.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The server refused the ticket.
    #[error("the SPICE server refused the password (wrong or expired)")]
    WrongPassword,
    /// The server wants a password and none was given.
    #[error("the SPICE server wants a password: give it in a file with --spice-password-file")]
    PasswordNeeded,
    /// Nothing came back to our link message.
    #[error(
        "no SPICE link reply from {0} within 10 s: is this the server's TLS port? (give it as spice://HOST?tls-port=T)"
    )]
    NoLinkReply(String),
    /// The server closed or reset a plain link before answering.
    #[error(
        "the SPICE server at {0} closed the connection without answering the link: is this its TLS port? (then give spice+tls://HOST:PORT or spice://HOST?tls-port=PORT, and --spice-ca)"
    )]
    NotSpice(String),
    /// Another client's session replaced ours.
    #[error(
        "another SPICE client connected to this VM and took over its SPICE session (a SPICE server serves one client session at a time, and a viewer connecting replaces vstick's); vstick stops rather than throw that client out: start vstick again once it has left, or start QEMU with SPICE_DEBUG_ALLOW_MC=1 and connect vstick first"
    )]
    Replaced,
    /// The port wants TLS and no TLS port is known.
    #[error(
        "the SPICE server wants TLS for this channel on port {0}: give its TLS port too (spice://HOST?port={0}&tls-port=T) and --spice-ca"
    )]
    NeedTls(u16),
    /// TLS is wanted and no CA was given.
    #[error(
        "the SPICE server wants TLS (its TLS port is {0}): give the CA certificate that signed the server's with --spice-ca (QEMU: x509-dir/ca-cert.pem)"
    )]
    NeedCa(u16),
    /// The TLS handshake failed (certificate not trusted, wrong name, ...).
    #[error("TLS with the SPICE server at {addr} failed: {source}")]
    Tls {
        /// host:port.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// A link failed otherwise.
    #[error("SPICE {what} link: {source}")]
    Link {
        /// Which channel.
        what: String,
        /// Why.
        source: LinkError,
    },
    /// The HTTP proxy refused the tunnel or did not answer as one.
    #[error("HTTP proxy {proxy}: {why}")]
    Proxy {
        /// The proxy.
        proxy: String,
        /// What it said.
        why: String,
    },
    /// The VM has no usbredir channel.
    #[error(
        "this VM has no SPICE usbredir channel (QEMU: -chardev spicevmc,name=usbredir,id=ID -device usb-redir,chardev=ID; libvirt: <redirdev bus='usb' type='spicevmc'/>; Proxmox VE: usbN: spice), or its server lets several clients in (SPICE_DEBUG_ALLOW_MC) and shows usbredir channels only to the first one connected"
    )]
    NoUsbredirChannel,
    /// `--spice-channel N` names a channel the VM does not have.
    #[error("this VM has no SPICE usbredir channel {id} (its usbredir channels: {have})")]
    NoSuchChannel {
        /// The id asked for.
        id: u8,
        /// The ids it has.
        have: String,
    },
    /// Every usbredir channel is held by another client.
    #[error(
        "every SPICE usbredir channel of this VM ({0}) is held by another SPICE client: a spice-gtk viewer (virt-viewer, remote-viewer, virt-manager's console) takes all of them when it connects; close it, start it with --spice-disable-usbredir, or give the VM one more usbredir channel"
    )]
    AllHeld(String),
    /// The main channel said something we cannot parse, or went silent.
    #[error("SPICE main channel: {0}")]
    Main(String),
    /// The connection ended.
    #[error("the SPICE connection was lost: {0}")]
    Lost(String),
}

impl SpiceError {
    /// Whether trying again cannot help (the user must change something).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            SpiceError::WrongPassword
                | SpiceError::PasswordNeeded
                | SpiceError::NoLinkReply(_)
                | SpiceError::Replaced
                | SpiceError::NotSpice(_)
                | SpiceError::NeedTls(_)
                | SpiceError::NeedCa(_)
                | SpiceError::Tls { .. }
                | SpiceError::Proxy { .. }
                | SpiceError::NoUsbredirChannel
                | SpiceError::NoSuchChannel { .. }
                | SpiceError::AllHeld(_)
                | SpiceError::Link { source: LinkError::SaslOnly | LinkError::PasswordTooLong, .. }
        )
    }
}

/// A linked channel's stream, header state and the bytes that followed its link.
struct Linked<S> {
    addr: String,
    stream: S,
    channel: Channel,
    first: Vec<u8>,
    lz4: bool,
}

/// Offers `device` to the VM behind `config.server` until `shutdown`
/// completes. A lost connection is retried with backoff (1 s doubling to
/// 30 s, back to 1 s after a session that ran); an error trying again cannot
/// fix ([`SpiceError::is_fatal`]) is returned.
pub async fn connect<D>(
    config: &SpiceConfig,
    device: &Mutex<D>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SpiceError>
where
    D: UsbDevice + ?Sized,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let mut pause = BACKOFF_FIRST;
    let mut warned = false;
    loop {
        let mut ran = false;
        let result = tokio::select! {
            () = &mut shutdown => return Ok(()),
            r = session(config, device, &mut ran) => r,
        };
        if ran {
            pause = BACKOFF_FIRST;
            warned = false;
        }
        match result {
            Ok(()) => info!("SPICE: the usbredir channel closed; reconnecting"),
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) if !warned || ran => {
                warn!(
                    "{e}; retrying (every {} s at first, up to {} s)",
                    pause.as_secs(),
                    BACKOFF_MAX.as_secs()
                );
                warned = true;
            }
            Err(e) => debug!("SPICE: still failing: {e}"),
        }
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(BACKOFF_MAX);
    }
}

/// One session: main channel, a usbredir channel, the usbredir session
/// over it until either channel ends. `ran` is set once the stick is offered.
async fn session<D>(config: &SpiceConfig, device: &Mutex<D>, ran: &mut bool) -> Result<(), SpiceError>
where
    D: UsbDevice + ?Sized,
{
    let main_req =
        LinkRequest { connection_id: 0, channel_type: channel::MAIN, channel_id: 0, channel_caps: 0 };
    let mut main = link(config, &main_req, "main").await?;
    let addr = main.addr.clone();
    let session_id = main_until(&mut main, msg::MAIN_INIT, codec::parse_main_init).await?;
    let mut out = Vec::new();
    main.channel.encode(msgc::MAIN_ATTACH_CHANNELS, &[], &mut out);
    main.stream.write_all(&out).await.map_err(lost)?;
    let list = main_until(&mut main, msg::MAIN_CHANNELS_LIST, codec::parse_channels_list).await?;
    // The server lists channels newest first; "the first" is the lowest id.
    let mut ids: Vec<u8> = list.iter().filter(|(t, _)| *t == channel::USBREDIR).map(|&(_, id)| id).collect();
    ids.sort_unstable();
    debug!(session_id, ?list, "SPICE: session");
    let names = ids.iter().map(u8::to_string).collect::<Vec<_>>().join(", ");
    let candidates = match config.channel {
        _ if ids.is_empty() => return Err(SpiceError::NoUsbredirChannel),
        Some(id) if !ids.contains(&id) => return Err(SpiceError::NoSuchChannel { id, have: names }),
        Some(id) => vec![id],
        None => ids,
    };
    let mut vmc = None;
    for id in candidates {
        let req = LinkRequest {
            connection_id: session_id,
            channel_type: channel::USBREDIR,
            channel_id: id,
            channel_caps: 1 << SPICEVMC_CAP_LZ4,
        };
        let what = format!("usbredir {id}");
        let linked = match link(config, &req, &what).await {
            Err(SpiceError::Link {
                source: LinkError::Refused(LinkErrorCode::CHANNEL_NOT_AVAILABLE),
                ..
            }) => {
                info!("SPICE: usbredir channel {id} is not available; trying the next");
                continue;
            }
            other => other?,
        };
        let lz4 = linked.lz4;
        let tls = matches!(linked.stream, Stream::Tls(_));
        let mut stream = VmcStream::new(linked.stream, linked.channel, &linked.first).map_err(lost)?;
        // A held channel is accepted, then closed at once.
        match tokio::time::timeout(FIRST_DATA_TIMEOUT, stream.wait_for_data()).await {
            Ok(Ok(false)) => {
                info!("SPICE: usbredir channel {id} is held by another client; trying the next");
                continue;
            }
            Ok(Err(e)) => return Err(lost(e)),
            Ok(Ok(true)) | Err(_) => {}
        }
        info!(channel = id, lz4, tls, "SPICE: usbredir channel linked; offering the device");
        vmc = Some(stream);
        break;
    }
    let Some(vmc) = vmc else {
        return Err(match config.channel {
            Some(id) => SpiceError::AllHeld(format!("channel {id}")),
            None => SpiceError::AllHeld(format!("channels {names}")),
        });
    };
    *ran = true;
    tokio::select! {
        r = vstick_usbredir::run_connection(vmc, device) => {
            r.map_err(|e| SpiceError::Lost(format!("usbredir: {e}")))?;
        }
        r = main_loop(main) => r?,
    }
    // The server closed the session without saying why: it quit, or another
    // client's session replaced ours. A server that still accepts
    // connections is alive (a bare TCP connection links nothing, so it
    // disturbs no one): then another client has the VM now.
    tokio::time::sleep(PROBE_DELAY).await;
    match dial(config, &addr).await {
        Ok(_) => Err(SpiceError::Replaced),
        Err(e) => Err(SpiceError::Lost(format!("the server closed the session and is gone ({e})"))),
    }
}

/// Connects and links one channel: on the plain port if there is one (then
/// on the TLS port if the server wants TLS for this channel), else on the TLS port.
async fn link(config: &SpiceConfig, req: &LinkRequest, what: &str) -> Result<Linked<Stream>, SpiceError> {
    let server = &config.server;
    if let Some(port) = server.port {
        match link_on(config, port, false, req, what).await {
            Err(SpiceError::NeedTls(_)) => {}
            other => return other,
        }
    }
    match (server.tls_port, &config.tls) {
        (Some(tls_port), Some(_)) => link_on(config, tls_port, true, req, what).await,
        (Some(tls_port), None) => Err(SpiceError::NeedCa(tls_port)),
        (None, _) => Err(SpiceError::NeedTls(server.port.unwrap_or_default())),
    }
}

/// Links one channel on `port`, over TLS if `tls`.
async fn link_on(
    config: &SpiceConfig,
    port: u16,
    tls: bool,
    req: &LinkRequest,
    what: &str,
) -> Result<Linked<Stream>, SpiceError> {
    let password = &config.password;
    let host = &config.server.host;
    let addr = format!("{}:{port}", bracket(host));
    let tcp = dial(config, &addr).await?;
    let mut stream = match (&config.tls, tls) {
        (Some(setup), true) => tokio::time::timeout(STEP_TIMEOUT, setup.connect(host, tcp))
            .await
            .map_err(|_| SpiceError::NoLinkReply(addr.clone()))?
            .map_err(|source| SpiceError::Tls { addr: addr.clone(), source })?,
        _ => Stream::Plain(tcp),
    };
    let mut link =
        Link::new(req, password.bytes()).map_err(|source| SpiceError::Link { what: what.into(), source })?;
    let classify = |source: LinkError| match source {
        LinkError::Refused(LinkErrorCode::PERMISSION_DENIED) if password.bytes().is_empty() => {
            SpiceError::PasswordNeeded
        }
        LinkError::Refused(LinkErrorCode::PERMISSION_DENIED) => SpiceError::WrongPassword,
        LinkError::Refused(LinkErrorCode::NEED_SECURED) => SpiceError::NeedTls(port),
        source => SpiceError::Link { what: what.into(), source },
    };
    let mut buf = vec![0u8; 8192];
    loop {
        let out = link.take_output();
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(lost)?;
        }
        let n = match tokio::time::timeout(STEP_TIMEOUT, stream.read(&mut buf)).await {
            // A TLS port resets a plain link (seen with QEMU 7.2's spice-server).
            Ok(Ok(0)) if !tls && link.nothing_received() => return Err(SpiceError::NotSpice(addr.clone())),
            Ok(Err(e)) if !tls && link.nothing_received() && e.kind() == io::ErrorKind::ConnectionReset => {
                return Err(SpiceError::NotSpice(addr.clone()));
            }
            Ok(Ok(0)) => return Err(classify(link.closed())),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(lost(e)),
            Err(_) => {
                return Err(SpiceError::Lost(format!("no link reply on the {what} channel within 10 s")));
            }
        };
        let input = buf.get(..n).unwrap_or_default();
        let used = link.receive(input).map_err(classify)?;
        if let Some(l) = link.linked() {
            debug!(what, header = ?l.header, tls, "SPICE: linked");
            return Ok(Linked {
                addr: addr.clone(),
                stream,
                channel: Channel::new(l.header),
                first: input.get(used..).unwrap_or_default().to_vec(),
                lz4: l.has_channel_cap(SPICEVMC_CAP_LZ4),
            });
        }
    }
}

/// Reads the main channel until a message of `wanted` type, parsed by `parse`.
async fn main_until<T>(
    main: &mut Linked<Stream>,
    wanted: u16,
    parse: fn(&[u8]) -> Result<T, codec::DecodeError>,
) -> Result<T, SpiceError> {
    let mut found: Option<Result<T, codec::DecodeError>> = None;
    let mut input = std::mem::take(&mut main.first);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut out = Vec::new();
        main.channel
            .receive(&input, &mut out, |m| -> Result<(), ChannelError> {
                if m.msg_type == wanted && found.is_none() {
                    found = Some(parse(m.body));
                }
                Ok(())
            })
            .map_err(|e| SpiceError::Main(e.to_string()))?;
        if !out.is_empty() {
            main.stream.write_all(&out).await.map_err(lost)?;
        }
        if let Some(r) = found {
            return r.map_err(|e| SpiceError::Main(e.to_string()));
        }
        let n = match tokio::time::timeout(STEP_TIMEOUT, main.stream.read(&mut buf)).await {
            Ok(Ok(0)) => return Err(SpiceError::Lost("the server closed the main channel".into())),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(lost(e)),
            Err(_) => return Err(SpiceError::Main(format!("no message {wanted} within 10 s"))),
        };
        input = buf.get(..n).unwrap_or_default().to_vec();
    }
}

/// Keeps the main channel alive (PINGs answered) until the server closes it
/// without a DISCONNECTING reason (`Ok`).
async fn main_loop(mut main: Linked<Stream>) -> Result<(), SpiceError> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = main.stream.read(&mut buf).await.map_err(lost)?;
        if n == 0 {
            return match main.channel.disconnect_reason() {
                Some(r) => {
                    Err(SpiceError::Lost(format!("the server closed the session ({})", LinkErrorCode(r))))
                }
                None => Ok(()),
            };
        }
        let mut out = Vec::new();
        main.channel
            .receive(buf.get(..n).unwrap_or_default(), &mut out, |_| Ok::<_, ChannelError>(()))
            .map_err(|e| SpiceError::Main(e.to_string()))?;
        if !out.is_empty() {
            main.stream.write_all(&out).await.map_err(lost)?;
        }
    }
}

/// A TCP connection to `addr`, directly or through the HTTP CONNECT proxy.
async fn dial(config: &SpiceConfig, addr: &str) -> Result<TcpStream, SpiceError> {
    let via = config.proxy.as_deref().unwrap_or(addr);
    let mut tcp = TcpStream::connect(via)
        .await
        .map_err(|source| SpiceError::Connect { addr: via.to_string(), source })?;
    tcp.set_nodelay(true).map_err(lost)?;
    let Some(proxy) = &config.proxy else { return Ok(tcp) };
    let refused = |why: String| SpiceError::Proxy { proxy: proxy.clone(), why };
    tcp.write_all(&crate::proxy::connect_request(addr)).await.map_err(lost)?;
    let mut reply = crate::proxy::ReplyReader::default();
    let mut buf = [0u8; 1024];
    loop {
        let n = match tokio::time::timeout(STEP_TIMEOUT, tcp.read(&mut buf)).await {
            Ok(Ok(0)) => {
                return Err(refused(format!("closed the connection instead of opening a tunnel to {addr}")));
            }
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(lost(e)),
            Err(_) => return Err(refused("no answer to CONNECT within 10 s".into())),
        };
        if reply.receive(buf.get(..n).unwrap_or_default(), addr).map_err(refused)? {
            debug!(%proxy, %addr, "SPICE: HTTP CONNECT tunnel open");
            return Ok(tcp);
        }
    }
}

fn lost(e: io::Error) -> SpiceError {
    SpiceError::Lost(e.to_string())
}

fn bracket(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_string() }
}

/// Runs the usbredir session over an already linked usbredir channel's
/// stream (for embedders that link the channel themselves).
pub async fn run_over_channel<S, D>(
    stream: VmcStream<S>,
    device: &Mutex<D>,
) -> Result<(), vstick_usbredir::ConnectionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    D: UsbDevice + ?Sized,
{
    vstick_usbredir::run_connection(stream, device).await
}
