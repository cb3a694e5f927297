#!/usr/bin/env bash
# The whole test suite, as CI runs it (`.ci/run` calls this). Run as root on Debian 12.
#   scripts/test.sh              everything: deps, fmt, clippy, all tests, leak check
#   scripts/test.sh -E 'FILTER'  extra arguments go to `cargo nextest run` (e.g. a filterset)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/install-deps.sh

echo "== fmt and clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== build"
# Integration tests of one crate run the binaries of others (berth-runtime, berth-shim,
# berthd, berth, berth-probe); build them all first so every test finds them in target/.
cargo build --workspace --bins --quiet

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  echo "cargo-nextest not installed; falling back to cargo test"
  cargo test --workspace --no-fail-fast -- --test-threads=2
fi

echo "== leak check"
scripts/leak-check.sh
