# Helpers for host-side guest-test drivers (bash). Source it:
#   . "$(dirname "$0")/lib/host-lib.sh"
# Defines REPO, GUEST_DIR, MODE and the functions below.

set -euo pipefail

HOST_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST_TESTS=$(cd "$HOST_LIB_DIR/.." && pwd)
REPO=$(cd "$GUEST_TESTS/../.." && pwd)
GUEST_DIR=${VSTICK_GUEST_DIR:-$REPO/target/guest}
# vstick: the device under test is vstick via usbredir (default).
# qemu:   QEMU's own usb-bot + scsi-hd/scsi-cd, the reference that validates the checks.
MODE=${VSTICK_GUEST_DEVICE:-vstick}

# shellcheck source-path=SCRIPTDIR source=qemu-args.sh
. "$HOST_LIB_DIR/qemu-args.sh"

HOST_FAILURES=0
VSTICK_PID=""

host_ok() { echo "  VSTICK-CHECK host-$1 ok${2:+ $2}"; }
host_fail() {
    echo "  VSTICK-CHECK host-$1 FAIL $2"
    HOST_FAILURES=$((HOST_FAILURES + 1))
}
host_expect_eq() { # name actual expected
    if [ "$2" = "$3" ]; then host_ok "$1" "$2"; else host_fail "$1" "got '$2', expected '$3'"; fi
}
note() { echo "[$(date +%T)] $*"; }

# A fresh per-run work directory, <guest dir>/work/NAME.PID, with NAME pointing at the
# newest. Per run, because several people (or scripts/test and a developer) may run the
# same test at once in a shared tree. Directories of earlier runs whose process is gone
# are removed first, so the last run's media and logs stay around for a look.
make_workdir() { # name
    local base=$GUEST_DIR/work old pid
    mkdir -p "$base"
    for old in "$base/$1".*; do
        [ -d "$old" ] || continue
        pid=${old##*.}
        case "$pid" in *[!0-9]*) continue ;; esac
        kill -0 "$pid" 2>/dev/null || rm -rf "$old"
    done
    mkdir -p "$base/$1.$$"
    # (A real directory there is from an older layout of this harness.)
    [ -L "$base/$1" ] || rm -rf "${base:?}/$1"
    ln -sfn "$1.$$" "$base/$1"
    echo "$base/$1.$$"
}

# A TCP port nobody listens on right now (the kernel picks it; tiny race accepted).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The vstick binary: $VSTICK_BIN, or a debug build of the workspace (cargo build is a
# no-op when nothing changed, and guarantees we never test a stale binary).
vstick_bin() {
    if [ -n "${VSTICK_BIN:-}" ]; then
        echo "$VSTICK_BIN"
        return
    fi
    local target=${CARGO_TARGET_DIR:-$REPO/target} log
    log=$(mktemp)
    # Compiler chatter (other crates' warnings) is clippy's business; show it only when
    # the build fails.
    if ! (cd "$REPO" && cargo build -q -p vstick) >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
    echo "$target/debug/vstick"
}

# guest_binary_files ARRAY BINARY DEST: appends run-guest's --file arguments that put
# BINARY at DEST in the guest, with its shared libraries (and the loader) at the paths
# the binary asks for.
guest_binary_files() {
    local -n guest_files=$1
    local lib
    guest_files+=(--file "$2:$3")
    for lib in $(ldd "$2" | grep -oE '/[^ ]+'); do
        guest_files+=(--file "$lib:$lib")
    done
}

# bench_guest_binaries ARRAY: builds release vstick and vstick-guest-io and adds both (with
# their libraries) to the run-guest --file arguments in ARRAY, as /usr/bin/NAME.
bench_guest_binaries() {
    local target=${CARGO_TARGET_DIR:-$REPO/target} bin
    note "cargo build --release -p vstick -p vstick-bench"
    (cd "$REPO" && cargo build --release -q -p vstick -p vstick-bench --bin vstick --bin vstick-guest-io) || return 1
    for bin in "$target/release/vstick" "$target/release/vstick-guest-io"; do
        guest_binary_files "$1" "$bin" "/usr/bin/${bin##*/}"
    done
}

# start_vstick LOGFILE ARGS...: run `vstick serve ARGS` in the background.
start_vstick() {
    local log=$1
    shift
    local bin
    bin=$(vstick_bin) || { host_fail vstick-build "cargo build -p vstick failed"; return 1; }
    note "vstick serve $*"
    "$bin" serve "$@" >"$log" 2>&1 &
    VSTICK_PID=$!
    # Give it a moment to bind; a failing start (bad args, not implemented) shows here.
    sleep 0.5
    if ! kill -0 "$VSTICK_PID" 2>/dev/null; then
        local rc=0
        wait "$VSTICK_PID" || rc=$?
        VSTICK_PID=""
        host_fail vstick-start "vstick serve exited at once (rc=$rc):"
        sed 's/^/    vstick: /' "$log" | tail -n 20
        return 1
    fi
}

# stop_vstick: SIGTERM and wait; vstick must flush and exit 0.
stop_vstick() {
    [ -n "$VSTICK_PID" ] || return 0
    local rc=0 i
    kill -TERM "$VSTICK_PID" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$VSTICK_PID" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$VSTICK_PID" 2>/dev/null; then
        host_fail vstick-sigterm "still running 10 s after SIGTERM; killing it"
        kill -KILL "$VSTICK_PID" 2>/dev/null || true
    fi
    wait "$VSTICK_PID" || rc=$?
    VSTICK_PID=""
    host_expect_eq vstick-exit-status "$rc" 0
}

# start_vstick_redir LOGFILE ARGS...: `vstick serve --usbredir 127.0.0.1:PORT ARGS` on a free
# PORT (set in $port), and the matching QEMU usb-redir device appended to device_args.
start_vstick_redir() {
    local log=$1
    shift
    port=$(free_port)
    start_vstick "$log" --usbredir "127.0.0.1:$port" "$@" || return 1
    qemu_redir_args device_args "host=127.0.0.1,port=$port"
}

# stop_vstick_after_guest WORKDIR GUEST_RC: stop_vstick (it must exit 0), show the end of
# WORKDIR/vstick.log when the guest failed, and fail on a panic in it.
stop_vstick_after_guest() {
    local work=$1 guest_rc=$2
    stop_vstick
    if [ "$guest_rc" -ne 0 ]; then
        echo "  vstick log (last 30 lines, full: $work/vstick.log):"
        tail -n 30 "$work/vstick.log" | sed 's/^/    /'
    fi
    if grep -q panicked "$work/vstick.log"; then
        host_fail vstick-no-panic "$(grep -m1 panicked "$work/vstick.log")"
    fi
}

# host_finish LABEL GUEST_RC: the closing summary line; returns 0 when the guest and every
# host check passed, 1 otherwise (the test's last command, so its exit status).
host_finish() {
    note "$1: guest rc=$2, host failures=$HOST_FAILURES, $SECONDS s"
    [ "$2" -eq 0 ] && [ "$HOST_FAILURES" -eq 0 ]
}

# A value the guest reported with `value KEY VALUE`.
guest_value() { # logfile key
    tr -d '\r' <"$1" | sed -n "s/^VSTICK-VALUE $2=//p" | tail -n 1
}

md5_of() { md5sum "$1" | cut -d' ' -f1; }

# host_check_disk_file WORKDIR: the file the guest wrote to its FAT disk (/RANDOM.BIN, whose
# md5 it reported as disk_file_md5) is in WORKDIR/disk.raw, read back with mtools.
host_check_disk_file() {
    local work=$1 guest_md5
    guest_md5=$(guest_value "$work/console.log" disk_file_md5)
    if [ -z "$guest_md5" ]; then
        host_fail disk-file-in-image "the guest reported no disk_file_md5"
    elif mcopy -n -i "$work/disk.raw" ::RANDOM.BIN "$work/RANDOM.BIN" 2>"$work/mcopy.log"; then
        host_expect_eq disk-file-in-image "$(md5_of "$work/RANDOM.BIN")" "$guest_md5"
    else
        host_fail disk-file-in-image "mcopy: $(head -n 3 "$work/mcopy.log" | tr '\n' ' ')"
    fi
}

# stick_test_setup NAME LABEL [PAD_BYTES]: the start of gadget.sh and local.sh, whose
# guest runs vstick itself (vstick mode) or the kernel's reference (qemu mode) on two
# discs. Checks MODE; sets `work` (make_workdir NAME-MODE) and `started`; makes
# $work/x.iso from `tree` ($work/iso-tree, volume LABEL"ONE": README.TXT,
# nested/random.bin) and $work/other.iso (LABEL"TWO": SECOND.TXT and PAD_BYTES of
# zeros); sets `files` to the run-guest arguments that put them at /media/x.iso and
# /media/other.iso and, in vstick mode, the vstick binary at /usr/bin/vstick.
stick_test_setup() {
    local name=$1 label=$2 pad=${3:-0} bin
    case "$MODE" in
    vstick | qemu) ;;
    *) echo "unknown VSTICK_GUEST_DEVICE=$MODE" >&2; exit 2 ;;
    esac
    work=$(make_workdir "$name-$MODE")
    started=$SECONDS
    tree=$work/iso-tree
    mkdir -p "$tree/nested" "$work/iso2-tree"
    echo "vstick $name test file" >"$tree/README.TXT"
    head -c $((2 * 1024 * 1024 + 77)) /dev/urandom >"$tree/nested/random.bin"
    xorriso -as mkisofs -quiet -J -R -V "${label}ONE" -o "$work/x.iso" "$tree" 2>"$work/xorriso.log"
    echo "second medium" >"$work/iso2-tree/SECOND.TXT"
    [ "$pad" -eq 0 ] || head -c "$pad" /dev/zero >"$work/iso2-tree/PAD.BIN"
    xorriso -as mkisofs -quiet -J -R -V "${label}TWO" -o "$work/other.iso" "$work/iso2-tree" 2>>"$work/xorriso.log"
    files=(--file "$work/x.iso:/media/x.iso" --file "$work/other.iso:/media/other.iso")
    if [ "$MODE" = vstick ]; then
        bin=$(vstick_bin) || exit 1
        guest_binary_files files "$bin" /usr/bin/vstick
    fi
}
