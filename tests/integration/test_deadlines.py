"""Per-phase client deadlines: slow request headers, idle keep-alive and a client that stops
reading are each cut off close to their configured deadline, while other clients are served."""

import socket
import time

import module_tree as mt


def _connect(proxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=30)
    sock.settimeout(30)
    return sock


def _seconds_until_closed(sock: socket.socket, limit: float = 20.0) -> float:
    """Reads (discarding) until the server closes the connection; returns the time it took."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
    return time.monotonic() - start


def test_slow_request_headers_are_cut_off_at_request_timeout(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, "--request-timeout", "1s", "--idle-timeout", "30s")
    sock = _connect(proxy)
    # Half a request, then silence (a slowloris client).
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    waited = _seconds_until_closed(sock)
    sock.close()
    assert 0.9 <= waited < 3.0, f"closed after {waited:.2f} s"
    assert proxy.get("/healthz").status == 200


def test_idle_keep_alive_connection_is_closed_at_idle_timeout(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, "--idle-timeout", "1s", "--request-timeout", "30s")
    sock = _connect(proxy)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while not answer.endswith(b"ok\n"):
        chunk = sock.recv(4096)
        assert chunk, "closed before the answer"
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    waited = _seconds_until_closed(sock)
    sock.close()
    assert 0.9 <= waited < 3.0, f"closed after {waited:.2f} s"


def test_client_that_stops_reading_is_cut_off_at_write_timeout(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, "--write-timeout", "1s")
    big = tree.get(mt.BIG, "v1.0.0")
    zip_path = big.url_path(".zip")
    whole = tree.file_bytes(zip_path)
    assert proxy.get(zip_path, timeout=120).body == whole  # now cached

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive buffer so the server's writes block long before 40 MiB are sent.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", proxy.port))
    sock.sendall(f"GET {zip_path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    time.sleep(4)  # stop reading for well past the write deadline
    # Others are served meanwhile.
    assert proxy.get("/healthz").status == 200
    received = 0
    start = time.monotonic()
    while time.monotonic() - start < 30:
        try:
            data = sock.recv(1 << 20)
        except ConnectionResetError:
            break
        if not data:
            break
        received += len(data)
    sock.close()
    # What was in flight drains out, then the connection ends well short of the whole body.
    assert 0 < received < len(whole) // 2, f"received {received} of {len(whole)} bytes"
