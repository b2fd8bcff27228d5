# In-guest half of bench/guest-bench.sh (busybox sh; helpers from guest-lib.sh).
# Environment: REPS, SEQ_BYTES, SECONDS_CAP, RAND_COUNT, OPS, DEVICES, DISK_BYTES, TRANSPORT and, for USB/IP,
# USBIP_HOST, USBIP_PORT, USBIP_BUSID.
#
# Finds the USB disks (vstick, vendor "vstick", and QEMU's usb-storage, vendor "QEMU";
# optionally a second vstick "vstickb" for A/B comparisons),
# then interleaves the workloads: per repetition, per workload, both devices back to
# back, the order alternating between repetitions. Each run prints
#   VSTICK-BENCH dev=<vstick|qemu> op=<op> rep=<n> bytes=<b> ops=<n> secs=<s>
# and asks the host to sample vstick's CPU time before and after its own runs.

IO=/usr/bin/vstick-guest-io

if [ "$TRANSPORT" = usbip ]; then
    if ! wait_for 10 test -e /sys/class/net/eth0; then
        fail network "no eth0"
        finish
    fi
    ip link set eth0 up
    ip addr add 10.0.2.15/24 dev eth0
    mkdir -p /var/run
    if out=$(usbip --tcp-port "$USBIP_PORT" attach -r "$USBIP_HOST" -b "$USBIP_BUSID" 2>&1); then
        ok usbip-attach
    else
        fail usbip-attach "$out"
        finish
    fi
fi

# disk_of DEV: the sd device of vstick (vendor "vstick", DISK_BYTES), qemu (vendor
# "QEMU") or vstickb (a second vstick for A/B runs, vendor "vstick", one MiB larger).
disk_of() {
    case $1 in
    qemu) want_vendor=QEMU want_bytes="" ;;
    vstick) want_vendor=vstick want_bytes=$DISK_BYTES ;;
    vstickb) want_vendor=vstick want_bytes=$((DISK_BYTES + 1048576)) ;;
    esac
    for sd in $(usb_block_devices sd); do
        v=$(cat "/sys/block/$sd/device/vendor" 2>/dev/null | tr -d ' ')
        [ "$v" = "$want_vendor" ] || continue
        [ -z "$want_bytes" ] || [ "$(cat "/sys/block/$sd/size")" = $((want_bytes / 512)) ] || continue
        echo "$sd"
        return 0
    done
    return 1
}
all_disks() {
    for d in $DEVICES; do disk_of "$d" >/dev/null || return 1; done
}

if ! wait_for 90 all_disks; then
    fail disks "want $DEVICES, have: $(usb_block_devices sd | tr '\n' ' ')"
    dmesg | tail -n 20 | sed 's/^/VSTICK-INFO dmesg: /'
    finish
fi
found=""
for d in $DEVICES; do found="$found $d=/dev/$(disk_of "$d")"; done
ok disks "$found"

# How each device is attached: USB speed and the largest transfer Linux will use.
describe() { # label sd
    usbdev=$(readlink -f "/sys/block/$2/device")
    while [ "$usbdev" != / ] && [ ! -e "$usbdev/speed" ]; do usbdev=${usbdev%/*}; done
    value "$1.speed" "$(cat "$usbdev/speed" 2>/dev/null)"
    value "$1.bcdusb" "$(cat "$usbdev/version" 2>/dev/null | tr -d ' ')"
    value "$1.max_sectors_kb" "$(cat "/sys/block/$2/queue/max_sectors_kb")"
    value "$1.bytes" "$(blockdev --getsize64 "/dev/$2")"
}
for d in $DEVICES; do describe "$d" "$(disk_of "$d")"; done
# How the guest idles while it waits for a transfer (polling idle burns a host core).
cpuidle=/sys/devices/system/cpu/cpuidle
value guest.cpuidle "$(cat $cpuidle/current_driver 2>/dev/null || echo none)/$(cat $cpuidle/current_governor_ro 2>/dev/null || echo none)"

# cpu_ticks: "busy total" jiffies of the guest so far (/proc/stat).
cpu_ticks() {
    awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8; print busy, busy + $5 + $6 }' /proc/stat
}

run_one() { # dev op rep
    sd=$(disk_of "$1")
    case $2 in
    seq-read | seq-write) args="--bs 1M --bytes $SEQ_BYTES --seconds $SECONDS_CAP" ;;
    rand-read) args="--bs 4K --count $RAND_COUNT --seconds $SECONDS_CAP --seed $3" ;;
    esac
    if [ "$1" != qemu ]; then
        host_request cpu "$1" "$2" "$3" begin
        # The host samples asynchronously; vstick is idle meanwhile, so waiting
        # costs nothing but keeps the sample before the first request.
        sleep 1
    fi
    # shellcheck disable=SC2086 # $args is a list of options
    before=$(cpu_ticks)
    if res=$($IO "$2" "/dev/$sd" $args 2>&1); then
        busy=$(echo "$before $(cpu_ticks)" | awk '{ t = $4 - $2; printf "%.0f", (t > 0 ? 100 * ($3 - $1) / t : 0) }')
        echo "VSTICK-BENCH dev=$1 op=$2 rep=$3 $res guest_busy=$busy"
    else
        fail "bench-$1-$2-$3" "$res"
    fi
    if [ "$1" != qemu ]; then
        host_request cpu "$1" "$2" "$3" end
        sleep 1
    fi
}

rep=1
while [ "$rep" -le "$REPS" ]; do
    order=$DEVICES
    if [ $((rep % 2)) = 0 ]; then order=$(echo "$DEVICES" | awk '{ for (i = NF; i > 0; i--) printf "%s ", $i }'); fi
    for op in $OPS; do
        for dev in $order; do
            run_one "$dev" "$op" "$rep"
        done
    done
    info "repetition $rep done at $(uptime_s)s"
    rep=$((rep + 1))
done
for state in /sys/devices/system/cpu/cpu0/cpuidle/state*; do
    [ -e "$state/name" ] && info "idle state $(cat "$state/name"): $(cat "$state/usage") entries, $(cat "$state/time") us"
done
finish
