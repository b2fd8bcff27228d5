# In-guest half of tests/guest/hostile.sh and tls.sh (busybox sh; helpers from guest-lib.sh):
# the one USB disk the host attached is formatted, written, read back after a cache drop.
# Environment from the host:
#   DISK_BYTES   size of the disk image
#   RANDOM_MB    size of the random file written to it
# Reports VSTICK-VALUE disk_file_md5 for the host to find the file in the image.

t0=$(uptime_s)
if wait_for 45 have_usb_block sd; then
    disk=$(usb_block_devices sd | head -n 1)
    ok enumerate "/dev/$disk at $(uptime_s)s (waited since ${t0}s)"
else
    fail enumerate "no USB disk after 45 s"
    dmesg | tail -n 30 | sed 's/^/VSTICK-INFO dmesg: /'
    finish
fi
expect_eq disk-size-bytes "$(blockdev --getsize64 /dev/$disk)" "$DISK_BYTES"
expect_eq disk-tur "$(tur_sense /dev/$disk)" 00/00/00

mkdir -p /mnt/disk
check disk-mkdosfs mkdosfs -F 32 -n VSTICK /dev/$disk
if ! mount -t vfat /dev/$disk /mnt/disk; then
    fail disk-mount "mount -t vfat /dev/$disk failed"
    dmesg | tail -n 20 | sed 's/^/VSTICK-INFO dmesg: /'
    finish
fi
ok disk-mount
write_disk_file /mnt/disk

# Read back from the device, not the page cache.
echo 3 >/proc/sys/vm/drop_caches
if mount -t vfat -o ro /dev/$disk /mnt/disk; then
    expect_eq disk-read-back "$(md5sum /mnt/disk/RANDOM.BIN | cut -d' ' -f1)" "$written_md5"
    umount /mnt/disk
else
    fail disk-read-back "remount failed"
fi
if dmesg | grep -qiE 'I/O error|reset high-speed USB device'; then
    dmesg | grep -iE 'I/O error|reset high-speed' | tail -n 5 | sed 's/^/VSTICK-INFO dmesg: /'
fi
finish
