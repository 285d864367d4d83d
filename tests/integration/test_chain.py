"""Cold fills through a three-tier chain with the real go command, then warm from cache alone."""

import module_tree as mt
from conftest import assert_go_downloads_match, assert_go_lists_and_builds
from test_upstream import RefusedPort


def test_cold_through_tier_chain_then_warm_from_cache(tree, half_tree, make_upstream, start_proxy,
                                                      make_go):
    t1 = make_upstream(half_tree.root, "t1-half")
    t3 = make_upstream(tree.root, "t3-full")
    with RefusedPort() as t2:
        # t1 answers 404 for what it lacks (',' falls through on 404); t2 refuses connections,
        # which only '|' falls through; t3 has everything.
        proxy = start_proxy(f"{t1.url},{t2.url}|{t3.url}")
        go = make_go(proxy.url)

        assert_go_downloads_match(go, tree)
        assert_go_lists_and_builds(go)

    in_t1 = set(half_tree.module_paths())
    for mv in [mv for mv in tree.versions.values() if mv.path not in (mt.BIG, mt.PRIVATE)]:
        zip_path = mv.url_path(".zip")
        if mv.path in in_t1:
            assert t1.count(zip_path) == 1, zip_path
            assert t3.count(zip_path) == 0, zip_path
        else:
            assert t1.count(zip_path) <= 1, zip_path
            assert t3.count(zip_path) == 1, zip_path

    # WARM: every upstream gone; a fresh module cache must fill from the proxy's cache alone.
    t1.stop()
    t3.stop()
    go.fresh_modcache()
    assert_go_downloads_match(go, tree)
    assert_go_lists_and_builds(go)
