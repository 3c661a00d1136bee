"""The operator's own API calls besides kopf's (one owner per side effect).

kopf watches AliasIPs, Nodes and agent Leases and feeds the handlers; everything the
operator *writes* goes through here: the leader-election Lease, the operator's part of an
AliasIP's status (a merge patch carrying ``metadata.resourceVersion``, so a decision made
on a stale status gets 409 instead of overwriting newer agent reports), consuming the
switchover annotation (a JSON patch whose ``test`` makes the removal conditional on the
value the decision served), and core v1 Events (in ``EVENTS_NAMESPACE``). The transport
(credentials, JSON bodies, timeouts without hidden retries, ``ApiUnavailable``/``ApiError``)
is ``aliasip_api.rest``, shared with the agent; the async handlers run these calls in
worker threads.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aliasip_api import kubetime
from aliasip_api.rest import (
    ALIASIPS,
    JSON_PATCH,
    MERGE_PATCH,
    ApiError,
    ApiUnavailable,
    RestClient,
    leases_path,
    load_configuration,
)

__all__ = [
    "EVENTS_NAMESPACE",
    "EVENTS_NAMESPACES",
    "ApiError",
    "ApiUnavailable",
    "KubeApi",
    "escape_pointer",
    "load_configuration",
]

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
COMPONENT = "aliasip-operator"

EVENTS_NAMESPACES = ("default", "kube-system")
"""Where kube-apiserver admits an Event about a cluster-scoped object.

An AliasIP is cluster-scoped, so its Events carry no ``involvedObject.namespace``: that
is what ``kubectl describe aip NAME`` asks for (``involvedObject.namespace=`` in its field
selector). kube-apiserver admits such an Event, one with ``eventTime`` set, only in
``default`` or ``kube-system`` (``legacyValidateEvent``, pkg/apis/core/validation/
events.go); in any other namespace it is 422 "does not match event.namespace". kubelet
writes its Node Events in ``default`` for the same reason."""

EVENTS_NAMESPACE = "default"
"""The namespace of the operator's Events about AliasIPs (``--events-namespace``): one of
``EVENTS_NAMESPACES``, so that ``kubectl describe aip NAME`` lists them; ``default``, as
kubelet's Node Events, rather than the system namespace. RBAC grants the operator
``create`` on Events there (manifests/operator-rbac.yaml)."""


def escape_pointer(key: str) -> str:
    """A JSON-pointer token (RFC 6901): annotation keys contain ``/``."""
    return key.replace("~", "~0").replace("/", "~1")


class KubeApi(RestClient):
    """The operator's direct calls; ``timeout_s`` bounds each (connect and read)."""

    def __init__(self, configuration: Any, timeout_s: float = 2.0) -> None:
        super().__init__(configuration, COMPONENT, timeout_s)

    # ------------------------------------------------------------------ Leases

    def get_lease(self, namespace: str, name: str, timeout_s: float | None = None) -> Any:
        """The Lease, or None when there is none (404)."""
        try:
            return self.request(
                "GET", f"{leases_path(namespace)}/{urllib.parse.quote(name)}", timeout_s=timeout_s
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create_lease(
        self, namespace: str, body: Mapping[str, Any], timeout_s: float | None = None
    ) -> dict[str, Any]:
        """POST a new Lease; 409 AlreadyExists if another candidate was first."""
        return self.request("POST", leases_path(namespace), dict(body), timeout_s=timeout_s)

    def replace_lease(
        self, namespace: str, body: Mapping[str, Any], timeout_s: float | None = None
    ) -> dict[str, Any]:
        """PUT the Lease; its ``metadata.resourceVersion`` makes a stale write a 409."""
        name = urllib.parse.quote(str(body["metadata"]["name"]))
        path = f"{leases_path(namespace)}/{name}"
        return self.request("PUT", path, dict(body), timeout_s=timeout_s)

    # ------------------------------------------------------------------ AliasIPs

    def crd_exists(self, name: str) -> bool:
        """Whether the CRD ``name`` exists (a list with a field selector: RBAC has no get)."""
        found = self.request("GET", CRDS, params={"fieldSelector": f"metadata.name={name}"})
        return bool(found.get("items"))

    def get_aliasip(self, name: str) -> dict[str, Any]:
        """The AliasIP as stored now (after a 409: decide again on the newest version)."""
        return self.request("GET", f"{ALIASIPS}/{urllib.parse.quote(name)}")

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
        """Create a core v1 Event about the cluster-scoped object ``involved`` (apiVersion,
        kind, name, uid) in ``namespace`` (``EVENTS_NAMESPACE``).

        ``involvedObject`` has no namespace, as for any cluster-scoped object: so ``kubectl
        describe`` finds the Event, and kube-apiserver admits it only in one of
        ``EVENTS_NAMESPACES`` (see there).
        """
        stamp = kubetime.format_time(now)
        name = str(involved.get("name") or "aliasip")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{name}.", "namespace": namespace},
            "involvedObject": {k: v for k, v in involved.items() if k != "namespace"},
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
