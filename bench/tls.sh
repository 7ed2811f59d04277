#!/usr/bin/env bash
# TLS at the edge: Fulcrum beside nginx and HAProxy (Debian's, OpenSSL 3.0), each terminating TLS
# with the same ECDSA P-256 certificate and proxying round robin to the four nginx backends of
# ../shared/bench (upstream keep-alive on, logs off), 1 and 2 workers, layout "split" (load on CPU 0,
# 1-worker proxies and backends on CPU 1). Per target and round:
#   ka50, ka200   wrk over HTTPS keep-alive, 50 and 200 connections
#   hs50          wrk with "Connection: close": a new connection and a full handshake per request
#   h2            h2load, 50 connections x 10 concurrent streams
# Rounds are interleaved (every target once per round); the table gives each target's median
# req/s and p99 and the median of its round-by-round ratios to nginx (min-max).
#
#   bench/tls.sh                       # 3 rounds of 5 s runs
#   REPS=5 DURATION=10 bench/tls.sh
#   TESTS=h2 bench/tls.sh              # only the HTTP/2 runs
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$root/../shared/bench}
export RUN_DIR=/tmp/tls-bench-run
. "$shared/lib.sh"
REPS=${REPS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
OUT=${OUT:-/tmp/tls-bench-results}
TESTS=${TESTS:-"ka50 ka200 hs50 h2"}   # a subset, e.g. TESTS=h2
for tool in wrk h2load nginx haproxy; do
  command -v $tool >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk nghttp2-client nginx-light haproxy >/dev/null; break; }
done
[ -x "$root/.build/release/fulcrum" ] || (cd "$root" && swift build -c release --product fulcrum >/dev/null)
set_layout split
rm -rf "$RUN_DIR" "$OUT"; mkdir -p "$RUN_DIR" "$OUT" "$CONF_DIR"
declare -A TLS_PORT=([nginx]=18443 [haproxy]=18444 [fulcrum]=18445)

cert=$RUN_DIR/site.pem key=$RUN_DIR/site.key
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$key" -out "$cert" 2>/dev/null
cat "$cert" "$key" > "$RUN_DIR/site-haproxy.pem"

gen_backend_conf
for w in 1 2; do
  ups=""; for p in $BACKEND_PORTS; do ups+="server 127.0.0.1:$p; "; done
  mkdir -p "$RUN_DIR/nginx-w$w"
  cat > "$CONF_DIR/nginx-tls-w$w.conf" <<EOF
worker_processes $w;
pid $RUN_DIR/nginx-w$w/nginx.pid;
error_log $RUN_DIR/nginx-w$w/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000; keepalive_timeout 120s;
  client_body_temp_path $RUN_DIR/nginx-w$w/tmp; proxy_temp_path $RUN_DIR/nginx-w$w/tmp-proxy;
  upstream be { $ups keepalive 1024; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:${TLS_PORT[nginx]} ssl http2;
    ssl_certificate $cert; ssl_certificate_key $key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
  {
    echo "global"; echo "  nbthread $w"; echo "  maxconn 8000"; echo "  ssl-default-bind-options ssl-min-ver TLSv1.2"
    echo "defaults"; echo "  mode http"; echo "  timeout connect 5s"; echo "  timeout client 60s"; echo "  timeout server 60s"
    echo "  option http-keep-alive"; echo "  http-reuse always"
    echo "frontend fe"; echo "  bind 127.0.0.1:${TLS_PORT[haproxy]} ssl crt $RUN_DIR/site-haproxy.pem alpn h2,http/1.1"
    echo "  default_backend be"; echo "backend be"; echo "  balance roundrobin"
    i=1; for p in $BACKEND_PORTS; do echo "  server b$i 127.0.0.1:$p"; i=$((i+1)); done
  } > "$CONF_DIR/haproxy-tls-w$w.cfg"
  {
    echo "listen: [{ address: 127.0.0.1, port: ${TLS_PORT[fulcrum]}, tls: { certificates: [{ cert: $cert, key: $key }], default_certificate: $cert } }]"
    echo "workers: $w"; echo "access_log: false"
    echo "services: { bench: { nodes: ["
    i=0; for p in $BACKEND_PORTS; do echo "  { name: b$i, host: 127.0.0.1, port: $p },"; i=$((i+1)); done
    echo "] } }"; echo "default: { service: bench }"
  } > "$CONF_DIR/fulcrum-tls-w$w.yaml"
done

start_tls_proxy() {  # TARGET WORKERS CPUS
  local t=$1 w=$2 cpus=$3
  case $t in
    nginx) start_server "$t-w$w" "$SERVER_TTL" "$cpus" nginx -p "$RUN_DIR/nginx-w$w" -c "$CONF_DIR/nginx-tls-w$w.conf" -g 'daemon off;' ;;
    haproxy) start_server "$t-w$w" "$SERVER_TTL" "$cpus" haproxy -db -f "$CONF_DIR/haproxy-tls-w$w.cfg" ;;
    fulcrum) start_server "$t-w$w" "$SERVER_TTL" "$cpus" "$root/.build/release/fulcrum" serve -c "$CONF_DIR/fulcrum-tls-w$w.yaml" --log-level warning ;;
  esac
}

wait_tls() {
  for _ in $(seq 100); do curl -sk -o /dev/null -m 1 "https://127.0.0.1:$1/" && return 0; sleep 0.1; done
  return 1
}

# one measured run: TEST PORT FILE
measure() {
  local test=$1 port=$2 file=$3 seconds=$4
  case $test in
    ka50)  timeout $((seconds + 20)) taskset -c "$GEN_CPUS" wrk -t1 -c50 -d"${seconds}s" --latency "https://127.0.0.1:$port/" > "$file" 2>&1 ;;
    ka200) timeout $((seconds + 20)) taskset -c "$GEN_CPUS" wrk -t1 -c200 -d"${seconds}s" --latency "https://127.0.0.1:$port/" > "$file" 2>&1 ;;
    hs50)  timeout $((seconds + 20)) taskset -c "$GEN_CPUS" wrk -t1 -c50 -d"${seconds}s" --latency -H "Connection: close" "https://127.0.0.1:$port/" > "$file" 2>&1 ;;
    h2)    timeout $((seconds + 20)) taskset -c "$GEN_CPUS" h2load -c50 -m10 -D "$seconds" "https://127.0.0.1:$port/" > "$file" 2>&1 ;;
  esac
}

# rps p99_ms errors from a run's output (h2load: its mean time per request, as it gives no p99;
# with -D it counts the requests cut off at the end as failed, so errors are errored + timed out
# + 4xx/5xx responses)
parse() {
  case $1 in
    h2) awk '/^finished in/ { gsub(",", ""); rps=$4 } /^requests:/ { err+=$12 + $14 } /^status codes:/ { err+=$7 + $9 } /^time for request:/ { mean=$6 }
             END { printf "%s %s %d\n", rps, "mean:" mean, err }' "$2" ;;
    *) read -r rps p50 p90 p99 err req < <(parse_wrk "$2"); echo "$rps $p99 $err" ;;
  esac
}

csv=$OUT/results.csv
echo "round,test,target,workers,rps,p99_ms,errors" > "$csv"
trap 'stop_all' EXIT
start_backends "$BACKEND_CPUS" >/dev/null
for round in $(seq 1 "$REPS"); do
  for w in 1 2; do
    for t in nginx haproxy fulcrum; do
      if [ "$w" = 2 ]; then cpus=$PROXY2_CPUS; else cpus=$PROXY1_CPUS; fi
      start_tls_proxy "$t" "$w" "$cpus" >/dev/null
      wait_tls "${TLS_PORT[$t]}" || { log "$t-w$w did not come up"; stop_server "$t-w$w"; continue; }
      for test in $TESTS; do
        measure "$test" "${TLS_PORT[$t]}" /dev/null "$WARMUP"
        file=$OUT/r$round-$test-$t-w$w.txt
        measure "$test" "${TLS_PORT[$t]}" "$file" "$DURATION"
        read -r rps p99 err < <(parse "$test" "$file")
        echo "$round,$test,$t,$w,$rps,$p99,$err" >> "$csv"
        log "r$round $test $t-w$w rps=$rps p99=$p99 err=$err"
      done
      stop_server "$t-w$w"
    done
  done
done

python3 - "$csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
by = {}
for r in rows:
    by.setdefault((r["test"], r["workers"], r["target"]), {})[r["round"]] = r
tests = {"ka50": "HTTPS keep-alive, 50 conns", "ka200": "HTTPS keep-alive, 200 conns",
         "hs50": "full handshakes, 50 conns", "h2": "HTTP/2 h2load 50x10"}
print("| test | loops | target | req/s (median) | p99 ms (median; h2: mean) | ratio to nginx: median (min-max) | errors |")
print("|---|---|---|---|---|---|---|")
for test, label in tests.items():
    for w in ("1", "2"):
        base = by.get((test, w, "nginx"), {})
        for target in ("nginx", "haproxy", "fulcrum"):
            runs = by.get((test, w, target), {})
            if not runs: continue
            rps = statistics.median(float(r["rps"] or 0) for r in runs.values())
            p99s = [r["p99_ms"] for r in runs.values()]
            if p99s[0].startswith("mean:"):
                values = [float(p[5:].rstrip("ms")) * (0.001 if p.endswith("us") else 1) for p in p99s if len(p) > 5]
                p99 = f"{statistics.median(values):.2f}" if values else "-"
            else:
                p99 = f"{statistics.median(float(p) for p in p99s):.2f}"
            ratios = [float(runs[k]["rps"] or 0) / float(base[k]["rps"]) for k in runs if k in base and float(base[k]["rps"] or 0) > 0]
            ratio = f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})" if ratios else "-"
            errors = sum(int(r["errors"] or 0) for r in runs.values())
            print(f"| {label} | {w} | {target} | {rps:,.0f} | {p99} | {ratio} | {errors} |")
PY
