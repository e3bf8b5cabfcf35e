#!/usr/bin/env bash
# The OAuth endpoints over HTTP, side by side in one run: a bare axum
# endpoint answering the same JSON (extapps-bare: the ceiling), extapps on
# its embedded default (SQLite), extapps on PostgreSQL, and node-oidc-provider
# (in memory, plaintext secrets: peer/), each loaded by oha over HTTP/1.1
# keep-alive. Client-credentials issuance, then introspection of one live
# token, at 16 and 64 connections; RUNS runs of DURATION each per cell, the
# median.
#
# The servers run side by side and the runs are interleaved: for each cell,
# run 1 loads every server in turn (after a 1 s warm-up each), then run 2
# (the order rotated), and so on. A virtual machine's speed drifts by 10 %
# or more over minutes; measured one server after the other, that drift
# lands between the rows and the ratio of two rows lies. Interleaved, every
# server sees the same drift.
#
# Prints a Markdown table for BENCHMARKS.md, with the CPU each row's server,
# its load generator (oha) and everything else (PostgreSQL, the idle servers,
# the rest of the machine) used during that row's measured runs, in cores.
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
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
form=application/x-www-form-urlencoded

# shellcheck source=crates/extapps-load/bench-lib.sh
. crates/extapps-load/bench-lib.sh

# The rows, in table order, and for each: its server's PID, its base URL,
# its token and introspection paths, the token request's oha arguments and
# the introspection's authentication (filled in below).
rows=(bare postgres sqlite node)
declare -A label pid base token_path introspect_path client scope introspect_auth token
label[bare]="bare axum 0.8 endpoint, the same JSON"
label[postgres]="extapps, PostgreSQL"
label[sqlite]="extapps, SQLite (default)"
label[node]="node-oidc-provider 9.13 (in memory, plaintext secrets)"

# extapps NAME PORT: keys, a server, a confidential application.
extapps() {
  local name=$1 port=$2 admin introspect registered id secret
  admin=$("$server" --log warn keys create --organization acme --role admin)
  introspect=$("$server" --log warn keys create --organization acme --role introspect)
  "$server" --log warn serve --listen "127.0.0.1:$port" &
  pid[$name]=$!
  pids+=($!)
  wait_for_port "$port"
  registered=$("$cli" --url "http://127.0.0.1:$port" --key "$admin" -o json apps register \
    --organization acme --name "http bench" --type confidential \
    --app-scope OR:OR.Jobs.Read --app-scope OR:OR.Queues)
  id=$(json_field '["application"]["client_id"]' <<<"$registered")
  secret=$(json_field '["client_secret"]' <<<"$registered")
  base[$name]="http://127.0.0.1:$port"
  token_path[$name]=/oauth2/token
  introspect_path[$name]=/oauth2/introspect
  client[$name]="$id:$secret"
  scope[$name]=""
  introspect_auth[$name]="authorization: Bearer $introspect"
}

"$bare" 127.0.0.1:50190 &
pid[bare]=$!
pids+=($!)
wait_for_port 50190
base[bare]=http://127.0.0.1:50190
token_path[bare]=/oauth2/token
introspect_path[bare]=/oauth2/introspect
client[bare]="any:thing"
scope[bare]=""
introspect_auth[bare]=""

if [ -z "${EXTAPPS_BENCH_POSTGRES_URL:-}" ]; then
  runuser -u postgres -- psql -q -c "DROP DATABASE IF EXISTS extapps_bench" \
    -c "CREATE DATABASE extapps_bench OWNER extapps"
  EXTAPPS_BENCH_POSTGRES_URL="postgres://extapps:extapps@127.0.0.1:5432/extapps_bench?sslmode=disable"
fi
"$server" --log warn key-ring create --key-file "$work/keys.toml" >/dev/null
EXTAPPS_DATABASE_URL=$EXTAPPS_BENCH_POSTGRES_URL EXTAPPS_KEY_FILE="$work/keys.toml" \
  extapps postgres 50191
EXTAPPS_DATABASE_URL="sqlite://$work/bench.db?mode=rwc" EXTAPPS_KEY_FILE="$work/keys.toml" \
  extapps sqlite 50192

PORT=50193 node crates/extapps-load/peer/provider.mjs >/dev/null 2>&1 &
pid[node]=$!
pids+=($!)
wait_for_port 50193
base[node]=http://127.0.0.1:50193
token_path[node]=/token
introspect_path[node]=/token/introspection
client[node]=bench:bench-secret-0123456789abcdef0123456789abcdef
scope[node]="&scope=OR.Jobs.Read%20OR.Queues"
introspect_auth[node]=""

# CPU ticks each row's measured runs used: its server, oha, the machine.
declare -A server_ticks oha_ticks machine_busy seconds
for row in "${rows[@]}"; do
  server_ticks[$row]=0 oha_ticks[$row]=0 machine_busy[$row]=0 seconds[$row]=0
done

# set_args ROW KIND: the oha arguments of a cell (token or introspect).
set_args() {
  local row=$1 kind=$2
  if [ "$kind" = token ]; then
    args=(-m POST -a "${client[$row]}" -T "$form"
      -d "grant_type=client_credentials${scope[$row]}" "${base[$row]}${token_path[$row]}")
    return
  fi
  args=(-m POST -T "$form" -d "token=${token[$row]}")
  if [ "$row" = node ]; then
    args+=(-a "${client[$row]}")
  elif [ -n "${introspect_auth[$row]}" ]; then
    args+=(-H "${introspect_auth[$row]}")
  fi
  args+=("${base[$row]}${introspect_path[$row]}")
}

# one_run ROW KIND CONNECTIONS: a warm-up second, then one measured run;
# sets `rate` to its requests/s and adds its CPU to the row's. Every answer
# must be a 200. (Not run in a subshell: it adds to the row's counters.)
one_run() {
  local row=$1 kind=$2 connections=$3 t0 s0 c0 m0
  set_args "$row" "$kind"
  "$oha" -z 1s -c "$connections" --no-tui --output-format json "${args[@]}" >/dev/null
  t0=$(date +%s.%N) s0=$(own_ticks "${pid[$row]}") c0=$(children_ticks $$) m0=$(machine_ticks)
  rate=$("$oha" -z "$duration" -c "$connections" --no-tui --output-format json "${args[@]}" |
    python3 -c '
import json, sys
report = json.load(sys.stdin)
codes = report["statusCodeDistribution"]
if set(codes) != {"200"}:
    sys.exit(f"error: not every answer was a 200: {codes}")
print(round(report["summary"]["requestsPerSec"]))') || exit 1
  server_ticks[$row]=$((server_ticks[$row] + $(own_ticks "${pid[$row]}") - s0))
  oha_ticks[$row]=$((oha_ticks[$row] + $(children_ticks $$) - c0))
  machine_busy[$row]=$((machine_busy[$row] + $(machine_ticks) - m0))
  seconds[$row]=$(python3 -c "print(${seconds[$row]} + $(date +%s.%N) - $t0)")
}


declare -A cell
for kind in token introspect; do
  if [ "$kind" = introspect ]; then
    # Taken after the issuance runs: node-oidc-provider's memory keeps only
    # recent tokens.
    for row in "${rows[@]}"; do
      token[$row]=$(curl -sf -u "${client[$row]}" \
        -d "grant_type=client_credentials${scope[$row]}" "${base[$row]}${token_path[$row]}" |
        json_field '["access_token"]')
    done
  fi
  for connections in 16 64; do
    declare -A rates=()
    for run in $(seq 1 "$runs"); do
      # Rotate who goes first, so no row always follows the same one.
      for i in $(seq 0 $((${#rows[@]} - 1))); do
        row=${rows[$(((i + run - 1) % ${#rows[@]}))]}
        one_run "$row" "$kind" "$connections"
        rates[$row]="${rates[$row]:-} $rate"
      done
    done
    for row in "${rows[@]}"; do
      cell[$row,$kind,$connections]=$(tr ' ' '\n' <<<"${rates[$row]}" | grep . | median)
    done
    unset rates
  done
done

cores() { python3 -c "print(f'{$1 / ($hz * $2):.2f}')"; }
echo "| server | token c=16 | token c=64 | introspect c=16 | introspect c=64 | CPU: server / oha / else |"
echo "| --- | ---: | ---: | ---: | ---: | --- |"
for row in "${rows[@]}"; do
  s=${seconds[$row]}
  else_ticks=$((machine_busy[$row] - server_ticks[$row] - oha_ticks[$row]))
  [ "$else_ticks" -lt 0 ] && else_ticks=0
  echo "| ${label[$row]} | ${cell[$row,token,16]} | ${cell[$row,token,64]} |" \
    "${cell[$row,introspect,16]} | ${cell[$row,introspect,64]} |" \
    "$(cores "${server_ticks[$row]}" "$s") / $(cores "${oha_ticks[$row]}" "$s") / $(cores "$else_ticks" "$s") |"
done
