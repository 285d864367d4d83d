"""config/bootstrap.sh: shellcheck-clean, and the bats suite tests/bootstrap/bootstrap.bats, run
under dash and under bash --posix, against a real gomodproxy with a test upstream and a test
checksum database.

The upstream serves the standard tree (without the 40 MiB module) plus golang.org/toolchain zips
for darwin/arm64 and darwin/amd64 whose bin/go is tests/bootstrap/shims/go.in, so --install-go
installs a "Go" that runs here. A second proxy, without verification, serves those zips tampered
with; the checksum database knows the genuine ones."""

from __future__ import annotations

import http.server
import io
import os
import re
import socketserver
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import pytest

import module_tree as mt
from conftest import REPO
from test_upstream import refused_port

SCRIPT = REPO / "config" / "bootstrap.sh"
BATS_DIR = REPO / "tests" / "bootstrap"
BATS_FILE = BATS_DIR / "bootstrap.bats"
GO_TEMPLATE = BATS_DIR / "shims" / "go.in"
TOOLCHAIN = "golang.org/toolchain"
CHECK_MODULE = f"{mt.HELLO}@v1.2.0"
BATS_TIMEOUT = 600.0

# Each shell runs the suite with its own host go behind the fake Macs' go, so the script meets
# both go versions the suite supports.
RUN_SHELLS = {
    "dash": "/usr/lib/go-1.23/bin/go",
    "bash --posix": "/usr/lib/go-1.19/bin/go",
}


def _go_version(go: str) -> str:
    proc = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60,
                          check=True, env={**os.environ, "GOTOOLCHAIN": "local"})
    return proc.stdout.strip()


def _toolchain_zip(version: str, real_go: str, goarch: str) -> bytes:
    """A golang.org/toolchain module zip whose bin/go plays a darwin go; executable bits set,
    as unzip keeps them (the h1 hash ignores them)."""
    prefix = f"{TOOLCHAIN}@{version}/"
    go_script = GO_TEMPLATE.read_text().replace("@REAL_GO@", real_go).replace("@GOARCH@", goarch)
    files = [("go.mod", f"module {TOOLCHAIN}\n".encode(), 0o644),
             ("VERSION", f"{_go_version(real_go)}\ntime 2024-01-01T00:00:00Z\n".encode(), 0o644),
             ("bin/go", go_script.encode(), 0o755)]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content, mode in files:
            info = zipfile.ZipInfo(prefix + name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, content)
    return buf.getvalue()


def _add_toolchains(root: Path, real_go: str) -> list[str]:
    """Writes golang.org/toolchain versions of `real_go`'s release for darwin/arm64 and
    darwin/amd64 into the tree at `root`; returns the URL paths of their zips."""
    go_version = _go_version(real_go)
    vdir = root / TOOLCHAIN / "@v"
    vdir.mkdir(parents=True, exist_ok=True)
    zips, versions = [], []
    for goarch in ("arm64", "amd64"):
        version = f"v0.0.1-{go_version}.darwin-{goarch}"
        (vdir / f"{version}.zip").write_bytes(_toolchain_zip(version, real_go, goarch))
        (vdir / f"{version}.mod").write_bytes(f"module {TOOLCHAIN}\n".encode())
        (vdir / f"{version}.info").write_text(
            f'{{"Version":"{version}","Time":"2024-01-01T00:00:00Z"}}')
        versions.append(version)
        zips.append(f"/{TOOLCHAIN}/@v/{version}.zip")
    (vdir / "list").write_text("".join(v + "\n" for v in versions))
    return zips


class _NotAProxy(http.server.BaseHTTPRequestHandler):
    """Answers like a web server that is no GOPROXY: paths under /404 are not found, everything
    else is 200 "hello"."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass

    def do_GET(self):
        self._answer(head=False)

    def do_HEAD(self):
        self._answer(head=True)

    def _answer(self, head: bool) -> None:
        status, body = (404, b"not found\n") if self.path.startswith("/404") else (200, b"hello\n")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


@pytest.fixture
def not_a_proxy():
    server = _ThreadingServer(("127.0.0.1", 0), _NotAProxy)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _bats_env(**variables: str) -> dict:
    # The suite builds each fake Mac's environment itself; nothing of go's may leak in.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GO", "XDG_", "BATS_")) and k != "CGO_ENABLED"}
    env.update(variables)
    return env


def _expected_test_count() -> int:
    return len(re.findall(r"^@test ", BATS_FILE.read_text(), re.M))


@pytest.mark.parametrize("run_sh", list(RUN_SHELLS), ids=["dash", "bash-posix"])
def test_bats_suite(run_sh, tree, make_upstream, make_sumdb, start_proxy, not_a_proxy,
                    tmp_path):
    assert SCRIPT.is_file(), f"{SCRIPT} is missing"
    real_go = RUN_SHELLS[run_sh]
    if not os.access(real_go, os.X_OK):
        pytest.fail(f"{real_go} is not installed (scripts/install-deps.sh)")

    root = tmp_path / "tree"
    tree.subset(root, lambda path: path != mt.BIG)
    toolchain_zips = _add_toolchains(root, real_go)

    upstream = make_upstream(root)
    sumdb = make_sumdb(root)
    sumdb_flags = ["--sumdb", f"{sumdb.name}={sumdb.url}", "--sumdb-key", sumdb.vkey]
    proxy = start_proxy(upstream.url, *sumdb_flags, "--verify", "sumdb")

    tampering = make_upstream(root, "tampering")
    for path in toolchain_zips:
        genuine = (root / path.lstrip("/")).read_bytes()
        tampering.serve_body(re.escape(path) + "$", mt.tampered_zip(genuine))
    tampered_proxy = start_proxy(tampering.url, *sumdb_flags, "--verify", "off")

    with refused_port() as dead:
        env = _bats_env(
            PROXY_URL=proxy.url, SUMDB_VKEY=sumdb.vkey, CHECK_MODULE=CHECK_MODULE,
            DEAD_PROXY_URL=dead.url, NOT_A_PROXY_URL=f"{not_a_proxy}/hello",
            NOT_FOUND_PROXY_URL=f"{not_a_proxy}/404", TAMPERED_PROXY_URL=tampered_proxy.url,
            INSTALL_GO_VERSION=_go_version(real_go).removeprefix("go"), SCRIPT=str(SCRIPT),
            RUN_SH=run_sh, REAL_GO=real_go, TMPDIR=str(tmp_path))
        started = time.monotonic()
        proc = subprocess.run(["bats", "--tap", str(BATS_FILE)], env=env, capture_output=True,
                              text=True, timeout=BATS_TIMEOUT, stdin=subprocess.DEVNULL)
        elapsed = time.monotonic() - started

    tap = proc.stdout + proc.stderr
    print(f"===== bats under {run_sh} ({elapsed:.1f}s, exit {proc.returncode}) =====\n{tap}")
    expected = _expected_test_count()
    plan = re.search(r"^1\.\.(\d+)$", proc.stdout, re.M)
    passed = re.findall(r"^ok \d+ ", proc.stdout, re.M)
    skipped = re.findall(r"^ok \d+ .*# skip", proc.stdout, re.M)
    assert proc.returncode == 0, f"bats failed under {run_sh}"
    assert plan is not None and int(plan.group(1)) == expected, plan
    assert len(passed) == expected and not skipped


def _shellcheck(*args: str) -> None:
    proc = subprocess.run(["shellcheck", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"shellcheck {' '.join(args)}:\n{proc.stdout}{proc.stderr}"


def test_bootstrap_script_is_shellcheck_clean():
    assert SCRIPT.is_file(), f"{SCRIPT} is missing"
    _shellcheck(str(SCRIPT))
    _shellcheck("-s", "sh", str(SCRIPT))


def test_bats_helpers_are_shellcheck_clean():
    _shellcheck("-s", "bash", "-x", "-P", str(BATS_DIR), str(BATS_DIR / "helpers.bash"),
                str(BATS_FILE))
    _shellcheck("-s", "sh", str(GO_TEMPLATE))
