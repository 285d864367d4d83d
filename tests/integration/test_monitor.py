"""/metrics, the circuit breaker per tier and the active prober, against test upstreams."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time

import module_tree as mt
from polling import wait_for
from conftest import http_request
from test_upstream import RefusedPort

SERIES_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
PROMTOOL = "/usr/bin/promtool"
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def scrape(proxy) -> dict:
    """{(name, frozenset(labels)): value} of one /metrics scrape."""
    resp = proxy.get("/metrics")
    assert resp.status == 200, resp.text
    out = {}
    for line in resp.text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SERIES_RE.match(line)
        assert match, f"unparsable exposition line {line!r}"
        labels = frozenset(LABEL_RE.findall(match.group(2) or ""))
        out[(match.group(1), labels)] = float(match.group(3))
    return out


def value(metrics: dict, name: str, **labels) -> float:
    """The series' value; absent series fail the test (every series is pre-created)."""
    key = (name, frozenset(labels.items()))
    assert key in metrics, f"no series {name}{labels}"
    return metrics[key]


def total(metrics: dict, name: str, **labels) -> float:
    """Sum over every series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, series_labels), v in metrics.items()
               if n == name and wanted <= series_labels)


def settled_scrape(proxy) -> dict:
    """A scrape taken once no protocol request is in flight, so every answered request has
    been counted (a request is counted before it leaves the in-flight gauge)."""
    return wait_for(lambda: (lambda m: m if value(m, "gomodproxy_inflight_requests") == 0
                             else None)(scrape(proxy)), 10, "no request in flight")


def tier_name(upstream) -> str:
    return upstream.host_port


def mod_paths(tree: mt.ModuleTree, count: int) -> list[str]:
    """`count` distinct .mod/.info paths of small modules, each a separate cache key."""
    paths = []
    for mv in tree.versions.values():
        if mv.path in (mt.BIG, mt.PRIVATE):
            continue
        paths += [mv.url_path(".mod"), mv.url_path(".info")]
    assert len(paths) >= count
    return paths[:count]


def test_refused_tier_is_marked_down_skipped_and_comes_back(tree, make_upstream, start_proxy):
    a = make_upstream(tree.root, "A")
    b = make_upstream(tree.root, "B")
    proxy = start_proxy(f"{a.url}|{b.url}", "--probe-interval", "1s", "--probe-modules", mt.HELLO)
    A, B = tier_name(a), tier_name(b)
    paths = mod_paths(tree, 8)

    before = wait_for(lambda: (lambda m: m if value(m, "gomodproxy_probe_success_total",
                                                    upstream=A) >= 1 else None)(scrape(proxy)),
                      10, "the first probe of A")
    assert value(before, "gomodproxy_upstream_up", upstream=A) == 1
    assert value(before, "gomodproxy_upstream_up", upstream=B) == 1

    a.stop()
    # Three failed attempts (requests, possibly helped by a failed probe) open A's breaker.
    for path in paths[:3]:
        resp = proxy.get(path)
        assert resp.status == 200 and resp.body == tree.file_bytes(path), path
    down = settled_scrape(proxy)
    assert value(down, "gomodproxy_upstream_up", upstream=A) == 0
    assert value(down, "gomodproxy_upstream_up", upstream=B) == 1
    errors = total(down, "gomodproxy_upstream_requests_total", upstream=A, outcome="error")
    skips = total(down, "gomodproxy_upstream_requests_total", upstream=A, outcome="skipped")
    # A failed probe may have counted towards the three.
    assert 1 <= errors <= 3 and errors + skips == 3

    # Now A is skipped without being asked.
    resp = proxy.get(paths[3])
    assert resp.status == 200 and resp.body == tree.file_bytes(paths[3])
    skipped = settled_scrape(proxy)
    assert total(skipped, "gomodproxy_upstream_requests_total", upstream=A,
                 outcome="skipped") == skips + 1
    assert total(skipped, "gomodproxy_upstream_requests_total", upstream=A,
                 outcome="error") == errors
    assert total(skipped, "gomodproxy_upstream_requests_total", upstream=B, outcome="ok") == 4

    # A comes back on the same port; a probe half-opens the breaker and the next request
    # goes to A again and closes it.
    a.start()
    wait_for(lambda: value(scrape(proxy), "gomodproxy_upstream_up", upstream=A) == 1, 15,
             "a probe to mark A up again")
    resp = proxy.get(paths[4])
    assert resp.status == 200 and resp.body == tree.file_bytes(paths[4])
    assert a.count(paths[4]) == 1 and b.count(paths[4]) == 0
    back = settled_scrape(proxy)
    assert value(back, "gomodproxy_upstream_up", upstream=A) == 1
    assert value(back, "gomodproxy_probe_success_total", upstream=A) >= 2
    assert value(back, "gomodproxy_probe_ttfb_seconds", upstream=A) > 0
    resp = proxy.get(paths[5])
    assert resp.status == 200 and a.count(paths[5]) == 1 and b.count(paths[5]) == 0


def test_hanging_tier_costs_nothing_once_its_breaker_is_open(tree, make_upstream, start_proxy):
    a = make_upstream(tree.root, "A")
    b = make_upstream(tree.root, "B")
    a.hang(r"/@v/")
    # Hedging off, so each of the first requests waits for A's whole first-byte deadline.
    proxy = start_proxy(f"{a.url}|{b.url}", "--first-byte-timeout", "2s", "--probe-interval", "0",
                        "--breaker-retry-after", "10m", "--hedge-after", "0s")
    A = tier_name(a)
    paths = mod_paths(tree, 6)

    for path in paths[:3]:
        started = time.monotonic()
        resp = proxy.get(path)
        took = time.monotonic() - started
        assert resp.status == 200 and resp.body == tree.file_bytes(path), path
        assert took >= 1.9, f"{path} took {took:.2f}s; A's first-byte timeout is 2s"
    metrics = settled_scrape(proxy)
    assert value(metrics, "gomodproxy_upstream_up", upstream=A) == 0
    assert total(metrics, "gomodproxy_upstream_requests_total", upstream=A,
                 outcome="timeout") == 3
    asked_a = len(a.requests)

    for path in paths[3:]:
        started = time.monotonic()
        resp = proxy.get(path)
        took = time.monotonic() - started
        assert resp.status == 200 and resp.body == tree.file_bytes(path), path
        assert took < 1.0, f"{path} took {took:.2f}s although A is known to be down"
        assert b.count(path) == 1
    assert len(a.requests) == asked_a
    metrics = settled_scrape(proxy)
    assert total(metrics, "gomodproxy_upstream_requests_total", upstream=A,
                 outcome="skipped") == 3


def test_comma_tier_with_open_breaker_stops_the_walk_with_a_reason(tree, make_upstream,
                                                                   start_proxy):
    b = make_upstream(tree.root, "B")
    with RefusedPort() as a:
        proxy = start_proxy(f"{a.url},{b.url}", "--probe-interval", "0")
        A = f"127.0.0.1:{a.port}"
        paths = mod_paths(tree, 4)
        for path in paths[:3]:
            resp = proxy.get(path)
            assert resp.status == 404 and "connection refused" in resp.text, resp.text
        resp = proxy.get(paths[3])
        assert resp.status == 404
        assert f"{A}: skipped (circuit open)" in resp.text, resp.text
        assert resp.header("Cache-Control") == "no-store"
    assert len(b.requests) == 0


def test_metrics_move_with_traffic(tree, half_tree, make_upstream, start_proxy):
    a = make_upstream(half_tree.root, "A-half")
    b = make_upstream(tree.root, "B-full")
    proxy = start_proxy(f"{a.url},{b.url}", "--probe-interval", "0")
    A, B = tier_name(a), tier_name(b)
    in_a = set(half_tree.module_paths())
    only_b = next(mv for mv in tree.versions.values()
                  if mv.path not in in_a and mv.path not in (mt.BIG, mt.PRIVATE))
    in_both = next(mv for mv in tree.versions.values()
                   if mv.path in in_a and mv.path not in (mt.BIG, mt.PRIVATE))

    m0 = scrape(proxy)
    for kind in ("list", "latest", "info", "mod", "zip", "query", "sumdb", "other"):
        assert value(m0, "gomodproxy_requests_total", kind=kind, code="200") == 0
    assert value(m0, "gomodproxy_fallbacks_total", **{"from": A, "to": B}) == 0
    assert value(m0, "gomodproxy_inflight_requests") == 0

    # A miss that A lacks: A says not found, the walk falls back to B.
    mod_path = only_b.url_path(".mod")
    assert proxy.get(mod_path).status == 200
    # A hit of the same key.
    hit = proxy.get(mod_path)
    assert hit.status == 200 and hit.body == tree.file_bytes(mod_path)
    # A miss A serves.
    zip_path = in_both.url_path(".zip")
    zip_resp = proxy.get(zip_path)
    assert zip_resp.status == 200
    # Malformed: answered 404 without reaching any tier.
    assert proxy.get("/example.com/hello/@v/not-a-version.zip").status == 404
    assert proxy.get("/nothing-here").status == 404

    m1 = settled_scrape(proxy)
    assert value(m1, "gomodproxy_requests_total", kind="mod", code="200") == 2
    assert value(m1, "gomodproxy_requests_total", kind="zip", code="200") == 1
    assert value(m1, "gomodproxy_requests_total", kind="other", code="404") == 2
    assert value(m1, "gomodproxy_request_duration_seconds_count", kind="mod") == 2
    assert value(m1, "gomodproxy_cache_lookups_total", kind="mod", result="miss") == 1
    assert value(m1, "gomodproxy_cache_lookups_total", kind="mod", result="hit") == 1
    assert value(m1, "gomodproxy_cache_lookups_total", kind="zip", result="miss") == 1
    assert value(m1, "gomodproxy_fallbacks_total", **{"from": A, "to": B}) == 1
    assert value(m1, "gomodproxy_upstream_requests_total", upstream=A, kind="mod",
                 outcome="not_found") == 1
    assert value(m1, "gomodproxy_upstream_requests_total", upstream=B, kind="mod",
                 outcome="ok") == 1
    assert value(m1, "gomodproxy_upstream_requests_total", upstream=A, kind="zip",
                 outcome="ok") == 1
    assert value(m1, "gomodproxy_upstream_requests_total", upstream=B, kind="zip",
                 outcome="ok") == 0
    assert value(m1, "gomodproxy_upstream_ttfb_seconds_count", upstream=A) == 2
    assert value(m1, "gomodproxy_upstream_ttfb_seconds_count", upstream=B) == 1
    assert value(m1, "gomodproxy_cache_entries") >= 2
    assert value(m1, "gomodproxy_cache_bytes") >= len(zip_resp.body)
    # Everything answered before this scrape, the /metrics bodies of earlier scrapes included.
    assert value(m1, "gomodproxy_bytes_sent_total") >= 2 * len(hit.body) + len(zip_resp.body)
    assert value(m1, "gomodproxy_inflight_requests") == 0

    # Singleflight: two clients ask while B holds the answer behind a gate.
    gated = only_b
    info_path = gated.url_path(".info")
    gate = b.gate(re.escape(info_path) + "$")
    results = []
    clients = [threading.Thread(target=lambda: results.append(proxy.get(info_path)))
               for _ in range(2)]
    for client in clients:
        client.start()
    try:
        wait_for(lambda: value(scrape(proxy), "gomodproxy_inflight_requests") == 2, 10,
                 "two requests in flight")
    finally:
        gate.open()
        for client in clients:
            client.join(30)
    assert [r.status for r in results] == [200, 200]
    assert b.count(info_path) == 1
    m2 = settled_scrape(proxy)
    assert value(m2, "gomodproxy_singleflight_shared_total") == 1
    assert value(m2, "gomodproxy_requests_total", kind="info", code="200") == 2
    assert value(m2, "gomodproxy_inflight_requests") == 0


def test_metrics_endpoint_passes_promtool(tree, make_upstream, start_proxy):
    a = make_upstream(tree.root, "A")
    with RefusedPort() as dead:
        proxy = start_proxy(f"{dead.url}|{a.url}", "--probe-interval", "1s", "--probe-modules",
                            f"{mt.HELLO},{mt.UPPER}")
        for path in mod_paths(tree, 4):
            assert proxy.get(path).status == 200
        wait_for(lambda: value(scrape(proxy), "gomodproxy_probe_success_total",
                               upstream=tier_name(a)) >= 2, 10, "probes of A")
        resp = proxy.get("/metrics")
        head = proxy.head("/metrics")
    assert resp.status == 200
    assert resp.header("Content-Type") == METRICS_CONTENT_TYPE
    assert head.status == 200 and head.body == b""
    assert os.access(PROMTOOL, os.X_OK), "the Debian package prometheus provides promtool"
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=resp.body, capture_output=True,
                           timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout == b"" and check.stderr == b"", check.stdout + check.stderr


def test_probes_keep_private_and_public_modules_apart(tree, make_upstream, start_proxy):
    public = make_upstream(tree.root, "public")
    private = make_upstream(tree.root, "private")
    proxy = start_proxy(public.url, "--private", mt.PRIVATE, "--private-upstreams", private.url,
                        "--probe-interval", "1s", "--probe-modules", mt.HELLO,
                        "--private-probe-modules", mt.PRIVATE)
    hello_list = f"/{mt.escape_path(mt.HELLO)}/@v/list"
    private_list = f"/{mt.escape_path(mt.PRIVATE)}/@v/list"
    wait_for(lambda: public.count(hello_list) >= 2 and private.count(private_list) >= 2, 10,
             "two probe rounds on each tier")
    assert public.count(private_list) == 0
    assert private.count(hello_list) == 0
    # The upstream logs a probe before the proxy has read the answer and counted it.
    wait_for(lambda: all(value(scrape(proxy), "gomodproxy_probe_success_total",
                               upstream=tier_name(u)) >= 2 for u in (public, private)), 10,
             "two probe answers counted per tier")
    metrics = scrape(proxy)
    for upstream in (public, private):
        assert value(metrics, "gomodproxy_probe_failure_total", upstream=tier_name(upstream)) == 0
        assert value(metrics, "gomodproxy_probe_ttfb_seconds", upstream=tier_name(upstream)) > 0


def test_probing_off_by_interval_zero(tree, make_upstream, start_proxy):
    a = make_upstream(tree.root, "A")
    proxy = start_proxy(a.url, "--probe-interval", "0", "--probe-modules", mt.HELLO)
    time.sleep(1.5)
    assert a.requests == []
    assert value(scrape(proxy), "gomodproxy_probe_success_total", upstream=tier_name(a)) == 0
