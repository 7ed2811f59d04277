#!/usr/bin/env bash
# Certificates swapped under load: Fulcrum serves HTTPS (one ECDSA certificate, renewed in place)
# in front of the backends of ../shared/bench while wrk makes a new connection and a full
# handshake for every request ("Connection: close", 50 connections) and a second wrk keeps 50
# keep-alive connections busy; meanwhile the certificate files are replaced by another
# certificate and SIGHUP sent, every SWAP_EVERY seconds. Reports requests, errors and non-2xx of
# both, how many swaps were applied, and which certificate the last handshake got.
# With MODE=api, Fulcrum runs with a store and the certificate is uploaded through the admin API
# (PUT /api/v1/certificates/site, alternating between the two) instead.
#   bench/tls-swap.sh             (10 s, a swap every 0.2 s)
#   MODE=api bench/tls-swap.sh
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$root/../shared/bench}
export RUN_DIR=/tmp/tls-swap-run
. "$shared/lib.sh"
DURATION=${DURATION:-10}
SWAP_EVERY=${SWAP_EVERY:-0.2}
MODE=${MODE:-files}
PORT_TLS=18446
PORT_ADMIN=19446
TOKEN=bench_admin_token_0123456789abcdef
[ -x "$root/.build/release/fulcrum" ] || (cd "$root" && swift build -c release --product fulcrum >/dev/null)
rm -rf "$RUN_DIR"; mkdir -p "$RUN_DIR" "$CONF_DIR"
cd "$RUN_DIR"
for name in first second; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=$name" \
    -addext subjectAltName=DNS:localhost -keyout $name.key -out $name.pem 2>/dev/null
done
cp first.pem site.pem; cp first.key site.key
for name in first second; do  # the upload bodies, for MODE=api
  python3 -c 'import json, sys; print(json.dumps({"cert": open(sys.argv[1] + ".pem").read(), "key": open(sys.argv[1] + ".key").read()}))' $name > $name.json
done
{
  echo "listen: [{ address: 127.0.0.1, port: $PORT_TLS, tls: { certificates: [{ cert: $RUN_DIR/site.pem, key: $RUN_DIR/site.key }], default_certificate: $RUN_DIR/site.pem } }]"
  echo "workers: 2"; echo "access_log: false"
  echo "services: { bench: { nodes: ["
  i=0; for p in $BACKEND_PORTS; do echo "  { name: b$i, host: 127.0.0.1, port: $p },"; i=$((i+1)); done
  echo "] } }"; echo "default: { service: bench }"
} > fulcrum.yaml
gen_backend_conf
trap 'stop_all' EXIT
set_layout none
start_backends "$BACKEND_CPUS" >/dev/null
if [ "$MODE" = api ]; then
  export FULCRUM_ADMIN_TOKEN=$TOKEN
  pid=$(start_server fulcrum "$SERVER_TTL" 0-1 "$root/.build/release/fulcrum" serve -c "$RUN_DIR/fulcrum.yaml" \
    --store "$RUN_DIR/fulcrum.db" --admin 127.0.0.1:$PORT_ADMIN --log-level info)
else
  pid=$(start_server fulcrum "$SERVER_TTL" 0-1 "$root/.build/release/fulcrum" serve -c "$RUN_DIR/fulcrum.yaml" --log-level info)
fi
for _ in $(seq 100); do curl -sk -o /dev/null -m 1 "https://127.0.0.1:$PORT_TLS/" && break; sleep 0.1; done
uploaded=0

wrk -t1 -c50 -d"${DURATION}s" --latency -H "Connection: close" "https://127.0.0.1:$PORT_TLS/" > handshakes.txt 2>&1 &
w1=$!
wrk -t1 -c50 -d"${DURATION}s" --latency "https://127.0.0.1:$PORT_TLS/" > keepalive.txt 2>&1 &
w2=$!
swaps=0
current=first
end=$(( $(date +%s) + DURATION - 1 ))
while [ "$(date +%s)" -lt "$end" ]; do
  if [ $current = first ]; then current=second; else current=first; fi
  if [ "$MODE" = api ]; then
    status=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $TOKEN" -H 'If-Match: *' \
      -H 'Content-Type: application/json' --data-binary @$current.json "http://127.0.0.1:$PORT_ADMIN/api/v1/certificates/site?message=swap")
    [ "$status" = 200 ] && uploaded=$((uploaded + 1))
    swaps=$((swaps + 1))
    sleep "$SWAP_EVERY"
    continue
  fi
  # the pair is replaced by renames of complete files; a SIGHUP between the two renames finds a
  # key that is not the certificate's, which the reload refuses (the old pair keeps serving)
  cp $current.pem site.pem.new; cp $current.key site.key.new
  mv site.key.new site.key; mv site.pem.new site.pem
  kill -HUP "$pid"
  swaps=$((swaps + 1))
  sleep "$SWAP_EVERY"
done
wait $w1 $w2
sleep 0.5
served=$(echo | openssl s_client -connect 127.0.0.1:$PORT_TLS -servername localhost 2>/dev/null | openssl x509 -noout -subject 2>/dev/null)
if [ "$MODE" = api ]; then
  echo "uploads sent: $swaps (answered 200: $uploaded); last upload: $current; served now: $served"
else
  applied=$(grep -c "certificates reloaded" "$RUN_DIR/logs/fulcrum.out" || true)
  refused=$(grep -c "certificates rejected" "$RUN_DIR/logs/fulcrum.out" || true)
  echo "swaps sent: $swaps (applied: $applied, refused as half-written: $refused); last swap to: $current; served now: $served"
fi
for f in handshakes keepalive; do
  read -r rps p50 p90 p99 err req < <(parse_wrk "$RUN_DIR/$f.txt")
  echo "$f: requests=$req req/s=$rps p99=${p99}ms errors+non2xx=$err"
done
