#!/usr/bin/env bash
# Issue 3 measurements, on loopback with a release build:
#  1. a node killed (SIGKILL) under wrk load: failed requests seen by clients, and when the node
#     was marked down (probes every 1 s, unhealthy after 2 failures; passive ejection after 3);
#  2. the throughput cost of active + passive health and a token-bucket rate limit (never reached)
#     on the route, against the plain proxy, in one run.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${FULCRUM_BIN:-$root/.build/release/fulcrum}
run=/tmp/fulcrum-protection
rm -rf "$run" && mkdir -p "$run"
pids=()
cleanup() {
  for name in node-a node-b; do [ -f "$run/$name/nginx.pid" ] && kill_backend "$name" 2>/dev/null; done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
}
trap cleanup EXIT

source "$root/bench/nginx-backend.sh"
kill_backend() {  # kill_backend NAME: SIGKILL the master and its workers, as a crash would
  local master
  master=$(cat "$run/$1/nginx.pid")
  pkill -9 -P "$master"; kill -9 "$master"
}
wait_up() { for _ in $(seq 1 100); do curl -s -o /dev/null -m 1 "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; return 1; }

nginx_backend node-a 18711; nginx_backend node-b 18712
wait_up 18711 && wait_up 18712 || { echo "backends did not start"; exit 1; }

protected="
    health_check: { type: http, path: /, interval: 1s, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 2 }
    passive_health: { consecutive_failures: 3 }"
write_config() {  # write_config FILE PORT EXTRA_SERVICE EXTRA_ROUTE
  cat > "$1" <<CONF
listen: [{ address: 127.0.0.1, port: $2 }]
workers: 1
access_log: false
services:
  s:$3
    nodes: [{ name: a, host: 127.0.0.1, port: 18711 }, { name: b, host: 127.0.0.1, port: 18712 }]
routes:
  - { name: all, match: { path_prefix: / }, service: s$4 }
CONF
}

echo "## 1. node killed under load"
write_config "$run/kill.yaml" 18720 "$protected" ""
timeout 60 "$bin" serve --config "$run/kill.yaml" > "$run/kill.log" 2>&1 &
pids+=($!)
wait_up 18720
timeout 30 wrk -t1 -c50 -d12s http://127.0.0.1:18720/ > "$run/wrk-kill.txt" 2>&1 &
wrk=$!
sleep 4
killed_at=$(date +%s.%N)
kill_backend node-b
sleep 0.2
curl -s -m 1 -o /dev/null http://127.0.0.1:18712/ && echo "node b still answers: the kill failed" && exit 1
wait $wrk
grep -E "requests in|Requests/sec|Non-2xx|Socket errors" "$run/wrk-kill.txt"
down_line=$(grep -m1 "node down" "$run/kill.log")
eject_line=$(grep -m1 "node ejected" "$run/kill.log")
echo "first 'node down' log line: ${down_line:-none}"
echo "first 'node ejected' log line: ${eject_line:-none}"
python3 - "$killed_at" "$down_line" <<'PY'
import sys, datetime
killed = float(sys.argv[1]); line = sys.argv[2]
if line:
    stamp = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S%z").timestamp()
    print(f"marked down {stamp - killed:+.1f} s after the kill (log time has 1 s resolution)")
PY

echo
echo "## 2. cost of health checks + a rate limit on the route (1 event loop, 50 connections)"
backend node-b 18712; wait_up 18712
write_config "$run/plain.yaml" 18721 "" ""
write_config "$run/guarded.yaml" 18722 "$protected" ", rate_limit: { rate: 1000000, burst: 1000000, key: client_ip }"
for round in 1 2 3; do
  for variant in plain guarded; do
    port=$([ $variant = plain ] && echo 18721 || echo 18722)
    timeout 40 taskset -c 1 "$bin" serve --config "$run/$variant.yaml" --log-level warning > /dev/null 2>&1 &
    server=$!
    wait_up $port
    taskset -c 0 wrk -t1 -c50 -d2s "http://127.0.0.1:$port/" > /dev/null 2>&1
    taskset -c 0 wrk -t1 -c50 -d8s "http://127.0.0.1:$port/" > "$run/wrk-$variant-$round.txt"
    grep -q "Non-2xx" "$run/wrk-$variant-$round.txt" && { echo "$variant round $round had failed responses"; exit 1; }
    rps=$(awk '/Requests\/sec/ {print $2}' "$run/wrk-$variant-$round.txt")
    echo "$variant round $round: $rps req/s"
    echo "$variant $rps" >> "$run/cost.txt"
    kill $server; wait $server 2>/dev/null
  done
done
python3 - "$run/cost.txt" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
plain = statistics.median(float(r[1]) for r in rows if r[0] == "plain")
guarded = statistics.median(float(r[1]) for r in rows if r[0] == "guarded")
print(f"median plain {plain:.0f} req/s, with health checks + rate limit {guarded:.0f} req/s: ratio {guarded / plain:.3f}")
PY
