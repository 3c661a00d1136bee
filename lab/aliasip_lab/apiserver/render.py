"""Which representation a client asked for (``Accept``), and producing it.

kube-apiserver serves the same objects as plain JSON, YAML, a ``meta.k8s.io`` Table
(``;as=Table;g=meta.k8s.io;v=v1``, what ``kubectl get`` asks for) or
``PartialObjectMetadata`` (``;as=PartialObjectMetadata``, what metadata-only clients ask
for), picking the first acceptable entry of ``Accept``. Protobuf is not served: clients
list JSON after it and get JSON. Nothing acceptable is a 406.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import yaml

from aliasip_lab.apiserver import errors
from aliasip_lab.apiserver.registry import ResourceType
from aliasip_lab.apiserver.store import dumps
from aliasip_lab.apiserver.table import partial_metadata, to_table

Json = dict[str, Any]

JSON = "application/json"
YAML = "application/yaml"
SERVED = [
    JSON,
    YAML,
    f"{JSON};as=Table;v=v1;g=meta.k8s.io",
    f"{JSON};as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
]


@dataclass(frozen=True)
class Format:
    kind: str = "json"  # json, yaml, table, partial
    version: str = "v1"  # meta.k8s.io version for table and partial
    include_object: str = "Metadata"

    @property
    def content_type(self) -> str:
        return YAML if self.kind == "yaml" else JSON


def _media_ranges(accept: str) -> list[tuple[str, dict[str, str], float]]:
    ranges = []
    for index, part in enumerate(accept.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if not media:
            continue
        params: dict[str, str] = {}
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            quality = float(params.pop("q", "1"))
        except ValueError:
            quality = 1.0
        ranges.append((media, params, quality - index * 1e-6))
    return sorted(ranges, key=lambda r: -r[2])


def negotiate(accept: str | None, *, watch: bool, include_object: str | None) -> Format:
    """The first acceptable representation in ``Accept`` order; 406 if there is none."""
    if not accept or not accept.strip():
        return Format()
    for media, params, _ in _media_ranges(accept):
        if media not in (JSON, "*/*", "application/*", YAML):
            continue
        as_kind = params.get("as")
        if as_kind is None:
            if media == YAML:
                if not watch:
                    return Format("yaml")
                continue
            return Format()
        if media != JSON or params.get("g") != "meta.k8s.io":
            continue
        version = params.get("v", "")
        if version not in ("v1", "v1beta1"):
            continue
        if as_kind == "Table":
            return Format("table", version, include_object or "Metadata")
        if as_kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            return Format("partial", version)
    raise errors.not_acceptable(SERVED)


def encode(obj: Any, fmt: Format = Format()) -> bytes:
    if fmt.kind == "yaml":
        return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True).encode()
    return dumps(obj)


def render_object(rt: ResourceType, obj: Json, fmt: Format, now: datetime.datetime) -> Json:
    if fmt.kind == "table":
        return to_table(
            rt,
            [obj],
            now=now,
            resource_version=str(obj.get("metadata", {}).get("resourceVersion", "")),
            include_object=fmt.include_object,
            table_version=fmt.version,
        )
    if fmt.kind == "partial":
        return partial_metadata(obj, fmt.version)
    return obj


def render_list(
    rt: ResourceType, items: list[Json], rv: int, fmt: Format, now: datetime.datetime
) -> Json:
    if fmt.kind == "table":
        return to_table(
            rt,
            items,
            now=now,
            resource_version=str(rv),
            include_object=fmt.include_object,
            table_version=fmt.version,
        )
    if fmt.kind == "partial":
        return {
            "kind": "PartialObjectMetadataList",
            "apiVersion": f"meta.k8s.io/{fmt.version}",
            "metadata": {"resourceVersion": str(rv)},
            "items": [partial_metadata(i, fmt.version) for i in items],
        }
    return {
        "kind": rt.list_kind,
        "apiVersion": rt.api_version,
        "metadata": {"resourceVersion": str(rv)},
        "items": items,
    }
