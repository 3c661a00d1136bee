"""TLS for the lab's API server: a private CA and a serving certificate, made with the
``openssl`` command (Debian's; no Python crypto dependency for a lab).

Why: clients send bearer tokens only over TLS (kubectl sends none over plain HTTP), so an
API that authenticates (``--authorization-mode RBAC``) serves HTTPS, as kube-apiserver
does, and its kubeconfig carries the CA (``certificate-authority-data``).
"""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DAYS = "3650"
CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


@dataclass(frozen=True)
class TlsFiles:
    """The CA certificate clients trust, and the server's certificate and key (PEM)."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert), str(self.key))
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")


def make_serving_files(directory: Path, hosts: Sequence[str]) -> TlsFiles:
    """A CA and a certificate for ``hosts`` (IP addresses or DNS names) under
    ``directory``; keys readable by their owner only."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.crt", directory / "apiserver.crt", directory / "apiserver.key")
    ca_key = directory / "ca.key"
    _openssl(
        "req", "-x509", *CURVE, "-keyout", str(ca_key), "-out", str(files.ca), "-days", DAYS,
        "-subj", "/CN=aliasip-lab-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    names = []
    for host in hosts:
        try:
            names.append(f"IP:{ipaddress.ip_address(host)}")
        except ValueError:
            names.append(f"DNS:{host}")
    csr = directory / "apiserver.csr"
    _openssl(
        "req", "-new", *CURVE, "-keyout", str(files.key), "-out", str(csr),
        "-subj", "/CN=kube-apiserver",
    )  # fmt: skip
    extensions = directory / "apiserver.ext"
    extensions.write_text(
        f"subjectAltName={','.join(names)}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(files.ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(files.cert), "-days", DAYS,
        "-extfile", str(extensions),
    )  # fmt: skip
    for path in (ca_key, files.key):
        path.chmod(0o600)
    return files
