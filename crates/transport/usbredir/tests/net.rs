//! The TCP edges over real loopback sockets.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{FakeDevice, QEMU_CAPS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::timeout;
use vstick_usbredir::codec;
use vstick_usbredir::proto::{Packet, PacketType, WireFormat, version_field};

const LIMIT: Duration = Duration::from_secs(10);

/// What vstick (0x72) and QEMU (0xff) negotiate.
const NEGOTIATED: WireFormat = WireFormat {
    ids_64bit: true,
    connect_device_version: true,
    ep_info_max_packet_size: true,
    bulk_streams: false,
    bulk_length_32bit: true,
};

/// Reads exactly one frame under `fmt` and returns its type and raw bytes.
async fn read_frame(s: &mut TcpStream, fmt: WireFormat) -> (PacketType, Vec<u8>) {
    let mut buf = vec![0u8; fmt.header_len()];
    timeout(LIMIT, s.read_exact(&mut buf)).await.expect("frame in time").expect("header");
    let total = codec::frame_len(fmt, &buf).unwrap().unwrap();
    buf.resize(total, 0);
    timeout(LIMIT, s.read_exact(&mut buf[fmt.header_len()..])).await.expect("body in time").expect("body");
    let (frame, _) = codec::decode(fmt, &buf).unwrap().unwrap();
    (frame.packet.packet_type(), buf)
}

/// Plays QEMU's opening: expects our hello, sends its own, expects the
/// device description.
async fn handshake(s: &mut TcpStream) {
    let (ty, raw) = read_frame(s, WireFormat::INITIAL).await;
    assert_eq!(ty, PacketType::HELLO);
    assert_eq!(raw.len(), 80);
    let mut hello = Vec::new();
    let p = Packet::Hello { version: version_field("qemu test"), caps: vec![QEMU_CAPS.0] };
    codec::encode(WireFormat::INITIAL, 0, &p, &mut hello).unwrap();
    s.write_all(&hello).await.unwrap();
    for expected in [PacketType::INTERFACE_INFO, PacketType::EP_INFO, PacketType::DEVICE_CONNECT] {
        assert_eq!(read_frame(s, NEGOTIATED).await.0, expected);
    }
}

async fn expect_closed(s: &mut TcpStream) {
    let mut b = [0u8; 1];
    match timeout(LIMIT, s.read(&mut b)).await.expect("closed in time") {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("expected the server to close, read {n} bytes"),
    }
}

#[tokio::test]
async fn serve_one_guest_at_a_time_and_the_next_after_a_disconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dev = Arc::new(Mutex::new(FakeDevice::new()));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(vstick_usbredir::serve(listener, dev.clone(), async {
        let _ = stopped.await;
    }));

    let mut first = TcpStream::connect(addr).await.unwrap();
    handshake(&mut first).await;
    assert_eq!(dev.lock().unwrap().resets, 1, "each connection starts with a reset device");

    // A request/reply round trip on the live connection.
    let mut get = Vec::new();
    codec::encode(NEGOTIATED, 9, &Packet::GetConfiguration, &mut get).unwrap();
    first.write_all(&get).await.unwrap();
    let (ty, raw) = read_frame(&mut first, NEGOTIATED).await;
    assert_eq!(ty, PacketType::CONFIGURATION_STATUS);
    assert_eq!(raw[8], 9, "reply carries the request id");

    // A second guest while the first is attached is turned away.
    let mut second = TcpStream::connect(addr).await.unwrap();
    expect_closed(&mut second).await;

    // After the first leaves, the next one gets a fresh session.
    drop(first);
    let mut third = None;
    for _ in 0..50 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut head = [0u8; 12];
        // The server may still be finishing the first connection: refused ones close.
        if let Ok(Ok(_)) = timeout(Duration::from_secs(2), s.read_exact(&mut head)).await {
            assert_eq!(head[..4], [0, 0, 0, 0], "hello first");
            let mut rest = [0u8; 68];
            s.read_exact(&mut rest).await.unwrap();
            third = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut third = third.expect("the server accepted a new guest");
    let mut hello = Vec::new();
    codec::encode(
        WireFormat::INITIAL,
        0,
        &Packet::Hello { version: version_field("q"), caps: vec![0xff] },
        &mut hello,
    )
    .unwrap();
    third.write_all(&hello).await.unwrap();
    assert_eq!(read_frame(&mut third, NEGOTIATED).await.0, PacketType::INTERFACE_INFO);
    assert_eq!(dev.lock().unwrap().resets, 2);

    stop.send(()).unwrap();
    timeout(LIMIT, server).await.expect("serve stops on shutdown").unwrap().unwrap();
}

#[tokio::test]
async fn malformed_input_closes_only_that_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dev = Arc::new(Mutex::new(FakeDevice::new()));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(vstick_usbredir::serve(listener, dev.clone(), async {
        let _ = stopped.await;
    }));

    let mut bad = TcpStream::connect(addr).await.unwrap();
    handshake(&mut bad).await;
    // Packet type 77 does not exist.
    let mut junk = 77u32.to_le_bytes().to_vec();
    junk.extend_from_slice(&[0; 12]);
    bad.write_all(&junk).await.unwrap();
    expect_closed(&mut bad).await;

    let mut good = TcpStream::connect(addr).await.unwrap();
    handshake(&mut good).await;

    stop.send(()).unwrap();
    timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn connect_dials_a_listening_guest_and_redials_after_a_close() {
    // We play QEMU with `-chardev socket,server=on,wait=off`.
    let qemu = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = qemu.local_addr().unwrap().to_string();
    let dev = Arc::new(Mutex::new(FakeDevice::new()));
    let (stop, stopped) = oneshot::channel::<()>();
    let client = tokio::spawn({
        let dev = dev.clone();
        async move {
            vstick_usbredir::connect(addr.as_str(), dev, async {
                let _ = stopped.await;
            })
            .await
        }
    });

    let (mut s, _) = timeout(LIMIT, qemu.accept()).await.unwrap().unwrap();
    handshake(&mut s).await;
    drop(s);
    // After the close it comes back (about a second later) with a fresh hello.
    let (mut s, _) = timeout(LIMIT, qemu.accept()).await.unwrap().unwrap();
    handshake(&mut s).await;
    assert_eq!(dev.lock().unwrap().resets, 2);

    stop.send(()).unwrap();
    timeout(LIMIT, client).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn connect_keeps_retrying_until_the_guest_listens() {
    // Reserve a port, then close it so the first attempts are refused.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let dev = Arc::new(Mutex::new(FakeDevice::new()));
    let (stop, stopped) = oneshot::channel::<()>();
    let client = tokio::spawn({
        let (dev, addr) = (dev.clone(), addr.clone());
        async move {
            vstick_usbredir::connect(addr.as_str(), dev, async {
                let _ = stopped.await;
            })
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let qemu = TcpListener::bind(&addr).await.unwrap();
    let (mut s, _) = timeout(LIMIT, qemu.accept()).await.unwrap().unwrap();
    handshake(&mut s).await;
    stop.send(()).unwrap();
    timeout(LIMIT, client).await.unwrap().unwrap().unwrap();
}
