"""What the at-scale benches share: the generated cache they run on (build/tests/make_big_cache,
through the real store API), a proxy started on it whose only upstream is a closed loopback port,
and plain GETs to that proxy."""

from __future__ import annotations

import argparse
import http.client
import socket
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def add_cache_arguments(parser: argparse.ArgumentParser, cache_dir_help: str) -> None:
    parser.add_argument("--binary", type=Path, default=REPO / "build" / "gomodproxy")
    parser.add_argument("--generator", type=Path,
                        default=REPO / "build" / "tests" / "make_big_cache")
    parser.add_argument("--entries", type=int, default=100000)
    parser.add_argument("--cache-dir", type=Path, help=cache_dir_help)


def ensure_cache(args: argparse.Namespace, cache_dir: Path) -> None:
    """Generates `cache_dir` with args.entries entries unless it exists."""
    if cache_dir.exists():
        return
    generated = subprocess.run([str(args.generator), str(cache_dir), str(args.entries)],
                               capture_output=True, text=True, check=True, timeout=1800)
    print(generated.stdout.strip())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_proxy(binary: Path, port: int, cache_dir: Path,
                extra: list[str] | None = None) -> subprocess.Popen:
    """`gomodproxy serve` with its shipped defaults but the listener, the cache directory and an
    upstream nothing listens on, so nothing leaves the machine."""
    return subprocess.Popen(
        [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--cache-dir", str(cache_dir),
         "--upstreams", f"http://127.0.0.1:{free_port()}", *(extra or [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def get(port: int, path: str, timeout: float = 5) -> tuple[int, str]:
    """Status and body, or (0, "") when the proxy does not answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    except OSError:
        return 0, ""
    finally:
        conn.close()
