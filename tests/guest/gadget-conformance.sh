#!/usr/bin/env bash
# SCSI conformance of `vstick serve --gadget` at SuperSpeed (issue 15): libiscsi's suite,
# `iscsi-test-cu --dataloss -t LINUX`, over SG_IO inside a guest whose dummy_hcd is a
# SuperSpeed device controller (is_super_speed=1, three UDCs), against, in one boot:
#   dummy_udc.0  vstick serve --gadget, a 512-byte-block disk
#   dummy_udc.2  vstick serve --gadget --block-size 4096 (the block size is per serve)
#   dummy_udc.1  Linux's f_mass_storage (configfs, one fixed disk), the reference
# The guest's own usb-storage enumerates all three; each link must be SuperSpeed (the
# UDC's current_speed, the USB device's speed 5000, 1024-byte bulk packets). Prints the
# summaries; fails on any vstick failure, or on more checks skipped as not implemented on
# vstick's 512-byte disk than on f_mass_storage's. f_mass_storage's own failures are
# printed, not counted.
#
#   VSTICK_GUEST_DEVICE=qemu tests/guest/gadget-conformance.sh   # the reference alone
#   VSTICK_CONFORMANCE_SUITE=LINUX.Read10 tests/guest/gadget-conformance.sh  # one suite
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-lib.sh"
# shellcheck source=lib/conformance-lib.sh
. "$GUEST_TESTS/lib/conformance-lib.sh"

work=$(make_workdir "gadget-conformance-$MODE")

MiB=$((1 << 20))
# Sizes tell the disks apart in the guest (with the INQUIRY vendor and block size);
# 512-byte disks stay under 65536 blocks (see conformance.sh).
V512=$((24 * MiB)) V4K=$((56 * MiB)) F512=$((28 * MiB))
SUITE=${VSTICK_CONFORMANCE_SUITE:-LINUX}
files=(--file "$GUEST_TESTS/in-guest/conformance.sh:/lib/vstick/conformance.sh")
case "$MODE" in
vstick)
    gadgets="0:vstick:$V512:512 2:vstick:$V4K:4096 1:fms:$F512"
    targets=("vstick-512:vstick:$V512:512:$SUITE" "vstick-4096:vstick:$V4K:4096:$SUITE"
        "fms-512:Linux:$F512:512:$SUITE")
    # A release build: in the guest the gadget's every transfer is vstick's work on the
    # emulated CPUs, and a debug build did not finish the suites in 20 minutes.
    if [ -n "${VSTICK_BIN:-}" ]; then
        bin=$VSTICK_BIN
    else
        note "cargo build --release -p vstick"
        (cd "$REPO" && cargo build --release -q -p vstick) || { host_fail vstick-build "cargo build --release failed"; exit 1; }
        bin=${CARGO_TARGET_DIR:-$REPO/target}/release/vstick
    fi
    guest_binary_files files "$bin" /usr/bin/vstick
    ;;
qemu)
    gadgets="1:fms:$F512"
    targets=("fms-512:Linux:$F512:512:$SUITE")
    ;;
*) echo "unknown VSTICK_GUEST_DEVICE=$MODE" >&2; exit 2 ;;
esac

guest_rc=0
"$GUEST_TESTS/run-guest" --log "$work/console.log" --memory 1G \
    --timeout "${VSTICK_CONFORMANCE_TIMEOUT:-1200}" \
    --env "UDCS=3" --env "GADGETS=$gadgets" --env "TARGETS=${targets[*]}" --env "TRIM=" \
    --env "SUITE_TIMEOUT=${VSTICK_SUITE_TIMEOUT:-900}" \
    "${files[@]}" "$GUEST_TESTS/in-guest/gadget-conformance.sh" -- -smp 2 || guest_rc=$?

conformance_report "$work/console.log" "${targets[@]}"
if [ "$MODE" = vstick ]; then
    conformance_compare_skips "$work/console.log" vstick-512 fms-512 f_mass_storage
    # f_mass_storage skips 172 checks, so the comparison above cannot notice a command
    # vstick stops implementing; the whole suite's own count can. 34 "[SKIPPED]" lines
    # measured on both disks with Debian 12's libiscsi 1.19 (the log lists them):
    # ORWRITE, WRITE ATOMIC(16), PERSISTENT RESERVE IN, multipath, LBPPB < 2, and a
    # writable disk's write-protect check.
    if [ "$SUITE" = LINUX ]; then
        for name in vstick-512 vstick-4096; do
            skipped=$(guest_value "$work/console.log" "$name-skipped")
            if [ -n "$skipped" ] && [ "$skipped" -le 34 ]; then
                host_ok "$name-skips-at-most-34" "$skipped"
            else
                host_fail "$name-skips-at-most-34" "${skipped:-none}"
            fi
        done
    fi
fi
host_finish "gadget-conformance ($MODE)" "$guest_rc"
