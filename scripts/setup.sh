#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine, as root: installs what Berth needs, builds it,
# and runs a busybox container through `berth-runtime run`.
#   scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/install-deps.sh

echo "== build (release)"
cargo build --release --workspace --bins --quiet

# berth-runtime is also built as a static, non-PIE executable (libseccomp linked in): it
# starts in half the time and with half the resident pages of the dynamic build, which
# matters on the path every container start takes (docs/runtime.md, "Speed").
echo "== build berth-runtime (static)"
runtime_target=target/runtime-static
LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=/usr/lib/x86_64-linux-gnu \
  CARGO_TARGET_DIR="$runtime_target" cargo build --release --quiet -p berth-runtime \
  --target x86_64-unknown-linux-gnu \
  --config 'target.x86_64-unknown-linux-gnu.rustflags=["-C","target-feature=+crt-static","-C","relocation-model=static","-C","strip=symbols"]'
runtime="$runtime_target/x86_64-unknown-linux-gnu/release/berth-runtime"

echo "== busybox bundle"
bundle=target/quickstart/bundle
rm -rf "$bundle"
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/sys" "$bundle/rootfs/dev" \
  "$bundle/rootfs/tmp" "$bundle/rootfs/etc"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$bundle/rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" >"$bundle/rootfs/etc/passwd"
"$runtime" spec --bundle "$bundle"
jq '.process.terminal = false
    | .process.args = ["/bin/echo", "hello from a berth-runtime container"]
    | .hostname = "berth-quickstart"' "$bundle/config.json" >"$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"

echo "== berth-runtime run"
"$runtime" run --bundle "$bundle" "berth-quickstart-$$"
echo "berth-runtime: $runtime"
