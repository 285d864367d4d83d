"""`gomodproxy probe`: the one-shot mirror comparison, run as the real binary against test
upstreams on 127.0.0.1 (a full tree, a half tree with a stale list, a refused port, a tier that
answers 500, and `direct`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import module_tree as mt
from conftest import SANITIZER_RE, proxy_binary
from test_upstream import RefusedPort

PROBE_TIMEOUT = 120.0
ROUNDS = 2

# Unpinned modules use each upstream's own newest listed version; the pseudo-version-only module
# has an empty list, so it is pinned.
MODULE_LINES = [
    mt.HELLO,
    mt.UPPER,
    mt.HELLO_V2,
    mt.INCOMPAT,
    f"{mt.PSEUDO}@{mt.PSEUDO_VERSION}",
    mt.PRIVATE,
]

# B's hello list is stale: it lacks v1.2.0, which the full tree lists.
STALE_HELLO_LIST = b"v1.0.0\nv1.1.0\n"


def run_probe(*args: str, timeout: float = PROBE_TIMEOUT) -> subprocess.CompletedProcess:
    binary = proxy_binary()
    assert binary.exists(), f"{binary} not found (build it, or set GOMODPROXY_BIN)"
    # No proxy variables: every request must go straight to the loopback upstreams.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GOMODPROXY_") and not k.lower().endswith("_proxy")}
    proc = subprocess.run([str(binary), "probe", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, env=env)
    # Under a sanitizer build a report fails the test even when the output looked right.
    assert not SANITIZER_RE.search(proc.stderr), proc.stderr
    return proc


def write_modules(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "modules.txt"
    path.write_text("# modules every mirror is asked about\n\n" + "\n".join(lines) + "\n")
    return path


def semver_key(version: str):
    core, _, pre = version[1:].split("+")[0].partition("-")
    major, minor, patch = (int(x) for x in core.split("."))
    return (major, minor, patch, 0 if pre else 1, pre)


def listed(body: bytes) -> list[str]:
    return sorted({line.split()[0] for line in body.decode().splitlines() if line.strip()},
                  key=semver_key)


def split_target(line: str) -> tuple[str, str | None]:
    path, _, version = line.partition("@")
    return path, version or None


def by_name(report: dict) -> dict[str, dict]:
    return {u["name"]: u for u in report["upstreams"]}


def test_probe_compares_full_half_refused_and_failing_upstreams(tree, half_tree, make_upstream,
                                                                tmp_path):
    a = make_upstream(tree.root, "a-full")
    b = make_upstream(half_tree.root, "b-half")
    b.serve_body(r"^/example\.com/hello/@v/list$", STALE_HELLO_LIST)
    d = make_upstream(tree.root, "d-500")
    d.fail(r".", 500)
    modules = write_modules(tmp_path, MODULE_LINES)
    with RefusedPort() as c:
        proc = run_probe("--upstreams", f"{a.url},{b.url}|{c.url}|{d.url},direct",
                         "--modules", str(modules), "--rounds", str(ROUNDS), "--format", "json",
                         "--timeout", "5s")
        c_name = f"127.0.0.1:{c.port}"
    assert proc.returncode == 0, proc.stderr

    # stdout is exactly one JSON document; the progress went to stderr.
    report = json.loads(proc.stdout)
    assert "probe: round" not in proc.stdout
    progress = [line for line in proc.stderr.splitlines() if line.startswith("probe: round")]
    probed_upstreams = 4  # direct is skipped
    assert len(progress) == ROUNDS * len(MODULE_LINES) * probed_upstreams, proc.stderr
    assert "probe: skipping direct" in proc.stderr

    assert report["modules"] == len(MODULE_LINES)
    assert report["rounds"] == ROUNDS
    assert report["timeout_ms"] == 5000
    assert [u["name"] for u in report["upstreams"]] == [
        a.host_port, b.host_port, c_name, d.host_port, "direct"]
    upstreams = by_name(report)
    ra, rb, rc, rd, rdirect = (upstreams[n] for n in
                               (a.host_port, b.host_port, c_name, d.host_port, "direct"))
    targets = [split_target(line) for line in MODULE_LINES]
    in_b = set(half_tree.module_paths())

    # What each upstream lists, straight from the trees.
    def a_versions(path):
        return listed(tree.list_body(path))

    def b_versions(path):
        if path not in in_b:
            return None
        return listed(STALE_HELLO_LIST if path == mt.HELLO else half_tree.list_body(path))

    # A: everything found, every request answered, exactly rounds x modules x 4 requests.
    assert ra["skipped"] is None
    assert ra["url"] == a.url
    assert ra["requests"] == ROUNDS * len(MODULE_LINES) * 4
    assert ra["answered"] == ra["requests"]
    assert ra["success_rate"] == 1
    assert (ra["hits"], ra["lookups"]) == (ROUNDS * len(MODULE_LINES), ROUNDS * len(MODULE_LINES))
    assert ra["hit_rate"] == 1
    assert len(a.requests) == ROUNDS * len(MODULE_LINES) * 4
    zip_bytes = 0
    for path, pin in targets:
        version = pin or a_versions(path)[-1]
        mv = tree.get(path, version)
        assert a.count(f"/{mt.escape_path(path)}/@v/list") == ROUNDS, path
        for suffix in (".info", ".mod", ".zip"):
            assert a.count(mv.url_path(suffix)) == ROUNDS, mv.url_path(suffix)
        zip_bytes += ROUNDS * mv.zip_size
    assert ra["zip"]["count"] == ROUNDS * len(MODULE_LINES)
    assert ra["zip"]["bytes"] == zip_bytes
    assert ra["zip"]["time_ms"]["samples"] == ROUNDS * len(MODULE_LINES)
    assert ra["ttfb_ms"]["samples"] == ra["requests"]
    ttfb = ra["ttfb_ms"]
    assert 0 < ttfb["p50"] <= ttfb["p95"] < 5000
    assert 0 < ttfb["mean"] < 5000
    for kind in ("list", "info", "mod", "zip"):
        assert ra["by_kind"][kind]["requests"] == ROUNDS * len(MODULE_LINES), kind
    assert ra["sync_lag"] == {"compared_modules": len(MODULE_LINES), "missing_count": 0,
                              "missing": []}
    assert ra["failures"] == []

    # B: misses the modules the half tree lacks, lags by exactly what A lists beyond B's lists,
    # and fetches its own newest hello (v1.1.0), never v1.2.0.
    b_hits = sum(1 for path, pin in targets if path in in_b and (pin or b_versions(path)))
    assert (rb["hits"], rb["lookups"]) == (ROUNDS * b_hits, ROUNDS * len(MODULE_LINES))
    assert abs(rb["hit_rate"] - b_hits / len(MODULE_LINES)) < 1e-4
    assert 0 < b_hits < len(MODULE_LINES)
    expected_lag = []
    for path, _ in targets:
        own = set(b_versions(path) or [])
        expected_lag += [f"{path}@{v}" for v in a_versions(path) if v not in own]
    assert rb["sync_lag"]["missing"] == expected_lag
    assert rb["sync_lag"]["missing_count"] == len(expected_lag)
    assert rb["sync_lag"]["compared_modules"] == len(MODULE_LINES)
    assert f"{mt.HELLO}@v1.2.0" in expected_lag
    fetched_in_b = [path for path, pin in targets if path in in_b]
    assert rb["requests"] == ROUNDS * (len(MODULE_LINES) + 3 * len(fetched_in_b))
    assert len(b.requests) == rb["requests"]
    assert rb["answered"] == rb["requests"]  # 404s are answers
    assert b.count(tree.get(mt.HELLO, "v1.1.0").url_path(".zip")) == ROUNDS
    assert b.count(tree.get(mt.HELLO, "v1.2.0").url_path(".info")) == 0

    # C refuses connections: every request fails, nothing to compare, no TTFB.
    pinned = sum(1 for _, pin in targets if pin)
    assert rc["requests"] == ROUNDS * (len(MODULE_LINES) + 3 * pinned)
    assert rc["answered"] == 0
    assert rc["success_rate"] == 0
    assert rc["hit_rate"] == 0
    assert rc["ttfb_ms"]["mean"] is None
    assert rc["sync_lag"]["missing_count"] is None
    assert rc["sync_lag"]["compared_modules"] == 0
    assert rc["failures"] and "refused" in rc["failures"][0]["reason"]

    # D answers 500 to everything: failures with a TTFB, counted in its own log.
    assert rd["success_rate"] == 0
    assert rd["requests"] == ROUNDS * (len(MODULE_LINES) + 3 * pinned)
    assert len(d.requests) == rd["requests"]
    assert rd["ttfb_ms"]["samples"] == rd["requests"]
    assert rd["failures"][0]["count"] == rd["requests"]
    assert "500" in rd["failures"][0]["reason"]

    # direct is reported, not probed.
    assert rdirect["skipped"]
    assert rdirect["url"] is None
    assert rdirect["requests"] == 0
    assert rdirect["success_rate"] is None


def test_probe_table_and_markdown_name_every_upstream(tree, half_tree, make_upstream, tmp_path):
    a = make_upstream(tree.root, "a-full")
    b = make_upstream(half_tree.root, "b-half")
    modules = write_modules(tmp_path, [mt.HELLO, mt.HELLO_V2])
    with RefusedPort() as c:
        upstreams = f"{a.url}|{b.url}|{c.url}|off"
        names = [a.host_port, b.host_port, f"127.0.0.1:{c.port}", "off"]
        table = run_probe("--upstreams", upstreams, "--modules", str(modules))
        markdown = run_probe("--upstreams", upstreams, "--modules", str(modules),
                             "--format=markdown")
    for proc in (table, markdown):
        assert proc.returncode == 0, proc.stderr
        assert "probe: round" not in proc.stdout
        assert "probe: round 1/1, module 2/2:" in proc.stderr

    lines = table.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("UPSTREAM"))
    rows = lines[header + 1: header + 1 + len(names)]
    assert [row.split()[0] for row in rows] == names
    # Aligned: the SUCCESS column ends at the same offset in the header and every row.
    end = lines[header].index("SUCCESS") + len("SUCCESS")
    for row in rows:
        assert row[end - 1] != " " and (len(row) == end or row[end] == " "), row
    assert "100.0%" in rows[0]
    assert f"1 missing: {mt.HELLO_V2}@v2.0.0" in table.stdout

    md_rows = [line for line in markdown.stdout.splitlines() if line.startswith("|")]
    assert md_rows[0].startswith("| Upstream |")
    assert md_rows[1].startswith("|:--")
    assert len(md_rows) == 2 + len(names)
    for name, row in zip(names, md_rows[2:]):
        assert row.startswith(f"| `{name}` |"), row
    assert md_rows[-1].rstrip().endswith("skipped: off disables module lookups |")


def test_probe_times_out_a_hung_upstream_and_still_reports(tree, make_upstream, tmp_path):
    hung = make_upstream(tree.root, "hung")
    hung.hang(r".")
    modules = write_modules(tmp_path, [mt.HELLO])
    proc = run_probe("--upstreams", hung.url, "--modules", str(modules), "--timeout", "300ms",
                     "--format", "json", timeout=30)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    (upstream,) = report["upstreams"]
    assert upstream["requests"] == 1  # no list, so no version to fetch
    assert upstream["success_rate"] == 0
    assert "timeout" in upstream["failures"][0]["reason"]
    assert hung.count(f"/{mt.HELLO}/@v/list") == 1


def test_probe_usage_errors_exit_2_with_one_line(tmp_path):
    cases = [
        (["--bogus"], "--bogus"),
        (["--rounds", "0"], "--rounds"),
        (["--format", "yaml"], "--format"),
        (["--upstreams", "ftp://mirror.example"], "--upstreams"),
        (["--upstreams", "http://127.0.0.1:9", "--modules", str(tmp_path / "missing.txt")],
         "cannot read"),
        (["--upstreams", "http://127.0.0.1:9", "--modules", str(tmp_path)], "cannot read"),
    ]
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{mt.HELLO}\n# fine so far\nExample.com/Bad Path\n")
    cases.append((["--upstreams", "http://127.0.0.1:9", "--modules", str(bad)], "line 3"))
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    cases.append((["--upstreams", "http://127.0.0.1:9", "--ca-file", str(not_pem)],
                  "--ca-file: " + f'"{not_pem}" is not a CA bundle'))
    for args, expected in cases:
        proc = run_probe(*args, timeout=30)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stdout == "", args
        lines = proc.stderr.splitlines()
        assert len(lines) == 1, (args, proc.stderr)
        assert expected in lines[0], (args, lines[0])
        assert lines[0].startswith("gomodproxy probe: "), lines[0]


def test_probe_help_exits_0():
    proc = run_probe("--help", timeout=30)
    assert proc.returncode == 0
    assert "--upstreams" in proc.stdout and "--modules" in proc.stdout
