# In-guest half of tests/guest/gadget-conformance.sh: dummy_hcd as a SuperSpeed device
# controller, a gadget on each of its UDCs (vstick serve --gadget, or Linux's
# f_mass_storage through configfs), a check that the guest's own host side enumerated
# each one at SuperSpeed, then libiscsi's suite against their disks with the in-guest
# half of conformance.sh (/lib/vstick/conformance.sh).
# Environment:
#   UDCS      how many UDCs dummy_hcd creates (num=)
#   GADGETS   space-separated U:KIND:BYTES[:BLOCK_SIZE], one gadget on dummy_udc.U with
#             one disk of BYTES (sparse, in the guest's RAM); KIND is vstick or fms
#   TARGETS, TRIM   as for in-guest/conformance.sh

G=/sys/kernel/config/usb_gadget
mkdir -p /tmp/img

# The disk behind dummy_hcd.U (sysfs path through its host side).
gadget_disk() { # U
    for b in /sys/block/sd*; do
        [ -e "$b/device" ] || continue
        case "$(readlink -f "$b/device")" in
        */dummy_hcd.$1/*) echo "${b##*/}" && return 0 ;;
        esac
    done
    return 1
}

# Linux's f_mass_storage on dummy_udc.U with IMAGE as its one LUN: a fixed disk
# (removable=0) that honours FUA (nofua=0), as a SCSI disk would.
fms_start() { # U IMAGE
    R=$G/fms$1
    mkdir "$R" "$R/strings/0x409" "$R/configs/c.1" "$R/functions/mass_storage.0"
    echo 0x1d6b >"$R/idVendor"
    echo 0x0104 >"$R/idProduct"
    echo "f_mass_storage" >"$R/strings/0x409/product"
    F=$R/functions/mass_storage.0
    echo 0 >"$F/lun.0/removable"
    echo 0 >"$F/lun.0/nofua"
    echo "$2" >"$F/lun.0/file"
    ln -s "$F" "$R/configs/c.1/"
    echo "dummy_udc.$1" >"$R/UDC"
}

load_module libcomposite
load_module usb_f_fs
load_module usb_f_mass_storage
load_module dummy_hcd is_super_speed=1 num="$UDCS"
mount -t configfs none /sys/kernel/config

PIDS=""
for g in $GADGETS; do
    IFS=: read -r u kind bytes bs <<EOT
$g
EOT
    img=/tmp/img/udc$u.raw
    truncate -s "$bytes" "$img"
    case $kind in
    vstick)
        vstick serve --gadget "dummy_udc.$u" --block-size "${bs:-512}" --disk "$img" \
            >"/tmp/vstick$u.out" 2>"/tmp/vstick$u.err" &
        PIDS="$PIDS $!:$u"
        ;;
    fms) fms_start "$u" "$img" ;;
    *) fail gadget-kind "$kind" ;;
    esac
done

# Every gadget enumerated, at SuperSpeed on both sides: the UDC's link and the host's
# USB device (5000 Mbit/s).
for g in $GADGETS; do
    IFS=: read -r u kind bytes bs <<EOT
$g
EOT
    if ! wait_for 60 gadget_disk "$u"; then
        fail "udc$u-enumerated" "no disk on dummy_hcd.$u after 60 s"
        [ "$kind" != vstick ] || { show_log "/tmp/vstick$u.out"; show_log "/tmp/vstick$u.err"; }
        dmesg | tail -n 20 | sed 's/^/VSTICK-INFO dmesg: /'
        continue
    fi
    disk=$(gadget_disk "$u")
    usbdev=$(readlink -f "/sys/block/$disk/device" | sed 's|/[^/]*:1\.0/.*||')
    ok "udc$u-enumerated" "$kind: /dev/$disk, USB device ${usbdev##*/} $(cat "$usbdev/idVendor"):$(cat "$usbdev/idProduct") at $(uptime_s)s"
    expect_eq "udc$u-$kind-udc-speed" "$(cat "/sys/class/udc/dummy_udc.$u/current_speed")" super-speed
    expect_eq "udc$u-$kind-host-speed" "$(cat "$usbdev/speed")" 5000
    expect_eq "udc$u-$kind-bulk-max-packet" "$(cat "$usbdev"/*:1.0/ep_8?/wMaxPacketSize | head -n 1)" 0400
done

# Every 2 minutes, the SCSI commands each disk has been sent so far (a hung device stops
# counting) and the newest kernel message. The console stays quiet otherwise:
# f_mass_storage logs each write past the end of its disk (WriteNN.BeyondEol), thousands
# of lines at the serial port's pace.
echo 1 >/proc/sys/kernel/printk
(
    while sleep 120; do
        line="progress at $(uptime_s)s:"
        for g in $GADGETS; do
            u=${g%%:*}
            disk=$(gadget_disk "$u") &&
                line="$line udc$u $(printf %d "$(cat "/sys/block/$disk/device/iorequest_cnt")") commands;"
        done
        info "$line dmesg: $(dmesg | tail -n 1)"
    done
) &
MONITOR=$!

# Once the suites are done: each vstick flushes and exits 0 on SIGTERM.
after_suites() {
    kill "$MONITOR"
    for p in $PIDS; do
        pid=${p%%:*}
        u=${p#*:}
        kill -TERM "$pid"
        rc=0
        wait "$pid" || rc=$?
        expect_eq "udc$u-vstick-exit-status" "$rc" 0
        [ "$rc" = 0 ] || show_log "/tmp/vstick$u.err"
    done
}

. /lib/vstick/conformance.sh
