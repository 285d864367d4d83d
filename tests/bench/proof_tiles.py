"""One cold verified fill whose checksum proof needs several tiles: how long a GET of a zip
through a fresh proxy takes when the upstream and the checksum database are distant.

Usage: python3 tests/bench/proof_tiles.py <gomodproxy> [--compare <other gomodproxy>]
                                          [--rounds N] [--delay SECONDS] [--tree-size N]

One module (example.com/prooftiles v1.0.0) at record 0 of a checksum database log of
`--tree-size` records (default 700: the proof needs tile/8/0/000, tile/8/0/002.p/188 and
tile/8/1/000.p/2); tests/support/test_upstream.py serves the module and tests/support/test_sumdb.py
the database, both answering every request after `--delay` (default 0.15 s), on 127.0.0.1. Each
round starts, for each binary in an order alternated per round, a fresh proxy (fresh --cache-dir,
shipped defaults: verification on, access log and metrics on) and times one GET of the zip: the
body, the lookup and the proof's tiles. Prints the median, min and max per binary, and the
database's tile requests of each fill with how many of them overlapped (were in flight together).
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import bench_proxy  # noqa: E402  (next to this script)
import module_tree as mt  # noqa: E402  (path set up above)
import test_sumdb  # noqa: E402
import test_upstream  # noqa: E402

MODULE = "example.com/prooftiles"


def seed_log(records_file: Path, module: mt.ModuleVersion, tree_size: int) -> None:
    """The database's log: `module` at record 0, filler records up to `tree_size`."""
    records_file.parent.mkdir(parents=True, exist_ok=True)
    with records_file.open("w") as out:
        text = (f"{module.path} {module.version} {module.zip_sum}\n"
                f"{module.path} {module.version}/go.mod {module.mod_sum}\n")
        out.write(json.dumps({"path": module.path, "version": module.version,
                              "text": text}) + "\n")
        for record_id in range(1, tree_size):
            path = f"filler.invalid/r{record_id}"
            out.write(json.dumps({"path": path, "version": "v1.0.0",
                                  "text": f"{path} v1.0.0 h1:{record_id:043d}=\n"}) + "\n")


def timed_get(port: int, path: str, expected: bytes) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        started = time.monotonic()
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        elapsed = time.monotonic() - started
    finally:
        conn.close()
    if resp.status != 200 or body != expected:
        raise SystemExit(f"proof_tiles: GET {path} answered {resp.status}: {body[:200]!r}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", type=Path)
    parser.add_argument("--compare", type=Path, help="another gomodproxy, run side by side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.15)
    parser.add_argument("--tree-size", type=int, default=700)
    args = parser.parse_args()

    binaries = {"this": args.binary}
    if args.compare:
        binaries["other"] = args.compare
    times: dict[str, list[float]] = {name: [] for name in binaries}
    overlaps: dict[str, list[str]] = {name: [] for name in binaries}
    scratch = Path(tempfile.mkdtemp(prefix="proof_tiles."))
    try:
        tree = mt.ModuleTree(scratch / "tree")
        module = tree.add(MODULE, "v1.0.0", {
            "go.mod": f"module {MODULE}\n\ngo 1.19\n".encode(),
            "p.go": b"package prooftiles\n",
        })
        zip_path = module.url_path(".zip")
        expected = tree.file_bytes(zip_path)
        database = test_sumdb.TestSumdb(tree.root, scratch / "sumdb", delay=args.delay)
        seed_log(database.records_file, module, args.tree_size)
        with database as sumdb:
            upstream = test_upstream.TestUpstream(tree.root, "upstream").start()
            try:
                upstream.delay(".", args.delay)
                names = list(binaries)
                for round_no in range(args.rounds):
                    order = names if round_no % 2 == 0 else names[::-1]
                    for name in order:
                        base = scratch / f"{name}-{round_no}"
                        (base / "cache").mkdir(parents=True)
                        flags = ["--cache-dir", str(base / "cache"), "--upstreams", upstream.url,
                                 *sumdb.flags]
                        proc, port = bench_proxy.start_proxy(binaries[name], flags,
                                                             base / "proxy.stderr", "proof_tiles")
                        try:
                            sumdb.clear_log()
                            elapsed = timed_get(port, zip_path, expected)
                        finally:
                            bench_proxy.stop_proxy(proc, timeout=10)
                        # The database logs a request as its answer goes out, on a reader
                        # thread: on a loaded machine the lines may trail the proxy's answer.
                        sumdb.wait_count("/tile/", 1, timeout=5.0)
                        time.sleep(0.3)
                        tiles = sumdb.count("/tile/")
                        pairs = len(sumdb.overlapping("/tile/"))
                        times[name].append(elapsed)
                        overlaps[name].append(f"{tiles} tiles, {pairs} overlapping pairs")
                        print(f"round {round_no + 1} {name:6s} {elapsed * 1000:7.1f} ms "
                              f"({overlaps[name][-1]})", flush=True)
            finally:
                upstream.clear_faults()
                upstream.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"\ncold verified GET of one zip, {args.delay * 1000:.0f} ms on upstream and checksum "
          f"database, tree of {args.tree_size} records, median of {args.rounds}")
    print(f"{'binary':8s} {'median ms':>10s} {'min ms':>8s} {'max ms':>8s}")
    for name, path in binaries.items():
        print(f"{name:8s} {statistics.median(times[name]) * 1000:10.1f} "
              f"{min(times[name]) * 1000:8.1f} {max(times[name]) * 1000:8.1f}  {path}")


if __name__ == "__main__":
    main()
