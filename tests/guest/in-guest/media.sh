# In-guest half of tests/guest/media.sh (busybox sh; helpers from guest-lib.sh).
# LUN 0 read-only disk, LUN 1 3 TiB disk, LUN 2 small ISO (swapped by the host),
# LUN 3 5 GiB ISO. Environment: RO_BYTES RO_MD5 BIG_BYTES DVD_BYTES.

# The block device of a LUN: /sys/block/X/device -> .../H:C:T:L
dev_of_lun() { # prefix lun
    for d in $(usb_block_devices "$1"); do
        case "$(readlink -f /sys/block/$d/device)" in
        *:"$2") echo "$d"; return ;;
        esac
    done
}
have_all() { [ "$(usb_block_devices sd | wc -w)" -ge 2 ] && [ "$(usb_block_devices sr | wc -w)" -ge 2 ]; }
bytes_of() { echo $(($(cat /sys/block/$1/size) * 512)); }
profile_of() { sg_get_config -c "/dev/$1" 2>&1 | sed -n 's/.*[Cc]urrent profile: *//p' | head -n 1; }

if wait_for 45 have_all; then
    ok enumerate "sd: $(usb_block_devices sd | tr '\n' ' ') sr: $(usb_block_devices sr | tr '\n' ' ')at $(uptime_s)s"
else
    fail enumerate "sd='$(usb_block_devices sd)' sr='$(usb_block_devices sr)'"
    dmesg | tail -n 30 | sed 's/^/VSTICK-INFO dmesg: /'
    finish
fi
ro=$(dev_of_lun sd 0)
big=$(dev_of_lun sd 1)
cd=$(dev_of_lun sr 2)
dvd=$(dev_of_lun sr 3)
info "LUN 0=$ro 1=$big 2=$cd 3=$dvd"
[ -n "$ro" ] && [ -n "$big" ] && [ -n "$cd" ] && [ -n "$dvd" ] || { fail lun-map "missing a LUN"; finish; }
count=$(ls -d /sys/bus/usb/devices/*/bInterfaceClass 2>/dev/null | xargs grep -l '^08$' | wc -l)
expect_eq one-usb-device "$count" 1

# --- LUN 0: read-only disk ------------------------------------------------------------------
expect_eq ro-flag "$(cat /sys/block/$ro/ro)" 1
expect_eq ro-size "$(bytes_of "$ro")" "$RO_BYTES"
expect_eq ro-content "$(dd if=/dev/$ro bs=1M 2>/dev/null | md5sum | cut -d' ' -f1)" "$RO_MD5"
if dd if=/dev/zero of=/dev/$ro bs=512 count=1 conv=fsync 2>/dev/null; then
    fail ro-write-refused "dd to /dev/$ro succeeded"
else
    ok ro-write-refused
fi
# WRITE(10) of one block at LBA 0, bypassing the kernel's ro flag.
expect_sense ro-write10-sense 0 "$(scsi_sense /dev/$ro -R -s 512 -i /dev/zero 2a 00 00 00 00 00 00 00 01 00)" 07/27/00

# --- LUN 1: 3 TiB disk ----------------------------------------------------------------------
expect_eq big-size "$(bytes_of "$big")" "$BIG_BYTES"
blocks=$(($(bytes_of "$big") / 512))
info "big: $(sg_readcap --16 /dev/$big 2>&1 | grep -iE 'last lba|logical block length' | tr -s ' \n' ' ')"
got=$(dd if=/dev/$big bs=512 skip=$((blocks - 1)) count=1 2>/dev/null | wc -c)
expect_eq big-last-sector-reads "$got" 512
if dd if=/dev/$big bs=512 skip=$blocks count=1 2>/dev/null | grep -q .; then
    fail big-past-end "read past the end returned data"
else
    ok big-past-end
fi
marker="vstick-last-sector-$(uptime_s)"
printf '%s' "$marker" | dd of=/dev/$big bs=512 seek=$((blocks - 1)) count=1 conv=sync,fsync 2>/dev/null
echo 3 >/proc/sys/vm/drop_caches
back=$(dd if=/dev/$big bs=512 skip=$((blocks - 1)) count=1 2>/dev/null | tr -d '\000')
expect_eq big-last-sector-write "$back" "$marker"
value big_marker "$marker"

# --- LUN 3: 5 GiB DVD -----------------------------------------------------------------------
expect_eq dvd-size "$(bytes_of "$dvd")" "$DVD_BYTES"
case "$(profile_of "$dvd")" in
*DVD-ROM*) ok dvd-profile "$(profile_of "$dvd")" ;;
*) fail dvd-profile "current profile '$(profile_of "$dvd")'" ;;
esac
got=$(dd if=/dev/$dvd bs=2048 skip=$(($(bytes_of "$dvd") / 2048 - 1)) count=1 2>/dev/null | wc -c)
expect_eq dvd-last-block-reads "$got" 2048
mkdir -p /mnt/dvd
if mount -t iso9660 -o ro /dev/$dvd /mnt/dvd 2>/dev/null; then
    expect_eq dvd-content "$(cat /mnt/dvd/DVD.TXT 2>&1)" "big dvd"
    umount /mnt/dvd
else
    fail dvd-mount "mount failed"
fi

# --- LUN 2: CD, swapped by the host while the guest polls -----------------------------------
case "$(profile_of "$cd")" in
*CD-ROM*) ok cd-profile "$(profile_of "$cd")" ;;
*) fail cd-profile "current profile '$(profile_of "$cd")'" ;;
esac
mkdir -p /mnt/cd
if mount -t iso9660 -o ro /dev/$cd /mnt/cd 2>/dev/null; then
    expect_eq cd-first-content "$(cat /mnt/cd/DISC.TXT 2>&1)" "first disc"
    umount /mnt/cd
else
    fail cd-first-mount "mount failed"
fi
# Media-change polling, as udev enables it on a desktop (the block layer sends GESN).
echo 500 >/sys/block/$cd/events_poll_msecs 2>/dev/null || info "no events_poll_msecs"
# Mounting locks the tray, and a host swap is (rightly) refused while it is locked: the
# request returns once the host's swap has landed; only then does the guest mount.
host_request insert 2
expect_eq host-insert-request "$host_rc" 0
swapped=""
tries=100
while [ $tries -gt 0 ]; do
    if mount -t iso9660 -o ro /dev/$cd /mnt/cd 2>/dev/null; then
        content=$(cat /mnt/cd/DISC.TXT 2>/dev/null)
        umount /mnt/cd
        if [ "$content" = "other disc" ]; then
            swapped=1
            break
        fi
    fi
    usleep 200000
    tries=$((tries - 1))
done
if [ -n "$swapped" ]; then
    ok cd-swap-content "other disc after $(((100 - tries) / 5)) s"
else
    fail cd-swap-content "still '$content' after 20 s"
fi
case "$(profile_of "$cd")" in
*CD-ROM*) ok cd-profile-after-swap ;;
*) fail cd-profile-after-swap "current profile '$(profile_of "$cd")'" ;;
esac
finish
