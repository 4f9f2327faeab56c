#!/usr/bin/env bash
# `make soak`: steady CreateTransfer load through the gateway (auth, ledger and
# gateway as processes on PostgreSQL and Redis) for SOAK_SECONDS (default 300),
# every service's RSS every 10 s, and its slope in MiB per million calls after
# the first minute (issue 17: at most 1, and back within 10% after the load).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release -p folio-bench -p folio-auth -p folio-ledger -p folio-gateway
echo "# $(date -u +%FT%TZ) $(nproc) cores"
./target/release/folio-bench soak --seconds "${SOAK_SECONDS:-300}" --callers "${SOAK_CALLERS:-64}"
