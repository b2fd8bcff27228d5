#!/usr/bin/env bash
# Acceptance test of `vstick serve --gadget [UDC]` (issue 15): inside a real Linux guest,
# vstick is a USB gadget (configfs + FunctionFS) on dummy_hcd's device controller, and the
# same guest's usb-storage, sr and sd drivers enumerate and use it, as a computer would
# use a Raspberry Pi plugged in as a stick.
#
#   tests/guest/gadget.sh                            # vstick serve --gadget dummy_udc.0
#   VSTICK_GUEST_DEVICE=qemu tests/guest/gadget.sh   # reference: Linux's f_mass_storage
#
# Reference mode: Linux's own f_mass_storage (what PiKVM and DriveDroid use), configured
# through configfs on dummy_udc.1 with the same images; its `lun.N/file` attribute is the
# disc swap and the eject (refused with EBUSY while the host locks the medium, as vstick's
# `ctl eject` is). vstick's own messages (no UDC, several UDCs, configfs not mounted, not
# root, a UDC in use, an image in use), its cleanup of stale gadgets and a stick profile
# with a snapshot have no f_mass_storage counterpart and are checked in vstick mode only.
#
# Afterwards the guest copies the disk image to a virtio disk the host reads with mtools:
# the host finds the file the guest wrote through the gadget.
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-lib.sh"

# f_mass_storage refuses a disc under 300 blocks (ETOOSMALL): the second one is padded.
stick_test_setup gadget GADGET $((1024 * 1024))
# The guest's copy of its disk image comes back here.
truncate -s 48M "$work/disk.raw"

cat >"$work/in-guest-gadget.sh" <<'GUEST'
# In-guest half of tests/guest/gadget.sh (busybox sh; helpers from guest-lib.sh).
# Environment: MODE (vstick | qemu), README_MD5, RANDOM_MD5, RANDOM_MB.

CFG=/sys/kernel/config
G=$CFG/usb_gadget
mkdir -p /mnt/cd /mnt/disk /mnt/check /tmp/img
cp /media/x.iso /media/other.iso /tmp/img/
truncate -s 48M /tmp/img/y.raw

# The block device of LUN N on the gadget of dummy_hcd.U (sysfs path through its host side).
gadget_dev() { # U LUN
    for b in /sys/block/sd* /sys/block/sr*; do
        [ -e "$b/device" ] || continue
        case "$(readlink -f "$b/device")" in
        */dummy_hcd.$1/*:$2) echo "${b##*/}" && return 0 ;;
        esac
    done
    return 1
}
gadget_ready() { gadget_dev "$1" 0 >/dev/null && gadget_dev "$1" 1 >/dev/null; }

load_module libcomposite
load_module usb_f_fs
load_module usb_f_mass_storage

# --- error lines (vstick only): no UDC, configfs not mounted, several UDCs, not root -------

if [ "$MODE" = vstick ]; then
    expect_error no-udc \
        "vstick: no USB device controller in /sys/class/udc: vstick serve --gadget needs a USB device (OTG) port and its driver (Raspberry Pi: dtoverlay=dwc2 in config.txt, then modprobe dwc2), or \`modprobe dummy_hcd\` to try it on this machine" \
        vstick serve --gadget --cdrom /tmp/img/x.iso
fi
load_module dummy_hcd num=2
if [ "$MODE" = vstick ]; then
    expect_error configfs-not-mounted \
        "vstick: configfs is not mounted at /sys/kernel/config: mount it with \`mount -t configfs none /sys/kernel/config\`" \
        vstick serve --gadget dummy_udc.0 --cdrom /tmp/img/x.iso
fi
mount -t configfs none $CFG
if [ "$MODE" = vstick ]; then
    expect_error several-udcs \
        "vstick: several USB device controllers (dummy_udc.0, dummy_udc.1): name one, e.g. vstick serve --gadget dummy_udc.0" \
        vstick serve --gadget --cdrom /tmp/img/x.iso
    echo "nobody:x:65534:65534:nobody:/:/bin/sh" >>/etc/passwd
    echo "nogroup:x:65534:" >>/etc/group
    chmod 755 / /tmp/img
    chmod 644 /tmp/img/x.iso
    expect_error not-root \
        "vstick: cannot create a USB gadget in $G: permission denied; vstick serve --gadget needs root (run it with sudo)" \
        su nobody -s /bin/sh -c "/usr/bin/vstick serve --gadget dummy_udc.0 --cdrom /tmp/img/x.iso"
    # Leftovers: a crashed vstick's gadget (its pid does not run) and another program's.
    mkdir $G/vstick-99999 $G/other-program
fi

# --- the stick: a disc and a disk ----------------------------------------------------------

# The identity both roles are given: vstick's options, f_mass_storage's configfs.
EXPECT_USB_ID=1d6b:0104 EXPECT_USB_MANUFACTURER="vstick gadget test"
EXPECT_USB_PRODUCT="Gadget Identity Stick ✓" EXPECT_USB_SERIAL=00112233445566778899

# f_mass_storage on UDC U with the same two LUNs (reference mode).
ref_start() { # U
    R=$G/ref
    mkdir $R $R/strings/0x409 $R/configs/c.1 $R/functions/mass_storage.0
    echo 0x1d6b >$R/idVendor
    echo 0x0104 >$R/idProduct
    echo "$EXPECT_USB_MANUFACTURER" >$R/strings/0x409/manufacturer
    echo "$EXPECT_USB_PRODUCT" >$R/strings/0x409/product
    echo "$EXPECT_USB_SERIAL" >$R/strings/0x409/serialnumber
    F=$R/functions/mass_storage.0
    echo 1 >$F/lun.0/removable
    echo 1 >$F/lun.0/cdrom
    echo 1 >$F/lun.0/ro
    echo /tmp/img/x.iso >$F/lun.0/file
    mkdir $F/lun.1
    echo 1 >$F/lun.1/removable
    echo /tmp/img/y.raw >$F/lun.1/file
    ln -s $F $R/configs/c.1/
    echo "dummy_udc.$1" >$R/UDC
}
ref_stop() {
    R=$G/ref
    echo "" >$R/UDC
    rm $R/configs/c.1/mass_storage.0
    rmdir $R/configs/c.1 $R/functions/mass_storage.0/lun.1 $R/functions/mass_storage.0 $R/strings/0x409 $R
}

if [ "$MODE" = vstick ]; then
    U=0
    vstick serve --gadget dummy_udc.0 --cdrom /tmp/img/x.iso --disk /tmp/img/y.raw --control /tmp/ctl.sock \
        --vendor-id 0x1d6b --product-id 0x0104 --manufacturer "$EXPECT_USB_MANUFACTURER" \
        --product "$EXPECT_USB_PRODUCT" --serial "$EXPECT_USB_SERIAL" >/tmp/stick.out 2>/tmp/stick.err &
    PID=$!
else
    U=1
    ref_start 1
fi
if wait_for 60 gadget_ready $U; then
    ok enumerated "at $(uptime_s)s: $(grep '^vstick: ' /tmp/stick.out 2>/dev/null)"
else
    fail enumerated "no sd/sr devices on dummy_hcd.$U after 60 s"
    [ "$MODE" != vstick ] || { show_log /tmp/stick.out; show_log /tmp/stick.err; }
    dump_dmesg
    finish
fi
cd_dev=$(gadget_dev $U 0)
disk=$(gadget_dev $U 1)
case "$cd_dev/$disk" in
sr*/sd*) ok lun-devices "LUN 0 /dev/$cd_dev, LUN 1 /dev/$disk" ;;
*) fail lun-devices "LUN 0 '$cd_dev', LUN 1 '$disk'" ;;
esac
# The USB device the host enumerated (its sysfs directory).
usbdev=$(readlink -f /sys/block/$disk/device | sed 's|/[^/]*:1\.0/.*||')
# The identity the host reads is the one given (the same in both roles).
expect_usb_identity gadget "$usbdev"
if [ "$MODE" = vstick ]; then
    if [ ! -e $G/vstick-99999 ]; then ok stale-gadget-removed; else fail stale-gadget-removed "still there"; fi
    if [ -d $G/other-program ]; then ok other-gadget-kept; else fail other-gadget-kept "removed"; fi
    expect_eq gadget-name "$(cat $G/vstick-$PID/UDC 2>/dev/null)" dummy_udc.0
    expect_eq interface-class "$(cat $usbdev/*:1.0/bInterfaceClass)/$(cat $usbdev/*:1.0/bInterfaceSubClass)/$(cat $usbdev/*:1.0/bInterfaceProtocol)" "08/06/50"
    # dummy_hcd is high speed (its SuperSpeed needs is_super_speed=1): 512-byte bulk packets.
    expect_eq bulk-max-packet "$(cat $usbdev/*:1.0/ep_81/wMaxPacketSize)" 0200
    # A second gadget on the same UDC is refused with the owner's name.
    expect_error udc-in-use \
        "vstick: USB device controller dummy_udc.0 is in use by the gadget vstick-$PID (configfs $G/vstick-$PID); stop what runs it, or unbind it with \`echo > $G/vstick-$PID/UDC\`" \
        vstick serve --gadget dummy_udc.0 --cdrom /tmp/img/x.iso
    # An image in use by the running stick is refused.
    if vstick serve --gadget dummy_udc.1 --disk /tmp/img/y.raw >/tmp/busy.out 2>/tmp/busy.err; then
        fail image-in-use "a second stick on y.raw started"
    else
        case "$(cat /tmp/busy.err)" in
        "vstick: LUN 0: /tmp/img/y.raw: "*"in use"*) ok image-in-use "$(cat /tmp/busy.err)" ;;
        *) fail image-in-use "stderr: $(tr '\n' ' ' </tmp/busy.err)" ;;
        esac
    fi
fi

# The disc: mounts, reads back byte-identical files.
if mount -t iso9660 -o ro "/dev/$cd_dev" /mnt/cd; then
    ok cd-mount
    expect_eq cd-readme "$(md5sum /mnt/cd/README.TXT | cut -d' ' -f1)" "$README_MD5"
    expect_eq cd-random "$(md5sum /mnt/cd/nested/random.bin | cut -d' ' -f1)" "$RANDOM_MD5"
else
    fail cd-mount "mount /dev/$cd_dev failed"
    dump_dmesg
fi

# Eject while mounted: the host has locked the medium (PREVENT ALLOW MEDIUM REMOVAL).
if [ "$MODE" = vstick ]; then
    if vstick ctl /tmp/ctl.sock eject 0 >/tmp/eject.out 2>&1; then
        fail eject-refused-while-locked "ejected: $(cat /tmp/eject.out)"
    else
        ok eject-refused-while-locked "$(head -n 1 /tmp/eject.out)"
    fi
elif echo "" >$G/ref/functions/mass_storage.0/lun.0/file 2>/dev/null; then
    fail eject-refused-while-locked "f_mass_storage ejected"
else
    ok eject-refused-while-locked "f_mass_storage: EBUSY"
fi

# The disk: formats, writes, reads back after dropping the caches.
format_write_readback "$disk" GADGET

# BOT's direction mismatches (§6.7 cases 10 and 8): the device stalls the pipe the host
# uses (a halt on the bus, cleared by the host's CLEAR_FEATURE), answers a phase-error
# CSW; Linux answers a phase error with a port reset, after which the device works on.
# usbmon on the host side shows the stall (-EPIPE) on the pipe of the mismatch (vstick).
load_module usbmon
mount -t debugfs none /sys/kernel/debug 2>/dev/null
bus=$(cat $usbdev/busnum)
dd if=/dev/$disk of=/tmp/sector0 bs=512 count=1 iflag=direct 2>/dev/null
head -c 512 /dev/zero >/tmp/zero512
for mismatch in "case10 Bo -s 512 -i /tmp/zero512 /dev/$disk 28 00 00 00 00 00 00 00 01 00" \
    "case8 Bi -r 512 /dev/$disk 2a 00 00 00 00 00 00 00 01 00"; do
    set -- $mismatch
    what=$1
    pipe=$2
    shift 2
    cat /sys/kernel/debug/usb/usbmon/${bus}u >/tmp/mon.$what &
    mon=$!
    usleep 200000
    t=$(uptime_s)
    timeout 60 sg_raw "$@" >/tmp/sg_raw.out 2>&1
    rc=$?
    usleep 200000
    kill $mon
    # "C Bo:BUS:DEV:EP -32 ...": a bulk OUT (IN) transfer completed with a stall. BOT 1.0
    # §6.7 has the device stall here; f_mass_storage does not (it takes case 10's data
    # and ends case 8's with a short packet, then the phase error), so vstick only.
    if [ "$MODE" != vstick ]; then
        info "$what: f_mass_storage on $pipe: $(grep -E ' C B[io]:' /tmp/mon.$what | awk '{ print $4, $5 }' | sort | uniq -c | tr '\n' ' ')"
    elif grep -qE " C $pipe:[0-9]+:[0-9]+:[0-9]+ -32 " /tmp/mon.$what; then
        ok "$what-stall-seen" "$(grep -cE " C $pipe:[0-9:]+ -32 " /tmp/mon.$what) on $pipe"
    else
        fail "$what-stall-seen" "no -32 on $pipe: $(grep -E ' C B[io]:' /tmp/mon.$what | awk '{ print $4, $5 }' | sort | uniq -c | tr '\n' ' ')"
    fi
    took=$(awk "BEGIN { print $(uptime_s) - $t }")
    # usb-storage maps the phase error to a reset and DID_ERROR: sg_raw fails, promptly.
    if [ "$rc" -ne 0 ] && awk "BEGIN { exit !($took < 20) }"; then
        ok "$what-phase-error" "rc=$rc in ${took}s"
    else
        fail "$what-phase-error" "rc=$rc in ${took}s: $(tr '\n' ' ' </tmp/sg_raw.out)"
    fi
    expect_eq "$what-then-reads" \
        "$(dd if=/dev/$disk bs=512 count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)" \
        "$(md5sum </tmp/sector0 | cut -d' ' -f1)"
done
dmesg | grep -iE 'reset|stall' | tail -n 4 | sed 's/^/VSTICK-INFO dmesg: /'

# The disc swap: after a remount the mounted view is the other disc.
umount /mnt/cd
if [ "$MODE" = vstick ]; then
    check ctl-insert vstick ctl /tmp/ctl.sock insert 0 /tmp/img/other.iso
else
    check ctl-insert sh -c "echo /tmp/img/other.iso >$G/ref/functions/mass_storage.0/lun.0/file"
fi
if wait_for 20 mount -t iso9660 -o ro "/dev/$cd_dev" /mnt/cd; then
    if [ -e /mnt/cd/SECOND.TXT ] && [ ! -e /mnt/cd/README.TXT ]; then
        ok cd-swapped "$(cat /mnt/cd/SECOND.TXT)"
    else
        fail cd-swapped "$(ls /mnt/cd | tr '\n' ' ')"
    fi
    umount /mnt/cd
else
    fail cd-swapped "no mount of /dev/$cd_dev after the swap"
    dump_dmesg
fi

# --- unplug: SIGTERM flushes, unbinds and removes the gadget ------------------------------

if [ "$MODE" = vstick ]; then
    t=$(uptime_s)
    kill -TERM "$PID"
    rc=0
    wait "$PID" || rc=$?
    expect_eq exit-status "$rc" 0
    took=$(awk "BEGIN { print $(uptime_s) - $t }")
    if awk "BEGIN { exit !($took < 5) }"; then ok unplug-time "${took}s"; else fail unplug-time "${took}s"; fi
    if [ ! -e $G/vstick-$PID ]; then ok gadget-removed; else fail gadget-removed "$G/vstick-$PID remains"; fi
    if grep -q functionfs /proc/mounts; then fail ffs-unmounted "$(grep functionfs /proc/mounts)"; else ok ffs-unmounted; fi
    show_log /tmp/stick.err
else
    ref_stop
fi
for d in "$cd_dev" "$disk"; do
    if wait_for 15 test ! -e "/sys/block/$d"; then ok "$d-removed"; else fail "$d-removed" "still there"; fi
done

# A crashed vstick (SIGKILL) leaves its gadget bound; the next start removes it and binds.
if [ "$MODE" = vstick ]; then
    vstick serve --gadget dummy_udc.0 --cdrom /tmp/img/x.iso >/tmp/crash.out 2>&1 &
    CRASHED=$!
    wait_for 30 test -e $G/vstick-$CRASHED/UDC && wait_for 30 gadget_dev 0 0
    kill -KILL $CRASHED
    wait $CRASHED 2>/dev/null
    # FunctionFS unbinds the gadget when its files close; the configfs entries stay.
    if [ -d $G/vstick-$CRASHED ]; then ok crashed-gadget-left; else fail crashed-gadget-left "no $G/vstick-$CRASHED"; fi
    vstick serve --gadget dummy_udc.0 --cdrom /tmp/img/x.iso >/tmp/after.out 2>/tmp/after.err &
    AFTER=$!
    if wait_for 30 test -e $G/vstick-$AFTER/UDC && [ ! -e $G/vstick-$CRASHED ]; then
        ok crashed-gadget-cleaned "vstick-$CRASHED removed, vstick-$AFTER bound"
    else
        fail crashed-gadget-cleaned "$(ls $G | tr '\n' ' ')"
        show_log /tmp/after.err
    fi
    kill -TERM $AFTER
    wait $AFTER
    rmdir $G/other-program
fi

# A stick profile with `snapshot = true`: the host writes and reads its writes back, the
# image stays as it was, and no overlay is left beside it (vstick only: f_mass_storage
# has no snapshots).
if [ "$MODE" = vstick ]; then
    image_md5=$(md5sum /tmp/img/y.raw | cut -d' ' -f1)
    printf '%s\n' 'gadget = "dummy_udc.0"' 'snapshot = true' '[[lun]]' 'type = "disk"' 'path = "img/y.raw"' \
        >/tmp/stick.toml
    vstick serve --config /tmp/stick.toml >/tmp/snap.out 2>/tmp/snap.err &
    SNAP=$!
    if wait_for 60 gadget_dev 0 0; then
        sdisk=$(gadget_dev 0 0)
        head -c $((2 << 20)) /dev/urandom >/tmp/snap.bin
        dd if=/tmp/snap.bin of="/dev/$sdisk" bs=1M oflag=direct 2>/dev/null
        expect_eq snapshot-reads-its-writes \
            "$(dd if="/dev/$sdisk" bs=1M count=2 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)" \
            "$(md5sum </tmp/snap.bin | cut -d' ' -f1)"
    else
        fail snapshot-reads-its-writes "no disk on dummy_hcd.0 after 60 s"
        show_log /tmp/snap.err
    fi
    kill -TERM $SNAP
    wait $SNAP
    expect_eq snapshot-image-unchanged "$(md5sum /tmp/img/y.raw | cut -d' ' -f1)" "$image_md5"
    expect_eq snapshot-overlay-removed "$(ls /tmp/img | tr '\n' ' ')" "other.iso x.iso y.raw "
fi

# --- the host reads the image: copied to the virtio disk ------------------------------------

if [ -z "$written" ]; then
    fail file-in-image "nothing was written"
elif mount -t vfat -o loop,ro /tmp/img/y.raw /mnt/check; then
    expect_eq file-in-image "$(md5sum /mnt/check/RANDOM.BIN | cut -d' ' -f1)" "$written"
    umount /mnt/check
    value disk_file_md5 "$written"
    load_module virtio_blk
    if wait_for 10 test -b /dev/vda && dd if=/tmp/img/y.raw of=/dev/vda bs=1M conv=fsync 2>/dev/null; then
        ok image-to-host
    else
        fail image-to-host "no /dev/vda"
    fi
else
    fail file-in-image "cannot loop-mount y.raw"
fi
info "guest checks done at $(uptime_s)s"
finish
GUEST

guest_rc=0
"$GUEST_TESTS/run-guest" --log "$work/console.log" --memory 768M \
    --env "MODE=$MODE" --env "RANDOM_MB=4" \
    --env "README_MD5=$(md5_of "$tree/README.TXT")" \
    --env "RANDOM_MD5=$(md5_of "$tree/nested/random.bin")" \
    "${files[@]}" "$work/in-guest-gadget.sh" \
    -- -drive "file=$work/disk.raw,format=raw,if=virtio" || guest_rc=$?

host_check_disk_file "$work"
note "gadget ($MODE): $((SECONDS - started)) s"
host_finish gadget "$guest_rc"
