"""The checksum database through gomodproxy: the real go command verifies every module via
/sumdb/<name>/... on the proxy, cold and then warm with the database stopped; private modules
and unknown databases never reach the database."""

import re
import threading

import module_tree as mt

VERIFIED = [(mt.HELLO, "v1.2.0"), (mt.UPPER, "v1.0.0"), (mt.HELLO_V2, "v2.0.0")]


def test_go_verifies_through_the_proxy_then_from_its_cache_alone(tree, make_upstream, make_sumdb,
                                                                 start_proxy, make_go):
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags, "--verify", "sumdb")
    specs = [f"{path}@{version}" for path, version in VERIFIED]

    # GOSUMDB is the key alone, so go asks the proxy whether it serves the database.
    go = make_go(proxy.url)
    go.gosumdb = sumdb.vkey
    results = go.download_json(*specs)
    for (path, version), result in zip(VERIFIED, results):
        mv = tree.get(path, version)
        assert result["Sum"] == mv.zip_sum and result["GoModSum"] == mv.mod_sum, result
    # The database's request log is read from its stderr: wait for it to catch up.
    assert sumdb.wait_count("/lookup/", len(VERIFIED)) == len(VERIFIED), sumdb.paths()
    assert sumdb.wait_count("/tile/", 1) >= 1

    # Warm: database and upstream stopped, a client with no sumdb state of its own.
    sumdb.stop()
    upstream.stop()
    go.fresh_modcache()
    results = go.download_json(*specs)
    assert [r["Sum"] for r in results] == [tree.get(p, v).zip_sum for p, v in VERIFIED]

    # supported answers 200 only for the configured database.
    assert proxy.get(f"/sumdb/{sumdb.name}/supported").status == 200
    other = proxy.get("/sumdb/sum.golang.org/supported")
    assert other.status == 404 and b"not proxied" in other.body


def test_private_lookups_and_bad_paths_never_reach_the_database(tree, make_upstream, make_sumdb,
                                                                start_proxy):
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags, "--verify", "sumdb", "--private", mt.PRIVATE)
    resp = proxy.get(f"/sumdb/{sumdb.name}{tree.get(mt.PRIVATE, 'v1.0.0').lookup_path}")
    assert resp.status == 404 and b"private" in resp.body
    for bad in ("/lookup/example.com/hello@master", "/lookup/example.com/hello",
                "/tile/8/0/0001", "/tile/8/0/000.p/256", "/tile/0/0/000", "/unknown"):
        resp = proxy.get(f"/sumdb/{sumdb.name}{bad}")
        assert resp.status == 404, (bad, resp.status)
    assert sumdb.paths() == []


def test_a_lookup_signed_by_another_key_is_not_cached(tree, make_upstream, make_sumdb,
                                                      start_proxy):
    upstream = make_upstream(tree.root)
    genuine = make_sumdb(tree.root)
    impostor = make_sumdb(tree.root)  # same name, its own key
    proxy = start_proxy(upstream.url, "--sumdb", f"{genuine.name}={impostor.url}|{genuine.url}",
                        "--sumdb-key", genuine.vkey, "--verify", "off")
    lookup = f"/sumdb/{genuine.name}/lookup/example.com/hello@v1.2.0"
    resp = proxy.get(lookup)
    assert resp.status == 200
    assert resp.body.endswith(b"\n") and genuine.vkey.split("+")[0].encode() in resp.body
    assert impostor.wait_count("/lookup/", 1) == 1 and genuine.wait_count("/lookup/", 1) == 1
    # The verified answer was cached; the impostor is not asked again.
    genuine.stop()
    assert proxy.get(lookup).body == resp.body
    assert impostor.count("/lookup/") == 1


def _metric(proxy, name: str, **labels) -> float:
    text = proxy.get("/metrics").body.decode()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series.startswith(name + "{") and all(f'{k}="{v}"' in series
                                                  for k, v in labels.items()):
            return float(value)
    raise AssertionError(f"no series {name}{{{want}}}")


def test_poisoned_tier_is_refused_and_the_genuine_bytes_are_cached(tree, make_upstream,
                                                                    make_sumdb, start_proxy,
                                                                    make_go):
    poisoned = make_upstream(tree.root, "A-poisoned")
    genuine = make_upstream(tree.root, "B-genuine")
    sumdb = make_sumdb(tree.root)
    mv = tree.get(mt.HELLO, "v1.2.0")
    zip_path, mod_path = mv.url_path(".zip"), mv.url_path(".mod")
    bad_zip = mt.tampered_zip(tree.file_bytes(zip_path))
    bad_mod = tree.file_bytes(mod_path) + b"\n// one extra line\n"
    poisoned.serve_body(re.escape(zip_path) + "$", bad_zip)
    poisoned.serve_body(re.escape(mod_path) + "$", bad_mod)
    proxy = start_proxy(f"{poisoned.url},{genuine.url}", *sumdb.flags, "--verify", "sumdb")

    go = make_go(proxy.url)
    go.gosumdb = sumdb.vkey
    # go build of a program that imports the poisoned module, with checksum verification on.
    assert go.build_and_run_program() == mt.PROGRAM_OUTPUT
    [result] = go.download_json(f"{mt.HELLO}@v1.2.0")
    assert result["Sum"] == mv.zip_sum and result["GoModSum"] == mv.mod_sum
    assert poisoned.count(zip_path) == 1 and poisoned.count(mod_path) == 1
    assert genuine.count(zip_path) == 1 and genuine.count(mod_path) == 1

    # The cache holds the genuine bytes; the poisoned ones were never served to anyone.
    assert proxy.get(zip_path).body == tree.file_bytes(zip_path)
    assert proxy.get(mod_path).body == tree.file_bytes(mod_path)
    assert genuine.count(zip_path) == 1
    tier = poisoned.host_port
    assert _metric(proxy, "gomodproxy_integrity_failures_total", upstream=tier) == 2
    assert _metric(proxy, "gomodproxy_integrity_failures_total",
                   upstream=genuine.host_port) == 0
    log = proxy.log_text()
    assert "integrity failure" in log and tier in log and mv.zip_sum in log


def test_a_forked_checksum_database_is_refused(tree, make_upstream, make_sumdb, start_proxy):
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags, "--verify", "sumdb")
    hello = tree.get(mt.HELLO, "v1.2.0").url_path(".zip")
    assert proxy.get(hello).status == 200  # verified: the proxy now knows a tree head
    upper = tree.get(mt.UPPER, "v1.0.0").url_path(".zip")
    assert proxy.get(tree.get(mt.HELLO_V2, "v2.0.0").url_path(".mod")).status == 200

    sumdb.restart(fork=True)  # same key, rewritten history
    resp = proxy.get(upper)
    assert resp.status == 404, resp.status
    assert b"does not extend" in resp.body, resp.body
    assert "misbehaves" in proxy.log_text()
    # Nothing unverified was cached: still refused while the fork is served.
    assert proxy.get(upper).status == 404


def test_no_sumdb_modules_are_cached_without_a_lookup(tree, make_upstream, make_sumdb,
                                                      start_proxy):
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags, "--verify", "sumdb", "--no-sumdb", mt.HELLO)
    hello = tree.get(mt.HELLO, "v1.2.0")
    upper = tree.get(mt.UPPER, "v1.0.0")
    assert proxy.get(hello.url_path(".zip")).body == tree.file_bytes(hello.url_path(".zip"))
    assert proxy.get(upper.url_path(".zip")).body == tree.file_bytes(upper.url_path(".zip"))
    assert sumdb.wait_count("/lookup/", 1) == 1
    assert [p for p in sumdb.paths() if p.startswith("/lookup/")] == [upper.lookup_path]


def _get_in_background(proxy, path: str) -> tuple[threading.Thread, list]:
    answers: list = []
    thread = threading.Thread(target=lambda: answers.append(proxy.get(path)), daemon=True)
    thread.start()
    return thread, answers


def test_the_lookup_travels_while_the_body_is_held(tree, make_upstream, make_sumdb, start_proxy):
    """Shipped defaults (verification on): the database is asked while the upstream still holds
    the body, so a cold verified miss costs the longer of the two, not their sum. Two clients
    and two tiers (the first failing) still cost one lookup, and nothing is served or cached
    before the body arrives and is checked."""
    failing = make_upstream(tree.root, "A-failing")
    held = make_upstream(tree.root, "B-held")
    sumdb = make_sumdb(tree.root)
    mv = tree.get(mt.HELLO, "v1.2.0")
    zip_path = mv.url_path(".zip")
    failing.fail(re.escape(zip_path) + "$", 500)
    gate = held.gate(re.escape(zip_path) + "$")
    proxy = start_proxy(f"{failing.url}|{held.url}", *sumdb.flags)

    clients = [_get_in_background(proxy, zip_path) for _ in range(2)]
    try:
        assert gate.wait_arrivals(1), "the second tier was never asked"
        # The order is the point: the lookup is answered while the body has not been sent.
        assert sumdb.wait_count("/lookup/", 1, timeout=10) == 1, sumdb.paths()
        assert gate.completed == 0 and all(not answers for _, answers in clients)
    finally:
        gate.release()
    for thread, _ in clients:
        thread.join(timeout=30)
    for _, answers in clients:
        assert len(answers) == 1 and answers[0].status == 200
        assert answers[0].body == tree.file_bytes(zip_path)
    assert failing.count(zip_path) == 1 and held.count(zip_path) == 1
    assert proxy.get(mv.url_path(".mod")).status == 200
    assert sumdb.count("/lookup/") == 1, sumdb.paths()


def test_a_body_held_past_a_failed_lookup_is_not_served(tree, make_upstream, make_sumdb,
                                                        start_proxy):
    """The lookup fails (the database is gone) while the body is still held: when the body
    arrives it is refused as before, not cached, and asked again once the database is back."""
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    mv = tree.get(mt.UPPER, "v1.0.0")
    zip_path = mv.url_path(".zip")
    gate = upstream.gate(re.escape(zip_path) + "$", times=1)
    proxy = start_proxy(upstream.url, *sumdb.flags)
    sumdb.stop()

    thread, answers = _get_in_background(proxy, zip_path)
    try:
        assert gate.wait_arrivals(1)
    finally:
        gate.release()
    thread.join(timeout=30)
    assert len(answers) == 1 and answers[0].status == 404, answers
    assert b"not verified" in answers[0].body, answers[0].body

    sumdb.start()
    again = proxy.get(zip_path)
    assert again.status == 200 and again.body == tree.file_bytes(zip_path)
    assert upstream.count(zip_path) == 2


def test_a_fill_whose_lookup_outlasts_the_fill_deadline_caches_nothing(tree, make_upstream,
                                                                       make_sumdb, start_proxy):
    """The body is in long before the database answers: the fill ends at its deadline as
    before, unverified and uncached, and the lookup it left behind harms no later fill."""
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root, delay=3.0)
    mod_path = tree.get(mt.HELLO_V2, "v2.0.0").url_path(".mod")
    proxy = start_proxy(upstream.url, *sumdb.flags, "--fill-timeout", "1s")
    resp = proxy.get(mod_path)
    assert resp.status == 404 and b"(fill deadline)" in resp.body, resp.body
    assert resp.header("Cache-Control") == "no-store"

    sumdb.stop()
    sumdb.delay = 0.0
    sumdb.start()
    again = proxy.get(mod_path)
    assert again.status == 200 and again.body == tree.file_bytes(mod_path), again.body
    assert upstream.count(mod_path) == 2
