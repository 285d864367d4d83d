#!/usr/bin/env bash
# Runs every fuzz target built in BUILD_DIR/fuzz for FUZZ_SECONDS (default 60) on a scratch copy
# of its seed corpus (tests/fuzz/corpus/<target>/, which is never written), one after another.
# A target stops at its first crash, sanitizer report, leak, out-of-memory or slow input; the
# input that did it is kept as BUILD_DIR/fuzz-artifacts/<target>-<kind>-<sha1> and the log in
# BUILD_DIR/fuzz-logs/<target>.log. Every target runs; the exit status is 1 if any failed.
# Prints libFuzzer's final line (executions, cov:, ft:, exec/s) per target.
# Usage: FUZZ_SECONDS=45 tests/fuzz/run.sh build-fuzz
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)"
seconds="${FUZZ_SECONDS:-60}"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/gomodproxy-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$build/fuzz-artifacts" "$build/fuzz-logs"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"

status=0
for corpus in "$here"/corpus/*/; do
  target="$(basename "$corpus")"
  binary="$build/fuzz/$target"
  [ -x "$binary" ] || { echo "fuzz: $binary is not built" >&2; exit 1; }
  cp -r "$corpus" "$scratch/$target"
  extra=()
  # Requests longer than the 16 KiB header limit, so the limit's own path is reached.
  [ "$target" = http_request ] && extra+=(-max_len=20000)
  log="$build/fuzz-logs/$target.log"
  echo "fuzz: $target for ${seconds}s"
  # -timeout: no single input may take 20 s (a hung connection or a quadratic parse).
  if "$binary" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$build/fuzz-artifacts/$target-" "${extra[@]}" "$scratch/$target" \
      >"$log" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 | sed "s/^/fuzz: $target: /"
  else
    echo "fuzz: $target FAILED; log $log, input in $build/fuzz-artifacts/" >&2
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" >&2 || tail -n 40 "$log" >&2
    status=1
  fi
done
exit $status
