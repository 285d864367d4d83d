"""A throwaway certificate authority and server certificates for 127.0.0.1, made with the openssl
command, for gomodproxy's own TLS listener (--tls-cert/--tls-key) and the clients that trust it
(SSL_CERT_FILE for the go command, --ca-file for a replica's upstream client).

    pki = CertificateAuthority(tmp_path / "pki")   # ca.key + ca.pem (pki.bundle)
    server = pki.issue("server", 0x1001)           # signed by it, for IP:127.0.0.1 and localhost
    start_proxy(upstream, *server.flags)           # --tls-cert ... --tls-key ...
    served_serial(port, pki.bundle)                # "1001": what a new connection is given
"""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

OPENSSL_TIMEOUT = 30.0
# P-256 keys take milliseconds to make; the go command (1.19 and 1.23) accepts them.
EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
LOOPBACK_NAMES = "IP:127.0.0.1,DNS:localhost"
# A new serial per certificate unless the test picks one, so renewals are told apart.
FIRST_SERIAL = 0x1000


def openssl(*args) -> None:
    proc = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True,
                          timeout=OPENSSL_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n{proc.stderr}")


@dataclass(frozen=True)
class ServerCertificate:
    cert: Path
    key: Path
    serial: int

    @property
    def flags(self) -> list[str]:
        return ["--tls-cert", str(self.cert), "--tls-key", str(self.key)]


class CertificateAuthority:
    """A CA (`bundle`: its certificate, PEM) that issues server certificates, for 127.0.0.1 and
    localhost unless told otherwise, each with the serial asked for or the next free one."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.bundle = directory / "ca.pem"
        self._key = directory / "ca.key"
        self._next_serial = FIRST_SERIAL
        openssl("req", "-x509", *EC_KEY, "-keyout", self._key, "-subj", "/CN=gomodproxy test CA",
                "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", self.bundle)

    def issue(self, name: str = "server", serial: Optional[int] = None,
              names: str = LOOPBACK_NAMES) -> ServerCertificate:
        """A certificate with subject CN=`name` and its key, as NAME.pem and NAME.key, for the
        subjectAltName entries `names` (openssl's spelling)."""
        if serial is None:
            self._next_serial += 1
            serial = self._next_serial
        key = self.directory / f"{name}.key"
        csr = self.directory / f"{name}.csr"
        cert = self.directory / f"{name}.pem"
        extensions = self.directory / f"{name}.ext"
        extensions.write_text(f"subjectAltName={names}\n"
                              "basicConstraints=critical,CA:FALSE\n"
                              "keyUsage=critical,digitalSignature\n"
                              "extendedKeyUsage=serverAuth\n")
        openssl("req", "-new", *EC_KEY, "-keyout", key, "-subj", f"/CN={name}", "-out", csr)
        openssl("x509", "-req", "-in", csr, "-CA", self.bundle, "-CAkey", self._key,
                "-set_serial", serial, "-days", "2", "-sha256", "-extfile", extensions,
                "-out", cert)
        return ServerCertificate(cert, key, serial)


def client_context(bundle: Path) -> ssl.SSLContext:
    """Python's client settings, trusting only `bundle` and checking the name 127.0.0.1."""
    context = ssl.create_default_context(cafile=str(bundle))
    context.check_hostname = True
    return context


def served_serial(port: int, bundle: Path) -> str:
    """The serial (hex, as Python's ssl spells it) of the certificate a new connection gets."""
    with ssl.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            client_context(bundle).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.getpeercert()["serialNumber"]
