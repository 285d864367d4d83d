"""Hedging (--hedge-after): a tier that has not started answering in time gets the next tier
asked alongside, the first valid answer wins, and the slow one is abandoned."""

import threading
import time

import module_tree as mt
import pytest

HELLO_INFO = "/example.com/hello/@v/v1.2.0.info"
HELLO_ZIP = "/example.com/hello/@v/v1.2.0.zip"


@pytest.mark.parametrize("separator", [",", "|"])
def test_silent_tier_is_hedged_and_the_next_tier_answers(tree, make_upstream, start_proxy,
                                                         separator):
    slow = make_upstream(tree.root, "A-silent")
    fast = make_upstream(tree.root, "B")
    hang = slow.hang(r".*")
    try:
        # Without hedging this request would wait 20 s for A's first-byte deadline.
        proxy = start_proxy(f"{slow.url}{separator}{fast.url}", "--hedge-after", "300ms",
                            "--first-byte-timeout", "20s")
        for path in (HELLO_INFO, HELLO_ZIP):
            start = time.monotonic()
            resp = proxy.get(path, timeout=30)
            elapsed = time.monotonic() - start
            assert resp.status == 200, resp.text
            assert resp.body == tree.file_bytes(path)
            assert 0.3 <= elapsed < 5.0, f"{path} took {elapsed:.2f} s"
            assert fast.count(path) == 1
        assert hang.wait_arrivals(2, timeout=5)  # A was asked first, every time
        # The winner was cached: no tier is asked again.
        assert proxy.get(HELLO_ZIP).body == tree.file_bytes(HELLO_ZIP)
        assert fast.count(HELLO_ZIP) == 1
    finally:
        hang.release()


def test_without_hedging_the_silent_tier_costs_its_whole_deadline(tree, make_upstream,
                                                                   start_proxy):
    slow = make_upstream(tree.root, "A-silent")
    fast = make_upstream(tree.root, "B")
    hang = slow.hang(r".*")
    try:
        proxy = start_proxy(f"{slow.url}|{fast.url}", "--first-byte-timeout", "2s",
                            "--hedge-after", "0s")
        start = time.monotonic()
        resp = proxy.get(HELLO_INFO, timeout=30)
        elapsed = time.monotonic() - start
        assert resp.status == 200
        assert elapsed >= 1.9, f"answered after {elapsed:.2f} s: something hedged"
    finally:
        hang.release()


def test_a_tier_that_answers_in_time_is_not_hedged(tree, make_upstream, start_proxy):
    first = make_upstream(tree.root, "A")
    second = make_upstream(tree.root, "B")
    proxy = start_proxy(f"{first.url}|{second.url}", "--hedge-after", "2s")
    for module_path, version in [(mt.HELLO, "v1.2.0"), (mt.UPPER, "v1.0.0")]:
        mv = tree.get(module_path, version)
        for suffix in (".info", ".mod", ".zip"):
            assert proxy.get(mv.url_path(suffix)).body == tree.file_bytes(mv.url_path(suffix))
    assert second.requests == []


def test_hedge_loses_to_a_slow_tier_that_answers_first(tree, make_upstream, start_proxy):
    """The hedge is asked but is slower still: the first tier's valid answer wins."""
    first = make_upstream(tree.root, "A-slowish")
    second = make_upstream(tree.root, "B-slower")
    gate_a = first.gate(r"\.zip$")
    gate_b = second.gate(r"\.zip$")
    try:
        proxy = start_proxy(f"{first.url}|{second.url}", "--hedge-after", "200ms",
                            "--first-byte-timeout", "20s")
        outcome = []
        client = threading.Thread(
            target=lambda: outcome.append(proxy.get(HELLO_ZIP, timeout=30)))
        client.start()
        assert gate_b.wait_arrivals(1, timeout=10), "the hedge was never asked"
        gate_a.open()  # A answers while B is still held
        client.join(20)
        assert outcome and outcome[0].status == 200
        assert outcome[0].body == tree.file_bytes(HELLO_ZIP)
        assert gate_a.wait_completed(1, timeout=5)
    finally:
        gate_a.open()
        gate_b.open()
    # B's answer, if it ever came, was dropped: A's stays cached.
    assert proxy.get(HELLO_ZIP).body == tree.file_bytes(HELLO_ZIP)
