"""Malformed module paths/versions are answered locally (never forwarded); malformed HTTP is 400
and does not hurt the server."""

import socket
import urllib.parse

import pytest

# (id, raw request target). All are syntactically possible HTTP targets the go command would never
# send (spec 2.3-2.5); each must be 404/410 with a text/plain reason and never reach an upstream.
BAD_TARGETS = [
    ("raw-uppercase-path", "/example.com/Hello/@v/list"),
    ("raw-uppercase-version", "/example.com/hello/@v/V1.0.0.info"),
    ("bang-digit", "/example.com/!1hello/@v/list"),
    ("bang-trailing", "/example.com/hello!/@v/list"),
    ("bang-in-version", "/example.com/hello/@v/v1.0.0-!.info"),
    ("dotdot", "/example.com/../hello/@v/list"),
    ("dotdot-escaped", "/example.com/%2e%2e/hello/@v/list"),
    ("noncanonical-zip", "/example.com/hello/@v/v1.0.zip"),
    ("noncanonical-mod", "/example.com/hello/@v/v1.0.mod"),
    ("build-metadata-zip", "/example.com/hello/@v/v1.0.0+meta.zip"),
    ("not-semver-zip", "/example.com/hello/@v/1.0.0.zip"),
    ("v1-suffix", "/example.com/hello/v1/@v/list"),
    ("v1-suffix-zip", "/example.com/hello/v1/@v/v1.0.0.zip"),
    ("query-string", "/example.com/hello/@v/list?go-get=1"),
    ("nul-byte", "/example.com/hello%00/@v/list"),
    ("unknown-suffix", "/example.com/hello/@v/v1.0.0.tar"),
    ("leading-dash", "/-example.com/hello/@v/list"),
    ("no-dot-in-host", "/examplecom/hello/@v/list"),
    ("double-slash", "/example.com//hello/@v/list"),
    ("empty-version", "/example.com/hello/@v/.info"),
    ("high-byte", "/example.com/h%C3%A9llo/@v/list"),
    # Well-formed, but an element longer than a file name (255 bytes) fits in no module cache.
    ("10KiB-path-element", "/example.com/" + "a" * 10240 + "/@v/list"),
    ("256-byte-path-element", "/example.com/" + "a" * 256 + "/@latest"),
    ("256-byte-escaped-element", "/example.com/" + "!a" * 128 + "/@v/v1.0.0.zip"),
    ("256-byte-version", "/example.com/hello/@v/v1.0.0-" + "x" * 249 + ".info"),
    ("256-byte-version-mod", "/example.com/hello/@v/v1.0.0-" + "x" * 249 + ".mod"),
    ("256-byte-lookup-element",
     "/sumdb/sum.golang.org/lookup/example.com/" + "a" * 256 + "@v1.0.0"),
]


@pytest.fixture
def guarded_proxy(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root, "must-stay-silent")
    # The checksum database is asked through the same upstream, so its log sees that too.
    sumdb = f"sum.golang.org={upstream.url}/sumdb/sum.golang.org"
    return start_proxy(upstream.url, "--sumdb", sumdb), upstream


def test_bad_module_paths_and_versions_are_not_forwarded(guarded_proxy):
    proxy, upstream = guarded_proxy
    failures = []
    for name, target in BAD_TARGETS:
        resp = proxy.get(target)
        allowed = (400, 404, 410) if name == "nul-byte" else (404, 410)
        content_type = resp.header("Content-Type") or ""
        if resp.status not in allowed or not content_type.startswith("text/plain"):
            failures.append((name, target, resp.status, content_type, resp.text[:200]))
        elif not resp.body.strip():
            failures.append((name, target, resp.status, "empty body"))
    assert failures == []
    assert upstream.requests == [], [r.path[:120] for r in upstream.requests]
    # Controls: well-formed requests through the same proxy do reach the upstream, elements of
    # exactly 255 bytes included.
    assert proxy.get("/example.com/hello/@v/list").status == 200
    assert upstream.count("/example.com/hello/@v/list") == 1
    longest = "/example.com/" + "a" * 255 + "/@v/list"
    assert proxy.get(longest).status == 404
    assert upstream.count(longest) == 1


def test_revision_query_reaches_the_upstream_as_the_same_query(guarded_proxy):
    """A revision query may hold file-name characters that a URL path may not hold raw; the
    upstream gets them percent-encoded, so it is asked for the very query the client asked for
    (raw, ' ' broke the upstream URL and '#' cut it short)."""
    proxy, upstream = guarded_proxy
    query = "a b#c%d[e]^{f}"
    resp = proxy.get("/example.com/hello/@v/" + urllib.parse.quote(query, safe="") + ".info")
    assert resp.status in (404, 410), resp.text
    assert upstream.count("/example.com/hello/@v/" + query + ".info") == 1, upstream.paths()


def _raw_exchange(port: int, payload: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass  # the server may answer and stop reading before taking everything
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except (ConnectionResetError, socket.timeout):
            pass
        return b"".join(chunks)


def _status(raw: bytes) -> int:
    first = raw.split(b"\r\n", 1)[0].split()
    assert len(first) >= 2 and first[0].startswith(b"HTTP/1."), raw[:200]
    return int(first[1])


def test_garbage_request_line_is_400_and_server_survives(guarded_proxy):
    proxy, upstream = guarded_proxy
    assert _status(_raw_exchange(proxy.port, b"THIS IS NOT HTTP\r\n\r\n")) == 400
    assert _status(_raw_exchange(proxy.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" +
                                 b"\x00" * 64 + b"\r\n\r\n")) == 400
    health = proxy.get("/healthz")
    assert health.status == 200 and health.body.strip() == b"ok"
    assert upstream.requests == []


def test_oversized_header_is_rejected(guarded_proxy):
    proxy, upstream = guarded_proxy
    payload = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (1024 * 1024) +
               b"\r\n\r\n")
    assert _status(_raw_exchange(proxy.port, payload)) in (400, 431)
    assert proxy.get("/healthz").status == 200
    assert upstream.requests == []
