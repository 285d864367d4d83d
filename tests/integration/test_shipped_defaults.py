"""What ships, run as shipped. The sum.golang.org verifier key in every place a user meets it (the
binary's defaults, the example config, the bootstrap script on disk and as served) is the go
command's own, read from the Go installations on this machine. `gomodproxy serve` with no flags
at all, and with only --upstreams, and `gomodproxy probe` with no flags run in a network
namespace of their own, where the public tiers and checksum databases the defaults name are
unreachable: every failure is reported, tier by tier, and nothing hangs."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import module_tree as mt
from conftest import REPO, proxy_binary

HELP_DEFAULT_RE = re.compile(r"^\s*--sumdb-key KEYS\s+\(env GOMODPROXY_SUMDB_KEY; default (\S+)\)$",
                             re.MULTILINE)
SCRIPT_KEY_RE = re.compile(rb"^sum_golang_org_key=(\S+)$", re.MULTILINE)
RUNNER = REPO / "tests" / "support" / "shipped_defaults_run.py"
RUN_TIMEOUT = 300.0
# Each unreachable tier fails at once here (no route, so no DNS); where a resolver or a connect
# would hang instead, the shipped per-tier deadlines (5 s connect) still bound it.
ANSWER_SECONDS = 20.0
DEFAULT_TIERS = ["goproxy.cn", "goproxy.io", "direct"]
DEFAULT_SUMDB_TIERS = ["goproxy.cn/sumdb/sum.golang.org", "goproxy.io/sumdb/sum.golang.org",
                       "sum.golang.org"]


def test_every_copy_of_the_sum_golang_org_key_is_the_go_commands(go_key, tree, make_upstream,
                                                                  start_proxy):
    # go_key (conftest) is read from each installed go command's source and binary.
    help_text = subprocess.run([str(proxy_binary()), "serve", "--help"], capture_output=True,
                               text=True, timeout=30, check=True).stdout
    assert HELP_DEFAULT_RE.findall(help_text) == [go_key]

    example = tomllib.loads((REPO / "config" / "gomodproxy.example.toml").read_text())
    assert example["sumdb_key"] == go_key

    script = (REPO / "config" / "bootstrap.sh").read_bytes()
    assert SCRIPT_KEY_RE.findall(script) == [go_key.encode()]
    served = start_proxy(make_upstream(tree.root).url).get("/bootstrap.sh")
    assert served.status == 200 and SCRIPT_KEY_RE.findall(served.body) == [go_key.encode()]

    # The one source the build generates the default from and checks the copies against.
    assert (REPO / "config" / "sum.golang.org.key").read_text() == go_key + "\n"


# --- the server as shipped, in a network namespace of its own --------------------------------

def run_as_shipped(tmp_path: Path, *, gets=(), awaits=(), tree: Path | None = None,
                   flags=(), then: str | None = None) -> dict:
    """tests/support/shipped_defaults_run.py under `unshare -n`: only loopback, so the public
    hosts the defaults name are unreachable and 127.0.0.1:8081 is free."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is not installed")
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    cmd = ["unshare", "-n", sys.executable, str(RUNNER), "--binary", str(proxy_binary()),
           "--workdir", str(workdir)]
    if tree is not None:
        cmd += ["--tree", str(tree)]
    for path in gets:
        cmd += ["--get", path]
    for path, text in awaits:
        cmd += ["--await", path, text]
    if then is not None:
        home = tmp_path / "home"
        home.mkdir()
        cmd += ["--then", then, "--then-home", str(home)]
    cmd += ["--", *flags]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOMODPROXY_")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    print("===== proxy stderr =====\n" + report["stderr"][-20000:])  # shown when a test fails
    report["workdir"] = workdir
    return report


def tier_lines(answer: dict) -> dict[str, str]:
    """The error body's lines after the first, as {tier: reason}."""
    lines = answer["body"].splitlines()
    return dict(line.split(": ", 1) for line in lines[1:])


def assert_reported_failure(answer: dict, tiers: list[str]) -> None:
    assert answer["status"] == 404, answer
    assert answer["content_type"] == "text/plain; charset=utf-8", answer
    assert answer["cache_control"] == "no-store", answer
    assert answer["body"].startswith("not found: "), answer
    reasons = tier_lines(answer)
    assert list(reasons) == tiers and all(reasons.values()), answer
    assert answer["seconds"] < ANSWER_SECONDS, answer


def test_serve_with_no_flags_at_all(tmp_path):
    module_paths = ["/golang.org/x/mod/@v/list", "/golang.org/x/text/@v/v0.14.0.info",
                    "/golang.org/x/mod/@v/v0.1.0.mod"]
    sumdb_paths = ["/sumdb/sum.golang.org/latest",
                   "/sumdb/sum.golang.org/lookup/golang.org/x/mod@v0.1.0"]
    up_zero = ['gomodproxy_upstream_up{upstream="goproxy.cn"} 0',
               'gomodproxy_upstream_up{upstream="goproxy.io"} 0']
    report = run_as_shipped(
        tmp_path,
        gets=["/healthz", *module_paths, "/golang.org/x/net/@latest",
              "/sumdb/sum.golang.org/supported", *sumdb_paths, "/bootstrap.sh"],
        awaits=[("/metrics", text) for text in up_zero])

    assert report["listening"] == "gomodproxy listening on http://127.0.0.1:8081"
    assert (report["workdir"] / "var" / "cache" / "CURRENT").is_file()
    answers = {a["path"]: a for a in report["answers"]}
    assert answers["/healthz"]["status"] == 200
    for path in module_paths:
        assert_reported_failure(answers[path], DEFAULT_TIERS)
    # Three failed requests opened both breakers (--breaker-failures 3): the next request skips
    # them at once and says so, and the metrics show both tiers down.
    latest = answers["/golang.org/x/net/@latest"]
    assert_reported_failure(latest, DEFAULT_TIERS)
    assert tier_lines(latest)["goproxy.cn"] == tier_lines(latest)["goproxy.io"] == \
        "skipped (circuit open)"
    assert all(a["seen"] for a in report["awaited"]), report["awaited"]
    assert answers["/sumdb/sum.golang.org/supported"]["status"] == 200
    for path in sumdb_paths:
        assert_reported_failure(answers[path], DEFAULT_SUMDB_TIERS)
    assert answers["/bootstrap.sh"]["status"] == 200

    assert report["exit"] == 0
    log = report["stderr"]
    assert "[info] listening on 127.0.0.1:8081, cache ./var/cache, upstreams " \
        "https://goproxy.cn|https://goproxy.io|direct" in log
    for path in module_paths:  # the access log is on, on stderr
        assert f" access GET {path} 404 " in log, path
    assert "[debug]" not in log and "terminate" not in log

    # `cache verify` with no flags reads the same default cache: nothing in it, nothing corrupt.
    verify = subprocess.run([str(proxy_binary()), "cache", "verify"], cwd=report["workdir"],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_verification_is_on_by_default(tree, tmp_path):
    """Only --upstreams is given: --verify sumdb and the default checksum database hold, so a
    module the (unreachable) sum.golang.org cannot vouch for is served neither as go.mod nor as
    zip, while what needs no vouching (list, .info) is; the reason names every database tier."""
    hello = f"/{mt.HELLO}/@v"
    report = run_as_shipped(
        tmp_path, tree=tree.root, flags=["--upstreams", "{upstream}"],
        gets=[f"{hello}/list", f"{hello}/v1.2.0.info", f"{hello}/v1.2.0.mod",
              f"{hello}/v1.2.0.zip"])
    answers = {a["path"]: a for a in report["answers"]}
    assert answers[f"{hello}/list"]["status"] == 200
    assert answers[f"{hello}/v1.2.0.info"]["status"] == 200
    for kind in ("mod", "zip"):
        answer = answers[f"{hello}/v1.2.0.{kind}"]
        assert answer["status"] == 404 and answer["cache_control"] == "no-store", answer
        [first, verdict] = answer["body"].splitlines()
        assert first == f"not found: {mt.HELLO}@v1.2.0"
        assert verdict.startswith("not verified: sum.golang.org lookup: "), verdict
        named = [part.split(": ", 1)[0] for part in
                 verdict.removeprefix("not verified: sum.golang.org lookup: ").split("; ")]
        assert named == DEFAULT_SUMDB_TIERS, verdict
        assert answer["seconds"] < ANSWER_SECONDS, answer
    # The bytes came from the upstream and were refused, not missing there.
    assert f"{hello}/v1.2.0.mod" in report["upstream_requests"]
    assert f"{hello}/v1.2.0.zip" in report["upstream_requests"]
    assert report["exit"] == 0


def test_probe_with_no_flags_at_all():
    """`gomodproxy probe` as shipped: the default mirrors and modules, all unreachable here. It
    still runs to the end, reports each mirror's failures and exits 0."""
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" probe', str(proxy_binary())],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("GOMODPROXY_")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()
            if line.startswith(("goproxy.", "direct "))}
    assert list(rows) == ["goproxy.cn", "goproxy.io", "direct"], proc.stdout
    # Four default modules, one list request each, none answered; direct is not an HTTP mirror.
    assert rows["goproxy.cn"][:2] == rows["goproxy.io"][:2] == ["4", "0.0%"], proc.stdout
    assert rows["direct"][0] == "-", proc.stdout
    assert "probe: skipping direct: " in proc.stderr
    for module in ("golang.org/x/mod", "golang.org/x/text", "github.com/google/uuid",
                   "gopkg.in/yaml.v3"):
        assert f"goproxy.cn {module}: list failed" in proc.stderr, module


def test_default_ttls_keep_list_and_not_found_answers(tree, make_upstream, start_proxy):
    """--list-ttl (60s) and --negative-ttl (30s) as shipped: a second ask within them is
    answered from the cache, and the list says how long a client may keep it."""
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url)
    listing = f"/{mt.HELLO}/@v/list"
    missing = "/example.com/never-published/@v/list"
    for _ in range(2):
        answer = proxy.get(listing)
        assert answer.status == 200 and answer.body == tree.list_body(mt.HELLO)
        assert answer.header("Cache-Control") == "public, max-age=60"
        assert proxy.get(missing).status == 404
    assert upstream.count(listing) == 1
    assert upstream.count(missing) == 1


def test_bootstrap_local_finds_the_proxy_serve_listens_on_by_default(tree, tmp_path):
    """bootstrap.sh --local and `gomodproxy serve` as shipped agree on 127.0.0.1:8081; the
    proxy serves the test tree (a module sum.golang.org cannot vouch for here, hence
    --verify off) and the script's other defaults (--fallback direct, --sumdb sum.golang.org)
    hold."""
    hello = f"{mt.HELLO}@v1.2.0"
    report = run_as_shipped(
        tmp_path, tree=tree.root, flags=["--upstreams", "{upstream}", "--verify", "off"],
        then=f"sh {REPO / 'config' / 'bootstrap.sh'} --local --check-module {hello} --yes")
    then = report["then"]
    assert then["exit"] == 0, then["stdout"] + then["stderr"]
    proxy = "http://127.0.0.1:8081"
    env_file = (tmp_path / "home" / ".config" / "go" / "env").read_text()
    assert f"GOPROXY={proxy}|direct\n" in env_file
    assert f"GOSUMDB=sum.golang.org {proxy}/sumdb/sum.golang.org\n" in env_file
    assert "resolved v1.2.0 through the proxy" in then["stdout"]
    assert report["exit"] == 0


def test_private_modules_go_to_direct_by_default(tree, make_upstream, start_proxy):
    """--private alone: --private-upstreams is `direct` as shipped, so a private module is never
    asked of the public tier (which has it here), nor looked up in the checksum database (routed
    through the same upstream, so its log would show it)."""
    public = make_upstream(tree.root, "public")
    # `direct` now really runs the go command, which reaches a private module's host through the
    # server's own proxy settings: point them at a closed loopback port so nothing leaves the
    # machine and go's fetch fails at once.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"
    env = dict(os.environ, HTTPS_PROXY=nowhere, https_proxy=nowhere, HTTP_PROXY=nowhere,
               http_proxy=nowhere, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    try:
        proxy = start_proxy(public.url, "--private", mt.PRIVATE,
                            "--sumdb", f"sum.golang.org={public.url}/sumdb/sum.golang.org",
                            env=env)
        answer = proxy.get(f"/{mt.PRIVATE}/@v/v1.0.0.info")
    finally:
        closed.close()
    assert answer.status == 404 and answer.header("Cache-Control") == "no-store", answer.text
    assert list(tier_lines({"body": answer.text})) == ["direct"], answer.text
    # The go command ran and failed reaching the (closed) proxy, not a placeholder answer.
    assert "direct: go mod download" in answer.text and "127.0.0.1" in answer.text, answer.text
    assert proxy.get(f"/sumdb/sum.golang.org/lookup/{mt.PRIVATE}@v1.0.0").status == 404
    assert proxy.get(f"/{mt.HELLO}/@v/list").status == 200  # the public tier is there
    assert [p for p in public.paths() if "private" in p] == []
