"""A tiny UDP DNS server for tests (stdlib only): answers A queries for the names it is given,
answers AAAA for them with no records (so resolvers that ask both are not left waiting), drops
every query for a "silent" name as a black-holing firewall does, and answers NXDOMAIN for the
rest. Every query is counted by (name, type) before it is answered or dropped."""

from __future__ import annotations

import socket
import struct
import threading
from collections import Counter
from typing import Optional

TYPE_A = 1
TYPE_AAAA = 28
CLASS_IN = 1


def _read_name(packet: bytes, offset: int) -> tuple[str, int]:
    """The (uncompressed) question name at `offset` and the offset after it."""
    labels = []
    while True:
        length = packet[offset]
        offset += 1
        if length == 0:
            return ".".join(labels).lower(), offset
        if length & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(packet[offset:offset + length].decode("ascii", "replace"))
        offset += length


class TinyDns:
    """Serves on (host, port) from a thread. `records` maps a name to (IPv4 address, TTL)."""

    __test__ = False  # not a pytest test class

    def __init__(self, records: dict[str, tuple[str, int]], silent: set[str],
                 host: str = "127.0.0.1", port: int = 53):
        self.records = {name.lower(): value for name, value in records.items()}
        self.silent = {name.lower() for name in silent}
        self.host = host
        self.port = port
        self._queries: Counter = Counter()
        self._lock = threading.Lock()
        self._sock: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()

    def start(self) -> "TinyDns":
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((self.host, self.port))
        self.port = self._sock.getsockname()[1]
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._serve, name="tiny-dns", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> "TinyDns":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def queries(self, name: str, qtype: int = TYPE_A) -> int:
        """How many queries of `qtype` for `name` arrived so far (answered or dropped)."""
        with self._lock:
            return self._queries[(name.lower(), qtype)]

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                packet, peer = self._sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self._reply(packet)
            if reply is not None:
                try:
                    self._sock.sendto(reply, peer)
                except OSError:
                    pass

    def _reply(self, packet: bytes) -> Optional[bytes]:
        if len(packet) < 12:
            return None
        query_id, flags, qdcount = struct.unpack("!HHH", packet[:6])
        if qdcount != 1 or flags & 0x8000:
            return None
        try:
            name, offset = _read_name(packet, 12)
        except (IndexError, ValueError):
            return None
        if offset + 4 > len(packet):
            return None
        qtype, qclass = struct.unpack("!HH", packet[offset:offset + 4])
        question = packet[12:offset + 4]
        with self._lock:
            self._queries[(name, qtype)] += 1
        if name in self.silent:
            return None
        recursion_desired = flags & 0x0100
        answers = b""
        ancount = 0
        rcode = 0
        if name in self.records:
            if qtype == TYPE_A and qclass == CLASS_IN:
                address, ttl = self.records[name]
                # The answer's name points back at the question (offset 12).
                answers = struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, ttl, 4)
                answers += socket.inet_aton(address)
                ancount = 1
        else:
            rcode = 3  # NXDOMAIN
        header = struct.pack("!HHHHHH", query_id, 0x8000 | 0x0400 | recursion_desired | 0x0080 | rcode,
                             1, ancount, 0, 0)
        return header + question + answers
