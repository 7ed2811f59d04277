#!/usr/bin/env bash
# Serves round robin on 127.0.0.1:$PORT over $BACKENDS (comma-separated host:port) with $WORKERS
# event loops: the FULCRUM_CMD hook of ../shared/bench (see bench/run.sh).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${FULCRUM_BIN:-$here/../.build/release/fulcrum}
conf=$(mktemp /tmp/fulcrum-bench-XXXXXX.yaml)
{
  echo "listen: [{ address: 127.0.0.1, port: $PORT }]"
  echo "workers: $WORKERS"
  echo "access_log: false"
  echo "services:"
  echo "  bench:"
  echo "    strategy: round_robin"
  echo "    nodes:"
  i=0
  for backend in ${BACKENDS//,/ }; do
    echo "      - { name: b$i, host: ${backend%:*}, port: ${backend#*:} }"
    i=$((i + 1))
  done
  echo "default: { service: bench }"
} > "$conf"
exec "$bin" serve --config "$conf" --log-level warning
