#!/usr/bin/env bash
# CLI start-up and round-trip latency, side by side with the docker CLI, in one run.
#   benches/cli.sh                 builds berth (release) and times it against `docker`
# Prints hyperfine medians and the berth/docker ratio for each case.
#  - startup: `--help` (no daemon involved): what every invocation pays before any request.
#  - version round trip (target <= 3 ms): `berth version` against a running berthd, when one
#    answers at $BERTH_HOST (default unix:///run/berth/berth.sock); skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
command -v hyperfine >/dev/null || { echo "skipped: hyperfine not installed (scripts/install-deps.sh --bench)"; exit 0; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p berth
BERTH="$CARGO_TARGET_DIR/release/berth"
out=$(mktemp -d /tmp/berth-test-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT

median() { jq -r '.results[0].median * 1000' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }

hyperfine -N -w 20 -r 300 --export-json "$out/berth-help.json" "$BERTH --help" >/dev/null
b=$(median "$out/berth-help.json")
if command -v docker >/dev/null; then
  hyperfine -N -w 20 -r 300 --export-json "$out/docker-help.json" "docker --help" >/dev/null
  d=$(median "$out/docker-help.json")
  printf 'startup (--help):  berth %.2f ms   docker %.2f ms   ratio %s\n' "$b" "$d" "$(ratio "$b" "$d")"
else
  printf 'startup (--help):  berth %.2f ms   docker: skipped (not installed)\n' "$b"
fi

if "$BERTH" version >/dev/null 2>&1; then
  hyperfine -N -w 20 -r 300 --export-json "$out/berth-version.json" "$BERTH version" >/dev/null
  v=$(median "$out/berth-version.json")
  sock="${BERTH_HOST:-unix:///run/berth/berth.sock}"
  if command -v docker >/dev/null; then
    hyperfine -N -w 10 -r 100 --export-json "$out/docker-version.json" "docker -H $sock version" >/dev/null
    dv=$(median "$out/docker-version.json")
    printf 'version round trip: berth %.2f ms   docker CLI (same daemon) %.2f ms   ratio %s   target <= 3 ms\n' "$v" "$dv" "$(ratio "$v" "$dv")"
  else
    printf 'version round trip: berth %.2f ms   target <= 3 ms\n' "$v"
  fi
else
  echo "version round trip: skipped: no berthd answers at ${BERTH_HOST:-unix:///run/berth/berth.sock}"
fi
