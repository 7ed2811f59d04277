#!/usr/bin/env bash
# Counts, per proxied request in steady state, the calls to malloc, swift_retain, swift_release and
# swift_beginAccess (run-time exclusivity checks), and the system calls (all, and all but
# epoll_wait), of one or more Fulcrum binaries (1 event loop, 2 nginx backends, wrk with 20
# keep-alive connections), with uprobes, the syscall tracepoints and `perf stat`. The window is 3 s
# in the middle of an 8 s load, and its requests are counted by the nodes (nginx's stub_status), so
# opening and closing connections is not counted. Unlike req/s and CPU time on a shared machine,
# these counts hardly move between runs, so they show whether a change to the data plane did less
# work. A binary named nio-relay (bench/nio-relay) is run as the bare SwiftNIO relay. Needs root
# (uprobes); the probes it defines are removed when it ends.
#
#   bench/counts-per-request.sh                         # .build/release/fulcrum
#   bench/counts-per-request.sh /tmp/old-fulcrum .build/release/fulcrum
#   bench/counts-per-request.sh bench/nio-relay/.build/release/nio-relay .build/release/fulcrum
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
# The requests the nodes served so far (nginx's stub_status, whose count includes the status
# request itself: a window's difference counts the second reading's two status requests).
served() {
  local total=0 port
  for port in 18581 18582; do
    total=$((total + $(curl -s "http://127.0.0.1:$port/nginx-status" | awk '/^ *[0-9]+ +[0-9]+ +[0-9]+/ {print $3}')))
  done
  echo $total
}
printf '%-10s %8s %8s %8s %8s %8s %8s  %s\n' "" malloc retain release access syscall "-epoll" binary
for index in "${!binaries[@]}"; do
  if [[ $(basename "${binaries[$index]}") == nio-relay ]]; then
    PORT=18591 WORKERS=1 BACKENDS=127.0.0.1:18581,127.0.0.1:18582 "${binaries[$index]}" > /dev/null &
  else
    PORT=18591 WORKERS=1 BACKENDS=127.0.0.1:18581,127.0.0.1:18582 FULCRUM_BIN=${binaries[$index]} "$root/bench/fulcrum-serve.sh" &
  fi
  server=$!
  pids+=($server)
  wait_until_serving http://127.0.0.1:18591/
  # steady state: the counted window starts once wrk's connections and the node connections are
  # open and ends before wrk closes them, so per-connection costs are not spread over requests
  wrk -t1 -c20 -d8s http://127.0.0.1:18591/ > "$run/out" &
  load=$!
  # perf attaches its probes disabled (attaching to a busy process takes a while) and counts
  # between an enable and a disable sent through its control fifo, around the nodes' counts
  rm -f "$run/ctl" "$run/ack"; mkfifo "$run/ctl" "$run/ack"
  perf stat -x, -D -1 --control "fifo:$run/ctl,$run/ack" \
    -e "$(IFS=,; echo "${probes[*]}"),raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait" \
    -p $server -o "$run/stat" -- sleep 7 &
  stat=$!
  exec 7> "$run/ctl" 8< "$run/ack"
  sleep 2
  echo enable >&7; read -r -u 8 _
  before=$(served)
  sleep 3
  requests=$(( $(served) - before - 2 ))
  echo disable >&7; read -r -u 8 _
  exec 7>&- 8<&-
  wait $stat $load
  awk -F, -v n="$requests" -v label="$(basename "${binaries[$index]}")" -v bin="${binaries[$index]}" '
    /probe_libc:malloc/ {m = $1 / n} /swift_retain/ {r = $1 / n} /swift_release/ {l = $1 / n}
    /swift_beginAccess/ {a = $1 / n} /raw_syscalls:sys_enter/ {c = $1 / n} /sys_enter_epoll_wait/ {e = $1 / n}
    END {printf "%-10s %8.2f %8.1f %8.1f %8.1f %8.2f %8.2f  %s\n", label, m, r, l, a, c, c - e, bin}' "$run/stat"
  kill $server; wait $server 2> /dev/null || true
done
