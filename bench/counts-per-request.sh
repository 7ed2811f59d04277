#!/usr/bin/env bash
# Counts, per proxied request, the calls to malloc, swift_retain, swift_release and
# swift_beginAccess (run-time exclusivity checks), and the system calls, of one or more Fulcrum
# binaries (1 event loop, 2 nginx backends, wrk with 20 connections), with uprobes, the syscall
# tracepoint and `perf stat`. Unlike req/s and CPU time on a shared machine, these counts hardly
# move between runs, so they show whether a change to the data plane did less work. Needs root
# (uprobes); the probes it defines are removed when it ends.
#
#   bench/counts-per-request.sh                         # .build/release/fulcrum
#   bench/counts-per-request.sh /tmp/old-fulcrum .build/release/fulcrum
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/nginx-backend.sh"
binaries=("$@")
[[ ${#binaries[@]} -gt 0 ]] || binaries=("$root/.build/release/fulcrum")
run=$(mktemp -d /tmp/fulcrum-counts-XXXXXX)
pids=()
probes=(probe_libc:malloc probe_libswiftCore:swift_retain probe_libswiftCore:swift_release probe_libswiftCore:swift_beginAccess)
trap 'kill ${pids[@]} 2>/dev/null || true; for probe in "${probes[@]}"; do perf probe -q -d "$probe" 2> /dev/null || true; done' EXIT
libc=$(ldconfig -p | awk '/libc.so.6 .*x86-64/ {print $NF; exit}')
swiftcore=$(ldd "${binaries[0]}" | awk '/libswiftCore.so/ {print $3}')
perf probe -q -x "$libc" malloc 2> /dev/null || true
perf probe -q -x "$swiftcore" swift_retain 2> /dev/null || true
perf probe -q -x "$swiftcore" swift_release 2> /dev/null || true
perf probe -q -x "$swiftcore" swift_beginAccess 2> /dev/null || true
for port in 18581 18582; do nginx_backend "b$port" "$port" "return 200 \"$bench_body\";"; done
printf '%-10s %8s %8s %8s %8s %8s  %s\n' "" malloc retain release access syscall binary
for index in "${!binaries[@]}"; do
  PORT=18591 WORKERS=1 BACKENDS=127.0.0.1:18581,127.0.0.1:18582 FULCRUM_BIN=${binaries[$index]} "$root/bench/fulcrum-serve.sh" &
  server=$!
  pids+=($server)
  wait_until_serving http://127.0.0.1:18591/
  wrk -t1 -c20 -d1s http://127.0.0.1:18591/ > /dev/null
  perf stat -x, -e "$(IFS=,; echo "${probes[*]}"),raw_syscalls:sys_enter" \
    -p $server -o "$run/stat" -- sleep 4 &
  stat=$!
  sleep 0.2
  wrk -t1 -c20 -d3s http://127.0.0.1:18591/ > "$run/out"
  wait $stat
  requests=$(awk '/requests in/ {print $1}' "$run/out")
  awk -F, -v n="$requests" -v label="fulcrum-$((index + 1))" -v bin="${binaries[$index]}" '
    /probe_libc:malloc/ {m = $1 / n} /swift_retain/ {r = $1 / n} /swift_release/ {l = $1 / n}
    /swift_beginAccess/ {a = $1 / n} /raw_syscalls:sys_enter/ {c = $1 / n}
    END {printf "%-10s %8.1f %8.1f %8.1f %8.1f %8.2f  %s\n", label, m, r, l, a, c, bin}' "$run/stat"
  kill $server; wait $server 2> /dev/null || true
done
