#!/usr/bin/env bash
# Secrets Manager benchmark: Rampart vs moto's server, same boto3 load, same run (see bench.py).
#   bench/secrets/run.sh            COUNT=5000 THREADS=8 bench/secrets/run.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
echo "[bench] building rampart (release)" >&2
cargo build --release --quiet -p rampart --bin rampart
RAMPART_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/rampart"
bash scripts/venv.sh
if [ ! -x .venv/bin/moto_server ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]'
fi
echo "[bench] moto $(.venv/bin/python -c 'import moto; print(moto.__version__)')" >&2
exec .venv/bin/python bench/secrets/bench.py "$RAMPART_BIN" "$ROOT/.venv/bin/moto_server"
