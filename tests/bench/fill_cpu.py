#!/usr/bin/env python3
"""CPU seconds a 100 MiB verified fill costs the proxy, per thread name (issue 16, target 4).

usage: fill_cpu.py GOMODPROXY [GOMODPROXY ...] [--rounds 3] [--fills 3] [--zip-mib 100]
                   [--perf DIR] [--drip BYTES[:MS]]

Every binary given runs with the shipped defaults (access log on, metrics on, verification on
against the test checksum database tests/support/test_sumdb.py) on a fresh cache, against one
test upstream on 127.0.0.1 serving `--fills` versions of example.com/huge, each a zip of about
`--zip-mib` MiB of random bytes (the tree of warm_during_fill.py). Nothing else asks the proxy
anything: the client asks for one zip after another with HEAD (the fill, its zip check, its h1
hash and the checksum database proof run all the same), then waits 3 s for RocksDB's background
work the fills left, and the CPU each thread of the proxy spent over that window
(/proc/PID/task/*/stat, user + system) is summed per thread name and divided by the fills. The
order of the binaries alternates between rounds; medians over rounds are printed at the end.
With --perf DIR, `perf record -g` samples the proxy over the fills of each run into DIR.
All traffic stays on 127.0.0.1. Not part of CI.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "support"))
sys.path.insert(0, str(HERE))

import test_sumdb  # noqa: E402
import test_upstream  # noqa: E402
from bench_proxy import start_proxy, stop_proxy  # noqa: E402
from warm_during_fill import build_tree, cpu_by_name, status_of, thread_cpu  # noqa: E402

SETTLE_S = 3.0


def one_run(binary: Path, label: str, flags: list[str], zips: list[str], work: Path,
            args) -> dict:
    cache = work / f"cache-{label}"
    shutil.rmtree(cache, ignore_errors=True)
    proc, port = start_proxy(binary, ["--cache-dir", str(cache), *flags],
                             work / f"proxy-{label}.log", "fill_cpu")
    perf = None
    try:
        if args.perf:
            args.perf.mkdir(parents=True, exist_ok=True)
            perf = subprocess.Popen(
                ["perf", "record", "-g", "-F", "499", "-p", str(proc.pid), "-o",
                 str(args.perf / f"perf-{label}.data")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        before = thread_cpu(proc.pid)
        started = time.monotonic()
        for path in zips:
            status = status_of(port, "HEAD", path, 300)
            if status != 200:
                raise SystemExit(f"fill_cpu: {label}: {path}: status {status}")
        fill_s = (time.monotonic() - started) / len(zips)
        time.sleep(SETTLE_S)
        spent = cpu_by_name(before, thread_cpu(proc.pid))
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(60)
        per_fill = {name: seconds / len(zips) for name, seconds in spent.items()}
        return {"cpu": per_fill, "total": sum(per_fill.values()), "fill_s": fill_s}
    finally:
        if perf and perf.poll() is None:
            perf.kill()
        stop_proxy(proc, timeout=30)
        shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binaries", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fills", type=int, default=3)
    parser.add_argument("--zip-mib", type=int, default=100)
    parser.add_argument("--perf", type=Path, default=None)
    parser.add_argument("--drip", default="", metavar="BYTES[:MS]",
                        help="the upstream writes each zip BYTES at a time, MS milliseconds "
                             "apart (a sender slower than the proxy, as a WAN link is)")
    args = parser.parse_args()
    binaries = [b.resolve() for b in args.binaries]
    labels = [f"{i}:{b}" for i, b in enumerate(binaries)]
    work = Path(tempfile.mkdtemp(prefix="gmp-fill-cpu-"))
    try:
        print(f"building the tree ({args.fills} zips of {args.zip_mib} MiB) ...", flush=True)
        tree, _, zips = build_tree(work / "tree", args.fills, args.zip_mib)
        upstream = test_upstream.TestUpstream(tree.root, "upstream").start()
        if args.drip:
            size, _, pause_ms = args.drip.partition(":")
            upstream.drip(r"\.zip$", int(size), float(pause_ms or 0) / 1000)
        sumdb = test_sumdb.TestSumdb(tree.root, work / "sumdb").start()
        flags = ["--upstreams", upstream.url, *sumdb.flags]
        print(f"load: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}", flush=True)
        results: dict[str, list[dict]] = {label: [] for label in labels}
        try:
            for round_number in range(args.rounds):
                order = list(zip(binaries, labels))
                if round_number % 2:
                    order.reverse()
                for binary, label in order:
                    r = one_run(binary, f"r{round_number}-{labels.index(label)}", flags, zips,
                                work, args)
                    results[label].append(r)
                    print(f"round {round_number + 1} {label}: {r['total']:.2f} CPU s per fill, "
                          f"{r['fill_s']:.2f} s per fill | load {os.getloadavg()[0]:.1f}\n    " +
                          ", ".join(f"{name} {seconds:.2f}" for name, seconds in
                                    sorted(r["cpu"].items(), key=lambda item: -item[1])
                                    if seconds >= 0.005), flush=True)
        finally:
            sumdb.stop()
            upstream.stop()
        print("\nmedians over rounds (CPU s per fill):")
        for label in labels:
            runs = results[label]
            names = sorted({n for r in runs for n in r["cpu"]})
            parts = {n: statistics.median(r["cpu"].get(n, 0.0) for r in runs) for n in names}
            print(f"{label}: total {statistics.median(r['total'] for r in runs):.2f}, "
                  f"wall {statistics.median(r['fill_s'] for r in runs):.2f} s | " +
                  ", ".join(f"{n} {s:.2f}" for n, s in sorted(parts.items(), key=lambda i: -i[1])
                            if s >= 0.005))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
