#!/usr/bin/env bash
# Reproduces the attack figures of BENCHMARKS.md: a release server on a fresh
# SQLite file with its default limits (the idle-connection run shortens the
# header deadline to show it), attacked by extapps-attack from the same
# machine.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --release -q -p extapps-server -p extapps-load
server=target/release/extapps-server
attack=target/release/extapps-attack
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

admin=$("$server" --log warn keys create --organization acme --role admin)

echo "## Flood from one address"
start
"$attack" --url "http://127.0.0.1:$port" --server-pid "$pid" flood --admin-key "$admin" "$@"
kill -TERM "$pid"; wait "$pid" || true

echo
echo "## Flood from many addresses (behind one trusted proxy)"
start --trusted-proxies 1
"$attack" --url "http://127.0.0.1:$port" --server-pid "$pid" flood --admin-key "$admin" --many-sources "$@"
kill -TERM "$pid"; wait "$pid" || true

echo
echo "## Authorization requests (unauthenticated), and what they stored"
start --signin-url http://127.0.0.1:1/signin
"$attack" --url "http://127.0.0.1:$port" --server-pid "$pid" authorizations --admin-key "$admin"
kill -TERM "$pid"; wait "$pid" || true
python3 - "$work/attack.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for table in ("user_grants", "answered_authorization_requests"):
    print(f"rows in {table}: {db.execute(f'SELECT COUNT(*) FROM {table}').fetchone()[0]}")
PY

echo
echo "## Idle connections"
start --header-read-timeout 10s --max-connections 20000
"$attack" --url "http://127.0.0.1:$port" --server-pid "$pid" connections
kill -TERM "$pid"; wait "$pid" || true
rm -rf "$work"
