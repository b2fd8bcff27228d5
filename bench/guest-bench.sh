#!/usr/bin/env bash
# Guest benchmark: one Linux guest (TCG) with two USB disks of the same size on the same
# xHCI controller, vstick (over usbredir, or USB/IP) and QEMU's own in-process
# usb-storage, running interleaved O_DIRECT workloads on both: 1 MiB sequential reads,
# 1 MiB sequential writes, 4 KiB random reads (queue depth 1). Prints a Markdown table of
# MB/s, IOPS, the vstick/QEMU ratios and vstick's CPU time per GB moved.
#
#   bench/guest-bench.sh [--transport usbredir|usbip] [--reps N] [--size MIB]
#                        [--seq-mib MIB] [--rand-count N] [--seconds S] [--out FILE]
#                        [--ops "seq-read seq-write rand-read"] [--devices "vstick qemu"]
#
# --ops / --devices narrow the run (for profiling one workload; a table needs both devices).
# VSTICK_BENCH_HOOK=CMD runs `CMD PID` on the host with vstick's pid once it serves
# (e.g. to attach a profiler).
#
# Not a test: nothing here passes or fails on a number. Builds vstick and the in-guest
# I/O driver (crates/bench) in release mode unless VSTICK_BIN / VSTICK_GUEST_IO name
# binaries to use. Needs what the guest tests need (scripts/install-deps).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH_DIR/../tests/guest/lib/host-lib.sh"

transport=usbredir
reps=3
size_mib=256
seq_mib=128
rand_count=2000
seconds_cap=20
out=""
ops="seq-read seq-write rand-read"
devices="vstick qemu"
while [ $# -gt 0 ]; do
    case "$1" in
    --transport) transport=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --size) size_mib=$2; shift 2 ;;
    --seq-mib) seq_mib=$2; shift 2 ;;
    --rand-count) rand_count=$2; shift 2 ;;
    --seconds) seconds_cap=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --ops) ops=$2; shift 2 ;;
    --devices) devices=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "guest-bench: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$transport" in usbredir | usbip) ;; *) echo "guest-bench: transport usbredir or usbip" >&2; exit 2 ;; esac

# --- binaries (release: a debug vstick would measure the compiler, not the design) ------

target=${CARGO_TARGET_DIR:-$REPO/target}
if [ -z "${VSTICK_BIN:-}" ] || [ -z "${VSTICK_GUEST_IO:-}" ]; then
    note "cargo build --release -p vstick -p vstick-bench"
    (cd "$REPO" && cargo build --release -q -p vstick -p vstick-bench)
fi
export VSTICK_BIN=${VSTICK_BIN:-$target/release/vstick}
guest_io=${VSTICK_GUEST_IO:-$target/release/vstick-guest-io}

work=$(make_workdir "bench-$transport")
trap 'stop_vstick >/dev/null 2>&1 || true' EXIT

# --- media: two images of the same size and content, warm in the host page cache --------

head -c $((size_mib << 20)) /dev/urandom >"$work/vstick.raw"
cp "$work/vstick.raw" "$work/qemu.raw"
cat "$work/vstick.raw" "$work/qemu.raw" >/dev/null
note "images: 2 x $size_mib MiB"

port=$(free_port)
start_vstick "$work/vstick.log" "--$transport" "127.0.0.1:$port" --disk "$work/vstick.raw" || exit 1
note "vstick pid $VSTICK_PID ($VSTICK_BIN)"
hook_pid=""
if [ -n "${VSTICK_BENCH_HOOK:-}" ]; then
    # shellcheck disable=SC2086 # the hook is a command line
    ${VSTICK_BENCH_HOOK} "$VSTICK_PID" &
    hook_pid=$!
fi

qemu_args=(
    -drive "if=none,id=q0,file=$work/qemu.raw,format=raw"
    -device usb-storage,drive=q0,bus=xhci.0
)
run_args=()
guest_env=(
    --env "TRANSPORT=$transport" --env "REPS=$reps" --env "SEQ_BYTES=$((seq_mib << 20))"
    --env "SECONDS_CAP=$seconds_cap" --env "RAND_COUNT=$rand_count"
    --env "OPS=$ops" --env "DEVICES=$devices"
)
if [ "$transport" = usbip ]; then
    run_args+=(--net)
    guest_env+=(--env USBIP_HOST=10.0.2.2 --env "USBIP_PORT=$port" --env USBIP_BUSID=1-1)
else
    qemu_args+=(
        -chardev "socket,id=r0,host=127.0.0.1,port=$port,reconnect=1"
        -device usb-redir,chardev=r0,bus=xhci.0
    )
fi

# The I/O driver and the shared libraries it needs.
files=(--file "$guest_io:/usr/bin/vstick-guest-io")
for lib in $(ldd "$guest_io" | grep -oE '/[^ ]+'); do
    files+=(--file "$lib:$lib")
done

: >"$work/cpu.log"
timeout=$((reps * 3 * 2 * (seconds_cap + 4) + 180))
guest_rc=0
"$GUEST_TESTS/run-guest" --log "$work/console.log" --timeout "$timeout" \
    --host-hook "$BENCH_DIR/lib/cpu-sample $VSTICK_PID $work/cpu.log" \
    "${guest_env[@]}" "${files[@]}" "${run_args[@]+"${run_args[@]}"}" \
    "$BENCH_DIR/in-guest-bench.sh" -- "${qemu_args[@]}" || guest_rc=$?
total_ticks=$(awk '{print $14 + $15}' "/proc/$VSTICK_PID/stat")
stop_vstick >/dev/null
[ -z "$hook_pid" ] || wait "$hook_pid" || true
if [ "$guest_rc" -ne 0 ]; then
    echo "guest-bench: the guest failed (rc=$guest_rc); console: $work/console.log" >&2
    tr -d '\r' <"$work/console.log" | grep -E 'VSTICK-(CHECK|INFO)' | tail -n 20 >&2
    exit 1
fi

# --- the table -----------------------------------------------------------------------------

tr -d '\r' <"$work/console.log" | grep '^VSTICK-BENCH ' >"$work/results.txt"
hz=$(getconf CLK_TCK)
value_of() { guest_value "$work/console.log" "$1"; }
{
    echo "Transport: **$transport**; $reps repetitions; images ${size_mib} MiB; sequential runs ${seq_mib} MiB (1 MiB O_DIRECT), random runs $rand_count x 4 KiB O_DIRECT reads (QD1); each run capped at ${seconds_cap} s."
    echo
    echo "Attached as: vstick $(value_of vstick.speed) Mbit/s (bcdUSB $(value_of vstick.bcdusb), max_sectors_kb $(value_of vstick.max_sectors_kb)); QEMU usb-storage $(value_of qemu.speed) Mbit/s (bcdUSB $(value_of qemu.bcdusb), max_sectors_kb $(value_of qemu.max_sectors_kb))."
    echo
    awk -v hz="$hz" -v cpulog="$work/cpu.log" '
        function field(name,   i, kv) {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == name) return kv[2] }
            return ""
        }
        BEGIN {
            while ((getline line < cpulog) > 0) {
                n = split(line, w, " ")
                if (w[3] == "begin") begin[w[1] "," w[2]] = w[4]
                if (w[3] == "end") cpu[w[1]] += w[4] - begin[w[1] "," w[2]]
            }
        }
        {
            dev = field("dev"); op = field("op")
            bytes[dev, op] += field("bytes"); ops[dev, op] += field("ops"); secs[dev, op] += field("secs")
            r = field("bytes") / field("secs") / 1e6
            if (op == "rand-read") r = field("ops") / field("secs")
            runs[dev, op] = runs[dev, op] sprintf("%s%.1f", runs[dev, op] == "" ? "" : " ", r)
        }
        END {
            printf "| workload | vstick | QEMU usb-storage | ratio | vstick runs | QEMU runs | vstick CPU |\n"
            printf "|---|---:|---:|---:|---|---|---:|\n"
            n = split("seq-read seq-write rand-read", opsl, " ")
            for (i = 1; i <= n; i++) {
                op = opsl[i]
                if (secs["vstick", op] == 0 || secs["qemu", op] == 0) continue
                if (op == "rand-read") {
                    v = ops["vstick", op] / secs["vstick", op]; q = ops["qemu", op] / secs["qemu", op]
                    unit = "IOPS"; name = "4 KiB random read"
                    c = (ops["vstick", op] > 0) ? sprintf("%.0f us/op", cpu[op] / hz / ops["vstick", op] * 1e6) : "-"
                } else {
                    v = bytes["vstick", op] / secs["vstick", op] / 1e6; q = bytes["qemu", op] / secs["qemu", op] / 1e6
                    unit = "MB/s"; name = (op == "seq-read") ? "1 MiB sequential read" : "1 MiB sequential write"
                    c = sprintf("%.2f s/GB", cpu[op] / hz / (bytes["vstick", op] / 1e9))
                }
                printf "| %s | %.1f %s | %.1f %s | **%.2f** | %s | %s | %s |\n", name, v, unit, q, unit, v / q, runs["vstick", op], runs["qemu", op], c
            }
        }' "$work/results.txt"
    echo
    echo "vstick CPU over the whole boot: $(awk -v t="$total_ticks" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }') s."
} | tee "$work/results.md"
[ -z "$out" ] || cp "$work/results.md" "$out"
note "raw results: $work/results.txt, console: $work/console.log"
