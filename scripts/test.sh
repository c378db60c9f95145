#!/usr/bin/env bash
# Runs every test: Rust unit/integration/property tests, then the end-to-end compat suite
# (pytest + boto3 + aws CLI against a real `rampart serve`). Installs what the tests need.
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
