#!/usr/bin/env bash
# Parity with AWS, measured on responses recorded from AWS: LocalStack's test suites for IAM, STS,
# KMS, Secrets Manager (and more as Rampart grows) record every response they compare from a real
# AWS account (tests/aws/services/<service>/*.snapshot.json). This runs the tests LocalStack marks
# `aws_validated` against `rampart serve --dev`, and compares every snapshot path — LocalStack's own
# `skip_snapshot_verify` exemptions (its deviations from AWS) are ignored (rampart_strict.py).
#
#   LOCALSTACK_SRC=/path/to/localstack-checkout RAMPART_BIN=target/debug/rampart bench/parity/run.sh [service…]
#
# Needs: a LocalStack source checkout (git clone https://github.com/localstack/localstack), Python
# >= 3.10, network for pip the first time (a venv in bench/parity/.venv). Port 4566 must be free
# (LocalStack's tests always call localhost:4566).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
src="${LOCALSTACK_SRC:?set LOCALSTACK_SRC to a LocalStack source checkout}"
bin="${RAMPART_BIN:-$root/target/debug/rampart}"
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(iam sts kms secretsmanager)

venv="${PARITY_VENV:-$here/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  # LocalStack's test plugins import its runtime; cbor2 5.7 dropped a module its parser imports.
  SETUPTOOLS_SCM_PRETEND_VERSION=4.14.0 "$venv/bin/pip" install -q -e "$src[base-runtime]" \
    localstack-snapshot pytest pytest-httpserver cryptography jinja2 'cbor2==5.6.5' 'moto-ext>=5.1.22'
fi

log="$(mktemp)"
"$bin" serve --dev --listen 127.0.0.1:4566 >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
  curl -sf http://127.0.0.1:4566/_rampart/health >/dev/null 2>&1 && break
  sleep 0.1
done

export TEST_SKIP_LOCALSTACK_START=1 SECONDARY_TEST_AWS_SECRET_ACCESS_KEY=test PYTHONPATH="$here"
printf '%-16s %8s %8s %8s %8s\n' service passed failed errors share
for s in "${services[@]}"; do
  out=$(cd "$src" && "$venv/bin/python" -m pytest -p rampart_strict -p no:logging -p no:warnings \
          -p no:cacheprovider -q --no-header tests/aws/services/"$s"/test_*.py 2>&1 | tail -1 || true)
  p=$(grep -o '[0-9]* passed' <<<"$out" | cut -d' ' -f1 || true); p=${p:-0}
  f=$(grep -o '[0-9]* failed' <<<"$out" | cut -d' ' -f1 || true); f=${f:-0}
  e=$(grep -o '[0-9]* error' <<<"$out" | cut -d' ' -f1 || true); e=${e:-0}
  total=$((p + f + e))
  share=$(awk -v p="$p" -v t="$total" 'BEGIN { if (t) printf "%.1f%%", 100 * p / t; else print "-" }')
  printf '%-16s %8s %8s %8s %8s\n' "$s" "$p" "$f" "$e" "$share"
done
