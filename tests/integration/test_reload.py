"""SIGHUP, as a service manager's "reload" sends it: one handler rereads the TLS certificate and
the token files, whichever are configured. A server with neither keeps serving and says there was
nothing to reread (SIGHUP's default action would end the process); one with both rereads both on
the one signal: a new token works, a removed one gets 401, new connections get the new
certificate."""

from __future__ import annotations

import secrets
import signal

import module_tree as mt
from conftest import ProxyProcess, http_request, proxy_binary
from loopback_pki import client_context, served_serial
from polling import wait_for

RELOAD_SECONDS = 10.0
NOTHING_TO_REREAD = "SIGHUP: nothing to reread (no TLS certificate, no token file)"
LIST_PATH = f"/{mt.HELLO}/@v/list"


def sighup_and_wait(proxy: ProxyProcess, *texts: str) -> None:
    """One SIGHUP, then each of `texts` logged once more than before it, the server still up."""
    before = {text: proxy.log_text().count(text) for text in texts}
    proxy.proc.send_signal(signal.SIGHUP)
    for text in texts:
        wait_for(lambda: not proxy.running() or proxy.log_text().count(text) > before[text],
                 RELOAD_SECONDS, f"log line {text!r}")
        assert proxy.running(), f"SIGHUP ended the server (exit status {proxy.proc.returncode})"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_sighup_to_a_plain_server_as_shipped_leaves_it_serving(tree, make_upstream, tmp_path):
    """Shipped defaults but for the loopback upstream: no TLS, no token file."""
    upstream = make_upstream(tree.root)
    proxy = ProxyProcess(proxy_binary(), tmp_path / "cache", ["--upstreams", upstream.url],
                         tmp_path / "proxy.stderr")
    proxy.start()
    try:
        assert proxy.get(LIST_PATH).status == 200
        for _ in range(2):
            sighup_and_wait(proxy, NOTHING_TO_REREAD)
            assert proxy.running()
            assert proxy.get("/healthz").status == 200
            assert proxy.get(LIST_PATH).status == 200
        log = proxy.log_text()
        assert "tls: certificate reloaded" not in log and "auth: token files reread" not in log
    finally:
        assert proxy.terminate() == 0


def test_one_sighup_rereads_the_certificate_and_the_token_file(tree, make_upstream, start_proxy,
                                                                pki, tmp_path):
    kept, removed, added = (secrets.token_hex(24) for _ in range(3))
    tokens = tmp_path / "tokens"
    tokens.write_text(f"kept:{kept}\nremoved:{removed}\n")
    server = pki.issue("server", 0x7001)
    proxy = start_proxy(make_upstream(tree.root).url, *server.flags, "--auth-file", str(tokens))
    tls = client_context(pki.bundle)

    def status(token: str) -> int:
        return http_request(proxy.port, LIST_PATH, headers=bearer(token), tls=tls).status

    assert served_serial(proxy.port, pki.bundle) == "7001"
    assert (status(kept), status(removed), status(added)) == (200, 200, 401)

    # Both renewed in place, as certbot and a token rotation would leave them; then one signal.
    renewed = pki.issue("renewed", 0x7002)
    server.cert.write_bytes(renewed.cert.read_bytes())
    server.key.write_bytes(renewed.key.read_bytes())
    tokens.write_text(f"kept:{kept}\nadded:{added}\n")
    sighup_and_wait(proxy, "tls: certificate reloaded (subject CN=renewed,",
                    "auth: token files reread, 2 client tokens")

    assert served_serial(proxy.port, pki.bundle) == "7002"
    assert (status(kept), status(removed), status(added)) == (200, 401, 200)
    log = proxy.log_text()
    assert "serial 7002" in log and NOTHING_TO_REREAD not in log
    for token in (kept, removed, added):
        assert token not in log
