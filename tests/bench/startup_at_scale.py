#!/usr/bin/env python3
"""Start-up at scale: fills a cache directory with ENTRIES entries (build/tests/make_big_cache,
the real store API), then starts `gomodproxy serve` on it RUNS times and measures the wall time
from the process start until /readyz answers 200. Prints each run and the median.

  tests/bench/startup_at_scale.py [--binary build/gomodproxy]
      [--generator build/tests/make_big_cache] [--entries 100000] [--runs 3] [--cache-dir DIR]

The upstream named is a closed loopback port: readiness needs a configured tier, not a reachable
one, and no request is made during the measurement."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from big_cache import add_cache_arguments, ensure_cache, free_port, get, start_proxy

POLL_SECONDS = 0.002
DEADLINE_SECONDS = 30.0


def one_start(binary: Path, cache_dir: Path) -> float:
    port = free_port()
    started = time.monotonic()
    proc = start_proxy(binary, port, cache_dir)
    try:
        while get(port, "/readyz", timeout=1)[0] != 200:
            if proc.poll() is not None:
                sys.exit(f"gomodproxy exited with {proc.returncode} before it was ready")
            if time.monotonic() - started > DEADLINE_SECONDS:
                sys.exit(f"not ready after {DEADLINE_SECONDS} s")
            time.sleep(POLL_SECONDS)
        return time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_cache_arguments(parser, "use (and keep) this directory; generated when it does not exist")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gmp-startup-") as scratch:
        cache_dir = args.cache_dir or Path(scratch) / "cache"
        ensure_cache(args, cache_dir)
        times = [one_start(args.binary, cache_dir) for _ in range(args.runs)]
        for i, seconds in enumerate(times, 1):
            print(f"run {i}: ready after {seconds * 1000:.0f} ms")
        print(f"median of {len(times)}: {statistics.median(times) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
