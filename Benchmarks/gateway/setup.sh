# Shared by make bench (run.sh) and make bench-instructions (instructions.sh): the fixed upstream and
# the plain reverse proxy in one nginx, the broker's policy and config for the real huawei-push adapter
# pointed at that upstream, the bench share's body and its grant. Needs WORK, UP, PROXY, BROKER, NGINX.
# The fixed upstream (a) and the plain reverse proxy (b), one nginx, one worker per core.
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; client_body_buffer_size 64k; client_max_body_size 2m;
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
# BENCH_BIN and BENCH_POLICY (a folder with adapters/ and contracts/) compare another build, A/B, in the same way.
POLICY=${BENCH_POLICY:-.}
cp "$POLICY/contracts/taxonomy.yaml" "$POLICY/contracts/huawei-push.yaml" "$WORK/contracts/"
sed -e "s#^upstream: .*#upstream: http://127.0.0.1:$UP#" \
    -e "s#token_url: .*#token_url: http://127.0.0.1:$UP/oauth2/v3/token#" "$POLICY/adapters/huawei-push.yaml" > "$WORK/adapters/huawei-push.yaml"
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
BODY='{"validate_only":false,"message":{"token":["IQAAAACy0kYtAABqJ8ZyOvHgRt2tT0","IQAAAACy0kYtAABqJ8ZyOvHgRt2tT1"],"notification":{"title":"Your parcel","body":"Arrives today between 14:00 and 16:00"},"android":{"ttl":"86400s","urgency":"HIGH","category":"EXPRESS","notification":{"title":"Your parcel","body":"Arrives today"}}}}'

# grant_bench_subject PORT: the grant the bench share needs, through the broker's API.
grant_bench_subject() {
  curl -sf -X POST "http://127.0.0.1:$1/v1/subjects/u-bench/grants" -H 'Authorization: Bearer bench-grants-token' \
  -H 'Content-Type: application/json' \
  -d '{"provider":"huawei-push","purpose":"essential.service.notifications.push","separate_consent":false,"cross_border_consent":false,"policy_version":"1","evidence":"bench"}' >/dev/null
}
