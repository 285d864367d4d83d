"""The access log is written by spdlog's background thread: every request still gets its line,
in a file as on stderr, the file is current while the proxy runs, and nothing queued is lost at
a clean shutdown. (Breaker and probe transitions are logged in test_failover.py.)"""

from __future__ import annotations

import re
import socket
import threading

from polling import wait_for
from test_monitor import mod_paths

ACCESS_RE = re.compile(r"^\S+ access (GET|HEAD) (\S+) (\d{3}) \d+ [\d.]+ms ")


def access_lines(text: str) -> list[re.Match]:
    return [m for m in map(ACCESS_RE.match, text.splitlines()) if m]


def test_access_log_file_gets_every_request_while_running_and_at_shutdown(
        tree, make_upstream, start_proxy, tmp_path):
    upstream = make_upstream(tree.root, "A")
    log_file = tmp_path / "access.log"
    proxy = start_proxy(upstream.url, "--access-log", str(log_file))
    paths = mod_paths(tree, 6)
    for path in paths:
        assert proxy.get(path).status == 200
    # spdlog's flusher writes the file out once a second, so it is current while the proxy runs.
    wait_for(lambda: len(access_lines(log_file.read_text())) == len(paths), 5,
             "one access line per request in the file")
    assert [m.group(2) for m in access_lines(log_file.read_text())] == paths
    assert not access_lines(proxy.log_text()), "access lines went to stderr, not the file"

    # Many requests at once from several clients, then SIGTERM right away: every line queued
    # before the shutdown is written.
    burst = [p for p in paths for _ in range(50)]
    threads = [threading.Thread(target=lambda chunk=burst[i::6]: [proxy.get(p) for p in chunk])
               for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert proxy.terminate() == 0
    assert len(access_lines(log_file.read_text())) == len(paths) + len(burst)
    assert "lines dropped" not in proxy.log_text()


def test_access_log_off_writes_no_lines(tree, make_upstream, start_proxy):
    upstream = make_upstream(tree.root, "A")
    proxy = start_proxy(upstream.url, "--access-log", "off")
    for path in mod_paths(tree, 3):
        assert proxy.get(path).status == 200
    assert proxy.terminate() == 0
    assert not access_lines(proxy.log_text())


STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}"


def test_access_line_fields_are_exact(tree, make_upstream, start_proxy, tmp_path):
    """Every field of a line, in order: the server writes the lines itself, stamp included, and
    hands them to the logger in batches; a batch must still be one line per request."""
    upstream = make_upstream(tree.root, "A")
    log_file = tmp_path / "access.log"
    proxy = start_proxy(upstream.url, "--access-log", str(log_file))
    path = mod_paths(tree, 1)[0]
    body = proxy.get(path).body
    assert proxy.get(path).status == 200
    assert proxy.head(path).status == 200
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
        answer = raw.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 ")
    error_body_size = len(answer.split(b"\r\n\r\n", 1)[1])
    assert proxy.terminate() == 0
    lines = log_file.read_text().splitlines()
    # Requests on different connections may be served by different I/O threads, whose lines are
    # not ordered against each other.
    quoted = re.escape(path)
    expected = [
        rf"{STAMP} access GET {quoted} 200 {len(body)} \d+\.\d{{3}}ms miss \S+ -",
        rf"{STAMP} access GET {quoted} 200 {len(body)} \d+\.\d{{3}}ms hit \S+ -",
        rf"{STAMP} access HEAD {quoted} 200 0 \d+\.\d{{3}}ms hit \S+ -",
        rf"{STAMP} access - - 400 {error_body_size} 0 - - -",
    ]
    assert len(lines) == len(expected), lines
    for pattern in expected:
        assert sum(1 for line in lines if re.fullmatch(pattern, line)) == 1, (pattern, lines)
