#!/usr/bin/env bash
# `make run`: builds the four services and runs them in the foreground with
# prefixed logs; Ctrl-C stops all four cleanly. Every FOLIO__* variable of the
# environment is passed through (e.g. FOLIO__DATABASE__URL, FOLIO__REDIS__URL);
# without them each service uses a SQLite file under .folio/ and an in-process
# cache. The services' own client credentials are generated on first start and
# kept in the data directory, so a second run keeps the data of the first.
# FOLIO_TLS=1 encrypts every hop (DESIGN §6): a CA of this data directory's
# own and a certificate per service are made on first start (folio-dev-certs,
# under $FOLIO__DATA_DIR/tls); the gateway's port speaks TLS, the services
# mutual TLS; clients trust $FOLIO__DATA_DIR/tls/folio-ca.pem.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${FOLIO_PROFILE:-release}
echo "building ($profile)..."
cargo build --quiet --profile "$profile" --bins
bin_dir=target/$([ "$profile" = dev ] && echo debug || echo "$profile")

export FOLIO__DATA_DIR=${FOLIO__DATA_DIR:-.folio}
export FOLIO__TELEMETRY__LOG_FORMAT=${FOLIO__TELEMETRY__LOG_FORMAT:-pretty}
export FOLIO__LEDGER__BOOTSTRAP_ASSETS=${FOLIO__LEDGER__BOOTSTRAP_ASSETS:-USD:2,EUR:2}
mkdir -p "$FOLIO__DATA_DIR"
chmod 700 "$FOLIO__DATA_DIR"

# Credentials made once per data directory and reused afterwards.
secrets="$FOLIO__DATA_DIR/local-credentials.env"
if [ ! -f "$secrets" ]; then
  umask 077
  random() { head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 40; }
  {
    echo "OPERATOR_EMAIL=operator@folio.local"
    echo "OPERATOR_PASSWORD=$(random)"
    for svc in account ledger gateway; do
      echo "${svc^^}_CLIENT_ID=folio-$svc"
      echo "${svc^^}_CLIENT_SECRET=$(random)"
    done
  } >"$secrets"
fi
# shellcheck disable=SC1090
source "$secrets"
export FOLIO__AUTH__BOOTSTRAP_OPERATOR_EMAIL=${FOLIO__AUTH__BOOTSTRAP_OPERATOR_EMAIL:-$OPERATOR_EMAIL}
export FOLIO__AUTH__BOOTSTRAP_OPERATOR_PASSWORD=${FOLIO__AUTH__BOOTSTRAP_OPERATOR_PASSWORD:-$OPERATOR_PASSWORD}
# Auth provisions the other services' accounts from these (see config docs).
export FOLIO__AUTH__SERVICE_ACCOUNTS="folio-account:$ACCOUNT_CLIENT_SECRET:ledger:admin ledger:read auth:internal;folio-ledger:$LEDGER_CLIENT_SECRET:auth:internal;folio-gateway:$GATEWAY_CLIENT_SECRET:auth:internal"

# The key that seals auth's signing keys at rest (DESIGN §3): production sets
# FOLIO__AUTH__KEY_ENCRYPTION_KEY from a secret store; a local run keeps one
# in the data directory (the file auth itself makes for SQLite), so the same
# command works on PostgreSQL.
kek_file="$FOLIO__DATA_DIR/auth-key-encryption.key"
if [ -z "${FOLIO__AUTH__KEY_ENCRYPTION_KEY:-}" ]; then
  [ -f "$kek_file" ] || (umask 077 && head -c 32 /dev/urandom | base64 >"$kek_file")
  FOLIO__AUTH__KEY_ENCRYPTION_KEY=$(cat "$kek_file")
  export FOLIO__AUTH__KEY_ENCRYPTION_KEY
fi

# On PostgreSQL, a local run creates the database it is pointed at when it
# is missing (each service then makes its own schema in it); production
# databases are made by their operators (CloudNativePG's bootstrap).
db_url=${FOLIO__DATABASE__URL:-}
if [[ "$db_url" =~ ^postgres(ql)?://[^/]*/([A-Za-z0-9_]+) ]] && command -v psql >/dev/null; then
  db_name=${BASH_REMATCH[2]}
  maintenance_url=$(sed -E 's#^(postgres(ql)?://[^/]*)/[A-Za-z0-9_]+#\1/postgres#' <<<"$db_url")
  if ! psql "$db_url" -Atqc 'select 1' >/dev/null 2>&1 \
    && [ "$(psql "$maintenance_url" -Atqc "select count(*) from pg_database where datname = '$db_name'" 2>/dev/null)" = 0 ]; then
    echo "creating the PostgreSQL database $db_name"
    psql "$maintenance_url" -qc "CREATE DATABASE \"$db_name\""
  fi
fi

tls_dir="$FOLIO__DATA_DIR/tls"
if [ "${FOLIO_TLS:-0}" = 1 ]; then
  "$bin_dir/folio-dev-certs" "$tls_dir" >/dev/null
fi
# The TLS settings of service $1 (none unless FOLIO_TLS=1): its certificate
# on its port and for its calls; the internal ports also want the callers'.
tls_env() {
  [ "${FOLIO_TLS:-0}" = 1 ] || return 0
  local svc=$1
  printf '%s\n' "FOLIO__SERVER__TLS_CERT_FILE=$tls_dir/$svc.pem" "FOLIO__SERVER__TLS_KEY_FILE=$tls_dir/$svc.key" \
    "FOLIO__CLIENT__TLS_CA_FILE=$tls_dir/folio-ca.pem" \
    "FOLIO__CLIENT__TLS_CERT_FILE=$tls_dir/$svc.pem" "FOLIO__CLIENT__TLS_KEY_FILE=$tls_dir/$svc.key"
  [ "$svc" = gateway ] || echo "FOLIO__SERVER__TLS_CLIENT_CA_FILE=$tls_dir/folio-ca.pem"
}

# Each service's output goes to the terminal with its name and to
# $FOLIO__DATA_DIR/logs/<service>.log, whose last lines are shown when the
# service exits on its own.
log_dir="$FOLIO__DATA_DIR/logs"
mkdir -p "$log_dir"
pids=()
declare -A service_of=()
stop() {
  trap - INT TERM
  echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  sleep 0.2 # let the log prefixers flush the last lines
  echo "stopped."
  exit "${1:-0}"
}
trap stop INT TERM

# A service exited without being asked to: name it, show why, stop the rest
# and exit non-zero (a suite with one service missing is not "up").
failed() {
  local svc=$1 status=$2
  sleep 0.2
  echo >&2
  echo "make run: folio-$svc exited (status $status); its last lines ($log_dir/$svc.log):" >&2
  tail -n 20 "$log_dir/$svc.log" | sed "s/^/  /" >&2
  stop 1
}

start() {
  local svc=$1 id=${2:-} secret=${3:-}
  local tls=()
  mapfile -t tls < <(tls_env "$svc")
  env "${tls[@]}" FOLIO__SERVICE_CLIENT__ID="$id" FOLIO__SERVICE_CLIENT__SECRET="$secret" \
    "$bin_dir/folio-$svc" > >(tee "$log_dir/$svc.log" | sed -u "s/^/[$svc] /") 2>&1 &
  pids+=($!)
  service_of[$!]=$svc
}
# Fails the run if a started service is gone.
all_running() {
  local pid status
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      status=0
      wait "$pid" || status=$?
      failed "${service_of[$pid]}" "$status"
    fi
  done
}
healthy() { (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3 && grep -q '200 OK' <&3) 2>/dev/null; }

# Auth first: the others verify tokens with its keys and revocations.
start auth
for _ in $(seq 1 100); do healthy 9051 && break; all_running; sleep 0.2; done
start ledger folio-ledger "$LEDGER_CLIENT_SECRET"
start account folio-account "$ACCOUNT_CLIENT_SECRET"
start gateway folio-gateway "$GATEWAY_CLIENT_SECRET"

up=0
for _ in $(seq 1 300); do
  all_running
  if healthy 9051 && healthy 9052 && healthy 9053 && healthy 9050; then
    up=1
    echo
    if [ "${FOLIO_TLS:-0}" = 1 ]; then
      echo "Folio is up, every hop encrypted. Gateway: 127.0.0.1:50050 (TLS; CA $tls_dir/folio-ca.pem)"
    else
      echo "Folio is up. Gateway: 127.0.0.1:50050"
    fi
    echo "Operator: $FOLIO__AUTH__BOOTSTRAP_OPERATOR_EMAIL (password in $secrets)"
    echo "Ctrl-C stops all four services."
    break
  fi
  sleep 0.2
done
if [ "$up" = 0 ]; then
  for port in 9051 9052 9053 9050; do healthy "$port" || echo "make run: nothing healthy on admin port $port after 60 s" >&2; done
  stop 1
fi
# Until Ctrl-C (the trap) or until one service exits on its own.
status=0 exited=none
wait -n -p exited "${pids[@]}" || status=$?
failed "${service_of[$exited]:-a service}" "$status"
