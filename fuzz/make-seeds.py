#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/seeds/<target>/).

Seeds are short, valid conversations, so the fuzzer starts from inputs that
get past the first checks (hello first, import first, a CBW signature, a
request that parses) and mutates from there. Re-run after protocol changes:
    python3 fuzz/make-seeds.py
The iso_ls seeds need xorriso (tests/guest's install-deps installs it).
"""
import json
import os
import shutil
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- SCSI CDBs and BOT wrappers ---------------------------------------------------------

def cbw(tag, length, data_in, lun, cdb):
    cdb = bytes(cdb)
    return struct.pack("<IIIBBB", 0x43425355, tag, length, 0x80 if data_in else 0, lun, len(cdb)) + cdb.ljust(16, b"\0")


INQUIRY = [0x12, 0, 0, 0, 36, 0]
TUR = [0] * 6
REQUEST_SENSE = [0x03, 0, 0, 0, 18, 0]
READ_CAPACITY = [0x25] + [0] * 9
def rw10(op, lba, blocks):
    return [op, 0] + list(struct.pack(">I", lba)) + [0] + list(struct.pack(">H", blocks)) + [0]
SYNC_CACHE = [0x35] + [0] * 9
READ_TOC = [0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0]
GET_CONFIGURATION = [0x46, 0, 0, 0, 0, 0, 0, 0, 32, 0]
MODE_SENSE6 = [0x1A, 0, 0x3F, 0, 192, 0]
START_STOP_EJECT = [0x1B, 0, 0, 0, 0x02, 0]


# --- usbredir -------------------------------------------------------------------------------

CAPS = 0x72  # connect_device_version, ep_info_max_packet_size, 64bits_ids, 32bits_bulk_length


def redir_hello(caps=CAPS):
    body = b"qemu usb-redir guest 7.2.0".ljust(64, b"\0") + struct.pack("<I", caps)
    return struct.pack("<III", 0, len(body), 0) + body


class Redir:
    """Packets after the hello exchange: 16-byte headers (64-bit ids)."""

    def __init__(self):
        self.id = 0

    def pkt(self, ty, th, data=b""):
        self.id += 1
        return struct.pack("<IIQ", ty, len(th) + len(data), self.id) + th + data

    def control(self, rt, req, value, index, length, data=b""):
        ep = rt & 0x80
        return self.pkt(100, struct.pack("<BBBBHHH", ep, req, rt, 0, value, index, length), data)

    def bulk(self, ep, length, data=b""):
        return self.pkt(101, struct.pack("<BBHIH", ep, 0, length & 0xFFFF, 0, length >> 16), data)

    def command(self, lun, cdb, data_in=0, data_out=b""):
        out = self.bulk(0x02, 31, cbw(self.id + 1, data_in or len(data_out), bool(data_in), lun, cdb))
        if data_out:
            out += self.bulk(0x02, len(data_out), data_out)
        if data_in:
            out += self.bulk(0x81, data_in)
        return out + self.bulk(0x81, 13)


def usbredir_seeds():
    r = Redir()
    write("usbredir", "hello", b"\0" + redir_hello())
    write("usbredir", "enumerate", b"\0" + redir_hello()
          + r.pkt(7, b"") + r.control(0x80, 6, 0x0100, 0, 18) + r.control(0x80, 6, 0x0200, 0, 255)
          + r.control(0xA1, 0xFE, 0, 0, 1) + r.pkt(6, b"\x01"))
    r = Redir()
    write("usbredir", "inquiry-split", b"\x02\x03\x00" + redir_hello() + r.command(0, INQUIRY, 36)
          + r.command(1, TUR) + r.command(0, REQUEST_SENSE, 18))
    r = Redir()
    sector = bytes(range(256)) * 2
    write("usbredir", "write-read-sync", b"\0" + redir_hello() + r.command(0, TUR)
          + r.command(0, rw10(0x2A, 8, 1), data_out=sector) + r.command(0, rw10(0x28, 8, 1), 512)
          + r.command(0, SYNC_CACHE) + r.command(0, READ_CAPACITY, 8))
    r = Redir()
    write("usbredir", "disk-full", b"\x01\x05" + redir_hello() + r.command(0, TUR)
          + r.command(0, rw10(0x2A, 400, 2), data_out=bytes(1024)) + r.command(0, REQUEST_SENSE, 18))
    r = Redir()
    # 32 KiB of data split over 1786-byte reads: the session stashes the frame and lends
    # it to the device (write-behind, session::LEND_FROM), then the read checks it.
    block = bytes(range(256)) * 128
    write("usbredir", "write-behind", b"\x01\xff" + redir_hello() + r.pkt(6, b"\x01")
          + r.command(0, rw10(0x2A, 16, 64), data_out=block) + r.command(0, rw10(0x28, 16, 64), 32768))
    r = Redir()
    write("usbredir", "cancel-reset", b"\0" + redir_hello() + r.bulk(0x81, 13)
          + r.pkt(21, b"") + r.pkt(3, b"") + r.command(1, READ_TOC, 12) + r.command(1, START_STOP_EJECT)
          + r.command(3, GET_CONFIGURATION, 32) + r.command(2, MODE_SENSE6, 192))


# --- USB/IP ---------------------------------------------------------------------------------

DEVID = (1 << 16) | 2


def op(code, body=b""):
    return struct.pack(">HHI", 0x0111, code, 0) + body


def submit(seq, direction, ep, length, setup=b"\0" * 8, data=b""):
    return struct.pack(">IIIIIIIiii", 1, seq, DEVID, direction, ep, 0, length, 0, 0, 0) + setup.ljust(8, b"\0") + data


def unlink(seq, victim):
    return struct.pack(">IIIIII", 2, seq, DEVID, 0, 0, victim) + b"\0" * 24


class Ip:
    def __init__(self):
        self.seq = 0

    def next(self):
        self.seq += 1
        return self.seq

    def command(self, lun, cdb, data_in=0, data_out=b""):
        c = cbw(self.seq + 1, data_in or len(data_out), bool(data_in), lun, cdb)
        out = submit(self.next(), 0, 2, 31, data=c)
        if data_out:
            out += submit(self.next(), 0, 2, len(data_out), data=data_out)
        if data_in:
            out += submit(self.next(), 1, 1, data_in)
        return out + submit(self.next(), 1, 1, 13)


def usbip_seeds():
    write("usbip", "devlist", b"\0" + op(0x8005))
    busid = b"1-1".ljust(32, b"\0")
    u = Ip()
    get_desc = struct.pack("<BBHHH", 0x80, 6, 0x0100, 0, 18)
    write("usbip", "import-enumerate", b"\0" + op(0x8003, busid)
          + submit(u.next(), 1, 0, 18, get_desc)
          + submit(u.next(), 1, 0, 1, struct.pack("<BBHHH", 0xA1, 0xFE, 0, 0, 1))
          + u.command(0, INQUIRY, 36))
    u = Ip()
    write("usbip", "write-read-split", b"\x02\x05\x00" + op(0x8003, busid) + u.command(0, TUR)
          + u.command(0, rw10(0x2A, 1, 2), data_out=bytes(range(256)) * 4)
          + u.command(0, rw10(0x28, 1, 2), 1024) + u.command(0, SYNC_CACHE))
    u = Ip()
    parked = submit(u.next(), 1, 1, 13)
    write("usbip", "unlink", b"\0" + op(0x8003, busid) + parked + unlink(u.next(), 1)
          + u.command(1, READ_TOC, 12))
    write("usbip", "import-busy", b"\x08" + op(0x8003, busid) + submit(1, 1, 0, 18, get_desc))


# --- control socket -------------------------------------------------------------------------

def control_seeds():
    lines = [
        {"cmd": "status"},
        {"cmd": "eject", "lun": 1},
        {"cmd": "eject", "lun": 1, "force": True},
        {"cmd": "insert", "lun": 1, "path": "/x/cd.iso"},
        {"cmd": "insert", "lun": 0, "path": "/x/disk.raw", "force": True},
        {"cmd": "insert", "lun": 0, "path": "/x/cd.iso"},
        {"cmd": "insert", "lun": 3, "path": "/x/hybrid.iso"},
        {"cmd": "insert", "lun": 2, "path": "/x/dir"},
        {"cmd": "insert", "lun": 9, "path": "/x/empty"},
        {"cmd": "status"},
    ]
    write("control", "session", "\n".join(json.dumps(l) for l in lines).encode() + b"\n")
    write("control", "status", b'{"cmd":"status"}\n')
    write("control", "bad", b'{"cmd":"eject","lun":300}\n{"cmd":"format"}\n{"cmd":"status","x":1}\n')


# --- SPICE (the server's side of a client's connection) ------------------------------------

# The test-only RSA-1024 public key of crates/transport/spice/src/link_tests.rs (DER SPKI).
SPICE_KEY = bytes.fromhex(
    "30819f300d06092a864886f70d010101050003818d0030818902818100ca308baee84f76174a87a95cf5ee71c87b2e8c8e431942b1fd8a48be3b493bbff9cf545d26e520c3dbb309c2a13d3e2074bab304"
    "5f49b6c7965bb5dc2f2dfeae4d004a23df8210dd73fcc76132d766696f5a3909d730f5a429954b7759157284c9c308b3dc794c5d76e472791509ad65483d4cef074a3800e851de1656536f450203010001")


def spice_link_reply(error=0, common=0b1011, channel=1):
    """REDQ 2.2 header + SpiceLinkReply: error, key, one common and one channel cap word."""
    body = (struct.pack("<I", error) + SPICE_KEY + struct.pack("<III", 1, 1, 178)
            + struct.pack("<II", common, channel))
    return b"REDQ" + struct.pack("<III", 2, 2, len(body)) + body


def spice_msg(ty, body=b"", full=False, serial=1):
    if full:
        return struct.pack("<QHII", serial, ty, len(body), 0) + body
    return struct.pack("<HI", ty, len(body)) + body


def lz4_length(rest):
    """LZ4's length continuation bytes for what exceeds the token's 15."""
    out = bytearray()
    while rest >= 255:
        out.append(255)
        rest -= 255
    out.append(rest)
    return bytes(out)


def lz4_literals(data):
    """An LZ4 block of literals only (valid: the last sequence has no match)."""
    n = len(data)
    return bytes([min(n, 15) << 4]) + (lz4_length(n - 15) if n >= 15 else b"") + data


def lz4_zeros(n):
    """An LZ4 block of n >= 13 zero bytes: one literal, a match at offset 1, five literals."""
    ml = n - 1 - 5
    seq = bytes([(1 << 4) | min(ml - 4, 15), 0]) + struct.pack("<H", 1)
    if ml - 4 >= 15:
        seq += lz4_length(ml - 4 - 15)
    return seq + bytes([0x50]) + b"\0" * 5


def spice_lz4(block, size, full=False, serial=1):
    return spice_msg(102, struct.pack("<BI", 1, size) + block, full, serial)


def spice_seeds():
    # Byte 0: bits 0-2 chunk-pattern length, bits 3-4 mode (see fuzz_targets/spice.rs).
    ping = struct.pack("<IQ", 7, 123456789)
    set_ack = struct.pack("<II", 1, 2)
    notify = struct.pack("<QIII", 0, 0, 0, 0) + struct.pack("<I", 6) + b"hello\0"
    main_init = struct.pack("<I", 0x1234) + b"\0" * 28
    channels = struct.pack("<I", 3) + bytes([1, 0, 9, 0, 9, 1])
    disconnecting = struct.pack("<QI", 0, 9)
    main = (spice_msg(3, set_ack) + spice_msg(4, ping) + spice_msg(103, main_init) + spice_msg(7, notify)
            + spice_msg(104, channels) + spice_msg(6, disconnecting))
    linked = spice_link_reply() + struct.pack("<I", 0)
    # Mode 0: the link reply, the link result, the main channel.
    write("spice", "link-main", b"\x00" + linked + main)
    write("spice", "link-main-split", b"\x02\x00\x03" + linked + main)
    write("spice", "link-refused", b"\x00" + spice_link_reply(error=7))
    write("spice", "link-denied", b"\x00" + spice_link_reply() + struct.pack("<I", 7))
    full = b"".join(spice_msg(t, b, full=True, serial=i + 1)
                    for i, (t, b) in enumerate([(4, ping), (103, main_init), (104, channels)]))
    write("spice", "link-full-headers", b"\x00" + spice_link_reply(common=0b0011) + struct.pack("<I", 0) + full)
    # Mode 1: a usbredir channel, mini headers (a usbredir hello inside DATA).
    hello = redir_hello()
    text = bytes(i % 7 for i in range(5000))
    write("spice", "usbredir-data",
          b"\x08" + spice_msg(101, hello) + spice_msg(4, ping) + spice_msg(101, b"x" * 3000))
    write("spice", "usbredir-lz4",
          b"\x09\x05" + spice_msg(101, hello) + spice_lz4(lz4_literals(text), len(text))
          + spice_lz4(lz4_zeros(70000), 70000) + spice_msg(3, set_ack) + spice_msg(101, b"tail"))
    # A dozen 1 MiB LZ4 messages: one read decodes past vmc::DATA_BATCH.
    write("spice", "usbredir-lz4-bombs", b"\x08" + spice_lz4(lz4_zeros(1 << 20), 1 << 20) * 12)
    # Mode 3: full headers.
    write("spice", "usbredir-full-headers",
          b"\x18" + spice_msg(101, hello, full=True) + spice_lz4(lz4_literals(text), len(text), True, 2))
    # Mode 2: the HTTP CONNECT reply.
    write("spice", "proxy-open",
          b"\x10" + b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n")
    write("spice", "proxy-refused", b"\x11\x01" + b"HTTP/1.1 403 Access violation\r\nContent-Length: 0\r\n\r\n")


# --- ISO images -----------------------------------------------------------------------------

def iso_seeds():
    if not shutil.which("xorriso"):
        print("xorriso missing: iso_ls seeds not regenerated")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "tree")
        os.makedirs(os.path.join(tree, "dir", "sub"))
        with open(os.path.join(tree, "README.TXT"), "w") as f:
            f.write("hello\n")
        with open(os.path.join(tree, "dir", "sub", "a long name.txt"), "w") as f:
            f.write("x" * 100)
        os.symlink("README.TXT", os.path.join(tree, "link"))
        for name, opts in [("plain", []), ("rock-joliet", ["-R", "-J"])]:
            out = os.path.join(tmp, name + ".iso")
            subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", *opts, "-V", "SEED", "-o", out, tree],
                           check=True, stderr=subprocess.DEVNULL)
            data = open(out, "rb").read()
            # Metadata sits in the first few dozen sectors; keep those only (the
            # volume size field still names the full image).
            write("iso_ls", name, data[:48 * 2048].rstrip(b"\0").ljust(40 * 2048, b"\0"))


if __name__ == "__main__":
    usbredir_seeds()
    usbip_seeds()
    control_seeds()
    iso_seeds()
    spice_seeds()
    for t in sorted(os.listdir(SEEDS)):
        files = os.listdir(os.path.join(SEEDS, t))
        size = sum(os.path.getsize(os.path.join(SEEDS, t, f)) for f in files)
        print(f"{t}: {len(files)} seeds, {size} bytes")
