#!/usr/bin/env bash
# CPU time per request of the proxy, split into user space and kernel, for nginx (1 worker) and
# one or more Fulcrum binaries (1 event loop): proxy and 4 nginx backends on CPU 1, wrk on CPU 0,
# ROUNDS interleaved rounds, medians. The proxy's utime and stime come from /proc/PID/stat before
# and after each wrk run. Both proxies make the same system calls per request, so the kernel
# figures should match and the user figures show where the difference lies. The context switches
# per request come from each thread's /proc status: "waits" when the proxy blocked (in epoll_wait,
# with nothing to do), "preempted" when the CPU was taken from it (in this layout mostly by the
# backends its writes wake on the same CPU).
#
# The proxy shares CPU 1 with the backends, so what it makes them do counts too: their CPU time
# and how often they went to sleep per request (fewer requests per wake-up cost them more), and
# how often wrk, on CPU 0, went to sleep per request (each sleep needs a wake-up from the other
# CPU; counted by GNU time, Debian package `time`).
#
#   bench/cpu-per-request.sh                          # nginx vs .build/release/fulcrum
#   ROUNDS=8 CONNECTIONS=200 bench/cpu-per-request.sh /tmp/old-fulcrum .build/release/fulcrum
#   RELAY=1 bench/cpu-per-request.sh                  # also SwiftNIO's own floor (bench/nio-relay)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/nginx-backend.sh"
connections=${CONNECTIONS:-50}
rounds=${ROUNDS:-5}
duration=${WRK_SECONDS:-8}
binaries=("$@")
[[ -x /usr/bin/time ]] || { echo "cpu-per-request.sh: needs GNU time (apt-get install time)" >&2; exit 1; }
[[ ${#binaries[@]} -gt 0 ]] || binaries=("$root/.build/release/fulcrum")
run=$(mktemp -d /tmp/fulcrum-cpu-XXXXXX)
relay=""
if [[ -n ${RELAY:-} ]]; then
  (cd "$root/bench/nio-relay" && swift build -c release > /dev/null)
  relay="$root/bench/nio-relay/.build/release/nio-relay"
fi
pids=()
trap 'kill ${pids[@]} 2>/dev/null || true' EXIT
bench_backends 18481 18482 18483 18484
sleep 0.5
backend_workers=$(for pid in "${pids[@]}"; do pgrep -P "$(pgrep -P "$pid")"; done)
mkdir -p "$run/proxy/logs"
cat > "$run/proxy/nginx.conf" <<CONF
worker_processes 1;
pid $run/proxy/nginx.pid;
error_log $run/proxy/logs/error.log warn;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 10000000; keepalive_timeout 120s;
  client_body_temp_path $run/proxy/tmp; proxy_temp_path $run/proxy/tmp-proxy;
  upstream be { $(printf 'server %s; ' "${backends[@]}") keepalive 1024; keepalive_requests 10000000; }
  server { listen 127.0.0.1:18490; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
usage() {  # utime and stime (clock ticks), voluntary and involuntary context switches, summed over the given pids
  local user=0 system=0 waits=0 preempted=0 u s status
  for pid in "$@"; do
    read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat")
    user=$((user + u)); system=$((system + s))
    for status in /proc/"$pid"/task/*/status; do
      read -r u s < <(awk '/^voluntary_ctxt_switches/ {v = $2} /^nonvoluntary_ctxt_switches/ {n = $2} END {print v, n}' "$status")
      waits=$((waits + u)); preempted=$((preempted + s))
    done
  done
  echo "$user $system $waits $preempted"
}
measure() {  # label url pid...
  local label=$1 url=$2 u0 s0 w0 p0 u1 s1 w1 p1 bu0 bs0 bw0 bu1 bs1 bw1 _
  shift 2
  taskset -c 0 wrk -t1 -c"$connections" -d2s "$url" > /dev/null
  read -r u0 s0 w0 p0 < <(usage "$@")
  read -r bu0 bs0 bw0 _ < <(usage $backend_workers)
  taskset -c 0 /usr/bin/time -f %w -o "$run/wrk-waits" wrk -t1 -c"$connections" -d"${duration}s" --latency "$url" > "$run/out"
  read -r u1 s1 w1 p1 < <(usage "$@")
  read -r bu1 bs1 bw1 _ < <(usage $backend_workers)
  local requests rps
  requests=$(awk '/requests in/ {print $1}' "$run/out")
  rps=$(awk '/Requests\/sec/ {print $2}' "$run/out")
  echo "$label $rps $requests $((u1 - u0)) $((s1 - s0)) $((w1 - w0)) $((p1 - p0))" \
    "$((bu1 + bs1 - bu0 - bs0)) $((bw1 - bw0)) $(tail -1 "$run/wrk-waits")" | tee -a "$run/results"
}
for round in $(seq "$rounds"); do
  taskset -c 1 nginx -p "$run/proxy" -c "$run/proxy/nginx.conf" -g 'daemon off;' > /dev/null 2>&1 &
  master=$!
  sleep 0.5
  measure nginx http://127.0.0.1:18490/ $master $(pgrep -P $master)
  kill $master; wait $master 2> /dev/null || true
  if [[ -n $relay ]]; then
    PORT=18492 BACKENDS=$(IFS=,; echo "${backends[*]}") taskset -c 1 "$relay" > /dev/null &
    server=$!
    wait_until_serving http://127.0.0.1:18492/
    measure nio-relay http://127.0.0.1:18492/ $server
    kill $server; wait $server 2> /dev/null || true
  fi
  for index in "${!binaries[@]}"; do
    PORT=18491 WORKERS=1 BACKENDS=$(IFS=,; echo "${backends[*]}") FULCRUM_BIN=${binaries[$index]} \
      taskset -c 1 "$root/bench/fulcrum-serve.sh" &
    server=$!
    wait_until_serving http://127.0.0.1:18491/
    measure "fulcrum-$((index + 1))" http://127.0.0.1:18491/ $server
    kill $server; wait $server 2> /dev/null || true
  done
done
python3 - "$run/results" "$(getconf CLK_TCK)" "${binaries[@]}" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
tick_us = 1e6 / int(sys.argv[2])
names = {f"fulcrum-{i + 1}": path for i, path in enumerate(sys.argv[3:])}
print(f"{'proxy':<12} {'req/s':>8} {'user us/req':>12} {'kernel us/req':>14} {'total us/req':>13} {'waits/req':>10} {'preempted/req':>14}"
      f" {'backends us/req':>16} {'backend sleeps/req':>19} {'wrk sleeps/req':>15}")
labels = ["nginx"] + (["nio-relay"] if any(r[0] == "nio-relay" for r in rows) else []) + list(names)
for label in labels:
    mine = [r for r in rows if r[0] == label]
    rps = statistics.median(float(r[1]) for r in mine)
    user = statistics.median(int(r[3]) * tick_us / int(r[2]) for r in mine)
    kernel = statistics.median(int(r[4]) * tick_us / int(r[2]) for r in mine)
    total = statistics.median((int(r[3]) + int(r[4])) * tick_us / int(r[2]) for r in mine)
    waits = statistics.median(int(r[5]) / int(r[2]) for r in mine)
    preempted = statistics.median(int(r[6]) / int(r[2]) for r in mine)
    backends = statistics.median(int(r[7]) * tick_us / int(r[2]) for r in mine)
    backend_sleeps = statistics.median(int(r[8]) / int(r[2]) for r in mine)
    wrk_sleeps = statistics.median(int(r[9]) / int(r[2]) for r in mine)
    print(f"{label:<12} {rps:>8,.0f} {user:>12.1f} {kernel:>14.1f} {total:>13.1f} {waits:>10.3f} {preempted:>14.3f}"
          f" {backends:>16.1f} {backend_sleeps:>19.3f} {wrk_sleeps:>15.3f}  {names.get(label, '')}")
PY
