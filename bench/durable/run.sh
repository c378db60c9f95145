#!/usr/bin/env bash
# The durable default against --ephemeral and moto, same signed load, same run (issue 16).
#
#   bench/durable/run.sh                 # a Markdown table on stdout, raw JSON lines in OUT_DIR
#   COUNT=20000 SKIP_MOTO=1 bench/durable/run.sh
#   PG_URL=postgres://127.0.0.1:5432/test bench/durable/run.sh   # also PostgreSQL (schema made and dropped)
#
# Modes: `rampart serve --ephemeral`, `rampart serve --data-dir DIR` (SQLite, the default),
# `rampart serve` on PostgreSQL (when PG_URL answers), and moto's server. Ops: sts:GetCallerIdentity,
# iam:GetUser, kms:Encrypt, secretsmanager:GetSecretValue (reads: one audit record each),
# iam:TagUser (a write transaction plus its record per call) and iam:CreateUser (a write that
# adds a user per call; CREATE_COUNT calls, AWS's quota is 5,000 users). Per op: calls/s, server CPU per call (utime+stime from /proc), and for
# the durable modes the bytes the store grew per audited call. Then, per durable mode, the cost
# per call again after GROW more stored records (flat cost as the store grows).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

COUNT=${COUNT:-20000}
WARMUP=${WARMUP:-500}
GROW=${GROW:-0}
# Acknowledged only once durable: throughput is concurrency / sync latency, so the load keeps 64
# calls in flight (group commit shares each sync among them).
CONNECTIONS=${CONNECTIONS:-64}
TIMEOUT_S=${TIMEOUT_S:-600}
PORT=${PORT:-45681}
PG_URL=${PG_URL:-postgres://127.0.0.1:5432/test}
ACCOUNT_ID=123456789012
ACCESS_KEY=AKIAIOSFODNN7EXAMPLE
SECRET=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
OPS=(sts-get-caller-identity iam-get-user kms-encrypt secrets-get-secret-value iam-tag-user iam-create-user)
# CreateUser makes a user per call and AWS allows 5,000 per account: fewer calls, twice per mode.
CREATE_COUNT=${CREATE_COUNT:-2000}
SCHEMA=bench_durable_$$
# shellcheck source=../lib.sh
source bench/lib.sh
RESULTS="$OUT_DIR/latest.jsonl"
: > "$RESULTS"
DATA=$(mktemp -d)

store_bytes() { # store_bytes MODE
  case $1 in
    # The database file: the WAL beside it is bounded (truncated past 64 MB) and reused, so its
    # size says when the last checkpoint ran, not what a call costs; it is reported separately.
    sqlite) stat -c %s "$DATA/sqlite/rampart.sqlite" ;;
    postgres) psql "$PG_URL" -qtAc "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)),0) FROM pg_class c JOIN pg_namespace n ON n.oid=c.relnamespace WHERE n.nspname='$SCHEMA' AND c.relkind IN ('r','t','i')" ;;
    *) echo 0 ;;
  esac
}

run_op() { # run_op NAME MODE PID OP COUNT LABEL COMMON…
  local name=$1 mode=$2 pid=$3 op=$4 count=$5 label=$6 warmup=$WARMUP
  shift 6
  local before after bytes_before bytes_after out calls
  if [ "$op" = iam-create-user ]; then
    count=$CREATE_COUNT
    warmup=$((WARMUP < 200 ? WARMUP : 200))
  fi
  "$LOADGEN" run "$@" --op "$op" --count "$warmup" > /dev/null
  bytes_before=$(store_bytes "$mode")
  before=$(cpu_ticks "$pid")
  out=$("$LOADGEN" run "$@" --op "$op" --count "$count")
  after=$(cpu_ticks "$pid")
  bytes_after=$(store_bytes "$mode")
  calls=$(json_field "$out" ok)
  if [ "$(json_field "$out" errors)" != 0 ]; then
    log "$name $op: errors: $(json_field "$out" error_sample)"
    exit 1
  fi
  python3 - "$name" "$out" "$before" "$after" "$CLK_TCK" "$calls" "$bytes_before" "$bytes_after" "$label" >> "$RESULTS" <<'PY'
import json, sys
name, out = sys.argv[1], json.loads(sys.argv[2])
before, after, tck, calls, b0, b1 = (int(x) for x in sys.argv[3:9])
cpu_s = (after - before) / tck
out.update(server=name, label=sys.argv[9], server_cpu_us_per_call=cpu_s / calls * 1e6, store_bytes_per_call=(b1 - b0) / calls)
print(json.dumps(out))
PY
  log "$name $op ($label): $(tail -n 1 "$RESULTS")"
}

measure() { # measure NAME MODE HEALTH CMD…
  local name=$1 mode=$2 health=$3
  shift 3
  start_server "$name" "$PORT" "$health" "$@"
  local pid=$STARTED_PID url="http://127.0.0.1:$PORT"
  local auth=(--url "$url" --access-key "$ACCESS_KEY" --secret "$SECRET")
  "$LOADGEN" setup "${auth[@]}" > /dev/null
  local setup
  setup=$("$LOADGEN" kms-setup "${auth[@]}")
  local common=("${auth[@]}" --connections "$CONNECTIONS" --timeout-s "$TIMEOUT_S"
    --key-id "$(json_field "$setup" key_id)" --ciphertext "$(json_field "$setup" ciphertext)")
  local op
  for op in "${OPS[@]}"; do run_op "$name" "$mode" "$pid" "$op" "$COUNT" first "${common[@]}"; done
  if [ "$GROW" -gt 0 ] && [ "$mode" != moto ]; then
    log "$name: storing $GROW more records"
    "$LOADGEN" run "${common[@]}" --op sts-get-caller-identity --count "$GROW" > /dev/null
    for op in "${OPS[@]}"; do run_op "$name" "$mode" "$pid" "$op" "$COUNT" grown "${common[@]}"; done
  fi
  echo "{\"server\":\"$name\",\"rss_after_load_kib\":$(rss_kib "$pid")}" >> "$RESULTS"
  if [ "$mode" = sqlite ]; then
    echo "{\"server\":\"$name\",\"wal_bytes\":$(stat -c %s "$DATA/sqlite/rampart.sqlite-wal" 2>/dev/null || echo 0)}" >> "$RESULTS"
  fi
  stop_server "$pid"
}

ENV=(env RAMPART_ACCOUNT_ID=$ACCOUNT_ID RAMPART_ROOT_ACCESS_KEY_ID=$ACCESS_KEY RAMPART_ROOT_SECRET_ACCESS_KEY=$SECRET)
measure ephemeral memory /_rampart/health "${ENV[@]}" "$RAMPART_BIN" serve --ephemeral --listen "127.0.0.1:$PORT"
measure sqlite sqlite /_rampart/health "${ENV[@]}" "$RAMPART_BIN" serve --data-dir "$DATA/sqlite" --listen "127.0.0.1:$PORT"
if psql "$PG_URL" -qtAc 'select 1' >/dev/null 2>&1; then
  measure postgres postgres /_rampart/health "${ENV[@]}" RAMPART_STORE="$PG_URL?schema=$SCHEMA" \
    "$RAMPART_BIN" serve --data-dir "$DATA/pg" --listen "127.0.0.1:$PORT"
  psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
fi
if [ -z "${SKIP_MOTO:-}" ]; then
  measure moto moto /moto-api/data.json "$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$PORT"
fi

python3 - "$RESULTS" "$COUNT" "$CONNECTIONS" "$MOTO_VERSION" "$CREATE_COUNT" <<'PY'
import json, sys
path, count, conns, moto, create = sys.argv[1:6]
rows = [json.loads(l) for l in open(path)]
ops = {(r["server"], r["op"], r["label"]): r for r in rows if "op" in r}
servers = [s for s in ["ephemeral", "sqlite", "postgres", "moto"] if any(k[0] == s for k in ops)]
print(f"\n{count} signed calls per op ({create} for CreateUser), {conns} connections, loopback; moto {moto}\n")
print("| op | server | calls/s | CPU/call | vs --ephemeral CPU | moto CPU / this | store bytes/call |")
print("|---|---|---:|---:|---:|---:|---:|")
for op in ["sts:GetCallerIdentity", "iam:GetUser", "kms:Encrypt", "secretsmanager:GetSecretValue", "iam:TagUser", "iam:CreateUser"]:
    eph = ops.get(("ephemeral", op, "first"))
    moto_r = ops.get(("moto", op, "first"))
    for s in servers:
        for label in ["first", "grown"]:
            r = ops.get((s, op, label))
            if not r:
                continue
            cpu = r["server_cpu_us_per_call"]
            rel = f"{cpu / eph['server_cpu_us_per_call']:.2f}×" if eph and s != "moto" else ""
            vs_moto = f"{moto_r['server_cpu_us_per_call'] / cpu:.0f}×" if moto_r and s != "moto" and cpu else ""
            tag = s if label == "first" else f"{s} (after more records)"
            print(f"| {op} | {tag} | {r['calls_per_s']:,.0f} | {cpu:.1f} µs | {rel} | {vs_moto} | {r['store_bytes_per_call']:.0f} |")
for r in rows:
    if "rss_after_load_kib" in r:
        print(f"\n{r['server']}: RSS after load {r['rss_after_load_kib'] / 1024:.1f} MiB", end="")
    if "wal_bytes" in r:
        print(f"\n{r['server']}: WAL file after load {r['wal_bytes'] / 2**20:.1f} MiB (bounded: truncated past 64 MiB)", end="")
print()
PY
rm -rf "$DATA"
