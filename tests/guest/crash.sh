#!/usr/bin/env bash
# Faults and locking, against vstick serve itself:
#  1. image locks at the command line: a second `vstick serve` on a writable image that
#     another vstick (or a QEMU tool) holds is refused with a message naming the holder,
#     and vstick's lock keeps QEMU out too; read-only users share;
#  2. a full host file system: LUN 1's image lives on a small tmpfs; the guest's write
#     beyond it gets MEDIUM ERROR / WRITE ERROR (03/0C/00) and the device keeps working;
#  3. kill -9 during guest writes: every file the guest synced before the kill is intact
#     after vstick restarts and the guest reconnects (QEMU's reconnect=1), in the guest
#     and in the image on the host; the restarted vstick exits 0 on SIGTERM.
#
#   tests/guest/crash.sh      (vstick only; SKIP in the qemu reference mode)
#
# The small file system of part 2 is a tmpfs: mounted directly when this user may (root),
# otherwise in a mount namespace of an unprivileged user namespace (unshare -rm) that a
# holder process keeps open and vstick is started into (nsenter; root is not needed). CRASH_TMPFS=mount|userns
# picks one way (default: the first that works). When neither works, the other checks
# still run and the test ends in SKIP (exit 77), saying why.
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-lib.sh"

DISK_BYTES=$((64 * 1024 * 1024))
FULL_FS_MB=8
SYNCED_FILES=6

if [ "$MODE" != vstick ]; then
    note "crash: faults of vstick's own server; no QEMU reference; skipped"
    exit 77
fi

work=$(make_workdir crash)
bin=$(vstick_bin) || exit 1
pids=()      # helper processes this script started (by pid)
small_fs=""  # the tmpfs it mounted
mounted=""   # ... directly (umount it at the end)
cleanup() {
    stop_vstick >/dev/null 2>&1 || true
    local p
    for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
    [ -z "$mounted" ] || umount "$mounted" 2>/dev/null || true
}
trap cleanup EXIT
truncate -s "$DISK_BYTES" "$work/disk.raw"

# --- 1. locks at the command line ---------------------------------------------------------

# expect_refused NAME PATTERN COMMAND...: the command must fail within 10 s, its stderr
# matching PATTERN (grep -E).
expect_refused() {
    local name=$1 pattern=$2 rc=0
    shift 2
    timeout 10 "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
        host_fail "$name" "not refused (rc=$rc)"
    elif grep -Eq "$pattern" "$work/$name.err"; then
        host_ok "$name" "rc=$rc: $(head -n 1 "$work/$name.err")"
    else
        host_fail "$name" "rc=$rc, stderr: $(head -n 2 "$work/$name.err" | tr '\n' ' ')"
    fi
}

truncate -s 16M "$work/lock.raw"
"$bin" serve --usbredir "127.0.0.1:$(free_port)" --disk "$work/lock.raw" >"$work/holder.log" 2>&1 &
holder=$!
pids+=("$holder")
sleep 0.5
expect_refused second-vstick-refused "in use by vstick \(pid $holder\)" \
    "$bin" serve --usbredir "127.0.0.1:$(free_port)" --disk "$work/lock.raw"
expect_refused second-vstick-ro-refused "in use by vstick \(pid $holder\)" \
    "$bin" serve --usbredir "127.0.0.1:$(free_port)" --disk-ro "$work/lock.raw"
# QEMU's own tools honour vstick's lock (QEMU's byte-range lock scheme).
expect_refused qemu-refused-by-vstick 'lock' qemu-io -f raw -c 'write 0 512' "$work/lock.raw"
kill -TERM "$holder"
wait "$holder" || true

# A QEMU tool holding the image for writing keeps vstick out, named in the message.
qemu-io -f raw "$work/lock.raw" < <(sleep 20) >"$work/qemu-io.log" 2>&1 &
qemu_io=$!
pids+=("$qemu_io")
for _ in $(seq 50); do
    grep -q "$work/lock.raw" <(ls -l "/proc/$qemu_io/fd" 2>/dev/null) && break
    sleep 0.1
done
expect_refused vstick-refused-by-qemu "in use by qemu-io \(pid $qemu_io\)" \
    "$bin" serve --usbredir "127.0.0.1:$(free_port)" --disk "$work/lock.raw"
kill "$qemu_io" 2>/dev/null || true
wait "$qemu_io" 2>/dev/null || true

# Readers share.
"$bin" serve --usbredir "127.0.0.1:$(free_port)" --disk-ro "$work/lock.raw" >"$work/reader1.log" 2>&1 &
reader=$!
pids+=("$reader")
sleep 0.5
rc=0
timeout 2 "$bin" serve --usbredir "127.0.0.1:$(free_port)" --disk-ro "$work/lock.raw" >"$work/reader2.log" 2>&1 || rc=$?
# 124: still serving when timeout stopped it, i.e. it was allowed in.
host_expect_eq readers-share "$rc" 124
kill -TERM "$reader"
wait "$reader" || true

# --- 2. a small host file system for the full-disk LUN -----------------------------------

full_args=()
guest_full_mb=0
small_fs=$work/small-fs
skip_reason=""
mkdir -p "$small_fs"
: >"$work/mount.err"
# tmpfs_in_userns: the tmpfs in a new user + mount namespace, kept by a holder process;
# vstick (VSTICK_BIN, also after the restart) then runs in it through a wrapper.
tmpfs_in_userns() {
    local holder
    # shellcheck disable=SC2016 # expanded by that sh
    unshare --user --map-root-user --mount sh -c \
        'mount -t tmpfs -o "size=$1M" vstick-full "$2" && echo mounted && exec sleep 3600' \
        sh "$FULL_FS_MB" "$small_fs" >"$work/userns.out" 2>>"$work/mount.err" &
    holder=$!
    pids+=("$holder")
    for _ in $(seq 50); do
        grep -q mounted "$work/userns.out" && break
        kill -0 "$holder" 2>/dev/null || return 1
        sleep 0.1
    done
    grep -q mounted "$work/userns.out" || return 1
    printf '#!/bin/sh\nexec nsenter --target %s --user --mount --preserve-credentials -- %q "$@"\n' "$holder" "$bin" >"$work/vstick-in-ns"
    chmod +x "$work/vstick-in-ns"
    nsenter --target "$holder" --user --mount --preserve-credentials -- truncate -s "$DISK_BYTES" "$small_fs/full.raw" 2>>"$work/mount.err" || return 1
    VSTICK_BIN=$work/vstick-in-ns
}
how=""
case "${CRASH_TMPFS:-auto}" in
auto | mount)
    if mount -t tmpfs -o size=${FULL_FS_MB}M vstick-full "$small_fs" 2>>"$work/mount.err"; then
        mounted=$small_fs
        truncate -s "$DISK_BYTES" "$small_fs/full.raw" # sparse: far more than the tmpfs holds
        how="mounted directly"
    fi
    ;;
esac
if [ -z "$how" ] && [ "${CRASH_TMPFS:-auto}" != mount ]; then
    tmpfs_in_userns && how="in a user + mount namespace (unshare -rm)"
fi
if [ -n "$how" ]; then
    full_args=(--disk "$small_fs/full.raw")
    guest_full_mb=$FULL_FS_MB
    note "full-disk LUN: 64 MiB sparse image on a ${FULL_FS_MB} MiB tmpfs, $how"
else
    skip_reason="cannot mount a tmpfs (${CRASH_TMPFS:-auto}): $(tr '\n' ' ' <"$work/mount.err")"
    note "$skip_reason; the full-disk checks are left out"
    small_fs=""
fi

# --- 3. kill -9 during guest writes -------------------------------------------------------

serve_args=(--disk "$work/disk.raw" "${full_args[@]+"${full_args[@]}"}")
device_args=()
start_vstick_redir "$work/vstick.log" "${serve_args[@]}" || exit 1
serve_args=(--usbredir "127.0.0.1:$port" "${serve_args[@]}")

guest_rc=0
"$GUEST_TESTS/run-guest" --log "$work/console.log" \
    --env "FULL_FS_MB=$guest_full_mb" --env "SYNCED_FILES=$SYNCED_FILES" \
    "$GUEST_TESTS/in-guest/crash.sh" -- "${device_args[@]}" &
guest=$!

# The guest asks for the kill once it has synced its files and is writing more.
killed=0
while kill -0 "$guest" 2>/dev/null; do
    if [ "$killed" = 0 ] && grep -q "^VSTICK-HOST kill" "$work/console.log" 2>/dev/null; then
        kill -KILL "$VSTICK_PID"
        rc=0
        wait "$VSTICK_PID" || rc=$?
        note "vstick killed with SIGKILL (rc=$rc) during guest writes; restarting"
        mv "$work/vstick.log" "$work/vstick-killed.log"
        VSTICK_PID=""
        sleep 1
        start_vstick "$work/vstick.log" "${serve_args[@]}" || break
        killed=1
    fi
    sleep 0.2
done
wait "$guest" || guest_rc=$?
host_expect_eq server-killed-and-restarted "$killed" 1

# SIGTERM: flush and exit 0 (stop_vstick checks the status).
stop_vstick_after_guest "$work" "$guest_rc"
if grep -q panicked "$work/vstick-killed.log" 2>/dev/null; then
    host_fail vstick-no-panic-before-kill "$(grep -m1 panicked "$work/vstick-killed.log")"
fi
if [ -n "$small_fs" ]; then
    if grep -q "write failed" "$work/vstick-killed.log"; then
        host_ok full-disk-logged "$(grep -m1 'write failed' "$work/vstick-killed.log" | sed 's/.*WARN //')"
    else
        host_fail full-disk-logged "no 'write failed' warning in the vstick log"
    fi
fi

# --- the synced files are in the image, byte for byte --------------------------------------

for i in $(seq "$SYNCED_FILES"); do
    want=$(guest_value "$work/console.log" "synced_$i")
    if [ -z "$want" ]; then
        host_fail "synced-$i-in-image" "the guest reported no md5"
    elif mcopy -n -i "$work/disk.raw" "::SYNCED$i.BIN" "$work/SYNCED$i.BIN" 2>"$work/mcopy.log"; then
        host_expect_eq "synced-$i-in-image" "$(md5_of "$work/SYNCED$i.BIN")" "$want"
    else
        host_fail "synced-$i-in-image" "mcopy: $(head -n 2 "$work/mcopy.log" | tr '\n' ' ')"
    fi
done
want=$(guest_value "$work/console.log" after_restart)
if [ -n "$want" ] && mcopy -n -i "$work/disk.raw" ::AFTER.BIN "$work/AFTER.BIN" 2>/dev/null; then
    host_expect_eq written-after-restart-in-image "$(md5_of "$work/AFTER.BIN")" "$want"
else
    host_fail written-after-restart-in-image "missing (guest value '${want}')"
fi

if [ -n "$skip_reason" ] && [ "$guest_rc" -eq 0 ] && [ "$HOST_FAILURES" -eq 0 ]; then
    note "crash: SKIP: every check run passed, but the full-disk part could not: $skip_reason"
    exit 77
fi
host_finish crash "$guest_rc"
