#!/usr/bin/env bash
# `vstick serve --gadget` against Linux's f_mass_storage, in one guest: two images of the
# same size in the guest's RAM, one served by vstick's gadget on dummy_udc.0, the other by
# f_mass_storage (configfs) on dummy_udc.1, both enumerated by the same guest's
# usb-storage. O_DIRECT sequential 1 MiB reads and writes and 4 KiB random reads (QD1)
# with vstick-guest-io, interleaved, the order alternating between repetitions; vstick's
# CPU time per GB (or per op) from /proc/PID/stat in the guest.
#
#   bench/gadget-bench.sh [--reps N] [--size-mib N] [--smp N (default 1)]
#
# Prints a Markdown table (BENCHMARKS.md has one run and the analysis).
. "$(dirname "${BASH_SOURCE[0]}")/../tests/guest/lib/host-lib.sh"

reps=3
size_mib=64
smp=1
while [ $# -gt 0 ]; do
    case "$1" in
    --reps) reps=$2; shift 2 ;;
    --size-mib) size_mib=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    *) echo "usage: bench/gadget-bench.sh [--reps N] [--size-mib N] [--smp N]" >&2; exit 2 ;;
    esac
done

files=()
bench_guest_binaries files || exit 1
work=$(make_workdir gadget-bench)

cat >"$work/in-guest.sh" <<'GUEST'
# In-guest half of bench/gadget-bench.sh. Environment: REPS, SIZE_MIB.
. /lib/vstick/bench-pair.sh
G=/sys/kernel/config/usb_gadget
mkdir -p /tmp/img
head -c $((SIZE_MIB << 20)) /dev/urandom >/tmp/img/v.raw
cp /tmp/img/v.raw /tmp/img/f.raw
load_module usb_f_fs
load_module usb_f_mass_storage
load_module dummy_hcd num=2
mount -t configfs none /sys/kernel/config

vstick serve --gadget dummy_udc.0 --disk /tmp/img/v.raw >/tmp/v.out 2>/tmp/v.err &
vpid=$!
R=$G/ref
mkdir $R $R/strings/0x409 $R/configs/c.1 $R/functions/mass_storage.0
echo 0x1d6b >$R/idVendor
echo 0x0104 >$R/idProduct
echo 1 >$R/functions/mass_storage.0/lun.0/removable
echo /tmp/img/f.raw >$R/functions/mass_storage.0/lun.0/file
ln -s $R/functions/mass_storage.0 $R/configs/c.1/
echo dummy_udc.1 >$R/UDC

dev_on() { # U: the sd device behind dummy_hcd.U
    for b in /sys/block/sd*; do
        case "$(readlink -f "$b/device")" in */dummy_hcd.$1/*) echo "${b##*/}" && return 0 ;; esac
    done
    return 1
}
if ! wait_for 60 dev_on 0 || ! wait_for 60 dev_on 1; then
    fail devices "$(tail -n 5 /tmp/v.err | tr '\n' ' ')"
    finish
fi
gad=$(dev_on 0)
fms=$(dev_on 1)
ok devices "vstick=/dev/$gad f_mass_storage=/dev/$fms"
value gadget.max_sectors_kb "$(cat /sys/block/$gad/queue/max_sectors_kb)"

interleave "$REPS" "seq-read seq-write rand-read" gadget "$gad" fms "$fms"
stop_vstick_and_finish
GUEST

rc=0
"$GUEST_TESTS/run-guest" --quiet --timeout 900 --memory 1G --log "$work/console.log" \
    --env "REPS=$reps" --env "SIZE_MIB=$size_mib" "${files[@]}" \
    --file "$REPO/bench/lib/in-guest-pair.sh:/lib/vstick/bench-pair.sh" "$work/in-guest.sh" -- -smp "$smp" || rc=$?
grep -E 'VSTICK-CHECK' "$work/console.log" | tr -d '\r' | sed 's/^/  /'
[ "$rc" -eq 0 ] || { echo "gadget-bench: guest rc=$rc (log $work/console.log)" >&2; exit 1; }

tr -d '\r' <"$work/console.log" | grep '^VSTICK-BENCH ' | awk '
{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    key = f["dev"] " " f["op"]
    bytes[key] += f["bytes"]; ops[key] += f["ops"]; secs[key] += f["secs"]; ticks[key] += f["vuser"] + f["vsys"]; sys[key] += f["vsys"]
    if (f["op"] == "rand-read") r = sprintf("%.0f", f["ops"] / f["secs"]); else r = sprintf("%.0f", f["bytes"] / f["secs"] / 1e6)
    runs[key] = runs[key] (runs[key] == "" ? "" : " ") r
}
END {
    print "| workload | vstick --gadget | f_mass_storage | vstick / f_mass_storage | vstick CPU (of it system) | runs (vstick / f_ms) |"
    print "|---|---:|---:|---:|---:|---|"
    split("seq-read seq-write", seq, " ")
    name["seq-read"] = "1 MiB sequential read (O_DIRECT)"; name["seq-write"] = "1 MiB sequential write (O_DIRECT)"
    for (j = 1; j <= 2; j++) {
        op = seq[j]; k = "gadget " op; m = "fms " op
        s = bytes[k] / secs[k] / 1e6; l = bytes[m] / secs[m] / 1e6
        printf "| %s | %.1f MB/s | %.1f MB/s | **%.2f** | %.1f s/GB (%.0f %%) | %s / %s |\n", name[op], s, l, s / l, ticks[k] / 100 / (bytes[k] / 1e9), 100 * sys[k] / (ticks[k] + 1e-9), runs[k], runs[m]
    }
    k = "gadget rand-read"; m = "fms rand-read"
    s = ops[k] / secs[k]; l = ops[m] / secs[m]
    printf "| 4 KiB random read (O_DIRECT, QD1) | %.0f IOPS | %.0f IOPS | **%.2f** | %.0f us/op (%.0f %%) | %s / %s |\n", s, l, s / l, ticks[k] * 1e4 / ops[k], 100 * sys[k] / (ticks[k] + 1e-9), runs[k], runs[m]
}'
tr -d '\r' <"$work/console.log" | sed -n 's/^VSTICK-VALUE //p'
