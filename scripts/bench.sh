#!/usr/bin/env bash
# `make bench`: the PostgreSQL ceiling, then Folio's suites, in one run on
# this machine (absolute numbers drift between runs; ratios are what count).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${BENCH_SECONDS:-10}
ceiling=../shared/bench/pg_ceiling.sh

cargo build --quiet --release -p folio-bench
echo "# $(date -u +%FT%TZ) $(nproc) cores"
if [ -x "$ceiling" ]; then
  bash "$ceiling" "$seconds" 64
else
  echo "ceiling: $ceiling not found (run from a checkout with ../shared beside it)"
fi
./target/release/folio-bench auth --seconds "$seconds"
