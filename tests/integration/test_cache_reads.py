"""How a chunked cache entry leaves the store: a zip whose stored bytes no longer match their
checksum is never sent as a 200. The first chunk is read (and its CRC checked) before the head
goes out, so such an entry is answered 500, not with a head and a body cut short."""

from __future__ import annotations

import random
import time

import module_tree as mt

MODULE = "example.com/chunked"
KIB = 1024


def chunked_zip_tree(tmp_path_factory):
    """One 100 KiB zip of incompressible bytes stored uncompressed: above the inline limit, so
    its body is kept in a chunk, and its payload appears verbatim in the cache's files."""
    tree = mt.ModuleTree(tmp_path_factory.mktemp("chunked-zip") / "root")
    payload = random.Random(16).randbytes(100 * KIB)
    tree.add(MODULE, "v1.0.0", {"go.mod": f"module {MODULE}\n".encode(), "data.bin": payload},
             stored=["data.bin"])
    return tree, payload


def flip_a_byte_in_blob_files(cache_dir, needle: bytes) -> str:
    """Flips one byte inside `needle` in the blob files holding it; returns their names. (The
    write-ahead log may hold the bytes too: damage there would lose the entry, not test it.)"""
    changed = []
    for file in sorted(cache_dir.glob("*.blob")):
        data = bytearray(file.read_bytes())
        at = data.find(needle)
        if at < 0:
            continue
        data[at + len(needle) // 2] ^= 0xFF
        file.write_bytes(bytes(data))
        changed.append(file.name)
    assert changed, "the zip's bytes were found in no blob file of the cache"
    return ", ".join(changed)


def test_a_chunk_that_fails_its_check_is_answered_500(tmp_path_factory, make_upstream,
                                                      start_proxy, tmp_path):
    tree, payload = chunked_zip_tree(tmp_path_factory)
    path = tree.get(MODULE, "v1.0.0").url_path(".zip")
    upstream = make_upstream(tree.root)
    cache_dir = tmp_path / "cache"
    # A 1 MiB budget flushes the entry to its own blob file at commit.
    proxy = start_proxy(upstream.url, "--cache-memory", "1MiB", cache_dir=cache_dir)
    first = proxy.get(path)
    assert first.status == 200
    assert first.body == tree.file_bytes(path)
    # The flush to the blob file runs in the background after the commit.
    needle = payload[40 * KIB:40 * KIB + 64]
    deadline = time.monotonic() + 30
    while not any(needle in f.read_bytes() for f in cache_dir.glob("*.blob")):
        assert time.monotonic() < deadline, "the entry never reached a blob file"
        time.sleep(0.05)
    assert proxy.terminate() == 0

    flip_a_byte_in_blob_files(cache_dir, needle)
    # No upstream: the answer can only come from the damaged entry.
    proxy = start_proxy("off", "--cache-memory", "1MiB", cache_dir=cache_dir)
    damaged = proxy.get(path)
    assert damaged.status == 500, (damaged.status, len(damaged.body))
    assert damaged.body == b"cache read failed\n"
    # The connection-level answer is complete, so the proxy keeps serving.
    assert proxy.get("/healthz").status == 200
