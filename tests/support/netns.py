"""A throw-away network namespace for tests that need their own resolver configuration: the
namespace gets loopback up and its own /etc/netns/NAME/resolv.conf (and hosts, when given), which
`ip netns exec` mounts over /etc for the processes it starts. The test's own thread can step in
(`inside()`) so that the test servers it starts and the requests it makes live in the namespace
too; threads started meanwhile stay there. Needs root (CAP_SYS_ADMIN) and iproute2."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Iterator, Optional

CLONE_NEWNET = 0x40000000
NETNS_ETC = Path("/etc/netns")
IP = shutil.which("ip") or "/usr/sbin/ip"

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def unavailable_reason() -> Optional[str]:
    """Why network namespaces cannot be used here, or None when they can (checked by making one)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not Path(IP).exists():
        return "iproute2's ip command is not installed"
    name = f"gmp-check-{os.getpid()}"
    made = subprocess.run([IP, "netns", "add", name], capture_output=True, text=True, timeout=20)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run([IP, "netns", "del", name], capture_output=True, timeout=20)
    return None


class NetNamespace:
    """Context manager: creates the namespace and its /etc/netns files, removes both at exit."""

    def __init__(self, name: str, resolv_conf: str, hosts: Optional[str] = None):
        self.name = name
        self.files = {"resolv.conf": resolv_conf}
        if hosts is not None:
            self.files["hosts"] = hosts
        self._made_netns_etc = False

    def __enter__(self) -> "NetNamespace":
        subprocess.run([IP, "netns", "add", self.name], check=True, timeout=20)
        try:
            subprocess.run([IP, "-n", self.name, "link", "set", "lo", "up"], check=True,
                           timeout=20)
            self._made_netns_etc = not NETNS_ETC.exists()
            etc = NETNS_ETC / self.name
            etc.mkdir(parents=True, exist_ok=True)
            for file_name, text in self.files.items():
                (etc / file_name).write_text(text)
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._remove()

    def _remove(self) -> None:
        subprocess.run([IP, "netns", "del", self.name], capture_output=True, timeout=20)
        shutil.rmtree(NETNS_ETC / self.name, ignore_errors=True)
        if self._made_netns_etc:
            with contextlib.suppress(OSError):
                NETNS_ETC.rmdir()

    def rewrite(self, file_name: str, text: str) -> None:
        """Rewrites one of the namespace's /etc files in place: processes already started see the
        new text (their bind mount holds the same inode)."""
        with open(NETNS_ETC / self.name / file_name, "r+") as f:
            f.truncate(0)
            f.write(text)

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """Moves the calling thread into the namespace for the block, then back."""
        original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(original)
        finally:
            os.close(target)
            os.close(original)

    def wrap(self, binary: Path, directory: Path) -> Path:
        """A script that runs `binary` with its arguments in the namespace (resolver files
        mounted), for code that takes a program path."""
        script = directory / f"in-{self.name}-{binary.name}"
        script.write_text(f'#!/bin/sh\nexec {IP} netns exec {self.name} {binary} "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return script
