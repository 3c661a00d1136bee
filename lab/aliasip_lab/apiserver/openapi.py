"""A minimal OpenAPI v3 (``/openapi/v3``), enough for kubectl to validate on the server.

``kubectl apply``/``create`` validate by default (``--validate=strict``). kubectl first
looks in ``/openapi/v3`` for a PATCH operation of the object's group-version-kind that
takes the ``fieldValidation`` query parameter; if there is one it sends
``fieldValidation=Strict`` and lets the server reject unknown fields (400, "strict
decoding error: unknown field ..."). Without any OpenAPI document it gives up with "failed
to download openapi". So each group-version document here lists, per resource, its
operations with ``x-kubernetes-group-version-kind`` and the query parameters the server
honours, and the CRD schemas as components. The PATCH request bodies name no strategic
merge patch content type: kubectl then computes strategic patches for built-in types
from its compiled-in Go types and JSON merge patches for custom resources, exactly as
it does against kube-apiserver for custom resources. ``/openapi/v2`` is not served.

The built-in kinds' schemas come from ``builtin_schemas`` (truthful but abridged: every
struct they describe is complete, some insides are left undescribed); they carry the
``x-kubernetes-patch-merge-key``/``-patch-strategy`` markers of the generated schemas.
Strategic merge patch is still left out of the PATCH content types (kube-apiserver lists
it for built-ins): kubectl would then compute its patches from these abridged schemas
instead of its compiled-in Go types, and fail on a field whose inside is undescribed;
from the Go types it computes exactly the patch it sends to kube-apiserver. Server-side
apply (``application/apply-patch+yaml``) is listed, as kube-apiserver lists it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aliasip_lab.apiserver.discovery import GIT_VERSION
from aliasip_lab.apiserver.registry import Registry, ResourceType

Json = dict[str, Any]

_QUERY = ("dryRun", "fieldManager", "fieldValidation", "pretty")
_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
)


def _prefix(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def _key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _schema_name(rt: ResourceType) -> str:
    """kube-apiserver's component names: Go package paths for built-ins
    (``io.k8s.api.apps.v1.Deployment``), the reversed group for custom resources."""
    if rt.is_custom:
        return f"{'.'.join(reversed(rt.group.split('.')))}.{rt.version}.{rt.kind}"
    if rt.group == "apiextensions.k8s.io":
        package = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions"
    else:
        package = f"io.k8s.api.{rt.group.split('.')[0] if rt.group else 'core'}"
    return f"{package}.{rt.version}.{rt.kind}"


def _operation(rt: ResourceType, action: str, body_types: tuple[str, ...]) -> Json:
    ref = {"$ref": f"#/components/schemas/{_schema_name(rt)}"}
    op: Json = {
        "operationId": f"{action}{rt.kind}",
        "parameters": [
            {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for name in _QUERY
        ],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": ref}}}
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": rt.group,
            "version": rt.version,
            "kind": rt.kind,
        },
    }
    if body_types:
        op["requestBody"] = {"content": {t: {"schema": {"type": "object"}} for t in body_types}}
    return op


def group_version_document(registry: Registry, group: str, version: str) -> Json | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    paths: Json = {}
    schemas: Json = {}
    for rt in sorted(types, key=lambda t: t.plural):
        base = _prefix(group, version)
        if rt.namespaced:
            base += "/namespaces/{namespace}"
        collection = f"{base}/{rt.plural}"
        item = f"{collection}/{{name}}"
        paths[collection] = {
            "get": _operation(rt, "list", ()),
            "post": _operation(rt, "post", ("application/json", "application/yaml")),
        }
        paths[item] = {
            "get": _operation(rt, "get", ()),
            "put": _operation(rt, "put", ("application/json", "application/yaml")),
            "patch": _operation(rt, "patch", _PATCH_TYPES),
            "delete": _operation(rt, "delete", ()),
        }
        if rt.status_subresource:
            paths[f"{item}/status"] = {
                "get": _operation(rt, "get", ()),
                "put": _operation(rt, "put", ("application/json", "application/yaml")),
                "patch": _operation(rt, "patch", _PATCH_TYPES),
            }
        schema: Json = (
            dict(rt.schema)
            if rt.schema
            else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        )
        schema["x-kubernetes-group-version-kind"] = [
            {"group": rt.group, "version": rt.version, "kind": rt.kind}
        ]
        schemas[_schema_name(rt)] = schema
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def digest(document: Json) -> str:
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest().upper()


def index(registry: Registry) -> Json:
    """``/openapi/v3``: one entry per served group-version, with a content hash."""
    paths: Json = {}
    for group, versions in sorted(registry.group_versions().items()):
        for version in versions:
            document = group_version_document(registry, group, version)
            if document is not None:
                key = _key(group, version)
                paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest(document)}"}
    return {"paths": paths}
