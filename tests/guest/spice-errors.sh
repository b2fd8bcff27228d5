#!/usr/bin/env bash
# vstick as a SPICE client against QEMU's real SPICE server, the cases around the data path:
# password (password-secret) right, wrong and missing; a VM without a usbredir channel; a
# server that wants TLS for usbredir (TLS with --spice-ca: right CA, wrong CA, wrong name;
# host-subject right and wrong);
# --spice-channel among two channels; a second client
# replacing vstick's session; a .vv file through tinyproxy (and a proxy that refuses); QEMU going away and coming back (reconnect). The VMs boot
# nothing (the firmware idles): the SPICE server and usb-redir are all that is tested here;
# spice.sh runs a real guest over SPICE.
#
#   tests/guest/spice-errors.sh   (vstick only; the qemu reference mode has no SPICE client: SKIP)
. "$(dirname "${BASH_SOURCE[0]}")/lib/host-lib.sh"

if [ "$MODE" != vstick ]; then
    note "spice-errors: vstick's SPICE client has no QEMU reference device; skipped"
    exit 77
fi
work=$(make_workdir spice-errors)
QEMU_PID=""
stop_qemu() {
    [ -n "$QEMU_PID" ] || return 0
    kill "$QEMU_PID" 2>/dev/null || true
    wait "$QEMU_PID" 2>/dev/null || true
    QEMU_PID=""
}
trap 'stop_qemu; stop_vstick >/dev/null 2>&1 || true' EXIT
truncate -s 16M "$work/disk.raw"
bin=$(vstick_bin)
PASSWORD="pw-$RANDOM-$RANDOM"
printf '%s\n' "$PASSWORD" >"$work/password"
printf 'not-it\n' >"$work/wrong"

# start_qemu NAME PORT SPICE_OPTIONS CHANNELS [QEMU ARGS...]: an idle VM with a SPICE server.
start_qemu() {
    local name=$1 port=$2 opts=$3 channels=$4 i
    shift 4
    local args=()
    qemu_machine_args args 128
    qemu_spice_args args "$port" "$opts" "$channels"
    qemu-system-x86_64 "${args[@]}" "$@" >"$work/qemu-$name.log" 2>&1 &
    QEMU_PID=$!
    for i in $(seq 50); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && return 0
        sleep 0.2
    done
    host_fail "qemu-$name" "QEMU's SPICE server never listened: $(tail -n 3 "$work/qemu-$name.log")"
    return 1
}

# serve_once NAME SECONDS ARGS...: vstick serve --disk-ro disk.raw -v ARGS for at most SECONDS;
# its exit status in $rc, its output in $work/NAME.log.
serve_once() {
    local name=$1 secs=$2
    shift 2
    rc=0
    timeout "$secs" "$bin" serve --disk-ro "$work/disk.raw" -v "$@" >"$work/$name.log" 2>&1 || rc=$?
}

# expect_line NAME RC PATTERN: vstick exited with RC and its last line matches PATTERN.
expect_line() {
    local last
    last=$(tail -n 1 "$work/$1.log")
    if [ "$rc" = "$2" ] && grep -qE -- "$3" <<<"$last"; then host_ok "$1" "$last"; else host_fail "$1" "rc=$rc: $last"; fi
}

# expect_linked NAME [CHANNEL]: the log shows a linked usbredir channel and QEMU's usbredir hello.
expect_linked() {
    if grep -q "usbredir channel linked.*channel=${2:-[0-9]}" "$work/$1.log" && grep -q "usbredir hello received" "$work/$1.log"; then
        host_ok "$1"
    else
        host_fail "$1" "no linked channel ${2:-} with a usbredir hello: $(grep -v DEBUG "$work/$1.log" | tail -n 2 | tr '\n' ' ')"
    fi
}

# --- password (QEMU password-secret) -----------------------------------------------------------
port=$(free_port)
start_qemu password "$port" ",password-secret=pw0" 1 -object "secret,id=pw0,data=$PASSWORD" || exit 1
serve_once password-right 6 --spice "spice://127.0.0.1:$port" --spice-password-file "$work/password"
expect_linked password-right
serve_once password-wrong 10 --spice "spice://127.0.0.1:$port" --spice-password-file "$work/wrong"
expect_line password-wrong 1 "refused the password"
serve_once password-missing 10 --spice "spice://127.0.0.1:$port"
expect_line password-missing 1 "wants a password.*--spice-password-file"
if grep -rqF -- "$PASSWORD" "$work"/*.log; then
    host_fail password-not-logged "the password appears in $(grep -rlF -- "$PASSWORD" "$work"/*.log | tr '\n' ' ')"
else
    host_ok password-not-logged
fi
stop_qemu

# --- no usbredir channel; TLS wanted --------------------------------------------------------------
port=$(free_port)
start_qemu none "$port" ",disable-ticketing=on" 0 || exit 1
serve_once no-channel 10 --spice "spice://127.0.0.1:$port"
expect_line no-channel 1 "has no SPICE usbredir channel"
stop_qemu

tls=$work/x509
mkdir -p "$tls"
(
    cd "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=vstick test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout ca-key.pem -out ca-cert.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server-key.pem -out server.csr
    printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
        -extfile server.ext -out server-cert.pem
    # A CA that signed nothing here.
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other CA" -keyout other-key.pem -out other-ca.pem
) >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log"; exit 1; }
port=$(free_port)
tls_port=$(free_port)
# The usbredir channel only on the TLS port (QEMU tls-channel=usbredir); main on either.
start_qemu tls "$port" ",tls-port=$tls_port,x509-dir=$tls,disable-ticketing=on,tls-channel=usbredir" 1 || exit 1
serve_once plain-to-tls-port 10 --spice "spice://127.0.0.1:$tls_port"
expect_line plain-to-tls-port 1 "closed the connection without answering the link: is this its TLS port"
serve_once tls-wanted 10 --spice "spice://127.0.0.1:$port"
expect_line tls-wanted 1 "wants TLS for this channel on port $port: give its TLS port"
serve_once tls-no-ca 10 --spice "spice://127.0.0.1?port=$port&tls-port=$tls_port"
expect_line tls-no-ca 1 "wants TLS \(its TLS port is $tls_port\): give the CA"
serve_once tls-usbredir 6 --spice "spice://127.0.0.1?port=$port&tls-port=$tls_port" --spice-ca "$tls/ca-cert.pem" -vv
expect_linked tls-usbredir 0
grep -q 'linked what="main".*tls=false' "$work/tls-usbredir.log" && grep -q "channel linked.*tls=true" "$work/tls-usbredir.log" \
    && host_ok tls-usbredir-only-on-tls || host_fail tls-usbredir-only-on-tls "main plain and usbredir over TLS expected"
serve_once tls-all 6 --spice "spice+tls://127.0.0.1:$tls_port" --spice-ca "$tls/ca-cert.pem" -vv
expect_linked tls-all 0
grep -q 'linked what="main".*tls=true' "$work/tls-all.log" && host_ok tls-main-on-tls || host_fail tls-main-on-tls "main not over TLS"
serve_once tls-wrong-ca 10 --spice "spice+tls://127.0.0.1:$tls_port" --spice-ca "$tls/other-ca.pem"
expect_line tls-wrong-ca 1 "TLS with the SPICE server at 127.0.0.1:$tls_port failed: .*UnknownIssuer"
serve_once tls-wrong-name 10 --spice "spice+tls://localhost:$tls_port" --spice-ca "$tls/ca-cert.pem"
expect_line tls-wrong-name 1 "TLS with the SPICE server at localhost:$tls_port failed: .*not valid for name"
stop_qemu

# --- host-subject: a certificate that does not name the host, checked by its subject ----------------
subj=$work/x509-subject
mkdir -p "$subj"
cp "$tls/ca-cert.pem" "$subj/"
(
    cd "$subj"
    openssl req -newkey rsa:2048 -nodes -subj "/C=XX/O=vstick test/CN=spice-node" -keyout server-key.pem -out server.csr
    echo "subjectAltName=DNS:spice-node.invalid" >server.ext
    openssl x509 -req -in server.csr -CA "$tls/ca-cert.pem" -CAkey "$tls/ca-key.pem" -CAcreateserial -days 2 \
        -extfile server.ext -out server-cert.pem
) >>"$work/openssl.log" 2>&1 || { cat "$work/openssl.log"; exit 1; }
port=$(free_port)
tls_port=$(free_port)
start_qemu subject "$port" ",tls-port=$tls_port,x509-dir=$subj,disable-ticketing=on" 1 || exit 1
serve_once subject-right 6 --spice "spice+tls://127.0.0.1:$tls_port" --spice-ca "$tls/ca-cert.pem" \
    --spice-host-subject "C=XX, O=vstick test, CN=spice-node"
expect_linked subject-right 0
serve_once subject-wrong 10 --spice "spice+tls://127.0.0.1:$tls_port" --spice-ca "$tls/ca-cert.pem" \
    --spice-host-subject "C=XX,O=vstick test,CN=other-node"
expect_line subject-wrong 1 "subject C=XX,O=vstick test,CN=spice-node is not the host-subject"
serve_once subject-wrong-ca 10 --spice "spice+tls://127.0.0.1:$tls_port" --spice-ca "$tls/other-ca.pem" \
    --spice-host-subject "C=XX,O=vstick test,CN=spice-node"
expect_line subject-wrong-ca 1 "UnknownIssuer"
# The same from a .vv file, host a name the certificate does not carry (as Proxmox's proxy tickets).
{
    echo "[virt-viewer]"
    echo "type=spice"
    echo "host=127.0.0.1"
    echo "tls-port=$tls_port"
    echo "host-subject=C=XX,O=vstick test,CN=spice-node"
    printf 'ca=%s\n' "$(awk '{printf "%s\\n", $0}' "$tls/ca-cert.pem")"
} >"$work/subject.vv"
serve_once subject-vv 6 --spice-vv "$work/subject.vv"
expect_linked subject-vv 0
stop_qemu

# --- a virt-viewer file through an HTTP CONNECT proxy (tinyproxy), as Proxmox VE hands out -------
if command -v tinyproxy >/dev/null; then
    proxy_port=$(free_port)
    refusing_port=$(free_port)
    for p in "$proxy_port" "$refusing_port"; do
        printf '%s\n' "Port $p" "Listen 127.0.0.1" "Timeout 60" "Allow 127.0.0.1" "LogLevel Connect" \
            "LogFile \"$work/tinyproxy-$p.log\"" >"$work/tinyproxy-$p.conf"
    done
    # The second proxy only tunnels to port 443 (tinyproxy answers 403 otherwise).
    echo "ConnectPort 443" >>"$work/tinyproxy-$refusing_port.conf"
    tinyproxy -d -c "$work/tinyproxy-$proxy_port.conf" >"$work/tinyproxy-out.log" 2>&1 &
    proxy_pid=$!
    tinyproxy -d -c "$work/tinyproxy-$refusing_port.conf" >>"$work/tinyproxy-out.log" 2>&1 &
    refusing_pid=$!
    port=$(free_port)
    tls_port=$(free_port)
    start_qemu vv "$port" ",tls-port=$tls_port,x509-dir=$tls,password-secret=pw0,tls-channel=usbredir" 1 \
        -object "secret,id=pw0,data=$PASSWORD" || exit 1
    # write_vv FILE PROXY_PORT: host, both ports, the password, the CA with \n escapes, the proxy.
    write_vv() {
        {
            echo "[virt-viewer]"
            echo "type=spice"
            echo "host=127.0.0.1"
            echo "port=$port"
            echo "tls-port=$tls_port"
            echo "password=$PASSWORD"
            echo "delete-this-file=0"
            echo "proxy=http://127.0.0.1:$2"
            printf 'ca=%s\n' "$(awk '{printf "%s\\n", $0}' "$tls/ca-cert.pem")"
            echo "title=vstick test"
        } >"$1"
    }
    write_vv "$work/vm.vv" "$proxy_port"
    write_vv "$work/refused.vv" "$refusing_port"
    serve_once vv-proxy 6 --spice-vv "$work/vm.vv" -vv
    expect_linked vv-proxy 0
    if [ "$(grep -c "HTTP CONNECT tunnel open" "$work/vv-proxy.log")" -ge 2 ] && grep -q "channel linked.*tls=true" "$work/vv-proxy.log" \
        && grep -q "Established connection" "$work/tinyproxy-$proxy_port.log"; then
        host_ok vv-through-proxy-with-tls
    else
        host_fail vv-through-proxy-with-tls "no CONNECT tunnels or no TLS usbredir channel"
    fi
    serve_once vv-proxy-refuses 10 --spice-vv "$work/refused.vv"
    expect_line vv-proxy-refuses 1 "HTTP proxy 127.0.0.1:$refusing_port: refused the tunnel to 127.0.0.1:$port: HTTP/1.[01] 403"
    if grep -rqF -- "$PASSWORD" "$work"/vv-*.log "$work"/tinyproxy-*.log; then
        host_fail vv-password-not-logged "the password appears in a log"
    else
        host_ok vv-password-not-logged
    fi
    stop_qemu
    kill "$proxy_pid" "$refusing_pid" 2>/dev/null || true
    wait "$proxy_pid" "$refusing_pid" 2>/dev/null || true
else
    note "tinyproxy is not installed: the .vv/proxy checks are skipped (apt-get install tinyproxy)"
fi

# --- two channels: --spice-channel; a second client replaces the session --------------------------
port=$(free_port)
start_qemu two "$port" ",disable-ticketing=on" 2 || exit 1
serve_once channel-1 6 --spice "spice://127.0.0.1:$port" --spice-channel 1
expect_linked channel-1 1
serve_once channel-5 10 --spice "spice://127.0.0.1:$port" --spice-channel 5
expect_line channel-5 1 "no SPICE usbredir channel 5 \(its usbredir channels: 0, 1\)"
start_vstick "$work/replaced.log" --disk-ro "$work/disk.raw" -v --spice "spice://127.0.0.1:$port" || exit 1
sleep 2
serve_once replacer 4 --spice "spice://127.0.0.1:$port"
expect_linked replacer 0
for _ in $(seq 25); do kill -0 "$VSTICK_PID" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$VSTICK_PID" 2>/dev/null; then
    host_fail replaced "vstick still runs after another client took the session: $(grep -v DEBUG "$work/replaced.log" | tail -n 1)"
    stop_vstick >/dev/null
else
    rc=0
    wait "$VSTICK_PID" || rc=$?
    VSTICK_PID=""
    expect_line replaced 1 "another SPICE client connected to this VM and took over"
fi
stop_qemu

# --- the server goes away and comes back: vstick reconnects -----------------------------------------
port=$(free_port)
start_qemu lost "$port" ",disable-ticketing=on" 1 || exit 1
start_vstick "$work/reconnect.log" --disk-ro "$work/disk.raw" -v --spice "spice://127.0.0.1:$port" || exit 1
sleep 2
stop_qemu
sleep 1
start_qemu back "$port" ",disable-ticketing=on" 1 || exit 1
for _ in $(seq 40); do
    [ "$(grep -c "usbredir channel linked" "$work/reconnect.log")" -ge 2 ] && break
    sleep 0.25
done
if grep -q "connection was lost.*retrying" "$work/reconnect.log" && [ "$(grep -c "usbredir channel linked" "$work/reconnect.log")" -ge 2 ]; then
    host_ok reconnect "$(grep -m1 "connection was lost" "$work/reconnect.log" | sed 's/.*WARN //')"
else
    host_fail reconnect "$(grep -v DEBUG "$work/reconnect.log" | tail -n 3 | tr '\n' ' ')"
fi
stop_vstick
stop_qemu

host_finish "spice-errors" 0
