#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine, as root: installs what Berth needs, builds the
# release binaries, installs them, starts berthd (unless one already answers), makes the
# busybox image offline and runs a container.
#   scripts/setup.sh
# Ends with `berth run --rm busybox echo hello`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/install-deps.sh

echo "== build (release)"
cargo build --release --workspace --bins --quiet
# The CLI and berthd linked statically (see the script for why).
scripts/relink-static.sh

# berth-runtime is also built as a static, non-PIE, size-optimised executable (libseccomp
# linked in): it starts in half the time and with half the resident pages of the dynamic
# build, and create/exec copy it into a sealed memfd (CVE-2019-5736), so every MB counts on
# the path every container start takes (docs/runtime.md, "Speed").
echo "== build berth-runtime (static)"
runtime_target=target/runtime-static
LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=/usr/lib/x86_64-linux-gnu \
  CARGO_TARGET_DIR="$runtime_target" cargo build --release --quiet -p berth-runtime \
  --target x86_64-unknown-linux-gnu \
  --config 'target.x86_64-unknown-linux-gnu.rustflags=["-C","target-feature=+crt-static","-C","relocation-model=static","-C","strip=symbols"]' \
  --config 'profile.release.opt-level="s"' --config 'profile.release.lto="fat"' \
  --config 'profile.release.codegen-units=1' --config 'profile.release.panic="abort"'

echo "== install to /usr/local/bin"
install -m 0755 target/release/berth target/release/berthd target/release/berth-shim /usr/local/bin/
install -m 0755 "$runtime_target/x86_64-unknown-linux-gnu/release/berth-runtime" /usr/local/bin/

sock=/run/berth/berth.sock
if berth version >/dev/null 2>&1; then
  echo "== berthd already running"
else
  echo "== start berthd (log: /var/log/berthd.log)"
  mkdir -p /var/log
  # Detached from this shell; containers outlive berthd anyway (live restore).
  setsid nohup berthd >>/var/log/berthd.log 2>&1 </dev/null &
  for _ in $(seq 100); do
    [ -S "$sock" ] && berth version >/dev/null 2>&1 && break
    sleep 0.1
  done
  berth version >/dev/null || { echo "berthd did not start; see /var/log/berthd.log"; exit 1; }
fi

if ! berth image inspect busybox:latest >/dev/null 2>&1; then
  echo "== busybox image (offline, from Debian's busybox-static)"
  work=$(mktemp -d /tmp/berth-quickstart.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  root="$work/rootfs"
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/root"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  chmod 1777 "$root/tmp"
  tar -C "$root" -cf "$work/busybox.tar" .
  berth import --change 'CMD ["sh"]' "$work/busybox.tar" busybox:latest
fi

echo "== berth run --rm busybox echo hello"
berth run --rm busybox echo hello
