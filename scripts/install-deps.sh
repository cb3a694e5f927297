#!/usr/bin/env bash
# Installs everything Berth's build and tests need on Debian 12, idempotently.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also the peers the benchmarks compare against
# Runs as root. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential pkg-config libseccomp-dev   # building (libseccomp for the runtime)
  busybox-static                              # test images and the quick-start image
  runc crun                                   # OCI runtime oracles
  skopeo umoci                                # image format interop
  docker-registry                             # a real registry on loopback
  iproute2 util-linux                         # ip, unshare, nsenter
  python3 python3-venv                        # docker-py tests
  jq
)
[ "${1:-}" = "--bench" ] && packages+=(hyperfine docker.io podman)
# The real docker CLI: any `docker` on PATH will do; Debian's docker.io provides one.
command -v docker >/dev/null 2>&1 || packages+=(docker.io)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # Debian's docker.io would try to start dockerd through systemd when one runs; tests never
  # need that daemon, so keep services from starting during installation.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || {
    echo "no Rust toolchain found; installing rustup (needs network access to sh.rustup.rs)"
    apt-get install -y -q curl ca-certificates >/dev/null
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
  }
fi

# The Docker SDK for Python, in a private venv (Debian 12 forbids pip into the system python).
venv=target/pyvenv
if ! "$venv/bin/python" -c 'import docker' >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'docker>=7,<8'
fi
