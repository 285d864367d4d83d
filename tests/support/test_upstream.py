"""A scriptable in-process upstream for tests: serves a module tree over HTTP/1.1 on 127.0.0.1.

Every request is logged (thread-safe) before any fault applies, so counts include requests that
were held at a gate or hung. Faults are matched by regex against the raw request path (query
included) in the order they were added; the first live match wins:
  status   answer a fixed status (404/410/500/503, ...) with a text/plain body
  hang     read the request and never answer until the fault is released or the server stops
  delay    wait `interval` seconds (or until released), then answer normally: a slow tier
  drip     send the real body `chunk` bytes per `interval` seconds
  truncate declare the full Content-Length, send half the body, close
  gate     hold the request until the test opens the gate, then serve normally
  body     answer 200 with the given bytes instead of the tree's
stop() closes the listener and every open connection, so the port refuses afterwards; start()
binds the same port again.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Optional

from threaded_http_server import QuietHandler, ThreadedHttpServer

# Bound on how long any handler may block, so a forgotten gate cannot wedge a test run.
MAX_BLOCK_SECONDS = 120.0


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str          # raw request target as sent, e.g. '/example.com/%21upper/@v/list'
    decoded_path: str  # percent-decoded path without the query
    headers: dict
    when: float


class Fault:
    """One scripted behaviour; `times` limits how many requests it applies to (None: all)."""

    def __init__(self, pattern: str, kind: str, *, status: int = 500, chunk: int = 65536,
                 interval: float = 0.05, body: bytes = b"", times: Optional[int] = None):
        self.regex = re.compile(pattern)
        self.kind = kind
        self.status = status
        self.chunk = chunk
        self.interval = interval
        self.body = body
        self.remaining = times
        self.released = threading.Event()  # hang: release; gate: open
        self._cond = threading.Condition()
        self.arrivals = 0                  # requests that reached this fault
        self.bytes_sent = 0                # drip/truncate: body bytes written so far
        self.completed = 0                 # drip/gate: requests whose body was fully written

    # --- used by tests ---
    def release(self) -> None:
        """Opens a gate or lets hung requests go on (hung ones are then closed without answer)."""
        self.released.set()

    open = release

    def wait_arrivals(self, n: int, timeout: float = 10.0) -> bool:
        """True once at least n requests have reached this fault."""
        with self._cond:
            return self._cond.wait_for(lambda: self.arrivals >= n, timeout)

    def wait_bytes(self, n: int, timeout: float = 10.0) -> bool:
        """True once at least n body bytes have been written under this fault."""
        with self._cond:
            return self._cond.wait_for(lambda: self.bytes_sent >= n, timeout)

    def wait_completed(self, n: int, timeout: float = 10.0) -> bool:
        """True once at least n requests have had their whole body written under this fault."""
        with self._cond:
            return self._cond.wait_for(lambda: self.completed >= n, timeout)

    # --- used by the handler ---
    def _take(self) -> bool:
        with self._cond:
            if self.remaining is not None:
                if self.remaining <= 0:
                    return False
                self.remaining -= 1
            self.arrivals += 1
            self._cond.notify_all()
            return True

    def _add_bytes(self, n: int) -> None:
        with self._cond:
            self.bytes_sent += n
            self._cond.notify_all()

    def _complete(self) -> None:
        with self._cond:
            self.completed += 1
            self._cond.notify_all()


def _content_type(path: str) -> str:
    if path.endswith(".info") or path.endswith("/@latest"):
        return "application/json"
    if path.endswith(".zip"):
        return "application/zip"
    return "text/plain; charset=utf-8"


class _Handler(QuietHandler):
    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        upstream = self.server.owner
        split = urllib.parse.urlsplit(self.path)
        decoded = urllib.parse.unquote(split.path)
        upstream._record(RequestRecord(self.command, self.path, decoded, dict(self.headers),
                                       time.monotonic()))
        fault = upstream._match(self.path)
        if fault is not None and fault.kind == "status":
            self._answer(fault.status, f"fault: status {fault.status}\n".encode(),
                         "text/plain; charset=utf-8", head)
            return
        if fault is not None and fault.kind == "hang":
            upstream._block(fault)
            self.close_connection = True
            return
        if fault is not None and fault.kind == "delay":
            fault.released.wait(fault.interval)
        if fault is not None and fault.kind == "gate":
            if not upstream._block(fault):
                self.close_connection = True
                return
        if fault is not None and fault.kind == "body":
            self._answer(200, fault.body, _content_type(decoded), head)
            fault._complete()
            return
        body = upstream._read(decoded)
        if body is None:
            self._answer(404, f"not found: {decoded}\n".encode(), "text/plain; charset=utf-8",
                         head)
            return
        if fault is not None and fault.kind == "drip":
            self._drip(fault, body, _content_type(decoded), head)
            return
        if fault is not None and fault.kind == "truncate":
            self._start(200, len(body), _content_type(decoded))
            half = body[: len(body) // 2]
            if not head:
                self.wfile.write(half)
                fault._add_bytes(len(half))
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._answer(200, body, _content_type(decoded), head)
        if fault is not None:
            fault._complete()

    def _start(self, status: int, length: int, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _answer(self, status: int, body: bytes, content_type: str, head: bool) -> None:
        self._start(status, len(body), content_type)
        if not head:
            self.wfile.write(body)
        self.wfile.flush()

    def _drip(self, fault: Fault, body: bytes, content_type: str, head: bool) -> None:
        upstream = self.server.owner
        self._start(200, len(body), content_type)
        self.wfile.flush()
        if head:
            return
        deadline = time.monotonic() + MAX_BLOCK_SECONDS
        offset = 0
        while offset < len(body):
            if upstream._stopping.is_set() or time.monotonic() > deadline:
                self.close_connection = True
                return
            piece = body[offset: offset + fault.chunk]
            try:
                self.wfile.write(piece)
                self.wfile.flush()
            except OSError:
                self.close_connection = True
                return
            offset += len(piece)
            fault._add_bytes(len(piece))
            if offset < len(body):
                upstream._stopping.wait(fault.interval)
        fault._complete()


class TestUpstream(ThreadedHttpServer[RequestRecord]):
    """Serves `root` (a ModuleTree directory) at http://127.0.0.1:<port>. Use as a context manager
    or call start()/stop()."""

    __test__ = False  # not a pytest test class

    handler = _Handler

    def __init__(self, root: Optional[Path] = None, name: str = "upstream"):
        super().__init__()
        self.root = Path(root) if root is not None else None
        self.name = name
        self._faults: list[Fault] = []

    @property
    def thread_name(self) -> str:
        return f"{self.name}-serve"

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- scripting ---
    def add_fault(self, pattern: str, kind: str, **kwargs) -> Fault:
        if kind not in ("status", "hang", "delay", "drip", "truncate", "gate", "body"):
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = Fault(pattern, kind, **kwargs)
        with self._lock:
            self._faults.append(fault)
        return fault

    def fail(self, pattern: str, status: int, **kwargs) -> Fault:
        return self.add_fault(pattern, "status", status=status, **kwargs)

    def hang(self, pattern: str, **kwargs) -> Fault:
        return self.add_fault(pattern, "hang", **kwargs)

    def delay(self, pattern: str, seconds: float, **kwargs) -> Fault:
        return self.add_fault(pattern, "delay", interval=seconds, **kwargs)

    def drip(self, pattern: str, chunk: int, interval: float, **kwargs) -> Fault:
        return self.add_fault(pattern, "drip", chunk=chunk, interval=interval, **kwargs)

    def truncate(self, pattern: str, **kwargs) -> Fault:
        return self.add_fault(pattern, "truncate", **kwargs)

    def gate(self, pattern: str, **kwargs) -> Fault:
        return self.add_fault(pattern, "gate", **kwargs)

    def serve_body(self, pattern: str, body: bytes, **kwargs) -> Fault:
        return self.add_fault(pattern, "body", body=body, **kwargs)

    def clear_faults(self) -> None:
        """Removes all faults and releases anything they hold."""
        with self._lock:
            faults, self._faults = self._faults, []
        for fault in faults:
            fault.release()

    # --- observing ---
    def paths(self) -> list[str]:
        """Decoded request paths in arrival order."""
        return [r.decoded_path for r in self.requests]

    def count(self, decoded_path: str) -> int:
        """Requests whose decoded path equals `decoded_path` (e.g. '/example.com/!upper/@v/list')."""
        return sum(1 for r in self.requests if r.decoded_path == decoded_path)

    def count_matching(self, pattern: str) -> int:
        regex = re.compile(pattern)
        return sum(1 for r in self.requests if regex.search(r.path))

    # --- handler side ---
    def _match(self, raw_path: str) -> Optional[Fault]:
        with self._lock:
            faults = list(self._faults)
        for fault in faults:
            if fault.regex.search(raw_path) and fault._take():
                return fault
        return None

    def _block(self, fault: Fault) -> bool:
        """Waits for release; False if the server stopped or the bound ran out first."""
        deadline = time.monotonic() + MAX_BLOCK_SECONDS
        while time.monotonic() < deadline:
            if fault.released.wait(0.05):
                return not self._stopping.is_set()
            if self._stopping.is_set():
                return False
        return False

    def _read(self, decoded_path: str) -> Optional[bytes]:
        if self.root is None:
            return None
        rel = decoded_path.lstrip("/")
        if not rel or "\x00" in rel:
            return None
        target = (self.root / rel).resolve()
        root = self.root.resolve()
        if root not in target.parents or not target.is_file():
            return None
        return target.read_bytes()


class RefusedPort:
    """A 127.0.0.1 port that is bound but not listening, so connections to it are refused.
    Holding the socket keeps anyone else from taking the port meanwhile."""

    def __init__(self):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "RefusedPort":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def refused_port() -> RefusedPort:
    return RefusedPort()
