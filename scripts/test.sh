#!/usr/bin/env bash
# Runs every test: Rust unit/integration/property tests, then the end-to-end compat suite
# (pytest + boto3 + aws CLI against a real `rampart serve`), then the AWS SDK for JavaScript suite
# (tests/sdk-js, needs Node.js >= 20 and npm) and the AWS SDK for Rust suite (tests/sdk-rust,
# scripts/sdk-rust.sh). Installs what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python venv with boto3, awscli, pytest (idempotent; reinstalls only when requirements change).
scripts/venv.sh

echo "== cargo build (the rampart binary the compat tests start)"
cargo build --bin rampart

echo "== Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

echo "== compat tests (boto3 / aws CLI)"
export RAMPART_BIN="$PWD/target/debug/rampart"
.venv/bin/python -m pytest tests/ -q "$@"

echo "== JavaScript SDK tests (@aws-sdk v3, node --test)"
scripts/sdk-js.sh

echo "== Rust SDK tests (aws-sdk-*; its own Cargo workspace and target dir)"
scripts/sdk-rust.sh

# The same suite again with every data-directory server on PostgreSQL (each in its own schema).
# PostgreSQL missing is a failure (CI starts it; .ci/run); RAMPART_TEST_NO_PG=1 skips this run.
if [ -z "${RAMPART_TEST_STORE:-}" ] && [ "${RAMPART_TEST_NO_PG:-}" != "1" ]; then
  pg_url=""
  if command -v psql >/dev/null 2>&1; then
    for url in postgres://127.0.0.1:5432/test postgres://postgres@127.0.0.1:5432/test; do
      if psql "$url" -qtAc 'select 1' >/dev/null 2>&1; then
        pg_url="$url"
        break
      fi
    done
  fi
  if [ -z "$pg_url" ]; then
    echo "PostgreSQL (database test on 127.0.0.1:5432) is not reachable: start it, or set RAMPART_TEST_NO_PG=1" >&2
    exit 1
  fi
  echo "== compat tests on the PostgreSQL store ($pg_url)"
  RAMPART_TEST_STORE="$pg_url" .venv/bin/python -m pytest tests/ -q "$@"
fi
