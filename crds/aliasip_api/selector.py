"""Label selectors (metav1.LabelSelector) and their matching, as a pure function of labels.

Semantics are Kubernetes' (``labels.Selector``): ``matchLabels`` and every requirement of
``matchExpressions`` must all hold; ``NotIn`` and ``DoesNotExist`` also hold for a node
without the key; an empty selector matches every node. A spec without ``nodeSelector``
has no selector at all (``None``), which matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Operator(StrEnum):
    """``matchExpressions[].operator``; the values mirror the CRD's enum (a test pins them)."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


@dataclass(frozen=True)
class Requirement:
    """One ``matchExpressions`` entry: ``key`` ``operator`` ``values``."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement."""
        present = self.key in labels
        if self.operator is Operator.EXISTS:
            return present
        if self.operator is Operator.DOES_NOT_EXIST:
            return not present
        inside = present and labels[self.key] in self.values
        return inside if self.operator is Operator.IN else not inside


@dataclass(frozen=True)
class LabelSelector:
    """A parsed ``nodeSelector``; ``match_labels`` is sorted so equal selectors compare equal."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> LabelSelector:
        """Build from a body the CRD schema has already validated."""
        return cls(
            match_labels=tuple(
                sorted((str(k), str(v)) for k, v in body.get("matchLabels", {}).items())
            ),
            match_expressions=tuple(
                Requirement(
                    key=str(e["key"]),
                    operator=Operator(e["operator"]),
                    values=tuple(str(v) for v in e.get("values", ())),
                )
                for e in body.get("matchExpressions", ())
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """The body as the API stores it (empty parts left out)."""
        body: dict[str, Any] = {}
        if self.match_labels:
            body["matchLabels"] = dict(self.match_labels)
        if self.match_expressions:
            body["matchExpressions"] = [
                {"key": r.key, "operator": str(r.operator)}
                | ({"values": list(r.values)} if r.values else {})
                for r in self.match_expressions
            ]
        return body

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a node with ``labels`` is selected."""
        return all(labels.get(k) == v for k, v in self.match_labels) and all(
            r.matches(labels) for r in self.match_expressions
        )
