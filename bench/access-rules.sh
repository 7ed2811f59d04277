#!/usr/bin/env bash
# Requests per second of Fulcrum (1 event loop) with no access rules, with 1,000 access rules
# holding 1,000 CIDRs (500 client_ip rules of two ranges each, 500 path-prefix rules), and with
# the same less five rules that no index holds (regular expressions on the user agent, path and
# query, a header list), as a WAF carries them; every request passes all of them. Interleaved
# rounds; the median of the round-by-round ratios to "none". Uses the backends of ../shared/bench.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$root/../shared/bench}
. "$shared/lib.sh"
bin=${FULCRUM_BIN:-$root/.build/release/fulcrum}
reps=${REPS:-5}
duration=${ACCESS_DURATION:-8}
port=18690
set_layout split
mkdir -p "$RUN_DIR" && gen_backend_conf
trap 'set +e; stop_all' EXIT
start_backends "$BACKEND_CPUS" >/dev/null

config() {  # config none|indexed|waf -> file
  local kind=$1 file=$RUN_DIR/conf/fulcrum-access-$1.yaml i
  {
    echo "listen: [{ address: 127.0.0.1, port: $port }]"
    echo "workers: 1"
    echo "access_log: false"
    echo "services:"
    echo "  bench: { nodes: [{ name: b1, host: 127.0.0.1, port: 18081 }, { name: b2, host: 127.0.0.1, port: 18082 }] }"
    echo "default: { service: bench }"
    if [ "$kind" != none ]; then
      echo "access_rules:"
      for ((i = 0; i < 500; i++)); do
        echo "  - { name: ip$i, deny: { client_ip: [10.$((i / 128)).$((2 * (i % 128))).0/24, '2001:db8:$i::/48'] } }"
      done
      paths=500
      [ "$kind" = waf ] && paths=495
      for ((i = 0; i < paths; i++)); do echo "  - { name: path$i, deny: { path: { prefix: /blocked/$i/ } } }"; done
    fi
    if [ "$kind" = waf ]; then
      echo "  - { name: scanners, deny: { header: { User-Agent: { regex: '(?i)sqlmap|nikto|nessus' } } } }"
      echo "  - { name: dotfiles, deny: { path: { regex: '/\\.(git|env|svn)' } } }"
      echo "  - { name: union, deny: { query: { id: { regex: '(?i)union\\s+select' } } } }"
      echo "  - { name: wp, deny: { path: { regex: '^/wp-(admin|login)' } } }"
      echo "  - { name: country, deny: { header: { X-Country: [XX, YY] } }, action: log }"
    fi
  } > "$file"
  echo "$file"
}

declare -A results p99s
for rep in $(seq 1 "$reps"); do
  for kind in none indexed waf; do
    file=$(config $kind)
    start_server "fulcrum-access" 120 "$PROXY1_CPUS" "$bin" serve --config "$file" --log-level warning >/dev/null
    for _ in $(seq 1 100); do curl -s -o /dev/null -m 1 "http://127.0.0.1:$port/svc/x?id=7" && break; sleep 0.1; done
    timeout 30 taskset -c "$GEN_CPUS" wrk -t1 -c50 -d2s "http://127.0.0.1:$port/svc/x?id=7" >/dev/null 2>&1
    out=$RUN_DIR/access-$kind-$rep.txt
    timeout $((duration + 20)) taskset -c "$GEN_CPUS" wrk -t1 -c50 -d"${duration}s" --latency "http://127.0.0.1:$port/svc/x?id=7" > "$out" 2>&1
    read -r rps p50 p90 p99 err req < <(parse_wrk "$out")
    results[$kind]="${results[$kind]:-} $rps"
    p99s[$kind]="${p99s[$kind]:-} $p99"
    log "access=$kind round=$rep rps=$rps p99=${p99}ms errors=$err"
    stop_server "fulcrum-access"
  done
done
python3 - "${results[none]}" "${results[indexed]}" "${results[waf]}" "${p99s[none]}" "${p99s[indexed]}" "${p99s[waf]}" <<'PY'
import statistics, sys
none, indexed, waf = ([float(x) for x in a.split()] for a in sys.argv[1:4])
p99 = [statistics.median(float(x) for x in a.split()) for a in sys.argv[4:7]]
print("\n| access rules | req/s (median, 1 event loop, 50 connections) | p99 ms | ratio to none, median of rounds (min-max) |\n|---|---|---|---|")
for (name, values, p) in (("none", none, p99[0]), ("1,000 rules, 1,000 CIDRs, all indexed", indexed, p99[1]),
                          ("995 indexed + 4 regular expressions + 1 header list", waf, p99[2])):
    ratios = sorted(v / n for n, v in zip(none, values))
    print(f"| {name} | {statistics.median(values):.0f} | {p:.2f} | {statistics.median(ratios):.3f} ({ratios[0]:.3f}-{ratios[-1]:.3f}) |")
PY
