"""Python counterparts of the CRD's CEL rules (``x-kubernetes-validations``).

A real kube-apiserver evaluates the CEL rules; the lab's embedded API server and this
model evaluate only the OpenAPI part. So every rule in the CRD must have a counterpart
here, looked up by the rule's text (whitespace-normalised): building a validator for a CRD
with a rule that has none fails at once, instead of silently enforcing less than a real
cluster. A counterpart yields ``(relative path, message)`` pairs, like a rule's failures
but more specific about which field is wrong.

Rules that mention ``oldSelf`` are *transition* rules: they compare an update with the
stored object and only run on updates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

PathPart = str | int
Failure = tuple[tuple[PathPart, ...], str]
Rule = Callable[[Any], Iterator[Failure]]
TransitionRule = Callable[[Any, Any], Iterator[Failure]]


def normalize(rule: str) -> str:
    """A rule's text with runs of whitespace folded, as YAML block scalars vary them."""
    return " ".join(rule.split())


def is_transition(rule: str) -> bool:
    """Whether ``rule`` compares with the stored object (kube-apiserver's definition)."""
    return "oldSelf" in rule


def _label_requirement_values(value: Any) -> Iterator[Failure]:
    """metav1.LabelSelectorRequirement: In/NotIn need values, Exists/DoesNotExist forbid them."""
    if not isinstance(value, dict):
        return
    values = value.get("values")
    count = len(values) if isinstance(values, list) else 0
    operator = value.get("operator")
    if operator in ("In", "NotIn") and count == 0:
        yield ("values",), f"must be non-empty when operator is {operator}"
    elif operator in ("Exists", "DoesNotExist") and count:
        yield ("values",), f"must be empty when operator is {operator}"


def _never_decreases(old: Any, new: Any) -> Iterator[Failure]:
    """A fencing token only moves forward: an agent trusts the newest epoch it has seen."""
    if isinstance(old, int) and isinstance(new, int) and new < old:
        yield (), f"must never decrease (it is a fencing token): was {old}, now {new}"


RULES: dict[str, Rule] = {
    normalize(
        "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0)"
        " : (!has(self.values) || size(self.values) == 0)"
    ): _label_requirement_values,
}

TRANSITION_RULES: dict[str, TransitionRule] = {
    normalize("self >= oldSelf"): _never_decreases,
}


def counterpart(rule: str) -> Rule:
    """The Python check for a non-transition ``rule``; ``LookupError`` if there is none."""
    try:
        return RULES[normalize(rule)]
    except KeyError:
        raise LookupError(f"CEL rule without a Python counterpart: {normalize(rule)!r}") from None


def transition_counterpart(rule: str) -> TransitionRule:
    """The Python check for a transition ``rule``; ``LookupError`` if there is none."""
    try:
        return TRANSITION_RULES[normalize(rule)]
    except KeyError:
        raise LookupError(
            f"CEL transition rule without a Python counterpart: {normalize(rule)!r}"
        ) from None
