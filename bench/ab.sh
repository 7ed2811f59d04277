#!/usr/bin/env bash
# A/B of two Fulcrum binaries on the same machine: 1 event loop on CPU 1 with 4 nginx backends,
# wrk on CPU 0, ROUNDS interleaved rounds (A B, A B, ...), medians of req/s and p99.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY            # 50 connections, 5 rounds of 8 s
#   CONNECTIONS=200 ROUNDS=3 bench/ab.sh old new
#   WORKERS=2 bench/ab.sh old new                # 2 event loops on CPUs 0 and 1 (wrk stays on CPU 0)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/nginx-backend.sh"
connections=${CONNECTIONS:-50}
rounds=${ROUNDS:-5}
duration=${WRK_SECONDS:-8}
workers=${WORKERS:-1}
proxy_cpus=$([[ $workers == 1 ]] && echo 1 || echo 0,1)
run=$(mktemp -d /tmp/fulcrum-ab-XXXXXX)
pids=()
trap 'kill ${pids[@]} 2>/dev/null || true' EXIT
bench_backends 18281 18282 18283 18284
sleep 0.5
measure() {  # binary label
  PORT=18280 WORKERS=$workers BACKENDS=$(IFS=,; echo "${backends[*]}") FULCRUM_BIN=$1 taskset -c "$proxy_cpus" "$root/bench/fulcrum-serve.sh" &
  local pid=$!
  wait_until_serving http://127.0.0.1:18280/
  taskset -c 0 wrk -t1 -c"$connections" -d2s http://127.0.0.1:18280/ > /dev/null
  taskset -c 0 wrk -t1 -c"$connections" -d"${duration}s" --latency http://127.0.0.1:18280/ > "$run/out"
  kill $pid; wait $pid 2> /dev/null || true
  echo "$2 $(awk '/Requests\/sec/ {print $2}' "$run/out") $(awk '$1 == "99%" {print $2}' "$run/out")" | tee -a "$run/results"
}
for round in $(seq "$rounds"); do
  measure "$1" A
  measure "$2" B
done
python3 - "$run/results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
def ms(v):  # wrk prints 850.00us, 9.24ms or 1.02s
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(unit): return float(v[: -len(unit)]) * factor
for label in "AB":
    rps = [float(r[1]) for r in rows if r[0] == label]
    p99 = [ms(r[2]) for r in rows if r[0] == label]
    print(f"{label}: median {statistics.median(rps):,.0f} req/s (min {min(rps):,.0f}, max {max(rps):,.0f}), median p99 {statistics.median(p99):.2f} ms")
a = statistics.median(float(r[1]) for r in rows if r[0] == "A")
b = statistics.median(float(r[1]) for r in rows if r[0] == "B")
print(f"B / A = {b / a:.2f}")
PY
