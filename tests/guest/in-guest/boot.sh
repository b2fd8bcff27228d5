# shellcheck shell=sh
# In-guest half of tests/guest/boot.sh (busybox sh; helpers from guest-lib.sh).
#
# No -kernel here: the firmware (SeaBIOS or OVMF) booted GRUB from the USB device, and
# GRUB loaded this kernel and initramfs from it. Reaching this script is the boot test;
# what follows checks that the device the firmware used (and reset) still serves the OS.
#
# The host passes the expected number of LUNs through QEMU's fw_cfg
# (opt/vstick/luns) and reports per LUN, for the host to compare with the images:
#   VSTICK-VALUE lunN=<pdt> <bytes> <vendor> <md5 of the first min(bytes, HASH_BYTES)>

echo "VSTICK-BOOT-MARKER reached at $(uptime_s)s"

# fw_cfg in sysfs: the module travels in this test's own cpio (not the base image).
if ! err=$(insmod /lib/vstick/qemu_fw_cfg.ko 2>&1); then
    fail fw-cfg "insmod qemu_fw_cfg: $err"
    finish
fi
fw_cfg() { cat "/sys/firmware/qemu_fw_cfg/by_name/opt/vstick/$1/raw" 2>/dev/null; }
luns=$(fw_cfg luns)
hash_bytes=$(fw_cfg hash-bytes)
if [ -z "$luns" ] || [ -z "$hash_bytes" ]; then
    fail fw-cfg "no opt/vstick/luns or hash-bytes (got '$luns', '$hash_bytes')"
    finish
fi

usb_lun_count() { echo $(($(usb_block_devices sd | wc -w) + $(usb_block_devices sr | wc -w))); }
have_all_luns() { [ "$(usb_lun_count)" -ge "$luns" ]; }

if wait_for 40 have_all_luns; then
    ok enumerate "$luns LUN(s) at $(uptime_s)s"
else
    fail enumerate "after 40 s: sd='$(usb_block_devices sd)' sr='$(usb_block_devices sr)', want $luns"
    dmesg | tail -n 30 | sed 's/^/VSTICK-INFO dmesg: /'
    finish
fi

for dev in $(usb_block_devices sd) $(usb_block_devices sr); do
    sys=/sys/block/$dev
    # SCSI address H:C:T:L; L is the LUN.
    addr=$(readlink -f "$sys/device")
    lun=${addr##*:}
    pdt=$(cat "$sys/device/type")
    bytes=$(($(cat "$sys/size") * 512))
    vendor=$(sed 's/ *$//' "$sys/device/vendor")
    want=$hash_bytes
    [ "$bytes" -lt "$want" ] && want=$bytes
    # The host hashes the same prefix of the image; a read error shows as a mismatch.
    t0=$(uptime_s)
    sum=$(head -c "$want" "/dev/$dev" | md5sum | cut -d' ' -f1)
    info "lun$lun ($dev): $want bytes hashed from ${t0}s to $(uptime_s)s"
    value "lun$lun" "$pdt $bytes $vendor $sum"
done
finish
