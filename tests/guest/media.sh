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
started=$SECONDS

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

guest_env=(
    --env "RO_BYTES=$RO_BYTES" --env "RO_MD5=$ro_md5"
    --env "BIG_BYTES=$BIG_BYTES" --env "DVD_BYTES=$DVD_BYTES"
)

case "$MODE" in
vstick)
    port=$(free_port)
    start_vstick "$work/vstick.log" --usbredir "127.0.0.1:$port" \
        --disk-ro "$work/ro.raw" --disk "$work/big.raw" \
        --cdrom "$work/small.iso" --cdrom "$work/dvd.iso" --control "$work/ctl.sock" -v || exit 1
    hook=(--host-hook "$GUEST_TESTS/lib/vstick-media-hook $(vstick_bin) $work/ctl.sock $work/other.iso")
    device_args=(
        -chardev "socket,id=r0,host=127.0.0.1,port=$port,reconnect=1"
        -device usb-redir,chardev=r0,bus=xhci.0
    )
    ;;
qemu)
    hook=(--host-hook "$GUEST_TESTS/lib/qemu-media-hook $work/monitor.sock $work/other.iso")
    device_args=(
        -drive "if=none,id=d0,file=$work/ro.raw,format=raw,readonly=on"
        -drive "if=none,id=d1,file=$work/big.raw,format=raw"
        -drive "if=none,id=c2,file=$work/small.iso,format=raw,media=cdrom,readonly=on"
        -drive "if=none,id=c3,file=$work/dvd.iso,format=raw,media=cdrom,readonly=on"
        -device usb-bot,id=bot0,bus=xhci.0
        -device scsi-hd,bus=bot0.0,scsi-id=0,lun=0,drive=d0
        -device scsi-hd,bus=bot0.0,scsi-id=0,lun=1,drive=d1
        -device scsi-cd,bus=bot0.0,scsi-id=0,lun=2,drive=c2
        -device scsi-cd,bus=bot0.0,scsi-id=0,lun=3,drive=c3
        -monitor "unix:$work/monitor.sock,server=on,wait=off"
    )
    ;;
*) echo "unknown VSTICK_GUEST_DEVICE=$MODE" >&2; exit 2 ;;
esac

guest_rc=0
"$GUEST_TESTS/run-guest" --log "$work/console.log" "${guest_env[@]}" "${hook[@]}" \
    "$GUEST_TESTS/in-guest/media.sh" -- "${device_args[@]}" || guest_rc=$?

if [ "$MODE" = vstick ]; then
    stop_vstick
    [ "$guest_rc" -eq 0 ] || tail -n 30 "$work/vstick.log" | sed 's/^/    vstick: /'
fi

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

note "media ($MODE): guest rc=$guest_rc, host failures=$HOST_FAILURES, $((SECONDS - started)) s"
[ "$guest_rc" -eq 0 ] && [ "$HOST_FAILURES" -eq 0 ]
