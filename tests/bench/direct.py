"""The `direct` tier's cost: a cold fetch from git vs a second version of the same repository vs a
warm cache hit, side by side in one run, with the default configuration.

Usage: python3 tests/bench/direct.py <path to build/gomodproxy> [--rounds N] [--padding BYTES]
                                     [--json FILE]

One git server (tests/support/git_server.py: `git http-backend` on 127.0.0.1, also the HTTP proxy
through which the go command reaches the made-up host) and one proxy started as
`gomodproxy serve --listen 127.0.0.1:0 --cache-dir <tmp> --upstreams off
--private 'git.corp.example.test/*' --sumdb sum.golang.org=<refused 127.0.0.1 port>` (so its
private upstreams are the default `direct`, with `go` from PATH, go 1.23 put first when PATH's
is older than 1.19; --upstreams off and the refused checksum database keep everything on the
machine). Each round builds a fresh repository with two tagged versions, each carrying
`--padding` bytes of incompressible text, then times, one after another:
  cold    GET v1.0.0.zip: the go command clones the repository
  second  GET v1.1.0.zip: the same repository, an incremental fetch into the kept clone
  warm    GET v1.0.0.zip again: a cache hit
and reports min / median / max per case. The proxy's stderr goes to a file in the temp dir.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import bench_proxy  # noqa: E402  (next to this script)
import direct_harness  # noqa: E402  (path set up above)
import git_repos  # noqa: E402
import git_server  # noqa: E402
import test_upstream  # noqa: E402

CASES = ("cold", "second", "warm")


def start_proxy(binary: Path, cache_dir: Path, env: dict, sumdb: str, log: Path):
    return bench_proxy.start_proxy(
        binary, ["--cache-dir", str(cache_dir), "--upstreams", "off",
                 "--private", f"{git_repos.PRIVATE_HOST}/*",
                 "--sumdb", f"sum.golang.org={sumdb}/sumdb/sum.golang.org"],
        log, "direct bench", env=env)


def get(port: int, path: str) -> tuple[int, int, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, len(body), time.monotonic() - started
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--padding", type=int, default=256 * 1024,
                        help="random bytes (written as hex) added to each version")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {case: [] for case in CASES}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="direct-bench-") as tmp:
        work = Path(tmp)
        repos = work / "repos"
        modules = [git_repos.build_simple_repo(repos, git_repos.PRIVATE_HOST, f"bench/r{i}",
                                               ("v1.0.0", "v1.1.0"), padding=args.padding)
                   for i in range(args.rounds)]
        server = git_server.GitServer(repos).start()
        nowhere = test_upstream.refused_port()
        env = direct_harness.proxy_env(server, work / "home", git_repos.PRIVATE_HOST)
        go = shutil.which("go", path=env["PATH"])
        proxy, port = start_proxy(args.binary, work / "cache", env, nowhere.url,
                                  work / "proxy.stderr")
        try:
            for module_path in modules:
                for case, version in zip(CASES, ("v1.0.0", "v1.1.0", "v1.0.0")):
                    status, size, seconds = get(port, f"/{module_path}/@v/{version}.zip")
                    if status != 200:
                        raise SystemExit(f"direct bench: {case} {module_path}@{version} "
                                         f"answered {status}; see {work / 'proxy.stderr'}")
                    times[case].append(seconds)
                    sizes[case] = size
            fetches = [r for r in server.requests if r.is_fetch]
            fresh = sum(1 for r in fetches if r.is_fresh_clone)
        finally:
            proxy.terminate()
            proxy.wait(30)
            server.stop()
            nowhere.close()

    report = {
        "go": go, "go_version": ".".join(map(str, direct_harness.go_version(go))),
        "rounds": args.rounds, "padding": args.padding, "load_before": load_before,
        "fresh_clones": fresh, "incremental_fetches": len(fetches) - fresh,
        "cases": {case: {"zip_bytes": sizes[case], "min_ms": min(v) * 1e3,
                         "median_ms": statistics.median(v) * 1e3, "max_ms": max(v) * 1e3}
                  for case, v in times.items()},
    }
    print(f"load average before: {load_before:.2f}")
    print(f"go {report['go_version']} ({go}), {args.rounds} rounds, {args.padding} bytes of "
          f"padding per version; git fetches: {fresh} fresh clones, "
          f"{report['incremental_fetches']} incremental")
    print(f"{'case':<8} {'zip bytes':>10} {'min ms':>9} {'median ms':>10} {'max ms':>9}")
    for case, row in report["cases"].items():
        print(f"{case:<8} {row['zip_bytes']:>10} {row['min_ms']:>9.1f} "
              f"{row['median_ms']:>10.1f} {row['max_ms']:>9.1f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
