"""@latest from tiers that do not serve it: a static GOPROXY tree (files only: list, .info, .mod,
.zip) answers 404 for `@latest`. The go command then works it out from `@v/list` and the newest
version's go.mod; the proxy answers `@latest` the same way, and the bootstrap script's check
falls back as go does."""

import json
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import module_tree as mt

SCRIPT = Path(__file__).resolve().parents[2] / "config" / "bootstrap.sh"

RETRACTING = "example.com/retracting"  # v1.2.0 retracts itself and v1.1.0
PRERELEASES = "example.com/prereleases"  # tagged pre-releases only
COMPATIBLE = "example.com/compatible"  # v1.0.0 has a go.mod: v2.0.0+incompatible is ignored
LEGACY = "example.com/legacy"  # no go.mod anywhere: v2.0.0+incompatible is latest


def _static_tree(root: Path) -> mt.ModuleTree:
    tree = mt.ModuleTree(root)

    def add(path: str, version: str, mod: bytes, with_go_mod: bool = True):
        files = {"x.go": f'package x\n\nconst V = "{version}"\n'.encode()}
        if with_go_mod:
            files["go.mod"] = mod
        tree.add(path, version, files, mod=mod)

    plain = f"module {RETRACTING}\n\ngo 1.19\n".encode()
    add(RETRACTING, "v1.0.0", plain)
    add(RETRACTING, "v1.1.0", plain)
    add(RETRACTING, "v1.2.0", plain + b"\nretract (\n\tv1.2.0 // published by mistake\n"
                                       b"\tv1.1.0\n)\n")
    add(RETRACTING, "v1.3.0-rc.1", plain)  # a pre-release never beats a release
    for version in ("v0.1.0-alpha", "v0.2.0-beta", "v0.2.0-alpha"):
        add(PRERELEASES, version, f"module {PRERELEASES}\n\ngo 1.19\n".encode())
    add(COMPATIBLE, "v1.0.0", f"module {COMPATIBLE}\n\ngo 1.19\n".encode())
    add(COMPATIBLE, "v2.0.0+incompatible", f"module {COMPATIBLE}\n".encode(), with_go_mod=False)
    add(LEGACY, "v1.0.0", f"module {LEGACY}\n".encode(), with_go_mod=False)
    add(LEGACY, "v2.0.0+incompatible", f"module {LEGACY}\n".encode(), with_go_mod=False)
    return tree


EXPECTED = {RETRACTING: "v1.0.0", PRERELEASES: "v0.2.0-beta", COMPATIBLE: "v1.0.0",
            LEGACY: "v2.0.0+incompatible"}


def _latest_url(path: str) -> str:
    return f"/{mt.escape_path(path)}/@latest"


def test_proxy_answers_latest_as_go_works_it_out(tmp_path, make_upstream, start_proxy, make_go):
    tree = _static_tree(tmp_path / "tree")
    upstream = make_upstream(tree.root)
    for path in EXPECTED:
        assert upstream.count(_latest_url(path)) == 0
    # The yardstick: go itself against the static tree, with no proxy of ours in between.
    direct = make_go(upstream.url)
    for path, version in EXPECTED.items():
        listed = json.loads(direct.run("list", "-m", "-json", f"{path}@latest").stdout)
        assert listed["Version"] == version, (path, listed)

    proxy = start_proxy(upstream.url)
    for path, version in EXPECTED.items():
        answer = proxy.get(_latest_url(path))
        assert answer.status == 200, (path, answer.status, answer.body)
        assert json.loads(answer.body)["Version"] == version, path
        assert answer.header("Cache-Control") == "public, max-age=60"
        assert answer.body == tree.file_bytes(tree.get(path, version).url_path(".info"))

    # Kept for the list TTL: asked again, the tier is not.
    asked = upstream.count(_latest_url(RETRACTING))
    assert asked == 1
    again = proxy.get(_latest_url(RETRACTING))
    assert again.status == 200 and upstream.count(_latest_url(RETRACTING)) == asked

    # And go through the proxy agrees.
    through = make_go(proxy.url)
    for path, version in EXPECTED.items():
        listed = json.loads(through.run("list", "-m", "-json", f"{path}@latest").stdout)
        assert listed["Version"] == version, (path, listed)


def test_a_request_during_the_derivation_waits_for_it(tmp_path, make_upstream, start_proxy):
    tree = _static_tree(tmp_path / "tree")
    upstream = make_upstream(tree.root)
    held_list = upstream.gate(re.escape(f"/{mt.escape_path(RETRACTING)}/@v/list") + "$")
    proxy = start_proxy(upstream.url)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(proxy.get, _latest_url(RETRACTING))
        # The tier has answered 404 for @latest; the derivation waits for the list.
        assert held_list.wait_arrivals(1, timeout=10)
        second = pool.submit(proxy.get, _latest_url(RETRACTING))
        time.sleep(0.5)  # long enough for an answer from the cache to arrive
        held_list.open()
        for answer in (first.result(timeout=30), second.result(timeout=30)):
            assert answer.status == 200, (answer.status, answer.body)
            assert json.loads(answer.body)["Version"] == EXPECTED[RETRACTING]
    assert upstream.count(_latest_url(RETRACTING)) == 1
    assert upstream.count(f"/{RETRACTING}/@v/list") == 1


def test_latest_with_verification_on(tmp_path, make_upstream, make_sumdb, start_proxy):
    """Verification at its default (only the database's address and key are the test's): the
    go.mod whose retractions decide @latest is read only once the database vouched for it."""
    tree = _static_tree(tmp_path / "tree")
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags)
    for path, version in EXPECTED.items():
        answer = proxy.get(_latest_url(path))
        assert answer.status == 200, (path, answer.status, answer.body)
        assert json.loads(answer.body)["Version"] == version, path
    assert sumdb.wait_count(f"/lookup/{mt.escape_path(RETRACTING)}@v1.2.0") == 1


def test_a_tier_that_serves_latest_is_believed(tmp_path, make_upstream, start_proxy):
    tree = _static_tree(tmp_path / "tree")
    tree.set_latest(RETRACTING, "v1.3.0-rc.1")  # its own choice, not ours to overrule
    proxy = start_proxy(make_upstream(tree.root).url)
    answer = proxy.get(_latest_url(RETRACTING))
    assert answer.status == 200 and json.loads(answer.body)["Version"] == "v1.3.0-rc.1"


def test_nothing_listed_is_still_not_found(tmp_path, make_upstream, start_proxy):
    tree = _static_tree(tmp_path / "tree")
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url)
    answer = proxy.get("/example.com/absent/@latest")
    assert answer.status == 404 and answer.header("Cache-Control") == "no-store"
    assert b"example.com/absent@latest" in answer.body


def _bootstrap(proxy_url: str, check: str, tmp_path: Path) -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "SHELL": "/bin/bash"}
    return subprocess.run(["sh", str(SCRIPT), "--proxy", proxy_url, "--check-module", check,
                           "--dry-run"], env=env, capture_output=True, text=True, timeout=120)


def test_bootstrap_accepts_a_proxy_without_latest(tmp_path, make_upstream, start_proxy):
    tree = _static_tree(tmp_path / "tree")
    # Another GOPROXY server: it has a health check but serves files only, no @latest.
    foreign = make_upstream(tree.root, name="foreign")
    foreign.serve_body(r"^/healthz$", b"ok\n")
    run = _bootstrap(foreign.url, f"{PRERELEASES}@latest", tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"proxy: {foreign.url} answers" in run.stdout
    assert foreign.count(f"/{PRERELEASES}/@v/list") == 1
    assert foreign.count(f"/{PRERELEASES}/@v/v0.2.0-beta.info") == 1

    # gomodproxy in front of a static tree answers @latest itself.
    proxy = start_proxy(make_upstream(tree.root).url)
    run = _bootstrap(proxy.url, f"{RETRACTING}@latest", tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"proxy: {proxy.url} answers" in run.stdout
