"""kill -9 in the middle of a 40 MiB fill must never leave a truncated entry that is served, and
the body file the killed fill was writing is deleted by the restarted proxy."""

import hashlib
import re
import signal
import threading
import time

import module_tree as mt

KILL_AFTER_BYTES = 4 * 1024 * 1024


def test_sigkill_during_big_fill_then_restart_serves_whole_zip(tree, tmp_path, make_upstream,
                                                               start_proxy):
    upstream = make_upstream(tree.root, "drip")
    big = tree.get(mt.BIG, "v1.0.0")
    zip_path = big.url_path(".zip")
    expected = tree.file_bytes(zip_path)
    expected_sha = hashlib.sha256(expected).hexdigest()
    drip = upstream.drip(re.escape(zip_path) + "$", chunk=256 * 1024, interval=0.05)
    cache_dir = tmp_path / "shared-cache"
    proxy = start_proxy(upstream.url, cache_dir=cache_dir)

    outcome: list = []

    def fetch() -> None:
        try:
            outcome.append(proxy.get(zip_path, timeout=60))
        except Exception as exc:  # the connection dies with the proxy
            outcome.append(exc)

    client = threading.Thread(target=fetch)
    client.start()
    assert drip.wait_bytes(KILL_AFTER_BYTES, timeout=30), (
        f"upstream sent only {drip.bytes_sent} bytes to the proxy")
    proxy.kill()  # SIGKILL
    assert proxy.proc.returncode == -signal.SIGKILL
    client.join(30)
    assert not client.is_alive()
    assert drip.bytes_sent < len(expected), "the fill finished before the kill"
    # Whatever the first client saw, it must not be a complete-looking 200 with wrong bytes.
    if outcome and not isinstance(outcome[0], Exception):
        first = outcome[0]
        assert first.status != 200 or hashlib.sha256(first.body).hexdigest() == expected_sha

    # The killed fill's body file, cut short, is left behind; no record names it.
    leftovers = list((cache_dir / "bodies").iterdir())
    assert len(leftovers) == 1, leftovers
    assert leftovers[0].stat().st_size < len(expected)

    upstream.clear_faults()  # healthy from now on
    restarted = start_proxy(upstream.url, cache_dir=cache_dir)
    # The start-up collection (in the background) deletes it.
    deadline = time.monotonic() + 30
    while leftovers[0].exists():
        assert time.monotonic() < deadline, "the dead fill's body file was never collected"
        time.sleep(0.05)
    resp = restarted.get(zip_path, timeout=120)
    assert resp.status in (200, 404), resp.text[:300]
    if resp.status == 200:
        assert len(resp.body) == len(expected)
        assert hashlib.sha256(resp.body).hexdigest() == expected_sha
    # The upstream is healthy, so the restarted proxy must serve the whole zip.
    again = restarted.get(zip_path, timeout=120)
    assert again.status == 200, again.text[:300]
    assert hashlib.sha256(again.body).hexdigest() == expected_sha
    assert restarted.get("/healthz").status == 200


def test_sigkill_right_after_a_big_fill_keeps_its_body(tree, tmp_path, make_upstream,
                                                       start_proxy):
    """A large fill's body file is on disk (fdatasync) before the metadata that names it is
    written. Killed the moment the fill is answered, the restarted proxy serves the whole zip
    from its cache without asking the upstream again."""
    upstream = make_upstream(tree.root)
    zip_path = tree.get(mt.BIG, "v1.0.0").url_path(".zip")
    expected_sha = hashlib.sha256(tree.file_bytes(zip_path)).hexdigest()
    cache_dir = tmp_path / "shared-cache"
    proxy = start_proxy(upstream.url, cache_dir=cache_dir)
    assert proxy.head(zip_path, timeout=120).status == 200
    proxy.kill()  # SIGKILL, before any flush the commit did not wait for
    assert proxy.proc.returncode == -signal.SIGKILL
    assert upstream.count(zip_path) == 1
    bodies = list((cache_dir / "bodies").iterdir())
    assert [f.stat().st_size for f in bodies] == [len(tree.file_bytes(zip_path))], bodies

    restarted = start_proxy(upstream.url, cache_dir=cache_dir)
    again = restarted.get(zip_path, timeout=120)
    assert again.status == 200, again.text[:300]
    assert hashlib.sha256(again.body).hexdigest() == expected_sha
    assert upstream.count(zip_path) == 1
