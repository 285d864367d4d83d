"""Client tokens (--auth-file) and the admin token (--admin-token) with the real go command: go
reads the token from the .netrc named by NETRC and sends it as Basic auth; without one, or with a
wrong one, it sees the proxy's 401. No token ever shows in the proxy's stderr or access log.

go sends .netrc credentials over https only, so the proxy serves TLS itself (--tls-cert/--tls-key)
with a certificate from a test CA (tests/support/loopback_pki.py) that go trusts through
SSL_CERT_FILE; over plain http go sends none, and a proxy that asks for tokens on a plain-HTTP
listener says so in its log."""

from __future__ import annotations

import base64
import os
import secrets
import signal
from pathlib import Path
from typing import Optional

import pytest

import module_tree as mt
from conftest import GO_BINARIES, GoRunner, ProxyProcess, proxy_binary
from loopback_pki import CertificateAuthority
from polling import wait_for
from test_startup_errors import assert_refused, serve

REALM = 'Basic realm="gomodproxy"'
CHECK = f"{mt.HELLO}@v1.2.0"
PLAIN_HTTP_WARNING = "auth: tokens are required but this listener is plain HTTP"

# Named by path: the two versions whose .netrc matching differs.
GOS = GO_BINARIES


@pytest.fixture(params=list(GOS))
def go_path(request) -> str:
    path = GOS[request.param]
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not installed (scripts/install-deps.sh)")
    return path


def new_token() -> str:
    return secrets.token_hex(24)


class NetrcGo(GoRunner):
    """A GoRunner whose go reads credentials from the file `netrc` names (NETRC), or from an
    empty HOME when it is None, and trusts the test CA `ca_bundle` (SSL_CERT_FILE)."""

    netrc: Optional[Path] = None
    ca_bundle: Optional[Path] = None

    def env(self) -> dict:
        env = super().env()
        env.pop("NETRC", None)
        if self.netrc is not None:
            env["NETRC"] = str(self.netrc)
        if self.ca_bundle is not None:
            env["SSL_CERT_FILE"] = str(self.ca_bundle)
        return env


def netrc_go(go_path: str, base: Path, proxy: ProxyProcess, pki: CertificateAuthority) -> NetrcGo:
    go = NetrcGo(go_path, base, proxy.url)
    go.ca_bundle = pki.bundle
    return go


def write_netrc(path: Path, port: int, token: str, *, host_line: bool = True,
                port_line: bool = True) -> Path:
    lines = []
    if host_line:
        lines.append(f"machine 127.0.0.1 login gomodproxy password {token}")
    if port_line:
        lines.append(f"machine 127.0.0.1:{port} login gomodproxy password {token}")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, token: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


def assert_401(resp, head: bool = False) -> None:
    assert resp.status == 401, (resp.status, resp.text)
    assert resp.header("WWW-Authenticate") == REALM
    assert resp.header("Content-Type") == "text/plain; charset=utf-8"
    assert resp.header("Cache-Control") == "no-store"
    assert ("unauthorized" in resp.text) != head


def go_download_fails_with_401(go: GoRunner) -> str:
    proc = go.run("mod", "download", "-json", CHECK, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "401 Unauthorized" in output, output
    return output


def access_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if " access " in line]


def test_go_builds_with_the_netrc_token_and_sees_401_without(go_path, tree, make_upstream,
                                                             start_proxy, pki, tmp_path):
    alice, bob, wrong = new_token(), new_token(), new_token()
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# the team\nalice:{alice}\n\n{bob}\n")
    access_log = tmp_path / "access.log"
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, *pki.issue().flags, "--auth-file", str(tokens),
                        "--access-log", str(access_log))

    go = netrc_go(go_path, tmp_path / "go", proxy, pki)
    go_download_fails_with_401(go)
    go.netrc = write_netrc(tmp_path / "wrong.netrc", proxy.port, wrong)
    go_download_fails_with_401(go)
    # The user name is not what is checked: a netrc whose login is a token still fails.
    go.netrc = tmp_path / "login.netrc"
    go.netrc.write_text(f"machine 127.0.0.1 login {alice} password {wrong}\n"
                        f"machine 127.0.0.1:{proxy.port} login {alice} password {wrong}\n")
    go_download_fails_with_401(go)
    assert not any(r.path.endswith(".info") for r in upstream.requests), \
        "a refused request reached the upstream"

    # Over plain http go sends no credentials at all, whatever the .netrc holds; a proxy asking
    # for tokens there says so once it listens.
    plain_proxy = start_proxy(upstream.url, "--auth-file", str(tokens))
    plain = NetrcGo(go_path, tmp_path / "plain-go", plain_proxy.url)
    plain.netrc = write_netrc(tmp_path / "plain.netrc", plain_proxy.port, alice)
    go_download_fails_with_401(plain)
    assert plain_proxy.log_text().count(PLAIN_HTTP_WARNING) == 1

    go.netrc = write_netrc(tmp_path / "alice.netrc", proxy.port, alice)
    go.download_json(CHECK)
    assert go.build_and_run_program() == mt.PROGRAM_OUTPUT
    go.fresh_modcache()
    go.netrc = write_netrc(tmp_path / "bob.netrc", proxy.port, bob)
    go.download_json(CHECK)

    # Every request has its line; refused ones name no token, the others name theirs.
    wait_for(lambda: any(" token-4" in line for line in access_lines(access_log.read_text())),
             5, "bob's requests in the access log")
    proxy.terminate()
    lines = access_lines(access_log.read_text())
    refused = [line for line in lines if " 401 " in line]
    assert refused and all(line.endswith(" -") for line in refused), refused
    assert any(line.endswith(" alice") and " 200 " in line for line in lines), lines
    assert any(line.endswith(" token-4") and " 200 " in line for line in lines), lines
    assert PLAIN_HTTP_WARNING not in proxy.log_text()
    everything = access_log.read_text() + proxy.log_text() + plain_proxy.log_text()
    for token in (alice, bob, wrong):
        assert token not in everything
        assert base64.b64encode(f"gomodproxy:{token}".encode()).decode() not in everything


def test_netrc_machine_lines_go_versions_match(go_path, tree, make_upstream, start_proxy, pki,
                                              tmp_path):
    """go 1.19 matches a .netrc machine against the host name only, go 1.23 against host:port;
    so only a .netrc with both lines reaches the proxy from every version (what
    config/bootstrap.sh --token writes)."""
    token = new_token()
    (tmp_path / "tokens").write_text(f"dev:{token}\n")
    proxy = start_proxy(make_upstream(tree.root).url, *pki.issue().flags, "--auth-file",
                        str(tmp_path / "tokens"))
    go = netrc_go(go_path, tmp_path / "go", proxy, pki)
    host_only = write_netrc(tmp_path / "host.netrc", proxy.port, token, port_line=False)
    with_port = write_netrc(tmp_path / "port.netrc", proxy.port, token, host_line=False)
    results = {}
    for name, netrc in (("host", host_only), ("host:port", with_port)):
        go.netrc = netrc
        go.fresh_modcache()
        proc = go.run("mod", "download", "-json", CHECK, check=False)
        results[name] = proc.returncode == 0
    if go_path == GOS["go1.19"]:
        assert results == {"host": True, "host:port": False}, results
    else:
        assert results == {"host": False, "host:port": True}, results
    go.netrc = write_netrc(tmp_path / "both.netrc", proxy.port, token)
    go.fresh_modcache()
    go.download_json(CHECK)


def test_admin_routes_take_the_admin_token_and_open_routes_stay_open(tree, make_upstream,
                                                                      start_proxy, tmp_path):
    client, admin = new_token(), new_token()
    (tmp_path / "tokens").write_text(f"ci:{client}\n")
    admin_file = tmp_path / "admin-token"
    admin_file.write_text(admin + "\n")
    proxy = start_proxy(make_upstream(tree.root).url, "--auth-file", str(tmp_path / "tokens"),
                        "--admin-token", f"@{admin_file}")
    info = tree.get(mt.HELLO, "v1.2.0").url_path(".info")

    for path in ("/healthz", "/readyz", "/bootstrap.sh"):
        assert proxy.get(path).status == 200, path
    for path in ("/metrics", "/status", "/status.json"):
        assert_401(proxy.get(path))
        assert_401(proxy.get(path, headers=bearer(client)))
        assert_401(proxy.get(path, headers=basic("gomodproxy", admin[:-1])))
        assert proxy.get(path, headers=bearer(admin)).status == 200, path
        assert proxy.get(path, headers=basic("prometheus", admin)).status == 200, path
    assert_401(proxy.get(info))
    assert_401(proxy.head(info), head=True)
    assert_401(proxy.get(info, headers=bearer(client + "0")))
    assert proxy.get(info, headers=bearer(client)).status == 200
    assert proxy.get(info, headers=basic("anyone", admin)).status == 200

    metrics = proxy.get("/metrics", headers=bearer(admin)).text
    counted = {line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
               for line in metrics.splitlines()
               if line.startswith("gomodproxy_unauthorized_total{")}
    assert counted == {'reason="missing",route="admin"': 3.0,
                       'reason="invalid",route="admin"': 6.0,
                       'reason="missing",route="client"': 2.0,
                       'reason="invalid",route="client"': 1.0}, counted
    log = proxy.log_text()
    assert client not in log and admin not in log


def test_shipped_defaults_open_and_with_an_auth_file(tree, make_upstream, tmp_path):
    """As shipped (only the loopback upstream and a cache directory given): no token is asked
    for; with --auth-file alone the admin pages take a client token, and the log warns that the
    go command will send none to this plain-HTTP listener."""
    upstream = make_upstream(tree.root)
    info = tree.get(mt.HELLO, "v1.2.0").url_path(".info")
    token = new_token()
    (tmp_path / "tokens").write_text(f"{token}\n")
    for flags in ([], ["--auth-file", str(tmp_path / "tokens")]):
        name = "auth" if flags else "open"
        proxy = ProxyProcess(proxy_binary(), tmp_path / f"cache-{name}",
                             ["--upstreams", upstream.url, *flags], tmp_path / f"{name}.stderr")
        proxy.start()
        try:
            assert proxy.get("/healthz").status == 200
            assert proxy.get("/readyz").status != 401
            if not flags:
                assert proxy.get("/metrics").status == 200
                assert proxy.get(f"/{mt.HELLO}/@v/list").status == 200
            else:
                assert_401(proxy.get("/metrics"))
                assert_401(proxy.get(f"/{mt.HELLO}/@v/list"))
                assert_401(proxy.get(info))
                assert proxy.get("/metrics", headers=bearer(token)).status == 200
                assert proxy.get(f"/{mt.HELLO}/@v/list", headers=basic("x", token)).status == 200
        finally:
            assert proxy.terminate() == 0
        assert proxy.log_text().count(PLAIN_HTTP_WARNING) == (1 if flags else 0)
        assert token not in proxy.log_text()


def test_sighup_rereads_the_auth_file_and_a_broken_one_keeps_the_old_tokens(
        tree, make_upstream, start_proxy, tmp_path):
    first, second = new_token(), new_token()
    tokens = tmp_path / "tokens"
    tokens.write_text(f"first:{first}\n")
    proxy = start_proxy(make_upstream(tree.root).url, "--auth-file", str(tokens))
    path = f"/{mt.HELLO}/@v/list"
    assert proxy.get(path, headers=bearer(first)).status == 200
    assert_401(proxy.get(path, headers=bearer(second)))

    tokens.write_text(f"second:{second}\n")
    proxy.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "auth: token files reread, 1 client tokens" in proxy.log_text(), 5,
             "the reread logged")
    assert proxy.get(path, headers=bearer(second)).status == 200
    assert_401(proxy.get(path, headers=bearer(first)))

    leaked = "leaked-" + new_token()
    tokens.write_text(f"second:{second}\nthis line is {leaked} broken\n")
    proxy.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "the previous tokens stay in force" in proxy.log_text(), 5,
             "the failed reread logged")
    assert proxy.get(path, headers=bearer(second)).status == 200
    assert proxy.running()
    log = proxy.log_text()
    assert "line 2" in log
    for secret in (first, second, leaked):
        assert secret not in log


def test_bad_token_settings_are_refused_in_one_line_without_the_token(tmp_path):
    secret = new_token()
    short = "s3cr3t-short"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ok:{secret}\n# comment\nshort:{short}\n")
    line = assert_refused(serve(tmp_path, "--auth-file", str(tokens)), "auth_file")
    assert str(tokens) in line and "line 3" in line and "shorter than 16" in line
    assert secret not in line and short not in line

    tokens.write_text(f"{secret}\n{secret}\n")
    line = assert_refused(serve(tmp_path, "--auth-file", str(tokens)), "auth_file")
    assert "line 2" in line and "already listed on line 1" in line and secret not in line

    line = assert_refused(serve(tmp_path, "--auth-file", str(tmp_path / "missing")), "auth_file")
    assert "cannot read it" in line
    (tmp_path / "empty").write_text("# no tokens yet\n")
    assert_refused(serve(tmp_path, "--auth-file", str(tmp_path / "empty")), "auth_file")

    line = assert_refused(serve(tmp_path, "--admin-token", short), "admin_token")
    assert short not in line and "shorter than 16" in line
    line = assert_refused(serve(tmp_path, "--admin-token", f"@{tmp_path / 'none'}"),
                          "admin_token")
    assert str(tmp_path / "none") in line
    line = assert_refused(serve(tmp_path, "--admin-token", "@"), "admin_token")
    assert "flag --admin-token" in line


def test_a_replica_reaches_a_central_proxy_with_its_token_in_the_upstream_url(
        tree, make_upstream, start_proxy, pki, tmp_path):
    """Offices as a tree, with tokens: the central proxy serves TLS and asks for tokens; the
    replica names it as https://NAME:TOKEN@host:port and trusts the test CA through --ca-file
    (the setting; the system store is loaded too). The token shows nowhere, not even in the
    upstream list the replica logs at start-up; the central's access log names it."""
    token = new_token()
    (tmp_path / "tokens").write_text(f"office-b:{token}\n")
    central = start_proxy(make_upstream(tree.root).url, *pki.issue().flags, "--auth-file",
                          str(tmp_path / "tokens"))
    assert central.url.startswith("https://")
    # Probed every second, so the debug line of a probe is in the log the checks below read.
    replica = start_proxy(f"https://office-b:{token}@127.0.0.1:{central.port}",
                          "--ca-file", str(pki.bundle), "--probe-interval", "1s")
    go = NetrcGo(GOS["go1.23"], tmp_path / "go", replica.url)
    go.download_json(CHECK)
    assert go.build_and_run_program() == mt.PROGRAM_OUTPUT

    # Without the token in its URL, the central proxy's 401 is what the replica reports. This one
    # trusts the CA the other way the upstream client can: OpenSSL's SSL_CERT_FILE, read by the
    # default verify paths the client always loads.
    stranger = start_proxy(central.url, env={**os.environ, "SSL_CERT_FILE": str(pki.bundle)})
    answer = stranger.get(tree.get(mt.HELLO, "v1.2.0").url_path(".info"))
    assert answer.status == 404 and "401" in answer.text, answer.text

    wait_for(lambda: any(line.endswith(" office-b") for line in access_lines(central.log_text())),
             5, "the central access log")
    assert all(line.endswith(" -") for line in access_lines(central.log_text())
               if " 401 " in line)
    replica_pages = (replica.get("/status.json").text + replica.get("/metrics").text +
                     replica.get("/status").text)
    assert "xxxxx@127.0.0.1" in replica.log_text()
    wait_for(lambda: "/golang.org/x/mod/@v/list: " in replica.log_text(), 10,
             "a probe of the central proxy in the replica's log")
    # The harness writes each proxy's command line first; what the proxy wrote comes after.
    written = [p.log_text().split("\n", 1)[1] for p in (replica, central, stranger)]
    basic_credential = base64.b64encode(f"office-b:{token}".encode()).decode()
    for text in (*written, replica_pages):
        assert token not in text and basic_credential not in text
    assert f"probe 127.0.0.1:{central.port}/golang.org/x/mod/@v/list: " in replica.log_text()
