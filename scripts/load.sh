#!/usr/bin/env bash
# HTTP load test on loopback: the axum_server example against `jwt-auth serve`,
# driven by wrk from another process. Reports requests/s and p50/p99 latency for the
# public route, an RS256-protected route, and the same with the verified-token cache.
# Needs wrk (Debian: apt-get install wrk). Bounded: DURATION seconds per run (10).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
ISSUER_PORT=19400
PLAIN_PORT=19401
CACHED_PORT=19402
KEYS=$(mktemp -d)/keys.json

cargo build --release --examples -q
cargo build --release -p jwt-auth-cli -q
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

target/release/jwt-auth serve --port $ISSUER_PORT --key-file "$KEYS" </dev/null >/dev/null &
pids+=($!)
sleep 1
JWT_ISSUER=http://127.0.0.1:$ISSUER_PORT LISTEN_ADDR=127.0.0.1:$PLAIN_PORT \
  target/release/examples/axum_server >/dev/null &
pids+=($!)
JWT_ISSUER=http://127.0.0.1:$ISSUER_PORT LISTEN_ADDR=127.0.0.1:$CACHED_PORT JWT_CACHE=1 \
  target/release/examples/axum_server >/dev/null &
pids+=($!)
sleep 1
TOKEN=$(target/release/jwt-auth mint --key-file "$KEYS" \
  --issuer http://127.0.0.1:$ISSUER_PORT --permissions read --expires-in 3600)
echo "token: ${#TOKEN} bytes, RS256; wrk: 1 thread, $CONNECTIONS connections, ${DURATION}s per run"
curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$PLAIN_PORT/documents \
  || { echo "the API refused the token"; exit 1; }

run() {
  local name=$1 url=$2; shift 2
  local out
  out=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url")
  local rps p50 p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  printf '%-22s %10s req/s   p50 %8s   p99 %8s\n' "$name" "$rps" "$p50" "$p99"
}
run "no auth (/health)" http://127.0.0.1:$PLAIN_PORT/health
run "RS256" http://127.0.0.1:$PLAIN_PORT/documents -H "Authorization: Bearer $TOKEN"
run "RS256 with cache" http://127.0.0.1:$CACHED_PORT/documents -H "Authorization: Bearer $TOKEN"

# The same route behind jwt-authorizer (built in benches/compare), when PEER=1.
if [ "${PEER:-0}" = 1 ]; then
  PEER_PORT=19403
  (cd benches/compare && cargo build --release --bin peer_server -q)
  JWKS_URL=http://127.0.0.1:$ISSUER_PORT/jwks.json JWT_ISSUER=http://127.0.0.1:$ISSUER_PORT \
    JWT_AUDIENCE=https://api.example.com LISTEN_ADDR=127.0.0.1:$PEER_PORT \
    benches/compare/target/release/peer_server >/dev/null &
  pids+=($!)
  sleep 1
  run "RS256 jwt-authorizer" http://127.0.0.1:$PEER_PORT/documents -H "Authorization: Bearer $TOKEN"
fi
