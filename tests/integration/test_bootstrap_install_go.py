"""`config/bootstrap.sh --install-go` end to end on Linux: Go 1.19.8 in module form
(golang.org/toolchain, built from the Debian GOROOT by tests/support/toolchain_module.py) is served
by a test upstream through gomodproxy, checked by the script against the test checksum database,
installed under a temporary HOME whose PATH has no go, found by a fresh login shell and removed
again by --uninstall. A tampered zip and a proxy without the checksum database are refused."""

from __future__ import annotations

import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

import module_tree as mt
import toolchain_module as tm
from conftest import REPO, GoRunner

SCRIPT = REPO / "config" / "bootstrap.sh"
GO_VERSION = "1.19.8"
TOOLCHAIN_VERSION = tm.toolchain_version("go" + GO_VERSION)
CHECK_MODULE = f"{mt.HELLO}@v1.2.0"
SCRIPT_TIMEOUT = 300.0

BLOCK_BEGIN = "# >>> gomodproxy bootstrap >>>"
BLOCK_END = "# <<< gomodproxy bootstrap <<<"
BLOCK_PATH_LINE = f'export PATH="$HOME/sdk/go{GO_VERSION}/bin:$PATH"'


# --- session fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def toolchain(tree, tmp_path_factory) -> tuple[mt.ModuleTree, tm.ToolchainBuild]:
    """A tree with example.com/hello (the script's --check-module) and the toolchain module."""
    out = tree.subset(tmp_path_factory.mktemp("toolchain") / "root", lambda p: p == mt.HELLO)
    build = tm.add_toolchain(out, without=tm.WITHOUT_TESTS)
    assert build.go_version == "go" + GO_VERSION, "the Debian GOROOT is not the expected Go"
    print(f"toolchain module: {build.files} files, {build.uncompressed_bytes} bytes unpacked, "
          f"zip {build.module.zip_size} bytes, built in {build.seconds:.1f} s")
    return out, build


@pytest.fixture(scope="session")
def tampered_root(toolchain, tmp_path_factory) -> Path:
    """The same tree, except that one byte of one file in the toolchain zip differs."""
    genuine, build = toolchain
    out = genuine.subset(tmp_path_factory.mktemp("tampered") / "root", lambda p: True)
    tm.write_tampered_zip(build.zip_path, out.root / build.module.url_path(".zip").lstrip("/"))
    return out.root


@pytest.fixture(scope="session")
def go_less_path(tmp_path_factory) -> str:
    """A PATH with everything in /usr/bin except go and gofmt (/usr/bin/go exists here)."""
    bin_dir = tmp_path_factory.mktemp("go-less") / "bin"
    bin_dir.mkdir()
    for entry in Path("/usr/bin").iterdir():
        if entry.name not in ("go", "gofmt"):
            (bin_dir / entry.name).symlink_to(entry)
    return str(bin_dir)


# --- helpers -------------------------------------------------------------------------------------

class Machine:
    """A user account in miniature: a HOME, a login shell (bash), a PATH without go."""

    def __init__(self, base: Path, path: str):
        self.home = base / "home"
        self.home.mkdir(parents=True)
        self.tmp = base / "tmp"
        self.tmp.mkdir()
        self.path = path

    @property
    def sdk(self) -> Path:
        return self.home / "sdk" / f"go{GO_VERSION}"

    @property
    def profile(self) -> Path:
        return self.home / ".bash_profile"

    @property
    def go_env_file(self) -> Path:
        return self.home / ".config" / "go" / "env"

    @property
    def state_file(self) -> Path:
        return self.home / ".config" / "gomodproxy" / "bootstrap.saved"

    def env(self) -> dict:
        # Nothing from the test runner's environment (GOPROXY, XDG_CONFIG_HOME, ...) leaks in.
        return {"HOME": str(self.home), "SHELL": "/bin/bash", "PATH": self.path,
                "TMPDIR": str(self.tmp)}

    def bootstrap(self, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(["sh", str(SCRIPT), *args], env=self.env(), cwd=self.home,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=SCRIPT_TIMEOUT)
        print(f"$ sh bootstrap.sh {' '.join(args)}\n(exit {proc.returncode})\n{proc.stdout}"
              f"{proc.stderr}")
        return proc

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        """argv in a clean environment: only HOME, SHELL and the go-less PATH."""
        return subprocess.run(["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in self.env().items()
                                                        if k != "TMPDIR"), *argv],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=60)

    def files(self) -> dict[str, bytes]:
        """Every file under HOME, by relative path, with its bytes."""
        out = {}
        for dirpath, _, filenames in os.walk(self.home):
            for name in filenames:
                path = Path(dirpath) / name
                out[str(path.relative_to(self.home))] = path.read_bytes()
        return out


def _error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line.startswith("error: ")]


def _assert_one_block(profile: Path, before: bytes = b"") -> None:
    text = profile.read_text()
    lines = text.splitlines()
    assert lines.count(BLOCK_BEGIN) == 1 and lines.count(BLOCK_END) == 1, text
    begin = lines.index(BLOCK_BEGIN)
    assert lines[begin:begin + 3] == [BLOCK_BEGIN, BLOCK_PATH_LINE, BLOCK_END], text
    # What the user had stays in front of the block, byte for byte.
    assert text.encode().startswith(before), text


def _assert_installed_go(machine: Machine) -> None:
    go = machine.sdk / "bin" / "go"
    version = machine.run(str(go), "version")
    assert version.returncode == 0, version.stderr
    assert version.stdout == f"go version go{GO_VERSION} linux/amd64\n"
    # A self-contained GOROOT, not one that leans on /usr/lib/go-1.19.
    goroot = machine.run(str(go), "env", "GOROOT")
    assert goroot.stdout.strip() == str(machine.sdk), goroot


def _assert_login_shell_finds_go(machine: Machine, proxy_url: str) -> None:
    fresh = machine.run("bash", "-l", "-c", "command -v go; go env GOPROXY")
    assert fresh.returncode == 0, fresh.stderr
    go_path, goproxy = fresh.stdout.splitlines()
    assert go_path == str(machine.sdk / "bin" / "go")
    # The proxy, then the default fallback (config/bootstrap.sh joins them with '|').
    assert re.fullmatch(re.escape(proxy_url) + r"[,|]direct", goproxy), goproxy


# --- the fixture itself --------------------------------------------------------------------------

class _ModcacheWritable(GoRunner):
    """GoRunner whose module cache can be deleted with the test's temporary directory."""

    def env(self) -> dict:
        env = super().env()
        env["GOFLAGS"] = "-modcacherw"
        return env


def test_toolchain_zip_hashes_as_the_go_command_computes(toolchain, go_binary, tmp_path):
    tree, build = toolchain
    mv = build.module
    go = _ModcacheWritable(go_binary, tmp_path, f"file://{tree.root}")
    [result] = go.download_json(f"{tm.TOOLCHAIN}@{TOOLCHAIN_VERSION}")
    assert result["Sum"] == mv.zip_sum
    assert result["GoModSum"] == mv.mod_sum == mt.gomod_hash(tm.MOD)
    assert tree.file_bytes(mv.url_path(".mod")) == b"module golang.org/toolchain\n"
    assert tree.list_body(tm.TOOLCHAIN) == f"{TOOLCHAIN_VERSION}\n".encode()
    assert (Path(result["Dir"]) / "VERSION").read_text() == "go" + GO_VERSION


def test_toolchain_zip_has_the_module_layout(toolchain):
    _, build = toolchain
    prefix = f"{tm.TOOLCHAIN}@{TOOLCHAIN_VERSION}/"
    with zipfile.ZipFile(build.zip_path) as zf:
        infos = zf.infolist()
    names = [i.filename[len(prefix):] for i in infos if i.filename.startswith(prefix)]
    assert len(names) == len(infos) == build.files
    assert not [n for n in names if n.endswith("/")]
    assert not [n for n in names if n.split("/")[0] in ("api", "doc", "misc", "test")]
    assert sorted(n for n in names if n.startswith("bin/")) == ["bin/go", "bin/gofmt"]
    tools = {n.split("/", 3)[3] for n in names if n.startswith("pkg/tool/")}
    assert {"compile", "link", "asm"} <= tools and not tools & {"api", "dist"}
    assert not [n for n in names if n.startswith("pkg/")
                and not n.startswith(("pkg/tool/linux_amd64/", "pkg/include/"))]
    # Only the module root may hold a go.mod; the toolchain keeps its own as _go.mod.
    assert not [n for n in names if n.rsplit("/", 1)[-1] == "go.mod"]
    assert {"src/_go.mod", "src/cmd/_go.mod", "VERSION", "src/runtime/proc.go"} <= set(names)
    assert not [n for n in names if "/testdata/" in n or n.endswith("_test.go")]
    modes = {i.filename[len(prefix):]: (i.external_attr >> 16) & 0o777 for i in infos}
    assert modes["bin/go"] == modes["pkg/tool/linux_amd64/compile"] == 0o755
    assert modes["src/make.bash"] == 0o755 and modes["src/runtime/proc.go"] == 0o644
    # The h1 the tree records is the one of the zip's content, not only of the source files.
    assert mt.zip_hash(build.zip_path) == build.module.zip_sum


def test_tampered_toolchain_zip_differs_in_one_byte(toolchain, tampered_root):
    _, build = toolchain
    tampered = tampered_root / build.module.url_path(".zip").lstrip("/")
    assert not os.path.samefile(tampered, build.zip_path)
    with zipfile.ZipFile(build.zip_path) as genuine_zf, zipfile.ZipFile(tampered) as tampered_zf:
        assert tampered_zf.testzip() is None  # every CRC matches: a well-formed zip
        genuine_crcs = {i.filename: i.CRC for i in genuine_zf.infolist()}
        tampered_crcs = {i.filename: i.CRC for i in tampered_zf.infolist()}
        changed = [n for n in genuine_crcs if genuine_crcs[n] != tampered_crcs[n]]
        assert changed == [f"{tm.TOOLCHAIN}@{TOOLCHAIN_VERSION}/{tm.TAMPERED_ENTRY}"]
        before, after = genuine_zf.read(changed[0]), tampered_zf.read(changed[0])
    assert len(before) == len(after) and sum(a != b for a, b in zip(before, after)) == 1


# --- the script ----------------------------------------------------------------------------------

def test_install_go_through_the_proxy_then_uninstall(toolchain, go_less_path, make_upstream,
                                                     make_sumdb, start_proxy, tmp_path):
    tree, build = toolchain
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags, "--verify", "sumdb")
    zip_path = build.module.url_path(".zip")
    machine = Machine(tmp_path / "m", go_less_path)
    assert machine.run("sh", "-c", "command -v go").stdout == ""
    assert machine.files() == {}
    args = ["--proxy", proxy.url, "--sumdb", sumdb.vkey, "--check-module", CHECK_MODULE,
            "--install-go", GO_VERSION, "--yes"]

    first = machine.bootstrap(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "  go: none" in first.stdout.splitlines()
    _assert_installed_go(machine)
    _assert_one_block(machine.profile)
    _assert_login_shell_finds_go(machine, proxy.url)
    assert upstream.count(zip_path) == 1
    assert sumdb.wait_count(build.module.lookup_path, 1) >= 1

    # Nothing left to do: no download, no change.
    profile_after_first = machine.profile.read_bytes()
    second = machine.bootstrap(*args)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already set up: nothing changed" in second.stdout.splitlines()
    assert not [line for line in second.stdout.splitlines() if line.startswith("change: ")]
    assert machine.profile.read_bytes() == profile_after_first
    assert upstream.count(zip_path) == 1

    removed = machine.bootstrap("--uninstall")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not machine.sdk.exists()
    # Profile, go env file, saved state, backup: none existed before, none is left.
    assert machine.files() == {}

    # Again, over a profile of the user's own (no final newline): the proxy's cache serves the
    # zip, and uninstall gives back the profile's exact bytes.
    original = b"# mine\nexport EDITOR=vi"
    machine.profile.write_bytes(original)
    third = machine.bootstrap(*args)
    assert third.returncode == 0, third.stdout + third.stderr
    _assert_installed_go(machine)
    _assert_one_block(machine.profile, original)
    assert Path(f"{machine.profile}.gomodproxy-backup").read_bytes() == original
    assert upstream.count(zip_path) == 1
    removed = machine.bootstrap("--uninstall")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert machine.files() == {".bash_profile": original}
    assert not machine.sdk.exists()
    # The check's module cache (read-only files) went with the rest of the script's temp files.
    assert list(machine.tmp.iterdir()) == []


def test_a_tampered_toolchain_zip_is_refused(toolchain, tampered_root, go_less_path,
                                             make_upstream, make_sumdb, start_proxy, tmp_path):
    tree, build = toolchain
    upstream = make_upstream(tampered_root)
    sumdb = make_sumdb(tree.root)  # records the genuine zip
    # The proxy does not check zips itself here, so the script's own check is what stands.
    proxy = start_proxy(upstream.url, *sumdb.flags, "--verify", "off")
    machine = Machine(tmp_path / "m", go_less_path)
    before = machine.files()

    proc = machine.bootstrap("--proxy", proxy.url, "--sumdb", sumdb.vkey, "--check-module",
                             CHECK_MODULE, "--install-go", GO_VERSION, "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert [line for line in _error_lines(proc) if "checksum mismatch" in line], proc.stdout
    assert upstream.count(build.module.url_path(".zip")) == 1  # it was downloaded, then refused
    assert not machine.sdk.exists()
    assert not machine.profile.exists() and not (machine.home / ".profile").exists()
    assert not machine.go_env_file.exists()
    assert machine.files() == before


def test_no_checksum_database_at_the_proxy_refuses_unless_told(toolchain, go_less_path,
                                                               make_upstream, make_sumdb,
                                                               start_proxy, tmp_path):
    tree, build = toolchain
    upstream = make_upstream(tree.root)
    wanted = make_sumdb(tree.root)  # the database the script is told to use; not at the proxy
    other = make_sumdb(tree.root, name="other.test.example")
    proxy = start_proxy(upstream.url, *other.flags, "--verify", "off")
    assert proxy.get(f"/sumdb/{wanted.name}/supported").status == 404
    machine = Machine(tmp_path / "m", go_less_path)
    # With no database at the proxy GOSUMDB keeps its default, sum.golang.org, which the script's
    # final `go list` cannot reach from here: this user has the check module excluded already.
    env_before = f"GONOSUMDB={mt.HELLO}\n".encode()
    machine.go_env_file.parent.mkdir(parents=True)
    machine.go_env_file.write_bytes(env_before)
    before = machine.files()
    args = ["--proxy", proxy.url, "--sumdb", wanted.vkey, "--check-module", CHECK_MODULE,
            "--install-go", GO_VERSION, "--yes"]

    refused = machine.bootstrap(*args)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert _error_lines(refused), refused.stdout
    assert machine.files() == before and not machine.sdk.exists()
    assert upstream.count(build.module.url_path(".zip")) == 0

    installed = machine.bootstrap(*args, "--insecure-skip-verify")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    _assert_installed_go(machine)
    _assert_one_block(machine.profile)
    assert wanted.paths() == [] and other.paths() == []

    removed = machine.bootstrap("--uninstall")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert machine.files() == before and not machine.sdk.exists()


def test_default_checksum_database_is_checked_with_the_go_commands_key(toolchain, go_less_path,
                                                                       make_upstream, make_sumdb,
                                                                       start_proxy, go_key,
                                                                       tmp_path):
    """No --sumdb: the script checks the proxy's sum.golang.org answers with the key it ships.
    The only database that can sign as sum.golang.org here is a test one with a key of its own,
    so the shipped key has to pass the checks go makes of a key (its hash matches its name and
    bytes) and then refuse that signature, naming itself: the go command's key, byte for byte."""
    tree, build = toolchain
    upstream = make_upstream(tree.root)
    impostor = make_sumdb(tree.root, name="sum.golang.org")
    proxy = start_proxy(upstream.url, *impostor.flags, "--verify", "off")
    machine = Machine(tmp_path / "m", go_less_path)
    before = machine.files()

    proc = machine.bootstrap("--proxy", proxy.url, "--check-module", CHECK_MODULE,
                             "--install-go", GO_VERSION, "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert _error_lines(proc) == [
        f"error: the sum.golang.org answer is not signed by {go_key} (nothing was changed)"]
    assert impostor.count(build.module.lookup_path) >= 1
    assert machine.files() == before and not machine.sdk.exists()


def test_a_malformed_checksum_database_key_is_refused(toolchain, go_less_path, make_upstream,
                                                      make_sumdb, start_proxy, tmp_path):
    """A key whose hash does not match its name and bytes (as go checks in note.NewVerifier) is
    refused as a key, before any signature is looked at."""
    tree, build = toolchain
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags, "--verify", "off")
    name, key_hash, key_data = sumdb.vkey.split("+", 2)
    mistyped = f"{name}+{key_hash}+{key_data[:-6]}AAAAAA"
    machine = Machine(tmp_path / "m", go_less_path)
    before = machine.files()

    proc = machine.bootstrap("--proxy", proxy.url, "--sumdb", mistyped, "--check-module",
                             CHECK_MODULE, "--install-go", GO_VERSION, "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert _error_lines(proc) == [
        f"error: {mistyped} is not a valid verifier key: its hash does not match its name and "
        "key (nothing was changed)"]
    assert machine.files() == before and not machine.sdk.exists()


def test_a_key_that_is_not_an_ed25519_key_is_refused_as_such(toolchain, go_less_path,
                                                             make_upstream, make_sumdb,
                                                             start_proxy, tmp_path):
    """A key whose last part is not base64 of an Ed25519 public key (0x01 and 32 bytes) is
    refused for that, as go's note.NewVerifier refuses it before it looks at the hash."""
    tree, _ = toolchain
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags, "--verify", "off")
    name, key_hash, key_data = sumdb.vkey.split("+", 2)
    machine = Machine(tmp_path / "m", go_less_path)
    before = machine.files()
    for key_part in ("AAAA", key_data[:8], "not*base64"):
        malformed = f"{name}+{key_hash}+{key_part}"
        proc = machine.bootstrap("--proxy", proxy.url, "--sumdb", malformed, "--check-module",
                                 CHECK_MODULE, "--install-go", GO_VERSION, "--yes")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert _error_lines(proc) == [
            f"error: {malformed} is not a valid verifier key: its last part is not an Ed25519 "
            "public key (nothing was changed)"], key_part
        assert machine.files() == before and not machine.sdk.exists()
