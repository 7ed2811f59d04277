#!/usr/bin/env bash
# Profiles a release Fulcrum (1 event loop, CPU 1, round robin over 4 nginx backends on CPU 1)
# under wrk (CPU 0) with perf, and prints wrk's figures and the top symbols.
#
#   bench/profile.sh                 # 50 connections, 10 s
#   CONNECTIONS=200 SECONDS_=10 bench/profile.sh
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/nginx-backend.sh"
connections=${CONNECTIONS:-50}
duration=${SECONDS_:-10}
run=$(mktemp -d /tmp/fulcrum-profile-XXXXXX)
pids=()
trap 'kill ${pids[@]} 2>/dev/null || true' EXIT
bench_backends 18181 18182 18183 18184
sleep 0.5
PORT=18180 WORKERS=1 BACKENDS=$(IFS=,; echo "${backends[*]}") taskset -c 1 "$root/bench/fulcrum-serve.sh" &
pids+=($!)
wait_until_serving http://127.0.0.1:18180/
fulcrum=$(pgrep -n -f "fulcrum serve --config /tmp/fulcrum-bench")
taskset -c 0 wrk -t1 -c"$connections" -d2s http://127.0.0.1:18180/ > /dev/null
perf record -F 2000 -g -p "$fulcrum" -o "$run/perf.data" -- sleep "$duration" 2> /dev/null &
perfpid=$!
taskset -c 0 wrk -t1 -c"$connections" -d"${duration}s" --latency http://127.0.0.1:18180/ | grep -E "Requests/sec|99%|50%"
wait $perfpid
perf report -i "$run/perf.data" --no-children --sort dso,symbol --stdio 2> /dev/null | grep -E "^ +[0-9]" | head -${TOP:-45}
echo "perf data: $run/perf.data"
