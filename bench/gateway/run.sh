#!/usr/bin/env bash
# Gateway benchmark, all on loopback, all in one run:
#  1. detection: the OWASP CRS regression corpus replayed through `rampart gateway` (our managed rule
#     groups, bench/gateway/crs-acl.json) and through nginx + ModSecurity + CRS (Debian packages);
#  2. throughput / latency with wrk: upstream direct, through the gateway, through nginx + ModSecurity;
#  3. Slowloris: hundreds of slow connections while a normal client keeps being served;
#  4. Shield and Challenge timings on the real clock (bench/gateway/shield_timing.rs, in-process): how
#     soon slow heads / slow POSTs are cut, flood detection and mitigation, the proof of work's cost.
#     The gateway's tests assert only behaviour (on a manual clock); the speeds are measured here.
# Results: bench/gateway/results/*.json and a summary on stdout (numbers go in docs/gateway.md).
# Needs root for apt-get (nginx, libnginx-mod-http-modsecurity, modsecurity-crs, wrk) on Debian.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/bench/gateway/results
mkdir -p "$OUT"
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
PY=${PY:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3

need=()
command -v nginx >/dev/null || need+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_http_modsecurity_module.so ] || need+=(libnginx-mod-http-modsecurity)
[ -d /usr/share/modsecurity-crs/rules ] || need+=(modsecurity-crs)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
"$PY" -c 'import yaml' 2>/dev/null || "$PY" -m pip install -q pyyaml

echo "== build (release)"
cargo build --release -q --bin rampart
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/rampart

UP=18091; GW=18090; MS=18092; ADMIN=18093
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# nginx: a static upstream (marks its answers x-upstream: 1) and ModSecurity + CRS in front of it.
mkdir -p "$WORK"/{tmp,data,logs}
cat > "$WORK/modsec.conf" <<EOF
SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction Reject
SecResponseBodyAccess Off
SecAuditEngine Off
SecTmpDir $WORK/tmp
SecDataDir $WORK/data
SecArgumentSeparator &
SecCookieFormat 0
Include /etc/modsecurity/crs/crs-setup.conf
Include /usr/share/modsecurity-crs/rules/*.conf
EOF
cat > "$WORK/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/tmp;
  proxy_temp_path $WORK/tmp;
  keepalive_requests 100000;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$UP;
    location / { add_header x-upstream 1 always; return 200 "ok\n"; }
  }
  server {
    listen 127.0.0.1:$MS;
    modsecurity on;
    modsecurity_rules_file $WORK/modsec.conf;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
nginx -c "$WORK/nginx.conf" -p "$WORK"
PIDS+=("$(cat "$WORK/nginx.pid" 2>/dev/null || echo 0)")

"$BIN" gateway --listen 127.0.0.1:$GW --upstream http://127.0.0.1:$UP --web-acl bench/gateway/crs-acl.json \
  --admin-listen 127.0.0.1:$ADMIN --no-auto-mitigation --max-connections-per-ip 0 >"$WORK/gw.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$GW/" && curl -s -o /dev/null "http://127.0.0.1:$MS/" && break
  sleep 0.1
done

echo "== detection: CRS regression corpus"
"$PY" bench/gateway/crs_replay.py --target 127.0.0.1:$GW --label rampart --json "$OUT/crs-rampart.json"
"$PY" bench/gateway/crs_replay.py --target 127.0.0.1:$MS --label modsecurity-crs --json "$OUT/crs-modsecurity.json"

echo "== throughput and latency (wrk, ${DURATION}s, $CONNS connections, 2 threads; benign GET)"
URLPATH="/products/list?category=shoes&page=2&sort=price"
HDR=(-H "User-Agent: Mozilla/5.0 (X11; Linux x86_64) bench" -H "Accept: text/html")
for target in "upstream:$UP" "rampart:$GW" "modsecurity:$MS"; do
  name=${target%%:*}; port=${target##*:}
  wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "${HDR[@]}" "http://127.0.0.1:$port$URLPATH" > "$OUT/wrk-$name.txt"
  rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk-$name.txt")
  p50=$(awk '/ 50%/ {print $2}' "$OUT/wrk-$name.txt"); p99=$(awk '/ 99%/ {print $2}' "$OUT/wrk-$name.txt")
  echo "  $name: $rps req/s, p50 $p50, p99 $p99"
done

echo "== Slowloris: 500 slow connections against the gateway while a client sends 50 requests"
"$PY" bench/gateway/slowloris.py --target 127.0.0.1:$GW --slow 500 --requests 50 --json "$OUT/slowloris-rampart.json"
echo "== Slowloris against nginx + ModSecurity (same test)"
"$PY" bench/gateway/slowloris.py --target 127.0.0.1:$MS --slow 500 --requests 50 --json "$OUT/slowloris-modsecurity.json" || true

echo "== Shield and Challenge timings (in-process gateway, real clock, release build)"
cargo bench -q -p rampart-gateway --bench shield_timing -- "$OUT/shield-timing.json"
