#!/usr/bin/env bash
# usbredir over TLS: vstick serves with --tls-cert/--tls-key, QEMU connects as a TLS client
# (-object tls-creds-x509,endpoint=client + -chardev socket,...,tls-creds=...), and a real
# Linux guest formats, writes and reads the disk through it.
#
#   tests/guest/tls.sh      (vstick only; the qemu reference mode has nothing to compare: SKIP)
#
# The test makes its own CA and server certificate with openssl. QEMU checks the chain
# against DIR/ca-cert.pem and the certificate's names against the chardev's host
# (127.0.0.1), so the certificate carries IP:127.0.0.1 as a subjectAltName. A client that
# does not speak TLS must be turned away without disturbing the server.
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-lib.sh"

DISK_BYTES=$((64 * 1024 * 1024))
RANDOM_MB=4

if [ "$MODE" != vstick ]; then
    note "tls: vstick's TLS transport has no QEMU reference device; skipped"
    exit 77
fi
for tool in openssl python3; do
    command -v "$tool" >/dev/null || { echo "tls: $tool is missing" >&2; exit 1; }
done

work=$(make_workdir tls)
trap 'stop_vstick >/dev/null 2>&1 || true' EXIT
truncate -s "$DISK_BYTES" "$work/disk.raw"

# --- certificates ---------------------------------------------------------------------------

tls=$work/tls
mkdir -p "$tls"
(
    cd "$tls"
    # QEMU (GnuTLS) insists on a CA with basicConstraints CA:TRUE and keyCertSign.
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=vstick test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout ca-key.pem -out ca-cert.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server-key.pem -out server.csr
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
        -extfile server.ext -out server-cert.pem
) >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log"; exit 1; }
# QEMU's client directory holds only what a client needs: the CA.
mkdir -p "$work/qemu-tls"
cp "$tls/ca-cert.pem" "$work/qemu-tls/"
note "certificates ready (CA + server cert for 127.0.0.1)"

# --- vstick with TLS --------------------------------------------------------------------------

port=$(free_port)
start_vstick "$work/vstick.log" --usbredir "127.0.0.1:$port" --disk "$work/disk.raw" \
    --tls-cert "$tls/server-cert.pem" --tls-key "$tls/server-key.pem" -v || exit 1

# A plain-text usbredir client gets no usbredir hello: the server answers with TLS (or
# closes), and keeps serving.
plain=$(PYTHONPATH="$HOST_LIB_DIR" python3 - "$port" <<'PY'
import sys
from peers import connect, recv_exactly, redir_hello, is_redir_hello
s = connect(int(sys.argv[1]))
s.sendall(redir_hello(b"plain client"))
got = recv_exactly(s, 80, 5)
# TLS records start with 0x15/0x16.
print("usbredir-hello" if is_redir_hello(got) else f"refused:{got[:1].hex() or 'closed'}")
PY
)
case "$plain" in
refused:*) host_ok plain-client-refused "$plain" ;;
*) host_fail plain-client-refused "a plain-text client got: $plain" ;;
esac
kill -0 "$VSTICK_PID" 2>/dev/null && host_ok vstick-alive-after-plain-client || host_fail vstick-alive-after-plain-client "vstick exited"

# Wrong trust: openssl s_client with a CA that did not sign the server certificate fails
# verification, with the right one it succeeds (the server presents the chain we gave it).
verify=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$port" -CAfile "$tls/ca-cert.pem" \
    -verify_ip 127.0.0.1 -verify_return_error 2>&1 </dev/null | grep -m1 'Verify return code' || true)
case "$verify" in
*"0 (ok)"*) host_ok server-cert-verifies "$verify" ;;
*) host_fail server-cert-verifies "openssl s_client: ${verify:-no verify line}" ;;
esac

# --- the guest over TLS ----------------------------------------------------------------------

device_args=(-object "tls-creds-x509,id=tls0,dir=$work/qemu-tls,endpoint=client")
qemu_redir_args device_args "host=127.0.0.1,port=$port" ",tls-creds=tls0"
guest_rc=0
"$GUEST_TESTS/run-guest" --log "$work/console.log" \
    --env "DISK_BYTES=$DISK_BYTES" --env "RANDOM_MB=$RANDOM_MB" \
    "$GUEST_TESTS/in-guest/disk-rw.sh" -- "${device_args[@]}" || guest_rc=$?

if grep -q "TLS handshake done" "$work/vstick.log"; then
    host_ok qemu-used-tls
else
    host_fail qemu-used-tls "no completed TLS handshake in the vstick log"
fi
stop_vstick_after_guest "$work" "$guest_rc"
if [ "$guest_rc" -ne 0 ] && [ -s "$work/console.log.qemu" ]; then
    sed 's/^/    qemu: /' "$work/console.log.qemu"
fi

# --- the guest's file reached the image -----------------------------------------------------

host_check_disk_file "$work"

host_finish tls "$guest_rc"
