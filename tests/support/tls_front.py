"""An https:// front on 127.0.0.1 for a plain-HTTP server, with a throwaway test CA.

The go command sends .netrc credentials only over https (cmd/go/internal/web/http.go adds them
only when the URL's scheme is https), so token tests put this in front of the proxy, the way a
TLS-terminating load balancer would sit in front of it: every GET and HEAD is passed on with its
headers (Authorization included) and the answer comes back unchanged, body streamed.

    ca = LoopbackCa(tmp_path / "ca")            # openssl: a CA and a certificate for 127.0.0.1
    with TlsFront(backend_port, ca) as front:
        front.url                            # https://127.0.0.1:PORT, trusted via ca.bundle
"""

from __future__ import annotations

import http.client
import http.server
import socketserver
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Optional

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}
CHUNK = 256 * 1024


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


class LoopbackCa:
    """A CA (`bundle`, for SSL_CERT_FILE or curl's --cacert) and a server certificate for
    127.0.0.1 and localhost (`cert`, `key`), made with the openssl command."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.bundle = directory / "ca.pem"
        self.cert = directory / "server.pem"
        self.key = directory / "server.key"
        curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        _openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                 "-subj", "/CN=gomodproxy test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
        _openssl("req", *curve, "-keyout", "server.key", "-out", "server.csr",
                 "-subj", "/CN=127.0.0.1", cwd=directory)
        (directory / "server.ext").write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
            "extendedKeyUsage=serverAuth\n")
        _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
                 cwd=directory)


class _Forward(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: "_FrontServer"

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._forward()

    def do_HEAD(self):  # noqa: N802
        self._forward()

    def _forward(self) -> None:
        backend = http.client.HTTPConnection("127.0.0.1", self.server.backend_port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            backend.request(self.command, self.path, headers=headers)
            answer = backend.getresponse()
            self.send_response_only(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                while chunk := answer.read(CHUNK):
                    self.wfile.write(chunk)
            self.wfile.flush()
        finally:
            backend.close()


class _FrontServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, backend_port: int, context: ssl.SSLContext):
        self.backend_port = backend_port
        self.context = context
        super().__init__(("127.0.0.1", 0), _Forward)

    def get_request(self):
        sock, address = super().get_request()
        # The handshake runs in the handler's thread (finish_request), not in the accept loop.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), \
            address

    def finish_request(self, request, client_address):
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # clients hang up mid-answer; nothing for a test to see here


class TlsFront:
    def __init__(self, backend_port: int, ca: LoopbackCa):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(ca.cert), str(ca.key))
        self._server = _FrontServer(backend_port, context)
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> "TlsFront":
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> "TlsFront":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
