#!/usr/bin/env bash
# Acceptance test of `vstick serve --local` (issue 14): inside a real Linux guest, vstick
# plugs itself into that guest's own kernel through vhci-hcd, and the guest's usb-storage,
# sr and sd drivers use it: the vstick binary and its shared libraries are copied into
# the guest, which runs it as a user would on their own machine.
#
#   tests/guest/local.sh                            # vstick serve --local (default)
#   VSTICK_GUEST_DEVICE=qemu tests/guest/local.sh   # reference: loop devices (losetup)
#
# Reference mode: what a Linux user does today with an ISO and a disk image is `losetup`;
# the same in-guest checks run against loop devices (loop0 for the disc, loop1 for the
# disk, a third for the second "stick"), with `losetup -d` + a new `losetup` as the disc
# swap and the unplug. The checks of vstick's own messages (module missing, not root,
# image in use, the kernel dropping the device) have no loop-device counterpart and are
# skipped there.
#
# The guest half is embedded below (busybox sh). Afterwards the guest loop-mounts the disk
# image and finds the file it wrote through the stick (the image itself lives in the
# guest's RAM).
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-lib.sh"

# --- media: two ISOs; the disks are made inside the guest ----------------------------------

stick_test_setup local LOCAL

# --- the guest half -----------------------------------------------------------------------

cat >"$work/in-guest-local.sh" <<'GUEST'
# In-guest half of tests/guest/local.sh (busybox sh; helpers from guest-lib.sh).
# Environment: MODE (vstick | qemu), README_MD5, RANDOM_MD5, RANDOM_MB, DEFAULT_SERIAL.

VHCI=/sys/devices/platform/vhci_hcd.0
mkdir -p /mnt/cd /mnt/disk /mnt/check /tmp/img
cp /media/x.iso /media/other.iso /tmp/img/
truncate -s 48M /tmp/img/y.raw
truncate -s 16M /tmp/img/z.raw

# The block device vstick printed for LUN N ("vstick: LUN N: /dev/sr0 (...)").
lun_dev() { sed -n "s|^vstick: LUN $2: /dev/\([a-z0-9]*\).*|\1|p" "$1" | head -n 1; }
vhci_port() { sed -n 's/^vstick: plugged into this machine on vhci-hcd port \([0-9]*\).*/\1/p' "$1"; }
vhci_module_loaded() { [ -d /sys/module/vhci_hcd ]; }
gone() { [ ! -e "/sys/block/$1" ]; }

# --- the stick's lifecycle, in either mode ------------------------------------------------

# plug NAME LOG ARGS...: start a stick; in vstick mode waits for the device lines.
# Sets STICK_PID. qemu mode: loop devices for the same images, "LUN" lines written alike.
plug() {
    what=$1
    log=$2
    shift 2
    if [ "$MODE" = vstick ]; then
        vstick serve --local "$@" >"$log" 2>"$log.err" &
        STICK_PID=$!
        want=-1
        for a in "$@"; do
            case "$a" in --cdrom | --disk | --disk-ro) want=$((want + 1)) ;; esac
        done
        if wait_for 60 grep -q "^vstick: LUN $want: /dev/" "$log"; then
            ok "$what-plugged" "$(grep '^vstick: plugged' "$log" | cut -c1-70) at $(uptime_s)s"
        else
            fail "$what-plugged" "no LUN $want line after 60 s"
            show_log "$log"
            show_log "$log.err"
            dump_dmesg
            return 1
        fi
    else
        : >"$log"
        lun=0
        while [ $# -gt 0 ]; do
            dev=$(losetup -f)
            case "$1" in
            --cdrom | --disk-ro) losetup -r "$dev" "$2" ;;
            --disk) losetup "$dev" "$2" ;;
            *) shift 2 && continue ;; # --control: vstick's own
            esac
            echo "vstick: LUN $lun: $dev" >>"$log"
            lun=$((lun + 1))
            shift 2
        done
        STICK_PID=""
        ok "$what-plugged" "$(tr '\n' ' ' <"$log")"
    fi
}

# unplug NAME LOG PID DEVS...: SIGTERM (vstick) or losetup -d (qemu); the devices go.
unplug() {
    what=$1 # (not $name: ok/fail set it)
    log=$2
    pid=$3
    shift 3
    if [ "$MODE" = vstick ]; then
        t=$(uptime_s)
        kill -TERM "$pid"
        rc=0
        wait "$pid" || rc=$?
        expect_eq "$what-exit-status" "$rc" 0
        # It detaches through sysfs and is gone once the kernel has let go: promptly.
        took=$(awk "BEGIN { print $(uptime_s) - $t }")
        if awk "BEGIN { exit !($took < 5) }"; then ok "$what-unplug-time" "${took}s"; else
            fail "$what-unplug-time" "${took}s after SIGTERM"
        fi
        # vstick waits for the kernel to let go: the port is free once it has exited.
        port=$(vhci_port "$log")
        expect_eq "$what-port-free-at-exit" "$(grep -c "^.. *$(printf %04d "$port") 004 " $VHCI/status)" 1
        for d in "$@"; do
            if wait_for 15 gone "$d"; then ok "$what-$d-removed"; else fail "$what-$d-removed" "still there"; fi
        done
    else
        for d in "$@"; do
            losetup -d "/dev/$d"
            # A detached loop device stays in /sys/block with size 0.
            if wait_for 15 test "$(cat /sys/block/$d/size)" = 0; then
                ok "$what-$d-removed"
            else
                fail "$what-$d-removed" "size $(cat /sys/block/$d/size)"
            fi
        done
    fi
}

# --- error lines (vstick only) -------------------------------------------------------------

if [ "$MODE" = vstick ]; then
    # vhci-hcd is loaded by /init; unload it and make modprobe unavailable.
    rmmod vhci_hcd
    vhci_ko=$(grep '/vhci[-_]hcd\.ko$' /etc/vstick-modules)
    expect_error no-vhci-module \
        "vstick: the vhci-hcd kernel module is not loaded and \`modprobe vhci-hcd\` failed: load it as root (\`modprobe vhci-hcd\`) or install the package that has it (Debian: linux-image-amd64; Fedora: kernel-modules-extra)" \
        env PATH=/nonexistent /usr/bin/vstick serve --local --cdrom /tmp/img/x.iso
    # vstick loads the module itself through modprobe (here one that insmods the file).
    mkdir -p /tmp/fakebin
    printf '#!/bin/sh\n[ "$1" = vhci-hcd ] && exec insmod %s\nexit 1\n' "$vhci_ko" >/tmp/fakebin/modprobe
    chmod +x /tmp/fakebin/modprobe
    export PATH=/tmp/fakebin:$PATH

fi

# --- the stick: a disc and a disk ------------------------------------------------------------

# The first stick has an identity of its own, its serial not BOT's (a warning, served as
# given); the second keeps vstick's defaults. (qemu mode: loop devices have neither.)
plug first /tmp/first.out --cdrom /tmp/img/x.iso --disk /tmp/img/y.raw --control /tmp/ctl.sock \
    --vendor-id 0x1d6b --product-id 0x0104 --manufacturer "vstick local test" \
    --product "Local Identity Stick" --serial local-stick-1 || finish
FIRST_PID=$STICK_PID
cd_dev=$(lun_dev /tmp/first.out 0)
disk=$(lun_dev /tmp/first.out 1)
case "$MODE/$cd_dev/$disk" in
vstick/sr*/sd* | qemu/loop*/loop*) ok lun-devices "LUN 0 /dev/$cd_dev, LUN 1 /dev/$disk" ;;
*) fail lun-devices "LUN 0 '$cd_dev', LUN 1 '$disk'" ;;
esac
if [ "$MODE" = vstick ]; then
    if vhci_module_loaded; then ok vhci-loaded-by-vstick; else fail vhci-loaded-by-vstick "not loaded"; fi
    # Not root: one line saying so (the attach file is root's, mode 0200).
    echo "nobody:x:65534:65534:nobody:/:/bin/sh" >>/etc/passwd
    echo "nogroup:x:65534:" >>/etc/group
    chmod 755 / /tmp/img # the initramfs root is 0700
    chmod 644 /tmp/img/x.iso
    expect_error not-root \
        "vstick: cannot write $VHCI/attach: permission denied; plugging a device into this machine needs root (run vstick serve --local with sudo)" \
        su nobody -s /bin/sh -c "/usr/bin/vstick serve --local --cdrom /tmp/img/x.iso"
    case "$(readlink -f /sys/block/$disk/device)" in
    */vhci_hcd.0/usb*) ok disk-below-vhci ;;
    *) fail disk-below-vhci "$(readlink -f /sys/block/$disk/device)" ;;
    esac
    EXPECT_USB_ID=1d6b:0104 EXPECT_USB_MANUFACTURER="vstick local test"
    EXPECT_USB_PRODUCT="Local Identity Stick" EXPECT_USB_SERIAL=local-stick-1
    expect_usb_identity first "$(readlink -f /sys/block/$disk/device | sed 's|/[^/]*:1\.0/.*||')"
    expect_eq first-serial-warning \
        "$(grep -c 'WARN serial "local-stick-1" is not a BOT serial number' /tmp/first.out.err)" 1
    port1=$(vhci_port /tmp/first.out)
    # A SuperSpeed port when one is free (the guest's are): the USB 3 descriptors.
    expect_eq superspeed-port "$(grep "^ss  $(printf %04d "$port1") 006 005 " $VHCI/status | wc -l)" 1
fi

# The disc: mounts, and reads back byte-identical files.
if mount -t iso9660 -o ro "/dev/$cd_dev" /mnt/cd; then
    ok cd-mount
    expect_eq cd-readme "$(md5sum /mnt/cd/README.TXT | cut -d' ' -f1)" "$README_MD5"
    expect_eq cd-random "$(md5sum /mnt/cd/nested/random.bin | cut -d' ' -f1)" "$RANDOM_MD5"
else
    fail cd-mount "mount /dev/$cd_dev failed"
    dump_dmesg
fi

# The disk: formats, writes, reads back after dropping the caches.
format_write_readback "$disk" LOCAL

# A disc swap (vstick ctl insert; losetup -d + losetup in qemu mode): after a remount the
# mounted view is the other disc.
umount /mnt/cd
if [ "$MODE" = vstick ]; then
    check ctl-insert vstick ctl /tmp/ctl.sock insert 0 /tmp/img/other.iso
    new_cd=$cd_dev
else
    losetup -d "/dev/$cd_dev"
    new_cd=$(losetup -f)
    new_cd=${new_cd#/dev/}
    check ctl-insert losetup -r "/dev/$new_cd" /tmp/img/other.iso
fi
# The kernel sees the media change on its next command; mount retries until it has.
if wait_for 20 mount -t iso9660 -o ro "/dev/$new_cd" /mnt/cd; then
    if [ -e /mnt/cd/SECOND.TXT ] && [ ! -e /mnt/cd/README.TXT ]; then
        ok cd-swapped "$(cat /mnt/cd/SECOND.TXT)"
    else
        fail cd-swapped "$(ls /mnt/cd | tr '\n' ' ')"
    fi
    umount /mnt/cd
else
    fail cd-swapped "no mount of /dev/$new_cd after the swap"
    dump_dmesg
fi
[ "$MODE" = vstick ] || cd_dev=$new_cd

# A writable image in use by the running stick is refused (vstick only).
if [ "$MODE" = vstick ]; then
    if vstick serve --local --disk /tmp/img/y.raw >/tmp/busy.out 2>/tmp/busy.err; then
        fail image-in-use "a second stick on y.raw started"
    else
        case "$(cat /tmp/busy.err)" in
        "vstick: LUN 0: /tmp/img/y.raw: "*"in use"*) ok image-in-use "$(cat /tmp/busy.err)" ;;
        *) fail image-in-use "stderr: $(tr '\n' ' ' </tmp/busy.err)" ;;
        esac
        expect_eq image-in-use-one-line "$(wc -l </tmp/busy.err)" 1
    fi
fi

# --- a second stick at the same time ---------------------------------------------------------

head -c $((1024 * 1024)) /dev/urandom >/tmp/pattern
plug second /tmp/second.out --disk /tmp/img/z.raw || finish
SECOND_PID=$STICK_PID
disk2=$(lun_dev /tmp/second.out 0)
if [ "$MODE" = vstick ]; then
    EXPECT_USB_ID=1209:0001 EXPECT_USB_MANUFACTURER=vstick EXPECT_USB_PRODUCT="vstick USB stick"
    usb2=$(readlink -f /sys/block/$disk2/device | sed 's|/[^/]*:1\.0/.*||')
    EXPECT_USB_SERIAL=$DEFAULT_SERIAL
    expect_usb_identity second "$usb2"
    expect_eq second-no-serial-warning "$(grep -c WARN /tmp/second.out.err)" 0
    port2=$(vhci_port /tmp/second.out)
    if [ -n "$port2" ] && [ "$port2" != "$port1" ]; then ok second-own-port "$port1 and $port2"; else
        fail second-own-port "'$port1' and '$port2'"
    fi
fi
if [ -n "$disk2" ] && [ "$disk2" != "$disk" ] && dd if=/tmp/pattern of="/dev/$disk2" bs=64k conv=fsync 2>/dev/null; then
    echo 3 >/proc/sys/vm/drop_caches
    expect_eq second-readback "$(dd if="/dev/$disk2" bs=64k count=16 2>/dev/null | md5sum | cut -d' ' -f1)" \
        "$(md5sum </tmp/pattern | cut -d' ' -f1)"
else
    fail second-readback "no second disk ('$disk2') or the write failed"
fi
unplug second /tmp/second.out "$SECOND_PID" "$disk2"
# The first stick is still there and answers.
expect_eq first-still-there "$(dd if="/dev/$disk" bs=512 count=1 skip=0 2>/dev/null | wc -c)" 512

# --- unplug: the devices go, the image has the file ------------------------------------------

unplug first /tmp/first.out "$FIRST_PID" "$cd_dev" "$disk"
[ "$MODE" != vstick ] || show_log /tmp/first.out.err
if [ -z "$written" ]; then
    fail file-in-image "nothing was written"
elif mount -t vfat -o loop,ro /tmp/img/y.raw /mnt/check; then
    expect_eq file-in-image "$(md5sum /mnt/check/RANDOM.BIN | cut -d' ' -f1)" "$written"
    umount /mnt/check
else
    fail file-in-image "cannot loop-mount y.raw"
fi

# --- the kernel drops the device: vstick says so and fails (vstick only) ---------------------

if [ "$MODE" = vstick ]; then
    plug dropped /tmp/drop.out --cdrom /tmp/img/x.iso || finish
    port=$(vhci_port /tmp/drop.out)
    echo "$port" >$VHCI/detach # what `usbip detach -p PORT` does
    rc=0
    wait "$STICK_PID" || rc=$?
    if [ "$rc" -ne 0 ]; then ok dropped-exit-status "$rc"; else fail dropped-exit-status "exit 0"; fi
    expect_eq dropped-message "$(grep '^vstick: ' /tmp/drop.out.err)" \
        "vstick: the kernel dropped the device on vhci-hcd port $port (it closed the connection); see dmesg"
fi

if dmesg | grep -qiE 'vhci.*(error|fail)|usbip.*(error|fail)'; then
    dmesg | grep -iE 'vhci|usbip' | tail -n 10 | sed 's/^/VSTICK-INFO dmesg: /'
fi
info "guest checks done at $(uptime_s)s"
finish
GUEST

# The second stick's default serial: 64-bit FNV-1a of its image's path, 16 hex digits
# (vstick_usb::serial_from_seed), computed independently here.
default_serial=$(python3 -c '
h = 0xcbf29ce484222325
for b in b"/tmp/img/z.raw":
    h = ((h ^ b) * 0x100000001b3) % 2**64
print("%016X" % h)')

guest_rc=0
"$GUEST_TESTS/run-guest" --log "$work/console.log" --memory 768M \
    --env "MODE=$MODE" --env "RANDOM_MB=4" --env "DEFAULT_SERIAL=$default_serial" \
    --env "README_MD5=$(md5_of "$tree/README.TXT")" \
    --env "RANDOM_MD5=$(md5_of "$tree/nested/random.bin")" \
    "${files[@]}" "$work/in-guest-local.sh" || guest_rc=$?

note "local ($MODE): guest rc=$guest_rc, $((SECONDS - started)) s"
[ "$guest_rc" -eq 0 ]
