#!/usr/bin/env bash
# Reproduces the figures of BENCHMARKS.md: release builds of the server and
# of extapps-load, the server on SQLite and then on PostgreSQL, each scenario
# at each concurrency, with the health check as the ceiling in the same run.
#
#   crates/extapps-load/bench.sh [extapps-load options, e.g. --duration 10s]
#
# PostgreSQL: EXTAPPS_BENCH_POSTGRES_URL names an empty database; without it
# the machine's cluster is used (as tests/run.sh sets it up) with a fresh
# database `extapps_bench`. Server and generator get one Tokio worker each
# (TOKIO_WORKER_THREADS=1), which keeps them from fighting over two cores.
# After each database's table, the CPU its server, the load generator and
# everything else (PostgreSQL, the rest of the machine) used over the run, in
# cores, goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p extapps-server -p extapps-load
server=target/release/extapps-server
load=target/release/extapps-load
work=$(mktemp -d)
port=50151
export TOKIO_WORKER_THREADS=${TOKIO_WORKER_THREADS:-1}

# shellcheck source=crates/extapps-load/bench-lib.sh
. crates/extapps-load/bench-lib.sh

run_on() {
  local label=$1
  export EXTAPPS_DATABASE_URL=$2
  shift 2
  local admin introspect pid
  admin=$("$server" --log warn keys create --organization acme --role admin)
  introspect=$("$server" --log warn keys create --organization acme --role introspect)
  "$server" --log warn serve --listen "127.0.0.1:$port" &
  pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  # This shell, which waits for the load generator (a subshell when piped).
  local shell=$BASHPID started server0 children0 machine0
  started=$(date +%s.%N)
  server0=$(own_ticks "$pid")
  children0=$(children_ticks "$shell")
  machine0=$(machine_ticks)
  "$load" --url "http://127.0.0.1:$port" --admin-key "$admin" --introspect-key "$introspect" \
    --label "$label" "$@"
  python3 -c '
import sys
label, hz, t0, t1, s, g, m = sys.argv[1], *map(float, sys.argv[2:])
seconds = (t1 - t0) * hz
print(f"CPU over the {label} run, in cores: server {s / seconds:.2f}, load generator "
      f"{g / seconds:.2f}, everything else {max(m - s - g, 0) / seconds:.2f}", file=sys.stderr)' \
    "$label" "$hz" "$started" "$(date +%s.%N)" "$(($(own_ticks "$pid") - server0))" \
    "$(($(children_ticks "$shell") - children0))" "$(($(machine_ticks) - machine0))"
  kill -TERM "$pid"
  wait "$pid" || true
}

run_on SQLite "sqlite://$work/bench.db?mode=rwc" "$@"

if [ -z "${EXTAPPS_BENCH_POSTGRES_URL:-}" ]; then
  runuser -u postgres -- psql -q -c "DROP DATABASE IF EXISTS extapps_bench" \
    -c "CREATE DATABASE extapps_bench OWNER extapps"
  EXTAPPS_BENCH_POSTGRES_URL="postgres://extapps:extapps@127.0.0.1:5432/extapps_bench?sslmode=disable"
fi
# PostgreSQL replicas need a key ring from outside the database.
"$server" --log warn key-ring create --key-file "$work/keys.toml"
EXTAPPS_KEY_FILE="$work/keys.toml" run_on PostgreSQL "$EXTAPPS_BENCH_POSTGRES_URL" "$@" | tail -n +3
rm -rf "$work"
