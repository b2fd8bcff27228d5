# shellcheck shell=sh disable=SC2154 # vpid is the caller's
# In-guest helpers of bench/gadget-bench.sh and bench/local-bench.sh (busybox sh, sourced
# after guest-lib.sh as /lib/vstick/bench-pair.sh): one vstick device against one kernel
# reference device, the workloads interleaved. The caller sets vpid (the guest's vstick
# process); SIZE_MIB is the image size.

IO=/usr/bin/vstick-guest-io

# vstick's user and system CPU ticks (USER_HZ, 100 per second).
vticks() { awk '{ print $14, $15 }' "/proc/$vpid/stat"; }

# run NAME DEV OP REP: one vstick-guest-io run of OP on /dev/DEV, printed as
#   VSTICK-BENCH dev=NAME op=OP rep=REP bytes=.. ops=.. secs=.. vuser=TICKS vsys=TICKS
run() {
    case $3 in
    seq-read | seq-write) args="--bs 1M --bytes $((SIZE_MIB << 20)) --seconds 20" ;;
    rand-read) args="--bs 4K --count 3000 --seconds 20 --span $((SIZE_MIB << 20)) --seed $4" ;;
    esac
    t0=$(vticks)
    # shellcheck disable=SC2086 # args is a list of words
    if res=$($IO "$3" "/dev/$2" $args 2>&1); then
        echo "VSTICK-BENCH dev=$1 op=$3 rep=$4 $res $(echo "$t0 $(vticks)" | awk '{ print "vuser=" $3 - $1, "vsys=" $4 - $2 }')"
    else
        fail "bench-$1-$3-$4" "$res"
    fi
}

# interleave REPS "OPS" NAME_A DEV_A NAME_B DEV_B: per repetition, per workload, both
# devices back to back, A first in odd repetitions and B first in even ones.
interleave() {
    rep=1
    while [ "$rep" -le "$1" ]; do
        for op in $2; do
            if [ $((rep % 2)) = 1 ]; then
                run "$3" "$4" "$op" "$rep"
                run "$5" "$6" "$op" "$rep"
            else
                run "$5" "$6" "$op" "$rep"
                run "$3" "$4" "$op" "$rep"
            fi
        done
        rep=$((rep + 1))
    done
}

# stop_vstick_and_finish: SIGTERM to vstick, which must exit 0; then the guest's result.
stop_vstick_and_finish() {
    kill -TERM "$vpid"
    wait "$vpid"
    expect_eq exit-status "$?" 0
    finish
}
