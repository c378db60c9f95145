#!/usr/bin/env bash
# Runs moto's own test suites in moto's server mode against `rampart serve --compat moto` and prints
# per folder how much of what moto passes Rampart passes (a Markdown table; docs/compat.md keeps
# the latest one).
#
#   scripts/moto-suite.sh                       # all folders below
#   scripts/moto-suite.sh test_iam test_sts     # some folders
#   BASELINE=1 scripts/moto-suite.sh            # also (re)run the folders against moto's own server
#
# The score of a folder is: of the tests moto passes (its own server, same run of this script or an
# earlier one kept in .moto-suite/reports-moto/), minus the tests listed in
# scripts/moto-exclusions/<folder>.txt (need a service Rampart does not offer, or expect moto's own
# behaviour where AWS documents otherwise; each line says why), the share Rampart passes.
#
# Needs network access to PyPI the first time (moto's sdist holds its tests; moto itself provides
# the `mock_aws` decorator, which in server mode only resets the server and points boto3 at it).
# Everything lives under .moto-suite/ (a venv, the unpacked sdist, junit XML reports, server logs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MOTO_VERSION=${MOTO_VERSION:-5.2.5}
FOLDERS=("$@")
if [ ${#FOLDERS[@]} -eq 0 ]; then
  FOLDERS=(test_iam test_sts test_kms test_secretsmanager test_organizations test_cloudtrail)
fi
WORK="$ROOT/.moto-suite"
VENV="$WORK/venv"
SRC="$WORK/moto-$MOTO_VERSION"
PORT=${PORT:-45699}
# Some moto helpers loop until a call succeeds (e.g. creating a role with a non-JSON trust policy,
# which AWS and Rampart refuse); a per-test timeout turns those into failures instead of hangs.
TEST_TIMEOUT=${TEST_TIMEOUT:-60}
mkdir -p "$WORK/reports" "$WORK/reports-moto"

if [ ! -x "$VENV/bin/pytest" ] || [ ! -x "$VENV/bin/moto_server" ] || ! "$VENV/bin/python" -c 'import pytest_timeout' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" pytest pytest-timeout freezegun pyyaml
fi
if [ ! -d "$SRC/tests" ]; then
  "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
    "moto==$MOTO_VERSION" -d "$WORK"
  tar -xzf "$WORK/moto-$MOTO_VERSION.tar.gz" -C "$WORK"
fi

SERVER=
stop_server() {
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=
  fi
}
trap stop_server EXIT

# start_server NAME URL-PATH COMMAND…: starts a server on $PORT and waits until URL-PATH answers.
start_server() {
  local name=$1 path=$2
  shift 2
  "$@" >"$WORK/$name-server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$PORT$path" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/$name-server.log"; exit 1; }
    sleep 0.1 # polling the health endpoint until the server is up
  done
  echo "$name did not start" >&2
  exit 1
}

# run_folders REPORT-DIR: runs every folder against the server on $PORT.
# moto's tests import `tests.…` and `moto`; they run from the sdist root so `tests` is the local copy.
run_folders() {
  local dir=$1 folder
  for folder in "${FOLDERS[@]}"; do
    (cd "$SRC" && TEST_SERVER_MODE=true TEST_SERVER_MODE_ENDPOINT="http://127.0.0.1:$PORT" \
      AWS_ACCESS_KEY_ID=FOOBARKEY AWS_SECRET_ACCESS_KEY=FOOBARSECRET AWS_DEFAULT_REGION=us-east-1 \
      "$VENV/bin/pytest" -q --color=no -rfE -p no:cacheprovider --timeout="$TEST_TIMEOUT" \
      -o junit_family=xunit1 --junitxml="$dir/$folder.xml" "tests/$folder" >"$dir/$folder.log" 2>&1) || true
  done
}

if [ -n "${BASELINE:-}" ]; then
  start_server moto / "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT"
  run_folders "$WORK/reports-moto"
  stop_server
fi

cargo build --quiet --bin rampart
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/rampart"
start_server rampart /_rampart/health "$BIN" serve --compat moto --listen "127.0.0.1:$PORT"
run_folders "$WORK/reports"
stop_server

"$VENV/bin/python" "$ROOT/scripts/moto-suite-score.py" "$WORK" "$ROOT/scripts/moto-exclusions" "${FOLDERS[@]}"
