"""Memory of gomodproxy around one large zip, with its shipped defaults (verification on, against
the test checksum database; access log and metrics on).

Usage: python3 tests/bench/memory.py <path to gomodproxy> [--streams 50] [--rate 2000000]

Steps: build a tree with one module whose zip is 40 MiB of random bytes (stored, so the zip is
that large); serve it with the test upstream and the test checksum database; start the proxy on
a fresh cache directory; measure its idle resident memory (VmRSS once it has settled); fill the
zip with one GET; measure idle memory again; then stream the zip from the cache to `--streams`
clients at once, each reading at `--rate` bytes/s, sampling VmRSS and reading VmHWM (reset
after the fill through /proc/<pid>/clear_refs, so the peak is the streaming one); idle memory
once more; then restart the proxy on that cache and measure idle memory before and after serving
the zip once. Every body is checked byte for byte. Prints a table.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import module_tree  # noqa: E402  (path set up above)
import test_sumdb  # noqa: E402
import test_upstream  # noqa: E402
from bench_proxy import start_proxy, stop_proxy  # noqa: E402

MIB = 1024 * 1024
MODULE = "memory.bench.example/big"
VERSION = "v1.0.0"
SETTLE_SECONDS = 20.0     # most an idle measurement waits for the resident size to stop moving
STREAM_TIMEOUT = 300.0    # most the streaming phase may take


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"memory: no {field} in /proc/{pid}/status")


def settled_rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) once three VmRSS readings a second apart agree within 256 KiB (or after
    SETTLE_SECONDS): RocksDB flushes and compactions after a fill run for a few seconds."""
    readings = [status_kib(pid, "VmRSS")]
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        time.sleep(1.0)
        readings.append(status_kib(pid, "VmRSS"))
        last = readings[-3:]
        if len(last) == 3 and max(last) - min(last) <= 256:
            break
    return readings[-1], status_kib(pid, "RssAnon")


def get_once(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"memory: GET {path}: {response.status} {body[:200]!r}")
        return body
    finally:
        conn.close()


def cache_memory_report(port: int) -> str:
    """What the store says it holds (/status.json cache.memory), in MiB."""
    memory = json.loads(get_once(port, "/status.json"))["cache"].get("memory")
    if memory is None:
        return "not reported (a build before --cache-memory)"
    return ", ".join(f"{name.removesuffix('_bytes')} {value / MIB:.1f}"
                     for name, value in memory.items())


def paced_stream(port: int, path: str, rate: float, digest_out: list, errors: list) -> None:
    """Reads `path` at about `rate` bytes/s with a small receive buffer, so the proxy (not the
    kernel) holds what the client has not read yet."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.connect()
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        conn.request("GET", path)
        response = conn.getresponse()
        if response.status != 200:
            errors.append(f"status {response.status}")
            return
        digest = hashlib.sha256()
        started = time.monotonic()
        received = 0
        while True:
            piece = response.read(64 * 1024)
            if not piece:
                break
            digest.update(piece)
            received += len(piece)
            ahead = received / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        digest_out.append(digest.hexdigest())
    except (OSError, http.client.HTTPException) as error:
        errors.append(f"{type(error).__name__}: {error}")
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary", type=Path)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--rate", type=float, default=2_000_000, help="bytes/s per client")
    parser.add_argument("--zip-mib", type=int, default=40)
    parser.add_argument("--extra", default="", help="extra proxy flags, space separated")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gomodproxy-memory.") as work_dir:
        work = Path(work_dir)
        tree = module_tree.ModuleTree(work / "tree")
        payload = random.Random(16).randbytes(args.zip_mib * MIB - 4096)
        mv = tree.add(MODULE, VERSION,
                      {"go.mod": f"module {MODULE}\n\ngo 1.19\n".encode(), "data.bin": payload},
                      stored=["data.bin"])
        zip_path = mv.url_path(".zip")
        want = hashlib.sha256(tree.file_bytes(zip_path)).hexdigest()
        zip_bytes = mv.zip_size
        del payload

        upstream = test_upstream.TestUpstream(tree.root, name="memory-upstream").start()
        sumdb = test_sumdb.TestSumdb(tree.root, work / "sumdb").start()
        proc = None
        try:
            log = work / "proxy.log"
            flags = ["--cache-dir", str(work / "cache"), "--upstreams", upstream.url,
                     *sumdb.flags, *args.extra.split()]
            proc, port = start_proxy(args.binary, flags, log, "memory")
            get_once(port, f"/{module_tree.escape_path(MODULE)}/@v/list")
            rows = [("idle before the fill", settled_rss_kib(proc.pid))]

            started = time.monotonic()
            body = get_once(port, zip_path)
            fill_seconds = time.monotonic() - started
            if hashlib.sha256(body).hexdigest() != want:
                raise SystemExit("memory: the filled zip differs from the upstream's")
            del body
            rows.append(("peak during the fill (VmHWM)", (status_kib(proc.pid, "VmHWM"), None)))
            rows.append(("idle after the fill", settled_rss_kib(proc.pid)))
            store_memory = cache_memory_report(port)

            # A reset peak makes VmHWM the streaming phase's own (kernel >= 4.0).
            Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
            before_streams = status_kib(proc.pid, "VmRSS")
            anon_peak = 0
            digests: list = []
            errors: list = []
            clients = [threading.Thread(target=paced_stream,
                                        args=(port, zip_path, args.rate, digests, errors))
                       for _ in range(args.streams)]
            sampled_peak = 0
            started = time.monotonic()
            for client in clients:
                client.start()
            while any(c.is_alive() for c in clients):
                if time.monotonic() - started > STREAM_TIMEOUT:
                    raise SystemExit("memory: streaming took longer than "
                                     f"{STREAM_TIMEOUT:.0f}s")
                sampled_peak = max(sampled_peak, status_kib(proc.pid, "VmRSS"))
                anon_peak = max(anon_peak, status_kib(proc.pid, "RssAnon"))
                time.sleep(0.05)
            stream_seconds = time.monotonic() - started
            for client in clients:
                client.join()
            bad = [d for d in digests if d != want]
            if errors or bad or len(digests) != args.streams:
                raise SystemExit(f"memory: {len(errors)} streams failed ({errors[:3]}), "
                                 f"{len(bad)} bodies differ")
            stream_peak = max(status_kib(proc.pid, "VmHWM"), sampled_peak)
            rows.append((f"peak streaming to {args.streams} clients (VmHWM)",
                         (stream_peak, anon_peak)))
            rows.append(("idle after streaming", settled_rss_kib(proc.pid)))
            per_stream = (stream_peak - before_streams) / args.streams

            # Served once from a cache filled by an earlier process: nothing of the fill is left.
            stop_proxy(proc)
            proc, port = start_proxy(args.binary, flags, log, "memory")
            rows.append(("restarted on that cache, idle", settled_rss_kib(proc.pid)))
            if hashlib.sha256(get_once(port, zip_path)).hexdigest() != want:
                raise SystemExit("memory: the zip served after the restart differs")
            rows.append(("idle after serving it once", settled_rss_kib(proc.pid)))
        finally:
            if proc is not None:
                stop_proxy(proc)
            sumdb.stop()
            upstream.stop()

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"memory: zip {zip_bytes / MIB:.1f} MiB filled in {fill_seconds:.1f}s; "
          f"{args.streams} streams at {args.rate / 1e6:.1f} MB/s took {stream_seconds:.1f}s; "
          f"load average {load}")
    print(f"memory: the store after the fill (MiB, /status.json): {store_memory}")
    print("| phase | resident (VmRSS) | anonymous (RssAnon) |")
    print("|---|---:|---:|")
    for name, (kib, anon_kib) in rows:
        anon = "-" if anon_kib is None else f"{anon_kib / 1024:.1f} MiB"
        print(f"| {name} | {kib / 1024:.1f} MiB | {anon} |")
    print(f"| per stream (peak above idle, / {args.streams}) | {per_stream:.0f} KiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
