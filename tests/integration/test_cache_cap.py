"""The cache size cap (--cache-max-bytes): 120 MiB of modules through a proxy capped at 50 MiB. The cache directory, as du measures it, comes back under the cap once eviction has run;
entries used again before the flood survive (the upstream never sees them twice); evicted ones
are fetched again on demand; the go command still builds; a 40 MiB zip streamed to a slow client
while the cap evicts it arrives whole. Evictions show in /metrics, /status.json and `cache stats`
of the stopped cache."""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import module_tree as mt
from conftest import SANITIZER_RE, proxy_binary
from polling import wait_for
from test_auth import bearer, new_token

MIB = 1 << 20
CAP = 50 * MIB
FLOOD_MODULES = 12
FLOOD_BLOB = 10 * MIB
# du may exceed the cap between a commit and the eviction it wakes; once eviction has run the
# directory is under the cap plus one chunk (the one being written).
SETTLE_SECONDS = 60.0
SLOW_RATE = 4 * MIB  # bytes a second the slow client reads
PAUSE_AFTER = 8 * MIB  # where it waits for the eviction, so the eviction is mid-stream


def flood_path(i: int) -> str:
    return f"example.com/flood{i}"


@pytest.fixture(scope="module")
def cap_tree(tmp_path_factory) -> mt.ModuleTree:
    """The standard tree (with the 40 MiB example.com/big) and twelve 10 MiB modules of random,
    incompressible bytes."""
    tree = mt.build_standard_tree(tmp_path_factory.mktemp("cap-tree") / "root")
    for i in range(FLOOD_MODULES):
        tree.add(flood_path(i), "v1.0.0", {
            "go.mod": f"module {flood_path(i)}\n\ngo 1.19\n".encode(),
            "flood.go": f"package flood{i}\n".encode(),
            "blob.bin": random.Random(i).randbytes(FLOOD_BLOB),
        }, stored=["blob.bin"])
    return tree


def du_bytes(directory: Path) -> int:
    """du -s in bytes. RocksDB deletes files while du walks, which du reports as an error: such
    a walk is tried again (a few times)."""
    for _ in range(5):
        run = subprocess.run(["du", "-s", "--block-size=1", str(directory)], capture_output=True,
                             text=True, timeout=30)
        if run.returncode == 0:
            return int(run.stdout.split()[0])
    raise AssertionError(f"du {directory} failed five times: {run.stderr}")


def fetch_module(proxy, tree: mt.ModuleTree, module_path: str) -> None:
    """.info, .mod and .zip of module_path@v1.0.0 through the proxy, each checked against the
    tree."""
    mv = tree.get(module_path, "v1.0.0")
    for suffix in (".info", ".mod", ".zip"):
        answer = proxy.get(mv.url_path(suffix), timeout=120)
        assert answer.status == 200, (mv.url_path(suffix), answer.status, answer.text[:200])
        assert answer.body == tree.file_bytes(mv.url_path(suffix)), mv.url_path(suffix)


def program_zips(tree: mt.ModuleTree) -> list[str]:
    versions = [(mt.UPPER, mt.UPPER_RC), (mt.HELLO, "v1.2.0"), (mt.HELLO_V2, "v2.0.0"),
                (mt.INCOMPAT, mt.INCOMPAT_VERSION), (mt.PSEUDO, mt.PSEUDO_VERSION)]
    return [tree.get(path, version).url_path(".zip") for path, version in versions]


def use_program_modules(proxy, tree: mt.ModuleTree) -> None:
    """Asks for the program's zips again, as a client with an empty module cache would."""
    for path in program_zips(tree):
        answer = proxy.get(path)
        assert answer.status == 200 and answer.body == tree.file_bytes(path), path


def metric(proxy, name: str, headers: dict | None = None) -> float:
    text = proxy.get("/metrics", headers=headers).text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def listing(directory: Path) -> str:
    """The directory's files, largest first, for a failure message."""
    files = sorted(((f.stat().st_size, f.name) for f in directory.iterdir() if f.is_file()),
                   reverse=True)
    return ", ".join(f"{name} {size}" for size, name in files)


def wait_under_cap(proxy) -> int:
    def settled():
        size = du_bytes(proxy.cache_dir)
        return size if size <= CAP + MIB else None
    try:
        return wait_for(settled, SETTLE_SECONDS, f"the cache directory under {CAP + MIB} bytes",
                        interval=0.5)
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out} (du: {du_bytes(proxy.cache_dir)}; files: "
                             f"{listing(proxy.cache_dir)})") from None


def cache_stats(cache_dir: Path) -> str:
    run = subprocess.run([str(proxy_binary()), "cache", "stats", "--cache-dir", str(cache_dir)],
                         capture_output=True, text=True, timeout=60)
    assert not SANITIZER_RE.search(run.stderr), run.stderr
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_a_capped_cache_stays_under_its_cap_and_keeps_what_was_used(
        cap_tree, make_upstream, make_sumdb, start_proxy, make_go):
    upstream = make_upstream(cap_tree.root)
    sumdb = make_sumdb(cap_tree.root)
    # The shipped defaults (verification against the checksum database on) plus the cap.
    proxy = start_proxy(upstream.url, *sumdb.flags, "--cache-max-bytes", "50MiB")
    status = json.loads(proxy.get("/status.json").body)
    assert status["cache"]["size_cap"]["max_bytes"] == CAP
    assert "Size cap: 50.0 MiB" in proxy.get("/status").text

    go = make_go(proxy.url)
    go.gosumdb = sumdb.vkey
    assert go.build_and_run_program() == mt.PROGRAM_OUTPUT

    # Each 10 MiB module is followed by a use of the program's modules, so they stay among the
    # most recently used.
    for i in range(FLOOD_MODULES):
        fetch_module(proxy, cap_tree, flood_path(i))
        use_program_modules(proxy, cap_tree)

    settled = wait_under_cap(proxy)
    evictions = metric(proxy, "gomodproxy_cache_evictions_total")
    evicted_bytes = metric(proxy, "gomodproxy_cache_evicted_bytes_total")
    assert evictions >= 7 and evicted_bytes >= 70 * MIB, (evictions, evicted_bytes)
    assert metric(proxy, "gomodproxy_cache_max_bytes") == CAP
    # The proxy's own measurement agrees once it has measured again (every 2 s at most).
    wait_for(lambda: 0 < metric(proxy, "gomodproxy_cache_disk_bytes") <= CAP + MIB, 10,
             "gomodproxy_cache_disk_bytes under the cap")
    cap_status = json.loads(proxy.get("/status.json").body)["cache"]["size_cap"]
    assert cap_status["evictions"] == evictions and 0 < cap_status["full"] <= 1.02, cap_status

    # The program's modules were never evicted: a cold client builds without the upstream
    # seeing any of their zips a second time.
    for path in program_zips(cap_tree):
        assert upstream.count(path) == 1, (path, upstream.count(path))
    cold = make_go(proxy.url)
    cold.gosumdb = sumdb.vkey
    assert cold.build_and_run_program() == mt.PROGRAM_OUTPUT
    for path in program_zips(cap_tree):
        assert upstream.count(path) == 1, (path, upstream.count(path))

    # The oldest flood module was evicted: asked again, it is fetched again, whole.
    first_zip = cap_tree.get(flood_path(0), "v1.0.0").url_path(".zip")
    assert upstream.count(first_zip) == 1
    fetch_module(proxy, cap_tree, flood_path(0))
    assert upstream.count(first_zip) == 2
    wait_under_cap(proxy)
    print(f"du after the flood: {settled} bytes; evictions {evictions:.0f}, "
          f"{evicted_bytes / MIB:.1f} MiB")

    # The stopped cache still tells what the cap evicted.
    assert proxy.terminate() == 0
    stats = cache_stats(proxy.cache_dir)
    line = next(l for l in stats.splitlines() if l.startswith("evictions: "))
    assert int(line.split()[1]) >= evictions, stats
    assert du_bytes(proxy.cache_dir) <= CAP + MIB


def slow_download(port: int, path: str, rate: int, started: threading.Event,
                  resume: threading.Event, result: dict) -> None:
    """GET `path` over one connection with a small receive buffer, reading `rate` bytes a
    second; after PAUSE_AFTER bytes it stops reading until `resume` is set (at most 40 s, well
    within the proxy's 60 s write timeout). `result` gets the body's sha256 and length, or the
    error."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                piece = conn.recv(4096)
                assert piece, "connection closed before the headers"
                head += piece
            head, body_start = head.split(b"\r\n\r\n", 1)
            status = head.split(b"\r\n")[0]
            assert b" 200 " in status, status
            length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
            digest = hashlib.sha256(body_start)
            received = len(body_start)
            started.set()
            piece_bytes = 64 * 1024
            interval = piece_bytes / rate
            next_at = time.monotonic()
            while received < length:
                if received >= PAUSE_AFTER and not resume.is_set():
                    result["paused_at"] = received
                    resume.wait(40)
                    next_at = time.monotonic()
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))
                piece = conn.recv(min(piece_bytes, length - received))
                if not piece:
                    break
                digest.update(piece)
                received += len(piece)
            result.update(sha256=digest.hexdigest(), length=received, expected=length)
    except Exception as error:  # reported by the test thread
        result["error"] = repr(error)
    finally:
        started.set()


def test_a_zip_streamed_to_a_slow_client_while_it_is_evicted_arrives_whole(
        cap_tree, make_upstream, start_proxy):
    upstream = make_upstream(cap_tree.root)
    admin = new_token()
    proxy = start_proxy(upstream.url, "--cache-max-bytes", "50MiB", "--admin-token", admin)
    big_zip = cap_tree.get(mt.BIG, "v1.0.0").url_path(".zip")
    want = hashlib.sha256(cap_tree.file_bytes(big_zip)).hexdigest()
    assert proxy.get(big_zip, timeout=120).status == 200  # now cached

    started = threading.Event()
    resume = threading.Event()
    result: dict = {}
    reader = threading.Thread(target=slow_download,
                              args=(proxy.port, big_zip, SLOW_RATE, started, resume, result))
    reader.start()
    assert started.wait(30), "the slow download did not start"
    began = time.monotonic()
    # The slow download opened the entry first, so it is the least recently used: 60 MiB more
    # pushes the cache past 50 MiB and the cap evicts it while it is being sent.
    for i in range(6):
        fetch_module(proxy, cap_tree, flood_path(i))
    try:
        wait_for(lambda: metric(proxy, "gomodproxy_cache_evicted_bytes_total",
                                bearer(admin)) >= 40 * MIB, 30, "the big zip's eviction")
        assert reader.is_alive(), "the download ended before the eviction; nothing was proven"
    finally:
        resume.set()
    reader.join(timeout=60)
    assert not reader.is_alive(), "the slow download hung"
    took = time.monotonic() - began
    assert "error" not in result, result
    assert PAUSE_AFTER <= result["paused_at"] < result["expected"], result
    assert result["length"] == result["expected"] == cap_tree.get(mt.BIG, "v1.0.0").zip_size
    assert result["sha256"] == want
    assert took > 5, took

    # It was evicted: the next request fetches it from the upstream again.
    assert upstream.count(big_zip) == 1
    again = proxy.get(big_zip, timeout=120)
    assert again.status == 200 and hashlib.sha256(again.body).hexdigest() == want
    assert upstream.count(big_zip) == 2
    # Once the reader let go, the bytes it held were reclaimed.
    wait_under_cap(proxy)

    # The running proxy's admin endpoint tells the evictions too.
    as_json = json.loads(proxy.get("/admin/cache/stats.json", headers=bearer(admin)).body)
    assert as_json["evictions"] >= 1 and as_json["evicted_bytes"] >= 40 * MIB, as_json
    as_text = proxy.get("/admin/cache/stats", headers=bearer(admin)).text
    assert f"evictions: {as_json['evictions']} entries, " in as_text, as_text
