#!/usr/bin/env bash
# Soak: a mixed load against one Fulcrum for DURATION seconds (default 600), its RSS sampled every
# 10 s, then 30 s more without load. Passes when the RSS after the load is within 10 % of its value
# after the first minute (memory that grows with the number of requests or connections fails it).
# The mix (wrk -t2 -c100, a Lua script choosing per request):
#   45 % keep-alive GETs, 10 % 404s, 15 % requests over a sliding_window rate limit with random
#   keys, 10 % 4 KiB POSTs, 5 % Connection: close, 15 % 64 KiB responses.
# Usage: bench/soak.sh [DURATION]   (FULCRUM_BIN to use another binary; builds release otherwise)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${1:-600}
bin=${FULCRUM_BIN:-}
if [ -z "$bin" ]; then
  (cd "$root" && swift build -c release --product fulcrum >/dev/null) || exit 1
  bin=$root/.build/release/fulcrum
fi
run=/tmp/fulcrum-soak
rm -rf "$run" && mkdir -p "$run/www"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done' EXIT
source "$root/bench/nginx-backend.sh"
BACKEND_LIFETIME=$((duration + 120))  # the node must outlive the load, or the end of it is all 502s

head -c 65536 /dev/zero | tr '\0' 'x' > "$run/www/big"
nginx_backend soak-node 18811 "root $run/www; location = / { return 200 \"ok\\n\"; } location = /upload { return 200 \"stored\\n\"; } location = /limited { return 200 \"allowed\\n\"; }"
cat > "$run/fulcrum.yaml" <<CONF
listen: [{ address: 127.0.0.1, port: 18810 }]
workers: 2
access_log: false
services:
  s: { nodes: [{ name: n, host: 127.0.0.1, port: 18811 }] }
routes:
  - name: limited
    match: { path_prefix: /limited }
    service: s
    rate_limit: { algorithm: sliding_window, limit: 1, window: 1m, key: header:X-Key, max_keys: 10000 }
  - { name: app, match: { path_prefix: /app/ }, service: s }
  - { name: root, match: { path: / }, service: s }
  - { name: upload, match: { path: /upload }, service: s }
  - { name: big, match: { path: /big }, service: s }
CONF
cat > "$run/mix.lua" <<'LUA'
local body = string.rep("p", 4096)
math.randomseed(os.time())
request = function()
  local r = math.random(100)
  if r <= 45 then return wrk.format("GET", "/")
  elseif r <= 55 then return wrk.format("GET", "/missing/" .. r)
  elseif r <= 70 then return wrk.format("GET", "/limited", { ["X-Key"] = tostring(math.random(1000000)) })
  elseif r <= 80 then return wrk.format("POST", "/upload", { ["Content-Type"] = "text/plain" }, body)
  elseif r <= 85 then return wrk.format("GET", "/", { ["Connection"] = "close" })
  else return wrk.format("GET", "/big") end
end
LUA
"$bin" serve -c "$run/fulcrum.yaml" > "$run/fulcrum.log" 2>&1 &
fulcrum=$!
pids+=($fulcrum)
wait_until_serving http://127.0.0.1:18810/
rss() { awk '/VmRSS/ { print int($2 / 1024) }' "/proc/$fulcrum/status"; }
echo "start: RSS $(rss) MiB"
wrk -t2 -c100 -d"${duration}s" -s "$run/mix.lua" http://127.0.0.1:18810/ > "$run/wrk.txt" 2>&1 &
wrk_pid=$!
pids+=($wrk_pid)
samples=()
elapsed=0
while kill -0 "$wrk_pid" 2>/dev/null; do
  sleep 10
  elapsed=$((elapsed + 10))
  sample=$(rss)
  samples+=("$sample")
  echo "t=${elapsed}s RSS ${sample} MiB"
done
sleep 30
after=$(rss)
first_minute=${samples[5]:-${samples[-1]}}
grep -E "requests in|Requests/sec|Non-2xx|Socket errors" "$run/wrk.txt"
echo "RSS after the first minute: $first_minute MiB; 30 s after the load: $after MiB; peak: $(printf '%s\n' "${samples[@]}" | sort -n | tail -1) MiB"
awk -v a="$after" -v f="$first_minute" 'BEGIN { r = a / f; printf "after / first minute: %.3f (%s)\n", r, (r <= 1.10 ? "within 10 %" : "MORE than 10 % above") ; exit (r <= 1.10 ? 0 : 1) }'
