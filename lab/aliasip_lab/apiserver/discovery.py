"""API discovery documents, built from the registry on every request.

Clients find resources through ``/api``, ``/api/v1``, ``/apis`` and ``/apis/{g}/{v}``
(kubectl maps ``aip`` to ``aliasips.aliasip.io`` there; kopf waits until ``v1/namespaces``
and its CRD's resource appear). Because they are built from the registry, a CRD becomes
discoverable the moment it is stored and disappears when it is deleted, as in
kube-apiserver. Clients that ask for aggregated discovery (kubectl 1.30+: ``Accept:
application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,...``) get the
``apidiscovery.k8s.io/v2`` document for ``/api`` or ``/apis`` (every group, version and
resource in one answer, ``responseKind`` group and version left empty as kube-apiserver
leaves them when they are the resource's own, ``freshness: Current``), with that media
type as Content-Type; the others (and ``v2beta1`` askers, who list ``application/json``
after it) get the classic documents.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from aliasip_lab.apiserver.registry import STATUS_VERBS, Registry, ResourceType

Json = dict[str, Any]

KUBE_MAJOR, KUBE_MINOR = "1", "32"
GIT_VERSION = f"v{KUBE_MAJOR}.{KUBE_MINOR}.0"


def version_info() -> Json:
    """``/version``: kubectl and the clients read major/minor from here."""
    return {
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": "aliasip-lab",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "python",
        "compiler": "aliasip-lab",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> Json:
    """``/api``."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(registry: Registry, group: str) -> Json | None:
    versions = registry.group_versions().get(group)
    if not versions:
        return None
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: Registry) -> Json:
    """``/apis``: every named group, built-in first, then CRD groups by name."""
    # kube-apiserver's group priority order (the aggregator's), for the groups served here.
    builtin = [
        "apps",
        "policy",
        "rbac.authorization.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "coordination.k8s.io",
    ]
    names = [g for g in registry.group_versions() if g]
    ordered = [g for g in builtin if g in names] + sorted(g for g in names if g not in builtin)
    groups = [doc for g in ordered if (doc := _group(registry, g)) is not None]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> Json | None:
    """``/apis/{group}``."""
    doc = _group(registry, group)
    if doc is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **doc}


def _storage_hash(rt: ResourceType) -> str:
    digest = hashlib.sha256(f"{rt.group}/{rt.version}/{rt.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def resource_list(registry: Registry, group: str, version: str) -> Json | None:
    """``/api/v1`` or ``/apis/{group}/{version}``: resources and their subresources."""
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources: list[Json] = []
    for rt in sorted(types, key=lambda t: t.plural):
        entry: Json = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        entry["storageVersionHash"] = _storage_hash(rt)
        resources.append(entry)
        if rt.status_subresource:
            resources.append(
                {
                    "name": f"{rt.plural}/status",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": list(STATUS_VERBS),
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str | None) -> bool:
    """Whether the first media range ``Accept`` lists that this server serves is v2
    aggregated discovery (a client that lists plain JSON first gets that)."""
    for entry in (accept or "").split(","):
        media, *raw = (part.strip() for part in entry.split(";"))
        params = dict(p.split("=", 1) for p in raw if "=" in p)
        params.pop("q", None)
        if media in ("application/json", "*/*", "application/*") and not params:
            return False
        if (
            media == "application/json"
            and params.get("g") == "apidiscovery.k8s.io"
            and params.get("v") == "v2"
            and params.get("as") == "APIGroupDiscoveryList"
        ):
            return True
    return False


def _resource_discovery(rt: ResourceType) -> Json:
    entry: Json = {
        "resource": rt.plural,
        "responseKind": {"group": "", "version": "", "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    if rt.status_subresource:
        entry["subresources"] = [
            {
                "subresource": "status",
                "responseKind": {"group": "", "version": "", "kind": rt.kind},
                "verbs": list(STATUS_VERBS),
            }
        ]
    return entry


def aggregated(registry: Registry, core: bool) -> Json:
    """``/api`` (``core``) or ``/apis`` as an ``APIGroupDiscoveryList`` (v2)."""
    groups = [""] if core else [g["name"] for g in api_group_list(registry)["groups"]]
    versions = registry.group_versions()
    items = []
    for group in groups:
        metadata: Json = {"creationTimestamp": None}
        if group:
            metadata = {"name": group, **metadata}
        entries = []
        for version in versions.get(group, []):
            types = sorted(registry.in_group_version(group, version), key=lambda t: t.plural)
            entries.append(
                {
                    "version": version,
                    "resources": [_resource_discovery(rt) for rt in types],
                    "freshness": "Current",
                }
            )
        items.append({"metadata": metadata, "versions": entries})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
