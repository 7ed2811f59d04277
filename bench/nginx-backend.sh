# Sourced by the bench scripts. nginx_backend NAME PORT [LOCATION] starts one nginx (1 worker) on
# 127.0.0.1:PORT from its own directory $run/NAME, and adds its pid to the array `pids`.
# LOCATION is the body of `location /`; by default it answers "NAME" with an X-Backend: NAME header.
# A LOCATION using echo_* loads Debian's libnginx-mod-http-echo module.
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
  server { listen 127.0.0.1:$port; location / { $location } } }
CONF
  timeout 300 nginx -p "$run/$name" -c "$run/$name/nginx.conf" -g 'daemon off;' > /dev/null 2>&1 &
  pids+=($!)
}
