#!/usr/bin/env bash
# Who calls swift_retain and swift_release, per proxied keep-alive request in steady state: the
# same load as bench/counts-per-request.sh (1 event loop, 2 nginx nodes, wrk with 20 connections),
# calls sampled with their DWARF call chains (perf loses most of them at this rate, at random),
# attributed to the first caller outside the Swift runtime, and scaled to the calls per request
# that `perf stat` counts in the same window (the nodes count the window's requests). Shows which
# functions a change to the data plane should look at. Needs root (uprobes).
#
#   bench/refcount-callers.sh [BINARY] [TOP]     # default .build/release/fulcrum, 40 rows
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/nginx-backend.sh"
binary=${1:-$root/.build/release/fulcrum}
top=${2:-40}
run=$(mktemp -d /tmp/fulcrum-refcounts-XXXXXX)
pids=()
probes=(probe_libswiftCore:swift_retain probe_libswiftCore:swift_release)
trap 'kill ${pids[@]} 2>/dev/null || true; for probe in "${probes[@]}"; do perf probe -q -d "$probe" 2> /dev/null || true; done' EXIT
swiftcore=$(ldd "$binary" | awk '/libswiftCore.so/ {print $3}')
perf probe -q -x "$swiftcore" swift_retain 2> /dev/null || true
perf probe -q -x "$swiftcore" swift_release 2> /dev/null || true
for port in 18581 18582; do nginx_backend "b$port" "$port" "return 200 \"$bench_body\";"; done
served() {
  local total=0 port
  for port in 18581 18582; do
    total=$((total + $(curl -s "http://127.0.0.1:$port/nginx-status" | awk '/^ *[0-9]+ +[0-9]+ +[0-9]+/ {print $3}')))
  done
  echo $total
}
if [[ $(basename "$binary") == nio-relay ]]; then
  PORT=18591 WORKERS=1 BACKENDS=127.0.0.1:18581,127.0.0.1:18582 "$binary" > /dev/null &
else
  PORT=18591 WORKERS=1 BACKENDS=127.0.0.1:18581,127.0.0.1:18582 FULCRUM_BIN=$binary "$root/bench/fulcrum-serve.sh" &
fi
server=$!
pids+=($server)
wait_until_serving http://127.0.0.1:18591/
wrk -t1 -c20 -d8s http://127.0.0.1:18591/ > "$run/out" &
load=$!
# both perf tools attach disabled (attaching to a busy process takes a while) and are switched on
# and off through their control fifos around the nodes' counts, as in counts-per-request.sh
for tool in stat record; do rm -f "$run/$tool.ctl" "$run/$tool.ack"; mkfifo "$run/$tool.ctl" "$run/$tool.ack"; done
perf stat -x, -D -1 --control "fifo:$run/stat.ctl,$run/stat.ack" -o "$run/stat" \
  -e probe_libswiftCore:swift_retain,probe_libswiftCore:swift_release -p $server -- sleep 7 &
stat=$!
perf record -q -D -1 --control "fifo:$run/record.ctl,$run/record.ack" -o "$run/perf.data" \
  -e probe_libswiftCore:swift_retain -e probe_libswiftCore:swift_release --call-graph dwarf,8192 -p $server -- sleep 7 2> /dev/null &
record=$!
exec 5> "$run/stat.ctl" 6< "$run/stat.ack" 7> "$run/record.ctl" 8< "$run/record.ack"
sleep 2
echo enable >&5; read -r -u 6 _
echo enable >&7; read -r -u 8 _
before=$(served)
sleep 3
requests=$(( $(served) - before - 2 ))
echo disable >&7; read -r -u 8 _
echo disable >&5; read -r -u 6 _
exec 5>&- 6<&- 7>&- 8<&-
wait $stat $record $load
kill $server; wait $server 2> /dev/null || true
retains=$(awk -F, '/swift_retain/ {print $1}' "$run/stat")
releases=$(awk -F, '/swift_release/ {print $1}' "$run/stat")
perf script -i "$run/perf.data" -F event,ip,sym,dso 2> /dev/null | awk -v n="$requests" -v top="$top" -v retains="$retains" -v releases="$releases" '
  # a sample: its event line, then one line per frame, then an empty line
  /probe_libswiftCore:swift_(retain|release)/ { event = ($0 ~ /retain/) ? "retain" : "release"; open = 1; next }
  open && NF == 0 { open = 0; next }
  open && $0 !~ /libswiftCore/ {
    name = $2; for (i = 3; i < NF; i++) name = name " " $i
    sub(/\+0x[0-9a-f]+$/, "", name)
    count[name, event]++; names[name] = 1; total[event]++; open = 0
  }
  END {
    r = retains / n / total["retain"]; l = releases / n / total["release"]
    printf "requests %d; per request: retain %.1f, release %.1f (from %d and %d samples)\n", n, retains / n, releases / n, total["retain"], total["release"]
    printf "%8s %8s  %s\n", "retain", "release", "first caller outside the Swift runtime"
    for (name in names) printf "%8.1f %8.1f  %s\n", count[name, "retain"] * r, count[name, "release"] * l, name | "sort -k1,1nr -k2,2nr | head -" top
  }'
