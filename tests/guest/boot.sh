#!/usr/bin/env bash
# Acceptance test of booting from the device: real firmware (SeaBIOS, OVMF) finds a GRUB
# medium on the USB device, GRUB loads the guest kernel and initramfs from it, and the
# booted Linux then reads every LUN through the same device (the firmware's resets must
# not have wedged it). QEMU gets no -kernel: the firmware has to boot from USB.
#
#   tests/guest/boot.sh                          # served by vstick (default)
#   VSTICK_GUEST_DEVICE=qemu tests/guest/boot.sh # QEMU's own usb-bot (reference)
#   BOOT_CASES="ovmf-cdrom seabios-skip" tests/guest/boot.sh   # a subset ("all": every case)
#
# Cases (FIRMWARE-WHAT):
#   seabios-cdrom, ovmf-cdrom   grub-mkrescue hybrid ISO served as a CD-ROM (El Torito)
#   seabios-disk, ovmf-disk     the same ISO served as a read-only disk (the MBR / ESP of a
#                               hybrid image, as if written to a stick)
#   seabios-skip, ovmf-skip     bad media first: LUN 0 a blank disk, LUN 1 a "CD" too small
#                               for El Torito (READ of LBA 17 fails), LUN 2 an ISO made by
#                               `vstick iso create --boot --efi-boot` (GRUB core images, no
#                               grub-mkrescue); the firmware must give up on LUNs 0 and 1 and
#                               boot LUN 2 of the same device
#   ovmf-3tib                   the hybrid image at the start of a sparse 3 TiB disk:
#                               READ CAPACITY(16) and READ(16) in the firmware
#   seabios-authored, ovmf-authored   the vstick-authored ISO alone (not in the default set:
#                               the skip cases boot it already)
# Default: those but the *-authored against vstick; against the reference (which proves the
# checks, and costs ~20 s a boot under TCG) seabios-skip and ovmf-cdrom, one per firmware.
# Every case but ovmf-skip passes against the reference too: QEMU's usb-bot cannot boot
# LUN >= 1 under OVMF (EDK2's SCSI-2 LUN field in CDB byte 1 reads as RDPROTECT there,
# 05/24/00, and OVMF hangs).
# Environment: BOOT_TIMEOUT (s per boot, default 150), BOOT_USB_SIGATT_MS (see boot-lib.sh),
# BOOT_HASH_BYTES (prefix of each LUN the guest hashes; default: the GRUB ISO's size).
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-lib.sh"
. "$GUEST_TESTS/lib/boot-lib.sh"

BOOT_TIMEOUT=${BOOT_TIMEOUT:-150}
DEFAULT_CASES="seabios-cdrom seabios-disk ovmf-cdrom ovmf-disk seabios-skip ovmf-skip ovmf-3tib"
ALL_CASES="$DEFAULT_CASES seabios-authored ovmf-authored"

case "$MODE" in
vstick) default_cases=$DEFAULT_CASES; vendor=vstick ;;
qemu) default_cases="seabios-skip ovmf-cdrom"; vendor=QEMU ;;
*) echo "unknown VSTICK_GUEST_DEVICE=$MODE" >&2; exit 2 ;;
esac
cases=${BOOT_CASES:-$default_cases}
[ "$cases" = all ] && cases=$ALL_CASES

for tool in grub-mkrescue grub-mkimage xorriso mkfs.vfat mmd; do
    command -v "$tool" >/dev/null || { echo "boot: $tool missing (scripts/install-deps)"; exit 1; }
done
[ -r "$OVMF_CODE" ] || { echo "boot: no $OVMF_CODE (package ovmf)"; exit 1; }

work=$(make_workdir "boot-$MODE")
trap 'stop_vstick >/dev/null 2>&1 || true' EXIT
started=$SECONDS

# --- media -------------------------------------------------------------------------------

mapfile -t built < <("$GUEST_TESTS/build-initramfs")
boot_build_initrd "$work/initrd" "${built[1]}" "$GUEST_TESTS/in-guest/boot.sh" || exit 1
boot_build_grub_iso "$work/grub.iso" "${built[0]}" "$work/initrd" || exit 1
truncate -s 8M "$work/blank.raw"
head -c 16384 /dev/zero >"$work/tiny.iso" # 8 blocks of 2048: LBA 17 is past the end
note "media ready: grub.iso $(($(stat -c %s "$work/grub.iso") >> 10)) KiB"
# Every LUN is hashed as far as the ISO goes: all of it where it is served, and the
# 3 TiB disk does not cost minutes.
HASH_BYTES=${BOOT_HASH_BYTES:-$(stat -c %s "$work/grub.iso")}
if [ "$MODE" = vstick ] && [ -z "${VSTICK_BIN:-}" ]; then
    # Build (or check) once, not once per case.
    VSTICK_BIN=$(vstick_bin) || exit 1
    export VSTICK_BIN
fi

need_big() {
    [ -e "$work/big.raw" ] && return 0
    cp --sparse=always "$work/grub.iso" "$work/big.raw" && truncate -s 3T "$work/big.raw"
}

need_authored() {
    [ -e "$work/authored.iso" ] && return 0
    local bin
    bin=$(vstick_bin) || return 1
    if ! "$bin" iso create --help 2>/dev/null | grep -q -- --efi-boot; then
        echo "no --boot/--efi-boot in vstick iso create" >"$work/authored.err"
        return 1
    fi
    boot_build_authored_tree "$work/authored-tree" "${built[0]}" "$work/initrd" &&
        "$bin" iso create "$work/authored-tree" -o "$work/authored.iso" --label VSTICKBOOT \
            --boot boot/grub/eltorito.img --boot-info-table --efi-boot boot/grub/efi.img \
            >"$work/authored.out" 2>"$work/authored.err"
}

# --- one boot ------------------------------------------------------------------------------

SUMMARY=()

# What the firmware logs must show for CASE (its FIRMWARE.serial / .debugcon).
check_firmware_log() { # case firmware luns
    local name=$1 fw=$2 luns=$3 serial=$work/$1.serial dbg=$work/$1.debugcon
    if [ "$fw" = seabios ]; then
        # SeaBIOS names every LUN it set up: "USB MSC vendor='vstick' product=... type=N".
        host_expect_eq "$name-firmware-luns" \
            "$(grep -a -c "USB MSC vendor='$vendor'" "$dbg")" "$luns"
        local last
        last=$(grep -a '^Booting from ' "$dbg" | grep -v 'Booting from 0000:' | tail -n 1) || true
        case "$name" in
        *-disk) host_expect_eq "$name-firmware-boot" "$last" "Booting from Hard Disk..." ;;
        *) host_expect_eq "$name-firmware-boot" "$last" "Booting from DVD/CD..." ;;
        esac
        if [ "$name" = seabios-skip ]; then
            # The blank disk and the tiny CD were tried, failed, and the firmware moved on.
            host_expect_eq "$name-blank-disk-skipped" \
                "$(grep -a -c 'Boot failed: not a bootable disk' "$dbg")" 1
            host_expect_eq "$name-tiny-cd-skipped" \
                "$(grep -a -c 'Boot failed: Could not read from CDROM' "$dbg")" 1
        fi
    else
        local started_line
        started_line=$(tr -d '\r' <"$serial" |
            grep -a -o 'BdsDxe: starting Boot[^"]*"[^"]*" from [^ ]*' | tail -n 1) || true
        case "$started_line" in
        *"/USB("*) host_ok "$name-firmware-boot" "$started_line" ;;
        *) host_fail "$name-firmware-boot" "no USB boot option started: '$started_line'" ;;
        esac
        if [ "$name" = ovmf-skip ]; then
            host_expect_eq "$name-bad-luns-skipped" \
                "$(tr -d '\r' <"$serial" | grep -a -c 'BdsDxe: failed to load Boot')" 2
        fi
    fi
    return 0
}

# run_case NAME FIRMWARE LUN...   LUN: cdrom=PATH | disk=PATH (read-only disk)
run_case() {
    local name=$1 fw=$2
    shift 2
    local luns=$# spec device_args=() lun=0 port
    note "case $name: $fw, $luns LUN(s): $*"
    case "$MODE" in
    vstick)
        local serve=()
        for spec in "$@"; do
            case "$spec" in
            cdrom=*) serve+=(--cdrom "${spec#*=}") ;;
            disk=*) serve+=(--disk-ro "${spec#*=}") ;;
            esac
        done
        port=$(free_port)
        # start_vstick records its own failure.
        start_vstick "$work/$name.vstick.log" --usbredir "127.0.0.1:$port" "${serve[@]}" -v || return 0
        # vstick listens before QEMU starts; reconnect=1 as in the README's attach line.
        qemu_redir_args device_args "host=127.0.0.1,port=$port" "" ",bootindex=0"
        ;;
    qemu)
        local bot=()
        for spec in "$@"; do
            case "$spec" in
            cdrom=*) bot+=("cd:${spec#*=}::,bootindex=$lun") ;;
            disk=*) bot+=("hd-ro:${spec#*=}::,bootindex=$lun") ;;
            esac
            lun=$((lun + 1))
        done
        qemu_bot_args device_args "${bot[@]}"
        ;;
    esac
    device_args+=(
        -fw_cfg "name=opt/vstick/luns,string=$luns"
        -fw_cfg "name=opt/vstick/hash-bytes,string=$HASH_BYTES"
    )

    boot_vm "$name" "$fw" "$BOOT_TIMEOUT" "$work" "${device_args[@]}"
    [ "$MODE" = vstick ] && stop_vstick
    local serial=$work/$name.serial
    SUMMARY+=("$name|$BOOT_OUTCOME|$BOOT_GRUB_SECS|$BOOT_SECS")
    if [ "$BOOT_OUTCOME" = "done" ] && grep -q -a VSTICK-BOOT-MARKER "$serial"; then
        host_ok "$name-boot" "marker after ${BOOT_SECS}s (GRUB at ${BOOT_GRUB_SECS}s)"
    else
        host_fail "$name-boot" "$BOOT_OUTCOME after ${BOOT_SECS}s; logs in $work/$name.*"
        echo "    serial (last 8 lines):"
        tr -d '\r' <"$serial" | sed 's/\x1b\[[0-9;=]*[A-Za-z]//g' | { grep -a -v '^$' || true; } |
            tail -n 8 | sed 's/^/      /'
        if [ -s "$work/$name.debugcon" ]; then
            echo "    debugcon (last 8 lines):"
            tail -n 8 "$work/$name.debugcon" | sed 's/^/      /'
        fi
        if [ "$MODE" = vstick ]; then
            echo "    vstick (last 8 lines):"
            tail -n 8 "$work/$name.vstick.log" | sed 's/^/      /'
        fi
        return 0
    fi
    check_firmware_log "$name" "$fw" "$luns"

    # The guest's own checks, then what it read from each LUN against the images.
    local rc
    rc=$(tr -d '\r' <"$serial" | sed -n 's/^VSTICK-GUEST-DONE rc=//p' | tail -n 1) || true
    host_expect_eq "$name-guest-checks" "$rc" 0
    lun=0
    for spec in "$@"; do
        local file=${spec#*=} pdt bytes want
        case "$spec" in
        cdrom=*) pdt=5; bytes=$(($(stat -c %s "$file") / 2048 * 2048)) ;;
        disk=*) pdt=0; bytes=$(($(stat -c %s "$file") / 512 * 512)) ;;
        esac
        want=$HASH_BYTES
        [ "$bytes" -lt "$want" ] && want=$bytes
        host_expect_eq "$name-lun$lun-read-by-os" "$(guest_value "$serial" "lun$lun")" \
            "$pdt $bytes $vendor $(head -c "$want" "$file" | md5sum | cut -d' ' -f1)"
        lun=$((lun + 1))
    done
    return 0
}

# --- the cases -------------------------------------------------------------------------------

for case_name in $cases; do
    case "$case_name" in
    seabios-cdrom | ovmf-cdrom) run_case "$case_name" "${case_name%%-*}" "cdrom=$work/grub.iso" ;;
    seabios-disk | ovmf-disk) run_case "$case_name" "${case_name%%-*}" "disk=$work/grub.iso" ;;
    seabios-skip | ovmf-skip)
        medium=$work/authored.iso
        if ! need_authored; then
            host_fail "$case_name-iso-create" "$(tr '\n' ' ' <"$work/authored.err" 2>/dev/null)"
            medium=$work/grub.iso # still test the skipping
        fi
        run_case "$case_name" "${case_name%%-*}" \
            "disk=$work/blank.raw" "cdrom=$work/tiny.iso" "cdrom=$medium"
        ;;
    ovmf-3tib)
        if need_big; then
            run_case "$case_name" ovmf "disk=$work/big.raw"
            if [ "$MODE" = vstick ]; then
                # The firmware's reads took the 16-byte path (opcodes 0x9E/0x10 and 0x88).
                host_expect_eq "$case_name-read-capacity-16" \
                    "$(grep -c 'opcode=158 ' "$work/$case_name.vstick.log" | grep -c -v '^0$')" 1
                host_expect_eq "$case_name-read-16" \
                    "$(grep -c 'opcode=136 ' "$work/$case_name.vstick.log" | grep -c -v '^0$')" 1
            fi
        else
            note "case $case_name skipped: cannot make a sparse 3 TiB file here"
        fi
        ;;
    seabios-authored | ovmf-authored)
        if need_authored; then
            run_case "$case_name" "${case_name%%-*}" "cdrom=$work/authored.iso"
        else
            host_fail "$case_name-iso-create" "$(tr '\n' ' ' <"$work/authored.err" 2>/dev/null)"
        fi
        ;;
    *) host_fail "unknown-case" "$case_name" ;;
    esac
done

echo "  case               outcome   GRUB at   total"
for row in "${SUMMARY[@]}"; do
    IFS='|' read -r name outcome grub total <<<"$row"
    printf '  %-18s %-9s %6ss %6ss\n' "$name" "$outcome" "$grub" "$total"
done
note "boot ($MODE): host failures=$HOST_FAILURES, $((SECONDS - started)) s"
[ "$HOST_FAILURES" -eq 0 ]
