# shellcheck shell=bash
# shellcheck disable=SC2054,SC2178 # commas are QEMU's; _into is a nameref to an array
# QEMU argument blocks the guest tests share (bash). Sourced by host-lib.sh and run-guest.
# Each function appends to the array named by its first argument, so paths with spaces
# stay whole:
#   device_args=()
#   qemu_redir_args device_args "host=127.0.0.1,port=$port"
#   qemu_bot_args device_args hd:"$work/disk.raw" cd:"$work/test.iso"

# qemu_machine_args ARRAY MEMORY: the emulated PC every guest test boots: TCG (/dev/kvm is
# not assumed), no display or monitor, exit instead of reboot, one qemu-xhci controller
# with id "xhci" (devices attach to bus xhci.0).
qemu_machine_args() {
    local -n _into=$1
    _into+=(-accel tcg -m "$2" -display none -monitor none -no-reboot -device qemu-xhci,id=xhci)
}

# qemu_kernel_args ARRAY KERNEL INITRD CMDLINE: direct kernel boot.
qemu_kernel_args() {
    local -n _into=$1
    _into+=(-kernel "$2" -initrd "$3" -append "$4")
}

# qemu_redir_args ARRAY ADDRESS [CHARDEV_OPTIONS [DEVICE_OPTIONS]]: a usb-redir device on
# xhci.0 whose chardev connects to ADDRESS ("host=H,port=P" or "path=SOCKET").
# reconnect=1: QEMU retries every second until vstick accepts, so there is no start-up
# race. The options are appended as they are (",tls-creds=tls0", ",bootindex=0").
qemu_redir_args() {
    local -n _into=$1
    _into+=(-chardev "socket,id=r0,$2,reconnect=1${3:-}" -device "usb-redir,chardev=r0,bus=xhci.0${4:-}")
}

# qemu_spice_args ARRAY PORT [SPICE_OPTIONS [CHANNELS]]: QEMU's SPICE server on 127.0.0.1:PORT
# (ticketing off unless SPICE_OPTIONS say otherwise, e.g. ",password-secret=pw0") and CHANNELS
# (default 1) usb-redir devices on xhci.0 behind spicevmc usbredir channels (ids r0, r1, ...),
# the shape virt-manager gives a VM with SPICE graphics.
qemu_spice_args() {
    local -n _into=$1
    local i opts=${3-,disable-ticketing=on}
    _into+=(-spice "port=$2,addr=127.0.0.1$opts")
    for ((i = 0; i < ${4:-1}; i++)); do
        _into+=(-chardev "spicevmc,name=usbredir,id=r$i" -device "usb-redir,chardev=r$i,bus=xhci.0")
    done
}

# qemu_bot_args ARRAY SPEC...: QEMU's own usb-bot on xhci.0 (the reference device), one
# LUN per SPEC in order. SPEC is KIND:FILE[:DRIVE_OPTIONS[:DEVICE_OPTIONS]], KIND one of
#   hd     writable disk (scsi-hd)        drive id dN (N = the LUN)
#   hd-ro  read-only disk (scsi-hd)       drive id dN
#   cd     read-only CD/DVD (scsi-cd)     drive id cN (qemu-media-hook's name for LUN N)
#   bot    no LUN: options of the usb-bot device itself (bot:,serial=0123456789AB)
# Options are appended as they are: hd:base.raw:,snapshot=on:,logical_block_size=4096
qemu_bot_args() {
    local -n _into=$1
    shift
    local lun=0 spec kind rest file drive_opts device_opts drive id scsi bot_opts=""
    local luns=()
    for spec in "$@"; do
        kind=${spec%%:*}
        rest=${spec#*:}
        if [ "$kind" = bot ]; then
            bot_opts+=$rest
            continue
        fi
        IFS=: read -r file drive_opts device_opts <<<"$rest"
        drive="format=raw"
        case "$kind" in
        hd) id=d$lun scsi=scsi-hd ;;
        hd-ro) id=d$lun scsi=scsi-hd drive+=",readonly=on" ;;
        cd) id=c$lun scsi=scsi-cd drive+=",media=cdrom,readonly=on" ;;
        *) echo "qemu_bot_args: unknown kind '$kind' in '$spec'" >&2; return 2 ;;
        esac
        _into+=(-drive "if=none,id=$id,file=$file,$drive$drive_opts")
        luns+=(-device "$scsi,bus=bot0.0,scsi-id=0,lun=$lun,drive=$id$device_opts")
        lun=$((lun + 1))
    done
    _into+=(-device "usb-bot,id=bot0,bus=xhci.0$bot_opts" "${luns[@]}")
}

# qemu_monitor_args ARRAY SOCKET: an HMP monitor on a Unix socket (qemu-media-hook's).
qemu_monitor_args() {
    local -n _into=$1
    _into+=(-monitor "unix:$2,server=on,wait=off")
}
