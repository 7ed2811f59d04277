#!/usr/bin/env bash
# A 1 MiB file served by Fulcrum's static route (1 event loop) and by nginx (1 worker, sendfile
# off and on) from the same directory: req/s and p99 with wrk, 20 connections, interleaved
# rounds, medians. Fulcrum reads files on NIO's thread pool and writes them through the
# connection, as it must for TLS and HTTP/2; nginx with sendfile is the kernel's floor.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$root/../shared/bench}
. "$shared/lib.sh"
bin=${FULCRUM_BIN:-$root/.build/release/fulcrum}
reps=${REPS:-5}
duration=${STATIC_DURATION:-8}
port=18695
set_layout split
mkdir -p "$RUN_DIR/site" "$RUN_DIR/conf" "$RUN_DIR/nginx-static/logs"
head -c 1048576 /dev/urandom > "$RUN_DIR/site/file.bin"
trap 'set +e; stop_all' EXIT

cat > "$RUN_DIR/conf/fulcrum-static.yaml" <<YAML
listen: [{ address: 127.0.0.1, port: $port }]
workers: 1
access_log: false
services: { unused: { nodes: [{ name: n, host: 127.0.0.1, port: 9 }] } }
routes:
  - { name: site, match: { path_prefix: /static/ }, strip_prefix: /static, static: { root: '$RUN_DIR/site' } }
YAML
for sendfile in off on; do
  cat > "$RUN_DIR/conf/nginx-static-$sendfile.conf" <<CONF
worker_processes 1;
pid $RUN_DIR/nginx-static/nginx-$sendfile.pid;
error_log $RUN_DIR/nginx-static/logs/error.log warn;
events { worker_connections 8192; }
http {
  access_log off; sendfile $sendfile; keepalive_requests 10000000;
  default_type application/octet-stream;
  server { listen 127.0.0.1:$port; location /static/ { alias $RUN_DIR/site/; } }
}
CONF
done

declare -A results p99s
for rep in $(seq 1 "$reps"); do
  for target in fulcrum nginx-sendfile-off nginx-sendfile-on; do
    case $target in
      fulcrum) start_server static "$((duration + 60))" "$PROXY1_CPUS" "$bin" serve --config "$RUN_DIR/conf/fulcrum-static.yaml" --log-level warning >/dev/null ;;
      nginx-sendfile-*) start_server static "$((duration + 60))" "$PROXY1_CPUS" nginx -g 'daemon off;' -c "$RUN_DIR/conf/nginx-static-${target##*-}.conf" >/dev/null ;;
    esac
    for _ in $(seq 1 100); do curl -s -o /dev/null -m 1 "http://127.0.0.1:$port/static/file.bin" && break; sleep 0.1; done
    size=$(curl -s "http://127.0.0.1:$port/static/file.bin" | wc -c)
    [ "$size" = 1048576 ] || { log "$target served $size bytes"; exit 1; }
    out=$RUN_DIR/static-$target-$rep.txt
    timeout $((duration + 20)) taskset -c "$GEN_CPUS" wrk -t1 -c20 -d"${duration}s" --latency "http://127.0.0.1:$port/static/file.bin" > "$out" 2>&1
    read -r rps p50 p90 p99 err req < <(parse_wrk "$out")
    results[$target]="${results[$target]:-} $rps"
    p99s[$target]="${p99s[$target]:-} $p99"
    log "static=$target round=$rep rps=$rps p99=${p99}ms errors=$err"
    stop_server static
  done
done
python3 - "${results[fulcrum]}" "${results[nginx-sendfile-off]}" "${results[nginx-sendfile-on]}" "${p99s[fulcrum]}" "${p99s[nginx-sendfile-off]}" "${p99s[nginx-sendfile-on]}" <<'PY'
import statistics, sys
f, off, on = ([float(x) for x in a.split()] for a in sys.argv[1:4])
pf, poff, pon = (statistics.median(float(x) for x in a.split()) for a in sys.argv[4:7])
print("\n| 1 MiB file, 20 connections | req/s (median) | p99 ms (median) | Fulcrum/target, median of rounds (min-max) |\n|---|---|---|---|")
for name, values, p99 in (("Fulcrum static route", f, pf), ("nginx, sendfile off", off, poff), ("nginx, sendfile on", on, pon)):
    ratios = sorted(a / b for a, b in zip(f, values))
    print(f"| {name} | {statistics.median(values):.0f} | {p99:.2f} | {statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f}) |")
PY
