#!/usr/bin/env bash
# Issue 6 measurement, on loopback with a release build: three nginx nodes of which one answers
# after 10 ms (echo_sleep, from Debian's libnginx-mod-http-echo), behind Fulcrum with round robin
# and then with the latency-aware strategy; wrk -t1 -c50 (CONNECTIONS) for 10 s each, interleaved twice;
# reported: p50/p99 and requests per second of each, and the p99 ratio.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${FULCRUM_BIN:-$root/.build/release/fulcrum}
seconds=${WRK_SECONDS:-10}
connections=${CONNECTIONS:-50}
run=/tmp/fulcrum-latency-aware
rm -rf "$run" && mkdir -p "$run"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT
[ -f /usr/lib/nginx/modules/ngx_http_echo_module.so ] || { echo "needs libnginx-mod-http-echo"; exit 1; }

source "$root/bench/nginx-backend.sh"
nginx_backend fast-1 18741; nginx_backend fast-2 18742; nginx_backend slow 18743 "echo_sleep 0.01; echo slow;"
sleep 0.5

measure() {  # measure STRATEGY -> prints "p50 p99 rps"
  cat > "$run/$1.yaml" <<CONF
listen: [{ address: 127.0.0.1, port: 18740 }]
workers: 1
access_log: false
services:
  s:
    strategy: $1$( [ "$1" = latency ] && [ -n "${DECAY:-}" ] && printf '\n    latency: { decay: %s }' "$DECAY" )
    nodes:
      - { name: fast-1, host: 127.0.0.1, port: 18741 }
      - { name: fast-2, host: 127.0.0.1, port: 18742 }
      - { name: slow, host: 127.0.0.1, port: 18743 }
default: { service: s }
CONF
  timeout 120 "$bin" serve -c "$run/$1.yaml" --log-level warning > "$run/$1.log" 2>&1 &
  local server=$!
  for _ in $(seq 50); do curl -fs -o /dev/null http://127.0.0.1:18740/ && break; sleep 0.1; done
  wrk -t1 -c$connections -d${seconds}s --latency http://127.0.0.1:18740/ > "$run/$1.wrk" 2>&1
  kill $server; wait $server 2>/dev/null
  local p50 p99 rps
  p50=$(awk '$1 == "50%" { print $2 }' "$run/$1.wrk")
  p99=$(awk '$1 == "99%" { print $2 }' "$run/$1.wrk")
  rps=$(awk '$1 == "Requests/sec:" { print $2 }' "$run/$1.wrk")
  echo "$p50 $p99 $rps"
}
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us/, "", v); print v / 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v); print v } else { sub(/s/, "", v); print v * 1000 } }'; }

echo "| round | strategy | p50 | p99 | req/s |"
echo "|---|---|---|---|---|"
for round in 1 2; do
  for strategy in round_robin latency; do
    read -r p50 p99 rps <<< "$(measure $strategy)"
    echo "| $round | $strategy | $p50 | $p99 | $rps |"
    eval "p99_${strategy}_$round=$(to_ms "$p99")"
  done
done
awk -v a="$p99_latency_1" -v b="$p99_round_robin_1" -v c="$p99_latency_2" -v d="$p99_round_robin_2" \
  'BEGIN { printf "p99 latency-aware / round robin: round 1 %.3f, round 2 %.3f\n", a / b, c / d }'
