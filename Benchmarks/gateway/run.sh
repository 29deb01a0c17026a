#!/usr/bin/env bash
# make bench, part 2: wrk on loopback against
#   (a) a fixed upstream directly (nginx returning a canned provider reply),
#   (b) nginx as a plain reverse proxy to it (keepalive),
#   (c) ShareBroker with full checks and durable (fsync'd) intent logging to the same upstream,
# with the same body and concurrency, in one run. Prints req/s, p50/p99 and the ratio c/b.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
DURATION=${BENCH_DURATION:-10s}
WORK=$(mktemp -d /tmp/sharebroker-bench.XXXXXX)
UP=18181 PROXY=18182 BROKER=18183

missing=""
command -v nginx >/dev/null 2>&1 || missing="$missing nginx"
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
if [ -n "$missing" ]; then
  echo "bench: installing$missing"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

BIN=$(swift build -c release --show-bin-path)/sharebroker
[ -x "$BIN" ] || { echo "bench: build the release binary first (swift build -c release --product sharebroker)"; exit 1; }

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -f "$WORK/broker.log" ] && grep -o "log.commits=[0-9]* log.records=[0-9]* log.records_per_commit=[0-9.]*" "$WORK/broker.log" | sed 's/^/  broker: /' || true
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The fixed upstream (a) and the plain reverse proxy (b), one nginx, one worker per core.
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  upstream fixed { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$UP;
    location = /oauth2/v3/token { default_type application/json; return 200 '{"access_token":"bench-token","expires_in":3600,"token_type":"Bearer"}'; }
    location / { default_type application/json; return 200 '{"code":"80000000","msg":"Success","requestId":"bench"}'; }
  }
  server {
    listen 127.0.0.1:$PROXY;
    location / { proxy_pass http://fixed; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
"$NGINX" -c "$WORK/nginx.conf" -e "$WORK/nginx/error.log"

# ShareBroker (c): the real huawei-push adapter and contract, pointed at the fixed upstream.
mkdir -p "$WORK/adapters" "$WORK/contracts"
cp contracts/taxonomy.yaml contracts/huawei-push.yaml "$WORK/contracts/"
sed -e "s#^upstream: .*#upstream: http://127.0.0.1:$UP#" \
    -e "s#token_url: .*#token_url: http://127.0.0.1:$UP/oauth2/v3/token#" adapters/huawei-push.yaml > "$WORK/adapters/huawei-push.yaml"
cat > "$WORK/broker.yaml" <<YAML
listen: 127.0.0.1:$BROKER
database: sqlite:$WORK/broker.sqlite
adapters: $WORK/adapters
contracts: $WORK/contracts
clients:
  - { id: bench-app, token: bench-share-token, roles: [share], providers: [huawei-push] }
  - { id: bench-accounts, token: bench-grants-token, roles: [grants] }
log: { fingerprint_key: bench-fingerprint-key }
YAML
(cd "$WORK" && HUAWEI_CLIENT_ID=bench HUAWEI_CLIENT_SECRET=bench exec "$BIN" serve --config "$WORK/broker.yaml" > "$WORK/broker.log" 2>&1) &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$BROKER/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf -X POST "http://127.0.0.1:$BROKER/v1/subjects/u-bench/grants" -H 'Authorization: Bearer bench-grants-token' \
  -H 'Content-Type: application/json' \
  -d '{"provider":"huawei-push","purpose":"essential.service.notifications.push","separate_consent":false,"cross_border_consent":false,"policy_version":"1","evidence":"bench"}' >/dev/null

BODY='{"validate_only":false,"message":{"token":["IQAAAACy0kYtAABqJ8ZyOvHgRt2tT0","IQAAAACy0kYtAABqJ8ZyOvHgRt2tT1"],"notification":{"title":"Your parcel","body":"Arrives today between 14:00 and 16:00"},"android":{"ttl":"86400s","urgency":"HIGH","category":"EXPRESS","notification":{"title":"Your parcel","body":"Arrives today"}}}}'
cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-share-token"
wrk.headers["X-Share-Subject"] = "u-bench"
LUA

# Sanity: the broker forwards and allows.
decision=$(curl -s -o /dev/null -D - -X POST "http://127.0.0.1:$BROKER/v1/proxy/huawei-push/v1/10086/messages:send" \
  -H 'Authorization: Bearer bench-share-token' -H 'X-Share-Subject: u-bench' -H 'Content-Type: application/json' \
  --data "$BODY" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-share-decision"{print $2}')
[ "$decision" = "allowed" ] || { echo "bench: the broker did not allow the bench share ($decision)"; cat "$WORK/broker.log"; exit 1; }

run() { # name url → "req/s p50 p99"
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/post.lua" "$2")
  local rps p50 p99 errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  errors=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  printf "  %-44s %10s req/s   p50 %8s   p99 %8s%s\n" "$1" "$rps" "$p50" "$p99" "${errors:+   non-2xx: $errors}"
  echo "$rps" > "$WORK/$3.rps"
}

echo "Gateway on loopback — wrk -t$THREADS -c$CONNECTIONS -d$DURATION, ${#BODY}-byte JSON body, same for all three"
run "(a) fixed upstream, direct" "http://127.0.0.1:$UP/v1/10086/messages:send" a
run "(b) nginx reverse proxy → upstream" "http://127.0.0.1:$PROXY/v1/10086/messages:send" b
[ -n "${BENCH_PROFILE:-}" ] && (sleep 4; pid=$(pgrep -f "sharebroker serve --config" | head -1); top -b -n 1 -H -p $pid | head -25 > /tmp/bench-top.txt; perf record -F 499 -g -p $pid -o /tmp/bench-perf.data -- sleep 4 > /dev/null 2>&1) &
run "(c) ShareBroker: checks + fsync'd intents" "http://127.0.0.1:$BROKER/v1/proxy/huawei-push/v1/10086/messages:send" c
ratio=$(awk -v c="$(cat "$WORK/c.rps")" -v b="$(cat "$WORK/b.rps")" 'BEGIN { printf "%.2f", c / b }')
echo "  ratio c/b = $ratio   (issue target ≥ 0.40, product goal 0.80)"
records=$(curl -s "http://127.0.0.1:$BROKER/healthz" >/dev/null; "$BIN" log verify --database "$WORK/broker.sqlite" 2>/dev/null | tail -1)
echo "  share log after the run: $records"
