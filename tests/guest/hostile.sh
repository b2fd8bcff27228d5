#!/usr/bin/env bash
# Hostile peers: a running vstick takes 1 MiB of random bytes, hostile length fields and
# hundreds of connect/close cycles on usbredir (and the same kind of abuse on a second
# vstick serving USB/IP), stays up with bounded memory, and afterwards a real Linux guest
# still formats, writes and reads the disk over usbredir.
#
#   tests/guest/hostile.sh      (vstick only; SKIP in the qemu reference mode)
#
# The memory bound checked here (VmHWM, the peak resident set of the whole process) is
# the one SECURITY.md documents: HOSTILE_RSS_LIMIT_MB, 300 MiB by default. The worst
# single connection there is a usbredir peer holding the largest packet the codec admits
# (128 MiB) plus a batch of IN replies (8 MiB + one 64 MiB reply, double-buffered).
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-lib.sh"

DISK_BYTES=$((64 * 1024 * 1024))
RANDOM_MB=4
RSS_LIMIT_MB=${HOSTILE_RSS_LIMIT_MB:-300}

if [ "$MODE" != vstick ]; then
    note "hostile: attacks vstick's own network service; no QEMU reference; skipped"
    exit 77
fi

work=$(make_workdir hostile)
USBIP_PID=""
cleanup() {
    stop_vstick >/dev/null 2>&1 || true
    [ -z "$USBIP_PID" ] || kill "$USBIP_PID" 2>/dev/null || true
}
trap cleanup EXIT
truncate -s "$DISK_BYTES" "$work/disk.raw"
truncate -s "$DISK_BYTES" "$work/usbip.raw"

# --- two servers: usbredir (the guest uses it afterwards) and USB/IP -----------------------

device_args=()
start_vstick_redir "$work/vstick.log" --disk "$work/disk.raw" || exit 1
redir_pid=$VSTICK_PID
ip_port=$(free_port)
"$(vstick_bin)" serve --usbip "127.0.0.1:$ip_port" --disk "$work/usbip.raw" >"$work/vstick-usbip.log" 2>&1 &
USBIP_PID=$!
sleep 0.5
kill -0 "$USBIP_PID" 2>/dev/null || { host_fail usbip-start "$(tail -n 5 "$work/vstick-usbip.log")"; exit 1; }

# --- the attacks ----------------------------------------------------------------------------

cat >"$work/hostile.py" <<'PY'
"""Hostile usbredir and USB/IP peers. Prints one "HOSTILE <name> ok|FAIL <detail>" line per
attack. Only loopback; every loop is bounded in count and time."""
import os, socket, struct, sys, time
from peers import *

REDIR, USBIP = int(sys.argv[1]), int(sys.argv[2])
failures = 0

def report(name, good, detail=""):
    global failures
    failures += not good
    print(f"HOSTILE {name} {'ok' if good else 'FAIL'} {detail}".rstrip(), flush=True)

# 1. A peer that says nothing is dropped after the hello timeout (10 s), so it cannot hold
#    the one-guest-at-a-time device.
s = connect(REDIR, 20)
closed, n, secs = until_closed(s, 15)
report("redir-silent-peer-dropped", closed and secs < 13, f"closed={closed} after {secs:.1f}s")
s.close()

# 2. 1 MiB of random bytes, in four connections: from scratch and after a valid hello.
rand = os.urandom(1 << 20)
for i in range(4):
    s = connect(REDIR) if i % 2 == 0 else redir_session(REDIR).sock
    send(s, rand[i << 18:(i + 1) << 18])
    closed, _, secs = until_closed(s, 10)
    report(f"redir-random-{i}", closed, f"closed after {secs:.1f}s")
    s.close()

# 3. Hostile lengths: a 4 GiB hello, a 2 GiB packet, a bulk header claiming 2 GiB, an IN
#    request for 2 GiB, a 1 GiB data length disagreeing with the data.
cases = {
    "redir-hello-0xFFFFFF00": struct.pack("<III", 0, 0xFFFFFF00, 0),
    "redir-packet-0x7FFFFFFF": redir_hello() + struct.pack("<IIQ", REDIR_BULK, 0x7FFFFFFF, 1),
    "redir-bulk-out-0x7FFFFFFF": redir_hello() + redir_pkt(REDIR_BULK, struct.pack("<BBHIH", 2, 0, 0xFFFF, 0, 0x7FFF), b"x" * 31),
    "redir-bulk-in-0x7FFFFFFF": redir_hello() + redir_bulk(0x81, 0x7FFFFFFF),
    "redir-control-len-lie": redir_hello() + redir_pkt(REDIR_CONTROL, struct.pack("<BBBBHHH", 0, 9, 0, 0, 1, 0, 0xFFFF), b"x" * 8),
}
for name, data in cases.items():
    s = connect(REDIR)
    send(s, data)
    closed, _, secs = until_closed(s, 10)
    report(name, closed, f"refused, closed after {secs:.1f}s")
    s.close()

# 4. Amplification: twelve IN requests of 64 MiB and one INQUIRY CBW announcing 4 GiB - 1
#    of data-in: 768 MiB of replies for 600 bytes. The server answers in bounded batches
#    (it used to queue them all at once); we read 256 MiB of it and hang up.
s = redir_session(REDIR).sock
req = b"".join(redir_bulk(0x81, 64 << 20, pid=100 + i) for i in range(12))
send(s, req + redir_bulk(0x02, 31, cbw(1, 0xFFFFFFFF, True, [0x12, 0, 0, 0, 36, 0]), pid=2))
n, secs = read_some(s, 256 << 20)
report("redir-amplification", n >= (128 << 20), f"read {n >> 20} MiB in {secs:.1f}s, then hung up")
s.close()

# 5. The largest bulk packet the codec admits (128 MiB of data, the C parser's
#    MAX_BULK_TRANSFER_SIZE; more is malformed and closes the connection, as in 3.), sent
#    whole: buffered once, answered 'inval' (over the 64 MiB bulk limit) on its id, memory
#    given back.
peer = redir_session(REDIR)
s = peer.sock
big = 128 << 20
send(s, redir_pkt(REDIR_BULK, bulk_header(2, big), pid=77, length=10 + big))
block = bytes(1 << 20)
sent = 0
while sent < big:
    if not send(s, block[:min(len(block), big - sent)]):
        break
    sent += min(len(block), big - sent)
replies = peer.bulk_replies(30, want=1) if sent == big else {}
reply = replies.get(77)
report("redir-max-packet", sent == big and reply is not None and reply[1] == INVAL and reply[2] == 0,
       f"sent {sent >> 20} MiB, reply to id 77: " +
       (f"endpoint {reply[0]:#x} status {STATUS_NAMES.get(reply[1], reply[1])} length {reply[2]}" if reply else
        f"none (other bulk replies: {sorted(replies)[:5]})"))
s.close()

# 6. Too many held IN requests: the session holds 4096 per endpoint (no data is waiting,
#    so none is answered) and answers every further one 'inval' at once; it keeps the peer.
peer = redir_session(REDIR)
s = peer.sock
send(s, b"".join(redir_bulk(0x81, 13, pid=1000 + i) for i in range(5000)))
replies = peer.bulk_replies(15, want=5000 - 4096, idle=2.0)
refused = sorted(pid for pid, (_, status, _) in replies.items() if status == INVAL)
expected = list(range(1000 + 4096, 1000 + 5000))
closed, _, _ = until_closed(s, 1)
report("redir-in-queue-flood", refused == expected and len(replies) == len(expected) and not closed,
       f"{len(replies)} replies, {len(refused)} inval (ids {refused[0] if refused else '-'}.."
       f"{refused[-1] if refused else '-'}; expected {len(expected)}: {expected[0]}..{expected[-1]}), "
       f"{'closed' if closed else 'still open'}")
s.close()

# 7. Hundreds of connect/close cycles, some vanishing mid-transfer (a WRITE(10) of 1 MiB
#    with half of its data sent), which must leave the device reusable.
t0 = time.monotonic()
for i in range(300):
    try:
        s = connect(REDIR, 2)
        if i % 3 == 1:
            send(s, redir_hello())
        elif i % 3 == 2:
            send(s, redir_hello())
            write = [0x2A, 0, 0, 0, 0, 0, 0, 0x08, 0, 0]  # WRITE(10) LBA 0, 2048 blocks
            send(s, redir_bulk(0x02, 31, cbw(7, 1 << 20, False, write), pid=5) + redir_bulk(0x02, 1 << 19, bytes(1 << 19), pid=6))
        s.close()
    except OSError:
        pass
report("redir-300-connect-close", time.monotonic() - t0 < 120, f"{time.monotonic() - t0:.1f}s")

# --- USB/IP (big-endian) ---------------------------------------------------------------------

for i in range(4):
    s = connect(USBIP)
    send(s, rand[i << 18:(i + 1) << 18])
    closed, _, secs = until_closed(s, 10)
    report(f"usbip-random-{i}", closed, f"closed after {secs:.1f}s")
    s.close()

s, status = usbip_imported(USBIP)
send(s, usbip_submit(1, 0, 2, 0xFFFFFFFF))
closed, _, _ = until_closed(s, 10)
report("usbip-transfer-length-0xFFFFFFFF", status == 0 and closed, f"import status {status}, then closed={closed}")
s.close()

s, status = usbip_imported(USBIP)
urbs = b"".join(usbip_submit(100 + i, 1, 1, 16 << 20) for i in range(48))
send(s, urbs + usbip_submit(2, 0, 2, 31, cbw(1, 0xFFFFFFFF, True, [0x12, 0, 0, 0, 36, 0])))
n, _ = read_some(s, 256 << 20)
report("usbip-amplification", n >= (128 << 20), f"read {n >> 20} MiB, then hung up")
s.close()

# 200 cycles: every connection must be accepted; every other one imports (the server must
# answer OP_REP_IMPORT: the device, or DEV_BUSY while it still releases the last
# importer), then vanishes mid-transfer with a WRITE(10) of 1 MiB announced and no data.
DEV_BUSY = 2  # OpStatus DEV_BUSY
t0 = time.monotonic()
refused, answers, bad = 0, {}, []
for i in range(200):
    try:
        s = connect(USBIP, 2)
    except OSError:
        refused += 1
        continue
    try:
        if i % 2:
            send(s, usbip_import())
            reply = parse_op_reply(recv_exactly(s, 8, 5))
            if reply and reply[:2] == (USBIP_VERSION, OP_REP_IMPORT) and reply[2] in (0, DEV_BUSY):
                answers[reply[2]] = answers.get(reply[2], 0) + 1
            else:
                bad.append(reply)
            send(s, usbip_submit(1, 0, 2, 31, cbw(9, 1 << 20, False, [0x2A, 0, 0, 0, 0, 0, 0, 8, 0, 0])))
    finally:
        s.close()
secs = time.monotonic() - t0
report("usbip-200-connect-close", refused == 0 and not bad and answers.get(0, 0) > 0 and secs < 120,
       f"{secs:.1f}s, {refused} refused, import replies: {answers.get(0, 0)} ok, "
       f"{answers.get(DEV_BUSY, 0)} busy, {len(bad)} bad {bad[:3]}")

# The USB/IP device is still importable and answers INQUIRY (first a TEST UNIT READY to
# take the power-on unit attention).
time.sleep(0.5)
s, status = usbip_imported(USBIP)
ok = status == 0
for seq, cdb, length in ((1, [0] * 6, 0), (4, [0x12, 0, 0, 0, 36, 0], 36)):
    msg = usbip_submit(seq, 0, 2, 31, cbw(seq, length, True, cdb))
    if length:
        msg += usbip_submit(seq + 1, 1, 1, length)
    msg += usbip_submit(seq + 2, 1, 1, 13)
    send(s, msg)
s.settimeout(5)
got = b""
try:
    while b"vstick" not in got and len(got) < 4096:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
except socket.timeout:
    pass
report("usbip-device-reusable", ok and b"vstick" in got, f"import status {status}, INQUIRY {'answered' if b'vstick' in got else 'missing'}")
s.close()
sys.exit(1 if failures else 0)
PY
note "hostile traffic: usbredir on $port, USB/IP on $ip_port"
attack_rc=0
PYTHONPATH="$HOST_LIB_DIR" timeout 400 python3 "$work/hostile.py" "$port" "$ip_port" >"$work/hostile.log" 2>&1 || attack_rc=$?
sed -n 's/^HOSTILE /  VSTICK-CHECK host-/p' "$work/hostile.log"
[ "$attack_rc" -eq 0 ] || { host_fail hostile-client "rc=$attack_rc"; tail -n 5 "$work/hostile.log"; }

# --- the servers survived with bounded memory -------------------------------------------

check_server() { # name pid log
    if ! kill -0 "$2" 2>/dev/null; then
        host_fail "$1-alive" "exited; last log lines: $(tail -n 3 "$3" | tr '\n' ' ')"
        return
    fi
    host_ok "$1-alive"
    local rss hwm
    rss=$(awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$2/status")
    hwm=$(awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$2/status")
    value_line="VmRSS ${rss} MiB, VmHWM ${hwm} MiB (limit ${RSS_LIMIT_MB} MiB)"
    if [ "$hwm" -le "$RSS_LIMIT_MB" ]; then host_ok "$1-memory" "$value_line"; else host_fail "$1-memory" "$value_line"; fi
    if grep -q panicked "$3"; then host_fail "$1-no-panic" "$(grep -m1 panicked "$3")"; fi
}
check_server usbredir "$redir_pid" "$work/vstick.log"
check_server usbip "$USBIP_PID" "$work/vstick-usbip.log"

# The USB/IP server also ends cleanly on SIGTERM.
kill -TERM "$USBIP_PID"
rc=0
wait "$USBIP_PID" || rc=$?
USBIP_PID=""
host_expect_eq usbip-sigterm-exit "$rc" 0

# --- a real guest still uses the usbredir device ------------------------------------------

guest_rc=0
"$GUEST_TESTS/run-guest" --log "$work/console.log" \
    --env "DISK_BYTES=$DISK_BYTES" --env "RANDOM_MB=$RANDOM_MB" \
    "$GUEST_TESTS/in-guest/disk-rw.sh" -- "${device_args[@]}" || guest_rc=$?

check_server usbredir-after-guest "$redir_pid" "$work/vstick.log"
stop_vstick_after_guest "$work" "$guest_rc"

host_check_disk_file "$work"

host_finish hostile "$guest_rc"
