#!/usr/bin/env bash
# SCSI conformance (issue 16): libiscsi's suite, `iscsi-test-cu --dataloss -t LINUX`,
# over SG_IO inside the guest, against vstick's disks (512- and 4096-byte blocks, a
# --disk-ro LUN, a --snapshot disk) and, in the same boot, QEMU's own usb-storage
# (scsi-hd). Prints both summaries; fails on any vstick failure, or on more checks
# skipped as not implemented on vstick's 512-byte disk than on QEMU's.
# Then thin provisioning: the guest discards a range of a vstick disk (blkdiscard, after
# `echo unmap > .../provisioning_mode`); the image's allocated size must shrink and the
# data outside the range stay as it was.
#
#   VSTICK_GUEST_DEVICE=qemu tests/guest/conformance.sh   # the reference: QEMU's devices only
#   VSTICK_CONFORMANCE_SUITE=LINUX.Unmap tests/guest/conformance.sh  # one suite (default LINUX)
# Time under TCG on 2 shared CPUs: ~5.5 min against vstick (the usbredir round trips of
# ~30000 commands), ~3 min against the reference.
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-lib.sh"
# shellcheck source=lib/conformance-lib.sh
. "$GUEST_TESTS/lib/conformance-lib.sh"

work=$(make_workdir "conformance-$MODE")
trap 'stop_all >/dev/null 2>&1 || true' EXIT

MiB=$((1 << 20))
# Sizes tell the disks apart in the guest (same vendor, same block size).
# 512-byte disks stay under 65536 blocks: above, WriteSame16.Unmap reads 65536 blocks
# in one SG_IO, more than usb-storage's max_sectors can be raised to (65535).
D512=$((24 * MiB)) DRO=$((18 * MiB)) D4K=$((56 * MiB)) SNAP=$((20 * MiB)) QEMU512=$((28 * MiB))
TRIM_BYTES=$((12 * MiB)) TRIM_OFFSET=$((2 * MiB)) TRIM_LENGTH=$((6 * MiB))
for f in d512:$D512 dro:$DRO d4k:$D4K snap:$SNAP q512:$QEMU512 qro:$DRO; do
    truncate -s "${f#*:}" "$work/${f%%:*}.raw"
done
# The discard disk is full of data, so every block is allocated before the guest starts.
head -c "$TRIM_BYTES" /dev/urandom >"$work/trim.raw"
trim_head=$(head -c "$TRIM_OFFSET" "$work/trim.raw" | md5sum | cut -d' ' -f1)
trim_tail=$(tail -c +$((TRIM_OFFSET + TRIM_LENGTH + 1)) "$work/trim.raw" | md5sum | cut -d' ' -f1)
trim_blocks_before=$(stat -c %b "$work/trim.raw")
snap_md5=$(md5_of "$work/snap.raw")

# A vstick device per block size / snapshot setting (those are per serve), each on its own
# usb-redir port.
PIDS=()
serve() { # LOG ARGS...
    local log=$1 id=r${#PIDS[@]}
    shift
    port=$(free_port)
    start_vstick "$log" --usbredir "127.0.0.1:$port" "$@" || exit 1
    device_args+=(-chardev "socket,id=$id,host=127.0.0.1,port=$port,reconnect=1"
        -device "usb-redir,chardev=$id,bus=xhci.0")
    PIDS+=("$VSTICK_PID")
    VSTICK_PID=""
}
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do
        VSTICK_PID=$pid
        stop_vstick
    done
    PIDS=()
}

SUITE=${VSTICK_CONFORMANCE_SUITE:-LINUX}
device_args=()
targets=()
case "$MODE" in
vstick)
    serve "$work/vstick-a.log" --disk "$work/d512.raw" --disk-ro "$work/dro.raw" --disk "$work/trim.raw"
    serve "$work/vstick-b.log" --block-size 4096 --disk "$work/d4k.raw"
    serve "$work/vstick-c.log" --snapshot --disk "$work/snap.raw"
    targets+=("vstick-512:vstick:$D512:512:$SUITE" "vstick-4096:vstick:$D4K:4096:$SUITE"
        "vstick-ro:vstick:$DRO:512:LINUX.ReadOnly" "vstick-snapshot:vstick:$SNAP:512:$SUITE")
    qemu_bot_args device_args hd:"$work/q512.raw"
    targets+=("qemu-512:QEMU:$QEMU512:512:$SUITE")
    trim="vstick:$TRIM_BYTES"
    ;;
qemu)
    # The reference summary (the same 512-byte disk vstick mode compares with), the
    # read-only checks, and the discard check against QEMU's own UNMAP. (QEMU's 4096-byte
    # and snapshot disks add nothing to the reference and take minutes under TCG.)
    qemu_bot_args device_args hd:"$work/q512.raw" hd-ro:"$work/qro.raw" hd:"$work/trim.raw":,discard=unmap
    targets+=("qemu-512:QEMU:$QEMU512:512:$SUITE" "qemu-ro:QEMU:$DRO:512:LINUX.ReadOnly")
    trim="QEMU:$TRIM_BYTES"
    ;;
*) echo "unknown VSTICK_GUEST_DEVICE=$MODE" >&2; exit 2 ;;
esac

# Two vCPUs (multi-threaded TCG): the suites run side by side in the guest and are
# bound by its CPU.
device_args+=(-smp 2)
guest_rc=0
"$GUEST_TESTS/run-guest" --log "$work/console.log" --memory 1G --timeout "${VSTICK_CONFORMANCE_TIMEOUT:-1200}" \
    --env "TARGETS=${targets[*]}" --env "TRIM=$trim" \
    --env "TRIM_OFFSET=$TRIM_OFFSET" --env "TRIM_LENGTH=$TRIM_LENGTH" \
    "$GUEST_TESTS/in-guest/conformance.sh" -- "${device_args[@]}" || guest_rc=$?
stop_all
if grep -q panicked "$work"/vstick-*.log 2>/dev/null; then
    host_fail vstick-no-panic "$(grep -h -m1 panicked "$work"/vstick-*.log)"
fi

conformance_report "$work/console.log" "${targets[@]}"
if [ "$MODE" = vstick ]; then
    conformance_compare_skips "$work/console.log" vstick-512 qemu-512 qemu
fi

# Discard: the image gave blocks back and kept the data outside the range.
trim_blocks_after=$(stat -c %b "$work/trim.raw")
freed=$(((trim_blocks_before - trim_blocks_after) * 512))
if [ "$freed" -ge $((TRIM_LENGTH * 3 / 4)) ]; then
    host_ok trim-image-shrank "$((trim_blocks_before * 512 / MiB)) MiB -> $((trim_blocks_after * 512 / MiB)) MiB allocated"
else
    host_fail trim-image-shrank "allocated $trim_blocks_before -> $trim_blocks_after 512-byte blocks ($freed bytes freed, want ~$TRIM_LENGTH)"
fi
host_expect_eq trim-data-before-range "$(head -c "$TRIM_OFFSET" "$work/trim.raw" | md5sum | cut -d' ' -f1)" "$trim_head"
host_expect_eq trim-data-after-range "$(tail -c +$((TRIM_OFFSET + TRIM_LENGTH + 1)) "$work/trim.raw" | md5sum | cut -d' ' -f1)" "$trim_tail"
host_expect_eq trim-range-zeros "$(dd if="$work/trim.raw" bs=1M skip=$((TRIM_OFFSET / MiB)) count=$((TRIM_LENGTH / MiB)) 2>/dev/null | tr -d '\000' | wc -c)" 0
host_expect_eq snapshot-base-unchanged "$(md5_of "$work/snap.raw")" "$snap_md5"

host_finish "conformance ($MODE)" "$guest_rc"
