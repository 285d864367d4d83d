"""The tier walk: ',' versus '|' fallthrough, error bodies, prefix probing, hung and corrupt tiers."""

import re
import time

import module_tree as mt
from test_upstream import RefusedPort

HELLO_INFO = "/example.com/hello/@v/v1.2.0.info"
HELLO_ZIP = "/example.com/hello/@v/v1.2.0.zip"


def test_comma_stops_on_500_but_pipe_falls_through(tree, make_upstream, start_proxy):
    a = make_upstream(tree.root, "A-500")
    b = make_upstream(tree.root, "B")
    a.fail(r".*", 500)
    b_info = tree.file_bytes(HELLO_INFO)

    comma = start_proxy(f"{a.url},{b.url}")
    resp = comma.get(HELLO_INFO)
    assert resp.status in (404, 502), resp.status
    assert resp.body != b_info
    assert (resp.header("Content-Type") or "").startswith("text/plain")
    assert "no-store" in (resp.header("Cache-Control") or "")
    assert a.count(HELLO_INFO) >= 1
    assert b.requests == [], "',' must not fall through on a 500"

    pipe = start_proxy(f"{a.url}|{b.url}")
    resp = pipe.get(HELLO_INFO)
    assert resp.status == 200, resp.text
    assert resp.body == b_info
    assert b.count(HELLO_INFO) == 1


def test_all_tiers_failing_is_404_no_store_or_502_when_asked(tree, make_upstream, start_proxy):
    a = make_upstream(tree.root, "A-503")
    b = make_upstream(tree.root, "B-500")
    a.fail(r".*", 503)
    b.fail(r".*", 500)
    default = start_proxy(f"{a.url}|{b.url}")
    resp = default.get(HELLO_ZIP)
    assert resp.status == 404
    assert "no-store" in (resp.header("Cache-Control") or "")
    assert a.host_port in resp.text and b.host_port in resp.text, resp.text

    strict = start_proxy(f"{a.url}|{b.url}", "--all-failed-502")
    assert strict.get(HELLO_ZIP).status == 502


def test_unknown_module_404_names_every_tier(tree, half_tree, make_upstream, start_proxy):
    a = make_upstream(half_tree.root, "A")
    b = make_upstream(tree.root, "B")
    proxy = start_proxy(f"{a.url},{b.url}")
    resp = proxy.get("/example.com/nothere/@v/list")
    assert resp.status in (404, 410)
    assert (resp.header("Content-Type") or "").startswith("text/plain")
    lines = resp.text.splitlines()
    for tier in (a, b):
        tier_lines = [line for line in lines if tier.host_port in line]
        assert tier_lines and "404" in tier_lines[0], resp.text
    assert a.count("/example.com/nothere/@v/list") == 1
    assert b.count("/example.com/nothere/@v/list") == 1


def test_refused_tier_named_in_error_body(tree, make_upstream, start_proxy):
    with RefusedPort() as dead:
        proxy = start_proxy(dead.url)
        resp = proxy.get(HELLO_INFO)
    assert resp.status == 404
    assert "no-store" in (resp.header("Cache-Control") or "")
    assert f"127.0.0.1:{dead.port}" in resp.text


def test_unknown_prefix_is_404_fast_and_go_resolves_through_prefixes(tree, make_upstream,
                                                                     start_proxy, make_go,
                                                                     tmp_path):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url)
    start = time.monotonic()
    resp = proxy.get("/example.com/hello/sub/@v/list")
    assert resp.status in (404, 410)
    assert time.monotonic() - start < 2.0

    go = make_go(proxy.url)
    latest = go.run("list", "-m", "-json", f"{mt.HELLO}@latest")
    assert '"Version": "v1.2.0"' in latest.stdout, latest.stdout

    # `go get` of a package path probes every prefix's list; the non-module prefixes must be 404
    # for the module one to win.
    work = tmp_path / "getter"
    work.mkdir()
    (work / "go.mod").write_text("module example.com/getter\n\ngo 1.19\n")
    go.run("get", "example.com/Upper/sub", cwd=work)
    assert "example.com/Upper v1.0.0" in (work / "go.mod").read_text()
    assert upstream.count("/example.com/!upper/sub/@v/list") >= 1


def test_hung_tier_is_abandoned_after_first_byte_timeout(tree, make_upstream, start_proxy,
                                                         make_go):
    a = make_upstream(tree.root, "A-hangs")
    b = make_upstream(tree.root, "B")
    hang = a.hang(r".*")
    proxy = start_proxy(f"{a.url}|{b.url}", "--first-byte-timeout", "500ms")
    start = time.monotonic()
    resp = proxy.get(HELLO_INFO, timeout=30)
    elapsed = time.monotonic() - start
    assert resp.status == 200 and resp.body == tree.file_bytes(HELLO_INFO)
    assert elapsed < 5.0, elapsed
    assert hang.arrivals >= 1

    # The go client has no timeout of its own; the proxy must answer it in bounded time.
    go = make_go(proxy.url)
    start = time.monotonic()
    mv = tree.get(mt.UPPER, "v1.0.0")
    results = go.download_json(f"{mt.UPPER}@v1.0.0")
    assert (results[0]["Sum"], results[0]["GoModSum"]) == (mv.zip_sum, mv.mod_sum)
    assert time.monotonic() - start < 30.0


def test_corrupt_zip_tier_is_skipped(tree, make_upstream, start_proxy, make_go):
    a = make_upstream(tree.root, "A-corrupt")
    b = make_upstream(tree.root, "B")
    bad = mt.corrupt_zip_wrong_prefix(mt.HELLO, "v1.2.0")
    a.serve_body(re.escape(HELLO_ZIP) + "$", bad)
    proxy = start_proxy(f"{a.url}|{b.url}")
    good = tree.file_bytes(HELLO_ZIP)

    resp = proxy.get(HELLO_ZIP)
    assert resp.status == 200
    assert resp.body == good
    assert a.count(HELLO_ZIP) == 1 and b.count(HELLO_ZIP) == 1
    assert proxy.get(HELLO_ZIP).body == good  # and what was cached is the good one

    go = make_go(proxy.url)
    mv = tree.get(mt.HELLO, "v1.2.0")
    results = go.download_json(f"{mt.HELLO}@v1.2.0")
    assert (results[0]["Sum"], results[0]["GoModSum"]) == (mv.zip_sum, mv.mod_sum)


def test_truncated_body_tier_is_skipped(tree, make_upstream, start_proxy):
    a = make_upstream(tree.root, "A-truncates")
    b = make_upstream(tree.root, "B")
    a.truncate(re.escape(HELLO_ZIP) + "$")
    proxy = start_proxy(f"{a.url}|{b.url}")
    resp = proxy.get(HELLO_ZIP)
    assert resp.status == 200
    assert resp.body == tree.file_bytes(HELLO_ZIP)
    assert b.count(HELLO_ZIP) == 1


def test_fill_timeout_bounds_the_whole_fill_not_each_tier(tree, make_upstream, start_proxy):
    # Three tiers that accept and never answer, and a first-byte timeout far beyond the fill's:
    # the fill (not each attempt) ends at --fill-timeout, which used to allow one per tier.
    hung = [make_upstream(tree.root, f"{name}-hangs") for name in "ABC"]
    for upstream in hung:
        upstream.hang(r".*")
    proxy = start_proxy("|".join(upstream.url for upstream in hung), "--fill-timeout", "1500ms",
                        "--first-byte-timeout", "60s")
    start = time.monotonic()
    resp = proxy.get(HELLO_INFO, timeout=30)
    elapsed = time.monotonic() - start
    assert 1.4 <= elapsed < 2.8, elapsed
    assert resp.status == 404, (resp.status, resp.body)
    assert resp.header("Cache-Control") == "no-store"
    assert b"timeout after 1.5s (fill deadline)" in resp.body, resp.body
    # Nothing was cached: once a tier answers, the next request is served.
    for upstream in hung:
        upstream.clear_faults()
    assert proxy.get(HELLO_INFO).status == 200
