#!/usr/bin/env bash
# berth-shim benchmarks, side by side in one run (see benches/README.md, "shim"):
#   1. memory per idle container monitor: N `sleep` containers each under berth-shim, and
#      the same under podman's conmon (+ runc) when installed; PSS/RSS from smaps_rollup;
#   2. start latency: one container's whole life (`true`), berth-shim (in-process runtime)
#      vs berth-shim driving runc vs `runc run`, with hyperfine;
#   3. the shim's own startup: spawn → startup line for a `sleep` container (run -d path).
# Env: BERTH_SHIM (default target/release/berth-shim, built if missing), SHIM_BENCH_N (50),
#      SHIM_BENCH_RUNS (hyperfine runs, 30), BERTH_RUNTIME (default
#      target/release/berth-runtime if built: `berth-runtime run`, the same library without
#      a shim, joins the lifecycle comparison). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${SHIM_BENCH_N:-50}
RUNS=${SHIM_BENCH_RUNS:-30}
SHIM=${BERTH_SHIM:-target/release/berth-shim}
RUNC=$(command -v runc || true)
BRT=${BERTH_RUNTIME:-target/release/berth-runtime}
[ -x "$BRT" ] && BRT=$(readlink -f "$BRT") || BRT=""
CONMON=$(command -v conmon || true)
if [ ! -x "$SHIM" ]; then cargo build --release -q -p berth-shim; fi
SHIM=$(readlink -f "$SHIM")
command -v hyperfine >/dev/null || { echo "hyperfine is required"; exit 1; }

WORK=$(mktemp -d /tmp/berth-test-shimbench.XXXXXX)
PREFIX=berth-test-shimbench-$$
cleanup() {
  for cg in /sys/fs/cgroup/pids/"$PREFIX"-*; do
    { xargs -r kill -9 < "$cg/cgroup.procs"; } 2>/dev/null || true
  done
  sleep 0.5
  for p in $(cat "$WORK"/*/state/shim.pid "$WORK"/*/conmon.pid 2>/dev/null); do
    kill -9 "$p" 2>/dev/null || true
  done
  if [ -n "$RUNC" ]; then
    for d in "$WORK"/runc-root/*/; do
      [ -d "$d" ] && "$RUNC" --root "$WORK/runc-root" delete -f "$(basename "$d")" >/dev/null 2>&1 || true
    done
  fi
  sleep 0.2
  for cg in /sys/fs/cgroup/*/"$PREFIX"-*; do rmdir "$cg" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# One read-only busybox rootfs shared by every container.
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$ROOTFS/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$ROOTFS/bin/$a"; done

# bundle DIR ID ARGS_JSON
bundle() {
  mkdir -p "$1/bundle" "$1/state"
  cat > "$1/bundle/config.json" <<J
{"ociVersion":"1.0.2","process":{"terminal":false,"user":{"uid":0,"gid":0},"args":$3,
 "env":["PATH=/bin"],"cwd":"/","capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],
 "permitted":["CAP_KILL"]},"noNewPrivileges":true},
 "root":{"path":"$ROOTFS","readonly":true},"hostname":"bench",
 "mounts":[{"destination":"/proc","type":"proc","source":"proc"},
           {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755"]}],
 "linux":{"cgroupsPath":"/$2","namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},
          {"type":"uts"},{"type":"mount"}]}}
J
}
# shimcfg DIR ID RUNTIME START_NOW
shimcfg() {
  cat > "$1/state/shim.json" <<J
{"id":"$2","bundle":"$1/bundle","runtime_root":"$WORK/$3-root","runtime":"$3",
 "log":{"path":"$1/state/c-json.log","max_size":10485760,"max_file":3},"start_now":$4}
J
}

pss_of() { # pids... → "pss_kb rss_kb private_dirty_kb" summed
  local pss=0 rss=0 pd=0
  for p in "$@"; do
    read -r a b c < <(awk '/^Pss:/{p=$2} /^Rss:/{r=$2} /^Private_Dirty:/{d=$2} END{print p, r, d}' "/proc/$p/smaps_rollup")
    pss=$((pss + a)); rss=$((rss + b)); pd=$((pd + c))
  done
  echo "$pss $rss $pd"
}
report_mem() { # label n pss rss pd
  awk -v l="$1" -v n="$2" -v p="$3" -v r="$4" -v d="$5" 'BEGIN{
    printf "%-28s %3d monitors: PSS %7.3f MB/container  RSS %6.2f MB  private dirty %6.3f MB\n",
      l, n, p/n/1024, r/n/1024, d/n/1024 }'
}

echo "== memory per idle container monitor (N=$N, sleep containers)"
shim_pids=()
for i in $(seq 1 "$N"); do
  d=$WORK/s$i; id=$PREFIX-s$i
  bundle "$d" "$id" '["sleep","3600"]'; shimcfg "$d" "$id" berth true
  "$SHIM" "$d/state" > "$d/startup" 2>&1 < /dev/null &
  disown
done
for i in $(seq 1 "$N"); do
  d=$WORK/s$i
  for _ in $(seq 1 500); do [ -s "$d/startup" ] && break; sleep 0.01; done
  grep -q '"pid"' "$d/startup" || { echo "shim $i failed: $(cat "$d/startup")"; exit 1; }
  shim_pids+=("$(cat "$d/state/shim.pid")")
done
sleep 2
read -r SP SR SD < <(pss_of "${shim_pids[@]}")
report_mem "berth-shim (in-process)" "$N" "$SP" "$SR" "$SD"

if [ -n "$CONMON" ] && [ -n "$RUNC" ]; then
  conmon_pids=()
  for i in $(seq 1 "$N"); do
    d=$WORK/c$i; id=$PREFIX-c$i
    bundle "$d" "$id" '["sleep","3600"]'; mkdir -p "$d/exits" "$d/sock"
    "$CONMON" --api-version 1 -c "$id" -u "$id" -n "$id" -r "$RUNC" -b "$d/bundle" \
      -p "$d/pidfile" --exit-dir "$d/exits" -l "k8s-file:$d/ctr.log" \
      --socket-dir-path "$d/sock" --conmon-pidfile "$d/conmon.pid" \
      --runtime-arg --root --runtime-arg "$WORK/runc-root" >/dev/null 2>&1 < /dev/null
    # conmon daemonizes and runs `runc create` on its own: wait for the container.
    for _ in $(seq 1 500); do [ -s "$d/pidfile" ] && break; sleep 0.01; done
    "$RUNC" --root "$WORK/runc-root" start "$id"
    conmon_pids+=("$(cat "$d/conmon.pid")")
  done
  sleep 2
  read -r CP CR CD < <(pss_of "${conmon_pids[@]}")
  report_mem "conmon 2.1 (podman) + runc" "$N" "$CP" "$CR" "$CD"
  awk -v a="$SP" -v b="$CP" 'BEGIN{printf "ratio berth-shim / conmon PSS: %.2f\n", a/b}'
else
  echo "conmon or runc not installed: no side-by-side memory figure (apt-get install conmon)"
fi
echo "reference (benches PEERS.md, same machine kind): containerd-shim-runc-v2 2.6 MB PSS, conmon 0.36 MB PSS"

# Stop the idle containers before timing.
for cg in /sys/fs/cgroup/pids/"$PREFIX"-*; do { xargs -r kill -9 < "$cg/cgroup.procs"; } 2>/dev/null || true; done
sleep 1

echo
echo "== one container's whole life: create, run /bin/true, reap, clean up (hyperfine, $RUNS runs)"
d=$WORK/life; id=$PREFIX-life
bundle "$d" "$id" '["true"]'; shimcfg "$d" "$id" berth true
cmds=("$SHIM $d/state")
names=(berth-shim)
if [ -n "$RUNC" ]; then
  d2=$WORK/life-runc; id2=$PREFIX-liferunc
  bundle "$d2" "$id2" '["true"]'; shimcfg "$d2" "$id2" "$RUNC" true
  cmds+=("$SHIM $d2/state" "$RUNC --root $WORK/runc-root run -b $WORK/life-runc/bundle $PREFIX-runcrun")
  names+=("berth-shim --runtime runc" "runc run")
fi
if [ -n "$BRT" ]; then
  d3=$WORK/life-brt; bundle "$d3" "$PREFIX-lifebrt" '["true"]'
  cmds+=("$BRT --root $WORK/brt-root run -b $d3/bundle $PREFIX-brtrun")
  names+=("berth-runtime run")
fi
args=()
for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$WORK/life.json" "${args[@]}" > "$WORK/life.txt" 2>&1 || { cat "$WORK/life.txt"; exit 1; }
python3 - "$WORK/life.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
base = r[0]["median"]
for x in r:
    print(f"{x['command']:<28} median {x['median']*1000:7.2f} ms   ratio to berth-shim {x['median']/base:5.2f}")
PY

echo
echo "== shim startup for run -d: spawn → startup line (container running), $RUNS runs"
python3 - "$SHIM" "$WORK" "$PREFIX" "$RUNS" <<'PY'
import os, subprocess, sys, time, json, statistics, shutil
shim, work, prefix, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
src = os.path.join(work, "s1")
times = []
for i in range(runs):
    d = os.path.join(work, f"start{i}"); cid = f"{prefix}-start{i}"
    os.makedirs(d + "/state"); shutil.copytree(src + "/bundle", d + "/bundle")
    cfg = json.load(open(src + "/state/shim.json"))
    cfg.update(id=cid, bundle=d + "/bundle", log={"path": d + "/state/c-json.log"})
    spec = json.load(open(d + "/bundle/config.json")); spec["linux"]["cgroupsPath"] = "/" + cid
    json.dump(spec, open(d + "/bundle/config.json", "w")); json.dump(cfg, open(d + "/state/shim.json", "w"))
    t = time.perf_counter()
    p = subprocess.Popen([shim, d + "/state"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    line = p.stdout.readline()
    times.append(time.perf_counter() - t)
    pid = json.loads(line)["pid"]
    os.kill(pid, 9); p.wait()
print(f"berth-shim spawn → running container: median {statistics.median(times)*1000:.2f} ms (min {min(times)*1000:.2f})")
PY
