#!/usr/bin/env python3
"""Bundle export and import of the test tree's big module (a 40 MiB zip): wall time and the peak
resident memory of each command (getrusage of the child), which stays far below the zip's size
because members are streamed, never held whole.

  tests/bench/bundle_bench.py [--binary build/gomodproxy] [--runs 3]

Proxy A (verification on, the test checksum database) fetches the module, stops; `cache export
--modules` writes the bundle; `cache import` puts it into an empty cache, RUNS times each; then
`cache import --proxy` uploads it to a running proxy with an empty cache, RUNS times, and the
CPU seconds that proxy spent on the upload (user + system, /proc/PID/stat) are printed too."""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "support"))

import module_tree as mt  # noqa: E402
import test_sumdb  # noqa: E402
from test_upstream import TestUpstream  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one run of `command`, which must succeed."""
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {proc.returncode}: {proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def upload(binary: str, bundle: Path, cache: Path, sumdb_flags: list[str]) -> tuple[float, float]:
    """Wall seconds of `cache import --proxy` into a fresh proxy, and that proxy's CPU seconds."""
    token = "BUNDLEBENCHTOKENBUNDLEBENCHTOKEN"
    port = free_port()
    proxy = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--cache-dir", str(cache),
         "--upstreams", f"http://127.0.0.1:{free_port()}", *sumdb_flags, "--access-log", "off",
         "--admin-token", token], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        before = cpu_seconds(proxy.pid)
        elapsed, _ = timed([binary, "cache", "import", "--proxy", f"http://127.0.0.1:{port}",
                            "--admin-token", token, str(bundle)])
        return elapsed, cpu_seconds(proxy.pid) - before
    finally:
        proxy.terminate()
        proxy.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(REPO / "build" / "gomodproxy"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    binary = args.binary
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        tree = mt.build_standard_tree(base / "tree")
        big = tree.get(mt.BIG, "v1.0.0")
        upstream = TestUpstream(tree.root)
        upstream.start()
        sumdb = test_sumdb.TestSumdb(tree.root, base / "sumdb").start()
        cache_a = base / "a"
        port = free_port()
        proxy = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{port}", "--cache-dir", str(cache_a),
             "--upstreams", upstream.url, *sumdb.flags, "--access-log", "off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                    for suffix in (".info", ".mod", ".zip"):
                        conn.request("GET", big.url_path(suffix))
                        answer = conn.getresponse()
                        answer.read()
                        assert answer.status == 200, (suffix, answer.status)
                    break
                except ConnectionRefusedError:
                    time.sleep(0.05)
        finally:
            proxy.terminate()
            proxy.wait(30)
        modules = base / "modules.txt"
        modules.write_text(f"{mt.BIG}@v1.0.0\n")
        bundle = base / "big.tar"
        exports, imports, uploads = [], [], []
        for run in range(args.runs):
            exports.append(timed([binary, "cache", "export", "--out", str(bundle), "--modules",
                                  str(modules), "--cache-dir", str(cache_a), *sumdb.flags]))
            imports.append(timed([binary, "cache", "import", str(bundle), "--cache-dir",
                                  str(base / f"b{run}"), *sumdb.flags]))
        for run in range(args.runs):
            uploads.append(upload(binary, bundle, base / f"c{run}", sumdb.flags))
        sumdb.stop()
        upstream.stop()
        size = bundle.stat().st_size
        print(f"bundle: {size / 2**20:.1f} MiB ({mt.BIG}@v1.0.0 zip "
              f"{(tree.root / big.url_path('.zip')[1:]).stat().st_size / 2**20:.1f} MiB)")
        for name, runs in (("export", exports), ("import", imports)):
            for seconds, rss in runs:
                print(f"{name}: {seconds:.3f} s, peak RSS {rss / 1024:.1f} MiB")
            print(f"{name} median: {statistics.median(s for s, _ in runs):.3f} s, "
                  f"{size / 2**20 / statistics.median(s for s, _ in runs):.0f} MiB/s")
        for seconds, cpu in uploads:
            print(f"import --proxy: {seconds:.3f} s, proxy CPU {cpu:.2f} s")
        print(f"import --proxy median: {statistics.median(s for s, _ in uploads):.3f} s, "
              f"proxy CPU {statistics.median(c for _, c in uploads):.2f} s")


if __name__ == "__main__":
    main()
