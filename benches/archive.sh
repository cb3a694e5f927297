#!/usr/bin/env bash
# Layer unpack (and tar writing) throughput of berth-archive against GNU tar, side by side,
# plus the peak memory of unpacking a 1 GiB layer.
#
#   benches/archive.sh                 everything (fixtures are built once, ~1.2 GB in $BENCH_WORK)
#   RUNS=5 benches/archive.sh          fewer hyperfine runs
#   FS=disk benches/archive.sh         only on the work dir's filesystem (FS=tmpfs: only tmpfs)
#
# Cases, each as `tar` vs `berth` on the same bytes into an empty directory:
#   plain   tar -xf fat.tar              vs  berth-layer apply fat.tar
#   gzip    tar -xzf fat.tar.gz          vs  berth-layer apply fat.tar.gz   (tar runs gzip -d alongside)
#   zstd    tar --zstd -xf fat.tar.zst   vs  berth-layer apply fat.tar.zst
#   write   tar -cf - -C tree .          vs  berth-layer tar tree -          (to /dev/null)
# on the work dir's filesystem (what /var/lib/berth is on) and on a tmpfs (no disk: the
# CPU cost alone). berth also hashes the stream (the diff ID), which tar does not.
# Target (issue 3): unpack throughput >= 0.8x tar's, i.e. ratio tar/berth >= 0.8; peak RSS
# under 64 MB for a 1 GiB layer.
#
# fat.tar is like the cebench "fat" image flattened: 8000 small files (4000 random 1-8 KiB,
# 4000 text 0.25-2 KiB) in 80 directories, 2x48 MiB random, 16 MiB zeros, 16 MiB text
# (163 MB). big.tar: 8000 small files and 4x256 MiB random (1.03 GB).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-10}
WORK=${BENCH_WORK:-/tmp/berth-bench-archive}
FS=${FS:-disk tmpfs}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$TARGET/release/examples/berth-layer

command -v hyperfine >/dev/null || { echo "hyperfine is needed (apt-get install hyperfine)"; exit 1; }
echo "== building berth-layer (release)"
cargo build --release --quiet -p berth-archive --example berth-layer

mkdir -p "$WORK"
gen() { # gen OUT SMALL_SETS BIG_COUNT BIG_MIB
  python3 - "$@" <<'EOF'
import io, random, sys, tarfile
out, sets, nbig, big_mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(42)
MTIME = 1700000000
def ti(name, typ, mode, size=0):
    t = tarfile.TarInfo(name); t.type, t.mode, t.size = typ, mode, size
    t.mtime, t.uid, t.gid, t.uname, t.gname = MTIME, 0, 0, "", ""
    return t
with tarfile.open(out + ".tmp", "w", format=tarfile.PAX_FORMAT) as t:
    dirs = set()
    def f(name, data):
        parts = name.split("/")
        for i in range(1, len(parts)):
            p = "/".join(parts[:i])
            if p not in dirs:
                dirs.add(p); t.addfile(ti(p + "/", tarfile.DIRTYPE, 0o755))
        t.addfile(ti(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    f("data/big/.keep", b"")
    pool = rng.randbytes(8 << 20)
    words = [b"alpha", b"bravo", b"charlie", b"delta", b"echo", b"foxtrot"]
    for i in range(4000 * sets):
        sz = rng.randint(1024, 8192); off = rng.randint(0, len(pool) - sz)
        f(f"data/small-a/d{i // 100:03d}/f{i:05d}.bin", pool[off:off + sz])
    for i in range(4000 * sets):
        f(f"data/small-b/d{i // 100:03d}/f{i:05d}.txt",
          b" ".join(rng.choice(words) for _ in range(rng.randint(40, 300))) + b"\n")
    class Random:  # streams random bytes (one randbytes() call is limited to < 256 MiB)
        def __init__(self, n): self.left = n
        def read(self, n=-1):
            n = self.left if n < 0 else min(n, self.left)
            self.left -= n
            return rng.randbytes(n)
    for j in range(nbig):
        name = f"data/big/blob{j}.bin"
        t.addfile(ti(name, tarfile.REGTYPE, 0o644, big_mib << 20), Random(big_mib << 20))
    if nbig == 2:
        f("data/big/zeros.bin", bytes(16 << 20))
        line = b"2023-11-14T22:13:20Z INFO something happened id=0123456789\n"
        f("data/big/app.log", (line * ((16 << 20) // len(line) + 1))[:16 << 20])
import os; os.rename(out + ".tmp", out)
EOF
}
[ -f "$WORK/fat.tar" ] || { echo "== generating fat.tar"; gen "$WORK/fat.tar" 1 2 48; }
[ -f "$WORK/fat.tar.gz" ] || gzip -6 -n -c "$WORK/fat.tar" >"$WORK/fat.tar.gz"
[ -f "$WORK/fat.tar.zst" ] || zstd -q -3 -c "$WORK/fat.tar" >"$WORK/fat.tar.zst"
[ -f "$WORK/big.tar" ] || { echo "== generating big.tar (1 GiB)"; gen "$WORK/big.tar" 1 4 256; }

TMPFS=$WORK/tmpfs
cleanup() { mountpoint -q "$TMPFS" && umount "$TMPFS"; rm -rf "$WORK/run"; }
trap cleanup EXIT

results=$WORK/results
rm -rf "$results" && mkdir -p "$results"

# bench LABEL PREPARE TAR_CMD BERTH_CMD: RUNS alternating runs (tar, berth, tar, ...), each
# after PREPARE, plus one warm-up round. Alternating keeps a machine whose load drifts (other
# builds) from favouring whichever tool ran first.
bench() {
  local label=$1 prep=$2 tar_cmd=$3 berth_cmd=$4
  echo "== $label"
  echo "   tar:   $tar_cmd"
  echo "   berth: $berth_cmd"
  for i in $(seq 0 "$RUNS"); do
    hyperfine --style none --runs 1 --prepare "$prep" --export-json "$results/$label.$i.json" \
      -n tar "$tar_cmd" -n berth "$berth_cmd" >/dev/null
  done
  rm -f "$results/$label.0.json"
}

for fs in $FS; do
  case $fs in
    disk) dir=$WORK/run; src=$WORK ;;
    tmpfs)
      if [ "$(id -u)" != 0 ]; then echo "skipped tmpfs: needs root"; continue; fi
      mkdir -p "$TMPFS"; mountpoint -q "$TMPFS" || mount -t tmpfs -o size=3g berth-bench "$TMPFS"
      dir=$TMPFS; src=$TMPFS
      cp "$WORK"/fat.tar* "$TMPFS"/ ;;
    *) echo "unknown FS=$fs"; exit 1 ;;
  esac
  mkdir -p "$dir"
  prep="rm -rf '$dir/d' && mkdir '$dir/d' && sync"
  bench "unpack-plain-$fs" "$prep" "tar -xf $src/fat.tar -C $dir/d" "$BIN apply $src/fat.tar $dir/d"
  bench "unpack-gzip-$fs" "$prep" "tar -xzf $src/fat.tar.gz -C $dir/d" "$BIN apply $src/fat.tar.gz $dir/d"
  bench "unpack-zstd-$fs" "$prep" "tar --zstd -xf $src/fat.tar.zst -C $dir/d" "$BIN apply $src/fat.tar.zst $dir/d"
  # Writing: archive an unpacked tree into a file (GNU tar skips reading files when the
  # archive is /dev/null, so /dev/null would not compare like with like).
  rm -rf "$dir/tree" "$dir/d" && mkdir "$dir/tree" && tar -xf "$src/fat.tar" -C "$dir/tree"
  bench "write-$fs" "rm -f '$dir/out.tar' && sync" "tar -cf $dir/out.tar -C $dir/tree ." "$BIN tar $dir/tree $dir/out.tar"
  rm -rf "$dir/tree" "$dir/out.tar"
  if [ "$fs" = tmpfs ]; then umount "$TMPFS"; fi
done

echo "== peak RSS unpacking big.tar (1 GiB)"
mkdir -p "$WORK/run"
rss() { # rss CMD...: peak RSS in KiB of one run into an empty $WORK/run/d
  rm -rf "$WORK/run/d" && mkdir "$WORK/run/d"
  /usr/bin/time -f %M -o "$WORK/run/rss" "$@" >/dev/null 2>&1
  cat "$WORK/run/rss"
}
tar_rss=$(rss tar -xf "$WORK/big.tar" -C "$WORK/run/d")
berth_rss=$(rss "$BIN" apply "$WORK/big.tar" "$WORK/run/d")
gz_rss=$(gzip -1 -c "$WORK/big.tar" | {
  rm -rf "$WORK/run/d" && mkdir "$WORK/run/d"
  /usr/bin/time -f %M -o "$WORK/run/rss" "$BIN" apply - "$WORK/run/d" >/dev/null 2>&1
  cat "$WORK/run/rss"
})
rm -rf "$WORK/run/d"

echo
echo "== summary: medians of $RUNS alternating runs; ratio = tar / berth (berth's relative"
echo "   throughput, > 1: berth faster); cpu = user + system time"
python3 - "$results" "$tar_rss" "$berth_rss" "$gz_rss" <<'EOF'
import glob, json, os, statistics, sys
res, tar_rss, berth_rss, gz_rss = sys.argv[1], *map(int, sys.argv[2:])
cases = sorted({os.path.basename(p).rsplit(".", 2)[0] for p in glob.glob(f"{res}/*.json")})
print(f"{'case':<20}{'tar ms':>8}{'berth ms':>10}{'ratio':>7}{'tar cpu':>9}{'berth cpu':>11}{'ratio':>7}  target")
for case in cases:
    wall, cpu = {"tar": [], "berth": []}, {"tar": [], "berth": []}
    for p in glob.glob(f"{res}/{case}.*.json"):
        for r in json.load(open(p))["results"]:
            wall[r["command"]].append(r["times"][0] * 1000)
            cpu[r["command"]].append((r["user"] + r["system"]) * 1000)
    t, b = statistics.median(wall["tar"]), statistics.median(wall["berth"])
    tc, bc = statistics.median(cpu["tar"]), statistics.median(cpu["berth"])
    target = ""
    if case.startswith("unpack"):
        target = ">= 0.80 " + ("ok" if t / b >= 0.8 else "MISSED")
    print(f"{case:<20}{t:>8.0f}{b:>10.0f}{t / b:>7.2f}{tc:>9.0f}{bc:>11.0f}{tc / bc:>7.2f}  {target}")
print(f"peak RSS unpacking a 1 GiB layer: berth {berth_rss / 1024:.1f} MiB (gzip from a pipe: "
      f"{gz_rss / 1024:.1f} MiB), tar {tar_rss / 1024:.1f} MiB; target < 64 MiB: "
      f"{'ok' if max(berth_rss, gz_rss) < 64 * 1024 else 'MISSED'}")
EOF
