"""`gomodproxy prefetch`: the test consumer's go.mod and go.sum warm a running proxy through its
protocol (and its checksum database records through /sumdb/), so that a cold go command builds
the consumer with the upstream and the database stopped; failures are listed and exit 1."""

import os
import pty
import re
import secrets
import socket
import subprocess
import urllib.request
from pathlib import Path

import module_tree as mt
from conftest import proxy_binary

# The consumer's requirements (module_tree.PROGRAM_GOMOD): module path and version.
CONSUMER_REQUIRES = [
    (mt.UPPER, mt.UPPER_RC),
    (mt.HELLO, "v1.2.0"),
    (mt.HELLO_V2, "v2.0.0"),
    (mt.INCOMPAT, mt.INCOMPAT_VERSION),
    (mt.PSEUDO, mt.PSEUDO_VERSION),
]
SUMMARY_RE = re.compile(
    r"^prefetch: (?P<versions>\d+) module versions from (?P<files>\d+) files: "
    r"(?P<file_requests>\d+) files( and (?P<lookups>\d+) checksum lookups)?.*, "
    r"(?P<fetched>\d+) fetched, (?P<failed>\d+) failed, .* in [0-9.]+s"
    r"(, (?P<unusable>\d+) unusable lines)?$")
PREFETCH_TIMEOUT = 120


def write_consumer(tree: mt.ModuleTree, directory: Path) -> None:
    """The consumer's go.mod, main.go and the go.sum the go command writes for it."""
    mt.write_program(directory)
    lines = []
    for path, version in CONSUMER_REQUIRES:
        mv = tree.get(path, version)
        lines.append(f"{path} {version} {mv.zip_sum}\n")
        lines.append(f"{path} {version}/go.mod {mv.mod_sum}\n")
    (directory / "go.sum").write_text("".join(sorted(lines)))


def prefetch(*args: str, netrc: str = os.devnull,
             timeout: float = PREFETCH_TIMEOUT) -> subprocess.CompletedProcess:
    """Runs `gomodproxy prefetch` reading .netrc credentials from `netrc` only."""
    return subprocess.run([str(proxy_binary()), "prefetch", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "NETRC": netrc})


def test_prefetched_consumer_builds_cold_with_upstream_and_database_stopped(
        tree, tmp_path, make_upstream, make_sumdb, start_proxy, make_go):
    upstream = make_upstream(tree.root)
    # Named as the shipped --sumdb default names it, so prefetch runs with its defaults but
    # --proxy; verification is the server's default (sumdb).
    sumdb = make_sumdb(tree.root, name="sum.golang.org")
    # The database knows every module before the proxy asks, as sum.golang.org does: the
    # reference server adds a record at its first lookup, and a tree that grew while the proxy
    # verified would leave the go command asking for a partial tile (000.p/1) the proxy never
    # needed, which no prefetch of module files can foresee.
    for path, version in CONSUMER_REQUIRES:
        with urllib.request.urlopen(sumdb.url + tree.get(path, version).lookup_path,
                                    timeout=30) as answer:
            assert answer.status == 200
    sumdb.clear_log()
    proxy = start_proxy(upstream.url, *sumdb.flags)
    consumer = tmp_path / "consumer"
    write_consumer(tree, consumer)

    done = prefetch("--proxy", proxy.url, str(consumer))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "\r" not in done.stderr, done.stderr
    summary = SUMMARY_RE.match(lines[0])
    assert summary, lines[0]
    assert summary.group("versions", "files", "file_requests", "lookups") == ("5", "2", "15", "5")
    assert summary.group("fetched", "failed", "unusable") == ("20", "0", None)
    for path, version in CONSUMER_REQUIRES:
        mv = tree.get(path, version)
        for suffix in (".info", ".mod", ".zip"):
            assert upstream.count(mv.url_path(suffix)) == 1, (path, suffix)
    # Asked by the proxy's own verification of the fills and by prefetch's lookups, which may
    # overlap: every record was asked at least once.
    looked_up = {p for p in sumdb.paths() if p.startswith("/lookup/")}
    assert looked_up == {tree.get(path, version).lookup_path
                         for path, version in CONSUMER_REQUIRES}, sumdb.paths()

    upstream.stop()
    sumdb.stop()
    go = make_go(proxy.url)
    go.gosumdb = sumdb.vkey  # verified through the proxy's /sumdb/, from its cache alone
    go.run("build", "-o", "prog", ".", cwd=consumer)
    ran = subprocess.run([str(consumer / "prog")], capture_output=True, text=True, timeout=30)
    assert ran.stdout == mt.PROGRAM_OUTPUT, ran.stderr
    # Without the go.sum the go command asks the checksum database for every module: the
    # records prefetch looked up answer it.
    go.fresh_modcache()
    unsummed = tmp_path / "unsummed"
    mt.write_program(unsummed)
    go.run("build", "-o", "prog", ".", cwd=unsummed)
    assert (unsummed / "go.sum").read_text() == (consumer / "go.sum").read_text()


def test_a_module_the_upstream_lacks_fails_naming_it(tree, tmp_path, make_upstream,
                                                      start_proxy):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url)
    hello = tree.get(mt.HELLO, "v1.2.0")
    go_sum = tmp_path / "go.sum"
    go_sum.write_text(f"{mt.HELLO} v1.2.0 {hello.zip_sum}\n"
                      "example.com/missing v1.0.0 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
                      "example.com/gone v1.0.0/go.mod h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
                      "not a go.sum line\n")

    done = prefetch("--proxy", proxy.url, "--jobs", "2", "--sumdb", "off", str(go_sum))
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert "\r" not in done.stderr and "\033" not in done.stderr
    assert lines[0] == f"prefetch: skipped: {go_sum}: line 4: expected MODULE VERSION HASH"
    failures = sorted(lines[1:-1])
    assert len(failures) == 4, done.stderr
    expected = [("example.com/gone@v1.0.0", ".mod"), ("example.com/missing@v1.0.0", ".info"),
                ("example.com/missing@v1.0.0", ".mod"), ("example.com/missing@v1.0.0", ".zip")]
    for line, (module_version, suffix) in zip(failures, expected):
        # The proxy's own reason follows the status.
        assert line.startswith(f"prefetch: failed: {module_version} {suffix}: 404: "), line
        assert len(line) > len(f"prefetch: failed: {module_version} {suffix}: 404: "), line
    summary = SUMMARY_RE.match(lines[-1])
    assert summary, lines[-1]
    assert summary.group("fetched", "failed", "unusable") == ("3", "4", "1"), lines[-1]
    for suffix in (".info", ".mod", ".zip"):
        assert upstream.count(hello.url_path(suffix)) == 1


def test_on_a_terminal_one_progress_line_is_updated(tree, tmp_path, make_upstream, start_proxy):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url)
    consumer = tmp_path / "consumer"
    write_consumer(tree, consumer)
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run([str(proxy_binary()), "prefetch", "--proxy", proxy.url,
                               "--sumdb", "off", str(consumer / "go.sum")],
                              stdout=subprocess.DEVNULL, stderr=terminal,
                              timeout=PREFETCH_TIMEOUT)
        os.close(terminal)
        terminal = -1
        output = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            output += chunk
    finally:
        if terminal >= 0:
            os.close(terminal)
        os.close(controller)
    text = output.decode()
    assert proc.returncode == 0, text
    updates = text.split("\r\x1b[K")
    # Redrawn in place, then cleared for the summary; the last state drawn shows all requests.
    assert len(updates) >= 3, text
    assert "prefetch: 15/15 requests" in text, text
    assert re.search(r"prefetch: \d+/15 requests, [0-9.]+ (B|KiB|MiB)", text), text
    assert updates[-1].startswith("prefetch: 5 module versions from 1 files"), text


def test_usage_errors_exit_2_with_one_line(tmp_path):
    go_sum = tmp_path / "go.sum"
    go_sum.write_text("")
    blank = tmp_path / "blank-token"
    blank.write_text("  \n")
    huge = tmp_path / "huge-token"
    huge.write_text("t" * 4097)
    cases = [
        ([], "name at least one go.sum"),
        (["--jobs", "0", str(go_sum)], "--jobs: bad value \"0\""),
        (["--proxy", "ftp://x", str(go_sum)], "--proxy: bad value"),
        (["--bogus", "1", str(go_sum)], "unknown flag \"--bogus\""),
        ([str(tmp_path / "absent")], "no such file or directory"),
        (["--proxy", "https://127.0.0.1:1", "--token-file", str(tmp_path / "absent"),
          str(go_sum)], "--token-file: cannot read"),
        (["--token-file", str(go_sum), str(go_sum)], "--token-file needs an https:// --proxy"),
        (["--proxy", "https://127.0.0.1:1", "--token-file", str(blank), str(go_sum)],
         "holds no token"),
        (["--proxy", "https://127.0.0.1:1", "--token-file", str(huge), str(go_sum)],
         "is larger than 4096 bytes"),
        (["--proxy", "https://127.0.0.1:1", "--token-file", str(tmp_path), str(go_sum)],
         "cannot read"),
    ]
    for args, part in cases:
        done = prefetch(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.count("\n") == 1 and part in done.stderr, (args, done.stderr)


def test_an_https_proxy_that_requires_a_token(tree, tmp_path, make_upstream, start_proxy, pki):
    token = secrets.token_hex(24)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ci:{token}\n")
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    access_log = tmp_path / "access.log"
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, *pki.issue().flags, "--auth-file", str(tokens),
                        "--access-log", str(access_log))
    assert proxy.url.startswith("https://")
    hello = tree.get(mt.HELLO, "v1.2.0")
    go_sum = tmp_path / "go.sum"
    go_sum.write_text(f"{mt.HELLO} v1.2.0 {hello.zip_sum}\n")

    refused = prefetch("--proxy", proxy.url, "--ca-file", str(pki.bundle), "--sumdb", "off",
                       str(go_sum))
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.startswith("gomodproxy prefetch: cannot use the proxy at "
                                     f"{proxy.url}: the proxy refused: 401"), refused.stderr
    untrusted = prefetch("--proxy", proxy.url, "--token-file", str(token_file), "--sumdb", "off",
                         str(go_sum))
    assert untrusted.returncode == 1 and "tls" in untrusted.stderr.lower(), untrusted.stderr

    done = prefetch("--proxy", proxy.url, "--ca-file", str(pki.bundle), "--token-file",
                    str(token_file), "--sumdb", "off", str(go_sum))
    assert done.returncode == 0, done.stderr
    for suffix in (".info", ".mod", ".zip"):
        assert upstream.count(hello.url_path(suffix)) == 1
    # The .netrc config/bootstrap.sh --token writes (both machine forms) serves prefetch too.
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login gomodproxy password {secrets.token_hex(24)}\n"
                     f"machine 127.0.0.1:{proxy.port} login gomodproxy password {token}\n")
    from_netrc = prefetch("--proxy", proxy.url, "--ca-file", str(pki.bundle), "--sumdb", "off",
                          str(go_sum), netrc=str(netrc))
    assert from_netrc.returncode == 0, from_netrc.stderr
    for output in (refused.stderr, untrusted.stderr, done.stderr, from_netrc.stderr):
        assert token not in output
    proxy.terminate()
    log = access_log.read_text()
    assert f"GET {hello.url_path('.zip')} 200" in log and " ci" in log, log
    assert token not in log and token not in proxy.log_text()


def test_a_proxy_that_does_not_answer_is_reported_once(tree, tmp_path):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    consumer = tmp_path / "consumer"
    write_consumer(tree, consumer)
    done = prefetch("--proxy", f"http://127.0.0.1:{port}/", str(consumer))
    assert done.returncode == 1, done.stderr
    assert done.stderr == (f"gomodproxy prefetch: cannot use the proxy at http://127.0.0.1:{port}: "
                           "connection refused\n")
