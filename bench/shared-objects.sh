#!/usr/bin/env bash
# Counts, per request, the reference-count operations on objects that both event loops touch
# (2 loops, 2 nginx backends, wrk with 20 connections; uprobes on swift_retain/swift_release with
# the object and its type). Such an object's cache line moves between the CPU cores on every
# operation. Usage: bench/shared-objects.sh BINARY
# Not every row costs an atomic write: 0x0 and values with the top bit set (small strings) return
# at once, and immortal objects (Swift's empty array storage in libswiftCore's data, statically
# initialised singletons such as SwiftNIO's HeadChannelHandler) are only read.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/nginx-backend.sh"
run=$(mktemp -d /tmp/fulcrum-shared-XXXXXX)
pids=()
sc=/opt/swift/usr/lib/swift/linux/libswiftCore.so
trap 'kill ${pids[@]} 2>/dev/null || true; perf probe -q -d "probe_libswiftCore:sr*" 2>/dev/null || true' EXIT
perf probe -q -x $sc -a 'srt=swift_retain obj=%di:x64 isa=+0(%di):x64' 2>/dev/null || true
perf probe -q -x $sc -a 'srl=swift_release obj=%di:x64 isa=+0(%di):x64' 2>/dev/null || true
for port in 18581 18582; do nginx_backend "b$port" "$port" "return 200 \"$bench_body\";"; done
PORT=18591 WORKERS=2 BACKENDS=127.0.0.1:18581,127.0.0.1:18582 FULCRUM_BIN=$1 "$root/bench/fulcrum-serve.sh" &
pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:18591/ && break; sleep 0.1; done
fp=$(pgrep -n -f "serve --config /tmp/fulcrum-bench")
wrk -t2 -c20 -d1s http://127.0.0.1:18591/ > /dev/null
cp /proc/$fp/maps $run/maps
perf record -e probe_libswiftCore:srt,probe_libswiftCore:srl -p $fp -o $run/perf.data -- sleep 2.5 2>/dev/null &
sp=$!
sleep 0.3
wrk_requests=$(wrk -t2 -c20 -d2s http://127.0.0.1:18591/ | awk '/requests in/ {print $1}')
wait $sp
python3 "$root/bench/shared-objects.py" "$run" "$wrk_requests" "$(realpath "$1")"
