#!/usr/bin/env bash
# Warm-cache serving benchmark: gomodproxy against nginx serving the same files statically,
# measured back to back in one run. Usage: bash tests/bench/run.sh <path to build/gomodproxy>
#
# Steps: build a module tree (200 modules x 3 versions) in a temp dir; serve it with the test
# upstream; start gomodproxy on it and fetch every file once through the proxy (each must be 200
# and byte-identical); stop the upstream and fetch everything again, so the measured phase is pure
# cache serving; start nginx on the same tree; then, for each wrk shape, run each mix against both
# servers, alternating who goes first. Everything listens on 127.0.0.1 and is stopped on exit.
#
# Knobs (environment): BENCH_SHAPES (wrk shapes THREADSxCONNECTIONS, default "1x32 2x64": the
# lighter shape and the heavier one of issue 16); BENCH_THREADS / BENCH_CONNECTIONS, when either
# is set, replace the list with that one shape (defaults 1 and 32);
# BENCH_DURATION (seconds per run, 7), BENCH_ROUNDS (3; the table shows the median),
# BENCH_MIXES (names of the mixes to run, e.g. "info mod meta"; default all, see bench.py MIXES),
# BENCH_RESULTS_DIR (default: a bench-results directory next to the binary), BENCH_KEEP=1 keeps
# the temp dir, BENCH_ACCESS_LOG (on: the proxy's default access log, to stderr, which goes to a
# file in the temp dir, and nginx's access log to a file; off: both off; default on).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 <path to gomodproxy binary>" >&2
  exit 2
fi
binary=$(realpath "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
shapes=${BENCH_SHAPES:-1x32 2x64}
if [[ -n ${BENCH_THREADS:-} || -n ${BENCH_CONNECTIONS:-} ]]; then
  shapes="${BENCH_THREADS:-1}x${BENCH_CONNECTIONS:-32}"
fi
duration=${BENCH_DURATION:-7}
rounds=${BENCH_ROUNDS:-3}
access_log=${BENCH_ACCESS_LOG:-on}
[[ $access_log == on || $access_log == off ]] || { echo "bench: BENCH_ACCESS_LOG is on or off" >&2; exit 2; }
results_dir=${BENCH_RESULTS_DIR:-$(dirname "$binary")/bench-results}
cores=$(nproc)

for tool in wrk python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done
nginx_bin=/usr/sbin/nginx
[[ -x $nginx_bin ]] || { echo "bench: $nginx_bin not found (apt-get install nginx-light)" >&2; exit 1; }
[[ -x $binary ]] || { echo "bench: $binary is not an executable (make build first)" >&2; exit 1; }

work=$(mktemp -d /tmp/gomodproxy-bench.XXXXXX)
# nginx workers run as an unprivileged user; they must be able to read the tree.
chmod 755 "$work"
proxy_pid=""
nginx_pid=""
upstream_pid=""

source "$here/processes.sh"

cleanup() {
  local rc=$?
  stop_pid "$upstream_pid" upstream
  stop_pid "$proxy_pid" gomodproxy
  stop_pid "$nginx_pid" nginx
  if [[ $rc -ne 0 ]]; then
    echo "bench: failed (exit $rc); last lines of the server logs:" >&2
    for log in "$work"/proxy.err "$work"/nginx-error.log "$work"/upstream.err; do
      [[ -s $log ]] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
    done
  fi
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    echo "bench: kept $work" >&2
  else
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() {  # wait_http URL: up to 10 s for any HTTP answer
  for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  echo "bench: nothing answers at $1" >&2
  return 1
}

started=$(date +%s)
echo "== machine: $cores cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -r)"
echo "== load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews both servers)"
echo "== wrk shapes (threads x connections) $shapes, -d${duration}s, $rounds rounds per mix; gomodproxy --io-threads $cores, nginx worker_processes $cores; access logs $access_log"

echo "== building module tree"
python3 "$here/bench.py" tree "$work/tree" "$work/paths"

echo "== starting upstream"
python3 "$here/bench.py" upstream "$work/tree" "$work/upstream.port" 2>"$work/upstream.err" &
upstream_pid=$!
for _ in $(seq 100); do [[ -s $work/upstream.port ]] && break; sleep 0.1; done
[[ -s $work/upstream.port ]] || { echo "bench: upstream did not start" >&2; exit 1; }
upstream_url="http://127.0.0.1:$(cat "$work/upstream.port")"

echo "== starting gomodproxy ($binary)"
mkdir -p "$work/cache"
# GOMODPROXY_* settings from the caller's environment would change what is measured.
unset_settings=()
while read -r name; do
  unset_settings+=(-u "$name")
done < <(compgen -e | grep '^GOMODPROXY_' || true)
# The bench tree has no checksum database, so verification is off; the measured phase serves a
# warm cache, where nothing is verified anyway.
proxy_access_log=()
nginx_access_log="access_log $work/nginx-access.log;"
if [[ $access_log == off ]]; then
  proxy_access_log=(--access-log off)
  nginx_access_log="access_log off;"
fi
env "${unset_settings[@]}" \
  "$binary" serve --listen 127.0.0.1:0 --cache-dir "$work/cache" --upstreams "$upstream_url" \
  "${proxy_access_log[@]}" --log-level warn --list-ttl 1h --io-threads "$cores" --verify off \
  >"$work/proxy.out" 2>"$work/proxy.err" &
proxy_pid=$!
proxy_url=""
for _ in $(seq 100); do
  line=$(head -n1 "$work/proxy.out" 2>/dev/null || true)
  if [[ $line =~ ^gomodproxy\ listening\ on\ (http://127\.0\.0\.1:[0-9]+)$ ]]; then
    proxy_url=${BASH_REMATCH[1]}
    break
  fi
  kill -0 "$proxy_pid" 2>/dev/null || break
  sleep 0.1
done
[[ -n $proxy_url ]] || { echo "bench: gomodproxy did not print its listening line" >&2; exit 1; }
echo "   $proxy_url"

echo "== warming the cache through the proxy (upstream running)"
python3 "$here/bench.py" fetch "$proxy_url" "$work/tree" "$work/paths/all.txt" --label "proxy, cold"

echo "== stopping upstream"
stop_pid "$upstream_pid" upstream
upstream_pid=""
if curl -s -o /dev/null --max-time 1 "$upstream_url/"; then
  echo "bench: upstream still answers at $upstream_url" >&2
  exit 1
fi

echo "== every file again through the proxy, from cache only"
python3 "$here/bench.py" fetch "$proxy_url" "$work/tree" "$work/paths/all.txt" --label "proxy, upstream stopped"

echo "== starting nginx"
nginx_port=$(free_port)
mkdir -p "$work/nginx-temp"
cat >"$work/nginx.conf" <<EOF
daemon off;
worker_processes $cores;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events {
  worker_connections 4096;
}
http {
  $nginx_access_log
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  server_tokens off;
  types {
    application/json info;
    text/plain mod;
    application/zip zip;
  }
  default_type text/plain;
  client_body_temp_path $work/nginx-temp/body;
  proxy_temp_path $work/nginx-temp/proxy;
  fastcgi_temp_path $work/nginx-temp/fastcgi;
  uwsgi_temp_path $work/nginx-temp/uwsgi;
  scgi_temp_path $work/nginx-temp/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/tree;
    location / {
    }
  }
}
EOF
"$nginx_bin" -p "$work" -c "$work/nginx.conf" -e "$work/nginx-error.log" \
  >"$work/nginx.out" 2>&1 &
nginx_pid=$!
nginx_url="http://127.0.0.1:$nginx_port"
wait_http "$nginx_url$(head -n1 "$work/paths/info.txt")"
python3 "$here/bench.py" fetch "$nginx_url" "$work/tree" "$work/paths/all.txt" --label "nginx"

echo "== measuring"
mkdir -p "$results_dir"
python3 "$here/bench.py" measure \
  --proxy-url "$proxy_url" --proxy-pid "$proxy_pid" \
  --nginx-url "$nginx_url" --nginx-pid "$nginx_pid" \
  --paths-dir "$work/paths" --lua "$here/paths.lua" \
  --shapes "$shapes" --duration "$duration" --rounds "$rounds" --mixes "${BENCH_MIXES:-}" \
  --json-out "$results_dir/results.json" --markdown-out "$results_dir/results.md"

kill -0 "$proxy_pid" 2>/dev/null || { echo "bench: gomodproxy died during the run" >&2; exit 1; }
echo "== load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== results in $results_dir/results.md (took $(( $(date +%s) - started ))s)"
