#!/usr/bin/env bash
# tcp:// with TLS client authentication: what the handshake costs, side by side with the
# docker CLI, in one run against one private berthd listening on a unix socket and on
# tcp://127.0.0.1 with --tlsverify (throwaway certificates made with openssl).
#   benches/tls.sh            (root; builds berthd, berth, berth-shim in release if missing)
# Prints hyperfine medians (ms) of `version` for berth and docker, over unix and over TLS,
# and the ratios. BASELINE_BERTH=PATH adds a berth binary built without TLS support, to show
# that unix sockets pay nothing for it (the CLI resolves TLS options only for tcp:// hosts).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "skipped: hyperfine not installed"; exit 0; }
command -v openssl >/dev/null || { echo "skipped: openssl not installed"; exit 0; }
REL=$(readlink -f "${CARGO_TARGET_DIR:-target}")/release
for b in berth berthd berth-shim; do
  [ -x "$REL/$b" ] || cargo build --release -q -p berthd -p berth -p berth-shim
done
BERTH=$REL/berth
DOCKER=docker
[ -x /usr/local/bin/docker ] && DOCKER=/usr/local/bin/docker
WORK=$(mktemp -d /tmp/berth-test-tlsbench.XXXXXX)
DPID=""
cleanup() {
  if [ -n "$DPID" ]; then kill "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Certificates: a CA, a server certificate for 127.0.0.1, a client certificate.
P=$WORK/pki
mkdir -p "$P"
key_csr() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/$1-key.pem" \
    -subj "/CN=$2" -out "$P/$1.csr" 2>/dev/null
}
key_csr ca "berth-test bench ca"
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$P/ca.ext"
openssl x509 -req -in "$P/ca.csr" -signkey "$P/ca-key.pem" -extfile "$P/ca.ext" -days 1 \
  -out "$P/ca.pem" 2>/dev/null
sign() {
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n%s\n' "$2" >"$P/$1.ext"
  openssl x509 -req -in "$P/$1.csr" -CA "$P/ca.pem" -CAkey "$P/ca-key.pem" -set_serial "0x$RANDOM" \
    -extfile "$P/$1.ext" -days 1 -out "$P/$1-cert.pem" 2>/dev/null
}
key_csr server localhost
sign server $'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'
key_csr client berth-test-client
sign client 'extendedKeyUsage=clientAuth'
cp "$P/client-cert.pem" "$P/cert.pem"
cp "$P/client-key.pem" "$P/key.pem"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$REL/berthd" --data-root "$WORK/data" --exec-root "$WORK/run" \
  -H "unix://$WORK/berth.sock" -H "tcp://127.0.0.1:$PORT" --cgroup-parent /berth-test-tlsbench \
  --tlsverify --tlscacert "$P/ca.pem" --tlscert "$P/server-cert.pem" --tlskey "$P/server-key.pem" \
  --config-file <(echo '{}') >"$WORK/berthd.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do
  BERTH_HOST=unix://$WORK/berth.sock "$BERTH" version >/dev/null 2>&1 && break
  sleep 0.05
done

UNIX="-H unix://$WORK/berth.sock"
TLS="-H tcp://127.0.0.1:$PORT --tlsverify --tlscacert $P/ca.pem --tlscert $P/cert.pem --tlskey $P/key.pem"
export DOCKER_CONFIG=$WORK/docker-config
cases=(
  "berth-unix|$BERTH $UNIX version"
  "berth-tls|$BERTH $TLS version"
  "docker-unix|$DOCKER $UNIX version"
  "docker-tls|$DOCKER --tlsverify --tlscacert=$P/ca.pem --tlscert=$P/cert.pem --tlskey=$P/key.pem -H tcp://127.0.0.1:$PORT version"
)
[ -n "${BASELINE_BERTH:-}" ] && cases+=("baseline-unix|$BASELINE_BERTH $UNIX version")
for c in "${cases[@]}"; do
  ${c#*|} >/dev/null || { echo "failed: ${c#*|}"; cat "$WORK/berthd.log"; exit 1; }
done
echo "load: $(uptime)"
args=()
for c in "${cases[@]}"; do args+=(-n "${c%%|*}" "${c#*|}"); done
hyperfine -N -w 10 -r 200 --export-json "$WORK/r.json" "${args[@]}" >/dev/null
declare -A med
while read -r name ms; do med[$name]=$ms; done < <(jq -r '.results[] | "\(.command) \(.median * 1000)"' "$WORK/r.json")
for c in "${cases[@]}"; do printf '%-14s %8.2f ms\n' "${c%%|*}" "${med[${c%%|*}]}"; done
r() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "berth tls / docker tls:   $(r "${med[berth-tls]}" "${med[docker-tls]}")"
echo "berth tls / berth unix:   $(r "${med[berth-tls]}" "${med[berth-unix]}")"
echo "docker tls / docker unix: $(r "${med[docker-tls]}" "${med[docker-unix]}")"
[ -n "${BASELINE_BERTH:-}" ] && echo "berth unix / baseline:    $(r "${med[berth-unix]}" "${med[baseline-unix]}")"
echo "berth binary: $(stat -c %s "$BERTH") bytes${BASELINE_BERTH:+, baseline $(stat -c %s "$BASELINE_BERTH") bytes}"
# Timings on a shared machine are noisy; system calls are not. Unix-socket runs must make the
# same calls as before TLS support, and open no certificate.
if command -v strace >/dev/null; then
  for c in "${cases[@]}"; do
    case ${c%%|*} in docker-*) continue ;; esac
    strace -f -qq -o "$WORK/strace" ${c#*|} >/dev/null
    printf '%-14s %4d syscalls, %d .pem opened\n' "${c%%|*}" "$(wc -l <"$WORK/strace")" \
      "$(grep -c '\.pem' "$WORK/strace" || true)"
  done
fi
