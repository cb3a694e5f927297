#!/usr/bin/env bash
# Container start: `berth-runtime run` vs `runc run` vs `crun run` on the same busybox bundle
# running /bin/true, side by side in one hyperfine run; medians, ratios, and peak RSS.
#   benches/runtime.sh                  HF_RUNS=50 HF_WARMUP=5 BENCH_WORK=target/bench-runtime
#
# Runs as root. Three comparisons:
#   1. host mount namespace:   berth-runtime vs runc            (the issue's target: <= 0.5x runc)
#   2. inside cgv1ns.sh:       berth-runtime vs runc vs crun    (crun refuses this host's hybrid
#      cgroup layout; cgv1ns.sh unmounts /sys/fs/cgroup/unified in a private mount namespace,
#      and all three run there so they see the same cgroups)
#   3. seccomp:                berth-runtime with Docker's default profile, compiled-filter
#      cache warm vs disabled (the gain of the cache), and runc with the same profile
#   4. create + start + delete (what containerd's shim does), berth-runtime vs runc
# Then peak RSS (GNU time %M) of berth-runtime run over 20 runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
RUNS=${HF_RUNS:-50}
WARMUP=${HF_WARMUP:-5}
WORK=${BENCH_WORK:-$PWD/target/bench-runtime}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

echo "== building berth-runtime (static release, as scripts/setup.sh does)"
LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=/usr/lib/x86_64-linux-gnu \
  CARGO_TARGET_DIR=target/runtime-static cargo build --release --quiet -p berth-runtime \
  --target x86_64-unknown-linux-gnu \
  --config 'target.x86_64-unknown-linux-gnu.rustflags=["-C","target-feature=+crt-static","-C","relocation-model=static","-C","strip=symbols"]' \
  --config 'profile.release.opt-level="s"' --config 'profile.release.lto="fat"' \
  --config 'profile.release.codegen-units=1' --config 'profile.release.panic="abort"'
BERTH=$PWD/target/runtime-static/x86_64-unknown-linux-gnu/release/berth-runtime

# The bundle of the team's harness (shared/bench/fixtures.py "bundle-true"): busybox rootfs,
# read-only root, 5 namespaces, the usual mounts, masked/readonly paths, no rlimits.
bundle=$WORK/bundle-true
rootfs=$WORK/rootfs-busybox
if [ ! -x "$rootfs/bin/busybox" ]; then
  mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,var/tmp,run,home}
  cp /bin/busybox "$rootfs/bin/busybox"
  for a in $(/bin/busybox --list-full); do
    [ "$a" = bin/busybox ] || [ -e "$rootfs/$a" ] || ln -s /bin/busybox "$rootfs/$a"
  done
  echo "root:x:0:0:root:/root:/bin/sh" >"$rootfs/etc/passwd"
fi
mkdir -p "$bundle"
cat >"$bundle/config.json" <<EOF
{
 "ociVersion": "1.0.2",
 "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["/bin/true"],
   "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "cwd": "/",
   "capabilities": {"bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]},
   "noNewPrivileges": true},
 "root": {"path": "$rootfs", "readonly": true},
 "hostname": "cebench",
 "mounts": [
  {"destination": "/proc", "type": "proc", "source": "proc"},
  {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
  {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
  {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
  {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
  {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
  {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
 ],
 "linux": {
  "resources": {"devices": [{"allow": false, "access": "rwm"}]},
  "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
  "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
  "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
 }
}
EOF

# The same bundle with Docker's default seccomp profile (resolved by berth-runtime spec).
sbundle=$WORK/bundle-true-seccomp
mkdir -p "$sbundle"
rm -f "$WORK/spec/config.json"
mkdir -p "$WORK/spec"
"$BERTH" spec --docker-seccomp --bundle "$WORK/spec"
jq --slurpfile s "$WORK/spec/config.json" '.linux.seccomp = $s[0].linux.seccomp' \
  "$bundle/config.json" >"$sbundle/config.json"

report() { # json label...: print medians and ratios against the first command
  python3 - "$@" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))["results"]
labels = sys.argv[2:]
base = data[0]["median"]
for r, label in zip(data, labels):
    print(f"  {label:<44} median {r['median']*1000:7.2f} ms   mean {r['mean']*1000:7.2f} ms   "
          f"ratio to {labels[0]}: {r['median']/base:5.2f}")
for r, label in zip(data[1:], labels[1:]):
    print(f"  {labels[0]} / {label}: {base/r['median']:.2f}")
PY
}

hf() { hyperfine -N --style basic -w "$WARMUP" -r "$RUNS" "$@" >/dev/null; }

cleanup() {
  "$BERTH" delete --force cebench-berth >/dev/null 2>&1 || true
  runc delete --force cebench-runc >/dev/null 2>&1 || true
  if command -v crun >/dev/null 2>&1; then crun delete --force cebench-crun >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

echo
echo "== 1. host mount namespace: berth-runtime vs runc ($RUNS runs each)"
hf --export-json "$WORK/run.json" \
  "$BERTH run --bundle $bundle cebench-berth" \
  "runc run --bundle $bundle cebench-runc"
report "$WORK/run.json" "berth-runtime run" "runc run"

echo
if command -v crun >/dev/null 2>&1; then
  echo "== 2. inside cgv1ns.sh (cgroup v1 only): berth-runtime vs runc vs crun"
  cat >"$WORK/cgv1ns-inner.sh" <<EOF
#!/bin/sh
exec hyperfine -N --style basic -w $WARMUP -r $RUNS --export-json $WORK/run-cgv1.json \
  "$BERTH run --bundle $bundle cebench-berth" \
  "runc run --bundle $bundle cebench-runc" \
  "crun run --bundle $bundle cebench-crun" >/dev/null
EOF
  chmod +x "$WORK/cgv1ns-inner.sh"
  unshare --mount --propagation private sh -c '
    if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then umount /sys/fs/cgroup/unified; fi
    exec "$0"' "$WORK/cgv1ns-inner.sh"
  report "$WORK/run-cgv1.json" "berth-runtime run" "runc run" "crun run"
else
  echo "== 2. skipped: crun is not installed (scripts/install-deps.sh --bench)"
fi

echo
echo "== 3. Docker's default seccomp profile: compiled-filter cache warm vs off, and runc"
"$BERTH" run --bundle "$sbundle" cebench-berth  # fills the cache
hf --export-json "$WORK/seccomp.json" \
  "$BERTH run --bundle $sbundle cebench-berth" \
  "$BERTH --seccomp-cache= run --bundle $sbundle cebench-berth" \
  "runc run --bundle $sbundle cebench-runc"
report "$WORK/seccomp.json" "berth-runtime (cache warm)" "berth-runtime (no cache)" "runc run"

echo
echo "== 4. the containerd path: create + start + delete --force (through a shell, both alike)"
hyperfine --style basic -w "$WARMUP" -r "$RUNS" --export-json "$WORK/lifecycle.json" \
  "$BERTH create --bundle $bundle cebench-berth && $BERTH start cebench-berth && $BERTH delete --force cebench-berth" \
  "runc create --bundle $bundle cebench-runc && runc start cebench-runc && runc delete --force cebench-runc" >/dev/null
report "$WORK/lifecycle.json" "berth-runtime create+start+delete" "runc create+start+delete"

echo
echo "== peak RSS of berth-runtime run (GNU time %M, 20 runs)"
rss=()
for _ in $(seq 20); do
  rss+=("$( { /usr/bin/time -f '%M' "$BERTH" run --bundle "$bundle" cebench-berth >/dev/null; } 2>&1 | tail -1)")
done
printf '%s\n' "${rss[@]}" | sort -n | awk '{a[NR]=$1} END {printf "  peak RSS: median %d KB, max %d KB (target <= 5120 KB)\n", a[int((NR+1)/2)], a[NR]}'
runc_rss=$( { /usr/bin/time -f '%M' runc run --bundle "$bundle" cebench-runc >/dev/null; } 2>&1 | tail -1)
echo "  runc run peak RSS (one run, for reference): $runc_rss KB"
