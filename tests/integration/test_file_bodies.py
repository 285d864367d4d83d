"""Zips the cache keeps as files of their own (under bodies/ in the cache directory) reach the
real go command from those files, sent by the connection with sendfile: a zip in one range and
one in several, every byte, and HEAD gets the length alone. The second go run has no upstream,
so only the body files can answer it."""

from __future__ import annotations

import random

import module_tree as mt

MODULE = "example.com/filebody"
KIB = 1024
MIB = 1024 * KIB


def file_body_tree(tmp_path_factory):
    """A 100 KiB zip (one range) and a 3 MiB one (several ranges of 1 MiB), of incompressible
    bytes stored uncompressed: both above the inline limit, so both are kept as files."""
    tree = mt.ModuleTree(tmp_path_factory.mktemp("file-bodies") / "root")
    rng = random.Random(16)
    go_mod = f"module {MODULE}\n".encode()
    versions = [
        tree.add(MODULE, "v1.0.0", {"go.mod": go_mod, "data.bin": rng.randbytes(100 * KIB)},
                 stored=["data.bin"]),
        tree.add(MODULE, "v1.1.0", {"go.mod": go_mod, "data.bin": rng.randbytes(3 * MIB + 123)},
                 stored=["data.bin"]),
    ]
    return tree, versions


def test_go_downloads_zips_sent_from_their_body_files(tmp_path_factory, make_upstream,
                                                      start_proxy, make_go, tmp_path):
    tree, versions = file_body_tree(tmp_path_factory)
    specs = [f"{mv.path}@{mv.version}" for mv in versions]
    expected = {mv.version: mv.zip_sum for mv in versions}
    cache_dir = tmp_path / "cache"

    proxy = start_proxy(make_upstream(tree.root).url, cache_dir=cache_dir)
    filled = make_go(proxy.url).download_json(*specs)
    assert {r["Version"]: r["Sum"] for r in filled} == expected
    assert len(list((cache_dir / "bodies").iterdir())) == len(versions)
    assert proxy.terminate() == 0

    proxy = start_proxy("off", cache_dir=cache_dir)
    served = make_go(proxy.url).download_json(*specs)
    assert {r["Version"]: r["Sum"] for r in served} == expected
    for mv in versions:
        path = mv.url_path(".zip")
        got = proxy.get(path)
        assert got.status == 200, got.text
        assert got.header("Content-Type") == "application/zip"
        assert got.body == tree.file_bytes(path)
        head = proxy.head(path)
        assert head.status == 200
        assert head.header("Content-Length") == str(mv.zip_size)
        assert head.body == b""
    assert proxy.get("/healthz").status == 200
