"""Private modules go only to the private tiers, never to a public one (not even as a probe)."""

import module_tree as mt


def test_private_module_never_reaches_public_tier(tree, tmp_path, make_upstream, start_proxy,
                                                  make_go):
    private_tree = tree.subset(tmp_path / "private-tree", lambda p: p == mt.PRIVATE)
    # The public upstream has the private module too, so a leak would be served and must be
    # caught by the request log rather than by a failure.
    public = make_upstream(tree.root, "public")
    private = make_upstream(private_tree.root, "private")
    proxy = start_proxy(public.url, "--private", "example.com/private*",
                        "--private-upstreams", private.url)
    go = make_go(proxy.url)

    priv = tree.get(mt.PRIVATE, "v1.0.0")
    hello = tree.get(mt.HELLO, "v1.0.0")
    results = go.download_json(f"{mt.PRIVATE}@v1.0.0", f"{mt.HELLO}@v1.0.0")
    sums = {r["Path"]: (r["Sum"], r["GoModSum"]) for r in results}
    assert sums == {mt.PRIVATE: (priv.zip_sum, priv.mod_sum),
                    mt.HELLO: (hello.zip_sum, hello.mod_sum)}
    assert go.list_versions(mt.PRIVATE) == ["v1.0.0"]

    # An unknown private module is answered without asking the public tier either.
    resp = proxy.get("/example.com/privateother/@v/list")
    assert resp.status in (404, 410)

    assert [p for p in public.paths() if "private" in p] == []
    assert private.count(priv.url_path(".zip")) == 1
    assert private.count(priv.url_path(".mod")) == 1
    assert public.count(hello.url_path(".zip")) == 1
