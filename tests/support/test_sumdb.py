"""A real checksum database for tests: tests/support/sumdb_server (golang.org/x/mod's reference
sumdb server, from Debian's golang-golang-x-mod-dev) serving a module tree on 127.0.0.1.

The Go program is compiled in GOPATH mode once and cached under
$XDG_CACHE_HOME/gomodproxy-tests/sumdb (default ~/.cache), keyed by a hash of its source, the
go version and the x/mod sources, so a changed server is rebuilt. Each TestSumdb keeps its signer
key and its record log in a state directory, so restart() signs with the same key and replays the
same history; restart(fork=True) signs, with that key, a history that does not extend it.

The server logs every request on stderr as `sumdb: <method> <uri> <status> <started> <answered>`
(Unix microseconds); a reader thread turns those lines into `requests`, and overlapping() tells
which of them the server was handling at the same time. Every wait is bounded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

from polling import wait_until_listening

SOURCE_DIR = Path(__file__).resolve().parent / "sumdb_server"
DEBIAN_GOPATH = Path("/usr/share/gocode")
XMOD_DIR = DEBIAN_GOPATH / "src" / "golang.org" / "x" / "mod"
GO = "/usr/bin/go"
DEFAULT_NAME = "sum.test.example"

BUILD_TIMEOUT = 300.0
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

LISTEN_RE = re.compile(r"^sumdb listening on (http://127\.0\.0\.1:(\d+)) key (\S+)\s*$")
REQUEST_RE = re.compile(r"^sumdb: (\S+) (\S+) (\d+) (\d+) (\d+)\s*$")


class SumdbError(RuntimeError):
    """The test checksum database could not be built or started."""


@dataclasses.dataclass(frozen=True)
class SumdbRequest:
    method: str
    path: str    # request URI as sent, e.g. '/lookup/example.com/hello@v1.2.0'
    status: int
    started_us: int   # Unix microseconds when the request arrived (before any -delay)
    answered_us: int  # when the handler returned, before the answer's end was flushed

    def overlaps(self, other: "SumdbRequest") -> bool:
        """True when the server was handling both at once. A client that sends one request
        only after reading the other's answer never makes two that overlap."""
        return self.started_us < other.answered_us and other.started_us < self.answered_us


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gomodproxy-tests" / "sumdb"


def _build_env(cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env.update({"GO111MODULE": "off", "GOPATH": str(DEBIAN_GOPATH),
                "GOCACHE": str(cache / "gocache"), "CGO_ENABLED": "0"})
    return env


def _source_key(env: dict) -> str:
    digest = hashlib.sha256()
    for source in sorted(SOURCE_DIR.glob("*.go")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    version = subprocess.run([GO, "version"], env=env, capture_output=True, text=True,
                             timeout=30, check=True).stdout
    digest.update(version.encode())
    for dep in sorted(XMOD_DIR.rglob("*.go")):
        digest.update(str(dep).encode() + b"\0" + dep.read_bytes())
    return digest.hexdigest()[:16]


_built: Optional[Path] = None
_build_lock = threading.Lock()


def build_server() -> Path:
    """Path of the compiled server; compiles it when no binary for the current sources exists.
    Raises SumdbError when golang-golang-x-mod-dev is missing or the build fails."""
    global _built
    with _build_lock:
        if _built is not None and _built.exists():
            return _built
        if not (XMOD_DIR / "sumdb" / "server.go").is_file():
            raise SumdbError(f"{XMOD_DIR} is missing: apt-get install golang-golang-x-mod-dev "
                             "(scripts/install-deps.sh)")
        cache = _cache_root()
        cache.mkdir(parents=True, exist_ok=True)
        env = _build_env(cache)
        binary = cache / f"sumdb_server-{_source_key(env)}"
        if not binary.exists():
            # Build under a private name and rename, so concurrent sessions never run a half
            # written binary.
            partial = cache / f".{binary.name}.{os.getpid()}"
            proc = subprocess.run([GO, "build", "-o", str(partial), "."], cwd=SOURCE_DIR,
                                  env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
            if proc.returncode != 0:
                raise SumdbError(f"building {SOURCE_DIR} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}{proc.stderr}")
            os.replace(partial, binary)
        _built = binary
        return binary


class TestSumdb:
    """One sumdb_server process serving `tree_root`. Use as a context manager or call
    start()/stop(). `state_dir` holds the key file and the record log."""

    __test__ = False  # not a pytest test class

    def __init__(self, tree_root: Path, state_dir: Path, name: str = DEFAULT_NAME,
                 delay: float = 0.0):
        self.tree_root = Path(tree_root)
        self.delay = delay  # seconds the server waits before answering each request
        self.state_dir = Path(state_dir)
        self.name = name
        self.port: Optional[int] = None
        self.vkey: Optional[str] = None
        self.fork = False
        self.proc: Optional[subprocess.Popen] = None
        self._lock = threading.Lock()
        self._log: list[SumdbRequest] = []
        self._stderr: list[str] = []
        self._stdout: list[str] = []
        self._listening = threading.Event()
        self._readers: list[threading.Thread] = []

    @property
    def key_file(self) -> Path:
        return self.state_dir / "key"

    @property
    def records_file(self) -> Path:
        return self.state_dir / "records.jsonl"

    # --- lifecycle ---
    def start(self, fork: bool = False) -> "TestSumdb":
        """Starts the server (on the previous port, if it ran before) and waits for its
        listening line. A fork server neither reads nor extends history written after it."""
        if self.running:
            return self
        self.state_dir.mkdir(parents=True, exist_ok=True)
        listen = f"127.0.0.1:{self.port or 0}"
        cmd = [str(build_server()), "-listen", listen, "-tree", str(self.tree_root),
               "-name", self.name, "-key-file", str(self.key_file),
               "-records-file", str(self.records_file)]
        if fork:
            cmd.append("-fork")
        if self.delay > 0:
            cmd += ["-delay", f"{int(self.delay * 1000)}ms"]
        self.fork = fork
        self._listening = threading.Event()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self._readers = [
            threading.Thread(target=self._read_stdout, args=(self.proc,), daemon=True),
            threading.Thread(target=self._read_stderr, args=(self.proc,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if wait_until_listening(self._listening, self.proc, STARTUP_TIMEOUT):
            return self
        rc = self.proc.poll()
        self.stop()
        raise SumdbError(f"sumdb_server did not print its listening line within "
                         f"{STARTUP_TIMEOUT}s (exit code {rc}); stdout={self._stdout!r}\n"
                         f"stderr:\n{self.stderr_text()}")

    def stop(self) -> None:
        """Terminates the server (killing it if it does not exit in time) and joins readers."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        for reader in self._readers:
            reader.join(timeout=5)
        self._readers = []
        self.proc = None

    def restart(self, fork: bool = False) -> "TestSumdb":
        """stop() then start(fork): same port, same key file, same record log."""
        self.stop()
        return self.start(fork=fork)

    def __enter__(self) -> "TestSumdb":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def url(self) -> str:
        assert self.port is not None, "start() first"
        return f"http://127.0.0.1:{self.port}"

    @property
    def gosumdb(self) -> str:
        """The GOSUMDB value that makes the go command use this server directly."""
        assert self.vkey is not None, "start() first"
        return f"{self.vkey} {self.url}"

    @property
    def flags(self) -> list[str]:
        """The gomodproxy flags that name this server as a checksum database, with its key."""
        assert self.vkey is not None, "start() first"
        return ["--sumdb", f"{self.name}={self.url}", "--sumdb-key", self.vkey]

    # --- observing ---
    @property
    def requests(self) -> list[SumdbRequest]:
        with self._lock:
            return list(self._log)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def count(self, path_prefix: str) -> int:
        """Requests (across restarts) whose URI starts with `path_prefix`, e.g. '/tile/'."""
        return sum(1 for r in self.requests if r.path.startswith(path_prefix))

    def wait_count(self, path_prefix: str, at_least: int = 1, timeout: float = 5.0) -> int:
        """count(path_prefix) once it reaches `at_least`, or whatever it is after `timeout`:
        the log line is written as the answer goes out, so it may trail the client slightly."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.count(path_prefix)
            if n >= at_least or time.monotonic() >= deadline:
                return n
            time.sleep(0.02)

    def overlapping(self, path_prefix: str) -> list[tuple[SumdbRequest, SumdbRequest]]:
        """Every pair of logged requests whose URI starts with `path_prefix` that the server
        was handling at the same time, in log order."""
        chosen = [r for r in self.requests if r.path.startswith(path_prefix)]
        return [(a, b) for i, a in enumerate(chosen) for b in chosen[i + 1:] if a.overlaps(b)]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def stderr_text(self) -> str:
        with self._lock:
            return "".join(self._stderr)

    # --- readers ---
    def _read_stdout(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._stdout.append(line)
            match = LISTEN_RE.match(line)
            if match and not self._listening.is_set():
                self.port = int(match.group(2))
                self.vkey = match.group(3)
                self._listening.set()

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            match = REQUEST_RE.match(line)
            with self._lock:
                self._stderr.append(line)
                if match:
                    self._log.append(SumdbRequest(match.group(1), match.group(2),
                                                  int(match.group(3)), int(match.group(4)),
                                                  int(match.group(5))))


class SumdbFactory:
    """make(tree_root, name=DEFAULT_NAME) -> started TestSumdb with a fresh state directory under
    `base`; close() stops every server it started."""

    def __init__(self, base: Path):
        self.base = Path(base)
        self.started: list[TestSumdb] = []

    def __call__(self, tree_root: Path, name: str = DEFAULT_NAME,
                 delay: float = 0.0) -> TestSumdb:
        sumdb = TestSumdb(tree_root, self.base / f"sumdb{len(self.started) + 1}", name, delay)
        self.started.append(sumdb)
        return sumdb.start()

    def close(self) -> None:
        for sumdb in self.started:
            sumdb.stop()

    def report(self) -> str:
        """Every server's stderr (request log and errors), for a failed test's output."""
        return "".join(f"===== sumdb {s.state_dir.name} ({s.url if s.port else 'never listened'})"
                       f" stderr =====\n{s.stderr_text()}" for s in self.started)

    def __enter__(self) -> "SumdbFactory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
