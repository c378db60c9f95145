#!/usr/bin/env bash
# Runs moto's own test suites in moto's server mode against `rampart serve --compat moto` and prints
# the pass counts per folder (a Markdown table; docs/compat.md keeps the latest one).
#
#   scripts/moto-suite.sh                       # all folders below
#   scripts/moto-suite.sh test_iam test_sts     # some folders
#
# Needs network access to PyPI the first time (moto's sdist holds its tests; moto itself provides
# the `mock_aws` decorator, which in server mode only resets the server and points boto3 at it).
# Everything lives under .moto-suite/ (a venv, the unpacked sdist, junit XML reports, server log).
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
REPORTS="$WORK/reports"
PORT=${PORT:-45699}
mkdir -p "$WORK" "$REPORTS"

if [ ! -x "$VENV/bin/pytest" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" pytest freezegun pyyaml
fi
if [ ! -d "$SRC/tests" ]; then
  "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
    "moto==$MOTO_VERSION" -d "$WORK"
  tar -xzf "$WORK/moto-$MOTO_VERSION.tar.gz" -C "$WORK"
fi

cargo build --quiet --bin rampart
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/rampart"
"$BIN" serve --compat moto --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$PORT/_rampart/health" >/dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.1 # polling the health endpoint until the server is up
done

# moto's tests import `tests.…` and `moto`; they run from the sdist root so `tests` is the local copy.
echo "| folder | passed | failed | errors | skipped | total |"
echo "|---|---|---|---|---|---|"
for folder in "${FOLDERS[@]}"; do
  report="$REPORTS/$folder.xml"
  (cd "$SRC" && TEST_SERVER_MODE=true TEST_SERVER_MODE_ENDPOINT="http://127.0.0.1:$PORT" \
    AWS_ACCESS_KEY_ID=FOOBARKEY AWS_SECRET_ACCESS_KEY=FOOBARSECRET AWS_DEFAULT_REGION=us-east-1 \
    "$VENV/bin/pytest" -q --color=no -rfE -p no:cacheprovider --junitxml="$report" "tests/$folder" >"$REPORTS/$folder.log" 2>&1) || true
  python3 - "$report" "$folder" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) for s in suites)
e = sum(int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(f"| {sys.argv[2]} | {t - f - e - sk} | {f} | {e} | {sk} | {t} |")
EOF
done
