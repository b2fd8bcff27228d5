#!/usr/bin/env bash
# Media management (issue 5): one stick with four LUNs seen by a real Linux guest —
#   LUN 0  read-only disk (8 MiB of random data)      --disk-ro
#   LUN 1  3 TiB sparse writable disk                 --disk
#   LUN 2  small ISO (CD-ROM profile)                 --cdrom, swapped at runtime
#   LUN 3  5 GiB ISO (DVD-ROM profile, sparse tail)   --cdrom
# The guest checks the ro flag, sizes, the last sector of the big disk, the current MMC
# profiles, and mounts the other disc after the host's `vstick ctl insert 2 other.iso`.
# Afterwards the host checks the read-only image is unchanged and the big one still sparse.
#
#   tests/guest/media.sh                            # vstick
#   VSTICK_GUEST_DEVICE=qemu tests/guest/media.sh   # QEMU's usb-bot with the same LUNs
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-lib.sh"

work=$(make_workdir "media-$MODE")
trap 'stop_vstick >/dev/null 2>&1 || true' EXIT

RO_BYTES=$((8 << 20))
BIG_BYTES=$((3 << 40))
DVD_BYTES=$((5 << 30))

head -c "$RO_BYTES" /dev/urandom >"$work/ro.raw"
ro_md5=$(md5_of "$work/ro.raw")
truncate -s "$BIG_BYTES" "$work/big.raw"

mkiso() { # OUT LABEL FILE CONTENT
    local tree=$work/tree-$2
    mkdir -p "$tree"
    echo "$4" >"$tree/$3"
    xorriso -as mkisofs -quiet -J -R -V "$2" -o "$1" "$tree" 2>>"$work/xorriso.log"
}
mkiso "$work/small.iso" SMALL DISC.TXT "first disc"
mkiso "$work/other.iso" OTHER DISC.TXT "other disc"
mkiso "$work/dvd.iso" BIGDVD DVD.TXT "big dvd"
# A DVD-sized image: the file system is small, the medium is 5 GiB (a sparse tail).
truncate -s "$DVD_BYTES" "$work/dvd.iso"
note "media ready: ro 8 MiB, big 3 TiB sparse, small.iso, dvd.iso 5 GiB sparse"

device_args=()
guest_env=(
    --env "RO_BYTES=$RO_BYTES" --env "RO_MD5=$ro_md5"
    --env "BIG_BYTES=$BIG_BYTES" --env "DVD_BYTES=$DVD_BYTES"
)

case "$MODE" in
vstick)
    start_vstick_redir "$work/vstick.log" --disk-ro "$work/ro.raw" --disk "$work/big.raw" \
        --cdrom "$work/small.iso" --cdrom "$work/dvd.iso" --control "$work/ctl.sock" -v || exit 1
    hook=(--host-hook "$GUEST_TESTS/lib/vstick-media-hook $(vstick_bin) $work/ctl.sock $work/other.iso")
    ;;
qemu)
    hook=(--host-hook "$GUEST_TESTS/lib/qemu-media-hook $work/monitor.sock $work/other.iso")
    qemu_bot_args device_args hd-ro:"$work/ro.raw" hd:"$work/big.raw" cd:"$work/small.iso" cd:"$work/dvd.iso"
    qemu_monitor_args device_args "$work/monitor.sock"
    ;;
*) echo "unknown VSTICK_GUEST_DEVICE=$MODE" >&2; exit 2 ;;
esac

guest_rc=0
"$GUEST_TESTS/run-guest" --log "$work/console.log" "${guest_env[@]}" "${hook[@]}" \
    "$GUEST_TESTS/in-guest/media.sh" -- "${device_args[@]}" || guest_rc=$?

[ "$MODE" != vstick ] || stop_vstick_after_guest "$work" "$guest_rc"

host_expect_eq ro-image-unchanged "$(md5_of "$work/ro.raw")" "$ro_md5"
host_expect_eq big-image-size "$(stat -c %s "$work/big.raw")" "$BIG_BYTES"
# The guest wrote one sector at the very end; a non-sparse copy would be 3 TiB.
allocated=$(($(stat -c %b "$work/big.raw") * $(stat -c %B "$work/big.raw")))
if [ "$allocated" -lt $((16 << 20)) ]; then
    host_ok big-image-still-sparse "$allocated bytes allocated"
else
    host_fail big-image-still-sparse "$allocated bytes allocated"
fi
tail_marker=$(tail -c 512 "$work/big.raw" | tr -d '\0')
host_expect_eq big-image-last-sector "$tail_marker" "$(guest_value "$work/console.log" big_marker)"

host_finish "media ($MODE)" "$guest_rc"
