#!/usr/bin/env bash
# Acceptance test of the USB/IP transport: a real Linux guest imports vstick's disk with
# the Debian `usbip` tool and the kernel's vhci-hcd, over QEMU user networking.
#
#   tests/guest/usbip.sh
#
# vstick listens on the host's loopback; from the guest (slirp, run-guest --net) the host's
# loopback is 10.0.2.2, so the guest runs `usbip --tcp-port PORT ... -r 10.0.2.2`.
# The guest lists the device, attaches it, formats it and writes a file, detaches, checks
# that a second import works and reads the file back identically; afterwards this side
# finds the file's bytes in disk.raw. The guest half is embedded below (busybox sh).
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-lib.sh"

DISK_BYTES=$((64 * 1024 * 1024))
RANDOM_MB=4

if [ "$MODE" != vstick ]; then
    # QEMU has no USB/IP server to compare against; nothing to validate in that mode.
    note "usbip: no reference mode for VSTICK_GUEST_DEVICE=$MODE; skipped"
    exit 77 # scripts/test counts 77 as SKIP
fi

work=$(make_workdir usbip)
trap 'stop_vstick >/dev/null 2>&1 || true' EXIT

truncate -s "$DISK_BYTES" "$work/disk.raw"

port=$(free_port)
start_vstick "$work/vstick.log" --usbip "127.0.0.1:$port" --disk "$work/disk.raw" -v || exit 1

# --- the guest half -------------------------------------------------------------------------

cat >"$work/in-guest-usbip.sh" <<'GUEST'
# In-guest half of tests/guest/usbip.sh (busybox sh; helpers from guest-lib.sh).
# Environment: USBIP_HOST, USBIP_PORT, DISK_BYTES, RANDOM_MB.

BUSID=1-1
mkdir -p /var/run /mnt/disk # usbip attach records its connection under /var/run/vhci_hcd

u() { usbip --tcp-port "$USBIP_PORT" "$@"; }

# The first vhci port in use ("Port 00: <Port in Use> at High Speed(480Mbps)").
imported_port() { usbip port 2>/dev/null | sed -n 's/^Port \([0-9]*\): <Port in Use>.*/\1/p' | head -n 1; }
no_usb_disk() { ! have_usb_block sd; }

dump_dmesg() { dmesg | tail -n 25 | sed 's/^/VSTICK-INFO dmesg: /'; }

# attach NAME: import the device and wait for its disk; sets $disk. Retries briefly: after
# a detach the server frees the device when it sees the connection close.
attach() {
    tries=0
    while :; do
        if out=$(u attach -r "$USBIP_HOST" -b "$BUSID" 2>&1); then
            break
        fi
        tries=$((tries + 1))
        if [ $tries -ge 5 ]; then
            fail "$1-attach" "$(echo "$out" | tail -n 2 | tr '\n' ' ')"
            return 1
        fi
        info "$1: attach refused ($(echo "$out" | tail -n 1)), retrying"
        sleep 1
    done
    ok "$1-attach" "after $tries retries"
    if wait_for 60 have_usb_block sd; then
        disk=$(usb_block_devices sd)
        ok "$1-disk-appears" "/dev/$disk at $(uptime_s)s"
    else
        fail "$1-disk-appears" "no USB disk 60 s after attach"
        dump_dmesg
        return 1
    fi
}

# detach NAME: detach the imported port and wait for the disk to go away.
detach() {
    port=$(imported_port)
    if [ -z "$port" ]; then
        fail "$1-detach" "usbip port shows no imported device"
        return 1
    fi
    check "$1-detach" usbip detach -p "$port"
    if wait_for 30 no_usb_disk; then
        ok "$1-disk-removed"
    else
        fail "$1-disk-removed" "sd still present: $(usb_block_devices sd)"
        dump_dmesg
    fi
}

# --- network ---------------------------------------------------------------------------

if ! wait_for 10 test -e /sys/class/net/eth0; then
    fail network "no eth0: $(ls /sys/class/net | tr '\n' ' ')"
    finish
fi
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ok network "eth0 10.0.2.15, server $USBIP_HOST:$USBIP_PORT"

# --- list ------------------------------------------------------------------------------

list=$(u list -r "$USBIP_HOST" 2>&1)
echo "$list" | sed 's/^/VSTICK-INFO list: /'
case "$list" in
*"$BUSID: "*"(1209:0001)"*) ok list-shows-device ;;
*) fail list-shows-device "no $BUSID (1209:0001) in: $(echo "$list" | tr '\n' ' ')" ;;
esac
case "$list" in
*"(08/06/50)"*) ok list-shows-bot-interface ;;
*) fail list-shows-bot-interface "no 08/06/50 interface" ;;
esac

# --- first import: what the guest sees, format, write --------------------------------

attach first || finish
usbdev=$(readlink -f "/sys/block/$disk/device")
case "$usbdev" in
*/vhci_hcd*) ok disk-below-vhci ;;
*) fail disk-below-vhci "$usbdev" ;;
esac
intf=$(mass_storage_interfaces | head -n 1)
dev=${intf%:*}
expect_eq usb-speed "$(cat /sys/bus/usb/devices/$dev/speed)" 480
expect_eq usb-version "$(cat /sys/bus/usb/devices/$dev/version | tr -d ' ')" 2.00
expect_eq usb-configuration "$(cat /sys/bus/usb/devices/$dev/bConfigurationValue)" 1
expect_eq usb-interface-protocol "$(cat /sys/bus/usb/devices/$intf/bInterfaceProtocol)" 50
expect_eq disk-size-bytes "$(blockdev --getsize64 /dev/$disk)" "$DISK_BYTES"

# The device is exclusive: a second import while this one holds it is refused as busy.
if out=$(u attach -r "$USBIP_HOST" -b "$BUSID" 2>&1); then
    fail second-import-busy "a second attach succeeded"
else
    case "$out" in
    *[Bb]usy*) ok second-import-busy ;;
    *) fail second-import-busy "refused, but not as busy: $(echo "$out" | tail -n 1)" ;;
    esac
fi

written_md5=""
check disk-mkdosfs mkdosfs -F 32 -n USBIP /dev/$disk
if mount -t vfat /dev/$disk /mnt/disk; then
    ok disk-mount-vfat
    write_disk_file /mnt/disk
else
    fail disk-mount-vfat "mount -t vfat /dev/$disk failed"
    dump_dmesg
fi

detach first

# --- second import: the file is there -------------------------------------------------------

echo 3 > /proc/sys/vm/drop_caches
if attach second; then
    if mount -t vfat -o ro /dev/$disk /mnt/disk; then
        expect_eq disk-file-after-reimport "$(md5sum /mnt/disk/RANDOM.BIN 2>&1 | cut -d' ' -f1)" "$written_md5"
        umount /mnt/disk
    else
        fail disk-mount-after-reimport "mount -t vfat /dev/$disk failed"
    fi
    detach second
fi

if dmesg | grep -qiE 'vhci.*(error|fail)|usbip.*(error|fail)'; then
    dmesg | grep -iE 'vhci|usbip' | tail -n 10 | sed 's/^/VSTICK-INFO dmesg: /'
fi
info "guest checks done at $(uptime_s)s"
finish
GUEST

guest_rc=0
"$GUEST_TESTS/run-guest" --net --log "$work/console.log" \
    --env "USBIP_HOST=10.0.2.2" --env "USBIP_PORT=$port" \
    --env "DISK_BYTES=$DISK_BYTES" --env "RANDOM_MB=$RANDOM_MB" \
    "$work/in-guest-usbip.sh" || guest_rc=$?

stop_vstick_after_guest "$work" "$guest_rc"

# --- host-side check: the guest's file is in disk.raw --------------------------------------

host_check_disk_file "$work"

host_finish usbip "$guest_rc"
