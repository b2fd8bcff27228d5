#!/usr/bin/env bash
# `vstick serve --local` against a loop device, in one guest: the same image (in the
# guest's RAM) read through vstick plugged into the guest's own kernel (vhci-hcd, an
# AF_UNIX socketpair, usb-storage, sd) and through `losetup -r` (what a Linux user does
# with an image today). O_DIRECT sequential 1 MiB reads and 4 KiB random reads (QD1) with
# vstick-guest-io, interleaved, the order alternating between repetitions; vstick's CPU
# time per GB (or per op) from /proc/PID/stat in the guest.
#
#   bench/local-bench.sh [--reps N] [--size-mib N] [--smp N (default 1)] [--vstick-env "K=V ..."]
#
# --vstick-env runs the guest's vstick under `env K=V ...` (e.g. glibc malloc tunables).
#
# Prints a Markdown table (BENCHMARKS.md has one run and the analysis).
. "$(dirname "${BASH_SOURCE[0]}")/../tests/guest/lib/host-lib.sh"

reps=3
size_mib=64
smp=1
vstick_env=""
while [ $# -gt 0 ]; do
    case "$1" in
    --reps) reps=$2; shift 2 ;;
    --size-mib) size_mib=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --vstick-env) vstick_env=$2; shift 2 ;;
    *) echo "usage: bench/local-bench.sh [--reps N] [--size-mib N] [--smp N] [--vstick-env \"K=V ...\"]" >&2; exit 2 ;;
    esac
done

files=()
bench_guest_binaries files || exit 1
work=$(make_workdir local-bench)

cat >"$work/in-guest.sh" <<'GUEST'
# In-guest half of bench/local-bench.sh. Environment: REPS, SIZE_MIB, VSTICK_ENV.
. /lib/vstick/bench-pair.sh
mkdir -p /tmp/img
head -c $((SIZE_MIB << 20)) /dev/urandom >/tmp/img/disk.raw
# shellcheck disable=SC2086 # VSTICK_ENV is a list of K=V words
env $VSTICK_ENV vstick serve --local --disk-ro /tmp/img/disk.raw >/tmp/v.out 2>/tmp/v.err &
vpid=$!
if ! wait_for 60 grep -q '^vstick: LUN 0: /dev/' /tmp/v.out; then
    fail plugged "$(tail -n 5 /tmp/v.err | tr '\n' ' ')"
    finish
fi
usb=$(sed -n 's|^vstick: LUN 0: /dev/\([a-z]*\).*|\1|p' /tmp/v.out)
loop=$(losetup -f)
losetup -r "$loop" /tmp/img/disk.raw
loop=${loop#/dev/}
ok devices "local=/dev/$usb loop=/dev/$loop $(grep '^vstick: plugged' /tmp/v.out | cut -d'(' -f2 | cut -d')' -f1)"
value local.max_sectors_kb "$(cat /sys/block/$usb/queue/max_sectors_kb)"

interleave "$REPS" "seq-read rand-read" local "$usb" loop "$loop"
stop_vstick_and_finish
GUEST

rc=0
"$GUEST_TESTS/run-guest" --quiet --timeout 900 --memory 1G --log "$work/console.log" \
    --env "REPS=$reps" --env "SIZE_MIB=$size_mib" --env "VSTICK_ENV=$vstick_env" "${files[@]}" \
    --file "$REPO/bench/lib/in-guest-pair.sh:/lib/vstick/bench-pair.sh" "$work/in-guest.sh" -- -smp "$smp" || rc=$?
grep -E 'VSTICK-CHECK' "$work/console.log" | tr -d '\r' | sed 's/^/  /'
[ "$rc" -eq 0 ] || { echo "local-bench: guest rc=$rc (log $work/console.log)" >&2; exit 1; }

# --- the table -----------------------------------------------------------------------------
tr -d '\r' <"$work/console.log" | grep '^VSTICK-BENCH ' | awk '
{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    key = f["dev"] " " f["op"]
    bytes[key] += f["bytes"]; ops[key] += f["ops"]; secs[key] += f["secs"]; ticks[key] += f["vuser"] + f["vsys"]; sys[key] += f["vsys"]
    if (f["op"] == "seq-read") r = sprintf("%.0f", f["bytes"] / f["secs"] / 1e6); else r = sprintf("%.0f", f["ops"] / f["secs"])
    runs[key] = runs[key] (runs[key] == "" ? "" : " ") r
}
END {
    print "| workload | --local | loop device | --local / loop | vstick CPU (of it system) | runs (local / loop) |"
    print "|---|---:|---:|---:|---:|---|"
    s = bytes["local seq-read"] / secs["local seq-read"] / 1e6; l = bytes["loop seq-read"] / secs["loop seq-read"] / 1e6
    k = "local seq-read"
    printf "| 1 MiB sequential read (O_DIRECT) | %.1f MB/s | %.1f MB/s | **%.2f** | %.1f s/GB (%.0f %%) | %s / %s |\n", s, l, s / l, ticks[k] / 100 / (bytes[k] / 1e9), 100 * sys[k] / ticks[k], runs[k], runs["loop seq-read"]
    s = ops["local rand-read"] / secs["local rand-read"]; l = ops["loop rand-read"] / secs["loop rand-read"]
    k = "local rand-read"
    printf "| 4 KiB random read (O_DIRECT, QD1) | %.0f IOPS | %.0f IOPS | **%.2f** | %.0f us/op (%.0f %%) | %s / %s |\n", s, l, s / l, ticks[k] * 1e4 / ops[k], 100 * sys[k] / ticks[k], runs[k], runs["loop rand-read"]
}'
tr -d '\r' <"$work/console.log" | sed -n 's/^VSTICK-VALUE //p'
