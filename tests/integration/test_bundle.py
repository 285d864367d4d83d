"""`gomodproxy cache export` / `cache import`: a bundle exported from a warm proxy's cache carries
the consumer's modules with the checksum records, tiles and signed tree that prove them; imported
into a proxy that reaches no upstream and no checksum database (into its stopped cache, or through
POST /admin/cache/import), a cold go command builds the consumer with GOSUMDB on; unpacked, it
works as a file:// GOPROXY; a bundle with one thing changed is refused whole and nothing of it is
cached."""

import base64
import http.client
import io
import socket
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

import module_tree as mt
from conftest import SANITIZER_RE, proxy_binary
from test_prefetch import CONSUMER_REQUIRES, prefetch, write_consumer


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run([str(proxy_binary()), *args], capture_output=True, text=True,
                          timeout=timeout)
    assert not SANITIZER_RE.search(done.stderr), done.stderr
    return done


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def exported(tree, tmp_path, make_upstream, make_sumdb, start_proxy):
    """Proxy A, verification on as shipped, warmed with the consumer's go.sum, stopped, and its
    cache exported. Returns (bundle path, sumdb, consumer dir, A's stdout of the export)."""
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags)
    consumer = tmp_path / "consumer"
    write_consumer(tree, consumer)
    warmed = prefetch("--proxy", proxy.url, "--sumdb", sumdb.name, str(consumer))
    assert warmed.returncode == 0, warmed.stderr
    cache_dir = proxy.cache_dir
    assert proxy.terminate() == 0
    bundle = tmp_path / "bundle.tar"
    done = run("cache", "export", "--out", str(bundle), "--go-sum", str(consumer / "go.sum"),
               "--cache-dir", str(cache_dir), *sumdb.flags)
    assert done.returncode == 0, done.stderr
    return bundle, sumdb, consumer, done.stdout, cache_dir


def offline_flags(sumdb) -> list[str]:
    """B's settings: the same database name and key, but nothing reachable behind them."""
    return ["--sumdb", f"{sumdb.name}=http://127.0.0.1:{closed_port()}", "--sumdb-key", sumdb.vkey]


def build_consumer(go, consumer: Path, tmp_path: Path) -> None:
    """Builds the consumer with its go.sum, then, in a fresh module cache, without one: the go
    command then asks the checksum database about every module and writes the same go.sum."""
    go.run("build", "-o", "prog", ".", cwd=consumer)
    ran = subprocess.run([str(consumer / "prog")], capture_output=True, text=True, timeout=30)
    assert ran.stdout == mt.PROGRAM_OUTPUT, ran.stderr
    go.fresh_modcache()
    unsummed = tmp_path / f"unsummed{go.generation}"
    mt.write_program(unsummed)
    go.run("build", "-o", "prog", ".", cwd=unsummed)
    assert (unsummed / "go.sum").read_text() == (consumer / "go.sum").read_text()


def cache_listing(cache_dir: Path) -> str:
    listed = run("cache", "ls", "--cache-dir", str(cache_dir))
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def test_export_import_and_build_with_nothing_reachable(exported, tree, tmp_path, start_proxy,
                                                       make_go):
    bundle, sumdb, consumer, summary, _ = exported
    assert "exported 5 module versions (15 files)" in summary, summary
    assert f"checksum database {sumdb.name}: tree of " in summary, summary
    listed = subprocess.run(["tar", "-tf", str(bundle)], capture_output=True, text=True,
                            timeout=30, check=True).stdout.splitlines()
    hello = tree.get(mt.HELLO, "v1.2.0")
    assert hello.url_path(".zip")[1:] in listed
    assert f"{hello.escaped_path}/@v/list" in listed
    assert f"sumdb/{sumdb.name}/latest" in listed
    assert f"sumdb/{sumdb.name}/supported" in listed
    assert f"sumdb/{sumdb.name}{hello.lookup_path}" in listed
    assert any(name.startswith(f"sumdb/{sumdb.name}/tile/8/0/") for name in listed), listed

    b_cache = tmp_path / "b-cache"  # created by the import: a site proxy that never ran
    imported = run("cache", "import", str(bundle), "--cache-dir", str(b_cache),
                   *offline_flags(sumdb))
    assert imported.returncode == 0, imported.stderr
    assert "imported 5 module versions: 15 files added" in imported.stdout, imported.stdout
    proxy_b = start_proxy(f"http://127.0.0.1:{closed_port()}", *offline_flags(sumdb),
                          cache_dir=b_cache)
    go = make_go(proxy_b.url)
    go.gosumdb = sumdb.vkey  # through B's /sumdb/
    build_consumer(go, consumer, tmp_path)
    assert proxy_b.terminate() == 0

    # Unpacked, the bundle is a file:// GOPROXY, checksum database included.
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-xf", str(bundle), "-C", str(unpacked)], check=True, timeout=30)
    file_go = make_go(unpacked.as_uri())
    file_go.gosumdb = sumdb.vkey
    build_consumer(file_go, consumer, tmp_path)

    # Packed again by GNU tar ("./" names, directory members), it imports the same.
    repacked = tmp_path / "repacked.tar"
    subprocess.run(["tar", "-cf", str(repacked), "-C", str(unpacked), "."], check=True,
                   timeout=30)
    again = run("cache", "import", str(repacked), "--cache-dir", str(tmp_path / "c-cache"),
                *offline_flags(sumdb))
    assert again.returncode == 0, again.stderr
    assert cache_listing(tmp_path / "c-cache") == cache_listing(b_cache)


def test_a_client_that_remembers_an_older_tree_builds_from_the_bundle(
        tree, tmp_path, make_upstream, make_sumdb, start_proxy, make_go):
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags)
    # The client looks one module up first, while the database's tree holds one record: it
    # remembers that tree (GOPATH/pkg/sumdb) and must see every later tree extend it.
    go = make_go(proxy.url)
    go.gosumdb = sumdb.vkey
    go.run("mod", "download", f"{mt.HELLO}@v1.2.0")
    remembered = go.gopath / "pkg" / "sumdb" / sumdb.name / "latest"
    assert remembered.read_text().split("\n")[1] == "1"
    consumer = tmp_path / "consumer"
    write_consumer(tree, consumer)
    warmed = prefetch("--proxy", proxy.url, "--sumdb", sumdb.name, str(consumer))
    assert warmed.returncode == 0, warmed.stderr
    cache_dir = proxy.cache_dir
    assert proxy.terminate() == 0
    bundle = tmp_path / "bundle.tar"
    done = run("cache", "export", "--out", str(bundle), "--go-sum", str(consumer / "go.sum"),
               "--cache-dir", str(cache_dir), *sumdb.flags)
    assert done.returncode == 0, done.stderr
    upstream.stop()
    sumdb.stop()
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-xf", str(bundle), "-C", str(unpacked)], check=True, timeout=30)
    go.goproxy = unpacked.as_uri()
    unsummed = tmp_path / "unsummed"
    mt.write_program(unsummed)
    go.run("build", "-o", "prog", ".", cwd=unsummed)
    assert (unsummed / "go.sum").read_text() == (consumer / "go.sum").read_text()
    assert remembered.read_text().split("\n")[1] == str(len(CONSUMER_REQUIRES))


def test_import_through_a_running_proxy(exported, tmp_path, start_proxy, make_go):
    bundle, sumdb, consumer, _, _ = exported
    token = base64.b32encode(b"bundle-import-token!").decode()
    proxy_b = start_proxy(f"http://127.0.0.1:{closed_port()}", *offline_flags(sumdb),
                          "--admin-token", token)
    refused = run("cache", "import", "--proxy", proxy_b.url, "--admin-token", "wrong", str(bundle))
    assert refused.returncode == 1 and ": 401: " in refused.stderr, refused.stderr
    imported = run("cache", "import", "--proxy", proxy_b.url, "--admin-token", token, str(bundle))
    assert imported.returncode == 0, imported.stderr
    assert "imported 5 module versions: 15 files added" in imported.stdout, imported.stdout
    go = make_go(proxy_b.url)
    go.gosumdb = sumdb.vkey
    build_consumer(go, consumer, tmp_path)

    # A refusal through the proxy says why, and leaves its cache as it was.
    listing = run("cache", "ls", "--proxy", proxy_b.url, "--admin-token", token).stdout
    changed = tmp_path / "changed.tar"
    lookup = next(name for name in tarfile.open(bundle).getnames() if "/lookup/" in name)
    rewrite(bundle, changed, lambda name, data: data.replace(b"h1:", b"h1:B", 1)
            if name == lookup else data)
    refused = run("cache", "import", "--proxy", proxy_b.url, "--admin-token", token, str(changed))
    assert refused.returncode == 1, refused.stdout
    assert f"/admin/cache/import: 422: refused: {lookup}: " in refused.stderr, refused.stderr
    assert run("cache", "ls", "--proxy", proxy_b.url, "--admin-token", token).stdout == listing


def rewrite(bundle: Path, out: Path, change) -> None:
    """A copy of `bundle` made by Python's tarfile, `change(name, bytes)` giving each member's
    new content."""
    with tarfile.open(bundle) as source, tarfile.open(out, "w") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            data = change(member.name, data)
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            target.addfile(info, io.BytesIO(data))


def flip_byte(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def test_changed_bundles_are_refused_whole(exported, tree, tmp_path, make_sumdb):
    bundle, sumdb, consumer, _, _ = exported
    hello = tree.get(mt.HELLO, "v1.2.0")
    zip_member = hello.url_path(".zip")[1:]
    lookup_member = f"sumdb/{sumdb.name}{hello.lookup_path}"

    def change_zip(name, data):
        if name != zip_member:
            return data
        # A byte of a file's content inside the zip: it still opens, its h1 differs.
        return mt.tampered_zip(data)

    def change_record(name, data):
        if name != lookup_member:
            return data
        text = data.decode()
        prefix = "h1:"
        at = text.index(prefix) + len(prefix)
        swapped = "B" if text[at] != "B" else "C"
        return (text[:at] + swapped + text[at + 1:]).encode()

    def change_tile(name, data):
        return flip_byte(data, 0) if name.startswith(f"sumdb/{sumdb.name}/tile/") else data

    b_cache = tmp_path / "b-cache"
    b_cache.mkdir()
    before = cache_listing(b_cache)
    cases = [
        (change_zip, f"{zip_member}: h1 is "),
        (change_record, f"{lookup_member}: not in the bundle's signed tree"),
        (change_tile, f"sumdb/{sumdb.name}: "),
    ]
    for number, (change, reason) in enumerate(cases):
        changed = tmp_path / f"changed{number}.tar"
        rewrite(bundle, changed, change)
        refused = run("cache", "import", str(changed), "--cache-dir", str(b_cache),
                      *offline_flags(sumdb))
        assert refused.returncode == 1, refused.stdout
        assert refused.stderr.count("\n") == 1 and reason in refused.stderr, refused.stderr
        assert cache_listing(b_cache) == before

    # B trusts another key under the same database name: the bundle's signed tree is not its.
    stranger = make_sumdb(tree.root)
    assert stranger.vkey != sumdb.vkey
    other = run("cache", "import", str(bundle), "--cache-dir", str(b_cache), "--sumdb",
                f"{sumdb.name}=http://127.0.0.1:{closed_port()}", "--sumdb-key", stranger.vkey)
    assert other.returncode == 1, other.stderr
    assert (f"sumdb/{sumdb.name}/latest: the signed tree does not verify with the configured key"
            in other.stderr), other.stderr
    assert cache_listing(b_cache) == before

    # The shipped settings know sum.golang.org alone, and refuse what they cannot check.
    shipped = run("cache", "import", str(bundle), "--cache-dir", str(b_cache))
    assert shipped.returncode == 1, shipped.stdout
    assert (f"sumdb/{sumdb.name}/latest: checksum database {sumdb.name} is not configured here"
            in shipped.stderr or f"checksum database {sumdb.name} is not configured here"
            in shipped.stderr), shipped.stderr
    assert cache_listing(b_cache) == before

    # The same bundle unchanged but written by Python's tarfile (pax format) imports.
    rewritten = tmp_path / "rewritten.tar"
    rewrite(bundle, rewritten, lambda name, data: data)
    imported = run("cache", "import", str(rewritten), "--cache-dir", str(b_cache),
                   *offline_flags(sumdb))
    assert imported.returncode == 0, imported.stderr
    assert len(cache_listing(b_cache).splitlines()) == len(CONSUMER_REQUIRES) * 4


def test_export_selections_and_what_is_not_cached(exported, tree, tmp_path):
    _, sumdb, _, _, cache_dir = exported
    hello = tree.get(mt.HELLO, "v1.2.0")
    modules = tmp_path / "modules.txt"
    modules.write_text(f"# what the lab needs\n\n{mt.HELLO}@v1.2.0\n"
                       "example.com/missing@v1.0.0  // not fetched outside\n")
    out = tmp_path / "out" / "partial.tar"
    out.parent.mkdir()
    missing = run("cache", "export", "--out", str(out), "--modules", str(modules),
                  "--cache-dir", str(cache_dir), *sumdb.flags)
    assert missing.returncode == 1, missing.stdout
    for suffix in (".info", ".mod", ".zip"):
        assert f"not cached: example.com/missing@v1.0.0 {suffix}" in missing.stderr
    assert f"not cached: {sumdb.name} record for example.com/missing@v1.0.0" in missing.stderr
    assert list(out.parent.iterdir()) == []  # nothing written, no temporary left

    modules.write_text(f"{mt.HELLO}@v1.2.0\n")
    one = run("cache", "export", "--out", str(out), "--modules", str(modules),
              "--cache-dir", str(cache_dir), *sumdb.flags)
    assert one.returncode == 0, one.stderr
    names = tarfile.open(out).getnames()
    assert sorted(n for n in names if not n.startswith("sumdb/")) == sorted(
        [hello.url_path(s)[1:] for s in (".info", ".mod", ".zip")] +
        [f"{hello.escaped_path}/@v/list"])

    # The shipped database, sum.golang.org, vouched for none of these.
    shipped = run("cache", "export", "--out", str(out), "--modules", str(modules),
                  "--cache-dir", str(cache_dir))
    assert shipped.returncode == 1, shipped.stdout
    assert f"not cached: sum.golang.org record for {mt.HELLO}@v1.2.0" in shipped.stderr

    everything = run("cache", "export", "--out", str(out), "--all", "--cache-dir",
                     str(cache_dir), *sumdb.flags, "--no-sumdb", mt.PSEUDO)
    assert everything.returncode == 0, everything.stderr
    assert "exported 5 module versions (15 files)" in everything.stdout, everything.stdout
    assert (f"without checksum records: {mt.PSEUDO}@{mt.PSEUDO_VERSION} (matches no_sumdb)"
            in everything.stdout), everything.stdout
    pseudo = tree.get(mt.PSEUDO, mt.PSEUDO_VERSION)
    names = tarfile.open(out).getnames()
    assert f"sumdb/{sumdb.name}{pseudo.lookup_path}" not in names
    # A pseudo-version is served, never listed, as the go command ignores listed ones.
    listed = tarfile.open(out).extractfile(f"{pseudo.escaped_path}/@v/list").read()
    assert listed == b""


def test_a_tile_the_cache_lacks_is_fetched_from_the_database(tree, tmp_path, make_upstream,
                                                            make_sumdb, start_proxy):
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags)
    hello = tree.get(mt.HELLO, "v1.2.0")
    for suffix in (".info", ".mod", ".zip"):  # verified: a tree of 1 record
        assert proxy.get(hello.url_path(suffix)).status == 200
    # The database grows, and the proxy caches its newer signed tree: the bundle's tree is that
    # one, whose right-edge tile at its width no proof of this proxy ever needed.
    other = tree.get(mt.HELLO, "v1.0.0")
    assert urllib.request.urlopen(sumdb.url + other.lookup_path, timeout=30).status == 200
    assert proxy.get(f"/sumdb/{sumdb.name}/latest").status == 200
    cache_dir = proxy.cache_dir
    assert proxy.terminate() == 0
    modules = tmp_path / "modules.txt"
    modules.write_text(f"{mt.HELLO}@v1.2.0\n")
    out = tmp_path / "hello.tar"
    export = ("cache", "export", "--out", str(out), "--modules", str(modules), "--cache-dir",
              str(cache_dir), *sumdb.flags)

    sumdb.stop()
    unreachable = run(*export)
    assert unreachable.returncode == 1, unreachable.stdout
    assert (f"tile not cached and not fetched: sumdb/{sumdb.name}/tile/8/0/000.p/2"
            in unreachable.stderr), unreachable.stderr
    assert not out.exists()

    sumdb.start()
    sumdb.clear_log()
    fetched = run(*export)
    assert fetched.returncode == 0, fetched.stderr
    # The tree of 1 record this proxy verified against is an older tree: its tile goes in too.
    assert ("tree of 2 records, 1 records, 2 tiles (1 fetched from the database), consistency "
            "with 1 older trees" in fetched.stdout), fetched.stdout
    assert sumdb.paths() == ["/tile/8/0/000.p/2"]
    b_cache = tmp_path / "b-cache"
    b_cache.mkdir()
    imported = run("cache", "import", str(out), "--cache-dir", str(b_cache), *offline_flags(sumdb))
    assert imported.returncode == 0, imported.stderr


def test_the_import_endpoint_bounds_its_body(tree, tmp_path, make_upstream, start_proxy):
    token = "t" * 32
    proxy = start_proxy(make_upstream(tree.root).url, "--admin-token", token)
    auth = {"Authorization": f"Bearer {token}"}

    def post(path: str, headers: dict, body: bytes = b"") -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
        connection.putrequest("POST", path)
        for name, value in {**auth, **headers}.items():
            connection.putheader(name, value)
        connection.endheaders()
        if body:
            connection.send(body)
        answer = connection.getresponse()
        text = answer.read().decode()
        connection.close()
        return answer.status, text

    # Declared too large: refused before a byte of the body is sent.
    status, text = post("/admin/cache/import", {"Content-Length": str(9 << 30)})
    assert (status, text) == (413, f"request body too large: at most {8 << 30} bytes\n")
    # A body to an endpoint that takes none.
    status, text = post("/admin/cache/rm?module=example.com/hello", {"Content-Length": "3"}, b"abc")
    assert status == 400 and "unexpected body" in text, text
    # Not a tar at all.
    status, text = post("/admin/cache/import", {"Content-Length": "5"}, b"hello")
    assert status == 422 and text.startswith("refused: truncated"), text
    # Larger than a parser's default limit: an empty archive (zero blocks) of 2 MiB.
    size = 2 << 20
    status, text = post("/admin/cache/import", {"Content-Length": str(size)}, bytes(size))
    assert status == 200 and text.startswith("imported 0 module versions"), text
    assert run("cache", "ls", "--proxy", proxy.url, "--admin-token", token).stdout == ""
    assert not any((proxy.cache_dir / "import-spool").iterdir())


def test_no_spooled_body_outlives_its_import(tree, tmp_path, make_upstream, start_proxy):
    """A client that goes away mid-body leaves no spool file; one left by a killed proxy is
    removed when the next one starts on that cache (it would count against the size cap)."""
    token = "t" * 32
    upstream = make_upstream(tree.root).url
    proxy = start_proxy(upstream, "--admin-token", token)
    spool = proxy.cache_dir / "import-spool"

    def send_part_of_a_body() -> socket.socket:
        client = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        client.sendall(f"POST /admin/cache/import HTTP/1.1\r\nHost: x\r\n"
                       f"Authorization: Bearer {token}\r\nContent-Length: {8 << 20}\r\n\r\n"
                       .encode() + bytes(256 << 10))
        deadline = time.monotonic() + 10
        while not any(spool.glob("import-*.tar")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(spool.glob("import-*.tar")), "the body was never spooled"
        return client

    send_part_of_a_body().close()
    deadline = time.monotonic() + 10
    while any(spool.glob("import-*.tar")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(spool.glob("import-*.tar"))

    client = send_part_of_a_body()
    proxy.kill()
    client.close()
    assert any(spool.glob("import-*.tar"))
    # The shipped defaults: no admin token, so no import endpoint at all.
    start_proxy(upstream, cache_dir=proxy.cache_dir)
    assert not any(spool.glob("import-*.tar"))


def test_a_slow_upload_frees_the_import_slot(tree, tmp_path, make_upstream, start_proxy):
    """A client that trickles its body, each piece within the request timeout, is cut off at the
    upload's deadline (request timeout + 1 s per 256 KiB declared) with a 408, and the next
    import runs."""
    token = "t" * 32
    proxy = start_proxy(make_upstream(tree.root).url, "--admin-token", token,
                        "--request-timeout", "2s")
    declared = 512 << 10  # a deadline of 2 s + 2 s
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    client.sendall(f"POST /admin/cache/import HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {token}\r\nContent-Length: {declared}\r\n\r\n"
                   .encode())
    started = time.monotonic()
    answer = b""
    client.setblocking(False)
    sent = 0
    while b"\r\n\r\n" not in answer and time.monotonic() - started < 30 and sent < declared:
        client.sendall(bytes(1024))
        sent += 1024
        time.sleep(0.2)
        try:
            answer += client.recv(65536)
        except BlockingIOError:
            pass
    client.setblocking(True)
    deadline = time.monotonic() + 10
    while not answer.endswith(b"KiB)\n") and time.monotonic() < deadline:
        piece = client.recv(65536)
        if not piece:
            break
        answer += piece
    elapsed = time.monotonic() - started
    client.close()
    assert sent < declared, "the whole body was sent before any answer"
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert answer.endswith(b"the upload took longer than 4 s (the request timeout plus 1 s per "
                           b"256 KiB)\n"), answer
    assert elapsed < 20, elapsed
    # The slot is free: an empty archive imports.
    status = urllib.request.urlopen(urllib.request.Request(
        proxy.url + "/admin/cache/import", data=bytes(1024), method="POST",
        headers={"Authorization": f"Bearer {token}"}), timeout=30).status
    assert status == 200


def test_usage_errors_exit_2(tmp_path):
    bundle = tmp_path / "b.tar"
    for args in (["export"], ["export", "--out", str(bundle)],
                 ["export", "--out", str(bundle), "--all", "--modules", str(bundle)],
                 ["import"], ["import", str(bundle), str(bundle)],
                 ["import", "--proxy", "http://127.0.0.1:1", str(bundle)]):
        done = run("cache", *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stderr.startswith("gomodproxy: ") and not done.stdout, (args, done.stderr)
