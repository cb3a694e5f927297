#!/usr/bin/env bash
# Loading a seccomp program: two compiled programs side by side (alternated pairs).
#   benches/seccomp.sh OLD.bpf NEW.bpf [PAIRS=400]
#
# Each pair forks two children; each sets no_new_privs, times
# seccomp(SECCOMP_SET_MODE_FILTER) with its program, then 4,000 calls of syscall 1000
# (not allowed: the filter runs) and of 0x40000000|1000 (x32: never in the kernel's action
# cache). Prints the medians and the paired median difference NEW - OLD, and `uptime`.
# The .bpf files are the compiled-filter cache's entries (`<exec-root>/seccomp/*.bpf` of a
# berthd, `<root>/.seccomp-cache/*.bpf` of berth-runtime): run one container with each
# build and take the file. Needs gcc; x86_64 (the x32 number).
set -euo pipefail
OLD=${1:?usage: benches/seccomp.sh OLD.bpf NEW.bpf [PAIRS]}
NEW=${2:?usage: benches/seccomp.sh OLD.bpf NEW.bpf [PAIRS]}
PAIRS=${3:-400}
WORK=$(mktemp -d /tmp/berth-bench-seccomp.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/load.c" <<'C'
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }
static double med(const double *v, int n) { double *w = malloc(n * sizeof *w); for (int i = 0; i < n; i++) w[i] = v[i]; qsort(w, n, sizeof *w, cmp); double m = w[n / 2]; free(w); return m; }
static struct sock_filter P[2][4096];
static int N[2];
/* one child: load program f; v = {load us, ns per blocked call, ns per x32 call} */
static int one(int f, double v[3]) {
  int p[2];
  if (pipe(p)) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    struct sock_fprog fp = {N[f], P[f]};
    double r[3] = {-1, -1, -1};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    double t0 = now();
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) == 0) {
      double t1 = now();
      for (int i = 0; i < 4000; i++) syscall(1000);
      double t2 = now();
      for (int i = 0; i < 4000; i++) syscall(0x40000000 | 1000);
      double t3 = now();
      r[0] = t1 - t0; r[1] = (t2 - t1) / 4; r[2] = (t3 - t2) / 4;
    }
    if (write(p[1], r, sizeof r) != sizeof r) _exit(1);
    _exit(0);
  }
  close(p[1]);
  ssize_t n = read(p[0], v, 3 * sizeof *v);
  close(p[0]);
  waitpid(pid, 0, 0);
  return n == 3 * sizeof *v && v[0] >= 0 ? 0 : -1;
}
int main(int argc, char **argv) {
  for (int f = 0; f < 2; f++) {
    FILE *x = fopen(argv[1 + f], "rb");
    if (!x) { perror(argv[1 + f]); return 1; }
    N[f] = fread(P[f], sizeof P[f][0], 4096, x);
    fclose(x);
  }
  int n = atoi(argv[3]);
  double *L[2], *C[2], *X[2], *D = malloc(n * sizeof *D);
  for (int f = 0; f < 2; f++) { L[f] = malloc(n * 8); C[f] = malloc(n * 8); X[f] = malloc(n * 8); }
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < 2; j++) {
      int f = (i + j) % 2; double v[3];
      if (one(f, v)) { fprintf(stderr, "loading %s failed\n", argv[1 + f]); return 1; }
      L[f][i] = v[0]; C[f][i] = v[1]; X[f][i] = v[2];
    }
    D[i] = L[1][i] - L[0][i];
  }
  printf("instructions   old %d | new %d\n", N[0], N[1]);
  printf("load, median   old %.1f us | new %.1f us | paired new-old %+.1f us\n", med(L[0], n), med(L[1], n), med(D, n));
  printf("blocked call   old %.1f ns | new %.1f ns\n", med(C[0], n), med(C[1], n));
  printf("x32 call       old %.1f ns | new %.1f ns\n", med(X[0], n), med(X[1], n));
  return 0;
}
C
gcc -O2 -o "$WORK/load" "$WORK/load.c"
"$WORK/load" "$OLD" "$NEW" "$PAIRS"
uptime
