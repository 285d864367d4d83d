"""Failover past a hung tier with the shipped timing defaults (only the upstream URLs are given):
the first request is hedged to the next tier after the stall limit, the stall and a failed probe
mark the hung tier down within 3 s, later requests skip it, a recovered tier is used again within
two probe intervals, and a healthy but slow tier is hedged only while its pace is unknown. The
transitions are logged once each, naming the tier."""

from __future__ import annotations

import re
import time

import module_tree as mt
from polling import wait_for
from test_monitor import mod_paths, scrape, tier_name, value

# The shipped defaults these tests rely on (see README and config/gomodproxy.example.toml).
DEFAULT_PROBE_INTERVAL = 30.0
DEFAULT_STALL_MIN = 1.0


def up(proxy, upstream) -> float:
    return value(scrape(proxy), "gomodproxy_upstream_up", upstream=tier_name(upstream))


def timed_get(proxy, path: str):
    started = time.monotonic()
    resp = proxy.get(path, timeout=30)
    return resp, time.monotonic() - started


def log_lines(proxy, pattern: str) -> list[str]:
    return [line for line in proxy.log_text().splitlines() if re.search(pattern, line)]


def hung_then_recovered(tree, make_upstream, start_proxy):
    """Runs the hung-tier scenario with default settings; returns (proxy, a, b, figures)."""
    a = make_upstream(tree.root, "A")
    b = make_upstream(tree.root, "B")
    hang = a.hang(r".*")
    proxy = start_proxy(f"{a.url}|{b.url}")
    paths = mod_paths(tree, 4)
    figures = {}
    try:
        started = time.monotonic()
        resp, figures["first"] = timed_get(proxy, paths[0])
        assert resp.status == 200 and resp.body == tree.file_bytes(paths[0]), resp.text
        assert b.count(paths[0]) == 1
        assert hang.wait_arrivals(1, timeout=5)  # A was asked first

        wait_for(lambda: up(proxy, a) == 0, 10, "A marked down")
        figures["down_after"] = time.monotonic() - started

        resp, figures["second"] = timed_get(proxy, paths[1])
        assert resp.status == 200 and resp.body == tree.file_bytes(paths[1]), resp.text
        assert a.count(paths[1]) == 0, "a request waited on A although A is down"
        assert b.count(paths[1]) == 1
    finally:
        hang.release()
        a.clear_faults()
    recovered = time.monotonic()
    wait_for(lambda: up(proxy, a) == 1, 2 * DEFAULT_PROBE_INTERVAL + 5, "A up again")
    resp, _ = timed_get(proxy, paths[2])
    figures["used_again_after"] = time.monotonic() - recovered
    assert resp.status == 200 and resp.body == tree.file_bytes(paths[2]), resp.text
    assert a.count(paths[2]) == 1, "the recovered tier was not asked"
    assert b.count(paths[2]) == 0
    return proxy, a, b, figures


def test_hung_tier_is_passed_at_once_marked_down_and_used_again_when_it_recovers(
        tree, make_upstream, start_proxy):
    proxy, a, b, figures = hung_then_recovered(tree, make_upstream, start_proxy)
    print(f"failover figures: {figures}")
    assert figures["first"] < 2.0, f"first request took {figures['first']:.2f} s"
    assert figures["first"] >= DEFAULT_STALL_MIN * 0.9, "answered before A could have stalled"
    assert figures["down_after"] < 3.0, f"A marked down after {figures['down_after']:.2f} s"
    assert figures["second"] < 0.5, f"second request took {figures['second']:.2f} s"
    assert figures["used_again_after"] < 2 * DEFAULT_PROBE_INTERVAL


def test_tier_transitions_and_probe_failures_are_logged_once_each(tree, make_upstream,
                                                                   start_proxy):
    proxy, a, b, _ = hung_then_recovered(tree, make_upstream, start_proxy)
    A = re.escape(tier_name(a))
    down = log_lines(proxy, rf"\[warning\] upstream {A} is down \(breaker open")
    assert len(down) == 1, down
    assert "stalled and a probe failed too: timeout" in down[0], down[0]
    probe_failed = log_lines(proxy, rf"\[warning\] probe of upstream {A} failed: timeout")
    assert len(probe_failed) == 1, probe_failed
    assert len(log_lines(proxy, rf"\[info\] probe of upstream {A} answered again")) == 1
    assert len(log_lines(proxy, rf"\[info\] upstream {A} is on trial")) == 1
    assert len(log_lines(proxy, rf"\[info\] upstream {A} is up \(breaker closed")) == 1
    # B never failed, so nothing is said about it; no line names a module.
    assert not log_lines(proxy, rf"(upstream|probe of upstream) {re.escape(tier_name(b))}")
    for line in log_lines(proxy, rf"upstream {A}"):
        assert "example.com" not in line, line
    # The access log (stderr by default) has every request; spdlog's own thread writes it, a
    # moment after the answer.
    wait_for(lambda: len(log_lines(proxy, r" access GET /example\.com/")) == 3, 5,
             "three access log lines")


def test_slow_tier_is_hedged_only_while_its_pace_is_unknown(tree, make_upstream, start_proxy):
    # A healthy tier that always answers after 3 s. Rule (README): a tier not heard from yet is
    # hedged after stall_min (1 s); once it has answered, only after twice its usual time to
    # first byte (at most stall_max, 8 s), so 3 s answers are not hedged again.
    a = make_upstream(tree.root, "A")
    b = make_upstream(tree.root, "B")
    slow = a.delay(r".*", 3.0)
    proxy = start_proxy(f"{a.url}|{b.url}")
    paths = mod_paths(tree, 4)

    resp, took = timed_get(proxy, paths[0])
    assert resp.status == 200 and resp.body == tree.file_bytes(paths[0])
    assert took < 2.0, f"the first request to an unknown tier was not hedged ({took:.2f} s)"
    assert b.count(paths[0]) == 1
    # Its stall and a failed 1 s probe mark A down for a moment; A's own late answer (at 3 s)
    # puts it back on trial and teaches the proxy A's pace.
    assert slow.wait_completed(1, timeout=5)
    wait_for(lambda: up(proxy, a) == 1, 5, "A back once its late answer arrived")

    for path in paths[1:]:
        resp, took = timed_get(proxy, path)
        assert resp.status == 200 and resp.body == tree.file_bytes(path)
        assert 2.9 <= took < 5.0, f"{path} took {took:.2f} s"
        assert a.count(path) == 1
        assert b.count(path) == 0, f"{path}: a healthy slow tier was hedged again"
    assert up(proxy, a) == 1
