#!/usr/bin/env bash
# Copy-on-write snapshots and 4096-byte logical blocks (issue 5):
#   vstick serve --snapshot-keep kept.raw --block-size 4096 --disk base.raw
# The guest sees 4 KiB logical blocks, writes random data and reads it back after
# dropping caches; afterwards base.raw is byte-for-byte unchanged and kept.raw holds
# the guest's writes. Reference: QEMU's scsi-hd with snapshot=on and 4 KiB blocks.
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-lib.sh"

work=$(make_workdir "snapshot-$MODE")
trap 'stop_vstick >/dev/null 2>&1 || true' EXIT
started=$SECONDS

DISK_BYTES=$((32 << 20))
OFFSET_BLOCKS=1000 # in 4 KiB blocks
head -c "$DISK_BYTES" /dev/urandom >"$work/base.raw"
base_md5=$(md5_of "$work/base.raw")
guest_env=(--env "DISK_BYTES=$DISK_BYTES" --env "OFFSET_BLOCKS=$OFFSET_BLOCKS")

case "$MODE" in
vstick)
    port=$(free_port)
    start_vstick "$work/vstick.log" --usbredir "127.0.0.1:$port" --snapshot-keep "$work/kept.raw" \
        --block-size 4096 --disk "$work/base.raw" -v || exit 1
    device_args=(
        -chardev "socket,id=r0,host=127.0.0.1,port=$port,reconnect=1"
        -device usb-redir,chardev=r0,bus=xhci.0
    )
    ;;
qemu)
    device_args=(
        -drive "if=none,id=d0,file=$work/base.raw,format=raw,snapshot=on"
        -device usb-bot,id=bot0,bus=xhci.0
        -device scsi-hd,bus=bot0.0,scsi-id=0,lun=0,drive=d0,logical_block_size=4096,physical_block_size=4096
    )
    ;;
*) echo "unknown VSTICK_GUEST_DEVICE=$MODE" >&2; exit 2 ;;
esac

guest_rc=0
"$GUEST_TESTS/run-guest" --log "$work/console.log" "${guest_env[@]}" \
    "$GUEST_TESTS/in-guest/snapshot.sh" -- "${device_args[@]}" || guest_rc=$?
[ "$MODE" = vstick ] && stop_vstick

host_expect_eq base-unchanged "$(md5_of "$work/base.raw")" "$base_md5"
if [ "$MODE" = vstick ]; then
    written=$(guest_value "$work/console.log" written_md5)
    if [ -f "$work/kept.raw" ]; then
        got=$(dd if="$work/kept.raw" bs=4096 skip=$OFFSET_BLOCKS count=1024 2>/dev/null | md5sum | cut -d' ' -f1)
        host_expect_eq kept-has-guest-writes "$got" "$written"
        host_expect_eq kept-size "$(stat -c %s "$work/kept.raw")" "$DISK_BYTES"
        # Outside the written range the kept image equals the base.
        host_expect_eq kept-rest-is-base "$(head -c $((OFFSET_BLOCKS * 4096)) "$work/kept.raw" | md5sum | cut -d' ' -f1)" \
            "$(head -c $((OFFSET_BLOCKS * 4096)) "$work/base.raw" | md5sum | cut -d' ' -f1)"
    else
        host_fail kept-has-guest-writes "no kept.raw after exit"
    fi
fi

note "snapshot ($MODE): guest rc=$guest_rc, host failures=$HOST_FAILURES, $((SECONDS - started)) s"
[ "$guest_rc" -eq 0 ] && [ "$HOST_FAILURES" -eq 0 ]
