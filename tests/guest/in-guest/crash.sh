# In-guest half of tests/guest/crash.sh (busybox sh; helpers from guest-lib.sh).
#
# One USB device, two disk LUNs: LUN 0 the data disk, LUN 1 an image on a host file system
# that fills up after a few MiB. Environment from the host:
#   FULL_FS_MB   size of that file system (0: no full-disk LUN)
#   SYNCED_FILES how many files to write and sync before the host kills vstick
# Reports VSTICK-VALUE synced_N=<md5> for each file the guest synced.

SECTOR_FILE=/tmp/sector.bin
dd if=/dev/zero of=$SECTOR_FILE bs=512 count=1 2>/dev/null

lun_of() { d=$(readlink -f "/sys/block/$1/device"); echo "${d##*:}"; }
disk_for_lun() { for d in $(usb_block_devices sd); do [ "$(lun_of "$d")" = "$1" ] && echo "$d"; done; }
usb_disks() { usb_block_devices sd | wc -w; }
want_disks=1
[ "${FULL_FS_MB:-0}" -gt 0 ] && want_disks=2
have_all_disks() { [ "$(usb_disks)" -ge "$want_disks" ]; }
no_usb_disks() { [ "$(usb_disks)" -eq 0 ]; }

# sense_of DEVICE SG_RAW_ARGS...: "KK/AA/QQ" of one command (00/00/00 for GOOD), like
# guest-lib's scsi_sense but for commands with a data-out stage.
sense_of() {
    dev=$1
    shift
    out=$(sg_raw -v "$dev" "$@" 2>&1)
    status=$?
    bytes=$(echo "$out" | sed -n '/Raw sense data/,$p' | sed 1d |
        grep -E '^ +([0-9a-f]{2} +)*[0-9a-f]{2} *$' | tr -s ' \n' ' ')
    if [ -z "$bytes" ]; then
        [ "$status" -eq 0 ] && echo 00/00/00 || echo "error:rc=$status"
        return
    fi
    # shellcheck disable=SC2086
    set -- $bytes
    key=$(printf '%02x' $((0x$3 & 0x0f)))
    shift 12
    echo "$key/$1/$2"
}

if wait_for 45 have_all_disks; then
    ok enumerate "$(usb_disks) USB disks at $(uptime_s)s"
else
    fail enumerate "wanted $want_disks USB disks, have: $(usb_block_devices sd)"
    finish
fi
data=$(disk_for_lun 0)

# --- a full host file system is a medium error for that command, nothing more ------------

if [ "$want_disks" = 2 ]; then
    full=$(disk_for_lun 1)
    info "full-disk LUN: /dev/$full on a ${FULL_FS_MB} MiB host file system"
    if out=$(dd if=/dev/urandom of=/dev/$full bs=1M count=$((FULL_FS_MB * 2)) oflag=direct 2>&1); then
        fail full-disk-write-fails "writing $((FULL_FS_MB * 2)) MiB succeeded: $out"
    else
        ok full-disk-write-fails "$(echo "$out" | grep -m1 -i error)"
    fi
    # WRITE(10) of one block at LBA 0x7800 (15 MiB, beyond what fits): MEDIUM ERROR,
    # WRITE ERROR (SBC-3: 03/0C/00).
    s=$(sense_of /dev/$full -s 512 -i $SECTOR_FILE 2a 00 00 00 78 00 00 00 01 00)
    expect_eq full-disk-sense "$s" 03/0c/00
    expect_eq full-disk-still-ready "$(tur_sense /dev/$full)" 00/00/00
    if dd if=/dev/$full of=/dev/null bs=1M count=4 iflag=direct 2>/dev/null; then
        ok full-disk-still-readable
    else
        fail full-disk-still-readable "reading 4 MiB failed"
    fi
fi

# --- synced files survive kill -9 of the server during writes ------------------------------

mkdir -p /mnt/d
check data-mkdosfs mkdosfs -F 32 -n CRASH /dev/$data
mount -t vfat /dev/$data /mnt/d || { fail data-mount "mount /dev/$data"; finish; }
i=1
while [ $i -le "$SYNCED_FILES" ]; do
    dd if=/dev/urandom of=/mnt/d/SYNCED$i.BIN bs=64k count=$((8 + i)) 2>/dev/null
    sync
    md5=$(md5sum /mnt/d/SYNCED$i.BIN | cut -d' ' -f1)
    value synced_$i "$md5"
    echo "$i $md5" >>/tmp/synced
    i=$((i + 1))
done
ok data-synced "$SYNCED_FILES files written and synced"

# Direct writes keep commands in flight on the device while the host kills the server.
(
    n=0
    while [ $n -lt 64 ] && dd if=/dev/urandom of=/mnt/d/UNSYNCED.BIN bs=256k count=4 seek=$((n * 4)) \
        conv=notrunc oflag=direct 2>/dev/null; do
        n=$((n + 1))
    done
) &
writer=$!
usleep 500000
info "asking the host to kill vstick at $(uptime_s)s"
host_request kill

if wait_for 30 no_usb_disks; then
    ok device-gone "at $(uptime_s)s"
else
    fail device-gone "the USB disks are still there 30 s after the kill"
fi
kill $writer 2>/dev/null
wait $writer 2>/dev/null
umount -l /mnt/d 2>/dev/null

if wait_for 60 have_all_disks; then
    ok device-back "$(usb_disks) USB disks at $(uptime_s)s"
else
    fail device-back "no USB disk 60 s after the restart"
    finish
fi
data=$(disk_for_lun 0)
echo 3 >/proc/sys/vm/drop_caches
if mount -t vfat /dev/$data /mnt/d; then
    ok data-remount
    ls -l /mnt/d | sed 's/^/VSTICK-INFO after restart: /'
    while read -r i want; do
        expect_eq synced-file-$i-intact "$(md5sum /mnt/d/SYNCED$i.BIN 2>&1 | cut -d' ' -f1)" "$want"
    done </tmp/synced
    # The restarted server takes new writes.
    dd if=/dev/urandom of=/mnt/d/AFTER.BIN bs=64k count=16 2>/dev/null
    sync
    value after_restart "$(md5sum /mnt/d/AFTER.BIN | cut -d' ' -f1)"
    umount /mnt/d
else
    fail data-remount "mount /dev/$data after the restart"
fi
finish
