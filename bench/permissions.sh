#!/usr/bin/env bash
# Permission API benchmark: latchkey-permissions pinned to CPU 0, the load generator (tests/bench_permissions.rs)
# on CPU 1; the identity server only mints the tokens beforehand. Figures go to docs/benchmarks.md.
#   bench/permissions.sh            (BENCH_SECONDS=10 BENCH_CONC=32 BENCH_TOKENS=40000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins --test bench_permissions 2>&1 | tail -n 1
LATCHKEY_TEST_SERVER_CPU=0 taskset -c 1 cargo test --release --test bench_permissions -- --ignored --nocapture 2>&1 | grep -o 'BENCH.*'
