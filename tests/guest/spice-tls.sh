#!/usr/bin/env bash
# The basic acceptance test over SPICE on the server's TLS port, with a password: QEMU
# `-spice tls-port=P,x509-dir=D,password-secret=ID` (a test CA made by openssl), `vstick serve
# --spice spice+tls://127.0.0.1:P --spice-ca D/ca-cert.pem --spice-password-file F`, then the
# in-guest checks of basic.sh. vstick only (spice.sh runs the QEMU reference; skipped here).
export VSTICK_TRANSPORT=spice-tls
exec "$(dirname "${BASH_SOURCE[0]}")/basic.sh" "$@"
