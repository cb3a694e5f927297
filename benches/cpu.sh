#!/usr/bin/env bash
# Where the CPU of back-to-back `berth run --rm --network none busybox true` goes, per
# process and per binary (benches/README.md, "cpu.sh"): a private berthd of BINDIR, N runs
# back to back sampled with `perf record -a` (cpu-clock at FREQ Hz, all CPUs, no call
# graphs), then CPU milliseconds per run by command and by command+DSO. Run as root.
#   benches/cpu.sh [BINDIR] [N]     defaults: target/release 100; FREQ=10000
# SYMS=K also prints the K largest command+symbol rows; CALLGRAPH=1 records call graphs;
# KEEP=FILE keeps perf.data for `perf report -i FILE`.
set -euo pipefail
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
cd "$(dirname "$0")/.."
BIN=$(readlink -f "${1:-${CARGO_TARGET_DIR:-target}/release}")
N=${2:-100}
FREQ=${FREQ:-10000}
command -v perf >/dev/null || { echo "perf is required (apt-get install linux-perf)"; exit 1; }
. benches/private_berthd.sh
private_berthd "$BIN" cpu
for _ in $(seq 10); do "$W/berth" run --rm --network none busybox true; done
start=$(date +%s%N)
perf record -q -a ${CALLGRAPH:+-g} -F "$FREQ" -e cpu-clock -o "$W/perf.data" -- bash -c \
  "for i in \$(seq $N); do $W/berth run --rm --network none busybox true; done" \
  >/dev/null 2>&1
end=$(date +%s%N)
echo "wall per run (including perf's overhead): $(( (end - start) / N / 1000 )) us"
report() { # SORT
  perf report -q -i "$W/perf.data" --sort "$1" -n --no-children -g none --stdio 2>/dev/null |
    awk -v f="$FREQ" -v n="$N" 'NF >= 3 { s = $2; $1 = ""; $2 = "";
      printf "%8.3f ms  %s\n", s / f * 1000 / n, $0 }' | head -"${2:-40}" || true
}
echo "== CPU per run by command (idle excluded: swapper)"
report comm 25
echo "== CPU per run by command and DSO"
report comm,dso 40
if [ -n "${SYMS:-}" ]; then echo "== CPU per run by command and symbol"; report comm,sym "$SYMS"; fi
if [ -n "${KEEP:-}" ]; then cp "$W/perf.data" "$KEEP"; fi
