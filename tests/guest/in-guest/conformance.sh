# In-guest half of tests/guest/conformance.sh: libiscsi's conformance suite over SG_IO
# (`iscsi-test-cu --dataloss -t LINUX /dev/sgN`) against each disk named in TARGETS,
# then the discard check on the TRIM disk.
# Environment:
#   TARGETS   space-separated NAME:VENDOR:BYTES:BLOCK_SIZE:SUITE, each disk found by its
#             INQUIRY vendor, size and logical block size; SUITE is the -t argument
#   TRIM      VENDOR:BYTES of the disk for the blkdiscard check ("" for none), with
#             TRIM_OFFSET and TRIM_LENGTH (bytes) the range to discard
#   SUITE_TIMEOUT   seconds after which a suite is killed (optional), so that one hung
#             device still leaves the others' summaries and its own log's end
# A script that sources this one (in-guest/gadget-conformance.sh) may define
# after_suites, run once the suites and the discard check are done, before finish.
want=$(echo "$TARGETS" | wc -w)
[ -z "$TRIM" ] || want=$((want + 1))
count_disks() { [ "$(usb_block_devices sd | wc -w)" -ge "$want" ]; }
if wait_for 60 count_disks; then
    ok enumerate "$(usb_block_devices sd | tr '\n' ' ')"
else
    fail enumerate "wanted $want disks, have: $(usb_block_devices sd | tr '\n' ' ')"
    finish
fi

# find_sg VENDOR BYTES [BLOCK_SIZE]: "sgN sdX" of the USB disk with that vendor and size.
find_sg() {
    for sg in /sys/class/scsi_generic/sg*; do
        dev=$sg/device
        [ -d "$dev/block" ] || continue
        vendor=$(sed 's/ *$//' "$dev/vendor")
        [ "$vendor" = "$1" ] || continue
        for b in "$dev"/block/*; do
            sd=${b##*/}
            [ "$(($(cat "/sys/block/$sd/size") * 512))" = "$2" ] || continue
            [ -z "${3:-}" ] || [ "$(cat "/sys/block/$sd/queue/logical_block_size")" = "$3" ] || continue
            echo "${sg##*/} $sd"
            return 0
        done
    done
    return 1
}

# usb-storage lets a command move at most max_sectors (1 MiB on SuperSpeed); SG_IO
# refuses larger ones before they reach the device, and some checks write 257 blocks
# of 4 KiB. Raise the limit (usb-storage's own sysfs knob) so the suite tests the device.
for dev in /sys/bus/scsi/devices/*/max_sectors; do
    echo 16384 >"$dev" 2>/dev/null || info "cannot raise $dev"
done

# run_suite NAME VENDOR BYTES BLOCK_SIZE SUITE: one iscsi-test-cu run; the results go
# to /tmp/NAME.result for the report below.
run_suite() {
    # shellcheck disable=SC2046 # "sgN sdX": two words wanted
    set -- "$@" $(find_sg "$2" "$3" "$4")
    if [ $# -ne 7 ]; then
        echo "missing" >"/tmp/$1.result"
        return
    fi
    start=$(uptime_s)
    # shellcheck disable=SC2086 # SUITE_TIMEOUT: "timeout SECONDS" or nothing
    ${SUITE_TIMEOUT:+timeout "$SUITE_TIMEOUT"} iscsi-test-cu --dataloss -n -t "$5" "/dev/$6" 2>&1 |
        tr '\r' '\n' >"/tmp/$1.log"
    echo "$6 $(echo "$(uptime_s) $start" | awk '{printf "%d", $1 - $2}')" >"/tmp/$1.result"
}

# The devices are independent (one vstick process each, QEMU's own), so the suites run
# side by side; each waits mostly on USB round trips. (Only for them: a script that
# sources this one may have other background jobs.)
suites=""
for t in $TARGETS; do
    IFS=: read -r name vendor bytes bs suite <<EOT
$t
EOT
    run_suite "$name" "$vendor" "$bytes" "$bs" "$suite" &
    suites="$suites $!"
done
# shellcheck disable=SC2086 # a list of pids
wait $suites

for t in $TARGETS; do
    IFS=: read -r name vendor bytes bs suite <<EOT
$t
EOT
    read -r sg secs <"/tmp/$name.result"
    if [ "$sg" = missing ]; then
        fail "$name-found" "no /dev/sg for $vendor, $bytes bytes, $bs-byte blocks"
        continue
    fi
    # CUnit's run summary: "tests  TOTAL  RAN  PASSED  FAILED  INACTIVE"; a check
    # skipped as not implemented passes in CUnit and prints "[SKIPPED]" (count them).
    # shellcheck disable=SC2046 # the summary's columns as words
    set -- $(grep -E '^ +tests ' "/tmp/$name.log")
    total=${2:-0} passed=${4:-0} failed=${5:-?}
    skipped=$(grep -c '\[SKIPPED\]' "/tmp/$name.log")
    info "libiscsi $name (/dev/$sg, $vendor, $bs-byte blocks, -t $suite): $passed/$total passed, $failed failed, $skipped skipped, $secs s"
    value "$name-total" "$total"
    value "$name-failed" "$failed"
    value "$name-skipped" "$skipped"
    # What was skipped, and why (libiscsi's own words), so a new skip is named in the log.
    grep '\[SKIPPED\]' "/tmp/$name.log" | sed 's/^ *//' | sort | uniq -c | sort -rn | head -n 40 |
        sed "s/^ */VSTICK-INFO   $name skipped: /"
    # Each failed test with the checks that failed in it.
    grep -E 'had failures|^ +[0-9]+\. test_|FAIL' "/tmp/$name.log" | sort | uniq -c | sort -rn | head -n 30 |
        sed "s/^ */VSTICK-INFO   $name: /"
    if [ "$total" = 0 ] || [ "$failed" = "?" ]; then
        tail -n 20 "/tmp/$name.log" | sed "s/^/VSTICK-INFO   $name: /"
    fi
done

if [ -n "$TRIM" ]; then
    IFS=: read -r vendor bytes <<EOT
$TRIM
EOT
    # shellcheck disable=SC2046 # "sgN sdX": two words wanted
    set -- $(find_sg "$vendor" "$bytes")
    sd=$2
    mode_file=$(echo /sys/block/"$sd"/device/scsi_disk/*/provisioning_mode)
    info "trim disk /dev/$sd: provisioning_mode $(cat "$mode_file"), discard_max_bytes $(cat "/sys/block/$sd/queue/discard_max_bytes")"
    # usb-storage makes sd read the capacity with READ CAPACITY(10) first and skip the
    # VPD pages, so sd never sees LBPME: discard stays off until the user selects UNMAP.
    echo unmap >"$mode_file"
    expect_eq provisioning-mode "$(cat "$mode_file")" unmap
    info "after: discard_max_bytes $(cat "/sys/block/$sd/queue/discard_max_bytes"), granularity $(cat "/sys/block/$sd/queue/discard_granularity")"
    check blkdiscard blkdiscard -o "$TRIM_OFFSET" -l "$TRIM_LENGTH" "/dev/$sd"
    check sync-after-discard sync
    echo 3 >/proc/sys/vm/drop_caches
    zeros=$(dd if="/dev/$sd" bs=1M skip=$((TRIM_OFFSET >> 20)) count=$((TRIM_LENGTH >> 20)) 2>/dev/null | tr -d '\000' | wc -c)
    expect_eq discarded-range-reads-zeros "$zeros" 0
fi
! command -v after_suites >/dev/null || after_suites
finish
