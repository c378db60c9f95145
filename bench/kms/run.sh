#!/usr/bin/env bash
# KMS benchmark: Rampart vs moto's server, same signed load, same run.
#
#   bench/kms/run.sh               # a Markdown table on stdout, raw JSON lines in OUT_DIR
#   COUNT=5000 CONNECTIONS=4 bench/kms/run.sh
#
# Reuses bench/server's load generator. For each server: CreateKey + one Encrypt (`kms-setup`),
# then for kms:Encrypt, kms:Decrypt and kms:GenerateDataKey (32 bytes / AES_256, with an
# encryption context): calls/s and server CPU per call (utime+stime of the server process from
# /proc/<pid>/stat, before/after the measured calls). Loopback only; every load is bounded by
# COUNT and TIMEOUT_S.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

COUNT=${COUNT:-20000}
WARMUP=${WARMUP:-500}
CONNECTIONS=${CONNECTIONS:-8}
TIMEOUT_S=${TIMEOUT_S:-600}
RAMPART_PORT=${RAMPART_PORT:-45671}
MOTO_PORT=${MOTO_PORT:-45672}
ACCOUNT_ID=123456789012
ACCESS_KEY=AKIAIOSFODNN7EXAMPLE
SECRET=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
# Rampart is measured once per serving-thread count: 1 (moto's server computes on one core at a
# time, under Python's GIL, and the load generator needs the other core) and one per CPU (its default).
THREADS=${THREADS:-$(printf "%s\n" 1 "$(nproc)" | sort -un | tr "\n" " ")}
OPS=(kms-encrypt kms-decrypt kms-generate-data-key)
# shellcheck source=../lib.sh
source bench/lib.sh

RESULTS="$OUT_DIR/latest.jsonl"
: > "$RESULTS"

measure() { # measure NAME PORT HEALTH_PATH CMD…
  local name=$1 port=$2 health=$3
  shift 3
  local url="http://127.0.0.1:$port"
  start_server "$name" "$port" "$health" "$@"
  local pid=$STARTED_PID
  local auth=(--url "$url" --access-key "$ACCESS_KEY" --secret "$SECRET")
  local setup key_id ciphertext
  setup=$("$LOADGEN" kms-setup "${auth[@]}")
  key_id=$(json_field "$setup" key_id)
  ciphertext=$(json_field "$setup" ciphertext)
  local common=("${auth[@]}" --connections "$CONNECTIONS" --timeout-s "$TIMEOUT_S" --key-id "$key_id" --ciphertext "$ciphertext")
  local op before after out calls
  for op in "${OPS[@]}"; do
    "$LOADGEN" run "${common[@]}" --op "$op" --count "$WARMUP" > /dev/null
    before=$(cpu_ticks "$pid")
    out=$("$LOADGEN" run "${common[@]}" --op "$op" --count "$COUNT")
    after=$(cpu_ticks "$pid")
    calls=$(json_field "$out" ok)
    if [ "$(json_field "$out" errors)" != 0 ]; then
      log "$name $op: errors: $(json_field "$out" error_sample)"
      exit 1
    fi
    python3 - "$name" "$out" "$before" "$after" "$CLK_TCK" "$calls" >> "$RESULTS" <<'PY'
import json, sys
name, out, before, after, tck, calls = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
cpu_s = (after - before) / tck
out.update(server=name, server_cpu_s=cpu_s, server_cpu_us_per_call=cpu_s / calls * 1e6)
print(json.dumps(out))
PY
    log "$name $op: $(tail -n 1 "$RESULTS")"
  done
  kill "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

log "Rampart on :$RAMPART_PORT, then moto $MOTO_VERSION on :$MOTO_PORT; $COUNT calls per op over $CONNECTIONS connections"
for threads in $THREADS; do
  measure "rampart-${threads}t" "$RAMPART_PORT" /_rampart/health \
    env RAMPART_ACCOUNT_ID=$ACCOUNT_ID RAMPART_ROOT_ACCESS_KEY_ID=$ACCESS_KEY RAMPART_ROOT_SECRET_ACCESS_KEY=$SECRET \
    "$RAMPART_BIN" serve --ephemeral --listen "127.0.0.1:$RAMPART_PORT" --threads "$threads"
done
measure moto "$MOTO_PORT" /moto-api/data.json \
  "$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"

python3 - "$RESULTS" "$COUNT" "$CONNECTIONS" "$MOTO_VERSION" "$(nproc)" <<'PY'
import json, sys
path, count, conns, moto_version, cores = sys.argv[1:6]
rows = [json.loads(l) for l in open(path)]
ops = {(r["server"], r["op"]): r for r in rows if "op" in r}
print(f"\n{count} signed calls per op, {conns} keep-alive connections, loopback, {cores} cores; moto {moto_version}\n")
variants = sorted({s for s, _ in ops if s.startswith("rampart-")}, key=lambda v: int(v[8:-1]))
print("| operation | Rampart threads | Rampart calls/s | moto calls/s | Rampart CPU/call | moto CPU/call | CPU ratio (moto/Rampart) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for op in ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"]:
    m = ops[("moto", op)]
    for v in variants:
        r = ops[(v, op)]
        ratio = m["server_cpu_us_per_call"] / r["server_cpu_us_per_call"] if r["server_cpu_us_per_call"] else float("inf")
        print(f"| {op} | {v[8:-1]} | {r['calls_per_s']:,.0f} | {m['calls_per_s']:,.0f} | {r['server_cpu_us_per_call']:.1f} µs | "
              f"{m['server_cpu_us_per_call']:.0f} µs | {ratio:.0f}× |")
PY
log "raw results: $RESULTS; server logs: $LOG_DIR"
