#!/usr/bin/env bash
# The OAuth endpoints over HTTP, side by side in one run: a bare axum
# endpoint answering the same JSON (extapps-bare: the ceiling), extapps on
# its embedded default (SQLite), extapps on PostgreSQL, and node-oidc-provider
# (in memory, plaintext secrets: peer/), each loaded by oha over HTTP/1.1
# keep-alive. Client-credentials issuance, then introspection of one live
# token, at 16 and 64 connections; RUNS runs of DURATION each, the median.
# Prints a Markdown table for BENCHMARKS.md, with the CPU each row's server,
# its load generator (oha) and everything else (PostgreSQL, the rest of the
# machine) used over the row's runs, in cores.
#
#   crates/extapps-load/http-bench.sh [DURATION] [RUNS]      (10s, 3)
#
# Needs oha (`cargo install oha --locked`), node and npm, and the machine's
# PostgreSQL as tests/run.sh sets it up (or EXTAPPS_BENCH_POSTGRES_URL naming
# an empty database). Every server runs as its first command runs it: extapps
# with a Tokio worker per core, node-oidc-provider as one process.
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-10s}
runs=${2:-3}
oha=$(command -v oha || echo "$HOME/.cargo/bin/oha")
if [ ! -x "$oha" ]; then
  echo "error: oha not found; cargo install oha --locked" >&2
  exit 1
fi
cargo build --release -q -p extapps-server -p extapps-client -p extapps-load
server=target/release/extapps-server
cli=target/release/extapps
bare=target/release/extapps-bare
(cd crates/extapps-load/peer && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
work=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
form=application/x-www-form-urlencoded

wait_for_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.1
  done
  echo "error: nothing listens on port $1" >&2
  exit 1
}

# rate CONNECTIONS URL OHA-ARGS...: the median requests/s of the runs; every
# answer must be a 200.
rate() {
  local connections=$1 url=$2
  shift 2
  for _ in $(seq 1 "$runs"); do
    "$oha" -z "$duration" -c "$connections" --no-tui --output-format json "$@" "$url" |
      python3 -c '
import json, sys
report = json.load(sys.stdin)
codes = report["statusCodeDistribution"]
if set(codes) != {"200"}:
    sys.exit(f"error: not every answer was a 200: {codes}")
print(report["summary"]["requestsPerSec"])' || exit 1
  done | sort -n | awk '{ r[NR] = $1 } END { printf "%.0f", r[int((NR + 1) / 2)] }'
}

json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

# CPU clock ticks so far: a process's own, this shell's waited-for children
# (oha), and the whole machine's busy time.
own_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
children_ticks() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
hz=$(getconf CLK_TCK)

# measure LABEL BASE_URL TOKEN_PATH INTROSPECT_PATH CLIENT:SECRET SCOPE
#   INTROSPECT_AUTH...: one row. The token to introspect is taken after the
# issuance runs (node-oidc-provider's memory keeps only recent tokens).
measure() {
  local label=$1 base=$2 token_path=$3 introspect_path=$4 client=$5 scope=$6
  shift 6
  local body="grant_type=client_credentials$scope" cells=() token
  local started server0 children0 machine0
  started=$(date +%s.%N)
  server0=$(own_ticks "$pid")
  children0=$(children_ticks)
  machine0=$(machine_ticks)
  for c in 16 64; do
    cells+=("$(rate "$c" "$base$token_path" -m POST -a "$client" -T "$form" -d "$body")")
  done
  token=$(curl -sf -u "$client" -d "$body" "$base$token_path" | json_field '["access_token"]')
  for c in 16 64; do
    cells+=("$(rate "$c" "$base$introspect_path" -m POST "$@" -T "$form" -d "token=$token")")
  done
  local cpu
  cpu=$(python3 -c '
import sys
hz, t0, t1, s, g, m = map(float, sys.argv[1:])
seconds = (t1 - t0) * hz
print(f"{s / seconds:.2f} / {g / seconds:.2f} / {max(m - s - g, 0) / seconds:.2f}")' \
    "$hz" "$started" "$(date +%s.%N)" "$(($(own_ticks "$pid") - server0))" \
    "$(($(children_ticks) - children0))" "$(($(machine_ticks) - machine0))")
  echo "| $label | ${cells[0]} | ${cells[1]} | ${cells[2]} | ${cells[3]} | $cpu |"
}

# extapps on DATABASE_URL: keys, a confidential application, then the row.
extapps() {
  local label=$1 port=$2 admin introspect registered id secret
  admin=$("$server" --log warn keys create --organization acme --role admin)
  introspect=$("$server" --log warn keys create --organization acme --role introspect)
  "$server" --log warn serve --listen "127.0.0.1:$port" &
  pid=$!
  wait_for_port "$port"
  registered=$("$cli" --url "http://127.0.0.1:$port" --key "$admin" -o json apps register \
    --organization acme --name "http bench" --type confidential \
    --app-scope OR:OR.Jobs.Read --app-scope OR:OR.Queues)
  id=$(json_field '["application"]["client_id"]' <<<"$registered")
  secret=$(json_field '["client_secret"]' <<<"$registered")
  measure "$label" "http://127.0.0.1:$port" /oauth2/token /oauth2/introspect "$id:$secret" "" \
    -H "authorization: Bearer $introspect"
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
}

echo "| server | token c=16 | token c=64 | introspect c=16 | introspect c=64 | CPU: server / oha / else |"
echo "| --- | ---: | ---: | ---: | ---: | --- |"

"$bare" 127.0.0.1:50190 &
pid=$!
wait_for_port 50190
measure "bare axum 0.8 endpoint, the same JSON" http://127.0.0.1:50190 /oauth2/token \
  /oauth2/introspect "any:thing" ""
kill -TERM "$pid"
wait "$pid" || true
pid=

if [ -z "${EXTAPPS_BENCH_POSTGRES_URL:-}" ]; then
  runuser -u postgres -- psql -q -c "DROP DATABASE IF EXISTS extapps_bench" \
    -c "CREATE DATABASE extapps_bench OWNER extapps"
  EXTAPPS_BENCH_POSTGRES_URL="postgres://extapps:extapps@127.0.0.1:5432/extapps_bench?sslmode=disable"
fi
"$server" --log warn key-ring create --key-file "$work/keys.toml"
EXTAPPS_DATABASE_URL=$EXTAPPS_BENCH_POSTGRES_URL EXTAPPS_KEY_FILE="$work/keys.toml" \
  extapps "extapps, PostgreSQL" 50191

EXTAPPS_DATABASE_URL="sqlite://$work/bench.db?mode=rwc" extapps "extapps, SQLite (default)" 50192

peer_secret=bench:bench-secret-0123456789abcdef0123456789abcdef
PORT=50193 node crates/extapps-load/peer/provider.mjs >/dev/null 2>&1 &
pid=$!
wait_for_port 50193
measure "node-oidc-provider 9.13 (in memory, plaintext secrets)" http://127.0.0.1:50193 \
  /token /token/introspection "$peer_secret" "&scope=OR.Jobs.Read%20OR.Queues" -a "$peer_secret"
