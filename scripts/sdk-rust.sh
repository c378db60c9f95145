#!/usr/bin/env bash
# End-to-end tests with the AWS SDK for Rust (tests/sdk-rust): builds the suite (its own Cargo
# workspace and target dir, tests/sdk-rust/target) and runs it against the main debug binary.
# scripts/test.sh calls it after the compat suite; arguments go to the test binary
# (e.g. `scripts/sdk-rust.sh kms::` runs the KMS tests only).
set -euo pipefail
cd "$(dirname "$0")/.."

export RAMPART_BIN="${RAMPART_BIN:-$PWD/target/debug/rampart}"
if [ ! -x "$RAMPART_BIN" ]; then
  echo "rampart binary not found at $RAMPART_BIN: run \`cargo build --bin rampart\` first" >&2
  exit 1
fi

# The SDK must see nothing of the caller's AWS setup (profiles, env credentials, IMDS).
for v in $(env | sed -n 's/^\(AWS_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true

echo "== AWS SDK for Rust suite (tests/sdk-rust): cargo test"
cargo test --manifest-path tests/sdk-rust/Cargo.toml --target-dir tests/sdk-rust/target --locked -- "$@"
