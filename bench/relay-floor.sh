#!/usr/bin/env bash
# Runs bench/nio-relay, a bare SwiftNIO byte relay (nothing parsed, routed or counted), through the
# shared peer harness in Fulcrum's place, beside nginx: SwiftNIO's own floor, what a proxy on
# SwiftNIO reaches before doing any HTTP work, in each column of bench/run.sh's table, on this
# machine, in this hour. In the harness's report the "fulcrum" rows are the relay.
#
#   bench/relay-floor.sh --reps 5 --duration 8
#
# Extra options are passed to ../shared/bench/run-peers.sh. Results: /tmp/peer-bench-results/.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$root/../shared/bench}
[ -x "$shared/run-peers.sh" ] || { echo "no harness at $shared (set SHARED_BENCH)" >&2; exit 2; }

(cd "$root/bench/nio-relay" && swift build -c release)
FULCRUM_CMD="$root/bench/nio-relay/.build/release/nio-relay" "$shared/run-peers.sh" \
  --targets "nginx:1 nginx:2 fulcrum:1 fulcrum:2" "$@"
