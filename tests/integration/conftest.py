"""Fixtures that run the real `gomodproxy serve` binary against in-process test upstreams and
drive it with the real `go` command. Everything binds 127.0.0.1 only; every wait is bounded."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "support"))

import module_tree as mt  # noqa: E402
from go_output import decode_json_stream  # noqa: E402
from polling import wait_until_listening  # noqa: E402
from test_upstream import TestUpstream  # noqa: E402

LISTEN_RE = re.compile(rb"^gomodproxy listening on (?:http|https)://127\.0\.0\.1:(\d+)\s*$")
SANITIZER_RE = re.compile(r"runtime error:|ERROR: (Address|Leak|Thread|UndefinedBehavior)Sanitizer")
STARTUP_TIMEOUT = 20.0
GO_TIMEOUT = 180.0

GO_BINARIES = {
    "go1.19": "/usr/lib/go-1.19/bin/go",
    "go1.23": "/usr/lib/go-1.23/bin/go",
}


# --- failure reporting -----------------------------------------------------------------------

@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def _test_failed(request) -> bool:
    for when in ("setup", "call"):
        report = getattr(request.node, "rep_" + when, None)
        if report is not None and report.failed:
            return True
    return False


# --- plain HTTP against the proxy ------------------------------------------------------------

@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def http_request(port: int, path: str, method: str = "GET", timeout: float = 30.0,
                 headers: Optional[dict] = None,
                 tls: Optional[ssl.SSLContext] = None) -> Response:
    """One request on a fresh connection, over https when `tls` is given; `path` is sent exactly
    as given."""
    if tls is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return Response(resp.status, resp.headers, body)
    finally:
        conn.close()


# --- the proxy process -----------------------------------------------------------------------

def proxy_binary() -> Path:
    return Path(os.environ.get("GOMODPROXY_BIN", str(REPO / "build" / "gomodproxy")))


class ProxyProcess:
    """A running `gomodproxy serve`. stdout is parsed for the listening line and then drained;
    stderr goes to a file so the pipe never fills."""

    def __init__(self, binary: Path, cache_dir: Path, args: list[str], log_path: Path,
                 env: Optional[dict] = None):
        self.binary = binary
        self.env = env
        self.cache_dir = cache_dir
        self.args = args
        self.log_path = log_path
        self.port: Optional[int] = None
        self.proc: Optional[subprocess.Popen] = None
        self.stdout_lines: list[bytes] = []
        self._listening = threading.Event()
        self._reader: Optional[threading.Thread] = None
        self.stopped_by_test = False

    def start(self) -> "ProxyProcess":
        if not self.binary.exists():
            pytest.fail(f"proxy binary {self.binary} not found (build it, or set GOMODPROXY_BIN)")
        env = self.env if self.env is not None else os.environ
        env = {k: v for k, v in env.items() if not k.startswith("GOMODPROXY_")}
        cmd = [str(self.binary), "serve", "--listen", "127.0.0.1:0",
               "--cache-dir", str(self.cache_dir), *self.args]
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(b"$ " + " ".join(cmd).encode() + b"\n")
        self._log_file.flush()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._log_file, env=env)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        if wait_until_listening(self._listening, self.proc, STARTUP_TIMEOUT):
            return self
        rc = self.proc.poll()
        self.kill()
        pytest.fail(f"proxy did not print its listening line within {STARTUP_TIMEOUT}s "
                    f"(exit code {rc}); stdout={self.stdout_lines!r}\nstderr:\n{self.log_text()}")

    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line)
            match = LISTEN_RE.match(line)
            if match and self.port is None:
                self.port = int(match.group(1))
                self._listening.set()

    @property
    def url(self) -> str:
        scheme = "https" if self.stdout_lines[0].startswith(b"gomodproxy listening on https:") \
            else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def get(self, path: str, **kwargs) -> Response:
        assert self.port is not None
        return http_request(self.port, path, **kwargs)

    def head(self, path: str, **kwargs) -> Response:
        return self.get(path, method="HEAD", **kwargs)

    def terminate(self, timeout: float = 15.0) -> Optional[int]:
        """SIGTERM and wait; returns the exit code, or None if it had to be killed."""
        self.stopped_by_test = True
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        self.stopped_by_test = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=5)
        log_file = getattr(self, "_log_file", None)
        if log_file is not None and not log_file.closed:
            log_file.close()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture
def start_proxy(tmp_path, request):
    """start_proxy(upstreams, *flags, cache_dir=None, env=None) -> ProxyProcess (fresh cache dir
    default; `env`, when given, is the whole environment instead of the test's own).
    All proxies are stopped at teardown; their stderr is printed when the test failed."""
    started: list[ProxyProcess] = []
    counter = [0]

    def start(upstreams: str, *flags: str, cache_dir: Optional[Path] = None,
              env: Optional[dict] = None) -> ProxyProcess:
        counter[0] += 1
        if cache_dir is None:
            cache_dir = tmp_path / f"cache{counter[0]}"
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Checksum verification needs a checksum database for the test tree: a proxy given
        # one (--sumdb) keeps the shipped default, --verify sumdb; the others verify nothing.
        chosen = any(f.startswith(("--verify", "--sumdb")) for f in flags)
        defaults = [] if chosen else ["--verify", "off"]
        proxy = ProxyProcess(proxy_binary(), cache_dir,
                             ["--upstreams", upstreams, "--log-level", "debug", *defaults,
                              *flags],
                             tmp_path / f"proxy{counter[0]}.stderr", env)
        started.append(proxy)
        return proxy.start()

    yield start
    died = [(p, p.proc.returncode) for p in started
            if not p.stopped_by_test and p.proc is not None and p.proc.poll() is not None]
    for proxy in started:
        if proxy.running():
            proxy.terminate(timeout=10)
        proxy._close()
    if died or _test_failed(request):
        for proxy in started:
            print(f"===== proxy stderr ({proxy.log_path.name}, args {proxy.args}, "
                  f"exit code {proxy.proc.returncode if proxy.proc else None}) =====")
            print(proxy.log_text()[-20000:])
    if died:
        pytest.fail("proxy exited during the test on its own: " +
                    ", ".join(f"{p.log_path.name} exit code {rc}" for p, rc in died))
    # Under a sanitizer build (-DGOMODPROXY_SANITIZE=ON) reports must fail the test even when
    # every answer looked right.
    reports = [p.log_path.name for p in started if SANITIZER_RE.search(p.log_text())]
    if reports:
        for proxy in started:
            print(f"===== proxy stderr ({proxy.log_path.name}) =====")
            print(proxy.log_text()[-20000:])
        pytest.fail(f"sanitizer report in {reports}")


# --- test upstreams --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tree(tmp_path_factory) -> mt.ModuleTree:
    """The standard module tree, including the 40 MiB example.com/big; built once per session."""
    return mt.build_standard_tree(tmp_path_factory.mktemp("tree") / "root")


@pytest.fixture(scope="session")
def half_tree(tree, tmp_path_factory) -> mt.ModuleTree:
    """The standard tree minus every other module path (tier 1 of the chain test)."""
    keep = set(tree.module_paths()[::2])
    return tree.subset(tmp_path_factory.mktemp("half") / "root", lambda p: p in keep)


@pytest.fixture
def make_upstream(request):
    """make_upstream(root, name) -> started TestUpstream; all are stopped at teardown."""
    started: list[TestUpstream] = []

    def make(root: Optional[Path], name: str = "upstream") -> TestUpstream:
        upstream = TestUpstream(root, name).start()
        started.append(upstream)
        return upstream

    yield make
    for upstream in started:
        upstream.clear_faults()
        upstream.stop()
    if _test_failed(request):
        for upstream in started:
            print(f"===== {upstream.name} requests =====")
            for record in upstream.requests[-200:]:
                print(record.method, record.path)


# --- the go command --------------------------------------------------------------------------

class GoRunner:
    """Runs one go binary in a private world: GOPATH, GOMODCACHE, GOCACHE, HOME and GOENV all
    live under `base`; GOPROXY points at the proxy under test; sumdb off; -mod=mod."""

    def __init__(self, go: str, base: Path, goproxy: str):
        self.go = go
        self.base = base
        self.goproxy = goproxy
        self.generation = 0
        self.gosumdb = "off"  # a test may set a checksum database key ("<vkey>" or "<vkey> <url>")
        self.fresh_modcache()

    def fresh_modcache(self) -> None:
        """Switches to a new, empty GOPATH/GOMODCACHE (the build cache is kept)."""
        self.generation += 1
        self.gopath = self.base / f"gopath{self.generation}"
        self.gopath.mkdir(parents=True)
        self.modcache = self.gopath / "pkg" / "mod"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("GO") and k not in ("CGO_ENABLED",)}
        home = self.base / "home"
        home.mkdir(exist_ok=True)
        env.update({
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "GOENV": str(self.base / "goenv"),
            "GOPATH": str(self.gopath),
            "GOMODCACHE": str(self.modcache),
            "GOCACHE": str(self.base / "gocache"),
            "GOPROXY": self.goproxy,
            "GOSUMDB": self.gosumdb,
            "GOFLAGS": "-mod=mod",
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
        })
        return env

    def run(self, *args: str, cwd: Optional[Path] = None, timeout: float = GO_TIMEOUT,
            check: bool = True) -> subprocess.CompletedProcess:
        if cwd is None:
            cwd = self.base / "empty"
            cwd.mkdir(exist_ok=True)
        proc = subprocess.run([self.go, *args], cwd=cwd, env=self.env(), capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            pytest.fail(f"`go {' '.join(args)}` exited {proc.returncode}\n"
                        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def download_json(self, *specs: str) -> list[dict]:
        """`go mod download -json` of module@version specs; fails the test on any error."""
        proc = self.run("mod", "download", "-json", *specs, check=False)
        results = decode_json_stream(proc.stdout)
        errors = [r for r in results if r.get("Error")]
        assert proc.returncode == 0 and not errors, (
            f"go mod download failed ({proc.returncode}): {errors}\n{proc.stderr}")
        return results

    def list_versions(self, module_path: str, *flags: str) -> list[str]:
        proc = self.run("list", "-m", "-versions", *flags, module_path)
        fields = proc.stdout.split()
        assert fields and fields[0] == module_path, proc.stdout
        return fields[1:]

    def build_and_run_program(self) -> str:
        """Writes the program importing the test modules, builds it, returns its output."""
        prog_dir = self.base / f"prog{self.generation}"
        mt.write_program(prog_dir)
        self.run("build", "-o", "prog", ".", cwd=prog_dir)
        out = subprocess.run([str(prog_dir / "prog")], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout


GO_ROOTS = [Path("/usr/lib/go-1.19"), Path("/usr/lib/go-1.23")]
KNOWN_GOSUMDB_RE = re.compile(r'"sum\.golang\.org":\s*"([^"]+)"')


@pytest.fixture(scope="session")
def go_key() -> str:
    """sum.golang.org's verifier key as every installed go command carries it: read from
    cmd/go/internal/modfetch/key.go under its GOROOT, and found in its binary too."""
    keys = {}
    for root in GO_ROOTS:
        go = root / "bin" / "go"
        if not go.exists():
            continue
        goroot = subprocess.run([str(go), "env", "GOROOT"], capture_output=True, text=True,
                                timeout=30, check=True).stdout.strip()
        source = Path(goroot) / "src" / "cmd" / "go" / "internal" / "modfetch" / "key.go"
        [key] = KNOWN_GOSUMDB_RE.findall(source.read_text())
        assert key.encode() in go.read_bytes(), f"{go} does not carry the key of {source}"
        keys[str(root)] = key
    assert keys, f"no go command under any of {GO_ROOTS}"
    assert len(set(keys.values())) == 1, keys
    return next(iter(keys.values()))


def _go_params():
    params = []
    for name, path in GO_BINARIES.items():
        marks = []
        if not (Path(path).exists() and os.access(path, os.X_OK)):
            marks.append(pytest.mark.skip(reason=f"{path} is not installed"))
        params.append(pytest.param(path, id=name, marks=marks))
    return params


@pytest.fixture(params=_go_params())
def go_binary(request) -> str:
    return request.param


@pytest.fixture
def make_go(go_binary, tmp_path):
    """make_go(goproxy_url) -> GoRunner with its own GOPATH/GOMODCACHE/GOCACHE/HOME/GOENV."""
    counter = [0]

    def make(goproxy: str) -> GoRunner:
        counter[0] += 1
        return GoRunner(go_binary, tmp_path / f"go{counter[0]}", goproxy)

    return make


# Every module@version that go must be able to download through the proxy; the big module is left
# out here (it has its own tests) to keep each go run short.
def downloadable_versions(tree: mt.ModuleTree) -> list[mt.ModuleVersion]:
    return [mv for mv in tree.versions.values() if mv.path not in (mt.BIG, mt.PRIVATE)]


def assert_go_downloads_match(go: GoRunner, tree: mt.ModuleTree) -> None:
    """go mod download -json of every module version: Sum and GoModSum equal the tree's h1."""
    versions = downloadable_versions(tree)
    results = go.download_json(*(f"{mv.path}@{mv.version}" for mv in versions))
    got = {(r["Path"], r["Version"]): (r.get("Sum"), r.get("GoModSum")) for r in results}
    expected = {(mv.path, mv.version): (mv.zip_sum, mv.mod_sum) for mv in versions}
    assert got == expected


def assert_go_lists_and_builds(go: GoRunner) -> None:
    assert go.list_versions(mt.HELLO) == ["v1.0.0", "v1.2.0"]  # v1.1.0 is retracted
    assert go.list_versions(mt.HELLO, "-retracted") == ["v1.0.0", "v1.1.0", "v1.2.0"]
    assert go.build_and_run_program() == mt.PROGRAM_OUTPUT


# --- test checksum database ------------------------------------------------------------------

@pytest.fixture
def make_sumdb(tmp_path, request):
    """make_sumdb(root, name='sum.test.example', delay=0.0) -> started TestSumdb
    (tests/support/test_sumdb.py) with its own key and record log, answering after `delay` s; all are stopped at teardown, their logs printed on failure."""
    import test_sumdb

    factory = test_sumdb.SumdbFactory(tmp_path / "sumdb")

    def make(root: Path, name: str = test_sumdb.DEFAULT_NAME,
             delay: float = 0.0) -> test_sumdb.TestSumdb:
        try:
            return factory(root, name, delay)
        except test_sumdb.SumdbError as error:
            pytest.fail(str(error))

    yield make
    factory.close()
    if _test_failed(request):
        print(factory.report())


# --- git repositories and the git server, for the direct tier --------------------------------

@pytest.fixture(scope="session")
def git_repos(tmp_path_factory):
    """tests/support/git_repos.py's repositories, built once per session."""
    import git_repos as gr
    return gr.build_test_repos(tmp_path_factory.mktemp("git") / "repos")


@pytest.fixture(scope="session")
def direct_sums(git_repos, tmp_path_factory) -> dict:
    """(path, version) -> (Sum, GoModSum) of every version of the standard set, as go 1.19 and
    go 1.23 (when installed) compute them with GOPROXY=direct straight from the git server (they
    must agree)."""
    import direct_harness as dh
    from git_server import GitServer

    specs = [f"{path}@{version}" for path, version in git_repos.versions()]
    base = tmp_path_factory.mktemp("direct-sums")
    with GitServer(git_repos.root) as server:
        sums = {go: dh.direct_sums(go, server, base / Path(go).parts[3], specs)
                for go in dh.GOS.values() if dh.installed(go)}
    assert sums, f"none of {list(dh.GOS.values())} is installed"
    first = next(iter(sums.values()))
    assert all(s == first for s in sums.values()), sums
    assert set(first) == set(git_repos.versions())
    return first


def direct_go_params():
    """pytest params for each go of direct_harness.GOS, skipped only when not installed (go 1.23
    is optional in scripts/install-deps.sh)."""
    import direct_harness as dh

    return [pytest.param(go, id=name,
                         marks=[] if dh.installed(go) else
                         [pytest.mark.skip(reason=f"{go} is not installed")])
            for name, go in dh.GOS.items()]


@pytest.fixture
def make_git_server(git_repos, request):
    """make_git_server(root=None) -> started GitServer (default: the session's repositories);
    all are stopped at teardown, their request logs printed when the test failed."""
    from git_server import GitServer

    started = []

    def make(root: Optional[Path] = None):
        server = GitServer(root or git_repos.root).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.clear_hangs()
        server.stop()
    if _test_failed(request):
        for server in started:
            print(f"===== git server {server.root} requests =====")
            for r in server.requests[-300:]:
                print(r.method, r.host, r.path, r.query, r.command, f"wants={r.wants}",
                      f"haves={r.haves}", f"authorized={r.authorized}", r.status)


# --- TLS: a throwaway CA and certificates for 127.0.0.1 --------------------------------------

@pytest.fixture
def pki(tmp_path):
    """tests/support/loopback_pki.py's CertificateAuthority: pki.issue() gives a server
    certificate for --tls-cert/--tls-key, pki.bundle the CA for SSL_CERT_FILE or --ca-file."""
    from loopback_pki import CertificateAuthority

    return CertificateAuthority(tmp_path / "pki")
