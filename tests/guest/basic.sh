#!/usr/bin/env bash
# Acceptance test of the foundation: a real Linux guest uses one vstick USB device with
# a writable disk (LUN 0, 64 MiB RAW) and a CD-ROM (LUN 1, ISO), over QEMU's usb-redir.
#
#   tests/guest/basic.sh                          # against vstick (default)
#   VSTICK_GUEST_DEVICE=qemu tests/guest/basic.sh # against QEMU's own usb-bot (reference)
#   VSTICK_TRANSPORT=usbip tests/guest/basic.sh   # vstick over USB/IP (= basic-usbip.sh)
#   VSTICK_TRANSPORT=usbredir-unix tests/guest/basic.sh  # usbredir on a Unix socket (= basic-unix.sh)
#   VSTICK_TRANSPORT=spice tests/guest/basic.sh   # vstick as a SPICE client (= spice.sh)
#   VSTICK_TRANSPORT=spice-tls tests/guest/basic.sh  # the same on the TLS port, with a password
#
# The guest half is in-guest/basic.sh; this side prepares the media, runs the device,
# boots the guest and afterwards checks that the guest's writes reached disk.raw.
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-lib.sh"

DISK_BYTES=$((64 * 1024 * 1024))
RANDOM_MB=4
LONG_NAME="Ünïcödé – a rather long file name ✓ 日本語.txt"

# usbredir: QEMU's usb-redir device (usbredir-unix: its chardev on a Unix socket);
# usbip: the guest's own `usbip attach` (vhci-hcd) over QEMU user networking, the host
# being 10.0.2.2 from the guest; spice: QEMU's SPICE server with a spicevmc usbredir channel,
# vstick connecting to it as a SPICE client (the qemu reference runs in the same VM shape).
TRANSPORT=${VSTICK_TRANSPORT:-usbredir}
case "$MODE/$TRANSPORT" in
vstick/usbredir | vstick/usbredir-unix | vstick/usbip | qemu/usbredir | */spice | vstick/spice-tls) ;;
qemu/spice-tls)
    echo "basic: spice.sh runs the QEMU reference in the SPICE VM shape; skipped"
    exit 77
    ;;
qemu/usbip | qemu/usbredir-unix)
    echo "basic: the QEMU reference device has no $TRANSPORT side (basic.sh runs it); skipped"
    exit 77
    ;;
*)
    echo "unknown VSTICK_GUEST_DEVICE=$MODE / VSTICK_TRANSPORT=$TRANSPORT" >&2
    exit 2
    ;;
esac
case "$TRANSPORT" in
usbip) work=$(make_workdir "usbip-$MODE") ;;
usbredir-unix) work=$(make_workdir "unix-$MODE") ;;
spice) work=$(make_workdir "spice-$MODE") ;;
spice-tls) work=$(make_workdir "spice-tls-$MODE") ;;
*) work=$(make_workdir "basic-$MODE") ;;
esac
trap 'stop_vstick >/dev/null 2>&1 || true' EXIT

# --- media ------------------------------------------------------------------------------

# Sparse 64 MiB disk, all zeros: the guest formats it.
truncate -s "$DISK_BYTES" "$work/disk.raw"

# ISO tree: a long Unicode name (Rock Ridge keeps it as is; Joliet allows 64 UCS-2 chars),
# a nested directory and a few MB of random data.
tree=$work/iso-tree
mkdir -p "$tree/nested/deeper"
echo "vstick CD-ROM test file with a long Unicode name" >"$tree/$LONG_NAME"
head -c $((3 * 1024 * 1024 + 123)) /dev/urandom >"$tree/nested/deeper/random.bin"
xorriso -as mkisofs -quiet -J -R -V VSTICKTEST -o "$work/test.iso" "$tree" 2>"$work/xorriso.log" || {
    cat "$work/xorriso.log"
    exit 1
}
# A second ISO for the host-driven media change: different content proves the swap.
mkdir -p "$work/iso2-tree"
echo "second medium" >"$work/iso2-tree/SECOND.TXT"
xorriso -as mkisofs -quiet -J -R -V VSTICKTWO -o "$work/second.iso" "$work/iso2-tree" 2>>"$work/xorriso.log"
iso_md5=$(md5_of "$work/test.iso")
note "media ready: disk.raw $((DISK_BYTES >> 20)) MiB, test.iso $(($(stat -c %s "$work/test.iso") >> 10)) KiB"

# The identity vstick is given (--vendor-id ... --serial); QEMU's usb-bot takes only
# serial=, its IDs and strings are its own (hw/usb/dev-storage.c).
ID_SERIAL=0123456789ABCDEF01
ID_ARGS=(--vendor-id 0x1d6b --product-id 260 --manufacturer "vstick guest test"
    --product "Identity Check Stick ✓" --serial "$ID_SERIAL")

run_args=()
device_args=()
guest_env=(
    --env "DISK_BYTES=$DISK_BYTES"
    --env "RANDOM_MB=$RANDOM_MB"
    --env "ISO_LONG_NAME=$LONG_NAME"
    --env "ISO_LONG_MD5=$(md5_of "$tree/$LONG_NAME")"
    --env "ISO_RANDOM_PATH=nested/deeper/random.bin"
    --env "ISO_RANDOM_MD5=$(md5_of "$tree/nested/deeper/random.bin")"
)

# --- the device under test -----------------------------------------------------------------

case "$MODE" in
vstick)
    port=$(free_port)
    case "$TRANSPORT" in
    usbredir-unix) listen=(--usbredir "unix:$work/redir.sock") chardev_addr="path=$work/redir.sock" ;;
    spice) listen=(--spice "spice://127.0.0.1:$port") ;;
    spice-tls)
        # A test CA and server certificate for 127.0.0.1 (QEMU's x509-dir), and a password.
        x509=$work/x509
        mkdir -p "$x509"
        (
            cd "$x509"
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=vstick test CA" \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
                -keyout ca-key.pem -out ca-cert.pem
            openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server-key.pem -out server.csr
            echo "subjectAltName=IP:127.0.0.1" >server.ext
            openssl x509 -req -in server.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
                -extfile server.ext -out server-cert.pem
        ) >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log"; exit 1; }
        spice_password="pw-$RANDOM$RANDOM"
        printf '%s\n' "$spice_password" >"$work/spice-password"
        listen=(--spice "spice+tls://127.0.0.1:$port" --spice-ca "$x509/ca-cert.pem"
            --spice-password-file "$work/spice-password")
        ;;
    *) listen=("--$TRANSPORT" "127.0.0.1:$port") chardev_addr="host=127.0.0.1,port=$port" ;;
    esac
    start_vstick "$work/vstick.log" "${listen[@]}" "${ID_ARGS[@]}" \
        --disk "$work/disk.raw" --cdrom "$work/test.iso" --control "$work/ctl.sock" -v || exit 1
    # INQUIRY's vendor stays vstick's whatever the USB identity (see identity.rs).
    guest_env+=(--env EXPECT_VENDOR=vstick --env HOST_MEDIA_CONTROL=1)
    guest_env+=(--env EXPECT_USB_ID=1d6b:0104 --env "EXPECT_USB_MANUFACTURER=vstick guest test"
        --env "EXPECT_USB_PRODUCT=Identity Check Stick ✓" --env "EXPECT_USB_SERIAL=$ID_SERIAL")
    # The guest asks for media changes with "VSTICK-HOST insert|eject LUN".
    media_hook=$GUEST_TESTS/lib/vstick-media-hook
    hook=(--host-hook "$media_hook $(vstick_bin) $work/ctl.sock $work/second.iso")
    if [ "$TRANSPORT" = usbip ]; then
        # Bus id 1-1 is what vstick exports (serve.rs USBIP_BUSID).
        guest_env+=(--env "USBIP_HOST=10.0.2.2" --env "USBIP_PORT=$port" --env "USBIP_BUSID=1-1")
        run_args+=(--net)
        device_args=()
    elif [ "$TRANSPORT" = spice ]; then
        # vstick started first: it retries until QEMU's SPICE server listens.
        qemu_spice_args device_args "$port"
    elif [ "$TRANSPORT" = spice-tls ]; then
        # Every channel on the TLS port only (no plain port), ticket required.
        qemu_spice_args device_args "$(free_port)" ",tls-port=$port,x509-dir=$x509,password-secret=spw0"
        device_args+=(-object "secret,id=spw0,data=$spice_password")
    else
        qemu_redir_args device_args "$chardev_addr"
    fi
    ;;
qemu)
    guest_env+=(--env EXPECT_VENDOR=QEMU --env QEMU_SENSE_QUIRK=1 --env HOST_MEDIA_CONTROL=1)
    # Media changes through the QEMU monitor, as vstick ctl does for vstick.
    hook=(--host-hook "$GUEST_TESTS/lib/qemu-media-hook $work/monitor.sock $work/second.iso")
    # One usb-bot device, two LUNs: the same shape vstick presents.
    qemu_bot_args device_args bot:",serial=$ID_SERIAL" hd:"$work/disk.raw" cd:"$work/test.iso"
    guest_env+=(--env EXPECT_USB_ID=46f4:0001 --env EXPECT_USB_MANUFACTURER=QEMU
        --env "EXPECT_USB_PRODUCT=QEMU USB HARDDRIVE" --env "EXPECT_USB_SERIAL=$ID_SERIAL")
    qemu_monitor_args device_args "$work/monitor.sock"
    [ "$TRANSPORT" != spice ] || qemu_spice_args device_args "$(free_port)"
    ;;
esac

# --- the guest ---------------------------------------------------------------------------

guest_rc=0
"$GUEST_TESTS/run-guest" --log "$work/console.log" "${guest_env[@]}" "${hook[@]}" \
    "${run_args[@]+"${run_args[@]}"}" \
    "$GUEST_TESTS/in-guest/basic.sh" -- "${device_args[@]+"${device_args[@]}"}" || guest_rc=$?

[ "$MODE" != vstick ] || stop_vstick_after_guest "$work" "$guest_rc"

# --- host-side checks: the guest's writes are in disk.raw -----------------------------------

host_check_disk_file "$work"
if [ "$MODE/$TRANSPORT" = vstick/spice ] || [ "$MODE/$TRANSPORT" = vstick/spice-tls ]; then
    want="SPICE: usbredir channel linked"
    [ "$TRANSPORT" = spice ] || want="SPICE: usbredir channel linked.*tls=true"
    if grep -q "$want" "$work/vstick.log"; then
        host_ok spice-channel-linked
    else
        host_fail spice-channel-linked "vstick.log has no linked usbredir channel"
    fi
fi
# The CD-ROM image must be untouched (it is served read-only).
host_expect_eq iso-unchanged "$(md5_of "$work/test.iso")" "$iso_md5"

host_finish "basic ($MODE, $TRANSPORT)" "$guest_rc"
