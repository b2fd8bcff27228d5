#!/usr/bin/env bash
# Guest benchmark: one Linux guest (TCG) with two USB disks of the same size on the same
# xHCI controller, vstick (over usbredir, or USB/IP) and QEMU's own in-process
# usb-storage, running interleaved O_DIRECT workloads on both: 1 MiB sequential reads,
# 1 MiB sequential writes, 4 KiB random reads (queue depth 1). Prints a Markdown table of
# MB/s, IOPS, the vstick/QEMU ratios and vstick's CPU time per GB moved.
#
#   bench/guest-bench.sh [--transport usbredir|usbip|spice] [--reps N] [--size MIB]
#                        [--seq-mib MIB] [--rand-count N] [--seconds S] [--out FILE]
#                        [--ops "seq-read seq-write rand-read"] [--devices "vstick qemu"]
#
# --ops / --devices narrow the run (for profiling one workload; a table needs both devices).
# VSTICK_BENCH_HOOK=CMD runs `CMD PID` on the host with vstick's pid once it serves
# (e.g. to attach a profiler). VSTICK_BIN_B=BINARY adds a second vstick device served by
# BINARY ("vstick B", usbredir), interleaved with the others: an A/B comparison of two
# builds in one boot, immune to the load drifting between boots.
# VSTICK_BENCH_CHARDEV_OPTS (and _B for vstick B) are appended to the usb-redir chardev
# options, e.g. ",nodelay=on" to A/B QEMU's socket options with one vstick build.
# VSTICK_BENCH_SOCKET=unix (and _B) serves usbredir on a Unix socket instead of TCP
# loopback (`--usbredir unix:PATH`, QEMU `-chardev socket,path=PATH`).
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
case "$transport" in usbredir | usbip | spice) ;; *) echo "guest-bench: transport usbredir, usbip or spice" >&2; exit 2 ;; esac
# spice: vstick as a SPICE client on the VM's spicevmc usbredir channel ("vstick"), beside
# vstick on a usbredir socket chardev ("vstickb", the same binary unless VSTICK_BIN_B says
# otherwise) and QEMU's usb-storage, in one boot.
if [ "$transport" = spice ]; then
    VSTICK_BIN_B=${VSTICK_BIN_B:-__same__}
fi

# --- binaries (release: a debug vstick would measure the compiler, not the design) ------

target=${CARGO_TARGET_DIR:-$REPO/target}
if [ -z "${VSTICK_BIN:-}" ] || [ -z "${VSTICK_GUEST_IO:-}" ]; then
    note "cargo build --release -p vstick -p vstick-bench"
    (cd "$REPO" && cargo build --release -q -p vstick -p vstick-bench)
fi
export VSTICK_BIN=${VSTICK_BIN:-$target/release/vstick}
[ "${VSTICK_BIN_B:-}" != __same__ ] || VSTICK_BIN_B=$VSTICK_BIN
guest_io=${VSTICK_GUEST_IO:-$target/release/vstick-guest-io}

work=$(make_workdir "bench-$transport")

# --- media: images of the same size and content, warm in the host page cache ------------

head -c $((size_mib << 20)) /dev/urandom >"$work/vstick.raw"
cp "$work/vstick.raw" "$work/qemu.raw"
# A/B runs: a second vstick (VSTICK_BIN_B, usbredir only) serves an image one MiB larger,
# which is how the guest tells the two apart.
if [ -n "${VSTICK_BIN_B:-}" ]; then
    [ "$transport" != usbip ] || { echo "guest-bench: VSTICK_BIN_B needs usbredir or spice" >&2; exit 2; }
    cp "$work/vstick.raw" "$work/vstickb.raw"
    truncate -s $(((size_mib + 1) << 20)) "$work/vstickb.raw"
    case " $devices " in *" vstickb "*) ;; *) devices="vstick vstickb ${devices#vstick }" ;; esac
fi
cat "$work"/*.raw >/dev/null
note "images: $size_mib MiB ($devices)"

# redir_place NAME PORT SOCKET: vstick's --usbredir argument and QEMU's chardev address.
redir_place() {
    if [ "$3" = unix ]; then
        place="unix:$work/$1.sock" chardev_addr="path=$work/$1.sock"
    else
        place="127.0.0.1:$2" chardev_addr="host=127.0.0.1,port=$2"
    fi
}
port=$(free_port)
redir_place vstick "$port" "${VSTICK_BENCH_SOCKET:-tcp}"
[ "$transport" = usbredir ] || place="127.0.0.1:$port"
[ "$transport" != spice ] || place="spice://127.0.0.1:$port"
place_a=$place chardev_a=$chardev_addr
start_vstick "$work/vstick.log" "--$transport" "$place_a" --disk "$work/vstick.raw" || exit 1
pid_a=$VSTICK_PID
pid_b=""
note "vstick pid $pid_a ($VSTICK_BIN)"
if [ -n "${VSTICK_BIN_B:-}" ]; then
    port_b=$(free_port)
    redir_place vstickb "$port_b" "${VSTICK_BENCH_SOCKET_B:-tcp}"
    place_b=$place chardev_b=$chardev_addr
    "$VSTICK_BIN_B" serve --usbredir "$place_b" --disk "$work/vstickb.raw" >"$work/vstickb.log" 2>&1 &
    pid_b=$!
    note "vstick B pid $pid_b ($VSTICK_BIN_B)"
fi
stop_all() {
    stop_vstick >/dev/null 2>&1 || true
    if [ -n "$pid_b" ]; then
        kill -TERM "$pid_b" 2>/dev/null || true
        wait "$pid_b" 2>/dev/null || true
        pid_b=""
    fi
}
trap stop_all EXIT
hook_pid=""
if [ -n "${VSTICK_BENCH_HOOK:-}" ]; then
    # shellcheck disable=SC2086 # the hook is a command line
    ${VSTICK_BENCH_HOOK} "$pid_a" &
    hook_pid=$!
fi

qemu_args=(
    -name vstick-bench,debug-threads=on # thread names ("CPU 0/TCG", "worker"), for pinning
    -drive "if=none,id=q0,file=$work/qemu.raw,format=raw"
    -device usb-storage,drive=q0,bus=xhci.0
)
run_args=()
# VSTICK_BENCH_APPEND: extra guest kernel command line (the same for every device).
[ -z "${VSTICK_BENCH_APPEND:-}" ] || run_args+=(--append "$VSTICK_BENCH_APPEND")
guest_env=(
    --env "TRANSPORT=$transport" --env "REPS=$reps" --env "SEQ_BYTES=$((seq_mib << 20))"
    --env "SECONDS_CAP=$seconds_cap" --env "RAND_COUNT=$rand_count"
    --env "OPS=$ops" --env "DEVICES=$devices" --env "DISK_BYTES=$((size_mib << 20))"
)
if [ "$transport" = usbip ]; then
    run_args+=(--net)
    guest_env+=(--env USBIP_HOST=10.0.2.2 --env "USBIP_PORT=$port" --env USBIP_BUSID=1-1)
elif [ "$transport" = spice ]; then
    # QEMU's SPICE server and one spicevmc usbredir channel; vstick dials it (and retries
    # until it listens).
    qemu_spice_args qemu_args "$port"
    qemu_args+=(
        -chardev "socket,id=r1,$chardev_b,reconnect=1"
        -device usb-redir,chardev=r1,bus=xhci.0
    )
else
    qemu_args+=(
        -chardev "socket,id=r0,$chardev_a,reconnect=1${VSTICK_BENCH_CHARDEV_OPTS:-}"
        -device usb-redir,chardev=r0,bus=xhci.0
    )
    if [ -n "$pid_b" ]; then
        qemu_args+=(
            -chardev "socket,id=r1,$chardev_b,reconnect=1${VSTICK_BENCH_CHARDEV_OPTS_B-${VSTICK_BENCH_CHARDEV_OPTS:-}}"
            -device usb-redir,chardev=r1,bus=xhci.0
        )
    fi
fi

# The I/O driver and the shared libraries it needs.
files=()
guest_binary_files files "$guest_io" /usr/bin/vstick-guest-io

: >"$work/cpu.log"
timeout=$((reps * 3 * 3 * (seconds_cap + 4) + 180))
guest_rc=0
"$GUEST_TESTS/run-guest" --log "$work/console.log" --timeout "$timeout" \
    --host-hook "$BENCH_DIR/lib/cpu-sample $work/cpu.log $pid_a $pid_b" \
    "${guest_env[@]}" "${files[@]}" "${run_args[@]+"${run_args[@]}"}" \
    "$BENCH_DIR/in-guest-bench.sh" -- "${qemu_args[@]}" || guest_rc=$?
total_ticks=$(awk '{print $14 + $15}' "/proc/$pid_a/stat")
stop_all
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
attached() { # dev
    echo "$(value_of "$1.speed") Mbit/s, bcdUSB $(value_of "$1.bcdusb"), max_sectors_kb $(value_of "$1.max_sectors_kb")"
}
{
    echo "Transport: **$transport**; $reps repetitions; images ${size_mib} MiB; sequential runs ${seq_mib} MiB (1 MiB O_DIRECT), random runs $rand_count x 4 KiB O_DIRECT reads (QD1); each run capped at ${seconds_cap} s; devices interleaved, order alternating per repetition."
    echo
    for d in $devices; do
        case $d in qemu) name="QEMU usb-storage" ;; vstickb) name="vstick B" ;; *) name=vstick ;; esac
        echo "- $name: $(attached "$d")"
    done
    echo
    awk -v hz="$hz" -v cpulog="$work/cpu.log" -v devlist="$devices" '
        function field(name,   i, kv) {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == name) return kv[2] }
            return ""
        }
        function rate(dev, op) {
            if (secs[dev, op] == 0) return 0
            return op == "rand-read" ? ops[dev, op] / secs[dev, op] : bytes[dev, op] / secs[dev, op] / 1e6
        }
        BEGIN {
            while ((getline line < cpulog) > 0) {
                split(line, w, " ")
                key = w[1] "," w[2] "," w[3]
                if (w[4] == "begin") begin[key] = w[5]
                if (w[4] == "end") cpu[w[1], w[2]] += w[5] - begin[key]
            }
        }
        {
            dev = field("dev"); op = field("op")
            bytes[dev, op] += field("bytes"); ops[dev, op] += field("ops"); secs[dev, op] += field("secs")
            r = (op == "rand-read") ? field("ops") / field("secs") : field("bytes") / field("secs") / 1e6
            runs[dev, op] = runs[dev, op] sprintf("%s%.0f", runs[dev, op] == "" ? "" : " ", r)
            if (field("guest_busy") != "") { busy[dev, op] += field("guest_busy"); nbusy[dev, op]++ }
        }
        END {
            nd = split(devlist, devs, " ")
            head = "| workload |"; rule = "|---|"
            for (d = 1; d <= nd; d++) { head = head " " label(devs[d]) " |"; rule = rule "---:|" }
            for (d = 1; d <= nd; d++) if (devs[d] != "qemu") { head = head " " label(devs[d]) " / QEMU |"; rule = rule "---:|" }
            for (d = 1; d <= nd; d++) if (devs[d] != "qemu") { head = head " " label(devs[d]) " CPU |"; rule = rule "---:|" }
            head = head " runs (" devlist ") |"; rule = rule "---|"
            print head; print rule
            n = split("seq-read seq-write rand-read", opsl, " ")
            for (i = 1; i <= n; i++) {
                op = opsl[i]
                if (rate("qemu", op) == 0 && rate(devs[1], op) == 0) continue
                unit = (op == "rand-read") ? "IOPS" : "MB/s"
                name = (op == "seq-read") ? "1 MiB sequential read" : (op == "seq-write") ? "1 MiB sequential write" : "4 KiB random read (QD1)"
                line = "| " name " |"
                for (d = 1; d <= nd; d++) line = line sprintf(" %.1f %s |", rate(devs[d], op), unit)
                for (d = 1; d <= nd; d++) if (devs[d] != "qemu") {
                    q = rate("qemu", op)
                    line = line (q > 0 ? sprintf(" **%.2f** |", rate(devs[d], op) / q) : " - |")
                }
                for (d = 1; d <= nd; d++) if (devs[d] != "qemu") {
                    dev = devs[d]
                    if (op == "rand-read")
                        c = ops[dev, op] > 0 ? sprintf("%.0f us/op", cpu[dev, op] / hz / ops[dev, op] * 1e6) : "-"
                    else
                        c = bytes[dev, op] > 0 ? sprintf("%.2f s/GB", cpu[dev, op] / hz / (bytes[dev, op] / 1e9)) : "-"
                    line = line " " c " |"
                }
                r = ""
                for (d = 1; d <= nd; d++) r = r (d > 1 ? " / " : "") runs[devs[d], op]
                print line " " r " |"
            }
            # How busy the guest kernel was (not its idle loop): a guest that waits is not the bottleneck.
            printf "\nGuest CPU busy during the runs (mean of /proc/stat in the guest):"
            for (d = 1; d <= nd; d++) {
                printf " %s", label(devs[d])
                for (i = 1; i <= n; i++) if (nbusy[devs[d], opsl[i]] > 0)
                    printf " %s %.0f %%", opsl[i], busy[devs[d], opsl[i]] / nbusy[devs[d], opsl[i]]
                printf "%s", d < nd ? ";" : ".\n"
            }
        }
        function label(dev) { return dev == "qemu" ? "QEMU usb-storage" : dev == "vstickb" ? "vstick B" : "vstick" }
    ' "$work/results.txt"
    echo
    echo "vstick CPU over the whole boot: $(awk -v t="$total_ticks" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }') s (utime + stime of the vstick process; CPU columns: the same, sampled around each vstick run)."
} | tee "$work/results.md"
[ -z "$out" ] || cp "$work/results.md" "$out"
note "raw results: $work/results.txt, console: $work/console.log"
