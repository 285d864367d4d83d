#!/usr/bin/env python3
"""The size cap at scale: copies a cache of ENTRIES entries (build/tests/make_big_cache, the real
store API) and starts `gomodproxy serve` on the copy with --cache-max-bytes at FRACTION of the
directory's size on disk, so the eviction thread's first round (a scan of every entry's
metadata, the evictions, the compaction) runs at once. Prints the time until /readyz answers,
the time until that round is done (gomodproxy_cache_evictions_total > 0 and the measured
directory under the cap), the process's peak resident memory, and du before and after.

  tests/bench/eviction_at_scale.py [--binary build/gomodproxy]
      [--generator build/tests/make_big_cache] [--entries 100000] [--fraction 0.8]
      [--cache-dir DIR]

The upstream named is a closed loopback port; no request but /readyz and /metrics is made."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from big_cache import add_cache_arguments, ensure_cache, free_port, get, start_proxy

POLL_SECONDS = 0.002
DEADLINE_SECONDS = 120.0


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def du_bytes(directory: Path) -> int:
    run = subprocess.run(["du", "-s", "--block-size=1", str(directory)], capture_output=True,
                         text=True, check=True, timeout=60)
    return int(run.stdout.split()[0])


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_cache_arguments(parser, "copy this directory (generated when it does not exist)")
    parser.add_argument("--fraction", type=float, default=0.8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gmp-evict-") as scratch:
        source = args.cache_dir or Path(scratch) / "source"
        ensure_cache(args, source)
        cache_dir = Path(scratch) / "capped"
        shutil.copytree(source, cache_dir)
        before = du_bytes(cache_dir)
        cap = int(before * args.fraction)
        port = free_port()
        started = time.monotonic()
        proc = start_proxy(args.binary, port, cache_dir, ["--cache-max-bytes", str(cap)])
        try:
            ready_at = None
            done_at = None
            text = ""
            while done_at is None:
                if proc.poll() is not None:
                    sys.exit(f"gomodproxy exited with {proc.returncode}")
                if time.monotonic() - started > DEADLINE_SECONDS:
                    sys.exit(f"not done after {DEADLINE_SECONDS} s")
                if ready_at is None:
                    if get(port, "/readyz")[0] == 200:
                        ready_at = time.monotonic()
                else:
                    status, text = get(port, "/metrics")
                    if (status == 200 and metric(text, "gomodproxy_cache_evictions_total") > 0
                            and 0 < metric(text, "gomodproxy_cache_disk_bytes") <= cap):
                        done_at = time.monotonic()
                time.sleep(POLL_SECONDS)
            peak = peak_rss_kib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        print(f"du before: {before} bytes; cap {cap} bytes ({args.fraction:.0%})")
        print(f"ready after {(ready_at - started) * 1000:.0f} ms")
        print(f"first eviction round done after {(done_at - started) * 1000:.0f} ms: "
              f"{metric(text, 'gomodproxy_cache_evictions_total'):.0f} entries, "
              f"{metric(text, 'gomodproxy_cache_evicted_bytes_total'):.0f} body bytes evicted")
        print(f"peak resident memory: {peak / 1024:.1f} MiB")
        print(f"du after stop: {du_bytes(cache_dir)} bytes")


if __name__ == "__main__":
    main()
