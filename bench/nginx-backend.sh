# Sourced by the bench scripts. nginx_backend NAME PORT [LOCATION] starts one nginx (1 worker) on
# 127.0.0.1:PORT from its own directory $run/NAME, and adds its pid to the array `pids`.
# LOCATION is the body of `location /`; by default it answers "NAME" with an X-Backend: NAME header.
# /nginx-status is nginx's stub_status (its `requests` count the requests the backend served).
# A LOCATION using echo_* loads Debian's libnginx-mod-http-echo module. With BACKEND_CPU set, the
# nginx master and its worker run on that CPU only. The backend stops after BACKEND_LIFETIME seconds
# (default 300), so that an interrupted script leaves no nginx behind for long.
# The 100-byte body the peer harness's backends answer with, for scripts that measure Fulcrum alone.
bench_body=0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789

nginx_backend() {
  local name=$1 port=$2
  local location=${3:-"add_header X-Backend $name; return 200 \"$name\\n\";"}
  local modules=""
  [[ $location == *echo_* ]] && modules="load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;"
  mkdir -p "$run/$name/logs"
  cat > "$run/$name/nginx.conf" <<CONF
$modules
worker_processes 1;
pid $run/$name/nginx.pid;
error_log $run/$name/logs/error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $run/$name/tmp; keepalive_requests 10000000;
  server { listen 127.0.0.1:$port; location / { $location } location = /nginx-status { stub_status; } } }
CONF
  local pin=()
  [[ -n ${BACKEND_CPU:-} ]] && pin=(taskset -c "$BACKEND_CPU")
  "${pin[@]}" timeout "${BACKEND_LIFETIME:-300}" nginx -p "$run/$name" -c "$run/$name/nginx.conf" -g 'daemon off;' > /dev/null 2>&1 &
  pids+=($!)
}

# bench_backends PORT... starts one backend per port answering $bench_body, on CPU 1 beside the
# proxy under test (wrk runs on CPU 0), and lists their addresses in the array `backends`.
bench_backends() {
  backends=()
  local port
  for port in "$@"; do
    BACKEND_CPU=1 nginx_backend "b$port" "$port" "return 200 \"$bench_body\";"
    backends+=("127.0.0.1:$port")
  done
}

# wait_until_serving URL waits up to 5 s for URL to answer.
wait_until_serving() {
  for _ in $(seq 50); do curl -s -o /dev/null "$1" && return; sleep 0.1; done
}
