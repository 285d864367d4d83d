# Sourced by the bench scripts: stopping the servers they start.

# stop_pid PID [NAME] [SECONDS]: TERM, wait up to SECONDS (10) for it to exit, then KILL. With a
# NAME, a process that had to be killed is reported on stderr.
stop_pid() {
  local pid=$1 name=${2:-} seconds=${3:-10}
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq $((seconds * 10))); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  [[ -z $name ]] || echo "bench: $name ($pid) did not stop on TERM; killing" >&2
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
