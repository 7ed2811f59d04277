#!/usr/bin/env bash
# Requests per second of Fulcrum (1 event loop) with 10 and with 10,000 prefix routes, requests
# matching the last route declared; interleaved rounds, medians. Uses the backends of ../shared/bench.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$root/../shared/bench}
. "$shared/lib.sh"
bin=${FULCRUM_BIN:-$root/.build/release/fulcrum}
reps=${REPS:-3}
duration=${ROUTES_DURATION:-8}
port=18680
set_layout split
mkdir -p "$RUN_DIR" && gen_backend_conf
# set +e: the harness's stop_all waits on processes that are not this shell's children (status 127)
trap 'set +e; stop_all' EXIT
start_backends "$BACKEND_CPUS" >/dev/null

config() {  # config N -> file
  local n=$1 file=$RUN_DIR/conf/fulcrum-routes-$1.yaml i
  {
    echo "listen: [{ address: 127.0.0.1, port: $port }]"
    echo "workers: 1"
    echo "access_log: false"
    echo "services:"
    echo "  bench: { nodes: [{ name: b1, host: 127.0.0.1, port: 18081 }, { name: b2, host: 127.0.0.1, port: 18082 }] }"
    echo "routes:"
    for ((i = 0; i < n; i++)); do echo "  - { name: r$i, match: { path_prefix: /svc/$i/ }, service: bench }"; done
  } > "$file"
  echo "$file"
}

declare -A results
for rep in $(seq 1 "$reps"); do
  for n in 10 10000; do
    file=$(config $n)
    start_server "fulcrum-routes" 120 "$PROXY1_CPUS" "$bin" serve --config "$file" --log-level warning >/dev/null
    for _ in $(seq 1 100); do curl -s -o /dev/null -m 1 "http://127.0.0.1:$port/svc/$((n - 1))/x" && break; sleep 0.1; done
    timeout 30 taskset -c "$GEN_CPUS" wrk -t1 -c50 -d2s "http://127.0.0.1:$port/svc/$((n - 1))/x" >/dev/null 2>&1
    out=$RUN_DIR/routes-$n-$rep.txt
    timeout $((duration + 20)) taskset -c "$GEN_CPUS" wrk -t1 -c50 -d"${duration}s" --latency "http://127.0.0.1:$port/svc/$((n - 1))/x" > "$out" 2>&1
    read -r rps p50 p90 p99 err req < <(parse_wrk "$out")
    results[$n]="${results[$n]:-} $rps"
    log "routes=$n round=$rep rps=$rps p99=${p99}ms errors=$err"
    stop_server "fulcrum-routes"
  done
done
python3 - "${results[10]}" "${results[10000]}" <<'PY'
import statistics, sys
small = statistics.median(float(x) for x in sys.argv[1].split())
large = statistics.median(float(x) for x in sys.argv[2].split())
print("\n| prefix routes | req/s (median, 1 event loop, 50 connections) |\n|---|---|")
print(f"| 10 | {small:.0f} |\n| 10,000 | {large:.0f} ({100 * large / small:.0f}% of 10 routes) |")
PY
