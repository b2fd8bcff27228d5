#!/usr/bin/env bash
# Copy-on-write snapshots and 4096-byte logical blocks (issue 5):
#   vstick serve --snapshot-keep kept.raw --block-size 4096 --disk base.raw
# The guest sees 4 KiB logical blocks, writes random data and reads it back after
# dropping caches; afterwards base.raw is byte-for-byte unchanged and kept.raw holds
# the guest's writes. Reference: QEMU's scsi-hd with snapshot=on and 4 KiB blocks.
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-lib.sh"

work=$(make_workdir "snapshot-$MODE")
trap 'stop_vstick >/dev/null 2>&1 || true' EXIT

DISK_BYTES=$((32 << 20))
OFFSET_BLOCKS=1000 # in 4 KiB blocks
head -c "$DISK_BYTES" /dev/urandom >"$work/base.raw"
base_md5=$(md5_of "$work/base.raw")
guest_env=(--env "DISK_BYTES=$DISK_BYTES" --env "OFFSET_BLOCKS=$OFFSET_BLOCKS")

device_args=()
case "$MODE" in
vstick)
    start_vstick_redir "$work/vstick.log" --snapshot-keep "$work/kept.raw" \
        --block-size 4096 --disk "$work/base.raw" -v || exit 1
    ;;
qemu)
    qemu_bot_args device_args \
        hd:"$work/base.raw":,snapshot=on:,logical_block_size=4096,physical_block_size=4096
    ;;
*) echo "unknown VSTICK_GUEST_DEVICE=$MODE" >&2; exit 2 ;;
esac

guest_rc=0
"$GUEST_TESTS/run-guest" --log "$work/console.log" "${guest_env[@]}" \
    "$GUEST_TESTS/in-guest/snapshot.sh" -- "${device_args[@]}" || guest_rc=$?
[ "$MODE" != vstick ] || stop_vstick_after_guest "$work" "$guest_rc"

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

host_finish "snapshot ($MODE)" "$guest_rc"
