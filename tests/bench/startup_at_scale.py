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
import http.client
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
POLL_SECONDS = 0.002
DEADLINE_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def one_start(binary: Path, cache_dir: Path) -> float:
    port = free_port()
    closed_port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--cache-dir", str(cache_dir),
         "--upstreams", f"http://127.0.0.1:{closed_port}", "--access-log", "off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not ready(port):
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
    parser.add_argument("--binary", type=Path, default=REPO / "build" / "gomodproxy")
    parser.add_argument("--generator", type=Path,
                        default=REPO / "build" / "tests" / "make_big_cache")
    parser.add_argument("--entries", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path,
                        help="use (and keep) this directory; generated when it does not exist")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gmp-startup-") as scratch:
        cache_dir = args.cache_dir or Path(scratch) / "cache"
        if not cache_dir.exists():
            generated = subprocess.run([str(args.generator), str(cache_dir), str(args.entries)],
                                       capture_output=True, text=True, check=True, timeout=1800)
            print(generated.stdout.strip())
        times = [one_start(args.binary, cache_dir) for _ in range(args.runs)]
        for i, seconds in enumerate(times, 1):
            print(f"run {i}: ready after {seconds * 1000:.0f} ms")
        print(f"median of {len(times)}: {statistics.median(times) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
