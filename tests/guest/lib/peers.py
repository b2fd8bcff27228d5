"""Hand-written usbredir and USB/IP peers for the guest tests' host side (hostile.sh,
tls.sh). Loopback only; every read is bounded in time.

usbredir is little-endian: a 12-byte header (u32 type, u32 length, u32 id) until both
hellos are exchanged, then 16 bytes (64-bit ids, as our hello announces). USB/IP is
big-endian (see /work/shared/reference/usbip.md).
"""
import socket
import struct
import time

HOST = "127.0.0.1"

# usbredir packet types and statuses (usbredirproto.h).
REDIR_HELLO, REDIR_CONTROL, REDIR_BULK = 0, 100, 101
STATUS_NAMES = {0: "success", 1: "cancelled", 2: "inval", 3: "ioerror", 4: "stall", 5: "timeout", 6: "babble"}
INVAL = 2
# caps: connect_device_version, ep_info_max_packet_size, 64bits_ids, 32bits_bulk_length.
HELLO_CAPS = 0x72
HELLO_BYTES = 12 + 64 + 4  # our hello, with one caps word


def connect(port, timeout=5.0, host=HOST):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def send(s, data):
    """Sends what the server takes; a server that hangs up early is fine."""
    try:
        s.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        return False


def until_closed(s, limit):
    """Reads until the server closes; returns (closed, bytes read, seconds)."""
    t0, n = time.monotonic(), 0
    s.settimeout(0.5)
    while time.monotonic() - t0 < limit:
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            continue
        except (ConnectionResetError, OSError):
            return True, n, time.monotonic() - t0
        if not chunk:
            return True, n, time.monotonic() - t0
        n += len(chunk)
    return False, n, time.monotonic() - t0


def read_some(s, limit):
    """Reads up to `limit` bytes (60 s at most); returns (bytes, seconds)."""
    t0, n = time.monotonic(), 0
    s.settimeout(30)
    try:
        while n < limit and time.monotonic() - t0 < 60:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            n += len(chunk)
    except (socket.timeout, ConnectionResetError):
        pass
    return n, time.monotonic() - t0


def recv_exactly(s, n, timeout):
    """n bytes, or fewer if the peer closes or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    got = b""
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            chunk = s.recv(n - len(got))
        except (socket.timeout, ConnectionResetError, OSError):
            break
        if not chunk:
            break
        got += chunk
    return got


# --- usbredir ---------------------------------------------------------------------------------

def redir_hello(name=b"hostile", caps=HELLO_CAPS):
    body = name.ljust(64, b"\0") + struct.pack("<I", caps)
    return struct.pack("<III", REDIR_HELLO, len(body), 0) + body


def is_redir_hello(data):
    """A usbredir hello with one caps word starts with type 0, length 68."""
    return data[:8] == struct.pack("<II", REDIR_HELLO, 68)


def redir_pkt(ty, th, data=b"", pid=1, length=None):
    if length is None:
        length = len(th) + len(data)
    return struct.pack("<IIQ", ty, length, pid) + th + data


def bulk_header(ep, length, status=0):
    return struct.pack("<BBHIH", ep, status, length & 0xFFFF, 0, length >> 16)


def redir_bulk(ep, length, data=b"", pid=1):
    return redir_pkt(REDIR_BULK, bulk_header(ep, length), data, pid)


def cbw(tag, length, data_in, cdb):
    """A bulk-only transport Command Block Wrapper (31 bytes)."""
    return struct.pack("<IIIBBB", 0x43425355, tag, length, 0x80 if data_in else 0, 0, len(cdb)) + bytes(cdb).ljust(16, b"\0")


class RedirPeer:
    """A usbredir client past the hello exchange, reading the server's packets one by one.
    The server's hello (12-byte header) comes first; every later packet has a 16-byte one."""

    def __init__(self, sock):
        self.sock = sock
        self.hello_seen = False

    def read_packet(self, timeout):
        """(type, id, payload) of the next packet, or None on close or timeout."""
        if not self.hello_seen:
            head = recv_exactly(self.sock, 12, timeout)
            if len(head) < 12:
                return None
            ty, length, pid = struct.unpack("<III", head)
            body = recv_exactly(self.sock, length, timeout)
            self.hello_seen = True
            return (ty, pid, body) if len(body) == length else None
        head = recv_exactly(self.sock, 16, timeout)
        if len(head) < 16:
            return None
        ty, length, pid = struct.unpack("<IIQ", head)
        body = recv_exactly(self.sock, length, timeout)
        return (ty, pid, body) if len(body) == length else None

    def bulk_replies(self, timeout, want=None, idle=1.0):
        """{id: (endpoint, status, length)} of the bulk_packet replies that arrive until
        `want` of them are in, the stream stays quiet for `idle` seconds or `timeout`
        passes; other packets (the device description) are skipped."""
        replies = {}
        deadline = time.monotonic() + timeout
        while want is None or len(replies) < want:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            got = self.read_packet(min(left, idle) if replies or want is None else left)
            if got is None:
                break
            ty, pid, body = got
            if ty == REDIR_BULK and len(body) >= 10:
                ep, status, length, _stream, high = struct.unpack("<BBHIH", body[:10])
                replies[pid] = (ep, status, length | high << 16)
        return replies


def redir_session(port, name=b"hostile", patience=30):
    """A RedirPeer whose hello the server has answered. The server serves one peer at a time
    and refuses (closes) a newcomer while it is still finishing the previous one: retries
    until it takes us."""
    deadline = time.time() + patience
    while True:
        s = connect(port, 30)
        try:
            send(s, redir_hello(name))
            peer = RedirPeer(s)
            got = peer.read_packet(30)
            if got is not None and got[0] == REDIR_HELLO:
                return peer
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.close()
        if time.time() > deadline:
            raise TimeoutError("usbredir server never accepted a session")
        time.sleep(0.2)


# --- USB/IP -------------------------------------------------------------------------------------

USBIP_VERSION = 0x0111
OP_REQ_IMPORT, OP_REP_IMPORT = 0x8003, 0x0003
DEVID = (1 << 16) | 2  # bus 1, device 2: what vstick exports as 1-1


def usbip_op(code, body=b""):
    return struct.pack(">HHI", USBIP_VERSION, code, 0) + body


def usbip_import(busid=b"1-1"):
    return usbip_op(OP_REQ_IMPORT, busid.ljust(32, b"\0"))


def usbip_submit(seq, direction, ep, length, data=b"", setup=b"\0" * 8):
    return struct.pack(">IIIIIIIiii", 1, seq, DEVID, direction, ep, 0, length, 0, 0, 0) + setup + data


def parse_op_reply(head):
    """(version, code, status) of an OP_REP header, or None when fewer than 8 bytes came."""
    return struct.unpack(">HHI", head[:8]) if len(head) >= 8 else None


def usbip_imported(port, timeout=30):
    """(socket, import status or None) after OP_REQ_IMPORT of bus id 1-1."""
    s = connect(port, timeout)
    send(s, usbip_import())
    head = recv_exactly(s, 8 + 312, timeout)
    reply = parse_op_reply(head)
    return s, reply[2] if reply else None
