"""The checksum database through gomodproxy: the real go command verifies every module via
/sumdb/<name>/... on the proxy, cold and then warm with the database stopped; private modules
and unknown databases never reach the database."""

import module_tree as mt

VERIFIED = [(mt.HELLO, "v1.2.0"), (mt.UPPER, "v1.0.0"), (mt.HELLO_V2, "v2.0.0")]


def _sumdb_flags(sumdb) -> list[str]:
    return ["--sumdb", f"{sumdb.name}={sumdb.url}", "--sumdb-key", sumdb.vkey]


def test_go_verifies_through_the_proxy_then_from_its_cache_alone(tree, make_upstream, make_sumdb,
                                                                 start_proxy, make_go):
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    proxy = start_proxy(upstream.url, *_sumdb_flags(sumdb))
    specs = [f"{path}@{version}" for path, version in VERIFIED]

    # GOSUMDB is the key alone, so go asks the proxy whether it serves the database.
    go = make_go(proxy.url)
    go.gosumdb = sumdb.vkey
    results = go.download_json(*specs)
    for (path, version), result in zip(VERIFIED, results):
        mv = tree.get(path, version)
        assert result["Sum"] == mv.zip_sum and result["GoModSum"] == mv.mod_sum, result
    lookups = sumdb.count("/lookup/")
    assert lookups == len(VERIFIED), sumdb.requests
    assert sumdb.count("/tile/") >= 1

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
    proxy = start_proxy(upstream.url, *_sumdb_flags(sumdb), "--private", mt.PRIVATE)
    resp = proxy.get(f"/sumdb/{sumdb.name}/lookup/{mt.escape_path(mt.PRIVATE)}@v1.0.0")
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
                        "--sumdb-key", genuine.vkey)
    lookup = f"/sumdb/{genuine.name}/lookup/example.com/hello@v1.2.0"
    resp = proxy.get(lookup)
    assert resp.status == 200
    assert resp.body.endswith(b"\n") and genuine.vkey.split("+")[0].encode() in resp.body
    assert impostor.count("/lookup/") == 1 and genuine.count("/lookup/") == 1
    # The verified answer was cached; the impostor is not asked again.
    genuine.stop()
    assert proxy.get(lookup).body == resp.body
    assert impostor.count("/lookup/") == 1
