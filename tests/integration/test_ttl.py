"""Mutable answers expire after --list-ttl and are served stale when every tier fails; not-found
answers are cached for --negative-ttl."""

import time

import module_tree as mt

LIST = "/example.com/hello/@v/list"


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_list_ttl_refresh_and_stale_if_error(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, "--list-ttl", "1s")
    expected = tree.list_body(mt.HELLO)

    first = proxy.get(LIST)
    assert first.status == 200 and first.body == expected
    assert "max-age=" in (first.header("Cache-Control") or "")
    assert proxy.get(LIST).body == expected
    assert upstream.count(LIST) == 1, "a fresh list must come from the cache"

    time.sleep(1.3)
    refreshed = proxy.get(LIST)
    assert refreshed.status == 200 and refreshed.body == expected
    # Refreshed either before answering or in the background right after.
    assert _wait_for(lambda: upstream.count(LIST) == 2, 5.0), upstream.count(LIST)

    upstream.stop()
    time.sleep(1.3)
    stale = proxy.get(LIST)
    assert stale.status == 200, stale.text
    assert stale.body == expected


def test_latest_served_stale_when_tier_fails(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, "--list-ttl", "1s")
    latest = f"/{mt.PSEUDO}/@latest"
    assert proxy.get(latest).body == tree.file_bytes(latest)
    upstream.fail(r".*", 500)
    time.sleep(1.3)
    stale = proxy.get(latest)
    assert stale.status == 200 and stale.body == tree.file_bytes(latest)
    assert upstream.count(latest) >= 2, "the expired entry was never refreshed"


def test_negative_cache_expires_after_negative_ttl(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, "--negative-ttl", "2s")
    missing = "/example.com/nothere/@v/list"
    start = time.monotonic()
    assert proxy.get(missing).status == 404
    assert proxy.get(missing).status == 404
    assert time.monotonic() - start < 1.5, "the check below assumes both fell inside the TTL"
    assert upstream.count(missing) == 1

    time.sleep(2.3)
    assert proxy.get(missing).status == 404
    assert upstream.count(missing) == 2
