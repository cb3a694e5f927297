#!/usr/bin/env bash
# Where one `berth run --rm --network none busybox true` spends its time, phase by phase
# (benches/README.md, "phases.sh"): a private berthd of BINDIR (berth, berthd, berth-shim),
# N runs SLEEP seconds apart traced with scheduler and syscall tracepoints only (perf
# record -a; no per-syscall tracer in the loop), then benches/phases.py. Run as root.
#   benches/phases.sh [BINDIR] [N] [SLEEP]     defaults: target/release 40 0.1
set -euo pipefail
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
cd "$(dirname "$0")/.."
BIN=$(readlink -f "${1:-${CARGO_TARGET_DIR:-target}/release}")
N=${2:-40}
PAUSE=${3:-0.1}
command -v perf >/dev/null || { echo "perf is required (apt-get install linux-perf)"; exit 1; }
. benches/private_berthd.sh
private_berthd "$BIN" phases
for _ in 1 2 3 4 5; do "$W/berth" run --rm --network none busybox true; done
events=sched:sched_process_exec,sched:sched_process_fork,sched:sched_process_exit
for s in sendmsg recvmsg pivot_root execve clone3 write read sendto; do
  events="$events,syscalls:sys_enter_$s,syscalls:sys_exit_$s"
done
perf record -q -a -o "$W/perf.data" -e "$events" --exclude-perf -- bash -c \
  "for i in \$(seq $N); do $W/berth run --rm --network none busybox true; sleep $PAUSE; done" \
  >/dev/null 2>&1
perf script -i "$W/perf.data" -F comm,pid,tid,cpu,time,event,trace >"$W/trace.txt" 2>/dev/null
python3 benches/phases.py "$W/trace.txt"
