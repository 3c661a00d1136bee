"""The only module of the agent that talks to the Kubernetes API (one owner per side effect).

The agent's calls: list and watch AliasIPs, merge-patch its own ``status.nodes`` key, renew
its Lease, read a holder's Lease (a standby watching it). The transport (credentials, JSON
bodies, timeouts, the two error kinds ``ApiUnavailable`` and ``ApiError``) is
``aliasip_api.rest``, shared with the operator;
``daemon`` runs every call in a worker thread so the event loop never blocks.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import urllib3

from aliasip_api import kubetime
from aliasip_api.lease import AGENT_ANNOTATIONS, HANDOVER_ANNOTATION
from aliasip_api.rest import (
    ALIASIPS,
    MERGE_PATCH,
    ApiError,
    ApiUnavailable,
    RestClient,
    leases_path,
    load_configuration,
)

__all__ = [
    "ApiError",
    "ApiUnavailable",
    "KubeApi",
    "Listing",
    "StreamRestart",
    "load_configuration",
]


@dataclass(frozen=True)
class Listing:
    """A complete list of objects and the resourceVersion to watch from."""

    items: tuple[dict[str, Any], ...]
    resource_version: str


class StreamRestart:
    """Ends one watch's open stream from another thread, so that it is reopened at once
    from its last resourceVersion on a new connection.

    Why: a stream that survives a partition is intact but late. What the API server sent
    into the cut waits in TCP's retransmission back-off, which doubles from 0.2 s, so
    after a cut of a few seconds the stream resumes up to as long again after the heal.
    A new connection starts with a fresh back-off, and a watch from the last
    resourceVersion loses nothing (docs/design.md, R1). The watch thread owns the
    stream; ``ask`` only shuts its socket's read side, which wakes the blocked read.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._response: urllib3.BaseHTTPResponse | None = None
        self._asked = False

    def ask(self) -> bool:
        """End the open stream now; False if none is open (the next one is new anyway)."""
        with self._lock:
            if self._response is None:
                return False
            try:
                self._response.shutdown()
            except (ValueError, RuntimeError, OSError):
                return False
            self._asked = True
            return True

    def opened(self, response: urllib3.BaseHTTPResponse) -> None:
        with self._lock:
            self._response, self._asked = response, False

    def asked(self) -> bool:
        """Whether the open stream was ended on purpose (its error is no break)."""
        with self._lock:
            return self._asked

    def closed(self) -> bool:
        """The stream is done; True if it was ended on purpose (its connection is spent)."""
        with self._lock:
            asked, self._response, self._asked = self._asked, None, False
            return asked


class KubeApi(RestClient):
    """The agent's calls: list and watch AliasIPs, patch our status key, our Lease.

    ``timeout_s`` bounds each ordinary call (connect and read): the daemon's Lease
    timings rely on a call never hanging longer than that.
    """

    def __init__(self, configuration: Any, timeout_s: float = 2.0) -> None:
        super().__init__(configuration, "aliasip-agent", timeout_s)
        self._lease: dict[str, Any] | None = None

    # ------------------------------------------------------------------ AliasIPs

    def list_aliasips(self) -> Listing:
        return self._list(ALIASIPS)

    def watch_aliasips(
        self, resource_version: str, timeout_s: int, restart: StreamRestart | None = None
    ) -> Iterator[dict[str, Any]]:
        """The AliasIP watch events from ``resource_version`` (see ``_watch``)."""
        return self._watch(ALIASIPS, resource_version, timeout_s, restart)

    def list_leases(self, namespace: str) -> Listing:
        """Every Lease in the agents' namespace (a standby learns its holders' expiries)."""
        return self._list(leases_path(namespace))

    def watch_leases(
        self,
        namespace: str,
        resource_version: str,
        timeout_s: int,
        restart: StreamRestart | None = None,
    ) -> Iterator[dict[str, Any]]:
        return self._watch(leases_path(namespace), resource_version, timeout_s, restart)

    def _list(self, path: str) -> Listing:
        body = self.request("GET", path)
        rv = str((body.get("metadata") or {}).get("resourceVersion", ""))
        return Listing(tuple(body.get("items") or ()), rv)

    def _watch(
        self,
        path: str,
        resource_version: str,
        timeout_s: int,
        restart: StreamRestart | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The watch events of ``path`` from ``resource_version`` for at most ``timeout_s``.

        Bookmarks are asked for, so a quiet watch still advances its resourceVersion.
        A 410 Gone (as a status or as an ERROR event) raises ``ApiError(410)``. A stream
        ended through ``restart`` just ends, as a timed-out one does: the caller watches
        again from the last resourceVersion it saw.
        """
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_s),
        }
        try:
            response = self.transport().request(
                "GET",
                self.url(path, params),
                headers=self.headers(),
                timeout=urllib3.Timeout(connect=self._timeout[0], read=timeout_s + 10),
                preload_content=False,
                retries=False,
                redirect=False,
            )
        except Exception as exc:
            raise ApiUnavailable(f"watch {path}: {type(exc).__name__}: {exc}") from exc
        finished = False
        try:
            if response.status != 200:
                try:
                    text = response.data.decode(errors="replace")
                except Exception as exc:
                    raise ApiUnavailable(f"watch {path}: {type(exc).__name__}") from exc
                raise ApiError(response.status, str(response.reason), text)
            if restart is not None:
                restart.opened(response)
            buffer = b""
            try:
                for chunk in response.stream(amt=None, decode_content=False):
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        if line.strip():
                            yield _event(json.loads(line))
            except (ApiError, ValueError):
                raise
            except Exception as exc:
                if restart is not None and restart.asked():
                    return
                raise ApiUnavailable(f"watch {path} broke: {type(exc).__name__}") from exc
            finished = True
        finally:
            if restart is not None and restart.closed():
                finished = False  # its socket was shut: never back into the pool
            if not finished:  # unread data left: the connection cannot be used again
                response.close()
            response.release_conn()

    def get_aliasip(self, name: str) -> dict[str, Any] | None:
        """One AliasIP read now (a quorum read on kube-apiserver: no resourceVersion), None
        if it does not exist. The agent reads this way right before it adds an address, so
        no add ever rests on a watch stream that may be late (docs/design.md, R1)."""
        return self._get_if_any(f"{ALIASIPS}/{urllib.parse.quote(name)}")

    def _get_if_any(self, path: str) -> dict[str, Any] | None:
        """GET ``path``; None if the object does not exist (404)."""
        try:
            return self.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def patch_aliasip_status(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the ``/status`` subresource (our own key only)."""
        path = f"{ALIASIPS}/{urllib.parse.quote(name)}/status"
        return self.request("PATCH", path, dict(body), content_type=MERGE_PATCH)

    # ------------------------------------------------------------------ Lease

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Another node's agent Lease (a standby watching its holder), None if absent."""
        return self._get_if_any(f"{leases_path(namespace)}/{urllib.parse.quote(name)}")

    def renew_lease(
        self,
        namespace: str,
        name: str,
        holder: str,
        duration_s: int,
        now: datetime,
        handover_until: datetime | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create or renew the Lease ``name`` for ``holder``: one PUT per renewal.

        The Lease written last is kept, so a renewal is a single PUT with its
        resourceVersion (optimistic concurrency, as client-go's leader election); after a
        409 or 404 (someone else wrote or deleted it, e.g. our previous life) it is read
        again, or created. ``handover_until`` sets the handover annotation (a graceful
        stop); every other renewal removes it (the next agent took over). ``annotations``
        are the agent's own (``AGENT_ANNOTATIONS``: where it hears heartbeats, its mute
        window): each one given is set, each one not given removed.
        """
        base = leases_path(namespace)
        stamp = kubetime.format_micro_time(now)
        own = {k: v for k, v in (annotations or {}).items() if k in AGENT_ANNOTATIONS}
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
                        "metadata": {
                            "name": name,
                            "namespace": namespace,
                            **({"annotations": dict(own)} if own else {}),
                        },
                        "spec": {
                            "holderIdentity": holder,
                            "leaseDurationSeconds": duration_s,
                            "acquireTime": stamp,
                            "renewTime": stamp,
                        },
                    }
                    self._lease = self.request("POST", base, body)
                    return self._lease
            current = lease.setdefault("metadata", {}).get("annotations") or {}
            current.pop(HANDOVER_ANNOTATION, None)
            if handover_until is not None:
                current[HANDOVER_ANNOTATION] = kubetime.format_micro_time(handover_until)
            for key in AGENT_ANNOTATIONS:
                current.pop(key, None)
            current.update(own)
            lease["metadata"]["annotations"] = current
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


def newer(candidate: Mapping[str, Any], current: Mapping[str, Any] | None) -> bool:
    """Whether ``candidate`` is not older than ``current`` (resourceVersions compared as
    numbers when both are, as every known server writes them; else the later one wins)."""
    if current is None:
        return True
    new = str((candidate.get("metadata") or {}).get("resourceVersion", ""))
    old = str((current.get("metadata") or {}).get("resourceVersion", ""))
    if new.isdigit() and old.isdigit():
        return int(new) >= int(old)
    return True


def _event(event: dict[str, Any]) -> dict[str, Any]:
    if event.get("type") == "ERROR":
        status = event.get("object") or {}
        raise ApiError(
            int(status.get("code") or 500), str(status.get("reason")), json.dumps(status)
        )
    return event
