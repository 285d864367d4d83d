"""config/bootstrap.sh: shellcheck-clean, and the bats suite tests/bootstrap/bootstrap.bats, run
under dash and under bash --posix, against a real gomodproxy with a test upstream and a test
checksum database.

The upstream serves the standard tree (without the 40 MiB module) plus golang.org/toolchain zips
for darwin/arm64 and darwin/amd64 whose bin/go is tests/bootstrap/shims/go.in, so --install-go
installs a "Go" that runs here. A second proxy, without verification, serves those zips tampered
with; the checksum database knows the genuine ones."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

import module_tree as mt
import toolchain_module as tm
from conftest import REPO
from test_upstream import refused_port

SCRIPT = REPO / "config" / "bootstrap.sh"
BATS_DIR = REPO / "tests" / "bootstrap"
BATS_FILE = BATS_DIR / "bootstrap.bats"
GO_TEMPLATE = BATS_DIR / "shims" / "go.in"
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


def _add_toolchains(tree: mt.ModuleTree, real_go: str, go_version: str) -> list[str]:
    """Adds golang.org/toolchain versions of `go_version` for darwin/arm64 and darwin/amd64 to
    `tree`, each with a bin/go that plays a darwin go on top of `real_go`; returns the URL paths
    of their zips."""
    go_script = GO_TEMPLATE.read_text().replace("@REAL_GO@", real_go)
    zips = []
    for goarch in ("arm64", "amd64"):
        mv = tree.add(tm.TOOLCHAIN, tm.toolchain_version(go_version, "darwin", goarch), {
            "go.mod": tm.MOD,
            "VERSION": f"{go_version}\ntime 2024-01-01T00:00:00Z\n".encode(),
            "bin/go": go_script.replace("@GOARCH@", goarch).encode(),
        }, executable=["bin/go"])  # unzip keeps the executable bit
        zips.append(mv.url_path(".zip"))
    return zips


def _bats_env(**variables: str) -> dict:
    # The suite builds each fake Mac's environment itself; nothing of go's may leak in.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GO", "XDG_", "BATS_")) and k != "CGO_ENABLED"}
    env.update(variables)
    return env


def _expected_test_count() -> int:
    return len(re.findall(r"^@test ", BATS_FILE.read_text(), re.M))


@pytest.mark.parametrize("run_sh", list(RUN_SHELLS), ids=["dash", "bash-posix"])
def test_bats_suite(run_sh, tree, make_upstream, make_sumdb, start_proxy, tmp_path):
    assert SCRIPT.is_file(), f"{SCRIPT} is missing"
    real_go = RUN_SHELLS[run_sh]
    if not os.access(real_go, os.X_OK):
        pytest.fail(f"{real_go} is not installed (scripts/install-deps.sh)")

    go_version = _go_version(real_go)
    root = tmp_path / "tree"
    served = tree.subset(root, lambda path: path != mt.BIG)
    toolchain_zips = _add_toolchains(served, real_go, go_version)

    upstream = make_upstream(root)
    sumdb = make_sumdb(root)
    proxy = start_proxy(upstream.url, *sumdb.flags, "--verify", "sumdb")

    tampering = make_upstream(root, "tampering")
    for path in toolchain_zips:
        genuine = (root / path.lstrip("/")).read_bytes()
        tampering.serve_body(re.escape(path) + "$", mt.tampered_zip(genuine))
    tampered_proxy = start_proxy(tampering.url, *sumdb.flags, "--verify", "off")

    # A web server that is no GOPROXY: everything under /hello is 200 "hello", the rest 404.
    not_a_proxy = make_upstream(None, "not-a-proxy")
    not_a_proxy.serve_body(r"^/hello/", b"hello\n")

    with refused_port() as dead:
        env = _bats_env(
            PROXY_URL=proxy.url, SUMDB_VKEY=sumdb.vkey, CHECK_MODULE=CHECK_MODULE,
            DEAD_PROXY_URL=dead.url, NOT_A_PROXY_URL=f"{not_a_proxy.url}/hello",
            NOT_FOUND_PROXY_URL=f"{not_a_proxy.url}/404", TAMPERED_PROXY_URL=tampered_proxy.url,
            INSTALL_GO_VERSION=go_version.removeprefix("go"), SCRIPT=str(SCRIPT),
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
