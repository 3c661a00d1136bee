"""Throwaway certificates for the TLS tests, made with the ``openssl`` command: a CA, a
server certificate for 127.0.0.1 and ``apiserver.test`` signed by it, and a client
certificate (CN ``system:node:test``) signed by it. EC P-256 keys: quick to make."""

from __future__ import annotations

import base64
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

EXTENSIONS = """\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:apiserver.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Certs:
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    def b64(self, name: str) -> str:
        return base64.b64encode(self.path(name).read_bytes()).decode()


def common_name(cert: Any) -> str | None:
    """The CN of a certificate as ``ssl`` decodes it (``getpeercert()``, ``get_ca_certs()``)."""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(
        ["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=30
    )


def make_certs(directory: Path) -> Certs:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ext.cnf").write_text(EXTENSIONS)
    cnf = ["-config", "ext.cnf"]
    _openssl("req", "-x509", "-new", *KEY, *cnf, "-extensions", "ca", "-subj", "/CN=test-ca",
             "-days", "2", "-keyout", "ca.key", "-out", "ca.crt", cwd=directory)  # fmt: skip
    for name, subject in (("server", "/CN=apiserver"), ("client", "/CN=system:node:test")):
        _openssl("req", "-new", *KEY, *cnf, "-subj", subject, "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", cwd=directory)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-set_serial", "2" if name == "server" else "3", "-days", "2",
                 "-extfile", "ext.cnf", "-extensions", name, "-out", f"{name}.crt",
                 cwd=directory)  # fmt: skip
    return Certs(directory)
