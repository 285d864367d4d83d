"""Helpers for tests/bench/run.sh: build the module tree, serve it as the proxy's upstream, fetch
and compare every file through a server, and drive wrk against gomodproxy and nginx side by side.

Subcommands (run.sh owns process lifetimes; this file never starts the proxy or nginx):
  tree ROOT PATHS_DIR             build the tree and write one shuffled path file per mix
  upstream ROOT PORT_FILE         serve ROOT on 127.0.0.1 until SIGTERM; the port goes to PORT_FILE
  fetch BASE_URL ROOT PATH_FILE   GET every path once; fail unless each is 200 and byte-identical
  measure ...                     the wrk rounds; see `measure --help`
  load BASE_URL PATH_FILE N       exactly N GETs over a few keep-alive connections (profiling)
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import random
import re
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import module_tree  # noqa: E402  (path set up above)
import test_upstream  # noqa: E402

MODULES = 200
VERSIONS = ("v1.0.0", "v1.1.0", "v1.2.0")
KIB = 1024
MIB = 1024 * KIB

# Zip payload sizes by version index (0..599). Large zips are few, as in real module caches, and
# kept to ~80 MiB in total so building and warming the tree stays well inside the time budget.
SIZE_8M = 8 * MIB
SIZE_1M = 1 * MIB
SIZE_100K = 100 * KIB
SIZE_4K = 4 * KIB


def _payload_size(index: int) -> int:
    if index % 100 == 0:
        return SIZE_8M      # 6 zips
    if index % 25 == 0:
        return SIZE_1M      # 18 zips
    if index % 5 == 0:
        return SIZE_100K    # 96 zips
    return SIZE_4K          # 480 zips


def _write_paths(path: Path, paths: list[str], seed: int) -> None:
    # Shuffled once with a fixed seed: wrk walks the file round-robin, so consecutive requests on
    # a connection hit different modules rather than neighbours in directory order.
    shuffled = list(paths)
    random.Random(seed).shuffle(shuffled)
    path.write_text("".join(p + "\n" for p in shuffled))


def cmd_tree(args: argparse.Namespace) -> int:
    root = Path(args.root)
    out = Path(args.paths_dir)
    out.mkdir(parents=True, exist_ok=True)
    tree = module_tree.ModuleTree(root)
    rng = random.Random(20240601)
    info, mod, lists, zip_small, zip_large, zip_mid = [], [], [], [], [], []
    index = 0
    for m in range(MODULES):
        module_path = f"bench.example.com/group{m % 10}/mod{m:03d}"
        for v, version in enumerate(VERSIONS):
            size = _payload_size(index)
            gomod = f"module {module_path}\n\ngo 1.19\n".encode()
            if m % 3 == 0:
                gomod += f"\nrequire bench.example.com/group0/mod000 {VERSIONS[0]}\n".encode()
            files = {
                "go.mod": gomod,
                "doc.go": f"// Package mod{m:03d} is filler.\npackage mod{m:03d}\n".encode(),
                # Random bytes stored uncompressed, so the zip size is the payload size.
                "data.bin": rng.randbytes(size),
            }
            mv = tree.add(module_path, version, files, time=f"2024-0{v + 1}-01T00:00:00Z",
                          stored=["data.bin"])
            info.append(mv.url_path(".info"))
            mod.append(mv.url_path(".mod"))
            (zip_large if size >= SIZE_1M else zip_small).append(mv.url_path(".zip"))
            if SIZE_100K <= size <= SIZE_1M:
                zip_mid.append(mv.url_path(".zip"))
            index += 1
        lists.append(f"/{module_tree.escape_path(module_path)}/@v/list")
    _write_paths(out / "info.txt", info, 1)
    _write_paths(out / "mod.txt", mod, 2)
    _write_paths(out / "meta.txt", info + mod + lists, 3)
    _write_paths(out / "zip_small.txt", zip_small, 4)
    _write_paths(out / "zip_large.txt", zip_large, 5)
    _write_paths(out / "zip_mid.txt", zip_mid, 7)
    _write_paths(out / "all.txt", info + mod + lists + zip_small + zip_large, 6)
    sizes = {name: sum((root / p.lstrip("/")).stat().st_size for p in paths) / len(paths)
             for name, paths in (("info", info), ("mod", mod), ("list", lists),
                                 ("zip_small", zip_small), ("zip_large", zip_large))}
    (out / "sizes.json").write_text(json.dumps(sizes))
    total = sum(len(p) for p in (info, mod, lists, zip_small, zip_large))
    print(f"tree: {MODULES} modules x {len(VERSIONS)} versions, {total} files; mean sizes "
          + ", ".join(f"{k} {v:,.0f} B" for k, v in sizes.items()))
    return 0


def cmd_upstream(args: argparse.Namespace) -> int:
    upstream = test_upstream.TestUpstream(Path(args.root), name="bench-upstream").start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    tmp = Path(args.port_file + ".tmp")
    tmp.write_text(str(upstream.port))
    tmp.rename(args.port_file)
    # Bounded: run.sh stops us long before this; the bound only protects against an orphan.
    stop.wait(timeout=1800)
    upstream.stop()
    return 0


_local = threading.local()


def _get(host: str, port: int, path: str) -> tuple[int, bytes]:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        _local.conn = None
        raise


def cmd_fetch(args: argparse.Namespace) -> int:
    url = urllib.parse.urlsplit(args.base_url)
    root = Path(args.root)
    paths = [p for p in Path(args.path_file).read_text().splitlines() if p]
    failures: list[str] = []

    def one(path: str) -> int:
        try:
            status, body = _get(url.hostname, url.port, path)
        except (OSError, http.client.HTTPException):
            # A keep-alive connection the server closed between requests is legitimate; one
            # retry on a fresh connection tells that apart from a server that is down.
            try:
                status, body = _get(url.hostname, url.port, path)
            except (OSError, http.client.HTTPException) as error:
                failures.append(f"{path}: {type(error).__name__}: {error}")
                return 0
        want = (root / path.lstrip("/")).read_bytes()
        if status != 200:
            failures.append(f"{path}: status {status}: {body[:200]!r}")
        elif body != want:
            failures.append(f"{path}: body differs ({len(body)} bytes, want {len(want)})")
        return len(body)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.workers) as pool:
        total = sum(pool.map(one, paths))
    took = time.monotonic() - started
    print(f"fetch {args.label}: {len(paths)} paths, {total / MIB:.1f} MiB in {took:.1f}s, "
          f"{len(failures)} failures")
    for failure in failures[:20]:
        print(f"  {failure}")
    return 1 if failures else 0


def cmd_load(args: argparse.Namespace) -> int:
    """A fixed number of requests, so an instruction count divides into a per-request cost."""
    url = urllib.parse.urlsplit(args.base_url)
    paths = [p for p in Path(args.path_file).read_text().splitlines() if p]
    per_connection = args.requests // args.connections
    not_ok: list[str] = []

    def one_connection(number: int) -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        try:
            for i in range(per_connection):
                path = paths[(number * 7919 + i) % len(paths)]
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    not_ok.append(f"{path}: {resp.status}")
        finally:
            conn.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.connections) as pool:
        list(pool.map(one_connection, range(args.connections)))
    print(f"load: {per_connection * args.connections} requests, {len(not_ok)} not 200")
    return 1 if not_ok else 0


# --- measuring -------------------------------------------------------------------------------

_RESULT_RE = re.compile(r"^BENCH_RESULT (.*)$", re.M)


def _cpu_ticks(pids: list[int]) -> int:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)
    return ticks


def _machine_ticks() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs since boot, from /proc/stat's first line; iowait counts
    as idle."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


def _tcp_out_segments() -> int:
    """TCP segments the whole machine has sent since boot (/proc/net/snmp's Tcp OutSegs): on
    loopback with nothing else running, the server's responses, wrk's requests and the ACKs."""
    header, values = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()
                      if line.startswith("Tcp:")][:2]
    return int(values[header.index("OutSegs")])


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _with_children(pid: int) -> list[int]:
    """The process and its direct children (nginx master and its workers)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            pids.append(int(entry))
    return pids


def _run_wrk(args: argparse.Namespace, base_url: str, path_file: Path, threads: int,
             connections: int, duration: int, pids: list[int]) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
           "-s", args.lua, base_url, "--", str(path_file)]
    before = _cpu_ticks(pids)
    machine_before = _machine_ticks()
    client_before = _children_cpu_s()
    segments_before = _tcp_out_segments()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    segments_after = _tcp_out_segments()
    client_after = _children_cpu_s()
    machine_after = _machine_ticks()
    after = _cpu_ticks(pids)
    match = _RESULT_RE.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        raise SystemExit(f"wrk failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n"
                         f"{proc.stderr}")
    result = {k: float(v) for k, v in (kv.split("=") for kv in match.group(1).split())}
    seconds = result["duration_us"] / 1e6
    result["rps"] = result["requests"] / seconds
    result["mib_s"] = result["bytes"] / seconds / MIB
    result["server_cpu_s"] = (after - before) / os.sysconf("SC_CLK_TCK")
    result["cpu_ms_per_1k"] = (result["server_cpu_s"] * 1e6 / result["requests"]
                               if result["requests"] else 0.0)
    # Where the machine's cores went: the server's and wrk's share (in cores), and what stayed
    # idle. A shape whose idle share is large is bounded by the client's turn-around, not by CPU.
    wall = max(seconds, 1e-9)
    result["server_cores"] = result["server_cpu_s"] / wall
    result["client_cores"] = (client_after - client_before) / wall
    idle = machine_after[0] - machine_before[0]
    total = machine_after[1] - machine_before[1]
    result["idle_pct"] = 100.0 * idle / total if total > 0 else 0.0
    # Short segments cost the client a wake-up each: a file body sent without TCP_CORK went out
    # in 8.1 segments per 100 KiB-1 MiB zip against nginx's 6.6 (docs/benchmarks.md).
    result["segments_per_request"] = ((segments_after - segments_before) / result["requests"]
                                      if result["requests"] else 0.0)
    errors = sum(result[k] for k in ("connect_errors", "read_errors", "write_errors",
                                     "status_errors", "timeouts"))
    result["errors"] = errors
    return result


MIXES = [
    # name, path file, description, connections override (None: the shape's), target ratio
    ("info", "info.txt", ".info only", None, 1.2),
    ("mod", "mod.txt", ".mod only", None, 1.2),
    ("meta", "meta.txt", ".info + .mod + list", None, 1.2),
    ("zip_small", "zip_small.txt", "zips 4-100 KiB", None, 1.0),
    ("zip_mid", "zip_mid.txt", "zips 100 KiB-1 MiB", None, 1.0),
    ("zip_large", "zip_large.txt", "zips 1-8 MiB", None, 1.0),
    ("info_c1", "info.txt", ".info, 1 connection (latency)", 1, None),
]


def _parse_shapes(text: str) -> list[tuple[int, int]]:
    """'1x32 2x64' -> [(1, 32), (2, 64)]: wrk threads x connections."""
    shapes = []
    for word in text.split():
        threads, _, connections = word.partition("x")
        if not (threads.isdigit() and connections.isdigit()) or int(threads) < 1 \
                or int(connections) < int(threads):
            raise SystemExit(f"bench: shape {word!r} is not THREADSxCONNECTIONS (e.g. 2x64)")
        shapes.append((int(threads), int(connections)))
    if not shapes:
        raise SystemExit("bench: no shapes given")
    return shapes


def cmd_measure(args: argparse.Namespace) -> int:
    paths_dir = Path(args.paths_dir)
    servers = {
        "gomodproxy": (args.proxy_url, [args.proxy_pid]),
        "nginx": (args.nginx_url, _with_children(args.nginx_pid)),
    }
    unknown = set(args.mixes.split()) - {m[0] for m in MIXES}
    if unknown:
        raise SystemExit(f"bench: unknown mixes {sorted(unknown)}")
    runs: list[dict] = []
    for shape_index, (threads, shape_connections) in enumerate(_parse_shapes(args.shapes)):
        shape = f"-t{threads} -c{shape_connections}"
        for name, file_name, _, conns, _ in MIXES:
            if args.mixes and name not in args.mixes.split():
                continue
            if conns is not None and shape_index > 0:
                continue  # a fixed-connection mix (latency) does not depend on the shape
            connections = conns or shape_connections
            run_threads = min(threads, connections)
            duration = args.short_duration if conns == 1 else args.duration
            for round_number in range(args.rounds):
                # Alternate who goes first so slow drift (thermal, page cache, neighbours) does
                # not always favour the same server.
                order = (["gomodproxy", "nginx"] if round_number % 2 == 0
                         else ["nginx", "gomodproxy"])
                for server in order:
                    url, pids = servers[server]
                    result = _run_wrk(args, url, paths_dir / file_name, run_threads, connections,
                                      duration, pids)
                    result.update(mix=name, server=server, round=round_number + 1,
                                  shape=shape if conns is None else f"-t1 -c{conns}",
                                  threads=run_threads, connections=connections,
                                  duration_s=duration)
                    runs.append(result)
                    print(f"  {result['shape']:11s} {name:10s} round {round_number + 1} "
                          f"{server:10s} {result['rps']:10.0f} req/s "
                          f"{result['mib_s']:9.1f} MiB/s "
                          f"p50 {result['p50_us'] / 1000:7.3f} ms "
                          f"p99 {result['p99_us'] / 1000:7.3f} ms "
                          f"cpu {result['cpu_ms_per_1k']:6.1f} ms/1k req "
                          f"cores server {result['server_cores']:4.2f} "
                          f"wrk {result['client_cores']:4.2f} idle {result['idle_pct']:4.1f}% "
                          f"errors {result['errors']:.0f}", flush=True)
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    Path(args.json_out).write_text(json.dumps({"runs": runs, "settings": settings}, indent=1))
    markdown = _markdown(runs)
    Path(args.markdown_out).write_text(markdown)
    print()
    print(markdown)
    bad = [r for r in runs if r["errors"] > 0 or r["requests"] == 0]
    if bad:
        print(f"{len(bad)} runs had errors or no requests; the figures above are not valid")
        return 1
    return 0


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def _markdown(runs: list[dict]) -> str:
    lines = [
        "| wrk shape | mix | server | req/s | MiB/s | p50 ms | p99 ms |"
        " server CPU ms / 1k req | cores: server / wrk / idle % |"
        " req/s ratio gomodproxy/nginx | target | met |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    shapes = list(dict.fromkeys(r["shape"] for r in runs))
    for shape in shapes:
        for name, _, description, _, target in MIXES:
            rows = {s: [r for r in runs
                        if r["shape"] == shape and r["mix"] == name and r["server"] == s]
                    for s in ("gomodproxy", "nginx")}
            if not rows["gomodproxy"] or not rows["nginx"]:
                continue
            ratio = _median(rows["gomodproxy"], "rps") / _median(rows["nginx"], "rps")
            for server in ("gomodproxy", "nginx"):
                r = rows[server]
                first = server == "gomodproxy"
                target_text = (f"≥ {target:.1f}×" if target is not None else "—") if first else ""
                met = ("yes" if ratio >= target else "**no**") if (first and target) else ""
                lines.append(
                    f"| {shape if first else ''} | {description if first else ''} | {server} | "
                    f"{_median(r, 'rps'):,.0f} | {_median(r, 'mib_s'):,.1f} | "
                    f"{_ms(_median(r, 'p50_us'))} | {_ms(_median(r, 'p99_us'))} | "
                    f"{_median(r, 'cpu_ms_per_1k'):.1f} | "
                    f"{_median(r, 'server_cores'):.2f} / {_median(r, 'client_cores'):.2f} / "
                    f"{_median(r, 'idle_pct'):.0f} | {f'{ratio:.2f}' if first else ''} | "
                    f"{target_text} | {met} |")
    lines.append("")
    lines.append("Every run (rounds alternate which server goes first):")
    lines.append("")
    lines.append("| wrk shape | mix | round | server | req/s | MiB/s | p50 ms | p99 ms |"
                 " cores: server / wrk / idle % | TCP segments / req | errors |")
    lines.append("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        lines.append(f"| {r['shape']} | {r['mix']} | {r['round']} | {r['server']} | "
                     f"{r['rps']:,.0f} | {r['mib_s']:,.1f} | {_ms(r['p50_us'])} | "
                     f"{_ms(r['p99_us'])} | {r['server_cores']:.2f} / {r['client_cores']:.2f} / "
                     f"{r['idle_pct']:.0f} | {r['segments_per_request']:.2f} | "
                     f"{r['errors']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("tree")
    p.add_argument("root")
    p.add_argument("paths_dir")
    p.set_defaults(func=cmd_tree)
    p = sub.add_parser("upstream")
    p.add_argument("root")
    p.add_argument("port_file")
    p.set_defaults(func=cmd_upstream)
    p = sub.add_parser("fetch")
    p.add_argument("base_url")
    p.add_argument("root")
    p.add_argument("path_file")
    p.add_argument("--label", default="")
    p.add_argument("--workers", type=int, default=8)
    p.set_defaults(func=cmd_fetch)
    p = sub.add_parser("load")
    p.add_argument("base_url")
    p.add_argument("path_file")
    p.add_argument("requests", type=int)
    p.add_argument("--connections", type=int, default=8)
    p.set_defaults(func=cmd_load)
    p = sub.add_parser("measure")
    p.add_argument("--proxy-url", required=True)
    p.add_argument("--proxy-pid", type=int, required=True)
    p.add_argument("--nginx-url", required=True)
    p.add_argument("--nginx-pid", type=int, required=True)
    p.add_argument("--paths-dir", required=True)
    p.add_argument("--lua", required=True)
    p.add_argument("--shapes", default="1x32 2x64",
                   help="wrk shapes THREADSxCONNECTIONS, space-separated; each mix runs in each")
    p.add_argument("--duration", type=int, default=7)
    p.add_argument("--short-duration", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--mixes", default="",
                   help="names of the mixes to run, space-separated (default: all): "
                        + " ".join(m[0] for m in MIXES))
    p.add_argument("--json-out", required=True)
    p.add_argument("--markdown-out", required=True)
    p.set_defaults(func=cmd_measure)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
