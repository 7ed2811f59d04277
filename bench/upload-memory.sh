#!/usr/bin/env bash
# Peak resident memory of Fulcrum (1 event loop) while a 1 GiB chunked request body streams
# through it to an nginx backend that reads and discards it.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$root/../shared/bench}
. "$shared/lib.sh"
bin=${FULCRUM_BIN:-$root/.build/release/fulcrum}
port=18681
mkdir -p "$RUN_DIR/conf" && gen_backend_conf
# the first backend reads the whole body before answering (nginx's `return` would answer at once)
sed -i -e 's/^http {/http { client_max_body_size 0;/' \
  -e '0,/location \/ {/s//location \/upload { echo_read_request_body; echo ok; } location \/ {/' "$CONF_DIR/backend.conf"
set_layout none
trap 'stop_all; [ -n "${wrapper:-}" ] && kill "$wrapper" 2>/dev/null' EXIT
start_backends "$BACKEND_CPUS" >/dev/null
file=$RUN_DIR/conf/fulcrum-upload.yaml
printf 'listen: [{ address: 127.0.0.1, port: %s }]\nworkers: 1\naccess_log: false\nservices: { s: { nodes: [{ name: b, host: 127.0.0.1, port: 18081 }] } }\ndefault: { service: s }\n' "$port" > "$file"
timeout 120 "$bin" serve --config "$file" --log-level warning > "$RUN_DIR/logs/fulcrum-upload.out" 2>&1 &
wrapper=$!
wait_port "$port" || { echo "fulcrum did not start"; exit 1; }
fulcrum=$(pgrep -P "$wrapper" | head -1)
peak=0
(
  head -c 1073741824 /dev/zero | curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -T - "http://127.0.0.1:$port/upload"
) > "$RUN_DIR/upload.result" &
uploader=$!
while kill -0 "$uploader" 2>/dev/null; do
  rss=$(awk '/^VmRSS:/{print $2}' "/proc/$fulcrum/status" 2>/dev/null || echo 0)
  [ "${rss:-0}" -gt "$peak" ] && peak=$rss
  sleep 0.1
done
read -r status seconds < "$RUN_DIR/upload.result"
echo
echo "| 1 GiB chunked upload through Fulcrum (1 event loop) | HTTP $status | $(python3 -c "print(f'{1024/$seconds:.0f}')") MiB/s | peak RSS $((peak / 1024)) MiB |"
