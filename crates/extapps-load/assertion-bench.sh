#!/usr/bin/env bash
# Client credentials with private_key_jwt (ES256, EdDSA) beside
# client_secret_basic, on extapps' embedded default (SQLite), on extapps with
# PostgreSQL, and on node-oidc-provider (in memory; peer/), at 16 and 64
# connections. Every request carries a fresh assertion (an assertion is
# accepted once), so the load generator is extapps-assertions, not oha: it
# signs each one itself, and sends the secret requests through the same code.
#
# Runs are interleaved as in http-bench.sh: for each cell, run 1 loads every
# row in turn, then run 2, and so on; the median of RUNS runs of DURATION.
# Prints a Markdown table with the CPU each row's server, the load generator
# and everything else (PostgreSQL, the rest of the machine) used during its
# measured runs, in cores; and, for extapps' assertion rows, what writing
# the assertions' jti cost (read from the server's /metrics): the write's
# time per assertion and the assertions per batch.
#
# Needs node and npm, and the machine's PostgreSQL as tests/run.sh sets it up
# (or EXTAPPS_BENCH_POSTGRES_URL naming an empty database).
#
#   crates/extapps-load/assertion-bench.sh [DURATION] [RUNS]      (10s, 3)
set -euo pipefail
# EPOCHREALTIME and python's arithmetic agree on the decimal point.
export LC_ALL=C
cd "$(dirname "$0")/../.."
duration=${1:-10s}
runs=${2:-3}
cargo build --release -q -p extapps-server -p extapps-client -p extapps-load
server=target/release/extapps-server
cli=target/release/extapps
load=target/release/extapps-assertions
(cd crates/extapps-load/peer && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT

# shellcheck source=crates/extapps-load/bench-lib.sh
. crates/extapps-load/bench-lib.sh
# The jti writes so far, from a server's metrics: "seconds rows batches".
jti_writes() {
  local text
  text=$(curl -sSf "http://127.0.0.1:$1/metrics") || {
    echo "error: cannot read the metrics of the server on port $1" >&2
    return 1
  }
  awk '
    /^extapps_used_assertion_write_duration_seconds_sum\{outcome="ok"\} / { s = $2 }
    /^extapps_used_assertion_write_duration_seconds_count\{outcome="ok"\} / { b = $2 }
    /^extapps_used_assertion_rows_total / { r = $2 }
    END { printf "%.9f %d %d\n", s, r, b }' <<<"$text"
}

# Keys: one pair per algorithm, shared by both servers' clients.
"$load" keygen --alg es256 --out "$work/es256.pk8" --kid es256 > "$work/es256.jwk"
"$load" keygen --alg eddsa --out "$work/eddsa.pk8" --kid eddsa > "$work/eddsa.jwk"

# extapps on SQLite and on PostgreSQL, each with an application holding a
# secret and both keys.
"$server" --log warn key-ring create --key-file "$work/keys.toml" >/dev/null
declare -A extapps_pid extapps_id extapps_secret
extapps() {
  local name=$1 port=$2 admin registered app
  admin=$("$server" --log warn keys create --organization acme --role admin)
  "$server" --log warn serve --listen "127.0.0.1:$port" &
  extapps_pid[$name]=$!
  pids+=($!)
  wait_for_port "$port"
  registered=$("$cli" --url "http://127.0.0.1:$port" --key "$admin" -o json apps register \
    --organization acme --name "assertion bench" --type confidential \
    --app-scope OR:OR.Jobs.Read --app-scope OR:OR.Queues)
  app=$(json_field '["application"]["name"]' <<<"$registered")
  extapps_id[$name]=$(json_field '["application"]["client_id"]' <<<"$registered")
  extapps_secret[$name]=$(json_field '["client_secret"]' <<<"$registered")
  for alg in es256 eddsa; do
    "$cli" --url "http://127.0.0.1:$port" --key "$admin" apps keys add "$app" \
      --jwk-file "$work/$alg.jwk" >/dev/null
  done
}
if [ -z "${EXTAPPS_BENCH_POSTGRES_URL:-}" ]; then
  runuser -u postgres -- psql -q -c "DROP DATABASE IF EXISTS extapps_bench" \
    -c "CREATE DATABASE extapps_bench OWNER extapps"
  EXTAPPS_BENCH_POSTGRES_URL="postgres://extapps:extapps@127.0.0.1:5432/extapps_bench?sslmode=disable"
fi
EXTAPPS_DATABASE_URL="sqlite://$work/bench.db?mode=rwc" EXTAPPS_KEY_FILE="$work/keys.toml" \
  extapps sqlite 50192
EXTAPPS_DATABASE_URL=$EXTAPPS_BENCH_POSTGRES_URL EXTAPPS_KEY_FILE="$work/keys.toml" \
  extapps postgres 50191

# node-oidc-provider, with the same public keys on its private_key_jwt client.
jwks=$(python3 -c "import json, sys; print(json.dumps({'keys': [json.load(open(f)) for f in sys.argv[1:]]}))" \
  "$work/es256.jwk" "$work/eddsa.jwk")
PORT=50193 PEER_CLIENT_JWKS=$jwks node crates/extapps-load/peer/provider.mjs >/dev/null 2>&1 &
node_pid=$!
pids+=($!)
wait_for_port 50193

rows=(extapps-secret extapps-es256 extapps-eddsa postgres-es256 postgres-eddsa
  node-secret node-es256 node-eddsa)
declare -A label args server_pid port server_ticks machine_busy load_cpu seconds elapsed
declare -A jti_seconds jti_rows jti_batches
label[extapps-secret]="extapps, SQLite: client_secret_basic"
label[extapps-es256]="extapps, SQLite: private_key_jwt ES256"
label[extapps-eddsa]="extapps, SQLite: private_key_jwt EdDSA"
label[postgres-es256]="extapps, PostgreSQL: private_key_jwt ES256"
label[postgres-eddsa]="extapps, PostgreSQL: private_key_jwt EdDSA"
label[node-secret]="node-oidc-provider 9.13: client_secret_basic"
label[node-es256]="node-oidc-provider 9.13: private_key_jwt ES256"
label[node-eddsa]="node-oidc-provider 9.13: private_key_jwt EdDSA"
sqlite_url=http://127.0.0.1:50192/oauth2/token
postgres_url=http://127.0.0.1:50191/oauth2/token
node_url=http://127.0.0.1:50193/token
node_scope="scope=OR.Jobs.Read%20OR.Queues"
args[extapps-secret]="--url $sqlite_url --client-id ${extapps_id[sqlite]} --secret ${extapps_secret[sqlite]}"
for alg in es256 eddsa; do
  args[extapps-$alg]="--url $sqlite_url --client-id ${extapps_id[sqlite]} --alg $alg --kid $alg --key $work/$alg.pk8"
  args[postgres-$alg]="--url $postgres_url --client-id ${extapps_id[postgres]} --alg $alg --kid $alg --key $work/$alg.pk8"
done
args[node-secret]="--url $node_url --client-id bench --secret bench-secret-0123456789abcdef0123456789abcdef --extra $node_scope"
args[node-es256]="--url $node_url --client-id bench-jwt --alg es256 --kid es256 --key $work/es256.pk8 --extra $node_scope"
args[node-eddsa]="--url $node_url --client-id bench-jwt --alg eddsa --kid eddsa --key $work/eddsa.pk8 --extra $node_scope"
for row in "${rows[@]}"; do
  case $row in
    extapps-*) server_pid[$row]=${extapps_pid[sqlite]} port[$row]=50192 ;;
    postgres-*) server_pid[$row]=${extapps_pid[postgres]} port[$row]=50191 ;;
    *) server_pid[$row]=$node_pid port[$row]= ;;
  esac
  server_ticks[$row]=0 machine_busy[$row]=0 load_cpu[$row]=0 seconds[$row]=0 elapsed[$row]=0
  jti_seconds[$row]=0 jti_rows[$row]=0 jti_batches[$row]=0
done

declare -A results
for connections in 16 64; do
  for run in $(seq 1 "$runs"); do
    # The order rotates from run to run.
    order=("${rows[@]:$((run % ${#rows[@]}))}" "${rows[@]:0:$((run % ${#rows[@]}))}")
    for row in "${order[@]}"; do
      before=$(own_ticks "${server_pid[$row]}") machine_before=$(machine_ticks) t0=$EPOCHREALTIME
      if [ -n "${port[$row]}" ]; then
        writes=$(jti_writes "${port[$row]}")
        read -r s0 r0 b0 <<<"$writes"
      fi
      # shellcheck disable=SC2086
      line=$("$load" load ${args[$row]} --connections "$connections" --duration "$duration")
      after=$(own_ticks "${server_pid[$row]}") machine_after=$(machine_ticks) t1=$EPOCHREALTIME
      if [ -n "${port[$row]}" ]; then
        writes=$(jti_writes "${port[$row]}")
        read -r s1 r1 b1 <<<"$writes"
        jti_seconds[$row]=$(python3 -c "print(${jti_seconds[$row]} + $s1 - $s0)")
        jti_rows[$row]=$(python3 -c "print(${jti_rows[$row]} + $r1 - $r0)")
        jti_batches[$row]=$(python3 -c "print(${jti_batches[$row]} + $b1 - $b0)")
      fi
      rate=$(sed -E 's/.*rate=([0-9]+).*/\1/' <<<"$line")
      failed=$(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line")
      cpu=$(sed -E 's/.*cpu=([0-9.]+).*/\1/' <<<"$line")
      if [ "$failed" != 0 ]; then
        echo "warning: $row at $connections: $line" >&2
      fi
      results[$row,$connections]+="$rate "
      server_ticks[$row]=$((server_ticks[$row] + after - before))
      machine_busy[$row]=$((machine_busy[$row] + machine_after - machine_before))
      load_cpu[$row]=$(python3 -c "print(${load_cpu[$row]} + $cpu)")
      seconds[$row]=$((seconds[$row] + 1))
      elapsed[$row]=$(python3 -c "print(${elapsed[$row]} + $t1 - $t0)")
    done
  done
done

echo "| server | c=16 | c=64 | CPU: server / load generator / else | jti write per assertion | assertions per write |"
echo "| --- | ---: | ---: | --- | ---: | ---: |"
for row in "${rows[@]}"; do
  # The server's and the machine's ticks span each whole run, warm-up
  # included, as measured.
  span="${elapsed[$row]}"
  server_cores=$(python3 -c "print(f'{${server_ticks[$row]} / $hz / $span:.2f}')")
  load_cores=$(python3 -c "print(f'{${load_cpu[$row]} / ${seconds[$row]}:.2f}')")
  else_cores=$(python3 -c "print(f'{max(0, ${machine_busy[$row]} / $hz / $span - ${server_ticks[$row]} / $hz / $span - ${load_cpu[$row]} / ${seconds[$row]}):.2f}')")
  write=""
  batch=""
  if [ "${jti_rows[$row]}" != 0 ] && [ "${jti_rows[$row]}" != 0.0 ]; then
    write=$(python3 -c "print(f'{${jti_seconds[$row]} / ${jti_rows[$row]} * 1e6:.0f} µs')")
    batch=$(python3 -c "print(f'{${jti_rows[$row]} / ${jti_batches[$row]}:.1f}')")
  fi
  echo "| ${label[$row]} | $(tr ' ' '\n' <<<"${results[$row,16]}" | grep . | median) | $(tr ' ' '\n' <<<"${results[$row,64]}" | grep . | median) |" \
    "$server_cores / $load_cores / $else_cores | $write | $batch |"
done
