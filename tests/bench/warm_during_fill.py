#!/usr/bin/env python3
"""Warm `.info` latency alone and while 100 MiB zips are filled and verified (issue 16, target 4).

usage: warm_during_fill.py GOMODPROXY [GOMODPROXY ...] [--rounds 3] [--duration 6]
                           [--connections 32] [--zip-mib 100] [--fills 6] [--drip BYTES:MS]
                           [--control]

Every binary given runs with the shipped defaults (access log on, metrics on, verification on:
the test checksum database tests/support/test_sumdb.py is passed with --sumdb/--sumdb-key) against
one test upstream on 127.0.0.1 serving the standard module tree plus `--fills` versions of
example.com/huge, each a zip of about `--zip-mib` MiB of random bytes. Each round, for each binary
in turn (the order alternates between rounds), on a fresh cache:
  1. every `.info` of the standard tree is fetched once (now warm);
  2. `wrk --latency -t1 -c<connections> -d<duration>s` over those `.info` paths: "alone";
  3. the same wrk run while a client asks for one huge zip after another (HEAD, so the bench
     does not spend the CPU of reading 100 MiB; the fill, its zip check, its h1 hash and the
     checksum database proof run all the same): "during fill".
It prints each run, with the CPU seconds each proxy thread name (gmp-io, gmp-fills, gmp-checks,
gmp-reads, rocksdb:*; an older binary's threads are all "gomodproxy") and the in-process test
upstream spent in the fill window, and then the medians of p50/p99 and req/s per binary and phase, and how many
fills finished inside the window (a fill still running when wrk ends counts as not finished).
With --control a third wrk run follows: "during copy", while `nice -n 10 curl` copies the same
zips straight from the upstream into a file, one after another, and the proxy fills nothing. It
puts the upstream's sending, the loopback transfer and the page-cache writes on the machine
without the proxy's fill work (no hash, no zip check, no fdatasync), so the difference between
"during copy" and "during fill" is what the proxy's fills cost warm serving, and the difference
between "alone" and "during copy" is what this machine pays for any 100 MiB transfer on it.
With --drip the upstream writes each zip BYTES at a time, MS milliseconds apart, as a remote
upstream over a WAN link would deliver it: every binary then fills at the same rate, so the warm
figures compare the same fill work per second rather than how fast each can drain a local sender.
All traffic stays on 127.0.0.1. Not part of CI.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "support"))
sys.path.insert(0, str(HERE))

import module_tree as mt  # noqa: E402  (path set up above)
import test_sumdb  # noqa: E402
import test_upstream  # noqa: E402
from bench_proxy import start_proxy, stop_proxy  # noqa: E402

HUGE = "example.com/huge"
RESULT_RE = re.compile(r"BENCH_RESULT (.*)")
FILL_TIMEOUT = 300.0


def build_tree(root: Path, fills: int, zip_mib: int) -> tuple[mt.ModuleTree, list[str], list[str]]:
    """The standard tree without its 40 MiB module, plus `fills` versions of HUGE; returns the
    tree, the warm `.info` paths and the huge zips' paths."""
    tree = mt.build_standard_tree(root, with_big=False)
    warm = [mv.url_path(".info") for mv in tree.versions.values()]
    blob = random.Random(16).randbytes(zip_mib * 1024 * 1024)
    huge = []
    for i in range(fills):
        mv = tree.add(HUGE, f"v1.0.{i}", {
            "go.mod": f"module {HUGE}\n\ngo 1.19\n".encode(),
            "huge.go": b"package huge\n",
            "blob.bin": blob,
        }, stored=["blob.bin"])
        huge.append(mv.url_path(".zip"))
    return tree, warm, huge


def status_of(port: int, method: str, path: str, timeout: float) -> int:
    """The status of one request on a fresh connection; the body is read and dropped."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def run_wrk(port: int, paths_file: Path, args) -> dict:
    out = subprocess.run(
        ["wrk", "--latency", "-t1", f"-c{args.connections}", f"-d{args.duration}s",
         "-s", str(HERE / "paths.lua"), f"http://127.0.0.1:{port}", "--", str(paths_file)],
        capture_output=True, text=True, timeout=args.duration + 60)
    match = RESULT_RE.search(out.stdout)
    if not match:
        raise SystemExit(f"warm_during_fill: wrk printed no result:\n{out.stdout}{out.stderr}")
    fields = dict(part.split("=") for part in match.group(1).split())
    result = {k: float(v) for k, v in fields.items()}
    errors = sum(result[k] for k in ("connect_errors", "read_errors", "write_errors",
                                     "status_errors", "timeouts"))
    if errors:
        raise SystemExit(f"warm_during_fill: wrk saw {errors:.0f} errors:\n{out.stdout}")
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """tid -> (thread name, CPU seconds so far) for every thread of `pid`."""
    tick = os.sysconf("SC_CLK_TCK")
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        threads[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return threads


def cpu_by_name(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds spent between two thread_cpu snapshots, summed per thread name."""
    spent: dict[str, float] = {}
    for tid, (name, seconds) in after.items():
        spent[name] = spent.get(name, 0.0) + seconds - before.get(tid, (name, 0.0))[1]
    return spent


class FillDriver(threading.Thread):
    """Asks for one huge zip after another until told to stop; counts the fills that ended."""

    def __init__(self, port: int, zips: list[str]):
        super().__init__(daemon=True)
        self.port = port
        self.zips = zips
        self.stop_asking = threading.Event()
        self.finished: list[float] = []  # seconds each finished fetch took
        self.failures: list[str] = []

    def fetch(self, path: str) -> str | None:
        """One zip; what went wrong, or None."""
        try:
            status = status_of(self.port, "HEAD", path, FILL_TIMEOUT)
        except OSError as error:
            return str(error)
        return None if status == 200 else f"status {status}"

    def run(self) -> None:
        for path in self.zips:
            if self.stop_asking.is_set():
                return
            started = time.monotonic()
            problem = self.fetch(path)
            if problem is not None:
                self.failures.append(f"{path}: {problem}")
                return
            if not self.stop_asking.is_set():
                self.finished.append(time.monotonic() - started)


class CopyDriver(FillDriver):
    """Copies one huge zip after another from the upstream with a niced curl until told to
    stop, as the proxy's niced fill threads would receive them, without the proxy."""

    def __init__(self, upstream_url: str, zips: list[str], target: Path):
        super().__init__(0, zips)
        self.base = upstream_url.rstrip("/")
        self.target = target
        self.current: subprocess.Popen | None = None

    def fetch(self, path: str) -> str | None:
        self.current = subprocess.Popen(
            ["nice", "-n", "10", "curl", "-sSf", "--max-time", str(int(FILL_TIMEOUT)),
             "-o", str(self.target), self.base + path])
        code = self.current.wait()
        # A copy that stop() cut short is not a failure.
        return None if code == 0 or self.stop_asking.is_set() else f"curl exited with {code}"

    def stop(self) -> None:
        self.stop_asking.set()
        if self.current is not None and self.current.poll() is None:
            self.current.terminate()
        self.join(FILL_TIMEOUT)


def one_run(binary: Path, label: str, flags: list[str], warm: list[str], zips: list[str],
            paths_file: Path, work: Path, args) -> dict:
    cache = work / f"cache-{label}"
    shutil.rmtree(cache, ignore_errors=True)
    proc, port = start_proxy(binary, ["--cache-dir", str(cache), *flags],
                             work / f"proxy-{label}.log", "warm_during_fill")
    try:
        for path in warm:
            if status_of(port, "GET", path, 60) != 200:
                raise SystemExit(f"warm_during_fill: {label}: {path} is not 200")
        alone = run_wrk(port, paths_file, args)
        driver = FillDriver(port, zips)
        cpu_before = thread_cpu(proc.pid)
        own_before = os.times()
        driver.start()
        during = run_wrk(port, paths_file, args)
        driver.stop_asking.set()
        cpu = cpu_by_name(cpu_before, thread_cpu(proc.pid))
        own_after = os.times()
        # The test upstream runs in this process: its CPU shares the machine with the proxy.
        cpu["bench upstream"] = (own_after.user - own_before.user +
                                 own_after.system - own_before.system)
        if driver.failures:
            raise SystemExit(f"warm_during_fill: {label}: fill failed: {driver.failures}")
        if not driver.is_alive() and len(driver.finished) == len(zips):
            print(f"  note: {label} ran out of zips to fill before wrk ended; raise --fills")
        driver.join(FILL_TIMEOUT)
        copy = None
        copies = 0
        if args.control:
            copier = CopyDriver(args.upstream_url, zips, work / "copy.zip")
            copier.start()
            copy = run_wrk(port, paths_file, args)
            copier.stop()
            if copier.failures:
                raise SystemExit(f"warm_during_fill: {label}: copy failed: {copier.failures}")
            copies = len(copier.finished)
        rss = 0
        with open(f"/proc/{proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    rss = int(line.split()[1]) // 1024
        return {"alone": alone, "during": during, "copy": copy, "copies": copies,
                "fills": len(driver.finished), "cpu": cpu,
                "fill_s": statistics.median(driver.finished) if driver.finished else 0.0,
                "peak_mib": rss}
    finally:
        stop_proxy(proc, timeout=30)
        shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binaries", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--zip-mib", type=int, default=100)
    parser.add_argument("--fills", type=int, default=6)
    parser.add_argument("--drip", default="", metavar="BYTES:MS",
                        help="the upstream sends each zip BYTES at a time, MS milliseconds apart")
    parser.add_argument("--control", action="store_true",
                        help="also measure warm serving while curl copies the zips, no fill")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("warm_during_fill: wrk is not installed")
    if args.control and shutil.which("curl") is None:
        raise SystemExit("warm_during_fill: --control needs curl")
    binaries = [b.resolve() for b in args.binaries]
    labels = [f"{i}:{b}" for i, b in enumerate(binaries)]

    work = Path(tempfile.mkdtemp(prefix="gmp-warm-during-fill-"))
    try:
        print(f"building the tree ({args.fills} zips of {args.zip_mib} MiB) ...", flush=True)
        tree, warm, zips = build_tree(work / "tree", args.fills, args.zip_mib)
        paths_file = work / "paths.txt"
        paths_file.write_text("".join(p + "\n" for p in warm))
        upstream = test_upstream.TestUpstream(tree.root, "upstream").start()
        if args.drip:
            size, _, pause_ms = args.drip.partition(":")
            upstream.drip(r"\.zip$", int(size), float(pause_ms or 0) / 1000)
        sumdb = test_sumdb.TestSumdb(tree.root, work / "sumdb").start()
        flags = ["--upstreams", upstream.url, *sumdb.flags]
        args.upstream_url = upstream.url
        print(f"{len(warm)} warm .info paths; wrk -t1 -c{args.connections} -d{args.duration}s; "
              f"load: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}", flush=True)
        results: dict[str, list[dict]] = {label: [] for label in labels}
        try:
            for round_number in range(args.rounds):
                order = list(zip(binaries, labels))
                if round_number % 2:
                    order.reverse()
                for binary, label in order:
                    r = one_run(binary, f"r{round_number}-{labels.index(label)}", flags, warm,
                                zips, paths_file, work, args)
                    results[label].append(r)
                    a, d = r["alone"], r["during"]
                    print(f"round {round_number + 1} {label}: alone p50 {a['p50_us']:.0f} us "
                          f"p99 {a['p99_us']:.0f} us {a['rps']:.0f} req/s | during fill p50 "
                          f"{d['p50_us']:.0f} us p99 {d['p99_us']:.0f} us {d['rps']:.0f} req/s | "
                          f"fills done {r['fills']} (median {r['fill_s']:.1f} s) | "
                          f"peak {r['peak_mib']} MiB | load {os.getloadavg()[0]:.1f}",
                          flush=True)
                    if r["copy"]:
                        c = r["copy"]
                        print(f"    during copy p50 {c['p50_us']:.0f} us p99 {c['p99_us']:.0f} us "
                              f"{c['rps']:.0f} req/s | copies done {r['copies']}", flush=True)
                    print("    CPU s in the fill window: " + ", ".join(
                        f"{name} {seconds:.2f}" for name, seconds in
                        sorted(r["cpu"].items(), key=lambda item: -item[1]) if seconds >= 0.01),
                        flush=True)
        finally:
            sumdb.stop()
            upstream.stop()
        print("\nmedians over rounds:")
        print(f"{'binary':60} {'alone p50':>10} {'alone p99':>10} {'alone r/s':>10} "
              f"{'fill p50':>10} {'fill p99':>10} {'fill r/s':>10} {'fills':>6}")
        for label in labels:
            runs = results[label]

            def med(phase: str, key: str) -> float:
                return statistics.median(r[phase][key] for r in runs)
            print(f"{label:60} {med('alone', 'p50_us'):>8.0f}us {med('alone', 'p99_us'):>8.0f}us "
                  f"{med('alone', 'rps'):>10.0f} {med('during', 'p50_us'):>8.0f}us "
                  f"{med('during', 'p99_us'):>8.0f}us {med('during', 'rps'):>10.0f} "
                  f"{statistics.median(r['fills'] for r in runs):>6.0f}")
            if args.control:
                print(f"{'  during copy (no fill)':60} {'':>10} {'':>10} {'':>10} "
                      f"{med('copy', 'p50_us'):>8.0f}us {med('copy', 'p99_us'):>8.0f}us "
                      f"{med('copy', 'rps'):>10.0f} "
                      f"{statistics.median(r['copies'] for r in runs):>6.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
