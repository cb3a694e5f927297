#!/usr/bin/env bash
# berthd + berth CLI benchmarks, side by side with docker and podman in one run (see
# benches/README.md, "engine"):
#   1. targets of issue 4, measured directly on a private berthd (hyperfine, medians):
#      `run --rm --network none busybox true`, 50 × `run -d sleep` sequential, `rm -f` of
#      50, engine memory per running container (shim PSS), berthd idle RSS, `version`
#      round trip;
#   2. the team harness (../shared/bench: daemon_idle run_latency density image_ops
#      daemon_after) for berth, for a private dockerd started only for this run (own roots
#      and socket, a private bridge; never --bridge=none), and for podman when installed;
#      then the harness's report with every engine side by side.
# Env: BENCH (harness dir, default ../shared/bench), SKIP_HARNESS=1 (only part 1),
#      PEERS="docker podman" (which peers to run), OLD_BIN=<dir with another build's
#      berth, berthd, berth-shim> (A/B: after part 1, two fresh private berthds, one of
#      that build and one of this, and AB_PAIRS (default 60) alternated pairs of `run --rm`,
#      old/new order swapped every pair, each build with its own CLI; medians, ratio,
#      load). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
# Measure what users run: a developer shell's RUST_BACKTRACE=1 makes every error value the
# binaries build (anyhow) capture a backtrace.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
ROOT=$(pwd)
BENCH=${BENCH:-$ROOT/../shared/bench}
PEERS=${PEERS:-docker podman}
command -v hyperfine >/dev/null || { echo "hyperfine is required (apt-get install hyperfine)"; exit 1; }
REL=$(readlink -f "${CARGO_TARGET_DIR:-target}")/release
for b in berth berthd berth-shim; do
  [ -x "$REL/$b" ] || cargo build --release -q -p berthd -p berth -p berth-shim
done
# The CLI and berthd as scripts/setup.sh installs them: statically linked.
scripts/relink-static.sh

WORK=$(mktemp -d /tmp/berth-test-enginebench.XXXXXX)
# Run installed copies, as scripts/setup.sh installs them (`install` copies the files). The
# linker's own output is cached in small pages, a copy in large ones, and the CLI, exec'd for
# every command, faults its pages in fewer pieces from a copy: run --rm ~0.4 ms faster
# (docs/engine.md, "The binary's copy").
install_bins() { # SRC DEST
  mkdir -p "$2"
  install -m 0755 "$1/berth" "$1/berthd" "$1/berth-shim" "$2/"
}
install_bins "$REL" "$WORK/bin"
BERTH=$WORK/bin/berth
DPID=""
OLD_PID=""
NEW_PID=""
DOCKERD_PID=""
OWN_BRIDGE=""
cleanup() {
  for pid in $OLD_PID $NEW_PID; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$DPID" ]; then
    BERTH_HOST=unix://$WORK/berth.sock "$BERTH" ps -aq 2>/dev/null | xargs -r env BERTH_HOST=unix://$WORK/berth.sock "$BERTH" rm -f >/dev/null 2>&1 || true
    kill "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
  fi
  if [ -n "$DOCKERD_PID" ]; then
    docker -H "unix://$WORK/docker.sock" ps -aq 2>/dev/null | xargs -r docker -H "unix://$WORK/docker.sock" rm -f >/dev/null 2>&1 || true
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
    grep -o " $WORK[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount 2>/dev/null || true
  fi
  [ -n "$OWN_BRIDGE" ] && ip link del cebench0 2>/dev/null || true
  for cg in /sys/fs/cgroup/*/berth-test-enginebench; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# The data root's file system decides much of the spread (docs/engine.md, "Session of
# 2026-11-22, evening"): ext4 without a journal skips recently deleted inodes on every
# allocation, so an inode creation costs 10x more there and grows with recent deletions.
# Probed before the runs, so it describes the state they ran in.
read -r FS_SRC FS_TYPE < <(findmnt -no SOURCE,FSTYPE -T "$WORK")
FS_NOTE=$FS_TYPE
if [ "$FS_TYPE" = ext4 ] && [ -r "/sys/fs/ext4/${FS_SRC##*/}/journal_task" ]; then
  [ "$(cat "/sys/fs/ext4/${FS_SRC##*/}/journal_task")" = "<none>" ] && FS_NOTE="ext4, no journal" || FS_NOTE="ext4, journaled"
fi
MKDIR_MS=$(python3 -c "
import os, statistics, sys, time
d = sys.argv[1]; os.mkdir(d); t = []
for i in range(50):
    s = time.perf_counter(); os.mkdir(f'{d}/{i}'); t.append(time.perf_counter() - s)
print(f'{statistics.median(t) * 1000:.3f}')" "$WORK/mkdir-probe")

echo "== private berthd ($WORK)"
"$WORK/bin/berthd" --data-root "$WORK/data" --exec-root "$WORK/run" \
  -H "unix://$WORK/berth.sock" --cgroup-parent /berth-test-enginebench \
  --config-file <(echo '{}') >"$WORK/berthd.log" 2>&1 &
DPID=$!
export BERTH_HOST=unix://$WORK/berth.sock
for _ in $(seq 100); do "$BERTH" version >/dev/null 2>&1 && break; sleep 0.05; done

# busybox, offline
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/etc" "$WORK/rootfs/tmp"
cp /bin/busybox "$WORK/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$WORK/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$WORK/rootfs/etc/passwd"
tar -C "$WORK/rootfs" -cf "$WORK/busybox.tar" .
"$BERTH" import "$WORK/busybox.tar" busybox:latest >/dev/null

median_ms() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f\"{r['median']*1000:.2f}\")" "$1"; }

echo "== 1. issue 4 targets (berth)"
hyperfine -N -w 5 -r 50 --export-json "$WORK/run.json" "$BERTH run --rm --network none busybox true" >/dev/null
RUN_MS=$(median_ms "$WORK/run.json")
hyperfine -N -w 5 -r 100 --export-json "$WORK/version.json" "$BERTH version" >/dev/null
VER_MS=$(median_ms "$WORK/version.json")
sleep 2
IDLE_RSS=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$DPID/status)
t0=$(date +%s.%N)
for i in $(seq 50); do "$BERTH" run -d --network none --name "bench-$i" busybox sleep 3600 >/dev/null; done
t1=$(date +%s.%N)
sleep 1
SHIM_PSS=$(for f in "$WORK"/run/containers/*/shim.pid; do awk '/^Pss:/ {print $2}' /proc/$(cat "$f")/smaps_rollup; done | awk '{s+=$1; n++} END {printf "%.3f", s/n/1024}')
BUSY_RSS=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$DPID/status)
t2=$(date +%s.%N)
"$BERTH" rm -f $("$BERTH" ps -aq) >/dev/null
t3=$(date +%s.%N)
RUN50=$(python3 -c "print(f'{$t1-$t0:.3f}')")
RM50=$(python3 -c "print(f'{$t3-$t2:.3f}')")
echo "data root: $FS_NOTE; mkdir median $MKDIR_MS ms (a journaled ext4: ~0.04 ms)"
printf '%-52s %10s %10s\n' "what" "berth" "target"
printf '%-52s %10s %10s\n' "run --rm --network none busybox true (median ms)" "$RUN_MS" "10"
printf '%-52s %10s %10s\n' "50 x run -d sleep, sequential (s)" "$RUN50" "1"
printf '%-52s %10s %10s\n' "rm -f of 50 running (s)" "$RM50" "0.3"
printf '%-52s %10s %10s\n' "memory per running container: shim PSS (MB)" "$SHIM_PSS" "0.25"
printf '%-52s %10s %10s\n' "berthd idle RSS (MB)" "$IDLE_RSS" "10"
printf '%-52s %10s %10s\n' "berthd RSS with 50 containers (MB)" "$BUSY_RSS" "-"
printf '%-52s %10s %10s\n' "berth version round trip (median ms)" "$VER_MS" "3"
cat >"$WORK/targets.json" <<EOF
{"run_rm_ms": $RUN_MS, "run_d_50_s": $RUN50, "rm_f_50_s": $RM50, "shim_pss_mb": $SHIM_PSS,
 "berthd_idle_rss_mb": $IDLE_RSS, "version_ms": $VER_MS,
 "data_root_fs": "$FS_NOTE", "data_root_mkdir_ms": $MKDIR_MS}
EOF
mkdir -p target/bench && cp "$WORK/targets.json" target/bench/engine-targets.json

if [ -n "${OLD_BIN:-}" ]; then
  echo "== A/B: run --rm, this build against $OLD_BIN, alternated pairs"
  # Both builds get a fresh daemon and data root (part 1's stays up, idle, for part 2).
  # Part 1's daemon has run hundreds of containers, and on this file system its recent
  # deletions slow its next inode allocations: against it a build looked ~5% slower than
  # itself (A/A 0.95x).
  install_bins "$OLD_BIN" "$WORK/old-bin"
  for side in old new; do
    bin=$WORK/bin
    [ "$side" = old ] && bin=$WORK/old-bin
    "$bin/berthd" --data-root "$WORK/$side-data" --exec-root "$WORK/$side-run" \
      -H "unix://$WORK/$side.sock" --cgroup-parent "/berth-test-enginebench-$side" \
      --config-file <(echo '{}') >"$WORK/berthd-$side.log" 2>&1 &
    if [ "$side" = old ]; then OLD_PID=$!; else NEW_PID=$!; fi
    cli=$bin/berth
    for _ in $(seq 100); do BERTH_HOST=unix://$WORK/$side.sock "$cli" version >/dev/null 2>&1 && break; sleep 0.05; done
    BERTH_HOST=unix://$WORK/$side.sock "$cli" import "$WORK/busybox.tar" busybox:latest >/dev/null
  done
  python3 - "${AB_PAIRS:-60}" "$WORK/old.sock" "$WORK/old-bin/berth" "$WORK/new.sock" "$BERTH" <<'PY'
import os, statistics, subprocess, sys, time
n = int(sys.argv[1]); builds = {"old": sys.argv[2:4], "new": sys.argv[4:6]}
times = {"old": [], "new": []}
for i in range(n):
    for k in (("old", "new") if i % 2 == 0 else ("new", "old")):
        sock, cli = builds[k]
        env = dict(os.environ, BERTH_HOST="unix://" + sock)
        t = time.perf_counter()
        subprocess.run([cli, "run", "--rm", "--network", "none", "busybox", "true"], env=env, check=True)
        times[k].append((time.perf_counter() - t) * 1000)
o, w = statistics.median(times["old"]), statistics.median(times["new"])
print(f"run --rm median: old {o:.2f} ms, new {w:.2f} ms, old/new {o / w:.2f}x "
      f"({n} pairs, load {open('/proc/loadavg').read().split()[0]})")
PY
  BERTH_HOST=unix://$WORK/old.sock "$WORK/old-bin/berth" ps -aq | xargs -r env BERTH_HOST=unix://$WORK/old.sock "$WORK/old-bin/berth" rm -f >/dev/null 2>&1 || true
  kill "$OLD_PID" 2>/dev/null || true
  wait "$OLD_PID" 2>/dev/null || true
  OLD_PID=""
  BERTH_HOST=unix://$WORK/new.sock "$BERTH" ps -aq | xargs -r env BERTH_HOST=unix://$WORK/new.sock "$BERTH" rm -f >/dev/null 2>&1 || true
  kill "$NEW_PID" 2>/dev/null || true
  wait "$NEW_PID" 2>/dev/null || true
  NEW_PID=""
  for cg in /sys/fs/cgroup/*/berth-test-enginebench-old /sys/fs/cgroup/*/berth-test-enginebench-new; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
fi
[ "${SKIP_HARNESS:-}" = 1 ] && exit 0

echo "== 2. team harness, side by side"
[ -x "$BENCH/run_all.sh" ] || { echo "harness not found at $BENCH"; exit 1; }
RESULTS=$ROOT/target/bench/engine-results
rm -rf "$RESULTS"; mkdir -p "$RESULTS"
export RESULTS_DIR=$RESULTS
BENCHES="daemon_idle run_latency density image_ops daemon_after"
(cd "$BENCH" && ENGINE="$BERTH" ENGINE_LABEL=berth DAEMON_COMMS=berthd ./run_all.sh $BENCHES)

if [[ " $PEERS " == *" docker "* ]] && command -v dockerd >/dev/null; then
  echo "== private dockerd for the comparison"
  if ! ip link show cebench0 >/dev/null 2>&1; then
    ip link add name cebench0 type bridge && ip addr add 198.18.254.1/24 dev cebench0 && OWN_BRIDGE=1
  fi
  echo '{}' >"$WORK/daemon.json"
  setsid dockerd --data-root "$WORK/docker-data" --exec-root "$WORK/docker-exec" --pidfile "$WORK/docker.pid" \
    -H "unix://$WORK/docker.sock" --config-file "$WORK/daemon.json" --bridge=cebench0 \
    --iptables=false --ip-masq=false >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 200); do docker -H "unix://$WORK/docker.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
  (cd "$BENCH" && ENGINE="docker -H unix://$WORK/docker.sock" ENGINE_LABEL=docker ./run_all.sh $BENCHES)
else
  echo "docker: skipped (no dockerd)"
fi
if [[ " $PEERS " == *" podman "* ]] && command -v podman >/dev/null; then
  # crun 1.8 refuses a cgroup-v1 hybrid host unless the cgroup2 mount is hidden (cgv1ns.sh),
  # and podman's default rlimits (nofile 1048576) exceed this host's hard limits: crun's
  # setrlimit fails with EPERM, so its containers get limits within them.
  (cd "$BENCH" && ENGINE="podman --runtime crun" ENGINE_LABEL=podman-crun DAEMON_COMMS="" \
    TLS_OPTS=--tls-verify=false RM_OPTS="-t 0" \
    RUN_OPTS="--ulimit nofile=20000:20000 --ulimit nproc=4096:4096" \
    ./cgv1ns.sh ./run_all.sh run_latency density image_ops)
else
  echo "podman: skipped (not installed; scripts/install-deps.sh --bench installs it)"
fi
python3 "$BENCH/benchlib.py" report "$RESULTS/RESULTS.md" >/dev/null 2>&1 || true
[ -f "$RESULTS/RESULTS.md" ] && cat "$RESULTS/RESULTS.md"
echo "results: $RESULTS"
