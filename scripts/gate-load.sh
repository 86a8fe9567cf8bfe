#!/usr/bin/env bash
# Throughput of `jwt-auth gate` behind nginx `auth_request`, on loopback: the same
# upstream (an nginx server block answering 200) behind nginx alone, behind nginx asking
# the gate, and behind nginx asking a gate with the verified-token cache; one RS256
# token from `jwt-auth serve`, driven by wrk. Reports requests/s and p50/p99 latency.
#
# On a machine with two cores or more, nginx (one worker) and the gate (one tokio
# worker) run pinned to core 0 and wrk to core 1 (taskset), so the figures are one
# core's. Needs nginx and wrk (Debian: apt-get install nginx wrk). Bounded: DURATION
# seconds per run (10).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
for tool in nginx curl; do
  command -v $tool >/dev/null || { echo "$tool is needed (apt-get install $tool)"; exit 1; }
done
source scripts/load-common.sh
ISSUER_PORT=19500
ISSUER=http://127.0.0.1:$ISSUER_PORT

cargo build --release -p jwt-auth-cli -q
BIN=${CARGO_TARGET_DIR:-target}/release/jwt-auth

"$BIN" serve --port $ISSUER_PORT --key-file "$KEYS" </dev/null >/dev/null &
pids+=($!)
sleep 1
TOKEN=$("$BIN" mint --key-file "$KEYS" --issuer $ISSUER --permissions read --expires-in 3600)

# gate PORT [CACHE]: a gate on PORT trusting the issuer, the cache on when CACHE is set.
gate() {
  local file=$TMP/gate-$1.toml
  {
    printf '[[issuers]]\nissuer = "%s"\naudiences = ["https://api.example.com"]\n' "$ISSUER"
    [ -n "${2:-}" ] && printf '[cache]\nttl = "5m"\n'
    printf '[gate]\nforward_claims = ["sub"]\n[[gate.routes]]\npath = "/documents*"\nrequire = ["read"]\n'
  } >"$file"
  RUST_LOG=warn "${SERVER[@]}" "$BIN" gate --config "$file" --listen 127.0.0.1:"$1" >/dev/null &
  pids+=($!)
}
gate 19501
gate 19502 cached

# One nginx, one worker: the upstream (19510), nginx alone (19511), nginx with the gate
# (19512), nginx with the cached gate (19513).
front() {
  cat <<NGINX
  server {
    listen 127.0.0.1:$1;
    location / {
      auth_request /_jwt_gate;
      auth_request_set \$jwt_sub \$upstream_http_x_jwt_sub;
      proxy_set_header X-Jwt-Sub \$jwt_sub;
      proxy_pass http://upstream;
    }
    location = /_jwt_gate {
      internal;
      proxy_pass http://$2;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method \$request_method;
      proxy_set_header X-Original-URI \$request_uri;
      proxy_set_header X-Forwarded-Method "";
      proxy_set_header X-Forwarded-Uri "";
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
NGINX
}
cat >"$TMP/nginx.conf" <<NGINX
daemon off;
master_process off;
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP/body; proxy_temp_path $TMP/proxy;
  fastcgi_temp_path $TMP/fastcgi; uwsgi_temp_path $TMP/uwsgi; scgi_temp_path $TMP/scgi;
  upstream upstream { server 127.0.0.1:19510; keepalive 32; }
  upstream gate { server 127.0.0.1:19501; keepalive 32; }
  upstream gate_cached { server 127.0.0.1:19502; keepalive 32; }
  server { listen 127.0.0.1:19510; location / { return 200 "ok\n"; } }
  server {
    listen 127.0.0.1:19511;
    location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://upstream; }
  }
$(front 19512 gate)
$(front 19513 gate_cached)
}
NGINX
"${SERVER[@]}" nginx -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/error.log" &
pids+=($!)

# Each front answers 200 with the token before it is measured.
for port in 19511 19512 19513; do
  for _ in $(seq 50); do
    curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/documents" \
      && continue 2
    sleep 0.1
  done
  echo "port $port never answered 200"; exit 1
done

echo "token: ${#TOKEN} bytes, RS256; wrk: 1 thread, $CONNECTIONS connections, ${DURATION}s per run"
echo "pinned: ${SERVER[*]:-no} (nginx and the gates, TOKIO_WORKER_THREADS=${TOKIO_WORKER_THREADS:-default})," \
  "${LOAD[*]:-no} (wrk)"
for front in "nginx alone:19511" "nginx + gate:19512" "nginx + gate, cached:19513"; do
  run "${front%%:*}" "http://127.0.0.1:${front##*:}/documents" -H "Authorization: Bearer $TOKEN"
done
