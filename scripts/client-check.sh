#!/usr/bin/env bash
# Starts `make run` on a throw-away data directory, runs the Python client's
# journey against its gateway, and stops the suite (needs
# `pip install -r tests/clients/python/requirements.txt`).
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(mktemp -d)
log="$data/run.log"
export FOLIO__DATA_DIR="$data" FOLIO_PROFILE=${FOLIO_PROFILE:-dev}
setsid bash scripts/run.sh >"$log" 2>&1 &
suite=$!
stop() {
  kill -INT -- "-$suite" 2>/dev/null || true
  wait "$suite" 2>/dev/null || true
}
trap stop EXIT
for _ in $(seq 1 600); do
  grep -q "Folio is up" "$log" && break
  if ! kill -0 "$suite" 2>/dev/null; then cat "$log"; echo "make run exited early"; exit 1; fi
  sleep 1
done
grep -q "Folio is up" "$log" || { tail -50 "$log"; echo "make run did not come up"; exit 1; }
# shellcheck disable=SC1091
source "$data/local-credentials.env"
FOLIO_OPERATOR_EMAIL=$OPERATOR_EMAIL FOLIO_OPERATOR_PASSWORD=$OPERATOR_PASSWORD python3 tests/clients/python/journey.py 127.0.0.1:50050
