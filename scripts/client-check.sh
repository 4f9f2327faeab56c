#!/usr/bin/env bash
# Starts `make run` on a throw-away data directory, runs the customer journey
# against its gateway with two clients generated from proto/ (Python over
# gRPC; TypeScript over gRPC-Web from a page in headless Chromium), and stops
# the suite; then the same with every hop encrypted (FOLIO_TLS=1: TLS at the
# gateway, mutual TLS inside); then the Python journey on PostgreSQL and Redis
# as the README's PostgreSQL command runs it (a database that does not exist
# yet, which the launcher creates). Needs `pip install -r
# tests/clients/python/requirements.txt`, Node.js with npm, Chromium
# (CHROMIUM, default /usr/bin/chromium) and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."

# The suite on its own data directory, in plaintext or ($1 = tls) encrypted,
# or ($1 = postgres) in plaintext on PostgreSQL and Redis.
journeys() {
  local mode=$1 data log suite page_port database=()
  data=$(mktemp -d)
  if [ "$mode" = postgres ]; then
    local db_name="folio_client_check_$$"
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db_name"
    database=("FOLIO__DATABASE__URL=postgres://postgres@127.0.0.1:5432/$db_name" "FOLIO__REDIS__URL=redis://127.0.0.1:6379")
  fi
  log="$data/run.log"
  # The browser page's origin, which the gateway must allow for gRPC-Web.
  page_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  FOLIO__DATA_DIR="$data" FOLIO_PROFILE=${FOLIO_PROFILE:-dev} FOLIO_TLS=$([ "$mode" = tls ] && echo 1 || echo 0) \
    FOLIO__GATEWAY__CORS_ALLOWED_ORIGINS="http://127.0.0.1:$page_port" \
    setsid env "${database[@]}" bash scripts/run.sh >"$log" 2>&1 &
  suite=$!
  # shellcheck disable=SC2064 # stop this suite, whatever happens next
  trap "kill -INT -- -$suite 2>/dev/null || true; wait $suite 2>/dev/null || true" EXIT
  for _ in $(seq 1 600); do
    grep -q "Folio is up" "$log" && break
    if ! kill -0 "$suite" 2>/dev/null; then cat "$log"; echo "make run exited early"; exit 1; fi
    sleep 1
  done
  grep -q "Folio is up" "$log" || { tail -50 "$log"; echo "make run did not come up"; exit 1; }
  # shellcheck disable=SC1091
  source "$data/local-credentials.env"
  export FOLIO_OPERATOR_EMAIL=$OPERATOR_EMAIL FOLIO_OPERATOR_PASSWORD=$OPERATOR_PASSWORD
  local scheme=http
  unset FOLIO_TLS_CA FOLIO_TLS_SPKI
  if [ "$mode" = tls ]; then
    scheme=https
    export FOLIO_TLS_CA="$data/tls/folio-ca.pem"
    FOLIO_TLS_SPKI=$(openssl x509 -in "$data/tls/gateway.pem" -pubkey -noout \
      | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
    export FOLIO_TLS_SPKI
  fi
  echo "== Python (gRPC, $mode)"
  # On PostgreSQL every write's answer carries x-folio-read-after.
  FOLIO_EXPECT_READ_AFTER=$([ "$mode" = postgres ] && echo 1 || echo 0) \
    python3 tests/clients/python/journey.py 127.0.0.1:50050
  if [ "$mode" = postgres ]; then
    grep -q "creating the PostgreSQL database" "$log" || { echo "the launcher did not create the database"; exit 1; }
  else
    echo "== TypeScript (Connect-ES, gRPC-Web in headless Chromium, $mode)"
    (
      cd tests/clients/typescript
      npm ci --silent --no-audit --no-fund
      npm run --silent generate
      FOLIO_GATEWAY_URL=$scheme://127.0.0.1:50050 PAGE_PORT=$page_port node run.mjs
    )
  fi
  kill -INT -- "-$suite" 2>/dev/null || true
  wait "$suite" 2>/dev/null || true
  trap - EXIT
  if [ "$mode" = postgres ]; then psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db_name"; fi
}

journeys plaintext
journeys tls
journeys postgres
