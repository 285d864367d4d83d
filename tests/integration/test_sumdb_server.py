"""The test checksum database (tests/support/test_sumdb.py) on its own, without gomodproxy: its
protocol answers match the module tree, and the real go command, pointed straight at it with
GOSUMDB="<key> <url>", accepts honest downloads, refuses a tampered zip and detects a forked log."""

from __future__ import annotations

import base64
import hashlib

import module_tree as mt
from conftest import http_request

EM_DASH = "\u2014"


def record_text(mv: mt.ModuleVersion) -> str:
    return (f"{mv.path} {mv.version} {mv.zip_sum}\n"
            f"{mv.path} {mv.version}/go.mod {mv.mod_sum}\n")


def parse_lookup(body: bytes) -> tuple[int, str, list[str]]:
    """(record id, record text, signed tree note lines) of a /lookup answer."""
    text = body.decode()
    id_line, rest = text.split("\n", 1)
    record, note = rest.split("\n\n", 1)
    return int(id_line), record + "\n", note.split("\n")


def tree_size(sumdb) -> int:
    resp = http_request(sumdb.port, "/latest")
    assert resp.status == 200, resp.body
    lines = resp.body.decode().split("\n")
    assert lines[0] == "go.sum database tree"
    return int(lines[1])


def assert_downloads(go, mv: mt.ModuleVersion) -> None:
    proc = go.run("mod", "download", "-json", f"{mv.path}@{mv.version}", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f'"Sum": "{mv.zip_sum}"' in proc.stdout, proc.stdout
    assert f'"GoModSum": "{mv.mod_sum}"' in proc.stdout, proc.stdout


# --- the server's protocol answers -----------------------------------------------------------

def test_lookup_and_tiles_match_the_tree(tree, make_sumdb):
    sumdb = make_sumdb(tree.root)
    hello = tree.get(mt.HELLO, "v1.2.0")

    resp = http_request(sumdb.port, hello.lookup_path)
    assert resp.status == 200, resp.body
    record_id, record, note = parse_lookup(resp.body)
    assert record_id == 0
    assert record == record_text(hello)

    # A one-record tree: its root is the record's leaf hash, and the level-0 tile holds it.
    leaf = hashlib.sha256(b"\x00" + record.encode()).digest()
    assert note[:3] == ["go.sum database tree", "1", base64.b64encode(leaf).decode()]
    assert note[3] == ""
    signature_prefix = f"{EM_DASH} {sumdb.name} "
    assert note[4].startswith(signature_prefix), note
    tile = http_request(sumdb.port, "/tile/8/0/000.p/1")
    assert (tile.status, tile.body) == (200, leaf)

    # The signature names the verifier key's hash, which is derived from the key as spec 5.2 says.
    name, key_hash, public = sumdb.vkey.split("+", 2)
    assert name == sumdb.name
    public_bytes = base64.b64decode(public)
    assert public_bytes[0] == 1 and len(public_bytes) == 33
    expected_hash = hashlib.sha256(name.encode() + b"\n" + public_bytes).digest()[:4]
    assert key_hash == expected_hash.hex()
    signature = base64.b64decode(note[4][len(signature_prefix):])
    assert signature[:4] == expected_hash and len(signature) == 4 + 64

    latest = http_request(sumdb.port, "/latest")
    assert latest.status == 200
    assert latest.body.decode().split("\n")[:5] == note[:5]


def test_missing_and_malformed_requests(tree, make_sumdb):
    sumdb = make_sumdb(tree.root)
    assert http_request(sumdb.port, "/lookup/example.com/nosuchmodule@v1.0.0").status == 404
    assert http_request(sumdb.port, f"/lookup/{mt.HELLO}@v9.9.9").status == 404
    assert http_request(sumdb.port, "/lookup/not-a-module-version").status == 400
    assert http_request(sumdb.port, "/tile/8/0/banana").status == 400
    assert tree_size(sumdb) == 0
    assert http_request(sumdb.port, tree.get(mt.HELLO, "v1.0.0").lookup_path).status == 200
    # Beyond the one-record tree: a wider partial tile and the full tile are not there yet.
    assert http_request(sumdb.port, "/tile/8/0/000.p/1").status == 200
    assert http_request(sumdb.port, "/tile/8/0/000.p/2").status == 404
    assert http_request(sumdb.port, "/tile/8/0/000").status == 404
    # The log line leaves the server as the answer does; wait until the reader has all of them.
    assert sumdb.wait_count("/", 9) == 9
    assert [(r.path, r.status) for r in sumdb.requests] == [
        ("/lookup/example.com/nosuchmodule@v1.0.0", 404),
        (f"/lookup/{mt.HELLO}@v9.9.9", 404),
        ("/lookup/not-a-module-version", 400),
        ("/tile/8/0/banana", 400),
        ("/latest", 200),
        (f"/lookup/{mt.HELLO}@v1.0.0", 200),
        ("/tile/8/0/000.p/1", 200),
        ("/tile/8/0/000.p/2", 404),
        ("/tile/8/0/000", 404),
    ]
    assert sumdb.count("/lookup/") == 4
    assert sumdb.count("/tile/8/0/000.p/") == 2


def test_restart_keeps_key_and_history_fork_rewrites_it(tree, make_sumdb):
    sumdb = make_sumdb(tree.root)
    hello = tree.get(mt.HELLO, "v1.2.0")
    upper = tree.get(mt.UPPER, mt.UPPER_RC)
    vkey, url = sumdb.vkey, sumdb.url
    _, first, _ = parse_lookup(http_request(sumdb.port, hello.lookup_path).body)

    sumdb.restart()
    assert (sumdb.vkey, sumdb.url) == (vkey, url)
    assert tree_size(sumdb) == 1
    record_id, record, _ = parse_lookup(http_request(sumdb.port, hello.lookup_path).body)
    assert (record_id, record) == (0, first)
    assert parse_lookup(http_request(sumdb.port, upper.lookup_path).body)[:2] == (
        1, record_text(upper))
    assert tree_size(sumdb) == 2

    # Same key, but three junk records come first, so the same records get later ids.
    sumdb.restart(fork=True)
    assert (sumdb.vkey, sumdb.url) == (vkey, url)
    assert tree_size(sumdb) == 5
    assert parse_lookup(http_request(sumdb.port, hello.lookup_path).body)[:2] == (3, first)

    # The fork did not overwrite the history a normal restart replays.
    sumdb.restart()
    assert tree_size(sumdb) == 2
    assert parse_lookup(http_request(sumdb.port, upper.lookup_path).body)[0] == 1


def test_each_server_gets_its_own_key(tree, make_sumdb):
    first = make_sumdb(tree.root)
    second = make_sumdb(tree.root, name="other.test.example")
    assert first.vkey.startswith("sum.test.example+")
    assert second.vkey.startswith("other.test.example+")
    assert first.vkey.split("+", 2)[2] != second.vkey.split("+", 2)[2]
    assert first.url != second.url


# --- the real go command against it ----------------------------------------------------------

def test_go_verifies_download_against_sumdb(tree, make_upstream, make_sumdb, make_go):
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    go = make_go(upstream.url)
    go.gosumdb = sumdb.gosumdb
    hello = tree.get(mt.HELLO, "v1.2.0")

    assert_downloads(go, hello)

    assert sumdb.wait_count(hello.lookup_path) == 1
    assert sumdb.wait_count("/tile/") >= 1
    assert all(r.status == 200 for r in sumdb.requests), sumdb.requests
    # The go command keeps the newest verified tree head, signed by our key, in GOPATH.
    latest = (go.gopath / "pkg" / "sumdb" / sumdb.name / "latest").read_text()
    assert latest.startswith("go.sum database tree\n1\n"), latest
    assert f"\n{EM_DASH} {sumdb.name} " in latest


def test_go_refuses_zip_that_does_not_match_sumdb(tree, make_upstream, make_sumdb, make_go):
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    go = make_go(upstream.url)
    go.gosumdb = sumdb.gosumdb
    hello = tree.get(mt.HELLO, "v1.0.0")
    tampered = mt.make_zip(mt.HELLO, "v1.0.0", {
        "go.mod": mt.SPEC_HELLO_MOD,
        "hello.go": b'package hello\n\nfunc Hello() string { return "tampered" }\n',
    })
    tampered_sum = mt.zip_hash(tampered)
    assert tampered_sum != hello.zip_sum
    fault = upstream.serve_body(r"^/example\.com/hello/@v/v1\.0\.0\.zip$", tampered)

    proc = go.run("mod", "download", f"{mt.HELLO}@v1.0.0", check=False)

    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert fault.arrivals >= 1
    assert f"{mt.HELLO}@v1.0.0: verifying module: checksum mismatch" in proc.stderr, proc.stderr
    assert f"downloaded: {tampered_sum}" in proc.stderr, proc.stderr
    assert f"{sumdb.name}: {hello.zip_sum}" in proc.stderr, proc.stderr
    assert "SECURITY ERROR" in proc.stderr, proc.stderr
    assert sumdb.wait_count(hello.lookup_path) == 1
    assert not (go.modcache / "example.com" / "hello@v1.0.0").exists()


def test_go_detects_forked_sumdb(tree, make_upstream, make_sumdb, make_go):
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    go = make_go(upstream.url)
    go.gosumdb = sumdb.gosumdb

    assert_downloads(go, tree.get(mt.HELLO, "v1.2.0"))

    # A restart that extends the log is accepted by the same client state...
    sumdb.restart()
    hello_v2 = tree.get(mt.HELLO_V2, "v2.0.0")
    assert_downloads(go, hello_v2)
    assert sumdb.wait_count(hello_v2.lookup_path) == 1
    latest = go.gopath / "pkg" / "sumdb" / sumdb.name / "latest"
    assert latest.read_text().startswith("go.sum database tree\n2\n")

    # ...and one that signs a different history with the same key is caught.
    sumdb.restart(fork=True)
    upper = tree.get(mt.UPPER, "v1.0.0")
    proc = go.run("mod", "download", f"{upper.path}@{upper.version}", check=False)

    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert sumdb.wait_count(upper.lookup_path) == 1
    assert "SECURITY ERROR" in proc.stderr, proc.stderr
    assert "go.sum database server misbehavior detected!" in proc.stderr, proc.stderr
    # The report quotes both heads: the size-2 tree the client saw and the fork's size-6 tree.
    assert "old database:\n\tgo.sum database tree\n\t2\n" in proc.stderr, proc.stderr
    assert "new database:\n\tgo.sum database tree\n\t6\n" in proc.stderr, proc.stderr
    assert latest.read_text().startswith("go.sum database tree\n2\n")
    assert not (go.modcache / "example.com" / "!upper@v1.0.0").exists()
