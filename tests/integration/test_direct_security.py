"""The `direct` tier's safety: public module paths naming internal hosts are refused before any
process starts, a DNS answer that changes to loopback after that check is refused when the go
command connects, git's own http.proxy setting does not take it around that check, and credentials given to the go command (a .netrc, a git insteadOf with
userinfo) work but never show in the proxy's logs, status pages, metrics or error bodies."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import threading
import time

import pytest

import direct_harness as dh
import git_repos as gr
import module_tree as mt
import netns
from conftest import http_request, proxy_binary
from tiny_dns import TYPE_A, TinyDns

PRIVATE = "git.corp.example.test/*"


def info_url(module_path: str, version: str = "v1.0.0") -> str:
    return f"/{mt.escape_path(module_path)}/@v/{version}.info"


def test_public_paths_to_internal_hosts_are_refused_without_a_process(
        make_git_server, start_proxy, tmp_path):
    """`direct` in --upstreams, no --private: an IP-literal host, a host that resolves to
    loopback, and a path outside --direct-allow on such a host are answered 404 with the reason,
    and no go process starts (the wrapper's log stays empty, the git server hears nothing). The
    allowed path on that same host is fetched, so the refusals are the allow list's doing."""
    server = make_git_server()
    wrapper = dh.GoWrapper(tmp_path / "wrapper")
    proxy = start_proxy("direct", "--direct-allow", f"{gr.LOOPBACK_HOST}/allowed/*",
                        "--go-binary", str(wrapper.path),
                        env=dh.proxy_env(server, tmp_path / "proxy-home",
                                         f"{gr.PRIVATE_HOST},{gr.LOOPBACK_HOST}"))

    refusals = {
        "/127.0.0.1/x/@v/list": ("127.0.0.1", "IP literal"),
        "/169.254.169.254/latest/@v/v1.0.0.info": ("169.254.169.254", "IP literal"),
        "/evil.localhost/x/@v/v1.0.0.zip": ("evil.localhost", "loopback"),
        info_url(gr.NOT_ALLOWED): (gr.LOOPBACK_HOST, "loopback"),
        f"/{gr.NOT_ALLOWED}/@latest": (gr.LOOPBACK_HOST, "loopback"),
    }
    for path, (host, why) in refusals.items():
        answer = proxy.get(path)
        assert answer.status == 404, (path, answer.status, answer.text)
        assert "direct" in answer.text and "refused" in answer.text, (path, answer.text)
        assert host in answer.text and why in answer.text, (path, answer.text)
    assert wrapper.started() == 0, wrapper.text()
    assert server.requests == []

    allowed = proxy.get(info_url(gr.ALLOWED))
    assert allowed.status == 200, allowed.text
    assert wrapper.started() >= 1
    assert any(r.is_fetch for r in server.for_repo(gr.LOOPBACK_HOST, "allowed/lib"))
    assert server.for_repo(gr.LOOPBACK_HOST, "other/lib") == []


NETRC_PASSWORD = "netrc-Pa55-7f3c91"
GITCONFIG_PASSWORD = "insteadof-Pa55-2d8e64"


def test_credentials_reach_private_repositories_and_never_show(
        make_git_server, start_proxy, tmp_path):
    """team/secret (and the missing team/missing) need basic auth, given by a .netrc in the
    proxy's HOME; team/vault's by a git `url.<base>.insteadOf` with userinfo in its .gitconfig.
    Both are served. The server echoes the credentials of a request for a missing repository in
    its 404 body, which git prints to the go command's stderr; neither password (nor its basic
    auth token) may appear in that answer, the proxy's log, /status, /status.json or /metrics."""
    server = make_git_server()
    server.require_auth(gr.PRIVATE_HOST, "team/secret", "deploy", NETRC_PASSWORD)
    server.require_auth(gr.PRIVATE_HOST, "team/missing", "deploy", NETRC_PASSWORD)
    server.require_auth(gr.PRIVATE_HOST, "team/vault", "vault", GITCONFIG_PASSWORD)
    server.echo_credentials = True
    home = tmp_path / "proxy-home"
    home.mkdir()
    (home / ".netrc").write_text(
        f"machine {gr.PRIVATE_HOST} login deploy password {NETRC_PASSWORD}\n")
    (home / ".netrc").chmod(0o600)
    (home / ".gitconfig").write_text(
        f'[url "http://vault:{GITCONFIG_PASSWORD}@{gr.PRIVATE_HOST}/team/vault"]\n'
        f"\tinsteadOf = http://{gr.PRIVATE_HOST}/team/vault\n")

    # What the go command itself computes with these credentials.
    expected = dh.direct_sums(dh.PROXY_GO, server, tmp_path / "direct",
                              [f"{gr.SECRET}@v1.0.0", f"{gr.VAULT}@v1.0.0"], home=home)
    leaked = dh.go_direct(dh.PROXY_GO, server, tmp_path / "direct", "mod", "download", "-json",
                          "git.corp.example.test/team/missing@v1.0.0", home=home)
    assert NETRC_PASSWORD in leaked.stdout, "the git server's echo reaches go's error text"
    server.clear_log()

    proxy = start_proxy("off", "--private", PRIVATE,
                        env=dh.proxy_env(server, home, gr.PRIVATE_HOST, path=dh.shipped_path()))
    for module_path in (gr.SECRET, gr.VAULT):
        for suffix, index in ((".zip", 0), (".mod", 1)):
            answer = proxy.get(f"/{module_path}/@v/v1.0.0{suffix}", timeout=120)
            assert answer.status == 200, answer.text
            hashed = mt.zip_hash(answer.body) if suffix == ".zip" else mt.gomod_hash(answer.body)
            assert hashed == expected[(module_path, "v1.0.0")][index]
    assert any(r.authorized and r.is_fetch for r in server.for_repo(gr.PRIVATE_HOST,
                                                                      "team/secret"))
    assert any(r.authorized and r.is_fetch for r in server.for_repo(gr.PRIVATE_HOST,
                                                                      "team/vault"))

    bodies = []
    missing = proxy.get("/git.corp.example.test/team/missing/@v/v1.0.0.info", timeout=120)
    assert missing.status == 404, missing.text
    assert "direct" in missing.text and "not found" in missing.text, missing.text
    assert any(r.authorized and r.status == 404
               for r in server.for_repo(gr.PRIVATE_HOST, "team/missing")), \
        "the request that provoked the echo carried the credentials"
    bodies.append(missing.text)
    bodies.append(proxy.get("/git.corp.example.test/team/missing/@v/list", timeout=120).text)
    bodies.append(proxy.get("/git.corp.example.test/team/missing/@latest", timeout=120).text)
    # A version the vault lacks: git's error names the insteadOf URL.
    bodies.append(proxy.get(f"/{gr.VAULT}/@v/v9.9.9.info", timeout=120).text)
    for page in ("/status", "/status.json", "/metrics"):
        answer = proxy.get(page)
        assert answer.status == 200, page
        bodies.append(answer.text)
    proxy.terminate()
    bodies.append(proxy.log_text())

    secrets = [NETRC_PASSWORD, GITCONFIG_PASSWORD,
               base64.b64encode(f"deploy:{NETRC_PASSWORD}".encode()).decode(),
               base64.b64encode(f"vault:{GITCONFIG_PASSWORD}".encode()).decode()]
    for text in bodies:
        for secret in secrets:
            assert secret not in text, f"{secret!r} shown in:\n{text[-3000:]}"


def test_a_repository_needing_credentials_the_server_lacks_fails_at_once(
        make_git_server, start_proxy, tmp_path):
    """No .netrc, no insteadOf: git is told not to prompt, so the request is a prompt not-found
    naming why, far inside the fill deadline, rather than a wait for a password."""
    server = make_git_server()
    server.require_auth(gr.PRIVATE_HOST, "team/secret", "deploy", NETRC_PASSWORD)
    proxy = start_proxy("off", "--private", PRIVATE, "--fill-timeout", "60s",
                        env=dh.proxy_env(server, tmp_path / "empty-home", gr.PRIVATE_HOST))
    started = time.monotonic()
    answer = proxy.get(f"/{gr.SECRET}/@v/v1.0.0.info", timeout=90)
    elapsed = time.monotonic() - started
    assert answer.status == 404, answer.text
    assert "could not read Username" in answer.text, answer.text
    assert elapsed < 20, elapsed
    assert [r.status for r in server.for_repo(gr.PRIVATE_HOST, "team/secret")
            if "info/refs" in r.path] == [401]


REBIND = "rebind.example.test"
CHECK_TIME_ADDRESS = "203.0.113.7"  # TEST-NET-3: an address the policy allows


class RebindingDns(TinyDns):
    """Answers REBIND with an allowed address for its first A query (the check before the go
    command starts) and with loopback for every later one; TTL 0, so nothing caches the first."""

    def _reply(self, packet):
        answered = self.queries(REBIND, TYPE_A)
        self.records[REBIND] = (CHECK_TIME_ADDRESS if answered == 0 else "127.0.0.1", 0)
        return super()._reply(packet)


@contextlib.contextmanager
def proxy_in_a_namespace_of_its_own(name_prefix: str, tmp_path, monkeypatch):
    """Runs the block in a network namespace of its own (only loopback, 127.0.0.1 its name
    server), and the proxies start_proxy starts meanwhile too. It needs root, as test_dns.py
    does; skipped only where a namespace cannot be made (CI runs as root)."""
    reason = netns.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with netns.NetNamespace(f"{name_prefix}{os.getpid()}", "nameserver 127.0.0.1\n",
                            "127.0.0.1 localhost\n::1 localhost\n") as namespace:
        with namespace.inside():
            monkeypatch.setenv("GOMODPROXY_BIN",
                               str(namespace.wrap(proxy_binary().resolve(), tmp_path)))
            yield


class RecordingListener:
    """A listener on 127.0.0.1:`port` (0: any free port) that accepts in a thread of its own;
    stop() returns what it accepted. With `hold`, each connection is kept open until stop() (a
    tunnel that reached it stays up, as a real server's would), else it is closed at once."""

    def __init__(self, port: int, hold: bool):
        self._hold = hold
        self._accepted: list = []
        self._stop = threading.Event()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            if self._hold:
                self._accepted.append(conn)
            else:
                self._accepted.append(conn.getpeername())
                conn.close()

    def stop(self) -> list:
        """Connections (held) or peer addresses (not held) accepted; held ones are closed."""
        self._stop.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        if self._hold:
            for conn in self._accepted:
                conn.close()
        return self._accepted


def test_a_dns_answer_that_changes_after_the_check_does_not_reach_loopback(
        start_proxy, tmp_path, monkeypatch):
    """A public path whose host passes the check (it resolves to an allowed address) and then
    resolves to loopback when the go command connects: the loopback CONNECT proxy the go command
    must use checks the address it connects to, so nothing reaches 127.0.0.1:443 (a listener
    there counts connections) and the answer is a 404. Runs the proxy, the DNS server and that
    listener in a network namespace of their own (only loopback), so it needs root, as
    test_dns.py does; skipped only where a namespace cannot be made (CI runs as root)."""
    with proxy_in_a_namespace_of_its_own("gmprebind", tmp_path, monkeypatch):
        dns = RebindingDns({}, silent=set()).start()
        listener = RecordingListener(443, hold=True)
        try:
            wrapper = dh.GoWrapper(tmp_path / "wrapper")
            proxy = start_proxy("direct", "--go-binary", str(wrapper.path),
                                env=dh.base_env(tmp_path / "home"))
            answer = http_request(proxy.port, f"/{REBIND}/x/@v/v1.0.0.info", timeout=120)
            dns_queries = dns.queries(REBIND, TYPE_A)
        finally:
            accepted = listener.stop()
            dns.stop()
    assert answer.status == 404, answer.text
    assert wrapper.started() >= 1, "the check passed, so the go command ran"
    assert dns_queries >= 2, "the CONNECT proxy looked the name up again"
    assert accepted == [], f"{len(accepted)} connection(s) reached 127.0.0.1:443"
    assert f"{REBIND} resolves to 127.0.0.1 (loopback)" in answer.text, answer.text


def test_public_modules_from_direct_are_verified_before_they_are_cached(
        make_git_server, make_sumdb, start_proxy, tmp_path):
    """What `direct` fetches for a public path (here one the allow list lets it fetch) goes
    through verify-before-cache like any tier's answer: served when the checksum database
    vouches for the bytes git gave, refused (and not cached) when the database records other
    bytes for that version."""
    server = make_git_server()
    base = tmp_path / "direct"
    expected = dh.direct_sums(dh.PROXY_GO, server, base, [f"{gr.ALLOWED}@v1.0.0"],
                              insecure=gr.LOOPBACK_HOST, private="")
    # The go command's download cache is laid out as a proxy tree: the genuine database's input.
    genuine = make_sumdb(base / "gopath" / "pkg" / "mod" / "cache" / "download")
    other = mt.ModuleTree(tmp_path / "other-tree")
    other.add(gr.ALLOWED, "v1.0.0", {
        "go.mod": f"module {gr.ALLOWED}\n\ngo 1.19\n".encode(),
        "lib.go": b'package lib\n\nfunc Name() string { return "not what git has" }\n',
    })
    impostor = make_sumdb(other.root)

    def start(sumdb):
        return start_proxy("direct", "--direct-allow", f"{gr.LOOPBACK_HOST}/allowed/*",
                           *sumdb.flags, "--verify", "sumdb",
                           env=dh.proxy_env(server, tmp_path / "proxy-home", gr.LOOPBACK_HOST))

    proxy = start(genuine)
    zip_answer = proxy.get(f"/{gr.ALLOWED}/@v/v1.0.0.zip", timeout=120)
    mod_answer = proxy.get(f"/{gr.ALLOWED}/@v/v1.0.0.mod", timeout=120)
    assert zip_answer.status == 200 and mod_answer.status == 200, (zip_answer.text,
                                                                   mod_answer.text)
    assert (mt.zip_hash(zip_answer.body), mt.gomod_hash(mod_answer.body)) == \
        expected[(gr.ALLOWED, "v1.0.0")]
    assert any(r.path.startswith(f"/lookup/{gr.ALLOWED}@v1.0.0") for r in genuine.requests)

    server.clear_log()
    proxy = start(impostor)
    for attempt in range(2):  # the second answer shows nothing was cached by the first
        refused = proxy.get(f"/{gr.ALLOWED}/@v/v1.0.0.zip", timeout=120)
        assert refused.status == 404, refused.text
        assert "direct" in refused.text and "checksum" in refused.text, refused.text
    assert any(r.is_fetch for r in server.for_repo(gr.LOOPBACK_HOST, "allowed/lib")), \
        "direct fetched the bytes the database then refused"


def test_git_reaches_public_hosts_through_the_guard_whatever_http_proxy_its_config_names(
        start_proxy, tmp_path, monkeypatch):
    """git's http.proxy setting wins over HTTPS_PROXY, and remote.origin.proxy over both: the
    server user's git configuration names a proxy in both (a listener on 127.0.0.1 that counts
    connections), and a public path on a host git
    knows without a go-import lookup (github.com, resolving to an allowed address) is fetched.
    git must still go through the connect guard, so the listener sees nothing. In a network
    namespace of its own, as the test above."""
    with proxy_in_a_namespace_of_its_own("gmpgitproxy", tmp_path, monkeypatch):
        dns = TinyDns({"github.com": (CHECK_TIME_ADDRESS, 0)}, silent=set()).start()
        listener = RecordingListener(0, hold=False)
        try:
            home = tmp_path / "home"
            env = dh.base_env(home)
            elsewhere = f"http://127.0.0.1:{listener.port}"
            (home / ".gitconfig").write_text(f"[http]\n\tproxy = {elsewhere}\n"
                                             f'[remote "origin"]\n\tproxy = {elsewhere}\n')
            wrapper = dh.GoWrapper(tmp_path / "wrapper")
            proxy = start_proxy("direct", "--go-binary", str(wrapper.path), env=env)
            answer = http_request(proxy.port, "/github.com/gomodproxy-test/x/@v/v1.0.0.info",
                                  timeout=120)
        finally:
            accepted = listener.stop()
            dns.stop()
    assert answer.status == 404, answer.text
    assert wrapper.started() >= 1, "the host check passed, so the go command ran"
    assert accepted == [], f"git connected to the proxy of its configuration: {answer.text}"
