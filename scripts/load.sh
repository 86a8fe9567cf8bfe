#!/usr/bin/env bash
# HTTP load test on loopback: one route (`GET /documents`, benches/compare's
# load_server) behind no authentication, our layer, our layer with the verified-token
# cache, and jwt-authorizer, trusting `jwt-auth serve`; driven by wrk from another
# process. Reports requests/s and p50/p99 latency per mode; then fills the cache with
# CACHE_TOKENS distinct tokens (default 10000, the default cache size) and reports the
# cached server's resident memory before the load and at its peak.
#
# The modes' runs follow each other, so a shared machine's drift over the tens of
# seconds between two of them moves their ratio. The paired phase measures no-auth and
# the cached layer in alternating short runs instead: PAIRS (default 6) pairs of
# PAIR_SECONDS (2) runs, each pair in the other order from the one before, each pair a
# ratio, and their median.
#
# On a machine with two cores or more, each server runs pinned to core 0 with one tokio
# worker and wrk to core 1 (taskset), so a server's requests/s are one core's.
# Needs wrk (Debian: apt-get install wrk). Bounded: DURATION seconds per run (10).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/load-common.sh
CACHE_TOKENS="${CACHE_TOKENS:-10000}"
PAIRS="${PAIRS:-6}"
PAIR_SECONDS="${PAIR_SECONDS:-2}"
[[ "$PAIRS" =~ ^[1-9][0-9]*$ ]] || { echo "PAIRS must be a whole number of at least 1"; exit 1; }
ISSUER_PORT=19400
ISSUER=http://127.0.0.1:$ISSUER_PORT

cargo build --release -p jwt-auth-cli -q
(cd benches/compare && cargo build --release --bin load_server -q)
# Where cargo put them: CARGO_TARGET_DIR when set, else each workspace's own target.
BIN=${CARGO_TARGET_DIR:-target}/release/jwt-auth
LOAD_SERVER=${CARGO_TARGET_DIR:-benches/compare/target}/release/load_server

"$BIN" serve --port $ISSUER_PORT --key-file "$KEYS" </dev/null >/dev/null &
pids+=($!)
sleep 1
TOKEN=$("$BIN" mint --key-file "$KEYS" --issuer $ISSUER \
  --permissions read --expires-in 3600)

# start MODE PORT: one load_server, pinned; its pid in $server_pid.
start() {
  MODE=$1 LISTEN_ADDR=127.0.0.1:$2 JWT_ISSUER=$ISSUER JWKS_URL=$ISSUER/jwks.json \
    JWT_AUDIENCE=https://api.example.com "${SERVER[@]}" \
    "$LOAD_SERVER" >/dev/null &
  server_pid=$!
  pids+=($server_pid)
  for _ in $(seq 50); do
    curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$2/documents" \
      && return
    sleep 0.1
  done
  echo "$1 never answered 200"; exit 1
}

echo "token: ${#TOKEN} bytes, RS256; wrk: 1 thread, $CONNECTIONS connections, ${DURATION}s per run"
echo "pinned: ${SERVER[*]:-no} (server, TOKIO_WORKER_THREADS=${TOKIO_WORKER_THREADS:-default})," \
  "${LOAD[*]:-no} (wrk)"
port=19410
for mode in none ours ours-cached jwt-authorizer; do
  port=$((port + 1))
  start "$mode" $port
  run "$mode" "http://127.0.0.1:$port/documents" -H "Authorization: Bearer $TOKEN"
  if [ "$mode" = none ]; then none_port=$port; fi
  if [ "$mode" = ours-cached ]; then cached_pid=$server_pid cached_port=$port; fi
done

# Pairs: no-auth and the cached layer, the same token, runs a few seconds apart.
rps() {
  "${LOAD[@]}" wrk -t1 -c"$CONNECTIONS" -d"${PAIR_SECONDS}s" \
    -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/documents" |
    awk '/Requests\/sec/ {print $2}'
}
ratios=()
for pair in $(seq "$PAIRS"); do
  # Each server runs first in every other pair, so a drift favours neither; an even
  # PAIRS balances the two orders.
  if [ $((pair % 2)) -eq 1 ]; then
    none=$(rps "$none_port")
    cached=$(rps "$cached_port")
  else
    cached=$(rps "$cached_port")
    none=$(rps "$none_port")
  fi
  [ -n "$none" ] && [ -n "$cached" ] || { echo "pair $pair: wrk reported no rate"; exit 1; }
  ratio=$(awk -v n="$none" -v c="$cached" 'BEGIN {printf "%.1f", 100 * c / n}')
  ratios+=("$ratio")
  printf 'pair %d: none %10s req/s, ours-cached %10s req/s: %s %%\n' \
    "$pair" "$none" "$cached" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n |
  awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
echo "ours-cached over none, median of $PAIRS pairs: $median %"

# The cache filled: CACHE_TOKENS distinct tokens, cycled by a wrk script.
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
before=$(kib "$cached_pid" VmRSS)
"$BIN" mint --key-file "$KEYS" --issuer $ISSUER \
  --permissions read --expires-in 3600 --count "$CACHE_TOKENS" >"$TMP/tokens.txt"
cat >"$TMP/cycle.lua" <<'LUA'
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/documents", { ["Authorization"] = "Bearer " .. tokens[i] })
end
LUA
TOKENS=$TMP/tokens.txt run "ours-cached, $CACHE_TOKENS tokens" \
  "http://127.0.0.1:$cached_port/documents" -s "$TMP/cycle.lua"
echo "ours-cached server: VmRSS $before KiB before, VmHWM $(kib "$cached_pid" VmHWM) KiB" \
  "at its peak with $CACHE_TOKENS tokens cached"
