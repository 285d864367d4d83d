#!/usr/bin/env bash
# Does the access log keep up? One cached .info is fetched by wrk (-t1 -c32) for BENCH_DURATION
# seconds (default 10) with the access log on; then the proxy is stopped and the lines written are
# counted against the requests wrk made, and the proxy's "lines dropped" warning, if any, is shown.
# Usage: bash tests/bench/access_log.sh <path to build/gomodproxy> [file|stderr]
#   file (default): --access-log <tmp>/access.log;  stderr: the default, stderr sent to a file.
# Everything listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 <path to gomodproxy binary> [file|stderr]" >&2
  exit 2
fi
binary=$(realpath "$1")
destination=${2:-file}
[[ $destination == file || $destination == stderr ]] || { echo "bench: file or stderr" >&2; exit 2; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
duration=${BENCH_DURATION:-10}
command -v wrk >/dev/null || { echo "bench: wrk not found" >&2; exit 1; }

work=$(mktemp -d /tmp/gomodproxy-access-log.XXXXXX)
upstream_pid=""
proxy_pid=""
cleanup() {
  local rc=$?
  for pid in $proxy_pid $upstream_pid; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

python3 - "$repo" "$work" <<'PY'
import sys
sys.path.insert(0, sys.argv[1] + "/tests/support")
import module_tree
tree = module_tree.ModuleTree(sys.argv[2] + "/tree")
tree.add("bench.example.com/accesslog", "v1.0.0",
         {"go.mod": b"module bench.example.com/accesslog\n", "a.go": b"package accesslog\n"})
PY
python3 - "$repo" "$work" <<'PY' &
import pathlib, signal, sys
sys.path.insert(0, sys.argv[1] + "/tests/support")
import test_upstream
upstream = test_upstream.TestUpstream(pathlib.Path(sys.argv[2]) / "tree").start()
(pathlib.Path(sys.argv[2]) / "port").write_text(str(upstream.port))
signal.sigwait({signal.SIGTERM})
upstream.stop()
PY
upstream_pid=$!
for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.1; done
[[ -s $work/port ]] || { echo "bench: the test upstream did not start" >&2; exit 1; }

access_log=()
[[ $destination == file ]] && access_log=(--access-log "$work/access.log")
"$binary" serve --listen 127.0.0.1:0 --cache-dir "$work/cache" \
  --upstreams "http://127.0.0.1:$(cat "$work/port")" "${access_log[@]}" --verify off \
  >"$work/proxy.out" 2>"$work/proxy.err" &
proxy_pid=$!
base=""
for _ in $(seq 100); do
  base=$(sed -n 's/^gomodproxy listening on //p' "$work/proxy.out" 2>/dev/null || true)
  [[ -n $base ]] && break
  sleep 0.1
done
[[ -n $base ]] || { echo "bench: gomodproxy did not print its listening line" >&2; exit 1; }
url=$base/bench.example.com/accesslog/@v/v1.0.0.info
curl -fsS -o /dev/null "$url"  # the fill; every later request is a cache hit

echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg); access log to $destination"
wrk -t1 -c32 -d"${duration}s" "$url" >"$work/wrk.txt"
grep -E "requests in|Requests/sec|Socket errors|Non-2xx" "$work/wrk.txt"
requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/wrk.txt")
kill -TERM "$proxy_pid"
wait "$proxy_pid" || true
proxy_pid=""
written=$(cat "$work/access.log" "$work/proxy.err" 2>/dev/null | grep -c ' access GET /bench' || true)
echo "requests by wrk: $requests (+1 fill); access lines written: $written"
grep -h "lines dropped" "$work/proxy.err" || echo "no line dropped"
