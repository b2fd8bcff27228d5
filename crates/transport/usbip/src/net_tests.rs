//! The tokio server with real sockets on loopback and the fake device.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::codec::*;
use crate::net::serve;
use vstick_test_support::{DEVICE_DESCRIPTOR, FakeDevice};

struct Server {
    addr: std::net::SocketAddr,
    device: Arc<Mutex<FakeDevice>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let device = Arc::new(Mutex::new(FakeDevice::with_loopback()));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, Arc::clone(&device), "1-1".to_string(), async {
        let _ = stopped.await;
    }));
    Server { addr, device, stop: Some(stop), task }
}

impl Server {
    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task).await.unwrap().unwrap().unwrap();
    }
}

async fn read_until<T>(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    decode: impl Fn(&[u8]) -> Result<Decoded<T>, CodecError>,
) -> T {
    loop {
        if let Decoded::Done { message, consumed } = decode(buf).unwrap() {
            buf.drain(..consumed);
            return message;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "server closed before a whole reply");
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn op(addr: std::net::SocketAddr, request: OpRequest) -> (TcpStream, OpReply) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut bytes = Vec::new();
    request.encode(&mut bytes);
    stream.write_all(&bytes).await.unwrap();
    let mut buf = Vec::new();
    let reply = read_until(&mut stream, &mut buf, OpReply::decode).await;
    assert!(buf.is_empty());
    (stream, reply)
}

fn import() -> OpRequest {
    OpRequest::Import { busid: BusId::new("1-1").unwrap() }
}

async fn assert_closed(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "server closes the connection");
}

async fn get_descriptor(stream: &mut TcpStream, seqnum: u32) -> Vec<u8> {
    let cmd = CmdSubmit {
        basic: UrbBasic { seqnum, devid: 0x0001_0002, direction: Direction::IN, ep: 0 },
        transfer_flags: 0,
        transfer_buffer_length: 18,
        start_frame: 0,
        number_of_packets: 0,
        interval: 0,
        setup: [0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00],
    };
    stream.write_all(&cmd.to_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let (ret, data) = read_until(stream, &mut buf, |b| {
        ServerMessage::decode(b, |_| true).map(|d| {
            d.map(|m| match m {
                ServerMessage::Submit { ret, data } => (ret, data.to_vec()),
                other => panic!("{other:?}"),
            })
        })
    })
    .await;
    assert_eq!((ret.basic.seqnum, ret.status), (seqnum, 0));
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_import_is_busy_until_the_first_client_leaves() {
    let server = start().await;
    let (mut first, reply) = op(server.addr, import()).await;
    assert!(matches!(reply, OpReply::Import { status: OpStatus::OK, device: Some(_) }));
    assert_eq!(get_descriptor(&mut first, 1).await, DEVICE_DESCRIPTOR);

    let (mut second, reply) = op(server.addr, import()).await;
    assert_eq!(reply, OpReply::Import { status: OpStatus::DEV_BUSY, device: None });
    assert_closed(&mut second).await;

    // Listing still works while the device is in use.
    let (mut lister, reply) = op(server.addr, OpRequest::Devlist).await;
    let OpReply::Devlist { status: OpStatus::OK, devices } = reply else { panic!("{reply:?}") };
    assert_eq!(devices[0].record.busid.as_bytes(), b"1-1");
    assert_closed(&mut lister).await;

    // The first client is still served.
    assert_eq!(get_descriptor(&mut first, 2).await, DEVICE_DESCRIPTOR);
    drop(first);

    // Once the server has seen the disconnect, the device is free again.
    let mut third = None;
    for _ in 0..100 {
        let (stream, reply) = op(server.addr, import()).await;
        match reply {
            OpReply::Import { status: OpStatus::OK, .. } => {
                third = Some(stream);
                break;
            }
            OpReply::Import { status: OpStatus::DEV_BUSY, .. } => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => panic!("{other:?}"),
        }
    }
    let mut third = third.expect("device released after the first client left");
    assert_eq!(get_descriptor(&mut third, 1).await, DEVICE_DESCRIPTOR);
    assert_eq!(server.device.lock().unwrap().resets, 2, "each import resets the device");
    server.stop().await;
}

#[tokio::test]
async fn bad_clients_are_dropped_and_others_served() {
    let server = start().await;
    // Wrong version.
    let mut bad = TcpStream::connect(server.addr).await.unwrap();
    bad.write_all(&[0x01, 0x06, 0x80, 0x05, 0, 0, 0, 0]).await.unwrap();
    assert_closed(&mut bad).await;
    // Unknown busid.
    let (mut nodev, reply) = op(server.addr, OpRequest::Import { busid: BusId::new("9-9").unwrap() }).await;
    assert_eq!(reply, OpReply::Import { status: OpStatus::NODEV, device: None });
    assert_closed(&mut nodev).await;
    // Imported, then an absurd length: the connection goes, the claim is released.
    let (mut greedy, _) = op(server.addr, import()).await;
    let mut h = [0u8; 48];
    h[3] = 1; // CMD_SUBMIT
    h[0x13] = 2; // ep 2, OUT
    h[0x18..0x1C].copy_from_slice(&u32::MAX.to_be_bytes());
    greedy.write_all(&h).await.unwrap();
    assert_closed(&mut greedy).await;
    let (mut good, reply) = op(server.addr, import()).await;
    assert!(matches!(reply, OpReply::Import { status: OpStatus::OK, .. }));
    assert_eq!(get_descriptor(&mut good, 7).await, DEVICE_DESCRIPTOR);
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_completes_its_request_is_dropped() {
    let server = start().await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // Half an OP_REQ_IMPORT header, then nothing.
    silent.write_all(&[0x01, 0x11, 0x80]).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(crate::net::REQUEST_TIMEOUT * 2, silent.read(&mut byte));
    assert_eq!(read.await.expect("closed by the server's timeout").unwrap_or(0), 0, "closed");
    assert!(started.elapsed() >= crate::net::REQUEST_TIMEOUT, "closed after {:?}", started.elapsed());
    // An imported client may stay idle beyond the request timeout.
    let (mut idle, reply) = op(server.addr, import()).await;
    assert!(matches!(reply, OpReply::Import { status: OpStatus::OK, .. }));
    tokio::time::sleep(crate::net::REQUEST_TIMEOUT * 3).await;
    assert_eq!(get_descriptor(&mut idle, 3).await, DEVICE_DESCRIPTOR);
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_on_arrival() {
    let server = start().await;
    let mut held = Vec::new();
    for _ in 0..crate::net::MAX_CONNECTIONS {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // Let the server accept them all before the next one knocks.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    assert_closed(&mut extra).await;
    // A slot freed is a slot served.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, reply) = op(server.addr, OpRequest::Devlist).await;
    assert!(matches!(reply, OpReply::Devlist { status: OpStatus::OK, .. }));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_drops_connections() {
    let server = start().await;
    let (mut client, _) = op(server.addr, import()).await;
    server.stop().await;
    assert_closed(&mut client).await;
}

#[tokio::test]
async fn invalid_busid_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let device = Arc::new(Mutex::new(FakeDevice::with_loopback()));
    let err = serve(listener, device, "x".repeat(40), std::future::pending()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// `vstick serve` spawns or awaits this future with the real device: it must be `Send`.
#[test]
fn serve_future_is_send_for_the_real_device() {
    fn real(
        listener: TcpListener,
        device: Arc<Mutex<vstick_usb::MassStorageDevice>>,
    ) -> impl std::future::Future<Output = std::io::Result<()>> + Send {
        serve(listener, device, "1-1".to_owned(), std::future::pending::<()>())
    }
    let _ = real;
}

#[test]
fn export_info_validates_the_busid() {
    use crate::export::{ExportInfo, InvalidBusId};
    let e = ExportInfo::new("3-2").unwrap();
    assert_eq!((e.busnum, e.devnum, e.devid()), (3, 2, 0x0003_0002));
    assert_eq!(e.path.as_bytes(), b"/sys/devices/vstick/usb3/3-2");
    assert_eq!(ExportInfo::new("vstick").unwrap().busnum, 1);
    for bad in ["", "a\0b", &"x".repeat(32)] {
        assert_eq!(ExportInfo::new(bad), Err(InvalidBusId(bad.to_owned())));
    }
}
