"""TLS on the listening port (--tls-cert/--tls-key): the real go command (1.19 and 1.23) builds
through https://127.0.0.1:PORT trusting a test CA made here with the openssl command
(SSL_CERT_FILE); SIGHUP swaps in a renewed certificate (same CA, new serial) while a slow
download of the 40 MiB module is in flight, which completes on the certificate it started with;
a reload that fails keeps the old certificate; bad certificate files refuse start-up in one line.
The TLS settings themselves (versions, ciphers, handshake deadline) are the shipped ones."""

from __future__ import annotations

import hashlib
import http.client
import signal
import ssl
import time

import pytest

import module_tree as mt
from conftest import GO_BINARIES, assert_go_lists_and_builds, http_request
from loopback_pki import client_context, served_serial
from polling import wait_for
from test_startup_errors import assert_refused, serve

RELOAD_SECONDS = 10.0
# An idle connection is closed at once by a drain; the TLS goodbye waits a second for the
# client, and the deadline watchdog notices that within one more tick.
DRAIN_SECONDS = 5.0
# Bytes the slow download reads before the reload, and the pace of the rest.
HEAD_START_BYTES = 1 << 20
SLOW_CHUNK_BYTES = 1 << 20
SLOW_PAUSE_SECONDS = 0.02


@pytest.fixture(params=[pytest.param(path, id=name) for name, path in GO_BINARIES.items()])
def go_binary(request) -> str:
    """Overrides conftest's, which skips a go that is not installed: both TLS stacks must pass."""
    return request.param


def sighup_and_wait(proxy, text: str) -> None:
    before = proxy.log_text().count(text)
    proxy.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: proxy.log_text().count(text) > before, RELOAD_SECONDS, f"log line {text!r}")


def test_go_builds_over_https_and_a_sighup_renews_the_certificate_mid_download(
        tree, make_upstream, start_proxy, make_go, pki, monkeypatch):
    upstream = make_upstream(tree.root)
    server = pki.issue("server", 0x1001)
    cert, key = server.cert, server.key
    proxy = start_proxy(upstream.url, *server.flags)
    assert proxy.url == f"https://127.0.0.1:{proxy.port}"
    assert proxy.stdout_lines[0].decode().strip() == f"gomodproxy listening on {proxy.url}"
    # Logged just after the listening line is printed.
    wait_for(lambda: "tls: certificate subject CN=server," in proxy.log_text(), RELOAD_SECONDS,
             "the certificate's log line")
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.bundle))

    go = make_go(proxy.url)
    version = go.run("version").stdout
    assert next(name for name, path in GO_BINARIES.items() if path == go.go) in version
    assert_go_lists_and_builds(go)
    assert served_serial(proxy.port, pki.bundle) == "1001"

    # A client that reads slowly is part-way through the big zip when the certificate changes.
    big = tree.get(mt.BIG, "v1.0.0")
    expected = tree.file_bytes(big.url_path(".zip"))
    slow = http.client.HTTPSConnection("127.0.0.1", proxy.port, timeout=60,
                                       context=client_context(pki.bundle))
    slow.request("GET", big.url_path(".zip"))
    answer = slow.getresponse()
    assert answer.status == 200
    assert int(answer.headers["Content-Length"]) == len(expected)
    received = hashlib.sha256()
    got = answer.read(HEAD_START_BYTES)
    received.update(got)
    read = len(got)
    assert slow.sock.getpeercert()["serialNumber"] == "1001"

    renewed = pki.issue("renewed", 0x1002)
    cert.write_bytes(renewed.cert.read_bytes())
    key.write_bytes(renewed.key.read_bytes())
    sighup_and_wait(proxy, "tls: certificate reloaded")
    assert "serial 1002" in proxy.log_text()
    assert served_serial(proxy.port, pki.bundle) == "1002"
    assert read < len(expected), "the download finished before the reload"

    # The go command trusts the renewed certificate through the same CA.
    go.fresh_modcache()
    assert_go_lists_and_builds(go)

    while chunk := answer.read(SLOW_CHUNK_BYTES):
        received.update(chunk)
        read += len(chunk)
        time.sleep(SLOW_PAUSE_SECONDS)
    assert read == len(expected)
    assert received.hexdigest() == hashlib.sha256(expected).hexdigest()
    assert slow.sock is None or slow.sock.getpeercert()["serialNumber"] == "1001"
    slow.close()

    # A reload that fails (a key that is not the certificate's) keeps the renewed certificate.
    key.write_bytes(pki.issue("stray", 0x1003).key.read_bytes())
    sighup_and_wait(proxy, "tls: reload failed, the old certificate stays in use")
    failure = [line for line in proxy.log_text().splitlines() if "tls: reload failed" in line][-1]
    assert "tls_key:" in failure and str(key) in failure and "PRIVATE KEY" not in failure
    assert served_serial(proxy.port, pki.bundle) == "1002"
    assert proxy.running()


def test_plain_http_to_the_tls_port_is_told_to_use_https(tree, make_upstream, start_proxy, pki,
                                                          make_go):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, *pki.issue("server", 0x2001).flags)
    answer = http_request(proxy.port, "/healthz")
    assert answer.status == 400
    assert answer.text == "this server speaks HTTPS only: use an https:// URL\n"
    # Its access line has every field another line has; the last one, the credential, is "-".
    wait_for(lambda: " access - - 400 " in proxy.log_text(), 5, "the 400's access line")
    refused = [line for line in proxy.log_text().splitlines() if " access - - 400 " in line]
    assert refused[0].split(" access ")[1].split() == ["-", "-", "400", "51", "0", "-", "-", "-"]
    # What a developer with an http:// GOPROXY sees.
    go = make_go(f"http://127.0.0.1:{proxy.port}")
    proc = go.run("mod", "download", f"{mt.HELLO}@v1.0.0", check=False)
    assert proc.returncode != 0
    assert "400 Bad Request" in proc.stderr
    assert "server response: this server speaks HTTPS only: use an https:// URL" in proc.stderr


def test_an_answer_larger_than_a_tls_record_arrives_whole(tree, make_upstream, start_proxy, pki):
    """/metrics is one in-memory answer of more than 16 KiB, a TLS record's most: Prometheus
    scraping over https waited for a body that never came."""
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, *pki.issue("server", 0x2501).flags)
    connection = http.client.HTTPSConnection("127.0.0.1", proxy.port, timeout=10,
                                             context=client_context(pki.bundle))
    try:
        for _ in range(2):  # and the connection stays usable for the next request
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200
            assert len(body) == int(response.headers["Content-Length"]) > 16 * 1024
            assert b"gomodproxy_" in body
    finally:
        connection.close()


# The client offers TLS 1.1 at most on purpose: the server must be the one that refuses it.
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_an_old_tls_version_is_refused(tree, make_upstream, start_proxy, pki):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, *pki.issue("server", 0x3001).flags)
    old = client_context(pki.bundle)
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with ssl.create_connection(("127.0.0.1", proxy.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
            old.wrap_socket(raw, server_hostname="127.0.0.1")
    assert served_serial(proxy.port, pki.bundle) == "3001"


def test_sigterm_drains_with_tls_connections_open(tree, make_upstream, start_proxy, pki):
    upstream = make_upstream(tree.root)
    proxy = start_proxy(upstream.url, *pki.issue("server", 0x5001).flags)
    idle = http.client.HTTPSConnection("127.0.0.1", proxy.port, timeout=10,
                                       context=client_context(pki.bundle))
    idle.request("GET", "/healthz")
    assert idle.getresponse().read() == b"ok\n"
    started = time.monotonic()
    assert proxy.terminate(timeout=DRAIN_SECONDS) == 0
    assert time.monotonic() - started < DRAIN_SECONDS
    idle.close()


def test_bad_tls_files_refuse_start_up_in_one_line(tmp_path, pki):
    server = pki.issue("server", 0x4001)
    cert, key = server.cert, server.key
    other_key = pki.issue("other", 0x4002).key
    text = tmp_path / "text.pem"
    text.write_text("not a certificate\n")

    line = assert_refused(serve(tmp_path, "--tls-cert", str(cert)), "tls_key")
    assert "expected both tls_cert and tls_key, or neither" in line
    line = assert_refused(serve(tmp_path, "--tls-key", str(key)), "tls_cert")
    assert "expected both tls_cert and tls_key, or neither" in line
    line = assert_refused(serve(tmp_path, "--tls-cert", str(cert), "--tls-key",
                                str(tmp_path / "missing.key")), "tls_key")
    assert "not a readable file" in line and "flag --tls-key" in line
    line = assert_refused(serve(tmp_path, "--tls-cert", str(text), "--tls-key", str(key)),
                          "tls_cert")
    assert str(text) in line and "holds no usable certificate" in line
    line = assert_refused(serve(tmp_path, "--tls-cert", str(cert), "--tls-key", str(cert)),
                          "tls_key")
    assert "holds no usable private key" in line
    line = assert_refused(serve(tmp_path, "--tls-cert", str(cert), "--tls-key", str(other_key)),
                          "tls_key")
    assert f"is not the key of the certificate in \"{cert}\"" in line
    assert "PRIVATE KEY" not in line
