#!/usr/bin/env bash
# Benchmarks Fulcrum side by side with nginx and HAProxy on loopback (Debian packages, wrk),
# using the shared harness ../shared/bench (interleaved rounds, medians), then measures the cost
# of a large route table and the memory of a 1 GiB upload.
#
#   bench/run.sh                    # full matrix: 50 and 200 connections, 3 interleaved rounds
#   bench/run.sh --reps 1 --duration 5
#
# Extra options are passed to ../shared/bench/run-peers.sh. Results: /tmp/peer-bench-results/.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$root/../shared/bench}
[ -x "$shared/run-peers.sh" ] || { echo "no harness at $shared (set SHARED_BENCH)" >&2; exit 2; }

(cd "$root" && swift build -c release --product fulcrum)
export FULCRUM_BIN="$root/.build/release/fulcrum"

FULCRUM_CMD="$root/bench/fulcrum-serve.sh" "$shared/run-peers.sh" \
  --targets "direct nginx:1 nginx:2 haproxy:1 haproxy:2 fulcrum:1 fulcrum:2" "$@"
"$root/bench/routes.sh"
"$root/bench/upload-memory.sh"
