#!/usr/bin/env bash
# The AWS SDK for JavaScript v3 suite (tests/sdk-js): `npm ci` when node_modules is missing or
# package-lock.json changed, then `node --test`. Each test file starts its own `rampart serve`
# (RAMPART_BIN, default target/debug/rampart), so node runs the files concurrently.
# Node.js and npm are required: without them this fails (CI must not pass without the suite).
set -euo pipefail
cd "$(dirname "$0")/../tests/sdk-js"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "sdk-js: '$tool' not found: install Node.js >= 20 (with npm) to run the JavaScript SDK suite" >&2
    exit 1
  fi
done
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "sdk-js: Node.js >= 20 required, found $(node --version)" >&2
  exit 1
fi

stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== npm ci (tests/sdk-js)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

export RAMPART_BIN="${RAMPART_BIN:-$PWD/../../target/debug/rampart}"
# Node 20 is supported by the SDK versions pinned here; their notice about future versions is noise.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
exec node --test "$@" test/
