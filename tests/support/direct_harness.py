"""Helpers for the `direct` tier's tests: the proxy's environment, a `--go-binary` wrapper that
logs every go process it runs, the `go` command run straight against the git server (the
expected hashes), and a look at the processes of one process group."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Optional

from go_output import decode_json_stream

GO119 = "/usr/lib/go-1.19/bin/go"
GO123 = "/usr/lib/go-1.23/bin/go"
MIN_GO = (1, 19)


def installed(go: str) -> bool:
    return os.access(go, os.X_OK)


# The go the proxy runs when a test names one (through the wrapper): 1.23 where
# scripts/install-deps.sh could install it (it is optional), else 1.19.
PROXY_GO = GO123 if installed(GO123) else GO119
# Every go a test runs, by name: the oldest `direct` supports and the newest installed.
GOS = {"go1.19": GO119, "go1.23": GO123}

# The proxy's environment is built from the test's own minus anything that would route or
# configure it differently from what the test sets.
_DROPPED = re.compile(r"^(GOMODPROXY_|GO|GIT_|HTTPS?_PROXY$|https?_proxy$|NO_PROXY$|no_proxy$|"
                      r"ALL_PROXY$|all_proxy$|NETRC$|XDG_CONFIG_HOME$|CGO_ENABLED$)")


def go_version(go: str) -> tuple[int, int]:
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=30,
                         env={"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent",
                              "GOENV": "off", "GOTOOLCHAIN": "local"}).stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def shipped_path() -> str:
    """The test's PATH for a proxy that runs `go` from PATH (the shipped default): as it is when
    its go is new enough for `direct` (>= 1.19), else with go 1.23 first."""
    path = os.environ.get("PATH", "/usr/bin:/bin")
    found = shutil.which("go", path=path)
    if found is not None and go_version(found) >= MIN_GO:
        return path
    return f"{Path(GO123).parent}:{path}"


def base_env(home: Path, path: Optional[str] = None) -> dict:
    """The proxy's whole environment without any routing: the test's own minus go, git and proxy
    settings, with its own HOME (where credentials go) and PATH."""
    env = {k: v for k, v in os.environ.items() if not _DROPPED.match(k)}
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    env["PATH"] = path or shipped_path()
    return env


def proxy_env(git_server, home: Path, insecure: str, path: Optional[str] = None) -> dict:
    """base_env plus the git server as the HTTP(S) proxy of the go command the proxy runs for
    private and allowed paths, and GOINSECURE for the made-up hosts."""
    env = base_env(home, path)
    env.update(git_server.client_env(insecure))
    return env


class GoWrapper:
    """An executable for `--go-binary` that runs the real go as its child and logs, under a lock,
    `start PID PGID RUNNING ARGS` before and `end PID PGID RUNNING EXIT` after, RUNNING being how
    many wrapped processes are running at that moment."""

    def __init__(self, directory: Path, real_go: str = PROXY_GO):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "go-wrapper"
        self.log = directory / "go-wrapper.log"
        lock = directory / "go-wrapper.lock"
        count = directory / "go-wrapper.count"
        self.log.write_text("")
        count.write_text("0\n")
        self.path.write_text(f"""#!/bin/sh
pgid=$(cut -d' ' -f5 /proc/$$/stat)
(
  flock 9
  n=$(($(cat '{count}') + 1))
  echo "$n" > '{count}'
  echo "start $$ $pgid $n $*" >> '{self.log}'
) 9>>'{lock}'
'{real_go}' "$@"
rc=$?
(
  flock 9
  n=$(($(cat '{count}') - 1))
  echo "$n" > '{count}'
  echo "end $$ $pgid $n $rc" >> '{self.log}'
) 9>>'{lock}'
exit $rc
""")
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def lines(self) -> list[list[str]]:
        return [line.split(" ", 4) for line in self.log.read_text().splitlines() if line]

    def starts(self) -> list[list[str]]:
        return [fields for fields in self.lines() if fields[0] == "start"]

    def ends(self) -> list[list[str]]:
        return [fields for fields in self.lines() if fields[0] == "end"]

    def started(self) -> int:
        return len(self.starts())

    def max_running(self) -> int:
        return max((int(fields[3]) for fields in self.starts()), default=0)

    def max_running_matching(self, pattern: str) -> int:
        """The most processes whose arguments match `pattern` that ran at one moment (the log
        is written under the lock, so its order is the order of starts and ends)."""
        regex = re.compile(pattern)
        running: set[str] = set()
        most = 0
        for fields in self.lines():
            if fields[0] == "start" and regex.search(fields[4] if len(fields) > 4 else ""):
                running.add(fields[1])
                most = max(most, len(running))
            elif fields[0] == "end":
                running.discard(fields[1])
        return most

    def process_groups(self) -> set[int]:
        return {int(fields[2]) for fields in self.starts()}

    def text(self) -> str:
        return self.log.read_text()


def processes_in_group(pgid: int) -> list[tuple[int, str]]:
    """(pid, command name) of every live (not zombie) process whose process group is `pgid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1: raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            found.append((int(entry.name), comm))
    return found


def go_direct(go: str, git_server, base: Path, *args: str, home: Optional[Path] = None,
              insecure: str = "git.corp.example.test", private: str = "git.corp.example.test",
              timeout: float = 180) -> subprocess.CompletedProcess:
    """Runs the go command straight against the git server (GOPROXY=direct), no proxy between."""
    base.mkdir(parents=True, exist_ok=True)
    home = home or base / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(home), "GOPATH": str(base / "gopath"),
        "GOCACHE": str(base / "gocache"), "GOENV": "off", "GOPROXY": "direct",
        "GOPRIVATE": private, "GOSUMDB": "off", "GOTOOLCHAIN": "local",
        "GOFLAGS": "-modcacherw", "GIT_TERMINAL_PROMPT": "0", "CGO_ENABLED": "0",
        **git_server.client_env(insecure),
    }
    return subprocess.run([go, *args], cwd=base, env=env, capture_output=True, text=True,
                          timeout=timeout)


def direct_sums(go: str, git_server, base: Path, specs: list[str],
                **kwargs) -> dict[tuple[str, str], tuple[str, str]]:
    """(path, version) -> (Sum, GoModSum) as `go mod download -json` computes them from git."""
    proc = go_direct(go, git_server, base, "mod", "download", "-json", *specs, **kwargs)
    results = decode_json_stream(proc.stdout)
    errors = [r for r in results if r.get("Error")]
    if proc.returncode != 0 or errors:
        raise AssertionError(f"{go} mod download against the git server failed: "
                             f"{errors or proc.stderr}")
    return {(r["Path"], r["Version"]): (r["Sum"], r["GoModSum"]) for r in results}
