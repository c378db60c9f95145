#!/usr/bin/env bash
# Server benchmark: Rampart vs moto's server, same signed load, same run.
#
#   bench/server/run.sh            # defaults below; a Markdown table on stdout, raw JSON lines in OUT_DIR
#   COUNT=5000 CONNECTIONS=4 bench/server/run.sh
#
# For each server: time to healthy (spawn -> first 200 on its health URL, median of STARTS),
# idle RSS, then for iam:GetUser, sts:GetCallerIdentity and sts:AssumeRole (a durable write per call
# in Rampart: the sealed session): calls/s and server CPU per call
# (utime+stime of the server process from /proc/<pid>/stat, before/after the measured calls).
# Everything runs on loopback; every load is bounded by COUNT and TIMEOUT_S.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

COUNT=${COUNT:-20000}
WARMUP=${WARMUP:-500}
CONNECTIONS=${CONNECTIONS:-8}
STARTS=${STARTS:-5}
TIMEOUT_S=${TIMEOUT_S:-600}
RAMPART_PORT=${RAMPART_PORT:-45661}
MOTO_PORT=${MOTO_PORT:-45662}
ACCOUNT_ID=123456789012
ACCESS_KEY=AKIAIOSFODNN7EXAMPLE
SECRET=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
# Rampart is measured once per serving-thread count: 1 (moto's server computes on one core at a
# time, under Python's GIL, and the load generator needs the other core) and one per CPU (its default).
THREADS=${THREADS:-$(printf "%s\n" 1 "$(nproc)" | sort -un | tr "\n" " ")}
OPS=(iam-get-user sts-get-caller-identity sts-assume-role)
# shellcheck source=../lib.sh
source bench/lib.sh

RESULTS="$OUT_DIR/latest.jsonl"
: > "$RESULTS"

# measure NAME PORT HEALTH_PATH CMD…
measure() {
  local name=$1 port=$2 health=$3
  shift 3
  local url="http://127.0.0.1:$port" times=() i pid
  for ((i = 1; i < STARTS; i++)); do
    start_server "$name" "$port" "$health" "$@"
    times+=("$STARTED_MS")
    stop_server "$STARTED_PID"
  done
  start_server "$name" "$port" "$health" "$@"
  times+=("$STARTED_MS")
  pid=$STARTED_PID
  local healthy_ms idle_rss
  healthy_ms=$(printf '%s\n' "${times[@]}" | median)
  idle_rss=$(rss_kib "$pid")
  log "$name: healthy in ${healthy_ms} ms (median of $STARTS: ${times[*]}), idle RSS ${idle_rss} KiB"
  echo "{\"server\":\"$name\",\"healthy_ms_median\":$healthy_ms,\"healthy_ms_all\":[$(IFS=,; echo "${times[*]}")],\"idle_rss_kib\":$idle_rss}" >> "$RESULTS"

  local common=(--url "$url" --connections "$CONNECTIONS" --access-key "$ACCESS_KEY" --secret "$SECRET" --timeout-s "$TIMEOUT_S")
  "$LOADGEN" setup --url "$url" --access-key "$ACCESS_KEY" --secret "$SECRET" > /dev/null
  local op before after out calls ops=("${OPS[@]}")
  # Rampart only: the HTTP server's own cost per call (no SigV4, no pipeline), the floor under every op.
  [[ "$name" == rampart-* ]] && ops+=(http-floor)
  for op in "${ops[@]}"; do
    "$LOADGEN" run "${common[@]}" --op "$op" --count "$WARMUP" > /dev/null
    before=$(cpu_ticks "$pid")
    out=$("$LOADGEN" run "${common[@]}" --op "$op" --count "$COUNT")
    after=$(cpu_ticks "$pid")
    calls=$(json_field "$out" ok)
    if [ "$(json_field "$out" errors)" != 0 ]; then
      log "$name $op: errors: $(json_field "$out" error_sample)"
      exit 1
    fi
    python3 - "$name" "$out" "$before" "$after" "$CLK_TCK" "$calls" >> "$RESULTS" <<'EOF'
import json, sys
name, out, before, after, tck, calls = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
cpu_s = (after - before) / tck
out.update(server=name, server_cpu_s=cpu_s, server_cpu_us_per_call=cpu_s / calls * 1e6)
print(json.dumps(out))
EOF
    log "$name $op: $(tail -n 1 "$RESULTS")"
  done
  local loaded_rss
  loaded_rss=$(rss_kib "$pid")
  echo "{\"server\":\"$name\",\"rss_after_load_kib\":$loaded_rss}" >> "$RESULTS"
  stop_server "$pid"
}

# --- run -------------------------------------------------------------------------------------
log "Rampart on :$RAMPART_PORT, then moto $MOTO_VERSION on :$MOTO_PORT; $COUNT calls per op over $CONNECTIONS connections"
for threads in $THREADS; do
  measure "rampart-${threads}t" "$RAMPART_PORT" /_rampart/health \
    env RAMPART_ACCOUNT_ID=$ACCOUNT_ID RAMPART_ROOT_ACCESS_KEY_ID=$ACCESS_KEY RAMPART_ROOT_SECRET_ACCESS_KEY=$SECRET \
    "$RAMPART_BIN" serve --ephemeral --listen "127.0.0.1:$RAMPART_PORT" --threads "$threads"
done
measure moto "$MOTO_PORT" /moto-api/data.json \
  "$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"

# --- report ----------------------------------------------------------------------------------
python3 - "$RESULTS" "$COUNT" "$CONNECTIONS" "$MOTO_VERSION" "$(nproc)" <<'EOF'
import json, sys
path, count, conns, moto_version, cores = sys.argv[1:6]
rows = [json.loads(l) for l in open(path)]
srv = {r["server"]: r for r in rows if "healthy_ms_median" in r}
after = {r["server"]: r for r in rows if "rss_after_load_kib" in r}
ops = {(r["server"], r["op"]): r for r in rows if "op" in r}
print(f"\n{count} signed calls per op, {conns} keep-alive connections, loopback, {cores} cores; moto {moto_version}\n")
variants = sorted({s for s, _ in ops if s.startswith("rampart-")}, key=lambda v: int(v[8:-1]))
print("| operation | Rampart threads | Rampart calls/s | moto calls/s | Rampart CPU/call | moto CPU/call | CPU ratio (moto/Rampart) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for op in ["iam:GetUser", "sts:GetCallerIdentity", "sts:AssumeRole"]:
    m = ops[("moto", op)]
    for v in variants:
        r = ops[(v, op)]
        ratio = m["server_cpu_us_per_call"] / r["server_cpu_us_per_call"] if r["server_cpu_us_per_call"] else float("inf")
        print(f"| {op} | {v[8:-1]} | {r['calls_per_s']:,.0f} | {m['calls_per_s']:,.0f} | {r['server_cpu_us_per_call']:.1f} µs | "
              f"{m['server_cpu_us_per_call']:.0f} µs | {ratio:.0f}× |")
for v in variants:
    floor = ops[(v, "GET /_rampart/health")]
    print(f"\nRampart's HTTP floor with {v[8:-1]} thread(s) (GET /_rampart/health: no SigV4, no pipeline): "
          f"{floor['server_cpu_us_per_call']:.1f} µs CPU per call, {floor['calls_per_s']:,.0f} calls/s")
print()
print("| server | time to healthy (median) | idle RSS | RSS after load |")
print("|---|---:|---:|---:|")
for name in variants + ["moto"]:
    s = srv[name]
    print(f"| {name} | {s['healthy_ms_median']:.1f} ms | {s['idle_rss_kib'] / 1024:.1f} MiB | "
          f"{after[name]['rss_after_load_kib'] / 1024:.1f} MiB |")
EOF
log "raw results: $RESULTS; server logs: $LOG_DIR"
