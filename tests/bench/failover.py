"""Cold-request latency through `A|B` with the shipped timing defaults, while tier A is healthy,
slow (answers everything after 3 s) or hung (accepts and never answers); B is always healthy.

Usage: python3 tests/bench/failover.py <path to build/gomodproxy> [--requests N] [--json FILE]

For each case: build a fresh cache, serve one module tree from two test upstreams on 127.0.0.1,
start `gomodproxy serve --listen 127.0.0.1:0 --cache-dir <tmp> --upstreams 'A|B'` (nothing else
set: every timing setting is the default), then GET N distinct `.info` files one after another,
each a cache miss, starting one at most every --spacing seconds (as requests spread over time
arrive, so the proxy's view of A can change between them), and report p50/p99/max latency and
how many B answered. The proxy's stderr
(access log included, as by default) goes to a file in the temp dir. Everything is stopped on exit.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import bench_proxy  # noqa: E402  (next to this script)
import module_tree  # noqa: E402  (path set up above)
import test_upstream  # noqa: E402

SLOW_SECONDS = 3.0
CASES = ("healthy", "slow", "hung")


def build_tree(root: Path, count: int) -> list[str]:
    tree = module_tree.ModuleTree(root)
    paths = []
    for i in range(count):
        module_path = f"failover.example.com/mod{i:03d}"
        mv = tree.add(module_path, "v1.0.0",
                      {"go.mod": f"module {module_path}\n".encode(),
                       "doc.go": b"package mod\n"})
        paths.append(mv.url_path(".info"))
    return paths


def start_proxy(binary: Path, cache_dir: Path, upstreams: str, log: Path):
    return bench_proxy.start_proxy(
        binary, ["--cache-dir", str(cache_dir), "--upstreams", upstreams], log, "failover bench")


def get(port: int, path: str) -> tuple[int, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.monotonic() - started
    finally:
        conn.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run_case(case: str, binary: Path, work: Path, tree_root: Path, paths: list[str],
             spacing: float) -> dict:
    a = test_upstream.TestUpstream(tree_root, name="A").start()
    b = test_upstream.TestUpstream(tree_root, name="B").start()
    fault = None
    if case == "slow":
        fault = a.delay(r".*", SLOW_SECONDS)
    elif case == "hung":
        fault = a.hang(r".*")
    proc, port = start_proxy(binary, work / f"cache-{case}", f"{a.url}|{b.url}",
                             work / f"proxy-{case}.err")
    try:
        latencies = []
        for path in paths:
            next_start = time.monotonic() + spacing
            status, took = get(port, path)
            if status != 200:
                raise SystemExit(f"failover bench: {case}: {path} answered {status}")
            latencies.append(took)
            time.sleep(max(0.0, next_start - time.monotonic()))
        return {
            "case": case,
            "requests": len(latencies),
            "first_s": latencies[0],
            "p50_s": statistics.median(latencies),
            "p99_s": percentile(latencies, 99),
            "max_s": max(latencies),
            "answered_by_b": sum(1 for p in paths if b.count(p) > 0),
        }
    finally:
        if fault is not None:
            fault.release()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        a.stop()
        b.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", type=Path)
    parser.add_argument("--requests", type=int, default=30, help="cold requests per case")
    parser.add_argument("--spacing", type=float, default=1.0,
                        help="least seconds between the starts of two requests")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    binary = args.binary.resolve()
    results = []
    with tempfile.TemporaryDirectory(prefix="gomodproxy-failover.") as tmp:
        work = Path(tmp)
        paths = build_tree(work / "tree", args.requests)
        for case in CASES:
            print(f"== {case}: {args.requests} cold requests", file=sys.stderr, flush=True)
            results.append(run_case(case, binary, work, work / "tree", paths, args.spacing))
    print("| tier A | cold requests | first | p50 | p99 | max | answered by B |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['case']} | {r['requests']} | {r['first_s'] * 1000:.0f} ms | "
              f"{r['p50_s'] * 1000:.1f} ms | {r['p99_s'] * 1000:.0f} ms | "
              f"{r['max_s'] * 1000:.0f} ms | {r['answered_by_b']} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
