"""The Kubernetes REST transport shared by the agent's and the operator's API modules.

Each process still has exactly one module that talks to the API (``aliasip_nodeagent.kube``,
``aliasip_operator.kube``); this is the plumbing under both. It uses the ``kubernetes``
client for what is hard to get right (kubeconfig and in-cluster credentials, TLS, client
certificates, token refresh) and its REST transport for the requests themselves, with
JSON bodies in and out: the generated typed methods would turn a dict merge patch into a
strategic merge patch (which kube-apiserver refuses for custom resources) and re-encode
times in their own format.

Every call is synchronous and bounded by a timeout, and urllib3's own retries are off (a
hidden retry would stretch a Lease renewal past its deadline); callers run calls in
worker threads. Errors come out as two kinds only: ``ApiUnavailable`` (no answer) and
``ApiError`` (an answer with an error status, e.g. 404, 409 Conflict, 410 Gone, 422).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any

from kubernetes import config as kube_config
from kubernetes.client import Configuration
from kubernetes.client.rest import RESTClientObject

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


def load_configuration(kubeconfig: str | None) -> Any:
    """A client configuration from ``kubeconfig``, or in-cluster (service account)."""
    cfg = Configuration()
    if kubeconfig:
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=cfg
        )
    else:
        kube_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=cfg
        )
    cfg.retries = False
    return cfg


def leases_path(namespace: str) -> str:
    return f"/apis/coordination.k8s.io/v1/namespaces/{urllib.parse.quote(namespace)}/leases"


class RestClient:
    """JSON requests with the configuration's credentials; one transport per thread.

    ``timeout_s`` bounds each ordinary call (connect and read); callers' Lease timings rely
    on a call never hanging longer than that.
    """

    def __init__(self, configuration: Any, user_agent: str, timeout_s: float = 2.0) -> None:
        self.configuration = configuration
        self._user_agent = user_agent
        self._timeout = (timeout_s, timeout_s)
        self._local = threading.local()

    def transport(self) -> Any:
        # One transport per thread: a watch streams on its own connection pool, and worker
        # threads must not wait on each other's sockets.
        rest = getattr(self._local, "rest", None)
        if rest is None:
            rest = RESTClientObject(self.configuration)
            self._local.rest = rest
        return rest

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
        timeout = (timeout_s, timeout_s) if timeout_s is not None else self._timeout
        try:
            response = self.transport().request(
                method,
                self.url(path, params),
                headers=self.headers(content_type if body is not None else None),
                body=body,
                _request_timeout=timeout,
            )
            data = response.read()
        except Exception as exc:  # urllib3 and socket errors: no answer
            raise ApiUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        text = data.decode() if isinstance(data, bytes) else str(data or "")
        if not 200 <= response.status < 300:
            raise ApiError(response.status, str(response.reason), text)
        decoded: dict[str, Any] = json.loads(text) if text else {}
        return decoded
