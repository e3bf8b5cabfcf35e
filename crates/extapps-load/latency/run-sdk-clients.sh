#!/usr/bin/env bash
# Runs the Python, Go and TypeScript latency clients, one after the other,
# against a running server, each through the SDK sdk/generate wrote into
# GEN_DIR (the `gen` directory, holding python/, go/ and typescript/).
#
#   crates/extapps-load/latency/run-sdk-clients.sh GEN_DIR
#
# Environment: EXTAPPS_URL, EXTAPPS_ADMIN_KEY, EXTAPPS_INTROSPECT_KEY,
# EXTAPPS_SIGNIN_KEY, EXTAPPS_ORGANIZATION, EXTAPPS_ROUNDS. Prints one line
# `CLIENT RPC MICROS` per timed call; build output goes to stderr.
set -euo pipefail
if [ $# -ne 1 ] || [ ! -d "$1/python" ] || [ ! -d "$1/go" ] || [ ! -d "$1/typescript" ]; then
  echo "usage: $0 GEN_DIR (a directory with python/, go/ and typescript/ from sdk/generate)" >&2
  exit 2
fi
for variable in EXTAPPS_URL EXTAPPS_ADMIN_KEY EXTAPPS_INTROSPECT_KEY EXTAPPS_SIGNIN_KEY \
  EXTAPPS_ORGANIZATION EXTAPPS_ROUNDS; do
  if [ -z "${!variable:-}" ]; then
    echo "error: $variable is not set" >&2
    exit 2
  fi
done
gen=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Both builds come first, so that a build failure leaves no partial table.

# Debian ships grpc-go and its dependencies as sources under /usr/share/gocode
# for GOPATH builds; the SDK is imported as extapps/gen/go/..., so GEN_DIR is
# mounted as GOPATH's src/extapps/gen.
mkdir -p "$work/gopath/src/extapps"
ln -s "$gen" "$work/gopath/src/extapps/gen"
GO111MODULE=off GOFLAGS= GOPATH="$work/gopath:/usr/share/gocode" \
  go build -o "$work/latency-go" "$here/latency.go" >&2

# Compiled next to a copy of the SDK, as a service compiles its own code.
cp -r "$gen/typescript" "$work/typescript"
cp "$here/latency.ts" "$work/typescript/"
echo '{"type": "module"}' >"$work/typescript/package.json"
ln -s "$root/sdk/node_modules" "$work/typescript/node_modules"
(cd "$work/typescript" &&
  "$root/sdk/node_modules/.bin/tsc" --strict --module nodenext --target es2022 --types node latency.ts >&2)

PYTHONPATH="$gen/python" "$root/.venv/bin/python" "$here/latency.py"
"$work/latency-go"
node "$work/typescript/latency.js"
