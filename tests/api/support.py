"""Helpers for the embedded API server's tests: a private namespace, a raw HTTP client, kubectl.

Everything runs inside a network namespace the test made (``private_namespace``): the
server's listening socket is created there, the test's client sockets are created there
(``netns`` switches only the calling thread while it connects), and kubectl runs there
through ``ip netns exec``. Nothing listens on, or connects through, the host namespace.

The HTTP client is deliberately independent of the server's code (``http.client`` and
``json`` only), so a test cannot agree with a bug it shares code with.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aliasip_lab.apiserver import ServerThread, Settings
from aliasip_lab.apiserver.runner import write_kubeconfig
from aliasip_lab.kubectl import find_kubectl
from aliasip_lab.lan import existing_namespaces, private_namespace
from aliasip_lab.nsenter import netns

ADDRESS = "198.19.0.1"  # on the private namespace's loopback (RFC 2544 benchmarking range)
REPO = Path(__file__).resolve().parents[2]
ALIASIP_CRD = REPO / "crds" / "aliasip.yaml"
DATA = Path(__file__).resolve().parent / "data"

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
DEFAULT_SETTINGS = Settings()


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def warnings(self) -> list[str]:
        return self.headers.get_all("Warning") or []


class _NsConnection(http.client.HTTPConnection):
    """An HTTP connection whose socket is opened inside a network namespace."""

    def __init__(self, host: str, port: int, namespace: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._namespace = namespace

    def connect(self) -> None:
        with netns(self._namespace):
            super().connect()


class _NsTlsConnection(http.client.HTTPSConnection):
    """The same over TLS (a server started with ``Settings.tls``)."""

    def __init__(
        self, host: str, port: int, namespace: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._namespace = namespace

    def connect(self) -> None:
        with netns(self._namespace):
            super().connect()


class Watch:
    """A watch stream read by a thread into a queue; every wait has a deadline."""

    def __init__(
        self, conn: _NsConnection | _NsTlsConnection, response: http.client.HTTPResponse
    ) -> None:
        self.conn = conn
        self.response = response
        self.status = response.status
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:  # until the stream ends (the server's deadline, or close())
                line = self.response.readline()
                if not line:
                    break
                if line.strip():
                    self._lines.put(json.loads(line))
        except (OSError, ValueError, http.client.HTTPException):
            pass
        finally:
            self.closed.set()
            self._lines.put(None)

    def next(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next event; fails the test if none comes within ``timeout``."""
        try:
            event = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no watch event within {timeout} s") from None
        if event is None:
            self._lines.put(None)
            raise AssertionError("the watch stream ended")
        return event

    def events(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        return [self.next(max(0.01, deadline - time.monotonic())) for _ in range(count)]

    def quiet(self, seconds: float) -> list[dict[str, Any]]:
        """Events arriving within ``seconds`` (used to show that none do)."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if event is None:
                self._lines.put(None)
                break
            got.append(event)
        return got

    def wait_closed(self, timeout: float) -> bool:
        return self.closed.wait(timeout)

    def close(self) -> None:
        """Shut the socket down, let the reader see the end, then close (in that order:
        http.client is not meant to be closed under a reading thread)."""
        sock = self.conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._reader.join(5)
        self.response.close()
        self.conn.close()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Client:
    """Plain HTTP to the server inside the namespace; one connection per request."""

    host: str
    port: int
    namespace: str
    timeout: float = 10.0
    tls: ssl.SSLContext | None = None

    def _connection(self) -> _NsConnection | _NsTlsConnection:
        if self.tls is not None:
            return _NsTlsConnection(self.host, self.port, self.namespace, self.timeout, self.tls)
        return _NsConnection(self.host, self.port, self.namespace, self.timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        accept: str | None = "application/json",
        params: dict[str, Any] | None = None,
        raw: bytes | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> Reply:
        conn = self._connection()
        try:
            data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            headers = {"Content-Type": content_type} if data is not None else {}
            headers.update(extra_headers or {})
            if accept:
                headers["Accept"] = accept
            conn.request(method, _url(path, params), body=data, headers=headers)
            response = conn.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            conn.close()

    def get(self, path: str, **params: Any) -> Reply:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any, **params: Any) -> Reply:
        return self.request("POST", path, body, params=params or None)

    def put(self, path: str, body: Any, **params: Any) -> Reply:
        return self.request("PUT", path, body, params=params or None)

    def patch(self, path: str, body: Any, content_type: str = MERGE, **params: Any) -> Reply:
        return self.request("PATCH", path, body, content_type=content_type, params=params or None)

    def delete(self, path: str, body: Any = None, **params: Any) -> Reply:
        return self.request("DELETE", path, body, params=params or None)

    def watch(self, path: str, accept: str = "application/json", **params: Any) -> Watch:
        conn = self._connection()
        conn.request("GET", _url(path, {"watch": "1", **params}), headers={"Accept": accept})
        response = conn.getresponse()
        if conn.sock is not None:
            conn.sock.settimeout(None)  # the reader thread blocks; close() unblocks it
        return Watch(conn, response)


def _url(path: str, params: dict[str, Any] | None) -> str:
    if not params:
        return path
    return f"{path}?{urllib.parse.urlencode({k: str(v) for k, v in params.items()})}"


@dataclass
class ApiLab:
    """One server in one private namespace, with a client and kubectl for it."""

    namespace: str
    server: ServerThread
    client: Client
    workdir: Path
    token: str | None = None  # the admin's, when the server authenticates
    ca: Path | None = None  # the server's CA, when it serves TLS
    kubeconfig: Path = field(init=False)

    def __post_init__(self) -> None:
        self.kubeconfig = self.workdir / "kubeconfig"
        write_kubeconfig(self.kubeconfig, self.server.url, self.token, self.ca)

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """The real kubectl inside the namespace, with a discovery cache of its own."""
        done = subprocess.run(
            [
                "ip", "netns", "exec", self.namespace, find_kubectl(),
                "--kubeconfig", str(self.kubeconfig),
                "--cache-dir", str(self.workdir / "kube-cache"),
                *args,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done

    def sizes(self) -> dict[str, int]:
        return self.server.call(lambda api: api.sizes())


@contextlib.contextmanager
def api_lab(settings: Settings = DEFAULT_SETTINGS) -> Iterator[ApiLab]:
    """A private namespace with the API server in it; everything removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="aip-api-"))
    try:
        with private_namespace("api", ADDRESS) as namespace:
            server = ServerThread(ADDRESS, 0, netns=namespace, settings=settings)
            try:
                running = server.start()
                tls = settings.tls.client_context() if settings.tls is not None else None
                admin = settings.access.admin if settings.access is not None else None
                yield ApiLab(
                    namespace,
                    server,
                    Client(ADDRESS, running.port, namespace, tls=tls),
                    workdir,
                    admin.token if admin is not None else None,
                    settings.tls.ca if settings.tls is not None else None,
                )
            finally:
                server.stop()
        assert namespace not in existing_namespaces(), f"namespace left behind: {namespace}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def eventually(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``check`` until it returns something truthy, within a bounded deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last: {last!r})")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# --------------------------------------------------------------------------- fixtures' data

WIDGETS = "/apis/example.io/v1/widgets"


def widget_crd(status: bool = True, scope: str = "Cluster") -> dict[str, Any]:
    """The small test CRD under data/ (printer columns, defaults, a status subresource)."""
    crd: dict[str, Any] = load_yaml(DATA / "widgets.yaml")
    version = crd["spec"]["versions"][0]
    if not status:
        version.pop("subresources", None)
    crd["spec"]["scope"] = scope
    return crd


def widget(name: str, size: int = 3, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.io/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size, **spec},
    }


def aliasip(
    name: str, *addresses: str, nodes: tuple[str, ...] = ("node1", "node2")
) -> dict[str, Any]:
    return {
        "apiVersion": "aliasip.io/v1alpha1",
        "kind": "AliasIP",
        "metadata": {"name": name},
        "spec": {"addresses": list(addresses) or ["198.18.0.50/24"], "nodes": list(nodes)},
    }


def install_crd(lab: ApiLab, crd: dict[str, Any]) -> dict[str, Any]:
    reply = lab.client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert reply.status == 201, reply.body
    created: dict[str, Any] = reply.json
    return created


def node(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ok"},
                {"type": "MemoryPressure", "status": "False", "reason": "Fine", "message": "ok"},
            ],
            "nodeInfo": {"kubeletVersion": "v1.32.0"},
        },
    }
