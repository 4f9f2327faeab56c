#!/usr/bin/env bash
# `make bench`: the PostgreSQL ceiling, then Folio's suites, in one run on
# this machine (absolute numbers drift between runs; ratios are what count).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${BENCH_SECONDS:-10}
ceiling_script=../shared/bench/pg_ceiling.sh

# nginx is the front door's peer (issue 13): the gateway is compared with its grpc_pass.
nginx=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$nginx" ]; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nginx-light >/dev/null
  nginx=/usr/sbin/nginx
fi

# The events suite compares the ledger with a build that writes no events
# (a cargo feature, never a setting: see services/ledger/Cargo.toml).
cargo build --quiet --release -p folio-ledger --features bench-without-events
cp target/release/folio-ledger target/release/folio-ledger-without-events
cargo build --quiet --release -p folio-bench -p folio-ledger -p folio-gateway
echo "# $(date -u +%FT%TZ) $(nproc) cores, PostgreSQL synchronous_commit=$(psql -h 127.0.0.1 -U postgres -Atc 'show synchronous_commit')"
single=0
batched=0
if [ -f "$ceiling_script" ]; then
  ceiling=$(bash "$ceiling_script" "$seconds" 64)
  echo "$ceiling"
  single=$(sed -n 's/^ceiling single .*tps=\([0-9]*\).*/\1/p' <<<"$ceiling")
  batched=$(sed -n 's/^ceiling batched .*tps=\([0-9]*\).*/\1/p' <<<"$ceiling")
else
  echo "ceiling: $ceiling_script not found (run from a checkout with ../shared beside it); ratios will read 0"
fi
./target/release/folio-bench ledger --seconds "$seconds" --ceiling-single "$single" --ceiling-batched "$batched" --nginx-binary "$nginx"
./target/release/folio-bench events --seconds "$seconds"
./target/release/folio-bench replicas --seconds "$seconds"
./target/release/folio-bench auth --seconds "$seconds"
