#!/usr/bin/env bash
# `run --rm` of berth and docker, interleaved over time with a probe of the machine's own
# speed (benches/README.md, "spells.sh"). This machine's speed moves by up to 3x within
# minutes (a fixed Python loop: 87-290 ms), with nothing else running, and every engine's
# times move with it; a single hyperfine run says which spell it fell in as much as what it
# measured. Here each round measures, back to back:
#   the probe: a fixed Python loop (CPU) and `perf bench sched pipe` (a wake-up round trip),
#   berth:  hyperfine 30 x `berth run --rm --network none busybox true` (median),
#   berth:  50 x `run -d sleep` sequential, then `rm -f` of the 50 (one call),
#   docker: hyperfine 5 x `docker run --rm --network none busybox true` (median),
# and the share of CPU time the hypervisor took from this VM (steal, /proc/stat) during
# berth's 30 runs.
# A private berthd and a private dockerd (own roots and sockets, a private bridge; never
# --bridge=none), one busybox image imported into both, stopped by PID at the end.
#   benches/spells.sh [ROUNDS] [PAUSE_S]     defaults: 20 rounds, 5 s apart. Run as root.
set -euo pipefail
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
cd "$(dirname "$0")/.."
ROUNDS=${1:-20}
PAUSE=${2:-5}
for c in hyperfine dockerd perf python3; do
  command -v "$c" >/dev/null || { echo "$c is required (scripts/install-deps.sh --bench)"; exit 1; }
done
REL=$(readlink -f "${CARGO_TARGET_DIR:-target}")/release
cargo build --release -q -p berthd -p berth-shim
scripts/relink-static.sh
. benches/private_berthd.sh
private_berthd "$REL" spells
DOCKERD_PID=""
OWN_BRIDGE=""
cleanup() {
  # dockerd first: its data root is inside $W, which the berthd cleanup removes.
  if [ -n "$DOCKERD_PID" ]; then
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
    umount -R "$W/docker-data" 2>/dev/null || true
  fi
  [ -n "$OWN_BRIDGE" ] && ip link del cebench1 2>/dev/null || true
  private_berthd_cleanup
}
trap cleanup EXIT
if ! ip link show cebench1 >/dev/null 2>&1; then
  ip link add name cebench1 type bridge && ip addr add 198.18.252.1/24 dev cebench1 && OWN_BRIDGE=1
fi
echo '{}' >"$W/daemon.json"
setsid dockerd --data-root "$W/docker-data" --exec-root "$W/docker-exec" --pidfile "$W/docker.pid" \
  -H "unix://$W/docker.sock" --config-file "$W/daemon.json" --bridge=cebench1 \
  --iptables=false --ip-masq=false >"$W/dockerd.log" 2>&1 &
DOCKERD_PID=$!
DOCKER="docker -H unix://$W/docker.sock"
for _ in $(seq 200); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.1; done
$DOCKER import "$W/busybox.tar" busybox:latest >/dev/null

# The aggregate "cpu" line of /proc/stat: total jiffies and steal (the 8th value).
cpu_jiffies() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $9 }' /proc/stat; }
median_ms() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f\"{r['median']*1000:.2f}\")" "$1"; }
printf '%-8s %8s %8s %9s %10s %9s %10s %9s %7s\n' time "py ms" "pipe us" "berth ms" "docker ms" ratio "50xrun-d" "rm -f 50" "steal%"
: >"$W/rounds.txt"
for r in $(seq "$ROUNDS"); do
  [ "$r" -gt 1 ] && sleep "$PAUSE"
  py=$(python3 -c "
import time
t = time.perf_counter(); s = 0
for i in range(3000000): s += i
print(f'{(time.perf_counter() - t) * 1000:.0f}')")
  pipe=$(perf bench sched pipe -l 20000 2>/dev/null | awk '/usecs\/op/ {printf "%.1f", $1}')
  read -r tot0 st0 < <(cpu_jiffies)
  hyperfine -N -w 3 -r 30 --export-json "$W/b.json" "$W/berth run --rm --network none busybox true" >/dev/null 2>&1
  read -r tot1 st1 < <(cpu_jiffies)
  t0=$(date +%s.%N)
  for i in $(seq 50); do "$W/berth" run -d --network none busybox sleep 3600 >/dev/null; done
  t1=$(date +%s.%N)
  "$W/berth" rm -f $("$W/berth" ps -aq) >/dev/null
  t2=$(date +%s.%N)
  # docker last: its cleanup after a run --rm goes on in the background, into the pause.
  hyperfine -N -w 1 -r 5 --export-json "$W/d.json" "$DOCKER run --rm --network none busybox true" >/dev/null 2>&1
  b=$(median_ms "$W/b.json")
  d=$(median_ms "$W/d.json")
  line=$(python3 -c "print(f'{$d / $b:9.1f}x {$t1 - $t0:10.3f} {$t2 - $t1:9.3f} {100 * ($st1 - $st0) / max($tot1 - $tot0, 1):7.1f}')")
  printf '%-8s %8s %8s %9s %10s %s\n' "$(date +%T)" "$py" "$pipe" "$b" "$d" "$line" | tee -a "$W/rounds.txt"
done
python3 - "$W/rounds.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
py = [float(r[1]) for r in rows]; b = [float(r[3]) for r in rows]; d = [float(r[4]) for r in rows]
rd = [float(r[6]) for r in rows]; rm = [float(r[7]) for r in rows]
steal = [float(r[8]) for r in rows]
print(f"{len(rows)} rounds; medians: berth run --rm {statistics.median(b):.2f} ms "
      f"({min(b):.2f}-{max(b):.2f}), docker {statistics.median(d):.1f} ms, "
      f"docker/berth {statistics.median([x / y for x, y in zip(d, b)]):.1f}x; "
      f"50 x run -d {statistics.median(rd):.3f} s ({min(rd):.3f}-{max(rd):.3f}); "
      f"rm -f of 50 {statistics.median(rm):.3f} s")
print(f"berth run --rm <= 10 ms in {sum(x <= 10 for x in b)} of {len(b)} rounds; "
      f"50 x run -d <= 1 s in {sum(x <= 1 for x in rd)}; "
      f"Python probe {min(py):.0f}-{max(py):.0f} ms")
slow = [s for s, x in zip(steal, b) if x > 10]
print(f"steal during berth's runs: median {statistics.median(steal):.1f}%, max {max(steal):.1f}%"
      + (f"; in the rounds over 10 ms: {', '.join(f'{s:.1f}%' for s in slow)}" if slow else ""))
PY
