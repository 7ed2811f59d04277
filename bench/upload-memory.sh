#!/usr/bin/env bash
# Peak resident memory of Fulcrum while a 1 GiB request body streams through it to a backend.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$root/../shared/bench}
. "$shared/lib.sh"
bin=${FULCRUM_BIN:-$root/.build/release/fulcrum}
port=18681
set_layout none
mkdir -p "$RUN_DIR/conf" && gen_backend_conf
trap stop_all EXIT
start_backends "$BACKEND_CPUS" >/dev/null
# nginx as backend: give it a body limit large enough, so it reads and discards the whole upload
sed -i 's/http {/http { client_max_body_size 0;/' "$CONF_DIR/backend.conf"
stop_server backend; start_backends "$BACKEND_CPUS" >/dev/null
file=$RUN_DIR/conf/fulcrum-upload.yaml
printf 'listen: [{ address: 127.0.0.1, port: %s }]\nworkers: 1\naccess_log: false\nservices: { s: { nodes: [{ name: b, host: 127.0.0.1, port: 18081 }] } }\ndefault: { service: s }\n' "$port" > "$file"
pid=$(start_server fulcrum-upload 120 0-1 "$bin" serve --config "$file" --log-level warning)
wait_port "$port"
rss_watch "$pid" 30 "$RUN_DIR/upload.mem" & watcher=$!
start=$(date +%s.%N)
status=$(head -c 1073741824 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -T - -H 'Content-Type: application/octet-stream' "http://127.0.0.1:$port/upload")
end=$(date +%s.%N)
wait $watcher
read -r rss pss < "$RUN_DIR/upload.mem"
echo
echo "| 1 GiB chunked upload through Fulcrum | status $status | $(python3 -c "print(f'{1024/($end-$start):.0f}')") MiB/s | peak RSS $((rss / 1024)) MiB |"
