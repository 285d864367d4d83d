#!/usr/bin/env bash
# Instructions per warm request, counted by valgrind's callgrind: stable on a busy machine where
# req/s is not. Usage: bash tests/bench/profile_warm.sh <path to build/gomodproxy> [N]
#
# Builds the bench tree (bench.py tree), fills a cache with every .info and .mod through the
# proxy from the test upstream, stops both, then starts the proxy on that cache under callgrind
# with the shipped defaults (access log on, to a file here; metrics on) and the bench's flags.
# After one pass over the files (lazy set-up out of the count), counters are zeroed, N (2000)
# GETs of .info files go over 8 keep-alive connections, and the counters are dumped: the total
# divided by N is the cost of one request, every thread of the process included (the access
# log's writer too). The annotated profile is left in PROFILE_OUT (default: a temp dir, printed).
# PROFILE_MIX names the bench.py path file measured instead of .info (e.g. zip_small, zip_mid):
# its files are filled and warmed too.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 <path to gomodproxy binary> [requests]" >&2
  exit 2
fi
binary=$(realpath "$1")
requests=${2:-2000}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for tool in valgrind callgrind_control callgrind_annotate python3 curl; do
  command -v "$tool" >/dev/null || { echo "profile: $tool not found" >&2; exit 1; }
done
out=${PROFILE_OUT:-$(mktemp -d /tmp/gomodproxy-profile.XXXXXX)}
mkdir -p "$out"
work=$(mktemp -d /tmp/gomodproxy-profile-work.XXXXXX)
upstream_pid=""
proxy_pid=""

# valgrind is slow to exit: 30 s before KILL.
source "$here/processes.sh"
stop_valgrind_pid() { stop_pid "$1" "" 30; }
cleanup() {
  local rc=$?
  stop_pid "$upstream_pid"
  stop_valgrind_pid "$proxy_pid"
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_proxy() {  # start_proxy PREFIX...: runs the proxy under PREFIX, sets proxy_pid/proxy_url
  : >"$work/proxy.out"
  env $(compgen -e | grep '^GOMODPROXY_' | sed 's/^/-u /' || true) \
    "$@" "$binary" serve --listen 127.0.0.1:0 --cache-dir "$work/cache" \
    --upstreams "${upstream_url:-off}" --log-level warn --list-ttl 1h --io-threads 2 --verify off \
    >"$work/proxy.out" 2>"$work/proxy.err" &
  proxy_pid=$!
  proxy_url=""
  for _ in $(seq 600); do
    line=$(head -n1 "$work/proxy.out" 2>/dev/null || true)
    if [[ $line =~ ^gomodproxy\ listening\ on\ (http://127\.0\.0\.1:[0-9]+)$ ]]; then
      proxy_url=${BASH_REMATCH[1]}
      return 0
    fi
    kill -0 "$proxy_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "profile: the proxy did not start" >&2
  cat "$work/proxy.err" >&2
  return 1
}

python3 "$here/bench.py" tree "$work/tree" "$work/paths" >/dev/null
mix=${PROFILE_MIX:-info}
[[ -s $work/paths/$mix.txt ]] || { echo "profile: no path file $mix.txt" >&2; exit 2; }
cat "$work/paths/info.txt" "$work/paths/mod.txt" >"$work/paths/small.txt"
[[ $mix == info ]] || cat "$work/paths/$mix.txt" >>"$work/paths/small.txt"
python3 "$here/bench.py" upstream "$work/tree" "$work/upstream.port" 2>"$work/upstream.err" &
upstream_pid=$!
for _ in $(seq 100); do [[ -s $work/upstream.port ]] && break; sleep 0.1; done
upstream_url="http://127.0.0.1:$(cat "$work/upstream.port")"
start_proxy
python3 "$here/bench.py" fetch "$proxy_url" "$work/tree" "$work/paths/small.txt" --label fill
stop_valgrind_pid "$proxy_pid"
stop_pid "$upstream_pid"
upstream_pid=""
upstream_url="http://127.0.0.1:9"  # nothing listens: the measured phase is the cache only

start_proxy valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.%p" \
  --collect-atstart=yes --dump-instr=no
python3 "$here/bench.py" fetch "$proxy_url" "$work/tree" "$work/paths/small.txt" --label warm-up
callgrind_control -z "$proxy_pid" >/dev/null
python3 "$here/bench.py" load "$proxy_url" "$work/paths/$mix.txt" "$requests"
callgrind_control -d "$proxy_pid" >/dev/null
sleep 1
stop_valgrind_pid "$proxy_pid"
proxy_pid=""
dump=$(ls -t "$out"/callgrind.out.*.1 2>/dev/null | head -n1 || true)
[[ -n $dump ]] || dump=$(ls -t "$out"/callgrind.out.* | head -n1)
total=$(callgrind_annotate "$dump" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
echo "profile: $dump"
echo "profile: $total instructions for $requests requests: $(( total / requests )) per request"
callgrind_annotate --inclusive=yes "$dump" >"$out/inclusive.txt"
callgrind_annotate "$dump" >"$out/exclusive.txt"
echo "profile: annotations in $out/inclusive.txt and $out/exclusive.txt"
