# In-guest half of tests/guest/basic.sh (busybox sh; helpers from guest-lib.sh).
#
# The host attached ONE USB mass-storage device with LUN 0 = writable disk (RAW image)
# and LUN 1 = CD-ROM (ISO). Environment from the host:
#   EXPECT_VENDOR      INQUIRY vendor identification ("vstick", or "QEMU" in qemu mode)
#   EXPECT_USB_ID, EXPECT_USB_MANUFACTURER, EXPECT_USB_PRODUCT, EXPECT_USB_SERIAL
#                      the USB device's idVendor:idProduct and strings (guest-lib.sh)
#   DISK_BYTES         size of the disk image
#   ISO_LONG_NAME      path (in the ISO) of a file with a long Unicode name
#   ISO_LONG_MD5       its md5
#   ISO_RANDOM_PATH    path (in the ISO) of a nested random file
#   ISO_RANDOM_MD5     its md5
#   RANDOM_MB          size of the random file the guest writes to the disk

#   USBIP_HOST/PORT/BUSID  when set, attach the device with the usbip tool first (USB/IP
#                      transport over QEMU user networking) and detach it at the end

if [ -n "${USBIP_HOST:-}" ]; then
    # QEMU user networking: fixed addresses, no DHCP client needed.
    ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
    info "usbip list: $(usbip --tcp-port "$USBIP_PORT" list -r "$USBIP_HOST" 2>&1 | tr -s ' \n' ' ')"
    if out=$(usbip --tcp-port "$USBIP_PORT" attach -r "$USBIP_HOST" -b "$USBIP_BUSID" 2>&1); then
        ok usbip-attach
    else
        fail usbip-attach "$out"
        finish
    fi
fi

t0=$(uptime_s)
info "waiting for the USB disk and CD-ROM (since ${t0}s)"
if wait_for 30 have_usb_block sd && wait_for 15 have_usb_block sr; then
    ok enumerate "sd and sr present at $(uptime_s)s"
else
    fail enumerate "after 45 s: sd='$(usb_block_devices sd)' sr='$(usb_block_devices sr)'"
    info "usb devices: $(ls /sys/bus/usb/devices | tr '\n' ' ')"
    dmesg | tail -n 30 | sed 's/^/VSTICK-INFO dmesg: /'
    finish
fi

disk=$(usb_block_devices sd)
cd_dev=$(usb_block_devices sr)

# --- one device, two LUNs ------------------------------------------------------------

intfs=$(mass_storage_interfaces)
expect_eq one-mass-storage-interface "$(echo "$intfs" | wc -w)" 1
expect_eq one-disk "$(echo "$disk" | wc -w)" 1
expect_eq one-cdrom "$(echo "$cd_dev" | wc -w)" 1
intf=$(echo "$intfs" | head -n 1)
# Both block devices must hang below that single interface (same SCSI host).
disk_path=$(readlink -f "/sys/block/$disk/device")
cd_path=$(readlink -f "/sys/block/$cd_dev/device")
case "$disk_path" in
*/"$intf"/*) ok disk-on-interface "$intf" ;;
*) fail disk-on-interface "$disk_path not below $intf" ;;
esac
case "$cd_path" in
*/"$intf"/*) ok cdrom-on-interface "$intf" ;;
*) fail cdrom-on-interface "$cd_path not below $intf" ;;
esac
# SCSI address H:C:T:L -> LUN 0 disk, LUN 1 CD in command-line order.
expect_eq disk-lun "${disk_path##*:}" 0
expect_eq cdrom-lun "${cd_path##*:}" 1
usbdev=${intf%:*}
info "usb device $usbdev: idVendor=$(cat /sys/bus/usb/devices/$usbdev/idVendor)" \
    "idProduct=$(cat /sys/bus/usb/devices/$usbdev/idProduct)" \
    "speed=$(cat /sys/bus/usb/devices/$usbdev/speed)" \
    "product='$(cat /sys/bus/usb/devices/$usbdev/product 2>/dev/null)'" \
    "protocol=$(cat /sys/bus/usb/devices/$intf/bInterfaceSubClass)/$(cat /sys/bus/usb/devices/$intf/bInterfaceProtocol)"
expect_usb_identity device /sys/bus/usb/devices/$usbdev
expect_eq interface-subclass-scsi "$(cat /sys/bus/usb/devices/$intf/bInterfaceSubClass)" 06
expect_eq interface-protocol-bot "$(cat /sys/bus/usb/devices/$intf/bInterfaceProtocol)" 50

# --- INQUIRY ---------------------------------------------------------------------------

inquiry_field() { # device field-label
    sg_inq "$1" 2>/dev/null | sed -n "s/^ *$2: *//p" | sed 's/ *$//'
}
expect_eq disk-inquiry-vendor "$(inquiry_field /dev/$disk 'Vendor identification')" "$EXPECT_VENDOR"
expect_eq cdrom-inquiry-vendor "$(inquiry_field /dev/$cd_dev 'Vendor identification')" "$EXPECT_VENDOR"
# PDT: 0 = direct access block device, 5 = CD/DVD (SPC-4 table 49).
expect_eq disk-inquiry-pdt "$(sg_inq "/dev/$disk" 2>/dev/null | sed -n 's/.*PDT=\([0-9]*\).*/\1/p' | head -n 1)" 0
expect_eq cdrom-inquiry-pdt "$(sg_inq "/dev/$cd_dev" 2>/dev/null | sed -n 's/.*PDT=\([0-9]*\).*/\1/p' | head -n 1)" 5
rmb=$(sg_inq "/dev/$cd_dev" 2>/dev/null | sed -n 's/.*RMB=\([0-9]\).*/\1/p' | head -n 1)
expect_eq cdrom-removable "$rmb" 1

# --- disk geometry and edges ---------------------------------------------------------------

expect_eq disk-size-bytes "$(blockdev --getsize64 /dev/$disk)" "$DISK_BYTES"
sectors=$(cat /sys/block/$disk/size) # always in 512-byte units
expect_eq disk-size-sysfs "$((sectors * 512))" "$DISK_BYTES"
readcap=$(sg_readcap "/dev/$disk" 2>&1)
last_lba=$(echo "$readcap" | sed -n 's/.*Last LBA=\([0-9]*\).*/\1/p')
block_len=$(echo "$readcap" | sed -n 's/.*Logical block length=\([0-9]*\).*/\1/p')
expect_eq disk-readcap "$last_lba/$block_len" "$((DISK_BYTES / 512 - 1))/512"

# The last sector through the block layer...
got=$(dd if=/dev/$disk bs=512 skip=$((sectors - 1)) count=1 iflag=direct 2>/dev/null | wc -c)
expect_eq disk-read-last-sector "$got" 512
# ...and by READ(10) directly: the last LBA reads, one past it is ILLEGAL REQUEST /
# LOGICAL BLOCK ADDRESS OUT OF RANGE (05/21/00, SBC-3 4.5).
lba_hex() { printf '%02x %02x %02x %02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
expect_sense disk-read10-last-lba 0 "$(scsi_sense "/dev/$disk" -r 512 28 00 $(lba_hex "$last_lba") 00 00 01 00)" 00/00/00
expect_sense disk-read10-past-end 0 "$(scsi_sense "/dev/$disk" -r 512 28 00 $(lba_hex $((last_lba + 1))) 00 00 01 00)" 05/21/00

# --- FAT32 on the disk: write, drop caches, read back ------------------------------------

mkdir -p /mnt/disk /mnt/cd
t=$(uptime_s)
check disk-mkdosfs mkdosfs -F 32 -n VSTICK /dev/$disk
if mount -t vfat -o iocharset=utf8 /dev/$disk /mnt/disk; then
    ok disk-mount-vfat
    dd if=/dev/urandom of=/mnt/disk/RANDOM.BIN bs=1M count="$RANDOM_MB" 2>/dev/null
    written_md5=$(md5sum /mnt/disk/RANDOM.BIN | cut -d' ' -f1)
    echo "written by the vstick guest test" > "/mnt/disk/Ünïcödé long name.txt"
    sync
    umount /mnt/disk
    # Forget every cached page so the re-read below really comes from the device.
    echo 3 > /proc/sys/vm/drop_caches
    t_write=$(uptime_s)
    if mount -t vfat -o iocharset=utf8 /dev/$disk /mnt/disk; then
        reread_md5=$(md5sum /mnt/disk/RANDOM.BIN | cut -d' ' -f1)
        expect_eq disk-file-roundtrip "$reread_md5" "$written_md5"
        check disk-long-name test -f "/mnt/disk/Ünïcödé long name.txt"
        umount /mnt/disk
    else
        fail disk-remount "mount after drop_caches failed"
    fi
    value disk_file_md5 "$written_md5"
    info "disk: format+write ${RANDOM_MB} MiB+sync in $(awk "BEGIN{print $t_write - $t}")s," \
        "re-read done at $(uptime_s)s"
else
    fail disk-mount-vfat "mount -t vfat /dev/$disk failed"
fi

# --- the CD-ROM --------------------------------------------------------------------------

readcap=$(sg_readcap "/dev/$cd_dev" 2>&1)
expect_eq cdrom-block-length "$(echo "$readcap" | sed -n 's/.*Logical block length=\([0-9]*\).*/\1/p')" 2048

# Rock Ridge (the default when present) gives the long name verbatim.
if mount -t iso9660 -o ro /dev/$cd_dev /mnt/cd; then
    ok cdrom-mount-iso9660
    expect_eq cdrom-rockridge-long-name "$(md5sum "/mnt/cd/$ISO_LONG_NAME" 2>&1 | cut -d' ' -f1)" "$ISO_LONG_MD5"
    expect_eq cdrom-random-file "$(md5sum "/mnt/cd/$ISO_RANDOM_PATH" 2>&1 | cut -d' ' -f1)" "$ISO_RANDOM_MD5"
    umount /mnt/cd
else
    fail cdrom-mount-iso9660 "mount -t iso9660 /dev/$cd_dev failed"
fi
# Joliet (Rock Ridge disabled): UCS-2 names, decoded with iocharset=utf8.
if mount -t iso9660 -o ro,norock,iocharset=utf8 /dev/$cd_dev /mnt/cd; then
    expect_eq cdrom-joliet-long-name "$(md5sum "/mnt/cd/$ISO_LONG_NAME" 2>&1 | cut -d' ' -f1)" "$ISO_LONG_MD5"
    umount /mnt/cd
else
    fail cdrom-mount-joliet "mount -o norock /dev/$cd_dev failed"
fi

# Writing must fail: the kernel refuses to open a CD-ROM for writing...
if dd if=/dev/zero of=/dev/$cd_dev bs=2048 count=1 conv=fsync 2>/dev/null; then
    fail cdrom-write-refused "dd to /dev/$cd_dev succeeded"
else
    ok cdrom-write-refused
fi
# ...and the device itself rejects WRITE(10). Correct answers for a read-only CD-ROM:
# INVALID COMMAND OPERATION CODE (05/20/00), an INCOMPATIBLE MEDIUM (05/30/xx) or
# DATA PROTECT / WRITE PROTECTED (07/27/xx).
expect_sense cdrom-write10-rejected 1 \
    "$(scsi_sense "/dev/$cd_dev" -s 2048 -i /dev/zero 2a 00 00 00 00 10 00 00 01 00)" \
    05/20/00 '05/30/*' '07/27/*' 

# --- eject --------------------------------------------------------------------------------

# Medium is unlocked (nothing mounted). START STOP UNIT with LoEj=1, Start=0 ejects.
expect_sense cdrom-ready-before-eject 1 "$(tur_sense /dev/$cd_dev)" 00/00/00
check cdrom-eject sg_start --eject "/dev/$cd_dev"
# NOT READY / MEDIUM NOT PRESENT (ASCQ may tell tray open/closed: 3A/00, 3A/01, 3A/02).
expect_sense cdrom-medium-not-present 1 "$(tur_sense /dev/$cd_dev)" '02/3a/*' 
# Not a check: opening /dev/srN makes Linux send START STOP UNIT "load" when the tray is
# open (cdrom autoclose), so whether a read now succeeds depends on whether the device
# can reload the ejected medium. Both behaviours are legitimate.
got=$(dd if=/dev/$cd_dev bs=2048 count=1 iflag=direct 2>/dev/null | wc -c)
info "read after eject (Linux closes the tray on open): $got bytes"
# The disk LUN is unaffected.
expect_sense disk-ready-after-eject 0 "$(tur_sense /dev/$disk)" 00/00/00

# --- media change driven from the host (vstick ctl / QEMU monitor) ------------------------

if [ "${HOST_MEDIA_CONTROL:-0}" = 1 ]; then
    # Linux may have reloaded the medium ejected above (opening an ejected CD closes the
    # tray), so start from a known state: the host removes the medium (nothing is
    # mounted, so it is not locked). First drain any pending UNIT ATTENTION (from that
    # reload), so the wait below sees the eject and not an older condition.
    wait_sense 10 /dev/$cd_dev 1 00/00/00 || info "CD-ROM not ready before host eject: $last_sense"
    host_request eject 1
    expect_eq host-eject-request "$host_rc" 0
    if wait_sense 20 /dev/$cd_dev 1 '02/3a/*'; then
        ok host-eject-medium-not-present "$last_sense${QEMU_SENSE_QUIRK:+ (QEMU sense quirk accepted)}"
    else
        fail host-eject-medium-not-present "TEST UNIT READY still $last_sense"
    fi

    # The host inserts a second ISO (one file, SECOND.TXT = "second medium"); the first
    # TUR reports the change (UNIT ATTENTION, 06/28/00), then the unit is ready.
    host_request insert 1
    expect_eq host-insert-request "$host_rc" 0
    if wait_sense 20 /dev/$cd_dev 1 00/00/00; then
        ok host-insert-ready
    else
        fail host-insert-ready "TEST UNIT READY still $last_sense"
    fi
    if mount -t iso9660 -o ro /dev/$cd_dev /mnt/cd; then
        expect_eq host-insert-content "$(cat /mnt/cd/SECOND.TXT 2>&1)" "second medium"
        # Mounted means locked (Linux sends PREVENT ALLOW MEDIUM REMOVAL on open), so a
        # polite eject from the host must be refused (the hook, vstick ctl or the QEMU
        # monitor, fails) and the medium stays present and readable.
        host_request eject 1
        case "$host_rc" in
        0 | none | timeout) fail host-eject-refused-while-locked "host eject rc=$host_rc: $host_reply" ;;
        *) ok host-eject-refused-while-locked "rc=$host_rc: $host_reply" ;;
        esac
        expect_sense host-eject-medium-still-present 1 "$(tur_sense /dev/$cd_dev)" 00/00/00
        echo 3 > /proc/sys/vm/drop_caches
        expect_eq host-eject-refused-content "$(cat /mnt/cd/SECOND.TXT 2>&1)" "second medium"
        umount /mnt/cd
    else
        fail host-insert-mount "mount after insert failed"
    fi
fi

if [ -n "${USBIP_HOST:-}" ]; then
    # usbip port lists "Port NN: <Port in Use>"; detach that port and see the disk go.
    vport=$(usbip port 2>/dev/null | sed -n 's/^Port \([0-9]*\):.*in Use.*/\1/p' | head -n 1)
    if [ -n "$vport" ] && usbip detach -p "$vport" >/dev/null 2>&1 &&
        wait_for 10 sh -c "! test -e /sys/block/$disk"; then
        ok usbip-detach "port $vport"
    else
        fail usbip-detach "port '$vport'; $(usbip port 2>&1 | tr -s ' \n' ' ')"
    fi
fi

info "guest checks done at $(uptime_s)s"
finish
