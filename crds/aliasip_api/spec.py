"""The typed AliasIP spec: validate with the CRD, apply its defaults, parse, or raise.

``parse_aliasip`` does what kube-apiserver does to an incoming object (defaults, then the
OpenAPI schema and the CEL rules' counterparts) and raises one ``InvalidAliasIP`` with
every finding, so that a spec the model accepts is one a real cluster accepts too. What
the schema cannot express (the same address twice, reserved addresses, conflicts with
other AliasIPs or with nodes) is checked by ``findings`` on the parsed spec.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aliasip_api import kubetime
from aliasip_api.addresses import IPInterface, parse_cidr
from aliasip_api.crd import AliasIPCRD, packaged_crd
from aliasip_api.errors import Finding, InvalidAliasIP
from aliasip_api.nodes import NodeInfo
from aliasip_api.selector import LabelSelector
from aliasip_api.validation import OpenAPISchema


class Failback(StrEnum):
    """``spec.failback``; the values mirror the CRD's enum (a test pins them)."""

    MANUAL = "Manual"  # stay where you are after a failover
    AUTO = "Auto"  # return to the most preferred healthy node


@dataclass(frozen=True)
class Announce:
    """``spec.announce``: how many announcements per move, and how far apart."""

    count: int
    interval_ms: int

    @property
    def interval_s(self) -> float:
        return self.interval_ms / 1000


@dataclass(frozen=True)
class AliasIPSpec:
    """A valid, defaulted spec. Addresses keep their prefix (the stationary subnet's)."""

    addresses: tuple[IPInterface, ...]
    nodes: tuple[str, ...]
    node_selector: LabelSelector | None
    interface: str | None
    failback: Failback
    announce: Announce

    def candidates(self, nodes: Iterable[NodeInfo]) -> tuple[str, ...]:
        """Candidate node names in order of preference.

        ``spec.nodes`` first, in their order, whether or not such a node exists (the
        operator sees a missing node as unavailable, and a node that joins later becomes
        a candidate in its place); then the other nodes among ``nodes`` that the selector
        matches, by name, so the order is the same wherever it is computed.
        """
        if self.node_selector is None:
            return self.nodes
        selector = self.node_selector
        listed = set(self.nodes)
        extra = sorted(n.name for n in nodes if n.name not in listed and selector.matches(n.labels))
        return (*self.nodes, *extra)

    def to_dict(self) -> dict[str, Any]:
        """The spec as the API stores it (after defaulting)."""
        body: dict[str, Any] = {"addresses": [str(a) for a in self.addresses]}
        if self.nodes:
            body["nodes"] = list(self.nodes)
        if self.node_selector is not None:
            body["nodeSelector"] = self.node_selector.to_dict()
        if self.interface is not None:
            body["interface"] = self.interface
        body["failback"] = str(self.failback)
        body["announce"] = {"count": self.announce.count, "intervalMs": self.announce.interval_ms}
        return body


@dataclass(frozen=True)
class AliasIP:
    """An AliasIP object: the metadata the model needs, and its parsed spec."""

    name: str
    spec: AliasIPSpec
    uid: str | None = None
    generation: int | None = None
    creation_timestamp: datetime | None = None

    @property
    def seniority(self) -> tuple[bool, datetime, str]:
        """Sort key, oldest first: creationTimestamp, then name; not yet created sorts last."""
        created = self.creation_timestamp
        return (created is None, created or datetime.min.replace(tzinfo=UTC), self.name)


def parse_spec(body: Any, crd: AliasIPCRD | None = None) -> AliasIPSpec:
    """Validate, default and parse a spec alone (paths still start with ``spec``)."""
    crd = crd or packaged_crd()
    defaulted = crd.spec_schema.default(body)
    findings = [*crd.spec_schema.validate(defaulted, "spec"), *_label_key_findings(defaulted, crd)]
    if findings:
        raise InvalidAliasIP(findings)
    return _build_spec(defaulted)


def parse_aliasip(obj: Any, crd: AliasIPCRD | None = None) -> AliasIP:
    """Validate, default and parse a whole AliasIP object (its status is ignored)."""
    crd = crd or packaged_crd()
    if not isinstance(obj, Mapping):
        raise InvalidAliasIP([Finding("", f"an {crd.kind} must be an object")])
    findings: list[Finding] = []
    for field, expected in (("apiVersion", crd.api_version), ("kind", crd.kind)):
        if field in obj and obj[field] != expected:
            findings.append(Finding(field, f"must be {expected} (got {obj[field]!r})"))
    body = crd.schema.default({k: v for k, v in obj.items() if k != "status"})
    findings += crd.schema.validate(body)
    findings += _label_key_findings(body.get("spec"), crd)
    metadata = body.get("metadata") if isinstance(body.get("metadata"), Mapping) else {}
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        findings.append(Finding("metadata.name", "required value is missing"))
    created = _timestamp(metadata.get("creationTimestamp"), findings)
    generation = metadata.get("generation")
    if findings:
        raise InvalidAliasIP(findings)
    uid = metadata.get("uid")
    return AliasIP(
        name=str(name),
        spec=_build_spec(body["spec"]),
        uid=str(uid) if uid is not None else None,
        generation=generation if isinstance(generation, int) else None,
        creation_timestamp=created,
    )


def _timestamp(value: Any, findings: list[Finding]) -> datetime | None:
    if value is None:
        return None
    try:
        return kubetime.parse_time(str(value))
    except ValueError as error:
        findings.append(Finding("metadata.creationTimestamp", f"{value!r} is {error}"))
        return None


def _label_key_findings(spec: Any, crd: AliasIPCRD) -> list[Finding]:
    """matchLabels keys have the syntax of matchExpressions keys, read from the CRD.

    OpenAPI cannot constrain map keys, and a CEL rule over keys of unbounded length risks
    the API server's cost limit, so only the model checks them: a real cluster accepts
    such a selector (it then matches no node), the model reports it as invalid.
    """
    selector = spec.get("nodeSelector") if isinstance(spec, Mapping) else None
    labels = selector.get("matchLabels") if isinstance(selector, Mapping) else None
    if not isinstance(labels, Mapping):
        return []
    key_schema = OpenAPISchema(crd.field("spec", "nodeSelector", "matchExpressions", "[]", "key"))
    return [
        Finding("spec.nodeSelector.matchLabels", f"invalid key {json.dumps(key)}: {f.message}")
        for key in labels
        for f in key_schema.validate(key)
    ]


def _build_spec(body: Mapping[str, Any]) -> AliasIPSpec:
    selector = body.get("nodeSelector")
    announce = body["announce"]
    return AliasIPSpec(
        addresses=tuple(parse_cidr(a) for a in body["addresses"]),
        nodes=tuple(body.get("nodes", ())),
        node_selector=LabelSelector.from_dict(selector) if selector is not None else None,
        interface=body.get("interface"),
        failback=Failback(body["failback"]),
        announce=Announce(count=announce["count"], interval_ms=announce["intervalMs"]),
    )
