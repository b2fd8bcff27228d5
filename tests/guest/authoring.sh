#!/usr/bin/env bash
# Acceptance test of image authoring: `vstick iso create` and `vstick image create` build
# an ISO and a FAT32 stick from one tricky tree; a real Linux guest mounts both through the
# device (ISO on sr0 as iso9660 with Rock Ridge and Joliet, the stick's sda1 as vfat) and
# must see the same tree, byte for byte.
#
#   tests/guest/authoring.sh                          # served by vstick (default)
#   VSTICK_GUEST_DEVICE=qemu tests/guest/authoring.sh # QEMU's own usb-bot (reference)
#
# The guest half is in-guest/authoring.sh. The tree: Unicode names (one outside the BMP),
# a 120-character name, a 10-level directory, 1,500 files, a 12 MB file with a second
# hard-linked name, a symlink (ISO only: FAT cannot hold one), an empty directory.
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-lib.sh"

ISO_LABEL=VSTICK_AUTHOR
FAT_LABEL=PUBLIC
STICK_SIZE=96M

work=$(make_workdir "authoring-$MODE")
trap 'stop_vstick >/dev/null 2>&1 || true' EXIT

# --- the tree ------------------------------------------------------------------------------

tree=$work/tree
python3 - "$tree" <<'EOF'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(20261121)
def put(rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
put("Ünïcödé dir/日本語ファイル.txt", "こんにちは\n".encode())
put("emoji 😀 ελληνικά.txt", rnd.randbytes(777))
put(("long-name-" * 12)[:116] + ".txt", b"long\n")
deep = "/".join(f"level{i:02}" for i in range(1, 11))
put(deep + "/bottom.txt", b"at the bottom\n")
put("level01/level02/mid.txt", b"mid\n")
for i in range(1500):
    put(f"many/file{i:04}.dat", rnd.randbytes(i % 700))
put("big.bin", rnd.randbytes(12 * 1000 * 1000 + 321))
put("zero-length", b"")
os.makedirs(os.path.join(root, "empty"))
os.symlink("Ünïcödé dir/日本語ファイル.txt", os.path.join(root, "link"))
os.link(os.path.join(root, "big.bin"), os.path.join(root, "hard link to big.bin"))
EOF

# The manifest the guest must reproduce: one line per entry, sorted by bytes. The same
# command runs in the guest (busybox), so the formats match.
manifest() { # DIR [nolinks]
    (
        cd "$1"
        find . -type d ! -name . | sed 's/^/d /'
        find . -type f -print0 | xargs -0 md5sum | sed 's/^\([0-9a-f]*\)  /f \1 /'
        if [ "${2:-}" != nolinks ]; then
            find . -type l | while IFS= read -r p; do echo "l $p -> $(readlink "$p")"; done
        fi
    ) | LC_ALL=C sort
}
manifest "$tree" >"$work/iso.manifest"
manifest "$tree" nolinks >"$work/fat.manifest"
note "tree: $(grep -c '^f' "$work/iso.manifest") files, $(grep -c '^d' "$work/iso.manifest") directories"

# --- authoring ------------------------------------------------------------------------------

bin=$(vstick_bin) || exit 1
# stdout: the one-line summary; stderr: warnings (expected: the relocated deep directory,
# the Joliet cut, the symlink FAT cannot hold) or the error.
if "$bin" iso create "$tree" -o "$work/tree.iso" --label "$ISO_LABEL" >"$work/iso-create.out" 2>"$work/iso-create.err"; then
    host_ok iso-create "$(cat "$work/iso-create.out")"
else
    host_fail iso-create "$(tr '\n' ' ' <"$work/iso-create.err")"
    exit 1
fi
if "$bin" image create "$work/stick.raw" --size "$STICK_SIZE" --fs fat32 --label "$FAT_LABEL" \
    --copy "$tree" >"$work/image-create.out" 2>"$work/image-create.err"; then
    host_ok image-create "$(cat "$work/image-create.out")"
else
    host_fail image-create "$(tr '\n' ' ' <"$work/image-create.err")"
    exit 1
fi
# `iso ls` lists every entry of the tree (plus its header lines).
listed=$("$bin" iso ls "$work/tree.iso" | grep -c '^[-dl] ' || true)
host_expect_eq iso-ls-entries "$listed" "$(wc -l <"$work/iso.manifest")"
stick_md5=$(md5_of "$work/stick.raw")

guest_env=(
    --env "ISO_LABEL=$ISO_LABEL"
    --env "FAT_LABEL=$FAT_LABEL"
    --env "UNICODE_PATH=Ünïcödé dir/日本語ファイル.txt"
    --env "UNICODE_MD5=$(md5_of "$tree/Ünïcödé dir/日本語ファイル.txt")"
    --env "LONG_NAME=$(cd "$tree" && ls | grep '^long-name')"
)
files=(--file "$work/iso.manifest:/expected/iso.manifest" --file "$work/fat.manifest:/expected/fat.manifest")

# --- the device --------------------------------------------------------------------------

device_args=()
case "$MODE" in
vstick) start_vstick_redir "$work/vstick.log" --disk-ro "$work/stick.raw" --cdrom "$work/tree.iso" || exit 1 ;;
qemu) qemu_bot_args device_args hd-ro:"$work/stick.raw" cd:"$work/tree.iso" ;;
*)
    echo "unknown VSTICK_GUEST_DEVICE=$MODE (vstick|qemu)" >&2
    exit 2
    ;;
esac

# --- the guest ---------------------------------------------------------------------------

guest_rc=0
"$GUEST_TESTS/run-guest" --timeout "${VSTICK_GUEST_TIMEOUT:-480}" --log "$work/console.log" \
    "${guest_env[@]}" "${files[@]}" "$GUEST_TESTS/in-guest/authoring.sh" -- "${device_args[@]}" || guest_rc=$?

[ "$MODE" != vstick ] || stop_vstick_after_guest "$work" "$guest_rc"
if [ "$guest_rc" -ne 0 ]; then
    for kind in iso fat; do
        got=$(tr -d '\r' <"$work/console.log" | sed -n "s/^VSTICK-MANIFEST $kind //p")
        if [ -n "$got" ]; then
            echo "  $kind manifest differences (guest > / expected <), first 20:"
            diff <(printf '%s\n' "$got") "$work/$kind.manifest" | head -n 20 | sed 's/^/    /'
        fi
    done
fi

# The stick was served read-only: it must be unchanged.
host_expect_eq stick-unchanged "$(md5_of "$work/stick.raw")" "$stick_md5"

host_finish "authoring ($MODE)" "$guest_rc"
