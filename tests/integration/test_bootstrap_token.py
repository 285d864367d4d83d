"""config/bootstrap.sh --token on this Linux machine, against a real gomodproxy that asks for
client tokens over its own TLS listener (the go command sends .netrc credentials over https only):
the script's own checks send the token, it writes the .netrc block (host and host:port, mode 600,
first in the file) that the real go 1.19 and 1.23 then use, never prints the token, and
--uninstall puts every byte and mode back."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

import module_tree as mt
from conftest import REPO, ProxyProcess, proxy_binary
from go_output import decode_json_stream
from test_auth import GOS, go_path, new_token  # noqa: F401 (go_path is a fixture)

SCRIPT = REPO / "config" / "bootstrap.sh"
CHECK_MODULE = f"{mt.HELLO}@v1.2.0"
SCRIPT_TIMEOUT = 180.0
BEGIN = "# >>> gomodproxy bootstrap >>>"
END = "# <<< gomodproxy bootstrap <<<"


class Machine:
    """A HOME whose login shell is /bin/sh (so ~/.profile is read), with `go` first on PATH; the
    profile trusts the test CA, as a user's profile would name a company CA."""

    def __init__(self, base: Path, go: str, ca_bundle: Path):
        self.home = base / "home"
        self.home.mkdir(parents=True)
        self.tmp = base / "tmp"
        self.tmp.mkdir()
        self.go = go
        self.ca_bundle = ca_bundle
        (self.home / ".profile").write_text(f"export SSL_CERT_FILE={ca_bundle}\n")

    def env(self, **extra: str) -> dict:
        env = {"HOME": str(self.home), "SHELL": "/bin/sh", "TMPDIR": str(self.tmp),
               "PATH": f"{Path(self.go).parent}:/usr/bin:/bin", "LC_ALL": "C",
               "USER": "tester", "LOGNAME": "tester", "CURL_CA_BUNDLE": str(self.ca_bundle),
               "SSL_CERT_FILE": str(self.ca_bundle)}
        env.update(extra)
        return env

    def bootstrap(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(["sh", str(SCRIPT), *args], env=self.env(**extra),
                              capture_output=True, text=True, timeout=SCRIPT_TIMEOUT,
                              stdin=subprocess.DEVNULL)
        print(f"$ bootstrap.sh {' '.join(args)}\n{proc.stdout}{proc.stderr}"
              f"[exit {proc.returncode}]")
        return proc

    def snapshot(self) -> dict:
        """Every file and link under HOME with its mode and bytes, but what go itself keeps
        there whoever runs it: its build cache (~/.cache) and go 1.23's telemetry counters
        (~/.config/go/telemetry, with the directories above it)."""
        seen = {}
        for path in sorted(self.home.rglob("*")):
            relative = path.relative_to(self.home)
            if relative.parts[0] == ".cache" or relative.parts[:3] == (".config", "go",
                                                                       "telemetry"):
                continue
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode):
                continue
            content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
            seen[str(relative)] = (stat.S_IMODE(info.st_mode), stat.S_IFMT(info.st_mode), content)
        return seen

    def go_downloads(self, base: Path) -> subprocess.CompletedProcess:
        """The user's go afterwards: settings from the env file the script wrote, credentials from
        ~/.netrc, an empty module cache."""
        env = self.env(GOPATH=str(base / "gopath"), GOMODCACHE=str(base / "mod"),
                       GOCACHE=str(base / "gocache"), GOFLAGS="-modcacherw",
                       GOTOOLCHAIN="local")
        return subprocess.run([self.go, "mod", "download", "-json", CHECK_MODULE], env=env,
                              cwd=self.tmp, capture_output=True, text=True, timeout=180)


@pytest.fixture
def token_proxy(tree, make_upstream, make_sumdb, start_proxy, pki, tmp_path):
    """(proxy, token, sumdb): a verifying proxy that asks for `token`, over https with a
    certificate from `pki`."""
    root = tmp_path / "tree"
    tree.subset(root, lambda path: path != mt.BIG)
    token = new_token()
    (tmp_path / "tokens").write_text(f"laptop:{token}\n")
    sumdb = make_sumdb(root)
    proxy = start_proxy(make_upstream(root).url, *sumdb.flags, "--verify", "sumdb",
                        *pki.issue().flags, "--auth-file", str(tmp_path / "tokens"))
    return proxy, token, sumdb


def assert_no_token(proc: subprocess.CompletedProcess, *tokens: str) -> None:
    for token in tokens:
        assert token not in proc.stdout and token not in proc.stderr


def test_token_cycle_over_an_existing_netrc(go_path, tree, token_proxy, pki, tmp_path):
    proxy, token, sumdb = token_proxy
    machine = Machine(tmp_path / "machine", go_path, pki.bundle)
    netrc = machine.home / ".netrc"
    # The user's own entries, a `default` last (go stops reading there), mode 644.
    original = ("machine git.example.com login me password not-a-proxy-token\n"
                "default login anonymous password guest\n")
    netrc.write_text(original)
    netrc.chmod(0o644)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    common = ["--proxy", proxy.url, "--sumdb", sumdb.vkey, "--check-module", CHECK_MODULE]
    before = machine.snapshot()

    # Refusals, each before anything is touched.
    proc = machine.bootstrap("--proxy", f"http://127.0.0.1:{proxy.port}", "--token", token)
    assert proc.returncode == 2 and "https://" in proc.stderr
    assert_no_token(proc, token)
    proc = machine.bootstrap(*common)
    assert proc.returncode == 1 and "needs a client token" in proc.stdout
    wrong = new_token()
    proc = machine.bootstrap(*common, "--token", wrong)
    assert proc.returncode == 1 and "does not accept this token" in proc.stdout
    assert_no_token(proc, wrong)
    proc = machine.bootstrap(*common, "--token", "has a space in it 0123")
    assert proc.returncode == 2
    proc = machine.bootstrap(*common, "--dry-run", "--token-file", str(token_file))
    assert proc.returncode == 0, proc.stdout
    assert f"would change: write machine 127.0.0.1 and 127.0.0.1:{proxy.port} login " \
           f"gomodproxy password ******** in {netrc}" in proc.stdout
    assert_no_token(proc, token)
    assert machine.snapshot() == before

    proc = machine.bootstrap(*common, "--token-file", str(token_file))
    assert proc.returncode == 0, proc.stdout
    assert_no_token(proc, token)
    assert "verified: go list -m -json" in proc.stdout
    assert stat.S_IMODE(netrc.stat().st_mode) == 0o600
    assert netrc.read_text() == (
        f"{BEGIN}\n"
        f"machine 127.0.0.1 login gomodproxy password {token}\n"
        f"machine 127.0.0.1:{proxy.port} login gomodproxy password {token}\n"
        f"{END}\n" + original)

    download = machine.go_downloads(tmp_path / "user-go")
    results = decode_json_stream(download.stdout)
    assert download.returncode == 0 and not [r for r in results if r.get("Error")], \
        download.stdout + download.stderr
    assert results[0]["Sum"] == tree.get(mt.HELLO, "v1.2.0").zip_sum

    configured = machine.snapshot()
    proc = machine.bootstrap(*common, "--token", token)
    assert proc.returncode == 0 and "already set up: nothing changed" in proc.stdout
    assert machine.snapshot() == configured

    proc = machine.bootstrap("--uninstall")
    assert proc.returncode == 0
    assert machine.snapshot() == before
    assert token not in proxy.log_text()


def test_team_path_with_the_shipped_defaults(go_path, tree, make_upstream, make_sumdb, pki,
                                             tmp_path):
    """What a team does, and nothing more: the proxy as shipped plus TLS and a token file; on a
    developer's machine `bootstrap.sh --proxy https://... --token ...`; then go (1.19 or 1.23)
    builds a program with only what the script set (the go env file and ~/.netrc in HOME) and
    the company CA the user's environment trusts. Stand-ins for what a test cannot reach: the
    loopback upstream for the default tiers, a test checksum database (named to the proxy, its
    key to the script) for sum.golang.org, and a test module for the script's default check
    module."""
    root = tmp_path / "tree"
    tree.subset(root, lambda path: path != mt.BIG)
    token = new_token()
    (tmp_path / "tokens").write_text(f"alice:{token}\n")
    sumdb = make_sumdb(root)
    upstream = make_upstream(root)
    proxy = ProxyProcess(proxy_binary(), tmp_path / "cache",
                         ["--upstreams", upstream.url, *sumdb.flags,
                          *pki.issue().flags, "--auth-file", str(tmp_path / "tokens")],
                         tmp_path / "proxy.stderr")
    proxy.start()
    try:
        machine = Machine(tmp_path / "machine", go_path, pki.bundle)
        proc = machine.bootstrap("--proxy", proxy.url, "--token", token, "--sumdb", sumdb.vkey,
                                 "--check-module", CHECK_MODULE)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert_no_token(proc, token)
        assert (machine.home / ".netrc").exists()

        program = tmp_path / "program"
        mt.write_program(program)
        for args in (("mod", "tidy"), ("build", "-o", "prog", ".")):
            built = subprocess.run([go_path, *args], env=machine.env(), cwd=program,
                                   capture_output=True, text=True, timeout=SCRIPT_TIMEOUT)
            assert built.returncode == 0, f"go {' '.join(args)}:\n{built.stderr}"
        ran = subprocess.run([str(program / "prog")], capture_output=True, text=True, timeout=30)
        assert ran.stdout == mt.PROGRAM_OUTPUT
    finally:
        assert proxy.terminate() == 0
    log = proxy.log_text()
    assert token not in log
    assert "tokens are required but this listener is plain HTTP" not in log
    # go fetched the zips and asked the checksum database through the proxy, with alice's token.
    alices = [line for line in log.splitlines() if line.endswith(" alice") and " 200 " in line]
    assert any(f"/{mt.HELLO}/@v/v1.2.0.zip " in line for line in alices), log
    assert any(f" /sumdb/{sumdb.name}/lookup/" in line for line in alices), log


def test_token_into_a_new_netrc_and_an_edited_one_on_uninstall(token_proxy, pki, tmp_path):
    proxy, token, sumdb = token_proxy
    machine = Machine(tmp_path / "machine", GOS["go1.23"], pki.bundle)
    netrc = machine.home / ".netrc"
    common = ["--proxy", proxy.url + "/", "--sumdb", sumdb.vkey, "--check-module", CHECK_MODULE]
    before = machine.snapshot()
    proc = machine.bootstrap(*common, "--token", token)
    assert proc.returncode == 0, proc.stdout
    assert_no_token(proc, token)
    assert stat.S_IMODE(netrc.stat().st_mode) == 0o600
    assert netrc.read_text().startswith(BEGIN + "\n")

    # A line the user added since stays; only the block goes.
    with netrc.open("a") as out:
        out.write("machine other.example login me password kept\n")
    proc = machine.bootstrap("--uninstall")
    assert proc.returncode == 0
    assert "remove the gomodproxy block" in proc.stdout
    assert netrc.read_text() == "machine other.example login me password kept\n"
    netrc.unlink()
    assert machine.snapshot() == before


def test_token_goes_to_the_netrc_that_NETRC_names(token_proxy, pki, tmp_path):
    proxy, token, sumdb = token_proxy
    machine = Machine(tmp_path / "machine", GOS["go1.19"], pki.bundle)
    elsewhere = machine.home / "secrets" / "netrc"
    elsewhere.parent.mkdir()
    # The user's login shells set NETRC too, so the fresh shell the script checks in reads it.
    with (machine.home / ".profile").open("a") as profile:
        profile.write(f"export NETRC={elsewhere}\n")
    before = machine.snapshot()
    proc = machine.bootstrap("--proxy", proxy.url, "--sumdb", sumdb.vkey, "--check-module",
                             CHECK_MODULE, "--token", token, NETRC=str(elsewhere))
    assert proc.returncode == 0, proc.stdout
    assert_no_token(proc, token)
    assert f"warning: NETRC is set ({elsewhere})" in proc.stdout
    assert not (machine.home / ".netrc").exists()
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o600
    assert f"machine 127.0.0.1:{proxy.port} login gomodproxy password {token}\n" in \
        elsewhere.read_text()
    proc = machine.bootstrap("--uninstall", NETRC=str(elsewhere))
    assert proc.returncode == 0
    assert machine.snapshot() == before
