"""The only module of the agent that talks to the Kubernetes API (one owner per side effect).

It uses the ``kubernetes`` client for what is hard to get right (kubeconfig and in-cluster
credentials, TLS, client certificates, token refresh) and its REST transport for the
requests themselves, with JSON bodies in and out: the generated typed methods would turn
a dict merge patch into a strategic merge patch (which kube-apiserver refuses for custom
resources) and re-encode times in their own format.

Every call is synchronous and bounded by a timeout; ``daemon`` runs them in worker
threads so the event loop never blocks. Errors come out as two kinds only:
``ApiUnavailable`` (no answer: the caller retries, and self-fences if it lasts) and
``ApiError`` (an answer with an error status, e.g. 409 Conflict or 410 Gone).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes import config as kube_config
from kubernetes.client import Configuration
from kubernetes.client.rest import RESTClientObject

from aliasip_api import kubetime

GROUP = "aliasip.io"
VERSION = "v1alpha1"
PLURAL = "aliasips"
ALIASIPS = f"/apis/{GROUP}/{VERSION}/{PLURAL}"
MERGE_PATCH = "application/merge-patch+json"


class ApiUnavailable(Exception):
    """The API server did not answer (connection refused, timeout, reset)."""


class ApiError(Exception):
    """The API server answered with an error status."""

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
    # No hidden retries: a retry loop inside urllib3 would stretch a call past the Lease.
    cfg.retries = False
    return cfg


@dataclass(frozen=True)
class Listing:
    """A complete list of objects and the resourceVersion to watch from."""

    items: tuple[dict[str, Any], ...]
    resource_version: str


class KubeApi:
    """The agent's calls: list and watch AliasIPs, patch our status key, our Lease.

    ``timeout_s`` bounds each ordinary call (connect and read): the daemon's Lease
    timings rely on a call never hanging longer than that.
    """

    def __init__(self, configuration: Any, timeout_s: float = 2.0) -> None:
        self._cfg = configuration
        self._timeout = (timeout_s, timeout_s)
        self._local = threading.local()
        self._lease: dict[str, Any] | None = None

    def _rest(self) -> Any:
        # One transport per thread: a watch streams on its own connection pool.
        rest = getattr(self._local, "rest", None)
        if rest is None:
            rest = RESTClientObject(self._cfg)
            self._local.rest = rest
        return rest

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "aliasip-agent"}
        for auth in self._cfg.auth_settings().values():
            if auth.get("in") == "header" and auth.get("value"):
                headers[auth["key"]] = auth["value"]
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _url(self, path: str, params: Mapping[str, object] | None = None) -> str:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return f"{self._cfg.host.rstrip('/')}{path}{query}"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, object] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One call; the decoded JSON answer, or ``ApiError``/``ApiUnavailable``."""
        try:
            response = self._rest().request(
                method,
                self._url(path, params),
                headers=self._headers(content_type if body is not None else None),
                body=body,
                _request_timeout=self._timeout,
            )
            data = response.read()
        except Exception as exc:  # urllib3 and socket errors: no answer
            raise ApiUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        text = data.decode() if isinstance(data, bytes) else str(data or "")
        if not 200 <= response.status < 300:
            raise ApiError(response.status, str(response.reason), text)
        decoded: dict[str, Any] = json.loads(text) if text else {}
        return decoded

    # ------------------------------------------------------------------ AliasIPs

    def list_aliasips(self) -> Listing:
        body = self.request("GET", ALIASIPS)
        rv = str((body.get("metadata") or {}).get("resourceVersion", ""))
        return Listing(tuple(body.get("items") or ()), rv)

    def watch_aliasips(self, resource_version: str, timeout_s: int) -> Iterator[dict[str, Any]]:
        """The watch events from ``resource_version`` for at most ``timeout_s``.

        Bookmarks are asked for, so a quiet watch still advances its resourceVersion.
        A 410 Gone (as a status or as an ERROR event) raises ``ApiError(410)``.
        """
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_s),
        }
        try:
            response = self._rest().request(
                "GET",
                self._url(ALIASIPS, params),
                headers=self._headers(),
                _request_timeout=(self._timeout[0], timeout_s + 10),
            )
        except Exception as exc:
            raise ApiUnavailable(f"watch {ALIASIPS}: {type(exc).__name__}: {exc}") from exc
        raw = response.response
        try:
            if response.status != 200:
                raise ApiError(response.status, str(response.reason), raw.data.decode())
            buffer = b""
            try:
                for chunk in raw.stream(amt=None, decode_content=False):
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        if line.strip():
                            yield _event(json.loads(line))
            except (ApiError, ValueError):
                raise
            except Exception as exc:
                raise ApiUnavailable(f"watch {ALIASIPS} broke: {type(exc).__name__}") from exc
        finally:
            raw.release_conn()

    def patch_aliasip_status(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the ``/status`` subresource (our own key only)."""
        path = f"{ALIASIPS}/{urllib.parse.quote(name)}/status"
        return self.request("PATCH", path, dict(body), content_type=MERGE_PATCH)

    # ------------------------------------------------------------------ Lease

    def renew_lease(
        self, namespace: str, name: str, holder: str, duration_s: int, now: datetime
    ) -> dict[str, Any]:
        """Create or renew the Lease ``name`` for ``holder``: one PUT per renewal.

        The Lease written last is kept, so a renewal is a single PUT with its
        resourceVersion (optimistic concurrency, as client-go's leader election); after a
        409 or 404 (someone else wrote or deleted it, e.g. our previous life) it is read
        again, or created.
        """
        base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        stamp = kubetime.format_micro_time(now)
        lease = self._lease
        for _attempt in range(3):
            if lease is None:
                try:
                    lease = self.request("GET", f"{base}/{name}")
                except ApiError as exc:
                    if exc.status != 404:
                        raise
                    body = {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": name, "namespace": namespace},
                        "spec": {
                            "holderIdentity": holder,
                            "leaseDurationSeconds": duration_s,
                            "acquireTime": stamp,
                            "renewTime": stamp,
                        },
                    }
                    self._lease = self.request("POST", base, body)
                    return self._lease
            spec = lease.setdefault("spec", {})
            if spec.get("holderIdentity") != holder:
                spec["acquireTime"] = stamp
                spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            spec.update(holderIdentity=holder, leaseDurationSeconds=duration_s, renewTime=stamp)
            try:
                self._lease = self.request("PUT", f"{base}/{name}", lease)
                return self._lease
            except ApiError as exc:
                self._lease = lease = None
                if exc.status not in (404, 409):
                    raise
        raise ApiError(409, "Conflict", f"lease {namespace}/{name} kept changing")


def _event(event: dict[str, Any]) -> dict[str, Any]:
    if event.get("type") == "ERROR":
        status = event.get("object") or {}
        raise ApiError(
            int(status.get("code") or 500), str(status.get("reason")), json.dumps(status)
        )
    return event
