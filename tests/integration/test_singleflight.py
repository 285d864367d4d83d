"""Many concurrent clients asking for one uncached key cause exactly one upstream fetch."""

import http.client
import threading
import time

import module_tree as mt

CLIENTS = 50


def test_concurrent_misses_share_one_upstream_fetch(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root)
    mv = tree.get(mt.HELLO, "v1.2.0")
    zip_path = mv.url_path(".zip")
    expected = tree.file_bytes(zip_path)
    gate = upstream.gate(r"/example\.com/hello/@v/v1\.2\.0\.zip$")
    proxy = start_proxy(upstream.url)

    sent = threading.Semaphore(0)
    results: list = [None] * CLIENTS

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=60)
        try:
            conn.request("GET", zip_path)
            sent.release()
            resp = conn.getresponse()
            results[i] = (resp.status, resp.read())
        except Exception as exc:  # recorded and asserted below
            sent.release()
            results[i] = exc
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for _ in range(CLIENTS):
        assert sent.acquire(timeout=20), "not every client managed to send its request"
    assert gate.wait_arrivals(1, timeout=20), "the proxy never asked the upstream"
    # Give the proxy a moment to read all 50 requests, so they all join the one flight while the
    # upstream is still held at the gate.
    time.sleep(0.5)
    assert all(r is None for r in results), "answered before the upstream answered"
    gate.open()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)

    for i, result in enumerate(results):
        assert not isinstance(result, Exception), f"client {i}: {result!r}"
        status, body = result
        assert status == 200, f"client {i}: {status} {body[:200]!r}"
        assert body == expected, f"client {i} got different bytes"
    assert upstream.count(zip_path) == 1, upstream.paths()
    assert gate.arrivals == 1
