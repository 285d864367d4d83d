"""Starting the proxy under benchmark, shared by the benchmark scripts in this folder."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Optional

LISTENING = "gomodproxy listening on http://127.0.0.1:"


def start_proxy(binary: Path, flags: list[str], log: Path, bench: str,
                env: Optional[dict] = None) -> tuple[subprocess.Popen, int]:
    """`gomodproxy serve` on a free 127.0.0.1 port with `flags`, its log in `log`; returns the
    process and its port, or exits the benchmark (named `bench`) when it did not start."""
    proc = subprocess.Popen(
        [str(binary), "serve", "--listen", "127.0.0.1:0", *flags],
        stdout=subprocess.PIPE, stderr=log.open("wb"), text=True, env=env)
    line = proc.stdout.readline()
    if not line.startswith(LISTENING):
        proc.kill()
        raise SystemExit(f"{bench}: the proxy did not start: {line!r}; see {log}")
    return proc, int(line[len(LISTENING):].strip())


def stop_proxy(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """TERM, then KILL if it has not exited within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
