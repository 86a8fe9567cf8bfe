# Sourced by the load scripts (scripts/load.sh, scripts/gate-load.sh): run lengths, a
# scratch directory, core pinning, the processes to stop on exit, and `run`, one wrk
# measurement printed as a line. Not run on its own.
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
TMP=$(mktemp -d)
KEYS=$TMP/keys.json
# With two cores or more: the servers on core 0 (one tokio worker), wrk on core 1.
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER=(taskset -c 0) LOAD=(taskset -c 1)
  export TOKIO_WORKER_THREADS=1
else
  SERVER=() LOAD=()
fi
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

# run NAME URL [WRK ARGS..]: requests/s, p50 and p99 of one wrk run.
run() {
  local name=$1 url=$2; shift 2
  local out
  out=$("${LOAD[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url")
  local rps p50 p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  printf '%-28s %10s req/s   p50 %8s   p99 %8s\n' "$name" "$rps" "$p50" "$p99"
}
