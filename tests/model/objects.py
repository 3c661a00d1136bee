"""Builders for AliasIP and Node bodies as the API returns them (addresses from
198.18.0.0/15 and 2001:2::/48 only)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from aliasip_api.crd import AliasIPCRD

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "aliasip.yaml"
EXAMPLE_PATH = ROOT / "crds" / "examples" / "aliasip.yaml"

SPEC: dict[str, Any] = {"addresses": ["198.18.0.50/24"], "nodes": ["node-a", "node-b"]}


def spec(**changes: Any) -> dict[str, Any]:
    """The minimal valid spec with ``changes`` (a value of ``DROP`` removes the field)."""
    body = copy.deepcopy(SPEC)
    for key, value in changes.items():
        if value is DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return body


DROP = object()


def aliasip(
    name: str = "web",
    body: dict[str, Any] | None = None,
    created: str | None = "2025-01-01T00:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "generation": 1}
    if created is not None:
        metadata["creationTimestamp"] = created
    return {
        "apiVersion": "aliasip.io/v1alpha1",
        "kind": "AliasIP",
        "metadata": metadata,
        "spec": body if body is not None else spec(),
        **extra,
    }


def node(name: str, labels: dict[str, str] | None = None, **addresses: str) -> dict[str, Any]:
    """A Node; ``addresses`` as type=address, e.g. ``InternalIP="198.18.0.10"``."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}},
        "status": {"addresses": [{"type": t, "address": a} for t, a in addresses.items()]},
    }


def crd_document() -> dict[str, Any]:
    """A fresh copy of the CRD document, to edit in tests."""
    loaded: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return loaded


def openapi(document: dict[str, Any]) -> dict[str, Any]:
    """The openAPIV3Schema inside a CRD document (to edit it in place)."""
    schema: dict[str, Any] = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def edited_crd(document: dict[str, Any]) -> AliasIPCRD:
    return AliasIPCRD.from_document(document)
