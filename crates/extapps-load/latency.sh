#!/usr/bin/env bash
# Sequential latency of each RPC, one call at a time, as seen from each client
# the project ships or tests: the Rust client (extapps-latency), the Python,
# Go and TypeScript SDKs generated from proto/ (latency/), and the CLI. Prints
# a Markdown table of medians in milliseconds, for BENCHMARKS.md.
#
#   crates/extapps-load/latency.sh [ROUNDS]        (default 20)
#
# EXTAPPS_LATENCY_SERVER names another server binary to measure (for example
# one built without a change, to compare); by default the release build of
# this tree. The server runs on a fresh SQLite file with one Tokio worker.
# The CLI's figures are whole commands: process start, connection and call.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-20}
cargo build --release -q -p extapps-server -p extapps-load -p extapps-client
server=${EXTAPPS_LATENCY_SERVER:-target/release/extapps-server}
cli=target/release/extapps
work=$(mktemp -d)
pid=
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
port=50161
export EXTAPPS_DATABASE_URL="sqlite://$work/latency.db?mode=rwc"
export TOKIO_WORKER_THREADS=1
key() { "$server" --log warn keys create --organization acme --role "$1"; }
export EXTAPPS_ADMIN_KEY EXTAPPS_INTROSPECT_KEY EXTAPPS_SIGNIN_KEY
EXTAPPS_ADMIN_KEY=$(key admin)
EXTAPPS_INTROSPECT_KEY=$(key introspect)
EXTAPPS_SIGNIN_KEY=$(key signin)
# Every client runs from this one address and verifies a new secret each
# round: builds before 2026-12-06 charged each verification to the source,
# so the budget is raised to let them (today's budgets only the slow
# verifications of password-grade hashes).
"$server" --log warn serve --listen "127.0.0.1:$port" --signin-url http://127.0.0.1:9/signin \
  --verify-budget-per-source 1000 &
pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
export EXTAPPS_URL="http://127.0.0.1:$port" EXTAPPS_ORGANIZATION=acme EXTAPPS_ROUNDS=$rounds

# The CLI: each command timed whole, `rounds` times.
cli_cycle() {
  local round name id secret token started
  time_it() { # RPC COMMAND...
    local rpc=$1
    shift
    started=$(date +%s%N)
    "$@" >"$work/out"
    echo "cli $rpc $((($(date +%s%N) - started) / 1000))"
  }
  for round in $(seq 1 "$rounds"); do
    time_it ListResources "$cli" --key "$EXTAPPS_ADMIN_KEY" resources list
    time_it RegisterApplication "$cli" --key "$EXTAPPS_ADMIN_KEY" -o json apps register \
      --organization acme --name "latency cli $round $RANDOM$RANDOM" --type confidential \
      --user-scope OR:OR.Jobs --app-scope OR:OR.Jobs.Read --redirect-url http://127.0.0.1/callback
    name=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["application"]["name"])' <"$work/out")
    id=${name##*/}
    time_it GetApplication "$cli" --key "$EXTAPPS_ADMIN_KEY" apps get "$name"
    time_it ListApplications "$cli" --key "$EXTAPPS_ADMIN_KEY" apps list --organization acme
    time_it UpdateApplication "$cli" --key "$EXTAPPS_ADMIN_KEY" apps update "$name" \
      --display-name "latency cli $round renamed $RANDOM$RANDOM"
    time_it UpdateApplicationScopes "$cli" --key "$EXTAPPS_ADMIN_KEY" apps scopes set "$name" \
      --user-scope OR:OR.Jobs --user-scope OR:OR.Queues --app-scope OR:OR.Jobs.Read --app-scope OR:OR.Queues
    time_it GenerateApplicationSecret "$cli" --key "$EXTAPPS_ADMIN_KEY" -o json apps secrets generate "$name"
    secret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <"$work/out")
    token=$(curl -sf -u "$id:$secret" -d grant_type=client_credentials "$EXTAPPS_URL/oauth2/token" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    time_it IntrospectToken "$cli" --key "$EXTAPPS_INTROSPECT_KEY" tokens introspect "$token"
    time_it ListAuditEvents "$cli" --key "$EXTAPPS_ADMIN_KEY" audit list --organization acme --application "$name"
    time_it DeleteApplication "$cli" --key "$EXTAPPS_ADMIN_KEY" apps delete "$name"
  done
}

sdk/generate "$work/sdk" >&2
{
  target/release/extapps-latency
  crates/extapps-load/latency/run-sdk-clients.sh "$work/sdk/gen"
  cli_cycle
} >"$work/samples"

python3 - "$work/samples" <<'PY'
import collections, statistics, sys

samples = collections.defaultdict(list)
rpcs = []
for line in open(sys.argv[1]):
    client, rpc, micros = line.split()
    samples[(client, rpc)].append(int(micros))
    if rpc not in rpcs:
        rpcs.append(rpc)
clients = [c for c in ("rust", "python", "go", "typescript", "cli") if any(k[0] == c for k in samples)]
print("| RPC | " + " | ".join(clients) + " |")
print("| --- |" + " ---: |" * len(clients))
for rpc in rpcs:
    cells = []
    for client in clients:
        values = samples.get((client, rpc))
        cells.append(f"{statistics.median(values) / 1000:.2f}" if values else "n/a")
    print(f"| {rpc} | " + " | ".join(cells) + " |")
PY
