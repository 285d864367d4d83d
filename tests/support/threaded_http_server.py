"""What the in-process HTTP test servers share (test_upstream.TestUpstream, git_server.GitServer):
a threaded http.server on 127.0.0.1 that start()/stop() or `with` runs, and a thread-safe log of
the requests their handlers record.

stop() closes the listener and every open connection, so the port refuses afterwards and
handlers blocked on `_stopping` wake; start() binds the same port again.
"""

from __future__ import annotations

import http.server
import socket
import socketserver
import sys
import threading
from typing import Generic, Optional, TypeVar

Record = TypeVar("Record")


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """Base of the test servers' request handlers: HTTP/1.1 keep-alive, no stderr log line per
    request, and `self.server.owner` is the test server."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body of a reused connection
    # waits for the peer's delayed ACK (~40 ms), which would be measured as upstream latency.
    disable_nagle_algorithm = True
    server: "OwnedServer"

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass


class OwnedServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """An http.server whose handlers reach their test server as `self.server.owner`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, owner: "ThreadedHttpServer", handler):
        self.owner = owner
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        self.owner._track(request)
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        # Peers (the proxy under test, git) hang up mid-request on purpose, e.g. after a timeout.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def shutdown_request(self, request):
        self.owner._untrack(request)
        super().shutdown_request(request)


class ThreadedHttpServer(Generic[Record]):
    """Base of a test server: subclasses name their request handler and serving thread, and the
    type of what their handlers `_record`."""

    handler: type[http.server.BaseHTTPRequestHandler]
    thread_name = "http-serve"
    # Tests on the host stay on loopback; a server run inside a test container listens on the
    # container's own interfaces so containers on its network reach it.
    listen_host = "127.0.0.1"

    def __init__(self) -> None:
        self.port: Optional[int] = None
        self._lock = threading.Lock()
        self._log: list[Record] = []
        self._conns: set[socket.socket] = set()
        self._server: Optional[OwnedServer] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()

    def start(self):
        if self._server is not None:
            return self
        self._stopping = threading.Event()
        self._server = OwnedServer((self.listen_host, self.port or 0), self, self.handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, name=self.thread_name,
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Closes the listener and all open connections; blocked handlers are woken."""
        server = self._server
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        assert self.port is not None, "start() first"
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[Record]:
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, record: Record) -> None:
        with self._lock:
            self._log.append(record)

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)
