# In-guest half of scripts/demo: show, in plain words, what a Linux machine sees when
# the vstick is plugged in. Output is for humans (run-guest --show-console).

say() { echo "$*"; }
section() { echo; echo "── $* ──"; }

say "Linux $(uname -r) booted in $(uptime_s)s; waiting for the USB stick..."
have_any_usb_block() { have_usb_block sd || have_usb_block sr; }
if ! wait_for 30 have_any_usb_block; then
    say "no USB storage appeared within 30 s"
    dmesg | tail -n 20
    exit 1
fi
wait_for 10 have_usb_block sr || true
usleep 500000 # let the remaining LUNs settle

section "USB devices (like lsusb)"
for dev in /sys/bus/usb/devices/*; do
    [ -f "$dev/idVendor" ] || continue
    # Skip the virtual root hubs.
    [ "$(cat "$dev/idVendor")" = 1d6b ] && continue
    printf 'Bus %03d Device %03d: ID %s:%s %s %s (USB %s, %s Mb/s)\n' \
        "$(cat "$dev/busnum")" "$(cat "$dev/devnum")" "$(cat "$dev/idVendor")" "$(cat "$dev/idProduct")" \
        "$(cat "$dev/manufacturer" 2>/dev/null)" "$(cat "$dev/product" 2>/dev/null)" \
        "$(cat "$dev/version" | tr -d ' ')" "$(cat "$dev/speed")"
    [ -f "$dev/serial" ] && say "    serial number: $(cat "$dev/serial")"
    for intf in "$dev"/*:*; do
        [ -f "$intf/bInterfaceClass" ] || continue
        say "    interface ${intf##*/}: class $(cat "$intf/bInterfaceClass") (08 = mass storage)," \
            "subclass $(cat "$intf/bInterfaceSubClass") (06 = SCSI), protocol $(cat "$intf/bInterfaceProtocol") (50 = Bulk-Only)," \
            "driver $(basename "$(readlink "$intf/driver" 2>/dev/null)")"
    done
done

section "SCSI devices behind it"
for dev in $(usb_block_devices sd) $(usb_block_devices sr); do
    lun=$(readlink -f "/sys/block/$dev/device")
    vendor=$(sg_inq "/dev/$dev" 2>/dev/null | sed -n 's/^ *Vendor identification: *//p')
    product=$(sg_inq "/dev/$dev" 2>/dev/null | sed -n 's/^ *Product identification: *//p')
    rev=$(sg_inq "/dev/$dev" 2>/dev/null | sed -n 's/^ *Product revision level: *//p')
    size=$(($(cat /sys/block/$dev/size) * 512))
    if [ "$size" -ge 10485760 ]; then human="$((size / 1048576)) MiB"; else human="$((size / 1024)) KiB"; fi
    say "/dev/$dev  LUN ${lun##*:}  '$vendor' '$product' rev '$rev'  $human  removable=$(cat /sys/block/$dev/removable)"
done

section "/proc/partitions"
cat /proc/partitions

mkdir -p /mnt/cd /mnt/disk
cd_dev=$(usb_block_devices sr | head -n 1)
if [ -n "$cd_dev" ]; then
    section "the CD-ROM (/dev/$cd_dev)"
    if mount -t iso9660 -o ro "/dev/$cd_dev" /mnt/cd; then
        grep "/mnt/cd" /proc/mounts
        # Volume identifier: primary volume descriptor (sector 16) bytes 40..71 (ECMA-119 8.4.6).
        say "volume label: $(dd if="/dev/$cd_dev" bs=1 skip=$((16 * 2048 + 40)) count=32 2>/dev/null | tr -d ' ')"
        (cd /mnt/cd && find . | sort | sed 's/^/  /')
        if [ -f /mnt/cd/README.txt ]; then
            say "cat /mnt/cd/README.txt:"
            sed 's/^/  | /' /mnt/cd/README.txt
        fi
        umount /mnt/cd
    else
        say "mounting /dev/$cd_dev failed"
    fi
fi

disk_dev=$(usb_block_devices sd | head -n 1)
if [ -n "$disk_dev" ]; then
    section "the disk (/dev/$disk_dev)"
    part=/dev/$disk_dev
    [ -b "/dev/${disk_dev}1" ] && part=/dev/${disk_dev}1
    if mount -t vfat -o iocharset=utf8 "$part" /mnt/disk; then
        grep "/mnt/disk" /proc/mounts
        df -h /mnt/disk | sed 's/^/  /'
        (cd /mnt/disk && find . | sort | sed 's/^/  /')
        [ -f /mnt/disk/hello.txt ] && say "cat hello.txt: $(cat /mnt/disk/hello.txt)"
        echo "Written by Linux $(uname -r) in the demo guest." > /mnt/disk/from-guest.txt
        say "wrote from-guest.txt"
        umount /mnt/disk
    else
        say "mounting $part as vfat failed"
    fi
fi
echo
exit 0
