"""The cache's memory budget (--cache-memory): reported on /status and /status.json, honoured by
a 40 MiB fill (its write buffers are flushed within the budget instead of keeping the zip), and
never spent on zip bytes (a served zip leaves no chunk in the block cache). Invalid values are
refused at start-up. Resident-memory figures are measured by tests/bench/memory.py, not here:
under a sanitizer build they mean nothing."""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import time

import pytest

import module_tree as mt
from test_startup_errors import assert_refused, serve

MIB = 1024 * 1024
BIG = "example.com/big"


def memory_report(proxy) -> dict:
    return json.loads(proxy.get("/status.json").body)["cache"]["memory"]


def big_zip_path(tree) -> str:
    return tree.get(BIG, "v1.0.0").url_path(".zip")


def test_the_default_budget_is_reported_and_zips_do_not_stay_in_it(tree, make_upstream,
                                                                   start_proxy):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url)
    report = memory_report(proxy)
    assert report["limit_bytes"] == 16 * MIB, report
    assert "Cache memory: 16.0 MiB for metadata blocks" in proxy.get("/status").text

    path = big_zip_path(tree)
    want = hashlib.sha256(tree.file_bytes(path)).hexdigest()
    # The fill, then two hits read back from the cache's files.
    for _ in range(3):
        response = proxy.get(path)
        assert len(response.body) > 40 * MIB
        assert response.status == 200
        assert hashlib.sha256(response.body).hexdigest() == want
    assert upstream.count(path) == 1

    report = memory_report(proxy)
    # 40 MiB of chunks went through the store: none of them may be kept in the block cache, and
    # the write buffers stay within the budget however large the fill.
    assert report["block_bytes"] < 2 * MIB, report
    assert report["write_buffer_bytes"] <= report["limit_bytes"], report


def test_a_small_budget_is_honoured_by_a_large_fill(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, "--cache-memory", "2MiB")
    assert memory_report(proxy)["limit_bytes"] == 2 * MIB
    assert "Cache memory: 2.00 MiB for metadata blocks" in proxy.get("/status").text

    path = big_zip_path(tree)
    response = proxy.get(path)
    assert response.status == 200 and response.body == tree.file_bytes(path)
    report = memory_report(proxy)
    assert report["write_buffer_bytes"] <= 2 * MIB, report
    assert report["block_bytes"] <= 2 * MIB, report
    # Served again from the files the small buffers were flushed to.
    assert proxy.get(path).body == tree.file_bytes(path)
    assert upstream.count(path) == 1


def test_the_budget_is_read_from_the_config_file(tree, make_upstream, start_proxy, tmp_path):
    upstream = make_upstream(tree.root)
    config = tmp_path / "gomodproxy.toml"
    config.write_text('cache_memory = "64MiB"\n')
    proxy = start_proxy(upstream.url, "--config", str(config))
    assert memory_report(proxy)["limit_bytes"] == 64 * MIB


def test_a_budget_that_is_not_a_size_or_too_small_is_refused(tmp_path):
    for value in ("16MB", "-1", "lots"):
        line = assert_refused(serve(tmp_path, "--cache-memory", value), "cache_memory")
        assert f'"{value}" is not a byte count' in line and "flag --cache-memory" in line
    for value in ("0", "1023KiB", "1000"):
        line = assert_refused(serve(tmp_path, "--cache-memory", value), "cache_memory")
        assert f'"{value}" is too small' in line and "at least 1MiB" in line, line
    env_line = assert_refused(serve(tmp_path, env_settings={"GOMODPROXY_CACHE_MEMORY": "512KiB"}),
                              "cache_memory")
    assert "env GOMODPROXY_CACHE_MEMORY" in env_line and "too small" in env_line



MANY_ZIPS = 256
OPEN_FILES_LIMIT = 128


@pytest.fixture(scope="module")
def many_zips_tree(tmp_path_factory):
    """MANY_ZIPS modules, each a 100 KiB zip of incompressible bytes: above the inline limit,
    so each is stored in a body file of its own."""
    tree = mt.ModuleTree(tmp_path_factory.mktemp("many-zips") / "root")
    for i in range(MANY_ZIPS):
        path = f"example.com/many{i}"
        tree.add(path, "v1.0.0", {"go.mod": f"module {path}\n".encode(),
                                  "blob.bin": random.Random(i).randbytes(100 * 1024)},
                 stored=["blob.bin"])
    return tree


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_cache_of_many_zips_stays_within_the_open_files_limit(many_zips_tree, make_upstream,
                                                                start_proxy):
    """Each zip is a body file of its own. Serving them all again from disk must not keep one
    descriptor per file (a reader holds its file open only while it lives): under a
    128-descriptor limit every fill and read succeeds and room is left for connections."""
    upstream = make_upstream(many_zips_tree.root)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES_LIMIT, hard))
    try:
        proxy = start_proxy(upstream.url, "--cache-memory", "1MiB")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    paths = [many_zips_tree.get(f"example.com/many{i}", "v1.0.0").url_path(".zip")
             for i in range(MANY_ZIPS)]
    most = 0
    for round_ in ("fill", "hit"):
        for path in paths:
            response = proxy.get(path)
            assert response.status == 200, (round_, path, response.status, response.text[:200])
            assert response.body == many_zips_tree.file_bytes(path), (round_, path)
            most = max(most, open_descriptors(proxy.proc.pid))
    body_files = len(list((proxy.cache_dir / "bodies").iterdir()))
    assert body_files > OPEN_FILES_LIMIT, body_files  # the case this test is about
    assert most <= OPEN_FILES_LIMIT - 16, most  # room left for connections
    for path in paths:
        assert upstream.count(path) == 1, path


def test_later_fills_leave_the_bodies_of_earlier_fills_where_they_were_written(
        tmp_path, make_upstream, start_proxy):
    """A large body is written once, to a file of its own, and never moved: later fills and the
    compactions their metadata causes leave it be (when chunks lived in RocksDB's blob files,
    compactions rewrote them, a large fill's worth of copying and checksumming again). Space is
    freed by unlinking the files of removed versions, and by the cap's eviction
    (test_cache_cap.py)."""
    tree = mt.ModuleTree(tmp_path / "root")
    paths = []
    for i in range(6):
        path = f"example.com/large{i}"
        tree.add(path, "v1.0.0", {"go.mod": f"module {path}\n".encode(),
                                  "blob.bin": random.Random(i).randbytes(8 << 20)},
                 stored=["blob.bin"])
        paths.append(tree.get(path, "v1.0.0").url_path(".zip"))
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url)
    assert proxy.head(paths[0], timeout=60).status == 200
    bodies = proxy.cache_dir / "bodies"
    first = {(p.name, p.stat().st_ino) for p in bodies.iterdir()}
    assert len(first) == 1, first
    for path in paths[1:]:
        assert proxy.head(path, timeout=60).status == 200
    time.sleep(2)  # compactions the last flushes started
    later = {(p.name, p.stat().st_ino) for p in bodies.iterdir()}
    assert first <= later and len(later) == len(paths), later
    response = proxy.get(paths[0], timeout=60)
    assert response.status == 200 and response.body == tree.file_bytes(paths[0])
    assert upstream.count(paths[0]) == 1
