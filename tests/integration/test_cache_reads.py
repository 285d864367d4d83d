"""How a large cache entry leaves the store: a zip above the inline limit is kept as a file of its
own under the cache directory's bodies/. A body file cut short, grown or gone is found when the
entry is opened (its size is checked against the metadata), before any head goes out: the
proxy fills the entry again from upstream instead of sending it. A byte changed inside a file of
the right size is found by `cache verify` (the whole-body CRC32C), and --repair removes it."""

from __future__ import annotations

import random
import subprocess

import pytest

import module_tree as mt
from conftest import SANITIZER_RE, proxy_binary

MODULE = "example.com/large"
KIB = 1024


def large_zip_tree(tmp_path_factory):
    """One 100 KiB zip of incompressible bytes stored uncompressed: above the inline limit, so
    its body is kept in a file of its own, byte for byte the zip."""
    tree = mt.ModuleTree(tmp_path_factory.mktemp("large-zip") / "root")
    payload = random.Random(16).randbytes(100 * KIB)
    tree.add(MODULE, "v1.0.0", {"go.mod": f"module {MODULE}\n".encode(), "data.bin": payload},
             stored=["data.bin"])
    return tree


def only_body_file(cache_dir):
    files = [f for f in (cache_dir / "bodies").iterdir() if len(f.name) == 16]
    assert len(files) == 1, files
    return files[0]


@pytest.mark.parametrize("damage", ["cut short", "grown", "gone"])
def test_a_body_file_of_the_wrong_size_is_filled_again_not_sent(tmp_path_factory, make_upstream,
                                                                start_proxy, tmp_path, damage):
    tree = large_zip_tree(tmp_path_factory)
    path = tree.get(MODULE, "v1.0.0").url_path(".zip")
    want = tree.file_bytes(path)
    upstream = make_upstream(tree.root)
    cache_dir = tmp_path / "cache"
    proxy = start_proxy(upstream.url, cache_dir=cache_dir)
    first = proxy.get(path)
    assert first.status == 200
    assert first.body == want
    assert proxy.terminate() == 0

    body_file = only_body_file(cache_dir)
    assert body_file.read_bytes() == want
    if damage == "cut short":
        body_file.write_bytes(want[:-1])
    elif damage == "grown":
        body_file.write_bytes(want + b"\0")
    else:
        body_file.unlink()

    proxy = start_proxy(upstream.url, cache_dir=cache_dir)
    again = proxy.get(path)
    assert again.status == 200
    assert again.body == want
    assert upstream.count(path) == 2, "the damaged entry must be fetched again"
    # The refill replaced the damaged version; its file is the zip again.
    assert proxy.get(path).body == want
    assert upstream.count(path) == 2
    assert proxy.get("/healthz").status == 200


def test_cache_verify_finds_a_changed_byte_in_a_body_file(tmp_path_factory, make_upstream,
                                                          start_proxy, tmp_path):
    tree = large_zip_tree(tmp_path_factory)
    path = tree.get(MODULE, "v1.0.0").url_path(".zip")
    upstream = make_upstream(tree.root)
    cache_dir = tmp_path / "cache"
    proxy = start_proxy(upstream.url, cache_dir=cache_dir)
    assert proxy.get(path).status == 200
    assert proxy.terminate() == 0

    body_file = only_body_file(cache_dir)
    data = bytearray(body_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    body_file.write_bytes(bytes(data))

    def verify(*extra: str) -> subprocess.CompletedProcess:
        run = subprocess.run(
            [str(proxy_binary()), "cache", "verify", "--cache-dir", str(cache_dir),
             *extra],
            capture_output=True, text=True, timeout=120)
        assert not SANITIZER_RE.search(run.stderr), run.stderr
        return run

    found = verify()
    assert found.returncode == 1, (found.stdout, found.stderr)
    assert f"corrupt: {path}: " in found.stdout
    repaired = verify("--repair")
    assert repaired.returncode == 0, (repaired.stdout, repaired.stderr)
    assert not (cache_dir / "bodies" / body_file.name).exists()
    clean = verify()
    assert clean.returncode == 0, (clean.stdout, clean.stderr)
