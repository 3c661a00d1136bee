"""API server credentials without the ``kubernetes`` package: a kubeconfig, or in-cluster.

What ``aliasip_api.rest`` needs to reach kube-apiserver, read as client-go reads it:

- ``load_kubeconfig(path)``: the file's ``current-context`` (or a named one) → its cluster
  (``server``, ``certificate-authority[-data]``, ``insecure-skip-tls-verify``,
  ``tls-server-name``) and its user (``token``, ``tokenFile``,
  ``client-certificate[-data]`` / ``client-key[-data]``, ``username``/``password``).
  Relative paths are relative to the kubeconfig's directory, as in client-go. What would
  change who we are or how we connect and is not implemented here (``exec`` and
  ``auth-provider`` plugins, impersonation, ``proxy-url``) is refused rather than ignored.
- ``load_incluster()``: the pod's service account (``KUBERNETES_SERVICE_HOST``/``_PORT``,
  the mounted ``token`` and ``ca.crt``).

A token read from a file (``tokenFile``, the service account's) is read again every
``TOKEN_REFRESH_S``, as client-go does: bound service account tokens are rotated by the
kubelet and expire. The ``*-data`` fields (base64) are written to private temporary files
(mode 0600, in a 0700 directory removed at exit), because ``ssl`` loads a client
certificate only from files and kopf's ``ConnectionInfo`` takes paths; the TLS context
itself is built once, here, so a bad CA or key fails at start-up with the field's name.

Every problem is a ``KubeconfigError`` whose message names the file and the field.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import contextlib
import logging
import os
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REFRESH_S = 60.0
"""How often a token file is read again (client-go's cached file token source: 1 min)."""

UNSUPPORTED_USER_FIELDS = ("exec", "auth-provider", "as", "as-uid", "as-groups", "as-user-extra")

log = logging.getLogger(__name__)


class KubeconfigError(Exception):
    """The credentials cannot be loaded; the message names the file and the field."""


class TokenFile:
    """A bearer token kept in a file, read again at most every ``period_s``.

    The first read happens at once and must succeed. A later read that fails (the file
    being replaced, briefly absent or empty) keeps the token read before, as client-go does.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        period_s: float = TOKEN_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self._period_s = period_s
        self._clock = clock
        self._lock = threading.Lock()
        self._token = self._read()
        self._read_at = clock()

    def _read(self) -> str:
        try:
            token = self.path.read_text().strip()
        except OSError as exc:
            raise KubeconfigError(f"cannot read token file {self.path}: {exc}") from exc
        if not token:
            raise KubeconfigError(f"token file {self.path} is empty")
        return token

    def token(self) -> str:
        with self._lock:
            now = self._clock()
            if now - self._read_at >= self._period_s:
                self._read_at = now
                try:
                    self._token = self._read()
                except KubeconfigError as exc:
                    log.warning("keeping the previous token: %s", exc)
            return self._token


class Configuration:
    """Where the API server is and how to authenticate; what ``RestClient`` and the
    operator's kopf login use.

    The attributes are those of ``kubernetes.client.Configuration`` that our callers read:
    ``host``, ``ssl_ca_cert``, ``verify_ssl``, ``cert_file``, ``key_file`` (paths or None),
    and ``auth_settings()``. ``ssl_context`` is the TLS context for an ``https`` host (None
    for plain ``http``), built once: the CA (or the system's CAs), the client certificate,
    verification on or off.
    """

    def __init__(
        self,
        host: str,
        *,
        ssl_ca_cert: str | None = None,
        ca_data: bytes | None = None,
        verify_ssl: bool = True,
        cert_file: str | None = None,
        key_file: str | None = None,
        tls_server_name: str | None = None,
        token: str | None = None,
        token_file: TokenFile | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if (cert_file is None) != (key_file is None):
            raise KubeconfigError("a client certificate needs both a certificate and a key")
        self.host = host
        self.ssl_ca_cert = ssl_ca_cert
        self.verify_ssl = verify_ssl
        self.cert_file = cert_file
        self.key_file = key_file
        self.tls_server_name = tls_server_name
        self.token = token
        self.token_file = token_file
        self.username = username
        self.password = password
        self.ssl_context = (
            _ssl_context(ssl_ca_cert, ca_data, verify_ssl, cert_file, key_file)
            if host.lower().startswith("https://")
            else None
        )

    def bearer_token(self) -> str | None:
        if self.token:
            return self.token
        if self.token_file is not None:
            return self.token_file.token()
        return None

    def auth_settings(self) -> dict[str, dict[str, str]]:
        """The authorization header, shaped as ``kubernetes.client.Configuration``'s."""
        token = self.bearer_token()
        if token:
            return {
                "BearerToken": {
                    "type": "api_key",
                    "in": "header",
                    "key": "authorization",
                    "value": f"Bearer {token}",
                }
            }
        if self.username is not None and self.password is not None:
            basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return {
                "BasicAuth": {
                    "type": "basic",
                    "in": "header",
                    "key": "authorization",
                    "value": f"Basic {basic}",
                }
            }
        return {}

    def __repr__(self) -> str:  # never the token or the password
        return (
            f"Configuration(host={self.host!r}, ssl_ca_cert={self.ssl_ca_cert!r}, "
            f"verify_ssl={self.verify_ssl}, cert_file={self.cert_file!r})"
        )


def _ssl_context(
    ca_file: str | None,
    ca_data: bytes | None,
    verify: bool,
    cert_file: str | None,
    key_file: str | None,
) -> ssl.SSLContext:
    try:
        if ca_data is not None:
            context = ssl.create_default_context(cadata=ca_data.decode("ascii"))
        elif ca_file is not None:
            context = ssl.create_default_context(cafile=ca_file)
        else:
            context = ssl.create_default_context()
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        where = "certificate-authority-data" if ca_data is not None else ca_file
        raise KubeconfigError(f"cannot load the CA certificate ({where}): {exc}") from exc
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert_file is not None and key_file is not None:
        try:
            context.load_cert_chain(cert_file, key_file)
        except OSError as exc:
            raise KubeconfigError(
                f"cannot load the client certificate {cert_file} with key {key_file}: {exc}"
            ) from exc
    return context


# --------------------------------------------------------------------------- kubeconfig


def load_kubeconfig(path: str | os.PathLike[str], context: str | None = None) -> Configuration:
    """The configuration of ``context`` (default: the current context) in the file."""
    source = Path(path).expanduser()
    try:
        document = yaml.safe_load(source.read_text())
    except OSError as exc:
        raise KubeconfigError(f"cannot read kubeconfig {source}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"kubeconfig {source} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise KubeconfigError(f"kubeconfig {source} is empty or not a mapping")
    return _configuration(_Reader(source, document), context)


class _Reader:
    """Lookups in one kubeconfig document, with errors naming the file and the field."""

    def __init__(self, source: Path, document: Mapping[str, Any]) -> None:
        self.source = source
        self.document = document

    def error(self, message: str) -> KubeconfigError:
        return KubeconfigError(f"kubeconfig {self.source}: {message}")

    def named(self, kind: str, name: str) -> Mapping[str, Any]:
        """``clusters``/``contexts``/``users`` entry ``name``, its inner mapping."""
        entries = self.document.get(f"{kind}s") or []
        if not isinstance(entries, list):
            raise self.error(f"'{kind}s' is not a list")
        for entry in entries:
            if isinstance(entry, dict) and entry.get("name") == name:
                inner = entry.get(kind) or {}
                if not isinstance(inner, dict):
                    raise self.error(f"{kind} {name!r}: '{kind}' is not a mapping")
                return inner
        known = ", ".join(
            repr(e.get("name")) for e in entries if isinstance(e, dict) and "name" in e
        )
        raise self.error(f"{kind} {name!r} not found (known: {known or 'none'})")

    def path(self, value: Any) -> str:
        """A file path field, relative to the kubeconfig's directory."""
        return str(self.source.parent / Path(str(value)).expanduser())

    def data(self, owner: str, field: str, value: Any) -> bytes:
        try:
            decoded = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self.error(f"{owner}: {field} is not valid base64: {exc}") from exc
        if not decoded:
            raise self.error(f"{owner}: {field} is empty")
        return decoded


def _configuration(reader: _Reader, context_name: str | None) -> Configuration:
    name = context_name or reader.document.get("current-context")
    if not name:
        raise reader.error("no current-context is set (and no context was asked for)")
    context = reader.named("context", str(name))
    cluster_name, user_name = context.get("cluster"), context.get("user")
    if not cluster_name:
        raise reader.error(f"context {name!r} names no cluster")
    cluster = reader.named("cluster", str(cluster_name))
    owner = f"cluster {cluster_name!r}"
    server = str(cluster.get("server") or "")
    if not server:
        raise reader.error(f"{owner} has no server")
    if cluster.get("proxy-url"):
        raise reader.error(f"{owner}: proxy-url is not supported")
    ca_data = ca_file = None
    if cluster.get("certificate-authority-data"):
        ca_data = reader.data(
            owner, "certificate-authority-data", cluster["certificate-authority-data"]
        )
        ca_file = private_file(ca_data, "ca.crt")
    elif cluster.get("certificate-authority"):
        ca_file = reader.path(cluster["certificate-authority"])
    user: Mapping[str, Any] = reader.named("user", str(user_name)) if user_name else {}
    owner = f"user {user_name!r}"
    for field in UNSUPPORTED_USER_FIELDS:
        if user.get(field):
            raise reader.error(
                f"{owner}: {field} is not supported "
                "(use a token, a tokenFile or a client certificate)"
            )
    cert_file = _file_or_data(reader, owner, user, "client-certificate", "client.crt")
    key_file = _file_or_data(reader, owner, user, "client-key", "client.key")
    if (cert_file is None) != (key_file is None):
        missing = "client-key" if key_file is None else "client-certificate"
        raise reader.error(f"{owner}: {missing} (or {missing}-data) is missing")
    token = str(user.get("token") or "").strip() or None
    token_file = None
    if token is None and user.get("tokenFile"):
        token_file = TokenFile(reader.path(user["tokenFile"]))
    username, password = user.get("username"), user.get("password")
    if (token or token_file) and (username or password):
        raise reader.error(f"{owner}: a token and a username/password are both set")
    try:
        return Configuration(
            server,
            ssl_ca_cert=ca_file,
            ca_data=ca_data,
            verify_ssl=not bool(cluster.get("insecure-skip-tls-verify")),
            cert_file=cert_file,
            key_file=key_file,
            tls_server_name=str(cluster.get("tls-server-name") or "") or None,
            token=token,
            token_file=token_file,
            username=None if username is None else str(username),
            password=None if password is None else str(password),
        )
    except KubeconfigError as exc:
        raise reader.error(f"context {name!r}: {exc}") from exc


def _file_or_data(
    reader: _Reader, owner: str, user: Mapping[str, Any], field: str, name: str
) -> str | None:
    """A path for ``field``: ``field-data`` written to a private file (it wins, as in the
    kubernetes client), else the ``field`` path."""
    if user.get(f"{field}-data"):
        return private_file(reader.data(owner, f"{field}-data", user[f"{field}-data"]), name)
    if user.get(field):
        return reader.path(user[field])
    return None


# --------------------------------------------------------------------------- in-cluster


def load_incluster(
    environ: Mapping[str, str] | None = None,
    directory: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR,
) -> Configuration:
    """The pod's service account: the API's Service from the environment, the token and CA
    mounted in ``directory``."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubeconfigError(
            "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not "
            "set (outside a pod, pass --kubeconfig)"
        )
    if ":" in host:  # IPv6
        host = f"[{host}]"
    root = Path(directory)
    ca_file = root / "ca.crt"
    if not ca_file.is_file():
        raise KubeconfigError(f"in-cluster: the service account CA {ca_file} does not exist")
    try:
        return Configuration(
            f"https://{host}:{port}", ssl_ca_cert=str(ca_file), token_file=TokenFile(root / "token")
        )
    except KubeconfigError as exc:
        raise KubeconfigError(f"in-cluster: {exc}") from exc


# --------------------------------------------------------------------------- files


_private_dir: Path | None = None
_private_lock = threading.Lock()


def private_file(data: bytes, name: str) -> str:
    """``data`` in a new file only we can read (0600, in a 0700 directory removed at exit)."""
    global _private_dir
    with _private_lock:
        if _private_dir is None:
            _private_dir = Path(tempfile.mkdtemp(prefix="aliasip-kube-"))
            atexit.register(shutil.rmtree, _private_dir, True)
        directory = _private_dir
    fd, path = tempfile.mkstemp(dir=directory, prefix="", suffix=f"-{name}")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return path
