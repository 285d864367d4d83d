"""Offline mode (--offline): a cache warmed by the real go command through a real upstream and
checksum database serves builds, verified through the proxy's /sumdb/, with both stopped. The
offline proxy names a live upstream that would answer everything, and its request log stays
empty: no fill, no refresh of an expired list, no probe. A miss is a 404 the go command shows
("offline: not cached"), and a checksum-database miss makes go fail, never skip verification."""

import json
import time

import module_tree as mt
from polling import wait_for
from test_shipped_defaults import run_as_shipped

LIST_TTL_SECONDS = 1


def test_a_warm_cache_serves_offline_and_asks_nobody(tree, make_upstream, make_sumdb,
                                                     start_proxy, make_go, tmp_path):
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    cache_dir = tmp_path / "shared-cache"
    # hello@v1.0.0 is left out of the proxy's own verification, so its lookup is never cached.
    warm_proxy = start_proxy(upstream.url, *sumdb.flags, "--verify", "sumdb", "--no-sumdb",
                             f"{mt.HELLO}", "--list-ttl", f"{LIST_TTL_SECONDS}s",
                             cache_dir=cache_dir)
    warm = make_go(warm_proxy.url)
    warm.gosumdb = sumdb.vkey
    assert warm.build_and_run_program() == mt.PROGRAM_OUTPUT
    versions = warm.list_versions(mt.HELLO)
    latest = warm.run("list", "-m", f"{mt.HELLO}@latest").stdout.split()
    listed_at = time.monotonic()
    raw_list = warm_proxy.get(f"/{mt.HELLO}/@v/list").body
    unverified = make_go(warm_proxy.url)  # GOSUMDB=off: hello@v1.0.0 cached, no lookup
    unverified.download_json(f"{mt.HELLO}@v1.0.0")
    assert warm_proxy.terminate() == 0
    upstream.stop()
    sumdb.stop()

    # Offline on the same cache; the module tier is a live upstream that would answer anything.
    watcher = make_upstream(tree.root, "watcher")
    proxy = start_proxy(watcher.url, *sumdb.flags, "--verify", "sumdb", "--list-ttl",
                        f"{LIST_TTL_SECONDS}s", "--probe-interval", "1s", "--offline",
                        cache_dir=cache_dir)
    # Logged just after the listening line.
    wait_for(lambda: "offline: answering from the cache only" in proxy.log_text(), 10,
             "the offline listening log line")
    assert proxy.get("/readyz").status == 200
    status = json.loads(proxy.get("/status.json").body)
    assert status["offline"] is True
    assert "<b>Offline</b>" in proxy.get("/status").text

    # A cold client, GOSUMDB through the proxy as the README tells users, builds.
    offline = make_go(proxy.url)
    offline.gosumdb = sumdb.vkey
    assert offline.build_and_run_program() == mt.PROGRAM_OUTPUT

    # The list and @latest have expired: served as cached, not refreshed.
    time.sleep(max(0.0, listed_at + LIST_TTL_SECONDS + 0.5 - time.monotonic()))
    assert offline.list_versions(mt.HELLO) == versions
    assert offline.run("list", "-m", f"{mt.HELLO}@latest").stdout.split() == latest
    listed = proxy.get(f"/{mt.HELLO}/@v/list")
    assert (listed.status, listed.body) == (200, raw_list)

    # A module never fetched: go reports the proxy's reason.
    never = offline.run("mod", "download", f"{mt.HELLO}@v1.1.0", check=False)
    assert never.returncode != 0 and "offline: not cached" in never.stderr, never.stderr
    # Cached files whose checksum record is not: go fails closed on the lookup's 404.
    unproven = offline.run("mod", "download", f"{mt.HELLO}@v1.0.0", check=False)
    assert unproven.returncode != 0, unproven.stderr
    assert "verifying" in unproven.stderr and "/lookup/" in unproven.stderr, unproven.stderr
    assert "offline: not cached" in unproven.stderr, unproven.stderr

    miss = proxy.get(f"/sumdb/{sumdb.name}/lookup/{mt.HELLO}@v1.1.0")
    assert (miss.status, miss.text) == (404, f"offline: not cached: {mt.HELLO}@v1.1.0\n")
    # Longer than the probe interval has passed; nothing reached the live upstream.
    assert watcher.paths() == [], watcher.paths()[:20]


def test_offline_with_the_shipped_defaults(tmp_path):
    """Only --offline: the shipped tiers, checksum database and probe interval stand (and are
    unreachable in the namespace anyway). Every answer is the cache's at once, and nothing is
    tried, probes included."""
    module_paths = ["/golang.org/x/mod/@v/list", "/golang.org/x/mod/@latest",
                    "/golang.org/x/text/@v/v0.14.0.info"]
    sumdb_paths = ["/sumdb/sum.golang.org/latest",
                   "/sumdb/sum.golang.org/lookup/golang.org/x/mod@v0.1.0"]
    report = run_as_shipped(tmp_path, flags=["--offline"],
                            gets=["/readyz", *module_paths, "/sumdb/sum.golang.org/supported",
                                  *sumdb_paths, "/status.json", "/metrics"])
    answers = {a["path"]: a for a in report["answers"]}
    assert answers["/readyz"]["status"] == 200
    assert answers["/sumdb/sum.golang.org/supported"]["status"] == 200
    for path in module_paths + sumdb_paths:
        answer = answers[path]
        assert answer["status"] == 404 and answer["cache_control"] == "no-store", answer
        assert answer["body"].startswith("offline: not cached: "), answer
        assert answer["seconds"] < 2.0, answer
    assert json.loads(answers["/status.json"]["body"])["offline"] is True
    attempts = [line for line in answers["/metrics"]["body"].splitlines()
                if line.startswith(("gomodproxy_upstream_requests_total{",
                                    "gomodproxy_probe")) and not line.endswith(" 0")]
    assert attempts == [], attempts
    log = report["stderr"]
    assert "[info] listening on 127.0.0.1:8081, cache ./var/cache, offline: answering from " \
        "the cache only, no upstream is asked" in log
    assert report["exit"] == 0
