#!/usr/bin/python3
"""Regenerates the seed corpora of tests/fuzz/corpus/ that come from real traffic: the real `go`
command (1.19 and, when installed, 1.23) downloads a small module graph through a recording
GOPROXY on 127.0.0.1 that serves a tests/support module tree and passes /sumdb/ through to the
x/mod reference checksum database (tests/support/sumdb_server). Every request head go sends
becomes an http_request seed and its target a request_path seed; every lookup answer, tree head
note and tile it fetched becomes a lookup, signed_note or tile seed (with the database's verifier
key in front, as those targets expect). Module zips from the tree, a zip64 variant and the unit
tests' zips become zip_directory seeds; the example config becomes a config_loader seed.

Hand-written seeds (files named hand-*) are kept; everything else in a corpus directory is
replaced. Run from anywhere: /usr/bin/python3 tests/fuzz/make_corpus.py
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "fuzz" / "corpus"
sys.path.insert(0, str(REPO / "tests" / "support"))

import module_tree as mt  # noqa: E402
from test_sumdb import TestSumdb  # noqa: E402

GO_COMMANDS = ["/usr/lib/go-1.19/bin/go", "/usr/lib/go-1.23/bin/go"]
SUMDB_NAME = "sum.test.example"
IO_TIMEOUT = 10.0
GO_TIMEOUT = 120.0


def build_tree(root: Path) -> mt.ModuleTree:
    tree = mt.ModuleTree(root)
    license_text = b"Permission is hereby granted, free of charge, to any person.\n" * 8

    def module(path: str, version: str, extra: dict[str, bytes] | None = None, **kw):
        files = {"go.mod": f"module {path}\n\ngo 1.19\n".encode(), "LICENSE": license_text,
                 "lib.go": b"package lib\n\nfunc Hello() string { return \"hello\" }\n"}
        files.update(extra or {})
        return tree.add(path, version, files, **kw)

    module("example.com/hello", "v1.2.0")
    module("example.com/hello", "v1.2.1", {"sub/dir/file.go": b"package dir\n"}, stored=["LICENSE"])
    module("example.com/hello/v2", "v2.0.1")
    module("example.com/Upper/Mixed", "v1.0.0-Beta.1")
    module("gopkg.in/yaml.v3", "v3.0.1")
    module("example.com/pseudo", "v0.0.0-20240101000000-abcdefabcdef")
    tree.set_latest("example.com/hello", "v1.2.1")
    return tree


class Recorder:
    """A GOPROXY on raw sockets, so the request bytes are exactly what go sent."""

    def __init__(self, tree_root: Path, sumdb_url: str):
        self.tree_root = tree_root
        self.sumdb_url = sumdb_url
        self.heads: list[bytes] = []
        self.sumdb_answers: list[tuple[str, bytes]] = []  # (path below the database, body)
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.5)
        self.port = self.listener.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _answer(self, path: str) -> tuple[int, bytes]:
        prefix = f"/sumdb/{SUMDB_NAME}"
        if path.startswith(prefix + "/"):
            below = path[len(prefix):]
            if below == "/supported":
                return 200, b""
            try:
                with urllib.request.urlopen(self.sumdb_url + below, timeout=IO_TIMEOUT) as r:
                    body = r.read()
            except urllib.error.HTTPError as e:
                return e.code, b"not found\n"
            with self.lock:
                self.sumdb_answers.append((below, body))
            return 200, body
        file = self.tree_root / urllib.request.unquote(path).lstrip("/")
        if ".." not in path and file.is_file():
            return 200, file.read_bytes()
        return 404, b"not found\n"

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(IO_TIMEOUT)
        buffered = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffered:
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buffered += chunk
                end = buffered.index(b"\r\n\r\n") + 4
                head, buffered = buffered[:end], buffered[end:]
                with self.lock:
                    self.heads.append(head)
                target = head.split(b" ")[1].decode("latin-1")
                status, body = self._answer(target)
                conn.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n" % (status, len(body)) +
                             body)

    def stop(self) -> None:
        self.stopping = True
        self.thread.join(timeout=5)
        self.listener.close()


def run_go(go: str, port: int, vkey: str, work: Path) -> None:
    module_dir = work / "main"
    module_dir.mkdir(parents=True, exist_ok=True)
    (module_dir / "go.mod").write_text(
        "module example.com/main\n\ngo 1.19\n\nrequire (\n\texample.com/hello v1.2.1\n"
        "\texample.com/hello/v2 v2.0.1\n\texample.com/Upper/Mixed v1.0.0-Beta.1\n"
        "\tgopkg.in/yaml.v3 v3.0.1\n\texample.com/pseudo v0.0.0-20240101000000-abcdefabcdef\n)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env.update({"GOPROXY": f"http://127.0.0.1:{port}", "GOSUMDB": vkey,
                "GOPATH": str(work / "gopath"), "GOMODCACHE": str(work / "gopath" / "mod"),
                "GOCACHE": str(work / "gocache"), "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local",
                "HOME": str(work)})
    for args in (["mod", "download", "-json", "all"],
                 ["list", "-m", "-versions", "example.com/hello"],
                 ["list", "-m", "-json", "example.com/hello@latest"],
                 ["list", "-m", "-json", "example.com/hello@v1.2"],
                 ["mod", "download", "-json", "example.com/hello@v1.2.0"]):
        subprocess.run([go, *args], cwd=module_dir, env=env, timeout=GO_TIMEOUT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def zip64_variant(zip_bytes: bytes) -> bytes:
    """The same zip with a zip64 end record and locator, and the 32-bit end record saturated."""
    eocd = zip_bytes.rindex(b"PK\x05\x06")
    (_, _, _, _, count, dir_size, dir_offset, _) = struct.unpack("<IHHHHIIH",
                                                                 zip_bytes[eocd:eocd + 22])
    zip64_end = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, dir_size,
                            dir_offset)
    locator = struct.pack("<IIQI", 0x07064B50, 0, eocd, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return zip_bytes[:eocd] + zip64_end + locator + end


def write_seed(target: str, data: bytes) -> None:
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def clear_generated(target: str) -> None:
    directory = CORPUS / target
    if directory.is_dir():
        for seed in directory.iterdir():
            if not seed.name.startswith("hand-"):
                seed.unlink()


def tile_seed(path: str, body: bytes) -> bytes | None:
    """20-byte header of tile_fuzz.cpp (height, level, width, index, stored index) + tile bytes;
    the stored index is that of the tile's last hash at its level."""
    parts = path.strip("/").split("/")  # tile H L NNN[.p W]
    if len(parts) < 4 or parts[2] == "data":
        return None
    height, level = int(parts[1]), int(parts[2])
    digits = [p.lstrip("x") for p in parts[3:] if p != ".p"]
    width = 1 << height
    if parts[-2].endswith(".p"):
        width = int(parts[-1])
        digits = [p.lstrip("x").removesuffix(".p") for p in parts[3:-1]]
    index = int("".join(digits))
    stored = stored_hash_index(level * height, (index << height) + width - 1)
    return struct.pack("<BbHqq", height, level, width, index, stored) + body


def stored_hash_index(level: int, n: int) -> int:
    """tlog.StoredHashIndex of golang.org/x/mod/sumdb/tlog."""
    for _ in range(level):
        n = 2 * n + 1
    i = 0
    while n > 0:
        i += n
        n >>= 1
    return i + level


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="gomodproxy-corpus-"))
    try:
        tree = build_tree(work / "tree")
        with TestSumdb(work / "tree", work / "sumdb-state", name=SUMDB_NAME) as sumdb:
            recorder = Recorder(work / "tree", sumdb.url)
            try:
                for go in GO_COMMANDS:
                    if Path(go).exists():
                        run_go(go, recorder.port, sumdb.vkey, work / Path(go).parts[-3])
            finally:
                recorder.stop()
            vkey = sumdb.vkey
        for target in ("request_path", "http_request", "lookup", "signed_note", "tile",
                       "zip_directory", "config_loader"):
            clear_generated(target)
        for head in recorder.heads:
            write_seed("http_request", head)
            write_seed("request_path", head.split(b" ")[1])
        for path, body in recorder.sumdb_answers:
            if path.startswith("/lookup/"):
                write_seed("lookup", vkey.encode() + b"\n" + body)
                write_seed("signed_note", vkey.encode() + b"\n" + body.split(b"\n\n", 1)[1])
            elif path == "/latest":
                write_seed("signed_note", vkey.encode() + b"\n" + body)
            elif path.startswith("/tile/"):
                seed = tile_seed(path, body)
                if seed is not None:
                    write_seed("tile", seed)
        for mv in tree.versions.values():
            zip_bytes = (work / "tree" / mv.escaped_path / "@v" /
                         f"{mv.escaped_version}.zip").read_bytes()
            write_seed("zip_directory", zip_bytes)
        for unit_zip in sorted((REPO / "tests" / "unit" / "sumdb" / "testdata").glob("*.zip")):
            write_seed("zip_directory", unit_zip.read_bytes())
            write_seed("zip_directory", zip64_variant(unit_zip.read_bytes()))
        write_seed("config_loader", (REPO / "config" / "gomodproxy.example.toml").read_bytes())
        counts = {t.name: len(list(t.iterdir())) for t in sorted(CORPUS.iterdir())}
        print("seeds:", counts)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
