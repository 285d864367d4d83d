"""The fills, checks and reads pools at their smallest (one thread each): a verified fill of the
40 MiB zip, requested by several clients at once while warm files are asked for, is checked,
hashed, committed once and streamed whole, and warm zips stream while it runs. A check that
waited for a read (or a read for a check) would hang here."""

import concurrent.futures
import hashlib
import os
import time
from pathlib import Path

import module_tree as mt


def test_one_thread_per_pool_fills_verifies_and_streams(tree, make_upstream, make_sumdb,
                                                         start_proxy):
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags, "--fill-threads", "1", "--check-threads", "1",
                        "--read-threads", "1")
    big_zip = tree.get(mt.BIG, "v1.0.0").url_path(".zip")
    hello_zip = tree.get(mt.HELLO, "v1.2.0").url_path(".zip")
    hello_info = tree.get(mt.HELLO, "v1.2.0").url_path(".info")
    assert proxy.get(hello_zip, timeout=60).status == 200  # now warm
    assert proxy.get(hello_info, timeout=60).status == 200

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        cold = [pool.submit(proxy.get, big_zip, timeout=120) for _ in range(3)]
        warm = [pool.submit(proxy.get, path, timeout=120)
                for path in (hello_zip, hello_info, hello_zip)]
        warm_answers = [f.result() for f in warm]
        cold_answers = [f.result() for f in cold]

    for answer, path in zip(warm_answers, (hello_zip, hello_info, hello_zip)):
        assert answer.status == 200 and answer.body == tree.file_bytes(path)
    want = hashlib.sha256(tree.file_bytes(big_zip)).hexdigest()
    for answer in cold_answers:
        assert answer.status == 200, answer.text
        assert hashlib.sha256(answer.body).hexdigest() == want
    assert upstream.count(big_zip) == 1
    again = proxy.get(big_zip, timeout=120)  # from the cache, through the one reads thread
    assert again.status == 200 and hashlib.sha256(again.body).hexdigest() == want
    assert upstream.count(big_zip) == 1


def thread_niceness(pid: int) -> dict[str, set[int]]:
    """Thread name -> the nice values its threads run at, from /proc/PID/task/*/stat."""
    found: dict[str, set[int]] = {}
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # the thread ended
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        found.setdefault(name, set()).add(int(fields[16]))
    return found


def test_fill_threads_and_rocksdb_flushes_yield_to_serving(tree, make_upstream, make_sumdb,
                                                           start_proxy):
    """A large fill's receiving, writing and checking, and RocksDB's flushes, all run below the
    connections' priority, so on a busy machine they wait for warm requests instead of the other
    way round."""
    # A large body goes to a file of its own, so it is small entries that fill RocksDB's write
    # buffers: 1 MiB of cache memory gives each column family a 128 KiB buffer, which six
    # inline zips of 60 KiB of incompressible bytes overflow, so the flush thread runs a job.
    small = [tree.add(f"example.com/flush{i}", "v1.0.0",
                      {"go.mod": f"module example.com/flush{i}\n".encode(),
                       "noise.bin": os.urandom(60 << 10)},
                      stored=("noise.bin",))
             for i in range(6)]
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags, "--cache-memory", "1MiB")
    big_zip = tree.get(mt.BIG, "v1.0.0").url_path(".zip")
    assert proxy.get(big_zip, timeout=120).status == 200
    for mv in small:
        answer = proxy.get(mv.url_path(".zip"), timeout=60)
        assert answer.status == 200, answer.text
    # The flush thread lowers its priority before its next job.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        nice = thread_niceness(proxy.proc.pid)
        if 19 in nice.get("rocksdb:high", set()):
            break
        time.sleep(0.2)
    assert nice.get("rocksdb:high") == {19}, nice
    assert nice.get("gmp-fills") == {10}, nice
    assert nice.get("gmp-checks") == {10}, nice
    assert nice.get("gmp-io") == {0}, nice
