#!/usr/bin/env bash
# Links the release `berth` and `berthd` again, statically and not position-independent, as
# scripts/setup.sh installs them (only the final links; the dependencies are the release
# build's). The CLI, exec'd for every command, skips the dynamic loader, whose CPU-feature
# probing traps to the hypervisor on VMs (`run --rm` -0.4 ms, docs/cli.md, "Start-up");
# berthd keeps only the libc it calls resident, not whole shared libc and libm pages
# (idle RSS -1.2 MB, docs/engine.md, s19). A later plain `cargo build --release` of either
# links it dynamically again.
#   scripts/relink-static.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
for bin in berth berthd; do
  cargo rustc --release --quiet -p "$bin" --bin "$bin" -- \
    -C target-feature=+crt-static -C relocation-model=static
done
