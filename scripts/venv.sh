#!/usr/bin/env bash
# Creates .venv with the Python packages the tests and benchmarks use (boto3, awscli, pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
req=tests/compat/requirements.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
