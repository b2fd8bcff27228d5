#!/usr/bin/env bash
# The basic acceptance test over SPICE: QEMU's SPICE server with a spicevmc usbredir channel
# (-chardev spicevmc,name=usbredir), `vstick serve --spice spice://127.0.0.1:PORT` as the SPICE
# client offering the stick on it, then the same in-guest checks as basic.sh. The qemu
# reference mode runs those checks on QEMU's usb-storage in the same VM shape.
export VSTICK_TRANSPORT=spice
exec "$(dirname "${BASH_SOURCE[0]}")/basic.sh" "$@"
