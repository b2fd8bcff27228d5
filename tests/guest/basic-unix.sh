#!/usr/bin/env bash
# The basic acceptance test with usbredir on a Unix socket: `vstick serve --usbredir
# unix:PATH`, QEMU `-chardev socket,path=PATH`, then the same checks as over TCP.
# vstick only (basic.sh runs the QEMU reference; skipped in qemu mode).
export VSTICK_TRANSPORT=usbredir-unix
exec "$(dirname "${BASH_SOURCE[0]}")/basic.sh" "$@"
