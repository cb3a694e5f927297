#!/usr/bin/env bash
# Image load/save speed and memory: Berth vs docker (a PRIVATE dockerd started only for this
# run) vs skopeo, on the same ~165 MB multi-layer docker-archive (fixtures.py's fat.tar:
# 6 layers, ~8000 small files, 96 MB random, 16 MB zeros, 16 MB text), side by side in one
# hyperfine run each, then medians and ratios. Also peak RSS of a 1 GB single-layer load.
# Berth is measured twice: the product path (`berth load -i` / `berth save -o` through a
# PRIVATE berthd started for this run) and the library alone (the berth-image example tool).
#
#   benches/images.sh                 HF_RUNS=5 HF_WARMUP=1 BENCH_WORK=/tmp/berth-bench
#   NO_DOCKER=1 benches/images.sh     skip docker (e.g. when docker.io is not installed)
#
# Every run of every tool starts from the same state (the image absent for load, present for
# save) and after a `sync`, so no run pays for the previous run's writeback. Run as root;
# installs its peers with scripts/install-deps.sh --bench.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
WORK=${BENCH_WORK:-/tmp/berth-bench}
RUNS=${HF_RUNS:-5}
WARMUP=${HF_WARMUP:-1}
SHARED=${SHARED:-$REPO/../shared}
[ -d "$SHARED/bench" ] || SHARED=/work/shared
IMG=cebench/fat:1
mkdir -p "$WORK"

[ "${SKIP_DEPS:-}" = 1 ] || scripts/install-deps.sh --bench
echo "== fixtures ($WORK)"
BENCH_WORK=$WORK python3 "$SHARED/bench/fixtures.py" >/dev/null
TAR=$WORK/images/fat.tar
echo "== build (release)"
cargo build --release --quiet -p berth-image --example berth-image -p berthd -p berth
REL=${CARGO_TARGET_DIR:-$REPO/target}/release
TOOL=$REL/examples/berth-image
BROOT=$(mktemp -d /tmp/berth-bench-store.XXXXXX)
SCRATCH=$(mktemp -d /tmp/berth-bench-dockerd.XXXXXX)
BD=$(mktemp -d /tmp/berth-bench-berthd.XXXXXX)
BRIDGE=berthbench0
DOCKERD_PID=
BERTHD_PID=
OWN_BRIDGE=

cleanup() {
  set +e
  if [ -n "$BERTHD_PID" ]; then
    kill -TERM "$BERTHD_PID" 2>/dev/null
    for _ in $(seq 1 300); do kill -0 "$BERTHD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BERTHD_PID" 2>/dev/null
  fi
  if [ -n "$DOCKERD_PID" ]; then
    kill -TERM "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 1 300); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DOCKERD_PID" 2>/dev/null
  fi
  # dockerd stops its own containerd; leave no mounts of the private data root behind.
  grep -o " $SCRATCH[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount 2>/dev/null
  [ -n "$OWN_BRIDGE" ] && ip link del "$BRIDGE" 2>/dev/null
  rm -rf "$SCRATCH" "$BROOT" "$BD" "$WORK"/out-* "$WORK"/skopeo-oci "$WORK"/big1g.tar
}
trap cleanup EXIT

echo "== private berthd ($BD)"
"$REL/berthd" --data-root "$BD/data" --exec-root "$BD/run" -H "unix://$BD/sock" \
  --config-file <(echo '{}') >"$BD/berthd.log" 2>&1 &
BERTHD_PID=$!
BERTH="$REL/berth -H unix://$BD/sock"
for _ in $(seq 1 600); do $BERTH version >/dev/null 2>&1 && break; sleep 0.1; done
$BERTH version >/dev/null || { tail "$BD/berthd.log"; exit 1; }
# berthd deletes removed layers on a helper thread (rename to trash/, then unlink); on a
# `discard`-mounted disk that takes seconds. A load run starts once that is done, as after
# the library tool's `rmi` (it waits before exiting) and docker's (synchronous) rmi.
# BERTH_NO_TRASH_WAIT=1 skips the wait: back-to-back `rmi -f` and `load`, as a user would.
printf '#!/bin/sh\n%s rmi -f %s >/dev/null 2>&1\n' "$BERTH" "$IMG" >"$BD/prep-load.sh"
[ "${BERTH_NO_TRASH_WAIT:-}" = 1 ] ||
  printf 'while [ -n "$(ls -A %s)" ]; do sleep 0.05; done\n' "$BD/data/trash" >>"$BD/prep-load.sh"
echo sync >>"$BD/prep-load.sh"
chmod +x "$BD/prep-load.sh"

DOCKER=
if [ -z "${NO_DOCKER:-}" ] && command -v dockerd >/dev/null; then
  echo "== private dockerd ($SCRATCH)"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    # A private bridge in the RFC 2544 benchmark range; never --bridge=none (dockerd 20.10
    # then deletes the host's docker0).
    ip link add name "$BRIDGE" type bridge && ip addr add 198.18.253.1/24 dev "$BRIDGE"
    OWN_BRIDGE=1
  fi
  echo '{}' >"$SCRATCH/daemon.json"
  dockerd --data-root "$SCRATCH/data" --exec-root "$SCRATCH/exec" --pidfile "$SCRATCH/pid" \
    -H "unix://$SCRATCH/sock" --config-file "$SCRATCH/daemon.json" --bridge="$BRIDGE" \
    --iptables=false --ip-masq=false >"$SCRATCH/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  DOCKER="docker -H unix://$SCRATCH/sock"
  for _ in $(seq 1 600); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.1; done
  $DOCKER version --format 'dockerd {{.Server.Version}} ({{.Server.Os}})' || { tail "$SCRATCH/dockerd.log"; exit 1; }
fi

cat "$TAR" >/dev/null # the archive is read from the page cache by everyone

echo "== load ($TAR, $(du -m "$TAR" | cut -f1) MB)"
args=(--runs "$RUNS" --warmup "$WARMUP" --export-json "$WORK/images-load.json" --style basic)
args+=(--prepare "$BD/prep-load.sh" -n berth "$BERTH load -q -i $TAR")
args+=(--prepare "$TOOL --root $BROOT rmi -f $IMG >/dev/null 2>&1; sync" -n berth-lib "$TOOL --root $BROOT load -i $TAR")
[ -n "$DOCKER" ] && args+=(--prepare "$DOCKER rmi -f $IMG >/dev/null 2>&1; sync" -n docker "$DOCKER load -q -i $TAR")
args+=(--prepare "rm -rf $WORK/skopeo-oci; sync" -n skopeo "skopeo copy -q docker-archive:$TAR oci:$WORK/skopeo-oci:fat")
hyperfine "${args[@]}"

# Leave the image loaded everywhere for the save runs.
$TOOL --root "$BROOT" load -i "$TAR" >/dev/null
$BERTH image inspect $IMG >/dev/null 2>&1 || $BERTH load -q -i "$TAR" >/dev/null
[ -n "$DOCKER" ] && { $DOCKER image inspect $IMG >/dev/null 2>&1 || $DOCKER load -q -i "$TAR" >/dev/null; }
[ -d "$WORK/skopeo-oci" ] || skopeo copy -q "docker-archive:$TAR" "oci:$WORK/skopeo-oci:fat"

echo "== save"
args=(--runs "$RUNS" --warmup "$WARMUP" --export-json "$WORK/images-save.json" --style basic)
args+=(--prepare "rm -f $WORK/out-berth.tar; sync" -n berth "$BERTH save -o $WORK/out-berth.tar $IMG")
args+=(--prepare "rm -f $WORK/out-lib.tar; sync" -n berth-lib "$TOOL --root $BROOT save -o $WORK/out-lib.tar $IMG")
[ -n "$DOCKER" ] && args+=(--prepare "rm -f $WORK/out-docker.tar; sync" -n docker "$DOCKER save -o $WORK/out-docker.tar $IMG")
args+=(--prepare "rm -f $WORK/out-skopeo.tar; sync" -n skopeo "skopeo copy -q oci:$WORK/skopeo-oci:fat docker-archive:$WORK/out-skopeo.tar:$IMG")
hyperfine "${args[@]}"
cmp "$WORK/out-berth.tar" "$WORK/out-lib.tar" && echo "berth save through berthd = library save, byte for byte"

echo "== memory"
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
$TOOL --root "$BROOT" rmi -f $IMG >/dev/null
LOAD_RSS=$(rss "$TOOL" --root "$BROOT" load -i "$TAR")
SAVE_RSS=$(rss "$TOOL" --root "$BROOT" save -o "$WORK/out-berth.tar" $IMG)
# A 1 GB single-layer image: peak RSS must not grow with the layer.
python3 - "$WORK/big1g.tar" <<'PY'
import hashlib, io, json, os, sys, tarfile
out = sys.argv[1]
size = 1 << 30
class Noise(io.RawIOBase):
    def __init__(self): self.left = size; self.block = os.urandom(1 << 20)
    def readable(self): return True
    def readinto(self, b):
        n = min(len(b), self.left, len(self.block)); b[:n] = self.block[:n]
        self.block = hashlib.sha512(self.block[:64]).digest() * 0 + self.block[1:] + self.block[:1]
        self.left -= n; return n
layer = out + ".layer"
h = hashlib.sha256()
with open(layer, "wb") as f:
    with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as t:
        ti = tarfile.TarInfo("big.bin"); ti.size = size; ti.mtime = 1700000000
        t.addfile(ti, io.BufferedReader(Noise(), 1 << 20))
with open(layer, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""): h.update(chunk)
diff = "sha256:" + h.hexdigest()
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                  "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
cname = hashlib.sha256(cfg).hexdigest() + ".json"
with tarfile.open(out, "w") as t:
    t.add(layer, "l1/layer.tar")
    ti = tarfile.TarInfo(cname); ti.size = len(cfg); t.addfile(ti, io.BytesIO(cfg))
    m = json.dumps([{"Config": cname, "RepoTags": ["cebench/big:1"], "Layers": ["l1/layer.tar"]}]).encode()
    ti = tarfile.TarInfo("manifest.json"); ti.size = len(m); t.addfile(ti, io.BytesIO(m))
os.remove(layer)
PY
BIG_RSS=$(rss "$TOOL" --root "$BROOT" load -i "$WORK/big1g.tar")
BIG_SAVE_RSS=$(rss "$TOOL" --root "$BROOT" save -o "$WORK/out-big.tar" cebench/big:1)
rm -f "$WORK/out-big.tar"
$TOOL --root "$BROOT" fsck

echo "== results (median of $RUNS runs; ratio = berth / peer, lower is better)"
python3 - "$WORK/images-load.json" "$WORK/images-save.json" <<PY
import json, sys
for path, op, target in ((sys.argv[1], "load", 0.25), (sys.argv[2], "save", 0.25)):
    res = {r["command"]: r["median"] for r in json.load(open(path))["results"]}
    for who in ("berth", "berth-lib"):
        b = res[who]
        line = f"{op:5s} {who:9s} {b:6.3f} s"
        for peer in ("docker", "skopeo"):
            if peer in res:
                line += f" | {peer} {res[peer]:6.3f} s  ratio {b / res[peer]:5.2f}"
        if "docker" in res:
            line += f"  (target <= {target} x docker: {'met' if b / res['docker'] <= target else 'NOT met'})"
        print(line)
print(f"peak RSS: load fat {int('$LOAD_RSS') / 1024:.1f} MB, save fat {int('$SAVE_RSS') / 1024:.1f} MB, "
      f"load 1 GB layer {int('$BIG_RSS') / 1024:.1f} MB, save 1 GB layer {int('$BIG_SAVE_RSS') / 1024:.1f} MB "
      f"(target < 64 MB: {'met' if max(int('$BIG_RSS'), int('$BIG_SAVE_RSS')) < 64 * 1024 else 'NOT met'})")
PY
