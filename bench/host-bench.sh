#!/usr/bin/env bash
# Host-only benchmark of running vstick servers, no guest: for each BINARY (default: the
# release build of this tree), start `BINARY serve --usbredir` on a 64 MiB image in the
# page cache, drive it with the loopback usb-guest client of crates/bench
# (benches/usbredir_loopback.rs, READ(10)/WRITE(10) of 4 KiB ... 1 MiB, one command at a
# time) interleaved with the raw loopback-socket limit, and print its table with the
# server's CPU time per command and per GB.
#
#   bench/host-bench.sh [--seconds S] [--qemu-reads] [BINARY...]
#
# BINARY may be a wrapper script that sets an environment and execs vstick.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
target=${CARGO_TARGET_DIR:-$REPO/target}
bench_args=()
binaries=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) bench_args+=(--seconds "$2"); shift 2 ;;
    --qemu-reads) bench_args+=(--qemu-reads); shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) binaries+=("$1"); shift ;;
    esac
done
(cd "$REPO" && cargo build --release -q -p vstick -p vstick-bench --benches)
[ ${#binaries[@]} -gt 0 ] || binaries=("$target/release/vstick")
# The bench executable cargo built (the newest, should several hashes exist).
bench_exe=$(ls -t "$target"/release/deps/usbredir_loopback-* | grep -v '\.d$' | head -n 1)

work=$(mktemp -d "${TMPDIR:-/tmp}/vstick-host-bench.XXXXXX")
server_pid=""
cleanup() {
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
head -c $((64 << 20)) /dev/urandom >"$work/disk.raw"

for bin in "${binaries[@]}"; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$bin" serve --usbredir "127.0.0.1:$port" --disk "$work/disk.raw" >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    echo "### $bin"
    echo
    # The probe connection above was refused or closed at once; vstick serves the next.
    "$bench_exe" --connect "127.0.0.1:$port" --server-pid "$server_pid" "${bench_args[@]+"${bench_args[@]}"}"
    echo
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=""
done
