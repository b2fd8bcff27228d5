# Helpers for in-guest test scripts (busybox sh). Sourced as /lib/vstick/guest-lib.sh.
#
# Output protocol (parsed by tests/guest/run-guest on the host):
#   VSTICK-CHECK <name> ok [detail]
#   VSTICK-CHECK <name> FAIL <detail>
#   VSTICK-VALUE <key>=<value>      a value the host driver compares afterwards
#   VSTICK-INFO <text>              free-form, for humans
# The script's exit status becomes the guest rc; use `finish` at the end.

VSTICK_FAILURES=0

ok() { # name [detail]
    name=$1
    shift
    echo "VSTICK-CHECK $name ok${*:+ $*}"
}

fail() { # name detail
    name=$1
    shift
    echo "VSTICK-CHECK $name FAIL ${*:-failed}"
    VSTICK_FAILURES=$((VSTICK_FAILURES + 1))
}

info() { echo "VSTICK-INFO $*"; }

value() { echo "VSTICK-VALUE $1=$2"; }

# check NAME COMMAND...: run a command; ok if it exits 0, FAIL with its output otherwise.
check() {
    name=$1
    shift
    if out=$("$@" 2>&1); then
        ok "$name"
    else
        fail "$name" "($*) -> $(echo "$out" | tail -n 3 | tr '\n' ' ')"
    fi
}

# expect_eq NAME ACTUAL EXPECTED
expect_eq() {
    if [ "$2" = "$3" ]; then
        ok "$1" "$2"
    else
        fail "$1" "got '$2', expected '$3'"
    fi
}

# expect_error NAME EXPECTED-LINE COMMAND...: the command fails with exactly that one
# line on stderr.
expect_error() {
    name=$1
    want=$2
    shift 2
    if "$@" >/tmp/err.out 2>/tmp/err.txt; then
        fail "$name" "succeeded"
        return
    fi
    expect_eq "$name" "$(cat /tmp/err.txt)" "$want"
}

# The kernel's last messages, and the end of a log file, as VSTICK-INFO lines.
dump_dmesg() { dmesg | tail -n 25 | sed 's/^/VSTICK-INFO dmesg: /'; }
show_log() { tail -n 15 "$1" | sed "s|^|VSTICK-INFO $1: |"; }

# Seconds since boot, for timings.
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# wait_for SECONDS COMMAND...: poll (every 0.2 s) until the command succeeds.
# usb-storage enumerates asynchronously (it also waits delay_use before scanning LUNs),
# so block devices appear some seconds after the modules load.
wait_for() {
    limit=$1
    shift
    tries=$((limit * 5))
    while [ $tries -gt 0 ]; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        usleep 200000
        tries=$((tries - 1))
    done
    return 1
}

# Block devices (sd*, sr*) whose SCSI host is usb-storage.
usb_block_devices() { # prefix (sd|sr)
    for dev in /sys/block/$1*; do
        [ -e "$dev" ] || continue
        # /sys/block/X/device -> .../usbN/N-P/N-P:1.0/hostH/targetH:0:0/H:0:0:L
        case "$(readlink -f "$dev/device")" in
        */usb*) echo "${dev##*/}" ;;
        esac
    done
}

have_usb_block() { [ -n "$(usb_block_devices "$1")" ]; }

# load_module NAME [PARAMS]: insmod one of the modules the image holds but does not load
# at boot (/etc/vstick-modules-optional, in dependency order: the gadget side, usbmon,
# virtio_blk), with the modules it needs, once.
load_module() {
    want=$1
    shift
    while read -r mod; do
        name=${mod##*/}
        name=${name%.ko}
        [ -d "/sys/module/$(echo "$name" | tr - _)" ] && continue
        if [ "$name" = "$want" ]; then
            insmod "$mod" "$@" || info "insmod $name failed"
            return
        fi
        case "$name" in usb-common | usbcore | udc-core | configfs | libcomposite) insmod "$mod" ;; esac
    done </etc/vstick-modules-optional
}

# USB interfaces of class 08 (mass storage).
mass_storage_interfaces() {
    for intf in /sys/bus/usb/devices/*:*; do
        [ -e "$intf/bInterfaceClass" ] || continue
        if [ "$(cat "$intf/bInterfaceClass")" = "08" ]; then
            echo "${intf##*/}"
        fi
    done
}

# scsi_sense DEVICE [sg_raw options] CDB...: send one command with sg_raw and print the
# outcome as "KK/AA/QQ" (sense key/ASC/ASCQ, hex), or "00/00/00" for GOOD status.
# Raw bytes rather than sg3_utils' decoded text: unambiguous and version-independent.
scsi_sense() {
    dev=$1
    shift
    out=$(sg_raw -v -o /dev/null "$dev" "$@" 2>&1)
    status=$?
    # With -v, sg_raw prints " Raw sense data (in hex), sb_len=18, ..." followed by lines
    # of hex byte pairs (no offset column).
    bytes=$(echo "$out" | sed -n '/Raw sense data/,$p' | sed 1d |
        grep -E '^ +([0-9a-f]{2} +)*[0-9a-f]{2} *$' | tr -s ' \n' ' ')
    if [ -z "$bytes" ]; then
        if [ "$status" -eq 0 ]; then
            echo "00/00/00"
        else
            echo "error:rc=$status:$(echo "$out" | tail -n 2 | tr '\n' ' ')"
        fi
        return
    fi
    # shellcheck disable=SC2086 # split the hex bytes into $1..$n
    set -- $bytes
    case "$1" in
    70 | 71) # fixed format (SPC-4 4.5.3): key byte 2, ASC byte 12, ASCQ byte 13
        key=$(printf '%02x' $((0x$3 & 0x0f)))
        shift 12
        triple="$key/$1/$2"
        ;;
    72 | 73) # descriptor format (SPC-4 4.5.2): key byte 1, ASC byte 2, ASCQ byte 3
        triple="$(printf '%02x' $((0x$2 & 0x0f)))/$3/$4"
        ;;
    *) triple="unknown-sense:$bytes" ;;
    esac
    # A failed command with an empty sense must not read as success.
    if [ "$triple" = 00/00/00 ]; then
        triple="no-sense-but-rc=$status"
    fi
    echo "$triple"
}

# TEST UNIT READY outcome as "KK/AA/QQ".
tur_sense() { scsi_sense "$1" 00 00 00 00 00 00; }

# expect_sense NAME LUN ACTUAL PATTERN...: ok when ACTUAL ("KK/AA/QQ") matches one of the
# shell patterns.
# QEMU_SENSE_QUIRK=1 is set only when the device is QEMU's own usb-bot (the reference that
# validates these checks): QEMU 7.2 answers the autosense REQUEST SENSE for LUN >= 1 with
# LOGICAL UNIT NOT SUPPORTED (05/25/00) although its scsi-cd built the right sense (seen
# with -trace scsi_req_build_sense). On such a LUN the real sense cannot be observed, so
# that answer is accepted there and marked as the quirk.
sense_matches() { # LUN ACTUAL PATTERN...
    lun=$1
    actual=$2
    shift 2
    wants_check_condition=1
    for pattern in "$@"; do
        # shellcheck disable=SC2254 # the pattern is meant to be a pattern
        case "$actual" in $pattern) return 0 ;; esac
        [ "$pattern" = 00/00/00 ] && wants_check_condition=0
    done
    # The quirk only garbles sense data: it can stand in for an expected error, never
    # for success.
    [ "${QEMU_SENSE_QUIRK:-0}" = 1 ] && [ "$lun" != 0 ] && [ "$actual" = 05/25/00 ] &&
        [ "$wants_check_condition" = 1 ]
}

expect_sense() { # NAME LUN ACTUAL PATTERN...
    name=$1
    lun=$2
    actual=$3
    shift 3
    if sense_matches "$lun" "$actual" "$@"; then
        case "$actual" in
        05/25/00) ok "$name" "05/25/00 (QEMU usb-bot LUN>=1 sense quirk; wanted $*)" ;;
        *) ok "$name" "$actual" ;;
        esac
    else
        fail "$name" "sense $actual, expected $*"
    fi
}

# wait_sense SECONDS DEVICE LUN PATTERN...: poll TEST UNIT READY until its outcome matches.
wait_sense() {
    limit=$(($1 * 5))
    dev=$2
    lun=$3
    shift 3
    while [ $limit -gt 0 ]; do
        last_sense=$(tur_sense "$dev")
        sense_matches "$lun" "$last_sense" "$@" && return 0
        usleep 200000
        limit=$((limit - 1))
    done
    return 1
}

# write_disk_file MOUNTPOINT: RANDOM_MB MiB of random bytes to MOUNTPOINT/RANDOM.BIN, then
# sync and unmount. Sets written_md5 and reports it as disk_file_md5 (host-lib.sh's
# host_check_disk_file finds the file in the image by it).
write_disk_file() {
    t_write=$(uptime_s)
    dd if=/dev/urandom of="$1/RANDOM.BIN" bs=1M count="$RANDOM_MB" 2>/dev/null
    written_md5=$(md5sum "$1/RANDOM.BIN" | cut -d' ' -f1)
    sync
    umount "$1"
    info "write ${RANDOM_MB} MiB + sync: $(awk "BEGIN{print $(uptime_s) - $t_write}")s"
    value disk_file_md5 "$written_md5"
}

# format_write_readback DEV LABEL: mkfs.vfat /dev/DEV, mount it, write RANDOM_MB MiB of
# random bytes to RANDOM.BIN, read them back after dropping the caches, unmount. Sets
# written to the file's md5 ("" when the disk could not be mounted).
format_write_readback() {
    written=""
    check disk-mkfs mkdosfs -n "$2" "/dev/$1"
    if mount -t vfat "/dev/$1" /mnt/disk; then
        ok disk-mount
        dd if=/dev/urandom of=/mnt/disk/RANDOM.BIN bs=1M count="$RANDOM_MB" 2>/dev/null
        written=$(md5sum /mnt/disk/RANDOM.BIN | cut -d' ' -f1)
        sync
        echo 3 >/proc/sys/vm/drop_caches
        expect_eq disk-readback "$(md5sum /mnt/disk/RANDOM.BIN | cut -d' ' -f1)" "$written"
        umount /mnt/disk
    else
        fail disk-mount "mount /dev/$1 failed"
        dump_dmesg
    fi
}

# expect_usb_identity PREFIX DIR: the USB device at sysfs DIR (/sys/bus/usb/devices/1-1)
# says what the host asked for. Checks PREFIX-usb-id against EXPECT_USB_ID ("vvvv:pppp",
# lower-case hex as sysfs prints it) and PREFIX-usb-manufacturer, -product, -serial
# against EXPECT_USB_MANUFACTURER, _PRODUCT, _SERIAL; an unset variable is not checked.
expect_usb_identity() {
    [ -z "${EXPECT_USB_ID+x}" ] ||
        expect_eq "$1-usb-id" "$(cat "$2/idVendor" 2>&1):$(cat "$2/idProduct" 2>&1)" "$EXPECT_USB_ID"
    [ -z "${EXPECT_USB_MANUFACTURER+x}" ] ||
        expect_eq "$1-usb-manufacturer" "$(cat "$2/manufacturer" 2>&1)" "$EXPECT_USB_MANUFACTURER"
    [ -z "${EXPECT_USB_PRODUCT+x}" ] ||
        expect_eq "$1-usb-product" "$(cat "$2/product" 2>&1)" "$EXPECT_USB_PRODUCT"
    [ -z "${EXPECT_USB_SERIAL+x}" ] ||
        expect_eq "$1-usb-serial" "$(cat "$2/serial" 2>&1)" "$EXPECT_USB_SERIAL"
}

# host_request WORDS...: ask the host driver to act (run-guest --host-hook) and wait (30 s
# at most) for the hook to finish. Sets host_rc to its exit status ("none" without a hook,
# "timeout" when no reply came) and host_reply to its output. run-guest sends the reply
# on ttyS1; the port is opened (raw, no echo) before the first request so that no reply
# arrives while it is closed (the UART drops what comes then).
host_request() {
    if [ -z "${HOST_REPLY_FD_OPEN:-}" ]; then
        exec 8</dev/ttyS1
        stty raw -echo <&8
        HOST_REPLY_FD_OPEN=1
    fi
    echo "VSTICK-HOST $*"
    host_rc=timeout
    host_reply=""
    while read -r -t 30 tag rc_word host_reply <&8; do
        case "$tag $rc_word" in
        "VSTICK-HOST-REPLY rc="*)
            host_rc=${rc_word#rc=}
            break
            ;;
        esac
    done
    info "host request '$*': rc=$host_rc $host_reply"
}

finish() {
    if [ "$VSTICK_FAILURES" -eq 0 ]; then
        info "all checks passed"
        exit 0
    fi
    info "$VSTICK_FAILURES check(s) failed"
    exit 1
}
