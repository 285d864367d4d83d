"""Cold misses with verification: what a cold `go mod download` of a module graph costs through
gomodproxy with verify-before-cache on (the shipped default) and off, against the same download
straight from the upstream, with a distant upstream and checksum database.

Usage: python3 tests/bench/cold_verified.py <gomodproxy> [--compare <other gomodproxy>]
                                           [--rounds N] [--modules N] [--delay SECONDS]
                                           [--tree-size N] [--json FILE]

One module tree of `--modules` modules (bench.example/mNN v1.0.0, each requiring the next, so
the go command walks a graph) and a main module that imports them all; one test upstream
(tests/support/test_upstream.py, every answer delayed by `--delay`, default 0.15 s) and one test
checksum database (tests/support/test_sumdb.py, `-delay` the same), both on 127.0.0.1. Each
round runs every case once, in an order rotated per round, and each case gets a fresh proxy
(fresh --cache-dir, shipped defaults otherwise: access log and metrics on) and a fresh
GOMODCACHE; `go mod download` in the main module is timed (go 1.23 by path, GOFLAGS=-modcacherw,
GOTOOLCHAIN=local, GOPROXY and GOSUMDB per case, GOSUMDB naming the key only when going through
the proxy, so the go command reaches the database through it as clients do):
  upstream   GOPROXY=<upstream>, GOSUMDB=<key> <database>: no proxy at all
  verified   through the proxy, --sumdb/--sumdb-key set, verification the shipped default
  unverified through the proxy with --verify off
With --compare, `verified`/`unverified` also run for the other binary (named `<case>@other`),
side by side in the same rounds. The database gets every record before the first timed round
(one untimed download straight from the upstream), so no round pays for growing its tree.
With `--tree-size N` filler records are then appended until the log holds N records, so the
modules' records (ids 0 to --modules - 1) sit at the left of a larger tree and each proof needs
several tiles (with 700: tile/8/0/000, tile/8/0/002.p/188 and tile/8/1/000.p/2).
Prints the medians with each case's ratio to `upstream`, and how many tiles the database was
asked for in each case's runs (through the proxy: the proxy's own proofs and the go command's,
which it passes on).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import bench_proxy  # noqa: E402  (next to this script)
import module_tree as mt  # noqa: E402  (path set up above)
import test_sumdb  # noqa: E402
import test_upstream  # noqa: E402

GO = "/usr/lib/go-1.23/bin/go"
GO_TIMEOUT = 600.0
MAIN_MODULE = "bench.example/program"


def module_path(i: int) -> str:
    return f"bench.example/m{i:02d}"


def build_graph(root: Path, count: int) -> tuple[mt.ModuleTree, Path]:
    """The module tree and the main module's directory."""
    tree = mt.ModuleTree(root / "tree")
    for i in range(count):
        path = module_path(i)
        requires = f"\nrequire {module_path(i + 1)} v1.0.0\n" if i + 1 < count else ""
        body = f'package m{i:02d}\n\nfunc Name() string {{ return "m{i:02d}" }}\n'
        tree.add(path, "v1.0.0", {
            "go.mod": f"module {path}\n\ngo 1.21\n{requires}".encode(),
            f"m{i:02d}.go": body.encode(),
            # Some bulk, so the zips are not trivially small next to the go.mod files.
            "README": os.urandom(16 * 1024).hex().encode(),
        })
    program = root / "program"
    program.mkdir(parents=True)
    requires = "".join(f"\t{module_path(i)} v1.0.0\n" for i in range(count))
    (program / "go.mod").write_text(f"module {MAIN_MODULE}\n\ngo 1.21\n\nrequire (\n{requires})\n")
    imports = "".join(f'\t"{module_path(i)}"\n' for i in range(count))
    calls = "".join(f"\tprintln(m{i:02d}.Name())\n" for i in range(count))
    (program / "main.go").write_text(f"package main\n\nimport (\n{imports})\n\n"
                                     f"func main() {{\n{calls}}}\n")
    return tree, program


def grow_log(sumdb: test_sumdb.TestSumdb, tree_size: int) -> None:
    """Appends filler records to the stopped database's log until it holds `tree_size`."""
    with sumdb.records_file.open() as log:
        first = sum(1 for _ in log)
    with sumdb.records_file.open("a") as out:
        for record_id in range(first, tree_size):
            path = f"filler.invalid/r{record_id}"
            out.write(json.dumps({"path": path, "version": "v1.0.0",
                                  "text": f"{path} v1.0.0 h1:{record_id:043d}=\n"}) + "\n")


def go_env(base: Path, goproxy: str, gosumdb: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GO") and k not in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                                   "https_proxy", "ALL_PROXY", "all_proxy")}
    env.update({
        "HOME": str(base / "home"), "GOPATH": str(base / "gopath"),
        "GOMODCACHE": str(base / "modcache"), "GOCACHE": str(base / "gocache"),
        "GOENV": "off", "GOFLAGS": "-modcacherw", "GOTOOLCHAIN": "local",
        "GO111MODULE": "on", "GOPROXY": goproxy, "GOSUMDB": gosumdb,
        "GONOSUMDB": "", "GOPRIVATE": "", "GONOPROXY": "", "NO_PROXY": "*",
    })
    return env


def timed_download(program: Path, base: Path, goproxy: str, gosumdb: str) -> float:
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    work = base / "program"
    shutil.copytree(program, work)
    env = go_env(base, goproxy, gosumdb)
    started = time.monotonic()
    done = subprocess.run([GO, "mod", "download"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=GO_TIMEOUT)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"cold_verified: go mod download via {goproxy} failed:\n{done.stderr}")
    return elapsed


def run_case(case: str, binary: Path, program: Path, scratch: Path, upstream_url: str,
             sumdb: test_sumdb.TestSumdb, round_no: int) -> float:
    base = scratch / f"{case.replace('@', '-')}-{round_no}"
    if case == "upstream":
        return timed_download(program, base / "go", upstream_url, sumdb.gosumdb)
    cache_dir = base / "cache"
    cache_dir.mkdir(parents=True)
    flags = ["--cache-dir", str(cache_dir), "--upstreams", upstream_url, *sumdb.flags]
    if case.startswith("unverified"):
        flags += ["--verify", "off"]
    proc, port = bench_proxy.start_proxy(binary, flags, base / "proxy.stderr", "cold_verified")
    try:
        return timed_download(program, base / "go", f"http://127.0.0.1:{port}", sumdb.vkey)
    finally:
        bench_proxy.stop_proxy(proc, timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", type=Path)
    parser.add_argument("--compare", type=Path, help="another gomodproxy, run side by side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modules", type=int, default=24)
    parser.add_argument("--delay", type=float, default=0.15)
    parser.add_argument("--tree-size", type=int, default=0,
                        help="grow the database's log to this many records after the warm-up")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    cases = ["upstream", "verified", "unverified"]
    binaries = {"verified": args.binary, "unverified": args.binary}
    if args.compare:
        cases += ["verified@other", "unverified@other"]
        binaries.update({"verified@other": args.compare, "unverified@other": args.compare})

    scratch = Path(tempfile.mkdtemp(prefix="cold_verified."))
    times: dict[str, list[float]] = {case: [] for case in cases}
    tiles: dict[str, list[int]] = {case: [] for case in cases}
    try:
        tree, program = build_graph(scratch, args.modules)
        with test_sumdb.TestSumdb(tree.root, scratch / "sumdb", delay=args.delay) as sumdb:
            upstream = test_upstream.TestUpstream(tree.root, "upstream").start()
            try:
                upstream.delay(".", args.delay)
                timed_download(program, scratch / "warmup", upstream.url, sumdb.gosumdb)
                if args.tree_size:
                    sumdb.stop()
                    grow_log(sumdb, args.tree_size)
                    sumdb.start()
                for round_no in range(args.rounds):
                    shift = round_no % len(cases)
                    for case in cases[shift:] + cases[:shift]:
                        sumdb.clear_log()
                        elapsed = run_case(case, binaries.get(case, args.binary), program,
                                           scratch / "runs", upstream.url, sumdb, round_no)
                        times[case].append(elapsed)
                        tiles[case].append(sumdb.count("/tile/"))
                        print(f"round {round_no + 1} {case:18s} {elapsed:7.3f} s "
                              f"{tiles[case][-1]:3d} tiles", flush=True)
            finally:
                upstream.clear_faults()
                upstream.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    base = statistics.median(times["upstream"])
    print(f"\ncold `go mod download` of {args.modules} modules, {args.delay * 1000:.0f} ms on "
          f"upstream and checksum database, tree of {args.tree_size or args.modules} records, "
          f"median of {args.rounds}")
    print(f"{'case':18s} {'median s':>9s} {'min s':>7s} {'max s':>7s} {'÷ upstream':>11s} "
          f"{'tiles':>6s}")
    for case in cases:
        median = statistics.median(times[case])
        print(f"{case:18s} {median:9.3f} {min(times[case]):7.3f} {max(times[case]):7.3f} "
              f"{median / base:10.2f}× {statistics.median(tiles[case]):6.0f}")
    if args.json:
        args.json.write_text(json.dumps({"delay": args.delay, "modules": args.modules,
                                         "tree_size": args.tree_size, "times": times,
                                         "tiles": tiles}, indent=2))


if __name__ == "__main__":
    main()
