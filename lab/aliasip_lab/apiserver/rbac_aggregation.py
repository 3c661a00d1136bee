"""Aggregated ClusterRoles: the rules kube-controller-manager writes into them.

kube-apiserver's RBAC authorizer reads a ClusterRole's stored ``rules`` and never looks at
its ``aggregationRule``; the ``clusterrole-aggregation`` controller of
kube-controller-manager (``pkg/controller/clusterroleaggregation``) fills them: for each
selector in ``aggregationRule.clusterRoleSelectors``, the ClusterRoles whose labels match,
in name order, skipping the role itself, each rule appended unless an equal one is
already there. A change to any ClusterRole requeues every aggregated one, so rules flow
through chains of aggregated roles (``view`` into ``edit`` into ``admin``) until nothing
changes. The lab has no controller manager: the server must call ``aggregate`` after
each ClusterRole write and store what it returns (the controller's follow-up updates,
made in the same step, as the lab already does for a CRD's ``Established`` condition).
The manifests of this product use no aggregation; the lab needs this only for clients
that create aggregated roles.

Label selectors are ``metav1.LabelSelector``: ``matchLabels`` and ``matchExpressions``
(``In``, ``NotIn``, ``Exists``, ``DoesNotExist``); an empty selector matches every role,
as ``LabelSelectorAsSelector`` makes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Json = dict[str, Any]


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """``metav1.LabelSelectorAsSelector(selector).Matches(labels)``."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or ():
        key, operator = expression.get("key", ""), expression.get("operator")
        values = list(expression.get("values") or ())
        if operator == "In":
            if key not in labels or labels[key] not in values:
                return False
        elif operator == "NotIn":
            if key in labels and labels[key] in values:
                return False
        elif operator == "Exists":
            if key not in labels:
                return False
        elif operator == "DoesNotExist":
            if key in labels:
                return False
        else:
            return False  # an invalid operator selects nothing (the conversion fails)
    return True


def _name(role: Mapping[str, Any]) -> str:
    return str((role.get("metadata") or {}).get("name", ""))


def _labels(role: Mapping[str, Any]) -> Mapping[str, str]:
    return (role.get("metadata") or {}).get("labels") or {}


def _rules_for(role: Mapping[str, Any], roles: Mapping[str, Json]) -> list[Json]:
    """One ``syncClusterRole`` pass for ``role`` against the current ``roles``."""
    rules: list[Json] = []
    for selector in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or ():
        for name in sorted(roles):
            other = roles[name]
            if name == _name(role) or not selector_matches(selector, _labels(other)):
                continue
            for rule in other.get("rules") or ():
                if rule not in rules:
                    rules.append(rule)
    return rules


def aggregate(cluster_roles: Iterable[Json]) -> dict[str, list[Json]]:
    """The ``rules`` every aggregated ClusterRole must hold once the controller has
    settled, by name; only roles whose rules change are returned."""
    roles = {_name(r): dict(r) for r in cluster_roles}
    changed: dict[str, list[Json]] = {}
    for _ in range(len(roles) + 1):  # a chain of n roles settles in n passes
        progress = False
        for name in sorted(roles):
            role = roles[name]
            if role.get("aggregationRule") is None:
                continue
            rules = _rules_for(role, roles)
            if rules != list(role.get("rules") or []):
                role["rules"] = rules
                changed[name] = rules
                progress = True
        if not progress:
            break
    return changed
