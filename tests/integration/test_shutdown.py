"""SIGTERM drains: an in-flight slow response completes in full and the process exits 0."""

import hashlib
import re
import threading
import time

import module_tree as mt

DRAIN_SECONDS = 30


def test_sigterm_lets_inflight_slow_response_finish(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root, "drip")
    big = tree.get(mt.BIG, "v1.0.0")
    zip_path = big.url_path(".zip")
    expected_sha = hashlib.sha256(tree.file_bytes(zip_path)).hexdigest()
    # About 3 s for 40 MiB: slow enough to be in flight at SIGTERM, fast enough for the suite.
    drip = upstream.drip(re.escape(zip_path) + "$", chunk=1024 * 1024, interval=0.075)
    proxy = start_proxy(upstream.url, "--drain-timeout", f"{DRAIN_SECONDS}s",
                        "--fill-timeout", "120s")

    outcome: list = []

    def fetch() -> None:
        try:
            outcome.append(proxy.get(zip_path, timeout=90))
        except Exception as exc:
            outcome.append(exc)

    client = threading.Thread(target=fetch)
    client.start()
    assert drip.wait_bytes(4 * 1024 * 1024, timeout=30)
    assert drip.completed == 0, "the slow response finished before SIGTERM"
    start = time.monotonic()
    rc = proxy.terminate(timeout=DRAIN_SECONDS + 15)
    elapsed = time.monotonic() - start
    client.join(30)

    assert outcome, "client thread did not finish"
    resp = outcome[0]
    assert not isinstance(resp, Exception), repr(resp)
    assert resp.status == 200
    assert hashlib.sha256(resp.body).hexdigest() == expected_sha
    assert rc == 0, f"exit code {rc}"
    assert elapsed < DRAIN_SECONDS + 5
    # After the drain the port is closed.
    assert not proxy.running()
