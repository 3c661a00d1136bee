"""The operator's own API calls besides kopf's (one owner per side effect).

kopf watches AliasIPs, Nodes and agent Leases and feeds the handlers; everything the
operator *writes* goes through here: the leader-election Lease, the operator's part of an
AliasIP's status (a merge patch carrying ``metadata.resourceVersion``, so a decision made
on a stale status gets 409 instead of overwriting newer agent reports), consuming the
switchover annotation (a JSON patch whose ``test`` makes the removal conditional on the
value the decision served), and core v1 Events.

It uses the ``kubernetes`` client for credentials (kubeconfig or in-cluster, TLS, token)
and its REST transport with JSON bodies, as the agent does: the typed methods would turn a
dict patch into a strategic merge patch, which kube-apiserver refuses for custom
resources. Calls are synchronous, bounded by a timeout, and never retried inside urllib3
(a hidden retry would stretch a leader's renewal past its deadline); the async handlers
run them in worker threads.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kubernetes import config as kube_config
from kubernetes.client import Configuration
from kubernetes.client.rest import RESTClientObject

from aliasip_api import kubetime

ALIASIPS = "/apis/aliasip.io/v1alpha1/aliasips"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
COMPONENT = "aliasip-operator"


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


def escape_pointer(key: str) -> str:
    """A JSON-pointer token (RFC 6901): annotation keys contain ``/``."""
    return key.replace("~", "~0").replace("/", "~1")


class KubeApi:
    """The operator's direct calls; ``timeout_s`` bounds each (connect and read)."""

    def __init__(self, configuration: Any, timeout_s: float = 2.0) -> None:
        self.configuration = configuration
        self._timeout = (timeout_s, timeout_s)
        self._local = threading.local()

    def _rest(self) -> Any:
        # One transport per thread: urllib3 pools are thread-safe, but the handlers' worker
        # threads and the leader's renewal thread must not wait on each other's sockets.
        rest = getattr(self._local, "rest", None)
        if rest is None:
            rest = RESTClientObject(self.configuration)
            self._local.rest = rest
        return rest

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": COMPONENT}
        for auth in self.configuration.auth_settings().values():
            if auth.get("in") == "header" and auth.get("value"):
                headers[auth["key"]] = auth["value"]
        if content_type:
            headers["Content-Type"] = content_type
        return headers

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
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        url = f"{self.configuration.host.rstrip('/')}{path}{query}"
        timeout = (timeout_s, timeout_s) if timeout_s is not None else self._timeout
        try:
            response = self._rest().request(
                method,
                url,
                headers=self._headers(content_type if body is not None else None),
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

    # ------------------------------------------------------------------ Leases

    @staticmethod
    def _leases(namespace: str) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{urllib.parse.quote(namespace)}/leases"

    def get_lease(self, namespace: str, name: str, timeout_s: float | None = None) -> Any:
        """The Lease, or None when there is none (404)."""
        try:
            return self.request(
                "GET", f"{self._leases(namespace)}/{urllib.parse.quote(name)}", timeout_s=timeout_s
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create_lease(
        self, namespace: str, body: Mapping[str, Any], timeout_s: float | None = None
    ) -> dict[str, Any]:
        """POST a new Lease; 409 AlreadyExists if another candidate was first."""
        return self.request("POST", self._leases(namespace), dict(body), timeout_s=timeout_s)

    def replace_lease(
        self, namespace: str, body: Mapping[str, Any], timeout_s: float | None = None
    ) -> dict[str, Any]:
        """PUT the Lease; its ``metadata.resourceVersion`` makes a stale write a 409."""
        name = urllib.parse.quote(str(body["metadata"]["name"]))
        path = f"{self._leases(namespace)}/{name}"
        return self.request("PUT", path, dict(body), timeout_s=timeout_s)

    # ------------------------------------------------------------------ AliasIPs

    def crd_exists(self, name: str) -> bool:
        """Whether the CRD ``name`` exists (a list with a field selector: RBAC has no get)."""
        found = self.request("GET", CRDS, params={"fieldSelector": f"metadata.name={name}"})
        return bool(found.get("items"))

    def patch_status(
        self, name: str, patch: Mapping[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        """Merge-patch ``/status`` with the operator's part, conditional on the version the
        decision was made from (409 Conflict when the object changed since)."""
        body = dict(patch)
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        path = f"{ALIASIPS}/{urllib.parse.quote(name)}/status"
        return self.request("PATCH", path, body, content_type=MERGE_PATCH)

    def remove_annotation(self, name: str, key: str, value: str) -> dict[str, Any]:
        """Remove annotation ``key`` only if it still has ``value`` (else 422 Invalid):
        a new request written after the one served must not be lost."""
        pointer = f"/metadata/annotations/{escape_pointer(key)}"
        ops = [{"op": "test", "path": pointer, "value": value}, {"op": "remove", "path": pointer}]
        path = f"{ALIASIPS}/{urllib.parse.quote(name)}"
        return self.request("PATCH", path, ops, content_type=JSON_PATCH)

    # ------------------------------------------------------------------ Events

    def post_event(
        self,
        namespace: str,
        involved: Mapping[str, Any],
        type_: str,
        reason: str,
        message: str,
        now: datetime,
        host: str,
    ) -> dict[str, Any]:
        """Create a core v1 Event about ``involved`` (apiVersion, kind, name, uid).

        AliasIPs are cluster-scoped; the Event lives in the operator's namespace and names
        it as ``involvedObject.namespace`` (what kube-apiserver admits there, as kopf does).
        """
        stamp = kubetime.format_time(now)
        name = str(involved.get("name") or "aliasip")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{name}.", "namespace": namespace},
            "involvedObject": {**involved, "namespace": namespace},
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": COMPONENT, "host": host},
            "reportingComponent": COMPONENT,
            "reportingInstance": host,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "eventTime": kubetime.format_micro_time(now),
            "action": reason,
            "count": 1,
        }
        path = f"/api/v1/namespaces/{urllib.parse.quote(namespace)}/events"
        return self.request("POST", path, body)
