#!/usr/bin/env bash
# make bench-instructions: user-space instructions per request of the whole broker process (every
# thread: event loops, the log writer, the curl thread), counted by callgrind — repeatable to ~1 % on a
# machine where timings are not. The slope method: the same broker, started afresh under callgrind,
# serves N1 and then N2 requests of one kind (curl -Z, BENCH_INSTR_PARALLEL connections, keep-alive),
# and (count(N2) - count(N1)) / (N2 - N1) leaves start-up, warm-up and shutdown out.
#   allowed  the bench share (324-byte Huawei push body, granted subject): forwarded, intent fsync'd
#   refused  the same share for a known subject without a grant: 403, logged
#   401      the same share with a wrong bearer token
#   healthz  GET /healthz
# valgrind 3.19 (Debian 12) needs two workarounds: it profiles a `strip --strip-debug` copy (it cannot
# read this toolchain's DWARF 5; symbols stay), and it preloads a shim whose sigsuspend copies the
# mask first (libdispatch passes a read-only one, and valgrind writes into it).
# Usage: Benchmarks/gateway/instructions.sh [kinds...]   (default: allowed refused 401 healthz)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
N1=${BENCH_INSTR_LOW:-200} N2=${BENCH_INSTR_HIGH:-600} PARALLEL=${BENCH_INSTR_PARALLEL:-8}
KINDS=${*:-allowed refused 401 healthz}
WORK=$(mktemp -d /tmp/sharebroker-instr.XXXXXX)
UP=18281 PROXY=18282 BROKER=18283
command -v valgrind >/dev/null 2>&1 || { sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends valgrind nginx >/dev/null; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
BIN=${BENCH_BIN:-$(swift build -c release --show-bin-path)/sharebroker}
[ -x "$BIN" ] || { echo "bench-instructions: build the release binary first (swift build -c release --product sharebroker)"; exit 1; }

broker_pid=""
cleanup() {
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null || true
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cp "$BIN" "$WORK/sharebroker" && strip --strip-debug "$WORK/sharebroker"
cat > "$WORK/sigsuspend-shim.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
/* valgrind 3.19 writes into the mask sigsuspend is given; libdispatch's is read-only. */
int sigsuspend(const sigset_t *mask) {
  static int (*next)(const sigset_t *);
  if (!next) next = (int (*)(const sigset_t *))dlsym(RTLD_NEXT, "sigsuspend");
  sigset_t copy = *mask;
  return next(&copy);
}
C
cc -shared -fPIC -O2 -o "$WORK/sigsuspend-shim.so" "$WORK/sigsuspend-shim.c" -ldl

source Benchmarks/gateway/setup.sh
printf "%s" "$BODY" > "$WORK/body.json"

# requests KIND COUNT: COUNT requests of KIND through curl's parallel mode.
requests() {
  local kind=$1 count=$2 token=bench-share-token subject=u-bench url="http://127.0.0.1:$BROKER/v1/proxy/huawei-push/v1/10086/messages:send"
  case "$kind" in
    refused) subject=u-bench-no-grant ;;
    401) token=not-the-token ;;
    healthz) url="http://127.0.0.1:$BROKER/healthz" ;;
  esac
  : > "$WORK/urls.curl"
  for _ in $(seq 1 "$count"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$url" >> "$WORK/urls.curl"; done
  if [ "$kind" = healthz ]; then
    curl -s --no-progress-meter -Z --parallel-max "$PARALLEL" -w '%{http_code}\n' -K "$WORK/urls.curl"
  else
    curl -s --no-progress-meter -Z --parallel-max "$PARALLEL" -H "Authorization: Bearer $token" -H "X-Share-Subject: $subject" \
      -H 'Content-Type: application/json' --data-binary "@$WORK/body.json" -w '%{http_code}\n' -K "$WORK/urls.curl"
  fi | sort | uniq -c | awk '{ line = line sep $1 "×" $2; sep = " " } END { print line }'
}

# count KIND COUNT: a fresh broker under callgrind serves COUNT requests of KIND; prints its instructions.
count() {
  local kind=$1 n=$2 statuses
  rm -rf "$WORK/broker.sqlite"*
  (cd "$WORK" && HUAWEI_CLIENT_ID=bench HUAWEI_CLIENT_SECRET=bench SWIFT_DETERMINISTIC_HASHING=1 \
    LD_PRELOAD="$WORK/sigsuspend-shim.so" exec valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$kind.$n" \
    "$WORK/sharebroker" serve --config "$WORK/broker.yaml" > "$WORK/broker.$kind.$n.log" 2>&1) &
  broker_pid=$!
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$BROKER/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  grant_bench_subject "$BROKER"
  curl -sf -X PUT "http://127.0.0.1:$BROKER/v1/subjects/u-bench-no-grant" -H 'Authorization: Bearer bench-grants-token' \
    -H 'Content-Type: application/json' -d '{"region":"CN"}' >/dev/null
  statuses=$(requests "$kind" "$n")
  kill -TERM "$broker_pid"; wait "$broker_pid" 2>/dev/null || true; broker_pid=""
  echo "$statuses" > "$WORK/statuses.$kind.$n"
  sed -n 's/.*Collected : //p' "$WORK/broker.$kind.$n.log" | tail -1
}

# The broker's keys (the interception CA's P-256 key among them) are made once, by a start outside the
# counts: a new P-256 key is drawn until it is compact-representable, a random number of tries that
# moved the slope by up to ~5k instructions per request when every counted start made its own.
(cd "$WORK" && HUAWEI_CLIENT_ID=bench HUAWEI_CLIENT_SECRET=bench exec "$WORK/sharebroker" serve --config "$WORK/broker.yaml" \
  > "$WORK/broker.keys.log" 2>&1) &
broker_pid=$!
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$BROKER/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
kill -TERM "$broker_pid"; wait "$broker_pid" 2>/dev/null || true; broker_pid=""
[ -f "$WORK/.sharebroker/tls-ca.key" ] || { echo "bench-instructions: the broker made no keys"; tail -5 "$WORK/broker.keys.log"; exit 1; }

echo "Instructions per request, whole broker process under callgrind (slope $N1 → $N2 requests, $PARALLEL connections, curl -Z)"
for kind in $KINDS; do
  low=$(count "$kind" "$N1"); high=$(count "$kind" "$N2")
  [ -n "$low" ] && [ -n "$high" ] || { echo "  $kind: callgrind gave no count"; tail -5 "$WORK/broker.$kind.$N2.log"; exit 1; }
  printf "  %-8s %7dk instructions per request   (answers: %s)\n" "$kind" $(( (high - low) / (N2 - N1) / 1000 )) "$(cat "$WORK/statuses.$kind.$N2")"
  [ -n "${BENCH_INSTR_KEEP:-}" ] && cp "$WORK/cg.$kind.$N1" "$WORK/cg.$kind.$N2" "$BENCH_INSTR_KEEP/" 2>/dev/null || true
done
