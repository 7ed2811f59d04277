#!/usr/bin/env bash
# Issue 4 measurement, on loopback with a release build: 100 configuration changes through the
# admin API while wrk loads the data plane.
#  - apply latency: from the admin API's 200 to the data plane answering with the new configuration
#    (a route pinned to node a or b, flipped by each change, probed on two keep-alive connections);
#  - failed requests: wrk's socket errors and non-2xx responses during the changes.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${FULCRUM_BIN:-$root/.build/release/fulcrum}
changes=${CHANGES:-100}
run=/tmp/fulcrum-config-changes
rm -rf "$run" && mkdir -p "$run"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT

source "$root/bench/nginx-backend.sh"
nginx_backend a 18731; nginx_backend b 18732
token=fulcrum_bench_$RANDOM$RANDOM$RANDOM$RANDOM
cat > "$run/fulcrum.yaml" <<CONF
listen: [{ address: 127.0.0.1, port: 18730 }]
access_log: false
services:
  s:
    nodes: [{ name: a, host: 127.0.0.1, port: 18731 }, { name: b, host: 127.0.0.1, port: 18732 }]
routes:
  - { name: probe, match: { path_prefix: /probe/ }, service: s, node: a }
default: { service: s }
CONF
FULCRUM_ADMIN_TOKEN=$token timeout 300 "$bin" serve -c "$run/fulcrum.yaml" --store "$run/fulcrum.db" \
  --admin 127.0.0.1:18739 --log-level warning > "$run/fulcrum.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs -o /dev/null http://127.0.0.1:18739/api/v1/health && break; sleep 0.1; done

seconds=${WRK_SECONDS:-30}
wrk -t1 -c50 -d${seconds}s http://127.0.0.1:18730/ > "$run/wrk.txt" 2>&1 &
wrk_pid=$!
sleep 2
python3 - "$token" "$changes" <<'PY'
import http.client, json, sys, time
token, changes = sys.argv[1], int(sys.argv[2])
admin = http.client.HTTPConnection("127.0.0.1", 18739)
probes = [http.client.HTTPConnection("127.0.0.1", 18730) for _ in range(2)]
def api(method, path, body=None, version=None):
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    if version is not None: headers["If-Match"] = '"%d"' % version
    admin.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    reply = admin.getresponse(); data = reply.read()
    return reply.status, json.loads(data)
def backend(connection):
    connection.request("GET", "/probe/x"); reply = connection.getresponse(); reply.read()
    return reply.getheader("X-Backend")
status, config = api("GET", "/api/v1/config")
version = config["number"]
latencies, polls = [], 0
for i in range(changes):
    node = "b" if i % 2 == 0 else "a"
    status, reply = api("PATCH", "/api/v1/routes/probe?message=bench", {"node": node}, version)
    acknowledged = time.perf_counter()
    assert status == 200, (status, reply)
    version = reply["version"]["number"]
    pending = list(probes)
    while pending:
        polls += 1
        pending = [p for p in pending if backend(p) != node]
    latencies.append((time.perf_counter() - acknowledged) * 1000)
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
print("changes: %d, versions now %d" % (changes, version))
print("apply latency (API 200 -> both probe connections see the new node): p50 %.2f ms, p99 %.2f ms, max %.2f ms; probes sent %d"
      % (pick(0.5), pick(0.99), latencies[-1], polls))
PY
wait $wrk_pid
echo "wrk during the changes (${seconds}s, 50 connections):"
grep -E "Requests/sec|requests in|Non-2xx|Socket errors|Latency" "$run/wrk.txt"
grep -q -E "Non-2xx|Socket errors" "$run/wrk.txt" || echo "  no socket errors, no non-2xx responses"
