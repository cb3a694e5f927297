#!/usr/bin/env python3
"""Phases of `berth run --rm` from a perf trace (see benches/phases.sh).

Reads `perf script -F comm,pid,tid,cpu,time,event,trace` output of sched_process_* and the
sendmsg/recvmsg/pivot_root/execve/clone3/read/write/sendto syscall tracepoints, finds each
run (the CLI's exec) and prints the median, p25 and p75 of each phase in ms:

  t0 (CLI exec) -> create_sent -> handoff (berthd writes the state dir to the standby)
  -> standby_up (the standby read it) -> clone (the shim clones the init)
  -> init_join (the init receives its cgroup files) -> pivot -> exec -> true_exit
  -> report (the shim's exit report) -> cli_exit
"""
import re
import statistics
import sys

LINE = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$")
ORDER = ["create_sent", "handoff", "standby_up", "clone", "init_join", "pivot", "exec",
         "true_exit", "report", "cli_exit"]


def ret(trace):
    return int(trace.split("0x")[-1], 16)


def parse(path):
    runs, cur, cli, shim, init = [], None, None, None, None
    writes = []  # (count, time) of berthd's recent writes: the hand-off is one of them
    for line in open(path):
        m = LINE.match(line)
        if not m:
            continue
        comm, pid, _tid, _cpu, t, ev, tr = m.groups()
        pid, t = int(pid), float(t) * 1000
        if ev == "sched:sched_process_exec" and re.search(r"filename=\S*/berth ", tr):
            cur, cli, shim, init = {"t0": t}, pid, None, None
            runs.append(cur)
            continue
        if cur is None:
            continue

        def mark(key):
            cur.setdefault(key, t)

        if pid == cli:
            if ev == "syscalls:sys_enter_sendto":
                mark("create_sent")
            elif ev == "sched:sched_process_exit":
                cur["cli_exit"] = t
        elif ev == "syscalls:sys_enter_write" and comm.startswith("tokio"):
            writes.append((int(tr.split("count: ")[1], 16), t))
            del writes[:-20]
        elif (ev == "syscalls:sys_exit_read" and comm == "berth-shim" and shim is None
              and ret(tr) > 60):
            handed = [w for (n, w) in writes if n == ret(tr)]
            if handed:
                cur["handoff"], cur["standby_up"], shim = handed[-1], t, pid
        elif ev == "syscalls:sys_exit_clone3" and pid == shim and init is None and ret(tr) > 0:
            cur["clone"], init = t, ret(tr)
        elif pid == init:
            key = {"syscalls:sys_exit_recvmsg": "init_join",
                   "syscalls:sys_enter_pivot_root": "pivot",
                   "syscalls:sys_enter_execve": "exec",
                   "sched:sched_process_exit": "true_exit"}.get(ev)
            if key:
                mark(key)
        elif (pid == shim and ev == "syscalls:sys_enter_sendto" and "true_exit" in cur
              and re.search(r"len: 0x0000004[0-9a-f]|len: 0x0000005[0-9a-f]", tr)):
            mark("report")
    return runs


def main():
    runs = [r for r in parse(sys.argv[1]) if all(k in r for k in ORDER)]
    if not runs:
        sys.exit("no complete run in the trace")
    print(f"{len(runs)} complete runs; ms: median (p25-p75)")
    prev = "t0"
    for k in ORDER:
        d = sorted(r[k] - r[prev] for r in runs)
        print(f"{prev:>12} -> {k:<12} {statistics.median(d):6.2f} "
              f"({d[len(d) // 4]:.2f}-{d[3 * len(d) // 4]:.2f})")
        prev = k
    print(f"{'total':>28} {statistics.median(r['cli_exit'] - r['t0'] for r in runs):6.2f}")


if __name__ == "__main__":
    main()
