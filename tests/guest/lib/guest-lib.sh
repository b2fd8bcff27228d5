# Helpers for in-guest test scripts (busybox sh). Sourced as /lib/vstick/guest-lib.sh.
#
# Output protocol (parsed by tests/guest/run-guest on the host):
#   VSTICK-CHECK <name> ok [detail]
#   VSTICK-CHECK <name> FAIL <detail>
#   VSTICK-VALUE <key>=<value>      a value the host driver compares afterwards
#   VSTICK-INFO <text>              free-form, for humans
# The script's exit status becomes the guest rc; use `finish` at the end.

VSTICK_FAILURES=0

ok() { # name [detail]
    name=$1
    shift
    echo "VSTICK-CHECK $name ok${*:+ $*}"
}

fail() { # name detail
    name=$1
    shift
    echo "VSTICK-CHECK $name FAIL ${*:-failed}"
    VSTICK_FAILURES=$((VSTICK_FAILURES + 1))
}

info() { echo "VSTICK-INFO $*"; }

value() { echo "VSTICK-VALUE $1=$2"; }

# check NAME COMMAND...: run a command; ok if it exits 0, FAIL with its output otherwise.
check() {
    name=$1
    shift
    if out=$("$@" 2>&1); then
        ok "$name"
    else
        fail "$name" "($*) -> $(echo "$out" | tail -n 3 | tr '\n' ' ')"
    fi
}

# expect_eq NAME ACTUAL EXPECTED
expect_eq() {
    if [ "$2" = "$3" ]; then
        ok "$1" "$2"
    else
        fail "$1" "got '$2', expected '$3'"
    fi
}

# Seconds since boot, for timings.
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# wait_for SECONDS COMMAND...: poll (every 0.2 s) until the command succeeds.
# usb-storage enumerates asynchronously (it also waits delay_use before scanning LUNs),
# so block devices appear some seconds after the modules load.
wait_for() {
    limit=$1
    shift
    tries=$((limit * 5))
    while [ $tries -gt 0 ]; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        usleep 200000
        tries=$((tries - 1))
    done
    return 1
}

# Block devices (sd*, sr*) whose SCSI host is usb-storage.
usb_block_devices() { # prefix (sd|sr)
    for dev in /sys/block/$1*; do
        [ -e "$dev" ] || continue
        # /sys/block/X/device -> .../usbN/N-P/N-P:1.0/hostH/targetH:0:0/H:0:0:L
        case "$(readlink -f "$dev/device")" in
        */usb*) echo "${dev##*/}" ;;
        esac
    done
}

have_usb_block() { [ -n "$(usb_block_devices "$1")" ]; }

# USB interfaces of class 08 (mass storage).
mass_storage_interfaces() {
    for intf in /sys/bus/usb/devices/*:*; do
        [ -e "$intf/bInterfaceClass" ] || continue
        if [ "$(cat "$intf/bInterfaceClass")" = "08" ]; then
            echo "${intf##*/}"
        fi
    done
}

# Sense key/ASC/ASCQ of TEST UNIT READY as "KK/AA/QQ" (hex), "00/00/00" if ready.
# sg_turs prints the decoded sense; sg_raw gives the raw bytes, which are unambiguous.
tur_sense() { # device
    # sg_raw -r 32 with REQUEST SENSE would lose the TUR's sense, so read it from the
    # TUR itself: sg_raw prints "Sense Information:" followed by hex bytes.
    out=$(sg_raw -v "$1" 00 00 00 00 00 00 2>&1)
    if echo "$out" | grep -q 'Sense Information'; then
        bytes=$(echo "$out" | sed -n '/Sense Information/,$p' | grep -E '^ *[0-9a-f]+ ' |
            sed 's/^ *[0-9a-f]* *//' | tr -s ' \n' ' ')
        # Fixed format (70h/71h): key in byte 2 (low nibble), ASC byte 12, ASCQ byte 13.
        set -- $bytes
        resp=$1
        case "$resp" in
        70 | 71)
            key=$(printf '%02x' $((0x$3 & 0x0f)))
            shift 12
            echo "$key/$1/$2"
            ;;
        72 | 73)
            key=$(printf '%02x' $((0x$2 & 0x0f)))
            echo "$key/$3/$4"
            ;;
        *) echo "unknown-sense:$bytes" ;;
        esac
    else
        echo "00/00/00"
    fi
}

finish() {
    if [ "$VSTICK_FAILURES" -eq 0 ]; then
        info "all checks passed"
        exit 0
    fi
    info "$VSTICK_FAILURES check(s) failed"
    exit 1
}
