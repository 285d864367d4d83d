"""Self-tests of the support code: the module tree is right (the real go command accepts it when
served directly as GOPROXY) and the test upstream's scripted faults behave as documented."""

import http.client
import io
import socket
import threading
import time
import zipfile

import pytest

import module_tree as mt
from conftest import assert_go_downloads_match, assert_go_lists_and_builds, http_request
from test_upstream import RefusedPort, TestUpstream


def test_hash1_matches_spec_vectors():
    files = {"go.mod": mt.SPEC_HELLO_MOD,
             "hello.go": b'package hello\n\nfunc Hello() string { return "v1.0.0" }\n'}
    assert mt.gomod_hash(mt.SPEC_HELLO_MOD) == mt.SPEC_HELLO_MOD_H1
    assert mt.zip_hash(mt.make_zip(mt.HELLO, "v1.0.0", files)) == mt.SPEC_HELLO_ZIP_H1

    # Directory entries change the hash (spec 4.8).
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("example.com/hello@v1.0.0/", b"")
        zf.writestr("example.com/hello@v1.0.0/sub/", b"")
        for name, content in files.items():
            zf.writestr(f"example.com/hello@v1.0.0/{name}", content)
    assert mt.zip_hash(buf.getvalue()) == mt.SPEC_HELLO_ZIP_WITH_DIRS_H1


def test_escaping():
    assert mt.escape_path("example.com/Upper") == "example.com/!upper"
    assert mt.escape_path("github.com/BurntSushi/toml") == "github.com/!burnt!sushi/toml"
    assert mt.escape_version("v1.0.0-RC1") == "v1.0.0-!r!c1"


def test_tree_layout_follows_zip_rules(tree):
    upper_rc = tree.get(mt.UPPER, mt.UPPER_RC)
    assert upper_rc.url_path(".zip") == "/example.com/!upper/@v/v1.0.0-!r!c1.zip"
    for mv in tree.versions.values():
        data = tree.file_bytes(mv.url_path(".zip"))
        assert mt.zip_hash(data) == mv.zip_sum
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            assert names, mv
            prefix = f"{mv.path}@{mv.version}/"
            assert all(n.startswith(prefix) and not n.endswith("/") for n in names)
            has_gomod = prefix + "go.mod" in names
            assert has_gomod == (not mv.version.endswith("+incompatible"))
            if has_gomod:
                assert zf.read(prefix + "go.mod") == tree.file_bytes(mv.url_path(".mod"))
        assert tree.file_bytes(mv.url_path(".info")) == mv.info_json()
    assert tree.list_body(mt.HELLO) == b"v1.0.0\nv1.1.0\nv1.2.0\n"
    assert tree.list_body(mt.PSEUDO) == b""
    assert tree.file_bytes(f"/{mt.PSEUDO}/@latest") == tree.get(mt.PSEUDO, mt.PSEUDO_VERSION).info_json()
    assert tree.file_bytes(tree.get(mt.BIG, "v1.0.0").url_path(".mod")).startswith(
        b"module example.com/big\n")
    assert tree.get(mt.BIG, "v1.0.0").zip_size > mt.BIG_BLOB_SIZE


def test_subset_tree_holds_only_kept_modules(tree, half_tree):
    kept = set(half_tree.module_paths())
    assert kept and kept < set(tree.module_paths())
    for (path, version), mv in half_tree.versions.items():
        assert tree.file_bytes(mv.url_path(".zip")) == half_tree.file_bytes(mv.url_path(".zip"))
        assert half_tree.list_body(path) == tree.list_body(path)
    missing = set(tree.module_paths()) - kept
    for path in missing:
        assert not (half_tree.root / mt.escape_path(path)).exists()


def test_go_accepts_tree_served_directly(tree, make_upstream, make_go):
    """The real go command downloads, lists and builds straight from the test upstream."""
    upstream = make_upstream(tree.root, "direct-tree")
    go = make_go(upstream.url)
    assert_go_downloads_match(go, tree)
    assert_go_lists_and_builds(go)
    # The client case-encodes uppercase paths and versions on the wire (spec 1.2).
    assert upstream.count("/example.com/!upper/@v/v1.0.0-!r!c1.zip") == 1
    assert any(r.path == "/example.com/%21upper/@v/v1.0.0-%21r%21c1.zip"
               for r in upstream.requests)


# --- the test upstream's own behaviour --------------------------------------------------------

def test_upstream_serves_tree_and_counts(tree, make_upstream):
    upstream = make_upstream(tree.root)
    mv = tree.get(mt.HELLO, "v1.2.0")
    resp = http_request(upstream.port, mv.url_path(".zip"))
    assert resp.status == 200 and resp.body == tree.file_bytes(mv.url_path(".zip"))
    assert resp.header("Content-Type") == "application/zip"
    assert http_request(upstream.port, "/example.com/nope/@v/list").status == 404
    assert http_request(upstream.port, "/../../etc/passwd").status == 404
    assert upstream.count(mv.url_path(".zip")) == 1
    assert upstream.count_matching(r"/nope/") == 1


def test_upstream_status_fault_with_times(tree, make_upstream):
    upstream = make_upstream(tree.root)
    upstream.fail(r"/@v/list$", 503, times=1)
    assert http_request(upstream.port, "/example.com/hello/@v/list").status == 503
    assert http_request(upstream.port, "/example.com/hello/@v/list").status == 200


def test_upstream_gate_holds_until_opened(tree, make_upstream):
    upstream = make_upstream(tree.root)
    gate = upstream.gate(r"list$")
    results = []
    thread = threading.Thread(
        target=lambda: results.append(http_request(upstream.port, "/example.com/hello/@v/list")))
    thread.start()
    assert gate.wait_arrivals(1, timeout=5)
    time.sleep(0.2)
    assert results == []
    gate.open()
    thread.join(5)
    assert results and results[0].status == 200


def test_upstream_hang_drip_truncate(tree, make_upstream):
    upstream = make_upstream(tree.root)
    mv = tree.get(mt.HELLO, "v1.2.0")
    hang = upstream.hang(r"v1\.0\.0\.info$")
    with pytest.raises(socket.timeout):
        http_request(upstream.port, tree.get(mt.HELLO, "v1.0.0").url_path(".info"), timeout=0.5)
    assert hang.arrivals == 1

    drip = upstream.drip(r"v1\.2\.0\.zip$", chunk=100, interval=0.02)
    start = time.monotonic()
    resp = http_request(upstream.port, mv.url_path(".zip"))
    assert resp.body == tree.file_bytes(mv.url_path(".zip"))
    assert time.monotonic() - start >= 0.02 * (len(resp.body) // 100 - 1)
    assert drip.wait_completed(1, timeout=5) and drip.bytes_sent == len(resp.body)

    upstream.truncate(r"v1\.2\.0\.mod$")
    with pytest.raises(http.client.IncompleteRead):
        http_request(upstream.port, mv.url_path(".mod"))


def test_upstream_delay_answers_late_and_in_full(tree, make_upstream):
    upstream = make_upstream(tree.root)
    path = tree.get(mt.HELLO, "v1.0.0").url_path(".info")
    delay = upstream.delay(r"\.info$", 0.5)
    start = time.monotonic()
    resp = http_request(upstream.port, path)
    assert time.monotonic() - start >= 0.5
    assert resp.status == 200 and resp.body == tree.file_bytes(path)
    assert delay.wait_completed(1, timeout=5)
    delay.release()  # released: no more waiting
    start = time.monotonic()
    assert http_request(upstream.port, path).body == tree.file_bytes(path)
    assert time.monotonic() - start < 0.4


def test_upstream_body_override(tree, make_upstream):
    upstream = make_upstream(tree.root)
    upstream.serve_body(r"\.zip$", b"not a zip")
    resp = http_request(upstream.port, tree.get(mt.HELLO, "v1.0.0").url_path(".zip"))
    assert resp.status == 200 and resp.body == b"not a zip"


def test_upstream_stop_refuses_and_restart_reuses_port(tree, make_upstream):
    upstream = make_upstream(tree.root)
    conn = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=5)
    conn.request("GET", "/example.com/hello/@v/list")
    assert conn.getresponse().read() == tree.list_body(mt.HELLO)
    port = upstream.port
    upstream.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    # The kept-alive connection was closed too, so it cannot keep serving.
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/example.com/hello/@v/list")
        conn.getresponse().read()
    conn.close()
    upstream.start()
    assert upstream.port == port
    assert http_request(port, "/example.com/hello/@v/list").status == 200


def test_refused_port_refuses():
    with RefusedPort() as refused:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", refused.port), timeout=2)


def test_upstream_stop_wakes_blocked_handlers(tree):
    upstream = TestUpstream(tree.root).start()
    upstream.hang(r"list$")
    errors = []

    def call():
        try:
            http_request(upstream.port, "/example.com/hello/@v/list", timeout=10)
        except Exception as exc:  # the connection is closed without an answer
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.2)
    start = time.monotonic()
    upstream.stop()
    thread.join(5)
    assert not thread.is_alive() and errors
    assert time.monotonic() - start < 5
