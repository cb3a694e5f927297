#!/usr/bin/env bash
# berthd's idle memory, fresh and after a workload, for one or more berthd builds side by side
# (issue 4: berthd idle RSS <= 10 MB). For each build and round: start a private berthd (own
# data root, exec root, socket, cgroup parent), wait SETTLE s, sample /proc/PID/status and
# smaps ("fresh"); then `import` busybox, `load` the harness's 165 MB fat.tar, 20 x `run --rm`,
# 50 x `run -d`, `rm -f` of the 50, `rmi` of the fat image, wait SETTLE s, sample again
# ("after"). Rounds alternate the builds so a busy machine hits them alike. Prints per sample:
# VmRSS, anonymous, file-backed, and the berthd binary's own resident pages; then medians.
#
#   benches/memory.sh [BERTHD...]       default: $CARGO_TARGET_DIR/release/berthd
# Env: ROUNDS (3), SETTLE (3 s), FAT (fat.tar; default /tmp/berth-bench/images/fat.tar, made by
#      benches/images.sh; without it the load step is skipped), BERTH (the CLI), NO_WORKLOAD=1
#      (fresh only). Each berthd needs a berth-shim next to it. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
REL=$(readlink -f "${CARGO_TARGET_DIR:-target}")/release
BERTH=${BERTH:-$REL/berth}
ROUNDS=${ROUNDS:-3}
SETTLE=${SETTLE:-3}
FAT=${FAT:-/tmp/berth-bench/images/fat.tar}
[ $# -gt 0 ] || set -- "$REL/berthd"
for b in "$@" "$BERTH"; do [ -x "$b" ] || { echo "not executable: $b (cargo build --release)"; exit 1; }; done

WORK=$(mktemp -d /tmp/berth-test-membench.XXXXXX)
DPID=""
stop_daemon() {
  if [ -n "$DPID" ]; then
    "$BERTH" ps -aq 2>/dev/null | xargs -r "$BERTH" rm -f >/dev/null 2>&1 || true
    kill "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
    DPID=""
  fi
  for cg in /sys/fs/cgroup/*/berth-test-membench; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}
cleanup() { stop_daemon; rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/etc"
cp /bin/busybox "$WORK/rootfs/bin/"
for a in true sleep sh; do ln -sf busybox "$WORK/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$WORK/rootfs/etc/passwd"
tar -C "$WORK/rootfs" -cf "$WORK/busybox.tar" .
export BERTH_HOST=unix://$WORK/berth.sock

# sample LABEL BIN: one line "label build vmrss anon file binary" in MB.
sample() {
  local bin
  bin=$(readlink "/proc/$DPID/exe")
  awk -v label="$1" -v build="$3" -v bin="$bin" '
    FILENAME ~ /status$/ && /^VmRSS:/ { rss = $2 }
    FILENAME ~ /status$/ && /^RssAnon:/ { anon = $2 }
    FILENAME ~ /status$/ && /^RssFile:/ { file = $2 }
    FILENAME ~ /smaps$/ && /^[0-9a-f]+-[0-9a-f]+ / { cur = $6 }
    FILENAME ~ /smaps$/ && /^Rss:/ && cur == bin { own += $2 }
    END { printf "%-6s %-3s %6.2f %6.2f %6.2f %6.2f\n", label, build, rss/1024, anon/1024, file/1024, own/1024 }
  ' "/proc/$DPID/status" "/proc/$DPID/smaps" | tee -a "$WORK/samples"
}

round() { # BIN TAG
  local i
  rm -rf "$WORK/data" "$WORK/run"
  "$1" --data-root "$WORK/data" --exec-root "$WORK/run" -H "$BERTH_HOST" \
    --cgroup-parent /berth-test-membench --config-file <(echo '{}') >"$WORK/berthd.log" 2>&1 &
  DPID=$!
  for _ in $(seq 200); do [ -S "$WORK/berth.sock" ] && "$BERTH" version >/dev/null 2>&1 && break; sleep 0.05; done
  sleep "$SETTLE"
  sample fresh "$1" "$2"
  if [ "${NO_WORKLOAD:-}" != 1 ]; then
    "$BERTH" import "$WORK/busybox.tar" busybox:latest >/dev/null
    [ -f "$FAT" ] && "$BERTH" load -q -i "$FAT" >/dev/null
    for _ in $(seq 20); do "$BERTH" run --rm --network none busybox true; done
    for i in $(seq 50); do "$BERTH" run -d --network none --name "mem-$i" busybox sleep 3600 >/dev/null; done
    "$BERTH" rm -f $("$BERTH" ps -aq) >/dev/null
    [ -f "$FAT" ] && "$BERTH" rmi cebench/fat:1 >/dev/null
    sleep "$SETTLE"
    sample after "$1" "$2"
  fi
  stop_daemon
}

echo "label  build  VmRSS   anon   file  binary (MB)   load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  n=0
  for b in "$@"; do round "$b" "$n"; n=$((n + 1)); done
done
echo "== medians (build: ${*})"
python3 - "$WORK/samples" <<'EOF'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
for key in sorted({(r[0], r[1]) for r in rows}, key=lambda k: (k[1], k[0] != "fresh")):
    v = [list(map(float, r[2:])) for r in rows if (r[0], r[1]) == key]
    m = [st.median(c) for c in zip(*v)]
    print(f"{key[0]:<6} {key[1]:<3} VmRSS {m[0]:6.2f}  anon {m[1]:5.2f}  file {m[2]:5.2f}  binary {m[3]:5.2f}  (n={len(v)})")
EOF
