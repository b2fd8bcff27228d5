# shellcheck shell=bash
# Host side of the libiscsi conformance runs (conformance.sh, gadget-conformance.sh): the
# summaries in-guest/conformance.sh reported, and the checks on them. Source it after
# host-lib.sh.

# conformance_report LOG TARGET...: print each suite's summary line from the guest's
# console LOG; every TARGET (NAME:VENDOR:BYTES:BLOCK_SIZE:SUITE, as given to the guest)
# must have run, and those named vstick-* must have had no failure (the references'
# failures are theirs, printed only).
conformance_report() {
    local log=$1 t name total failed
    shift
    echo "  libiscsi iscsi-test-cu in one boot:"
    tr -d '\r' <"$log" | sed -n 's/^VSTICK-INFO libiscsi /    /p'
    for t in "$@"; do
        name=${t%%:*}
        total=$(guest_value "$log" "$name-total")
        failed=$(guest_value "$log" "$name-failed")
        host_expect_eq "$name-ran" "$([ "${total:-0}" -gt 0 ] && echo yes || echo "no (${total:-none})")" yes
        case "$name" in
        vstick-*) host_expect_eq "$name-failures" "${failed:-none}" 0 ;;
        esac
    done
}

# conformance_compare_skips LOG NAME REF_NAME REF_LABEL: NAME's suite must not have
# skipped more checks as not implemented than REF_NAME's (REF_LABEL in the check's name).
conformance_compare_skips() {
    local vs rs
    vs=$(guest_value "$1" "$2-skipped")
    rs=$(guest_value "$1" "$3-skipped")
    if [ -n "$vs" ] && [ -n "$rs" ] && [ "$vs" -le "$rs" ]; then
        host_ok "skips-not-more-than-$4" "vstick $vs, $4 $rs"
    else
        host_fail "skips-not-more-than-$4" "vstick ${vs:-?}, $4 ${rs:-?}"
    fi
}
