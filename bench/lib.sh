# Shared by bench/server/run.sh and bench/kms/run.sh (sourced from the repository root): builds
# Rampart and the load generator (release), prepares moto's server, and starts/stops/measures
# server processes. Sets RAMPART_BIN, LOADGEN, MOTO_VERSION, LOG_DIR, OUT_DIR, CLK_TCK.

LOG_DIR=$(mktemp -d)
OUT_DIR=${OUT_DIR:-$LOG_DIR}
mkdir -p "$OUT_DIR"
CLK_TCK=$(getconf CLK_TCK)

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

log() { echo "[bench] $*" >&2; }

# --- build -----------------------------------------------------------------------------------
if [ -z "${RAMPART_BIN:-}" ]; then
  log "building rampart (release)"
  cargo build --release --quiet -p rampart --bin rampart
  RAMPART_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/rampart"
fi
log "building the load generator (release)"
CARGO_TARGET_DIR="$ROOT/bench/server/target" cargo build --release --quiet --manifest-path bench/server/Cargo.toml
LOADGEN="$ROOT/bench/server/target/release/rampart-loadgen"

log "preparing the Python venv with moto[server]"
bash scripts/venv.sh
if [ ! -x .venv/bin/moto_server ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]'
fi
MOTO_VERSION=$(.venv/bin/python -c 'import moto; print(moto.__version__)')

# --- helpers ---------------------------------------------------------------------------------
json_field() { # json_field JSON KEY  (flat JSON from the load generator)
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}
cpu_ticks() { # utime + stime of a process, in clock ticks (fields 14 and 15, after the comm field)
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# start_server NAME PORT HEALTH_PATH CMD… -> sets STARTED_PID, STARTED_MS
start_server() {
  local name=$1 port=$2 health=$3
  shift 3
  local out
  out=$("$LOADGEN" start --health-url "http://127.0.0.1:$port$health" --log "$LOG_DIR/$name.log" \
    --timeout-ms 60000 -- "$@")
  STARTED_PID=$(json_field "$out" pid)
  STARTED_MS=$(json_field "$out" healthy_ms)
  PIDS+=("$STARTED_PID")
}

stop_server() {
  kill "$1" 2>/dev/null || true
  while kill -0 "$1" 2>/dev/null; do sleep 0.05; done
}
