#!/usr/bin/env bash
# User and system CPU per warm .info request, and system calls per request, gomodproxy against
# nginx on the same files. Usage: bash tests/bench/cpu_split.sh <path to build/gomodproxy>
#
# Builds the bench tree (bench.py tree), fills a cache with every .info through the proxy from
# the test upstream and stops the upstream; starts nginx (2 workers, access log to a file, the
# run.sh configuration) on the same tree. Then, ROUNDS (3) times and alternating who goes first,
# `wrk -t1 -c32 -d5s` over the .info files against each server, reading utime and stime of the
# server's processes from /proc before and after: CPU per request split into user space and
# kernel, and `perf stat` on the syscall tracepoints: system calls per request in that run. Last, `strace -c -f` on each server while bench.py sends 20 000 GETs over 8
# connections: system calls per request. Shipped defaults (access log on, metrics on).
# Everything listens on 127.0.0.1 and is stopped on exit. CPU_SPLIT_MIX names the bench.py path
# file used instead of .info (e.g. zip_small, zip_mid).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 <path to gomodproxy binary>" >&2
  exit 2
fi
binary=$(realpath "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rounds=${ROUNDS:-3}
mix=${CPU_SPLIT_MIX:-info}
for tool in wrk strace perf python3 /usr/sbin/nginx; do
  command -v "$tool" >/dev/null || { echo "cpu_split: $tool not found" >&2; exit 1; }
done
work=$(mktemp -d /tmp/gomodproxy-cpu-split.XXXXXX)
chmod 755 "$work"  # nginx's workers read the tree as an unprivileged user
upstream_pid=""
proxy_pid=""
nginx_pid=""
source "$here/processes.sh"
cleanup() {
  local rc=$?
  stop_pid "$upstream_pid"
  stop_pid "$proxy_pid"
  stop_pid "$nginx_pid"
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

python3 "$here/bench.py" tree "$work/tree" "$work/paths" >/dev/null
python3 "$here/bench.py" upstream "$work/tree" "$work/upstream.port" 2>"$work/upstream.err" &
upstream_pid=$!
for _ in $(seq 100); do [[ -s $work/upstream.port ]] && break; sleep 0.1; done
env $(compgen -e | grep '^GOMODPROXY_' | sed 's/^/-u /' || true) \
  "$binary" serve --listen 127.0.0.1:0 --cache-dir "$work/cache" \
  --upstreams "http://127.0.0.1:$(cat "$work/upstream.port")" --log-level warn --list-ttl 1h \
  --io-threads 2 --verify off >"$work/proxy.out" 2>"$work/proxy.err" &
proxy_pid=$!
proxy_url=""
for _ in $(seq 100); do
  line=$(head -n1 "$work/proxy.out" 2>/dev/null || true)
  if [[ $line =~ ^gomodproxy\ listening\ on\ (http://127\.0\.0\.1:[0-9]+)$ ]]; then
    proxy_url=${BASH_REMATCH[1]}
    break
  fi
  sleep 0.1
done
[[ -n $proxy_url ]] || { echo "cpu_split: the proxy did not start" >&2; exit 1; }
python3 "$here/bench.py" fetch "$proxy_url" "$work/tree" "$work/paths/$mix.txt" --label fill
stop_pid "$upstream_pid"
upstream_pid=""

nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log $work/nginx-access.log;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  server_tokens off;
  types { application/json info; }
  default_type text/plain;
  client_body_temp_path $work/t-body;
  proxy_temp_path $work/t-proxy;
  fastcgi_temp_path $work/t-fastcgi;
  uwsgi_temp_path $work/t-uwsgi;
  scgi_temp_path $work/t-scgi;
  server { listen 127.0.0.1:$nginx_port; root $work/tree; location / { } }
}
EOF
/usr/sbin/nginx -p "$work" -c "$work/nginx.conf" -e "$work/nginx-error.log" &
nginx_pid=$!
nginx_url="http://127.0.0.1:$nginx_port"
python3 "$here/bench.py" fetch "$nginx_url" "$work/tree" "$work/paths/$mix.txt" --label nginx
nginx_workers=$(pgrep -P "$nginx_pid" | tr '\n' ' ')

ticks=$(getconf CLK_TCK)
cpu_ticks() {  # cpu_ticks PID...: "user system" clock ticks summed over the processes
  local user=0 system=0 u s
  for pid in "$@"; do
    read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat")
    user=$((user + u))
    system=$((system + s))
  done
  echo "$user $system"
}
measure() {  # measure NAME URL PID...
  local name=$1 url=$2 out requests u0 s0 u1 s1
  shift 2
  local pid_list
  pid_list=$(echo $* | tr ' ' ',')
  perf stat -x, -o "$work/perf.$name" -e "$syscall_events" -p "$pid_list" 2>"$work/perf.err" &
  local perf_pid=$!
  sleep 0.2
  read -r u0 s0 < <(cpu_ticks "$@")
  out=$(wrk -t1 -c32 -d5s -s "$here/paths.lua" "$url" -- "$work/paths/$mix.txt")
  read -r u1 s1 < <(cpu_ticks "$@")
  kill -INT "$perf_pid"
  wait "$perf_pid" 2>/dev/null || true
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  python3 -c "
import sys
name, requests, user, system, ticks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
per = lambda t: t / ticks * 1e6 / requests
print(f'{name:10s} {requests / 5:9.0f} req/s  user {per(user):5.2f} us/req  system {per(system):5.2f} us/req  total {per(user + system):5.2f} us/req')
" "$name" "$requests" $((u1 - u0)) $((s1 - s0)) "$ticks"
  # System calls per request during the same run (counted by kernel tracepoints, which cost
  # far less than strace; the 0.2 s before wrk starts adds a few idle epoll/futex calls).
  awk -F, -v n="$requests" '$3 ~ /sys_enter/ && $1 > 0 {
      name = $3; sub(/.*sys_enter_?/, "", name); if (name == "") name = "all"
      printf "    %-12s %5.2f", name, $1 / n
    } END { printf "  per request\n" }' "$work/perf.$name"
}
syscall_events=raw_syscalls:sys_enter
for call in sendmsg recvmsg recvfrom writev sendfile64 openat newfstatat close setsockopt write \
  epoll_wait futex; do
  syscall_events+=",syscalls:sys_enter_$call"
done
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  if ((round % 2)); then
    measure gomodproxy "$proxy_url" "$proxy_pid"
    measure nginx "$nginx_url" $nginx_workers
  else
    measure nginx "$nginx_url" $nginx_workers
    measure gomodproxy "$proxy_url" "$proxy_pid"
  fi
done

requests=20000
for server in gomodproxy nginx; do
  if [[ $server == gomodproxy ]]; then url=$proxy_url; pids=$proxy_pid; else url=$nginx_url; pids=$nginx_workers; fi
  attach=()
  for pid in $pids; do attach+=(-p "$pid"); done
  strace -c -f "${attach[@]}" -o "$work/strace.$server" 2>/dev/null &
  strace_pid=$!
  sleep 1
  python3 "$here/bench.py" load "$url" "$work/paths/$mix.txt" "$requests" >/dev/null
  sleep 0.5
  kill -INT "$strace_pid"
  wait "$strace_pid" 2>/dev/null || true
  echo "== $server: system calls per request ($requests GETs over 8 connections, strace -c -f)"
  # strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall
  awk -v n="$requests" '$1 ~ /^[0-9.]+$/ && (NF == 5 || NF == 6) && $NF != "total" {
      errors = NF == 6 ? $5 : 0
      printf "  %-16s %6.2f per request (%d of them failed)\n", $NF, $4 / n, errors
    }' "$work/strace.$server"
done
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
