#!/usr/bin/env bash
# Side by side: the cgroup work of one container start + delete (create, join, apply Docker-like
# resources incl. the default device rules, leave, remove), berth-cgroups vs youki's libcgroups,
# N iterations per process run. Prints hyperfine medians, the ratio, and syscalls per iteration.
# Needs root and a cgroup v1 or v2 host. Usage: benches/cgroups.sh [N]
set -euo pipefail
cd "$(dirname "$0")/cgroups"
n="${1:-50}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(cd ../.. && pwd)/target}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/berth-cgroups-bench"
json="$(mktemp /tmp/berth-test-cgbench.XXXXXX.json)"
trap 'rm -f "$json"' EXIT

hyperfine --warmup 2 --runs 20 --export-json "$json" -N \
  "$bin berth $n" "$bin libcgroups $n" >/dev/null

python3 - "$json" "$n" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["results"]
n = int(sys.argv[2])
med = {r["command"].split()[1]: r["median"] for r in runs}
for k, v in med.items():
    print(f"{k:11s} median {v*1000:8.2f} ms for {n} cgroups = {v*1e6/n:7.1f} us per container")
print(f"ratio berth/libcgroups: {med['berth']/med['libcgroups']:.2f}")
PY

if command -v strace >/dev/null; then
  for impl in berth libcgroups; do
    calls=$(strace -f -c -o /dev/stdout "$bin" "$impl" "$n" | awk '$NF=="total"{print $4}')
    echo "$impl syscalls per container: $((calls / n))"
  done
fi
