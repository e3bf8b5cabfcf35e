#!/usr/bin/env bash
# Client credentials with private_key_jwt (ES256, EdDSA) beside
# client_secret_basic, on extapps' embedded default (SQLite) and on
# node-oidc-provider (in memory; peer/), at 16 and 64 connections. Every
# request carries a fresh assertion (an assertion is accepted once), so the
# load generator is extapps-assertions, not oha: it signs each one itself,
# and sends the secret requests through the same code.
#
# Runs are interleaved as in http-bench.sh: for each cell, run 1 loads every
# row in turn, then run 2, and so on; the median of RUNS runs of DURATION.
# Prints a Markdown table with the CPU each row's server and the load
# generator used during its measured runs, in cores.
#
#   crates/extapps-load/assertion-bench.sh [DURATION] [RUNS]      (10s, 3)
set -euo pipefail
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

wait_for_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.1
  done
  echo "error: nothing listens on port $1" >&2
  exit 1
}
json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }
own_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# Keys: one pair per algorithm, shared by both servers' clients.
"$load" keygen --alg es256 --out "$work/es256.pk8" --kid es256 > "$work/es256.jwk"
"$load" keygen --alg eddsa --out "$work/eddsa.pk8" --kid eddsa > "$work/eddsa.jwk"

# extapps on SQLite, with an application holding a secret and both keys.
export EXTAPPS_DATABASE_URL="sqlite://$work/bench.db?mode=rwc" EXTAPPS_KEY_FILE="$work/keys.toml"
"$server" --log warn key-ring create --key-file "$work/keys.toml" >/dev/null
admin=$("$server" --log warn keys create --organization acme --role admin)
"$server" --log warn serve --listen 127.0.0.1:50192 &
extapps_pid=$!
pids+=($!)
wait_for_port 50192
registered=$("$cli" --url http://127.0.0.1:50192 --key "$admin" -o json apps register \
  --organization acme --name "assertion bench" --type confidential \
  --app-scope OR:OR.Jobs.Read --app-scope OR:OR.Queues)
app=$(json_field '["application"]["name"]' <<<"$registered")
extapps_id=$(json_field '["application"]["client_id"]' <<<"$registered")
extapps_secret=$(json_field '["client_secret"]' <<<"$registered")
for alg in es256 eddsa; do
  "$cli" --url http://127.0.0.1:50192 --key "$admin" apps keys add "$app" \
    --jwk-file "$work/$alg.jwk" >/dev/null
done

# node-oidc-provider, with the same public keys on its private_key_jwt client.
jwks=$(python3 -c "import json, sys; print(json.dumps({'keys': [json.load(open(f)) for f in sys.argv[1:]]}))" \
  "$work/es256.jwk" "$work/eddsa.jwk")
PORT=50193 PEER_CLIENT_JWKS=$jwks node crates/extapps-load/peer/provider.mjs >/dev/null 2>&1 &
node_pid=$!
pids+=($!)
wait_for_port 50193

rows=(extapps-secret extapps-es256 extapps-eddsa node-secret node-es256 node-eddsa)
declare -A label args server_pid server_ticks load_cpu seconds
label[extapps-secret]="extapps, SQLite: client_secret_basic"
label[extapps-es256]="extapps, SQLite: private_key_jwt ES256"
label[extapps-eddsa]="extapps, SQLite: private_key_jwt EdDSA"
label[node-secret]="node-oidc-provider 9.13: client_secret_basic"
label[node-es256]="node-oidc-provider 9.13: private_key_jwt ES256"
label[node-eddsa]="node-oidc-provider 9.13: private_key_jwt EdDSA"
extapps_url=http://127.0.0.1:50192/oauth2/token
node_url=http://127.0.0.1:50193/token
node_scope="scope=OR.Jobs.Read%20OR.Queues"
args[extapps-secret]="--url $extapps_url --client-id $extapps_id --secret $extapps_secret"
args[extapps-es256]="--url $extapps_url --client-id $extapps_id --alg es256 --kid es256 --key $work/es256.pk8"
args[extapps-eddsa]="--url $extapps_url --client-id $extapps_id --alg eddsa --kid eddsa --key $work/eddsa.pk8"
args[node-secret]="--url $node_url --client-id bench --secret bench-secret-0123456789abcdef0123456789abcdef --extra $node_scope"
args[node-es256]="--url $node_url --client-id bench-jwt --alg es256 --kid es256 --key $work/es256.pk8 --extra $node_scope"
args[node-eddsa]="--url $node_url --client-id bench-jwt --alg eddsa --kid eddsa --key $work/eddsa.pk8 --extra $node_scope"
for row in "${rows[@]}"; do
  case $row in extapps-*) server_pid[$row]=$extapps_pid ;; *) server_pid[$row]=$node_pid ;; esac
  server_ticks[$row]=0 load_cpu[$row]=0 seconds[$row]=0
done

declare -A results
for connections in 16 64; do
  for run in $(seq 1 "$runs"); do
    # The order rotates from run to run.
    order=("${rows[@]:$((run % ${#rows[@]}))}" "${rows[@]:0:$((run % ${#rows[@]}))}")
    for row in "${order[@]}"; do
      before=$(own_ticks "${server_pid[$row]}")
      # shellcheck disable=SC2086
      line=$("$load" load ${args[$row]} --connections "$connections" --duration "$duration")
      after=$(own_ticks "${server_pid[$row]}")
      rate=$(sed -E 's/.*rate=([0-9]+).*/\1/' <<<"$line")
      failed=$(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line")
      cpu=$(sed -E 's/.*cpu=([0-9.]+).*/\1/' <<<"$line")
      if [ "$failed" != 0 ]; then
        echo "warning: $row at $connections: $line" >&2
      fi
      results[$row,$connections]+="$rate "
      server_ticks[$row]=$((server_ticks[$row] + after - before))
      load_cpu[$row]=$(python3 -c "print(${load_cpu[$row]} + $cpu)")
      seconds[$row]=$((seconds[$row] + 1))
    done
  done
done

duration_s=$(python3 -c "import re; m=re.fullmatch(r'(\d+)(ms|s|m)?', '$duration'); n=int(m.group(1)); print(n/1000 if m.group(2)=='ms' else n*60 if m.group(2)=='m' else n)")
median() { python3 -c "import statistics, sys; print(int(statistics.median(map(int, sys.argv[1:]))))" $1; }
echo "| server | c=16 | c=64 | server CPU | load generator CPU |"
echo "| --- | ---: | ---: | ---: | ---: |"
for row in "${rows[@]}"; do
  # The server's ticks span each run's 1 s warm-up too.
  server_cores=$(python3 -c "print(f'{${server_ticks[$row]} / $hz / (${seconds[$row]} * ($duration_s + 1)):.2f}')")
  load_cores=$(python3 -c "print(f'{${load_cpu[$row]} / ${seconds[$row]}:.2f}')")
  echo "| ${label[$row]} | $(median "${results[$row,16]}") | $(median "${results[$row,64]}") | $server_cores | $load_cores |"
done
