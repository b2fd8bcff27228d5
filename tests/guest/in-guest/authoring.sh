# In-guest half of tests/guest/authoring.sh (busybox sh; helpers from guest-lib.sh).
#
# The host attached one USB mass-storage device: LUN 0 = the FAT32 stick image made by
# `vstick image create` (read-only), LUN 1 = the ISO made by `vstick iso create`.
# Expected manifests are in /expected/{iso,fat}.manifest. Environment from the host:
#   ISO_LABEL, FAT_LABEL   volume labels
#   UNICODE_PATH/_MD5      a file with Unicode names and its md5 (checked through Joliet)
#   LONG_NAME              the 120-character file name (Joliet shows its first 64)

# Same format as the host's manifest(): "d ./path", "f md5 ./path", "l ./path -> target".
manifest() { # DIR [nolinks] [exclude-top-dir]
    (
        cd "$1" || exit 1
        find . -type d ! -name . | sed 's/^/d /'
        find . -type f -print0 | xargs -0 md5sum | sed 's/^\([0-9a-f]*\)  /f \1 /'
        if [ "${2:-}" != nolinks ]; then
            find . -type l | while IFS= read -r p; do echo "l $p -> $(readlink "$p")"; done
        fi
    ) | if [ -n "${3:-}" ]; then grep -v "^d \./$3\$"; else cat; fi | LC_ALL=C sort
}

# compare_manifest NAME KIND GOT_FILE: ok when identical; otherwise FAIL and print the
# guest's manifest for the host to diff.
compare_manifest() {
    if cmp -s "$3" "/expected/$2.manifest"; then
        ok "$1" "$(wc -l <"$3") entries identical"
    else
        fail "$1" "$(diff "/expected/$2.manifest" "$3" | grep -c '^[-+][dfl] ') lines differ"
        sed "s/^/VSTICK-MANIFEST $2 /" "$3"
    fi
}

info "waiting for the USB disk and CD-ROM"
if wait_for 30 have_usb_block sd && wait_for 15 have_usb_block sr; then
    ok enumerate "at $(uptime_s)s"
else
    fail enumerate "sd='$(usb_block_devices sd)' sr='$(usb_block_devices sr)'"
    finish
fi
disk=$(usb_block_devices sd)
cd_dev=$(usb_block_devices sr)
mkdir -p /mnt/cd /mnt/stick

# --- the ISO on sr0 ------------------------------------------------------------------------

expect_eq iso-label-findfs "$(findfs "LABEL=$ISO_LABEL" 2>&1)" "/dev/$cd_dev"
t=$(uptime_s)
if mount -t iso9660 -o ro /dev/$cd_dev /mnt/cd; then
    ok iso-mount-rockridge
    # `.rr_moved` holds the relocated 10-level path in the ISO 9660 tree; Rock Ridge shows
    # the directory in place and leaves the (empty) relocation directory visible.
    manifest /mnt/cd "" .rr_moved >/tmp/iso.manifest
    compare_manifest iso-tree-identical iso /tmp/iso.manifest
    info "ISO tree read in $(awk "BEGIN{print $(uptime_s) - $t}")s"
    umount /mnt/cd
else
    fail iso-mount-rockridge "mount -t iso9660 /dev/$cd_dev failed: $(dmesg | tail -n 3 | tr '\n' ' ')"
fi

# Joliet, as Windows reads it: Unicode names kept, names cut at 64 characters.
if mount -t iso9660 -o ro,norock,iocharset=utf8 /dev/$cd_dev /mnt/cd; then
    expect_eq iso-joliet-unicode "$(md5sum "/mnt/cd/$UNICODE_PATH" 2>&1 | cut -d' ' -f1)" "$UNICODE_MD5"
    short=$(echo "$LONG_NAME" | cut -c1-64)
    check iso-joliet-name-cut-at-64 test -f "/mnt/cd/$short"
    umount /mnt/cd
else
    fail iso-mount-joliet "mount -o norock /dev/$cd_dev failed"
fi

# --- the stick's partition on sdX1 ------------------------------------------------------------

part=/dev/${disk}1
if wait_for 10 test -b "$part"; then
    ok stick-partition "$part"
else
    fail stick-partition "no $part: $(cat /proc/partitions | tr '\n' ' ')"
    finish
fi
expect_eq stick-partition-start "$(cat /sys/block/$disk/${disk}1/start)" 2048
expect_eq stick-label-findfs "$(findfs "LABEL=$FAT_LABEL" 2>&1)" "$part"
t=$(uptime_s)
if mount -t vfat -o ro,iocharset=utf8 "$part" /mnt/stick; then
    ok stick-mount-vfat
    manifest /mnt/stick nolinks >/tmp/fat.manifest
    compare_manifest stick-tree-identical fat /tmp/fat.manifest
    info "stick tree read in $(awk "BEGIN{print $(uptime_s) - $t}")s"
    umount /mnt/stick
else
    fail stick-mount-vfat "mount -t vfat $part failed: $(dmesg | tail -n 3 | tr '\n' ' ')"
fi

finish
