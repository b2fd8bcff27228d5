#!/usr/bin/env bash
# The basic acceptance test over USB/IP: the guest attaches vstick's device with the
# real `usbip` tool (vhci-hcd) across QEMU user networking, then runs the same checks
# as over usbredir. vstick only (QEMU has no USB/IP reference device: skipped in qemu mode).
export VSTICK_TRANSPORT=usbip
exec "$(dirname "${BASH_SOURCE[0]}")/basic.sh" "$@"
