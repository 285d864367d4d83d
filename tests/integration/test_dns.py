"""Host name lookups of upstream tiers (issue 12, item 5): a name whose DNS queries are dropped
holds up only the tiers that use it, never the lookups of other names; answers are cached for
their TTL; /etc/hosts is read before DNS.

Each test runs the real proxy in a network namespace of its own whose resolv.conf points at
tests/support/tiny_dns.py, itself running in that namespace with the test upstream; the test's
thread steps into the namespace to start them and to send its requests. Skipped only where
network namespaces cannot be made (not root, no iproute2); CI runs as root."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import module_tree as mt
import netns
from conftest import http_request, proxy_binary
from test_upstream import TestUpstream
from tiny_dns import TYPE_A, TYPE_AAAA, TinyDns

GOOD = "good.test"            # answered by the tiny DNS server, TTL 300 s
SHORT_TTL = "short-ttl.test"  # answered by the tiny DNS server, TTL 2 s
SILENT = "blackhole.test"     # every query dropped
PINNED = "pinned.test"        # only in the namespace's /etc/hosts
SHORT_TTL_SECONDS = 2
DEFAULT_CONNECT_TIMEOUT = 5.0  # the shipped --connect-timeout

HELLO_INFO = "/example.com/hello/@v/v1.2.0.info"

_reason = netns.unavailable_reason()
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")


@dataclass
class DnsWorld:
    namespace: netns.NetNamespace
    dns: TinyDns
    upstream: TestUpstream

    def url(self, name: str) -> str:
        return f"http://{name}:{self.upstream.port}"


@pytest.fixture
def dns_world(tree, tmp_path, monkeypatch):
    name = f"gmpdns{os.getpid()}"
    hosts = f"127.0.0.1 localhost\n::1 localhost\n127.0.0.1 {PINNED}\n"
    with netns.NetNamespace(name, "nameserver 127.0.0.1\n", hosts) as namespace:
        with namespace.inside():
            dns = TinyDns({GOOD: ("127.0.0.1", 300), SHORT_TTL: ("127.0.0.1", SHORT_TTL_SECONDS)},
                          silent={SILENT}).start()
            upstream = TestUpstream(tree.root, "good").start()
            # start_proxy reads the binary's path when it starts a proxy.
            monkeypatch.setenv("GOMODPROXY_BIN",
                               str(namespace.wrap(proxy_binary().resolve(), tmp_path)))
            try:
                yield DnsWorld(namespace, dns, upstream)
            finally:
                upstream.stop()
                dns.stop()


def timed_get(port: int, path: str, timeout: float = 60.0):
    start = time.monotonic()
    resp = http_request(port, path, timeout=timeout)
    return resp, time.monotonic() - start


def test_a_silent_name_costs_only_its_own_tier_with_the_shipped_defaults(dns_world, tree,
                                                                         start_proxy):
    """Before: Asio's resolver thread sat in getaddrinfo() for blackhole.test (resolv.conf's
    5 s x 2 attempts), so good.test's lookup waited behind it and timed out at its own connect
    deadline too; the request failed after ~10 s."""
    proxy = start_proxy(f"{dns_world.url(SILENT)}|{dns_world.url(GOOD)}")
    resp, elapsed = timed_get(proxy.port, HELLO_INFO)
    assert resp.status == 200, resp.text
    assert resp.body == tree.file_bytes(HELLO_INFO)
    # The silent tier costs its connect deadline (or less, should failover get smarter); the
    # good tier's lookup and fetch add well under a second.
    assert elapsed < DEFAULT_CONNECT_TIMEOUT + 1.5, f"answered after {elapsed:.2f} s"
    assert dns_world.dns.queries(SILENT) >= 1
    assert dns_world.dns.queries(GOOD) >= 1


def test_the_next_tier_answers_at_once_for_many_requests_while_a_name_hangs(dns_world, tree,
                                                                            start_proxy):
    """Before: every hedged attempt's lookup of good.test queued behind blackhole.test's, and all
    of them failed at the connect deadline (5 s)."""
    proxy = start_proxy(f"{dns_world.url(SILENT)}|{dns_world.url(GOOD)}", "--hedge-after",
                        "200ms")
    paths = [mv.url_path(suffix) for mv in tree.versions.values()
             if mv.path not in (mt.BIG, mt.PRIVATE) for suffix in (".info", ".mod")]
    assert len(paths) >= 12
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        results = list(pool.map(lambda p: (p, *timed_get(proxy.port, p)), paths))
    wall = time.monotonic() - start
    for path, resp, elapsed in results:
        assert resp.status == 200, f"{path}: {resp.status} {resp.text}"
        assert resp.body == tree.file_bytes(path)
        # Measured 0.2 s (the hedge delay plus a few ms); the margin is for sanitizer builds.
        assert elapsed < 3.0, f"{path} answered after {elapsed:.2f} s"
    assert wall < 4.0, f"{len(paths)} requests took {wall:.2f} s"
    assert dns_world.dns.queries(SILENT) >= 1
    # The concurrent lookups of good.test share queries and then the cache.
    assert 1 <= dns_world.dns.queries(GOOD) <= 2


def test_a_silent_name_alone_fails_at_its_connect_deadline(dns_world, start_proxy):
    proxy = start_proxy(dns_world.url(SILENT), "--connect-timeout", "1s")
    resp, elapsed = timed_get(proxy.port, HELLO_INFO)
    assert resp.status in (404, 502), resp.text
    assert "timeout after 1s (connect: dns lookup)" in resp.text
    assert elapsed < 2.5, f"answered after {elapsed:.2f} s"


def test_an_unknown_name_fails_at_once(dns_world, start_proxy):
    proxy = start_proxy(dns_world.url("missing.test"))
    resp, elapsed = timed_get(proxy.port, HELLO_INFO)
    assert resp.status in (404, 502), resp.text
    assert "dns: host not found" in resp.text
    assert elapsed < 1.0, f"answered after {elapsed:.2f} s"


def test_answers_are_cached_for_their_ttl_and_asked_again_after_it(dns_world, tree,
                                                                   start_proxy):
    """Before: every new connection ran getaddrinfo(), so the second request asked DNS again."""
    upstream = dns_world.upstream
    proxy = start_proxy(dns_world.url(SHORT_TTL), "--probe-interval", "0")
    versions = [mv for mv in tree.versions.values() if mv.path not in (mt.BIG, mt.PRIVATE)]

    def fetch_on_a_new_connection(mv: mt.ModuleVersion) -> None:
        # Restarting the upstream closes the proxy's pooled connection, so the next fetch has to
        # connect, and so to look the name up, again.
        upstream.stop()
        upstream.start()
        path = mv.url_path(".info")
        resp = http_request(proxy.port, path, timeout=30)
        assert resp.status == 200, resp.text
        assert resp.body == tree.file_bytes(path)

    fetch_on_a_new_connection(versions[0])
    answered_at = time.monotonic()
    assert dns_world.dns.queries(SHORT_TTL) == 1
    fetch_on_a_new_connection(versions[1])
    assert time.monotonic() - answered_at < SHORT_TTL_SECONDS, "too slow to test the cache"
    assert dns_world.dns.queries(SHORT_TTL) == 1, "asked again within the TTL"
    time.sleep(max(0.0, answered_at + SHORT_TTL_SECONDS + 0.3 - time.monotonic()))
    fetch_on_a_new_connection(versions[2])
    assert dns_world.dns.queries(SHORT_TTL) == 2, "not asked again after the TTL"


def test_a_changed_resolv_conf_is_followed_without_a_restart(dns_world, tree, start_proxy):
    """c-ares reads resolv.conf once per channel; the resolver makes a new channel when the file
    changes, as glibc and Go notice a laptop joining another network."""
    # Nothing listens on 127.0.0.2:53, so lookups are refused at once.
    dns_world.namespace.rewrite("resolv.conf", "nameserver 127.0.0.2\n")
    proxy = start_proxy(dns_world.url(GOOD), "--probe-interval", "0")
    versions = [mv for mv in tree.versions.values() if mv.path not in (mt.BIG, mt.PRIVATE)]
    refused, elapsed = timed_get(proxy.port, versions[0].url_path(".info"))
    assert refused.status in (404, 502) and "dns: " in refused.text, refused.text
    assert elapsed < 2.0, f"answered after {elapsed:.2f} s"
    assert dns_world.dns.queries(GOOD) == 0
    dns_world.namespace.rewrite("resolv.conf", "nameserver 127.0.0.1\n")
    time.sleep(1.5)  # the resolver looks at resolv.conf at most once a second
    path = versions[1].url_path(".info")
    resp = http_request(proxy.port, path, timeout=30)
    assert resp.status == 200, resp.text
    assert resp.body == tree.file_bytes(path)
    assert dns_world.dns.queries(GOOD) == 1


def test_etc_hosts_is_read_before_dns_and_an_edit_counts_at_once(dns_world, tree, start_proxy):
    proxy = start_proxy(dns_world.url(PINNED), "--probe-interval", "0")
    resp = http_request(proxy.port, HELLO_INFO, timeout=30)
    assert resp.status == 200, resp.text
    assert resp.body == tree.file_bytes(HELLO_INFO)
    assert dns_world.dns.queries(PINNED, TYPE_A) == 0
    assert dns_world.dns.queries(PINNED, TYPE_AAAA) == 0
    # /etc/hosts answers carry no TTL: an edit counts from the next lookup on.
    dns_world.namespace.rewrite("hosts", f"127.0.0.1 localhost\n127.0.0.2 {PINNED}\n")
    dns_world.upstream.stop()  # closes the pooled connection, so the next fetch looks up again
    dns_world.upstream.start()
    moved = http_request(proxy.port, "/example.com/hello/@v/v1.1.0.info", timeout=30)
    assert moved.status in (404, 502), moved.text
    assert f"{PINNED}:{dns_world.upstream.port}: connection refused" in moved.text
