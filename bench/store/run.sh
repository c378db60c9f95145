#!/usr/bin/env bash
# Store benchmark: the same signed load against Rampart on SQLite (one node) and on PostgreSQL
# (one node, then two nodes sharing one database), side by side in one run.
#
#   bench/store/run.sh                      # PG at postgres://127.0.0.1:5432/test (schema made and dropped)
#   PG_URL=postgres://u:p@db/x COUNT=5000 bench/store/run.sh
#   RAMPART_BIN=target/debug/rampart bench/store/run.sh   # skip the release build
#
# Reads: signed iam:GetUser (authenticate + authorize + read: every call reads the store on the
# credential, generation and policy path). Writes: signed iam:TagUser (one durable write
# transaction per call, acknowledged only after commit). Two nodes: the generator's connections
# alternate between both nodes' URLs. Reuses bench/server's load generator.
# Output: a Markdown table with ratios to SQLite on stdout; raw JSON lines in OUT_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

COUNT=${COUNT:-10000}
WCOUNT=${WCOUNT:-2000}
WARMUP=${WARMUP:-300}
CONNECTIONS=${CONNECTIONS:-8}
TIMEOUT_S=${TIMEOUT_S:-600}
PG_URL=${PG_URL:-postgres://127.0.0.1:5432/test}
PORT_A=${PORT_A:-45671}
PORT_B=${PORT_B:-45672}
ACCOUNT_ID=123456789012
ACCESS_KEY=AKIAIOSFODNN7EXAMPLE
SECRET=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
SCHEMA=bench_store_$$
WORK=$(mktemp -d)
OUT_DIR=${OUT_DIR:-$WORK}
mkdir -p "$OUT_DIR"

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
}
trap cleanup EXIT
log() { echo "[bench/store] $*" >&2; }

if [ -z "${RAMPART_BIN:-}" ]; then
  log "building rampart (release)"
  cargo build --release --quiet -p rampart --bin rampart
  RAMPART_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/rampart"
fi
log "building the load generator (release)"
CARGO_TARGET_DIR="$ROOT/bench/server/target" cargo build --release --quiet --manifest-path bench/server/Cargo.toml
LOADGEN="$ROOT/bench/server/target/release/rampart-loadgen"

if ! psql "$PG_URL" -qtAc 'select 1' >/dev/null 2>&1; then
  log "PostgreSQL not reachable at $PG_URL (set PG_URL)"
  exit 2
fi
PG_STORE="$PG_URL$([[ $PG_URL == *\?* ]] && echo '&' || echo '?')schema=$SCHEMA"

json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# start NAME PORT DATA_DIR [ENV…] -> STARTED_PID
start_node() {
  local name=$1 port=$2 dir=$3
  shift 3
  local out
  out=$("$LOADGEN" start --health-url "http://127.0.0.1:$port/_rampart/health" --log "$WORK/$name.log" \
    --timeout-ms 60000 -- env RAMPART_ACCOUNT_ID=$ACCOUNT_ID RAMPART_ROOT_ACCESS_KEY_ID=$ACCESS_KEY \
    RAMPART_ROOT_SECRET_ACCESS_KEY=$SECRET "$@" "$RAMPART_BIN" serve --data-dir "$dir" --listen "127.0.0.1:$port")
  STARTED_PID=$(json_field "$out" pid)
  PIDS+=("$STARTED_PID")
}
stop_node() {
  kill "$1" 2>/dev/null || true
  while kill -0 "$1" 2>/dev/null; do sleep 0.05; done
}

RESULTS="$OUT_DIR/latest.jsonl"
: > "$RESULTS"

# load SETUP URLS
load() {
  local setup=$1 urls=$2 op count out
  local common=(--url "$urls" --connections "$CONNECTIONS" --access-key "$ACCESS_KEY" --secret "$SECRET" --timeout-s "$TIMEOUT_S")
  "$LOADGEN" setup --url "$urls" --access-key "$ACCESS_KEY" --secret "$SECRET" >/dev/null
  for op in iam-get-user iam-tag-user; do
    count=$COUNT
    [ "$op" = iam-tag-user ] && count=$WCOUNT
    "$LOADGEN" run "${common[@]}" --op "$op" --count "$WARMUP" >/dev/null
    out=$("$LOADGEN" run "${common[@]}" --op "$op" --count "$count")
    if [ "$(json_field "$out" errors)" != 0 ]; then
      log "$setup $op: errors: $(json_field "$out" error_sample)"
      exit 1
    fi
    python3 -c 'import json,sys; d=json.loads(sys.argv[2]); d["setup"]=sys.argv[1]; print(json.dumps(d))' "$setup" "$out" >>"$RESULTS"
    log "$setup $op: $(tail -n 1 "$RESULTS")"
  done
}

log "SQLite, one node"
start_node sqlite "$PORT_A" "$WORK/sqlite"
load sqlite "http://127.0.0.1:$PORT_A"
stop_node "$STARTED_PID"

log "PostgreSQL, one node ($SCHEMA)"
start_node pg-a "$PORT_A" "$WORK/pg-a" RAMPART_STORE="$PG_STORE"
A=$STARTED_PID
load postgres-1 "http://127.0.0.1:$PORT_A"

log "PostgreSQL, two nodes"
start_node pg-b "$PORT_B" "$WORK/pg-b" RAMPART_STORE="$PG_STORE" RAMPART_MASTER_KEY_FILE="$WORK/pg-a/master.key"
load postgres-2 "http://127.0.0.1:$PORT_A,http://127.0.0.1:$PORT_B"
stop_node "$STARTED_PID"
stop_node "$A"

python3 - "$RESULTS" "$COUNT" "$WCOUNT" "$CONNECTIONS" "$(nproc)" "$(psql "$PG_URL" -qtAc 'show server_version')" <<'EOF'
import json, sys
path, count, wcount, conns, cores, pgv = sys.argv[1:7]
rows = {(r["setup"], r["op"]): r for r in map(json.loads, open(path))}
print(f"\n{count} signed reads / {wcount} signed writes per setup, {conns} keep-alive connections, "
      f"loopback, {cores} cores, PostgreSQL {pgv} on the same machine\n")
print("| setup | iam:GetUser reads/s | ratio | p99 | iam:TagUser durable writes/s | ratio | p99 |")
print("|---|---:|---:|---:|---:|---:|---:|")
base_r, base_w = rows[("sqlite", "iam:GetUser")], rows[("sqlite", "iam:TagUser")]
names = {"sqlite": "SQLite, 1 node", "postgres-1": "PostgreSQL, 1 node", "postgres-2": "PostgreSQL, 2 nodes"}
for s, label in names.items():
    r, w = rows[(s, "iam:GetUser")], rows[(s, "iam:TagUser")]
    print(f"| {label} | {r['calls_per_s']:,.0f} | {r['calls_per_s'] / base_r['calls_per_s']:.2f}× | {r['p99_ms']:.1f} ms | "
          f"{w['calls_per_s']:,.0f} | {w['calls_per_s'] / base_w['calls_per_s']:.2f}× | {w['p99_ms']:.1f} ms |")
EOF
log "raw results: $RESULTS; server logs: $WORK"
