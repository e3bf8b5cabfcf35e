#!/usr/bin/env bash
# Reproduces the attack figures of BENCHMARKS.md: a release server on a fresh
# SQLite file with its default limits (the idle-connection run shortens the
# header deadline to show it; one flood also runs on PostgreSQL with the
# caches off), attacked by extapps-attack from the same machine.
#
#   crates/extapps-load/attack.sh [extapps-attack flood options]
#
# EXTAPPS_ATTACK_ROWS picks the runs (default: all of them, in this order):
# lockout cold flood many many-postgres-no-caches authorizations connections.
# EXTAPPS_ATTACK_SERVER names another server binary, e.g. a release build
# of an earlier commit, for a figure from before a change (runs that need a
# flag it lacks then fail).
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --release -q -p extapps-server -p extapps-load
server=${EXTAPPS_ATTACK_SERVER:-target/release/extapps-server}
attack=target/release/extapps-attack
rows=${EXTAPPS_ATTACK_ROWS:-lockout cold flood many many-postgres-no-caches authorizations connections}
work=$(mktemp -d)
port=50161
export EXTAPPS_DATABASE_URL="sqlite://$work/attack.db?mode=rwc"
export TOKIO_WORKER_THREADS=${TOKIO_WORKER_THREADS:-1}
ulimit -n 65536 2>/dev/null || true

start() {
  "$server" --log warn serve --listen "127.0.0.1:$port" "$@" &
  pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
}

stop() {
  kill -TERM "$pid"
  wait "$pid" || true
}

admin=$("$server" --log warn keys create --organization acme --role admin)

for row in $rows; do
  case $row in
  lockout)
    echo "## Lockout attempt: a stranger's wrong secrets for the owner's client ID"
    start
    "$attack" --url "http://127.0.0.1:$port" --server-pid "$pid" lockout --admin-key "$admin"
    stop
    ;;
  cold)
    echo "## Cold token requests: each for another client, nothing remembered"
    # Budgets out of the way, so the figure is the work itself (an earlier
    # server charged every verification to the client and the source).
    start --verify-budget-per-client 1000000 --verify-budget-per-source 1000000 \
      --failures-per-source 1000000
    "$attack" --url "http://127.0.0.1:$port" --server-pid "$pid" cold --admin-key "$admin" \
      --clients "${EXTAPPS_ATTACK_COLD_CLIENTS:-10000}"
    stop
    ;;
  flood)
    echo "## Flood from one address"
    start
    "$attack" --url "http://127.0.0.1:$port" --server-pid "$pid" flood --admin-key "$admin" "$@"
    stop
    ;;
  many)
    echo "## Flood from many addresses (behind one trusted proxy)"
    start --trusted-proxies 1
    "$attack" --url "http://127.0.0.1:$port" --server-pid "$pid" flood --admin-key "$admin" \
      --many-sources "$@"
    stop
    ;;
  many-postgres-no-caches)
    echo "## Flood from many addresses, on PostgreSQL, every request read from the database"
    if [ -z "${EXTAPPS_BENCH_POSTGRES_URL:-}" ]; then
      runuser -u postgres -- psql -q -c "DROP DATABASE IF EXISTS extapps_attack" \
        -c "CREATE DATABASE extapps_attack OWNER extapps"
      EXTAPPS_BENCH_POSTGRES_URL="postgres://extapps:extapps@127.0.0.1:5432/extapps_attack?sslmode=disable"
    fi
    "$server" --log warn key-ring create --key-file "$work/keys.toml"
    (
      export EXTAPPS_DATABASE_URL=$EXTAPPS_BENCH_POSTGRES_URL EXTAPPS_KEY_FILE=$work/keys.toml
      pg_admin=$("$server" --log warn keys create --organization acme --role admin)
      start --trusted-proxies 1 --no-caches
      "$attack" --url "http://127.0.0.1:$port" --server-pid "$pid" flood \
        --admin-key "$pg_admin" --many-sources "$@"
      stop
    )
    ;;
  authorizations)
    echo "## Authorization requests (unauthenticated), and what they stored"
    start --signin-url http://127.0.0.1:1/signin
    "$attack" --url "http://127.0.0.1:$port" --server-pid "$pid" authorizations --admin-key "$admin"
    stop
    python3 - "$work/attack.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for table in ("user_grants", "answered_authorization_requests"):
    print(f"rows in {table}: {db.execute(f'SELECT COUNT(*) FROM {table}').fetchone()[0]}")
PY
    ;;
  connections)
    echo "## Idle connections"
    start --header-read-timeout 10s --max-connections 20000
    "$attack" --url "http://127.0.0.1:$port" --server-pid "$pid" connections
    stop
    ;;
  *)
    echo "unknown run: $row" >&2
    exit 2
    ;;
  esac
  echo
done
rm -rf "$work"
