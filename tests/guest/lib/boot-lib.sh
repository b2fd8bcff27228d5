# shellcheck shell=bash
# shellcheck disable=SC2034 # boot_vm's BOOT_* results are read by the caller
# Helpers for tests/guest/boot.sh (bash): bootable images and a firmware boot runner.
# Sourced after host-lib.sh.

OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}

# GRUB modules the boot images need (BIOS and UEFI); everything else is left out to keep
# the ISO small (grub-mkrescue copies every module of both platforms otherwise).
BOOT_GRUB_MODULES="linux normal iso9660 search search_fs_file search_fs_uuid serial terminal"
BOOT_GRUB_MODULES+=" echo configfile test part_msdos part_gpt fat"

# The guest kernel version, from the module tree inside the base initramfs.
boot_guest_kver() { # base.cpio.gz
    gzip -dc "$1" | cpio -t --quiet 2>/dev/null | sed -n 's|^lib/modules/\([^/]*\)/.*|\1|p' | head -n 1
}

# boot_build_initrd OUT BASE_CPIO IN_GUEST_SCRIPT: the test cpio (/test.sh and the
# qemu_fw_cfg module the script reads its parameters with) followed by the base image,
# the same layering run-guest uses.
boot_build_initrd() {
    local out=$1 base=$2 script=$3 root kver ko
    root=$(mktemp -d "$(dirname "$out")/initrd-root.XXXXXX")
    mkdir -p "$root/lib/vstick"
    cp "$script" "$root/test.sh"
    : >"$root/test.env"
    kver=$(boot_guest_kver "$base") || true # head closing the pipe early is fine
    ko=$(modinfo -k "$kver" -F filename qemu_fw_cfg 2>/dev/null) || ko=""
    case "$ko" in
    *.ko.xz) xz -dc "$ko" >"$root/lib/vstick/qemu_fw_cfg.ko" ;;
    *.ko.zst) zstd -qdc "$ko" >"$root/lib/vstick/qemu_fw_cfg.ko" ;;
    *.ko) cp "$ko" "$root/lib/vstick/qemu_fw_cfg.ko" ;;
    *) echo "boot-lib: no qemu_fw_cfg module for kernel '$kver'" >&2; rm -rf "$root"; return 1 ;;
    esac
    (cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) >"$out"
    cat "$base" >>"$out"
    rm -rf "$root"
}

# boot_write_grub_cfg FILE: boot the guest kernel on the serial console. The echo is the
# host's evidence that GRUB ran (and its time stamp).
boot_write_grub_cfg() {
    cat >"$1" <<'EOF'
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0
menuentry "vstick boot test" {
    echo "VSTICK-GRUB loading the kernel"
    linux /boot/vmlinuz console=ttyS0 quiet panic=-1
    initrd /boot/initrd
}
EOF
}

# boot_build_grub_iso OUT KERNEL INITRD: a GRUB hybrid ISO (El Torito for BIOS and UEFI,
# plus an MBR so it also boots written to a disk) made by grub-mkrescue.
boot_build_grub_iso() {
    local out=$1 kernel=$2 initrd=$3 tree
    tree=$(dirname "$out")/grub-iso-tree
    rm -rf "$tree"
    mkdir -p "$tree/boot/grub"
    cp "$kernel" "$tree/boot/vmlinuz"
    cp "$initrd" "$tree/boot/initrd"
    boot_write_grub_cfg "$tree/boot/grub/grub.cfg"
    grub-mkrescue -o "$out" --install-modules="$BOOT_GRUB_MODULES" \
        --fonts= --locales= --themes= "$tree" >"$out.log" 2>&1 || {
        cat "$out.log" >&2
        return 1
    }
}

# boot_build_authored_tree TREE KERNEL INITRD: the tree for `vstick iso create --boot
# --efi-boot`: GRUB core images built with grub-mkimage (no grub-mkrescue), each with an
# embedded config that finds the medium by a marker file and loads its grub.cfg.
#   boot/grub/eltorito.img   BIOS no-emulation boot image (needs the boot info table)
#   boot/grub/efi.img        FAT image with EFI/BOOT/BOOTX64.EFI
boot_build_authored_tree() {
    local tree=$1 kernel=$2 initrd=$3 early
    rm -rf "$tree"
    mkdir -p "$tree/boot/grub"
    cp "$kernel" "$tree/boot/vmlinuz"
    cp "$initrd" "$tree/boot/initrd"
    boot_write_grub_cfg "$tree/boot/grub/grub.cfg"
    echo "vstick authored boot medium" >"$tree/boot/grub/vstick-authored.id"
    early=$(dirname "$tree")/early.cfg
    cat >"$early" <<'EOF'
search --no-floppy --file --set=root /boot/grub/vstick-authored.id
set prefix=($root)/boot/grub
configfile $prefix/grub.cfg
EOF
    local mods="iso9660 search search_fs_file normal linux serial terminal echo configfile test"
    # shellcheck disable=SC2086
    grub-mkimage -O i386-pc-eltorito -c "$early" -p /boot/grub \
        -o "$tree/boot/grub/eltorito.img" biosdisk $mods || return 1
    # shellcheck disable=SC2086
    grub-mkimage -O x86_64-efi -c "$early" -p /boot/grub \
        -o "$(dirname "$tree")/BOOTX64.EFI" $mods part_msdos part_gpt fat || return 1
    # 2 MiB FAT12 is plenty for the ~650 KB loader.
    mkfs.vfat -C "$tree/boot/grub/efi.img" 2048 >/dev/null || return 1
    mmd -i "$tree/boot/grub/efi.img" ::/EFI ::/EFI/BOOT || return 1
    mcopy -i "$tree/boot/grub/efi.img" "$(dirname "$tree")/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
}

# boot_vm NAME FIRMWARE TIMEOUT DIR [QEMU_ARGS...]
# Boots QEMU/TCG with FIRMWARE (seabios | ovmf) and no -kernel: the firmware must find the
# boot medium among the devices in QEMU_ARGS. Serial console -> DIR/NAME.serial, SeaBIOS
# debug console -> DIR/NAME.debugcon, QEMU's own messages -> DIR/NAME.qemu.
# Waits for the guest's VSTICK-GUEST-DONE, QEMU's exit, the firmware giving up, or TIMEOUT,
# then sets:
#   BOOT_OUTCOME   done | gave-up | exited | timeout
#   BOOT_SECS      seconds until the outcome
#   BOOT_GRUB_SECS seconds until GRUB printed its line ("-" if never)
boot_vm() {
    local name=$1 fw=$2 timeout=$3 dir=$4
    shift 4
    local serial=$dir/$name.serial dbg=$dir/$name.debugcon fw_args=()
    case "$fw" in
    seabios)
        # SeaBIOS waits etc/usb-time-sigatt ms (default 100) for a device on each USB
        # port. A usb-redir device appears only once QEMU's main loop has exchanged
        # hello and device_connect with vstick, racing SeaBIOS's scan under load
        # (measured: lost when vstick answers ~0.3 s after QEMU connects). 1 s of
        # patience makes the race harmless; 0 keeps the firmware's default.
        local sigatt=${BOOT_USB_SIGATT_MS:-1000}
        if [ "$sigatt" -gt 0 ]; then
            python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<Q", int(sys.argv[1])))' \
                "$sigatt" >"$dir/usb-time-sigatt.bin"
            fw_args+=(-fw_cfg "name=etc/usb-time-sigatt,file=$dir/usb-time-sigatt.bin")
        fi
        ;;
    ovmf)
        # A fresh variable store per boot: no boot order remembered from earlier runs.
        cp "$OVMF_VARS" "$dir/$name.vars.fd"
        fw_args+=(
            -drive "if=pflash,format=raw,readonly=on,file=$OVMF_CODE"
            -drive "if=pflash,format=raw,file=$dir/$name.vars.fd"
        )
        ;;
    *) echo "boot_vm: unknown firmware $fw" >&2; return 2 ;;
    esac
    : >"$serial"
    : >"$dbg"
    local start=$SECONDS started_ns pid
    started_ns=$(date +%s%N)
    local qemu=(qemu-system-x86_64)
    qemu_machine_args qemu 512M
    qemu+=(-nic none -serial "file:$serial"
        -chardev "file,id=dbg,path=$dbg" -device "isa-debugcon,iobase=0x402,chardev=dbg"
        "${fw_args[@]}" "$@")
    "${qemu[@]}" </dev/null >"$dir/$name.qemu" 2>&1 &
    pid=$!
    BOOT_OUTCOME=timeout
    BOOT_GRUB_SECS=-
    local now elapsed
    while :; do
        now=$(date +%s%N)
        elapsed=$(((now - started_ns) / 1000000))
        if [ "$BOOT_GRUB_SECS" = - ] && grep -q -a VSTICK-GRUB "$serial"; then
            BOOT_GRUB_SECS=$(printf '%d.%01d' $((elapsed / 1000)) $((elapsed % 1000 / 100)))
        fi
        if grep -q -a VSTICK-GUEST-DONE "$serial"; then
            BOOT_OUTCOME="done"
            break
        fi
        # SeaBIOS's last words (it then halts, or retries with reboot-timeout); OVMF
        # falls back to its UEFI shell when no boot option works.
        if grep -q -a 'No bootable device' "$dbg" || grep -q -a 'Shell> ' "$serial"; then
            BOOT_OUTCOME=gave-up
            break
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            BOOT_OUTCOME=exited
            break
        fi
        if [ $((SECONDS - start)) -ge "$timeout" ]; then
            break
        fi
        sleep 0.2
    done
    now=$(date +%s%N)
    elapsed=$(((now - started_ns) / 1000000))
    BOOT_SECS=$(printf '%d.%01d' $((elapsed / 1000)) $((elapsed % 1000 / 100)))
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
