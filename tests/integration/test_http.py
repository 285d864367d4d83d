"""Byte-exact answers, headers, HEAD, keep-alive and the health endpoints."""

import http.client
import json

import module_tree as mt

IMMUTABLE = "public, max-age=604800, immutable"
CANONICAL = [(mt.HELLO, "v1.2.0"), (mt.UPPER, mt.UPPER_RC), (mt.INCOMPAT, mt.INCOMPAT_VERSION),
             (mt.HELLO_V2, "v2.0.0"), (mt.PSEUDO, mt.PSEUDO_VERSION)]
CONTENT_TYPES = {".info": "application/json", ".mod": "text/plain; charset=utf-8",
                 ".zip": "application/zip"}


def _normalized(content_type):
    return (content_type or "").replace(" ", "").lower()


def test_immutable_answers_are_byte_identical_with_headers(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url)
    for module_path, version in CANONICAL:
        mv = tree.get(module_path, version)
        for suffix, content_type in CONTENT_TYPES.items():
            path = mv.url_path(suffix)
            for attempt in ("miss", "hit"):
                resp = proxy.get(path)
                where = f"{path} ({attempt})"
                assert resp.status == 200, where
                assert _normalized(resp.header("Content-Type")) == _normalized(content_type), where
                assert resp.header("Cache-Control") == IMMUTABLE, where
                if suffix == ".info":
                    assert json.loads(resp.body)["Version"] == version, where
                    assert resp.body == tree.file_bytes(path), where
                else:
                    assert resp.body == tree.file_bytes(path), where
            assert upstream.count(path) == 1, path


def test_mutable_answers_headers(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url)
    listing = proxy.get("/example.com/!upper/@v/list")
    assert listing.status == 200 and listing.body == tree.list_body(mt.UPPER)
    assert _normalized(listing.header("Content-Type")) == "text/plain;charset=utf-8"
    cache_control = listing.header("Cache-Control") or ""
    assert "max-age=" in cache_control and "immutable" not in cache_control

    latest_path = f"/{mt.PSEUDO}/@latest"
    latest = proxy.get(latest_path)
    assert latest.status == 200 and latest.body == tree.file_bytes(latest_path)
    assert _normalized(latest.header("Content-Type")) == "application/json"
    assert "max-age=" in (latest.header("Cache-Control") or "")
    assert "immutable" not in (latest.header("Cache-Control") or "")

    empty = proxy.get(f"/{mt.PSEUDO}/@v/list")
    assert empty.status == 200 and empty.body == b""


def test_head_gives_headers_without_body(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url)
    mv = tree.get(mt.HELLO, "v1.2.0")
    for suffix in (".info", ".mod", ".zip"):
        path = mv.url_path(suffix)
        get = proxy.get(path)
        head = proxy.head(path)
        assert head.status == 200 and head.body == b""
        assert head.header("Content-Type") == get.header("Content-Type")
        assert head.header("Cache-Control") == get.header("Cache-Control")
        if head.header("Content-Length") is not None:
            assert int(head.header("Content-Length")) == len(get.body)
    missing = proxy.head("/example.com/nothere/@v/list")
    assert missing.status == 404 and missing.body == b""


def test_keep_alive_serves_several_requests_on_one_connection(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url)
    mv = tree.get(mt.HELLO, "v1.0.0")
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    try:
        conn.connect()
        sock = conn.sock
        local = sock.getsockname()
        for path in (mv.url_path(".info"), mv.url_path(".mod"), mv.url_path(".zip"),
                     "/example.com/nothere/@v/list", mv.url_path(".zip")):
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status in (200, 404), path
            if resp.status == 200:
                assert body == tree.file_bytes(path)
            assert (resp.getheader("Connection") or "").lower() != "close", path
            assert conn.sock is sock and sock.getsockname() == local, "connection was replaced"
    finally:
        conn.close()


def test_health_endpoints(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url)
    health = proxy.get("/healthz")
    assert health.status == 200 and health.body.strip() == b"ok"
    assert proxy.get("/readyz").status == 200
