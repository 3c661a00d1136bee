"""The Kubernetes REST transport shared by the agent's and the operator's API modules.

Each process still has exactly one module that talks to the API (``aliasip_nodeagent.kube``,
``aliasip_operator.kube``); this is the plumbing under both: JSON bodies in and out over a
``urllib3`` pool, with the credentials of ``aliasip_api.kubeconfig`` (a kubeconfig file, or
the in-cluster service account).

It no longer uses the ``kubernetes`` client: importing ``kubernetes`` pulls in the whole
generated client (every API group's models and methods), some 25 MiB of the node agent's
resident memory, which has to stay under 80 MB on every node; the few calls we make need
none of it. Its typed methods were not used anyway: they would turn a dict merge patch into
a strategic merge patch (which kube-apiserver refuses for custom resources) and re-encode
times in their own format.

Every call is synchronous and bounded by a timeout (connect and read), and urllib3's own
retries are off (a hidden retry would stretch a Lease renewal past its deadline); callers
run calls in worker threads. Errors come out as two kinds only: ``ApiUnavailable`` (no
answer) and ``ApiError`` (an answer with an error status, e.g. 404, 409 Conflict, 410 Gone,
422).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any

import urllib3

from aliasip_api.kubeconfig import Configuration, KubeconfigError, load_incluster, load_kubeconfig

__all__ = [
    "ALIASIPS",
    "JSON_PATCH",
    "MERGE_PATCH",
    "ApiError",
    "ApiUnavailable",
    "Configuration",
    "KubeconfigError",
    "RestClient",
    "leases_path",
    "load_configuration",
]

ALIASIPS = "/apis/aliasip.io/v1alpha1/aliasips"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class ApiUnavailable(Exception):
    """The API server did not answer (connection refused, timeout, reset)."""


class ApiError(Exception):
    """The API server answered with an error status (e.g. 404, 409 Conflict, 422)."""

    def __init__(self, status: int, reason: str, body: str = "") -> None:
        super().__init__(f"HTTP {status} {reason}: {body[:300]}".rstrip(": "))
        self.status = status
        self.reason = reason


def load_configuration(kubeconfig: str | None) -> Configuration:
    """The configuration from ``kubeconfig``, or in-cluster (service account).

    Raises ``KubeconfigError`` (naming the file and the field) when it cannot be loaded.
    """
    return load_kubeconfig(kubeconfig) if kubeconfig else load_incluster()


def leases_path(namespace: str) -> str:
    return f"/apis/coordination.k8s.io/v1/namespaces/{urllib.parse.quote(namespace)}/leases"


class RestClient:
    """JSON requests with the configuration's credentials; one connection pool per thread.

    ``timeout_s`` bounds each ordinary call (connect and read); callers' Lease timings rely
    on a call never hanging longer than that.
    """

    def __init__(
        self, configuration: Configuration, user_agent: str, timeout_s: float = 2.0
    ) -> None:
        self.configuration = configuration
        self._user_agent = user_agent
        self._timeout = (timeout_s, timeout_s)
        self._local = threading.local()

    def transport(self) -> urllib3.PoolManager:
        """This thread's pool: a watch streams on its own connection, and worker threads
        must not wait on each other's sockets. No retries, no redirects followed."""
        pool: urllib3.PoolManager | None = getattr(self._local, "pool", None)
        if pool is None:
            cfg = self.configuration
            tls: dict[str, Any] = {}
            if cfg.ssl_context is not None:
                tls = {
                    "ssl_context": cfg.ssl_context,
                    "cert_reqs": "CERT_REQUIRED" if cfg.verify_ssl else "CERT_NONE",
                }
                if cfg.tls_server_name:
                    tls["server_hostname"] = cfg.tls_server_name
            pool = urllib3.PoolManager(num_pools=4, retries=False, **tls)
            self._local.pool = pool
        return pool

    def headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        for auth in self.configuration.auth_settings().values():
            if auth.get("in") == "header" and auth.get("value"):
                headers[auth["key"]] = auth["value"]
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def url(self, path: str, params: Mapping[str, object] | None = None) -> str:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return f"{self.configuration.host.rstrip('/')}{path}{query}"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, object] | None = None,
        content_type: str = "application/json",
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """One call; the decoded JSON answer, or ``ApiError`` / ``ApiUnavailable``."""
        connect_s, read_s = (timeout_s, timeout_s) if timeout_s is not None else self._timeout
        payload = None if body is None else json.dumps(body).encode()
        try:
            response = self.transport().request(
                method,
                self.url(path, params),
                body=payload,
                headers=self.headers(content_type if body is not None else None),
                timeout=urllib3.Timeout(connect=connect_s, read=read_s),
                retries=False,
                redirect=False,
            )
            data = response.data
        except Exception as exc:  # urllib3, ssl and socket errors: no answer
            raise ApiUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        text = data.decode(errors="replace") if data else ""
        if not 200 <= response.status < 300:
            raise ApiError(response.status, str(response.reason), text)
        decoded: dict[str, Any] = json.loads(text) if text else {}
        return decoded
